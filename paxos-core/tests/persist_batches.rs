//! A node restarts from whatever batches it made durable, at any persist
//! buffer size and after a crash between any two of them: a batch always
//! ends at a record boundary, and a record never depends on one written
//! after it, however the records are split between batches.

use paxos_core::replica::wire::Header;
use paxos_core::replica::Handled;
use paxos_core::replica::{Config, Replica};
use paxos_core::{Ballot, NodeId};

mod common;
use common::{at, config, frame, V};

type R = Replica<V, 3, 8>;

/// A follower's life: votes under two ballots, decided values learned and
/// a watermark, every record written through a `size`-byte buffer.
/// Returns the replica and its batches.
fn follower_writing_through(size: usize, c: Config<3>) -> (R, Vec<Vec<u8>>) {
    let mut r = R::new(c, at(0)).unwrap();
    let mut buf = vec![0u8; size];
    let mut batches = Vec::new();
    let mut write = |r: &mut R, batches: &mut Vec<Vec<u8>>| {
        while let Some(p) = r.poll_persist(&mut buf) {
            batches.push(buf[..p.len].to_vec());
            r.persisted(at(1), p.seq).unwrap();
        }
    };
    let (b0, b1) = (Ballot::new(0, NodeId(1)), Ballot::new(1, NodeId(3)));
    let append = |r: &mut R, ballot: Ballot, commit: u64, first: u64, values: &[&str]| {
        let header = Header::Append {
            ballot,
            commit,
            first,
            stamp: 0,
        };
        assert_eq!(
            r.handle_message(at(1), ballot.node, &frame(&header, values)),
            Handled::Used
        );
    };
    append(&mut r, b0, 0, 0, &["aaaaaaaa", "b", "cccccccc"]);
    write(&mut r, &mut batches);
    append(&mut r, b0, 2, 3, &[]);
    append(&mut r, b1, 0, 2, &["dddddddd", "e"]);
    let learn = Header::Learn { first: 2 };
    assert_eq!(
        r.handle_message(at(1), NodeId(3), &frame(&learn, &["dddddddd", "e", "ffffffff"])),
        Handled::Used
    );
    append(&mut r, b1, 5, 5, &["g", "hhhhhhhh"]);
    write(&mut r, &mut batches);
    // Votes and a watermark queued, then a snapshot that clears their
    // cells before anything is written.
    append(&mut r, b1, 5, 7, &["i", "j", "k"]);
    append(&mut r, b1, 8, 10, &["l"]);
    r.install_snapshot(at(1), 11).unwrap();
    append(&mut r, b1, 8, 11, &["m"]);
    write(&mut r, &mut batches);
    (r, batches)
}

#[test]
fn a_node_restarts_from_its_batches_at_every_buffer_size() {
    for size in R::MIN_PERSIST_BUFFER..R::MIN_PERSIST_BUFFER + 64 {
        let (live, batches) = follower_writing_through(size, config(2, Some(1)));
        let restarted = R::recover(config(2, Some(1)), at(2), batches.iter().map(Vec::as_slice), 0)
            .unwrap_or_else(|e| panic!("buffer of {size} bytes: {e}"));
        assert_eq!(restarted.promised(), live.promised(), "{size}");
        assert_eq!(restarted.decided(), live.decided(), "{size}");
        for slot in 0..live.decided() {
            assert_eq!(restarted.decided_value(slot), live.decided_value(slot), "{size}");
        }
        assert_eq!(restarted.log_start(), 11, "{size}");
        for end in 0..batches.len() {
            R::recover(config(2, Some(1)), at(2), batches[..end].iter().map(Vec::as_slice), 0)
                .unwrap_or_else(|e| panic!("buffer of {size} bytes, crash after {end} batches: {e}"));
        }
    }
}

/// With the old snapshot rule, a watermark queued over cells the snapshot
/// cleared reaches disk before the snapshot record: a crash between the
/// two leaves a log that does not replay.
#[cfg(feature = "bug-injection")]
#[test]
fn with_the_old_snapshot_rule_a_crash_between_batches_cannot_restart() {
    let torn = (R::MIN_PERSIST_BUFFER..R::MIN_PERSIST_BUFFER + 64).any(|size| {
        let c = config(2, Some(1))
            .to_builder()
            .inject(paxos_core::fault_injection::Bug::SnapshotDropsPendingVotes)
            .build()
            .unwrap();
        let (_, batches) = follower_writing_through(size, c);
        (0..=batches.len())
            .any(|end| R::recover(config(2, Some(1)), at(2), batches[..end].iter().map(Vec::as_slice), 0).is_err())
    });
    assert!(torn);
}

/// With the old writer, a run header whose item count did not fit stayed
/// at the end of the batch: some buffer size makes the log unreadable.
#[cfg(feature = "bug-injection")]
#[test]
fn with_the_old_writer_some_buffer_size_tears_a_record() {
    let torn = (R::MIN_PERSIST_BUFFER..R::MIN_PERSIST_BUFFER + 64).find(|&size| {
        let c = config(2, Some(1))
            .to_builder()
            .inject(paxos_core::fault_injection::Bug::TornRecord)
            .build()
            .unwrap();
        let (_, batches) = follower_writing_through(size, c);
        R::recover(config(2, Some(1)), at(2), batches.iter().map(Vec::as_slice), 0).is_err()
    });
    assert!(torn.is_some());
}

/// Votes queued, then a snapshot that clears the first of them, the
/// records written one batch at a time through a `size`-byte buffer, each
/// confirmed before the next is written. Returns whether every vote that
/// left did so only once the snapshot record was durable (the votes the
/// jump cleared are then covered by it).
fn votes_leave_after_the_snapshot(size: usize, c: Config<3>) -> bool {
    let mut r = R::new(c, at(0)).unwrap();
    let b0 = Ballot::new(0, NodeId(1));
    let header = Header::Append {
        ballot: b0,
        commit: 0,
        first: 0,
        stamp: 0,
    };
    let votes = frame(&header, &["aaaaaaaa", "bbbbbbbb", "cccccccc"]);
    assert_eq!(r.handle_message(at(1), NodeId(1), &votes), Handled::Used);
    r.install_snapshot(at(1), 1).unwrap();
    let mut buf = vec![0u8; size];
    let mut out = vec![0u8; R::MAX_MESSAGE_SIZE];
    let mut batches: Vec<Vec<u8>> = Vec::new();
    loop {
        while let Some(t) = r.poll_transmit(&mut out) {
            let (header, _) = paxos_core::replica::wire::decode_header::<Header>(&out[..t.len]).unwrap();
            if matches!(header, Header::Accepted { .. }) {
                let restarted = R::recover(config(2, Some(1)), at(2), batches.iter().map(Vec::as_slice), 0).unwrap();
                if restarted.log_start() < 1 {
                    return false;
                }
            }
        }
        let Some(p) = r.poll_persist(&mut buf) else {
            return true;
        };
        batches.push(buf[..p.len].to_vec());
        r.persisted(at(1), p.seq).unwrap();
    }
}

/// A vote queued before a snapshot that cleared its cell leaves only once
/// the snapshot record is durable, at every buffer size: its own record
/// writes nothing, so until then no durable state would back it.
#[test]
fn a_vote_the_snapshot_cleared_leaves_after_the_snapshot_record() {
    for size in R::MIN_PERSIST_BUFFER..R::MIN_PERSIST_BUFFER + 64 {
        assert!(
            votes_leave_after_the_snapshot(size, config(2, Some(1))),
            "buffer of {size} bytes"
        );
    }
}

/// Without the rule some buffer size ends a batch between the votes and
/// the snapshot record, and the votes leave with nothing durable behind
/// the first of them.
#[cfg(feature = "bug-injection")]
#[test]
fn without_the_rule_a_cleared_vote_leaves_too_soon() {
    let c = config(2, Some(1))
        .to_builder()
        .inject(paxos_core::fault_injection::Bug::VoteLeavesBeforeSnapshot)
        .build()
        .unwrap();
    assert!((R::MIN_PERSIST_BUFFER..R::MIN_PERSIST_BUFFER + 64)
        .any(|size| !votes_leave_after_the_snapshot(size, c.clone())));
}
