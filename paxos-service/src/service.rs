//! One `paxos node`: the replicated [`Store`] on
//! [`paxos_std::runtime`], its client server and its metrics endpoint on
//! a small tokio runtime, and a sampler that mirrors the node's counters
//! into the metrics and logs what an operator must know (a new leader, a
//! peer failing authentication).

use crate::config::NodeConfig;
use crate::metrics::{self, Metrics, NodeSample};
use crate::server::{self, Node};
use crate::store::Store;
use paxos_core::replica::LeaseConfig;
use paxos_std::options::{NodeError, NodeOptions, DEFAULT_COMPACT_BYTES, DEFAULT_COMPACT_EVERY};
use paxos_std::runtime::{Runtime, RuntimeStatus};
use paxos_std::transport::ClusterKey;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How often the sampler reads the node's counters.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// The clock-rate error the lease allows for, in parts per million.
const LEASE_DRIFT_PPM: u32 = 1_000;

/// Why a node did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceError {
    /// The replication runtime did not start.
    Node(NodeError),
    /// An address could not be bound, or the async runtime not built.
    Io {
        /// What was being set up.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::Node(e) => write!(f, "{e}"),
            ServiceError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for ServiceError {}

/// A running node.
pub struct Service {
    node: Node,
    tokio: tokio::runtime::Runtime,
    client_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("client_addr", &self.client_addr)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

/// The runtime's options for a node configured as `config`: among them,
/// commands as large as its key and value maxima make them.
pub fn node_options(config: &NodeConfig, key: ClusterKey) -> NodeOptions {
    NodeOptions {
        id: config.id,
        listen: config.listen,
        peers: config.peers.clone(),
        data_dir: config.data_dir.clone(),
        key,
        heartbeat: config.heartbeat,
        election_timeout: config.election_timeout,
        storage_lost: config.storage_lost,
        lease: config.lease.map(|d| {
            let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            LeaseConfig::new(paxos_core::Duration::from_micros(micros), LEASE_DRIFT_PPM)
        }),
        compact_every: DEFAULT_COMPACT_EVERY,
        compact_bytes: DEFAULT_COMPACT_BYTES,
        max_command: config.sizes.max_command(),
        window_bytes: paxos_std::runtime::WINDOW_BYTES,
    }
}

impl Service {
    /// Starts the node of `config`, with the cluster key `key`.
    ///
    /// # Errors
    ///
    /// [`ServiceError`]: the data directory, an address, or the
    /// configuration could not be used.
    pub fn start(config: &NodeConfig, key: ClusterKey) -> Result<Service, ServiceError> {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("paxos-clients-{}", config.id))
            .enable_all()
            .build()
            .map_err(|source| ServiceError::Io {
                what: "the client runtime".into(),
                source,
            })?;
        let runtime = Runtime::start(node_options(config, key), Store::default()).map_err(ServiceError::Node)?;
        let node = Node {
            runtime: Arc::new(runtime),
            metrics: Metrics::new(config.id.0),
            sizes: config.sizes,
        };
        let client_addr = match config.client_listen {
            Some(addr) => {
                let listener =
                    tokio
                        .block_on(tokio::net::TcpListener::bind(addr))
                        .map_err(|source| ServiceError::Io {
                            what: format!("client address {addr}"),
                            source,
                        })?;
                let local = listener.local_addr().ok();
                tokio.spawn(server::serve(listener, node.clone()));
                local
            }
            None => None,
        };
        let metrics_addr = match config.metrics_listen {
            Some(addr) => Some(
                tokio
                    .block_on(metrics::serve(addr, node.metrics.clone()))
                    .map_err(|source| ServiceError::Io {
                        what: format!("metrics address {addr}"),
                        source,
                    })?,
            ),
            None => None,
        };
        tokio.spawn(sample(node.clone()));
        tracing::info!(
            node = config.id.0,
            listen = %config.listen,
            clients = ?client_addr,
            metrics = ?metrics_addr,
            data_dir = %config.data_dir.display(),
            "started"
        );
        Ok(Service {
            node,
            tokio,
            client_addr,
            metrics_addr,
        })
    }

    /// Where clients connect (the bound address), if anywhere.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.client_addr
    }

    /// Where the metrics are served (the bound address), if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The replicated store's runtime.
    pub fn runtime(&self) -> &Runtime<Store> {
        &self.node.runtime
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.node.metrics
    }

    /// Stops serving clients, then stops the node (its queued log work
    /// written and synced first).
    ///
    /// # Errors
    ///
    /// The error that stopped the node earlier, if one did.
    pub fn shutdown(self) -> Result<(), NodeError> {
        let Service { node, tokio, .. } = self;
        // Every task holding the runtime is dropped with the client side.
        tokio.shutdown_timeout(Duration::from_secs(2));
        match Arc::try_unwrap(node.runtime) {
            Ok(runtime) => runtime.shutdown(),
            // A task outlived the shutdown: the runtime stops when the last
            // handle drops.
            Err(_) => Ok(()),
        }
    }
}

/// Mirrors the node's counters into the metrics, and logs a new leader
/// and peers failing authentication.
async fn sample(node: Node) {
    let mut last: Option<RuntimeStatus> = None;
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    loop {
        ticker.tick().await;
        let Ok(s) = node.runtime.status_async().await else {
            return;
        };
        node.metrics.observe_node(&NodeSample {
            is_leader: s.is_leader,
            decided: s.decided,
            applied: s.applied,
            commits: s.commits,
            syncs: s.syncs,
            elections: s.leader_changes,
            drops: server::dropped(&s).into_iter().collect(),
        });
        let before = last.as_ref();
        if before.map(|b| (b.leader, b.is_leader)) != Some((s.leader, s.is_leader)) {
            match (s.is_leader, s.leader) {
                (true, _) => tracing::info!(node = s.id, ballot = ?s.ballot, "this node leads"),
                (false, Some(leader)) => tracing::info!(node = s.id, leader, "following"),
                (false, None) => tracing::info!(node = s.id, "no leader known"),
            }
        }
        let failed = |t: &RuntimeStatus| t.transport.bad_handshake + t.transport.bad_tag;
        let new_failures = failed(&s).saturating_sub(before.map_or(0, failed));
        if new_failures > 0 {
            tracing::warn!(
                node = s.id,
                failures = new_failures,
                "peer connections failed authentication: check that every node has the same cluster key"
            );
        }
        last = Some(s);
    }
}
