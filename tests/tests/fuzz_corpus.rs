//! Runs the fuzz target bodies (`paxos_tests::fuzzing`) on stable: over
//! every file of the committed seed corpus (`fuzz/corpus/<target>/`) and
//! over pseudo-random inputs from a fixed seed. The bodies panic on a bug;
//! these tests only check that they return.
//!
//! `cargo test -p paxos-tests --test fuzz_corpus -- --ignored` regenerates
//! the seed corpus.

use paxos_tests::fuzzing::{decode_message, recover_from_records, replica_inputs, replica_run, sample_traffic};
use paxos_tests::rng::TestRng;
use std::fs;
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs `body` over every file of the target's corpus; returns how many.
fn run_corpus(target: &str, body: fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in &files {
        let data = fs::read(file).expect("corpus file");
        eprintln!("{target}: {}", file.display());
        body(&data);
    }
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files.len()
}

/// Runs `body` on `count` random inputs, some of them corpus files with a
/// few bytes changed.
fn run_random(target: &str, body: fn(&[u8]), seed: u64, count: usize, max_len: usize) {
    let seeds: Vec<Vec<u8>> = fs::read_dir(corpus_dir(target))
        .expect("corpus")
        .filter_map(|e| fs::read(e.ok()?.path()).ok())
        .collect();
    let mut rng = TestRng::new(seed);
    for n in 0..count {
        let data = if n % 2 == 1 && !seeds.is_empty() {
            let mut data = seeds[(rng.next_u64() % seeds.len() as u64) as usize].clone();
            for _ in 0..1 + rng.next_u64() % 4 {
                if !data.is_empty() {
                    let at = (rng.next_u64() % data.len() as u64) as usize;
                    data[at] = rng.next_u64() as u8;
                }
            }
            data
        } else {
            rng.bytes(max_len)
        };
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        let result = std::panic::catch_unwind(|| body(&data));
        if let Err(e) = result {
            eprintln!("{target}: input {n} of seed {seed:#x} panicked; hex: {hex}");
            std::panic::resume_unwind(e);
        }
    }
}

#[test]
fn decode_message_corpus_and_random() {
    run_corpus("decode_message", decode_message);
    run_random("decode_message", decode_message, 0xDEC0DE, 10_000, 96);
}

#[test]
fn replica_inputs_corpus_and_random() {
    run_corpus("replica_inputs", replica_inputs);
    // The harness is not vacuous: healthy scripts decide values, safely.
    for name in ["leader1-proposals", "election-then-proposals", "crash-restart-leader"] {
        let data = fs::read(corpus_dir("replica_inputs").join(name)).expect("corpus file");
        let summary = replica_run(&data);
        eprintln!("{name}: {summary:?}");
        assert!(summary.decided >= 3 && !summary.tainted, "{name}: {summary:?}");
    }
    run_random("replica_inputs", replica_inputs, 0x5EED, 3_000, 1_024);
}

#[test]
fn recover_from_records_corpus_and_random() {
    run_corpus("recover_from_records", recover_from_records);
    run_random("recover_from_records", recover_from_records, 0xD15C, 5_000, 256);
}

/// Writes the seed corpus: valid frames and record batches from a healthy
/// run, scripted operation sequences, and a few random inputs.
#[test]
#[ignore = "regenerates fuzz/corpus; run on purpose"]
fn regenerate_seed_corpus() {
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).expect("corpus dir");
        fs::write(dir.join(name), data).expect("corpus file");
    };
    let (frames, disks) = sample_traffic();
    let mut rng = TestRng::new(0xC0FFEE);

    // decode_message: one frame of each replica header kind, records, and
    // single-decree messages and durable states.
    let mut kinds = std::collections::BTreeMap::new();
    for f in &frames {
        if let Ok((h, _)) = paxos_core::replica::wire::decode_header::<paxos_core::replica::Header>(f) {
            let kind = format!("{h:?}").split([' ', '{']).next().unwrap_or("").to_lowercase();
            let e = kinds.entry(kind).or_insert_with(Vec::new);
            // Prefer the longest frame of a kind: it carries items.
            if f.len() > e.len() {
                *e = f.clone();
            }
        }
    }
    for (kind, f) in &kinds {
        write("decode_message", &format!("frame-{kind}"), f);
    }
    for (i, batch) in disks[0].iter().filter(|b| b.len() > 8).take(3).enumerate() {
        write("decode_message", &format!("record-{i}"), batch);
    }
    let ballot = paxos_core::Ballot::new(3, paxos_core::NodeId(2));
    let value = paxos_core::Bytes::<64>::from_slice(b"hello").expect("value");
    let mut buf = [0u8; 256];
    let state = paxos_core::practical::DurableState {
        promised: Some(ballot),
        accepted: Some(paxos_core::Proposal::new(ballot, value.clone())),
        round: 3,
    };
    write(
        "decode_message",
        "durable-state",
        paxos_core::encode(&state, &mut buf).expect("encode"),
    );
    let messages = [
        paxos_core::Message::Prepare { ballot },
        paxos_core::Message::Promise {
            ballot,
            accepted: Some(paxos_core::Proposal::new(ballot, value.clone())),
        },
        paxos_core::Message::Accept { ballot, value },
    ];
    for (i, m) in messages.iter().enumerate() {
        write(
            "decode_message",
            &format!("message-{i}"),
            paxos_core::encode(m, &mut buf).expect("encode"),
        );
    }
    for i in 0..3 {
        write("decode_message", &format!("random-{i}"), &rng.bytes(64));
    }

    // replica_inputs: scripts. Byte 0 picks the initial leader; then ops.
    let deliver_all = |n: usize| vec![0u8; n];
    let tick = |ms4: u8| vec![7u8, ms4];
    let propose = |node: u8, v: &[u8]| {
        let mut s = vec![9u8, node, v.len() as u8];
        s.extend_from_slice(v);
        s
    };
    let mut healthy = vec![1u8];
    for k in 0..6u8 {
        healthy.extend(propose(0, &[b'a' + k; 3]));
        healthy.extend(deliver_all(12));
    }
    write("replica_inputs", "leader1-proposals", &healthy);
    let mut election = vec![0u8];
    for _ in 0..4 {
        election.extend(tick(200));
        election.extend(deliver_all(12));
    }
    for k in 0..4u8 {
        for node in 0..3 {
            election.extend(propose(node, &[b'x', k, node]));
        }
        election.extend(deliver_all(12));
        election.extend(tick(20));
    }
    write("replica_inputs", "election-then-proposals", &election);
    let mut crash = healthy.clone();
    crash.extend([10, 0, 7, 200, 0, 0, 0, 0, 0, 0, 7, 200, 0, 0, 0, 0, 0, 0]);
    crash.extend(propose(1, b"after"));
    crash.extend(propose(2, b"after"));
    crash.extend(deliver_all(12));
    crash.extend([10, 0]);
    crash.extend(tick(200));
    crash.extend(deliver_all(20));
    write("replica_inputs", "crash-restart-leader", &crash);
    let mut faults = vec![2u8];
    for k in 0..8u8 {
        faults.extend(propose(1, &[b'f', k]));
        faults.extend([3, k, 4, k, 5, k, 0, 0, 6, k, 5, 0x40, 0, 0, 7, 30]);
    }
    write("replica_inputs", "loss-dup-reorder-corrupt", &faults);
    let mut forged = vec![1u8];
    if let Some(f) = frames.iter().find(|f| f.len() > 10) {
        forged.extend([11, 2, 1, f.len() as u8]);
        forged.extend_from_slice(&f[..f.len().min(255)]);
    }
    forged.extend(deliver_all(10));
    write("replica_inputs", "forged-frame", &forged);
    for i in 0..3 {
        write("replica_inputs", &format!("random-{i}"), &rng.bytes(300));
    }

    // recover_from_records: [clock][applied] then (len, batch)*.
    for (n, disk) in disks.iter().enumerate() {
        let mut image = vec![10u8, 0];
        for batch in disk.iter().filter(|b| b.len() < 256).take(40) {
            image.push(batch.len() as u8);
            image.extend_from_slice(batch);
        }
        write("recover_from_records", &format!("node{}-records", n + 1), &image);
        image[1] = 3;
        write(
            "recover_from_records",
            &format!("node{}-records-applied3", n + 1),
            &image,
        );
    }
    write("recover_from_records", "empty", &[]);
    for i in 0..3 {
        write("recover_from_records", &format!("random-{i}"), &rng.bytes(120));
    }
}
