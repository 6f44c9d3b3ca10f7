//! One QEMU instance running the firmware, and what it printed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `BOOT` line: what the node recovered from its flash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Boot {
    /// The first slot its application still needed.
    pub applied: u64,
    /// Slots decided in the recovered log.
    pub decided: u64,
    /// Flash pages holding live records.
    pub flash_pages: u64,
}

/// Everything a node reported, over all its lives.
#[derive(Clone, Debug, Default)]
pub struct NodeReport {
    /// The first slot its application has not applied, by the latest
    /// line (a snapshot from a peer moves it past slots never reported).
    pub applied: u64,
    /// Every slot it applied and its value (`-` for a no-op).
    pub decided: BTreeMap<u64, String>,
    /// Slots it reported twice with different values (must stay empty).
    pub self_conflicts: Vec<(u64, String, String)>,
    /// One per start.
    pub boots: Vec<Boot>,
    /// `STATE` lines: applied slot → (count, hash).
    pub states: BTreeMap<u64, (u64, String)>,
    /// Times it became leader.
    pub leaderships: u32,
    /// Log compactions.
    pub compactions: u32,
    /// The `SIZE` line, as printed.
    pub footprint: Option<String>,
    /// `ERR` lines and lines not understood.
    pub errors: Vec<String>,
}

impl NodeReport {
    /// The node whose value was decided last, by the `n{id}-{k}` naming.
    pub fn last_proposer(&self) -> Option<u8> {
        self.decided
            .values()
            .rev()
            .find_map(|v| v.strip_prefix('n')?.split('-').next()?.parse().ok())
    }

    fn parse(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let field = |word: Option<&str>, name: &str| -> Option<u64> {
            word?.strip_prefix(name)?.strip_prefix('=')?.parse().ok()
        };
        match words.next() {
            Some("D") => {
                let (Some(slot), Some(value)) = (words.next().and_then(|s| s.parse().ok()), words.next()) else {
                    self.errors.push(format!("bad line: {line}"));
                    return;
                };
                self.applied = self.applied.max(slot + 1);
                if let Some(old) = self.decided.insert(slot, value.to_string()) {
                    if old != value {
                        self.self_conflicts.push((slot, old, value.to_string()));
                    }
                }
            }
            Some("BOOT") => {
                let _node = words.next();
                let boot = (|| {
                    Some(Boot {
                        applied: field(words.next(), "applied")?,
                        decided: field(words.next(), "decided")?,
                        flash_pages: field(words.next(), "flash_pages")?,
                    })
                })();
                match boot {
                    Some(b) => self.boots.push(b),
                    None => self.errors.push(format!("bad line: {line}")),
                }
            }
            Some("STATE") => {
                let applied = field(words.next(), "applied");
                let count = field(words.next(), "count");
                let hash = words.next().and_then(|w| w.strip_prefix("hash="));
                match (applied, count, hash) {
                    (Some(a), Some(c), Some(h)) => {
                        self.applied = self.applied.max(a);
                        self.states.insert(a, (c, h.to_string()));
                    }
                    _ => self.errors.push(format!("bad line: {line}")),
                }
            }
            Some("LEADER") => self.leaderships += 1,
            Some("COMPACT") => {
                self.compactions += 1;
                if let Some(a) = field(words.next(), "applied") {
                    self.applied = self.applied.max(a);
                }
            }
            Some("SIZE") => self.footprint = Some(line.to_string()),
            _ => self.errors.push(line.to_string()),
        }
    }
}

/// A running QEMU instance.
pub struct Qemu {
    child: Child,
    port: u16,
    exited: Option<ExitStatus>,
}

impl Qemu {
    /// Starts node `id` in `dir`, its UART0 a TCP server on `port` that
    /// waits for the relay before the CPU starts. Its output lines go to
    /// `report` and to `dir/node{id}.log`.
    pub fn spawn(elf: &Path, dir: &Path, id: u8, port: u16, report: Arc<Mutex<NodeReport>>) -> Result<Self, String> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("node{id}.stderr")))
            .map_err(|e| format!("stderr file: {e}"))?;
        let mut child = Command::new("qemu-system-arm")
            .args([
                "-cpu",
                "cortex-m3",
                "-machine",
                "lm3s6965evb",
                "-display",
                "none",
                "-monitor",
                "none",
            ])
            .arg("-serial")
            .arg(format!("tcp:127.0.0.1:{port},server=on,wait=on"))
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-append")
            .arg(id.to_string())
            .arg("-kernel")
            .arg(elf)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("qemu-system-arm: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("node{id}.log")))
            .map_err(|e| format!("log file: {e}"))?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if let Ok(mut r) = report.lock() {
                    r.parse(&line);
                }
            }
        });
        Ok(Qemu {
            child,
            port,
            exited: None,
        })
    }

    /// Connects to the node's UART, retrying while QEMU starts.
    pub fn connect(&self, timeout: Duration) -> Result<TcpStream, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match TcpStream::connect(("127.0.0.1", self.port)) {
                Ok(s) => return Ok(s),
                Err(e) if Instant::now() >= deadline => return Err(format!("UART port {}: {e}", self.port)),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Its exit status, if it exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Kills it (SIGKILL: no chance to flush anything) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.kill();
    }
}
