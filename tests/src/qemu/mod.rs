//! A three-microcontroller cluster under QEMU: the example firmware
//! (`firmware/`) in three `qemu-system-arm` instances, their UARTs joined
//! by a host relay that routes frames by destination and can drop, delay
//! and partition them (seeded), and their semihosting output parsed into
//! what each node decided.
//!
//! - [`node`]: one QEMU instance and what it reported;
//! - [`relay`]: the frame router and its faults;
//! - [`Cluster`]: the three together, with kill and restart.

pub mod node;
pub mod relay;

use node::{NodeReport, Qemu};
use relay::{Faults, Relay};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether `qemu-system-arm` runs here.
pub fn qemu_available() -> bool {
    Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The firmware crate's directory.
pub fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware")
}

/// The release firmware ELF.
pub fn firmware_elf() -> PathBuf {
    firmware_dir().join("target/thumbv7m-none-eabi/release/paxos-firmware")
}

/// Builds the release firmware (a no-op when it is up to date).
pub fn build_firmware() -> Result<PathBuf, String> {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet"])
        .current_dir(firmware_dir())
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the firmware failed ({status})"));
    }
    Ok(firmware_elf())
}

/// Three nodes and the relay between them.
pub struct Cluster {
    elf: PathBuf,
    dir: PathBuf,
    relay: Relay,
    nodes: Vec<Option<Qemu>>,
    reports: Vec<Arc<Mutex<NodeReport>>>,
    ports: Vec<u16>,
}

impl Cluster {
    /// Starts nodes `1..=n` in `dir` (their flash files live there).
    pub fn start(elf: &Path, dir: &Path, n: u8, faults: Faults) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cluster = Cluster {
            elf: elf.to_path_buf(),
            dir: dir.to_path_buf(),
            relay: Relay::start(n, faults),
            nodes: (0..n).map(|_| None).collect(),
            reports: (0..n).map(|_| Arc::new(Mutex::new(NodeReport::default()))).collect(),
            ports: (0..n).map(|_| free_port()).collect::<Result<_, _>>()?,
        };
        for id in 1..=n {
            cluster.restart(id)?;
        }
        Ok(cluster)
    }

    /// Starts (or restarts) node `id` on its flash file.
    pub fn restart(&mut self, id: u8) -> Result<(), String> {
        let index = usize::from(id - 1);
        self.kill(id);
        let qemu = Qemu::spawn(
            &self.elf,
            &self.dir,
            id,
            self.ports[index],
            Arc::clone(&self.reports[index]),
        )?;
        let stream = qemu.connect(Duration::from_secs(10))?;
        self.relay.attach(id, stream)?;
        self.nodes[index] = Some(qemu);
        Ok(())
    }

    /// Kills node `id` as a power cut would (SIGKILL).
    pub fn kill(&mut self, id: u8) {
        let index = usize::from(id - 1);
        self.relay.detach(id);
        if let Some(mut q) = self.nodes[index].take() {
            q.kill();
        }
    }

    /// What node `id` reported so far.
    pub fn report(&self, id: u8) -> NodeReport {
        self.reports[usize::from(id - 1)]
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The relay, to cut and heal links.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Waits until `done` holds for the reports of every node, or fails
    /// after `timeout`, or as soon as a node reports an error or exits.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&[NodeReport]) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let reports: Vec<NodeReport> = (1..=self.nodes.len() as u8).map(|id| self.report(id)).collect();
            for (i, r) in reports.iter().enumerate() {
                if let Some(e) = r.errors.first() {
                    return Err(format!("node {} reported: {e}", i + 1));
                }
            }
            for (i, q) in self.nodes.iter_mut().enumerate() {
                if let Some(status) = q.as_mut().and_then(Qemu::exited) {
                    return Err(format!("node {} exited ({status}) while waiting for {what}", i + 1));
                }
            }
            if done(&reports) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let summary: Vec<String> = reports
                    .iter()
                    .enumerate()
                    .map(|(i, r)| format!("node {}: applied {}", i + 1, r.applied))
                    .collect();
                return Err(format!("timed out waiting for {what}: {}", summary.join(", ")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops every node and the relay.
    pub fn stop(&mut self) {
        for id in 1..=self.nodes.len() as u8 {
            self.kill(id);
        }
        self.relay.stop();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port free right now (QEMU listens on it).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}
