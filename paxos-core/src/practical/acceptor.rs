//! The practical acceptor: the essential one plus NACKs, passive mode and
//! persist-before-reveal.

use super::{DurableState, Error, Outbox};
use crate::ballot::{Ballot, NodeId};
use crate::essential;
use crate::message::{Destination, Message, Proposal};

/// An acceptor whose promises survive restarts.
///
/// Every change to its promise or vote is queued as a persist, and every
/// reply waits in the [`Outbox`] until the driver confirms that persist:
/// a promise or vote can never be revealed and then forgotten in a crash.
#[derive(Clone, Debug)]
pub struct Acceptor<V> {
    inner: essential::Acceptor<V>,
    /// Stored with the acceptor's state on behalf of a co-located proposer.
    round: u32,
    active: bool,
}

impl<V: Clone + Eq> Default for Acceptor<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Eq> Acceptor<V> {
    /// An acceptor that has promised and accepted nothing.
    pub const fn new() -> Self {
        Acceptor {
            inner: essential::Acceptor::new(),
            round: 0,
            active: true,
        }
    }

    /// An acceptor restored from its last durable state.
    pub fn recover(state: DurableState<V>) -> Self {
        let mut acceptor = Self::new();
        acceptor.inner.promised = state.promised;
        acceptor.inner.accepted = state.accepted;
        acceptor.round = state.round;
        acceptor
    }

    /// The state to make durable.
    pub fn durable_state(&self) -> DurableState<V> {
        DurableState {
            promised: self.inner.promised(),
            accepted: self.inner.accepted().cloned(),
            round: self.round,
        }
    }

    /// A prepare: promise (after persisting a new promise), or NACK with
    /// the higher promise.
    pub fn receive_prepare(&mut self, from: NodeId, ballot: Ballot, out: &mut Outbox<V>) -> Result<(), Error> {
        out.reserve()?;
        let before = self.inner.promised();
        let reply = match self.inner.receive_prepare(ballot) {
            Some(promise) => {
                if self.inner.promised() != before {
                    out.persist(self.durable_state());
                }
                promise
            }
            // The essential acceptor ignores a lower prepare only when a
            // higher promise exists.
            None => match before {
                Some(promised) => Message::PrepareNack { ballot, promised },
                None => return Ok(()),
            },
        };
        if self.active {
            out.send(Destination::Node(from), reply);
        }
        Ok(())
    }

    /// An accept: vote (after persisting the vote), or NACK with the higher
    /// promise. A duplicate of the current vote is answered again.
    pub fn receive_accept(&mut self, from: NodeId, ballot: Ballot, value: V, out: &mut Outbox<V>) -> Result<(), Error> {
        out.reserve()?;
        let before = self.durable_state();
        match self.inner.receive_accept(ballot, value) {
            Some(accepted) => {
                if self.durable_state() != before {
                    out.persist(self.durable_state());
                }
                if self.active {
                    out.send(Destination::All, accepted);
                }
            }
            None => {
                if let (true, Some(promised)) = (self.active, before.promised) {
                    out.send(Destination::Node(from), Message::AcceptNack { ballot, promised });
                }
            }
        }
        Ok(())
    }

    /// Records the highest round the co-located proposer will use, and
    /// persists it before the `Prepare` that uses it can leave.
    pub(crate) fn record_round(&mut self, round: u32, out: &mut Outbox<V>) {
        if round > self.round {
            self.round = round;
            out.persist(self.durable_state());
        }
    }

    /// The highest ballot promised.
    pub fn promised(&self) -> Option<Ballot> {
        self.inner.promised()
    }

    /// The last proposal accepted.
    pub fn accepted(&self) -> Option<&Proposal<V>> {
        self.inner.accepted()
    }

    /// Whether this acceptor sends replies.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Makes the acceptor active or passive. A passive acceptor still
    /// changes and persists its state, so it can never reveal later a
    /// state that was not saved.
    pub fn set_active(&mut self, active: bool) {
        self.active = active;
    }
}
