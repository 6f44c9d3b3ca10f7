//! The replica's private state: its roles, the messages and records it
//! has queued, the bookkeeping of a campaign and of a leadership, the blank
//! state every replica starts from, and the `Hash` over all of it.

use super::log::Log;
use super::wire::Slot;
use super::{Config, ConfigError, Counters, Replica};
use crate::ballot::{Ballot, NodeId};
use crate::persist_seq::PersistSeq;
use crate::rng::Rng;
use crate::time::Instant;
use heapless::Deque;

/// Messages queued per replica (replies waiting for durability, catch-up
/// answers). More are dropped and counted, as a lossy network would.
pub(super) const OUTBOX: usize = 16;
/// Persist records queued before a poll (consecutive ones merge).
pub(super) const PERSISTS: usize = 16;
/// Leadership notices queued.
pub(super) const NOTICES: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Role {
    Follower,
    Candidate,
    Leader,
}

/// A message waiting in the outbox; encoded when polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Pending {
    Prepare {
        ballot: Ballot,
        from: Slot,
        until: Slot,
    },
    Promise {
        to: NodeId,
        ballot: Ballot,
        from: Slot,
        until: Slot,
    },
    Accepted {
        to: NodeId,
        ballot: Ballot,
        first: Slot,
        count: u32,
        stamp: u64,
    },
    /// The refuser's promise and watermark as of the refusal, released
    /// only once that state is durable.
    Nack {
        to: NodeId,
        ballot: Ballot,
        promised: Option<Ballot>,
        decided: Slot,
    },
    CatchUp {
        to: NodeId,
        from: Slot,
    },
    Learn {
        to: NodeId,
        from: Slot,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Notice {
    Acquired(Ballot),
    Lost,
    Changed(Option<NodeId>),
    SnapshotNeeded(NodeId, Slot),
}

/// Phase 1 in progress.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Campaign<V, const W: usize> {
    pub(super) ballot: Ballot,
    pub(super) from: Slot,
    pub(super) until: Slot,
    pub(super) promises: u64,
    pub(super) nacks: u64,
    /// The self-promise counts once this persist is durable.
    pub(super) self_seq: PersistSeq,
    /// Per slot `from + i`, the members whose promise parts answered for
    /// it (a bit per member index): parts may arrive in any order (a
    /// datagram network reorders them), and a promise counts once it
    /// answered for every slot of the campaign (see `Header::Promise`).
    pub(super) answered: [u64; W],
    /// Per slot `from + i`, the highest-ballot value reported so far.
    pub(super) best: [Option<(Ballot, Option<V>)>; W],
}

/// Leader bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Lead<const N: usize> {
    pub(super) ballot: Ballot,
    pub(super) next_slot: Slot,
    /// Slots below this were sent to every follower at least once.
    pub(super) broadcast_from: Slot,
    /// The slots below this were re-proposed after phase 1.
    pub(super) recovery_end: Slot,
    pub(super) since: Instant,
    pub(super) last_broadcast: Instant,
    pub(super) last_progress: Instant,
    pub(super) heartbeat_due: bool,
    /// Appends wait until this persist (the leader's own promise of its
    /// ballot) is durable: a leader that crashed before then may restart
    /// as if fresh, so nothing may have been proposed under the ballot.
    pub(super) ready: PersistSeq,
    pub(super) commit_sent: Slot,
    /// Per member, the latest stamp it echoed (the leader's send time).
    pub(super) stamps: [Option<Instant>; N],
    pub(super) nacks: u64,
}

/// What changed and must be written. `Entries` names slots whose current
/// state is written when polled, so a record always tells the truth about
/// the ballot of each value it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum PersistItem {
    Promised(Ballot),
    Entries { first: Slot, end: Slot },
    Committed(Slot),
    Snapshot(Slot),
    Amnesiac,
}

impl<V: core::hash::Hash, const N: usize, const W: usize> core::hash::Hash for Replica<V, N, W> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        // heapless's Deque has no Hash: hash its items in order.
        fn items<T: core::hash::Hash, H: core::hash::Hasher, const C: usize>(d: &Deque<T, C>, state: &mut H) {
            d.len().hash(state);
            d.iter().for_each(|t| t.hash(state));
        }
        let Replica {
            config,
            me,
            rng,
            now,
            promised,
            log,
            role,
            leader,
            last_heard,
            election_at,
            quiet_until,
            amnesiac,
            catch_up,
            seen,
            campaign,
            lead,
            issued,
            durable,
            written,
            persists,
            commit_wait,
            self_votes,
            outbox,
            notices,
            displaced,
            next_proposal,
            counters,
        } = self;
        (
            config,
            me,
            rng,
            now,
            promised,
            log,
            role,
            leader,
            last_heard,
            election_at,
            quiet_until,
            amnesiac,
        )
            .hash(state);
        (
            catch_up,
            seen,
            campaign,
            lead,
            issued,
            durable,
            written,
            next_proposal,
            counters,
            commit_wait,
        )
            .hash(state);
        items(persists, state);
        items(self_votes, state);
        items(outbox, state);
        items(notices, state);
        items(displaced, state);
    }
}

impl<V: super::Value, const N: usize, const W: usize> Replica<V, N, W> {
    /// A replica with nothing promised, accepted or queued: what
    /// [`Replica::new`] and [`Replica::recovery`] build on.
    pub(super) fn blank(config: Config<N>, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        if W == 0 {
            return Err(ConfigError::BadCapacity);
        }
        let me = config.index_of(config.id).ok_or(ConfigError::NotAMember(config.id))?;
        let mut replica = Replica {
            rng: Rng::new(config.seed),
            me,
            now,
            promised: None,
            log: Log::new(0),
            role: Role::Follower,
            leader: None,
            last_heard: now,
            election_at: now,
            quiet_until: now,
            amnesiac: false,
            catch_up: None,
            seen: None,
            campaign: Campaign {
                ballot: Ballot::new(0, config.id),
                from: 0,
                until: 0,
                promises: 0,
                nacks: 0,
                self_seq: PersistSeq(0),
                answered: [0; W],
                best: core::array::from_fn(|_| None),
            },
            lead: Lead {
                ballot: Ballot::new(0, config.id),
                next_slot: 0,
                broadcast_from: 0,
                recovery_end: 0,
                since: now,
                last_broadcast: now,
                last_progress: now,
                heartbeat_due: false,
                ready: PersistSeq(0),
                commit_sent: 0,
                stamps: [None; N],
                nacks: 0,
            },
            issued: PersistSeq(0),
            durable: PersistSeq(0),
            written: PersistSeq(0),
            persists: Deque::new(),
            commit_wait: None,
            self_votes: Deque::new(),
            outbox: Deque::new(),
            notices: Deque::new(),
            displaced: Deque::new(),
            next_proposal: 0,
            counters: Counters::default(),
            config,
        };
        replica.reset_election_timer();
        Ok(replica)
    }

    /// Queues a notice for [`Replica::poll_event`].
    pub(super) fn notice(&mut self, notice: Notice) {
        // At most a few notices follow one input; the queue holds them.
        if self.notices.push_back(notice).is_err() {
            self.counters.busy += 1;
        }
    }
}
