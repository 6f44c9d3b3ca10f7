//! Time: the deadline `poll_timeout` asks for and what `handle_timeout`
//! does at it: heartbeats, resending undecided values after the
//! retransmission timeout, announcing a decision after the commit delay,
//! and writing a waiting commit record.

use paxos_core::replica::wire::Header;
use paxos_core::time::{Duration, Instant};
use paxos_core::{Ballot, Bytes, NodeId};

mod common;
use common::*;

/// The leader's next deadline while it is idle and its promise durable is
/// its heartbeat, one interval after the last broadcast, not one interval
/// after the latest input (as if the promise were not durable).
#[test]
fn an_idle_leaders_deadline_is_one_heartbeat_after_its_last_broadcast() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    let out = sent_with_values(&mut r);
    assert!(matches!(out[..], [(Header::Append { .. }, _)]), "{out:?}");
    r.handle_timeout(at(30));
    assert!(sent_with_values(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), at(50));
}

/// Until its promise is durable a leader sends nothing, so its deadline
/// stays one heartbeat ahead of now instead of falling into the past and
/// making the driver spin.
#[test]
fn a_leader_whose_promise_is_not_durable_keeps_its_deadline_ahead_of_now() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    r.handle_timeout(at(60));
    assert!(sent_with_values(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), at(110));
    sync(&mut r, at(60));
    assert_eq!(
        sent_with_values(&mut r).len(),
        1,
        "the announcement leaves once durable"
    );
}

#[test]
fn a_leader_resends_undecided_values_after_the_retransmission_timeout_only() {
    let mut r = R::new(config(2, Some(2)), at(0)).unwrap();
    sync(&mut r, at(0));
    r.propose(at(10), v("a")).unwrap();
    sync(&mut r, at(10));
    let first = appended(&mut r);
    assert!(first.iter().any(|(_, values)| values == &[Some(v("a"))]), "{first:?}");
    r.handle_timeout(at(60));
    let heartbeat = appended(&mut r);
    assert!(
        !heartbeat.is_empty() && heartbeat.iter().all(|(_, v)| v.is_empty()),
        "{heartbeat:?}"
    );
    // The clock starts with the proposal at 10 ms (the pipeline was idle).
    r.handle_timeout(at(109));
    assert!(appended(&mut r).is_empty());
    r.handle_timeout(at(110));
    let resent = appended(&mut r);
    assert!(
        resent
            .iter()
            .any(|(first, values)| *first == 0 && values == &[Some(v("a"))]),
        "{resent:?}"
    );
}

/// The retransmission timeout is how long the leader waits for votes after
/// sending an append: a proposal made after an idle spell longer than that
/// timeout is sent once, and resent only if no vote came for a full
/// timeout, not at the very next tick. Regression test: the clock used to
/// run from the last decision, so such a proposal was sent twice at once.
#[test]
fn a_proposal_after_an_idle_spell_waits_a_full_timeout_before_it_is_resent() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    sent_with_values(&mut r);
    r.propose(at(1), v("x")).unwrap();
    sync(&mut r, at(1));
    sent_with_values(&mut r);
    accepted_now(&mut r, at(2), 2, LEADER, 0, 1);
    assert_eq!(r.decided(), 1);
    // Idle: heartbeats only, acknowledged.
    for ms in [50, 100, 150, 200, 250, 300] {
        r.handle_timeout(at(ms));
        assert_eq!(sent_with_values(&mut r).len(), 1);
        accepted_now(&mut r, at(ms), 2, LEADER, 1, 0);
    }
    r.propose(at(301), v("y")).unwrap();
    sync(&mut r, at(301));
    let out = sent_with_values(&mut r);
    assert!(matches!(out[..], [(Header::Append { first: 1, .. }, ref values)] if values.len() == 1));
    // Not resent at once (it was, before the fix: the clock ran from the
    // decision at 2 ms, so the deadline was already past)...
    r.handle_timeout(at(302));
    assert!(sent_with_values(&mut r).is_empty());
    // ...nor at the next heartbeat...
    assert_eq!(r.poll_timeout(), at(351));
    r.handle_timeout(at(351));
    let out = sent_with_values(&mut r);
    assert!(
        matches!(out[..], [(Header::Append { first: 2, .. }, ref values)] if values.is_empty()),
        "{out:?}"
    );
    // ...but once a full timeout passed without a vote.
    r.handle_timeout(at(401));
    let out = sent_with_values(&mut r);
    assert!(
        matches!(out[..], [(Header::Append { first: 1, .. }, ref values)] if values.len() == 1),
        "{out:?}"
    );
}

#[test]
fn a_leader_with_undecided_slots_wakes_for_the_retransmission() {
    let (mut r, ballot) = leader();
    r.propose(at(10), v("a")).unwrap();
    sync(&mut r, at(10));
    sent(&mut r);
    r.handle_timeout(at(80));
    sent(&mut r);
    assert_eq!(r.poll_timeout(), at(110), "before the heartbeat at 130 ms");
    // Once decided, the new watermark goes out within an eighth of a
    // heartbeat interval.
    accepted(&mut r, at(90), NodeId(1), ballot, 0, 1);
    assert_eq!(r.decided(), 1);
    assert_eq!(r.poll_timeout(), at(90) + Duration::from_micros(6_250));
}

/// A leader announces a decision at its first tick past the commit delay,
/// however late the driver calls it, even when the heartbeat is not due
/// (here the heartbeat interval is longer than the retransmission timeout):
/// restarting the retransmission clock while nothing is undecided must not
/// postpone the commit.
#[test]
fn a_late_tick_still_announces_a_decision_the_followers_have_not_heard() {
    let c = config(1, Some(1))
        .to_builder()
        .heartbeat_interval(Duration::from_millis(200))
        .retransmit_timeout(Duration::from_millis(100))
        .election_timeout(Duration::from_millis(1_000))
        .build()
        .unwrap();
    let mut r = R::new(c, at(0)).unwrap();
    sync(&mut r, at(0));
    assert_eq!(sent_with_values(&mut r).len(), 1, "the announcement");
    r.propose(at(1), v("x")).unwrap();
    sync(&mut r, at(1));
    assert_eq!(sent_with_values(&mut r).len(), 1, "the append");
    accepted_now(&mut r, at(2), 2, LEADER, 0, 1);
    assert_eq!(r.decided(), 1);
    // The commit delay (an eighth of the heartbeat) has not passed yet.
    assert!(sent_with_values(&mut r).is_empty());
    r.handle_timeout(at(150));
    let out = sent_with_values(&mut r);
    assert!(matches!(out[..], [(Header::Append { commit: 1, .. }, _)]), "{out:?}");
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
    r.handle_message(at(5), NodeId(2), &bare(&echo)).into_result().unwrap();
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

/// A one-node leader has nobody to send heartbeats or commits to: its
/// deadline must still move on, idle and after a decision, or a driver
/// that sleeps until `poll_timeout` spins. It stayed a heartbeat after
/// the start for ever, and a driver ran at full CPU doing nothing.
#[test]
fn a_one_node_leaders_deadline_moves_on() {
    type Solo = paxos_core::replica::Replica<V, 1, 8>;
    let mut r: Solo = solo_leader();
    let mut buf = vec![0u8; 1024];
    let mut settle = |r: &mut Solo, now| {
        r.handle_timeout(now);
        while r.poll_transmit(&mut buf).is_some() {}
        sync(r, now);
        while r.poll_transmit(&mut buf).is_some() {}
        while r.poll_event().is_some() {}
    };
    for ms in [1_000, 2_000, 2_001] {
        settle(&mut r, at(ms));
        assert!(
            r.poll_timeout() > at(ms),
            "idle at {ms} ms: deadline {:?} passed",
            r.poll_timeout()
        );
    }
    r.propose(at(3_000), v("x")).unwrap();
    settle(&mut r, at(3_000));
    assert_eq!(r.decided(), 1);
    settle(&mut r, at(3_500));
    assert!(
        r.poll_timeout() > at(3_500),
        "after a decision: deadline {:?} passed",
        r.poll_timeout()
    );
}
