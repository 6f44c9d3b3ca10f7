//! Practical Paxos: the single-decree roles made fit for real use.
//!
//! On top of [`crate::essential`], this layer adds:
//!
//! - **NACKs** for both phases, carrying the acceptor's promise, and
//!   **ballot bumping** whenever a higher ballot is seen (in promises,
//!   NACKs, prepares and accepts, including a NACK from the node's own
//!   acceptor);
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
//! [`Node`] combines the three roles and is what applications run.
//!
//! ## Requests that arrive while a save is pending
//!
//! Every request is processed at once: each change issues a new persist,
//! every reply waits for all persists issued before it, and one
//! confirmation releases everything up to its sequence number (group
//! commit). A duplicate is therefore never answered before the state it
//! reveals is durable, and no request is dropped for arriving while an
//! earlier one is being saved.

mod acceptor;
mod learner;
mod node;
mod outbox;
mod proposer;

pub use crate::persist_seq::PersistSeq;
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
