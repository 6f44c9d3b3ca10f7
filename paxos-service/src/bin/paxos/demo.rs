//! `paxos demo`: three nodes in this process on loopback TCP, their logs
//! in a fresh temporary folder; clients ask keys (each twice: the first
//! writer wins) and put to the map through the Rust client; the leader is
//! stopped and restarted from its log; a summary checks that every node
//! agrees with what the clients were told.

use paxos_core::NodeId;
use paxos_service::cluster::{BlockingClient, ClientOptions};
use paxos_service::config::NodeConfig;
use paxos_service::protocol::SizeLimits;
use paxos_service::service::Service;
use paxos_std::transport::{free_loopback_addrs, ClusterKey};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: usize = 3;
const CLIENTS: usize = 4;
/// Every key is asked twice, by whichever clients draw it: the first
/// writer wins and the second learns the winner.
const ASKS_PER_KEY: u64 = 2;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Cluster {
    configs: Vec<NodeConfig>,
    nodes: Vec<Option<Service>>,
}

impl Cluster {
    fn new(dir: &Path) -> AnyResult<Cluster> {
        let addrs = free_loopback_addrs(2 * NODES)?;
        let (peer_addrs, client_addrs) = addrs.split_at(NODES);
        let configs = (0..NODES)
            .map(|i| NodeConfig {
                id: NodeId(i as u8 + 1),
                listen: peer_addrs[i],
                peers: (0..NODES)
                    .filter(|&j| j != i)
                    .map(|j| (NodeId(j as u8 + 1), peer_addrs[j]))
                    .collect(),
                data_dir: dir.join(format!("node{}", i + 1)),
                client_listen: Some(client_addrs[i]),
                metrics_listen: None,
                key_file: None,
                storage_lost: false,
                heartbeat: Duration::from_millis(50),
                election_timeout: Duration::from_millis(300),
                lease: None,
                sizes: SizeLimits::DEFAULT,
            })
            .collect();
        Ok(Cluster {
            configs,
            nodes: (0..NODES).map(|_| None).collect(),
        })
    }

    fn start(&mut self, i: usize) -> AnyResult<()> {
        self.nodes[i] = Some(Service::start(&self.configs[i], ClusterKey::insecure_default())?);
        Ok(())
    }

    fn stop(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            let _ = node.shutdown();
        }
    }

    fn client_addrs(&self) -> Vec<SocketAddr> {
        self.configs.iter().filter_map(|c| c.client_listen).collect()
    }

    fn leader(&self) -> Option<usize> {
        (0..NODES).find(|&i| {
            self.nodes[i]
                .as_ref()
                .and_then(|n| n.runtime().status().ok())
                .is_some_and(|s| s.is_leader)
        })
    }
}

/// What the clients saw.
#[derive(Default)]
struct Observed {
    latencies: Vec<Duration>,
    /// The value each asked key was decided to.
    registers: BTreeMap<String, String>,
    /// The last value each client put to its own keys.
    map: BTreeMap<String, String>,
    /// Keys a put to was given up on: it may still apply later, so their
    /// final value is not known.
    unknown: std::collections::BTreeSet<String>,
    conflicts: Vec<String>,
    errors: Vec<String>,
}

pub(crate) fn run(duration: Duration) -> AnyResult<()> {
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::new(tmp.path())?;
    println!(
        "paxos demo: {NODES} nodes, clients at {:?}, data in {}",
        cluster.client_addrs(),
        tmp.path().display()
    );
    for i in 0..NODES {
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

    let client = Arc::new(BlockingClient::connect(ClientOptions::new(cluster.client_addrs()))?);
    let observed = Arc::new(Mutex::new(Observed::default()));
    let answered = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let next_key = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, observed, answered, next_key, done) = (
                Arc::clone(&client),
                Arc::clone(&observed),
                Arc::clone(&answered),
                Arc::clone(&next_key),
                Arc::clone(&done),
            );
            std::thread::spawn(move || run_client(c, &client, &observed, &answered, &next_key, &done))
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
            if let Some(l) = cluster.leader() {
                cluster.stop(l);
                killed = Some(l);
                println!("  {:>5.1}s  stopped the leader, node {}", t.as_secs_f64(), l + 1);
            }
        }
        if let (Some(k), false) = (killed, restarted) {
            if t >= restart_at {
                cluster.start(k)?;
                restarted = true;
                println!("  {:>5.1}s  restarted node {} from its log", t.as_secs_f64(), k + 1);
            }
        }
        let leader = cluster.leader();
        if let Some(l) = leader {
            if leaders.last() != Some(&l) {
                leaders.push(l);
            }
        }
        println!(
            "  {:>5.1}s  {:>7} requests answered, leader: {}",
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

    // Let the restarted node catch up, then compare every node's state
    // with what the clients were told.
    let observed = observed.lock().map_err(|_| "poisoned")?;
    let (mut disagreements, mut behind) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..NODES {
        let Some(node) = cluster.nodes[i].as_ref() else {
            continue;
        };
        let registers = observed.registers.clone();
        let mut map = observed.map.clone();
        map.retain(|k, _| !observed.unknown.contains(k));
        loop {
            let check = {
                let (registers, map) = (registers.clone(), map.clone());
                node.runtime().read_stale(move |store| {
                    let text = |v: Option<&[u8]>| v.map(|v| String::from_utf8_lossy(v).into_owned());
                    let regs = registers
                        .iter()
                        .filter(|(k, v)| text(store.register(k.as_bytes())).as_ref() != Some(v))
                        .count();
                    let keys = map
                        .iter()
                        .filter(|(k, v)| text(store.get(k.as_bytes())).as_ref() != Some(v))
                        .count();
                    regs + keys
                })?
            };
            if check == 0 || Instant::now() >= deadline {
                if check > 0 {
                    // Behind, or different: a linearizable read says which.
                    behind += check;
                    disagreements += check;
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
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
    println!("  requests answered  {}", lat.len());
    println!(
        "  keys decided       {} (each asked twice: first writer wins)",
        observed.registers.len()
    );
    println!("  map keys written   {}", observed.map.len());
    println!(
        "  throughput         {:.0} requests/s",
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
        "  client errors      {} (requests the client gave up on)",
        observed.errors.len()
    );
    for e in observed.errors.iter().take(3) {
        println!("    {e}");
    }
    println!("  conflicting answers {}", observed.conflicts.len());
    println!(
        "  replicas agree     {} ({} copies checked on {} nodes, {} behind or different)",
        if disagreements == 0 && observed.conflicts.is_empty() {
            "yes"
        } else {
            "NO"
        },
        (observed.registers.len() + observed.map.len()) * NODES,
        NODES,
        behind
    );
    for node in cluster.nodes.iter().flatten() {
        if let Ok(s) = node.runtime().status() {
            let dropped: Vec<String> = paxos_service::server::dropped(&s)
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            println!(
                "  node {}             applied {} slots, {} syncs, dropped: {}",
                s.id,
                s.applied,
                s.syncs,
                if dropped.is_empty() {
                    "none".to_string()
                } else {
                    dropped.join(", ")
                }
            );
        }
    }
    drop(observed);
    for i in 0..NODES {
        cluster.stop(i);
    }
    if disagreements > 0 {
        return Err("replicas disagree".into());
    }
    Ok(())
}

/// One client thread: asks keys with its own values, and puts to keys of
/// its own, recording what it was told.
fn run_client(
    c: usize,
    client: &BlockingClient,
    observed: &Mutex<Observed>,
    answered: &AtomicU64,
    next_key: &AtomicU64,
    done: &AtomicBool,
) {
    let mut i: u64 = 0;
    while !done.load(Ordering::Relaxed) {
        i += 1;
        let start = Instant::now();
        if i.is_multiple_of(2) {
            let key = format!("k{}", next_key.fetch_add(1, Ordering::Relaxed) / ASKS_PER_KEY);
            let value = format!("c{c}-{i}");
            let outcome = client.ask(key.as_bytes(), value.as_bytes());
            let Ok(mut o) = observed.lock() else { return };
            match outcome {
                Ok(asked) => {
                    let got = String::from_utf8_lossy(&asked.value).into_owned();
                    if asked.won && got != value {
                        o.conflicts.push(format!("{key}: won with {got}, asked {value}"));
                    }
                    o.latencies.push(start.elapsed());
                    answered.fetch_add(1, Ordering::Relaxed);
                    match o.registers.get(&key) {
                        Some(prev) if *prev != got => {
                            let conflict = format!("{key}: {prev} vs {got}");
                            o.conflicts.push(conflict);
                        }
                        Some(_) => {}
                        None => {
                            o.registers.insert(key, got);
                        }
                    }
                }
                Err(e) => o.errors.push(format!("ask {key}: {e}")),
            }
        } else {
            // Each client overwrites its own 16 keys: the last put wins.
            let key = format!("c{c}/{}", i % 16);
            let value = format!("{i}");
            let outcome = client.put(key.as_bytes(), value.as_bytes());
            let Ok(mut o) = observed.lock() else { return };
            match outcome {
                Ok(_) => {
                    o.latencies.push(start.elapsed());
                    answered.fetch_add(1, Ordering::Relaxed);
                    o.map.insert(key, value);
                }
                Err(e) => {
                    o.errors.push(format!("put {key}: {e}"));
                    o.unknown.insert(key);
                }
            }
        }
    }
}
