//! Snapshots installed at run time (`Replica::install_snapshot`): the log
//! starts at the snapshot, so what lies below it is neither voted for nor
//! sent. (Snapshots handed to recovery: `recovery.rs`; to a keyed node:
//! `keyed.rs`; to a leader: `leader_watermark.rs`.)

use paxos_core::replica::wire::Header;
use paxos_core::Ballot;
use paxos_core::NodeId;

mod common;
use common::*;

#[test]
fn an_append_reaching_below_a_snapshot_skips_those_slots_and_accepts_the_rest() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    r.install_snapshot(at(0), 3).unwrap();
    sync(&mut r, at(0));
    let ballot = Ballot::new(0, NodeId(1));
    append_synced(&mut r, at(1), ballot, 0, 1, &["a", "b", "c", "d"]);
    let accepted: Vec<Header> = sent(&mut r)
        .into_iter()
        .filter(|h| matches!(h, Header::Accepted { .. }))
        .collect();
    assert_eq!(
        accepted,
        [Header::Accepted {
            ballot,
            first: 3,
            count: 2,
            stamp: 0
        }]
    );
}

/// An answer to a catch-up request is built when it leaves: if a snapshot
/// moved the log past the requested slot meanwhile, nothing is sent.
#[test]
fn a_catch_up_answer_overtaken_by_a_snapshot_is_not_sent() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), Ballot::new(0, NodeId(1)), 1, 0, &["a"]);
    sync(&mut r, at(1));
    sent(&mut r);
    r.handle_message(at(2), NodeId(3), &bare(&Header::CatchUp { from: 0 }))
        .into_result()
        .unwrap();
    r.install_snapshot(at(2), 5).unwrap();
    sync(&mut r, at(2));
    let learns: Vec<Header> = sent(&mut r)
        .into_iter()
        .filter(|h| matches!(h, Header::Learn { .. }))
        .collect();
    assert_eq!(learns, vec![]);
}
