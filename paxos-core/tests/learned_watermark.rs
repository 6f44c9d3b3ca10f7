//! Decided values learned from a peer carry their watermark to disk: a
//! learned cell is not a vote (promises do not report it), so only a
//! durable watermark above it keeps what it stands for across a restart.
//! The script is the one an outside simulator found: a duplicate append
//! reaches a node between a catch-up answer and its next write.

use paxos_core::replica::wire::Header;
use paxos_core::replica::Handled;
use paxos_core::replica::{Config, Replica};
use paxos_core::{Ballot, NodeId};

mod common;
use common::{at, config, frame, records, V};

/// One slot of window: the log slides over slot 0 as soon as slot 1 comes.
type R1 = Replica<V, 3, 1>;
const LEADER: Ballot = Ballot::new(0, NodeId(1));

fn append(r: &mut R1, commit: u64, first: u64, values: &[&str]) {
    let header = Header::Append {
        ballot: LEADER,
        commit,
        first,
        stamp: 0,
    };
    assert_eq!(
        r.handle_message(at(1), NodeId(1), &frame(&header, values)),
        Handled::Used
    );
}

/// Node 2 learns slot 0 = `x`, a duplicate of the append that carried it
/// arrives before anything is written, then it accepts slot 1. Returns
/// every batch it wrote.
fn learn_then_duplicate(c: Config<3>) -> (R1, Vec<Vec<u8>>) {
    let mut r = R1::new(c, at(0)).unwrap();
    assert_eq!(
        r.handle_message(at(1), NodeId(1), &frame(&Header::Learn { first: 0 }, &["x"])),
        Handled::Used
    );
    assert_eq!(r.decided(), 1);
    let x = common::v("x");
    assert_eq!(r.entry(0), Some((None, Some(&x))), "a learned cell");
    append(&mut r, 0, 0, &["x"]);
    while r.poll_event().is_some() {}
    let mut batches = Vec::new();
    let mut write = |r: &mut R1| {
        let mut buf = vec![0u8; 512];
        while let Some(p) = r.poll_persist(&mut buf) {
            batches.push(buf[..p.len].to_vec());
            r.persisted(at(1), p.seq).unwrap();
        }
    };
    write(&mut r);
    append(&mut r, 1, 1, &["y"]);
    write(&mut r);
    (r, batches)
}

#[test]
fn a_learned_watermark_survives_a_duplicate_append_and_a_restart() {
    let (live, batches) = learn_then_duplicate(config(2, Some(1)));
    let written: Vec<_> = batches.iter().flat_map(|b| records(b)).collect();
    assert_eq!(written[0].0, paxos_core::replica::Record::Learned { first: 0 });
    assert!(written.contains(&(paxos_core::replica::Record::Committed { slot: 1 }, vec![])));
    let restarted = R1::recover(config(2, Some(1)), at(2), batches.iter().map(Vec::as_slice), 1).unwrap();
    assert_eq!(restarted.decided(), live.decided());
    assert!(restarted.decided() >= 1);
    assert!(!restarted.is_amnesiac());
    assert_eq!(live.decided_value(0), None, "slot 0 left the one-slot window");
    assert_eq!(live.counters().out_of_window, 0, "slot 1 was accepted");
}

/// With the old rule, the duplicate turns the learned cell into a plain
/// vote before it is written and no watermark record follows: the node
/// cannot restart from its own log.
#[cfg(feature = "bug-injection")]
#[test]
fn with_the_old_rule_the_node_cannot_restart() {
    let c = config(2, Some(1))
        .to_builder()
        .inject(paxos_core::fault_injection::Bug::UnrecordedLearnWatermark)
        .build()
        .unwrap();
    let (_, batches) = learn_then_duplicate(c);
    let restarted = R1::recover(config(2, Some(1)), at(2), batches.iter().map(Vec::as_slice), 1);
    assert!(
        matches!(restarted, Err(paxos_core::replica::RecoverError::OutOfWindow(1))),
        "{restarted:?}"
    );
}
