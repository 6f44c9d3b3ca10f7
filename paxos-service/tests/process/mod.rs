//! The harness of the process tests (`cli.rs`, `failover.rs`,
//! `restart.rs`, `disk_loss.rs`): running the `paxos` program, its
//! `ask` and `status` commands with their one-line JSON output, the client
//! API, a cluster of `paxos node` processes ([`cluster`]) and concurrent
//! clients ([`clients`]).
//!
//! Every child process belongs to a guard that kills it on drop, so a
//! failing assertion never leaves nodes running. Every loop is bounded in
//! both count and time.

// Each test file uses its own subset.
#![allow(dead_code)]

pub mod clients;
pub mod cluster;

use paxos_service::client::{self, Answer, ClientError, ClientReply, ClientRequest, Status};
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const PAXOS: &str = env!("CARGO_BIN_EXE_paxos");

/// A cluster key file's contents: 64 hex digits.
pub const KEY_HEX: &str = "5e1f0c2a9b8d7e6f00112233445566778899aabbccddeeff0f1e2d3c4b5a6978\n";

/// How long one client call may take before the client tries elsewhere.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Polls `f` every `step` until it returns `Some`, at most `limit` long.
pub fn wait_for<T>(limit: Duration, step: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    // The count bound is a backstop in case `f` itself returns quickly
    // forever while the clock misbehaves.
    let max_tries = (limit.as_millis() / step.as_millis().max(1)) as usize + 2;
    for _ in 0..max_tries {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            break;
        }
        std::thread::sleep(step);
    }
    None
}

/// `n` distinct loopback addresses free for both TCP and UDP: what
/// nodes listen on for each other.
pub fn free_peer(n: usize) -> Vec<SocketAddr> {
    paxos_std::transport::free_loopback_addrs(n).expect("free loopback addresses")
}

/// `n` distinct free loopback addresses for TCP (bound together, then
/// released).
pub fn free_tcp(n: usize) -> Vec<SocketAddr> {
    // Below the ephemeral range: the nodes' connections to each other
    // never take these ports before the node meant to listen starts.
    paxos_std::transport::free_loopback_addrs(n).expect("free loopback addresses")
}

/// A finished process's result.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A child killed on drop.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("a child")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits at most `limit` for `child` to exit; `None` if it did not.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    wait_for(limit, Duration::from_millis(20), || child.try_wait().ok().flatten())
}

/// Runs `paxos ARGS...` to completion (killed after `limit`), capturing its
/// output. Panics if it does not exit in time.
pub fn run_paxos(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(PAXOS)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn paxos");
    let mut guard = ChildGuard(Some(child));
    let status = wait_exit(guard.child(), limit)
        .unwrap_or_else(|| panic!("`paxos {}` did not exit within {limit:?}", args.join(" ")));
    // The outputs are small: the pipes held all of them.
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = guard.child().stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = guard.child().stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    Output { status, stdout, stderr }
}

/// `paxos ask --node NODE KEY [VALUE]` through the real binary; returns the
/// parsed answer.
pub fn ask_binary(node: SocketAddr, key: &str, value: Option<&str>) -> Answer {
    let node = node.to_string();
    let mut args = vec!["ask", "--node", &node, "--timeout", "5", key];
    args.extend(value);
    let out = run_paxos(&args, Duration::from_secs(15));
    assert!(
        out.status.success(),
        "`paxos {}` failed: {:?}, stderr: {}",
        args.join(" "),
        out.status,
        out.stderr
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "`paxos ask` must print exactly one line, printed {:?}",
        out.stdout
    );
    let answer: Answer =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("`paxos ask` printed {:?}: {e}", lines[0]));
    assert_eq!(answer.key, key, "`paxos ask` answered for another key");
    answer
}

/// `paxos status --node NODE` through the real binary.
pub fn status_binary(node: SocketAddr) -> Status {
    let node = node.to_string();
    let out = run_paxos(&["status", "--node", &node], Duration::from_secs(15));
    assert!(
        out.status.success(),
        "`paxos status` failed: {:?}, stderr: {}",
        out.status,
        out.stderr
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "`paxos status` must print one line, printed {:?}",
        out.stdout
    );
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("`paxos status` printed {:?}: {e}", lines[0]))
}

/// One ask through the client API.
pub fn ask_api(node: SocketAddr, key: &str, value: Option<&str>) -> Result<Answer, ClientError> {
    let request = ClientRequest::Ask {
        key: key.to_string(),
        value: value.map(str::to_string),
    };
    match client::call(node, &request, CALL_TIMEOUT)? {
        ClientReply::Answer(a) if a.key == key => Ok(a),
        other => Err(ClientError::BadReply(format!("{other:?}"))),
    }
}

/// An ask through the client API, retried on other nodes on error.
pub fn ask_retrying(nodes: &[SocketAddr], first: usize, key: &str, value: Option<&str>) -> Option<Answer> {
    let deadline = Instant::now() + Duration::from_secs(15);
    for attempt in 0..30 {
        let node = nodes[(first + attempt) % nodes.len()];
        if let Ok(a) = ask_api(node, key, value) {
            return Some(a);
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}
