//! A clean stop: SIGTERM makes every `paxos node` exit 0 promptly, logging
//! its stop, and a restart from the data directories recovers every key,
//! on every node, and takes new ones.

mod process;

use paxos_service::client::{self, ClientRequest, Status};
use process::cluster::Cluster;
use process::{ask_binary, ask_retrying};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[test]
fn graceful_sigterm_then_recovery() {
    let t0 = Instant::now();
    let mut cluster = Cluster::started(3);
    cluster.wait_leader(None, Duration::from_secs(10));
    let (written, before) = write_keys_through_every_node(&cluster);

    // SIGTERM: every node exits 0, promptly.
    terminate_all_cleanly(&mut cluster);

    // Restart them all: every key reads the same from every node.
    for i in 0..3 {
        cluster.start(i);
    }
    cluster.wait_leader(None, Duration::from_secs(10));
    check_every_key_after_the_restart(&cluster, &written, &before);

    // A second SIGTERM after recovery is just as clean.
    for i in 0..3 {
        let exit = cluster
            .terminate(i)
            .unwrap_or_else(|| panic!("node {} ignored SIGTERM", i + 1));
        assert!(exit.success(), "node {} exited with {exit}", i + 1);
    }
    let bad = cluster.bad_log_lines();
    assert!(bad.is_empty(), "errors in the node logs:\n{}", bad.join("\n"));
    eprintln!("{:5.1}s done", t0.elapsed().as_secs_f64());
}

/// Some keys, through every node, two clients on some of them, one through
/// `paxos ask`. Returns every key with its value, and the converged
/// statuses.
fn write_keys_through_every_node(cluster: &Cluster) -> (BTreeMap<String, Option<String>>, Vec<Status>) {
    let mut written: BTreeMap<String, Option<String>> = BTreeMap::new();
    for k in 0..40usize {
        let key = format!("key-{k}");
        let a = ask_retrying(&cluster.clients, k, &key, Some(&format!("value-{k}"))).expect("an answer");
        assert_eq!(a.value.as_deref(), Some(format!("value-{k}").as_str()));
        if k % 4 == 0 {
            let b = ask_retrying(&cluster.clients, k + 1, &key, Some("another")).expect("an answer");
            assert_eq!(b.value, a.value, "a second writer replaced {key}");
        }
        written.insert(key, a.value);
    }
    let a = ask_binary(cluster.clients[2], "through-the-binary", Some("yes"));
    written.insert(a.key, a.value);
    let before = cluster.wait_converged(Duration::from_secs(10));
    (written, before)
}

/// SIGTERMs every node: each exits 0 within 5 s, logs its stop, and stops
/// answering.
fn terminate_all_cleanly(cluster: &mut Cluster) {
    for i in 0..3 {
        let exit = cluster.terminate(i);
        let exit = exit.unwrap_or_else(|| panic!("node {} did not exit within 5 s of SIGTERM", i + 1));
        assert!(
            exit.success(),
            "node {} exited with {exit} after SIGTERM:\n{}",
            i + 1,
            cluster.logs()
        );
    }
    let stopped: Vec<String> = (0..3)
        .map(|i| std::fs::read_to_string(cluster.log_path(i, 1)).unwrap_or_default())
        .collect();
    for (i, log) in stopped.iter().enumerate() {
        assert!(log.contains("stopped"), "node {} did not log its stop:\n{log}", i + 1);
    }
    for i in 0..3 {
        assert!(client::call(cluster.clients[i], &ClientRequest::Status, Duration::from_secs(1)).is_err());
    }
}

/// After the restart: no slot of `before` lost, every key of `written`
/// read alike from every node (through the API and `paxos ask`), and the
/// cluster still takes new keys.
fn check_every_key_after_the_restart(cluster: &Cluster, written: &BTreeMap<String, Option<String>>, before: &[Status]) {
    let after = cluster.wait_converged(Duration::from_secs(10));
    assert!(
        after[0].decided >= before[0].decided,
        "{after:?} lost slots of {before:?}"
    );
    for i in 0..3 {
        for (key, want) in written {
            let a = ask_retrying(&cluster.clients[i..=i], 0, key, None).expect("a read");
            assert_eq!(&a.value, want, "node {} reads {key} after the restart", i + 1);
        }
        let a = ask_binary(cluster.clients[i], "key-0", Some("after-restart"));
        assert_eq!(a.value.as_deref(), Some("value-0"));
    }
    let a = ask_binary(cluster.clients[0], "through-the-binary", None);
    assert_eq!(a.value.as_deref(), Some("yes"));

    // And the cluster still takes new keys.
    let a = ask_retrying(&cluster.clients, 0, "new-after-restart", Some("fresh")).expect("an answer");
    assert_eq!(a.value.as_deref(), Some("fresh"));
}
