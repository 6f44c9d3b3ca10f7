//! The commands that run a node or talk to one: what each prints, and
//! how each fails (a usage error, exit code 2, or any other, 1).

use crate::Target;
use paxos_service::client::{self, ClientError, ClientReply, ClientRequest, Status};
use paxos_service::cluster::{BlockingClient, CallError, ClientOptions};
use paxos_service::config::{self, ConfigError, NodeConfig, NodeFlags};
use paxos_service::protocol::SizeLimits;
use paxos_service::service::Service;
use paxos_std::transport::ClusterKey;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How a command failed.
pub(crate) enum Failure {
    /// The command line is wrong: clap prints it with the usage.
    Usage(String),
    /// Anything else.
    Other(Box<dyn std::error::Error>),
}

impl<E: Into<Box<dyn std::error::Error>>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Other(e.into())
    }
}

type Outcome = Result<(), Failure>;

/// `paxos node`: runs until SIGINT or SIGTERM.
pub(crate) fn node(flags: &NodeFlags) -> Outcome {
    let config = NodeConfig::load(flags).map_err(|e| match e {
        // A file that cannot be read or parsed is not a usage error.
        ConfigError::ReadFile { .. } | ConfigError::ParseFile { .. } => Failure::Other(e.into()),
        e => Failure::Usage(e.to_string()),
    })?;
    let key = match &config.key_file {
        Some(path) => ClusterKey::from_file(path).map_err(|e| format!("key file {}: {e}", path.display()))?,
        None => {
            eprintln!("paxos: no --key-file: using the well-known demo key (messages can be forged)");
            ClusterKey::insecure_default()
        }
    };
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("data directory {}: {e}", config.data_dir.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    let service = Service::start(&config, key)?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!(node = config.id.0, "stopping");
    service.shutdown()?;
    Ok(())
}

/// `paxos keygen PATH`.
pub(crate) fn keygen(path: &Path) -> Outcome {
    config::write_new_key(path)?;
    eprintln!("paxos: wrote a new cluster key to {}", path.display());
    Ok(())
}

fn deadline(timeout: f64) -> Result<Duration, Failure> {
    if !(timeout.is_finite() && timeout > 0.0 && timeout < 1e6) {
        return Err(Failure::Other("--timeout must be a positive number of seconds".into()));
    }
    Ok(Duration::from_secs_f64(timeout))
}

/// A client of `target`'s nodes that gives up after `timeout`.
fn connect(target: &Target, timeout: Duration) -> Result<BlockingClient, Failure> {
    let mut options = ClientOptions::new(target.all());
    options.request_timeout = timeout;
    options.attempt_timeout = options.attempt_timeout.min(timeout);
    BlockingClient::connect(options).map_err(|e| unavailable(target, e))
}

fn unavailable(target: &Target, e: CallError) -> Failure {
    let nodes: Vec<String> = target.all().iter().map(ToString::to_string).collect();
    Failure::Other(format!("nodes {}: {e}", nodes.join(",")).into())
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Refuses, before connecting, a key or value longer than the nodes'
/// default maxima (what this command's client sends).
fn check_sizes(key: &str, values: &[&str]) -> Outcome {
    let sizes = SizeLimits::DEFAULT;
    sizes
        .check_key(key.as_bytes())
        .map_err(|e| Failure::Other(e.message.into()))?;
    for v in values {
        sizes
            .check_value(v.as_bytes())
            .map_err(|e| Failure::Other(e.message.into()))?;
    }
    Ok(())
}

/// `paxos ask`.
pub(crate) fn ask(target: &Target, key: String, value: Option<String>, timeout: f64) -> Outcome {
    check_sizes(
        &key,
        value
            .as_slice()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
    )?;
    let timeout = deadline(timeout)?;
    if let Some(node) = target.node {
        // One node, over the line protocol: the reply printed as it came.
        return match call(node, &ClientRequest::Ask { key, value }, timeout)? {
            ClientReply::Answer(a) => print(&a),
            other => Err(format!("unexpected reply {other:?}").into()),
        };
    }
    let client = connect(target, timeout)?;
    let answer = match value {
        Some(v) => {
            let asked = client
                .ask(key.as_bytes(), v.as_bytes())
                .map_err(|e| unavailable(target, e))?;
            json!({ "key": key, "value": text(Some(asked.value)), "won": asked.won })
        }
        None => {
            let value = client.register(key.as_bytes()).map_err(|e| unavailable(target, e))?;
            json!({ "key": key, "value": text(value) })
        }
    };
    print(&answer)
}

/// `paxos put`.
pub(crate) fn put(target: &Target, key: String, value: String, timeout: f64) -> Outcome {
    check_sizes(&key, &[&value])?;
    let client = connect(target, deadline(timeout)?)?;
    let previous = client
        .put(key.as_bytes(), value.as_bytes())
        .map_err(|e| unavailable(target, e))?;
    print(&json!({ "key": key, "previous": text(previous) }))
}

/// `paxos get`.
pub(crate) fn get(target: &Target, key: String, lease: bool, timeout: f64) -> Outcome {
    check_sizes(&key, &[])?;
    let client = connect(target, deadline(timeout)?)?;
    let value = if lease {
        client.get_under_lease(key.as_bytes())
    } else {
        client.get(key.as_bytes())
    }
    .map_err(|e| unavailable(target, e))?;
    print(&json!({ "key": key, "value": text(value) }))
}

/// `paxos del`.
pub(crate) fn delete(target: &Target, key: String, timeout: f64) -> Outcome {
    check_sizes(&key, &[])?;
    let client = connect(target, deadline(timeout)?)?;
    let previous = client.delete(key.as_bytes()).map_err(|e| unavailable(target, e))?;
    print(&json!({ "key": key, "previous": text(previous) }))
}

/// `paxos cas`.
pub(crate) fn cas(
    target: &Target,
    key: String,
    expected: Option<String>,
    new: Option<String>,
    timeout: f64,
) -> Outcome {
    let values: Vec<&str> = expected.iter().chain(&new).map(String::as_str).collect();
    check_sizes(&key, &values)?;
    let client = connect(target, deadline(timeout)?)?;
    let outcome = client
        .cas(
            key.as_bytes(),
            expected.as_deref().map(str::as_bytes),
            new.as_deref().map(str::as_bytes),
        )
        .map_err(|e| unavailable(target, e))?;
    print(&json!({ "key": key, "ok": outcome.ok, "current": text(outcome.current) }))
}

/// `paxos status`: one node's JSON line, or every node's as a table.
pub(crate) fn status(target: &Target, as_json: bool) -> Outcome {
    let timeout = Duration::from_secs(5);
    if let Some(node) = target.node {
        return match call(node, &ClientRequest::Status, timeout)? {
            ClientReply::Status(s) => print(&s),
            other => Err(format!("unexpected reply {other:?}").into()),
        };
    }
    let nodes = target.all();
    let statuses: Vec<(SocketAddr, Result<Status, String>)> = nodes
        .iter()
        .map(|&addr| {
            let s = match call(addr, &ClientRequest::Status, timeout) {
                Ok(ClientReply::Status(s)) => Ok(s),
                Ok(other) => Err(format!("unexpected reply {other:?}")),
                Err(Failure::Other(e)) => Err(e.to_string()),
                Err(Failure::Usage(e)) => Err(e),
            };
            (addr, s)
        })
        .collect();
    if as_json {
        for (addr, s) in &statuses {
            match s {
                Ok(s) => println!("{}", json!({ "node": addr.to_string(), "status": s })),
                Err(e) => println!("{}", json!({ "node": addr.to_string(), "error": e })),
            }
        }
    } else {
        print!("{}", table(&statuses));
    }
    if statuses.iter().all(|(_, s)| s.is_err()) {
        return Err("no node answered".into());
    }
    Ok(())
}

/// The cluster-wide status table.
fn table(statuses: &[(SocketAddr, Result<Status, String>)]) -> String {
    let slot = |s: Option<u64>| s.map_or("-".to_string(), |s| s.to_string());
    let mut rows = vec![[
        "node", "id", "role", "leader", "ballot", "decided", "applied", "lag", "commits", "syncs", "drops",
    ]
    .map(String::from)];
    for (addr, s) in statuses {
        let row = match s {
            Ok(s) => {
                let lag = match (s.decided, s.applied) {
                    (Some(d), Some(a)) => d.saturating_sub(a),
                    (Some(d), None) => d + 1,
                    _ => 0,
                };
                let drops: Vec<String> = s
                    .dropped
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, n)| format!("{k}={n}"))
                    .collect();
                [
                    addr.to_string(),
                    s.id.to_string(),
                    if s.is_leader {
                        "leader"
                    } else if s.amnesiac {
                        "learner"
                    } else {
                        "follower"
                    }
                    .to_string(),
                    s.leader.map_or("-".into(), |l| l.to_string()),
                    s.ballot.map_or("-".into(), |(r, n)| format!("{r}.{n}")),
                    slot(s.decided),
                    slot(s.applied),
                    lag.to_string(),
                    s.commits.to_string(),
                    s.syncs.to_string(),
                    if drops.is_empty() { "0".into() } else { drops.join(" ") },
                ]
            }
            Err(e) => {
                let mut row: [String; 11] = Default::default();
                row[0] = addr.to_string();
                row[2] = format!("unreachable: {e}");
                row
            }
        };
        rows.push(row);
    }
    let widths: Vec<usize> = (0..11)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn print(value: &impl serde::Serialize) -> Outcome {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// One line-protocol call, its errors naming the node, and a timeout said
/// as one.
fn call(node: SocketAddr, request: &ClientRequest, timeout: Duration) -> Result<ClientReply, Failure> {
    client::call(node, request, timeout).map_err(|e| {
        let message = match e {
            ClientError::Io(io)
                if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                format!("no answer from node {node} within {} s", timeout.as_secs_f64())
            }
            e => format!("node {node}: {e}"),
        };
        Failure::Other(message.into())
    })
}
