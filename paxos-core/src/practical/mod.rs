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
//! - **persist before reveal**: every change of durable state becomes a
//!   [`Persist`] with a [`PersistSeq`]; every [`Transmit`] and [`Event`]
//!   queued after it is held inside the [`Outbox`] until the driver
//!   confirms that sequence number durable. The ordering is structural:
//!   nothing can overtake a persist issued before it;
//! - **recovery** from the last durable state, and a [`Learner`] that
//!   knows which acceptors hold the final value.
//!
//! [`Node`] combines the three roles and is what applications run.
//!
//! ## Driving a node
//!
//! [`Node`] has the shape of [`crate::replica::Replica`] (and of
//! quinn-proto): inputs go in through methods, outputs come out of three
//! queues, each drained on its own. After any input —
//! [`Node::handle_message`], [`Node::set_proposal`], [`Node::prepare`],
//! [`Node::resend_accept`], [`Node::persisted`] — drain, in this order:
//!
//! 1. [`Node::poll_persist`]: states to make durable. Save them (each
//!    state is complete: saving the newest is enough), then confirm with
//!    [`Node::persisted`], which may release held transmits and events;
//! 2. [`Node::poll_transmit`]: messages to send;
//! 3. [`Node::poll_event`]: decisions and leadership for the application.
//!
//! until all three return `None`. A persist leaves at once; a transmit or
//! an event leaves, in the order it was queued within its own queue, only
//! once every persist issued before it is confirmed
//! ([`PersistSeq::released_by`]). Confirming inside the persist drain, as
//! the example on [`Node`] does, leaves nothing behind after one pass; a
//! driver that confirms later (after its `fsync`) drains again after
//! `persisted`.
//!
//! The standalone roles ([`Proposer`], [`Acceptor`], [`Learner`]) write
//! into an [`Outbox`] the caller owns, which has the same three polls.
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

/// A state to make durable, from [`Node::poll_persist`] or
/// [`Outbox::poll_persist`]: save `state`, then confirm `seq` with
/// `persisted`. Each `state` is complete: saving only the newest one is
/// enough, and confirming a sequence number confirms every earlier one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Persist<V> {
    /// The sequence number to confirm once `state` is durable.
    pub seq: PersistSeq,
    /// The state to save.
    pub state: DurableState<V>,
}

/// A message to send, from [`Node::poll_transmit`] or
/// [`Outbox::poll_transmit`]: send `message` to `to`.
/// [`Destination::All`] includes the sending node itself.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Transmit<V> {
    /// The destination.
    pub to: Destination,
    /// The message.
    pub message: Message<V>,
}

/// Something the application should know, from [`Node::poll_event`] or
/// [`Outbox::poll_event`].
///
/// Events leave in the order they were produced, each after every persist
/// issued before it is confirmed, as transmits do; so an event may wait
/// behind an unrelated save. That keeps one rule for everything that
/// reveals state, at the cost of one save's latency.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event<V> {
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
    /// The outbox is full: drain `poll_persist`, `poll_transmit` and
    /// `poll_event` (and confirm persists) first.
    Busy,
    /// `persisted` named a sequence number that was never issued.
    UnknownPersist(PersistSeq),
    /// The proposer used the last round a ballot can hold.
    BallotsExhausted,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Busy => write!(f, "outbox full: drain the polls and confirm persists first"),
            Error::UnknownPersist(seq) => write!(f, "persist {} was never issued", seq.0),
            Error::BallotsExhausted => write!(f, "no ballot round left"),
        }
    }
}

impl core::error::Error for Error {}
