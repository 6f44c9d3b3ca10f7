//! Replica tests of input handling and reply queues, written to kill
//! mutants that cargo-mutants found surviving (see `docs/mutants.md`):
//! drop counters, replies merged per leader and ballot, the notice and
//! reply queues when full, the lease's edge, the wake-up for a waiting
//! commit record.

use paxos_core::replica::wire::{decode_header, Header, Record};
use paxos_core::replica::{Dropped, Event, LeaseConfig};
use paxos_core::time::{Duration, Instant};
use paxos_core::{Ballot, Bytes, DecodeError, NodeId};

mod common;
use common::*;

/// The `(first, count)` of every `Accepted` reply among `headers`, with
/// the ballot it answers.
fn accepted(headers: &[Header]) -> Vec<(Ballot, u64, u32)> {
    headers
        .iter()
        .filter_map(|h| match *h {
            Header::Accepted {
                ballot, first, count, ..
            } => Some((ballot, first, count)),
            _ => None,
        })
        .collect()
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
        Some(Dropped::Malformed(DecodeError::TrailingBytes))
    );
    assert_eq!(r.counters().malformed, 1);
    assert_eq!(r.promised(), None);
    sync(&mut r, at(1));
    assert!(sent(&mut r).is_empty());
}

/// Votes for consecutive slots to one leader under one ballot leave as a
/// single reply; a vote under another ballot, even from the same leader
/// for the next slot, gets its own.
#[test]
fn consecutive_votes_merge_into_one_reply_per_leader_and_ballot() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let first = Ballot::new(0, NodeId(1));
    let second = Ballot::new(1, NodeId(1));
    append(&mut r, at(1), first, 0, 0, &["a"]);
    append(&mut r, at(1), first, 0, 1, &["b"]);
    append(&mut r, at(1), second, 0, 2, &["c"]);
    sync(&mut r, at(1));
    assert_eq!(accepted(&sent(&mut r)), vec![(first, 0, 2), (second, 2, 1)]);
}

/// Votes that do not follow each other are not merged, even for one
/// leader and ballot.
#[test]
fn votes_for_slots_apart_get_separate_replies() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    append(&mut r, at(1), ballot, 0, 0, &["a"]);
    append(&mut r, at(1), ballot, 0, 0, &["a"]);
    sync(&mut r, at(1));
    assert_eq!(accepted(&sent(&mut r)), vec![(ballot, 0, 1), (ballot, 0, 1)]);
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
        assert_eq!(r.handle_message(at(2), NodeId(3), &ask), None);
    }
    assert_eq!(r.counters().outbox_full, 1);
    let learns = sent(&mut r)
        .into_iter()
        .filter(|h| matches!(h, Header::Learn { first: 0 }))
        .count();
    assert_eq!(learns, 16);
}

/// A leader with a lease, its promise durable and nothing to recover.
fn leasing_leader() -> R {
    let mut c = config(1, Some(1));
    c.lease = Some(LeaseConfig {
        duration: Duration::from_millis(100),
        max_drift_ppm: 0,
    });
    let mut r = R::new(c, at(0)).unwrap();
    sync(&mut r, at(0));
    r
}

/// The lease counts from the send time a quorum echoed and ends exactly
/// `safe_duration` later; the leader's own vote alone is no quorum.
#[test]
fn a_lease_holds_until_exactly_its_safe_duration_after_the_echoed_stamp() {
    let mut r = leasing_leader();
    assert!(r.is_leader());
    assert!(!r.can_read_locally(at(1)), "no follower has answered yet");
    let stamp = at(10).as_micros();
    let echo = Header::Accepted {
        ballot: Ballot::new(0, NodeId(1)),
        first: 0,
        count: 0,
        stamp,
    };
    assert_eq!(r.handle_message(at(12), NodeId(2), &bare(&echo)), None);
    assert!(r.can_read_locally(at(12)));
    let end = at(10) + Duration::from_millis(100);
    assert!(r.can_read_locally(Instant::from_micros(end.as_micros() - 1)));
    assert!(!r.can_read_locally(end));
}

/// A leader's lone commit watermark waits up to a heartbeat for company;
/// `poll_timeout` must wake the driver when that wait ends even though the
/// next heartbeat is later, and the record is written then.
#[test]
fn the_driver_is_woken_when_a_waiting_commit_record_is_due() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    sent(&mut r);
    r.propose(at(1), Bytes::try_from("a").unwrap()).unwrap();
    sync(&mut r, at(1));
    sent(&mut r);
    let echo = Header::Accepted {
        ballot: Ballot::new(0, NodeId(1)),
        first: 0,
        count: 1,
        stamp: 0,
    };
    assert_eq!(r.handle_message(at(5), NodeId(2), &bare(&echo)), None);
    assert_eq!(r.decided(), 1);
    let mut buf = vec![0u8; 512];
    assert!(r.poll_persist(&mut buf).is_none(), "the watermark waits");
    // The new watermark goes out an eighth of a heartbeat after the
    // decision (in case more decisions join it), not at once.
    assert!(sent(&mut r).is_empty());
    let commit_due = at(5) + Duration::from_micros(6_250);
    assert_eq!(r.poll_timeout(), commit_due);
    r.handle_timeout(Instant::from_micros(commit_due.as_micros() - 1));
    assert!(sent(&mut r).is_empty());
    // Then it goes out; the next heartbeat is due 50 ms after that, the
    // record 50 ms after the decision.
    r.handle_timeout(at(20));
    assert!(sent(&mut r)
        .iter()
        .any(|h| matches!(h, Header::Append { commit: 1, .. })));
    assert_eq!(r.poll_timeout(), at(55));
    assert!(r.poll_persist(&mut buf).is_none());
    r.handle_timeout(at(55));
    assert!(r.poll_persist(&mut buf).is_some());
    assert_eq!(r.poll_timeout(), at(70));
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

/// A candidate's prepare waits for its promise to be durable; if the
/// campaign ended (another leader appeared) or was replaced by a newer
/// one meanwhile, the stale prepare is not sent.
#[test]
fn a_prepare_of_an_abandoned_campaign_is_not_sent() {
    let prepares = |r: &mut R| {
        sent(r)
            .into_iter()
            .filter_map(|h| match h {
                Header::Prepare { ballot, .. } => Some(ballot),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Ended: a leader with a higher ballot appends before the sync.
    let mut r = R::new(config(2, None), at(0)).unwrap();
    r.handle_timeout(at(1_000));
    append(&mut r, at(1_001), Ballot::new(5, NodeId(3)), 0, 0, &[]);
    sync(&mut r, at(1_001));
    assert_eq!(prepares(&mut r), vec![]);
    // Replaced: a second campaign starts before the first one's sync.
    let mut r = R::new(config(2, None), at(0)).unwrap();
    r.handle_timeout(at(1_000));
    r.handle_timeout(at(2_000));
    sync(&mut r, at(2_000));
    let sent = prepares(&mut r);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(Some(sent[0]), r.promised());
}

/// An answer to a catch-up request is built when it leaves: if a snapshot
/// moved the log past the requested slot meanwhile, nothing is sent.
#[test]
fn a_catch_up_answer_overtaken_by_a_snapshot_is_not_sent() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), Ballot::new(0, NodeId(1)), 1, 0, &["a"]);
    sync(&mut r, at(1));
    sent(&mut r);
    assert_eq!(
        r.handle_message(at(2), NodeId(3), &bare(&Header::CatchUp { from: 0 })),
        None
    );
    r.install_snapshot(at(2), 5).unwrap();
    sync(&mut r, at(2));
    let learns: Vec<Header> = sent(&mut r)
        .into_iter()
        .filter(|h| matches!(h, Header::Learn { .. }))
        .collect();
    assert_eq!(learns, vec![]);
}

/// A catch-up answer carries decided values only: a value accepted but
/// not yet decided, right after them, stays out.
#[test]
fn a_catch_up_answer_stops_at_the_decided_watermark() {
    use paxos_core::replica::wire::Items;
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), Ballot::new(0, NodeId(1)), 1, 0, &["a", "b"]);
    sync(&mut r, at(1));
    sent(&mut r);
    assert_eq!(r.decided(), 1);
    assert_eq!(
        r.handle_message(at(2), NodeId(3), &bare(&Header::CatchUp { from: 0 })),
        None
    );
    let mut out = vec![0u8; R::MAX_MESSAGE_SIZE];
    let t = r.poll_transmit(&mut out).unwrap();
    let (header, rest) = decode_header::<Header>(&out[..t.len]).unwrap();
    assert_eq!(header, Header::Learn { first: 0 });
    let values: Vec<_> = Items::<Option<Bytes<8>>>::new(rest)
        .unwrap()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(values, vec![Some(Bytes::try_from("a").unwrap())]);
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

/// A new leader re-proposes what a promise reported; a catch-up answer
/// that offers that slot decided before its first append (asked before it
/// campaigned) is dropped and counted stale: its watermark moves only with
/// its own ballot's votes, and the append carries the re-proposed value
/// with the old watermark.
#[test]
fn a_new_leader_drops_decided_values_offered_after_it_won() {
    use paxos_core::replica::wire::{Items, PromisedEntry};
    let x = || Some(Bytes::<8>::try_from("x").unwrap());
    let mut r = R::new(config(2, None), at(0)).unwrap();
    r.handle_timeout(at(1_000));
    let ballot = r.promised().unwrap();
    sync(&mut r, at(1_000));
    sent(&mut r);
    let report = PromisedEntry {
        slot: 0,
        ballot: Ballot::new(1, NodeId(1)),
        value: x(),
    };
    let promise = Header::Promise {
        ballot,
        decided: 0,
        beyond: false,
    };
    assert_eq!(
        r.handle_message(at(1_001), NodeId(3), &frame_of(&promise, &[report])),
        None
    );
    assert!(r.is_leader());
    let learn = Header::Learn { first: 0 };
    assert_eq!(r.handle_message(at(1_002), NodeId(1), &frame_of(&learn, &[x()])), None);
    assert_eq!((r.decided(), r.counters().stale), (0, 1));
    sync(&mut r, at(1_002));
    let mut out = vec![0u8; R::MAX_MESSAGE_SIZE];
    let t = r.poll_transmit(&mut out).unwrap();
    let (header, rest) = decode_header::<Header>(&out[..t.len]).unwrap();
    assert!(
        matches!(header, Header::Append { first: 0, commit: 0, ballot: b, .. } if b == ballot),
        "{header:?}"
    );
    let values: Vec<_> = Items::<Option<Bytes<8>>>::new(rest)
        .unwrap()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(values, vec![x()]);
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
    assert_eq!(accepted(&sent(&mut r)), vec![(ballot, 0, 2), (ballot, 0, 2)]);
    // Once durable, a third copy is answered at once, with no record.
    append(&mut r, at(2), ballot, 0, 0, &["a", "b"]);
    assert!(r.poll_persist(&mut buf).is_none());
    assert_eq!(accepted(&sent(&mut r)), vec![(ballot, 0, 2)]);
    // An append that repeats two votes and adds one writes only the new
    // one, and answers for all three.
    append(&mut r, at(3), ballot, 0, 0, &["a", "b", "c"]);
    let batch = r.poll_persist(&mut buf).unwrap();
    assert_eq!(
        records(&buf[..batch.len]),
        [(Record::Accepted { ballot, first: 2 }, vec![Some(v("c"))])]
    );
    r.persisted(at(3), batch.seq).unwrap();
    assert_eq!(accepted(&sent(&mut r)), vec![(ballot, 0, 3)]);
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
    assert_eq!(accepted(&sent(&mut r)), vec![(newer, 0, 3)]);
}
