//! This library's replica under the harness, driven by the one driver
//! loop (`paxos_core::driver::drain`): frames (encoded once, addressed to
//! a node set) go onto the wire as they are; record batches are appended
//! to an in-memory log per node, durable at once, so each drain's sync
//! confirms the newest. Values are `paxos_core::Bytes<V>`, held inline.

use crate::harness::{self, Cluster, Disagreement, Ledger};
use crate::wire::Wire;
use crate::{Mode, Totals};
use core::convert::Infallible;
use paxos_core::driver::{self, Network, Storage};
use paxos_core::replica::{Config, Event, Replica};
use paxos_core::{Bytes, Instant, NodeId, NodeSet, PersistSeq};

/// Runs `mode` with the replica sizes it needs (value bytes, nodes, window).
pub fn run(mode: Mode, commits: u64) -> Result<Totals, Disagreement> {
    match (mode.value, mode.nodes, mode.window) {
        (64, 3, 1) => harness::run(&mut Ours::<64, 3, 256>::new(mode), mode, commits),
        (64, 5, _) => harness::run(&mut Ours::<64, 5, 256>::new(mode), mode, commits),
        (64, _, _) => harness::run(&mut Ours::<64, 3, 512>::new(mode), mode, commits),
        _ => harness::run(&mut Ours::<4096, 3, 512>::new(mode), mode, commits),
    }
}

/// A cluster of `N` replicas with values of up to `V` bytes and a
/// `W`-slot window.
pub struct Ours<const V: usize, const N: usize, const W: usize> {
    nodes: Vec<Replica<Bytes<V>, N, W>>,
    disks: Vec<Disk>,
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

impl<const V: usize, const N: usize, const W: usize> Ours<V, N, W> {
    /// Room that holds any frame or persist batch the replica writes.
    const FRAME_ROOM: usize = if Replica::<Bytes<V>, N, W>::MAX_MESSAGE_SIZE > 1 << 16 {
        Replica::<Bytes<V>, N, W>::MAX_MESSAGE_SIZE
    } else {
        1 << 16
    };

    /// `mode.nodes` replicas, node 0 the initial leader.
    pub fn new(mode: Mode) -> Self {
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
                    bytes: vec![0; DISK_LIMIT + Self::FRAME_ROOM],
                    room: Self::FRAME_ROOM,
                    end: 0,
                    appended: None,
                })
                .collect(),
            now,
        }
    }
}

impl<const V: usize, const N: usize, const W: usize> Cluster for Ours<V, N, W> {
    fn ready(&self) -> bool {
        self.nodes[0].is_leader()
    }

    fn propose(&mut self, value: &[u8]) -> bool {
        match Bytes::from_slice(value) {
            Ok(v) => self.nodes[0].propose(self.now, v).is_ok(),
            Err(_) => false,
        }
    }

    fn drain(&mut self, wire: &mut Wire, ledger: &mut Ledger) {
        for (i, (node, disk)) in self.nodes.iter_mut().zip(&mut self.disks).enumerate() {
            let mut sender = Sender {
                wire,
                from: i,
                room: Self::FRAME_ROOM,
            };
            let drained = driver::drain(node, self.now, disk, &mut sender, |event| {
                if let Event::Decided { value: Some(v), .. } = event {
                    ledger.apply(i, v.as_slice());
                }
            });
            // The disk never fails and confirms only what it was given.
            drained.expect("an in-memory log");
        }
    }

    fn deliver(&mut self, from: usize, to: usize, frame: &[u8]) {
        let from = NodeId(from as u8 + 1);
        // A frame the replica drops is counted by it; the harness's
        // agreement check catches anything lost for good.
        let _ = self.nodes[to].handle_message(self.now, from, frame);
    }

    fn tick(&mut self) {
        self.now = Instant::from_micros(self.now.as_micros() + 10_000);
        for node in &mut self.nodes {
            driver::tick(node, self.now);
        }
    }
}
