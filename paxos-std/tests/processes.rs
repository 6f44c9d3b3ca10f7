//! Process-level tests of the `paxos` program: real `paxos node` processes
//! on loopback, killed with SIGKILL or stopped with SIGTERM and restarted
//! from their data directories, with clients asking keys throughout.
//!
//! Every child process belongs to a guard that kills it on drop, so a
//! failing assertion never leaves nodes running. Every loop is bounded in
//! both count and time.

use paxos_std::client::{self, Answer, ClientError, ClientReply, ClientRequest, Status};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PAXOS: &str = env!("CARGO_BIN_EXE_paxos");

/// A cluster key file's contents: 64 hex digits.
const KEY_HEX: &str = "5e1f0c2a9b8d7e6f00112233445566778899aabbccddeeff0f1e2d3c4b5a6978\n";

/// How long one client call may take before the client tries elsewhere.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// Polls `f` every `step` until it returns `Some`, at most `limit` long.
fn wait_for<T>(limit: Duration, step: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
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

/// `n` distinct free loopback addresses for UDP (bound together, then
/// released).
fn free_udp(n: usize) -> Vec<SocketAddr> {
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket"))
        .collect();
    sockets.iter().map(|s| s.local_addr().unwrap()).collect()
}

/// `n` distinct free loopback addresses for TCP (bound together, then
/// released).
fn free_tcp(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a TCP socket"))
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// A finished process's result.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// A child killed on drop.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn child(&mut self) -> &mut Child {
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
fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    wait_for(limit, Duration::from_millis(20), || child.try_wait().ok().flatten())
}

/// Runs `paxos ARGS...` to completion (killed after `limit`), capturing its
/// output. Panics if it does not exit in time.
fn run_paxos(args: &[&str], limit: Duration) -> Output {
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
fn ask_binary(node: SocketAddr, key: &str, value: Option<&str>) -> Answer {
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
fn status_binary(node: SocketAddr) -> Status {
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
fn ask_api(node: SocketAddr, key: &str, value: Option<&str>) -> Result<Answer, ClientError> {
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
fn ask_retrying(nodes: &[SocketAddr], first: usize, key: &str, value: Option<&str>) -> Option<Answer> {
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

// ---------------------------------------------------------------------------
// A cluster of `paxos node` processes
// ---------------------------------------------------------------------------

struct Cluster {
    dir: tempfile::TempDir,
    key_file: PathBuf,
    udp: Vec<SocketAddr>,
    clients: Vec<SocketAddr>,
    children: Vec<Option<Child>>,
    /// How many times each node was started (names its log files).
    starts: Vec<u32>,
    /// Nodes stopped with SIGSTOP and not yet continued.
    paused: Vec<bool>,
}

impl Cluster {
    /// Writes the key file and picks addresses; starts nothing.
    fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let key_file = dir.path().join("cluster.key");
        std::fs::write(&key_file, KEY_HEX).expect("write the key file");
        Cluster {
            key_file,
            udp: free_udp(n),
            clients: free_tcp(n),
            children: (0..n).map(|_| None).collect(),
            starts: vec![0; n],
            paused: vec![false; n],
            dir,
        }
    }

    fn len(&self) -> usize {
        self.udp.len()
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{}", i + 1))
    }

    /// The arguments node `i` always runs with.
    fn args(&self, i: usize) -> Vec<String> {
        let mut args = vec![
            "node".to_string(),
            "--id".into(),
            (i + 1).to_string(),
            "--listen".into(),
            self.udp[i].to_string(),
            "--data-dir".into(),
            self.data_dir(i).display().to_string(),
            "--client-listen".into(),
            self.clients[i].to_string(),
            "--key-file".into(),
            self.key_file.display().to_string(),
        ];
        for (j, addr) in self.udp.iter().enumerate().filter(|(j, _)| *j != i) {
            args.push("--peer".into());
            args.push(format!("{}={addr}", j + 1));
        }
        args
    }

    fn log_path(&self, i: usize, start: u32) -> PathBuf {
        self.dir.path().join(format!("node{}.{start}.log", i + 1))
    }

    /// Starts node `i` (with the same arguments every time) and waits
    /// until it answers `status`.
    fn start(&mut self, i: usize) {
        self.start_with(i, &[]);
    }

    /// Starts node `i` with `extra` arguments after the usual ones.
    fn start_with(&mut self, i: usize, extra: &[&str]) {
        assert!(self.children[i].is_none(), "node {} is already running", i + 1);
        self.starts[i] += 1;
        let log = File::create(self.log_path(i, self.starts[i])).expect("create a log file");
        let child = Command::new(PAXOS)
            .args(self.args(i))
            .args(extra)
            .env("PAXOS_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn paxos node");
        self.children[i] = Some(child);
        let up = wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            if let Some(Ok(Some(exit))) = self.children[i].as_mut().map(Child::try_wait) {
                panic!("node {} exited at start with {exit}:\n{}", i + 1, self.logs());
            }
            self.status(i)
        });
        assert!(up.is_some(), "node {} did not answer status within 10 s", i + 1);
    }

    /// SIGKILLs node `i` and reaps it.
    fn kill(&mut self, i: usize) {
        let mut child = self.children[i].take().expect("a running node");
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("node {} had already exited with {exit}:\n{}", i + 1, self.logs());
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// Sends node `i` SIGTERM through `kill -TERM` and waits (bounded) for
    /// it to exit.
    fn terminate(&mut self, i: usize) -> Option<ExitStatus> {
        let child = self.children[i].as_mut().expect("a running node");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let exit = wait_exit(child, Duration::from_secs(5));
        if exit.is_some() {
            self.children[i] = None;
        }
        exit
    }

    fn running(&self, i: usize) -> bool {
        self.children[i].is_some() && !self.paused[i]
    }

    /// Sends node `i` SIGSTOP (`pause`) or SIGCONT through `kill`.
    fn pause(&mut self, i: usize, pause: bool) {
        let pid = self.children[i].as_ref().expect("a running node").id().to_string();
        let signal = if pause { "-STOP" } else { "-CONT" };
        let sent = Command::new("kill").args([signal, &pid]).status().expect("run kill");
        assert!(sent.success(), "kill {signal} {pid} failed");
        self.paused[i] = pause;
    }

    /// Panics if a node that should be running has exited.
    fn assert_alive(&mut self) {
        for i in 0..self.len() {
            if let Some(Ok(Some(exit))) = self.children[i].as_mut().map(Child::try_wait) {
                panic!("node {} exited unexpectedly with {exit}:\n{}", i + 1, self.logs());
            }
        }
    }

    fn status(&self, i: usize) -> Option<Status> {
        match client::call(self.clients[i], &ClientRequest::Status, Duration::from_secs(2)) {
            Ok(ClientReply::Status(s)) => Some(s),
            _ => None,
        }
    }

    /// The node that says it leads and that a majority of the running
    /// nodes (itself included) follows.
    fn leader(&self) -> Option<usize> {
        let statuses: Vec<Option<Status>> = (0..self.len())
            .map(|i| if self.running(i) { self.status(i) } else { None })
            .collect();
        (0..self.len()).find(|&i| {
            let id = (i + 1) as u8;
            let says = statuses[i].as_ref().is_some_and(|s| s.leader == Some(id));
            let followers = statuses.iter().flatten().filter(|s| s.leader == Some(id)).count();
            says && followers > self.len() / 2
        })
    }

    /// Waits (bounded) for a leader other than `not`.
    fn wait_leader(&self, not: Option<usize>, limit: Duration) -> usize {
        wait_for(limit, Duration::from_millis(50), || {
            self.leader().filter(|&l| Some(l) != not)
        })
        .unwrap_or_else(|| panic!("no leader (other than {not:?}) within {limit:?}:\n{}", self.logs()))
    }

    /// Waits (bounded) until every node is up and reports the same
    /// `decided` and `applied`, with `applied == decided`.
    fn wait_converged(&self, limit: Duration) -> Vec<Status> {
        let mut last = Vec::new();
        let done = wait_for(limit, Duration::from_millis(100), || {
            let statuses: Vec<Status> = (0..self.len()).filter_map(|i| self.status(i)).collect();
            last = statuses.clone();
            let first = statuses.first()?;
            let same = statuses.len() == self.len()
                && first.applied.is_some()
                && first.applied == first.decided
                && statuses
                    .iter()
                    .all(|s| s.applied == first.applied && s.decided == first.decided);
            same.then_some(statuses)
        });
        done.unwrap_or_else(|| {
            panic!(
                "the nodes did not converge within {limit:?}: {last:#?}\n{}",
                self.logs()
            )
        })
    }

    /// The tail of every node's logs, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for i in 0..self.len() {
            for start in 1..=self.starts[i] {
                let text = std::fs::read_to_string(self.log_path(i, start)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                out.push_str(&format!("--- node {} run {start} (last 40 lines)\n", i + 1));
                for line in &lines[lines.len().saturating_sub(40)..] {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// How many log lines, over all nodes and runs, contain `what`.
    fn count_log_lines(&self, what: &str) -> usize {
        (0..self.len())
            .flat_map(|i| (1..=self.starts[i]).map(move |start| (i, start)))
            .map(|(i, start)| {
                let text = std::fs::read_to_string(self.log_path(i, start)).unwrap_or_default();
                text.lines().filter(|l| l.contains(what)).count()
            })
            .sum()
    }

    /// Lines of any log that show a panic or an error.
    fn bad_log_lines(&self) -> Vec<String> {
        let mut bad = Vec::new();
        for i in 0..self.len() {
            for start in 1..=self.starts[i] {
                let text = std::fs::read_to_string(self.log_path(i, start)).unwrap_or_default();
                for line in text.lines() {
                    if line.contains("panicked") || line.contains("ERROR") {
                        bad.push(format!("node {} run {start}: {line}", i + 1));
                    }
                }
            }
        }
        bad
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGKILL ends stopped processes too.
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("node logs in {}:\n{}", self.dir.path().display(), self.logs());
        }
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// One key a client asked, what it proposed and what it was told (`None`
/// if it gave up).
#[derive(Clone, Debug)]
struct Asked {
    client: usize,
    key: String,
    value: String,
    answer: Option<Option<String>>,
}

/// Sets `stop` and `abort` on drop, so clients end promptly even when the
/// test fails.
struct StopOnDrop {
    stop: Arc<AtomicBool>,
    abort: Arc<AtomicBool>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.abort.store(true, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The key a client asks at its `i`th step: mostly its own, every third a
/// key every client asks with its own value.
fn key_for(client: usize, i: u64) -> String {
    if i % 3 == 2 {
        format!("shared-{}", i / 3)
    } else {
        format!("c{client}-{i}")
    }
}

/// One client: asks keys until `stop`, each through some node, retried on
/// other nodes on error (the node asked may be down).
fn client_loop(
    client: usize,
    nodes: Arc<Vec<SocketAddr>>,
    stop: Arc<AtomicBool>,
    abort: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    errors: Arc<Mutex<BTreeMap<String, u64>>>,
) -> Vec<Asked> {
    let hard_deadline = Instant::now() + Duration::from_secs(60);
    let mut asked = Vec::new();
    for i in 0..100_000u64 {
        if stop.load(Ordering::Relaxed) || Instant::now() >= hard_deadline {
            break;
        }
        let key = key_for(client, i);
        let value = format!("v{client}-{i}");
        let mut answer = None;
        // Once asked, a key is followed through to an answer (bounded), even
        // after `stop`, so that few asks are left in doubt.
        let give_up = Instant::now() + Duration::from_secs(12);
        for attempt in 0..40 {
            let node = nodes[(client + i as usize + attempt) % nodes.len()];
            match ask_api(node, &key, Some(&value)) {
                Ok(a) => {
                    answer = Some(a.value);
                    break;
                }
                Err(e) => {
                    let kind = match e {
                        ClientError::Io(e) => format!("io: {:?}", e.kind()),
                        ClientError::Node(m) => format!("node: {m}"),
                        ClientError::BadReply(m) => format!("bad reply: {m}"),
                    };
                    if let Ok(mut errors) = errors.lock() {
                        *errors.entry(kind).or_default() += 1;
                    }
                    if Instant::now() >= give_up || abort.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        if answer.is_some() {
            answered.fetch_add(1, Ordering::Relaxed);
        }
        asked.push(Asked {
            client,
            key,
            value,
            answer,
        });
    }
    asked
}

/// Waits (bounded) until `answered` grows by at least `by`.
fn wait_progress(answered: &AtomicU64, by: u64, limit: Duration, what: &str) {
    let from = answered.load(Ordering::Relaxed);
    let ok = wait_for(limit, Duration::from_millis(50), || {
        (answered.load(Ordering::Relaxed) >= from + by).then_some(())
    });
    assert!(
        ok.is_some(),
        "{what}: fewer than {by} asks answered in {limit:?} (from {from} to {})",
        answered.load(Ordering::Relaxed)
    );
}

// ---------------------------------------------------------------------------
// 1. SIGKILL of the leader, then of a follower, under load
// ---------------------------------------------------------------------------

#[test]
fn three_nodes_survive_sigkill_of_leader_then_follower() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(3);
    for i in 0..3 {
        cluster.start(i);
    }
    let first_leader = cluster.wait_leader(None, Duration::from_secs(10));
    let first_status = status_binary(cluster.clients[first_leader]);
    assert_eq!(first_status.leader, Some(first_leader as u8 + 1));
    assert_eq!(first_status.id, first_leader as u8 + 1);
    eprintln!("{:5.1}s leader: node {}", t0.elapsed().as_secs_f64(), first_leader + 1);

    const CLIENTS: usize = 4;
    let nodes = Arc::new(cluster.clients.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let abort = Arc::new(AtomicBool::new(false));
    let stop_guard = StopOnDrop {
        stop: Arc::clone(&stop),
        abort: Arc::clone(&abort),
    };
    let answered = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(BTreeMap::new()));
    let threads: Vec<JoinHandle<Vec<Asked>>> = (0..CLIENTS)
        .map(|c| {
            let (nodes, stop, abort, answered, errors) = (
                Arc::clone(&nodes),
                Arc::clone(&stop),
                Arc::clone(&abort),
                Arc::clone(&answered),
                Arc::clone(&errors),
            );
            std::thread::spawn(move || client_loop(c, nodes, stop, abort, answered, errors))
        })
        .collect();

    // Load on a healthy cluster.
    wait_progress(&answered, 50, Duration::from_secs(10), "healthy cluster");
    std::thread::sleep(Duration::from_millis(1500));

    // SIGKILL the leader; a new one takes over; the clients go on.
    let leader = cluster.wait_leader(None, Duration::from_secs(10));
    cluster.kill(leader);
    eprintln!(
        "{:5.1}s SIGKILLed the leader, node {} ({} answered)",
        t0.elapsed().as_secs_f64(),
        leader + 1,
        answered.load(Ordering::Relaxed)
    );
    let second = cluster.wait_leader(Some(leader), Duration::from_secs(10));
    eprintln!("{:5.1}s new leader: node {}", t0.elapsed().as_secs_f64(), second + 1);
    wait_progress(&answered, 30, Duration::from_secs(10), "after the leader was killed");

    // Restart it from its data directory.
    cluster.start(leader);
    eprintln!(
        "{:5.1}s restarted node {} ({} answered)",
        t0.elapsed().as_secs_f64(),
        leader + 1,
        answered.load(Ordering::Relaxed)
    );
    wait_progress(&answered, 30, Duration::from_secs(10), "after the leader restarted");
    std::thread::sleep(Duration::from_millis(1500));

    // SIGKILL a follower: one that was never killed if possible.
    let current = cluster.wait_leader(None, Duration::from_secs(10));
    let follower = (0..3)
        .find(|&i| i != current && i != leader)
        .or_else(|| (0..3).find(|&i| i != current))
        .expect("a follower");
    cluster.kill(follower);
    eprintln!(
        "{:5.1}s SIGKILLed follower node {} (leader node {}, {} answered)",
        t0.elapsed().as_secs_f64(),
        follower + 1,
        current + 1,
        answered.load(Ordering::Relaxed)
    );
    wait_progress(&answered, 30, Duration::from_secs(10), "with a follower down");
    std::thread::sleep(Duration::from_millis(1000));
    cluster.start(follower);
    eprintln!(
        "{:5.1}s restarted node {} ({} answered)",
        t0.elapsed().as_secs_f64(),
        follower + 1,
        answered.load(Ordering::Relaxed)
    );
    wait_progress(&answered, 30, Duration::from_secs(10), "after the follower restarted");
    std::thread::sleep(Duration::from_millis(1500));

    // Stop the clients.
    stop.store(true, Ordering::Relaxed);
    let mut asked = Vec::new();
    for t in threads {
        asked.extend(t.join().expect("a client thread panicked"));
    }
    drop(stop_guard);
    eprintln!(
        "{:5.1}s clients stopped: {} asks, {} answered, errors retried: {:?}",
        t0.elapsed().as_secs_f64(),
        asked.len(),
        answered.load(Ordering::Relaxed),
        errors.lock().map(|e| e.clone()).unwrap_or_default()
    );
    cluster.assert_alive();

    // Every node catches up.
    let statuses = cluster.wait_converged(Duration::from_secs(15));
    eprintln!(
        "{:5.1}s converged at applied {:?}",
        t0.elapsed().as_secs_f64(),
        statuses[0].applied
    );

    // What the clients were told: one value per key.
    let mut proposed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut told: BTreeMap<&str, BTreeSet<Option<&str>>> = BTreeMap::new();
    for a in &asked {
        proposed.entry(&a.key).or_default().insert(&a.value);
        if let Some(answer) = &a.answer {
            told.entry(&a.key).or_default().insert(answer.as_deref());
            if !a.key.starts_with("shared-") {
                assert_eq!(
                    answer.as_deref(),
                    Some(a.value.as_str()),
                    "client {} alone wrote {} but was told another value",
                    a.client,
                    a.key
                );
            }
        }
    }
    for (key, values) in &told {
        assert_eq!(
            values.len(),
            1,
            "clients were told different values for {key}: {values:?}"
        );
        let value = values.iter().next().unwrap();
        let value = value.unwrap_or_else(|| panic!("an ask of {key} with a value was answered null"));
        assert!(proposed[key].contains(value), "{key} = {value} which nobody proposed");
    }
    let unanswered = proposed.len() - told.len();
    let shared_told = told.keys().filter(|k| k.starts_with("shared-")).count();
    let multi_asked = asked
        .iter()
        .filter(|a| a.key.starts_with("shared-"))
        .fold(BTreeMap::<&str, usize>::new(), |mut m, a| {
            *m.entry(&a.key).or_default() += 1;
            m
        })
        .values()
        .filter(|&&n| n >= 2)
        .count();
    eprintln!(
        "{} keys asked, {} answered ({} shared, {} asked by 2+ clients), {} never answered",
        proposed.len(),
        told.len(),
        shared_told,
        multi_asked,
        unanswered
    );
    assert!(told.len() >= 200, "only {} keys decided", told.len());
    assert!(shared_told >= 30, "only {shared_told} shared keys decided");
    assert!(
        multi_asked >= 30,
        "only {multi_asked} keys were asked by two or more clients"
    );
    assert!(
        unanswered * 20 <= proposed.len(),
        "{unanswered} of {} keys never answered",
        proposed.len()
    );
    let decided_slots = statuses[0].decided.expect("decided slots") + 1;
    assert!(
        decided_slots as usize >= told.len(),
        "{decided_slots} slots decided for {} keys",
        told.len()
    );

    // Every node holds the same value for every key: read all keys from
    // every node through the client API, in parallel per node.
    let expected: BTreeMap<String, Option<String>> = proposed
        .keys()
        .map(|k| {
            let value = told.get(k).and_then(|v| v.iter().next().copied().flatten());
            (k.to_string(), value.map(str::to_string))
        })
        .collect();
    let keys: Arc<Vec<String>> = Arc::new(expected.keys().cloned().collect());
    let readers: Vec<JoinHandle<Vec<Option<Option<String>>>>> = (0..3)
        .map(|i| {
            let keys = Arc::clone(&keys);
            let node = cluster.clients[i];
            std::thread::spawn(move || {
                keys.iter()
                    .map(|k| {
                        let deadline = Instant::now() + Duration::from_secs(10);
                        (0..5).find_map(|_| {
                            if Instant::now() >= deadline {
                                return None;
                            }
                            let a = ask_api(node, k, None).ok().map(|a| a.value);
                            if a.is_none() {
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            a
                        })
                    })
                    .collect()
            })
        })
        .collect();
    let reads: Vec<Vec<Option<Option<String>>>> = readers
        .into_iter()
        .map(|r| r.join().expect("a reader panicked"))
        .collect();
    let mut in_doubt = 0;
    for (n, key) in keys.iter().enumerate() {
        let want = &expected[key];
        let answered_to_a_client = told.contains_key(key.as_str());
        for (i, node_reads) in reads.iter().enumerate() {
            let got = node_reads[n]
                .as_ref()
                .unwrap_or_else(|| panic!("node {} did not answer a read of {key}", i + 1));
            if answered_to_a_client {
                assert_eq!(
                    got,
                    want,
                    "node {} reads {key} as {got:?}, clients were told {want:?}",
                    i + 1
                );
            } else if let Some(v) = got {
                // Nobody was told: unwritten, or one of the proposed values.
                assert!(
                    proposed[key.as_str()].contains(v.as_str()),
                    "{key} = {v} which nobody proposed"
                );
            }
        }
        if !answered_to_a_client {
            in_doubt += 1;
            if reads.iter().any(|r| r[n] != reads[0][n]) {
                // An abandoned ask may still be decided while we read: read
                // again once it settled; every node must then agree.
                std::thread::sleep(Duration::from_secs(1));
                let again: Vec<Option<String>> = (0..3)
                    .map(|i| {
                        ask_retrying(&cluster.clients[i..=i], 0, key, None)
                            .expect("a read")
                            .value
                    })
                    .collect();
                assert!(
                    again.iter().all(|v| v == &again[0]),
                    "nodes disagree on {key}: {again:?}"
                );
            }
        }
    }
    eprintln!(
        "every node read all {} keys alike ({in_doubt} never answered to a client)",
        keys.len()
    );

    // A sample through the real `paxos ask`, from every node; a new value
    // for a decided key does not replace it.
    let sample: Vec<&String> = told
        .keys()
        .filter(|k| k.starts_with("shared-"))
        .take(3)
        .chain(told.keys().filter(|k| !k.starts_with("shared-")).take(3))
        .map(|k| keys.iter().find(|x| x == k).unwrap())
        .collect();
    for key in &sample {
        let want = &expected[key.as_str()];
        for i in 0..3 {
            let a = ask_binary(cluster.clients[i], key, None);
            assert_eq!(&a.value, want, "`paxos ask` on node {} reads {key}", i + 1);
        }
        let a = ask_binary(cluster.clients[0], key, Some("a-late-value"));
        assert_eq!(&a.value, want, "a later writer replaced {key}");
    }
    let a = ask_binary(cluster.clients[1], "by-the-binary", Some("first"));
    assert_eq!(a.value.as_deref(), Some("first"));
    let a = ask_binary(cluster.clients[2], "by-the-binary", Some("second"));
    assert_eq!(a.value.as_deref(), Some("first"));
    let a = ask_binary(cluster.clients[0], "never-written", None);
    assert_eq!(a.value, None);

    // The nodes agree on the log, as `paxos status` reports it. (Bounded
    // retries: a spurious election between two `paxos status` runs may
    // add a slot.)
    let mut agreed = None;
    for _ in 0..3 {
        let converged = cluster.wait_converged(Duration::from_secs(10));
        let by_binary: Vec<Status> = (0..3).map(|i| status_binary(cluster.clients[i])).collect();
        for (i, s) in by_binary.iter().enumerate() {
            assert_eq!(s.id, i as u8 + 1);
            assert!(s.leader.is_some(), "node {} knows no leader: {s:?}", i + 1);
            assert!(
                s.applied >= converged[0].applied && s.decided >= converged[0].decided,
                "node {} went back from {:?}: {s:?}",
                i + 1,
                converged[0]
            );
        }
        if by_binary
            .iter()
            .all(|s| (s.applied, s.decided) == (by_binary[0].applied, by_binary[0].decided))
        {
            agreed = Some(by_binary);
            break;
        }
    }
    let agreed = agreed.expect("`paxos status` shows the same applied and decided on every node");
    assert!(agreed[0].decided >= statuses[0].decided);

    cluster.assert_alive();
    let bad = cluster.bad_log_lines();
    assert!(bad.is_empty(), "errors in the node logs:\n{}", bad.join("\n"));
    eprintln!(
        "{:5.1}s done; snapshots installed: {}",
        t0.elapsed().as_secs_f64(),
        cluster.count_log_lines("installed a snapshot")
    );
}

// ---------------------------------------------------------------------------
// 2. Bad arguments and unusable paths
// ---------------------------------------------------------------------------

/// Runs `paxos node` with the given extra arguments after a valid
/// `--id/--listen/--peer` set, expecting a prompt failure.
fn node_fails(extra: &[&str]) -> Output {
    let udp = free_udp(2);
    let (listen, peer) = (udp[0].to_string(), format!("2={}", udp[1]));
    let mut args = vec!["node", "--id", "1", "--listen", &listen, "--peer", &peer];
    args.extend_from_slice(extra);
    let out = run_paxos(&args, Duration::from_secs(10));
    assert!(!out.status.success(), "`paxos {}` succeeded", args.join(" "));
    out
}

#[test]
fn bad_arguments_and_unusable_paths_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.display().to_string();
    let good_key = dir.path().join("good.key");
    std::fs::write(&good_key, KEY_HEX).unwrap();
    let good_key_s = good_key.display().to_string();

    // Missing required arguments: a usage error from clap (exit code 2).
    let out = run_paxos(&["node", "--id", "1"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("--listen"),
        "does not name the missing argument: {}",
        out.stderr
    );
    assert!(out.stderr.contains("Usage"), "no usage: {}", out.stderr);
    let out = run_paxos(&["node"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = run_paxos(&["ask"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = run_paxos(&["no-such-command"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // A malformed --peer.
    let udp = free_udp(1)[0].to_string();
    for (peer, says) in [
        ("127.0.0.1:9000", "expected ID=ADDR"),
        ("x=127.0.0.1:9000", "bad node id"),
        ("300=127.0.0.1:9000", "bad node id"),
        ("2=nowhere", "bad address"),
    ] {
        let out = run_paxos(
            &[
                "node",
                "--id",
                "1",
                "--listen",
                &udp,
                "--data-dir",
                &data_s,
                "--peer",
                peer,
            ],
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(2), "--peer {peer}: {out:?}");
        assert!(
            out.stderr.contains(says),
            "--peer {peer}: stderr does not say {says:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
    assert!(!data.exists(), "a rejected command line created the data directory");

    // Key files that do not exist or do not hold a key.
    let missing = dir.path().join("missing.key").display().to_string();
    let out = node_fails(&["--data-dir", &data_s, "--key-file", &missing]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("missing.key") && out.stderr.contains("cannot read the cluster key file"),
        "unclear: {}",
        out.stderr
    );
    for (name, contents, says) in [
        ("short.key", &b"abcdef\n"[..], "64 hex digits"),
        ("empty.key", &b""[..], "64 hex digits"),
        (
            "nothex.key",
            &b"zz1f0c2a9b8d7e6f00112233445566778899aabbccddeeff0f1e2d3c4b5a6978\n"[..],
            "not a hex digit",
        ),
        ("long.key", &[b'a'; 200][..], "64 hex digits"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let out = node_fails(&["--data-dir", &data_s, "--key-file", &path.display().to_string()]);
        assert_eq!(out.status.code(), Some(1), "{name}: {out:?}");
        assert!(
            out.stderr.contains(name) && out.stderr.contains(says),
            "{name}: unclear: {}",
            out.stderr
        );
    }
    // A directory is no key file.
    let out = node_fails(&["--data-dir", &data_s, "--key-file", &dir.path().display().to_string()]);
    assert!(out.stderr.contains("key file"), "unclear: {}", out.stderr);
    assert!(!data.exists(), "a node with a bad key created its data directory");

    // A data directory that is a regular file, or below one.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    for path in [file.clone(), file.join("below")] {
        let out = node_fails(&["--data-dir", &path.display().to_string(), "--key-file", &good_key_s]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            out.stderr.contains("data directory") && out.stderr.contains("a-file"),
            "unclear: {}",
            out.stderr
        );
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"not a directory",
        "the file was changed"
    );

    // A node alone of a cluster of three: it holds its data directory,
    // its UDP and its client address, and never reaches a decision.
    {
        let udp = free_udp(3);
        let client = free_tcp(1)[0];
        let (listen, client_s) = (udp[0].to_string(), client.to_string());
        let (peer2, peer3) = (format!("2={}", udp[1]), format!("3={}", udp[2]));
        let log = File::create(dir.path().join("lone.log")).unwrap();
        let child = Command::new(PAXOS)
            .args([
                "node", "--id", "1", "--listen", &listen, "--peer", &peer2, "--peer", &peer3,
            ])
            .args([
                "--data-dir",
                &data_s,
                "--key-file",
                &good_key_s,
                "--client-listen",
                &client_s,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut lone = ChildGuard(Some(child));
        // It answers status once its log is open (and locked).
        let status = wait_for(
            Duration::from_secs(10),
            Duration::from_millis(20),
            || match client::call(client, &ClientRequest::Status, Duration::from_secs(1)) {
                Ok(ClientReply::Status(s)) => Some(s),
                _ => None,
            },
        );
        let status = status.expect("the lone node answers status");
        assert_eq!((status.id, status.leader, status.decided), (1, None, None));
        let by_binary = status_binary(client);
        assert_eq!((by_binary.id, by_binary.leader), (1, None));

        // Its data directory is locked.
        let out = node_fails(&["--data-dir", &data_s, "--key-file", &good_key_s]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            out.stderr.contains("data directory") && out.stderr.contains("in use"),
            "unclear: {}",
            out.stderr
        );

        // Its UDP address is taken.
        let other = dir.path().join("other").display().to_string();
        let peer = format!("2={}", free_udp(1)[0]);
        let out = run_paxos(
            &[
                "node",
                "--id",
                "1",
                "--listen",
                &listen,
                "--peer",
                &peer,
                "--data-dir",
                &other,
            ],
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            out.stderr.contains(&listen),
            "does not name the address: {}",
            out.stderr
        );

        // Its client address is taken.
        let out = node_fails(&[
            "--data-dir",
            &other,
            "--key-file",
            &good_key_s,
            "--client-listen",
            &client_s,
        ]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            out.stderr.contains("client address") && out.stderr.contains(&client_s),
            "unclear: {}",
            out.stderr
        );

        // Without a quorum, `paxos ask` gives up after its timeout.
        for args in [
            vec!["ask", "--node", &client_s, "--timeout", "1", "some-key", "some-value"],
            vec!["ask", "--node", &client_s, "--timeout", "1", "some-key"],
        ] {
            let start = Instant::now();
            let out = run_paxos(&args, Duration::from_secs(15));
            let took = start.elapsed();
            assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
            assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
            assert!(
                out.stderr.contains("no answer") && out.stderr.contains(&client_s),
                "{args:?}: unclear: {}",
                out.stderr
            );
            assert!(
                took >= Duration::from_millis(900) && took < Duration::from_secs(5),
                "{args:?} took {took:?} with --timeout 1"
            );
        }
        assert!(lone.child().try_wait().unwrap().is_none(), "the lone node exited");
    }

    // `paxos ask` and `paxos status` against a closed port.
    let closed = free_tcp(1)[0].to_string();
    for args in [
        vec!["ask", "--node", &closed, "key", "value"],
        vec!["ask", "--node", &closed, "key"],
        vec!["status", "--node", &closed],
    ] {
        let out = run_paxos(&args, Duration::from_secs(15));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        assert!(
            out.stderr.starts_with("paxos: ") && out.stderr.contains(&closed) && out.stderr.contains("refused"),
            "{args:?}: unclear: {}",
            out.stderr
        );
    }

    // Keys and values too long, and a bad timeout: refused before any
    // connection (the port is closed, so the message tells which).
    let long_key = "k".repeat(33);
    let long_value = "v".repeat(129);
    for (args, says) in [
        (vec!["ask", "--node", &closed, &long_key], "key of 33 bytes"),
        (vec!["ask", "--node", &closed, &long_key, "v"], "key of 33 bytes"),
        (vec!["ask", "--node", &closed, "k", &long_value], "value of 129 bytes"),
        (vec!["ask", "--node", &closed, "--timeout", "0", "k"], "--timeout"),
        (vec!["ask", "--node", &closed, "--timeout=-1", "k"], "--timeout"),
    ] {
        let out = run_paxos(&args, Duration::from_secs(10));
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        assert!(
            out.stderr.contains(says),
            "{args:?}: stderr does not say {says:?}: {}",
            out.stderr
        );
    }
    // Exactly 32 bytes is a key (and the closed port the only problem).
    let out = run_paxos(&["ask", "--node", &closed, &"k".repeat(32)], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !out.stderr.contains("longer than") && out.stderr.contains("refused"),
        "a 32-byte key was refused: {}",
        out.stderr
    );

    // `paxos ask` with a node address that is not one.
    let out = run_paxos(&["ask", "--node", "not-an-address", "k"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

// ---------------------------------------------------------------------------
// 3. SIGTERM stops every node cleanly; they recover everything
// ---------------------------------------------------------------------------

#[test]
fn graceful_sigterm_then_recovery() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(3);
    for i in 0..3 {
        cluster.start(i);
    }
    cluster.wait_leader(None, Duration::from_secs(10));

    // Some keys, through every node; two clients on some of them.
    let mut written: BTreeMap<String, Option<String>> = BTreeMap::new();
    for k in 0..40usize {
        let key = format!("key-{k}");
        let a = ask_retrying(&cluster.clients, k, &key, Some(&format!("value-{k}"))).expect("an answer");
        assert_eq!(a.value.as_deref(), Some(format!("value-{k}").as_str()));
        if k % 4 == 0 {
            let b = ask_retrying(&cluster.clients, k + 1, &key, Some("another")).expect("an answer");
            assert_eq!(b.value, a.value, "a second writer replaced {key}");
        }
        written.insert(key, a.value);
    }
    let a = ask_binary(cluster.clients[2], "through-the-binary", Some("yes"));
    written.insert(a.key, a.value);
    let before = cluster.wait_converged(Duration::from_secs(10));

    // SIGTERM: every node exits 0, promptly.
    for i in 0..3 {
        let exit = cluster.terminate(i);
        let exit = exit.unwrap_or_else(|| panic!("node {} did not exit within 5 s of SIGTERM", i + 1));
        assert!(
            exit.success(),
            "node {} exited with {exit} after SIGTERM:\n{}",
            i + 1,
            cluster.logs()
        );
    }
    let stopped: Vec<String> = (0..3)
        .map(|i| std::fs::read_to_string(cluster.log_path(i, 1)).unwrap_or_default())
        .collect();
    for (i, log) in stopped.iter().enumerate() {
        assert!(log.contains("stopped"), "node {} did not log its stop:\n{log}", i + 1);
    }
    for i in 0..3 {
        assert!(client::call(cluster.clients[i], &ClientRequest::Status, Duration::from_secs(1)).is_err());
    }

    // Restart them all: every key reads the same from every node.
    for i in 0..3 {
        cluster.start(i);
    }
    cluster.wait_leader(None, Duration::from_secs(10));
    let after = cluster.wait_converged(Duration::from_secs(10));
    assert!(
        after[0].decided >= before[0].decided,
        "{after:?} lost slots of {before:?}"
    );
    for i in 0..3 {
        for (key, want) in &written {
            let a = ask_retrying(&cluster.clients[i..=i], 0, key, None).expect("a read");
            assert_eq!(&a.value, want, "node {} reads {key} after the restart", i + 1);
        }
        let a = ask_binary(cluster.clients[i], "key-0", Some("after-restart"));
        assert_eq!(a.value.as_deref(), Some("value-0"));
    }
    let a = ask_binary(cluster.clients[0], "through-the-binary", None);
    assert_eq!(a.value.as_deref(), Some("yes"));

    // And the cluster still takes new keys.
    let a = ask_retrying(&cluster.clients, 0, "new-after-restart", Some("fresh")).expect("an answer");
    assert_eq!(a.value.as_deref(), Some("fresh"));

    // A second SIGTERM after recovery is just as clean.
    for i in 0..3 {
        let exit = cluster
            .terminate(i)
            .unwrap_or_else(|| panic!("node {} ignored SIGTERM", i + 1));
        assert!(exit.success(), "node {} exited with {exit}", i + 1);
    }
    let bad = cluster.bad_log_lines();
    assert!(bad.is_empty(), "errors in the node logs:\n{}", bad.join("\n"));
    eprintln!("{:5.1}s done", t0.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------
// 4. The leader isolated (SIGSTOP) past the election timeout, then resumed
// ---------------------------------------------------------------------------

/// SIGSTOP freezes the leader for 2 s, several election timeouts (300 to
/// 600 ms). To the other nodes this is a partition cutting the leader off
/// in both directions: it sends nothing, and what they send it waits in its
/// socket buffer. On SIGCONT it comes back with a stale ballot, every timer
/// expired and a backlog of messages, like a node whose partition healed or
/// that woke from a long pause (GC, VM stall). It does not model a leader
/// that keeps running, and serving clients, while cut off; the lease and
/// ballot checks for that are covered by the deterministic simulator.
#[test]
fn isolated_leader_is_replaced_and_rejoins_in_agreement() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(3);
    for i in 0..3 {
        cluster.start(i);
    }
    let old = cluster.wait_leader(None, Duration::from_secs(10));
    let mut told: BTreeMap<String, Option<String>> = BTreeMap::new();
    for k in 0..20usize {
        let key = format!("before-{k}");
        let a = ask_retrying(&cluster.clients, k, &key, Some(&format!("b{k}"))).expect("an answer");
        assert_eq!(a.value.as_deref(), Some(format!("b{k}").as_str()));
        told.insert(key, a.value);
    }
    eprintln!(
        "{:5.1}s leader node {}, 20 keys decided",
        t0.elapsed().as_secs_f64(),
        old + 1
    );

    cluster.pause(old, true);
    let paused_at = Instant::now();
    // A client of the frozen leader: its ask waits in the kernel until the
    // node resumes, then races with the new leader's writes of the same key.
    let stale_client = {
        let node = cluster.clients[old];
        std::thread::spawn(move || {
            let request = ClientRequest::Ask {
                key: "contested".into(),
                value: Some("from-the-old-leader".into()),
            };
            client::call(node, &request, Duration::from_secs(20))
        })
    };
    let live: Vec<SocketAddr> = (0..3).filter(|&i| i != old).map(|i| cluster.clients[i]).collect();
    let new = cluster.wait_leader(Some(old), Duration::from_secs(10));
    eprintln!(
        "{:5.1}s node {} frozen; node {} leads {:?} later",
        t0.elapsed().as_secs_f64(),
        old + 1,
        new + 1,
        paused_at.elapsed()
    );
    assert_ne!(new, old);
    // The majority goes on deciding keys, and keeps the earlier ones.
    for k in 0..20usize {
        let key = format!("during-{k}");
        let a = ask_retrying(&live, k, &key, Some(&format!("d{k}"))).expect("an answer without the old leader");
        assert_eq!(a.value.as_deref(), Some(format!("d{k}").as_str()));
        told.insert(key, a.value);
    }
    for k in (0..20usize).step_by(5) {
        let key = format!("before-{k}");
        let a = ask_retrying(&live, k, &key, Some("overwrite")).expect("an answer");
        assert_eq!(a.value, told[&key], "{key} changed under the new leader");
    }
    let contested = ask_retrying(&live, 0, "contested", Some("from-the-new-leader")).expect("an answer");
    assert_eq!(contested.value.as_deref(), Some("from-the-new-leader"));
    told.insert("contested".into(), contested.value.clone());

    // Hold the freeze past 2 s in all, then resume.
    if let Some(left) = Duration::from_secs(2).checked_sub(paused_at.elapsed()) {
        std::thread::sleep(left);
    }
    cluster.pause(old, false);
    eprintln!("{:5.1}s node {} resumed", t0.elapsed().as_secs_f64(), old + 1);

    // The stale client's ask is answered with the value decided, never its own.
    match stale_client.join().expect("the stale client panicked") {
        Ok(ClientReply::Answer(a)) => assert_eq!(a.value, contested.value, "the old leader answered another value"),
        Ok(other) => panic!("the old leader replied {other:?}"),
        // Giving up is allowed (its ask may expire), answering wrong is not.
        Err(e) => eprintln!("the old leader's client got an error: {e}"),
    }

    // One leader, which the resumed node follows; every node agrees.
    let statuses = cluster.wait_converged(Duration::from_secs(15));
    let leader = cluster.wait_leader(None, Duration::from_secs(10));
    let resumed = cluster.status(old).expect("the resumed node answers");
    assert_eq!(
        resumed.leader,
        Some(leader as u8 + 1),
        "the resumed node follows the leader"
    );
    for k in 0..10usize {
        let key = format!("after-{k}");
        let a = ask_retrying(&cluster.clients[old..=old], 0, &key, Some(&format!("a{k}"))).expect("an answer");
        assert_eq!(a.value.as_deref(), Some(format!("a{k}").as_str()));
        told.insert(key, a.value);
    }
    // Every key has exactly one value, on every node, the one clients were told.
    for i in 0..3 {
        for (key, want) in &told {
            let a = ask_retrying(&cluster.clients[i..=i], 0, key, None).expect("a read");
            assert_eq!(&a.value, want, "node {} reads {key}", i + 1);
        }
    }
    let bad = cluster.bad_log_lines();
    assert!(bad.is_empty(), "errors in the node logs:\n{}", bad.join("\n"));
    eprintln!(
        "{:5.1}s done: {} keys agree on all nodes, applied {:?}",
        t0.elapsed().as_secs_f64(),
        told.len(),
        statuses[0].applied
    );
}

// ---------------------------------------------------------------------------
// 5. A node whose disk is lost comes back as a learner
// ---------------------------------------------------------------------------

/// The leader is SIGKILLed and its data directory deleted (a replaced
/// disk); it restarts with `--storage-lost`. It forgot what it promised and
/// accepted, so it must never vote or lead again: the two others elect a
/// leader between them, and the wiped node only learns every decided value
/// and answers reads like the others.
#[test]
fn a_node_whose_disk_is_lost_rejoins_as_a_learner() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(3);
    for i in 0..3 {
        cluster.start(i);
    }
    let wiped = cluster.wait_leader(None, Duration::from_secs(10));
    let mut written = BTreeMap::new();
    for k in 0..20usize {
        let key = format!("before-{k}");
        let a = ask_retrying(&cluster.clients, k, &key, Some("v")).expect("an answer");
        written.insert(key, a.value);
    }
    cluster.wait_converged(Duration::from_secs(10));
    cluster.kill(wiped);
    std::fs::remove_dir_all(cluster.data_dir(wiped)).expect("delete the data directory");
    cluster.start_with(wiped, &["--storage-lost"]);
    let status = cluster.status(wiped).expect("a status");
    assert!(status.amnesiac, "{status:?}");
    assert_eq!(status.ballot, None, "it promised nothing since it lost its disk");
    let leader = cluster.wait_leader(Some(wiped), Duration::from_secs(10));
    for k in 0..20usize {
        let key = format!("after-{k}");
        let others: Vec<_> = (0..3).filter(|&i| i != wiped).map(|i| cluster.clients[i]).collect();
        let a = ask_retrying(&others, k, &key, Some("w")).expect("an answer");
        written.insert(key, a.value);
    }
    let statuses = cluster.wait_converged(Duration::from_secs(15));
    for s in &statuses {
        assert_ne!(s.leader, Some((wiped + 1) as u8), "{statuses:?}");
    }
    let status = cluster.status(wiped).expect("a status");
    assert!(status.amnesiac && status.ballot.is_none(), "{status:?}");
    for (key, want) in &written {
        let a = ask_retrying(&cluster.clients[wiped..=wiped], 0, key, None).expect("a read");
        assert_eq!(&a.value, want, "the wiped node reads {key}");
    }
    // Still a learner after a restart of its own: its log says so.
    cluster.kill(wiped);
    cluster.start(wiped);
    assert!(cluster.status(wiped).expect("a status").amnesiac);
    assert_eq!(cluster.leader(), Some(leader));
    eprintln!("{:5.1}s done", t0.elapsed().as_secs_f64());
}
