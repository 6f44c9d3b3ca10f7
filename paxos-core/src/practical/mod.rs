//! Practical Paxos: the single-decree roles made fit for real use.
//!
//! On top of [`crate::essential`], this layer adds what the seed library's
//! `practical` module added, with its known bugs fixed:
//!
//! - **NACKs** for both phases, carrying the acceptor's promise, and
//!   **ballot bumping** whenever a higher ballot is seen (in promises,
//!   NACKs, prepares and accepts, including a NACK from the node's own
//!   acceptor, which the seed skipped);
//! - **leadership**: a proposer with a quorum of promises leads and
//!   proposes in phase 2 directly; **active/passive** roles (a passive role
//!   updates its state but sends nothing);
//! - **retransmission**: `prepare(false)` resends the current `Prepare`
//!   without a new ballot, `resend_accept` resends the `Accept`;
//! - **persist before reveal**: every change of durable state becomes an
//!   [`Output::Persist`] with a [`PersistSeq`]; every message queued after
//!   it is held inside the [`Outbox`] until the driver confirms that
//!   sequence number durable. The ordering is structural: no message can
//!   overtake a persist issued before it;
//! - **recovery** from the last durable state, and a [`Learner`] that
//!   knows which acceptors hold the final value.
//!
//! [`Node`] combines the three roles, as the seed's `practical.Node` did,
//! and is what applications run.
//!
//! ## Requests that arrive while a save is pending
//!
//! The seed dropped a prepare or accept that arrived while an earlier one
//! was being saved ("first wins"), and answered duplicates at once, before
//! the state reached disk. Here every request is processed at once: each
//! change issues a new persist, every reply waits for all persists issued
//! before it, and one confirmation releases everything up to its sequence
//! number (group commit). A duplicate is therefore never answered early,
//! and no request is dropped for being early.

mod acceptor;
mod learner;
mod node;
mod outbox;
mod proposer;

pub use acceptor::Acceptor;
pub use learner::Learner;
pub use node::Node;
pub use outbox::{Outbox, OUTBOX_CAPACITY};
pub use proposer::Proposer;

use crate::ballot::Ballot;
use crate::message::{Destination, Message, Proposal};
use core::fmt;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Identifies one persist request; confirming a sequence number confirms
/// every earlier one too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PersistSeq(pub u64);

/// What a node must find again after a restart: the acceptor's promise and
/// vote, and the highest round its proposer used, so that it never reuses a
/// ballot (a reused ballot could carry a second value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DurableState<V> {
    /// The highest ballot promised.
    pub promised: Option<Ballot>,
    /// The last proposal accepted.
    pub accepted: Option<Proposal<V>>,
    /// The highest round this node's proposer used (0: none).
    pub round: u32,
}

impl<V> Default for DurableState<V> {
    fn default() -> Self {
        DurableState {
            promised: None,
            accepted: None,
            round: 0,
        }
    }
}

/// Something the driver must do.
///
/// Every output but `Persist` leaves in the order it was produced, after
/// all persists issued before it are confirmed; so a `Resolved` or a
/// `LeadershipAcquired` may wait behind an unrelated save. That keeps one
/// rule for everything that leaves, at the cost of one save's latency.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Output<V> {
    /// Send `message` to `to`.
    Send {
        /// The destination.
        to: Destination,
        /// The message.
        message: Message<V>,
    },
    /// Make `state` durable, then call `persisted(seq)`. Each `state` is
    /// complete: saving only the newest one is enough.
    Persist {
        /// The sequence number to confirm.
        seq: PersistSeq,
        /// The state to save.
        state: DurableState<V>,
    },
    /// The learner saw a quorum of acceptors accept this proposal: its
    /// value is decided. Reported once.
    Resolved(Proposal<V>),
    /// This node's proposer holds a quorum of promises. Leadership is a
    /// belief, not a guarantee: another node may already have overtaken it.
    LeadershipAcquired,
}

/// Why a call was refused. A refused call changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The outbox is full: drain `poll_output` (and confirm persists) first.
    Busy,
    /// `persisted` named a sequence number that was never issued.
    UnknownPersist(PersistSeq),
    /// The proposer used the last round a ballot can hold.
    BallotsExhausted,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Busy => write!(f, "outbox full: drain outputs and confirm persists first"),
            Error::UnknownPersist(seq) => write!(f, "persist {} was never issued", seq.0),
            Error::BallotsExhausted => write!(f, "no ballot round left"),
        }
    }
}

impl core::error::Error for Error {}
