//! A replica at its limits: a full queue, a buffer too small, a malformed
//! frame. What it refuses (`Dropped::Busy` for a caller to retry), what it
//! drops, and the counter each one bumps. (Every buffer size, one byte at
//! a time: `short_buffers.rs`; the size constants: `sizes.rs`.)

use paxos_core::replica::wire::{decode_header, Header};
use paxos_core::replica::Handled;
use paxos_core::replica::{Dropped, Event};
use paxos_core::{Ballot, Bytes, DecodeError, NodeId};

mod common;
use common::*;

/// A frame from a node that is not a member is dropped and counted, each
/// time; the replica answers nothing and its state does not move.
#[test]
fn frames_from_strangers_are_dropped_and_counted() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    let prepare = bare(&Header::Prepare {
        ballot: Ballot::new(1, NodeId(9)),
        from: 0,
        until: 8,
    });
    for n in 1..=2 {
        let handled = r.handle_message(at(1), NodeId(9), &prepare);
        assert_eq!(handled, Handled::Dropped(Dropped::UnknownPeer(NodeId(9))));
        assert_eq!(r.counters().unknown_peer, n);
    }
    assert_eq!(r.promised(), None);
    assert!(sent(&mut r).is_empty());
}

/// Bytes after a header that carries no items make the frame malformed;
/// the replica answers nothing and counts it.
#[test]
fn bytes_after_an_itemless_header_are_malformed_and_counted() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    let mut f = bare(&Header::Prepare {
        ballot: Ballot::new(1, NodeId(3)),
        from: 0,
        until: 0,
    });
    f.push(0);
    assert_eq!(
        r.handle_message(at(1), NodeId(3), &f),
        Handled::Dropped(Dropped::Malformed(DecodeError::TrailingBytes))
    );
    assert_eq!(r.counters().malformed, 1);
    assert_eq!(r.promised(), None);
    sync(&mut r, at(1));
    assert!(sent(&mut r).is_empty());
}

#[test]
fn a_follower_whose_records_are_not_written_refuses_input_before_its_queue_overflows() {
    let mut r = follower::<64>();
    let mut taken = 0;
    // Every other slot: no two records merge.
    for slot in (0..40).step_by(2) {
        match try_append(&mut r, at(1), LEADER, 0, slot, &["v"]) {
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

/// A replica takes a request only while its outbox has room for the reply:
/// with fifteen promises waiting for their record, the next prepare is
/// refused as busy (the candidate retries) rather than answered into a full
/// outbox, where the reply would be lost.
#[test]
fn a_replica_whose_outbox_is_nearly_full_refuses_requests() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    let mut results = Vec::new();
    for round in 1..=17 {
        let prepare = Header::Prepare {
            ballot: Ballot::new(round, NodeId(3)),
            from: 0,
            until: 8,
        };
        results.push(r.handle_message(at(1), NodeId(3), &bare(&prepare)));
    }
    // The promises merge into one record: only the outbox fills.
    assert!(results[..15].iter().all(|h| *h == Handled::Used), "{results:?}");
    assert_eq!(
        results[15..],
        [Handled::Dropped(Dropped::Busy), Handled::Dropped(Dropped::Busy)]
    );
    assert_eq!(r.counters().busy, 2);
    assert_eq!(r.counters().outbox_full, 0);
    assert_eq!(r.promised(), Some(Ballot::new(15, NodeId(3))));
}

/// Leader changes pile up as notices until the application polls; past
/// the queue's capacity they are dropped and counted as busy.
#[test]
fn notices_beyond_the_queue_are_dropped_and_counted() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    for round in 1..=9u32 {
        let leader = if round % 2 == 1 { NodeId(1) } else { NodeId(3) };
        append(&mut r, at(1), Ballot::new(round, leader), 0, 0, &[]);
    }
    assert_eq!(r.counters().busy, 1);
    let mut changes = 0;
    while let Some(e) = r.poll_event() {
        assert!(matches!(e, Event::LeaderChanged { .. }), "{e:?}");
        changes += 1;
    }
    assert_eq!(changes, 8);
}

/// Catch-up requests queue answers without waiting for anything; once the
/// reply queue is full, further answers are dropped and counted.
#[test]
fn replies_beyond_the_outbox_are_dropped_and_counted() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), Ballot::new(0, NodeId(1)), 1, 0, &["a"]);
    sync(&mut r, at(1));
    sent(&mut r);
    assert_eq!(r.decided(), 1);
    let ask = bare(&Header::CatchUp { from: 0 });
    for _ in 0..17 {
        r.handle_message(at(2), NodeId(3), &ask).into_result().unwrap();
    }
    assert_eq!(r.counters().outbox_full, 1);
    let learns = sent(&mut r)
        .into_iter()
        .filter(|h| matches!(h, Header::Learn { first: 0 }))
        .count();
    assert_eq!(learns, 16);
}

/// A reply that does not fit the driver's buffer is dropped and counted,
/// not retried forever.
#[test]
fn a_reply_too_large_for_the_buffer_is_dropped_and_counted() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), Ballot::new(0, NodeId(1)), 0, 0, &["a"]);
    sync(&mut r, at(1));
    assert!(r.poll_transmit(&mut [0u8; 3]).is_none());
    assert_eq!(r.counters().buffer_too_small, 1);
    assert!(sent(&mut r).is_empty());
}

/// A leader with nothing new to send sends nothing, and counts nothing.
#[test]
fn an_idle_leader_polled_for_messages_sends_and_counts_nothing() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    assert_eq!(sent(&mut r).len(), 1, "the first heartbeat");
    let mut out = vec![0u8; R::MAX_MESSAGE_SIZE];
    assert!(r.poll_transmit(&mut out).is_none());
    assert_eq!(r.counters().buffer_too_small, 0);
}

/// A leader whose values do not fit the driver's buffer does not send
/// empty appends in their place (it counts the miss), but still sends its
/// heartbeat when one is due; a buffer too small even for the header is
/// counted too. The values go out once a buffer fits them.
#[test]
fn a_leader_with_a_buffer_too_small_for_its_values_sends_only_heartbeats() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    let mut out = vec![0u8; R::MAX_MESSAGE_SIZE];
    assert!(r.poll_transmit(&mut out).is_some());
    // An empty append (a heartbeat): header and five-byte count. Its
    // stamp, in microseconds, takes three bytes from here on.
    r.handle_timeout(at(50));
    let empty = r.poll_transmit(&mut out).unwrap().len;
    r.propose(at(60), Bytes::try_from("12345678").unwrap()).unwrap();
    sync(&mut r, at(60));
    let mut small = vec![0u8; empty + 3];
    assert!(r.poll_transmit(&mut small).is_none());
    assert_eq!(r.counters().buffer_too_small, 1);
    assert!(r.poll_transmit(&mut [0u8; 4]).is_none(), "not even the header fits");
    assert_eq!(r.counters().buffer_too_small, 2);
    r.handle_timeout(at(100));
    let heartbeat = r.poll_transmit(&mut small).unwrap();
    assert_eq!(heartbeat.len, empty);
    assert!(r.poll_transmit(&mut small).is_none());
    assert_eq!(r.counters().buffer_too_small, 3);
    let t = r.poll_transmit(&mut out).unwrap();
    let (header, rest) = decode_header::<Header>(&out[..t.len]).unwrap();
    assert!(matches!(header, Header::Append { first: 0, .. }), "{header:?}");
    assert_eq!(rest.len(), 5 + 10, "one value");
}

#[test]
fn the_smallest_buffer_always_makes_progress_and_a_smaller_one_is_counted() {
    let mut r = follower::<8>();
    let values = [
        "aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd", "eeeeeeee", "ffffffff", "gggggggg",
    ];
    append(&mut r, at(1), LEADER, 0, 0, &values);
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
