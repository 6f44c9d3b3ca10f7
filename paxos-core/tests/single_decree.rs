//! The single-decree practical layer (`paxos_core::practical`) beyond the
//! seed's suite: the roles' active mode, the outbox's pending persist, and
//! leadership a failure detector cleared. (Parity with the seed library's
//! tests: `seed_essential.rs`, `seed_practical.rs`.)

use paxos_core::practical::{Acceptor, Outbox, Output, Proposer};
use paxos_core::{Ballot, NodeId};

#[test]
fn an_acceptor_starts_active_and_reports_its_mode() {
    let mut a = Acceptor::<u8>::new();
    assert!(a.is_active());
    a.set_active(false);
    assert!(!a.is_active());
    a.set_active(true);
    assert!(a.is_active());
}

#[test]
fn an_outbox_reports_a_persist_pending_until_it_is_confirmed() {
    let mut out = Outbox::<u8>::new();
    assert!(!out.persist_pending());
    let mut a = Acceptor::<u8>::new();
    a.receive_prepare(NodeId(2), Ballot::new(1, NodeId(2)), &mut out)
        .unwrap();
    assert!(out.persist_pending(), "the promise is not durable yet");
    let Some(Output::Persist { seq, .. }) = out.poll() else {
        panic!("the promise is saved first")
    };
    assert!(out.persist_pending(), "polled is not confirmed");
    out.persisted(seq).unwrap();
    assert!(!out.persist_pending());
    assert!(
        matches!(out.poll(), Some(Output::Send { .. })),
        "the promise leaves once durable"
    );
}

#[test]
fn a_proposer_starts_active_and_reports_its_mode() {
    let mut p = Proposer::<u8>::new(NodeId(1), 2);
    assert!(p.is_active());
    p.set_active(false);
    assert!(!p.is_active());
}

#[test]
fn leadership_cleared_by_a_failure_detector_is_not_regained_by_late_promises() {
    let (a, b, c) = (NodeId(1), NodeId(2), NodeId(3));
    let mut out = Outbox::<u8>::new();
    let mut p = Proposer::new(a, 2);
    p.set_proposal(7, &mut out).unwrap();
    p.prepare(true, &mut out).unwrap();
    let ballot = p.ballot().unwrap();
    p.receive_promise(a, ballot, None, &mut out).unwrap();
    p.receive_promise(b, ballot, None, &mut out).unwrap();
    assert!(p.is_leader());
    while out.poll().is_some() {}

    p.clear_leader();
    assert!(!p.is_leader());
    // A third promise for the same round crosses no quorum boundary: the
    // round already had its quorum, and leadership needs a new one.
    p.receive_promise(c, ballot, None, &mut out).unwrap();
    assert!(!p.is_leader());
    assert_eq!(out.poll(), None, "no second LeadershipAcquired, no Accept");
}
