//! The outbox: where roles put their outputs, and where persist-before-
//! reveal is enforced.

use super::{DurableState, Error, Event, Persist, PersistSeq, Transmit};
use crate::message::{Destination, Message, Proposal};
use heapless::Deque;

/// How many persists, how many transmits and how many events an outbox
/// keeps, each in its own queue. One call adds at most
/// [`Outbox::PER_CALL`] to each.
pub const OUTBOX_CAPACITY: usize = 16;

/// Outputs waiting for the driver, in three queues drained on their own:
/// [`Outbox::poll_persist`], [`Outbox::poll_transmit`] and
/// [`Outbox::poll_event`].
///
/// Persist requests leave at once. Every transmit and every event carries
/// the highest sequence number issued when it was queued and leaves, in
/// order within its own queue, only once the driver has confirmed that
/// number durable: nothing queued after a persist can overtake it. The
/// rule itself is [`PersistSeq::released_by`], which the replica's outbox
/// applies too.
#[derive(Clone, Debug)]
pub struct Outbox<V> {
    persists: Deque<Persist<V>, OUTBOX_CAPACITY>,
    transmits: Deque<(PersistSeq, Transmit<V>), OUTBOX_CAPACITY>,
    events: Deque<(PersistSeq, Event<V>), OUTBOX_CAPACITY>,
    issued: PersistSeq,
    durable: PersistSeq,
}

impl<V> Default for Outbox<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Outbox<V> {
    /// The most outputs one call can add to each queue: a role's call adds
    /// at most one persist, one transmit and one event, and so does
    /// [`super::Node`]'s (one role per message; `prepare` records its round
    /// and sends the `Prepare`).
    pub const PER_CALL: usize = 3;

    /// An empty outbox.
    pub const fn new() -> Self {
        Outbox {
            persists: Deque::new(),
            transmits: Deque::new(),
            events: Deque::new(),
            issued: PersistSeq(0),
            durable: PersistSeq(0),
        }
    }

    /// Refuses with [`Error::Busy`] unless one more call's outputs fit in
    /// every queue, so that a call happens whole or not at all.
    pub fn reserve(&self) -> Result<(), Error> {
        let room = |len: usize| OUTBOX_CAPACITY - len >= Self::PER_CALL;
        if room(self.persists.len()) && room(self.transmits.len()) && room(self.events.len()) {
            Ok(())
        } else {
            Err(Error::Busy)
        }
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
        let _ = self.persists.push_back(Persist {
            seq: self.issued,
            state,
        });
        self.issued
    }

    /// Sends `message` once every persist issued so far is durable.
    pub(crate) fn send(&mut self, to: Destination, message: Message<V>) {
        // `reserve` guaranteed room.
        let _ = self.transmits.push_back((self.issued, Transmit { to, message }));
    }

    /// Reports a decision once every persist issued so far is durable.
    pub(crate) fn resolved(&mut self, proposal: Proposal<V>) {
        self.event(Event::Resolved(proposal));
    }

    /// Reports that leadership was acquired, once every persist issued so
    /// far is durable.
    pub(crate) fn leadership_acquired(&mut self) {
        self.event(Event::LeadershipAcquired);
    }

    fn event(&mut self, event: Event<V>) {
        // `reserve` guaranteed room.
        let _ = self.events.push_back((self.issued, event));
    }

    /// The driver made every state up to `seq` durable: the transmits and
    /// events that waited for it may leave. A stale `seq` changes nothing;
    /// [`Error::UnknownPersist`] for one never issued.
    pub fn persisted(&mut self, seq: PersistSeq) -> Result<(), Error> {
        if seq > self.issued {
            return Err(Error::UnknownPersist(seq));
        }
        self.durable = self.durable.max(seq);
        Ok(())
    }

    /// The next state to make durable, at once and in the order issued;
    /// `None` when there is none.
    #[must_use = "the state must be saved and confirmed with `persisted`, or what waits on it never leaves"]
    pub fn poll_persist(&mut self) -> Option<Persist<V>> {
        self.persists.pop_front()
    }

    /// The next message to send, in the order queued, once every persist
    /// issued before it is confirmed; `None` when there is none or the
    /// next one still waits.
    #[must_use = "a polled message has left the outbox: send it, or it is lost"]
    pub fn poll_transmit(&mut self) -> Option<Transmit<V>> {
        released(&mut self.transmits, self.durable)
    }

    /// The next event, in the order produced, once every persist issued
    /// before it is confirmed; `None` when there is none or the next one
    /// still waits.
    #[must_use = "a polled event is not reported again"]
    pub fn poll_event(&mut self) -> Option<Event<V>> {
        released(&mut self.events, self.durable)
    }
}

/// Pops the front of a held queue if `durable` releases it.
fn released<T>(queue: &mut Deque<(PersistSeq, T), OUTBOX_CAPACITY>, durable: PersistSeq) -> Option<T> {
    if queue.front().is_some_and(|(needs, _)| needs.released_by(durable)) {
        queue.pop_front().map(|(_, item)| item)
    } else {
        None
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

    fn proposal(round: u32) -> Proposal<u8> {
        Proposal::new(Ballot::new(round, NodeId(1)), 7)
    }

    fn sent(out: &mut Outbox<u8>) -> Option<Message<u8>> {
        out.poll_transmit().map(|t| t.message)
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
        assert_eq!(out.poll_transmit(), None, "held until confirmed");
        assert!(matches!(out.poll_persist(), Some(Persist { seq, .. }) if seq == s1));
        assert!(matches!(out.poll_persist(), Some(Persist { seq, .. }) if seq == s2));
        assert_eq!(out.poll_persist(), None);
        assert_eq!(out.poll_transmit(), None, "held until confirmed");
        out.persisted(s1).unwrap();
        assert_eq!(sent(&mut out), Some(prepare(2)));
        assert_eq!(out.poll_transmit(), None, "prepare(3) needs s2");
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
        while out.poll_persist().is_some() {}
        assert_eq!(sent(&mut out), Some(prepare(1)));
        assert_eq!(sent(&mut out), Some(prepare(2)));
        assert_eq!(out.durable(), s2);
        // A stale confirmation does not move durability backwards.
        out.persisted(PersistSeq(1)).unwrap();
        assert_eq!(out.durable(), s2);
    }

    #[test]
    fn transmits_and_events_wait_in_their_own_queues_in_order() {
        let mut out = Outbox::<u8>::new();
        out.leadership_acquired();
        let s1 = out.persist(DurableState::default());
        out.resolved(proposal(1));
        out.send(Destination::All, prepare(1));
        let s2 = out.persist(DurableState::default());
        out.send(Destination::All, prepare(2));
        out.resolved(proposal(2));
        // Queued before any persist: leaves although later items wait.
        assert_eq!(out.poll_event(), Some(Event::LeadershipAcquired));
        assert_eq!(out.poll_event(), None, "resolved(1) needs s1");
        assert_eq!(out.poll_transmit(), None, "prepare(1) needs s1");
        assert!(out.poll_persist().is_some() && out.poll_persist().is_some());
        out.persisted(s1).unwrap();
        // Draining one queue does not move the other.
        assert_eq!(sent(&mut out), Some(prepare(1)));
        assert_eq!(out.poll_transmit(), None, "prepare(2) needs s2");
        assert_eq!(out.poll_event(), Some(Event::Resolved(proposal(1))));
        assert_eq!(out.poll_event(), None, "resolved(2) needs s2");
        out.persisted(s2).unwrap();
        assert_eq!(out.poll_event(), Some(Event::Resolved(proposal(2))));
        assert_eq!(sent(&mut out), Some(prepare(2)));
        assert_eq!(
            (out.poll_persist(), out.poll_transmit(), out.poll_event()),
            (None, None, None)
        );
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

    #[test]
    fn each_queue_has_its_own_capacity() {
        let fill = |add: fn(&mut Outbox<u8>)| {
            let mut out = Outbox::<u8>::new();
            out.persist(DurableState::default());
            let mut calls = 0;
            while out.reserve().is_ok() {
                for _ in 0..Outbox::<u8>::PER_CALL {
                    add(&mut out);
                }
                calls += 1;
            }
            (calls, out)
        };
        let (events, mut out) = fill(|out| out.resolved(proposal(1)));
        assert_eq!(events, OUTBOX_CAPACITY / Outbox::<u8>::PER_CALL);
        assert_eq!(out.transmits.len(), 0, "a full event queue alone refuses");
        // Draining the other queues does not help; releasing events does.
        while out.poll_persist().is_some() {}
        assert_eq!(out.reserve(), Err(Error::Busy));
        out.persisted(PersistSeq(1)).unwrap();
        while out.poll_event().is_some() {}
        assert_eq!(out.reserve(), Ok(()));

        let (persists, out) = fill(|out| {
            out.persist(DurableState::default());
        });
        assert_eq!(persists, (OUTBOX_CAPACITY - 1) / Outbox::<u8>::PER_CALL);
        assert_eq!(out.reserve(), Err(Error::Busy));
    }
}
