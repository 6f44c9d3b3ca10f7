//! A refinement check: the simulated replicas, step by step, against the
//! next-state relation of the protocol's specification
//! (`spec/Replica.tla`, module `Replica`, on branch `spec`; see
//! `docs/refinement.md` for the action-by-action review and what is not
//! checked).
//!
//! After every simulated step — an input handed to a node and the driver's
//! drain that follows (persist, transmit, events), a sync confirmation, a
//! crash, a restart — the touched node's concrete state is mapped to the
//! spec's abstract state ([`NodeState`], [`Disk`]) and the pair (before,
//! after) must be a transition the spec allows; the frames it sent join
//! the spec's message set `msgs` and must be implied by its durable state;
//! the spec's invariants must hold on the abstract global state.
//!
//! # The mapping
//!
//! | spec | here |
//! |---|---|
//! | `role[n]` | `is_leader` → L, `is_candidate` → C, `is_amnesiac` → A, else F |
//! | `promised[n]` | `promised()` |
//! | `bal[n]` (L, C) | `promised()`: a leader or candidate promises exactly its ballot |
//! | `from[n]` | the decided watermark when the campaign started (tracked here; checked against its Prepare) |
//! | `cell[n][s]` | `entry(s)` for the `W` slots from `log_start()`: `(Some(b), v)` a vote, `(None, v)` learned |
//! | `decided[n]`, `start[n]` | `decided()`, `log_start()` |
//! | `disk[n]` | the node's durable batches replayed record by record ([`Disk`]) |
//! | `msgs` | every frame any node sent, parsed ([`Msg`]) |
//! | "chosen" | a quorum voted `(s, b)`: `Accepted` frames and durable vote records |
//! | `proposed` | the values clients handed to `propose` that a leader stored |
//! | `decidedAt` | every value any node held decided, per slot |
//!
//! The spec's `pend` (records queued, replies waiting on them) has no
//! counterpart: persist-before-reveal is checked on what it guarantees —
//! every message sent is implied by the sender's durable state when it
//! leaves — not on the queue's discipline. One simulator step is a
//! sequence of spec actions (an input action, then `Persist` steps at a
//! sync, then internal actions such as `Win` and `LeaderCommit`); the
//! rules below are the effects every such sequence must have.
//!
//! # Rules (each is the `rule` of a [`Violation`])
//!
//! Transitions (`Next`), per node:
//! - promises only rise, except at a restart, where the promise is the
//!   durable one (`PromisesKeptStep`, `Restart`);
//! - a promise rises only by a campaign for the node's own ballot above
//!   its promise (`Campaign`), or by a prepare or an append of that ballot
//!   from its owner (`OnPrepare`, `OnAppend`);
//! - a vote cell changes only to a ballot at or above the promise, and
//!   only by an append from that ballot's leader carrying that value for
//!   that slot (`OnAppend`) or at the leader of that ballot: a client's
//!   value at or above decided (`Propose`, fix A) or phase 1's
//!   re-proposals (`Win`: for some quorum of good promises the values
//!   `DoWin` picks, the highest-ballot reported or own vote, else a
//!   no-op);
//! - a learned cell comes only from a learn, at a follower (`OnLearn`,
//!   fix A); a decided cell never changes (fix C);
//! - decided never moves back, and moves only by an append's commit over
//!   cells holding votes under the append's ballot (`OnAppend`), by a
//!   leader over slots chosen under its ballot, its own vote counting once
//!   durable (`LeaderCommit`), by a learn at a follower (`OnLearn`), or by
//!   a snapshot, which a leader or candidate installs only after stepping
//!   down (`InstallSnapshot`, fix A);
//! - a node leads only by winning phase 1 (`Win`: a quorum of promises
//!   for its ballot with `dec <= from` and not `beyond`, its own counting
//!   once durable), or from the first boot with round 0 (`Init`);
//! - an amnesiac never promises, votes, campaigns or leads, and amnesia
//!   starts only at a restart (fix D);
//! - a restart rebuilds exactly the durable state (`Restart`): the
//!   durable promise, the replayed cells, the durable watermark (or the
//!   application's, beyond it); from no records, an amnesiac learner (fix
//!   D) — or a first boot, which the simulator's driver does for a node
//!   whose storage never held a durable batch, allowed only if the node
//!   never revealed anything its records should back;
//! - durable records only grow (`Persist`), unless the storage is lost as
//!   a whole (`Wipe`); every batch ends at a record boundary (fix B).
//!
//! Messages, when sent (`PersistBeforeReveal` and the actions that send):
//! - Prepare: the sender campaigns with that ballot from its watermark and
//!   its durable promise covers it;
//! - Promise: not from an amnesiac; for the sender's promise, durable; its
//!   watermark; every reported vote lower than the ballot, durable, and
//!   held; every lower vote it holds in the prepare's range reported;
//!   `beyond` when it holds votes past the range; and every vote the
//!   acceptor ever revealed (`Accepted`) below the ballot is reported with
//!   a ballot at least as high or covered by the watermark
//!   (`PromisesReportVotes`);
//! - Append: from the leader of the ballot, promise durable; values its
//!   own under the ballot or decided; one value per ballot and slot; a
//!   commit at most its watermark, every slot below it from its phase-1
//!   `from` chosen under its ballot (`CommitWatermark`);
//! - Accepted: not from an amnesiac; every slot durably voted under the
//!   ballot or durably decided;
//! - Nack: the durable promise at least the one reported;
//! - Learn: decided values of the sender.
//!
//! Invariants, on the abstract global state: agreement (one value chosen
//! per slot; every decided value equal everywhere and equal to the chosen
//! one), validity (every vote and decided value was proposed by a client
//! or is a no-op), promise bounds (volatile promise at least the durable
//! one, no vote above the promise), learned cells below decided (in memory
//! and on disk, fix C), decided slots hold their values (in memory, and
//! on disk after every durable record that moves the watermark: a crash
//! may leave any prefix of the records, fault E), every revealed vote
//! stays durable unless its node is an
//! amnesiac (`RevealedVotesDurable`).
//!
//! # Hooks
//!
//! [`crate::sim::Simulation`] owns an `Option<Refinement>` (on unless
//! [`crate::sim::Options::refinement`] is off) and calls
//! [`Refinement::step`] at the end of every drain and
//! [`Refinement::crash`] at every crash; before each input it notes what
//! the input was ([`Input`]).

mod messages;
mod next;
mod state;

pub use messages::{parse_batch, Msg, PromisePart, Rec, Val};
pub use state::{Applied, Cell, Disk, NodeState, Role, Uncovered};

use crate::sim::fasthash::{FastMap as HashMap, FastSet as HashSet};
use crate::sim::node::{Node, Output};
use crate::sim::{Value, Violation};
use paxos_core::replica::Slot;
use paxos_core::{Ballot, NodeId};

type Check = Result<(), Violation>;

/// What the step's input was, as far as the spec cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// `Replica::new` at the start of the run.
    Boot,
    /// `handle_timeout`.
    Timeout,
    /// `handle_message` with a frame from node `from`.
    Message {
        /// The sender's index.
        from: usize,
        /// The frame, parsed.
        msg: Msg,
    },
    /// `propose` of a client's value.
    Propose(Value),
    /// `persisted` after a sync.
    Synced,
    /// `install_snapshot` up to the slot.
    Snapshot(Slot),
    /// A restart (`recover` or, for a node that never synced, `new`) with
    /// the application's applied slot.
    Restart {
        /// The first slot the application has not applied.
        applied: Slot,
    },
    /// Not noted: only the rules that hold whatever the input are checked.
    Unknown,
}

impl Input {
    /// A message input; a frame that does not parse is `Unknown` (the
    /// replica refuses it, and the sender's check reports it).
    pub fn message(from: usize, frame: &[u8]) -> Input {
        Msg::parse(frame).map_or(Input::Unknown, |msg| Input::Message { from, msg })
    }
}

/// The rules, as named in violations.
pub mod rules {
    /// The concrete state has no abstract counterpart.
    pub const ABSTRACT: &str = "refinement: abstract state";
    /// A durable or written batch does not parse into whole records.
    pub const BATCH: &str = "refinement: a batch holds whole records (fix B)";
    /// A frame does not parse.
    pub const FRAMES: &str = "refinement: frames decode";
    /// `Init`.
    pub const INIT: &str = "refinement: first boot (Init)";
    /// `Restart`.
    pub const RESTART: &str = "refinement: a restart rebuilds the durable state";
    /// `Restart` from `NoRecords` (fix D).
    pub const NO_RECORDS: &str = "refinement: a node restarted from no records is an amnesiac learner (fix D)";
    /// The driver's first boot of a node that never synced.
    pub const BOOT_AS_NEW: &str = "refinement: only a node that revealed nothing durable boots as new";
    /// `Persist` / `Wipe`.
    pub const DURABLE_GROWS: &str = "refinement: durable records only grow";
    /// `PromisesKeptStep`.
    pub const PROMISE_DOWN: &str = "refinement: promises only rise";
    /// `Campaign`, `OnPrepare`, `OnAppend`.
    pub const PROMISE_SOURCE: &str = "refinement: a promise rises by a campaign, a prepare or an append";
    /// `Campaign`.
    pub const CAMPAIGN: &str = "refinement: a campaign's ballot is the node's own, above its promise";
    /// Fix D.
    pub const AMNESIAC: &str = "refinement: an amnesiac never promises, votes, campaigns or leads (fix D)";
    /// `Win` / `Init`.
    pub const LEAD: &str = "refinement: a node leads only by winning phase 1 with its ballot";
    /// `Win`: the quorum.
    pub const WIN_QUORUM: &str = "refinement: a candidate wins with a quorum of good promises";
    /// `Win`: `DoWin`'s values.
    pub const WIN_VALUES: &str = "refinement: a new leader re-proposes what phase 1 found";
    /// `PromisesKeptStep`: votes.
    pub const VOTE_PROMISE: &str = "refinement: a vote keeps the promise";
    /// `OnAppend`, `Propose`, `Win`.
    pub const VOTE_SOURCE: &str = "refinement: a vote comes from its ballot's leader";
    /// Fix A: `propose` never writes below decided.
    pub const PROPOSE: &str = "refinement: a leader proposes at or above decided, within its window (fix A)";
    /// Fix C.
    pub const DECIDED_CELL: &str = "refinement: a decided cell never changes (fix C)";
    /// `OnLearn` and fix A.
    pub const LEARN: &str = "refinement: only a follower learns, and only what a learn carries (fix A)";
    /// The spec never empties a cell in memory.
    pub const CELL: &str = "refinement: a cell in memory never disappears";
    /// Decided is monotone.
    pub const DECIDED_BACK: &str = "refinement: decided never moves back";
    /// Decided moves only by the four paths.
    pub const DECIDED_MOVE: &str = "refinement: decided moves by a commit, a quorum, a learn or a snapshot";
    /// `LeaderCommit` / `CommitWatermark`.
    pub const LEADER_COMMIT: &str = "refinement: a leader decides only slots chosen under its ballot";
    /// `InstallSnapshot` and fix A.
    pub const SNAPSHOT: &str = "refinement: a leader or candidate steps down to install a snapshot (fix A)";
    /// Memory slides forward.
    pub const START: &str = "refinement: memory only slides forward, below decided";
    /// `Implied` for a Prepare.
    pub const PBR_PREPARE: &str = "refinement: persist before reveal (prepare)";
    /// `Implied` for a Promise.
    pub const PBR_PROMISE: &str = "refinement: persist before reveal (promise)";
    /// `Implied` for a Promise's entries.
    pub const PBR_PROMISE_VOTE: &str = "refinement: persist before reveal (promise reports a vote)";
    /// `Implied` for an Append.
    pub const PBR_APPEND: &str = "refinement: persist before reveal (append)";
    /// `Implied` for an Accepted.
    pub const PBR_VOTE: &str = "refinement: persist before reveal (vote)";
    /// `Implied` for a Nack.
    pub const PBR_NACK: &str = "refinement: persist before reveal (refusal)";
    /// A message that the sender's state does not produce (`Encode`).
    pub const MSG_STATE: &str = "refinement: a message matches its sender's state";
    /// `Encode` of a Promise: every lower vote in range.
    pub const PROMISE_ENTRIES: &str = "refinement: a promise reports every lower vote it holds";
    /// `PromisesReportVotes`.
    pub const REPORTED_VOTES: &str = "refinement: a revealed vote is reported by every later promise";
    /// `CommitWatermark` on the wire.
    pub const APPEND_COMMIT: &str = "refinement: an append's commit covers only slots chosen under its ballot";
    /// `OnCatchUp`.
    pub const LEARN_MSG: &str = "refinement: a learn carries decided values";
    /// One value per ballot and slot.
    pub const ONE_VALUE: &str = "refinement: one value per ballot and slot";
    /// `Agreement`.
    pub const AGREEMENT: &str = "refinement: agreement";
    /// `Validity`.
    pub const VALIDITY: &str = "refinement: validity";
    /// `PromiseBounds`.
    pub const PROMISE_BOUNDS: &str = "refinement: promise bounds";
    /// `LearnedBelowDecided` (fix C).
    pub const LEARNED_BELOW: &str = "refinement: learned cells are below decided (fix C)";
    /// `DecidedKnown`.
    pub const DECIDED_KNOWN: &str = "refinement: decided slots hold their values";
    /// `RevealedVotesDurable`.
    pub const REVEALED_DURABLE: &str = "refinement: a revealed vote stays durable";

    /// Every rule.
    pub const ALL: &[&str] = &[
        ABSTRACT,
        BATCH,
        FRAMES,
        INIT,
        RESTART,
        NO_RECORDS,
        BOOT_AS_NEW,
        DURABLE_GROWS,
        PROMISE_DOWN,
        PROMISE_SOURCE,
        CAMPAIGN,
        AMNESIAC,
        LEAD,
        WIN_QUORUM,
        WIN_VALUES,
        VOTE_PROMISE,
        VOTE_SOURCE,
        PROPOSE,
        DECIDED_CELL,
        LEARN,
        CELL,
        DECIDED_BACK,
        DECIDED_MOVE,
        LEADER_COMMIT,
        SNAPSHOT,
        START,
        PBR_PREPARE,
        PBR_PROMISE,
        PBR_PROMISE_VOTE,
        PBR_APPEND,
        PBR_VOTE,
        PBR_NACK,
        MSG_STATE,
        PROMISE_ENTRIES,
        REPORTED_VOTES,
        APPEND_COMMIT,
        LEARN_MSG,
        ONE_VALUE,
        AGREEMENT,
        VALIDITY,
        PROMISE_BOUNDS,
        LEARNED_BELOW,
        DECIDED_KNOWN,
        REVEALED_DURABLE,
    ];
}

/// How often each path of the next-state relation was taken: a rule that
/// never fired on a path that was never taken proves little.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Node steps checked (crashes included).
    pub steps: u64,
    /// Steps with an input the driver did not note (`Input::Unknown`).
    pub unknown_inputs: u64,
    /// `Init` (first boots).
    pub boots: u64,
    /// `Restart` from records.
    pub restarts: u64,
    /// Restarts from no records as an amnesiac learner.
    pub amnesiac_restarts: u64,
    /// Restarts as new by the driver's first-boot rule.
    pub boots_as_new: u64,
    /// Storage lost as a whole (`Wipe`).
    pub wipes: u64,
    /// `Campaign`.
    pub campaigns: u64,
    /// `Win`, checked against `DoWin`.
    pub wins: u64,
    /// ... of which re-proposed at least one slot.
    pub wins_with_values: u64,
    /// Votes stored at followers (`OnAppend`).
    pub votes: u64,
    /// Values stored at a leader (`Propose`).
    pub proposals: u64,
    /// Slots decided by a leader's quorum (`LeaderCommit`).
    pub leader_commits: u64,
    /// Slots decided by an append's commit (`OnAppend`).
    pub append_commits: u64,
    /// Slots decided by a learn (`OnLearn`).
    pub learned: u64,
    /// Snapshots installed (`InstallSnapshot`).
    pub snapshots: u64,
    /// Messages checked when sent.
    pub messages: u64,
    /// Promises checked against every vote their sender revealed.
    pub promises: u64,
    /// ... of which parts that are not the last of their promise.
    pub promise_parts: u64,
    /// Renewed promises that no longer report a revealed vote because the
    /// acceptor since voted under the promised ballot itself.
    pub renewals_past_own_vote: u64,
    /// Slots chosen.
    pub chosen: u64,
}

/// The votes for one `(slot, ballot)`: its value (once an append or a
/// record showed it) and who voted, by bit per node.
#[derive(Clone, Debug, Default)]
struct Votes {
    value: Option<Val>,
    /// Voters revealed by `Accepted` frames (the spec's `Voted`).
    revealed: u32,
    /// Voters whose durable records hold the vote.
    durable: u32,
}

/// A promise in `msgs`, kept for the candidate's `Win`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PromiseMsg {
    src: usize,
    decided: Slot,
    beyond: bool,
    /// The slots it answers for: `first..end` (a whole promise, or a
    /// chain of parts, answers for the prepare's `from..until`).
    first: Slot,
    end: Slot,
    entries: Vec<(Slot, Ballot, Val)>,
}

/// What is tracked per node.
#[derive(Clone, Debug, Default)]
struct Track {
    /// The abstract state after its last step; `None` while down.
    state: Option<NodeState>,
    /// `from[n]` of its campaign or lead.
    from: Slot,
    /// The replayed durable state.
    disk: Disk,
    /// Every `Accepted` it sent, as ballots per slot.
    revealed: HashMap<Slot, Vec<Ballot>>,
    /// It sent something its records must back (`Implied`).
    revealed_durable: bool,
    /// Batches written (`Node::batches`) already checked.
    written: u64,
    /// A hash of the last durable batch applied.
    last_batch: u64,
    /// As leader: the slots below this were checked chosen under its ballot.
    verified_commit: Slot,
}

/// The refinement check of one run: the abstract global state and the
/// per-node tracking.
#[derive(Clone, Debug)]
pub struct Refinement {
    quorum: usize,
    window: usize,
    initial_leader: Option<usize>,
    nodes: Vec<Track>,
    votes: HashMap<(Slot, Ballot), Votes>,
    chosen: HashMap<Slot, (Ballot, Val)>,
    decided: HashMap<Slot, Val>,
    proposed: HashSet<Value>,
    /// Promises sent, by (recipient, ballot).
    promises: HashMap<(usize, Ballot), Vec<PromiseMsg>>,
    /// `from..until` of every prepare sent, by ballot.
    prepares: HashMap<Ballot, (Slot, Slot)>,
    coverage: Coverage,
}

fn bit(node: usize) -> u32 {
    1 << node
}

fn id(node: usize) -> NodeId {
    NodeId(node as u8)
}

fn fail<T>(rule: &'static str, detail: String) -> Result<T, Violation> {
    Err(Violation::new(rule, detail))
}

fn fnv(bytes: &[u8]) -> u64 {
    crate::rng::fnv1a(bytes.iter().copied())
}

impl Refinement {
    /// The check for a cluster of `nodes` members (node `i` is
    /// `NodeId(i)`), log window `window`, and the configured initial
    /// leader.
    pub fn new(nodes: usize, window: usize, initial_leader: Option<usize>) -> Self {
        Refinement {
            quorum: nodes / 2 + 1,
            window,
            initial_leader,
            nodes: vec![Track::default(); nodes],
            votes: HashMap::default(),
            chosen: HashMap::default(),
            decided: HashMap::default(),
            proposed: HashSet::default(),
            promises: HashMap::default(),
            prepares: HashMap::default(),
            coverage: Coverage::default(),
        }
    }

    /// Steps checked so far (node steps, crashes included).
    pub fn steps(&self) -> u64 {
        self.coverage.steps
    }

    /// How often each path was taken so far.
    pub fn coverage(&self) -> Coverage {
        Coverage {
            chosen: self.chosen.len() as u64,
            ..self.coverage
        }
    }

    /// Node `i` took a step: `input`, then the drain that produced `out`.
    pub fn step<const W: usize>(&mut self, i: usize, node: &Node<W>, input: Input, out: &[Output]) -> Check {
        self.coverage.steps += 1;
        if input == Input::Unknown {
            self.coverage.unknown_inputs += 1;
        }
        self.check_written(i, node)?;
        let (applied, _) = self.sync_disk(i, node, false)?;
        self.record_durable(i, &applied)?;
        let after = match &node.replica {
            Some(r) => Some(NodeState::of(r).map_err(|e| Violation::new(rules::ABSTRACT, format!("n{i}: {e}")))?),
            None => None,
        };
        let before = self.nodes[i].state.take();
        match (&before, &after) {
            (_, None) => {}
            (None, Some(q)) => self.check_start(i, q, &input)?,
            (Some(p), Some(q)) => self.check_next(i, p, q, &input)?,
        }
        if let Some(q) = &after {
            self.check_state(i, before.as_ref(), q)?;
            self.check_sends(i, q, out)?;
        }
        self.nodes[i].state = after;
        self.check_disk(i, &applied)
    }

    /// Node `i` crashed: its volatile state is gone; its storage kept the
    /// durable batches (and perhaps some the OS flushed), or was lost.
    pub fn crash<const W: usize>(&mut self, i: usize, node: &Node<W>) -> Check {
        self.coverage.steps += 1;
        let (applied, wiped) = self.sync_disk(i, node, true)?;
        self.coverage.wipes += u64::from(wiped);
        self.record_durable(i, &applied)?;
        let track = &mut self.nodes[i];
        track.state = None;
        track.from = 0;
        track.verified_commit = 0;
        track.written = node.batches;
        self.check_disk(i, &applied)
    }

    /// Every batch the node wrote since its last step ends at a record
    /// boundary (fix B; the spec persists whole records).
    fn check_written<const W: usize>(&mut self, i: usize, node: &Node<W>) -> Check {
        let track = &mut self.nodes[i];
        let new = node.batches.saturating_sub(track.written);
        track.written = node.batches;
        if new == 0 {
            return Ok(());
        }
        let pending: Vec<&[u8]> = node.disk.unsynced_batches().collect();
        let new = usize::try_from(new).unwrap_or(usize::MAX).min(pending.len());
        for batch in &pending[pending.len() - new..] {
            if let Err(e) = parse_batch(batch) {
                return fail(
                    rules::BATCH,
                    format!("n{i} wrote a batch of {} bytes that does not parse: {e}", batch.len()),
                );
            }
        }
        Ok(())
    }

    /// Applies the batches that became durable since the last step.
    /// Returns what they made durable, and whether the storage was lost.
    /// Between crashes storage only appends durable batches; at a crash
    /// (`verify`) the ones applied before are checked to be still there.
    fn sync_disk<const W: usize>(
        &mut self,
        i: usize,
        node: &Node<W>,
        verify: bool,
    ) -> Result<(Applied, bool), Violation> {
        let synced = &node.disk.synced;
        let track = &mut self.nodes[i];
        let mut applied = Applied::default();
        let known = track.disk.batches;
        let extends = synced.len() >= known && (!verify || known == 0 || fnv(&synced[known - 1]) == track.last_batch);
        if !extends {
            // Only a loss of the whole storage (`Wipe`) takes records away.
            if !synced.is_empty() {
                return Err(Violation::new(
                    rules::DURABLE_GROWS,
                    format!(
                        "n{i}'s durable batches went from {known} to {} that do not extend them",
                        synced.len()
                    ),
                ));
            }
            applied.slots.extend(track.disk.cells.keys().copied());
            track.disk = Disk::default();
            track.last_batch = 0;
            return Ok((applied, true));
        }
        let (dec, start) = (track.disk.dec, track.disk.start);
        for batch in &synced[known..] {
            track
                .disk
                .apply_batch(batch, &mut applied)
                .map_err(|e| Violation::new(rules::BATCH, format!("n{i}'s durable batch: {e}")))?;
            track.last_batch = fnv(batch);
        }
        // DecidedKnown on disk, after every durable watermark record (not
        // only once the step's batches are applied: a later record of the
        // same sync, a snapshot, may cover the hole the watermark left).
        if let Some(u) = &applied.uncovered {
            let d = &track.disk;
            return Err(Violation::new(
                rules::DECIDED_KNOWN,
                format!(
                    "n{i}'s durable watermark record {} of durable batch {} moved the watermark to {} (snapshot {}, was {dec}/{start}) over slot {}, which has no durable value{}",
                    u.record,
                    u.batch,
                    u.dec,
                    u.start,
                    u.slot,
                    if (d.dec, d.start) == (u.dec, u.start) {
                        String::new()
                    } else {
                        format!(" (after this step's records: watermark {}, snapshot {})", d.dec, d.start)
                    }
                ),
            ));
        }
        Ok((applied, false))
    }

    /// Durable votes join the chosen computation.
    fn record_durable(&mut self, i: usize, applied: &Applied) -> Check {
        for (slot, ballot, value) in &applied.votes {
            self.add_vote(*slot, *ballot, Some(value), i, false)?;
        }
        Ok(())
    }

    /// `RevealedVotesDurable` and `LearnedBelowDecided` over the slots
    /// whose durable cell changed.
    fn check_disk(&self, i: usize, applied: &Applied) -> Check {
        let track = &self.nodes[i];
        let d = &track.disk;
        let amnesiac = track.state.as_ref().is_some_and(|s| s.role == Role::Amnesiac);
        for &slot in &applied.slots {
            if let Some(c) = d.cells.get(&slot) {
                if !c.is_vote() && slot >= d.dec {
                    return fail(
                        rules::LEARNED_BELOW,
                        format!(
                            "n{i}'s durable learned cell {slot} is not below its durable watermark {}",
                            d.dec
                        ),
                    );
                }
            }
            if amnesiac || (track.state.is_none() && d.batches == 0) {
                // A wiped node is exempt while it is an amnesiac; a node
                // down with no records is checked when it restarts.
                continue;
            }
            for &b in track.revealed.get(&slot).into_iter().flatten() {
                if !d.keeps_vote(slot, b) {
                    return fail(
                        rules::REVEALED_DURABLE,
                        format!(
                            "n{i} revealed a vote for slot {slot} under {b:?}; its durable state now holds {:?} (watermark {}, snapshot {})",
                            d.cells.get(&slot),
                            d.dec,
                            d.start
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Adds a voter for `(slot, ballot)` (revealed by an `Accepted`, or
    /// durable), with the value if known.
    fn add_vote(&mut self, slot: Slot, ballot: Ballot, value: Option<&Val>, node: usize, revealed: bool) -> Check {
        let entry = self.votes.entry((slot, ballot)).or_default();
        if revealed {
            entry.revealed |= bit(node);
        } else {
            entry.durable |= bit(node);
        }
        if let Some(v) = value {
            self.set_value(slot, ballot, v, node)?;
        }
        self.update_chosen(slot, ballot)
    }

    /// The value of `(slot, ballot)`: one per ballot and slot.
    fn set_value(&mut self, slot: Slot, ballot: Ballot, value: &Val, node: usize) -> Check {
        let entry = self.votes.entry((slot, ballot)).or_default();
        match &entry.value {
            Some(known) if known != value => fail(
                rules::ONE_VALUE,
                format!("slot {slot} under {ballot:?}: {known:?} and {value:?} (seen at n{node})"),
            ),
            Some(_) => Ok(()),
            None => {
                entry.value = Some(value.clone());
                self.update_chosen(slot, ballot)
            }
        }
    }

    /// A quorum voted `(slot, ballot)`: its value is chosen, and must be
    /// the only value chosen for the slot.
    fn update_chosen(&mut self, slot: Slot, ballot: Ballot) -> Check {
        let Some(entry) = self.votes.get(&(slot, ballot)) else {
            return Ok(());
        };
        let Some(value) = &entry.value else {
            return Ok(());
        };
        if ((entry.revealed | entry.durable).count_ones() as usize) < self.quorum {
            return Ok(());
        }
        match self.chosen.get(&slot) {
            Some((b, v)) if v != value => fail(
                rules::AGREEMENT,
                format!("two values chosen for slot {slot}: {v:?} under {b:?} and {value:?} under {ballot:?}"),
            ),
            Some(_) => Ok(()),
            None => {
                self.chosen.insert(slot, (ballot, value.clone()));
                Ok(())
            }
        }
    }

    /// The spec's `ChosenAt(s, b, ldr)`: a quorum voted `(s, b)` by
    /// `Accepted` messages, the leader's own vote counting once durable.
    fn chosen_at(&self, slot: Slot, ballot: Ballot, leader: usize) -> bool {
        self.votes
            .get(&(slot, ballot))
            .is_some_and(|v| ((v.revealed | (v.durable & bit(leader))).count_ones() as usize) >= self.quorum)
    }

    /// A value some node holds decided: equal to every other node's, equal
    /// to the chosen one, and proposed (or a no-op).
    fn check_decided(&mut self, i: usize, slot: Slot, value: &Val) -> Check {
        if let Some(known) = self.decided.get(&slot) {
            if known != value {
                return fail(
                    rules::AGREEMENT,
                    format!("n{i} holds slot {slot} decided as {value:?}; it was decided as {known:?}"),
                );
            }
            return Ok(());
        }
        match self.chosen.get(&slot) {
            Some((_, v)) if v == value => {}
            Some((b, v)) => {
                return fail(
                    rules::AGREEMENT,
                    format!("n{i} holds slot {slot} decided as {value:?}; {v:?} was chosen under {b:?}"),
                )
            }
            None => {
                return fail(
                    rules::AGREEMENT,
                    format!("n{i} holds slot {slot} decided as {value:?}, which no quorum voted"),
                )
            }
        }
        self.check_valid(i, slot, value)?;
        self.decided.insert(slot, value.clone());
        Ok(())
    }

    /// `Validity`: a client proposed it, or it is a no-op.
    fn check_valid(&self, i: usize, slot: Slot, value: &Val) -> Check {
        match value {
            Some(v) if !self.proposed.contains(v) => fail(
                rules::VALIDITY,
                format!("n{i} holds {v:?} for slot {slot}, which no leader took from a client"),
            ),
            _ => Ok(()),
        }
    }

    fn revealed_below(&self, i: usize, slot: Slot, below: Ballot) -> impl Iterator<Item = Ballot> + '_ {
        self.nodes[i]
            .revealed
            .get(&slot)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |b| *b < below)
    }
}
