//! `paxos bench`: durable commits on three nodes in this process, on
//! loopback UDP, each with its own data directory and real `fdatasync`.
//!
//! For each in-flight level a fresh cluster starts; one client thread
//! keeps that many asks of new keys outstanding at the leader, each
//! replaced as soon as it is answered. A commit is an ask decided through
//! the log, so durable on a quorum. Latency is from queuing the ask to its
//! reply. Allocations are counted by the binary's global allocator over the
//! measured window, in every thread (nodes and client), and divided by
//! commits.
//!
//! The registers hold 32,768 keys. Past that, a `Set` of a new key is still
//! decided and durable like any other, on every node, but refused by the
//! registers; the bench counts those as commits and says how many there
//! were.

use crate::alloc_count;
use paxos_service::app::{Key, Value};
use paxos_service::engine::FULL;
use paxos_service::node::{self, NodeOptions, Reply, Request, Requests};
use paxos_std::transport::free_loopback_addrs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
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
    refused_full: u64,
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
        "paxos bench: 3 nodes on loopback UDP, data in {} (real fdatasync), {seconds} s per row after {} ms warm-up",
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
    for r in &rows {
        if r.refused_full > 0 || r.failed > 0 {
            println!(
                "in flight {}: {} of {} commits were Sets refused by full registers (decided and durable all the same); {} asks failed",
                r.in_flight, r.refused_full, r.commits, r.failed
            );
        }
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

/// Three nodes running in threads.
struct Cluster {
    requests: Vec<Requests>,
    threads: Vec<JoinHandle<Result<(), node::NodeError>>>,
    stop: Arc<AtomicBool>,
}

impl Cluster {
    fn start(dir: &Path) -> AnyResult<Self> {
        let addrs = free_loopback_addrs(3)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut requests = Vec::new();
        let mut threads = Vec::new();
        for i in 0..3 {
            let options = NodeOptions::local_member(i, &addrs, dir);
            let (tx, inbox) = node::inbox();
            threads.push(node::spawn(options, inbox, Arc::clone(&stop))?);
            requests.push(tx);
        }
        Ok(Cluster {
            requests,
            threads,
            stop,
        })
    }

    fn status(&self, i: usize) -> Option<paxos_service::client::Status> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.requests[i].send(Request::Status { reply: tx.into() }).ok()?;
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Reply::Status(s)) => Some(s),
            _ => None,
        }
    }

    fn leader(&self) -> Option<usize> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(l) = (0..3).find(|&i| self.status(i).is_some_and(|s| s.leader == Some(s.id))) {
                return Some(l);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn stop(self) -> AnyResult<()> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().map_err(|_| "a node thread panicked")??;
        }
        Ok(())
    }
}

/// The key for ask `n` in slot `slot` of run `run`: 12 bytes, built
/// without allocating.
fn key_for(run: u8, slot: u16, n: u64) -> Key {
    let mut bytes = [0u8; 12];
    bytes[0] = b'b';
    bytes[1] = run;
    bytes[2..4].copy_from_slice(&slot.to_le_bytes());
    bytes[4..12].copy_from_slice(&n.to_le_bytes());
    Key::from_slice(&bytes).unwrap_or_default()
}

fn slot_of(key: &Key) -> Option<usize> {
    let b = key.as_slice();
    Some(u16::from_le_bytes([*b.get(2)?, *b.get(3)?]) as usize)
}

fn measure(dir: &Path, in_flight: usize, duration: Duration, run: u8) -> AnyResult<Row> {
    let cluster = Cluster::start(dir)?;
    let leader = cluster.leader().ok_or("no leader within 10 s")?;
    let node = cluster.requests[leader].clone();
    // Room for every reply outstanding: the node never waits for us.
    let (tx, replies) = mpsc::sync_channel::<Reply>(in_flight + 16);
    let value = Value::from_slice(b"durable-value-64").unwrap_or_default();
    let mut started = vec![Instant::now(); in_flight];
    let mut histogram = vec![0u64; BUCKETS];
    let mut next: u64 = 0;
    let ask = |slot: usize, n: u64| Request::Ask {
        key: key_for(run, slot as u16, n),
        value: Some(value.clone()),
        reply: tx.clone().into(),
    };
    let begin = Instant::now();
    for (slot, at) in started.iter_mut().enumerate() {
        *at = Instant::now();
        node.send(ask(slot, next))?;
        next += 1;
    }
    let (mut measuring, mut window_start) = (false, begin);
    let (mut commits, mut refused_full, mut failed) = (0u64, 0u64, 0u64);
    let (mut allocs_at_start, mut syncs_at_start) = (0, 0);
    let end = begin + WARMUP + duration;
    let mut outstanding = in_flight;
    while outstanding > 0 {
        let now = Instant::now();
        if !measuring && now >= begin + WARMUP {
            // The status request allocates: take it before the window opens.
            syncs_at_start = cluster.status(leader).map_or(0, |s| s.syncs);
            measuring = true;
            window_start = Instant::now();
            allocs_at_start = alloc_count::allocations();
        }
        let reply = match replies.recv_timeout(Duration::from_secs(15)) {
            Ok(r) => r,
            Err(_) => return Err(format!("no reply within 15 s ({outstanding} outstanding)").into()),
        };
        let done = Instant::now();
        let counted = measuring && done < end;
        let (key, committed) = match &reply {
            Reply::Answer { key, .. } => (key, true),
            Reply::Failed { key, error } => {
                let full = *error == FULL;
                if counted && full {
                    refused_full += 1;
                } else if counted {
                    failed += 1;
                }
                (key, full)
            }
            Reply::Status(_) => continue,
        };
        let Some(slot) = slot_of(key).filter(|&s| s < in_flight) else {
            continue;
        };
        if counted && committed {
            commits += 1;
            let micros = done.duration_since(started[slot]).as_micros() as usize;
            if let Some(b) = histogram.get_mut(micros.min(BUCKETS - 1)) {
                *b += 1;
            }
        }
        if done < end {
            started[slot] = Instant::now();
            node.send(ask(slot, next))?;
            next += 1;
        } else {
            outstanding -= 1;
        }
    }
    let allocs = alloc_count::allocations() - allocs_at_start;
    let seconds = end.min(Instant::now()).duration_since(window_start).as_secs_f64();
    let syncs = cluster.status(leader).map_or(0, |s| s.syncs) - syncs_at_start;
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
        refused_full,
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
