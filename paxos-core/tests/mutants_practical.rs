//! Practical-layer tests written to kill mutants that cargo-mutants found
//! surviving (see `docs/mutants.md`).

use paxos_core::practical::{Acceptor, Outbox, Output};
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
