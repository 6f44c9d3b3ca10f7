//! The replication runtime with a real application (the `kv` example's
//! map): three nodes on loopback UDP with their own data directories.
//! Every node applies the same commands; any node takes proposals; a
//! stopped leader is replaced and catches up from its disk; a cluster
//! restarted from disk has its state back; oversized commands are refused.

#[path = "../examples/kv/machine.rs"]
mod machine;

use machine::{Command, Kv};
use paxos_std::options::NodeOptions;
use paxos_std::runtime::{ProposeError, Runtime, MAX_COMMAND};
use paxos_std::transport::free_loopback_addrs;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

fn start(i: usize, addrs: &[SocketAddr], dir: &Path) -> Runtime<Kv> {
    Runtime::start(NodeOptions::local_member(i, addrs, dir), Kv::default()).expect("node starts")
}

fn put(key: &str, value: &str) -> Command {
    Command::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn map_of(node: &Runtime<Kv>) -> BTreeMap<String, String> {
    node.read(|kv| kv.0.clone()).expect("a linearizable read")
}

/// Waits until `node` has applied `slots` (bounded).
fn wait_applied(node: &Runtime<Kv>, slots: u64) {
    wait_applied_within(node, slots, Duration::from_secs(10));
}

/// Waits until `node` has applied `slots`, for at most `limit`.
fn wait_applied_within(node: &Runtime<Kv>, slots: u64, limit: Duration) {
    let end = Instant::now() + limit;
    loop {
        let applied = node.status().expect("status").applied;
        if applied >= slots {
            return;
        }
        assert!(
            Instant::now() < end,
            "applied {applied} of {slots} slots after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Four threads in `s`, each putting `per_thread` keys `k{t}.{k}` with
/// `value` through `node` and checking each is applied.
fn put_from_four_threads<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    node: &'s Runtime<Kv>,
    per_thread: usize,
    value: &'s str,
) {
    for t in 0..4 {
        s.spawn(move || {
            for k in 0..per_thread {
                assert_eq!(node.propose(put(&format!("k{t}.{k}"), value)).unwrap(), Ok(None));
            }
        });
    }
}

#[test]
fn every_node_applies_the_same_commands_and_answers_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let nodes: Vec<_> = (0..3).map(|i| start(i, &addrs, dir.path())).collect();
    for k in 0..30 {
        let node = &nodes[k % 3];
        let before = node
            .propose(put(&format!("k{}", k % 7), &format!("v{k}")))
            .expect("decided");
        assert!(before.is_ok());
    }
    let cas = Command::Cas {
        key: "k0".into(),
        expected: Some("nope".into()),
        new: "x".into(),
    };
    assert_eq!(
        nodes[1].propose(cas).unwrap(),
        Err(Some("v28".into())),
        "a failed cas says what is there"
    );
    let maps: Vec<_> = nodes.iter().map(map_of).collect();
    assert_eq!(maps[0].len(), 7);
    assert!(maps.iter().all(|m| *m == maps[0]), "{maps:?}");
    assert_eq!(maps[0]["k6"], "v27");
}

#[test]
fn a_stopped_leader_is_replaced_and_catches_up_from_its_disk() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let mut nodes: Vec<Option<Runtime<Kv>>> = (0..3).map(|i| Some(start(i, &addrs, dir.path()))).collect();
    assert!(nodes[0].as_ref().unwrap().propose(put("a", "1")).unwrap().is_ok());
    let leader = (0..3)
        .find(|&i| nodes[i].as_ref().unwrap().status().unwrap().is_leader)
        .expect("a leader");
    nodes[leader].take().unwrap().shutdown().expect("a clean stop");
    let other = (leader + 1) % 3;
    // The two left elect a leader and go on; the request waits for it.
    assert!(nodes[other]
        .as_ref()
        .unwrap()
        .propose(put("b", "2"))
        .expect("decided without the old leader")
        .is_ok());
    nodes[leader] = Some(start(leader, &addrs, dir.path()));
    let back = nodes[leader].as_ref().unwrap();
    assert!(back
        .propose(put("c", "3"))
        .expect("the restarted node takes requests")
        .is_ok());
    let decided = nodes[other].as_ref().unwrap().status().unwrap().decided;
    wait_applied(back, decided);
    let maps: Vec<_> = nodes.iter().map(|n| map_of(n.as_ref().unwrap())).collect();
    assert!(maps.iter().all(|m| *m == maps[0]), "{maps:?}");
    assert_eq!(maps[0].len(), 3);
}

#[test]
fn a_cluster_restarted_from_disk_has_its_state_back() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    {
        let nodes: Vec<_> = (0..3).map(|i| start(i, &addrs, dir.path())).collect();
        for k in 0..10 {
            assert!(nodes[0].propose(put(&format!("k{k}"), "v")).unwrap().is_ok());
        }
        for node in nodes {
            node.shutdown().unwrap();
        }
    }
    let nodes: Vec<_> = (0..3).map(|i| start(i, &addrs, dir.path())).collect();
    assert!(nodes[2].propose(Command::Delete { key: "k0".into() }).unwrap().is_ok());
    let map = map_of(&nodes[1]);
    assert_eq!(map.len(), 9, "{map:?}");
    assert!(!map.contains_key("k0"));
}

#[test]
fn an_oversized_command_is_refused_before_it_is_proposed() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(1).unwrap();
    let node = start(0, &addrs, dir.path());
    let big = "x".repeat(MAX_COMMAND);
    assert!(matches!(
        node.propose(put("k", &big)),
        Err(ProposeError::TooLarge { .. })
    ));
    let fits = "x".repeat(MAX_COMMAND - 16);
    assert_eq!(node.propose(put("k", &fits)).unwrap(), Ok(None));
    let map = map_of(&node);
    assert_eq!(map["k"].len(), MAX_COMMAND - 16);
}

/// Commands of every size up to the maximum replicate: an empty value
/// and one of about 1 MiB (the default maximum), proposed through a
/// follower (forwarded, then packed alone in a slot), reach every node,
/// and come back from disk after a restart of the whole cluster.
#[test]
fn empty_and_one_mib_commands_replicate_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let big: String = (0..MAX_COMMAND - 16)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    {
        let nodes: Vec<_> = (0..3).map(|i| start(i, &addrs, dir.path())).collect();
        let follower = (0..3).find(|&i| !nodes[i].status().unwrap().is_leader).unwrap();
        assert_eq!(nodes[follower].propose(put("empty", "")).unwrap(), Ok(None));
        assert_eq!(nodes[follower].propose(put("big", &big)).unwrap(), Ok(None));
        assert_eq!(nodes[0].propose(put("after", "1")).unwrap(), Ok(None));
        let decided = nodes[0].status().unwrap().decided;
        for node in &nodes {
            wait_applied(node, decided);
            let map = node.read_stale(|kv| kv.0.clone()).unwrap();
            assert_eq!(map.get("empty").map(String::len), Some(0));
            assert!(map.get("big") == Some(&big), "the 1 MiB value differs");
        }
        for node in nodes {
            node.shutdown().unwrap();
        }
    }
    let nodes: Vec<_> = (0..3).map(|i| start(i, &addrs, dir.path())).collect();
    let map = map_of(&nodes[2]);
    assert!(map.get("big") == Some(&big), "the 1 MiB value was not replayed");
    assert_eq!(map.len(), 3);
}

/// A node configured for smaller commands refuses larger ones; a maximum
/// above the limit is refused at start with the limit in the message.
#[test]
fn the_command_maximum_is_configurable_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(1).unwrap();
    let mut options = NodeOptions::local_member(0, &addrs, dir.path());
    options.max_command = 100;
    let node = Runtime::start(options.clone(), Kv::default()).unwrap();
    assert!(matches!(
        node.propose(put("k", &"x".repeat(200))),
        Err(ProposeError::TooLarge { .. })
    ));
    assert_eq!(node.propose(put("k", "small")).unwrap(), Ok(None));
    node.shutdown().unwrap();
    options.max_command = paxos_std::runtime::MAX_COMMAND_LIMIT + 1;
    match Runtime::start(options, Kv::default()) {
        Err(e) => assert!(
            e.to_string()
                .contains(&paxos_std::runtime::MAX_COMMAND_LIMIT.to_string()),
            "{e}"
        ),
        Ok(_) => panic!("a maximum above the limit started"),
    }
}

/// Whether `node`'s status says it heard `peer` within `within_ms`.
fn heard_within(status: &paxos_std::runtime::RuntimeStatus, peer: u8, within_ms: u64) -> bool {
    status
        .peers
        .iter()
        .any(|p| p.id == peer && p.last_heard_ms.is_some_and(|ms| ms <= within_ms))
}

#[test]
fn the_status_says_when_each_peer_was_last_heard() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let nodes: Vec<_> = (0..3).map(|i| start(i, &addrs, dir.path())).collect();
    // Every node lists its two peers, in the options' order.
    for (i, node) in nodes.iter().enumerate() {
        let ids: Vec<u8> = node.status().unwrap().peers.iter().map(|p| p.id).collect();
        let expected: Vec<u8> = (1..=3).filter(|&id| usize::from(id) != i + 1).collect();
        assert_eq!(ids, expected);
    }
    // A write makes sure a leader is elected and every node has voted.
    assert!(nodes[0].propose(put("k", "v")).expect("decided").is_ok());
    // The leader hears from both followers (their votes and replies to
    // its heartbeats), and each follower from the leader (its
    // heartbeats), within a few heartbeats.
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let statuses: Vec<_> = nodes.iter().map(|n| n.status().unwrap()).collect();
        let leader = statuses.iter().find(|s| s.is_leader).map(|s| s.id);
        let all_heard = leader.is_some_and(|leader| {
            statuses.iter().all(|s| {
                if s.id == leader {
                    s.peers.iter().all(|p| heard_within(s, p.id, 1_000))
                } else {
                    heard_within(s, leader, 1_000)
                }
            })
        });
        if all_heard {
            break;
        }
        assert!(Instant::now() < end, "not every contact within a second: {statuses:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[path = "../examples/lock/machine.rs"]
mod lock;

/// The lock example's service: one holder at a time, and reads under the
/// lease on the leader only.
#[test]
fn a_lock_has_one_holder_and_the_leader_reads_it_under_its_lease() {
    use paxos_core::replica::LeaseConfig;
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let nodes: Vec<Runtime<lock::Locks>> = (0..3)
        .map(|i| {
            let mut options = NodeOptions::local_member(i, &addrs, dir.path());
            options.lease = Some(LeaseConfig::new(paxos_core::Duration::from_millis(200), 1_000));
            Runtime::start(options, lock::Locks::default()).unwrap()
        })
        .collect();
    let acquire = |owner: &str| lock::Command::Acquire {
        lock: "l".into(),
        owner: owner.into(),
    };
    assert_eq!(nodes[0].propose(acquire("a")).unwrap(), Ok(()));
    assert_eq!(nodes[1].propose(acquire("b")).unwrap(), Err(Some("a".into())));
    let leader = (0..3)
        .find(|&i| nodes[i].status().unwrap().is_leader)
        .expect("a leader");
    let end = Instant::now() + Duration::from_secs(5);
    let holder = loop {
        match nodes[leader].read_local(|l| l.holder("l")) {
            Err(ProposeError::NotLeader) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            other => break other.expect("the leader's lease holds"),
        }
    };
    assert_eq!(holder.as_deref(), Some("a"));
    for i in (0..3).filter(|&i| i != leader) {
        assert_eq!(nodes[i].read_local(|l| l.holder("l")), Err(ProposeError::NotLeader));
    }
    let release = lock::Command::Release {
        lock: "l".into(),
        owner: "a".into(),
    };
    assert_eq!(nodes[2].propose(release).unwrap(), Ok(()));
    assert_eq!(nodes[1].propose(acquire("b")).unwrap(), Ok(()));
    assert_eq!(nodes[0].read(|l| l.holder("l")).unwrap().as_deref(), Some("b"));
}

/// With a short compaction interval, a node that was down while the others
/// moved past their retained log catches up from a snapshot of the
/// application (its log alone could not bring it), and a cluster restarted
/// from compacted logs has its state back.
#[test]
fn a_node_behind_the_retained_log_catches_up_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let options = |i: usize| {
        let mut o = NodeOptions::local_member(i, &addrs, dir.path());
        o.compact_every = 40;
        o
    };
    let start = |i: usize| Runtime::start(options(i), Kv::default()).expect("node starts");
    let mut nodes: Vec<Option<Runtime<Kv>>> = (0..3).map(|i| Some(start(i))).collect();
    nodes[2].take().unwrap().shutdown().unwrap();
    for k in 0..300 {
        let node = nodes[k % 2].as_ref().unwrap();
        assert!(node.propose(put(&format!("k{k}"), &format!("v{k}"))).is_ok());
    }
    nodes[2] = Some(start(2));
    let behind = nodes[2].as_ref().unwrap();
    let decided = nodes[0].as_ref().unwrap().status().unwrap().decided;
    wait_applied(behind, decided);
    let maps: Vec<_> = nodes.iter().map(|n| map_of(n.as_ref().unwrap())).collect();
    assert_eq!(maps[0].len(), 300);
    assert!(maps.iter().all(|m| *m == maps[0]), "the node behind differs");
    for node in nodes.into_iter().flatten() {
        node.shutdown().unwrap();
    }
    let nodes: Vec<_> = (0..3).map(start).collect();
    let map = map_of(&nodes[1]);
    assert_eq!(map.len(), 300);
    assert_eq!(map["k299"], "v299");
}

/// The log is compacted by bytes as well as by slots: with large values a
/// count of slots alone would let the records a restart reads back grow
/// without bound. 1 MiB of values between compactions and 20 commands of
/// 200 KiB: every node compacts, though far below `compact_every`, and
/// comes back from its compacted log with every value.
#[test]
fn the_log_is_compacted_by_bytes_too() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let start = |i: usize| {
        let options = NodeOptions::local_member(i, &addrs, dir.path()).compact_bytes(1 << 20);
        Runtime::start(options, Kv::default()).expect("node starts")
    };
    let nodes: Vec<_> = (0..3).map(start).collect();
    let value = "c".repeat(200 << 10);
    for k in 0..20 {
        assert_eq!(nodes[0].propose(put(&format!("k{k}"), &value)).unwrap(), Ok(None));
    }
    let decided = nodes[0].status().unwrap().decided;
    for node in &nodes {
        wait_applied(node, decided);
        let status = node.status().unwrap();
        assert!(status.compacted_at > 0, "never compacted: {status:?}");
        assert!(decided < paxos_std::options::DEFAULT_COMPACT_EVERY);
    }
    for node in nodes {
        node.shutdown().unwrap();
    }
    let nodes: Vec<_> = (0..3).map(start).collect();
    let map = map_of(&nodes[2]);
    assert_eq!(map.len(), 20);
    assert!(map.values().all(|v| *v == value));
}

/// The order a snapshot from a peer must reach the disk in: the
/// application's state before the replica's record that its log starts
/// past it. A data directory where the record got there alone (the crash
/// the install path now prevents) is refused at start, not served from a
/// state missing the slots in between.
#[test]
fn a_log_that_starts_past_the_applications_snapshot_is_refused() {
    use paxos_core::replica::Replica;
    use paxos_core::Instant;
    use paxos_std::options::{replica_config, NodeError};
    use paxos_std::runtime::StateMachine;
    use paxos_std::storage::FileLog;
    // The runtime's replica: 8 nodes, a 256-slot window, slots of a
    // MAX_COMMAND-byte command with its widest tag and length.
    type Node = Replica<paxos_std::Payload, 8, 256>;
    // The runtime's snapshot with empty session tables: in postcard an
    // empty map is a zero length, and the client table is its next
    // session number, its map and its byte count, all zero.
    #[derive(serde::Serialize)]
    struct Snapshot {
        slot: u64,
        sessions: u8,
        clients: (u8, u8, u8),
        app: Vec<u8>,
    }
    let craft = |dir: &Path, jump: Option<u64>| -> NodeOptions {
        let addrs = free_loopback_addrs(3).unwrap();
        let options = NodeOptions::local_member(0, &addrs, dir);
        let (mut log, _) = FileLog::open(&options.data_dir).unwrap();
        let mut replica = Node::new(replica_config(&options).unwrap(), Instant::ZERO).unwrap();
        replica.install_snapshot(Instant::ZERO, 100).unwrap();
        // An empty window: a few bytes (the bound is for 256 of the
        // largest payloads).
        let mut checkpoint = vec![0; 1 << 16];
        let len = replica.write_checkpoint(&mut checkpoint).unwrap();
        let state = Snapshot {
            slot: 100,
            sessions: 0,
            clients: (0, 0, 0),
            app: Kv::default().snapshot(),
        };
        log.compact(&postcard::to_allocvec(&state).unwrap(), &checkpoint[..len])
            .unwrap();
        if let Some(slot) = jump {
            replica.install_snapshot(Instant::ZERO, slot).unwrap();
            let mut buf = vec![0; 1 << 16];
            while let Some(p) = replica.poll_persist(&mut buf) {
                log.append(&buf[..p.len]).unwrap();
            }
            log.sync().unwrap();
        }
        options
    };
    let fine = tempfile::tempdir().unwrap();
    let node = Runtime::start(craft(fine.path(), None), Kv::default()).expect("a consistent directory starts");
    assert_eq!(node.status().unwrap().applied, 100);
    node.shutdown().unwrap();
    let torn = tempfile::tempdir().unwrap();
    match Runtime::start(craft(torn.path(), Some(500)), Kv::default()) {
        Err(NodeError::SnapshotBehindLog {
            snapshot: 100,
            log_start: 500,
        }) => {}
        other => panic!("expected SnapshotBehindLog, got {:?}", other.map(|_| ())),
    }
}

/// A client session's request is applied once however it is retried:
/// through another node after a lost reply, or twice on the same node.
/// The retry gets the first application's output, and a request the
/// client acknowledged, or a session never opened, is refused as expired
/// rather than applied again.
#[test]
fn a_session_request_retried_through_another_node_applies_once() {
    use paxos_std::runtime::SessionTag;
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let nodes: Vec<_> = (0..3).map(|i| start(i, &addrs, dir.path())).collect();
    let client = nodes[0].open_session().expect("a session");
    assert_ne!(nodes[1].open_session().unwrap(), client, "each open is a new session");
    let tag = |seq, acked| SessionTag { client, seq, acked };
    assert_eq!(nodes[0].propose_in_session(tag(0, 0), put("x", "1")).unwrap(), Ok(None));
    // The reply to this one is "lost": the client retries it elsewhere.
    assert_eq!(
        nodes[1].propose_in_session(tag(1, 0), put("x", "2")).unwrap(),
        Ok(Some("1".into()))
    );
    for node in &nodes {
        assert_eq!(
            node.propose_in_session(tag(1, 0), put("x", "2")).unwrap(),
            Ok(Some("1".into())),
            "a retry gets the first output"
        );
    }
    // The same number with another command is refused, not answered with
    // the first command's output.
    assert_eq!(
        nodes[2].propose_in_session(tag(1, 0), put("y", "5")),
        Err(ProposeError::SessionConflict)
    );
    // Had the retry applied again, x's previous value would now be "2".
    assert_eq!(
        nodes[2].propose_in_session(tag(2, 2), put("x", "3")).unwrap(),
        Ok(Some("2".into()))
    );
    assert_eq!(
        nodes[2].propose_in_session(tag(1, 2), put("x", "2")),
        Err(ProposeError::SessionExpired),
        "acknowledged: its output is gone, and it is not applied again"
    );
    let stranger = SessionTag {
        client: client + 1000,
        seq: 0,
        acked: 0,
    };
    assert_eq!(
        nodes[0].propose_in_session(stranger, put("x", "9")),
        Err(ProposeError::SessionExpired)
    );
    assert_eq!(map_of(&nodes[1])["x"], "3");
}

/// A one-node cluster under 256 concurrent linearizable reads (each a
/// barrier entry through the log): the sync thread keeps more records in
/// flight than the leader keeps self-vote entries, and the leader used to
/// drop its own votes beyond them, so a lone node, where nothing else
/// decides, stopped deciding for good within a second.
#[test]
fn a_one_node_cluster_keeps_deciding_under_many_reads() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(1).unwrap();
    let node = std::sync::Arc::new(start(0, &addrs, dir.path()));
    let end = Instant::now() + Duration::from_secs(2);
    let readers: Vec<_> = (0..256)
        .map(|_| {
            let node = std::sync::Arc::clone(&node);
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u64, 0u64);
                while Instant::now() < end {
                    match node.read(|kv| kv.0.len()) {
                        Ok(_) => ok += 1,
                        Err(_) => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (ok, failed) = readers
        .into_iter()
        .map(|r| r.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(failed, 0, "{failed} reads failed ({ok} answered)");
    assert!(ok > 1000, "only {ok} reads answered in 2 s");
}

/// With a window budget of 512 KiB and 100 KiB commands, a leader keeps
/// at most half of it in flight (beyond a single proposal) and every node
/// at most half in decided slots; a node that was down while the slots it
/// lacks left memory catches up from a snapshot.
#[test]
fn the_window_holds_at_most_its_budget_in_bytes() {
    const BUDGET: usize = 512 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let start = |i: usize| {
        let options = NodeOptions::local_member(i, &addrs, dir.path()).window_bytes(BUDGET);
        Runtime::start(options, Kv::default()).expect("node starts")
    };
    let mut nodes: Vec<Option<Runtime<Kv>>> = (0..3).map(|i| Some(start(i))).collect();
    nodes[2].take().unwrap().shutdown().unwrap();
    let value = "v".repeat(100 * 1024);
    let proposer = nodes[0].as_ref().unwrap();
    std::thread::scope(|s| {
        put_from_four_threads(s, proposer, 10, &value);
        // Meanwhile, the budget holds.
        for _ in 0..50 {
            for node in nodes.iter().flatten() {
                let status = node.status().unwrap();
                assert!(status.kept_bytes <= BUDGET / 2, "kept {}", status.kept_bytes);
                assert!(
                    status.in_flight_bytes <= BUDGET / 2 + value.len() + 1024,
                    "in flight {}",
                    status.in_flight_bytes
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    // The replicas let the slots go: at most two of 100 KiB fit half the
    // budget, and one more may wait for its record (the window alone
    // would keep all 40).
    for node in nodes.iter().flatten() {
        let status = node.status().unwrap();
        assert!(status.kept_bytes <= BUDGET / 2, "kept {}", status.kept_bytes);
        assert!(
            status.decided - status.log_start <= 3,
            "slots {}..{} still in memory",
            status.log_start,
            status.decided
        );
    }
    nodes[2] = Some(start(2));
    let decided = nodes[0].as_ref().unwrap().status().unwrap().decided;
    wait_applied(nodes[2].as_ref().unwrap(), decided);
    let maps: Vec<_> = nodes.iter().map(|n| map_of(n.as_ref().unwrap())).collect();
    assert_eq!(maps[0].len(), 40);
    assert!(maps.iter().all(|m| *m == maps[0]), "the node behind differs");
    for node in nodes.into_iter().flatten() {
        node.shutdown().unwrap();
    }
}

/// A node down while more than the window's byte budget was decided can
/// catch up only from a snapshot (the leader released the slots,
/// `Replica::release_delivered`), and a state far larger than the peer's
/// connection queue (64 MiB by default; here about 180 MiB) must still
/// arrive: the pieces go as the connection takes them. Queued in one
/// burst, they overflowed the queue on every try and the node never
/// caught up (found in review: still at 0 of 200 slots after 30 s).
#[test]
fn a_node_behind_a_state_larger_than_its_connection_queue_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_loopback_addrs(3).unwrap();
    let mut nodes: Vec<Option<Runtime<Kv>>> = (0..3).map(|i| Some(start(i, &addrs, dir.path()))).collect();
    nodes[2].take().unwrap().shutdown().unwrap();
    // 200 commands of 900 KiB: 200 slots, fewer than the 256 the window
    // holds by count, but far beyond its 64 MiB by bytes.
    let value = "v".repeat(900 * 1024);
    let leader = nodes[0].as_ref().unwrap();
    std::thread::scope(|s| put_from_four_threads(s, leader, 50, &value));
    let status = leader.status().unwrap();
    assert!(status.log_start > 0, "the leader released slots: {status:?}");
    nodes[2] = Some(start(2, &addrs, dir.path()));
    let behind = nodes[2].as_ref().unwrap();
    wait_applied_within(behind, status.decided, Duration::from_secs(120));
    let map = behind.read_stale(|kv| kv.0.clone()).unwrap();
    assert_eq!(map.len(), 200, "every key");
    assert!(map.values().all(|v| *v == value), "every value whole");
    for node in nodes.into_iter().flatten() {
        node.shutdown().unwrap();
    }
}
