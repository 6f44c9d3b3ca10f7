//! The commands that run a node or talk to one: what each prints, and
//! how each fails (a usage error, exit code 2, or any other, 1).

use crate::Target;
use paxos_service::client::{self, ClientError, ClientReply, ClientRequest, PeerContact, Status};
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

/// The status table's columns.
const COLUMNS: [&str; 12] = [
    "node",
    "id",
    "role",
    "leader",
    "ballot",
    "decided",
    "applied",
    "lag",
    "commits",
    "syncs",
    "last-contact",
    "drops",
];

/// The cluster-wide status table, a row per node. Its `last-contact`
/// column is the leader's view: how long ago the leader last heard from
/// the node (`-` on the leader's own row, `never` for a node it has not
/// heard from since it started, `?` when no node that answered leads).
fn table(statuses: &[(SocketAddr, Result<Status, String>)]) -> String {
    let slot = |s: Option<u64>| s.map_or("-".to_string(), |s| s.to_string());
    // Two nodes may say they lead during an election: the higher ballot's.
    let leader = statuses
        .iter()
        .filter_map(|(_, s)| s.as_ref().ok().filter(|s| s.is_leader))
        .max_by_key(|s| s.ballot);
    let mut rows = vec![COLUMNS.map(String::from)];
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
                    last_contact(leader, s.id),
                    if drops.is_empty() { "0".into() } else { drops.join(" ") },
                ]
            }
            Err(e) => {
                let mut row: [String; COLUMNS.len()] = Default::default();
                row[0] = addr.to_string();
                row[2] = format!("unreachable: {e}");
                row
            }
        };
        rows.push(row);
    }
    let widths: Vec<usize> = (0..COLUMNS.len())
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

/// How long ago `leader` last heard from node `id` (see [`table`]).
fn last_contact(leader: Option<&Status>, id: u8) -> String {
    let Some(leader) = leader else {
        return "?".into();
    };
    if leader.id == id {
        return "-".into();
    }
    match leader.peers.iter().find(|p| p.id == id) {
        Some(PeerContact {
            last_heard_ms: Some(ms),
            ..
        }) => ago(*ms),
        Some(_) => "never".into(),
        // Not among the leader's peers (or a node too old to say).
        None => "?".into(),
    }
}

/// `ms` milliseconds, shortly: `850ms`, `12.3s`.
fn ago(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: u8, is_leader: bool, peers: &[(u8, Option<u64>)]) -> Status {
        Status {
            id,
            is_leader,
            leader: Some(1),
            ballot: Some((3, 1)),
            peers: peers
                .iter()
                .map(|&(id, last_heard_ms)| PeerContact { id, last_heard_ms })
                .collect(),
            ..Status::default()
        }
    }

    /// The table's rows split into cells (every cell here is one word).
    fn cells(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect()
    }

    #[test]
    fn last_contact_is_the_leaders_view_of_each_node() {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let statuses = vec![
            (
                addr(1),
                Ok(status(1, true, &[(2, Some(12)), (3, Some(2_345)), (4, None)])),
            ),
            // A follower's own contacts are not what the column shows.
            (addr(2), Ok(status(2, false, &[(1, Some(999_999))]))),
            (addr(3), Ok(status(3, false, &[]))),
            (addr(4), Ok(status(4, false, &[]))),
        ];
        let rows = cells(&table(&statuses));
        let column = rows[0].iter().position(|c| c == "last-contact").unwrap();
        assert_eq!(rows[0].last().map(String::as_str), Some("drops"), "drops stays last");
        let contacts: Vec<&str> = rows[1..].iter().map(|r| r[column].as_str()).collect();
        assert_eq!(contacts, ["-", "12ms", "2.3s", "never"]);
        assert!(rows.iter().all(|r| r.len() == COLUMNS.len()), "{rows:?}");
    }

    #[test]
    fn without_a_leader_or_a_status_last_contact_is_unknown() {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let statuses = vec![
            (addr(1), Ok(status(1, false, &[(2, Some(5))]))),
            (addr(2), Err("connection refused".to_string())),
        ];
        let text = table(&statuses);
        let rows = cells(&text);
        let column = rows[0].iter().position(|c| c == "last-contact").unwrap();
        assert_eq!(rows[1][column], "?");
        assert!(rows[2].join(" ").contains("unreachable: connection refused"), "{text}");
        // Of two nodes saying they lead, the higher ballot's view.
        let mut old = status(1, true, &[(2, Some(9_000))]);
        old.ballot = Some((2, 1));
        let mut new = status(2, true, &[(1, Some(40))]);
        new.ballot = Some((3, 2));
        let rows = cells(&table(&[(addr(1), Ok(old)), (addr(2), Ok(new))]));
        assert_eq!((rows[1][column].as_str(), rows[2][column].as_str()), ("40ms", "-"));
    }
}
