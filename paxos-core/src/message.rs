//! The single-decree Paxos messages, shared by the essential and practical
//! roles. The replica's messages live in [`crate::replica`].
//!
//! A message does not name its sender: the transport knows who sent a
//! datagram and passes that identity to the receiving role.

use crate::ballot::{Ballot, NodeId};
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// A value together with the ballot it was proposed or accepted under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Proposal<V> {
    /// The ballot.
    pub ballot: Ballot,
    /// The value.
    pub value: V,
}

impl<V> Proposal<V> {
    /// The pair `(ballot, value)`.
    pub const fn new(ballot: Ballot, value: V) -> Self {
        Proposal { ballot, value }
    }
}

/// A single-decree Paxos message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Message<V> {
    /// Phase 1a, broadcast by a proposer: "promise to ignore ballots below
    /// `ballot`".
    Prepare {
        /// The proposer's ballot.
        ballot: Ballot,
    },
    /// Phase 1b, from an acceptor to the proposer of `ballot`.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The proposal this acceptor accepted last, if any.
        accepted: Option<Proposal<V>>,
    },
    /// Phase 2a, broadcast by a proposer that holds a quorum of promises.
    Accept {
        /// The proposer's ballot.
        ballot: Ballot,
        /// The value to accept.
        value: V,
    },
    /// Phase 2b, broadcast by an acceptor to the learners.
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
        /// The value accepted.
        value: V,
    },
    /// A refused prepare, from an acceptor that promised a higher ballot.
    PrepareNack {
        /// The ballot refused.
        ballot: Ballot,
        /// The acceptor's promise, for the proposer to rise above.
        promised: Ballot,
    },
    /// A refused accept, from an acceptor that promised a higher ballot.
    AcceptNack {
        /// The ballot refused.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
    },
}

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Destination {
    /// Every node of the cluster, the sender included: the driver delivers
    /// the sender's own copy back to it.
    All,
    /// One node.
    Node(NodeId),
}
