//! `paxos demo`: three nodes on loopback UDP with their logs in a fresh
//! temporary folder, clients asking keys, the leader killed and restarted,
//! and a summary that checks every node agrees.

use paxos_service::app;
use paxos_service::node::{self, NodeOptions, Reply, Request, Requests};
use paxos_std::transport::free_loopback_addrs;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const NODES: u8 = 3;
const CLIENTS: usize = 4;
/// Every key is asked twice, by whichever clients draw it: the first
/// writer wins and the second learns the winner.
const ASKS_PER_KEY: u64 = 2;

/// A node running in a thread.
struct Running {
    requests: Requests,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<(), node::NodeError>>,
}

struct Cluster {
    addrs: Vec<SocketAddr>,
    dir: PathBuf,
    nodes: Vec<Option<Running>>,
}

impl Cluster {
    fn options(&self, i: usize) -> NodeOptions {
        NodeOptions::local_member(i, &self.addrs, &self.dir)
    }

    fn start(&mut self, i: usize) -> Result<(), String> {
        let options = self.options(i);
        std::fs::create_dir_all(&options.data_dir).map_err(|e| e.to_string())?;
        let (requests, inbox) = node::inbox();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = node::spawn(options, inbox, Arc::clone(&stop)).map_err(|e| e.to_string())?;
        self.nodes[i] = Some(Running { requests, stop, thread });
        Ok(())
    }

    fn kill(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.stop.store(true, Ordering::Relaxed);
            let _ = n.thread.join();
        }
    }

    fn request(&self, i: usize, make: impl FnOnce(node::ReplyTo) -> Request) -> Option<Reply> {
        let node = self.nodes[i].as_ref()?;
        let (tx, rx) = mpsc::sync_channel(1);
        node.requests.send(make(tx.into())).ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    fn leader(&self) -> Option<usize> {
        (0..NODES as usize).find(|&i| {
            matches!(self.request(i, |reply| Request::Status { reply }),
                Some(Reply::Status(s)) if s.leader == Some(s.id))
        })
    }
}

/// What the clients saw.
#[derive(Default)]
struct Observed {
    latencies: Vec<Duration>,
    values: BTreeMap<String, String>,
    conflicts: Vec<String>,
    errors: u64,
}

pub(crate) fn run(duration: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster {
        addrs: free_loopback_addrs(NODES as usize).map_err(|e| e.to_string())?,
        dir: tmp.path().to_path_buf(),
        nodes: Vec::new(),
    };
    cluster.nodes.resize_with(NODES as usize, || None);
    println!(
        "paxos demo: {NODES} nodes on {:?}, data in {}",
        cluster.addrs,
        tmp.path().display()
    );
    for i in 0..NODES as usize {
        cluster.start(i)?;
    }
    let started = Instant::now();
    let first_leader = loop {
        if let Some(l) = cluster.leader() {
            break l;
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err("no leader elected within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    println!(
        "  {:>5.1}s  node {} leads",
        started.elapsed().as_secs_f64(),
        first_leader + 1
    );

    let cluster = Arc::new(Mutex::new(cluster));
    let observed = Arc::new(Mutex::new(Observed::default()));
    let answered = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let next_key = Arc::new(AtomicU64::new(0));
    let clients: Vec<JoinHandle<()>> = (0..CLIENTS)
        .map(|c| {
            let (cluster, observed, answered, next_key, done) = (
                Arc::clone(&cluster),
                Arc::clone(&observed),
                Arc::clone(&answered),
                Arc::clone(&next_key),
                Arc::clone(&done),
            );
            std::thread::spawn(move || client(c, &cluster, &observed, &answered, &next_key, &done))
        })
        .collect();

    let kill_at = duration.mul_f64(0.35);
    let restart_at = duration.mul_f64(0.6);
    let t0 = Instant::now();
    let mut killed = None;
    let mut restarted = false;
    let mut leaders = vec![first_leader];
    while t0.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(1000));
        let t = t0.elapsed();
        if killed.is_none() && t >= kill_at {
            let mut c = cluster.lock().map_err(|_| "poisoned")?;
            if let Some(l) = c.leader() {
                c.kill(l);
                killed = Some(l);
                println!("  {:>5.1}s  killed the leader, node {}", t.as_secs_f64(), l + 1);
            }
        }
        if let (Some(k), false) = (killed, restarted) {
            if t >= restart_at {
                cluster.lock().map_err(|_| "poisoned")?.start(k)?;
                restarted = true;
                println!("  {:>5.1}s  restarted node {} from its log", t.as_secs_f64(), k + 1);
            }
        }
        let leader = cluster.lock().map_err(|_| "poisoned")?.leader();
        if let Some(l) = leader {
            if leaders.last() != Some(&l) {
                leaders.push(l);
            }
        }
        println!(
            "  {:>5.1}s  {:>7} asks answered, leader: {}",
            t.as_secs_f64(),
            answered.load(Ordering::Relaxed),
            leader.map_or("none".to_string(), |l| format!("node {}", l + 1))
        );
    }
    done.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let elapsed = t0.elapsed();

    // Let the restarted node catch up, then compare every node's registers
    // with what the clients were told.
    std::thread::sleep(Duration::from_millis(1500));
    let cluster = cluster.lock().map_err(|_| "poisoned")?;
    let observed = observed.lock().map_err(|_| "poisoned")?;
    let mut disagreements = 0;
    let mut missing = 0;
    for (key, value) in &observed.values {
        let k = app::key(key)?;
        for i in 0..NODES as usize {
            match cluster.request(i, |reply| Request::Local { key: k.clone(), reply }) {
                Some(Reply::Answer { value: v, .. }) if v.as_ref().map(app::text).as_ref() == Some(value) => {}
                Some(Reply::Answer { value: None, .. }) => missing += 1,
                _ => disagreements += 1,
            }
        }
    }
    let mut lat = observed.latencies.clone();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or_default()
    };
    println!();
    println!("summary");
    println!("  asks answered      {}", lat.len());
    println!(
        "  keys decided       {} (each asked twice: first writer wins)",
        observed.values.len()
    );
    println!(
        "  throughput         {:.0} asks/s",
        lat.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  latency p50 / p99  {:.2} ms / {:.2} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    println!(
        "  leaders            {}",
        leaders
            .iter()
            .map(|l| format!("node {}", l + 1))
            .collect::<Vec<_>>()
            .join(" -> ")
    );
    println!(
        "  client errors      {} (asks that failed or timed out)",
        observed.errors
    );
    println!("  conflicting answers {}", observed.conflicts.len());
    println!(
        "  replicas agree     {} ({} key copies checked, {} not yet applied, {} different)",
        if disagreements == 0 && observed.conflicts.is_empty() {
            "yes"
        } else {
            "NO"
        },
        observed.values.len() * NODES as usize,
        missing,
        disagreements
    );
    for i in 0..NODES as usize {
        if let Some(Reply::Status(st)) = cluster.request(i, |reply| Request::Status { reply }) {
            let dropped: Vec<String> = st
                .dropped
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            println!(
                "  node {}             applied up to slot {}, dropped: {}",
                st.id,
                st.applied.map_or(-1, |a| a as i64),
                if dropped.is_empty() {
                    "none".to_string()
                } else {
                    dropped.join(", ")
                }
            );
        }
    }
    drop(cluster);
    if disagreements > 0 || !observed.conflicts.is_empty() {
        return Err("replicas disagree".into());
    }
    Ok(())
}

/// One client: asks keys with its own values through any live node and
/// records what it was told.
fn client(
    c: usize,
    cluster: &Mutex<Cluster>,
    observed: &Mutex<Observed>,
    answered: &AtomicU64,
    next_key: &AtomicU64,
    done: &AtomicBool,
) {
    let mut i: u64 = 0;
    let mut state = (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    while !done.load(Ordering::Relaxed) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = format!(
            "k{}",
            next_key.fetch_add(1, Ordering::Relaxed) / ASKS_PER_KEY % app::REGISTERS as u64
        );
        let value = format!("c{c}-{i}");
        i += 1;
        let (Ok(k), Ok(v)) = (app::key(&key), app::value(&value)) else {
            continue;
        };
        // Any live node: a stopped one is not asked.
        let live = match cluster.lock() {
            Ok(cl) => cl
                .nodes
                .iter()
                .flatten()
                .map(|n| n.requests.clone())
                .collect::<Vec<_>>(),
            Err(_) => return,
        };
        let Some(node) = live.get((state >> 32) as usize % live.len().max(1)).cloned() else {
            continue;
        };
        let start = Instant::now();
        let reply = Some(node).and_then(|tx| {
            let (rtx, rrx) = mpsc::sync_channel(1);
            tx.send(Request::Ask {
                key: k,
                value: Some(v),
                reply: rtx.into(),
            })
            .ok()?;
            rrx.recv_timeout(Duration::from_secs(5)).ok()
        });
        let Ok(mut o) = observed.lock() else { return };
        match reply {
            Some(Reply::Answer { value, .. }) => {
                let got = value.as_ref().map(app::text).unwrap_or_default();
                o.latencies.push(start.elapsed());
                answered.fetch_add(1, Ordering::Relaxed);
                match o.values.get(&key).cloned() {
                    Some(prev) if prev != got => o.conflicts.push(format!("{key}: {prev} vs {got}")),
                    Some(_) => {}
                    None => {
                        o.values.insert(key, got);
                    }
                }
            }
            _ => o.errors += 1,
        }
    }
}
