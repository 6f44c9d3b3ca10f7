//! Three firmware nodes under QEMU, joined by a faulty relay: they decide
//! a sequence of values and agree; the leader is killed mid-run (SIGKILL),
//! restarted on its flash file, recovers from it and catches up; a
//! follower is cut off for a while and catches up too; and every slot any
//! node reported holds the same value everywhere.
//!
//! Skipped, with a message, when `qemu-system-arm` is missing, unless
//! `PAXOS_REQUIRE_QEMU=1` (as in CI), which makes that a failure.

use paxos_tests::qemu::node::NodeReport;
use paxos_tests::qemu::relay::Faults;
use paxos_tests::qemu::{build_firmware, qemu_available, Cluster};
use std::time::Duration;

/// Says why the test is skipped, past the test harness's output capture
/// (which takes only the print macros), so that a skip is never silent.
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED qemu_cluster: {why}");
}

fn required() -> bool {
    std::env::var("PAXOS_REQUIRE_QEMU").is_ok_and(|v| v == "1")
}

/// Skips (returns `None`) or fails when the cluster cannot run here.
fn firmware() -> Option<std::path::PathBuf> {
    if !qemu_available() {
        assert!(!required(), "PAXOS_REQUIRE_QEMU=1 but qemu-system-arm is not installed");
        skip(
            "qemu-system-arm is not installed (apt-get install qemu-system-arm; PAXOS_REQUIRE_QEMU=1 makes this fail)",
        );
        return None;
    }
    match build_firmware() {
        Ok(elf) => Some(elf),
        Err(e) if required() => panic!("PAXOS_REQUIRE_QEMU=1 but the firmware does not build: {e}"),
        Err(e) => {
            skip(&format!("{e} (rustup target add thumbv7m-none-eabi)"));
            None
        }
    }
}

fn at_least(slots: u64) -> impl FnMut(&[NodeReport]) -> bool {
    move |reports| reports.iter().all(|r| r.applied >= slots)
}

/// Every slot reported by several nodes has one value; no node changed
/// its mind across restarts; application states (count and hash of every
/// value applied) at equal slots match. Returns how many slot values and
/// states were compared, so that the check cannot pass vacuously.
fn assert_agreement(reports: &[NodeReport]) -> (usize, usize) {
    for (i, r) in reports.iter().enumerate() {
        assert!(
            r.self_conflicts.is_empty(),
            "node {} contradicted itself: {:?}",
            i + 1,
            r.self_conflicts
        );
        assert!(r.errors.is_empty(), "node {} reported errors: {:?}", i + 1, r.errors);
    }
    let (mut values, mut states) = (0, 0);
    for (i, a) in reports.iter().enumerate() {
        for (j, b) in reports.iter().enumerate().skip(i + 1) {
            for (slot, value) in &a.decided {
                if let Some(v) = b.decided.get(slot) {
                    assert_eq!(
                        value,
                        v,
                        "slot {slot}: node {} has {value}, node {} has {v}",
                        i + 1,
                        j + 1
                    );
                    values += 1;
                }
            }
            for (applied, state) in &a.states {
                if let Some(s) = b.states.get(applied) {
                    assert_eq!(
                        state,
                        s,
                        "application state at slot {applied}: node {} vs node {}",
                        i + 1,
                        j + 1
                    );
                    states += 1;
                }
            }
        }
    }
    (values, states)
}

#[test]
fn three_nodes_agree_through_a_leader_crash_and_a_partition() {
    let Some(elf) = firmware() else { return };
    let seed = std::env::var("PAXOS_QEMU_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9A05);
    let dir = std::env::temp_dir().join(format!("paxos-qemu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let faults = Faults {
        seed,
        drop_permille: 20,
        max_delay: Duration::from_millis(3),
    };
    eprintln!("qemu cluster: seed {seed}, logs in {}", dir.display());
    let mut cluster = Cluster::start(&elf, &dir, 3, faults).expect("cluster starts");
    let patience = Duration::from_secs(30);

    // 1. Progress with loss and delay.
    cluster
        .wait_for("30 slots on every node", patience, at_least(30))
        .unwrap();

    // 2. Kill the leader mid-run; the other two elect another and go on.
    let leader = cluster.report(2).last_proposer().expect("someone proposed");
    let before = cluster.report(leader).applied;
    eprintln!("killing leader {leader} at slot {before}");
    cluster.kill(leader);
    let others: Vec<u8> = (1..=3).filter(|&n| n != leader).collect();
    let target = before + 30;
    cluster
        .wait_for("progress without the old leader", patience, |r| {
            others.iter().all(|&n| r[usize::from(n - 1)].applied >= target)
        })
        .unwrap();
    let new_leader = cluster
        .report(others[0])
        .last_proposer()
        .expect("a new leader proposed");
    assert_ne!(new_leader, leader, "values kept coming from the dead node");

    // 3. Restart it on its flash file: it recovers, then catches up.
    cluster.restart(leader).expect("restart");
    let target = cluster.report(others[0]).applied + 30;
    cluster
        .wait_for("catch-up after restart", patience, at_least(target))
        .unwrap();
    let boots = cluster.report(leader).boots;
    assert_eq!(boots.len(), 2, "{boots:?}");
    assert!(
        boots[1].flash_pages > 0 && boots[1].decided + boots[1].applied > 0,
        "the restarted node recovered nothing from its flash: {boots:?}"
    );

    // 4. Cut a follower off, go on without it, heal: it catches up.
    let follower = others.iter().copied().find(|&n| n != new_leader).unwrap_or(leader);
    cluster.relay().isolate(follower);
    let target = cluster.report(new_leader).applied + 20;
    cluster
        .wait_for("progress during the partition", patience, |r| {
            (1..=3u8)
                .filter(|&n| n != follower)
                .all(|n| r[usize::from(n - 1)].applied >= target)
        })
        .unwrap();
    cluster.relay().heal();
    let target = cluster.report(new_leader).applied + 10;
    cluster
        .wait_for("catch-up after the partition", patience, at_least(target))
        .unwrap();

    cluster.stop();
    let reports: Vec<NodeReport> = (1..=3).map(|n| cluster.report(n)).collect();
    let (values, states) = assert_agreement(&reports);
    eprintln!("agreement: {values} slot values and {states} application states compared between pairs of nodes");
    assert!(values >= 100 && states >= 6, "too little overlap to judge agreement");
    let stats = cluster.relay().stats();
    let decided = reports.iter().map(|r| r.applied).min().unwrap_or(0);
    eprintln!("relay: {stats:?}");
    for (i, r) in reports.iter().enumerate() {
        eprintln!(
            "node {}: applied {}, {} values seen, {} boots, {} leaderships, {} compactions, {}",
            i + 1,
            r.applied,
            r.decided.len(),
            r.boots.len(),
            r.leaderships,
            r.compactions,
            r.footprint.as_deref().unwrap_or("")
        );
    }
    assert!(
        stats.dropped > 0 && stats.cut > 0,
        "the faults were not exercised: {stats:?}"
    );
    assert!(decided >= target, "only {decided} slots everywhere");
    let _ = std::fs::remove_dir_all(&dir);
}
