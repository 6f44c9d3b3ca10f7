//! Replication: the leader's proposals and the votes that decide them (its
//! own counted only once durable), the watermark a follower takes from an
//! append, and the window of slots a replica holds.

use paxos_core::codec::encode;
use paxos_core::replica::wire::Header;
use paxos_core::replica::Replica;
use paxos_core::{Ballot, Bytes, NodeId};

mod common;
use common::*;

#[test]
fn a_leader_counts_its_own_vote_only_once_that_record_is_durable() {
    let mut r = R::new(config(2, Some(2)), at(0)).unwrap();
    sync(&mut r, at(0));
    let ballot = r.promised().unwrap();
    let mut buf = vec![0u8; 512];
    let a = r.propose(at(1), v("a")).unwrap();
    let first = r.poll_persist(&mut buf).unwrap().seq;
    let b_id = r.propose(at(1), v("b")).unwrap();
    let second = r.poll_persist(&mut buf).unwrap().seq;
    assert_ne!(a, b_id, "every proposal has its own id");
    assert_ne!(first, second);
    r.persisted(at(1), first).unwrap();
    accepted(&mut r, at(2), NodeId(1), ballot, 0, 2);
    assert_eq!(r.decided(), 1, "slot 1 lacks the leader's durable vote");
    r.persisted(at(2), second).unwrap();
    assert_eq!(r.decided(), 2);
}

/// A single-node leader decides with its own votes alone, so each of them
/// must be counted, however many proposals one record covers: seventeen
/// proposals queued before one write, one more than the 16 self-vote
/// entries the leader keeps, all get decided. Exactly seventeen: a leader
/// that stopped merging the votes of contiguous proposals would drop the
/// seventeenth, but with more it merges later ones into the last entry by
/// accident (twenty do not show it).
#[test]
fn a_single_node_leader_decides_every_proposal_covered_by_one_record() {
    let mut r = solo_leader::<64>();
    for i in 0..17u8 {
        r.propose(at(1), V::from_slice(&[i]).unwrap()).unwrap();
    }
    let batches = sync(&mut r, at(1));
    assert_eq!(batches.len(), 1, "one write covers every proposal");
    assert_eq!(r.decided(), 17);
}

/// The same when every proposal has a record of its own, written but not
/// yet durable (a driver that syncs on another thread writes the next
/// batches while one syncs): thirty records in flight (within the
/// window's in-flight bound), more than the 16 self-vote entries, and
/// every proposal is decided once they are durable. The leader used to drop the votes it had no entry for, and a
/// one-node cluster (where nothing else can decide) stopped deciding for
/// good under load.
#[test]
fn a_single_node_leader_counts_its_votes_from_more_records_than_it_keeps_entries() {
    let mut r = solo_leader::<64>();
    let mut buf = vec![0u8; 4096];
    let mut last = None;
    for i in 0..30u8 {
        r.propose(at(1), V::from_slice(&[i]).unwrap()).unwrap();
        let p = r.poll_persist(&mut buf).expect("a record per proposal");
        last = Some(p.seq);
    }
    assert_eq!(r.decided(), 0, "nothing is durable yet");
    r.persisted(at(2), last.unwrap()).unwrap();
    assert_eq!(r.decided(), 30, "every own vote counted once its record is durable");
}

#[test]
fn many_proposals_in_one_record_all_get_the_leaders_vote() {
    type Wide = Replica<Bytes<8>, 3, 64>;
    let mut r = Wide::new(config(2, Some(2)), at(0)).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut flush = |r: &mut Wide| {
        while let Some(p) = r.poll_persist(&mut buf) {
            r.persisted(at(1), p.seq).unwrap();
        }
    };
    flush(&mut r);
    let ballot = r.promised().unwrap();
    for i in 0..20u8 {
        r.propose(at(1), Bytes::from_slice(&[i]).unwrap()).unwrap();
    }
    flush(&mut r);
    let header = Header::Accepted {
        ballot,
        first: 0,
        count: 20,
        stamp: 0,
    };
    let mut frame = [0u8; 64];
    r.handle_message(at(2), NodeId(1), encode(&header, &mut frame).unwrap())
        .into_result()
        .unwrap();
    assert_eq!(r.decided(), 20);
}

/// A node that stopped leading counts no more votes for the ballot it led:
/// decisions now come from its new leader. A late `Accepted` for its old
/// ballot, which would complete a quorum with its own vote, leaves the
/// slot undecided.
#[test]
fn a_former_leader_ignores_late_votes_for_the_ballot_it_led() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    r.propose(at(1), v("x")).unwrap();
    sync(&mut r, at(1));
    // Node 3 leads now with a higher ballot.
    append(&mut r, at(2), Ballot::new(1, NodeId(3)), 0, 0, &[]);
    assert!(!r.is_leader());
    accepted_now(&mut r, at(3), 2, LEADER, 0, 1);
    assert_eq!(r.decided(), 0);
    assert_eq!(r.decided_value(0), None);
    // The same vote counts while it leads (control).
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    r.propose(at(1), v("x")).unwrap();
    sync(&mut r, at(1));
    accepted_now(&mut r, at(3), 2, LEADER, 0, 1);
    assert_eq!(r.decided(), 1);
}

#[test]
fn a_follower_decides_exactly_up_to_the_commit_of_the_ballot_it_accepted() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    append_synced(&mut r, at(1), ballot, 1, 0, &["a", "b"]);
    assert_eq!(r.decided(), 1, "slot 1 is accepted, not committed");
    // A new leader's commit says nothing of values accepted under another
    // ballot.
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append_synced(&mut r, at(1), ballot, 0, 0, &["a"]);
    append_synced(&mut r, at(2), Ballot::new(1, NodeId(3)), 1, 1, &[]);
    assert_eq!(r.decided(), 0);
}

#[test]
fn a_decided_slot_keeps_its_value_against_a_leader_that_contradicts_it() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    append_synced(&mut r, at(1), ballot, 1, 0, &["a"]);
    assert_eq!(r.decided(), 1);
    append_synced(&mut r, at(2), Ballot::new(1, NodeId(3)), 1, 0, &["b", "c"]);
    assert_eq!(r.decided_value(0), Some(Some(&Bytes::try_from("a").unwrap())));
    assert_eq!(r.counters().invalid, 1);
}

#[test]
fn values_beyond_the_window_are_refused_and_counted() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    let values = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    append_synced(&mut r, at(1), ballot, 0, 0, &values);
    assert!(sent(&mut r).contains(&Header::Accepted {
        ballot,
        first: 0,
        count: 8,
        stamp: 0
    }));
    assert_eq!(r.counters().out_of_window, 2);
}
