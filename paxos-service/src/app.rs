//! The application the `paxos` program replicates: gen_paxos's keyed
//! write-once registers, with keys and values as bounded UTF-8 strings.

use paxos_core::keyed::KeyedNode;
use paxos_core::Bytes;

/// Longest key, in bytes.
pub const MAX_KEY: usize = 32;
/// Longest value, in bytes.
pub const MAX_VALUE: usize = 128;
/// Largest cluster.
pub const MAX_NODES: usize = 8;
/// Log window: slots in flight and retained in memory.
pub const WINDOW: usize = 128;
/// How many keys a cluster holds.
pub const REGISTERS: usize = 32_768;

/// A key.
pub type Key = Bytes<MAX_KEY>;
/// A value.
pub type Value = Bytes<MAX_VALUE>;
/// The state machine a node runs.
pub type App = KeyedNode<Key, Value, MAX_NODES, WINDOW, REGISTERS>;

/// The registers as of a slot: what a lagging node installs, and what
/// compaction keeps in place of the records it drops.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Every slot below this one is covered.
    pub slot: u64,
    /// Every register written by then.
    pub registers: Vec<(Key, Value)>,
}

impl Snapshot {
    /// The snapshot of `app`'s registers, up to the slot it applied.
    pub fn of(app: &App) -> Self {
        Snapshot {
            slot: app.applied(),
            registers: app.registers().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }

    /// Its bytes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a snapshot; `None` if the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

/// Why a string cannot be a key or a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooLong {
    /// What it was for.
    pub what: &'static str,
    /// Its length.
    pub len: usize,
    /// The limit.
    pub max: usize,
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} bytes is longer than {} bytes",
            self.what, self.len, self.max
        )
    }
}

impl std::error::Error for TooLong {}

/// A key from a string.
pub fn key(s: &str) -> Result<Key, TooLong> {
    Key::try_from(s).map_err(|_| TooLong {
        what: "key",
        len: s.len(),
        max: MAX_KEY,
    })
}

/// A value from a string.
pub fn value(s: &str) -> Result<Value, TooLong> {
    Value::try_from(s).map_err(|_| TooLong {
        what: "value",
        len: s.len(),
        max: MAX_VALUE,
    })
}

/// Bytes as a string (lossy for bytes that are not UTF-8, which the
/// program never stores).
pub fn text<const N: usize>(b: &Bytes<N>) -> String {
    String::from_utf8_lossy(b.as_slice()).into_owned()
}
