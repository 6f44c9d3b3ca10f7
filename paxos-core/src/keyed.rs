//! Keyed consensus: any node asks `ask(key, value)` and learns the value
//! decided for that key.
//!
//! Each key is a write-once register built on the replicated log: the
//! first `Set` for a key decided in the log wins, and every later `Set`
//! for it answers with the winner (possibly another node's value).
//! Because a register never changes once written, a node that already
//! holds a key's value answers at once, and that answer is linearizable. A
//! read of a key not yet written needs either the leader's lease or a trip
//! through the log (a `Read` barrier), or it could miss a write decided
//! elsewhere a moment ago.
//!
//! The registers live in a fixed-capacity map: a `Set` for a new key when
//! the map is full is decided (the log is the log) but refused, on every
//! node alike, and the asker gets [`KeyedEvent::Full`].

use crate::ballot::NodeId;
use crate::replica::{Config, ConfigError, Event, ProposalId, ProposeError, Replica, Slot, Value};
use crate::time::Instant;
use core::hash::Hash;
use heapless::index_map::FnvIndexMap;
use serde::{Deserialize, Serialize};

/// What the log of a keyed node carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Command<K, V> {
    /// Write `value` under `key` unless the key already has a value.
    Set {
        /// The key.
        key: K,
        /// The value proposed.
        value: V,
    },
    /// A read barrier: answered with the key's value once decided.
    Read {
        /// The key.
        key: K,
    },
}

/// A command is a variant index (one byte for two variants) and its
/// fields: as wide as a `Set`.
impl<K: Value, V: Value> Value for Command<K, V> {
    const MAX_ENCODED_LEN: usize = 1 + K::MAX_ENCODED_LEN + V::MAX_ENCODED_LEN;
}

/// The answer to an ask.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Answer<V> {
    /// The key's value is known now: the ask is complete.
    Now(Option<V>),
    /// The ask went through the log; a [`KeyedEvent::Answered`] (or
    /// [`KeyedEvent::Full`], or [`KeyedEvent::Displaced`]) naming this id
    /// follows.
    Pending(ProposalId),
}

/// What a keyed node reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KeyedEvent<K, V> {
    /// The ask `proposal` is complete: `key` holds `value` (`None`: a read
    /// of a key nobody wrote).
    Answered {
        /// The ask.
        proposal: ProposalId,
        /// The key.
        key: K,
        /// Its value.
        value: Option<V>,
    },
    /// The ask `proposal` wrote a new key while every register was taken.
    Full {
        /// The ask.
        proposal: ProposalId,
    },
    /// The ask `proposal` lost its slot in a leader change: ask again.
    Displaced {
        /// The ask.
        proposal: ProposalId,
    },
    /// A command was applied at `slot` (asked here or anywhere).
    Applied {
        /// The slot.
        slot: Slot,
    },
    /// The leader changed; `leader` is the new one, if known.
    LeaderChanged {
        /// The leader.
        leader: Option<NodeId>,
    },
    /// `peer` is behind this node's log: send it a snapshot of the
    /// registers (see [`KeyedNode::registers`]).
    SnapshotNeeded {
        /// The node behind.
        peer: NodeId,
        /// The first slot it lacks.
        from: Slot,
    },
}

/// A node of a keyed-consensus cluster: a [`Replica`] whose log carries
/// [`Command`]s, and the registers those commands build.
///
/// Drive it as a replica (its `replica_mut` gives the inputs and the
/// transmit and persist outputs), but take events from
/// [`KeyedNode::poll_event`], which applies decided commands.
#[derive(Clone, Debug)]
pub struct KeyedNode<K, V, const N: usize, const W: usize, const CAP: usize>
where
    K: Eq + Hash,
{
    replica: Replica<Command<K, V>, N, W>,
    registers: FnvIndexMap<K, V, CAP>,
    applied: Slot,
}

impl<K, V, const N: usize, const W: usize, const CAP: usize> KeyedNode<K, V, N, W, CAP>
where
    K: Value + Hash,
    V: Value,
{
    /// A fresh node.
    pub fn new(config: Config<N>, now: Instant) -> Result<Self, ConfigError> {
        Ok(Self::with_replica(Replica::new(config, now)?))
    }

    /// A node restarted from its replica's durable records. The registers
    /// are rebuilt from every decided command the records hold.
    pub fn recover<'r>(
        config: Config<N>,
        now: Instant,
        batches: impl IntoIterator<Item = &'r [u8]>,
    ) -> Result<Self, crate::replica::RecoverError> {
        Self::recover_from(config, now, 0, core::iter::empty(), batches)
    }

    /// A node restarted from a snapshot of its registers covering every
    /// slot below `applied`, and the records written since: commands from
    /// `applied` on are applied again (a `Set` is idempotent, so overlap is
    /// harmless).
    pub fn recover_from<'r>(
        config: Config<N>,
        now: Instant,
        applied: Slot,
        registers: impl IntoIterator<Item = (K, V)>,
        batches: impl IntoIterator<Item = &'r [u8]>,
    ) -> Result<Self, crate::replica::RecoverError> {
        let mut map: FnvIndexMap<K, V, CAP> = FnvIndexMap::new();
        for (k, v) in registers {
            if !map.contains_key(&k) {
                let _ = map.insert(k, v);
            }
        }
        let replica = Replica::recover_with(config, now, batches, applied, |_, command: Option<&Command<K, V>>| {
            if let Some(Command::Set { key, value }) = command {
                if !map.contains_key(key) {
                    let _ = map.insert(key.clone(), value.clone());
                }
            }
        })?;
        let applied = replica.delivered();
        Ok(KeyedNode {
            replica,
            registers: map,
            applied,
        })
    }

    /// A node around a replica (for instance one from
    /// [`Replica::recover`]), with empty registers: decided commands are
    /// applied again from the replica's delivered slot.
    pub fn with_replica(replica: Replica<Command<K, V>, N, W>) -> Self {
        let applied = replica.delivered();
        KeyedNode {
            replica,
            registers: FnvIndexMap::new(),
            applied,
        }
    }

    /// Asks for the value of `key`, proposing `value` if it has none.
    /// Known keys answer at once; otherwise the leader proposes a `Set`.
    pub fn ask(&mut self, now: Instant, key: K, value: V) -> Result<Answer<V>, ProposeError> {
        if let Some(v) = self.registers.get(&key) {
            return Ok(Answer::Now(Some(v.clone())));
        }
        self.replica
            .propose(now, Command::Set { key, value })
            .map(Answer::Pending)
    }

    /// Reads `key`. Known keys answer at once; a leader holding a lease
    /// answers "none" at once; otherwise the leader sends a read barrier
    /// through the log.
    pub fn read(&mut self, now: Instant, key: K) -> Result<Answer<V>, ProposeError> {
        if let Some(v) = self.registers.get(&key) {
            return Ok(Answer::Now(Some(v.clone())));
        }
        if self.replica.can_read_locally(now) {
            return Ok(Answer::Now(None));
        }
        self.replica.propose(now, Command::Read { key }).map(Answer::Pending)
    }

    /// The value of `key` known here, without any guarantee that an
    /// absent key is unwritten.
    pub fn local(&self, key: &K) -> Option<&V> {
        self.registers.get(key)
    }

    /// Every register known here.
    pub fn registers(&self) -> impl Iterator<Item = (&K, &V)> {
        self.registers.iter()
    }

    /// The first slot not yet applied to the registers.
    pub fn applied(&self) -> Slot {
        self.applied
    }

    /// The replica underneath.
    pub fn replica(&self) -> &Replica<Command<K, V>, N, W> {
        &self.replica
    }

    /// The replica underneath, for inputs and for draining transmits and
    /// persists. Take events from [`KeyedNode::poll_event`] only.
    pub fn replica_mut(&mut self) -> &mut Replica<Command<K, V>, N, W> {
        &mut self.replica
    }

    /// Installs registers received as a snapshot covering every slot below
    /// `slot`.
    pub fn install_snapshot(
        &mut self,
        now: Instant,
        slot: Slot,
        registers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), crate::replica::Dropped> {
        self.replica.install_snapshot(now, slot)?;
        for (k, v) in registers {
            if !self.registers.contains_key(&k) {
                let _ = self.registers.insert(k, v);
            }
        }
        self.applied = self.applied.max(slot);
        Ok(())
    }

    /// The next event, applying decided commands on the way.
    pub fn poll_event(&mut self) -> Option<KeyedEvent<K, V>> {
        loop {
            let event = match self.replica.poll_event()? {
                Event::Decided { slot, value, proposal } => {
                    let command = value.cloned();
                    self.applied = slot + 1;
                    match self.apply(command, proposal) {
                        Some(answer) => answer,
                        None => KeyedEvent::Applied { slot },
                    }
                }
                Event::Displaced { proposal } => KeyedEvent::Displaced { proposal },
                Event::LeaderChanged { leader } => KeyedEvent::LeaderChanged { leader },
                Event::SnapshotNeeded { peer, from } => KeyedEvent::SnapshotNeeded { peer, from },
                Event::LeadershipAcquired { .. } | Event::LeadershipLost => continue,
            };
            return Some(event);
        }
    }

    /// Applies one decided command; returns the answer owed to a local ask.
    fn apply(&mut self, command: Option<Command<K, V>>, proposal: Option<ProposalId>) -> Option<KeyedEvent<K, V>> {
        let key = match command? {
            Command::Set { key, value } => {
                if !self.registers.contains_key(&key) && self.registers.insert(key.clone(), value).is_err() {
                    // Full: every node refuses the same command alike.
                    return proposal.map(|proposal| KeyedEvent::Full { proposal });
                }
                key
            }
            Command::Read { key } => key,
        };
        let proposal = proposal?;
        let value = self.registers.get(&key).cloned();
        Some(KeyedEvent::Answered { proposal, key, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Bytes;

    type K = Bytes<8>;
    type Node = KeyedNode<K, Bytes<8>, 3, 8, 4>;

    fn b(s: &str) -> Bytes<8> {
        Bytes::try_from(s).unwrap()
    }

    fn single(now: Instant) -> Node {
        let config = Config::builder(NodeId(1), &[NodeId(1)])
            .initial_leader(NodeId(1))
            .build()
            .unwrap();
        Node::new(config, now).unwrap()
    }

    /// Runs a one-node cluster to quiescence: persists confirmed at once.
    fn settle(node: &mut Node, now: Instant) -> heapless::Vec<KeyedEvent<K, Bytes<8>>, 16> {
        let mut buf = [0u8; 512];
        let mut events = heapless::Vec::new();
        while let Some(p) = node.replica_mut().poll_persist(&mut buf) {
            node.replica_mut().persisted(now, p.seq).unwrap();
        }
        while let Some(e) = node.poll_event() {
            events.push(e).unwrap();
        }
        events
    }

    #[test]
    fn first_writer_wins_and_later_asks_learn_the_winner() {
        let now = Instant::ZERO;
        let mut n = single(now);
        let Answer::Pending(first) = n.ask(now, b("k"), b("one")).unwrap() else {
            panic!()
        };
        let Answer::Pending(second) = n.ask(now, b("k"), b("two")).unwrap() else {
            panic!()
        };
        let events = settle(&mut n, now);
        assert!(events.contains(&KeyedEvent::Answered {
            proposal: first,
            key: b("k"),
            value: Some(b("one"))
        }));
        assert!(events.contains(&KeyedEvent::Answered {
            proposal: second,
            key: b("k"),
            value: Some(b("one"))
        }));
        // Known now: answered without the log.
        assert_eq!(n.ask(now, b("k"), b("three")).unwrap(), Answer::Now(Some(b("one"))));
        assert_eq!(n.read(now, b("k")).unwrap(), Answer::Now(Some(b("one"))));
    }

    #[test]
    fn reads_of_unknown_keys_go_through_the_log_without_a_lease() {
        let now = Instant::ZERO;
        let mut n = single(now);
        let Answer::Pending(read) = n.read(now, b("nobody")).unwrap() else {
            panic!()
        };
        let events = settle(&mut n, now);
        assert!(events.contains(&KeyedEvent::Answered {
            proposal: read,
            key: b("nobody"),
            value: None
        }));
    }

    #[test]
    fn a_full_map_refuses_new_keys_but_answers_known_ones() {
        let now = Instant::ZERO;
        let mut n = single(now);
        for k in ["a", "b", "c", "d"] {
            n.ask(now, b(k), b(k)).unwrap();
        }
        settle(&mut n, now);
        let Answer::Pending(p) = n.ask(now, b("e"), b("e")).unwrap() else {
            panic!()
        };
        let events = settle(&mut n, now);
        assert!(events.contains(&KeyedEvent::Full { proposal: p }));
        assert_eq!(n.local(&b("e")), None);
        assert_eq!(n.ask(now, b("a"), b("z")).unwrap(), Answer::Now(Some(b("a"))));
        assert_eq!(n.registers().count(), 4);
    }

    #[test]
    fn recovery_rebuilds_the_registers_from_the_records() {
        let now = Instant::ZERO;
        let mut n = single(now);
        let mut disk: heapless::Vec<heapless::Vec<u8, 512>, 64> = heapless::Vec::new();
        let mut buf = [0u8; 512];
        // More asks than the window holds, so replay pushes some out.
        for i in 0..12u8 {
            let k = Bytes::from_slice(&[b'k', i]).unwrap();
            n.ask(now, k, b("v")).unwrap();
            while let Some(p) = n.replica_mut().poll_persist(&mut buf) {
                disk.push(heapless::Vec::from_slice(&buf[..p.len]).unwrap()).unwrap();
                n.replica_mut().persisted(now, p.seq).unwrap();
            }
            while n.poll_event().is_some() {}
        }
        // Idle for a heartbeat interval: the last watermark is written too.
        let now = now + n.replica().config().heartbeat_interval;
        n.replica_mut().handle_timeout(now);
        while let Some(p) = n.replica_mut().poll_persist(&mut buf) {
            disk.push(heapless::Vec::from_slice(&buf[..p.len]).unwrap()).unwrap();
            n.replica_mut().persisted(now, p.seq).unwrap();
        }
        let config = n.replica().config().clone();
        let mut r = Node::recover(config, now, disk.iter().map(|b| b.as_slice())).unwrap();
        while r.poll_event().is_some() {}
        // The map holds 4: the first four keys won their registers.
        assert_eq!(r.registers().count(), 4);
        for i in 0..4u8 {
            assert_eq!(r.local(&Bytes::from_slice(&[b'k', i]).unwrap()), Some(&b("v")));
        }
        assert_eq!(r.applied(), 12);
    }

    #[test]
    fn followers_refuse_with_a_leader_hint() {
        let now = Instant::ZERO;
        let ids = [NodeId(1), NodeId(2), NodeId(3)];
        let config = Config::builder(NodeId(2), &ids)
            .initial_leader(NodeId(1))
            .build()
            .unwrap();
        let mut n = Node::new(config, now).unwrap();
        assert_eq!(
            n.ask(now, b("k"), b("v")),
            Err(ProposeError::NotLeader {
                leader: Some(NodeId(1))
            })
        );
    }
}
