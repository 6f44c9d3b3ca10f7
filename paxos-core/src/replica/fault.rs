//! The classic Paxos bugs the verification suites must catch, named so a
//! test can switch one on. Reachable from outside the crate only as
//! `paxos_core::fault_injection`, which exists only with the
//! `bug-injection` feature (enabled by the test crates, never by the
//! library's users); without it every check below is a constant `false`.

/// A bug to inject through [`super::ConfigBuilder`]'s hidden `inject`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Bug {
    /// A new leader ignores the values promises report (and its own).
    IgnoreAcceptedValues,
    /// An acceptor accepts ballots below its promise.
    AcceptBelowPromise,
    /// An acceptor does not raise its promise when it accepts.
    NoPromiseOnAccept,
    /// Quorums are one vote short of a majority.
    QuorumOffByOne,
    /// Votes and promises leave before their records are durable.
    RevealBeforeDurable,
    /// A restarted node ignores its records and boots as new.
    ForgetOnRestart,
    /// A restarted node's campaigns start from round 1 again.
    ReuseBallotAfterRestart,
    /// A leader or candidate applies decided values learned from a peer,
    /// so its watermark covers slots its own ballot did not decide.
    LeaderLearns,
    /// A record batch may end in a run header without its item count.
    TornRecord,
    /// Learning decided values records no watermark, and an append may
    /// turn a learned cell back into a plain vote.
    UnrecordedLearnWatermark,
    /// A node whose storage was lost restarts as a first boot and votes.
    AmnesiacVotes,
    /// A snapshot clears cells whose vote records are still queued, and a
    /// watermark queued over them reaches disk before the snapshot.
    SnapshotDropsPendingVotes,
    /// A snapshot clears cells whose vote records are still queued, and
    /// the votes' reply leaves once their (now empty) record is durable,
    /// before the snapshot record: a vote revealed with nothing durable
    /// behind it (fault E's other half, fault H).
    VoteLeavesBeforeSnapshot,
    /// A leader whose self-vote queue is full (more records written than
    /// it keeps entries, none durable yet: a driver that syncs on another
    /// thread) drops the vote instead of folding it into the newest entry:
    /// re-introduces the fault of commit 97a2a02, under which a one-node
    /// cluster, where nothing else can decide, stopped deciding for good.
    DropSelfVotesWhenFull,
    /// A candidate counts a peer's promise on its first part, before the
    /// parts answer for every slot of the campaign: votes reported in the
    /// later parts are missed.
    CountPartialPromise,
    /// `Replica::release_delivered` drops delivered slots whose records are
    /// still queued: the records are then encoded from empty cells and
    /// write nothing, while the watermark over them reaches disk.
    ReleaseQueuedSlots,
}
