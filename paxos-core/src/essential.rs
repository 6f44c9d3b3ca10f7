//! Essential Paxos: single-decree Proposer, Acceptor and Learner in their
//! plainest form.
//!
//! This module is for reading. It keeps only what makes Paxos safe, so the
//! algorithm can be followed in one sitting and contrasted with
//! [`crate::practical`], which adds what real use needs: NACKs, leadership,
//! retransmission and, above all, persistence. Nothing here is durable, so
//! an acceptor that restarts forgets its promises: do not deploy it.
//!
//! Each method returns the message to send, if any, and the caller moves it:
//! a [`Proposer`]'s messages go to every acceptor, an [`Acceptor`]'s promise
//! goes back to the proposer that asked and its `Accepted` goes to every
//! learner.
//!
//! ```
//! use paxos_core::essential::{Acceptor, Learner, Proposer};
//! use paxos_core::{Ballot, Message, NodeId};
//!
//! let ids = [NodeId(0), NodeId(1), NodeId(2)];
//! let mut proposer = Proposer::new(ids[0], 2);
//! let mut acceptors = [Acceptor::new(), Acceptor::new(), Acceptor::new()];
//! let mut learner: Learner<&str, 3> = Learner::new(2);
//!
//! proposer.set_proposal("x");
//! let Message::Prepare { ballot } = proposer.prepare() else { unreachable!() };
//! let mut accept = None;
//! for (id, acceptor) in ids.iter().zip(&mut acceptors) {
//!     if let Some(Message::Promise { ballot, accepted }) = acceptor.receive_prepare(ballot) {
//!         accept = accept.or(proposer.receive_promise(*id, ballot, accepted));
//!     }
//! }
//! let Some(Message::Accept { ballot, value }) = accept else { unreachable!() };
//! for (id, acceptor) in ids.iter().zip(&mut acceptors) {
//!     if let Some(Message::Accepted { ballot, value }) = acceptor.receive_accept(ballot, value) {
//!         learner.receive_accepted(*id, ballot, value);
//!     }
//! }
//! assert_eq!(learner.final_value(), Some(&"x"));
//! ```

use crate::ballot::{admits, Ballot, NodeId, NodeSet};
use crate::message::{Message, Proposal};
use heapless::LinearMap;

/// Drives one value towards a decision.
#[derive(Clone, Debug)]
pub struct Proposer<V> {
    pub(crate) id: NodeId,
    pub(crate) quorum: usize,
    /// The value to propose: ours, or one adopted from a promise.
    pub(crate) value: Option<V>,
    /// The ballot of the current round, once `prepare` was called.
    pub(crate) ballot: Option<Ballot>,
    /// The round of the next ballot. It saturates at `u32::MAX`, where a
    /// real proposer must stop: [`crate::practical::Proposer`] does.
    pub(crate) next_round: u32,
    pub(crate) promises: NodeSet,
    /// The highest ballot any promise reported as accepted: its value is
    /// the only one this proposer may propose.
    pub(crate) highest_accepted: Option<Ballot>,
}

impl<V: Clone> Proposer<V> {
    /// A proposer with identity `id` that needs `quorum` promises.
    pub fn new(id: NodeId, quorum: usize) -> Self {
        Proposer {
            id,
            quorum,
            value: None,
            ballot: None,
            next_round: 1,
            promises: NodeSet::new(),
            highest_accepted: None,
        }
    }

    /// Sets the value to propose, unless there is one already (ours or one
    /// adopted from a promise): a proposer never changes its mind.
    pub fn set_proposal(&mut self, value: V) {
        if self.value.is_none() {
            self.value = Some(value);
        }
    }

    /// Starts a new round with a ballot higher than any this proposer used:
    /// the returned `Prepare` goes to every acceptor.
    pub fn prepare(&mut self) -> Message<V> {
        let ballot = Ballot::new(self.next_round, self.id);
        self.next_round = self.next_round.saturating_add(1);
        self.ballot = Some(ballot);
        self.promises.clear();
        Message::Prepare { ballot }
    }

    /// Counts a promise. Once exactly a quorum has promised and there is a
    /// value, returns the `Accept` for every acceptor.
    pub fn receive_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        accepted: Option<Proposal<V>>,
    ) -> Option<Message<V>> {
        if Some(ballot) != self.ballot || !self.promises.insert(from) {
            return None;
        }
        // The safety rule: if any acceptor of the quorum accepted a value,
        // propose the one with the highest ballot instead of our own.
        if let Some(prev) = accepted {
            if Some(prev.ballot) > self.highest_accepted {
                self.highest_accepted = Some(prev.ballot);
                self.value = Some(prev.value);
            }
        }
        if self.promises.len() == self.quorum {
            let value = self.value.clone()?;
            return Some(Message::Accept { ballot, value });
        }
        None
    }

    /// The value this proposer will propose.
    pub fn proposed_value(&self) -> Option<&V> {
        self.value.as_ref()
    }

    /// The ballot of the current round.
    pub fn ballot(&self) -> Option<Ballot> {
        self.ballot
    }

    /// How many promises the current round has.
    pub fn promise_count(&self) -> usize {
        self.promises.len()
    }

    /// The highest previously accepted ballot reported by any promise.
    pub fn highest_accepted(&self) -> Option<Ballot> {
        self.highest_accepted
    }
}

/// Votes, and keeps its promises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acceptor<V> {
    pub(crate) promised: Option<Ballot>,
    pub(crate) accepted: Option<Proposal<V>>,
}

impl<V: Clone> Default for Acceptor<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone> Acceptor<V> {
    /// An acceptor that has promised and accepted nothing.
    pub const fn new() -> Self {
        Acceptor {
            promised: None,
            accepted: None,
        }
    }

    /// Promises `ballot` if it is at least the current promise; the
    /// returned `Promise` goes back to the proposer. Lower ballots are
    /// ignored (the practical acceptor NACKs them).
    pub fn receive_prepare(&mut self, ballot: Ballot) -> Option<Message<V>> {
        if !admits(self.promised, ballot) {
            return None;
        }
        self.promised = Some(ballot);
        Some(Message::Promise {
            ballot,
            accepted: self.accepted.clone(),
        })
    }

    /// Accepts `value` unless a higher ballot was promised; the returned
    /// `Accepted` goes to every learner.
    pub fn receive_accept(&mut self, ballot: Ballot, value: V) -> Option<Message<V>> {
        if !admits(self.promised, ballot) {
            return None;
        }
        self.promised = Some(ballot);
        self.accepted = Some(Proposal::new(ballot, value.clone()));
        Some(Message::Accepted { ballot, value })
    }

    /// The highest ballot promised.
    pub fn promised(&self) -> Option<Ballot> {
        self.promised
    }

    /// The last proposal accepted.
    pub fn accepted(&self) -> Option<&Proposal<V>> {
        self.accepted.as_ref()
    }
}

/// Learns the decision: a value is chosen once a quorum of acceptors
/// accepted it under the same ballot.
///
/// `N` bounds how many acceptors it tracks; an `Accepted` from an acceptor
/// beyond the first `N` is ignored.
#[derive(Clone, Debug)]
pub struct Learner<V, const N: usize> {
    quorum: usize,
    /// Each acceptor's latest vote. An acceptor that moves to a higher
    /// ballot no longer counts for the lower one.
    votes: LinearMap<NodeId, Proposal<V>, N>,
    decided: Option<Proposal<V>>,
}

impl<V: Clone + Eq, const N: usize> Learner<V, N> {
    /// A learner that needs `quorum` matching votes.
    pub fn new(quorum: usize) -> Self {
        Learner {
            quorum,
            votes: LinearMap::new(),
            decided: None,
        }
    }

    /// Records a vote. Returns the decision the first time a quorum of
    /// acceptors voted for one ballot; later votes change nothing.
    pub fn receive_accepted(&mut self, from: NodeId, ballot: Ballot, value: V) -> Option<&Proposal<V>> {
        if self.decided.is_some() {
            return None;
        }
        // Only a vote strictly newer than this acceptor's last one counts:
        // that drops duplicates and reordered old votes.
        if self.votes.get(&from).is_some_and(|last| last.ballot >= ballot) {
            return None;
        }
        // One ballot has one value; a vote that contradicts it is not Paxos.
        if self.votes.values().any(|v| v.ballot == ballot && v.value != value) {
            return None;
        }
        if self.votes.insert(from, Proposal::new(ballot, value)).is_err() {
            return None;
        }
        let count = self.votes.values().filter(|v| v.ballot == ballot).count();
        if count == self.quorum {
            self.decided = self.votes.get(&from).cloned();
            self.votes.clear();
            return self.decided.as_ref();
        }
        None
    }

    /// The acceptors whose latest vote is for `ballot`.
    pub(crate) fn voters(&self, ballot: Ballot) -> NodeSet {
        self.votes
            .iter()
            .filter(|(_, v)| v.ballot == ballot)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Changes the quorum size.
    pub(crate) fn set_quorum(&mut self, quorum: usize) {
        self.quorum = quorum;
    }

    /// The decision, once there is one.
    pub fn decision(&self) -> Option<&Proposal<V>> {
        self.decided.as_ref()
    }

    /// The decided value, once there is one.
    pub fn final_value(&self) -> Option<&V> {
        self.decided.as_ref().map(|p| &p.value)
    }

    /// Whether a value was decided.
    pub fn is_complete(&self) -> bool {
        self.decided.is_some()
    }
}
