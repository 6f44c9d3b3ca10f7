//! Practical-layer tests written to kill mutants that cargo-mutants found
//! surviving (see `docs/mutants.md`).

use paxos_core::practical::Acceptor;

#[test]
fn an_acceptor_starts_active_and_reports_its_mode() {
    let mut a = Acceptor::<u8>::new();
    assert!(a.is_active());
    a.set_active(false);
    assert!(!a.is_active());
    a.set_active(true);
    assert!(a.is_active());
}
