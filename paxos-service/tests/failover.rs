//! Failover of a cluster of three `paxos node` processes: the leader
//! SIGKILLed under load, then a follower, each restarted from its data
//! directory; and the leader frozen (SIGSTOP) past the election timeout,
//! then resumed. Every key ends with one value, on every node, for every
//! client.

mod process;

use paxos_service::client::{self, ClientReply, ClientRequest, Status};
use process::clients::{Asked, Load};
use process::cluster::Cluster;
use process::{ask_api, ask_binary, ask_retrying, status_binary};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// 1. SIGKILL of the leader, then of a follower, under load
// ---------------------------------------------------------------------------

#[test]
fn three_nodes_survive_sigkill_of_leader_then_follower() {
    let t0 = Instant::now();
    let mut cluster = start_three_and_check_leader(t0);

    const CLIENTS: usize = 4;
    let load = Load::start(&cluster.clients, CLIENTS);

    // Load on a healthy cluster.
    load.wait_progress(50, Duration::from_secs(10), "healthy cluster");
    std::thread::sleep(Duration::from_millis(1500));

    let killed = kill_and_restart_the_leader(&mut cluster, &load, t0);
    kill_and_restart_a_follower(&mut cluster, &load, killed, t0);

    // Stop the clients.
    let (asked, answered, errors) = load.stop();
    eprintln!(
        "{:5.1}s clients stopped: {} asks, {} answered, errors retried: {:?}",
        t0.elapsed().as_secs_f64(),
        asked.len(),
        answered,
        errors
    );
    cluster.assert_alive();

    // Every node catches up.
    let statuses = cluster.wait_converged(Duration::from_secs(15));
    eprintln!(
        "{:5.1}s converged at applied {:?}",
        t0.elapsed().as_secs_f64(),
        statuses[0].applied
    );

    let (proposed, told) = check_one_value_per_key(&asked, &statuses);
    let (keys, expected) = check_every_node_reads_alike(&cluster, &proposed, &told);
    check_reads_and_writes_through_the_binary(&cluster, &told, &keys, &expected);
    check_status_agrees(&cluster, &statuses);

    cluster.assert_alive();
    let bad = cluster.bad_log_lines();
    assert!(bad.is_empty(), "errors in the node logs:\n{}", bad.join("\n"));
    eprintln!(
        "{:5.1}s done; snapshots installed: {}",
        t0.elapsed().as_secs_f64(),
        cluster.count_log_lines("installed a snapshot")
    );
}

/// Starts three nodes and checks, through `paxos status`, that the one
/// that leads says so.
fn start_three_and_check_leader(t0: Instant) -> Cluster {
    let cluster = Cluster::started(3);
    let first_leader = cluster.wait_leader(None, Duration::from_secs(10));
    let first_status = status_binary(cluster.clients[first_leader]);
    assert_eq!(first_status.leader, Some(first_leader as u8 + 1));
    assert_eq!(first_status.id, first_leader as u8 + 1);
    eprintln!("{:5.1}s leader: node {}", t0.elapsed().as_secs_f64(), first_leader + 1);
    cluster
}

/// SIGKILLs the leader; a new one takes over and the clients go on; then
/// restarts it from its data directory. Returns the node killed.
fn kill_and_restart_the_leader(cluster: &mut Cluster, load: &Load, t0: Instant) -> usize {
    let leader = cluster.wait_leader(None, Duration::from_secs(10));
    cluster.kill(leader);
    eprintln!(
        "{:5.1}s SIGKILLed the leader, node {} ({} answered)",
        t0.elapsed().as_secs_f64(),
        leader + 1,
        load.answered()
    );
    let second = cluster.wait_leader(Some(leader), Duration::from_secs(10));
    eprintln!("{:5.1}s new leader: node {}", t0.elapsed().as_secs_f64(), second + 1);
    load.wait_progress(30, Duration::from_secs(10), "after the leader was killed");

    // Restart it from its data directory.
    restart_under_load(cluster, load, leader, "after the leader restarted", t0);
    leader
}

/// Restarts node `i` from its data directory and waits for the clients to
/// make progress (`what`), then lets them run a while.
fn restart_under_load(cluster: &mut Cluster, load: &Load, i: usize, what: &str, t0: Instant) {
    cluster.start(i);
    eprintln!(
        "{:5.1}s restarted node {} ({} answered)",
        t0.elapsed().as_secs_f64(),
        i + 1,
        load.answered()
    );
    load.wait_progress(30, Duration::from_secs(10), what);
    std::thread::sleep(Duration::from_millis(1500));
}

/// SIGKILLs a follower (one other than `killed` if possible) under load,
/// then restarts it.
fn kill_and_restart_a_follower(cluster: &mut Cluster, load: &Load, killed: usize, t0: Instant) {
    let current = cluster.wait_leader(None, Duration::from_secs(10));
    let follower = (0..3)
        .find(|&i| i != current && i != killed)
        .or_else(|| (0..3).find(|&i| i != current))
        .expect("a follower");
    cluster.kill(follower);
    eprintln!(
        "{:5.1}s SIGKILLed follower node {} (leader node {}, {} answered)",
        t0.elapsed().as_secs_f64(),
        follower + 1,
        current + 1,
        load.answered()
    );
    load.wait_progress(30, Duration::from_secs(10), "with a follower down");
    std::thread::sleep(Duration::from_millis(1000));
    restart_under_load(cluster, load, follower, "after the follower restarted", t0);
}

/// Every value proposed for a key, by key.
type Proposed<'a> = BTreeMap<&'a str, BTreeSet<&'a str>>;
/// Every value clients were told for a key, by key.
type Told<'a> = BTreeMap<&'a str, BTreeSet<Option<&'a str>>>;

/// What the clients were told: one value per key, one that was proposed,
/// a client's own value for a key only it wrote; and enough keys decided,
/// shared and contested. Returns what was proposed and told, by key.
fn check_one_value_per_key<'a>(asked: &'a [Asked], statuses: &[Status]) -> (Proposed<'a>, Told<'a>) {
    let mut proposed: Proposed<'a> = BTreeMap::new();
    let mut told: Told<'a> = BTreeMap::new();
    for a in asked {
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
    // Several asks share a slot: count the registers every node holds.
    let registers = statuses[0].registers as usize;
    assert!(
        registers >= told.len() && registers <= proposed.len(),
        "{registers} registers written for {} keys answered of {} asked",
        told.len(),
        proposed.len()
    );
    assert!(
        statuses.iter().all(|s| s.registers == statuses[0].registers),
        "nodes hold different numbers of registers: {statuses:?}"
    );
    (proposed, told)
}

/// Every node holds the same value for every key: reads all keys from
/// every node through the client API, in parallel per node. Returns the
/// keys and the value each must have (`None` for one never answered).
fn check_every_node_reads_alike(
    cluster: &Cluster,
    proposed: &Proposed<'_>,
    told: &Told<'_>,
) -> (Arc<Vec<String>>, BTreeMap<String, Option<String>>) {
    let expected: BTreeMap<String, Option<String>> = proposed
        .keys()
        .map(|k| {
            let value = told.get(k).and_then(|v| v.iter().next().copied().flatten());
            (k.to_string(), value.map(str::to_string))
        })
        .collect();
    let keys: Arc<Vec<String>> = Arc::new(expected.keys().cloned().collect());
    let reads = read_from_every_node(cluster, &keys);
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
    (keys, expected)
}

/// Every node's reads of every key of `keys` through the client API, in
/// parallel per node: per node, per key, the value read (`None` if the
/// node did not answer).
fn read_from_every_node(cluster: &Cluster, keys: &Arc<Vec<String>>) -> Vec<Vec<Option<Option<String>>>> {
    let readers: Vec<JoinHandle<Vec<Option<Option<String>>>>> = (0..3)
        .map(|i| {
            let keys = Arc::clone(keys);
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
    readers
        .into_iter()
        .map(|r| r.join().expect("a reader panicked"))
        .collect()
}

/// A sample through the real `paxos ask`, from every node; a new value for
/// a decided key does not replace it.
fn check_reads_and_writes_through_the_binary(
    cluster: &Cluster,
    told: &Told<'_>,
    keys: &[String],
    expected: &BTreeMap<String, Option<String>>,
) {
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
}

/// The nodes agree on the log, as `paxos status` reports it, and none went
/// back from `statuses`. (Bounded retries: a spurious election between two
/// `paxos status` runs may add a slot.)
fn check_status_agrees(cluster: &Cluster, statuses: &[Status]) {
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
}

// ---------------------------------------------------------------------------
// 2. The leader isolated (SIGSTOP) past the election timeout, then resumed
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
    let mut cluster = Cluster::started(3);
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
    let contested = check_the_majority_goes_on(&cluster, old, paused_at, &mut told, t0);

    // Hold the freeze past 2 s in all, then resume.
    if let Some(left) = Duration::from_secs(2).checked_sub(paused_at.elapsed()) {
        std::thread::sleep(left);
    }
    cluster.pause(old, false);
    eprintln!("{:5.1}s node {} resumed", t0.elapsed().as_secs_f64(), old + 1);

    // The stale client's ask is answered with the value decided, never its own.
    match stale_client.join().expect("the stale client panicked") {
        Ok(ClientReply::Answer(a)) => assert_eq!(a.value, contested, "the old leader answered another value"),
        Ok(other) => panic!("the old leader replied {other:?}"),
        // Giving up is allowed (its ask may expire), answering wrong is not.
        Err(e) => eprintln!("the old leader's client got an error: {e}"),
    }

    let statuses = check_the_resumed_node_follows(&cluster, old, &mut told);
    let bad = cluster.bad_log_lines();
    assert!(bad.is_empty(), "errors in the node logs:\n{}", bad.join("\n"));
    eprintln!(
        "{:5.1}s done: {} keys agree on all nodes, applied {:?}",
        t0.elapsed().as_secs_f64(),
        told.len(),
        statuses[0].applied
    );
}

/// With node `old` frozen since `paused_at`: another node leads, and the
/// majority decides new keys, keeps the earlier ones, and decides the
/// contested key with its own value, which it returns.
fn check_the_majority_goes_on(
    cluster: &Cluster,
    old: usize,
    paused_at: Instant,
    told: &mut BTreeMap<String, Option<String>>,
    t0: Instant,
) -> Option<String> {
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
    contested.value
}

/// Once node `old` resumed: one leader, which it follows; it takes new
/// keys; every key has exactly one value, on every node, the one clients
/// were told. Returns the converged statuses.
fn check_the_resumed_node_follows(
    cluster: &Cluster,
    old: usize,
    told: &mut BTreeMap<String, Option<String>>,
) -> Vec<Status> {
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
        for (key, want) in told.iter() {
            let a = ask_retrying(&cluster.clients[i..=i], 0, key, None).expect("a read");
            assert_eq!(&a.value, want, "node {} reads {key}", i + 1);
        }
    }
    statuses
}
