//! `paxos`: run a demonstration cluster, a node, or ask a node.

mod alloc_count;
mod bench;
mod demo;

/// Counts allocations for `paxos bench`; otherwise the system allocator.
#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

use clap::{Parser, Subcommand};
use paxos_core::NodeId;
use paxos_service::app;
use paxos_service::client::{self, ClientError, ClientReply, ClientRequest};
use paxos_service::node::{self, NodeOptions};
use paxos_std::transport::ClusterKey;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Paxos: keyed consensus (gen_paxos's ask) on a cluster of nodes.
#[derive(Parser, Debug)]
#[command(name = "paxos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A 3-node cluster on loopback UDP: clients ask keys, the leader is
    /// killed and restarted, and a summary checks that all nodes agree.
    Demo {
        /// How long the clients run, in seconds.
        #[arg(long, default_value_t = 16)]
        seconds: u64,
    },
    /// Durable commits per second and commit latency on 3 nodes in this
    /// process (loopback UDP, a data directory each, real fdatasync), with
    /// 1 and with 256 asks in flight; prints a table.
    Bench {
        /// How long each row is measured, in seconds.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Asks in flight: one row per value (repeat or comma-separate).
        #[arg(long = "in-flight", value_delimiter = ',', default_values_t = [1, 256])]
        in_flight: Vec<usize>,
        /// Where the temporary data directories go (default: the system's
        /// temporary folder). Use a real disk: on tmpfs fdatasync is free.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Runs one node until SIGINT or SIGTERM.
    Node {
        /// This node's id (0-255).
        #[arg(long)]
        id: u8,
        /// UDP address for the other nodes.
        #[arg(long)]
        listen: SocketAddr,
        /// Another node: ID=ADDR (repeat for each).
        #[arg(long = "peer", value_parser = parse_peer)]
        peers: Vec<(NodeId, SocketAddr)>,
        /// Where the node keeps its log.
        #[arg(long)]
        data_dir: PathBuf,
        /// TCP address for `paxos ask` and `paxos status`.
        #[arg(long)]
        client_listen: Option<SocketAddr>,
        /// The cluster key: 64 hex characters or 32 raw bytes. Without it,
        /// a well-known demo key is used: anyone can then forge messages.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// This node ran before and its data directory was lost: with an
        /// empty data directory it starts as a learner that never votes
        /// again (without the flag, an empty data directory is a first
        /// boot, and a node that forgot its votes could let two values be
        /// decided).
        #[arg(long)]
        storage_lost: bool,
    },
    /// gen_paxos's ask: with VALUE, propose it for KEY unless KEY has a
    /// value; prints the value decided for KEY as one JSON line.
    Ask {
        /// A node's client address.
        #[arg(long)]
        node: SocketAddr,
        /// The key.
        key: String,
        /// The value to propose.
        value: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
    /// Prints a node's status as one JSON line.
    Status {
        /// A node's client address.
        #[arg(long)]
        node: SocketAddr,
    },
}

fn parse_peer(s: &str) -> Result<(NodeId, SocketAddr), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=ADDR, got {s:?}"))?;
    let id: u8 = id.parse().map_err(|_| format!("bad node id {id:?}: expected 0-255"))?;
    let addr: SocketAddr = addr.parse().map_err(|_| format!("bad address {addr:?}"))?;
    Ok((NodeId(id), addr))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("PAXOS_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Demo { seconds } => demo::run(Duration::from_secs(seconds)),
        Command::Bench {
            seconds,
            in_flight,
            dir,
        } => bench::run(seconds, &in_flight, dir),
        Command::Node {
            id,
            listen,
            peers,
            data_dir,
            client_listen,
            key_file,
            storage_lost,
        } => run_node(id, listen, peers, data_dir, client_listen, key_file, storage_lost),
        Command::Ask {
            node,
            key,
            value,
            timeout,
        } => ask(node, key, value, timeout),
        Command::Status { node } => status(node),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paxos: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn run_node(
    id: u8,
    listen: SocketAddr,
    peers: Vec<(NodeId, SocketAddr)>,
    data_dir: PathBuf,
    client_listen: Option<SocketAddr>,
    key_file: Option<PathBuf>,
    storage_lost: bool,
) -> AnyResult<()> {
    let key = match key_file {
        Some(path) => ClusterKey::from_file(&path).map_err(|e| format!("key file {}: {e}", path.display()))?,
        None => {
            eprintln!("paxos: no --key-file: using the well-known demo key (messages can be forged)");
            ClusterKey::insecure_default()
        }
    };
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("data directory {}: {e}", data_dir.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    let (requests, inbox) = node::inbox();
    if let Some(addr) = client_listen {
        paxos_service::server::serve(addr, requests).map_err(|e| format!("client address {addr}: {e}"))?;
    }
    let options = NodeOptions {
        id: NodeId(id),
        listen,
        peers,
        data_dir,
        key,
        heartbeat: Duration::from_millis(50),
        election_timeout: Duration::from_millis(300),
        storage_lost,
        lease: None,
        compact_every: paxos_std::options::DEFAULT_COMPACT_EVERY,
    };
    let worker = node::spawn(options, inbox, stop)?;
    worker.join().map_err(|_| "the node thread panicked")??;
    Ok(())
}

fn ask(node: SocketAddr, key: String, value: Option<String>, timeout: f64) -> AnyResult<()> {
    app::key(&key)?;
    if let Some(v) = &value {
        app::value(v)?;
    }
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    let deadline = Duration::from_secs_f64(timeout);
    match call(node, &ClientRequest::Ask { key, value }, deadline)? {
        ClientReply::Answer(a) => {
            println!("{}", serde_json::to_string(&a)?);
            Ok(())
        }
        other => Err(format!("unexpected reply {other:?}").into()),
    }
}

fn status(node: SocketAddr) -> AnyResult<()> {
    match call(node, &ClientRequest::Status, Duration::from_secs(5))? {
        ClientReply::Status(s) => {
            println!("{}", serde_json::to_string(&s)?);
            Ok(())
        }
        other => Err(format!("unexpected reply {other:?}").into()),
    }
}

/// One client call, its errors naming the node, and a timeout said as one.
fn call(node: SocketAddr, request: &ClientRequest, timeout: Duration) -> AnyResult<ClientReply> {
    client::call(node, request, timeout).map_err(|e| match e {
        ClientError::Io(io) if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            format!("no answer from node {node} within {} s", timeout.as_secs_f64()).into()
        }
        e => format!("node {node}: {e}").into(),
    })
}
