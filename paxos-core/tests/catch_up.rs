//! Catch-up: a replica with a gap asks a peer (`CatchUp`), the peer
//! answers with decided values (`Learn`), and who may take such an answer:
//! a follower extends its watermark with it; a leader or candidate, whose
//! watermark moves only with its own ballot's votes, drops it (see also
//! `leader_watermark.rs`).

use paxos_core::replica::wire::{decode_header, Header};
use paxos_core::replica::ProposalId;
use paxos_core::{Ballot, Bytes, NodeId};

mod common;
use common::*;

#[test]
fn a_follower_with_a_gap_asks_for_it_once_per_retransmission_timeout() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    let catch_ups = |r: &mut R, now: u64| {
        append_synced(r, at(now), ballot, 3, 2, &[]);
        sent(r).iter().filter(|h| **h == Header::CatchUp { from: 0 }).count()
    };
    assert_eq!(catch_ups(&mut r, 10), 1);
    assert_eq!(catch_ups(&mut r, 60), 0);
    assert_eq!(catch_ups(&mut r, 109), 0);
    assert_eq!(catch_ups(&mut r, 110), 1);
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
    r.handle_message(at(2), NodeId(3), &bare(&Header::CatchUp { from: 0 }))
        .into_result()
        .unwrap();
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

/// A catch-up answer longer than the window is taken up to the window's end
/// and the rest counted as out of the window, once.
#[test]
fn a_catch_up_answer_longer_than_the_window_is_cut_there_and_counted() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let values = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    learn(&mut r, at(1), 0, &values).unwrap();
    assert_eq!(r.decided(), 8);
    assert_eq!(r.decided_value(7), Some(Some(&v("h"))));
    assert_eq!(r.counters().out_of_window, 1);
}

#[test]
fn a_learn_run_that_starts_below_the_watermark_extends_it() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let learn = Header::Learn { first: 0 };
    r.handle_message(at(1), NodeId(1), &frame(&learn, &["a"]))
        .into_result()
        .unwrap();
    assert_eq!(r.decided(), 1);
    r.handle_message(at(2), NodeId(1), &frame(&learn, &["a", "b"]))
        .into_result()
        .unwrap();
    assert_eq!(r.decided(), 2);
    // A run that starts beyond it leaves a gap: ignored.
    let later = Header::Learn { first: 3 };
    r.handle_message(at(3), NodeId(1), &frame(&later, &["d"]))
        .into_result()
        .unwrap();
    assert_eq!(r.decided(), 2);
}

/// Node 2 leads from the start and proposes `x` for slot 0; node 1 then
/// says slot 0 is decided with `learned`. Returns the proposal's id and
/// every event that follows, rendered.
fn leader_proposes_x_and_learns(learned: &str) -> (ProposalId, Vec<String>) {
    let mut r = R::new(config(2, Some(2)), at(0)).unwrap();
    sync(&mut r, at(0));
    while r.poll_event().is_some() {}
    let id = r.propose(at(1), v("x")).unwrap();
    sync(&mut r, at(1));
    r.handle_message(at(2), NodeId(1), &frame(&Header::Learn { first: 0 }, &[learned]))
        .into_result()
        .unwrap();
    assert_eq!((r.decided(), r.counters().stale), (0, 1));
    assert!(r.is_leader());
    sync(&mut r, at(2));
    let mut events = Vec::new();
    while let Some(e) = r.poll_event() {
        events.push(format!("{e:?}"));
    }
    (id, events)
}

/// A leader's watermark moves only with its own ballot's votes: decided
/// values offered by a peer, its own or another, are dropped (stale), and
/// its proposal stays in flight under its ballot.
#[test]
fn a_leader_drops_decided_values_offered_by_a_peer() {
    for learned in ["x", "y"] {
        let (_, events) = leader_proposes_x_and_learns(learned);
        assert!(events.is_empty(), "{learned}: {events:?}");
    }
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
    promise(&mut r, at(1_001), NodeId(3), ballot, 0, &[report]);
    assert!(r.is_leader());
    let learn = Header::Learn { first: 0 };
    r.handle_message(at(1_002), NodeId(1), &frame_of(&learn, &[x()]))
        .into_result()
        .unwrap();
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
