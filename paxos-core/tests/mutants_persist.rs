//! Replica record-writing tests written to kill mutants that cargo-mutants
//! found surviving (see `docs/mutants.md`): which records a batch holds,
//! how queued records merge, and small buffers.

use paxos_core::codec::encode;
use paxos_core::replica::wire::{Header, Record};
use paxos_core::replica::{Dropped, Replica};
use paxos_core::{Ballot, NodeId};

mod common;
use common::*;

fn follower<const W: usize>() -> Replica<V, 3, W> {
    Replica::new(config(2, Some(1)), at(0)).unwrap()
}

const LEADER: Ballot = Ballot::new(0, NodeId(1));

/// An append from the initial leader carrying `values` from `first`.
fn append<const W: usize>(r: &mut Replica<V, 3, W>, commit: u64, first: u64, values: &[&str]) -> Result<(), Dropped> {
    let header = Header::Append {
        ballot: LEADER,
        commit,
        first,
        stamp: 0,
    };
    r.handle_message(at(1), NodeId(1), &frame(&header, values))
        .map_or(Ok(()), Err)
}

/// The records of one batch, each with the number of values it carries.
fn records(batch: &[u8]) -> Vec<(Record, u32)> {
    common::records(batch)
        .into_iter()
        .map(|(record, values)| (record, u32::try_from(values.len()).unwrap()))
        .collect()
}

/// Writes and confirms every queued record; returns the batches.
fn sync<const W: usize>(r: &mut Replica<V, 3, W>) -> Vec<Vec<u8>> {
    common::sync(r, at(1))
}

#[test]
fn contiguous_votes_queued_together_are_written_as_one_run() {
    let mut r = follower::<8>();
    append(&mut r, 0, 0, &["a"]).unwrap();
    append(&mut r, 0, 1, &["b"]).unwrap();
    let batches = sync(&mut r);
    assert_eq!(batches.len(), 1);
    assert_eq!(
        records(&batches[0]),
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
    append(&mut r, 0, 0, &["a", "b"]).unwrap();
    sync(&mut r);
    append(&mut r, 1, 2, &[]).unwrap();
    append(&mut r, 2, 2, &[]).unwrap();
    let batches = sync(&mut r);
    assert_eq!(batches.len(), 1);
    assert_eq!(records(&batches[0]), [(Record::Committed { slot: 2 }, 0)]);

    let mut r = follower::<8>();
    let mut buf = [0u8; 64];
    for round in 1..=2 {
        let prepare = Header::Prepare {
            ballot: Ballot::new(round, NodeId(1)),
            from: 0,
            until: 8,
        };
        assert_eq!(
            r.handle_message(at(1), NodeId(1), encode(&prepare, &mut buf).unwrap()),
            None
        );
    }
    let batches = sync(&mut r);
    assert_eq!(batches.len(), 1);
    let newest = Ballot::new(2, NodeId(1));
    assert_eq!(records(&batches[0]), [(Record::Promised { ballot: newest }, 0)]);
}

#[test]
fn a_run_stops_at_the_end_of_its_record_even_when_the_next_slot_has_a_vote() {
    let mut r = follower::<8>();
    append(&mut r, 0, 0, &["a"]).unwrap();
    // Slot 0 decided: the watermark record separates the two runs.
    append(&mut r, 1, 1, &["b"]).unwrap();
    let batches = sync(&mut r);
    assert_eq!(
        records(&batches[0]),
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

#[test]
fn the_smallest_buffer_always_makes_progress_and_a_smaller_one_is_counted() {
    let mut r = follower::<8>();
    let values = [
        "aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd", "eeeeeeee", "ffffffff", "gggggggg",
    ];
    append(&mut r, 0, 0, &values).unwrap();
    let mut tiny = [0u8; 2];
    assert_eq!(r.poll_persist(&mut tiny), None);
    assert_eq!(r.counters().buffer_too_small, 1);
    let mut buf = vec![0u8; R::MIN_PERSIST_BUFFER];
    let mut batches = 0;
    while let Some(p) = r.poll_persist(&mut buf) {
        r.persisted(at(1), p.seq).unwrap();
        batches += 1;
    }
    // The middle batches hold only part of one record.
    assert!(batches >= 3, "{batches} batches of {} bytes", R::MIN_PERSIST_BUFFER);
    assert_eq!(r.counters().buffer_too_small, 1, "every minimal batch wrote something");
}

#[test]
fn a_follower_whose_records_are_not_written_refuses_input_before_its_queue_overflows() {
    let mut r = follower::<64>();
    let mut taken = 0;
    // Every other slot: no two records merge.
    for slot in (0..40).step_by(2) {
        match append(&mut r, 0, slot, &["v"]) {
            Ok(()) => taken += 1,
            Err(e) => {
                assert_eq!(e, Dropped::Busy);
                break;
            }
        }
    }
    // Sixteen queued records, four kept free for one input (an append may
    // queue a promise, a watermark, its votes and a watermark): the promise
    // and eleven votes fit, the twelfth vote's input is refused.
    assert_eq!(taken, 12);
    assert_eq!(r.counters().busy, 1);
}
