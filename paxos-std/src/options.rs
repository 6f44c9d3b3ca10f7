//! How a node is set up ([`NodeOptions`]), why it stops ([`NodeError`]),
//! and the replica configuration both derive: shared by the runtime and
//! every driver built on this crate.

use crate::runtime::MAX_COMMAND;
use crate::storage::StorageError;
use crate::transport::ClusterKey;
use paxos_core::replica::Config;
use paxos_core::NodeId;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// [`NodeOptions::compact_every`] unless set.
pub const DEFAULT_COMPACT_EVERY: u64 = 20_000;

/// [`NodeOptions::compact_bytes`] unless set: 256 MiB.
pub const DEFAULT_COMPACT_BYTES: u64 = 256 << 20;

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// This node.
    pub id: NodeId,
    /// Its address: TCP for the runtime, UDP for the `paxos` program.
    pub listen: SocketAddr,
    /// Every other node and its UDP address.
    pub peers: Vec<(NodeId, SocketAddr)>,
    /// Where its log lives.
    pub data_dir: PathBuf,
    /// The cluster key that authenticates datagrams.
    pub key: ClusterKey,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Election timeout (randomized up to twice this).
    pub election_timeout: Duration,
    /// This node ran before and its data directory was lost (a replaced
    /// disk): with an empty data directory it starts as a learner that
    /// never votes again, instead of as a first boot. Ignored when the
    /// data directory holds records.
    pub storage_lost: bool,
    /// The leader lease, for reads on the leader without a log round trip
    /// ([`runtime::Runtime::read_local`](crate::runtime::Runtime::read_local)).
    /// Shorter than the election timeout.
    pub lease: Option<paxos_core::replica::LeaseConfig>,
    /// Compact the log (the application's snapshot and a checkpoint in
    /// place of the records) once this many slots were applied since the
    /// last compaction.
    pub compact_every: u64,
    /// Compact the log, too, once this many bytes of values were applied
    /// since the last compaction: a restart reads the records since the
    /// last compaction into memory, so with large values a count of slots
    /// alone would not bound it.
    pub compact_bytes: u64,
    /// The largest command's encoding in bytes (at most
    /// [`MAX_COMMAND_LIMIT`](crate::runtime::MAX_COMMAND_LIMIT)); a larger
    /// one is refused with
    /// [`ProposeError::TooLarge`](crate::runtime::ProposeError::TooLarge).
    /// Use the same on every node: buffers and frames are sized from it.
    pub max_command: usize,
    /// The most bytes of values its log window holds: half for its
    /// proposals in flight when it leads (more wait for room; one always
    /// goes), half for decided slots kept for peers behind (the oldest
    /// leave memory first, and a peer that needs them gets a snapshot).
    /// [`WINDOW_BYTES`](crate::runtime::WINDOW_BYTES) by default. Use the
    /// same on every node: a follower holds what its leader has in flight.
    pub window_bytes: usize,
}

impl NodeOptions {
    /// Member `i` (node id `i + 1`) of a cluster on one machine whose nodes
    /// listen at `addrs`: its log in `dir/node{id}`, the insecure default
    /// key and short timers (50 ms heartbeats, 300 ms election timeout).
    /// For examples, tests, the demo and benchmarks; a real node reads its
    /// key from a file (`ClusterKey::from_file`). Panics if `i` is not an
    /// index of `addrs`.
    pub fn local_member(i: usize, addrs: &[SocketAddr], dir: &Path) -> NodeOptions {
        let id = |j: usize| NodeId(j as u8 + 1);
        NodeOptions {
            id: id(i),
            listen: addrs[i],
            peers: addrs
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(j, &addr)| (id(j), addr))
                .collect(),
            data_dir: dir.join(format!("node{}", i + 1)),
            key: ClusterKey::insecure_default(),
            heartbeat: Duration::from_millis(50),
            election_timeout: Duration::from_millis(300),
            storage_lost: false,
            lease: None,
            compact_every: DEFAULT_COMPACT_EVERY,
            compact_bytes: DEFAULT_COMPACT_BYTES,
            max_command: MAX_COMMAND,
            window_bytes: crate::runtime::WINDOW_BYTES,
        }
    }

    /// These options with commands of up to `bytes` (encoded) accepted
    /// (the field of the same name). An application whose commands hold
    /// values of a configured size derives it from that size.
    pub fn max_command(mut self, bytes: usize) -> NodeOptions {
        self.max_command = bytes;
        self
    }

    /// These options with the log compacted at least every `bytes` of
    /// values applied (the field of the same name).
    pub fn compact_bytes(mut self, bytes: u64) -> NodeOptions {
        self.compact_bytes = bytes;
        self
    }

    /// These options with a log window of at most `bytes` of values (the
    /// field of the same name).
    pub fn window_bytes(mut self, bytes: usize) -> NodeOptions {
        self.window_bytes = bytes;
        self
    }
}

/// Why a node could not start or stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory could not be used.
    Storage(StorageError),
    /// The records in it could not be replayed.
    Recover(paxos_core::replica::RecoverError),
    /// Its snapshot does not decode (or a peer's could not be restored).
    Snapshot,
    /// The replica's records start past the application's snapshot: the
    /// slots between were never applied here. Refused rather than served
    /// from a state that misses them.
    SnapshotBehindLog {
        /// The slot the application's snapshot covers.
        snapshot: u64,
        /// Where the replica's log starts.
        log_start: u64,
    },
    /// The configuration is invalid.
    Config(paxos_core::replica::ConfigError),
    /// The socket could not be opened, or the sync thread started.
    Io(std::io::Error),
    /// `max_command` is above
    /// [`MAX_COMMAND_LIMIT`](crate::runtime::MAX_COMMAND_LIMIT).
    MaxCommand {
        /// The value asked for.
        max_command: usize,
    },
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Storage(e) => write!(f, "data directory: {e}"),
            NodeError::Recover(e) => write!(f, "recovery: {e}"),
            NodeError::Snapshot => write!(f, "the snapshot in the data directory does not decode"),
            NodeError::SnapshotBehindLog { snapshot, log_start } => write!(
                f,
                "the application's snapshot covers slots below {snapshot} but the log starts at {log_start}: \
                 slots {snapshot}..{log_start} were never applied"
            ),
            NodeError::Config(e) => write!(f, "configuration: {e}"),
            NodeError::Io(e) => write!(f, "socket: {e}"),
            NodeError::MaxCommand { max_command } => write!(
                f,
                "max_command {max_command} is above the most a node takes, {}",
                crate::runtime::MAX_COMMAND_LIMIT
            ),
        }
    }
}

impl std::error::Error for NodeError {}

/// The replica configuration of the node `options` describe.
///
/// # Errors
///
/// [`NodeError::Config`] when the options break a rule of the core's
/// configuration.
pub fn replica_config<const N: usize>(options: &NodeOptions) -> Result<Config<N>, NodeError> {
    let mut members: Vec<NodeId> = options.peers.iter().map(|(id, _)| *id).collect();
    members.push(options.id);
    members.sort();
    members.dedup();
    Config::builder(options.id, &members)
        .heartbeat_interval(core_duration(options.heartbeat))
        .election_timeout(core_duration(options.election_timeout))
        .retransmit_timeout(core_duration(options.heartbeat).saturating_mul(2))
        .seed(u64::from(options.id.0) ^ u64::from(std::process::id()).rotate_left(17))
        .lease(options.lease)
        .build()
        .map_err(NodeError::Config)
}

pub(crate) fn core_duration(d: Duration) -> paxos_core::Duration {
    paxos_core::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
