//! What a replica writes: the records an input queues (only what it
//! changes), how queued records merge into runs and batches, and that
//! values and replies wait for their records. (Restarting from the records:
//! `recovery.rs`, `persist_batches.rs`; buffer sizes: `limits.rs`,
//! `short_buffers.rs`.)

use paxos_core::codec::encode;
use paxos_core::replica::wire::{Header, Record};
use paxos_core::{Ballot, NodeId};

mod common;
use common::*;

/// The records of one batch, each with the number of values it carries.
fn record_counts(batch: &[u8]) -> Vec<(Record, u32)> {
    records(batch)
        .into_iter()
        .map(|(record, values)| (record, u32::try_from(values.len()).unwrap()))
        .collect()
}

#[test]
fn an_append_writes_records_only_for_what_it_changes() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    assert!(!append_synced(&mut r, at(1), ballot, 0, 0, &["a"]).is_empty());
    assert_eq!(r.promised(), Some(ballot), "accepting implies the promise");
    // A heartbeat under the promised ballot changes nothing durable.
    assert_eq!(append_synced(&mut r, at(2), ballot, 0, 1, &[]), Vec::<Vec<u8>>::new());
    // Its commit watermark is written, and nothing else.
    assert_eq!(append_synced(&mut r, at(3), ballot, 1, 1, &[]).len(), 1);
    assert_eq!(r.decided(), 1);
}

#[test]
fn contiguous_votes_queued_together_are_written_as_one_run() {
    let mut r = follower::<8>();
    append(&mut r, at(1), LEADER, 0, 0, &["a"]);
    append(&mut r, at(1), LEADER, 0, 1, &["b"]);
    let batches = sync(&mut r, at(1));
    assert_eq!(batches.len(), 1);
    assert_eq!(
        record_counts(&batches[0]),
        [
            (Record::Promised { ballot: LEADER }, 0),
            (
                Record::Accepted {
                    ballot: LEADER,
                    first: 0
                },
                2
            )
        ]
    );
}

#[test]
fn watermarks_and_promises_queued_together_keep_only_the_newest() {
    let mut r = follower::<8>();
    append(&mut r, at(1), LEADER, 0, 0, &["a", "b"]);
    sync(&mut r, at(1));
    append(&mut r, at(1), LEADER, 1, 2, &[]);
    append(&mut r, at(1), LEADER, 2, 2, &[]);
    let batches = sync(&mut r, at(1));
    assert_eq!(batches.len(), 1);
    assert_eq!(record_counts(&batches[0]), [(Record::Committed { slot: 2 }, 0)]);

    let mut r = follower::<8>();
    let mut buf = [0u8; 64];
    for round in 1..=2 {
        let prepare = Header::Prepare {
            ballot: Ballot::new(round, NodeId(1)),
            from: 0,
            until: 8,
        };
        r.handle_message(at(1), NodeId(1), encode(&prepare, &mut buf).unwrap())
            .into_result()
            .unwrap();
    }
    let batches = sync(&mut r, at(1));
    assert_eq!(batches.len(), 1);
    let newest = Ballot::new(2, NodeId(1));
    assert_eq!(record_counts(&batches[0]), [(Record::Promised { ballot: newest }, 0)]);
}

#[test]
fn a_run_stops_at_the_end_of_its_record_even_when_the_next_slot_has_a_vote() {
    let mut r = follower::<8>();
    append(&mut r, at(1), LEADER, 0, 0, &["a"]);
    // Slot 0 decided: the watermark record separates the two runs.
    append(&mut r, at(1), LEADER, 1, 1, &["b"]);
    let batches = sync(&mut r, at(1));
    assert_eq!(
        record_counts(&batches[0]),
        [
            (Record::Promised { ballot: LEADER }, 0),
            (
                Record::Accepted {
                    ballot: LEADER,
                    first: 0
                },
                1
            ),
            (Record::Committed { slot: 1 }, 0),
            (
                Record::Accepted {
                    ballot: LEADER,
                    first: 1
                },
                1
            )
        ]
    );
}

/// Slots queued together whose values carry different ballots (a decided
/// value learned, then a vote) are written as consecutive runs in one
/// batch: a change of ballot ends a run, not the batch.
#[test]
fn runs_under_different_ballots_queued_together_share_one_batch() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), LEADER, 0, 0, &[]);
    sync(&mut r, at(1));
    learn(&mut r, at(2), 0, &["a"]).unwrap();
    append(&mut r, at(2), LEADER, 1, 1, &["b"]);
    let batches = sync(&mut r, at(2));
    assert_eq!(batches.len(), 1);
    assert_eq!(
        records(&batches[0]),
        [
            (Record::Learned { first: 0 }, vec![Some(v("a"))]),
            (Record::Committed { slot: 1 }, vec![]),
            (
                Record::Accepted {
                    ballot: LEADER,
                    first: 1
                },
                vec![Some(v("b"))]
            ),
        ]
    );
}

/// A vote stays in memory until its record is written, even once its slot
/// is decided and delivered: the window does not slide over it, so the
/// record written later still holds it and a restart finds it.
#[test]
fn a_delivered_vote_stays_in_memory_until_its_record_is_written() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let values = ["a", "b", "c", "d", "e", "f", "g", "h"];
    append(&mut r, at(1), LEADER, 0, 0, &values);
    append(&mut r, at(1), LEADER, 8, 8, &[]);
    assert_eq!(r.decided(), 8);
    while r.poll_event().is_some() {}
    assert_eq!(r.delivered(), 8);
    // Nothing written yet: slot 8 would push slot 0 out of memory.
    append(&mut r, at(2), LEADER, 8, 8, &["i"]);
    assert_eq!(r.counters().out_of_window, 1);
    let batches = sync(&mut r, at(2));
    let written: Vec<_> = batches.iter().flat_map(|b| records(b)).collect();
    let expected: Vec<Option<V>> = values.iter().map(|s| Some(v(s))).collect();
    assert!(
        written.contains(&(
            Record::Accepted {
                ballot: LEADER,
                first: 0
            },
            expected
        )),
        "{written:?}"
    );
    let restarted = recover(2, &batches, 0).unwrap();
    assert_eq!(restarted.decided_value(0), Some(Some(&v("a"))));
}

/// A repeated append (a retransmission, a duplicate) writes nothing new,
/// but its reply still counts the votes and still waits until the first
/// copy's record is durable.
#[test]
fn a_repeated_append_costs_no_write_and_its_reply_waits_for_the_first() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    append(&mut r, at(1), ballot, 0, 0, &["a", "b"]);
    append(&mut r, at(1), ballot, 0, 0, &["a", "b"]);
    assert!(sent(&mut r).is_empty(), "nothing is durable yet");
    let mut buf = vec![0u8; 512];
    let batch = r.poll_persist(&mut buf).unwrap();
    assert!(r.poll_persist(&mut buf).is_none(), "one batch for both copies");
    r.persisted(at(1), batch.seq).unwrap();
    assert_eq!(votes(&sent(&mut r)), vec![(ballot, 0, 2), (ballot, 0, 2)]);
    // Once durable, a third copy is answered at once, with no record.
    append(&mut r, at(2), ballot, 0, 0, &["a", "b"]);
    assert!(r.poll_persist(&mut buf).is_none());
    assert_eq!(votes(&sent(&mut r)), vec![(ballot, 0, 2)]);
    // An append that repeats two votes and adds one writes only the new
    // one, and answers for all three.
    append(&mut r, at(3), ballot, 0, 0, &["a", "b", "c"]);
    let batch = r.poll_persist(&mut buf).unwrap();
    assert_eq!(
        records(&buf[..batch.len]),
        [(Record::Accepted { ballot, first: 2 }, vec![Some(v("c"))])]
    );
    r.persisted(at(3), batch.seq).unwrap();
    assert_eq!(votes(&sent(&mut r)), vec![(ballot, 0, 3)]);
    // The same values under a new ballot are new votes, written again:
    // the new promise, then all three votes.
    let newer = Ballot::new(1, NodeId(1));
    append(&mut r, at(4), newer, 0, 0, &["a", "b", "c"]);
    let batch = r.poll_persist(&mut buf).unwrap();
    assert_eq!(
        records(&buf[..batch.len]),
        [
            (Record::Promised { ballot: newer }, vec![]),
            (
                Record::Accepted {
                    ballot: newer,
                    first: 0
                },
                vec![Some(v("a")), Some(v("b")), Some(v("c"))]
            )
        ]
    );
    r.persisted(at(4), batch.seq).unwrap();
    assert_eq!(votes(&sent(&mut r)), vec![(newer, 0, 3)]);
}
