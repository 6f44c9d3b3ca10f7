//! [`Node`]: proposer, acceptor and learner in one sans-IO state machine.

use super::{Acceptor, DurableState, Error, Learner, Outbox, Output, PersistSeq, Proposer};
use crate::ballot::NodeId;
use crate::message::Message;

/// One node of a single-decree Paxos cluster: a [`Proposer`], an
/// [`Acceptor`] and a [`Learner`] sharing one identity and one [`Outbox`].
///
/// The driver loop: hand in a received message with [`Node::receive`] (or
/// call [`Node::set_proposal`] / [`Node::prepare`]), then drain
/// [`Node::poll_output`] until it returns `None`, acting on each output; a
/// [`Output::Persist`] is saved and confirmed with [`Node::persisted`],
/// which may release held messages, so drain again after it.
///
/// ```
/// use paxos_core::practical::{Node, Output};
/// use paxos_core::{Destination, Message, NodeId};
///
/// // Three nodes; messages delivered at once, persists saved at once.
/// let mut nodes: Vec<Node<&str, 3>> = (0..3).map(|i| Node::new(NodeId(i), 2)).collect();
/// nodes[0].set_proposal("x").unwrap();
/// nodes[0].prepare(true).unwrap();
/// let mut inflight: Vec<(NodeId, Destination, Message<&str>)> = Vec::new();
/// let mut decided = Vec::new();
/// loop {
///     for (i, node) in nodes.iter_mut().enumerate() {
///         while let Some(output) = node.poll_output() {
///             match output {
///                 Output::Send { to, message } => inflight.push((NodeId(i as u8), to, message)),
///                 Output::Persist { seq, .. } => node.persisted(seq).unwrap(),
///                 Output::Resolved(p) => decided.push(p.value),
///                 Output::LeadershipAcquired => {}
///             }
///         }
///     }
///     if inflight.is_empty() { break; }
///     for (from, to, message) in inflight.drain(..) {
///         for (i, node) in nodes.iter_mut().enumerate() {
///             if to == Destination::All || to == Destination::Node(NodeId(i as u8)) {
///                 node.receive(from, message.clone()).unwrap();
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
    /// acceptors in its learner.
    pub fn new(id: NodeId, quorum: usize) -> Self {
        Self::recover(id, quorum, DurableState::default())
    }

    /// A node restarted from its last durable state: it keeps its promise
    /// and vote, and its proposer continues above every round it used.
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

    /// Handles a message from node `from`.
    pub fn receive(&mut self, from: NodeId, message: Message<V>) -> Result<(), Error> {
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

    /// Sets the value to propose unless there is one; a leader sends the
    /// `Accept` at once.
    pub fn set_proposal(&mut self, value: V) -> Result<(), Error> {
        self.proposer.set_proposal(value, &mut self.out)
    }

    /// Starts a new round (`increment`) or resends the current `Prepare`.
    /// A new round is persisted before its `Prepare` can leave, so a
    /// restarted node never reuses the ballot.
    pub fn prepare(&mut self, increment: bool) -> Result<(), Error> {
        self.out.reserve()?;
        if increment {
            let ballot = self.proposer.next_ballot()?;
            self.acceptor.record_round(ballot.round, &mut self.out);
        }
        self.proposer.prepare(increment, &mut self.out)
    }

    /// Resends the `Accept` if leading, active and holding a value.
    pub fn resend_accept(&mut self) -> Result<(), Error> {
        self.proposer.resend_accept(&mut self.out)
    }

    /// The driver saved every state up to `seq`.
    pub fn persisted(&mut self, seq: PersistSeq) -> Result<(), Error> {
        self.out.persisted(seq)
    }

    /// The next output, or `None` when there is nothing to do until the
    /// next input.
    pub fn poll_output(&mut self) -> Option<Output<V>> {
        self.out.poll()
    }

    /// Makes all roles active or passive.
    pub fn set_active(&mut self, active: bool) {
        self.proposer.set_active(active);
        self.acceptor.set_active(active);
    }

    /// Changes the quorum size of the proposer and the learner.
    pub fn change_quorum_size(&mut self, quorum: usize) {
        self.proposer.set_quorum(quorum);
        self.learner.set_quorum(quorum);
    }

    /// This node's identity.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The proposer.
    pub fn proposer(&self) -> &Proposer<V> {
        &self.proposer
    }

    /// The acceptor.
    pub fn acceptor(&self) -> &Acceptor<V> {
        &self.acceptor
    }

    /// The learner.
    pub fn learner(&self) -> &Learner<V, N> {
        &self.learner
    }

    /// The state the node needs after a restart.
    pub fn durable_state(&self) -> DurableState<V> {
        self.acceptor.durable_state()
    }
}
