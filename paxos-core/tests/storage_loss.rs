//! A node that lost its storage forgot what it promised and accepted.
//! Counting its promises or votes again could let a quorum that misses a
//! chosen value's voters choose another, and the configured initial
//! leader could even lead round 0 again without phase 1. `Replica::new`
//! is the cluster's first boot; a node recovered from no records is an
//! amnesiac learner: it never promises, accepts, campaigns or leads, and
//! learns decided values from the others.
//!
//! The script is the one an outside simulator found: three nodes, `X`
//! decided at slot 0 by {1, 2} while node 3 missed it; node 1's storage
//! is lost and it restarts while node 2 is cut off.

use paxos_core::replica::wire::{decode_header, Header};
use paxos_core::replica::Config;
use paxos_core::replica::Handled;
use paxos_core::time::Instant;
use paxos_core::{Ballot, NodeId};

mod common;
use common::{at, config, frame, sync, v, R};

/// Every frame `r` sends now.
fn frames(r: &mut R) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; R::MAX_MESSAGE_SIZE];
    let mut out = Vec::new();
    while let Some(t) = r.poll_transmit(&mut buf) {
        out.push(buf[..t.len].to_vec());
    }
    out
}

fn header(frame: &[u8]) -> Header {
    decode_header::<Header>(frame).unwrap().0
}

/// Node 1 decides `X` at slot 0 with node 2, then loses its storage and
/// restarts (`c` is its configuration after the restart). Returns node 1
/// restarted and node 3, which never heard of `X`.
fn x_decided_then_node_1_wiped(c: Config<3>) -> (R, R) {
    let mut n1 = R::new(config(1, Some(1)), at(0)).unwrap();
    let mut n2 = R::new(config(2, Some(1)), at(0)).unwrap();
    let n3 = R::new(config(3, Some(1)), at(0)).unwrap();
    n1.propose(at(1), v("X")).unwrap();
    let exchange = |from: &mut R, to: &mut R, now: Instant| {
        sync(from, now);
        for f in frames(from) {
            let _ = to.handle_message(now, from.id(), &f);
        }
        sync(to, now);
    };
    exchange(&mut n1, &mut n2, at(1));
    exchange(&mut n2, &mut n1, at(1));
    assert_eq!(n1.decided(), 1);
    let wiped = R::recover(c, at(2_000), [], 0).unwrap();
    (wiped, n3)
}

#[test]
fn a_node_restarted_without_its_storage_never_votes_or_leads() {
    let (mut n1, mut n3) = x_decided_then_node_1_wiped(config(1, Some(1)));
    assert!(n1.is_amnesiac() && !n1.is_leader());
    assert_eq!(n1.promised(), None);
    // Long past any election timeout: no campaign, no promise.
    for t in [3_000, 10_000, 60_000] {
        n1.handle_timeout(at(t));
        sync(&mut n1, at(t));
        assert!(frames(&mut n1).is_empty(), "no prepare at {t} ms");
    }
    // A candidate's prepare is refused; an append is not voted for, but its
    // watermark makes the node ask for the decided values.
    n3.handle_timeout(at(61_000));
    sync(&mut n3, at(61_000));
    let ballot = n3.promised().unwrap();
    for f in frames(&mut n3) {
        assert_eq!(n1.handle_message(at(61_000), NodeId(3), &f), Handled::Used);
    }
    sync(&mut n1, at(61_000));
    let replies: Vec<_> = frames(&mut n1).iter().map(|f| header(f)).collect();
    assert!(matches!(replies[..], [Header::Nack { .. }]), "{replies:?}");
    let leader = Ballot::new(5, NodeId(2));
    // A heartbeat whose watermark it has reached asks for nothing.
    let level = Header::Append {
        ballot: leader,
        commit: 0,
        first: 0,
        stamp: 0,
    };
    assert_eq!(
        n1.handle_message(at(61_001), NodeId(2), &frame(&level, &[])),
        Handled::Used
    );
    sync(&mut n1, at(61_001));
    assert!(frames(&mut n1).is_empty());
    let heartbeat = Header::Append {
        ballot: leader,
        commit: 1,
        first: 1,
        stamp: 0,
    };
    assert_eq!(
        n1.handle_message(at(61_001), NodeId(2), &frame(&heartbeat, &[])),
        Handled::Used
    );
    sync(&mut n1, at(61_001));
    let replies: Vec<_> = frames(&mut n1).iter().map(|f| header(f)).collect();
    assert_eq!(replies, [Header::CatchUp { from: 0 }], "{ballot:?}");
    assert_eq!(
        n1.handle_message(at(61_002), NodeId(2), &frame(&Header::Learn { first: 0 }, &["X"])),
        Handled::Used
    );
    assert_eq!(n1.decided_value(0), Some(Some(&v("X"))));
    // It stays a learner across restarts: its first record says so.
    let restarted_from_mark = {
        let mut fresh = R::recover(config(1, Some(1)), at(0), [], 0).unwrap();
        let mut buf = vec![0u8; 512];
        let p = fresh.poll_persist(&mut buf).unwrap();
        R::recover(config(1, Some(1)), at(1), [&buf[..p.len]], 0).unwrap()
    };
    assert!(restarted_from_mark.is_amnesiac());
    // A batch that holds no record is no record.
    let empty = [paxos_core::codec::FORMAT_VERSION];
    assert!(R::recover(config(1, Some(1)), at(1), [&empty[..]], 0)
        .unwrap()
        .is_amnesiac());
}

/// With the old rule the wiped node boots as new: it leads round 0 again,
/// and node 3 accepts `Y` for the slot {1, 2} decided as `X`.
#[cfg(feature = "bug-injection")]
#[test]
fn with_the_old_rule_the_wiped_node_decides_another_value() {
    let c = config(1, Some(1))
        .to_builder()
        .inject(paxos_core::fault_injection::Bug::AmnesiacVotes)
        .build()
        .unwrap();
    let (mut n1, mut n3) = x_decided_then_node_1_wiped(c);
    assert!(n1.is_leader());
    n1.propose(at(2_001), v("Y")).unwrap();
    for _ in 0..2 {
        sync(&mut n1, at(2_001));
        for f in frames(&mut n1) {
            let _ = n3.handle_message(at(2_001), NodeId(1), &f);
        }
        sync(&mut n3, at(2_001));
        for f in frames(&mut n3) {
            let _ = n1.handle_message(at(2_001), NodeId(3), &f);
        }
    }
    sync(&mut n1, at(2_001));
    assert_eq!(n1.decided_value(0), Some(Some(&v("Y"))), "X was decided there");
}
