//! Promises longer than a frame: the acceptor sends them in parts that
//! answer for consecutive ranges of the candidate's window, and the
//! candidate counts a promise only once its parts, in any order, answered
//! for all of it.

use paxos_core::replica::wire::{decode_header, Header, Items, PromisedEntry};
use paxos_core::{Ballot, NodeId};

mod common;
use common::*;

/// Six values of the widest size (eight bytes).
const VALUES: [&str; 6] = ["aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd", "eeeeeeee", "ffffffff"];

/// A follower holding votes for [`VALUES`] in slots 0..6 (leader round 0)
/// answers a prepare through a buffer of `size` bytes: the parts, decoded.
fn parts_through(size: usize) -> Vec<(u64, bool, Vec<PromisedEntry<V>>)> {
    let mut r = follower::<8>();
    append(&mut r, at(1), LEADER, 0, 0, &VALUES);
    sync(&mut r, at(1));
    let mut buf = vec![0u8; R::MAX_MESSAGE_SIZE];
    while r.poll_transmit(&mut buf).is_some() {}
    let candidate = Ballot::new(1, NodeId(3));
    let prepare = Header::Prepare {
        ballot: candidate,
        from: 0,
        until: 8,
    };
    // Long after the leader was last heard: a follower refuses a prepare
    // while its leader is alive.
    r.handle_message(at(60_000), NodeId(3), &bare(&prepare))
        .into_result()
        .unwrap();
    sync(&mut r, at(60_000));
    let mut buf = vec![0u8; size];
    let mut parts = Vec::new();
    while let Some(t) = r.poll_transmit(&mut buf) {
        let (header, rest) = decode_header::<Header>(&buf[..t.len]).unwrap();
        let Header::Promise {
            ballot,
            first,
            complete,
            ..
        } = header
        else {
            continue;
        };
        assert_eq!(ballot, candidate);
        let entries = Items::<PromisedEntry<V>>::new(rest)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        parts.push((first, complete, entries));
    }
    parts
}

/// Through the smallest buffer that never drops a message, six votes leave
/// in several parts: each but the last carries at least one entry and
/// ends the range it answers for at its last entry, the next starts right
/// after, only the last is complete, and together they report every vote
/// once, in slot order.
#[test]
fn a_promise_longer_than_a_frame_leaves_in_parts_that_chain() {
    let parts = parts_through(R::MAX_MESSAGE_SIZE);
    assert!(parts.len() > 1, "six votes fit one {}-byte frame", R::MAX_MESSAGE_SIZE);
    let mut expect_first = 0;
    for (i, (first, complete, entries)) in parts.iter().enumerate() {
        assert_eq!(*first, expect_first, "part {i}");
        assert_eq!(*complete, i + 1 == parts.len(), "part {i}");
        if !complete {
            assert!(!entries.is_empty(), "part {i} is empty and not the last");
            expect_first = entries.last().unwrap().slot + 1;
        }
    }
    let reported: Vec<(u64, Ballot, Option<V>)> = parts
        .into_iter()
        .flat_map(|(_, _, e)| e)
        .map(|e| (e.slot, e.ballot, e.value))
        .collect();
    let expected: Vec<_> = VALUES
        .iter()
        .zip(0..)
        .map(|(s, slot)| (slot, LEADER, Some(v(s))))
        .collect();
    assert_eq!(reported, expected);
}

/// A buffer large enough for the whole promise sends it whole.
#[test]
fn a_promise_that_fits_leaves_whole() {
    let parts = parts_through(4096);
    assert_eq!(parts.len(), 1);
    assert!(parts[0].1);
    assert_eq!(parts[0].2.len(), 6);
}

/// Node 1, a candidate of round 1 over slots 0..8, with its own promise
/// durable (a quorum of three is itself and one peer).
fn candidate(bug: bool) -> (R, Ballot) {
    let c = config(1, None)
        .to_builder()
        .inject(bug.then_some(paxos_core::fault_injection::Bug::CountPartialPromise))
        .build()
        .unwrap();
    let mut r = R::new(c, at(0)).unwrap();
    r.handle_timeout(at(1_000));
    sync(&mut r, at(1_000));
    sent(&mut r);
    assert!(r.is_candidate());
    let ballot = r.promised().unwrap();
    (r, ballot)
}

fn part(r: &mut R, ballot: Ballot, first: u64, complete: bool, entries: &[(u64, &str)]) {
    let header = Header::Promise {
        ballot,
        decided: 0,
        beyond: false,
        first,
        complete,
    };
    let entries: Vec<PromisedEntry<V>> = entries
        .iter()
        .map(|&(slot, s)| PromisedEntry {
            slot,
            ballot: LEADER,
            value: Some(v(s)),
        })
        .collect();
    r.handle_message(at(1_001), NodeId(2), &frame_of(&header, &entries))
        .into_result()
        .unwrap();
}

/// The first part alone does not make a leader, nor does a repeat of it or
/// a last part that leaves a gap; the part that fills the gap does, and the
/// new leader re-proposes the votes of every part (here slot 3's, reported
/// only in the part that came last).
#[test]
fn a_candidate_counts_a_promise_once_its_parts_answer_for_the_window() {
    let (mut r, ballot) = candidate(false);
    part(&mut r, ballot, 0, false, &[(0, "a")]);
    assert!(r.is_candidate(), "counted after the first part");
    part(&mut r, ballot, 0, false, &[(0, "a")]);
    part(&mut r, ballot, 5, true, &[]);
    assert!(r.is_candidate(), "counted with slots 1..5 unanswered");
    part(&mut r, ballot, 1, false, &[(3, "c"), (4, "d")]);
    assert!(r.is_leader());
    let values: Vec<Option<V>> = appended(&mut r).into_iter().flat_map(|(_, v)| v).collect();
    assert_eq!(values, vec![Some(v("a")), None, None, Some(v("c")), Some(v("d"))]);
}

/// Parts may arrive in any order (a datagram network reorders them): the
/// promise counts once they answered for every slot, whatever the order.
#[test]
fn parts_in_reverse_order_make_a_whole_promise() {
    let (mut r, ballot) = candidate(false);
    part(&mut r, ballot, 4, true, &[(6, "f")]);
    part(&mut r, ballot, 2, false, &[(3, "c")]);
    assert!(r.is_candidate());
    part(&mut r, ballot, 0, false, &[(1, "b")]);
    assert!(r.is_leader());
    let values: Vec<Option<V>> = appended(&mut r).into_iter().flat_map(|(_, v)| v).collect();
    assert_eq!(
        values,
        vec![None, Some(v("b")), None, Some(v("c")), None, None, Some(v("f"))]
    );
}

/// With the candidate counting the first part (the injected fault), the
/// vote reported in the later part is lost: slot 3 is re-proposed as
/// nothing, and a value a quorum may have chosen there could be replaced.
/// The simulator and TLC find the violation of agreement this leads to.
#[test]
fn counting_the_first_part_loses_the_votes_of_the_rest() {
    let (mut r, ballot) = candidate(true);
    part(&mut r, ballot, 0, false, &[(0, "a")]);
    assert!(r.is_leader());
    let values: Vec<Option<V>> = appended(&mut r).into_iter().flat_map(|(_, v)| v).collect();
    assert_eq!(values, vec![Some(v("a"))]);
}
