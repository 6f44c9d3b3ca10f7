//! The keyed node (`paxos_core::keyed::KeyedNode`): registers that arrive
//! from outside the log, as a snapshot installed at run time or handed to
//! recovery. A register is written once: the first pair for a key wins.

use paxos_core::keyed::KeyedNode;
use paxos_core::replica::Config;
use paxos_core::time::Instant;
use paxos_core::{Bytes, NodeId};

type B = Bytes<8>;

type Node = KeyedNode<B, B, 3, 8, 4>;

fn b(s: &str) -> B {
    B::try_from(s).unwrap()
}

fn config() -> Config<3> {
    Config::new(NodeId(2), &[NodeId(1), NodeId(2), NodeId(3)]).unwrap()
}

#[test]
fn an_installed_snapshot_fills_empty_registers_first_pair_wins_and_moves_applied() {
    let now = Instant::ZERO;
    let mut n = Node::new(config(), now).unwrap();
    n.install_snapshot(now, 5, [(b("k"), b("one")), (b("k"), b("two")), (b("j"), b("three"))])
        .unwrap();
    assert_eq!(n.local(&b("k")), Some(&b("one")), "a register is written once");
    assert_eq!(n.local(&b("j")), Some(&b("three")));
    assert_eq!(n.registers().count(), 2);
    assert_eq!(n.applied(), 5);
    assert_eq!(n.replica().log_start(), 5, "the replica jumped with the registers");

    // A later snapshot never overwrites a register that holds a value.
    n.install_snapshot(now, 7, [(b("k"), b("four")), (b("m"), b("five"))])
        .unwrap();
    assert_eq!(n.local(&b("k")), Some(&b("one")));
    assert_eq!(n.local(&b("m")), Some(&b("five")));
    assert_eq!(n.applied(), 7);
}

#[test]
fn recovery_from_a_snapshot_keeps_its_registers_first_pair_wins() {
    let now = Instant::ZERO;
    let registers = [(b("k"), b("one")), (b("k"), b("two")), (b("j"), b("three"))];
    let n = Node::recover_from(config(), now, 4, registers, core::iter::empty::<&[u8]>()).unwrap();
    assert_eq!(n.local(&b("k")), Some(&b("one")));
    assert_eq!(n.local(&b("j")), Some(&b("three")));
    assert_eq!(n.registers().count(), 2);
    assert_eq!(n.applied(), 4);
}
