//! A driver for the Multi-Paxos [`Replica`] in which records are durable
//! only once a separate [`ReplicaHost::flush`] step wrote them, with the
//! application around it: the delivered log, the clients' proposals, and a
//! virtual clock.
//!
//! It drives the replica through the one driver loop,
//! `paxos_core::driver::drain`, after every input, over a [`Storage`]
//! that queues each batch here, in memory, and whose sync reports nothing
//! until [`ReplicaHost::flush`] writes the oldest batch to the durable log
//! (the drain that follows confirms it). Why not one plain `drain` per
//! input, as a real driver does:
//!
//! - **the flush is its own step**, so that the checker explores every
//!   interleaving of writes with deliveries and crashes: a real storage
//!   makes batches durable in the background, the model makes it an
//!   action;
//! - **a step drains until the replica is quiet** (`drain` again while the
//!   last one did anything): what a confirmation releases — the records
//!   of an election just won, say — is written within the same step, as
//!   a real driver would at its next turn. Ending the step earlier would
//!   only add states where that work waits, and lengthen the bug hunts'
//!   counterexamples past their bounds.
//!
//! A restart hands the durable log to `Replica::recover_with` with
//! `applied = 0`: the application keeps nothing durable, so every decided
//! slot is delivered again, which the model checks against what was
//! delivered before the crash.
//!
//! Time: each host has its own clock, which only [`ReplicaHost::tick`]
//! moves (see there); every other input is handled at the current clock.

use super::fingerprint::{replica_shape, replica_text, Fingerprint};
use core::convert::Infallible;
use paxos_core::driver::{self, Drained, Network, Storage};
use paxos_core::practical::PersistSeq;
use paxos_core::replica::{Config, Event, ProposalId, ProposeError, RecoverError, Replica, Slot};
use paxos_core::{Duration, Instant, NodeId, NodeSet};
use std::collections::VecDeque;

/// The value type of the replica model.
pub type Value = u8;
/// The default cluster size (the bug scenarios that need a larger one
/// name it: every type and function here takes the size as `N`).
pub const NODES: usize = 3;
/// The log window: slots in flight and in memory.
pub const WINDOW: usize = 4;
/// The production replica under test, in a cluster of `N`.
pub type ModelReplica<const N: usize = NODES> = Replica<Value, N, WINDOW>;

/// The heartbeat interval of the model cluster.
pub const HEARTBEAT: Duration = Duration::from_micros(10);
/// The election timeout (the jitter adds up to as much again).
pub const ELECTION: Duration = Duration::from_micros(30);
/// The leader's retransmission timeout.
pub const RETRANSMIT: Duration = Duration::from_micros(20);
/// How far a tick moves the clock of a follower or candidate: past any
/// election deadline it can have set, whatever the jitter.
pub const FOLLOWER_STEP: Duration = Duration::from_micros(2 * 30);

/// The members of a cluster of `N`: `NodeId(0)..NodeId(N)`.
pub fn members<const N: usize>() -> [NodeId; N] {
    core::array::from_fn(|i| NodeId(i as u8))
}

/// The configuration of node `id` in a cluster of `N` (the same before
/// and after a restart).
pub fn config<const N: usize>(id: NodeId, initial_leader: Option<NodeId>) -> Config<N> {
    Config::builder(id, &members::<N>())
        .heartbeat_interval(HEARTBEAT)
        .election_timeout(ELECTION)
        .retransmit_timeout(RETRANSMIT)
        .initial_leader(initial_leader)
        .seed(0x9e37 + u64::from(id.0))
        .build()
        .expect("valid members")
}

/// How the driver treats durability: correctly, or with a bug injected on
/// purpose to show that the model checker catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Confirm a batch only after writing it, in a later step
    /// ([`ReplicaHost::flush`]): a crash in between loses it.
    Correct,
    /// Write and confirm every batch at once, within the step that made it
    /// ([`Effect::Written`]; the drain's sync reports it), as a driver
    /// with a very fast disk would. For nodes the model never crashes: it
    /// spares the model their flush steps, at the price of never holding
    /// their replies back (a held reply is encoded when it leaves, from
    /// the state of that moment; the node that may crash still explores
    /// that).
    Immediate,
    /// Bug: confirm every batch at once and never write it.
    ConfirmWithoutWriting,
}

/// The answer to a client's proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reply {
    /// This node does not lead; the hint names the leader it knows of.
    Redirect(Option<NodeId>),
    /// The pipeline window is full.
    Busy,
    /// The proposal lost its slot to another value (it may still be
    /// decided later: retry).
    Displaced,
    /// The proposal was decided at `slot`; `first` is the first value of
    /// the log, which is the write-once register's value.
    Decided {
        /// The slot.
        slot: Slot,
        /// The first non-no-op value of the log.
        first: Value,
    },
}

/// What a step produced for the rest of the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send `frame` to node `to`.
    Send {
        /// The recipient.
        to: NodeId,
        /// The encoded message.
        frame: Vec<u8>,
    },
    /// The application applied `slot` (`None`: a no-op).
    Delivered {
        /// The slot.
        slot: Slot,
        /// The value.
        value: Option<Value>,
    },
    /// With [`Durability::Immediate`]: append this batch to the durable
    /// log.
    Written(Vec<u8>),
    /// Answer client `client`.
    Reply {
        /// The client's tag, as given to [`ReplicaHost::propose`].
        client: u8,
        /// The answer.
        reply: Reply,
    },
}

/// Contract violations the driver itself observes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Faults {
    /// A `Decided` event that was not the next slot to apply.
    pub out_of_order: bool,
    /// A `Decided` event naming a local proposal whose value is not the
    /// one decided.
    pub wrong_origin: bool,
    /// A record the replica wrote did not read back.
    pub unrecoverable: bool,
}

impl Faults {
    /// Whether any fault was seen.
    pub fn any(&self) -> bool {
        self.out_of_order || self.wrong_origin || self.unrecoverable
    }
}

/// A replica of a cluster of `N`, its unwritten records, its clock and
/// its application.
#[derive(Clone, Debug)]
pub struct ReplicaHost<const N: usize = NODES> {
    replica: ModelReplica<N>,
    clock: Instant,
    /// Batches handed out by `poll_persist`, not yet written; oldest
    /// first. Lost in a crash.
    pending: VecDeque<(PersistSeq, Vec<u8>)>,
    /// The values applied in this lifetime, slot by slot from 0.
    applied: Vec<Option<Value>>,
    /// Local proposals awaiting an outcome: id, client, value.
    proposals: Vec<(ProposalId, u8, Value)>,
    faults: Faults,
    durability: Durability,
}

impl<const N: usize> Fingerprint for ReplicaHost<N> {
    /// The replica as [`replica_text`] renders it, and the rest in full.
    fn fingerprint_text(&self) -> String {
        self.text(replica_text(&self.replica))
    }
}

impl<const N: usize> super::HoldsReplies for ReplicaHost<N> {
    fn has_pending(&self) -> bool {
        ReplicaHost::has_pending(self)
    }

    fn shape_text(&self) -> String {
        self.text(replica_shape(&self.replica))
    }
}

impl<const N: usize> ReplicaHost<N> {
    fn text(&self, replica: String) -> String {
        format!(
            "{} {:?} {:?} {:?} {:?} {:?} {:?}",
            replica, self.clock, self.pending, self.applied, self.proposals, self.faults, self.durability
        )
    }
}

impl<const N: usize> ReplicaHost<N> {
    /// A fresh node at time zero.
    pub fn new(config: Config<N>, durability: Durability) -> (Self, Vec<Effect>) {
        let replica = ModelReplica::<N>::new(config, Instant::ZERO).expect("valid config");
        let mut host = Self::from_replica(replica, Instant::ZERO, durability);
        let mut out = Vec::new();
        host.drain(&mut out);
        (host, out)
    }

    /// A node restarted at `clock` from its durable log (batches in the
    /// order written).
    pub fn recover(
        config: Config<N>,
        clock: Instant,
        log: &[Vec<u8>],
        durability: Durability,
    ) -> Result<(Self, Vec<Effect>), RecoverError> {
        let mut early = Vec::new();
        // The driver's first-boot rule: a log that never held a durable
        // batch means nothing was revealed, and the node boots as new.
        let replica = if log.is_empty() {
            ModelReplica::<N>::new(config, clock).map_err(RecoverError::Config)?
        } else {
            ModelReplica::<N>::recover_with(config, clock, log.iter().map(Vec::as_slice), 0, |slot, value| {
                early.push((slot, value.copied()))
            })?
        };
        let mut host = Self::from_replica(replica, clock, durability);
        let mut out = Vec::new();
        for (slot, value) in early {
            host.deliver(slot, value, None, &mut out);
        }
        host.drain(&mut out);
        Ok((host, out))
    }

    fn from_replica(replica: ModelReplica<N>, clock: Instant, durability: Durability) -> Self {
        ReplicaHost {
            replica,
            clock,
            pending: VecDeque::new(),
            applied: Vec::new(),
            proposals: Vec::new(),
            faults: Faults::default(),
            durability,
        }
    }

    /// The replica.
    pub fn replica(&self) -> &ModelReplica<N> {
        &self.replica
    }

    /// This node's clock.
    pub fn clock(&self) -> Instant {
        self.clock
    }

    /// The values applied in this lifetime, from slot 0.
    pub fn applied(&self) -> &[Option<Value>] {
        &self.applied
    }

    /// Violations seen so far.
    pub fn faults(&self) -> Faults {
        self.faults
    }

    /// Whether a batch waits for [`ReplicaHost::flush`].
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// A frame from node `from`. Refused frames are dropped (and counted
    /// by the replica), as a lossy network would drop them.
    ///
    /// A frame whose only effect would be one more copy of a message that
    /// is already held for the same persist is ignored (the replica is left
    /// as it was), for the reason `NodeHost::receive` in
    /// [`super::single`] gives: more copies of a held message only send the
    /// same frame again and make the replica refuse input sooner, which
    /// fewer copies can match by not receiving that input.
    pub fn receive(&mut self, from: NodeId, frame: &[u8]) -> Vec<Effect> {
        super::unless_only_held_grew(self, |host| {
            let _ = host.replica.handle_message(host.clock, from, frame);
            let mut out = Vec::new();
            host.drain(&mut out);
            out
        })
    }

    /// Client `client` asks to append `value`.
    pub fn propose(&mut self, client: u8, value: Value) -> Vec<Effect> {
        let mut out = Vec::new();
        match self.replica.propose(self.clock, value) {
            Ok(id) => self.proposals.push((id, client, value)),
            Err(ProposeError::NotLeader { leader }) => out.push(Effect::Reply {
                client,
                reply: Reply::Redirect(leader),
            }),
            Err(_) => out.push(Effect::Reply {
                client,
                reply: Reply::Busy,
            }),
        }
        self.drain(&mut out);
        out
    }

    /// The node's timer fired. A leader's clock moves to its next
    /// deadline (`poll_timeout`); a follower's or candidate's moves by
    /// [`FOLLOWER_STEP`], past any election deadline it can have, so it
    /// campaigns. Either way the clock never goes back.
    pub fn tick(&mut self) -> Vec<Effect> {
        self.clock = if self.replica.is_leader() {
            self.clock.max(self.replica.poll_timeout())
        } else {
            self.clock + FOLLOWER_STEP
        };
        self.replica.handle_timeout(self.clock);
        let mut out = Vec::new();
        self.drain(&mut out);
        out
    }

    /// Writes the oldest unwritten batch and confirms it. Returns the batch
    /// (to append to the durable log) and what the confirmation released;
    /// `None` if nothing was pending.
    pub fn flush(&mut self) -> Option<(Vec<u8>, Vec<Effect>)> {
        let (seq, batch) = self.pending.pop_front()?;
        let mut out = Vec::new();
        self.drain_after(Some(seq), &mut out);
        Some((batch, out))
    }

    fn drain(&mut self, out: &mut Vec<Effect>) {
        self.drain_after(None, out);
    }

    /// Drains the replica through the driver loop until it is quiet;
    /// `flushed` is a batch just made durable, which the first drain's
    /// sync reports.
    fn drain_after(&mut self, flushed: Option<PersistSeq>, out: &mut Vec<Effect>) {
        let size = ModelReplica::<N>::MAX_MESSAGE_SIZE + ModelReplica::<N>::MIN_PERSIST_BUFFER;
        let (mut persist, mut transmit) = (vec![0u8; size], vec![0u8; size]);
        let mut flushed = flushed;
        loop {
            let mut disk = HostDisk {
                buf: &mut persist,
                durability: self.durability,
                pending: &mut self.pending,
                written: Vec::new(),
                durable: flushed.take(),
            };
            let mut events = Vec::new();
            let drained = driver::drain(
                &mut self.replica,
                self.clock,
                &mut disk,
                &mut Sends(out, &mut transmit),
                |e| {
                    events.push(match e {
                        Event::Decided { slot, value, proposal } => Outcome::Decided(slot, value.copied(), proposal),
                        Event::Displaced { proposal } => Outcome::Displaced(proposal),
                        _ => Outcome::Other,
                    });
                },
            )
            // Every batch the disk reports came from `poll_persist`.
            .unwrap_or_else(|e| panic!("the model's storage: {e:?}"));
            out.extend(disk.written.into_iter().map(Effect::Written));
            for event in events {
                match event {
                    Outcome::Decided(slot, value, proposal) => self.deliver(slot, value, proposal, out),
                    Outcome::Displaced(proposal) => {
                        if let Some(at) = self.proposals.iter().position(|p| p.0 == proposal) {
                            let (_, client, _) = self.proposals.remove(at);
                            out.push(Effect::Reply {
                                client,
                                reply: Reply::Displaced,
                            });
                        }
                    }
                    Outcome::Other => {}
                }
            }
            if drained == Drained::default() {
                return;
            }
        }
    }

    /// The application applies `slot`; a local proposal decided there is
    /// answered.
    fn deliver(&mut self, slot: Slot, value: Option<Value>, proposal: Option<ProposalId>, out: &mut Vec<Effect>) {
        if slot != self.applied.len() as Slot {
            self.faults.out_of_order = true;
            return;
        }
        self.applied.push(value);
        out.push(Effect::Delivered { slot, value });
        let Some(id) = proposal else { return };
        let Some(at) = self.proposals.iter().position(|p| p.0 == id) else {
            return;
        };
        let (_, client, proposed) = self.proposals.remove(at);
        if value != Some(proposed) {
            self.faults.wrong_origin = true;
            return;
        }
        if let Some(&first) = self.applied.iter().flatten().next() {
            out.push(Effect::Reply {
                client,
                reply: Reply::Decided { slot, first },
            });
        }
    }

    /// Marks the durable log as unreadable (the model found a record the
    /// replica itself wrote that `recover` refused).
    pub fn set_unrecoverable(&mut self) {
        self.faults.unrecoverable = true;
    }
}

/// The host's storage, as the driver loop sees it.
struct HostDisk<'a> {
    buf: &'a mut [u8],
    durability: Durability,
    /// [`Durability::Correct`]: batches wait here for a flush.
    pending: &'a mut VecDeque<(PersistSeq, Vec<u8>)>,
    /// [`Durability::Immediate`]: batches written by this drain.
    written: Vec<Vec<u8>>,
    /// The newest batch durable and not yet reported.
    durable: Option<PersistSeq>,
}

impl Storage for HostDisk<'_> {
    type Error = Infallible;

    fn buffer(&mut self) -> &mut [u8] {
        self.buf
    }

    fn append(&mut self, seq: PersistSeq, len: usize) -> Result<(), Infallible> {
        let batch = &self.buf[..len];
        match self.durability {
            Durability::Correct => self.pending.push_back((seq, batch.to_vec())),
            Durability::Immediate => {
                self.written.push(batch.to_vec());
                self.durable = Some(seq);
            }
            Durability::ConfirmWithoutWriting => self.durable = Some(seq),
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<Option<PersistSeq>, Infallible> {
        Ok(self.durable.take())
    }
}

/// Frames as [`Effect::Send`]s, one per recipient.
struct Sends<'a>(&'a mut Vec<Effect>, &'a mut [u8]);

impl Network for Sends<'_> {
    fn buffer(&mut self) -> &mut [u8] {
        self.1
    }

    fn send(&mut self, to: NodeSet, len: usize) {
        let frame = &self.1[..len];
        for to in to.iter() {
            self.0.push(Effect::Send {
                to,
                frame: frame.to_vec(),
            });
        }
    }
}

/// What an event means to the host, owned.
enum Outcome {
    Decided(Slot, Option<Value>, Option<ProposalId>),
    Displaced(ProposalId),
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_initial_leader_decides_with_one_follower_after_flushes() {
        let leader = Some(NodeId(0));
        let (mut a, _) = ReplicaHost::<NODES>::new(config(NodeId(0), leader), Durability::Correct);
        let (mut b, _) = ReplicaHost::<NODES>::new(config(NodeId(1), leader), Durability::Correct);
        let out = a.propose(7, 42);
        assert!(out.is_empty(), "the leader's ballot is not durable yet");
        let (_, out) = a.flush().unwrap();
        let append = out
            .iter()
            .find_map(|e| match e {
                Effect::Send { to, frame } if *to == NodeId(1) => Some(frame.clone()),
                _ => None,
            })
            .expect("append to node 1");
        assert!(b.receive(NodeId(0), &append).is_empty(), "vote held");
        let (_, released) = b.flush().unwrap();
        let Some(Effect::Send { frame, .. }) = released.first() else {
            panic!("{released:?}")
        };
        let mut out = a.receive(NodeId(1), frame);
        assert!(out.is_empty(), "the leader's own vote is not durable yet");
        while let Some((_, released)) = a.flush() {
            out.extend(released);
        }
        assert!(
            out.contains(&Effect::Reply {
                client: 7,
                reply: Reply::Decided { slot: 0, first: 42 }
            }),
            "{out:?}"
        );
        assert_eq!(a.applied(), &[Some(42)]);
        assert!(!a.faults().any());
    }

    #[test]
    fn in_a_cluster_of_five_a_leader_needs_two_followers() {
        let leader = Some(NodeId(0));
        let node = |i: u8| ReplicaHost::<5>::new(config(NodeId(i), leader), Durability::Immediate).0;
        let mut a = node(0);
        let append = |out: &[Effect], to: u8| {
            out.iter()
                .find_map(|e| match e {
                    Effect::Send { to: t, frame } if *t == NodeId(to) => Some(frame.clone()),
                    _ => None,
                })
                .expect("an append")
        };
        let out = a.propose(7, 42);
        let mut votes = Vec::new();
        for i in [1, 2] {
            let reply = node(i).receive(NodeId(0), &append(&out, i));
            votes.push(append(&reply, 0));
        }
        assert!(a
            .receive(NodeId(1), &votes[0])
            .iter()
            .all(|e| !matches!(e, Effect::Delivered { .. })));
        assert_eq!(a.applied(), &[], "two votes of five decide nothing");
        a.receive(NodeId(2), &votes[1]);
        assert_eq!(a.applied(), &[Some(42)]);
    }
}
