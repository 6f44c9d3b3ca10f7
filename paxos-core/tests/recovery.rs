//! Restarting: what `Replica::recover` makes of the records a replica
//! wrote, and which records it refuses as corrupt. (At every buffer size
//! and crash point: `persist_batches.rs`; without any records:
//! `storage_loss.rs`.)

use paxos_core::replica::wire::Record;

mod common;
use common::*;

/// A record batch as storage would hold it: the version byte, then each
/// record followed by its values.
fn batch(records: &[(Record, &[&str])]) -> Vec<u8> {
    let records: Vec<(Record, Vec<Option<V>>)> = records
        .iter()
        .map(|(record, values)| (*record, values.iter().map(|s| Some(v(s))).collect()))
        .collect();
    batch_of(&records)
}

/// A watermark record is only ever written over values written before it:
/// one above every value replayed so far is corruption, even if later
/// batches would fill the gap, while a watermark below the written values
/// (votes beyond the decided prefix) replays normally.
#[test]
fn recovery_refuses_a_watermark_above_the_values_written_before_it() {
    let forged = [
        batch(&[
            (Record::Promised { ballot: LEADER }, &[]),
            (
                Record::Accepted {
                    ballot: LEADER,
                    first: 0,
                },
                &["a"],
            ),
            (Record::Committed { slot: 3 }, &[]),
        ]),
        batch(&[(
            Record::Accepted {
                ballot: LEADER,
                first: 1,
            },
            &["b", "c"],
        )]),
    ];
    assert!(matches!(
        recover(2, &forged, 0),
        Err(paxos_core::replica::RecoverError::Corrupt(_))
    ));

    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), LEADER, 0, 0, &["a", "b"]);
    append(&mut r, at(1), LEADER, 1, 2, &[]);
    let batches = sync(&mut r, at(1));
    let restarted = recover(2, &batches, 0).unwrap();
    assert_eq!(restarted.decided(), 1);
    assert_eq!(restarted.decided_value(0), Some(Some(&v("a"))));
}

/// A `Learned` record carries decided values and, continuing the
/// watermark, extends it on replay even when the `Committed` record that
/// follows it was not written (a crash between two batches); an `Accepted`
/// run that follows is votes only and decides nothing.
#[test]
fn a_replayed_learned_run_extends_the_watermark_and_a_vote_run_does_not() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    learn(&mut r, at(1), 0, &["a", "b", "c"]).unwrap();
    append(&mut r, at(1), LEADER, 3, 3, &["d", "e"]);
    assert_eq!(r.decided(), 3);
    let written: Vec<_> = sync(&mut r, at(1)).iter().flat_map(|b| records(b)).collect();
    assert!(
        written.contains(&(Record::Committed { slot: 3 }, vec![])),
        "{written:?}"
    );
    // The same records without the watermark record.
    let without: Vec<_> = written
        .into_iter()
        .filter(|(r, _)| !matches!(r, Record::Committed { .. }))
        .collect();
    let batches = [batch_of(&without)];
    let restarted = recover(2, &batches, 0).unwrap();
    assert_eq!(restarted.decided(), 3);
    assert_eq!(restarted.decided_value(2), Some(Some(&v("c"))));
    assert_eq!(restarted.decided_value(3), None);
}

/// A restart whose application applied exactly the decided slots needs no
/// snapshot record and keeps the decided values in memory, to answer peers
/// that lag.
#[test]
fn a_restart_with_every_decided_slot_applied_keeps_them_and_writes_nothing() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), LEADER, 0, 0, &["a", "b"]);
    append(&mut r, at(1), LEADER, 2, 2, &[]);
    let batches = sync(&mut r, at(1));
    let mut restarted = recover(2, &batches, 2).unwrap();
    assert_eq!(restarted.decided(), 2);
    assert_eq!(restarted.log_start(), 0);
    assert_eq!(restarted.decided_value(0), Some(Some(&v("a"))));
    assert_eq!(restarted.poll_persist(&mut [0u8; 256]), None);
    assert_eq!(restarted.poll_event(), None, "nothing to deliver again");
}
