//! raft-rs 0.7 under the harness: `RawNode<MemStorage>` handled the way
//! its documentation prescribes (`messages` sent before the entries are
//! stored, `persisted_messages` after, then `advance` and
//! `advance_apply`). Messages cross the wire as protobuf
//! (encoded as `write_to_bytes` does but into the shared pool,
//! `parse_from_bytes` at the receiver). Entry data is `bytes::Bytes`; proposals are copied into a
//! fresh `Bytes` and queued, then stepped into the leader as one
//! `MsgPropose` per round (one entry at window 1, up to 256 batched).

use crate::harness::{Cluster, Ledger};
use crate::wire::{Frame, Wire};
use crate::Mode;
use protobuf::{CodedOutputStream, Message as _};
use raft::eraftpb::{Entry, Message, MessageType};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};

/// Compact the logs each time the leader has applied this many more.
const COMPACT_EVERY: u64 = 1 << 16;

/// A raft-rs cluster, node 0 campaigning first.
pub struct RaftCluster {
    nodes: Vec<RawNode<MemStorage>>,
    applied: Vec<u64>,
    pending: Vec<Entry>,
    compacted_at: u64,
}

impl RaftCluster {
    /// `mode.nodes` nodes with ids 1..=n; node 1 starts an election.
    pub fn new(mode: Mode) -> RaftCluster {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let voters: Vec<u64> = (1..=mode.nodes as u64).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let config = Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 3,
                    max_size_per_msg: raft::NO_LIMIT,
                    max_inflight_msgs: 256,
                    batch_append: true,
                    ..Config::default()
                };
                let storage = MemStorage::new_with_conf_state((voters.clone(), vec![]));
                RawNode::new(&config, storage, &logger).expect("valid config")
            })
            .collect::<Vec<_>>();
        let mut cluster = RaftCluster {
            nodes,
            applied: vec![0; mode.nodes],
            pending: Vec::with_capacity(mode.window),
            compacted_at: 0,
        };
        cluster.nodes[0].campaign().expect("node 1 campaigns");
        cluster
    }

    /// Drops log entries every node has applied, as MemStorage keeps
    /// them all otherwise.
    fn compact(&mut self) {
        let Some(&upto) = self.applied.iter().min() else {
            return;
        };
        for node in &mut self.nodes {
            node.mut_store().wl().compact(upto).expect("compacts applied entries");
        }
    }
}

/// Encodes each message as `write_to_bytes` does (size, then
/// `write_to_with_cached_sizes`), but into the wire's pool instead of a
/// fresh `Vec`.
fn send(wire: &mut Wire, from: usize, messages: Vec<Message>) {
    for m in messages {
        let size = m.compute_size() as usize;
        let written = wire.write(size, |buf| {
            let mut os = CodedOutputStream::bytes(&mut buf[..size]);
            m.write_to_with_cached_sizes(&mut os).ok()?;
            os.check_eof();
            Some(size)
        });
        if written {
            wire.send(from, m.to as usize - 1);
        }
    }
}

fn apply(ledger: &mut Ledger, applied: &mut u64, node: usize, entries: Vec<Entry>) {
    for e in entries {
        *applied = e.index;
        // The empty entry a new leader appends carries no proposal.
        if !e.data.is_empty() {
            ledger.apply(node, &e.data);
        }
    }
}

impl Cluster for RaftCluster {
    fn ready(&self) -> bool {
        self.nodes[0].raft.state == StateRole::Leader
    }

    fn propose(&mut self, value: &[u8]) -> bool {
        self.pending.push(Entry {
            data: bytes::Bytes::copy_from_slice(value),
            ..Entry::default()
        });
        true
    }

    fn drain(&mut self, wire: &mut Wire, ledger: &mut Ledger) {
        if !self.pending.is_empty() {
            let mut m = Message::default();
            m.set_msg_type(MessageType::MsgPropose);
            m.from = 1;
            m.set_entries(std::mem::take(&mut self.pending).into());
            // A refusal leaves the proposals undecided; the harness then
            // reports the run as stalled.
            let _ = self.nodes[0].step(m);
        }
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if !node.has_ready() {
                continue;
            }
            let mut rd = node.ready();
            send(wire, i, rd.take_messages());
            if !rd.snapshot().is_empty() {
                let snapshot = rd.snapshot().clone();
                node.mut_store()
                    .wl()
                    .apply_snapshot(snapshot)
                    .expect("applies snapshot");
            }
            apply(ledger, &mut self.applied[i], i, rd.take_committed_entries());
            if !rd.entries().is_empty() {
                node.mut_store().wl().append(rd.entries()).expect("appends");
            }
            if let Some(hs) = rd.hs() {
                node.mut_store().wl().set_hardstate(hs.clone());
            }
            send(wire, i, rd.take_persisted_messages());
            let mut light = node.advance(rd);
            if let Some(commit) = light.commit_index() {
                node.mut_store().wl().mut_hard_state().set_commit(commit);
            }
            send(wire, i, light.take_messages());
            apply(ledger, &mut self.applied[i], i, light.take_committed_entries());
            node.advance_apply();
        }
        if self.applied[0] >= self.compacted_at + COMPACT_EVERY {
            self.compacted_at = self.applied[0];
            self.compact();
        }
    }

    fn deliver(&mut self, _from: usize, to: usize, frame: Frame<'_>) {
        let frame = frame.bytes();
        if let Ok(m) = Message::parse_from_bytes(frame) {
            // Stale or unexpected messages are refused by raft itself.
            let _ = self.nodes[to].step(m);
        }
    }

    fn tick(&mut self) {
        for node in &mut self.nodes {
            node.tick();
        }
    }
}
