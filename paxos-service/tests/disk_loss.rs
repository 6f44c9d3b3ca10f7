//! Storage loss: a node whose disk is lost (its data directory deleted,
//! restarted with `--storage-lost`) comes back as a learner that never
//! votes or leads again, and learns every decided value.

mod process;

use process::ask_retrying;
use process::cluster::Cluster;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The leader is SIGKILLed and its data directory deleted (a replaced
/// disk); it restarts with `--storage-lost`. It forgot what it promised and
/// accepted, so it must never vote or lead again: the two others elect a
/// leader between them, and the wiped node only learns every decided value
/// and answers reads like the others.
#[test]
fn a_node_whose_disk_is_lost_rejoins_as_a_learner() {
    let t0 = Instant::now();
    let mut cluster = Cluster::started(3);
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
