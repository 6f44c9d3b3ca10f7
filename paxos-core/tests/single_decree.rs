//! The single-decree practical layer (`paxos_core::practical`) beyond the
//! seed's suite: the roles' active mode, the outbox's pending persist,
//! leadership a failure detector cleared, and a refused `Node::prepare`. (Parity with the seed library's
//! tests: `seed_essential.rs`, `seed_practical.rs`.)

use paxos_core::practical::{Acceptor, Error, Node, Outbox, Persist, Proposer, Transmit};
use paxos_core::{Ballot, Message, NodeId};

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
    assert_eq!(out.poll_transmit(), None, "the promise waits for its save");
    let Some(Persist { seq, .. }) = out.poll_persist() else {
        panic!("the promise is saved first")
    };
    assert!(out.persist_pending(), "polled is not confirmed");
    out.persisted(seq).unwrap();
    assert!(!out.persist_pending());
    assert!(
        matches!(out.poll_transmit(), Some(Transmit { .. })),
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
    while out.poll_persist().is_some() || out.poll_transmit().is_some() || out.poll_event().is_some() {}

    p.clear_leader();
    assert!(!p.is_leader());
    // A third promise for the same round crosses no quorum boundary: the
    // round already had its quorum, and leadership needs a new one.
    p.receive_promise(c, ballot, None, &mut out).unwrap();
    assert!(!p.is_leader());
    assert_eq!(out.poll_persist(), None);
    assert_eq!(out.poll_event(), None, "no second LeadershipAcquired");
    assert_eq!(out.poll_transmit(), None, "no Accept");
}

/// `Node::prepare(true)` persists the new round, then queues the
/// `Prepare`: when the outbox is full it must refuse before either, not
/// between them.
#[test]
fn a_prepare_refused_for_a_full_outbox_changes_nothing() {
    let mut node = Node::<u8, 3>::new(NodeId(1), 2);
    // Each new round adds one persist and one held `Prepare`: fill up
    // without draining until the outbox refuses.
    let mut rounds = 0;
    let refused = loop {
        let before = node.durable_state();
        match node.prepare(true) {
            Ok(()) => rounds += 1,
            Err(error) => break (error, before),
        }
    };
    let (error, before) = refused;
    assert_eq!(error, Error::Busy);
    assert_eq!(node.durable_state(), before, "the round was not recorded");
    assert_eq!(node.durable_state().round, rounds);
    let mut persists = 0;
    while let Some(persist) = node.poll_persist() {
        persists += 1;
        node.persisted(persist.seq).unwrap();
    }
    let mut prepares = Vec::new();
    while let Some(transmit) = node.poll_transmit() {
        prepares.push(transmit.message);
    }
    assert_eq!(
        persists, rounds,
        "one persist per accepted round, none for the refused one"
    );
    assert_eq!(prepares.len() as u32, rounds);
    assert_eq!(
        prepares.last(),
        Some(&Message::Prepare {
            ballot: Ballot::new(rounds, NodeId(1))
        })
    );
    // With room again, the next round is the one that was refused.
    node.prepare(true).unwrap();
    assert_eq!(node.durable_state().round, rounds + 1);
}
