//! A driver for the single-decree [`Node`] in which a persist is durable
//! only once a separate [`NodeHost::flush`] step wrote it.
//!
//! It follows the driver loop documented on [`Node`]: after every input,
//! drain `poll_persist`, `poll_transmit` and `poll_event` until all three
//! are empty; a [`Persist`] is queued here (in memory, lost in a crash)
//! until `flush` writes it to the durable record and confirms it with
//! `Node::persisted`, which may release held messages and events.
//! Messages cross the (model's) network as encoded frames, so the codec is
//! on the path too.

use super::fingerprint::{held_set, remove_field, rewrite_lists, sort_map_entries, Fingerprint};
use paxos_core::practical::{DurableState, Event, Node, Persist, PersistSeq, Transmit};
use paxos_core::{decode, encode, max_encoded_size, Destination, Message, NodeId, Proposal};
use std::collections::VecDeque;

/// The value type of the single-decree model.
pub type Value = u8;
/// The cluster size.
pub const NODES: usize = 3;
/// A majority of [`NODES`].
pub const QUORUM: usize = NODES / 2 + 1;
/// The production node under test.
pub type ModelNode = Node<Value, NODES>;

/// How the driver treats durability: correctly, or with a bug injected on
/// purpose to show that the model checker catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Confirm a persist only after writing it, in a later step
    /// ([`NodeHost::flush`]): a crash in between loses it.
    Correct,
    /// Write and confirm every persist at once, within the step that
    /// issued it ([`Effect::Written`]). For nodes the model never crashes:
    /// there, a later flush would only hold the node's outputs back, and
    /// each held output is fixed when it is queued, so holding it is the
    /// same as the network delaying it.
    Immediate,
    /// Bug: confirm every persist at once and never write it, so a restart
    /// finds nothing (a driver that skips `fsync`, or trusts a volatile
    /// cache).
    ConfirmWithoutWriting,
}

/// What a step produced for the rest of the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send `frame` (an encoded [`Message`]) to `to`; `Destination::All`
    /// includes this node.
    Send {
        /// Where.
        to: Destination,
        /// The encoded message.
        frame: Vec<u8>,
    },
    /// The node's learner resolved this proposal.
    Resolved(Proposal<Value>),
    /// With [`Durability::Immediate`]: this record is now the durable one.
    Written(Vec<u8>),
}

/// A node and the persists it asked for that are not durable yet.
#[derive(Clone, Debug)]
pub struct NodeHost {
    node: ModelNode,
    /// Issued, not yet written; oldest first. Lost in a crash.
    pending: VecDeque<(PersistSeq, DurableState<Value>)>,
    durability: Durability,
}

impl Fingerprint for NodeHost {
    /// The node, the newest unwritten state and the mode. The node is
    /// rendered whole (it has neither counters nor a random source) except:
    ///
    /// - the learner's votes are sorted: they live in a `LinearMap`, which
    ///   prints in insertion order, and the learner only looks votes up by
    ///   acceptor, counts them and clears them, so the order in which
    ///   acceptors first voted never changes what it does;
    /// - the learner's `final_acceptors` (the acceptors known to hold the
    ///   decided value) is left out: the learner only adds to it after the
    ///   decision, and nothing reads it but a getter the model never calls;
    /// - the outbox's sequence numbers are left out, and each of its two
    ///   held queues (transmits, events) is one set of distinct items and
    ///   their number. With this driver every held item leaves at the next
    ///   flush, all together (see [`NodeHost::flush`]); the transmits go
    ///   into a network that is a set, and the events are recorded in a
    ///   set or ignored. Only the number of held items in each queue
    ///   matters besides, because a full queue refuses input (its persist
    ///   queue is always empty here: the driver drains it after every
    ///   step);
    /// - of the unwritten persists only the newest is kept: a flush writes
    ///   that one alone (each state is complete).
    fn fingerprint_text(&self) -> String {
        self.text(true)
    }
}

impl super::HoldsReplies for NodeHost {
    fn has_pending(&self) -> bool {
        NodeHost::has_pending(self)
    }

    fn shape_text(&self) -> String {
        self.text(false)
    }
}

impl NodeHost {
    /// A fresh node.
    pub fn new(id: NodeId, durability: Durability) -> Self {
        Self::from_node(ModelNode::new(id, QUORUM), durability)
    }

    /// A node restarted from its durable record (`None`: nothing was ever
    /// written), as `Node::recover` documents.
    pub fn recover(id: NodeId, record: Option<&[u8]>, durability: Durability) -> Self {
        let state = record.and_then(decode_state).unwrap_or_default();
        Self::from_node(ModelNode::recover(id, QUORUM, state), durability)
    }

    fn from_node(node: ModelNode, durability: Durability) -> Self {
        NodeHost {
            node,
            pending: VecDeque::new(),
            durability,
        }
    }

    /// The node.
    pub fn node(&self) -> &ModelNode {
        &self.node
    }

    /// Whether a persist waits for [`NodeHost::flush`].
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// A frame from `from`. Undecodable frames and refused inputs
    /// (`Busy`) are dropped, as a lossy network would.
    ///
    /// A frame whose only effect would be one more copy of a reply that is
    /// already held for the same persist is ignored (the node is left as
    /// it was). A duplicated request does that while a save is pending:
    /// the node queues its reply again. Keeping those copies would let the
    /// model count duplicates (up to the outbox's capacity) and multiply
    /// the state space for nothing: a node holding more copies only sends
    /// the same messages into a network that is a set, and refuses input
    /// (`Busy`) sooner, which the node holding fewer copies can match by
    /// not receiving that input (the network may drop it). So every state
    /// the node with the extra copies can reach, up to those copies, the
    /// node without them can reach too; what the model skips is only the
    /// `Busy` refusal, which is indistinguishable from loss.
    pub fn receive(&mut self, from: NodeId, frame: &[u8]) -> Vec<Effect> {
        let mut out = Vec::new();
        let Ok(message) = decode::<Message<Value>>(frame) else {
            return out;
        };
        super::unless_only_held_grew(self, |host| {
            let _ = host.node.handle_message(from, message);
            host.drain(&mut out);
            out
        })
    }

    fn text(&self, counts: bool) -> String {
        let node = sort_map_entries(&format!("{:?}", self.node), "votes: {");
        let node = rewrite_lists(&node, "final_acceptors: {", |_| String::new());
        let node = held_set(&node, "transmits: [", counts);
        let node = held_set(&node, "events: [", counts);
        let node = remove_field(&node, ", issued: PersistSeq(", ")");
        let node = remove_field(&node, ", durable: PersistSeq(", ")");
        format!(
            "{node} unwritten: {:?} {:?}",
            self.pending.back().map(|(_, state)| state),
            self.durability
        )
    }

    /// The application's proposal.
    pub fn set_proposal(&mut self, value: Value) -> Vec<Effect> {
        let mut out = Vec::new();
        let _ = self.node.set_proposal(value);
        self.drain(&mut out);
        out
    }

    /// `Node::prepare`.
    pub fn prepare(&mut self, increment: bool) -> Vec<Effect> {
        let mut out = Vec::new();
        let _ = self.node.prepare(increment);
        self.drain(&mut out);
        out
    }

    /// Writes the newest unwritten persist (each state is complete, so it
    /// covers the others) and confirms it, which confirms every earlier
    /// one: group commit. Returns the record now durable (it replaces the
    /// previous one) and what the confirmation released; `None` if nothing
    /// was pending.
    ///
    /// Writing everything at once loses no behaviour against writing one
    /// persist at a time. The node's outputs are built when they are
    /// queued, so releasing some of them earlier than others is the same
    /// as the network delaying the others; and a crash between two partial
    /// writes leaves the same durable record and the same network as a
    /// flush before the later persist was issued, followed by that crash.
    pub fn flush(&mut self) -> Option<(Vec<u8>, Vec<Effect>)> {
        let (seq, state) = self.pending.back().cloned()?;
        self.pending.clear();
        let record = encode_state(&state);
        let mut out = Vec::new();
        // The sequence number was issued by this node: it cannot be unknown.
        let _ = self.node.persisted(seq);
        self.drain(&mut out);
        Some((record, out))
    }

    /// Drains the node's three queues: persists first (confirmed at once
    /// unless the durability is [`Durability::Correct`], which releases
    /// what waited on them), then transmits, then events. Nothing polled
    /// queues a new output, so one pass leaves all three empty.
    fn drain(&mut self, out: &mut Vec<Effect>) {
        while let Some(Persist { seq, state }) = self.node.poll_persist() {
            match self.durability {
                Durability::Correct => self.pending.push_back((seq, state)),
                Durability::Immediate => {
                    out.push(Effect::Written(encode_state(&state)));
                    let _ = self.node.persisted(seq);
                }
                Durability::ConfirmWithoutWriting => {
                    let _ = self.node.persisted(seq);
                }
            }
        }
        while let Some(Transmit { to, message }) = self.node.poll_transmit() {
            out.push(Effect::Send {
                to,
                frame: encode_message(&message),
            });
        }
        while let Some(event) = self.node.poll_event() {
            match event {
                Event::Resolved(proposal) => out.push(Effect::Resolved(proposal)),
                Event::LeadershipAcquired => {}
            }
        }
    }
}

/// A message as it crosses the network.
pub fn encode_message(message: &Message<Value>) -> Vec<u8> {
    let mut buf = [0u8; max_encoded_size::<Message<Value>>()];
    encode(message, &mut buf).map_or_else(|_| Vec::new(), <[u8]>::to_vec)
}

/// A durable state as it is written.
pub fn encode_state(state: &DurableState<Value>) -> Vec<u8> {
    let mut buf = [0u8; max_encoded_size::<DurableState<Value>>()];
    encode(state, &mut buf).map_or_else(|_| Vec::new(), <[u8]>::to_vec)
}

/// A durable state read back.
pub fn decode_state(record: &[u8]) -> Option<DurableState<Value>> {
    decode(record).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promise_waits_for_its_flush() {
        let mut a = NodeHost::new(NodeId(0), Durability::Correct);
        let prepare = a.prepare(true);
        assert!(prepare.is_empty(), "the round is persisted first");
        let (record, released) = a.flush().unwrap();
        assert_eq!(decode_state(&record).unwrap().round, 1);
        let Some(Effect::Send { frame, .. }) = released.first() else {
            panic!("{released:?}")
        };
        let mut b = NodeHost::new(NodeId(1), Durability::Correct);
        assert!(b.receive(NodeId(0), frame).is_empty(), "promise held");
        assert!(b.has_pending());
        let (_, released) = b.flush().unwrap();
        assert_eq!(released.len(), 1);
        // A crash before the flush would have lost the promise.
        let restarted = NodeHost::recover(NodeId(1), None, Durability::Correct);
        assert_eq!(restarted.node().acceptor().promised(), None);
    }
}
