//! A cluster of `paxos node` processes on loopback, started, killed,
//! stopped and restarted from their data directories, with their logs
//! kept for failure messages.

use super::{free_peer, free_tcp, wait_exit, wait_for, KEY_HEX, PAXOS};
use paxos_service::client::{self, ClientReply, ClientRequest, Status};
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub key_file: PathBuf,
    pub peer: Vec<SocketAddr>,
    pub clients: Vec<SocketAddr>,
    pub children: Vec<Option<Child>>,
    /// How many times each node was started (names its log files).
    pub starts: Vec<u32>,
    /// Nodes stopped with SIGSTOP and not yet continued.
    pub paused: Vec<bool>,
}

impl Cluster {
    /// Writes the key file and picks addresses; starts nothing.
    pub fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let key_file = dir.path().join("cluster.key");
        std::fs::write(&key_file, KEY_HEX).expect("write the key file");
        Cluster {
            key_file,
            peer: free_peer(n),
            clients: free_tcp(n),
            children: (0..n).map(|_| None).collect(),
            starts: vec![0; n],
            paused: vec![false; n],
            dir,
        }
    }

    /// A cluster of `n` nodes, every one started.
    pub fn started(n: usize) -> Self {
        let mut cluster = Cluster::new(n);
        for i in 0..n {
            cluster.start(i);
        }
        cluster
    }

    pub fn len(&self) -> usize {
        self.peer.len()
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{}", i + 1))
    }

    /// The arguments node `i` always runs with.
    pub fn args(&self, i: usize) -> Vec<String> {
        let mut args = vec![
            "node".to_string(),
            "--id".into(),
            (i + 1).to_string(),
            "--listen".into(),
            self.peer[i].to_string(),
            "--data-dir".into(),
            self.data_dir(i).display().to_string(),
            "--client-listen".into(),
            self.clients[i].to_string(),
            "--key-file".into(),
            self.key_file.display().to_string(),
        ];
        for (j, addr) in self.peer.iter().enumerate().filter(|(j, _)| *j != i) {
            args.push("--peer".into());
            args.push(format!("{}={addr}", j + 1));
        }
        args
    }

    pub fn log_path(&self, i: usize, start: u32) -> PathBuf {
        self.dir.path().join(format!("node{}.{start}.log", i + 1))
    }

    /// Starts node `i` (with the same arguments every time) and waits
    /// until it answers `status`.
    pub fn start(&mut self, i: usize) {
        self.start_with(i, &[]);
    }

    /// Starts node `i` with `extra` arguments after the usual ones.
    pub fn start_with(&mut self, i: usize, extra: &[&str]) {
        let mut args = self.args(i);
        args.extend(extra.iter().map(|a| a.to_string()));
        self.start_as(i, &args);
    }

    /// Starts node `i` as `paxos ARGS` (instead of its usual arguments)
    /// and waits until it answers `status`.
    pub fn start_as(&mut self, i: usize, args: &[impl AsRef<std::ffi::OsStr>]) {
        assert!(self.children[i].is_none(), "node {} is already running", i + 1);
        self.starts[i] += 1;
        let log = File::create(self.log_path(i, self.starts[i])).expect("create a log file");
        let child = Command::new(PAXOS)
            .args(args)
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
    pub fn kill(&mut self, i: usize) {
        let mut child = self.children[i].take().expect("a running node");
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("node {} had already exited with {exit}:\n{}", i + 1, self.logs());
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// Sends node `i` SIGTERM through `kill -TERM` and waits (bounded) for
    /// it to exit.
    pub fn terminate(&mut self, i: usize) -> Option<ExitStatus> {
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

    pub fn running(&self, i: usize) -> bool {
        self.children[i].is_some() && !self.paused[i]
    }

    /// Sends node `i` SIGSTOP (`pause`) or SIGCONT through `kill`.
    pub fn pause(&mut self, i: usize, pause: bool) {
        let pid = self.children[i].as_ref().expect("a running node").id().to_string();
        let signal = if pause { "-STOP" } else { "-CONT" };
        let sent = Command::new("kill").args([signal, &pid]).status().expect("run kill");
        assert!(sent.success(), "kill {signal} {pid} failed");
        self.paused[i] = pause;
    }

    /// Panics if a node that should be running has exited.
    pub fn assert_alive(&mut self) {
        for i in 0..self.len() {
            if let Some(Ok(Some(exit))) = self.children[i].as_mut().map(Child::try_wait) {
                panic!("node {} exited unexpectedly with {exit}:\n{}", i + 1, self.logs());
            }
        }
    }

    pub fn status(&self, i: usize) -> Option<Status> {
        match client::call(self.clients[i], &ClientRequest::Status, Duration::from_secs(2)) {
            Ok(ClientReply::Status(s)) => Some(s),
            _ => None,
        }
    }

    /// The node that says it leads and that a majority of the running
    /// nodes (itself included) follows.
    pub fn leader(&self) -> Option<usize> {
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
    pub fn wait_leader(&self, not: Option<usize>, limit: Duration) -> usize {
        wait_for(limit, Duration::from_millis(50), || {
            self.leader().filter(|&l| Some(l) != not)
        })
        .unwrap_or_else(|| panic!("no leader (other than {not:?}) within {limit:?}:\n{}", self.logs()))
    }

    /// Waits (bounded) until every node is up and reports the same
    /// `decided` and `applied`, with `applied == decided`.
    pub fn wait_converged(&self, limit: Duration) -> Vec<Status> {
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
    pub fn logs(&self) -> String {
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
    pub fn count_log_lines(&self, what: &str) -> usize {
        (0..self.len())
            .flat_map(|i| (1..=self.starts[i]).map(move |start| (i, start)))
            .map(|(i, start)| {
                let text = std::fs::read_to_string(self.log_path(i, start)).unwrap_or_default();
                text.lines().filter(|l| l.contains(what)).count()
            })
            .sum()
    }

    /// Lines of any log that show a panic or an error.
    pub fn bad_log_lines(&self) -> Vec<String> {
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
