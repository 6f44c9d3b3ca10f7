//! A leader's decided watermark is what its appends announce as `commit`,
//! and a follower reads it as "every slot below it that you hold under my
//! ballot is decided". So it may cover only values chosen under the
//! leader's own ballot: no side path (a catch-up answer, a snapshot) moves
//! it while the node leads or campaigns.
//!
//! The script is the agreement violation an outside simulator found:
//! five nodes, node 1 leads (1, 1) with {1, 3, 5} and proposes `111` at
//! slot 0, which only node 5 accepts; node 2 leads (1, 2) with {2, 3, 4}
//! and decides `222` there; a catch-up answer node 2 sent long ago, held
//! back by the network, reaches node 1 while it still leads.

use paxos_core::replica::wire::{decode_header, Header};
use paxos_core::replica::Handled;
use paxos_core::replica::{Config, Replica};
use paxos_core::time::Instant;
use paxos_core::{Ballot, NodeId};

mod common;
use common::{at, frame, sync, v, V};

type R5 = Replica<V, 5, 8>;
const IDS: [NodeId; 5] = [NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5)];

fn config(id: u8) -> Config<5> {
    Config::new(NodeId(id), &IDS).unwrap()
}

/// Every frame `r` sends now, with its recipients.
fn sent(r: &mut R5) -> Vec<(Vec<NodeId>, Vec<u8>)> {
    let mut buf = vec![0u8; R5::MAX_MESSAGE_SIZE];
    let mut out = Vec::new();
    while let Some(t) = r.poll_transmit(&mut buf) {
        out.push((t.to.iter().collect(), buf[..t.len].to_vec()));
    }
    out
}

fn header(frame: &[u8]) -> Header {
    decode_header::<Header>(frame).unwrap().0
}

/// Delivers every frame `from` sends now that is addressed to `to`.
fn deliver(from: &mut R5, to: &mut R5, now: Instant) {
    sync(from, now);
    for (recipients, frame) in sent(from) {
        if recipients.contains(&to.id()) {
            let _ = to.handle_message(now, from.id(), &frame);
        }
    }
    sync(to, now);
}

/// Node 1 leading (1, 1) with slot 0 = `111` accepted by node 5 only;
/// returns (node 1, node 5).
fn node_1_leads_with_an_unchosen_proposal(bug: bool) -> (R5, R5) {
    #[cfg(feature = "bug-injection")]
    let c1 = config(1)
        .to_builder()
        .inject(bug.then_some(paxos_core::fault_injection::Bug::LeaderLearns))
        .build()
        .unwrap();
    #[cfg(not(feature = "bug-injection"))]
    let c1 = {
        let _ = bug;
        config(1)
    };
    let mut n1 = R5::new(c1, at(0)).unwrap();
    let mut n5 = R5::new(config(5), at(0)).unwrap();
    n1.handle_timeout(at(1_000));
    let ballot = n1.promised().unwrap();
    assert_eq!(ballot, Ballot::new(1, NodeId(1)));
    assert!(n1.is_candidate() && !n5.is_candidate());
    deliver(&mut n1, &mut n5, at(1_000));
    deliver(&mut n5, &mut n1, at(1_000));
    let promise = Header::Promise {
        ballot,
        decided: 0,
        beyond: false,
        first: 0,
        complete: true,
    };
    assert_eq!(
        n1.handle_message(at(1_000), NodeId(3), &frame(&promise, &[])),
        Handled::Used
    );
    assert!(n1.is_leader() && !n1.is_candidate());
    n1.propose(at(1_001), v("111")).unwrap();
    deliver(&mut n1, &mut n5, at(1_001));
    assert_eq!(n5.decided(), 0);
    for node in [&n1, &n5] {
        assert_eq!(node.entry(0), Some((Some(ballot), Some(&v("111")))));
        assert_eq!(node.entry(1), None);
    }
    (n1, n5)
}

/// The held-back answer to a catch-up node 1 asked before it campaigned:
/// node 2 says slot 0 is decided with `222`.
fn held_back_learn(n1: &mut R5, now: Instant) {
    let learn = Header::Learn { first: 0 };
    assert_eq!(
        n1.handle_message(now, NodeId(2), &frame(&learn, &["222"])),
        Handled::Used
    );
}

#[test]
fn a_leader_drops_a_catch_up_answer_and_its_commit_covers_only_its_own_ballot() {
    let (mut n1, mut n5) = node_1_leads_with_an_unchosen_proposal(false);
    held_back_learn(&mut n1, at(1_002));
    assert_eq!(n1.decided(), 0, "the leader's watermark did not move");
    assert_eq!(n1.counters().stale, 1);
    assert!(n1.is_leader());
    // The next heartbeat announces what node 1's ballot decided: nothing.
    n1.handle_timeout(at(1_200));
    sync(&mut n1, at(1_200));
    for (_, frame) in sent(&mut n1) {
        if let Header::Append { commit, .. } = header(&frame) {
            assert_eq!(commit, 0);
        }
        let _ = n5.handle_message(at(1_200), NodeId(1), &frame);
    }
    assert_eq!(n5.decided(), 0, "node 5's vote for 111 is not decided");
    // Nor can node 1 propose into the slot node 2 decided.
    let id = n1.propose(at(1_201), v("333")).unwrap();
    sync(&mut n1, at(1_201));
    let appends: Vec<_> = sent(&mut n1).into_iter().map(|(_, f)| header(&f)).collect();
    assert!(
        appends
            .iter()
            .all(|h| !matches!(h, Header::Append { first: 0, commit, .. } if *commit > 0)),
        "{appends:?} ({id:?})"
    );
}

#[test]
fn a_snapshot_installed_at_a_leader_makes_it_step_down_first() {
    let (mut n1, mut n5) = node_1_leads_with_an_unchosen_proposal(false);
    // A follower that installs one keeps following its leader.
    let mut follower = n5.clone();
    follower.install_snapshot(at(1_002), 1).unwrap();
    assert_eq!((follower.decided(), follower.leader()), (1, Some(NodeId(1))));
    // The application installs a snapshot from node 2 covering slot 0.
    n1.install_snapshot(at(1_002), 1).unwrap();
    assert!(!n1.is_leader(), "a node that jumps its log no longer leads");
    assert_eq!(n1.decided(), 1);
    n1.handle_timeout(at(1_200));
    sync(&mut n1, at(1_200));
    for (_, frame) in sent(&mut n1) {
        assert!(!matches!(header(&frame), Header::Append { .. }));
        let _ = n5.handle_message(at(1_200), NodeId(1), &frame);
    }
    assert_eq!(n5.decided(), 0);
}

/// The same script with the old rule: node 5 decides `111` for slot 0,
/// which nodes 2, 3 and 4 decided as `222`.
#[cfg(feature = "bug-injection")]
#[test]
fn with_the_old_rule_the_script_breaks_agreement() {
    let (mut n1, mut n5) = node_1_leads_with_an_unchosen_proposal(true);
    held_back_learn(&mut n1, at(1_002));
    assert_eq!(n1.decided(), 1);
    n1.handle_timeout(at(1_200));
    deliver(&mut n1, &mut n5, at(1_200));
    assert_eq!(n5.decided_value(0), Some(Some(&v("111"))));
}
