//! The functional layer: a Multi-Paxos replica.
//!
//! [`Replica`] replicates a log of values among the members of a cluster.
//! One node leads: it ran phase 1 once for every open slot and now runs
//! only phase 2, pipelining up to `W` slots and batching as many values per
//! message as the driver's buffer holds. Followers that stop hearing it
//! start an election after a randomized timeout; the winner re-proposes
//! whatever a quorum may have accepted and fills gaps with no-ops.
//!
//! # Driving it
//!
//! The replica is sans-IO. After any input — [`Replica::handle_message`],
//! [`Replica::handle_timeout`], [`Replica::propose`],
//! [`Replica::persisted`], [`Replica::install_snapshot`] — drain, in this
//! order:
//!
//! 1. [`Replica::poll_persist`]: records to append to durable storage.
//!    Write them, make them durable (one `fdatasync` may cover many), then
//!    call [`Replica::persisted`] with the returned sequence number.
//! 2. [`Replica::poll_transmit`]: encoded messages to send.
//! 3. [`Replica::poll_event`]: decided values, in slot order, and
//!    leadership changes.
//!
//! and sleep until [`Replica::poll_timeout`]. Persist before reveal is
//! structural: a promise or a vote is released by `poll_transmit` only
//! once every record queued before it has been confirmed durable.
//!
//! ```
//! use paxos_core::replica::{Config, Event, Replica};
//! use paxos_core::{Bytes, Instant, NodeId};
//!
//! type V = Bytes<16>;
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let now = Instant::ZERO;
//! let mut nodes: Vec<Replica<V, 3, 8>> = ids
//!     .iter()
//!     .map(|&id| {
//!         let config = Config::builder(id, &ids).initial_leader(NodeId(1)).build().unwrap();
//!         Replica::new(config, now).unwrap()
//!     })
//!     .collect();
//! nodes[0].propose(now, V::try_from("hello").unwrap()).unwrap();
//!
//! let mut buf = [0u8; 2048];
//! let mut decided = 0;
//! for _round in 0..10 {
//!     let mut wire = Vec::new();
//!     for node in nodes.iter_mut() {
//!         while let Some(p) = node.poll_persist(&mut buf) {
//!             // A real driver appends `&buf[..p.len]` to its log and syncs.
//!             node.persisted(now, p.seq).unwrap();
//!         }
//!         while let Some(t) = node.poll_transmit(&mut buf) {
//!             wire.push((node.id(), t.to, buf[..t.len].to_vec()));
//!         }
//!         while let Some(event) = node.poll_event() {
//!             if let Event::Decided { value: Some(v), .. } = event {
//!                 assert_eq!(v.as_slice(), b"hello");
//!                 decided += 1;
//!             }
//!         }
//!     }
//!     for (from, to, frame) in wire {
//!         for node in nodes.iter_mut().filter(|n| to.contains(n.id())) {
//!             node.handle_message(now, from, &frame);
//!         }
//!     }
//! }
//! // The leader decides at once; followers learn it with the next append
//! // or heartbeat.
//! assert!(decided >= 1);
//! ```

mod acceptor;
mod config;
pub(crate) mod fault;
mod leader;
mod learner;
mod log;
mod persist;
mod receive;
mod state;
mod transmit;
pub mod wire;

// This file is the API: every public method of `Replica`, in the order
// constructors, getters, inputs (`handle_*`, `propose`,
// `install_snapshot`), outputs (`poll_*`). The rules live beside it as
// private helpers: `acceptor`, `leader` (elections, the pipeline, leases),
// `learner` (watermarks, catch-up, snapshots); `receive` dispatches frames
// to them, `transmit` and `persist` turn their queues into messages and
// records, and `state` holds the private state types.

pub use config::{Config, ConfigBuilder, ConfigError, LeaseConfig};
pub use log::ProposalId;
pub use wire::{Header, PromisedEntry, Record, Slot};

use crate::ballot::{Ballot, NodeId, NodeSet};
use crate::codec::{DecodeError, EncodeError};
use crate::persist_seq::PersistSeq;
use crate::rng::Rng;
use crate::time::Instant;
use core::fmt;
use heapless::Deque;
use log::Log;
use postcard::experimental::max_size::MaxSize;
use serde::de::DeserializeOwned;
use serde::Serialize;
use state::{Campaign, Lead, Notice, Pending, PersistItem, Role, NOTICES, OUTBOX, PERSISTS};

/// What a replica can replicate: any value that can be cloned, compared,
/// encoded with a known maximum size, and decoded without borrowing.
///
/// A value is held by the replica as it is: [`crate::Bytes`], the
/// ready-made one, stores its bytes inline (no allocation, the same on a
/// microcontroller), so every move costs its capacity. A type that is a
/// handle — a reference-counted buffer on std, an index into the
/// application's own storage — costs a handle's move and its *size* only
/// where it is encoded (once per record, once per frame) and decoded: the
/// replica never copies a payload otherwise. Every type with postcard's
/// [`MaxSize`] is a value; any other implements this trait itself.
pub trait Value: Clone + Eq + Serialize + DeserializeOwned {
    /// The most bytes one value encodes to. The buffer constants
    /// ([`Replica::MAX_MESSAGE_SIZE`] and the others) are computed from it;
    /// decoding a longer one must fail.
    const MAX_ENCODED_LEN: usize;
}
impl<T: Clone + Eq + Serialize + DeserializeOwned + MaxSize> Value for T {
    const MAX_ENCODED_LEN: usize = T::POSTCARD_MAX_SIZE;
}

/// A message to send: `len` bytes at the start of the caller's buffer, to
/// every node in `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The recipients.
    pub to: NodeSet,
    /// The frame length.
    pub len: usize,
}

/// Records to make durable: `len` bytes at the start of the caller's
/// buffer, then [`Replica::persisted`] with `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersistRequest {
    /// What to confirm once the bytes are durable.
    pub seq: PersistSeq,
    /// The length of the record batch.
    pub len: usize,
}

/// Something the application should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a, V> {
    /// `slot` is decided. Reported once per slot per node lifetime, in slot
    /// order, and again after a restart from the applied slot given to
    /// [`Replica::recover`]. `value` is `None` for a no-op that filled a
    /// gap. `proposal` names the local proposal this value came from.
    Decided {
        /// The slot.
        slot: Slot,
        /// The value, `None` for a no-op.
        value: Option<&'a V>,
        /// The local proposal decided here, if any.
        proposal: Option<ProposalId>,
    },
    /// Another value took this proposal's slot after a leader change. The
    /// proposal is no longer tracked: it may still be decided later if a
    /// new leader re-proposes it, so retry idempotently.
    Displaced {
        /// The proposal.
        proposal: ProposalId,
    },
    /// This node leads now, with `ballot`.
    LeadershipAcquired {
        /// The leader's ballot.
        ballot: Ballot,
    },
    /// This node no longer leads.
    LeadershipLost,
    /// The leader this node knows of changed (reported after
    /// `LeadershipAcquired` / `LeadershipLost` when both apply).
    LeaderChanged {
        /// The new leader, if known.
        leader: Option<NodeId>,
    },
    /// `peer` needs slots from `from`, which have left this node's log:
    /// send it an application snapshot; it installs it with
    /// [`Replica::install_snapshot`].
    SnapshotNeeded {
        /// The node that is behind.
        peer: NodeId,
        /// The first slot it lacks.
        from: Slot,
    },
}

/// Why a proposal was refused at once. Nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProposeError {
    /// This node does not lead; `leader` is the one it knows of.
    NotLeader {
        /// A hint: the leader, if known.
        leader: Option<NodeId>,
    },
    /// The pipeline window is full: wait for decisions (and drain events).
    Busy,
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader: Some(l) } => write!(f, "not the leader; node {l} is"),
            ProposeError::NotLeader { leader: None } => {
                write!(f, "not the leader; no leader known")
            }
            ProposeError::Busy => write!(f, "the pipeline window is full"),
        }
    }
}

impl core::error::Error for ProposeError {}

/// What became of a frame handed to [`Replica::handle_message`].
///
/// # Why not a `Result`
///
/// A dropped frame is no error of the caller's: to the protocol it is a
/// message the network lost, and the sender retries. It is counted, so a
/// driver can watch [`Replica::counters`] rather than each return, and
/// most drivers have nothing to do about it. A `Result` is `#[must_use]`
/// and would force `let _ =` on every driver loop; `Handled` is not, so a
/// driver may ignore it, and one that logs drops writes
/// `if let Handled::Dropped(why) = replica.handle_message(..)`. It is not
/// an `Option<Dropped>` either: `None` meaning success would make
/// `.unwrap()` panic on every frame that was used.
/// [`Handled::into_result`] gives the `Result` where `?` is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Handled {
    /// The frame was taken in.
    Used,
    /// The frame was dropped, in whole or in part, and counted.
    Dropped(Dropped),
}

impl Handled {
    /// Why the frame was dropped, if it was.
    pub fn dropped(self) -> Option<Dropped> {
        match self {
            Handled::Used => None,
            Handled::Dropped(why) => Some(why),
        }
    }

    /// `Ok(())` if the frame was used, else why it was dropped.
    pub fn into_result(self) -> Result<(), Dropped> {
        match self {
            Handled::Used => Ok(()),
            Handled::Dropped(why) => Err(why),
        }
    }
}

/// Why an input was dropped. Every drop is also counted in [`Counters`].
///
/// [`Replica::handle_message`] reports it in a [`Handled`], which may be
/// ignored; [`Replica::install_snapshot`] in a `Result<(), Dropped>`,
/// which must be used: its only drop, [`Dropped::Busy`], means the log did
/// not jump although the application's state already did, and nobody else
/// will retry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Dropped {
    /// The sender is not a member, or is this node.
    UnknownPeer(NodeId),
    /// The frame did not decode. An append or a catch-up whose values stop
    /// decoding part-way has had its valid leading values used: each value
    /// stands alone, so a prefix is a smaller valid message.
    Malformed(DecodeError),
    /// The replica's queues are full: a frame's sender will retry; a
    /// snapshot's installer must.
    Busy,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::UnknownPeer(n) => write!(f, "message from unknown peer {n}"),
            Dropped::Malformed(e) => write!(f, "malformed message: {e}"),
            Dropped::Busy => write!(f, "replica busy"),
        }
    }
}

impl core::error::Error for Dropped {}

/// Why a restart could not use the records given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RecoverError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// A record batch did not decode: storage must hand over only batches
    /// it verified (checksums), so this is corruption.
    Corrupt(DecodeError),
    /// A record names a slot the window cannot hold.
    OutOfWindow(Slot),
}

impl fmt::Display for RecoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoverError::Config(e) => write!(f, "invalid configuration: {e}"),
            RecoverError::Corrupt(e) => write!(f, "corrupt record: {e}"),
            RecoverError::OutOfWindow(s) => {
                write!(f, "record for slot {s} is outside the log window")
            }
        }
    }
}

impl core::error::Error for RecoverError {}

/// `persisted` named a sequence number never issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownPersist(pub PersistSeq);

impl fmt::Display for UnknownPersist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "persist {} was never issued", self.0 .0)
    }
}

impl core::error::Error for UnknownPersist {}

/// What the replica dropped or refused, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Frames from non-members.
    pub unknown_peer: u64,
    /// Frames that did not decode.
    pub malformed: u64,
    /// Inputs dropped because queues were full.
    pub busy: u64,
    /// Replies dropped because the outbox was full.
    pub outbox_full: u64,
    /// Messages dropped because the caller's buffer could not hold them.
    pub buffer_too_small: u64,
    /// Values refused because they were beyond the log window.
    pub out_of_window: u64,
    /// Messages that contradicted the protocol (ignored).
    pub invalid: u64,
    /// Messages this node no longer needs (decided values offered to a
    /// node that leads or campaigns).
    pub stale: u64,
}

/// A Multi-Paxos replica: see the [module documentation](self).
///
/// `N` is the largest cluster supported, `W` the log window: the slots in
/// flight and retained in memory.
///
/// `Eq` and `Hash` cover the whole state, so model checkers can store and
/// compare replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica<V, const N: usize, const W: usize> {
    config: Config<N>,
    me: usize,
    rng: Rng,
    now: Instant,
    /// The acceptor's promise. The log holds its votes.
    promised: Option<Ballot>,
    log: Log<V, W>,
    role: Role,
    leader: Option<NodeId>,
    last_heard: Instant,
    election_at: Instant,
    /// After a restart, no promise before this (leases).
    quiet_until: Instant,
    /// This node's storage was lost: it learns, never votes or leads.
    amnesiac: bool,
    /// The last catch-up request: the slot asked for and when.
    catch_up: Option<(Slot, Instant)>,
    /// The highest ballot seen anywhere: the next campaign goes above it.
    seen: Option<Ballot>,
    campaign: Campaign<V, W>,
    lead: Lead<N>,
    issued: PersistSeq,
    durable: PersistSeq,
    /// The newest sequence number whose records were all handed out.
    written: PersistSeq,
    persists: Deque<(PersistSeq, PersistItem), PERSISTS>,
    /// A commit-watermark record queued alone waits until then for other
    /// records to share its batch and its sync (it is optional for safety).
    commit_wait: Option<Instant>,
    /// The leader's own votes, counted once durable: (seq, ballot, slots).
    self_votes: Deque<(PersistSeq, Ballot, Slot, Slot), PERSISTS>,
    outbox: Deque<(PersistSeq, Pending), OUTBOX>,
    notices: Deque<Notice, NOTICES>,
    displaced: Deque<ProposalId, W>,
    next_proposal: u64,
    counters: Counters,
}

impl<V: Value, const N: usize, const W: usize> Replica<V, N, W> {
    /// The smallest buffer [`Replica::poll_transmit`] never drops a message
    /// for: a frame holding one item of the widest kind (a promised entry).
    /// Larger buffers carry more: an append or a learn takes as many
    /// values as fit, and a promise that does not fit one frame continues
    /// in the next ones (see [`Header::Promise`]).
    pub const MAX_MESSAGE_SIZE: usize = Self::message_buffer_for(V::MAX_ENCODED_LEN);

    /// The smallest buffer [`Replica::poll_persist`] can always fill: one
    /// record with one value.
    pub const MIN_PERSIST_BUFFER: usize = Self::persist_buffer_for(V::MAX_ENCODED_LEN);

    /// The largest checkpoint [`Replica::write_checkpoint`] writes: every
    /// slot of the window holding a value of the widest encoding. For a
    /// handle type whose values are rarely that wide, size the buffer from
    /// what the values really take, and grow it on
    /// [`EncodeError::BufferTooSmall`].
    pub const MAX_CHECKPOINT_SIZE: usize = (4 * <Record as MaxSize>::POSTCARD_MAX_SIZE + 1).saturating_add(
        W.saturating_mul((<Record as MaxSize>::POSTCARD_MAX_SIZE + 5 + 1).saturating_add(V::MAX_ENCODED_LEN)),
    );

    /// [`Replica::MAX_MESSAGE_SIZE`] for a driver that knows no value it
    /// proposes or receives encodes to more than `value_len` bytes (an
    /// application limit below the type's): a frame of one promised entry
    /// (slot, ballot, option tag, value) behind the widest header.
    pub const fn message_buffer_for(value_len: usize) -> usize {
        let entry = <Slot as MaxSize>::POSTCARD_MAX_SIZE + <Ballot as MaxSize>::POSTCARD_MAX_SIZE + 1;
        (1 + <Header as MaxSize>::POSTCARD_MAX_SIZE + 5 + entry).saturating_add(value_len)
    }

    /// [`Replica::MIN_PERSIST_BUFFER`] for values of at most `value_len`
    /// encoded bytes (see [`Replica::message_buffer_for`]).
    pub const fn persist_buffer_for(value_len: usize) -> usize {
        (1 + <Record as MaxSize>::POSTCARD_MAX_SIZE + 5 + 1).saturating_add(value_len)
    }

    /// The most undecided slots a leader keeps in flight: half the window,
    /// so that a follower still holding the previous half (decided, not yet
    /// delivered to its application) has room for the next.
    pub const MAX_IN_FLIGHT: u64 = if W > 1 { (W / 2) as u64 } else { 1 };

    // Constructors.

    /// The first boot of a node of a new cluster, at time `now`: call it
    /// only when no node of the cluster has ever run (or when this node's
    /// storage was never made durable). With an initial leader
    /// configured, that node leads at once with round 0, skipping phase 1:
    /// safe only because nothing can have been accepted before. A node
    /// that ran before and lost its storage goes through
    /// [`Replica::recover`] with no records instead: it comes back as an
    /// amnesiac learner (see [`Replica::is_amnesiac`]).
    ///
    /// Fails only on an invalid configuration. The initial leader comes
    /// back with its promise of round 0 and its leadership events already
    /// queued: drain the outputs as after an input.
    pub fn new(config: Config<N>, now: Instant) -> Result<Self, ConfigError> {
        let mut replica = Self::blank(config, now)?;
        replica.start_fresh();
        Ok(replica)
    }

    /// A replica restarted from its durable records, in the order they
    /// were written. With no records at all, the node is taken to have
    /// lost its storage: it never promises, accepts, campaigns or leads
    /// again, and learns decided values from the others
    /// ([`Replica::is_amnesiac`]). `applied` is the first slot the
    /// application has not applied (durably, or through its snapshot):
    /// decided values still in the log window are delivered again from
    /// there by [`Replica::poll_event`]. Decided values that replay pushes
    /// out of the window are lost to the application: use
    /// [`Replica::recover_with`] unless `applied` is recent.
    ///
    /// Fails on an invalid configuration, or on records that do not
    /// decode, contradict each other or do not fit the window
    /// (corruption). The restarted replica may have records queued (an
    /// amnesiac's mark, an applied slot taken as a snapshot) and decided
    /// values to deliver: drain the outputs as after an input.
    pub fn recover<'r>(
        config: Config<N>,
        now: Instant,
        batches: impl IntoIterator<Item = &'r [u8]>,
        applied: Slot,
    ) -> Result<Self, RecoverError> {
        Self::recover_with(config, now, batches, applied, |_, _| {})
    }

    /// As [`Replica::recover`], and hands every decided value from
    /// `applied` that replay pushes out of the window to `deliver`, in slot
    /// order; the rest follow through [`Replica::poll_event`]. Together
    /// they deliver every decided slot from `applied` exactly once (slots a
    /// snapshot record covers excepted).
    pub fn recover_with<'r>(
        config: Config<N>,
        now: Instant,
        batches: impl IntoIterator<Item = &'r [u8]>,
        applied: Slot,
        mut deliver: impl FnMut(Slot, Option<&V>),
    ) -> Result<Self, RecoverError> {
        let mut recovery = Self::recovery(config, now, applied)?;
        for batch in batches {
            recovery.replay(batch, &mut deliver)?;
        }
        recovery.finish()
    }

    /// Starts a restart one batch at a time, for storage that cannot hold
    /// every batch in memory at once (flash read through a small buffer):
    /// feed [`Recovery::replay`] each batch in the order written, then call
    /// [`Recovery::finish`]. The result is the same as
    /// [`Replica::recover_with`] over the same batches. Fails only on an
    /// invalid configuration.
    pub fn recovery(config: Config<N>, now: Instant, applied: Slot) -> Result<Recovery<V, N, W>, RecoverError> {
        let replica = Self::blank(config, now).map_err(RecoverError::Config)?;
        Ok(Recovery {
            replica,
            applied,
            replayed: false,
        })
    }

    // Getters. They never change the replica; unless a getter says
    // otherwise, its value may change after any input (`handle_*`,
    // `propose`, `install_snapshot`, `persisted`).

    /// This node's identity. Never changes.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The configuration the replica was built with. Never changes.
    pub fn config(&self) -> &Config<N> {
        &self.config
    }

    /// Drop and refusal counters, from zero at [`Replica::new`] or at the
    /// restart. Each only grows. Every [`Dropped`] an input returns is
    /// counted here too, so a driver may ignore those returns and watch
    /// these instead.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Whether this node leads. May change after any input;
    /// [`Event::LeadershipAcquired`] and [`Event::LeadershipLost`] report
    /// each change.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// Whether this node is running phase 1 for a ballot of its own. May
    /// change after any input; no event reports it.
    pub fn is_candidate(&self) -> bool {
        self.role == Role::Candidate
    }

    /// The leader this node knows of (itself while it leads), `None` while
    /// it knows none. A hint, which may be stale: only the leader's own
    /// [`Replica::propose`] can tell. May change after any input;
    /// [`Event::LeaderChanged`] reports each change.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Whether this node restarted without its storage: what it promised
    /// and accepted before is lost, so counting its promises or votes
    /// again could let two values be chosen for one slot. It only learns
    /// decided values; it can vote again only as a new member. Set by
    /// [`Replica::recover`] with no records (and by replaying the record
    /// that says so); never cleared.
    pub fn is_amnesiac(&self) -> bool {
        self.amnesiac
    }

    /// The highest ballot this node's acceptor promised, `None` before its
    /// first promise. Never decreases. It may be ahead of storage: a
    /// message that reveals it leaves only once [`Replica::persisted`]
    /// confirmed its record.
    pub fn promised(&self) -> Option<Ballot> {
        self.promised
    }

    /// Every slot below this one is decided (here, or by a snapshot).
    /// Never decreases; may grow after any input.
    pub fn decided(&self) -> Slot {
        self.log.decided()
    }

    /// The next slot [`Replica::poll_event`] reports in [`Event::Decided`]:
    /// every decided slot below it was reported, or covered by a snapshot
    /// or by the `applied` slot of a restart. At most [`Replica::decided`];
    /// grows as events are polled and with snapshots.
    pub fn delivered(&self) -> Slot {
        self.log.delivered()
    }

    /// The lowest slot still in memory: every slot below it is decided,
    /// and was delivered or covered by a snapshot or a restart's
    /// `applied` slot. Grows as the window slides and with snapshots; see
    /// [`Replica::write_checkpoint`] for compacting storage below it.
    pub fn log_start(&self) -> Slot {
        self.log.start()
    }

    /// Drops from memory the delivered slots below `slot`, as the window
    /// does when it slides, but now: for a driver that bounds the bytes its
    /// window holds when values are large. Never drops a slot not yet
    /// delivered, nor one whose record is still queued. A peer that later
    /// asks for a dropped slot gets [`Event::SnapshotNeeded`] instead of the
    /// values from memory. Returns the new [`Replica::log_start`].
    pub fn release_delivered(&mut self, slot: Slot) -> Slot {
        // A queued record is encoded from its cell when written.
        let floor = if self.config.injected(fault::Bug::ReleaseQueuedSlots) {
            slot
        } else {
            self.persist_floor()
        };
        self.log.advance_start(slot.min(floor));
        self.log.start()
    }

    /// The decided value of `slot`, while it is in memory: `None` if the
    /// slot is not decided yet or has left memory, `Some(None)` for a
    /// no-op.
    pub fn decided_value(&self, slot: Slot) -> Option<Option<&V>> {
        if slot >= self.log.decided() {
            return None;
        }
        self.log.get(slot).map(|e| e.value.as_ref())
    }

    /// What this node holds for `slot` while it is in memory: the ballot
    /// its acceptor accepted the value under (`None` for a decided value
    /// learned from another node, never voted for here) and the value
    /// (`None` for a no-op). For checkers that hold the replica to its
    /// specification: an undecided entry may still be replaced.
    pub fn entry(&self, slot: Slot) -> Option<(Option<Ballot>, Option<&V>)> {
        self.log.get(slot).map(|e| (e.ballot, e.value.as_ref()))
    }

    /// Whether the leader may answer reads from its applied state without
    /// a round trip: it leads, holds a lease, has re-proposed everything
    /// earlier leaders left open, and everything decided was delivered.
    /// The answer holds at `now` only, and only once every event was
    /// polled: ask at the moment of each read.
    pub fn can_read_locally(&self, now: Instant) -> bool {
        self.role == Role::Leader
            && self.lease_valid(now)
            && self.log.decided() >= self.lead.recovery_end
            && self.log.delivered() >= self.log.decided()
    }

    // Inputs. After each one, drain `poll_persist`, `poll_transmit` and
    // `poll_event` until they return `None`, then ask `poll_timeout`.
    // Time never goes back: a `now` earlier than one seen before counts
    // as the latest.

    /// Handles a frame received from `from`. Call it for every frame the
    /// transport delivers, in any order, duplicated or not: the protocol
    /// tolerates a lossy, reordering network.
    ///
    /// Returns whether the frame was used, or why it was dropped in whole
    /// or in part. Every drop is also counted in [`Replica::counters`],
    /// and the return may be ignored: see [`Handled`].
    pub fn handle_message(&mut self, now: Instant, from: NodeId, frame: &[u8]) -> Handled {
        self.now = self.now.max(now);
        match self.receive(from, frame) {
            Ok(()) => Handled::Used,
            Err(why) => Handled::Dropped(why),
        }
    }

    /// Acts on the passage of time: elections, heartbeats,
    /// retransmissions, and the end of a commit watermark's wait for
    /// company. Call it once [`Replica::poll_timeout`] is reached; an
    /// early or extra call is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let now = self.now;
        match self.role {
            Role::Leader => self.leader_tick(now),
            Role::Follower | Role::Candidate => {
                if now >= self.election_at {
                    if self.amnesiac {
                        self.reset_election_timer();
                    } else {
                        self.start_campaign();
                    }
                }
            }
        }
    }

    /// Appends `value` to the log if this node leads. Returns at once with
    /// the proposal's id: its outcome arrives later through
    /// [`Replica::poll_event`] as [`Event::Decided`] naming the id, or as
    /// [`Event::Displaced`] (the value may still be decided: retry
    /// idempotently).
    ///
    /// Refused, with nothing queued, when this node does not lead
    /// ([`ProposeError::NotLeader`], with a hint) or its pipeline is full
    /// ([`ProposeError::Busy`]: drain, and retry after decisions).
    pub fn propose(&mut self, now: Instant, value: V) -> Result<ProposalId, ProposeError> {
        self.now = self.now.max(now);
        self.append_proposal(value)
    }

    /// The application installed a snapshot covering every slot below
    /// `slot`: the log continues from there, and a node that leads or
    /// campaigns steps down. Proposals tracked below `slot` are reported
    /// [`Event::Displaced`]; no [`Event::Decided`] is reported below it.
    ///
    /// Nothing to do (`Ok`) if `slot` is not above [`Replica::decided`].
    /// [`Dropped::Busy`] when the persist queue is full: nothing changed,
    /// and since the application's state has already moved, the caller
    /// must drain [`Replica::poll_persist`] and install again.
    pub fn install_snapshot(&mut self, now: Instant, slot: Slot) -> Result<(), Dropped> {
        self.now = self.now.max(now);
        self.jump_to_snapshot(slot)
    }

    // Outputs, in the order to drain them.

    /// Writes queued records into `buf` as one batch: append it to durable
    /// storage, make it durable (one sync may cover many batches), then
    /// call [`Replica::persisted`] with the returned sequence number. Call
    /// it until `None` after every input. `buf` should hold at least
    /// [`Replica::MIN_PERSIST_BUFFER`] bytes; a record too large for it is
    /// split across batches, and a buffer too small for any record is
    /// counted in [`Counters::buffer_too_small`].
    ///
    /// A lone commit watermark may wait, for at most a heartbeat interval,
    /// for other records to share its sync: `None` then, and
    /// [`Replica::poll_timeout`] includes the end of the wait.
    #[must_use = "the batch must be written, made durable and confirmed with `persisted`, or the replies waiting on it never leave"]
    pub fn poll_persist(&mut self, buf: &mut [u8]) -> Option<PersistRequest> {
        self.write_batch(buf)
    }

    /// The driver made every batch up to `seq` durable: batches are
    /// confirmed in order, and confirming one confirms every earlier one.
    /// This is an input: the replies that waited on those records may
    /// now leave and this node's own promise and votes count, so drain
    /// after it. Confirming a batch twice is harmless;
    /// [`UnknownPersist`] for a `seq` [`Replica::poll_persist`] never
    /// returned (a driver bug; nothing changed).
    pub fn persisted(&mut self, now: Instant, seq: PersistSeq) -> Result<(), UnknownPersist> {
        self.now = self.now.max(now);
        if seq > self.written {
            return Err(UnknownPersist(seq));
        }
        if seq <= self.durable {
            return Ok(());
        }
        self.durable = seq;
        self.on_durable();
        Ok(())
    }

    /// Writes one batch that alone restores this replica's state: its
    /// promise, its watermarks and every slot in memory. For compaction:
    /// once the application has durably applied (or snapshotted) every
    /// slot below [`Replica::log_start`], storage may replace all earlier
    /// batches with this one. Changes nothing; fails only when `buf` is
    /// too small ([`Replica::MAX_CHECKPOINT_SIZE`] always suffices).
    pub fn write_checkpoint(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        self.checkpoint(buf)
    }

    /// Writes the next message into `buf` and says whom to send it to.
    /// Call it until `None` after every input. A message polled is out of
    /// the replica: send it, or it is lost (which the protocol survives).
    /// Persist before reveal: a promise or a vote stays queued until
    /// [`Replica::persisted`] confirmed every record queued before it.
    /// `buf` should hold [`Replica::MAX_MESSAGE_SIZE`] bytes (or
    /// [`Replica::message_buffer_for`] the driver's own value limit): then
    /// nothing is dropped for its size — appends and catch-ups carry as
    /// many values as fit, and a promise that does not fit leaves in
    /// parts. In a smaller buffer, a message of which not one value fits
    /// is dropped and counted.
    #[must_use = "a polled message has left the replica: send it, or it is lost"]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        self.next_transmit(buf)
    }

    /// The next thing the application should know. Call it until `None`
    /// after every input: leadership notices and snapshot requests come
    /// first, then displaced proposals, then decided values in slot order.
    /// An event polled is not reported again (decided values are, after a
    /// restart, from the applied slot given to [`Replica::recover`]).
    #[must_use = "a polled event is not reported again"]
    pub fn poll_event(&mut self) -> Option<Event<'_, V>> {
        if let Some(notice) = self.notices.pop_front() {
            return Some(match notice {
                Notice::Acquired(ballot) => Event::LeadershipAcquired { ballot },
                Notice::Lost => Event::LeadershipLost,
                Notice::Changed(leader) => Event::LeaderChanged { leader },
                Notice::SnapshotNeeded(peer, from) => Event::SnapshotNeeded { peer, from },
            });
        }
        if let Some(proposal) = self.displaced.pop_front() {
            return Some(Event::Displaced { proposal });
        }
        let slot = self.log.next_to_deliver()?;
        let entry = self.log.get_mut(slot);
        let proposal = entry.and_then(|e| e.origin.take());
        let value = self.log.get(slot).and_then(|e| e.value.as_ref());
        Some(Event::Decided { slot, value, proposal })
    }

    /// When to call [`Replica::handle_timeout`] next. It changes after
    /// every input: ask again once the outputs are drained. A deadline in
    /// the past means at once.
    #[must_use = "the deadline for `handle_timeout`: asking alone does nothing"]
    pub fn poll_timeout(&self) -> Instant {
        let deadline = match self.role {
            Role::Leader => self.leader_deadline(),
            Role::Follower | Role::Candidate => self.election_at,
        };
        match self.commit_wait {
            Some(at) if !self.persists.is_empty() => deadline.min(at),
            _ => deadline,
        }
    }
}

/// A replica being restarted from its records: see [`Replica::recovery`].
#[derive(Debug)]
pub struct Recovery<V, const N: usize, const W: usize> {
    replica: Replica<V, N, W>,
    applied: Slot,
    /// Whether any record was replayed.
    replayed: bool,
}

impl<V: Value, const N: usize, const W: usize> Recovery<V, N, W> {
    /// Applies the next batch, in the order written. Decided values from
    /// the applied slot that replay pushes out of the window go to
    /// `deliver`, in slot order; the rest follow through
    /// [`Replica::poll_event`] after [`Recovery::finish`]. A batch that
    /// fails leaves the recovery unusable: storage is corrupt.
    pub fn replay(&mut self, batch: &[u8], mut deliver: impl FnMut(Slot, Option<&V>)) -> Result<(), RecoverError> {
        if self.replica.config.injected(fault::Bug::ForgetOnRestart) {
            return Ok(());
        }
        self.replayed |= batch.len() > 1;
        self.replica.replay(batch, self.applied, &mut deliver)
    }

    /// The restarted replica, once every batch was replayed; as
    /// [`Replica::recover`] from there.
    pub fn finish(self) -> Result<Replica<V, N, W>, RecoverError> {
        self.replica.finish_recovery(self.applied, self.replayed)
    }
}

#[cfg(test)]
mod seed_functional_tests;
#[cfg(test)]
mod tests;
