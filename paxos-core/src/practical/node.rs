//! [`Node`]: proposer, acceptor and learner in one sans-IO state machine.

use super::{Acceptor, DurableState, Error, Event, Learner, Outbox, Persist, PersistSeq, Proposer, Transmit};
use crate::ballot::NodeId;
use crate::message::Message;

/// One node of a single-decree Paxos cluster: a [`Proposer`], an
/// [`Acceptor`] and a [`Learner`] sharing one identity and one [`Outbox`].
///
/// The driver loop, as for [`crate::replica::Replica`]: hand in a received
/// message with [`Node::handle_message`] (or call [`Node::set_proposal`],
/// [`Node::prepare`], ...), then drain [`Node::poll_persist`],
/// [`Node::poll_transmit`] and [`Node::poll_event`] until all three return
/// `None`. Each [`Persist`] is saved and confirmed with
/// [`Node::persisted`], which may release held transmits and events: drain
/// again after it (confirming inside the persist drain, as here, releases
/// them before the other two are drained).
///
/// ```
/// use paxos_core::practical::{Event, Node, Transmit};
/// use paxos_core::{Destination, Message, NodeId};
///
/// // Three nodes; messages delivered at once, persists saved at once.
/// let mut nodes: Vec<Node<&str, 3>> = (0..3).map(|i| Node::new(NodeId(i), 2)).collect();
/// nodes[0].set_proposal("x").unwrap();
/// nodes[0].prepare(true).unwrap();
/// let mut inflight: Vec<(NodeId, Destination, Message<&str>)> = Vec::new();
/// let mut decided = Vec::new();
/// loop {
///     for node in nodes.iter_mut() {
///         while let Some(persist) = node.poll_persist() {
///             // A real driver makes `persist.state` durable first.
///             node.persisted(persist.seq).unwrap();
///         }
///         while let Some(Transmit { to, message }) = node.poll_transmit() {
///             inflight.push((node.id(), to, message));
///         }
///         while let Some(event) = node.poll_event() {
///             match event {
///                 Event::Resolved(p) => decided.push(p.value),
///                 Event::LeadershipAcquired => {}
///             }
///         }
///     }
///     if inflight.is_empty() { break; }
///     for (from, to, message) in inflight.drain(..) {
///         for node in nodes.iter_mut() {
///             if to == Destination::All || to == Destination::Node(node.id()) {
///                 node.handle_message(from, message.clone()).unwrap();
///             }
///         }
///     }
/// }
/// assert_eq!(decided, ["x", "x", "x"]);
/// ```
#[derive(Clone, Debug)]
pub struct Node<V, const N: usize> {
    id: NodeId,
    proposer: Proposer<V>,
    acceptor: Acceptor<V>,
    learner: Learner<V, N>,
    out: Outbox<V>,
}

impl<V: Clone + Eq, const N: usize> Node<V, N> {
    /// A fresh node `id` with quorum size `quorum`, tracking up to `N`
    /// acceptors in its learner. Nothing is queued: the node waits for an
    /// input.
    pub fn new(id: NodeId, quorum: usize) -> Self {
        Self::recover(id, quorum, DurableState::default())
    }

    /// A node restarted from its last durable state (the newest
    /// [`Persist::state`] it confirmed): it keeps its promise and vote, and
    /// its proposer continues above every round it used. Leadership and
    /// the learner's votes are not durable and start empty; nothing is
    /// queued.
    pub fn recover(id: NodeId, quorum: usize, state: DurableState<V>) -> Self {
        let mut proposer = Proposer::new(id, quorum);
        proposer.recover(state.round);
        Node {
            id,
            proposer,
            acceptor: Acceptor::recover(state),
            learner: Learner::new(quorum),
            out: Outbox::new(),
        }
    }

    /// This node's identity. Never changes.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The proposer: its ballot, leadership and value.
    pub fn proposer(&self) -> &Proposer<V> {
        &self.proposer
    }

    /// The acceptor: its promise and vote, which may be ahead of storage
    /// (a message revealing them leaves only once they are durable).
    pub fn acceptor(&self) -> &Acceptor<V> {
        &self.acceptor
    }

    /// The learner: the decision, once there is one, and the acceptors
    /// known to hold it.
    pub fn learner(&self) -> &Learner<V, N> {
        &self.learner
    }

    /// The state the node needs after a restart: the newest state issued,
    /// which may not be durable yet (the newest [`Persist::state`] the
    /// driver confirmed is what a restart must use).
    pub fn durable_state(&self) -> DurableState<V> {
        self.acceptor.durable_state()
    }

    // Inputs. After each one, drain `poll_persist`, `poll_transmit` and
    // `poll_event` until they all return `None`.

    /// Handles `message` received from node `from`: the acceptor answers
    /// prepares and accepts, the proposer counts promises and rises above
    /// every ballot it sees (prepares, accepts, NACKs), the learner counts
    /// votes. Call it for every message the transport delivers, in any
    /// order, duplicated or not.
    ///
    /// [`Error::Busy`] when the outbox lacks room for the call's outputs:
    /// nothing changed; drain the polls, confirm persists, and hand the
    /// message in again (or drop it, as a lossy network would).
    pub fn handle_message(&mut self, from: NodeId, message: Message<V>) -> Result<(), Error> {
        self.out.reserve()?;
        let out = &mut self.out;
        match message {
            Message::Prepare { ballot } => {
                // Seeing the prepare here lets the co-located proposer rise
                // above it without waiting for a NACK.
                self.proposer.observe(ballot);
                self.acceptor.receive_prepare(from, ballot, out)
            }
            Message::Promise { ballot, accepted } => self.proposer.receive_promise(from, ballot, accepted, out),
            Message::Accept { ballot, value } => {
                self.proposer.observe(ballot);
                self.acceptor.receive_accept(from, ballot, value, out)
            }
            Message::Accepted { ballot, value } => self.learner.receive_accepted(from, ballot, value, out),
            Message::PrepareNack { promised, .. } => {
                self.proposer.receive_prepare_nack(promised);
                Ok(())
            }
            Message::AcceptNack { promised, .. } => {
                self.proposer.receive_accept_nack(promised);
                Ok(())
            }
        }
    }

    /// Sets the value to propose unless there is one (the first value
    /// stays); a leader sends the `Accept` at once. [`Error::Busy`] when
    /// the outbox is full: nothing changed.
    pub fn set_proposal(&mut self, value: V) -> Result<(), Error> {
        self.proposer.set_proposal(value, &mut self.out)
    }

    /// Starts a new round (`increment`) or resends the current `Prepare`.
    /// A new round is persisted before its `Prepare` can leave, so a
    /// restarted node never reuses the ballot.
    ///
    /// Refused, with nothing changed, when the outbox is full
    /// ([`Error::Busy`]) or no round is left ([`Error::BallotsExhausted`]).
    pub fn prepare(&mut self, increment: bool) -> Result<(), Error> {
        self.out.reserve()?;
        if increment {
            let ballot = self.proposer.next_ballot()?;
            self.acceptor.record_round(ballot.round, &mut self.out);
        }
        // Room was reserved for the whole call: the round's persist must
        // not make the proposer's own check refuse the `Prepare`.
        self.proposer.prepare_reserved(increment, &mut self.out)
    }

    /// Resends the `Accept` if leading, active and holding a value;
    /// otherwise does nothing. [`Error::Busy`] when the outbox is full.
    pub fn resend_accept(&mut self) -> Result<(), Error> {
        self.proposer.resend_accept(&mut self.out)
    }

    /// The driver made every state up to `seq` durable: confirming one
    /// confirms every earlier one, and a stale `seq` changes nothing. This
    /// is an input: transmits and events that waited on those states may
    /// now leave, so drain after it. [`Error::UnknownPersist`] for a `seq`
    /// [`Node::poll_persist`] never returned (a driver bug; nothing
    /// changed).
    pub fn persisted(&mut self, seq: PersistSeq) -> Result<(), Error> {
        self.out.persisted(seq)
    }

    /// Makes all roles active or passive. A passive node still changes and
    /// persists its state and reports events, but sends nothing.
    pub fn set_active(&mut self, active: bool) {
        self.proposer.set_active(active);
        self.acceptor.set_active(active);
    }

    /// Changes the quorum size of the proposer and the learner. Takes
    /// effect from the next promise or vote counted.
    pub fn change_quorum_size(&mut self, quorum: usize) {
        self.proposer.set_quorum(quorum);
        self.learner.set_quorum(quorum);
    }

    // Outputs, in the order to drain them.

    /// The next state to make durable: save [`Persist::state`], then call
    /// [`Node::persisted`] with [`Persist::seq`]. Persists leave at once,
    /// in the order issued. Call it until `None` after every input.
    #[must_use = "the state must be saved and confirmed with `persisted`, or what waits on it never leaves"]
    pub fn poll_persist(&mut self) -> Option<Persist<V>> {
        self.out.poll_persist()
    }

    /// The next message to send. Messages leave in the order queued, each
    /// only once every persist issued before it is confirmed: `None` when
    /// there is none or the next one waits for [`Node::persisted`]. Call
    /// it until `None` after every input. A polled message has left the
    /// node: send it, or it is lost (which the protocol survives).
    #[must_use = "a polled message has left the node: send it, or it is lost"]
    pub fn poll_transmit(&mut self) -> Option<Transmit<V>> {
        self.out.poll_transmit()
    }

    /// The next thing the application should know. Events leave in the
    /// order produced, each only once every persist issued before it is
    /// confirmed: `None` when there is none or the next one waits for
    /// [`Node::persisted`]. Call it until `None` after every input. An
    /// event polled is not reported again.
    #[must_use = "a polled event is not reported again"]
    pub fn poll_event(&mut self) -> Option<Event<V>> {
        self.out.poll_event()
    }
}
