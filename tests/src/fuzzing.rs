//! Bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`), as plain
//! functions so that the stable test `tests/fuzz_corpus.rs` runs them over
//! the committed seed corpus and pseudo-random inputs.
//!
//! Every body takes arbitrary bytes and panics only on a bug: a decoder or
//! a replica that panicked, a round trip that changed a value, or a broken
//! safety invariant.

use core::cell::Cell;
use core::convert::Infallible;
use paxos_core::driver::{self, Network, Storage};
use paxos_core::practical::DurableState;
use paxos_core::replica::wire::{decode_header, Items};
use paxos_core::replica::{Config, Dropped, Event, Header, PromisedEntry, Record, RecoverError, Replica, Slot, Value};
use paxos_core::{decode, encode, max_encoded_size, Bytes, Duration, Instant, Message, NodeId, NodeSet, PersistSeq};
use postcard::experimental::max_size::MaxSize;
use std::collections::{HashMap, HashSet, VecDeque};

/// The value type of the decoding target.
type DV = Bytes<64>;
/// The value type of the replica targets.
type V = Bytes<16>;
/// The replica under test: up to 3 nodes, a window of 8 slots.
pub type FuzzReplica = Replica<V, 3, 8>;

/// Most operations [`replica_inputs`] runs for one input.
pub const MAX_OPS: usize = 2_000;
/// Most frames in flight; older ones are lost when more are sent.
const MAX_IN_FLIGHT: usize = 256;
/// Bound on the records, frames and events one drain may yield.
const MAX_POLLS: usize = 10_000;

/// Counts what one drain yields, and panics past [`MAX_POLLS`]: a replica
/// that never stops producing output is a bug.
fn count(polls: &Cell<usize>, what: &str) {
    polls.set(polls.get() + 1);
    assert!(polls.get() < MAX_POLLS, "{what} does not drain");
}

/// A node's storage in the fuzzed cluster: a batch is durable once
/// appended (into `disk`, or nowhere), so each drain confirms the newest.
struct FuzzDisk<'a> {
    buf: &'a mut [u8],
    disk: Option<&'a mut Vec<Vec<u8>>>,
    appended: Option<PersistSeq>,
    polls: &'a Cell<usize>,
}

impl Storage for FuzzDisk<'_> {
    type Error = Infallible;
    const DURABLE_ON_APPEND: bool = true;

    fn buffer(&mut self) -> &mut [u8] {
        self.buf
    }

    fn append(&mut self, seq: PersistSeq, len: usize) -> Result<(), Infallible> {
        count(self.polls, "poll_persist");
        if let Some(disk) = self.disk.as_mut() {
            disk.push(self.buf[..len].to_vec());
        }
        self.appended = Some(seq);
        Ok(())
    }

    fn sync(&mut self) -> Result<Option<PersistSeq>, Infallible> {
        Ok(self.appended.take())
    }
}

/// Frames in flight: sender, recipient, bytes; oldest first.
type Wire = VecDeque<(NodeId, NodeId, Vec<u8>)>;

/// A node's frames: onto the cluster's wire (from `id`), or nowhere.
struct FuzzWire<'a> {
    buf: &'a mut [u8],
    wire: Option<(&'a mut Wire, NodeId)>,
    polls: &'a Cell<usize>,
}

impl Network for FuzzWire<'_> {
    fn buffer(&mut self) -> &mut [u8] {
        self.buf
    }

    fn send(&mut self, to: NodeSet, len: usize) {
        count(self.polls, "poll_transmit");
        let frame = &self.buf[..len];
        let Some((wire, id)) = self.wire.as_mut() else {
            return;
        };
        for to in to.iter() {
            if wire.len() >= MAX_IN_FLIGHT {
                wire.pop_front();
            }
            wire.push_back((*id, to, frame.to_vec()));
        }
    }
}

/// Persist and transmit buffers of the fuzzed replica.
fn buffers() -> (Vec<u8>, Vec<u8>) {
    (
        vec![0u8; FuzzReplica::MIN_PERSIST_BUFFER.max(FuzzReplica::MAX_MESSAGE_SIZE)],
        vec![0u8; FuzzReplica::MAX_MESSAGE_SIZE],
    )
}

/// Decodes `frame` as `M`; when that succeeds, checks that encoding it
/// again and decoding gives the same value.
fn round_trip<M>(frame: &[u8])
where
    M: Value + MaxSize + core::fmt::Debug,
{
    let Ok(value) = decode::<M>(frame) else {
        return;
    };
    let mut buf = vec![0u8; max_encoded_size::<M>()];
    let encoded = match encode(&value, &mut buf) {
        Ok(e) => e,
        Err(e) => panic!("decoded {value:?} from {frame:02x?} but cannot encode it into max_encoded_size: {e:?}"),
    };
    let again = decode::<M>(encoded).unwrap_or_else(|e| panic!("re-encoded {value:?} does not decode: {e:?}"));
    assert_eq!(again, value, "round trip changed the value decoded from {frame:02x?}");
}

/// Decodes each item of `items`, checking each one's round trip, then
/// `finish`.
fn drain_items<T>(items: Items<'_, T>)
where
    T: Value + MaxSize + core::fmt::Debug,
{
    let mut items = items;
    for item in items.by_ref() {
        let Ok(item) = item else {
            break;
        };
        let mut buf = vec![0u8; max_encoded_size::<T>()];
        let encoded = encode(&item, &mut buf).expect("an item decoded from a frame encodes in max_encoded_size");
        assert_eq!(decode::<T>(encoded).as_ref(), Ok(&item), "item round trip");
    }
    let _ = items.finish();
}

/// Fuzz target `decode_message`: arbitrary bytes as a single-decree
/// message, a durable state, a replica frame and a replica record. Never
/// panics; whatever decodes survives a round trip.
pub fn decode_message(data: &[u8]) {
    round_trip::<Message<DV>>(data);
    round_trip::<DurableState<DV>>(data);

    if let Ok((header, rest)) = decode_header::<Header>(data) {
        let mut buf = vec![0u8; max_encoded_size::<Header>()];
        let encoded = encode(&header, &mut buf).expect("a decoded header encodes");
        assert_eq!(
            decode_header::<Header>(encoded),
            Ok((header, &[][..])),
            "header round trip"
        );
        match header {
            Header::Promise { .. } => {
                if let Ok(items) = Items::<PromisedEntry<DV>>::new(rest) {
                    drain_items(items);
                }
            }
            Header::Append { .. } | Header::Learn { .. } => {
                if let Ok(items) = Items::<Option<DV>>::new(rest) {
                    drain_items(items);
                }
            }
            Header::Prepare { .. } | Header::Accepted { .. } | Header::Nack { .. } | Header::CatchUp { .. } => {}
        }
    }

    if let Ok((record, rest)) = decode_header::<Record>(data) {
        let mut buf = vec![0u8; max_encoded_size::<Record>()];
        let encoded = encode(&record, &mut buf).expect("a decoded record encodes");
        assert_eq!(
            decode_header::<Record>(encoded),
            Ok((record, &[][..])),
            "record round trip"
        );
        if matches!(record, Record::Accepted { .. } | Record::Learned { .. }) {
            if let Ok(items) = Items::<Option<DV>>::new(rest) {
                drain_items(items);
            }
        }
    }
}

/// Reads the fuzz input front to back; past the end it reports exhaustion.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn byte_or_zero(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

const MEMBERS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

fn config(id: NodeId, initial_leader: Option<NodeId>) -> Config<3> {
    Config::builder(id, &MEMBERS)
        .initial_leader(initial_leader)
        .seed(u64::from(id.0) * 7919)
        .build()
        .expect("a valid configuration")
}

/// One node of the in-memory cluster, with what survives its crashes.
struct Node {
    replica: FuzzReplica,
    up: bool,
    /// Durable record batches, in the order written.
    disk: Vec<Vec<u8>>,
    /// The first slot the application has not applied.
    applied: Slot,
}

/// A 3-node cluster driven by fuzz input, checking safety as it goes.
struct Cluster {
    nodes: Vec<Node>,
    wire: Wire,
    now: Instant,
    /// Every value decided anywhere, by slot.
    chosen: HashMap<Slot, Option<V>>,
    /// Every value proposed.
    proposed: HashSet<V>,
    /// A forged or corrupted frame was accepted: Paxos does not tolerate
    /// Byzantine peers, so safety is no longer checked (absence of panics
    /// still is).
    tainted: bool,
    /// Print every delivery (`PAXOS_FUZZ_TRACE=1`), to debug a failing input.
    trace: bool,
    persist: Vec<u8>,
    transmit: Vec<u8>,
}

impl Cluster {
    fn new(initial_leader: Option<NodeId>) -> Self {
        let nodes = MEMBERS
            .iter()
            .map(|&id| Node {
                replica: FuzzReplica::new(config(id, initial_leader), Instant::ZERO).expect("replica"),
                up: true,
                disk: Vec::new(),
                applied: 0,
            })
            .collect();
        Cluster {
            nodes,
            wire: VecDeque::new(),
            now: Instant::ZERO,
            chosen: HashMap::new(),
            proposed: HashSet::new(),
            tainted: false,
            trace: std::env::var_os("PAXOS_FUZZ_TRACE").is_some(),
            persist: buffers().0,
            transmit: buffers().1,
        }
    }

    /// Records that node `i` delivered `value` for `slot`, checking
    /// agreement, validity and in-order delivery.
    fn decided(&mut self, i: usize, slot: Slot, value: Option<V>) {
        if self.tainted {
            self.nodes[i].applied = self.nodes[i].applied.max(slot + 1);
            self.chosen.entry(slot).or_insert(value);
            return;
        }
        if self.trace {
            eprintln!("node {} decided slot {slot}: {value:?}", i + 1);
        }
        let node = &mut self.nodes[i];
        assert_eq!(slot, node.applied, "node {} delivered slot {slot} out of order", i + 1);
        node.applied = slot + 1;
        if let Some(v) = &value {
            assert!(
                self.proposed.contains(v),
                "validity: slot {slot} decided {v:?}, never proposed"
            );
        }
        match self.chosen.get(&slot) {
            Some(prev) => assert_eq!(
                prev, &value,
                "agreement: slot {slot} decided twice with different values"
            ),
            None => {
                self.chosen.insert(slot, value);
            }
        }
    }

    /// Drains node `i`, if up, through the driver loop: its batches are
    /// durable at once, its frames go on the wire, its decisions are
    /// checked.
    fn drain(&mut self, i: usize) {
        if !self.nodes[i].up {
            return;
        }
        let polls = Cell::new(0);
        let node = &mut self.nodes[i];
        let id = node.replica.id();
        let mut disk = FuzzDisk {
            buf: &mut self.persist,
            disk: Some(&mut node.disk),
            appended: None,
            polls: &polls,
        };
        let mut wire = FuzzWire {
            buf: &mut self.transmit,
            wire: Some((&mut self.wire, id)),
            polls: &polls,
        };
        let mut decided = Vec::new();
        let mut snapshots = Vec::new();
        driver::drain(&mut node.replica, self.now, &mut disk, &mut wire, |e| {
            count(&polls, "poll_event");
            match e {
                Event::Decided { slot, value, .. } => decided.push((slot, value.cloned())),
                Event::SnapshotNeeded { peer, .. } => snapshots.push(peer),
                _ => {}
            }
        })
        .expect("an in-memory disk confirms only the batches it was given");
        for (slot, value) in decided {
            self.decided(i, slot, value);
        }
        for peer in snapshots {
            self.send_snapshot(i, peer);
        }
    }

    /// [`Cluster::drain`] of every node.
    fn drain_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
    }

    /// The application of node `i` sends `peer` its state: every slot
    /// below its applied watermark.
    fn send_snapshot(&mut self, i: usize, peer: NodeId) {
        let Some(p) = MEMBERS.iter().position(|&m| m == peer) else {
            return;
        };
        let slot = self.nodes[i].applied;
        if p == i || !self.nodes[p].up || self.nodes[p].applied >= slot {
            return;
        }
        if self.nodes[p].replica.install_snapshot(self.now, slot).is_ok() {
            self.nodes[p].applied = slot;
        }
    }

    /// Hands `frame` from `from` to node `to`; returns whether it may
    /// have had an effect. A frame whose header decodes may have been
    /// partly applied even when refused as malformed (its first items
    /// are read into the log before a bad one is found).
    fn deliver(&mut self, from: NodeId, to: usize, frame: &[u8]) -> bool {
        if !self.nodes[to].up {
            return false;
        }
        let result = self.nodes[to].replica.handle_message(self.now, from, frame);
        if self.trace {
            let header = decode_header::<Header>(frame).map(|(h, _)| h);
            eprintln!("{from} -> {}: {header:?} {frame:02x?}: {result:?}", to + 1);
        }
        match result.dropped() {
            None => true,
            Some(Dropped::UnknownPeer(_)) => false,
            Some(_) => decode_header::<Header>(frame).is_ok(),
        }
    }

    fn index_of(id: NodeId) -> usize {
        usize::from(id.0).saturating_sub(1) % MEMBERS.len()
    }

    fn pick(&mut self, input: &mut Input<'_>) -> Option<usize> {
        if self.wire.is_empty() {
            return None;
        }
        Some(usize::from(input.byte_or_zero()) % self.wire.len())
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        for node in self.nodes.iter_mut().filter(|n| n.up) {
            driver::tick(&mut node.replica, self.now);
        }
    }

    fn crash_or_restart(&mut self, i: usize) {
        if self.nodes[i].up {
            self.nodes[i].up = false;
            return;
        }
        let node = &self.nodes[i];
        let mut late = Vec::new();
        let replica = FuzzReplica::recover_with(
            config(MEMBERS[i], None),
            self.now,
            node.disk.iter().map(Vec::as_slice),
            node.applied,
            |slot, value| late.push((slot, value.cloned())),
        )
        .unwrap_or_else(|e| panic!("node {} cannot recover from its own records: {e:?}", i + 1));
        self.nodes[i].replica = replica;
        self.nodes[i].up = true;
        for (slot, value) in late {
            self.decided(i, slot, value);
        }
    }
}

/// Fuzz target `replica_inputs`: the bytes are a script of deliveries,
/// losses, duplications, corruptions, time steps, proposals, crashes and
/// restarts, and forged frames, run on a 3-node cluster. Panics on a
/// replica panic or a broken invariant (agreement, validity, in-order
/// delivery), the latter checked until a forged or corrupted frame is
/// accepted.
pub fn replica_inputs(data: &[u8]) {
    replica_run(data);
}

/// What a [`replica_inputs`] run reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// Slots decided anywhere in the cluster.
    pub decided: usize,
    /// Whether a forged or corrupted frame was accepted (safety was then
    /// no longer checked).
    pub tainted: bool,
}

/// [`replica_inputs`], reporting what the run reached, so that tests can
/// check the harness is not vacuous.
pub fn replica_run(data: &[u8]) -> RunSummary {
    let mut input = Input { data };
    let initial_leader = match input.byte_or_zero() % 4 {
        0 => None,
        n => Some(NodeId(n)),
    };
    let mut c = Cluster::new(initial_leader);
    for _ in 0..MAX_OPS {
        let Some(op) = input.byte() else {
            break;
        };
        if c.trace {
            eprintln!("op {op} ({}) at {:?}, tainted {}", op % 12, c.now, c.tainted);
        }
        match op % 12 {
            0..=2 => {
                if let Some((from, to, frame)) = c.wire.pop_front() {
                    c.deliver(from, Cluster::index_of(to), &frame);
                }
            }
            3 => {
                if let Some((from, to, frame)) = c.pick(&mut input).and_then(|k| c.wire.remove(k)) {
                    c.deliver(from, Cluster::index_of(to), &frame);
                }
            }
            4 => {
                if let Some(k) = c.pick(&mut input) {
                    c.wire.remove(k);
                }
            }
            5 => {
                if let Some(k) = c.pick(&mut input) {
                    let copy = c.wire[k].clone();
                    if c.wire.len() < MAX_IN_FLIGHT {
                        c.wire.push_back(copy);
                    }
                }
            }
            6 => {
                if let Some((from, to, mut frame)) = c.pick(&mut input).and_then(|k| c.wire.remove(k)) {
                    let at = usize::from(input.byte_or_zero());
                    let xor = input.byte_or_zero().max(1);
                    let at = at % frame.len().max(1);
                    if let Some(b) = frame.get_mut(at) {
                        *b ^= xor;
                    }
                    if c.deliver(from, Cluster::index_of(to), &frame) {
                        c.tainted = true;
                    }
                }
            }
            7 | 8 => {
                let ms = u64::from(input.byte_or_zero()) * 4;
                c.advance(Duration::from_millis(ms));
            }
            9 => {
                let i = usize::from(input.byte_or_zero()) % MEMBERS.len();
                let len = usize::from(input.byte_or_zero()) % 17;
                let Ok(value) = V::from_slice(input.take(len)) else {
                    continue;
                };
                if c.nodes[i].up {
                    c.proposed.insert(value.clone());
                    let now = c.now;
                    let _ = c.nodes[i].replica.propose(now, value);
                }
            }
            10 => {
                let i = usize::from(input.byte_or_zero()) % MEMBERS.len();
                c.crash_or_restart(i);
            }
            _ => {
                // A forged frame; sender 0 is not a member.
                let from = NodeId(input.byte_or_zero() % 4);
                let to = usize::from(input.byte_or_zero()) % MEMBERS.len();
                let len = usize::from(input.byte_or_zero());
                let frame = input.take(len).to_vec();
                if c.deliver(from, to, &frame) {
                    c.tainted = true;
                }
            }
        }
        c.drain_all();
    }
    RunSummary {
        decided: c.chosen.len(),
        tainted: c.tainted,
    }
}

/// Fuzz target `recover_from_records`: restarts node 1 of 3 from record
/// batches cut out of the bytes (each a length byte then that many bytes),
/// after a header of a clock byte and an applied-slot byte. Must return a
/// replica or a typed error, never panic; a recovered replica is then
/// drained and ticked once.
pub fn recover_from_records(data: &[u8]) {
    let mut input = Input { data };
    let now = Instant::ZERO + Duration::from_millis(u64::from(input.byte_or_zero()) * 10);
    let applied = match input.byte_or_zero() {
        b @ 0..=0xEF => Slot::from(b),
        b => u64::MAX >> (b - 0xEF),
    };
    let mut batches = Vec::new();
    while let Some(len) = input.byte() {
        batches.push(input.take(usize::from(len)));
    }
    let replica = FuzzReplica::recover(config(NodeId(1), None), now, batches.iter().copied(), applied);
    let mut replica = match replica {
        Ok(r) => r,
        Err(RecoverError::Config(e)) => panic!("a valid configuration refused: {e:?}"),
        Err(_) => return,
    };
    let (mut persist, mut transmit) = buffers();
    for round in 0..2 {
        // Batches durable at once and dropped, frames dropped.
        let polls = Cell::new(0);
        let mut disk = FuzzDisk {
            buf: &mut persist,
            disk: None,
            appended: None,
            polls: &polls,
        };
        let mut wire = FuzzWire {
            buf: &mut transmit,
            wire: None,
            polls: &polls,
        };
        driver::drain(&mut replica, now, &mut disk, &mut wire, |_| count(&polls, "poll_event"))
            .expect("a disk that confirms only the batches it was given");
        if round == 0 {
            let later = replica.poll_timeout().max(now);
            driver::tick(&mut replica, later);
        }
    }
}

/// Valid traffic for the seed corpus: the frames and the record batches of
/// a short healthy run (a leader elected, a few values decided, a node
/// restarted), produced by the same harness as [`replica_inputs`].
pub fn sample_traffic() -> (Vec<Vec<u8>>, Vec<Vec<Vec<u8>>>) {
    let mut c = Cluster::new(None);
    let mut frames = Vec::new();
    for step in 0..400u32 {
        c.advance(Duration::from_millis(20));
        c.drain_all();
        if step % 40 == 7 {
            for i in 0..MEMBERS.len() {
                if let Ok(value) = V::from_slice(format!("value-{step}-{i}").as_bytes()) {
                    c.proposed.insert(value.clone());
                    let now = c.now;
                    let _ = c.nodes[i].replica.propose(now, value);
                }
            }
        }
        if step == 200 {
            c.crash_or_restart(2);
        }
        if step == 230 {
            c.crash_or_restart(2);
        }
        while let Some((from, to, frame)) = c.wire.pop_front() {
            frames.push(frame.clone());
            c.deliver(from, Cluster::index_of(to), &frame);
            c.drain_all();
        }
    }
    let disks = c.nodes.iter().map(|n| n.disk.clone()).collect();
    (frames, disks)
}
