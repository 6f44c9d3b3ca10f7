//! Leader leases: a leader reads locally only while a quorum's echo of its
//! send time is younger than the lease, and a node restarted with leases
//! promises nothing until any lease it may have granted has ended.

use paxos_core::replica::wire::Header;
use paxos_core::replica::LeaseConfig;
use paxos_core::time::{Duration, Instant};
use paxos_core::{Ballot, NodeId};

mod common;
use common::*;

/// A leader with a lease, its promise durable and nothing to recover.
fn leasing_leader() -> R {
    let c = config(1, Some(1))
        .to_builder()
        .lease(LeaseConfig::new(Duration::from_millis(100), 0))
        .build()
        .unwrap();
    let mut r = R::new(c, at(0)).unwrap();
    sync(&mut r, at(0));
    r
}

/// The lease counts from the send time a quorum echoed and ends exactly
/// `safe_duration` later; the leader's own vote alone is no quorum.
#[test]
fn a_lease_holds_until_exactly_its_safe_duration_after_the_echoed_stamp() {
    let mut r = leasing_leader();
    assert!(r.is_leader());
    assert!(!r.can_read_locally(at(1)), "no follower has answered yet");
    let stamp = at(10).as_micros();
    let echo = Header::Accepted {
        ballot: Ballot::new(0, NodeId(1)),
        first: 0,
        count: 0,
        stamp,
    };
    r.handle_message(at(12), NodeId(2), &bare(&echo)).into_result().unwrap();
    assert!(r.can_read_locally(at(12)));
    let end = at(10) + Duration::from_millis(100);
    assert!(r.can_read_locally(Instant::from_micros(end.as_micros() - 1)));
    assert!(!r.can_read_locally(end));
}

#[test]
fn a_restarted_node_with_leases_promises_nothing_for_one_lease() {
    let lease = LeaseConfig::new(Duration::from_millis(200), 1_000);
    let c = config(2, None).to_builder().lease(lease).build().unwrap();
    let mut r = R::new(c.clone(), at(0)).unwrap();
    let mut disk = Vec::new();
    let ballot = Ballot::new(1, NodeId(1));
    assert!(promised(prepare_saving(&mut r, at(0), ballot.node, ballot, &mut disk)));

    let mut r = R::recover(c, at(1_000), disk.iter().map(|b| b.as_slice()), 0).unwrap();
    assert!(refused(prepare(&mut r, at(1_199), Ballot::new(2, NodeId(3)))));
    assert!(promised(prepare(&mut r, at(1_200), Ballot::new(2, NodeId(3)))));
}
