//! `paxos bench`: durable commits on three nodes in this process, on
//! loopback TCP, each with its own data directory and real `fdatasync`,
//! through the replication runtime (`paxos_std::runtime`).
//!
//! For each in-flight level a fresh cluster starts; one client thread
//! keeps that many puts outstanding at the leader, each replaced as soon
//! as it is answered. The state machine is a map with one key per
//! in-flight slot (so memory stays bounded however long the run): a put
//! of a 64-byte value always succeeds, and a commit is counted only when
//! the put was decided, durable on a quorum, applied, and its output
//! returned to the client. Latency is from proposing to the output.
//! Allocations are counted by the binary's global allocator over the
//! measured window, in every thread (nodes and client), and divided by
//! commits.

use crate::alloc_count;
use paxos_std::options::NodeOptions;
use paxos_std::runtime::{ProposeError, RestoreError, Runtime, StateMachine};
use paxos_std::transport::free_loopback_addrs;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Latencies are kept in 1 µs buckets up to this many; slower ones go to
/// the last bucket.
const BUCKETS: usize = 200_000;
/// Measuring starts after this warm-up.
const WARMUP: Duration = Duration::from_millis(500);

/// One row of the table.
struct Row {
    in_flight: usize,
    commits: u64,
    failed: u64,
    seconds: f64,
    p50: Duration,
    p99: Duration,
    allocs: u64,
    syncs: u64,
}

pub(crate) fn run(seconds: f64, levels: &[usize], dir: Option<PathBuf>) -> AnyResult<()> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err("--seconds must be a positive number".into());
    }
    if levels.iter().any(|&k| k == 0 || k > 4096) {
        return Err("--in-flight must be between 1 and 4096".into());
    }
    let base = match dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    println!(
        "paxos bench: 3 nodes on loopback TCP, data in {} (real fdatasync), {seconds} s per row after {} ms warm-up",
        base.path().display(),
        WARMUP.as_millis()
    );
    let (sync_p50, sync_p99) = probe_fdatasync(base.path())?;
    println!(
        "the disk now: one 64-byte write + fdatasync takes p50 {:.3} ms, p99 {:.3} ms (200 samples)",
        sync_p50.as_secs_f64() * 1e3,
        sync_p99.as_secs_f64() * 1e3
    );
    let mut rows = Vec::new();
    for (n, &k) in levels.iter().enumerate() {
        let dir = base.path().join(format!("run{n}"));
        rows.push(measure(&dir, k, Duration::from_secs_f64(seconds), n as u8)?);
    }
    println!();
    println!("| in flight | commits/s | p50 | p99 | fdatasync/commit (leader) | allocations/commit |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let c = r.commits.max(1) as f64;
        println!(
            "| {} | {:.0} | {:.3} ms | {:.3} ms | {:.3} | {:.3} |",
            r.in_flight,
            r.commits as f64 / r.seconds,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.syncs as f64 / c,
            r.allocs as f64 / c
        );
    }
    println!(
        "a commit is a put decided, durable on a quorum, applied and answered with its output; nothing else is counted"
    );
    for r in rows.iter().filter(|r| r.failed > 0) {
        println!("in flight {}: {} puts failed (not counted)", r.in_flight, r.failed);
    }
    Ok(())
}

/// What one small durable write costs on this disk right now: commit
/// latency with one in flight is best read against it, since a shared
/// machine's disk can be ten times slower one minute than the next.
fn probe_fdatasync(dir: &Path) -> AnyResult<(Duration, Duration)> {
    use std::io::Write;
    let path = dir.join("fdatasync-probe");
    let mut file = std::fs::File::create(&path)?;
    let mut samples = Vec::with_capacity(200);
    for _ in 0..200 {
        file.write_all(&[0x5A; 64])?;
        let start = Instant::now();
        file.sync_data()?;
        samples.push(start.elapsed());
    }
    std::fs::remove_file(&path)?;
    samples.sort_unstable();
    Ok((samples[100], samples[197]))
}

/// The benchmark's state machine: one 64-byte value per in-flight slot.
#[derive(Default)]
struct Slots(Vec<[u8; 64]>);

/// A put: `value` into slot `slot`.
#[derive(Serialize, Deserialize)]
struct Put {
    slot: u16,
    #[serde(with = "serde_value")]
    value: [u8; 64],
}

/// `[u8; 64]` as serde bytes (serde derives arrays up to 32 only).
mod serde_value {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let bytes: &[u8] = Deserialize::deserialize(d)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::invalid_length(bytes.len(), &"64 bytes"))
    }
}

impl StateMachine for Slots {
    type Command = Put;
    /// The slot written.
    type Output = u16;

    fn apply(&mut self, put: Put) -> u16 {
        let slot = usize::from(put.slot);
        if self.0.len() <= slot {
            self.0.resize(slot + 1, [0; 64]);
        }
        self.0[slot] = put.value;
        put.slot
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.concat()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        if !bytes.len().is_multiple_of(64) {
            return Err(RestoreError::new("not a multiple of 64 bytes"));
        }
        self.0 = bytes
            .chunks_exact(64)
            .map(|c| c.try_into().unwrap_or([0; 64]))
            .collect();
        Ok(())
    }
}

/// Three nodes, each on its own runtime thread.
struct Cluster {
    nodes: Vec<Runtime<Slots>>,
}

impl Cluster {
    fn start(dir: &Path) -> AnyResult<Self> {
        let addrs = free_loopback_addrs(3)?;
        let nodes = (0..3)
            .map(|i| Runtime::start(NodeOptions::local_member(i, &addrs, dir), Slots::default()))
            .collect::<Result<_, _>>()?;
        Ok(Cluster { nodes })
    }

    fn leader(&self) -> Option<usize> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(l) = (0..3).find(|&i| self.nodes[i].status().is_ok_and(|s| s.is_leader)) {
                return Some(l);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn syncs(&self, i: usize) -> u64 {
        self.nodes[i].status().map_or(0, |s| s.syncs)
    }

    fn stop(self) -> AnyResult<()> {
        for node in self.nodes {
            node.shutdown()?;
        }
        Ok(())
    }
}

fn measure(dir: &Path, in_flight: usize, duration: Duration, run: u8) -> AnyResult<Row> {
    let cluster = Cluster::start(dir)?;
    let leader = cluster.leader().ok_or("no leader within 10 s")?;
    let node = &cluster.nodes[leader];
    // Room for every output outstanding: the runtime never waits for us.
    let (tx, outputs) = mpsc::sync_channel::<(u16, Result<u16, ProposeError>)>(in_flight + 16);
    let mut value = [0x5Au8; 64];
    value[0] = run;
    let mut started = vec![Instant::now(); in_flight];
    let mut histogram = vec![0u64; BUCKETS];
    let put = |slot: usize| -> AnyResult<()> {
        let slot = u16::try_from(slot)?;
        let tx = tx.clone();
        node.propose_with(Put { slot, value }, move |outcome| {
            let _ = tx.send((slot, outcome));
        })?;
        Ok(())
    };
    let begin = Instant::now();
    for (slot, at) in started.iter_mut().enumerate() {
        *at = Instant::now();
        put(slot)?;
    }
    let (mut measuring, mut window_start) = (false, begin);
    let (mut commits, mut failed) = (0u64, 0u64);
    let (mut allocs_at_start, mut syncs_at_start) = (0, 0);
    let end = begin + WARMUP + duration;
    let mut outstanding = in_flight;
    while outstanding > 0 {
        let now = Instant::now();
        if !measuring && now >= begin + WARMUP {
            // The status request allocates: take it before the window opens.
            syncs_at_start = cluster.syncs(leader);
            measuring = true;
            window_start = Instant::now();
            allocs_at_start = alloc_count::allocations();
        }
        let (slot, outcome) = match outputs.recv_timeout(Duration::from_secs(15)) {
            Ok(o) => o,
            Err(_) => return Err(format!("no output within 15 s ({outstanding} outstanding)").into()),
        };
        let slot = usize::from(slot);
        let done = Instant::now();
        let counted = measuring && done < end;
        let applied = matches!(outcome, Ok(written) if usize::from(written) == slot);
        if counted && applied {
            commits += 1;
            let micros = done.duration_since(started[slot]).as_micros() as usize;
            if let Some(b) = histogram.get_mut(micros.min(BUCKETS - 1)) {
                *b += 1;
            }
        } else if counted {
            failed += 1;
        }
        if done < end {
            started[slot] = Instant::now();
            put(slot)?;
        } else {
            outstanding -= 1;
        }
    }
    let allocs = alloc_count::allocations() - allocs_at_start;
    let seconds = end.min(Instant::now()).duration_since(window_start).as_secs_f64();
    let syncs = cluster.syncs(leader) - syncs_at_start;
    cluster.stop()?;
    let percentile = |p: f64| {
        let target = (commits as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (micros, n) in histogram.iter().enumerate() {
            seen += n;
            if seen >= target.max(1) {
                return Duration::from_micros(micros as u64);
            }
        }
        Duration::ZERO
    };
    let row = Row {
        in_flight,
        commits,
        failed,
        seconds,
        p50: percentile(0.5),
        p99: percentile(0.99),
        allocs,
        syncs,
    };
    println!(
        "  in flight {:>4}: {:>8} commits in {:.2} s, p50 {:.3} ms, p99 {:.3} ms, {:.3} allocations/commit",
        row.in_flight,
        row.commits,
        row.seconds,
        row.p50.as_secs_f64() * 1e3,
        row.p99.as_secs_f64() * 1e3,
        row.allocs as f64 / row.commits.max(1) as f64
    );
    Ok(row)
}
