//! omnipaxos 0.2 under the harness: `OmniPaxos` over `MemoryStorage`,
//! messages from `take_outgoing_messages` encoded with serde + postcard
//! (`to_slice` into the shared pool, `from_bytes` at the receiver).
//! Entries are a `bytes::Bytes` newtype, so clones inside omnipaxos and
//! reads of the decided log share the payload; decoding allocates a new
//! one. Appends made in one round leave as one `AcceptDecide` per
//! follower (omnipaxos extends the pending message), which is its
//! batching at window 256.

use crate::harness::{Cluster, Ledger};
use crate::wire::{Frame, Wire};
use crate::Mode;
use omnipaxos::messages::Message;
use omnipaxos::storage::{Entry, NoSnapshot};
use omnipaxos::util::LogEntry;
use omnipaxos::{ClusterConfig, OmniPaxos, OmniPaxosConfig, ServerConfig};
use omnipaxos_storage::memory_storage::MemoryStorage;
use serde::{Deserialize, Serialize};

/// An omnipaxos log entry: the proposal's bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Value(pub bytes::Bytes);

impl Entry for Value {
    type Snapshot = NoSnapshot;
}

/// Trim the logs each time the leader has decided this many more.
const COMPACT_EVERY: usize = 1 << 16;

/// An omnipaxos cluster whose node 1 has the highest leader priority.
pub struct OmniCluster {
    nodes: Vec<OmniPaxos<Value, MemoryStorage<Value>>>,
    read: Vec<usize>,
    outbox: Vec<Message<Value>>,
    compacted_at: usize,
}

impl OmniCluster {
    /// `mode.nodes` nodes with pids 1..=n.
    pub fn new(mode: Mode) -> OmniCluster {
        let pids: Vec<u64> = (1..=mode.nodes as u64).collect();
        let nodes = pids
            .iter()
            .map(|&pid| {
                let config = OmniPaxosConfig {
                    cluster_config: ClusterConfig {
                        configuration_id: 1,
                        nodes: pids.clone(),
                        flexible_quorum: None,
                    },
                    server_config: ServerConfig {
                        pid,
                        election_tick_timeout: 5,
                        leader_priority: if pid == 1 { 10 } else { 0 },
                        ..ServerConfig::default()
                    },
                };
                config.build(MemoryStorage::default()).expect("valid config")
            })
            .collect();
        OmniCluster {
            nodes,
            read: vec![0; mode.nodes],
            outbox: Vec::with_capacity(1024),
            compacted_at: 0,
        }
    }
}

impl Cluster for OmniCluster {
    fn ready(&self) -> bool {
        self.nodes[0].get_current_leader() == Some((1, true))
    }

    fn propose(&mut self, value: &[u8]) -> bool {
        self.nodes[0]
            .append(Value(bytes::Bytes::copy_from_slice(value)))
            .is_ok()
    }

    fn drain(&mut self, wire: &mut Wire, ledger: &mut Ledger) {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            node.take_outgoing_messages(&mut self.outbox);
            for m in self.outbox.drain(..) {
                // postcard needs room up front: start from a bound that fits
                // any message here and double if one does not.
                let mut room = 1 << 16;
                while !wire.write(room, |buf| postcard::to_slice(&m, buf).ok().map(|b| b.len())) {
                    room *= 2;
                }
                wire.send(i, m.get_receiver() as usize - 1);
            }
            let decided = node.get_decided_idx();
            if decided > self.read[i] {
                for e in node.read_decided_suffix(self.read[i]).unwrap_or_default() {
                    if let LogEntry::Decided(v) = e {
                        ledger.apply(i, &v.0);
                    }
                }
                self.read[i] = decided;
            }
        }
        if self.read[0] >= self.compacted_at + COMPACT_EVERY {
            if let Some(&upto) = self.read.iter().min() {
                // Refused (not all accepted yet) means: try next time.
                if self.nodes[0].trim(Some(upto)).is_ok() {
                    self.compacted_at = self.read[0];
                }
            }
        }
    }

    fn deliver(&mut self, _from: usize, to: usize, frame: Frame<'_>) {
        let frame = frame.bytes();
        if let Ok(m) = postcard::from_bytes::<Message<Value>>(frame) {
            self.nodes[to].handle_incoming(m);
        }
    }

    fn tick(&mut self) {
        for node in &mut self.nodes {
            node.tick();
        }
    }
}
