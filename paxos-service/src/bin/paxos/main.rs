//! `paxos`: run a node, a demonstration cluster or a benchmark; ask,
//! write and read a cluster; make a cluster key; show a cluster's status.

mod alloc_count;
mod bench;
mod commands;
mod demo;

/// Counts allocations for `paxos bench`; otherwise the system allocator.
#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

use clap::{Args, Parser, Subcommand};
use paxos_service::config::NodeFlags;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Paxos: a replicated key-value store with gen_paxos's write-once ask.
#[derive(Parser, Debug)]
#[command(name = "paxos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which nodes a client command talks to.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub(crate) struct Target {
    /// One node's client address (`ask` and `status` then speak the JSON
    /// line protocol to that node alone, as scripts expect).
    #[arg(long)]
    pub(crate) node: Option<SocketAddr>,
    /// Every node's client address, comma-separated: the client finds the
    /// leader and carries on through leader changes and node deaths.
    #[arg(long, value_delimiter = ',')]
    pub(crate) nodes: Option<Vec<SocketAddr>>,
}

impl Target {
    pub(crate) fn all(&self) -> Vec<SocketAddr> {
        self.nodes.clone().unwrap_or_else(|| self.node.into_iter().collect())
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A 3-node cluster in this process (loopback TCP): clients ask keys
    /// and write the map, the leader is killed and restarted, and a
    /// summary checks that all nodes agree.
    Demo {
        /// How long the clients run, in seconds.
        #[arg(long, default_value_t = 16)]
        seconds: u64,
    },
    /// Durable commits per second and commit latency on 3 nodes in this
    /// process (loopback TCP, a data directory each, real fdatasync), with
    /// 1 and with 256 puts in flight; prints a table.
    Bench {
        /// How long each row is measured, in seconds.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Puts in flight: one row per value (repeat or comma-separate).
        #[arg(long = "in-flight", value_delimiter = ',', default_values_t = [1, 256])]
        in_flight: Vec<usize>,
        /// Where the temporary data directories go (default: the system's
        /// temporary folder). Use a real disk: on tmpfs fdatasync is free.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Runs one node until SIGINT or SIGTERM. Settings come from the flags
    /// and from `--config FILE` (TOML; flags win).
    Node(NodeFlags),
    /// Writes a new random cluster key (64 hex digits) to PATH, readable by
    /// its owner only; refuses to overwrite a file.
    Keygen {
        /// Where to write the key.
        path: PathBuf,
    },
    /// gen_paxos's ask: with VALUE, propose it for KEY unless KEY has a
    /// value; prints the value decided for KEY (and whether yours won) as
    /// one JSON line.
    Ask {
        #[command(flatten)]
        target: Target,
        /// The key.
        key: String,
        /// The value to propose.
        value: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
    /// Sets KEY to VALUE in the map; prints the previous value as JSON.
    Put {
        #[command(flatten)]
        target: Target,
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Reads KEY from the map (linearizable; `--lease`: from the leader
    /// under its lease); prints it as JSON.
    Get {
        #[command(flatten)]
        target: Target,
        /// The key.
        key: String,
        /// Read on the leader under its lease, without a log round trip.
        #[arg(long)]
        lease: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Removes KEY from the map; prints the previous value as JSON.
    Del {
        #[command(flatten)]
        target: Target,
        /// The key.
        key: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Compare-and-set: when KEY holds `--expected` (absent if not given),
    /// sets it to `--new` (removes it if not given); prints whether it
    /// did and the value now, as JSON.
    Cas {
        #[command(flatten)]
        target: Target,
        /// The key.
        key: String,
        /// The value KEY must hold (omit: KEY must be absent).
        #[arg(long)]
        expected: Option<String>,
        /// The value to set (omit: remove KEY).
        #[arg(long)]
        new: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// A node's status as one JSON line (`--node`), or a table of every
    /// node's (`--nodes`; `--json` for one JSON line per node). The table's
    /// last-contact column: how long ago the leader last heard from each
    /// node.
    Status {
        #[command(flatten)]
        target: Target,
        /// With `--nodes`: JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A node logs its start-up and leadership lines at the default level;
    // the demo and the bench print their own story. PAXOS_LOG overrides
    // (e.g. `PAXOS_LOG=debug`).
    let default = match cli.command {
        Command::Node(_) => "warn,paxos_service=info,paxos_std::runtime=info,paxos=info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PAXOS_LOG").unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Demo { seconds } => demo::run(Duration::from_secs(seconds)).map_err(commands::Failure::Other),
        Command::Bench {
            seconds,
            in_flight,
            dir,
        } => bench::run(seconds, &in_flight, dir).map_err(commands::Failure::Other),
        Command::Node(flags) => commands::node(&flags),
        Command::Keygen { path } => commands::keygen(&path),
        Command::Ask {
            target,
            key,
            value,
            timeout,
        } => commands::ask(&target, key, value, timeout),
        Command::Put {
            target,
            key,
            value,
            timeout,
        } => commands::put(&target, key, value, timeout),
        Command::Get {
            target,
            key,
            lease,
            timeout,
        } => commands::get(&target, key, lease, timeout),
        Command::Del { target, key, timeout } => commands::delete(&target, key, timeout),
        Command::Cas {
            target,
            key,
            expected,
            new,
            timeout,
        } => commands::cas(&target, key, expected, new, timeout),
        Command::Status { target, json } => commands::status(&target, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(commands::Failure::Usage(message)) => {
            use clap::CommandFactory;
            Cli::command()
                .error(clap::error::ErrorKind::ValueValidation, message)
                .exit()
        }
        Err(commands::Failure::Other(e)) => {
            eprintln!("paxos: {e}");
            ExitCode::FAILURE
        }
    }
}
