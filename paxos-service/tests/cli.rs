//! The `paxos` command line: bad arguments and unusable paths fail
//! promptly, with the exit code scripts rely on (2 for usage errors, 1 for
//! the rest) and a message that names the problem; `paxos ask` and
//! `paxos status` print nothing on stdout when they fail, and `paxos ask`
//! gives up after its `--timeout`.

mod process;

use paxos_service::client::{self, ClientReply, ClientRequest};
use process::{free_peer, free_tcp, run_paxos, status_binary, wait_for, ChildGuard, Output, KEY_HEX, PAXOS};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `paxos node` with the given extra arguments after a valid
/// `--id/--listen/--peer` set, expecting a prompt failure.
fn node_fails(extra: &[&str]) -> Output {
    let peer = free_peer(2);
    let (listen, peer) = (peer[0].to_string(), format!("2={}", peer[1]));
    let mut args = vec!["node", "--id", "1", "--listen", &listen, "--peer", &peer];
    args.extend_from_slice(extra);
    let out = run_paxos(&args, Duration::from_secs(10));
    assert!(!out.status.success(), "`paxos {}` succeeded", args.join(" "));
    out
}

#[test]
fn bad_arguments_and_unusable_paths_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.display().to_string();
    let good_key = dir.path().join("good.key");
    std::fs::write(&good_key, KEY_HEX).unwrap();
    let good_key_s = good_key.display().to_string();

    missing_arguments_are_usage_errors();
    malformed_peers_are_usage_errors(&data_s);
    sizes_out_of_bounds_are_usage_errors(&data_s);
    assert!(!data.exists(), "a rejected command line created the data directory");
    unusable_key_files_are_named(dir.path(), &data_s);
    assert!(!data.exists(), "a node with a bad key created its data directory");
    a_data_directory_that_is_a_file_is_named(dir.path(), &good_key_s);
    a_lone_node_holds_its_paths_and_ask_times_out(dir.path(), &data_s, &good_key_s);

    let closed = free_tcp(1)[0].to_string();
    a_closed_port_is_named(&closed);
    oversized_arguments_are_refused_before_connecting(&closed);

    // `paxos ask` with a node address that is not one.
    let out = run_paxos(&["ask", "--node", "not-an-address", "k"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// Missing required arguments: a usage error from clap (exit code 2).
fn missing_arguments_are_usage_errors() {
    let out = run_paxos(&["node", "--id", "1"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("--listen"),
        "does not name the missing argument: {}",
        out.stderr
    );
    assert!(out.stderr.contains("Usage"), "no usage: {}", out.stderr);
    let out = run_paxos(&["node"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = run_paxos(&["ask"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = run_paxos(&["no-such-command"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// A malformed `--peer` is a usage error that says what is wrong.
fn malformed_peers_are_usage_errors(data_s: &str) {
    let listen = free_peer(1)[0].to_string();
    for (peer, says) in [
        ("127.0.0.1:9000", "expected ID=ADDR"),
        ("x=127.0.0.1:9000", "bad node id"),
        ("300=127.0.0.1:9000", "bad node id"),
        ("2=nowhere", "bad address"),
    ] {
        let out = run_paxos(
            &[
                "node",
                "--id",
                "1",
                "--listen",
                &listen,
                "--data-dir",
                data_s,
                "--peer",
                peer,
            ],
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(2), "--peer {peer}: {out:?}");
        assert!(
            out.stderr.contains(says),
            "--peer {peer}: stderr does not say {says:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
}

/// Key files that do not exist or do not hold a key are named, with what
/// is wrong with them.
fn unusable_key_files_are_named(dir: &Path, data_s: &str) {
    let missing = dir.join("missing.key").display().to_string();
    let out = node_fails(&["--data-dir", data_s, "--key-file", &missing]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("missing.key") && out.stderr.contains("cannot read the cluster key file"),
        "unclear: {}",
        out.stderr
    );
    for (name, contents, says) in [
        ("short.key", &b"abcdef\n"[..], "64 hex digits"),
        ("empty.key", &b""[..], "64 hex digits"),
        (
            "nothex.key",
            &b"zz1f0c2a9b8d7e6f00112233445566778899aabbccddeeff0f1e2d3c4b5a6978\n"[..],
            "not a hex digit",
        ),
        ("long.key", &[b'a'; 200][..], "64 hex digits"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        let out = node_fails(&["--data-dir", data_s, "--key-file", &path.display().to_string()]);
        assert_eq!(out.status.code(), Some(1), "{name}: {out:?}");
        assert!(
            out.stderr.contains(name) && out.stderr.contains(says),
            "{name}: unclear: {}",
            out.stderr
        );
    }
    // A directory is no key file.
    let out = node_fails(&["--data-dir", data_s, "--key-file", &dir.display().to_string()]);
    assert!(out.stderr.contains("key file"), "unclear: {}", out.stderr);
}

/// A data directory that is a regular file, or below one, is named, and
/// the file is left alone.
fn a_data_directory_that_is_a_file_is_named(dir: &Path, good_key_s: &str) {
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    for path in [file.clone(), file.join("below")] {
        let out = node_fails(&["--data-dir", &path.display().to_string(), "--key-file", good_key_s]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            out.stderr.contains("data directory") && out.stderr.contains("a-file"),
            "unclear: {}",
            out.stderr
        );
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"not a directory",
        "the file was changed"
    );
}

/// `--max-key-bytes` and `--max-value-bytes` out of bounds: usage errors
/// naming the flag and the bound.
fn sizes_out_of_bounds_are_usage_errors(data_s: &str) {
    for (flag, value, says) in [
        ("--max-key-bytes", "0", "at least 1 byte"),
        ("--max-key-bytes", "65537", "65536"),
        ("--max-value-bytes", "4194305", "4194304"),
    ] {
        let out = node_fails(&["--data-dir", data_s, flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {out:?}");
        assert!(
            out.stderr.contains(flag) && out.stderr.contains(says),
            "{flag} {value}: unclear: {}",
            out.stderr
        );
    }
}

/// A node alone of a cluster of three: it holds its data directory, its
/// peer address and its client address, and never reaches a decision, so `paxos
/// ask` gives up after its timeout; it refuses values longer than its
/// `--max-value-bytes` at once.
fn a_lone_node_holds_its_paths_and_ask_times_out(dir: &Path, data_s: &str, good_key_s: &str) {
    let peer = free_peer(3);
    let client = free_tcp(1)[0];
    let (listen, client_s) = (peer[0].to_string(), client.to_string());
    let (peer2, peer3) = (format!("2={}", peer[1]), format!("3={}", peer[2]));
    let log = File::create(dir.join("lone.log")).unwrap();
    let child = Command::new(PAXOS)
        .args([
            "node", "--id", "1", "--listen", &listen, "--peer", &peer2, "--peer", &peer3,
        ])
        .args([
            "--data-dir",
            data_s,
            "--key-file",
            good_key_s,
            "--client-listen",
            &client_s,
            "--max-value-bytes",
            "100",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut lone = ChildGuard(Some(child));
    // It answers status once its log is open (and locked).
    let status = wait_for(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || match client::call(client, &ClientRequest::Status, Duration::from_secs(1)) {
            Ok(ClientReply::Status(s)) => Some(s),
            _ => None,
        },
    );
    let status = status.expect("the lone node answers status");
    assert_eq!((status.id, status.leader, status.decided), (1, None, None));
    let by_binary = status_binary(client);
    assert_eq!((by_binary.id, by_binary.leader), (1, None));

    its_paths_are_taken(dir, data_s, good_key_s, &listen, &client_s);
    ask_gives_up_without_a_quorum(&client_s);
    a_value_longer_than_the_nodes_maximum_is_refused(&client_s);
    assert!(lone.child().try_wait().unwrap().is_none(), "the lone node exited");
}

/// With a node running on `data_s`, `listen` and `client_s`: its data
/// directory is locked, and its addresses taken.
fn its_paths_are_taken(dir: &Path, data_s: &str, good_key_s: &str, listen: &str, client_s: &str) {
    // Its data directory is locked.
    let out = node_fails(&["--data-dir", data_s, "--key-file", good_key_s]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("data directory") && out.stderr.contains("in use"),
        "unclear: {}",
        out.stderr
    );

    // Its peer address is taken.
    let other = dir.join("other").display().to_string();
    let peer = format!("2={}", free_peer(1)[0]);
    let out = run_paxos(
        &[
            "node",
            "--id",
            "1",
            "--listen",
            listen,
            "--peer",
            &peer,
            "--data-dir",
            &other,
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains(listen), "does not name the address: {}", out.stderr);

    // Its client address is taken.
    let out = node_fails(&[
        "--data-dir",
        &other,
        "--key-file",
        good_key_s,
        "--client-listen",
        client_s,
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("client address") && out.stderr.contains(client_s),
        "unclear: {}",
        out.stderr
    );
}

/// Without a quorum, `paxos ask` gives up after its timeout, printing
/// nothing on stdout.
fn ask_gives_up_without_a_quorum(client_s: &str) {
    for args in [
        vec!["ask", "--node", client_s, "--timeout", "1", "some-key", "some-value"],
        vec!["ask", "--node", client_s, "--timeout", "1", "some-key"],
    ] {
        let start = Instant::now();
        let out = run_paxos(&args, Duration::from_secs(15));
        let took = start.elapsed();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        assert!(
            out.stderr.contains("no answer") && out.stderr.contains(client_s),
            "{args:?}: unclear: {}",
            out.stderr
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{args:?} took {took:?} with --timeout 1"
        );
    }
}

/// A node started with `--max-value-bytes 100` refuses a value of 101
/// bytes (which the client's default maximum lets through) at once,
/// naming its maximum, quorum or not.
fn a_value_longer_than_the_nodes_maximum_is_refused(client_s: &str) {
    let value = "v".repeat(101);
    let start = Instant::now();
    let out = run_paxos(
        &["ask", "--node", client_s, "--timeout", "5", "k", &value],
        Duration::from_secs(15),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "printed {:?}", out.stdout);
    assert!(
        out.stderr
            .contains("a value of 101 bytes is longer than the maximum, 100 bytes"),
        "unclear: {}",
        out.stderr
    );
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "not at once: {:?}",
        start.elapsed()
    );
}

/// `paxos ask` and `paxos status` against a closed port.
fn a_closed_port_is_named(closed: &str) {
    for args in [
        vec!["ask", "--node", closed, "key", "value"],
        vec!["ask", "--node", closed, "key"],
        vec!["status", "--node", closed],
    ] {
        let out = run_paxos(&args, Duration::from_secs(15));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        assert!(
            out.stderr.starts_with("paxos: ") && out.stderr.contains(closed) && out.stderr.contains("refused"),
            "{args:?}: unclear: {}",
            out.stderr
        );
    }
}

/// Keys and values too long, and a bad timeout: refused before any
/// connection (the port is closed, so the message tells which).
fn oversized_arguments_are_refused_before_connecting(closed: &str) {
    // (A value longer than the default 1 MiB cannot be one argument: Linux
    // allows 128 KiB. The nodes refuse values longer than theirs.)
    let long_key = "k".repeat(paxos_service::protocol::DEFAULT_MAX_KEY + 1);
    for (args, says) in [
        (vec!["ask", "--node", closed, &long_key], "key of 1025 bytes"),
        (vec!["ask", "--node", closed, &long_key, "v"], "key of 1025 bytes"),
        (vec!["put", "--nodes", closed, &long_key, "v"], "key of 1025 bytes"),
        (vec!["ask", "--node", closed, "--timeout", "0", "k"], "--timeout"),
        (vec!["ask", "--node", closed, "--timeout=-1", "k"], "--timeout"),
    ] {
        let out = run_paxos(&args, Duration::from_secs(10));
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        assert!(
            out.stderr.contains(says),
            "{args:?}: stderr does not say {says:?}: {}",
            out.stderr
        );
    }
    // Exactly the longest key is a key (and the closed port the only
    // problem).
    let longest = "k".repeat(paxos_service::protocol::DEFAULT_MAX_KEY);
    let out = run_paxos(&["ask", "--node", closed, &longest], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !out.stderr.contains("longer than") && out.stderr.contains("refused"),
        "the longest key was refused: {}",
        out.stderr
    );
}

/// `paxos bench` runs a short measurement and prints its table, counting
/// only puts that were applied and answered, and says so.
#[test]
fn bench_prints_its_table_of_applied_puts() {
    let out = run_paxos(
        &["bench", "--seconds", "0.3", "--in-flight", "4"],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("| in flight | commits/s |"), "{}", out.stdout);
    assert!(out.stdout.contains("nothing else is counted"), "{}", out.stdout);
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("| 4 |"))
        .unwrap_or_else(|| panic!("no row for 4 in flight: {}", out.stdout));
    let rate: f64 = row.split('|').nth(2).unwrap().trim().parse().unwrap();
    assert!(rate > 0.0, "{row}");
    let bad = run_paxos(&["bench", "--seconds", "0"], Duration::from_secs(10));
    assert_eq!(bad.status.code(), Some(1), "{}", bad.stderr);
}
