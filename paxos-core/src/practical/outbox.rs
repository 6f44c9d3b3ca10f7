//! The outbox: where roles put their outputs, and where persist-before-
//! reveal is enforced.

use super::{DurableState, Error, Output, PersistSeq};
use crate::message::{Destination, Message, Proposal};
use heapless::Deque;

/// How many persists, and separately how many other outputs, an outbox
/// keeps. One call adds at most [`Outbox::PER_CALL`] of each.
pub const OUTBOX_CAPACITY: usize = 16;

/// Outputs waiting for the driver.
///
/// Persist requests leave at once. Every other output carries the highest
/// sequence number issued when it was queued and leaves, in order, only
/// once the driver has confirmed that number durable: nothing queued after
/// a persist can overtake it. The rule itself is
/// [`PersistSeq::released_by`], which the replica's outbox applies too.
#[derive(Clone, Debug)]
pub struct Outbox<V> {
    persists: Deque<(PersistSeq, DurableState<V>), OUTBOX_CAPACITY>,
    others: Deque<(PersistSeq, Output<V>), OUTBOX_CAPACITY>,
    issued: PersistSeq,
    durable: PersistSeq,
}

impl<V> Default for Outbox<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Outbox<V> {
    /// The most outputs of each kind one call can add.
    pub const PER_CALL: usize = 3;

    /// An empty outbox.
    pub const fn new() -> Self {
        Outbox {
            persists: Deque::new(),
            others: Deque::new(),
            issued: PersistSeq(0),
            durable: PersistSeq(0),
        }
    }

    /// Refuses with [`Error::Busy`] unless one more call's outputs fit, so
    /// that a call happens whole or not at all.
    pub fn reserve(&self) -> Result<(), Error> {
        let room = |len: usize| OUTBOX_CAPACITY - len >= Self::PER_CALL;
        if room(self.persists.len()) && room(self.others.len()) {
            Ok(())
        } else {
            Err(Error::Busy)
        }
    }

    /// The next output the driver may act on, if any.
    pub fn poll(&mut self) -> Option<Output<V>> {
        if let Some((seq, state)) = self.persists.pop_front() {
            return Some(Output::Persist { seq, state });
        }
        if self
            .others
            .front()
            .is_some_and(|(needs, _)| needs.released_by(self.durable))
        {
            return self.others.pop_front().map(|(_, output)| output);
        }
        None
    }

    /// Whether a persist is unconfirmed.
    pub fn persist_pending(&self) -> bool {
        self.durable < self.issued
    }

    /// The newest sequence number confirmed durable.
    pub fn durable(&self) -> PersistSeq {
        self.durable
    }

    /// Asks the driver to save `state`; returns its sequence number.
    pub(crate) fn persist(&mut self, state: DurableState<V>) -> PersistSeq {
        self.issued = PersistSeq(self.issued.0 + 1);
        // `reserve` guaranteed room.
        let _ = self.persists.push_back((self.issued, state));
        self.issued
    }

    /// Sends `message` once every persist issued so far is durable.
    pub(crate) fn send(&mut self, to: Destination, message: Message<V>) {
        self.push(Output::Send { to, message });
    }

    /// Reports a decision.
    pub(crate) fn resolved(&mut self, proposal: Proposal<V>) {
        self.push(Output::Resolved(proposal));
    }

    /// Reports that leadership was acquired.
    pub(crate) fn leadership_acquired(&mut self) {
        self.push(Output::LeadershipAcquired);
    }

    fn push(&mut self, output: Output<V>) {
        // `reserve` guaranteed room.
        let _ = self.others.push_back((self.issued, output));
    }

    /// The driver made every state up to `seq` durable: what waited for it
    /// may leave.
    pub fn persisted(&mut self, seq: PersistSeq) -> Result<(), Error> {
        if seq > self.issued {
            return Err(Error::UnknownPersist(seq));
        }
        self.durable = self.durable.max(seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ballot::{Ballot, NodeId};

    fn prepare(round: u32) -> Message<u8> {
        Message::Prepare {
            ballot: Ballot::new(round, NodeId(1)),
        }
    }

    fn sent(out: &mut Outbox<u8>) -> Option<Message<u8>> {
        match out.poll() {
            Some(Output::Send { message, .. }) => Some(message),
            _ => None,
        }
    }

    #[test]
    fn nothing_overtakes_an_unconfirmed_persist() {
        let mut out = Outbox::new();
        out.send(Destination::All, prepare(1));
        assert_eq!(sent(&mut out), Some(prepare(1)), "nothing pending: leaves at once");
        let s1 = out.persist(DurableState::default());
        out.send(Destination::All, prepare(2));
        let s2 = out.persist(DurableState::default());
        out.send(Destination::All, prepare(3));
        assert!(matches!(out.poll(), Some(Output::Persist { seq, .. }) if seq == s1));
        assert!(matches!(out.poll(), Some(Output::Persist { seq, .. }) if seq == s2));
        assert_eq!(out.poll(), None, "held until confirmed");
        out.persisted(s1).unwrap();
        assert_eq!(sent(&mut out), Some(prepare(2)));
        assert_eq!(out.poll(), None, "prepare(3) needs s2");
        out.persisted(s2).unwrap();
        assert_eq!(sent(&mut out), Some(prepare(3)));
        assert!(!out.persist_pending());
    }

    #[test]
    fn one_confirmation_covers_every_earlier_persist() {
        let mut out = Outbox::<u8>::new();
        out.persist(DurableState::default());
        out.send(Destination::All, prepare(1));
        let s2 = out.persist(DurableState::default());
        out.send(Destination::All, prepare(2));
        out.persisted(s2).unwrap();
        while let Some(Output::Persist { .. }) = out.poll() {}
        assert_eq!(sent(&mut out), Some(prepare(2)), "prepare(1) was the previous poll");
        assert_eq!(out.durable(), s2);
        // A stale confirmation does not move durability backwards.
        out.persisted(PersistSeq(1)).unwrap();
        assert_eq!(out.durable(), s2);
    }

    #[test]
    fn unknown_confirmations_and_overflow_are_refused() {
        let mut out = Outbox::<u8>::new();
        assert_eq!(out.persisted(PersistSeq(1)), Err(Error::UnknownPersist(PersistSeq(1))));
        out.persist(DurableState::default());
        let mut calls = 0;
        while out.reserve().is_ok() {
            out.send(Destination::All, prepare(1));
            out.send(Destination::All, prepare(2));
            out.send(Destination::All, prepare(3));
            calls += 1;
        }
        assert_eq!(calls, OUTBOX_CAPACITY / Outbox::<u8>::PER_CALL);
        assert_eq!(out.reserve(), Err(Error::Busy));
    }
}
