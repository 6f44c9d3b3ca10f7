//! Seed parity for the essential layer: an equivalent of every test of the
//! seed library's `test_essential.py` (reference section 8.1, 22 tests),
//! run against `paxos_core::essential::{Proposer, Acceptor, Learner}`, plus
//! the essential-layer cases of section 8.7 and the deliberate differences.
//!
//! The seed records what its messenger is asked to send; `am(..)` asserts
//! that exactly that one message was sent (and clears the record), `an()`
//! that nothing was. Our essential roles return the message instead of
//! sending it, so the fixtures below record each returned message with the
//! destination the seed's messenger hook implies: a `Promise` goes back to
//! the proposer that asked, everything else is a broadcast.
//!
//! Fixture, as in the seed: uid `'A'` (`NodeId(b'A')`), quorum 2.
//!
//! This file holds parity with the seed's suite only: other tests of the
//! single-decree layers go in `single_decree.rs`.

use paxos_core::essential::{Acceptor, Learner, Proposer};
use paxos_core::{Ballot, Destination, Message, NodeId, Proposal};

type V = &'static str;
type Sent = (Destination, Message<V>);

const QUORUM: usize = 2;
const A: NodeId = NodeId(b'A');
const B: NodeId = NodeId(b'B');
const C: NodeId = NodeId(b'C');

fn b(round: u32, node: NodeId) -> Ballot {
    Ballot::new(round, node)
}

fn prop(ballot: Ballot, value: V) -> Proposal<V> {
    Proposal::new(ballot, value)
}

fn prepare(ballot: Ballot) -> Sent {
    (Destination::All, Message::Prepare { ballot })
}

fn promise(to: NodeId, ballot: Ballot, accepted: Option<Proposal<V>>) -> Sent {
    (Destination::Node(to), Message::Promise { ballot, accepted })
}

fn accept(ballot: Ballot, value: V) -> Sent {
    (Destination::All, Message::Accept { ballot, value })
}

fn accepted(ballot: Ballot, value: V) -> Sent {
    (Destination::All, Message::Accepted { ballot, value })
}

/// The seed's recording messenger.
#[derive(Default)]
struct Log {
    sent: Vec<Sent>,
}

impl Log {
    fn record(&mut self, to: Destination, message: Option<Message<V>>) {
        if let Some(message) = message {
            self.sent.push((to, message));
        }
    }

    /// Exactly `expected` was sent since the last check.
    #[track_caller]
    fn am(&mut self, expected: Sent) {
        assert_eq!(self.sent, vec![expected]);
        self.sent.clear();
    }

    /// Nothing was sent since the last check.
    #[track_caller]
    fn an(&self) {
        assert_eq!(self.sent, vec![]);
    }
}

struct ProposerFixture {
    p: Proposer<V>,
    log: Log,
}

impl ProposerFixture {
    fn new() -> Self {
        ProposerFixture {
            p: Proposer::new(A, QUORUM),
            log: Log::default(),
        }
    }

    fn set_proposal(&mut self, value: V) {
        self.p.set_proposal(value);
    }

    fn prepare(&mut self) {
        let m = self.p.prepare();
        self.log.record(Destination::All, Some(m));
    }

    fn recv_promise(&mut self, from: NodeId, ballot: Ballot, prev: Option<Proposal<V>>) {
        let m = self.p.receive_promise(from, ballot, prev);
        self.log.record(Destination::All, m);
    }
}

struct AcceptorFixture {
    a: Acceptor<V>,
    log: Log,
}

impl AcceptorFixture {
    fn new() -> Self {
        AcceptorFixture {
            a: Acceptor::new(),
            log: Log::default(),
        }
    }

    fn recv_prepare(&mut self, from: NodeId, ballot: Ballot) {
        let m = self.a.receive_prepare(ballot);
        self.log.record(Destination::Node(from), m);
    }

    fn recv_accept_request(&mut self, _from: NodeId, ballot: Ballot, value: V) {
        let m = self.a.receive_accept(ballot, value);
        self.log.record(Destination::All, m);
    }
}

struct LearnerFixture {
    l: Learner<V, 8>,
    /// Every `on_resolution` call.
    resolutions: Vec<Proposal<V>>,
}

impl LearnerFixture {
    fn new() -> Self {
        LearnerFixture {
            l: Learner::new(QUORUM),
            resolutions: Vec::new(),
        }
    }

    fn recv_accepted(&mut self, from: NodeId, ballot: Ballot, value: V) {
        if let Some(decision) = self.l.receive_accepted(from, ballot, value) {
            self.resolutions.push(decision.clone());
        }
    }
}

// ---------------------------------------------------------------------------
// 8.1 Proposer (10)
// ---------------------------------------------------------------------------

#[test]
fn test_set_proposal_no_value() {
    let mut f = ProposerFixture::new();
    assert_eq!(f.p.proposed_value(), None);
    f.set_proposal("foo");
    assert_eq!(f.p.proposed_value(), Some(&"foo"));
    f.log.an();
}

#[test]
fn test_set_proposal_with_previous_value() {
    let mut f = ProposerFixture::new();
    f.set_proposal("foo");
    f.set_proposal("bar");
    assert_eq!(f.p.proposed_value(), Some(&"foo"));
    f.log.an();
}

#[test]
fn test_prepare() {
    // Seed 8.1 #3 also checks `leader` is False before and after; our
    // essential proposer has no leadership notion (it lives in the
    // practical layer, see seed_practical.rs), so we check the round state.
    let mut f = ProposerFixture::new();
    assert_eq!(f.p.ballot(), None);
    f.prepare();
    f.log.am(prepare(b(1, A)));
    assert_eq!(f.p.ballot(), Some(b(1, A)));
    assert_eq!(f.p.promise_count(), 0);
}

#[test]
fn test_prepare_two() {
    let mut f = ProposerFixture::new();
    f.prepare();
    f.log.am(prepare(b(1, A)));
    f.prepare();
    f.log.am(prepare(b(2, A)));
}

#[test]
fn test_prepare_with_promises_rcvd() {
    let mut f = ProposerFixture::new();
    f.prepare();
    f.log.am(prepare(b(1, A)));
    assert_eq!(f.p.promise_count(), 0);
    f.recv_promise(B, b(1, A), None);
    assert_eq!(f.p.promise_count(), 1);
    f.prepare();
    f.log.am(prepare(b(2, A)));
    assert_eq!(f.p.promise_count(), 0);
}

#[test]
fn test_recv_promise_ignore_other_nodes() {
    let mut f = ProposerFixture::new();
    f.prepare();
    f.log.am(prepare(b(1, A)));
    f.recv_promise(B, b(1, B), None);
    assert_eq!(f.p.promise_count(), 0);
    f.log.an();
}

#[test]
fn test_recv_promise_ignore_duplicate_response() {
    let mut f = ProposerFixture::new();
    f.prepare();
    f.log.am(prepare(b(1, A)));
    f.recv_promise(B, b(1, A), None);
    assert_eq!(f.p.promise_count(), 1);
    f.recv_promise(B, b(1, A), None);
    assert_eq!(f.p.promise_count(), 1);
    f.log.an();
}

/// Two prepares, then B's promise for (2,A) reports (1,B)/'foo'.
fn adopt_foo(f: &mut ProposerFixture) {
    f.prepare();
    f.log.am(prepare(b(1, A)));
    f.prepare();
    f.log.am(prepare(b(2, A)));
    assert_eq!(f.p.highest_accepted(), None);
    assert_eq!(f.p.proposed_value(), None);
    f.recv_promise(B, b(2, A), Some(prop(b(1, B), "foo")));
    assert_eq!(f.p.highest_accepted(), Some(b(1, B)));
    assert_eq!(f.p.proposed_value(), Some(&"foo"));
    f.log.an();
}

/// After `adopt_foo`: prepares up to (4,A), then B's promise reports
/// (3,B)/'bar'.
fn adopt_bar(f: &mut ProposerFixture) {
    adopt_foo(f);
    f.prepare();
    f.log.am(prepare(b(3, A)));
    f.prepare();
    f.log.am(prepare(b(4, A)));
    f.recv_promise(B, b(4, A), Some(prop(b(3, B), "bar")));
    assert_eq!(f.p.highest_accepted(), Some(b(3, B)));
    assert_eq!(f.p.proposed_value(), Some(&"bar"));
    f.log.an();
}

#[test]
fn test_recv_promise_set_proposal_from_null() {
    let mut f = ProposerFixture::new();
    adopt_foo(&mut f);
}

#[test]
fn test_recv_promise_override_previous_proposal_value() {
    let mut f = ProposerFixture::new();
    adopt_bar(&mut f);
}

#[test]
fn test_recv_promise_ignore_previous_proposal_value() {
    let mut f = ProposerFixture::new();
    adopt_bar(&mut f);
    // A second acceptor (C) reports an older accepted proposal: it does not
    // replace (3,B)/'bar'. Its promise completes the quorum, so the Accept
    // carries 'bar' (the seed's test only checks the state).
    f.recv_promise(C, b(4, A), Some(prop(b(2, B), "baz")));
    assert_eq!(f.p.highest_accepted(), Some(b(3, B)));
    assert_eq!(f.p.proposed_value(), Some(&"bar"));
    f.log.am(accept(b(4, A), "bar"));
}

// ---------------------------------------------------------------------------
// 8.1 Acceptor (7)
// ---------------------------------------------------------------------------

#[test]
fn test_recv_prepare_initial() {
    let mut f = AcceptorFixture::new();
    assert_eq!(f.a.promised(), None);
    assert_eq!(f.a.accepted(), None);
    f.recv_prepare(A, b(1, A));
    f.log.am(promise(A, b(1, A), None));
}

#[test]
fn test_recv_prepare_duplicate() {
    let mut f = AcceptorFixture::new();
    f.recv_prepare(A, b(1, A));
    f.log.am(promise(A, b(1, A), None));
    f.recv_prepare(A, b(1, A));
    f.log.am(promise(A, b(1, A), None));
}

#[test]
fn test_recv_prepare_override() {
    let mut f = AcceptorFixture::new();
    f.recv_prepare(A, b(1, A));
    f.log.am(promise(A, b(1, A), None));
    f.recv_accept_request(A, b(1, A), "foo");
    f.log.am(accepted(b(1, A), "foo"));
    f.recv_prepare(B, b(2, B));
    f.log.am(promise(B, b(2, B), Some(prop(b(1, A), "foo"))));
}

#[test]
fn test_recv_accept_request_initial() {
    let mut f = AcceptorFixture::new();
    f.recv_accept_request(A, b(1, A), "foo");
    f.log.am(accepted(b(1, A), "foo"));
}

#[test]
fn test_recv_accept_request_promised() {
    let mut f = AcceptorFixture::new();
    f.recv_prepare(A, b(1, A));
    f.log.am(promise(A, b(1, A), None));
    f.recv_accept_request(A, b(1, A), "foo");
    f.log.am(accepted(b(1, A), "foo"));
}

#[test]
fn test_recv_accept_request_greater_than_promised() {
    let mut f = AcceptorFixture::new();
    f.recv_prepare(A, b(1, A));
    f.log.am(promise(A, b(1, A), None));
    f.recv_accept_request(A, b(5, A), "foo");
    f.log.am(accepted(b(5, A), "foo"));
}

#[test]
fn test_recv_accept_request_less_than_promised() {
    let mut f = AcceptorFixture::new();
    f.recv_prepare(A, b(5, A));
    f.log.am(promise(A, b(5, A), None));
    f.recv_accept_request(A, b(1, A), "foo");
    f.log.an();
    assert_eq!(f.a.accepted(), None);
    assert_eq!(f.a.promised(), Some(b(5, A)));
}

// ---------------------------------------------------------------------------
// 8.1 Learner (5), quorum 2
// ---------------------------------------------------------------------------

#[test]
fn test_basic_resolution() {
    let mut f = LearnerFixture::new();
    assert_eq!(f.l.final_value(), None);
    assert_eq!(f.l.decision(), None);
    f.recv_accepted(A, b(1, A), "foo");
    assert_eq!(f.l.final_value(), None);
    assert!(f.resolutions.is_empty());
    f.recv_accepted(B, b(1, A), "foo");
    assert_eq!(f.l.final_value(), Some(&"foo"));
    assert_eq!(f.l.decision(), Some(&prop(b(1, A), "foo")));
    assert_eq!(f.resolutions, vec![prop(b(1, A), "foo")]);
}

#[test]
fn test_ignore_after_resolution() {
    let mut f = LearnerFixture::new();
    f.recv_accepted(A, b(1, A), "foo");
    assert!(!f.l.is_complete());
    f.recv_accepted(B, b(1, A), "foo");
    assert!(f.l.is_complete());
    f.recv_accepted(A, b(5, A), "bar");
    f.recv_accepted(B, b(5, A), "bar");
    assert_eq!(f.l.decision(), Some(&prop(b(1, A), "foo")));
    assert_eq!(f.resolutions, vec![prop(b(1, A), "foo")]);
}

#[test]
fn test_ignore_duplicate_messages() {
    let mut f = LearnerFixture::new();
    f.recv_accepted(A, b(1, A), "foo");
    f.recv_accepted(A, b(1, A), "foo");
    assert_eq!(f.l.final_value(), None);
    f.recv_accepted(B, b(1, A), "foo");
    assert_eq!(f.l.final_value(), Some(&"foo"));
    assert_eq!(f.resolutions, vec![prop(b(1, A), "foo")]);
}

#[test]
fn test_ignore_old_messages() {
    let mut f = LearnerFixture::new();
    f.recv_accepted(A, b(5, A), "foo");
    f.recv_accepted(A, b(1, A), "bar");
    assert_eq!(f.l.final_value(), None);
    f.recv_accepted(B, b(5, A), "foo");
    assert_eq!(f.l.decision(), Some(&prop(b(5, A), "foo")));
    assert_eq!(f.resolutions, vec![prop(b(5, A), "foo")]);
}

#[test]
fn test_overwrite_old_messages() {
    let mut f = LearnerFixture::new();
    f.recv_accepted(A, b(1, A), "bar");
    f.recv_accepted(B, b(5, A), "foo");
    assert_eq!(f.l.final_value(), None);
    f.recv_accepted(A, b(5, A), "foo");
    assert_eq!(f.l.decision(), Some(&prop(b(5, A), "foo")));
    assert_eq!(f.resolutions, vec![prop(b(5, A), "foo")]);
}

// ---------------------------------------------------------------------------
// 8.7 cases and deliberate differences that apply to the essential layer
// ---------------------------------------------------------------------------

/// Deliberate difference 9: the seed learner raises AssertionError ("Value
/// mismatch for single proposal!") when a vote for a ballot carries another
/// value than an earlier vote for that ballot. Ours ignores the
/// contradicting vote.
#[test]
fn test_value_mismatch_for_single_proposal_is_ignored() {
    let mut f = LearnerFixture::new();
    f.recv_accepted(A, b(1, A), "foo");
    f.recv_accepted(B, b(1, A), "bar");
    assert_eq!(f.l.final_value(), None, "the contradicting vote must not count");
    assert!(f.resolutions.is_empty());
    // B's ignored vote did not even record B's ballot: a consistent vote
    // for the same ballot from B still counts and resolves.
    f.recv_accepted(B, b(1, A), "foo");
    assert_eq!(f.resolutions, vec![prop(b(1, A), "foo")]);
}

/// 8.7 "The learner should handle an acceptor moving between ids (entry
/// deletion)": A votes P1, then moves to P2; B's vote for P1 would resolve
/// P1 with A's first vote, but A's P1 vote no longer counts.
#[test]
fn test_learner_acceptor_moves_between_ballots() {
    let mut f = LearnerFixture::new();
    f.recv_accepted(A, b(1, A), "foo");
    f.recv_accepted(A, b(2, B), "bar");
    f.recv_accepted(B, b(1, A), "foo");
    assert!(!f.l.is_complete(), "A's vote for (1,A) was superseded");
    assert!(f.resolutions.is_empty());
    f.recv_accepted(B, b(2, B), "bar");
    assert_eq!(f.resolutions, vec![prop(b(2, B), "bar")]);
}

/// 8.7 / deliberate difference 10: Python 2 ordered `None` below every
/// proposal id; ours is `Option<Ballot>` with `None < Some(_)`. Checked on
/// the lowest possible ballot in every role's comparison.
#[test]
fn test_none_orders_below_every_ballot() {
    let zero = b(0, NodeId(0));
    assert!(None < Some(zero));

    // Acceptor: nothing promised, so the lowest ballot is promised and
    // accepted.
    let mut a = AcceptorFixture::new();
    a.recv_accept_request(NodeId(0), zero, "foo");
    a.log.am(accepted(zero, "foo"));
    let mut a = AcceptorFixture::new();
    a.recv_prepare(NodeId(0), zero);
    a.log.am(promise(NodeId(0), zero, None));

    // Proposer: a previously accepted proposal at the lowest ballot is
    // higher than "nothing accepted", so its value is adopted.
    let mut p = ProposerFixture::new();
    p.prepare();
    p.log.am(prepare(b(1, A)));
    p.recv_promise(B, b(1, A), Some(prop(zero, "foo")));
    assert_eq!(p.p.highest_accepted(), Some(zero));
    assert_eq!(p.p.proposed_value(), Some(&"foo"));

    // Learner: a first vote at the lowest ballot is newer than "no vote".
    let mut l = LearnerFixture::new();
    l.recv_accepted(A, zero, "foo");
    l.recv_accepted(B, zero, "foo");
    assert_eq!(l.resolutions, vec![prop(zero, "foo")]);
}
