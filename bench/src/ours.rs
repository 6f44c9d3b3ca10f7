//! This library's replica under the harness, driven by the one driver
//! loop (`paxos_core::driver::drain`): frames (encoded once, addressed to
//! a node set) go onto the wire as they are; record batches are appended
//! to an in-memory log per node, durable at once, so each drain's sync
//! confirms the newest.
//!
//! Values are either `paxos_core::Bytes<C>`, held inline (a move copies
//! the capacity `C`), or `paxos_std::Payload`, a shared buffer (a move
//! copies a pointer). Either way the bytes of a value are touched where
//! the peers touch theirs: copied once from the proposal, encoded into
//! each record and each frame, decoded from each frame; the ledger reads
//! its first 8 bytes in place. A `Payload` is decoded as the std runtime
//! decodes it: each frame a buffer of its own (a slice of the wire's
//! pool), decoded inside `paxos_std::payload::decoding_from`, so that a
//! value of [`paxos_std::payload::SHARE_MIN`] bytes or more shares the
//! frame instead of being copied out of it.

use crate::harness::{self, Cluster, Disagreement, Ledger};
use crate::wire::{Frame, Wire};
use crate::{Mode, Totals};
use core::convert::Infallible;
use core::ops::Deref;
use paxos_core::driver::{self, Network, Storage};
use paxos_core::replica::{Config, Event, Replica, Value};
use paxos_core::{Bytes, Instant, NodeId, NodeSet, PersistSeq};
use paxos_std::Payload;

/// The capacities of the inline replicas built: a mode's capacity is one
/// of them.
pub const INLINE_CAPACITIES: [usize; 2] = [64, 4096];

/// Runs `mode` with inline values of the mode's capacity.
pub fn run_inline(mode: Mode, commits: u64) -> Result<Totals, Disagreement> {
    match mode.capacity {
        64 => run_as::<Bytes<64>>(mode, commits),
        _ => run_as::<Bytes<4096>>(mode, commits),
    }
}

/// Runs `mode` with `Payload` values.
pub fn run_payload(mode: Mode, commits: u64) -> Result<Totals, Disagreement> {
    run_as::<Payload>(mode, commits)
}

/// Runs `mode` with values of type `T` and the replica sizes the mode
/// needs (nodes, window).
fn run_as<T: BenchValue>(mode: Mode, commits: u64) -> Result<Totals, Disagreement> {
    match (mode.nodes, mode.window) {
        (5, _) => harness::run(&mut Ours::<T, 5, 256>::new(mode), mode, commits),
        (_, 1) => harness::run(&mut Ours::<T, 3, 256>::new(mode), mode, commits),
        _ => harness::run(&mut Ours::<T, 3, 512>::new(mode), mode, commits),
    }
}

/// A value type the benchmark can propose and read back.
pub trait BenchValue: Value + Deref<Target = [u8]> + 'static {
    /// A value holding a copy of `bytes`, or `None` if they do not fit.
    fn from_proposal(bytes: &[u8]) -> Option<Self>;

    /// Whether values of this type decoded from a frame may share it.
    const SHARES: bool = false;

    /// Runs `decode` over `frame`'s bytes, as a runtime holding values of
    /// this type decodes a received frame.
    fn decoding<R>(frame: Frame<'_>, decode: impl FnOnce(&[u8]) -> R) -> R {
        decode(frame.bytes())
    }
}

impl<const C: usize> BenchValue for Bytes<C> {
    fn from_proposal(bytes: &[u8]) -> Option<Self> {
        Bytes::from_slice(bytes).ok()
    }
}

impl BenchValue for Payload {
    const SHARES: bool = true;

    fn from_proposal(bytes: &[u8]) -> Option<Self> {
        Payload::from_slice(bytes)
    }

    /// As the std runtime does: the frame is a buffer of its own, and the
    /// values decoded from it may share it.
    fn decoding<R>(frame: Frame<'_>, decode: impl FnOnce(&[u8]) -> R) -> R {
        let frame = frame.shared();
        paxos_std::payload::decoding_from(&frame, || decode(&frame))
    }
}

/// A cluster of `N` replicas with values of type `T` and a `W`-slot
/// window.
pub struct Ours<T: BenchValue, const N: usize, const W: usize> {
    nodes: Vec<Replica<T, N, W>>,
    disks: Vec<Disk>,
    /// The room every frame and record batch may need.
    room: usize,
    now: Instant,
}

/// A node's in-memory log: it starts over past a limit, as compaction
/// would. A batch is durable once appended; the replica writes it in
/// place, into at most `room` bytes, so one always fits past the limit.
struct Disk {
    bytes: Vec<u8>,
    room: usize,
    end: usize,
    /// The newest batch appended and not yet reported by `sync`.
    appended: Option<PersistSeq>,
}

impl Storage for Disk {
    type Error = Infallible;
    const DURABLE_ON_APPEND: bool = true;

    fn buffer(&mut self) -> &mut [u8] {
        &mut self.bytes[self.end..self.end + self.room]
    }

    fn append(&mut self, seq: PersistSeq, len: usize) -> Result<(), Infallible> {
        self.end += len;
        if self.end > DISK_LIMIT {
            self.end = 0;
        }
        self.appended = Some(seq);
        Ok(())
    }

    fn sync(&mut self) -> Result<Option<PersistSeq>, Infallible> {
        Ok(self.appended.take())
    }
}

/// Node index `from`'s side of the wire.
struct Sender<'w> {
    wire: &'w mut Wire,
    from: usize,
    /// The room every frame may need.
    room: usize,
}

impl Network for Sender<'_> {
    fn buffer(&mut self) -> &mut [u8] {
        self.wire.reserve(self.room)
    }

    fn send(&mut self, to: NodeSet, len: usize) {
        self.wire.commit(len);
        for peer in to.iter() {
            self.wire.send(self.from, usize::from(peer.0) - 1);
        }
    }
}

/// Where an in-memory log starts over.
const DISK_LIMIT: usize = 1 << 20;

impl<T: BenchValue, const N: usize, const W: usize> Ours<T, N, W> {
    /// `mode.nodes` replicas, node 0 the initial leader.
    pub fn new(mode: Mode) -> Self {
        // Buffers sized from the application's limit, the mode's capacity
        // (for `Bytes<capacity>` that is the type's own bound; `Payload`'s
        // is 64 MiB), and at least 64 KiB so that batches fill them. A
        // value encodes as a varint length (at most 5 bytes below 4 GiB)
        // and its bytes.
        let value_len = mode.capacity + 5;
        let room = Replica::<T, N, W>::message_buffer_for(value_len)
            .max(Replica::<T, N, W>::persist_buffer_for(value_len))
            .max(1 << 16);
        let ids: Vec<NodeId> = (1..=mode.nodes as u8).map(NodeId).collect();
        let now = Instant::ZERO;
        let nodes = ids
            .iter()
            .map(|&id| {
                let config = Config::builder(id, &ids)
                    .initial_leader(ids[0])
                    .build()
                    .expect("valid config");
                Replica::new(config, now).expect("valid config")
            })
            .collect();
        Ours {
            nodes,
            disks: (0..mode.nodes)
                .map(|_| Disk {
                    bytes: vec![0; DISK_LIMIT + room],
                    room,
                    end: 0,
                    appended: None,
                })
                .collect(),
            room,
            now,
        }
    }
}

impl<T: BenchValue, const N: usize, const W: usize> Cluster for Ours<T, N, W> {
    fn ready(&self) -> bool {
        self.nodes[0].is_leader()
    }

    fn propose(&mut self, value: &[u8]) -> bool {
        match T::from_proposal(value) {
            Some(v) => self.nodes[0].propose(self.now, v).is_ok(),
            None => false,
        }
    }

    fn drain(&mut self, wire: &mut Wire, ledger: &mut Ledger) {
        for (i, (node, disk)) in self.nodes.iter_mut().zip(&mut self.disks).enumerate() {
            let mut sender = Sender {
                wire,
                from: i,
                room: self.room,
            };
            let drained = driver::drain(node, self.now, disk, &mut sender, |event| {
                if let Event::Decided { value: Some(v), .. } = event {
                    ledger.apply(i, v);
                }
            });
            // The disk never fails and confirms only what it was given.
            drained.expect("an in-memory log");
        }
    }

    fn deliver(&mut self, from: usize, to: usize, frame: Frame<'_>) {
        let from = NodeId(from as u8 + 1);
        // A frame the replica drops is counted by it; the harness's
        // agreement check catches anything lost for good.
        let (node, now) = (&mut self.nodes[to], self.now);
        let _ = T::decoding(frame, |frame| node.handle_message(now, from, frame));
    }

    fn shares_frames(&self) -> bool {
        T::SHARES
    }

    fn tick(&mut self) {
        self.now = Instant::from_micros(self.now.as_micros() + 10_000);
        for node in &mut self.nodes {
            driver::tick(node, self.now);
        }
    }
}
