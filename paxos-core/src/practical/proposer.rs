//! The practical proposer: the essential one plus leadership, NACKs,
//! ballot bumping, passive mode and retransmission.

use super::{Error, Outbox};
use crate::ballot::{Ballot, NodeId};
use crate::essential;
use crate::message::{Destination, Message, Proposal};

/// A proposer that tracks leadership and rises above ballots it observes.
///
/// A proposer alone keeps nothing durable; [`super::Node`] persists the
/// rounds it uses so that a restarted node never reuses a ballot. Using a
/// `Proposer` on its own, restore that floor with [`Proposer::recover`].
#[derive(Clone, Debug)]
pub struct Proposer<V> {
    inner: essential::Proposer<V>,
    leader: bool,
    active: bool,
    /// Set once round `u32::MAX` was used or observed: no higher ballot
    /// exists, and reusing one would be unsafe.
    exhausted: bool,
}

impl<V: Clone> Proposer<V> {
    /// A proposer with identity `id` that needs `quorum` promises.
    pub fn new(id: NodeId, quorum: usize) -> Self {
        Proposer {
            inner: essential::Proposer::new(id, quorum),
            leader: false,
            active: true,
            exhausted: false,
        }
    }

    /// Makes the next ballot's round at least `round + 1`: used when
    /// restarting, with the highest round used before.
    pub fn recover(&mut self, round: u32) {
        self.raise_next_round(round);
    }

    /// Sets the value unless there is one; a leader proposes it at once.
    pub fn set_proposal(&mut self, value: V, out: &mut Outbox<V>) -> Result<(), Error> {
        out.reserve()?;
        if self.inner.value.is_some() {
            return Ok(());
        }
        self.inner.set_proposal(value.clone());
        if let (true, true, Some(ballot)) = (self.leader, self.active, self.inner.ballot) {
            out.send(Destination::All, Message::Accept { ballot, value });
        }
        Ok(())
    }

    /// With `increment`, starts a new round with a higher ballot and drops
    /// leadership; without it, resends the current `Prepare` and keeps the
    /// promises gathered so far (before any round, there is nothing to
    /// resend and nothing is sent).
    pub fn prepare(&mut self, increment: bool, out: &mut Outbox<V>) -> Result<(), Error> {
        out.reserve()?;
        self.prepare_reserved(increment, out)
    }

    /// [`Proposer::prepare`] for a caller that reserved room for its whole
    /// call already and may have queued part of its outputs since
    /// ([`super::Node::prepare`] persists the round first): checking again
    /// could refuse after that part, and a refused call must change
    /// nothing.
    pub(crate) fn prepare_reserved(&mut self, increment: bool, out: &mut Outbox<V>) -> Result<(), Error> {
        let ballot = if increment {
            let ballot = self.next_ballot()?;
            self.leader = false;
            self.inner.prepare();
            self.exhausted = ballot.round == u32::MAX;
            ballot
        } else {
            match self.inner.ballot {
                Some(ballot) => ballot,
                None => return Ok(()),
            }
        };
        if self.active {
            out.send(Destination::All, Message::Prepare { ballot });
        }
        Ok(())
    }

    /// The ballot the next `prepare(true)` will use.
    pub fn next_ballot(&self) -> Result<Ballot, Error> {
        if self.exhausted {
            return Err(Error::BallotsExhausted);
        }
        Ok(Ballot::new(self.inner.next_round, self.inner.id))
    }

    /// Notes a ballot seen anywhere (from any node, this one included): the
    /// next round will be higher.
    pub fn observe(&mut self, ballot: Ballot) {
        let next = Ballot::new(self.inner.next_round, self.inner.id);
        if ballot >= next {
            self.raise_next_round(ballot.round);
        }
    }

    fn raise_next_round(&mut self, round: u32) {
        match round.checked_add(1) {
            Some(next) => self.inner.next_round = self.inner.next_round.max(next),
            None => self.exhausted = true,
        }
    }

    /// A promise. Reaching a quorum makes this proposer leader (reported
    /// even when passive) and, with a value, sends the `Accept`.
    pub fn receive_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        accepted: Option<Proposal<V>>,
        out: &mut Outbox<V>,
    ) -> Result<(), Error> {
        out.reserve()?;
        self.observe(ballot);
        if self.leader {
            return Ok(());
        }
        let before = self.inner.promise_count();
        let accept = self.inner.receive_promise(from, ballot, accepted);
        if before < self.inner.quorum && self.inner.promise_count() >= self.inner.quorum {
            self.leader = true;
            out.leadership_acquired();
            if let (true, Some(accept)) = (self.active, accept) {
                out.send(Destination::All, accept);
            }
        }
        Ok(())
    }

    /// A refused prepare: rise above the acceptor's promise. Retrying is
    /// the caller's (or a failure detector's) decision.
    pub fn receive_prepare_nack(&mut self, promised: Ballot) {
        self.observe(promised);
    }

    /// A refused accept: rise above the acceptor's promise.
    pub fn receive_accept_nack(&mut self, promised: Ballot) {
        self.observe(promised);
    }

    /// Resends the `Accept` if leading, active and holding a value.
    pub fn resend_accept(&mut self, out: &mut Outbox<V>) -> Result<(), Error> {
        out.reserve()?;
        if let (true, true, Some(ballot), Some(value)) =
            (self.leader, self.active, self.inner.ballot, self.inner.value.clone())
        {
            out.send(Destination::All, Message::Accept { ballot, value });
        }
        Ok(())
    }

    /// Whether this proposer believes it leads.
    pub fn is_leader(&self) -> bool {
        self.leader
    }

    /// Forgets leadership (used by failure detectors).
    pub fn clear_leader(&mut self) {
        self.leader = false;
    }

    /// Whether this proposer sends messages.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Makes the proposer active (sends) or passive (only updates state).
    pub fn set_active(&mut self, active: bool) {
        self.active = active;
    }

    /// The value to propose.
    pub fn proposed_value(&self) -> Option<&V> {
        self.inner.proposed_value()
    }

    /// The ballot of the current round.
    pub fn ballot(&self) -> Option<Ballot> {
        self.inner.ballot()
    }

    /// How many promises the current round has.
    pub fn promise_count(&self) -> usize {
        self.inner.promise_count()
    }

    /// The highest previously accepted ballot reported by a promise.
    pub fn highest_accepted(&self) -> Option<Ballot> {
        self.inner.highest_accepted()
    }

    /// The quorum size.
    pub fn quorum(&self) -> usize {
        self.inner.quorum
    }

    /// Changes the quorum size.
    pub fn set_quorum(&mut self, quorum: usize) {
        self.inner.quorum = quorum;
    }
}
