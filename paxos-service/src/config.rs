//! A node's configuration: a TOML file (`paxos node --config node.toml`)
//! that command-line flags override.
//!
//! Every setting can come from the file or from its flag; a flag that is
//! given wins over the file. The file's fields are the flags' names in
//! snake_case, every one optional, and a field this version does not know
//! is refused (a typo must not be silently ignored). An example `node.toml`
//! for node 1 of a three-node cluster:
//!
//! ```toml
//! id = 1                                  # --id (required, here or as a flag)
//! listen = "10.0.0.1:7001"                # --listen: TCP address for the other nodes (required)
//! peers = ["2=10.0.0.2:7001", "3=10.0.0.3:7001"]  # --peer ID=ADDR, one per other node
//! data_dir = "/var/lib/paxos"             # --data-dir (required)
//! client_listen = "127.0.0.1:8001"        # --client-listen: TCP address for `paxos ask`
//! metrics_listen = "127.0.0.1:9001"       # --metrics-listen: HTTP address for metrics
//! key_file = "/etc/paxos/cluster.key"     # --key-file: the cluster key
//! storage_lost = false                    # --storage-lost
//! heartbeat_ms = 50                       # --heartbeat-ms (default 50)
//! election_timeout_ms = 300               # --election-timeout-ms (default 300)
//! lease_ms = 200                          # --lease-ms (default: no lease)
//! max_key_bytes = 1024                    # --max-key-bytes (default 1024)
//! max_value_bytes = 1048576               # --max-value-bytes (default 1 MiB)
//! ```
//!
//! Keys and values are bytes of at most `max_key_bytes` and
//! `max_value_bytes` (see [`SizeLimits`] for the floor and the
//! ceilings). Give every node of a cluster the same maxima, and clients
//! too ([`ClientOptions::sizes`](crate::cluster::ClientOptions::sizes)): a
//! node refuses what is larger than its own, and a value stored under
//! larger maxima cannot be read through a node with smaller ones.
//!
//! Peers are an array of `"ID=ADDR"` strings, the same text as `--peer`.
//! Any `--peer` flag replaces the file's whole `peers` list (the lists are
//! not merged). Relative paths are taken relative to the working
//! directory, as they are on the command line.
//!
//! [`NodeConfig::load`] reads the file named by `--config` and merges it
//! with the flags; [`NodeConfig::merge`] checks the result (see
//! [`ConfigError`] for the rules).

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::protocol::{SizeLimitError, SizeLimits, DEFAULT_MAX_KEY, DEFAULT_MAX_VALUE};
use paxos_core::NodeId;
use paxos_std::transport::KEY_LEN;
use serde::{Deserialize, Serialize};

/// The largest cluster the service supports (the capacity of
/// `paxos_std`'s runtime).
pub const MAX_NODES: usize = 8;

/// The heartbeat interval when neither the file nor a flag gives one.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(50);

/// The election timeout when neither the file nor a flag gives one.
pub const DEFAULT_ELECTION_TIMEOUT: Duration = Duration::from_millis(300);

/// What a node's TOML file may say (see the [module docs](self)): every
/// field optional, unknown fields refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// This node's id (`--id`).
    pub id: Option<u8>,
    /// TCP address for the other nodes.(`--listen`).
    pub listen: Option<SocketAddr>,
    /// The other nodes as `"ID=ADDR"` strings, e.g.
    /// `peers = ["2=127.0.0.1:7002", "3=127.0.0.1:7003"]` (`--peer`, which
    /// replaces this whole list).
    pub peers: Option<Vec<String>>,
    /// Where the node keeps its log (`--data-dir`).
    pub data_dir: Option<PathBuf>,
    /// TCP address for `paxos ask` and `paxos status` (`--client-listen`).
    pub client_listen: Option<SocketAddr>,
    /// Address for the metrics endpoint (`--metrics-listen`).
    pub metrics_listen: Option<SocketAddr>,
    /// The cluster key file (`--key-file`).
    pub key_file: Option<PathBuf>,
    /// This node's data directory was lost (`--storage-lost`).
    pub storage_lost: Option<bool>,
    /// Heartbeat interval in milliseconds (`--heartbeat-ms`).
    pub heartbeat_ms: Option<u64>,
    /// Election timeout in milliseconds (`--election-timeout-ms`).
    pub election_timeout_ms: Option<u64>,
    /// Leader lease in milliseconds (`--lease-ms`).
    pub lease_ms: Option<u64>,
    /// The longest key in bytes (`--max-key-bytes`).
    pub max_key_bytes: Option<usize>,
    /// The longest value in bytes (`--max-value-bytes`).
    pub max_value_bytes: Option<usize>,
}

impl FileConfig {
    /// Parses a file's TOML `text`; `path` only names the file in errors.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ParseFile`] if the text is not TOML, a value has the
    /// wrong type or a field is unknown.
    pub fn from_toml(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::ParseFile {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })
    }

    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ReadFile`] if it cannot be read, and the errors of
    /// [`FileConfig::from_toml`].
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }
}

/// The `paxos node` flags. All are optional here, since the `--config`
/// file may supply them; each one given overrides the file.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct NodeFlags {
    /// A TOML file with this node's settings; flags override it.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// This node's id (0-255).
    #[arg(long)]
    pub id: Option<u8>,
    /// TCP address for the other nodes.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Another node: ID=ADDR (repeat for each; replaces the file's peers).
    #[arg(long = "peer", value_name = "ID=ADDR", value_parser = parse_peer)]
    pub peers: Vec<(NodeId, SocketAddr)>,
    /// Where the node keeps its log.
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// TCP address for `paxos ask` and `paxos status`.
    #[arg(long, value_name = "ADDR")]
    pub client_listen: Option<SocketAddr>,
    /// Address to serve metrics on.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// The cluster key: 64 hex characters or 32 raw bytes (without it, an insecure public demo key is used).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// This node ran before and lost its data directory: rejoin as a learner that never votes again.
    #[arg(long)]
    pub storage_lost: bool,
    /// How often an idle leader sends heartbeats, in milliseconds (default 50).
    #[arg(long, value_name = "MS")]
    pub heartbeat_ms: Option<u64>,
    /// Silence from the leader that starts an election, in milliseconds (default 300).
    #[arg(long, value_name = "MS")]
    pub election_timeout_ms: Option<u64>,
    /// Leader lease in milliseconds, shorter than the election timeout (default: no lease).
    #[arg(long, value_name = "MS")]
    pub lease_ms: Option<u64>,
    /// The longest key clients may use, in bytes: 1 to 65536 (default 1024).
    #[arg(long, value_name = "BYTES")]
    pub max_key_bytes: Option<usize>,
    /// The longest value clients may store, in bytes: 0 to 67108864 (default 1048576, 1 MiB).
    #[arg(long, value_name = "BYTES")]
    pub max_value_bytes: Option<usize>,
}

/// A node's settings after the file and the flags are merged and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's id.
    pub id: NodeId,
    /// TCP address for the other nodes.
    pub listen: SocketAddr,
    /// The other nodes (never this one; ids and addresses distinct).
    pub peers: Vec<(NodeId, SocketAddr)>,
    /// Where the node keeps its log.
    pub data_dir: PathBuf,
    /// TCP address for the client protocol, if any.
    pub client_listen: Option<SocketAddr>,
    /// Address for the metrics endpoint, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// The cluster key file, if any.
    pub key_file: Option<PathBuf>,
    /// This node's data directory was lost: it rejoins as a learner.
    pub storage_lost: bool,
    /// How often an idle leader sends heartbeats (default 50 ms; never 0).
    pub heartbeat: Duration,
    /// Silence that starts an election (default 300 ms; above `heartbeat`).
    pub election_timeout: Duration,
    /// The leader lease (default none; when set, non-zero and below
    /// `election_timeout`).
    pub lease: Option<Duration>,
    /// The longest key and value clients may use (default
    /// [`SizeLimits::DEFAULT`]).
    pub sizes: SizeLimits,
}

impl NodeConfig {
    /// Reads the `--config` file if one is given, then lets every flag
    /// given override it (see [`NodeConfig::merge`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ReadFile`] or [`ConfigError::ParseFile`] for the file,
    /// and the errors of [`NodeConfig::merge`].
    pub fn load(flags: &NodeFlags) -> Result<NodeConfig, ConfigError> {
        let file = match &flags.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        Self::merge(file, flags)
    }

    /// Merges a parsed file with the flags and checks the result: each flag
    /// given overrides the file's value, and any `--peer` replaces the
    /// file's whole `peers` list. `--storage-lost` can only turn the
    /// setting on.
    ///
    /// # Errors
    ///
    /// The first rule broken, in the order of [`ConfigError`]'s variants.
    pub fn merge(file: FileConfig, flags: &NodeFlags) -> Result<NodeConfig, ConfigError> {
        // The file's peers are checked even when flags replace them: a
        // malformed file is refused whatever the command line says.
        let file_peers = file
            .peers
            .unwrap_or_default()
            .iter()
            .map(|text| {
                parse_peer(text).map_err(|reason| ConfigError::BadPeer {
                    text: text.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let peers = if flags.peers.is_empty() {
            file_peers
        } else {
            flags.peers.clone()
        };

        let id = NodeId(flags.id.or(file.id).ok_or(ConfigError::Missing {
            flag: "--id",
            field: "id",
        })?);
        let listen = flags.listen.or(file.listen).ok_or(ConfigError::Missing {
            flag: "--listen",
            field: "listen",
        })?;
        let data_dir = flags.data_dir.clone().or(file.data_dir).ok_or(ConfigError::Missing {
            flag: "--data-dir",
            field: "data_dir",
        })?;

        for (i, &(peer, addr)) in peers.iter().enumerate() {
            if peer == id {
                return Err(ConfigError::PeerIsSelf { id, addr });
            }
            if let Some(&(_, first)) = peers[..i].iter().find(|(other, _)| *other == peer) {
                return Err(ConfigError::DuplicatePeer {
                    id: peer,
                    first,
                    second: addr,
                });
            }
            if addr == listen {
                return Err(ConfigError::PeerAddressIsListen { id: peer, addr });
            }
            if let Some(&(first, _)) = peers[..i].iter().find(|(_, other)| *other == addr) {
                return Err(ConfigError::SharedPeerAddress {
                    first,
                    second: peer,
                    addr,
                });
            }
        }
        let nodes = 1 + peers.len();
        if nodes > MAX_NODES {
            return Err(ConfigError::TooManyNodes { nodes, max: MAX_NODES });
        }

        let heartbeat = flags
            .heartbeat_ms
            .or(file.heartbeat_ms)
            .map_or(DEFAULT_HEARTBEAT, Duration::from_millis);
        let election_timeout = flags
            .election_timeout_ms
            .or(file.election_timeout_ms)
            .map_or(DEFAULT_ELECTION_TIMEOUT, Duration::from_millis);
        let lease = flags.lease_ms.or(file.lease_ms).map(Duration::from_millis);
        if heartbeat.is_zero() {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if election_timeout <= heartbeat {
            return Err(ConfigError::ElectionTimeoutNotAboveHeartbeat {
                election_timeout,
                heartbeat,
            });
        }
        if let Some(lease) = lease {
            if lease.is_zero() {
                return Err(ConfigError::ZeroLease);
            }
            if lease >= election_timeout {
                return Err(ConfigError::LeaseNotBelowElectionTimeout {
                    lease,
                    election_timeout,
                });
            }
        }

        let sizes = SizeLimits::new(
            flags.max_key_bytes.or(file.max_key_bytes).unwrap_or(DEFAULT_MAX_KEY),
            flags
                .max_value_bytes
                .or(file.max_value_bytes)
                .unwrap_or(DEFAULT_MAX_VALUE),
        )
        .map_err(ConfigError::Sizes)?;

        Ok(NodeConfig {
            id,
            listen,
            peers,
            data_dir,
            client_listen: flags.client_listen.or(file.client_listen),
            metrics_listen: flags.metrics_listen.or(file.metrics_listen),
            key_file: flags.key_file.clone().or(file.key_file),
            storage_lost: flags.storage_lost || file.storage_lost.unwrap_or(false),
            heartbeat,
            election_timeout,
            lease,
            sizes,
        })
    }
}

/// Why a configuration is refused, or a key could not be made: one variant
/// per rule, each message naming the flag or field and the value.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The `--config` file could not be read.
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML, has a value of the wrong type
    /// or an unknown field.
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message.
        message: String,
    },
    /// An entry of the file's `peers` is not `ID=ADDR`.
    BadPeer {
        /// The entry.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A required setting is given neither as a flag nor in the file.
    Missing {
        /// The flag, e.g. `--id`.
        flag: &'static str,
        /// The file's field, e.g. `id`.
        field: &'static str,
    },
    /// A peer has this node's own id.
    PeerIsSelf {
        /// This node's id.
        id: NodeId,
        /// The address the peer was given.
        addr: SocketAddr,
    },
    /// Two peers have the same id.
    DuplicatePeer {
        /// The id.
        id: NodeId,
        /// The address given first.
        first: SocketAddr,
        /// The address given second.
        second: SocketAddr,
    },
    /// A peer has this node's `listen` address.
    PeerAddressIsListen {
        /// The peer.
        id: NodeId,
        /// The address.
        addr: SocketAddr,
    },
    /// Two peers have the same address.
    SharedPeerAddress {
        /// The peer given first.
        first: NodeId,
        /// The peer given second.
        second: NodeId,
        /// Their address.
        addr: SocketAddr,
    },
    /// This node and its peers are more than [`MAX_NODES`].
    TooManyNodes {
        /// This node and its peers.
        nodes: usize,
        /// The largest cluster supported.
        max: usize,
    },
    /// The heartbeat interval is zero.
    ZeroHeartbeat,
    /// The election timeout is not greater than the heartbeat interval.
    ElectionTimeoutNotAboveHeartbeat {
        /// The election timeout.
        election_timeout: Duration,
        /// The heartbeat interval.
        heartbeat: Duration,
    },
    /// The lease is zero (leave it out for no lease).
    ZeroLease,
    /// The lease is not shorter than the election timeout.
    LeaseNotBelowElectionTimeout {
        /// The lease.
        lease: Duration,
        /// The election timeout.
        election_timeout: Duration,
    },
    /// `max_key_bytes` or `max_value_bytes` is out of bounds.
    Sizes(SizeLimitError),
    /// The operating system gave no randomness for a key.
    Random(getrandom::Error),
    /// The key file exists already; it is never overwritten.
    KeyFileExists {
        /// The file.
        path: PathBuf,
    },
    /// The key file could not be written.
    WriteKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ReadFile { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            ConfigError::ParseFile { path, message } => write!(f, "config file {}: {message}", path.display()),
            ConfigError::BadPeer { text, reason } => {
                write!(f, "config file field `peers`: bad entry {text:?}: {reason}")
            }
            ConfigError::Missing { flag, field } => {
                write!(f, "missing {flag}: give the flag or set `{field}` in the config file")
            }
            ConfigError::PeerIsSelf { id, addr } => write!(
                f,
                "--peer {id}={addr} given to node {id} (--id / `id`): list only the other nodes as peers"
            ),
            ConfigError::DuplicatePeer { id, first, second } => {
                write!(
                    f,
                    "peer id {id} is given twice: --peer {id}={first} and --peer {id}={second}"
                )
            }
            ConfigError::PeerAddressIsListen { id, addr } => write!(
                f,
                "--peer {id}={addr} has this node's own --listen / `listen` address {addr}"
            ),
            ConfigError::SharedPeerAddress { first, second, addr } => {
                write!(
                    f,
                    "peers {first} and {second} share one address {addr} (--peer / `peers`)"
                )
            }
            ConfigError::TooManyNodes { nodes, max } => write!(
                f,
                "a cluster of {nodes} nodes (this one and {} peers given by --peer / `peers`) is larger than the \
                 maximum of {max} nodes",
                nodes - 1
            ),
            ConfigError::ZeroHeartbeat => {
                write!(
                    f,
                    "--heartbeat-ms / `heartbeat_ms` is 0: the heartbeat interval must be at least 1 ms"
                )
            }
            ConfigError::ElectionTimeoutNotAboveHeartbeat {
                election_timeout,
                heartbeat,
            } => write!(
                f,
                "--election-timeout-ms / `election_timeout_ms` is {} ms: it must be greater than the heartbeat \
                 interval (--heartbeat-ms / `heartbeat_ms`), {} ms",
                election_timeout.as_millis(),
                heartbeat.as_millis()
            ),
            ConfigError::ZeroLease => {
                write!(
                    f,
                    "--lease-ms / `lease_ms` is 0: leave it out for no lease, or give at least 1 ms"
                )
            }
            ConfigError::LeaseNotBelowElectionTimeout {
                lease,
                election_timeout,
            } => write!(
                f,
                "--lease-ms / `lease_ms` is {} ms: it must be shorter than the election timeout \
                 (--election-timeout-ms / `election_timeout_ms`), {} ms",
                lease.as_millis(),
                election_timeout.as_millis()
            ),
            ConfigError::Sizes(e) => {
                let setting = match e {
                    SizeLimitError::ZeroKey | SizeLimitError::KeyAboveCeiling { .. } => {
                        "--max-key-bytes / `max_key_bytes`"
                    }
                    SizeLimitError::ValueAboveCeiling { .. } => "--max-value-bytes / `max_value_bytes`",
                };
                write!(f, "{setting}: {e}")
            }
            ConfigError::Random(e) => write!(f, "no randomness from the operating system for a new key: {e}"),
            ConfigError::KeyFileExists { path } => {
                write!(
                    f,
                    "key file {} already exists: refusing to overwrite it",
                    path.display()
                )
            }
            ConfigError::WriteKey { path, source } => {
                write!(f, "cannot write key file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::ReadFile { source, .. } | ConfigError::WriteKey { source, .. } => Some(source),
            ConfigError::Random(e) => Some(e),
            ConfigError::Sizes(e) => Some(e),
            _ => None,
        }
    }
}

/// Parses a peer, `ID=ADDR` such as `2=127.0.0.1:7002` or `3=[::1]:7003`
/// (the `--peer` flag and the entries of the file's `peers`).
///
/// # Errors
///
/// A message naming the offending text.
pub fn parse_peer(s: &str) -> Result<(NodeId, SocketAddr), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=ADDR, got {s:?}"))?;
    let id: u8 = id
        .trim()
        .parse()
        .map_err(|_| format!("bad node id {id:?} in {s:?}: expected 0-255"))?;
    let addr: SocketAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("bad address {addr:?} in {s:?}: expected IP:PORT"))?;
    Ok((NodeId(id), addr))
}

/// A new random cluster key from the operating system: 64 lowercase hex
/// characters and a newline, the text `paxos_std`'s `ClusterKey::from_file`
/// reads.
///
/// # Errors
///
/// [`ConfigError::Random`] if the operating system gives no randomness.
pub fn new_key_hex() -> Result<String, ConfigError> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(ConfigError::Random)?;
    let mut text = String::with_capacity(2 * KEY_LEN + 1);
    for byte in key {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    text.push('\n');
    Ok(text)
}

/// Writes a new key ([`new_key_hex`]) to a new file at `path`, readable
/// and writable by its owner only (mode 0600 on unix), and syncs it.
///
/// # Errors
///
/// [`ConfigError::KeyFileExists`] if `path` exists (it is never
/// overwritten), [`ConfigError::Random`], or [`ConfigError::WriteKey`]
/// (after which no file is left behind).
pub fn write_new_key(path: &Path) -> Result<(), ConfigError> {
    let key = new_key_hex()?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            ConfigError::KeyFileExists {
                path: path.to_path_buf(),
            }
        } else {
            ConfigError::WriteKey {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let written = (|| {
        // The mode given at creation is masked by the umask: set it exactly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(key.as_bytes())?;
        file.sync_all()
    })();
    if let Err(source) = written {
        drop(file);
        // The file is ours (create_new): leave no partial key behind.
        let _ = std::fs::remove_file(path);
        return Err(ConfigError::WriteKey {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use paxos_std::transport::ClusterKey;

    /// The module docs' example file.
    const EXAMPLE: &str = r#"
id = 1
listen = "10.0.0.1:7001"
peers = ["2=10.0.0.2:7001", "3=10.0.0.3:7001"]
data_dir = "/var/lib/paxos"
client_listen = "127.0.0.1:8001"
metrics_listen = "127.0.0.1:9001"
key_file = "/etc/paxos/cluster.key"
storage_lost = false
heartbeat_ms = 50
election_timeout_ms = 300
lease_ms = 200
max_key_bytes = 1024
max_value_bytes = 1048576
"#;

    /// The smallest valid file.
    const MINIMAL: &str = r#"
id = 1
listen = "127.0.0.1:7001"
data_dir = "data1"
"#;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: NodeFlags,
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn file(text: &str) -> FileConfig {
        FileConfig::from_toml(text, Path::new("node.toml")).unwrap()
    }

    fn cli(args: &[&str]) -> NodeFlags {
        Cli::try_parse_from(std::iter::once("node").chain(args.iter().copied()))
            .unwrap()
            .flags
    }

    fn merge(text: &str, args: &[&str]) -> Result<NodeConfig, ConfigError> {
        NodeConfig::merge(file(text), &cli(args))
    }

    /// `MINIMAL` plus `peers` 2..2+n on distinct ports.
    fn with_peers(n: u8) -> String {
        let peers: Vec<String> = (2..2 + n)
            .map(|i| format!("\"{i}=127.0.0.1:{}\"", 7000 + u16::from(i)))
            .collect();
        format!("{MINIMAL}peers = [{}]\n", peers.join(", "))
    }

    #[test]
    fn full_file_parses_to_the_expected_config() {
        let config = merge(EXAMPLE, &[]).unwrap();
        assert_eq!(
            config,
            NodeConfig {
                id: NodeId(1),
                listen: addr("10.0.0.1:7001"),
                peers: vec![(NodeId(2), addr("10.0.0.2:7001")), (NodeId(3), addr("10.0.0.3:7001"))],
                data_dir: PathBuf::from("/var/lib/paxos"),
                client_listen: Some(addr("127.0.0.1:8001")),
                metrics_listen: Some(addr("127.0.0.1:9001")),
                key_file: Some(PathBuf::from("/etc/paxos/cluster.key")),
                storage_lost: false,
                heartbeat: Duration::from_millis(50),
                election_timeout: Duration::from_millis(300),
                lease: Some(Duration::from_millis(200)),
                sizes: SizeLimits::DEFAULT,
            }
        );
    }

    #[test]
    fn defaults_are_applied() {
        let config = merge(MINIMAL, &[]).unwrap();
        assert_eq!(config.id, NodeId(1));
        assert_eq!(config.listen, addr("127.0.0.1:7001"));
        assert_eq!(config.data_dir, PathBuf::from("data1"));
        assert!(config.peers.is_empty());
        assert_eq!(config.client_listen, None);
        assert_eq!(config.metrics_listen, None);
        assert_eq!(config.key_file, None);
        assert!(!config.storage_lost);
        assert_eq!(config.heartbeat, Duration::from_millis(50));
        assert_eq!(config.election_timeout, Duration::from_millis(300));
        assert_eq!(config.lease, None);
        assert_eq!(config.sizes, SizeLimits::DEFAULT);
        assert_eq!((config.sizes.max_key(), config.sizes.max_value()), (1024, 1 << 20));
    }

    #[test]
    fn flags_alone_suffice() {
        let config = NodeConfig::merge(
            FileConfig::default(),
            &cli(&["--id", "4", "--listen", "127.0.0.1:7004", "--data-dir", "d4"]),
        )
        .unwrap();
        assert_eq!(config.id, NodeId(4));
        assert_eq!(config.listen, addr("127.0.0.1:7004"));
        assert_eq!(config.data_dir, PathBuf::from("d4"));
    }

    #[test]
    fn flags_override_the_file() {
        let config = merge(
            EXAMPLE,
            &[
                "--id",
                "5",
                "--listen",
                "127.0.0.1:7005",
                "--data-dir",
                "/tmp/d5",
                "--client-listen",
                "127.0.0.1:8005",
                "--metrics-listen",
                "127.0.0.1:9005",
                "--key-file",
                "other.key",
                "--storage-lost",
                "--heartbeat-ms",
                "20",
                "--election-timeout-ms",
                "1000",
                "--lease-ms",
                "500",
                "--max-key-bytes",
                "16",
                "--max-value-bytes",
                "3000",
            ],
        )
        .unwrap();
        assert_eq!(
            config,
            NodeConfig {
                id: NodeId(5),
                listen: addr("127.0.0.1:7005"),
                // Not overridden: the file's.
                peers: vec![(NodeId(2), addr("10.0.0.2:7001")), (NodeId(3), addr("10.0.0.3:7001"))],
                data_dir: PathBuf::from("/tmp/d5"),
                client_listen: Some(addr("127.0.0.1:8005")),
                metrics_listen: Some(addr("127.0.0.1:9005")),
                key_file: Some(PathBuf::from("other.key")),
                storage_lost: true,
                heartbeat: Duration::from_millis(20),
                election_timeout: Duration::from_millis(1000),
                lease: Some(Duration::from_millis(500)),
                sizes: SizeLimits::new(16, 3000).unwrap(),
            }
        );
    }

    #[test]
    fn flag_peers_replace_the_files_list() {
        let config = merge(EXAMPLE, &["--peer", "4=10.0.0.4:7001"]).unwrap();
        assert_eq!(config.peers, vec![(NodeId(4), addr("10.0.0.4:7001"))]);
    }

    #[test]
    fn storage_lost_from_the_file_stays_without_the_flag() {
        let text = format!("{MINIMAL}storage_lost = true\n");
        assert!(merge(&text, &[]).unwrap().storage_lost);
        assert!(merge(MINIMAL, &["--storage-lost"]).unwrap().storage_lost);
        assert!(!merge(MINIMAL, &[]).unwrap().storage_lost);
    }

    #[test]
    fn every_flag_name_parses() {
        Cli::command().debug_assert();
        let flags = cli(&[
            "--config",
            "node.toml",
            "--id",
            "1",
            "--listen",
            "127.0.0.1:7001",
            "--peer",
            "2=127.0.0.1:7002",
            "--peer",
            "3=[::1]:7003",
            "--data-dir",
            "d",
            "--client-listen",
            "127.0.0.1:8001",
            "--metrics-listen",
            "127.0.0.1:9001",
            "--key-file",
            "k",
            "--storage-lost",
            "--heartbeat-ms",
            "10",
            "--election-timeout-ms",
            "100",
            "--lease-ms",
            "50",
            "--max-key-bytes",
            "64",
            "--max-value-bytes",
            "0",
        ]);
        assert_eq!(flags.config, Some(PathBuf::from("node.toml")));
        assert_eq!(flags.id, Some(1));
        assert_eq!(
            flags.peers,
            vec![(NodeId(2), addr("127.0.0.1:7002")), (NodeId(3), addr("[::1]:7003"))]
        );
        assert!(flags.storage_lost);
        assert_eq!(
            (flags.heartbeat_ms, flags.election_timeout_ms, flags.lease_ms),
            (Some(10), Some(100), Some(50))
        );
        assert_eq!((flags.max_key_bytes, flags.max_value_bytes), (Some(64), Some(0)));
        let none = cli(&[]);
        assert!(none.id.is_none() && none.peers.is_empty() && !none.storage_lost && none.config.is_none());
        assert!(Cli::try_parse_from(["node", "--peer", "2"]).is_err());
    }

    #[test]
    fn load_reads_the_config_file_and_flags_override_it() {
        let mut toml_file = tempfile::NamedTempFile::new().unwrap();
        toml_file.write_all(EXAMPLE.as_bytes()).unwrap();
        let path = toml_file.path().to_str().unwrap();
        let config = NodeConfig::load(&cli(&["--config", path, "--id", "7"])).unwrap();
        assert_eq!(config.id, NodeId(7));
        assert_eq!(config.listen, addr("10.0.0.1:7001"));
        assert_eq!(config.lease, Some(Duration::from_millis(200)));
    }

    #[test]
    fn load_without_a_file_uses_the_flags() {
        let config = NodeConfig::load(&cli(&["--id", "1", "--listen", "127.0.0.1:7001", "--data-dir", "d"])).unwrap();
        assert_eq!(config, merge(MINIMAL, &["--data-dir", "d"]).unwrap());
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        let err = NodeConfig::load(&cli(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(
            matches!(&err, ConfigError::ReadFile { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("absent.toml"), "{err}");
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let mut toml_file = tempfile::NamedTempFile::new().unwrap();
        toml_file
            .write_all(format!("{MINIMAL}data-dir = \"x\"\n").as_bytes())
            .unwrap();
        let err = NodeConfig::load(&cli(&["--config", toml_file.path().to_str().unwrap()])).unwrap_err();
        assert!(matches!(err, ConfigError::ParseFile { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&toml_file.path().display().to_string()), "{message}");
        assert!(
            message.contains("unknown field") && message.contains("data-dir"),
            "{message}"
        );
    }

    #[test]
    fn invalid_toml_and_wrong_types_are_refused() {
        for text in [
            "id = ",
            "id = \"one\"",
            "id = 256",
            "listen = \"nowhere\"",
            "peers = \"2=1.2.3.4:5\"",
        ] {
            let err = FileConfig::from_toml(text, Path::new("conf/node.toml")).unwrap_err();
            assert!(matches!(err, ConfigError::ParseFile { .. }), "{text}: {err:?}");
            assert!(err.to_string().starts_with("config file conf/node.toml: "), "{err}");
        }
    }

    #[test]
    fn file_config_round_trips_through_toml() {
        let parsed = file(EXAMPLE);
        let text = toml::to_string(&parsed).unwrap();
        assert_eq!(file(&text), parsed);
        assert_eq!(
            file(&toml::to_string(&FileConfig::default()).unwrap()),
            FileConfig::default()
        );
    }

    #[test]
    fn missing_settings_name_flag_and_field() {
        let cases = [
            ("listen = \"127.0.0.1:7001\"\ndata_dir = \"d\"", "--id", "id"),
            ("id = 1\ndata_dir = \"d\"", "--listen", "listen"),
            ("id = 1\nlisten = \"127.0.0.1:7001\"", "--data-dir", "data_dir"),
        ];
        for (text, flag, field) in cases {
            let err = merge(text, &[]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Missing { flag: f, field: g } if f == flag && g == field),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(
                message.contains(flag) && message.contains(&format!("`{field}`")),
                "{message}"
            );
        }
    }

    #[test]
    fn a_peer_naming_this_node_is_refused() {
        let err = merge(MINIMAL, &["--peer", "1=127.0.0.1:7009"]).unwrap_err();
        assert!(
            matches!(err, ConfigError::PeerIsSelf { id: NodeId(1), addr: a } if a == addr("127.0.0.1:7009")),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("--peer 1=127.0.0.1:7009 given to node 1"),
            "{err}"
        );
        let text = format!("{MINIMAL}peers = [\"1=127.0.0.1:7009\"]\n");
        assert!(matches!(merge(&text, &[]), Err(ConfigError::PeerIsSelf { .. })));
    }

    #[test]
    fn a_peer_id_given_twice_is_refused() {
        let err = merge(MINIMAL, &["--peer", "2=127.0.0.1:7002", "--peer", "2=127.0.0.1:7003"]).unwrap_err();
        assert!(
            matches!(err, ConfigError::DuplicatePeer { id: NodeId(2), .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("2=127.0.0.1:7002") && message.contains("2=127.0.0.1:7003"),
            "{message}"
        );
    }

    #[test]
    fn a_peer_at_the_listen_address_is_refused() {
        let err = merge(MINIMAL, &["--peer", "2=127.0.0.1:7001"]).unwrap_err();
        assert!(
            matches!(err, ConfigError::PeerAddressIsListen { id: NodeId(2), .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("127.0.0.1:7001"), "{err}");
    }

    #[test]
    fn two_peers_at_one_address_are_refused() {
        let err = merge(MINIMAL, &["--peer", "2=127.0.0.1:7002", "--peer", "3=127.0.0.1:7002"]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::SharedPeerAddress {
                    first: NodeId(2),
                    second: NodeId(3),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_cluster_larger_than_max_nodes_is_refused() {
        let full = merge(&with_peers(MAX_NODES as u8 - 1), &[]).unwrap();
        assert_eq!(full.peers.len() + 1, MAX_NODES);
        let err = merge(&with_peers(MAX_NODES as u8), &[]).unwrap_err();
        assert!(matches!(err, ConfigError::TooManyNodes { nodes: 9, max: 8 }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("maximum of 8 nodes") && message.contains("9 nodes"),
            "{message}"
        );
    }

    #[test]
    fn a_zero_heartbeat_is_refused() {
        let err = merge(MINIMAL, &["--heartbeat-ms", "0"]).unwrap_err();
        assert!(matches!(err, ConfigError::ZeroHeartbeat), "{err:?}");
        assert!(err.to_string().contains("--heartbeat-ms"), "{err}");
    }

    #[test]
    fn an_election_timeout_not_above_the_heartbeat_is_refused() {
        for args in [&["--heartbeat-ms", "300"][..], &["--election-timeout-ms", "40"]] {
            let err = merge(MINIMAL, args).unwrap_err();
            assert!(
                matches!(err, ConfigError::ElectionTimeoutNotAboveHeartbeat { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains("--election-timeout-ms"), "{err}");
        }
        let err = merge(MINIMAL, &["--election-timeout-ms", "40"]).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("40 ms") && message.contains("50 ms"), "{message}");
        assert!(merge(MINIMAL, &["--heartbeat-ms", "299"]).is_ok());
    }

    #[test]
    fn a_lease_not_below_the_election_timeout_is_refused() {
        let err = merge(MINIMAL, &["--lease-ms", "300"]).unwrap_err();
        assert!(
            matches!(err, ConfigError::LeaseNotBelowElectionTimeout { lease, election_timeout }
                if lease == Duration::from_millis(300) && election_timeout == Duration::from_millis(300)),
            "{err:?}"
        );
        assert!(err.to_string().contains("--lease-ms / `lease_ms` is 300 ms"), "{err}");
        let text = format!("{MINIMAL}lease_ms = 400\n");
        assert!(matches!(
            merge(&text, &[]),
            Err(ConfigError::LeaseNotBelowElectionTimeout { .. })
        ));
        assert_eq!(
            merge(MINIMAL, &["--lease-ms", "299"]).unwrap().lease,
            Some(Duration::from_millis(299))
        );
    }

    #[test]
    fn sizes_come_from_the_file_and_each_flag_overrides_its_own() {
        let text = format!("{MINIMAL}max_key_bytes = 32\nmax_value_bytes = 4096\n");
        let sizes = |args: &[&str]| merge(&text, args).unwrap().sizes;
        assert_eq!(sizes(&[]), SizeLimits::new(32, 4096).unwrap());
        assert_eq!(sizes(&["--max-value-bytes", "100"]), SizeLimits::new(32, 100).unwrap());
        assert_eq!(sizes(&["--max-key-bytes", "7"]), SizeLimits::new(7, 4096).unwrap());
        // One given, the other's default.
        assert_eq!(
            merge(MINIMAL, &["--max-value-bytes", "0"]).unwrap().sizes,
            SizeLimits::new(DEFAULT_MAX_KEY, 0).unwrap()
        );
        let text = format!("{MINIMAL}max_key_bytes = 2048\n");
        assert_eq!(
            merge(&text, &[]).unwrap().sizes,
            SizeLimits::new(2048, DEFAULT_MAX_VALUE).unwrap()
        );
    }

    #[test]
    fn sizes_out_of_bounds_are_refused_naming_the_setting_and_the_bound() {
        let err = merge(MINIMAL, &["--max-key-bytes", "0"]).unwrap_err();
        assert!(matches!(err, ConfigError::Sizes(SizeLimitError::ZeroKey)), "{err:?}");
        assert!(
            err.to_string().starts_with("--max-key-bytes / `max_key_bytes`: "),
            "{err}"
        );
        let text = format!("{MINIMAL}max_key_bytes = 65537\n");
        let err = merge(&text, &[]).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("--max-key-bytes") && message.contains("65537") && message.contains("65536"),
            "{message}"
        );
        let err = merge(MINIMAL, &["--max-value-bytes", "4194305"]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Sizes(SizeLimitError::ValueAboveCeiling { max_value: 4194305 })
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with("--max-value-bytes / `max_value_bytes`: ") && message.contains("4194304"),
            "{message}"
        );
        // A flag within bounds mends a file out of them.
        let text = format!("{MINIMAL}max_value_bytes = 100000000\n");
        assert!(merge(&text, &[]).is_err());
        assert_eq!(
            merge(&text, &["--max-value-bytes", "10"]).unwrap().sizes.max_value(),
            10
        );
        // Not numbers of bytes: refused by the parsers.
        for text in [
            "max_value_bytes = -1",
            "max_key_bytes = \"1k\"",
            "max_value_bytes = 1.5",
        ] {
            let err = FileConfig::from_toml(text, Path::new("node.toml")).unwrap_err();
            assert!(matches!(err, ConfigError::ParseFile { .. }), "{text}: {err:?}");
        }
        assert!(Cli::try_parse_from(["node", "--max-value-bytes", "-1"]).is_err());
        assert!(Cli::try_parse_from(["node", "--max-key-bytes", "lots"]).is_err());
    }

    #[test]
    fn a_zero_lease_is_refused() {
        let err = merge(MINIMAL, &["--lease-ms", "0"]).unwrap_err();
        assert!(matches!(err, ConfigError::ZeroLease), "{err:?}");
    }

    #[test]
    fn a_malformed_peer_in_the_file_is_refused() {
        for entry in ["2", "x=127.0.0.1:7002", "2=localhost", "300=127.0.0.1:7002"] {
            let text = format!("{MINIMAL}peers = [\"3=127.0.0.1:7003\", \"{entry}\"]\n");
            let err = merge(&text, &[]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadPeer { text, .. } if text == entry),
                "{err:?}"
            );
            assert!(err.to_string().contains(&format!("{entry:?}")), "{err}");
            // Even when flags replace the list.
            let err = merge(&text, &["--peer", "2=127.0.0.1:7002"]).unwrap_err();
            assert!(matches!(err, ConfigError::BadPeer { .. }), "{err:?}");
        }
    }

    #[test]
    fn parse_peer_accepts_id_equals_addr() {
        assert_eq!(parse_peer("2=127.0.0.1:7002"), Ok((NodeId(2), addr("127.0.0.1:7002"))));
        assert_eq!(parse_peer("255=[::1]:9"), Ok((NodeId(255), addr("[::1]:9"))));
        assert!(parse_peer("127.0.0.1:7002").unwrap_err().contains("ID=ADDR"));
        assert!(parse_peer("256=127.0.0.1:7002").unwrap_err().contains("\"256\""));
        assert!(parse_peer("2=127.0.0.1").unwrap_err().contains("\"127.0.0.1\""));
    }

    #[test]
    fn new_keys_are_lowercase_hex_and_differ() {
        let a = new_key_hex().unwrap();
        let b = new_key_hex().unwrap();
        assert_eq!(a.len(), 2 * KEY_LEN + 1);
        assert!(a.ends_with('\n'));
        assert!(
            a.trim_end().bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
            "{a}"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn a_written_key_is_accepted_by_cluster_key() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one.key"), dir.path().join("two.key"));
        write_new_key(&one).unwrap();
        write_new_key(&two).unwrap();
        let text = std::fs::read_to_string(&one).unwrap();
        let key = ClusterKey::from_file(&one).unwrap();
        assert_eq!(ClusterKey::parse(text.as_bytes()).unwrap().as_bytes(), key.as_bytes());
        let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text, format!("{hex}\n"));
        assert_ne!(key.as_bytes(), ClusterKey::from_file(&two).unwrap().as_bytes());
    }

    #[test]
    fn write_new_key_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        std::fs::write(&path, "precious").unwrap();
        let err = write_new_key(&path).unwrap_err();
        assert!(
            matches!(&err, ConfigError::KeyFileExists { path: p } if *p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }

    #[test]
    fn write_new_key_reports_an_unwritable_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("cluster.key");
        let err = write_new_key(&path).unwrap_err();
        assert!(matches!(err, ConfigError::WriteKey { .. }), "{err:?}");
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_written_key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        write_new_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
