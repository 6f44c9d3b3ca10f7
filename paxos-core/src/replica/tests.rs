//! Unit tests of the replica's rules, on a small synchronous cluster.

extern crate std;

use super::*;
use crate::time::Duration;
use crate::value::Bytes;
use std::collections::VecDeque;
use std::string::String;
use std::vec;
use std::vec::Vec;

type V = Bytes<16>;
type R = Replica<V, 5, 8>;

fn v(s: &str) -> V {
    V::try_from(s).unwrap()
}

/// A synchronous cluster: FIFO delivery, persists confirmed at once unless
/// `hold_persists`, time advanced by hand.
struct Cluster {
    nodes: Vec<R>,
    up: Vec<bool>,
    /// Durable records of each node (what survives a crash).
    disk: Vec<Vec<Vec<u8>>>,
    /// Decided values delivered by each node, by slot.
    delivered: Vec<Vec<(Slot, Option<V>)>>,
    wire: VecDeque<(NodeId, NodeId, Vec<u8>)>,
    now: Instant,
    hold_persists: bool,
    /// (from, to) pairs whose messages are dropped.
    cut: Vec<(NodeId, NodeId)>,
    events: Vec<(NodeId, String)>,
    /// (asked, peer, from) of every SnapshotNeeded.
    snapshots: Vec<(NodeId, NodeId, Slot)>,
    /// Lease configuration for new nodes.
    lease: Option<LeaseConfig>,
}

fn ids(n: u8) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}

impl Cluster {
    fn new(n: u8, initial_leader: Option<u8>) -> Self {
        let members = ids(n);
        let nodes = members
            .iter()
            .map(|&id| R::new(Self::config(id, &members, initial_leader), Instant::ZERO).unwrap())
            .collect();
        Cluster {
            nodes,
            up: vec![true; n as usize],
            disk: vec![Vec::new(); n as usize],
            delivered: vec![Vec::new(); n as usize],
            wire: VecDeque::new(),
            now: Instant::ZERO,
            hold_persists: false,
            cut: Vec::new(),
            events: Vec::new(),
            snapshots: Vec::new(),
            lease: None,
        }
    }

    fn with_lease(n: u8) -> Self {
        let mut c = Cluster::new(n, None);
        let lease = LeaseConfig::new(Duration::from_millis(200), 1_000);
        for node in &mut c.nodes {
            let config = node.config().to_builder().lease(lease).build().unwrap();
            *node = R::new(config, Instant::ZERO).unwrap();
        }
        c.lease = Some(lease);
        c
    }

    fn config(id: NodeId, members: &[NodeId], initial_leader: Option<u8>) -> Config<5> {
        Config::builder(id, members)
            .initial_leader(initial_leader.map(NodeId))
            .seed(u64::from(id.0) * 7919)
            .build()
            .unwrap()
    }

    fn index(&self, id: u8) -> usize {
        usize::from(id) - 1
    }

    fn node(&mut self, id: u8) -> &mut R {
        let i = self.index(id);
        &mut self.nodes[i]
    }

    /// Drains every node's outputs onto the wire and into the records.
    fn drain(&mut self) {
        let mut buf = vec![0u8; R::MAX_MESSAGE_SIZE];
        for i in 0..self.nodes.len() {
            if !self.up[i] {
                continue;
            }
            let node = &mut self.nodes[i];
            let id = node.id();
            while let Some(p) = node.poll_persist(&mut buf) {
                self.disk[i].push(buf[..p.len].to_vec());
                if !self.hold_persists {
                    node.persisted(self.now, p.seq).unwrap();
                }
            }
            while let Some(t) = node.poll_transmit(&mut buf) {
                for to in t.to.iter() {
                    self.wire.push_back((id, to, buf[..t.len].to_vec()));
                }
            }
            while let Some(e) = node.poll_event() {
                match e {
                    Event::Decided { slot, value, .. } => self.delivered[i].push((slot, value.cloned())),
                    Event::SnapshotNeeded { peer, from } => self.snapshots.push((id, peer, from)),
                    other => self.events.push((id, std::format!("{other:?}"))),
                }
            }
        }
    }

    /// Delivers messages until the wire is empty (bounded).
    fn settle(&mut self) {
        for _ in 0..10_000 {
            self.drain();
            let Some((from, to, frame)) = self.wire.pop_front() else {
                return;
            };
            let i = self.index(to.0);
            if !self.up[i] || self.cut.contains(&(from, to)) {
                continue;
            }
            let _ = self.nodes[i].handle_message(self.now, from, &frame);
        }
        panic!("did not settle");
    }

    /// Advances time in steps, firing timers and settling after each.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = self.now + Duration::from_millis(5);
            for i in 0..self.nodes.len() {
                if self.up[i] && self.nodes[i].poll_timeout() <= self.now {
                    self.nodes[i].handle_timeout(self.now);
                }
            }
            self.settle();
        }
    }

    fn reads_locally(&self, id: u8) -> bool {
        self.nodes[self.index(id)].can_read_locally(self.now)
    }

    fn propose(&mut self, id: u8, value: V) -> Result<ProposalId, ProposeError> {
        let now = self.now;
        self.node(id).propose(now, value)
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .zip(&self.up)
            .filter(|(n, up)| **up && n.is_leader())
            .map(|(n, _)| n.id())
            .collect()
    }

    fn crash(&mut self, id: u8) {
        let i = self.index(id);
        self.up[i] = false;
    }

    fn restart(&mut self, id: u8) {
        let i = self.index(id);
        let members = ids(self.nodes.len() as u8);
        let mut config = Self::config(NodeId(id), &members, None);
        config.lease = self.lease;
        let applied = self.delivered[i].last().map_or(0, |(s, _)| s + 1);
        let batches: Vec<&[u8]> = self.disk[i].iter().map(|b| b.as_slice()).collect();
        self.nodes[i] = R::recover(config, self.now, batches, applied).unwrap();
        self.up[i] = true;
    }

    /// Every two nodes agree on every slot both delivered, each node
    /// delivered slots in order without repeats.
    fn check_agreement(&self) {
        for d in &self.delivered {
            for w in d.windows(2) {
                assert_eq!(w[1].0, w[0].0 + 1, "slots delivered in order, once: {d:?}");
            }
        }
        for a in &self.delivered {
            for b in &self.delivered {
                for (sa, va) in a {
                    if let Some((_, vb)) = b.iter().find(|(sb, _)| sb == sa) {
                        assert_eq!(va, vb, "slot {sa} decided twice differently");
                    }
                }
            }
        }
    }

    fn values(&self, id: u8) -> Vec<Option<V>> {
        self.delivered[self.index(id)].iter().map(|(_, v)| v.clone()).collect()
    }
}

#[test]
fn initial_leader_decides_without_phase_one_and_followers_learn() {
    let mut c = Cluster::new(3, Some(1));
    assert!(c.node(1).is_leader());
    assert_eq!(c.node(2).leader(), Some(NodeId(1)));
    for s in ["a", "b", "c"] {
        c.propose(1, v(s)).unwrap();
    }
    c.settle();
    assert_eq!(c.values(1), vec![Some(v("a")), Some(v("b")), Some(v("c"))]);
    // Followers learn the watermark from the next append or heartbeat.
    c.run_for(Duration::from_millis(100));
    for id in 1..=3 {
        assert_eq!(c.values(id).len(), 3, "node {id}");
    }
    c.check_agreement();
    assert_eq!(c.leaders(), vec![NodeId(1)]);
}

#[test]
fn a_leader_is_elected_without_an_initial_one() {
    let mut c = Cluster::new(3, None);
    assert!(c.leaders().is_empty());
    c.run_for(Duration::from_millis(1_000));
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    let l = leaders[0].0;
    c.propose(l, v("x")).unwrap();
    c.run_for(Duration::from_millis(100));
    for id in 1..=3 {
        assert_eq!(c.values(id), vec![Some(v("x"))], "node {id}");
    }
}

#[test]
fn non_leaders_refuse_proposals_with_a_hint_and_a_full_window_is_busy() {
    let mut c = Cluster::new(3, Some(1));
    assert_eq!(
        c.propose(2, v("x")),
        Err(ProposeError::NotLeader {
            leader: Some(NodeId(1))
        })
    );
    c.hold_persists = true;
    for i in 0..R::MAX_IN_FLIGHT {
        c.propose(1, v(&std::format!("{i}"))).unwrap();
    }
    assert_eq!(c.propose(1, v("overflow")), Err(ProposeError::Busy));
}

#[test]
fn leader_crash_elects_a_new_leader_that_keeps_every_decision() {
    let mut c = Cluster::new(3, Some(1));
    for s in ["a", "b"] {
        c.propose(1, v(s)).unwrap();
    }
    c.run_for(Duration::from_millis(100));
    c.crash(1);
    c.run_for(Duration::from_millis(2_000));
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    let l = leaders[0].0;
    assert_ne!(l, 1);
    c.propose(l, v("c")).unwrap();
    c.run_for(Duration::from_millis(100));
    c.restart(1);
    c.run_for(Duration::from_millis(1_000));
    for id in 1..=3 {
        assert_eq!(
            c.values(id),
            vec![Some(v("a")), Some(v("b")), Some(v("c"))],
            "node {id}"
        );
    }
    c.check_agreement();
}

#[test]
fn no_vote_or_promise_leaves_before_it_is_durable() {
    let mut c = Cluster::new(3, Some(1));
    c.hold_persists = true;
    c.propose(1, v("a")).unwrap();
    c.settle();
    // Appends went out (a proposal reveals no acceptor state), but no
    // follower answered: their votes are not durable.
    assert!(c.wire.is_empty());
    assert_eq!(c.node(1).decided(), 0);
    assert_eq!(c.node(2).counters(), Counters::default());
    // Confirm node 2's records: its vote leaves, and with the leader's own
    // durable vote, the slot is decided.
    let mut buf = vec![0u8; 64];
    let _ = c.node(2).poll_persist(&mut buf);
    let seq = c.node(2).written;
    let now = c.now;
    c.node(2).persisted(now, seq).unwrap();
    let written = c.node(1).written;
    c.node(1).persisted(now, written).unwrap();
    c.hold_persists = false;
    c.settle();
    assert_eq!(c.values(1), vec![Some(v("a"))]);
}

#[test]
fn restart_redelivers_from_the_applied_slot_and_never_reuses_a_ballot() {
    let mut c = Cluster::new(3, None);
    c.run_for(Duration::from_millis(1_000));
    let l = c.leaders()[0].0;
    let ballot = c.node(l).promised().unwrap();
    c.propose(l, v("a")).unwrap();
    c.run_for(Duration::from_millis(100));
    let i = c.index(l);
    let batches: Vec<Vec<u8>> = c.disk[i].clone();
    let members = ids(3);
    let r = R::recover(
        Cluster::config(NodeId(l), &members, None),
        c.now,
        batches.iter().map(|b| b.as_slice()),
        0,
    )
    .unwrap();
    assert_eq!(r.promised(), Some(ballot));
    assert_eq!(r.decided(), 1);
    let mut r = r;
    match r.poll_event() {
        Some(Event::Decided {
            slot: 0,
            value: Some(x),
            proposal: None,
        }) => assert_eq!(x, &v("a")),
        other => panic!("{other:?}"),
    }
    // A campaign after the restart uses a higher ballot.
    r.handle_timeout(c.now + Duration::from_secs(5));
    assert!(r.promised().unwrap() > ballot);
}

#[test]
fn a_follower_that_missed_appends_catches_up() {
    let mut c = Cluster::new(3, Some(1));
    c.cut.push((NodeId(1), NodeId(3)));
    for s in ["a", "b", "c"] {
        c.propose(1, v(s)).unwrap();
    }
    c.run_for(Duration::from_millis(100));
    assert!(c.values(3).is_empty());
    c.cut.clear();
    c.propose(1, v("d")).unwrap();
    c.run_for(Duration::from_millis(300));
    assert_eq!(c.values(3), c.values(1));
    assert_eq!(c.values(3).len(), 4);
    c.check_agreement();
}

#[test]
fn malformed_and_foreign_frames_are_dropped_and_counted() {
    let mut c = Cluster::new(3, Some(1));
    let now = c.now;
    let n = c.node(2);
    assert_eq!(
        n.handle_message(now, NodeId(9), &[1, 0]),
        Handled::Dropped(Dropped::UnknownPeer(NodeId(9)))
    );
    assert_eq!(
        n.handle_message(now, NodeId(2), &[1, 0]),
        Handled::Dropped(Dropped::UnknownPeer(NodeId(2)))
    );
    assert!(matches!(
        n.handle_message(now, NodeId(1), &[]),
        Handled::Dropped(Dropped::Malformed(_))
    ));
    assert!(matches!(
        n.handle_message(now, NodeId(1), &[1, 200]),
        Handled::Dropped(Dropped::Malformed(_))
    ));
    let counters = n.counters();
    assert_eq!(counters.unknown_peer, 2);
    assert_eq!(counters.malformed, 2);
}

#[test]
fn single_node_cluster_decides_alone() {
    let mut c = Cluster::new(1, None);
    c.run_for(Duration::from_millis(1_000));
    assert!(c.node(1).is_leader());
    c.propose(1, v("solo")).unwrap();
    c.settle();
    assert_eq!(c.values(1), vec![Some(v("solo"))]);
}

#[test]
fn recover_with_redelivers_every_decided_slot_from_applied_exactly_once() {
    let mut c = Cluster::new(1, Some(1));
    for i in 0..20 {
        c.propose(1, v(&std::format!("v{i}"))).unwrap();
        c.settle();
    }
    assert_eq!(c.values(1).len(), 20);
    // The last commit watermark waits (alone) for a heartbeat interval.
    c.run_for(Duration::from_millis(200));
    let batches: Vec<Vec<u8>> = c.disk[0].clone();
    for applied in [0u64, 5, 15, 20] {
        let mut got: Vec<(Slot, Option<V>)> = Vec::new();
        let mut r = R::recover_with(
            Cluster::config(NodeId(1), &ids(1), Some(1)),
            c.now,
            batches.iter().map(|b| b.as_slice()),
            applied,
            |slot, value| got.push((slot, value.cloned())),
        )
        .unwrap();
        while let Some(e) = r.poll_event() {
            if let Event::Decided { slot, value, .. } = e {
                got.push((slot, value.cloned()));
            }
        }
        let want: Vec<(Slot, Option<V>)> = c.delivered[0].iter().skip(applied as usize).cloned().collect();
        assert_eq!(got, want, "applied {applied}");
        // Restarted, it is no longer the fresh initial leader.
        assert!(!r.is_leader());
    }
}

#[test]
fn at_most_one_node_reads_locally_at_any_instant_and_a_cut_off_leader_loses_its_lease() {
    let mut c = Cluster::with_lease(3);
    c.run_for(Duration::from_millis(1_000));
    let l = c.leaders()[0].0;
    c.propose(l, v("x")).unwrap();
    c.run_for(Duration::from_millis(200));
    assert!(c.reads_locally(l), "a leader with a quorum holds the lease");
    // Cut the leader off in both directions.
    for other in 1..=3u8 {
        if other != l {
            c.cut.push((NodeId(l), NodeId(other)));
            c.cut.push((NodeId(other), NodeId(l)));
        }
    }
    let mut new_leader = None;
    for _ in 0..400 {
        c.run_for(Duration::from_millis(5));
        let now = c.now;
        let readers: Vec<NodeId> = c
            .nodes
            .iter()
            .filter(|n| n.can_read_locally(now))
            .map(|n| n.id())
            .collect();
        assert!(readers.len() <= 1, "two lease holders at {now:?}: {readers:?}");
        if let Some(&n) = c.leaders().iter().find(|n| n.0 != l) {
            new_leader.get_or_insert(n);
        }
    }
    let n = new_leader.expect("the others elect a leader");
    assert!(!c.reads_locally(l));
    assert!(!c.node(l).is_leader(), "the cut-off leader stepped down (no quorum)");
    // The new leader reads locally once its lease holds and its recovery
    // proposals are applied.
    assert!(c.reads_locally(n.0));
}

#[test]
fn a_follower_behind_the_retained_log_gets_a_snapshot_then_catches_up() {
    let mut c = Cluster::new(3, Some(1));
    c.cut.push((NodeId(1), NodeId(3)));
    for i in 0..30 {
        c.propose(1, v(&std::format!("v{i}"))).unwrap();
        c.settle();
    }
    assert!(c.node(1).log_start() > 0, "the leader's window moved on");
    c.cut.clear();
    c.run_for(Duration::from_millis(200));
    let asked: Vec<_> = c.snapshots.iter().filter(|(_, peer, _)| *peer == NodeId(3)).collect();
    assert!(!asked.is_empty(), "the leader asked for a snapshot for node 3");
    assert_eq!(asked[0].2, 0);
    // The application ships its state: everything it applied.
    let slot = c.node(1).delivered();
    let now = c.now;
    c.node(3).install_snapshot(now, slot).unwrap();
    c.propose(1, v("after")).unwrap();
    c.run_for(Duration::from_millis(300));
    let leader_tail: Vec<Option<V>> = c.values(1).into_iter().skip(slot as usize).collect();
    assert_eq!(c.values(3), leader_tail);
    assert_eq!(c.node(3).decided(), c.node(1).decided());
    c.check_agreement();
}

#[test]
fn a_checkpoint_alone_restores_the_state() {
    let mut c = Cluster::new(3, Some(1));
    for i in 0..20 {
        c.propose(1, v(&std::format!("v{i}"))).unwrap();
        c.settle();
    }
    c.run_for(Duration::from_millis(100));
    for id in [1u8, 2] {
        let node = &c.nodes[c.index(id)];
        let mut buf = vec![0u8; R::MAX_CHECKPOINT_SIZE];
        let len = node.write_checkpoint(&mut buf).unwrap();
        let config = node.config().clone();
        let mut from_checkpoint = R::recover(config.clone(), c.now, [&buf[..len]], node.delivered()).unwrap();
        let batches: Vec<&[u8]> = c.disk[c.index(id)].iter().map(|b| b.as_slice()).collect();
        let mut from_log = R::recover(config, c.now, batches, node.delivered()).unwrap();
        assert_eq!(from_checkpoint.promised(), from_log.promised());
        assert_eq!(from_checkpoint.decided(), from_log.decided());
        for slot in node.log_start()..node.decided() {
            assert_eq!(
                from_checkpoint.decided_value(slot),
                from_log.decided_value(slot),
                "slot {slot}"
            );
        }
        assert!(from_checkpoint.poll_event().is_none() && from_log.poll_event().is_none());
    }
}

#[test]
fn a_lone_commit_watermark_waits_for_company_but_not_forever() {
    let mut c = Cluster::new(1, Some(1));
    c.propose(1, v("a")).unwrap();
    c.settle();
    let written = c.disk[0].len();
    // Decided at once (one node), but its watermark alone takes no sync yet.
    assert_eq!(c.values(1).len(), 1);
    let deadline = c.nodes[0].poll_timeout();
    assert!(deadline <= c.now + c.nodes[0].config().heartbeat_interval);
    // The next proposal's entries carry it.
    c.propose(1, v("b")).unwrap();
    c.settle();
    assert_eq!(
        c.disk[0].len(),
        written + 1,
        "one batch: the entries and the earlier watermark"
    );
    // Idle, it is written within a heartbeat interval.
    let before = c.disk[0].len();
    c.run_for(c.nodes[0].config().heartbeat_interval + Duration::from_millis(5));
    assert_eq!(c.disk[0].len(), before + 1);
    let r = R::recover(
        Cluster::config(NodeId(1), &ids(1), Some(1)),
        c.now,
        c.disk[0].iter().map(|b| b.as_slice()),
        0,
    )
    .unwrap();
    assert_eq!(r.decided(), 2);
}

/// Regression (found by the simulator once clocks drifted): a leader whose
/// round is not durable yet cannot send, so a heartbeat deadline that has
/// passed must not stay in the past, or its driver spins.
#[test]
fn a_leader_waiting_for_its_first_sync_does_not_spin() {
    let mut c = Cluster::new(3, Some(1));
    c.hold_persists = true;
    c.settle();
    assert!(c.nodes[0].is_leader());
    let heartbeat = c.nodes[0].config().heartbeat_interval;
    for _ in 0..3 {
        c.now = c.now + heartbeat + heartbeat;
        c.nodes[0].handle_timeout(c.now);
        c.drain();
        assert!(c.nodes[0].poll_timeout() > c.now, "the deadline moved on");
    }
}
