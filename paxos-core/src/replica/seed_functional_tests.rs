//! Equivalents of the seed library's heartbeat and external-leader tests
//! (reference 8.3 and 8.4) on the replica.
//!
//! The node under test is `A` = node 1 of a five-node cluster (quorum 3, as
//! in the seed fixtures); nodes 2..=5 are played by hand: their frames are
//! encoded here and the replica's output is decoded and checked.
//!
//! How the seed's vocabulary maps onto the replica:
//! * `poll_liveness()` is `handle_timeout` at `poll_timeout()`; there is no
//!   fixed window: a follower campaigns after `election_timeout` plus a
//!   random extra of up to the same again.
//! * A heartbeat (functional) or leadership proclamation (external) is an
//!   `Append`: a heartbeat carries no values; the new leader's first append
//!   is its proclamation.
//! * "gained" is `Event::LeadershipAcquired` then `Event::LeaderChanged`;
//!   "lost" is `Event::LeadershipLost` (then `LeaderChanged`).
//! * Prepare and Accept NACKs are both `Header::Nack`.
//! * The seed's `Accept((n,'A'),'foo')` is an `Append` carrying `foo`.
//! * The candidate's own promise counts (once durable), so where the seed
//!   feeds promises from A, B and C, the replica needs peers 2 and 3 only.
//! * Proposal ids `(n,'X')` are ballots `(n, node)`; `next_for` gives the
//!   seed's numbers exactly: above `(2,'C')` comes `(3,'A')`, above `(5,'B')`
//!   comes `(6,'A')`.

extern crate std;

use super::wire::{decode_header, Items, Writer};
use super::*;
use crate::time::Duration;
use crate::value::Bytes;
use std::vec;
use std::vec::Vec;

type V = Bytes<16>;
type R = Replica<V, 5, 8>;

const A: NodeId = NodeId(1);

fn v(s: &str) -> V {
    V::try_from(s).unwrap()
}

fn b(round: u32, node: u8) -> Ballot {
    Ballot::new(round, NodeId(node))
}

fn ms(t: u64) -> Instant {
    Instant::from_millis(t)
}

fn members() -> Vec<NodeId> {
    (1..=5).map(NodeId).collect()
}

/// Node A, fresh, with the default timeouts (50 ms heartbeats, 300 ms
/// elections) and optionally a designated initial leader.
fn node_a(initial_leader: Option<u8>) -> R {
    let config = Config::builder(A, &members())
        .initial_leader(initial_leader.map(NodeId))
        .seed(42)
        .build()
        .unwrap();
    R::new(config, Instant::ZERO).unwrap()
}

/// A frame with no items (Prepare, Accepted, Nack, CatchUp).
fn frame(header: Header) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = Writer::frame(&mut buf).unwrap();
    w.put(&header).unwrap();
    let len = w.len();
    buf.truncate(len);
    buf
}

/// An append (a heartbeat when `values` is empty) from the owner of `ballot`.
fn append(ballot: Ballot, commit: Slot, first: Slot, values: &[Option<V>], stamp: u64) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let mut w = Writer::frame(&mut buf).unwrap();
    w.put(&Header::Append {
        ballot,
        commit,
        first,
        stamp,
    })
    .unwrap();
    w.put_count(values.len() as u32).unwrap();
    for value in values {
        w.put(value).unwrap();
    }
    let len = w.len();
    buf.truncate(len);
    buf
}

fn heartbeat(ballot: Ballot) -> Vec<u8> {
    append(ballot, 0, 0, &[], 0)
}

fn promise(ballot: Ballot, entries: &[PromisedEntry<V>]) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let mut w = Writer::frame(&mut buf).unwrap();
    w.put(&Header::Promise {
        ballot,
        decided: 0,
        beyond: false,
        first: 0,
        complete: true,
    })
    .unwrap();
    w.put_count(entries.len() as u32).unwrap();
    for e in entries {
        w.put(e).unwrap();
    }
    let len = w.len();
    buf.truncate(len);
    buf
}

fn nack(ballot: Ballot, promised: Option<Ballot>) -> Vec<u8> {
    frame(Header::Nack {
        ballot,
        promised,
        decided: 0,
    })
}

/// One decoded transmission.
#[derive(Debug)]
struct Out {
    to: NodeSet,
    header: Header,
    /// The values of an append.
    values: Vec<Option<V>>,
}

/// Leadership notices, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Acquired(Ballot),
    Lost,
    Changed(Option<NodeId>),
    Decided(Slot),
    Displaced,
    SnapshotNeeded,
}

/// Confirms every persist at once, then collects every transmission.
fn flush(r: &mut R, now: Instant) -> Vec<Out> {
    let mut buf = vec![0u8; R::MAX_MESSAGE_SIZE];
    while let Some(p) = r.poll_persist(&mut buf) {
        r.persisted(now, p.seq).unwrap();
    }
    transmits(r)
}

/// Collects transmissions without confirming persists.
fn transmits(r: &mut R) -> Vec<Out> {
    let mut buf = vec![0u8; R::MAX_MESSAGE_SIZE];
    let mut out = Vec::new();
    while let Some(t) = r.poll_transmit(&mut buf) {
        let (header, rest) = decode_header::<Header>(&buf[..t.len]).unwrap();
        let values = match header {
            Header::Append { .. } => Items::<Option<V>>::new(rest)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap(),
            _ => Vec::new(),
        };
        out.push(Out {
            to: t.to,
            header,
            values,
        });
    }
    out
}

fn events(r: &mut R) -> Vec<Ev> {
    let mut out = Vec::new();
    while let Some(e) = r.poll_event() {
        out.push(match e {
            Event::LeadershipAcquired { ballot } => Ev::Acquired(ballot),
            Event::LeadershipLost => Ev::Lost,
            Event::LeaderChanged { leader } => Ev::Changed(leader),
            Event::Decided { slot, .. } => Ev::Decided(slot),
            Event::Displaced { .. } => Ev::Displaced,
            Event::SnapshotNeeded { .. } => Ev::SnapshotNeeded,
        });
    }
    out
}

fn prepares(outs: &[Out]) -> Vec<Ballot> {
    outs.iter()
        .filter_map(|o| match o.header {
            Header::Prepare { ballot, .. } => Some(ballot),
            _ => None,
        })
        .collect()
}

fn appends(outs: &[Out]) -> Vec<&Out> {
    outs.iter()
        .filter(|o| matches!(o.header, Header::Append { .. }))
        .collect()
}

fn deliver(r: &mut R, now: Instant, from: u8, frame: &[u8]) -> Vec<Out> {
    assert_eq!(r.handle_message(now, NodeId(from), frame), Handled::Used);
    flush(r, now)
}

/// Sleeps until the replica's timer, fires it, and returns the time and
/// what it sent.
fn fire(r: &mut R) -> (Instant, Vec<Out>) {
    let now = r.poll_timeout();
    r.handle_timeout(now);
    (now, flush(r, now))
}

/// Lets the election timer run out and returns the time and the ballot of
/// the single Prepare sent.
fn campaign(r: &mut R) -> (Instant, Ballot) {
    let (now, outs) = fire(r);
    let p = prepares(&outs);
    assert_eq!(p.len(), 1, "one prepare: {outs:?}");
    let others: NodeSet = (2..=5).map(NodeId).collect();
    assert_eq!(outs[0].to, others);
    (now, p[0])
}

/// Campaigns and wins with promises from peers 2 and 3; returns the time,
/// the ballot and what the new leader sent on winning.
fn gain(r: &mut R) -> (Instant, Ballot, Vec<Out>) {
    let (now, ballot) = campaign(r);
    assert!(deliver(r, now, 2, &promise(ballot, &[])).is_empty());
    assert!(!r.is_leader());
    let outs = deliver(r, now, 3, &promise(ballot, &[]));
    assert!(r.is_leader());
    (now, ballot, outs)
}

// 8.3 #1 `test_initial_wait`: the seed waits 1.5 x the liveness window
// before its first prepare. The replica waits `election_timeout` (300 ms)
// plus a jitter below the same again, and sends its Prepare only once its
// own promise of the ballot is durable.
#[test]
fn test_initial_wait() {
    let mut r = node_a(None);
    let at = r.poll_timeout();
    assert!(at >= ms(300) && at < ms(600), "{at:?}");
    // Polling before the timer (the seed's 9 quiet polls) does nothing.
    for t in (0..300).step_by(30) {
        r.handle_timeout(ms(t));
        assert!(flush(&mut r, ms(t)).is_empty(), "at {t} ms");
        assert_eq!(r.promised(), None);
    }
    r.handle_timeout(at);
    // Prepare waits for the self-promise to be durable.
    assert!(transmits(&mut r).is_empty());
    assert_eq!(r.promised(), Some(b(1, 1)));
    let outs = flush(&mut r, at);
    assert_eq!(prepares(&outs), vec![b(1, 1)]);
}

// 8.3 #2 `test_initial_leader`: the seed presets leader (1,'B'); here
// `Config::initial_leader = 2`, whose round-0 ballot needs no phase 1.
// Its heartbeats keep A from campaigning; once they stop, A campaigns.
#[test]
fn test_initial_leader() {
    let mut r = node_a(Some(2));
    assert_eq!(r.leader(), Some(NodeId(2)));
    assert!(!r.is_leader());
    let mut now = Instant::ZERO;
    for _ in 0..20 {
        now = now + Duration::from_millis(200);
        if r.poll_timeout() <= now {
            r.handle_timeout(now);
        }
        let outs = deliver(&mut r, now, 2, &heartbeat(b(0, 2)));
        assert!(prepares(&outs).is_empty(), "campaigned at {now:?} with a live leader");
        // Each heartbeat is acknowledged.
        assert!(
            matches!(outs[..], [Out { header: Header::Accepted { ballot, count: 0, .. }, .. }] if ballot == b(0, 2))
        );
        assert!(r.poll_timeout() > now + Duration::from_millis(299));
    }
    assert_eq!(r.leader(), Some(NodeId(2)));
    assert!(events(&mut r).is_empty(), "following the known leader is no change");
    // Silence: a campaign within twice the election timeout.
    let (at, ballot) = campaign(&mut r);
    assert!(at > now && at < now + Duration::from_millis(600));
    assert!(ballot > b(0, 2));
}

// 8.3 #3 `test_gain_leader`: promises from a quorum -> leadership gained,
// then the proposed value goes out in an Append under the new ballot. (A
// replica cannot hold a value before it leads: `propose` refuses; the value
// is proposed once `LeadershipAcquired` arrives.)
#[test]
fn test_gain_leader() {
    let mut r = node_a(None);
    assert_eq!(
        r.propose(Instant::ZERO, v("foo")),
        Err(ProposeError::NotLeader { leader: None })
    );
    let (now, ballot, outs) = gain(&mut r);
    assert_eq!(ballot, b(1, 1));
    assert_eq!(events(&mut r), vec![Ev::Acquired(b(1, 1)), Ev::Changed(Some(A))]);
    // The proclamation: an append with no values under the new ballot.
    let a = appends(&outs);
    assert_eq!(a.len(), 1);
    assert!(matches!(a[0].header, Header::Append { ballot, first: 0, .. } if ballot == b(1, 1)));
    assert!(a[0].values.is_empty());
    r.propose(now, v("foo")).unwrap();
    let outs = flush(&mut r, now);
    let a = appends(&outs);
    assert_eq!(a.len(), 1);
    assert!(matches!(a[0].header, Header::Append { ballot, first: 0, .. } if ballot == b(1, 1)));
    assert_eq!(a[0].values, vec![Some(v("foo"))]);
    // A late promise changes nothing.
    assert!(deliver(&mut r, now, 4, &promise(ballot, &[])).is_empty());
    assert!(events(&mut r).is_empty());
}

// 8.3 #4 `test_gain_leader_abort`: a candidate with 2 of 3 promises hears
// an Append (heartbeat) with a higher ballot: it follows that leader, stops
// campaigning (a later promise for its ballot does not make it leader), and
// its next campaign waits a full election timeout.
#[test]
fn test_gain_leader_abort() {
    let mut r = node_a(None);
    let (now, ballot) = campaign(&mut r);
    assert!(deliver(&mut r, now, 2, &promise(ballot, &[])).is_empty());
    let outs = deliver(&mut r, now, 2, &heartbeat(b(5, 2)));
    assert!(matches!(
        outs[..],
        [Out {
            header: Header::Accepted { .. },
            ..
        }]
    ));
    assert_eq!(r.leader(), Some(NodeId(2)));
    assert_eq!(r.promised(), Some(b(5, 2)));
    assert_eq!(events(&mut r), vec![Ev::Changed(Some(NodeId(2)))]);
    // The third promise would have been a quorum: it is now ignored.
    assert!(deliver(&mut r, now, 3, &promise(ballot, &[])).is_empty());
    assert!(!r.is_leader());
    assert!(events(&mut r).is_empty());
    // acquire_leadership() "sends nothing": no campaign before the timer.
    assert!(r.poll_timeout() >= now + Duration::from_millis(300));
    r.handle_timeout(now + Duration::from_millis(299));
    assert!(flush(&mut r, now).is_empty());
}

// 8.3 #5 `test_gain_leader_nack`: the seed re-prepares at once on every
// prepare NACK. The replica gives up its campaign once NACKs make a quorum
// impossible (3 of 5 here) and retries on its (randomized) election timer,
// with a ballot above the promise the NACKs reported: (3,'A') above (2,'C'),
// as in the seed. Deliberate difference: backoff instead of NACK-driven
// duelling.
#[test]
fn test_gain_leader_nack() {
    let mut r = node_a(None);
    let (now, ballot) = campaign(&mut r);
    assert_eq!(ballot, b(1, 1));
    assert!(deliver(&mut r, now, 2, &promise(ballot, &[])).is_empty());
    for peer in 3..=5 {
        assert!(deliver(&mut r, now, peer, &nack(ballot, Some(b(2, 3)))).is_empty());
    }
    // The campaign is over: a late promise no longer wins it.
    assert!(deliver(&mut r, now, 3, &promise(ballot, &[])).is_empty());
    assert!(!r.is_leader());
    assert!(events(&mut r).is_empty());
    let (later, next) = campaign(&mut r);
    assert!(later >= now + Duration::from_millis(300));
    assert_eq!(next, b(3, 1));
}

// 8.3 #6 `test_lose_leader`: a leader that receives a heartbeat with a
// higher ballot loses leadership and follows the sender.
#[test]
fn test_lose_leader() {
    let mut r = node_a(None);
    let (now, _, _) = gain(&mut r);
    events(&mut r);
    let outs = deliver(&mut r, now, 2, &heartbeat(b(5, 2)));
    assert!(!r.is_leader());
    assert_eq!(r.leader(), Some(NodeId(2)));
    assert_eq!(r.promised(), Some(b(5, 2)));
    assert_eq!(events(&mut r), vec![Ev::Lost, Ev::Changed(Some(NodeId(2)))]);
    // It acknowledges the new leader and sends no append of its own.
    assert!(appends(&outs).is_empty());
    assert!(matches!(outs[..], [Out { header: Header::Accepted { ballot, .. }, .. }] if ballot == b(5, 2)));
    assert_eq!(
        r.propose(now, v("foo")),
        Err(ProposeError::NotLeader {
            leader: Some(NodeId(2))
        })
    );
}

// 8.3 #7 `test_lose_leader_via_nacks`: accept NACKs for the leader's ballot
// from a quorum (3 of 5; the seed's quorum 3 too) depose it; fewer do not,
// nor do repeats from one node or NACKs of another ballot. The leader is then
// unknown, as in the seed (`leader_proposal_id` None).
#[test]
fn test_lose_leader_via_nacks() {
    let mut r = node_a(None);
    let (now, ballot, _) = gain(&mut r);
    events(&mut r);
    let higher = Some(b(2, 5));
    deliver(&mut r, now, 2, &nack(ballot, higher));
    deliver(&mut r, now, 2, &nack(ballot, higher));
    deliver(&mut r, now, 4, &nack(b(0, 4), higher));
    deliver(&mut r, now, 3, &nack(ballot, higher));
    assert!(r.is_leader(), "two distinct NACKs are not a quorum");
    assert!(events(&mut r).is_empty());
    deliver(&mut r, now, 4, &nack(ballot, higher));
    assert!(!r.is_leader());
    assert_eq!(r.leader(), None);
    assert_eq!(events(&mut r), vec![Ev::Lost, Ev::Changed(None)]);
    // The reported promise is observed: the next campaign goes above it.
    let (_, next) = campaign(&mut r);
    assert_eq!(next, b(3, 1));
}

// 8.3 #8 `test_regain_leader`: after losing to (5,'B') the node stays quiet
// while B's heartbeats arrive, campaigns with (6,'A') once they stop, and
// on winning re-proposes the value it had accepted ('foo') under the new
// ballot in its first append.
#[test]
fn test_regain_leader() {
    let mut r = node_a(None);
    let (now, _, _) = gain(&mut r);
    r.propose(now, v("foo")).unwrap();
    flush(&mut r, now);
    deliver(&mut r, now, 2, &heartbeat(b(5, 2)));
    assert!(!r.is_leader());
    let ev = events(&mut r);
    assert!(ev.contains(&Ev::Lost) && ev.contains(&Ev::Displaced), "{ev:?}");
    // B alive: no campaign.
    let mut t = now;
    for _ in 0..6 {
        t = t + Duration::from_millis(250);
        if r.poll_timeout() <= t {
            r.handle_timeout(t);
        }
        let outs = deliver(&mut r, t, 2, &heartbeat(b(5, 2)));
        assert!(prepares(&outs).is_empty());
    }
    let (t, ballot) = campaign(&mut r);
    assert_eq!(ballot, b(6, 1));
    assert!(deliver(&mut r, t, 2, &promise(ballot, &[])).is_empty());
    let outs = deliver(&mut r, t, 3, &promise(ballot, &[]));
    assert!(r.is_leader());
    assert_eq!(events(&mut r), vec![Ev::Acquired(b(6, 1)), Ev::Changed(Some(A))]);
    let a = appends(&outs);
    assert_eq!(a.len(), 1);
    assert!(matches!(a[0].header, Header::Append { ballot, first: 0, .. } if ballot == b(6, 1)));
    assert_eq!(a[0].values, vec![Some(v("foo"))], "the value is retained");
}

// 8.3 #9 `test_ignore_old_leader_heartbeat`: A follows 3 (ballot (1,3)),
// then 2 takes over with (5,2). A late heartbeat from the old leader is
// refused with a NACK naming the promise, and changes nothing: not the
// leader, not the promise, not the election timer.
#[test]
fn test_ignore_old_leader_heartbeat() {
    let mut r = node_a(None);
    let now = ms(10);
    deliver(&mut r, now, 3, &heartbeat(b(1, 3)));
    deliver(&mut r, now, 2, &heartbeat(b(5, 2)));
    assert_eq!(
        events(&mut r),
        vec![Ev::Changed(Some(NodeId(3))), Ev::Changed(Some(NodeId(2)))]
    );
    let timer = r.poll_timeout();
    let later = ms(100);
    let outs = deliver(&mut r, later, 3, &heartbeat(b(1, 3)));
    assert_eq!(outs.len(), 1);
    assert!(outs[0].to.contains(NodeId(3)) && outs[0].to.len() == 1);
    assert_eq!(
        outs[0].header,
        Header::Nack {
            ballot: b(1, 3),
            promised: Some(b(5, 2)),
            decided: 0
        }
    );
    assert_eq!(r.leader(), Some(NodeId(2)));
    assert_eq!(r.promised(), Some(b(5, 2)));
    assert_eq!(r.poll_timeout(), timer, "an old heartbeat does not refresh liveness");
    assert!(events(&mut r).is_empty());
}

// 8.3 #10 `test_pulse`: a leader sends a heartbeat (an empty append) on
// gaining and then every heartbeat interval, under its own ballot. Followers
// must acknowledge: unlike the seed, a replica leader that hears no quorum
// for an election timeout steps down (checked at the end).
#[test]
fn test_pulse() {
    let mut r = node_a(None);
    let (won, ballot, outs) = gain(&mut r);
    let mut stamps: Vec<u64> = Vec::new();
    let record = |outs: &[Out], stamps: &mut Vec<u64>| {
        for o in appends(outs) {
            let Header::Append { ballot: hb, stamp, .. } = o.header else {
                unreachable!()
            };
            assert_eq!(hb, ballot);
            assert!(o.values.is_empty());
            stamps.push(stamp);
        }
    };
    record(&outs, &mut stamps);
    let mut now = won;
    while now < won + Duration::from_millis(400) {
        let (t, outs) = fire(&mut r);
        now = t;
        record(&outs, &mut stamps);
        for peer in 2..=3 {
            let ack = frame(Header::Accepted {
                ballot,
                first: 0,
                count: 0,
                stamp: now.as_micros(),
            });
            assert!(deliver(&mut r, now, peer, &ack).is_empty());
        }
    }
    // 1 on gaining + 1 per 50 ms over 400 ms.
    assert_eq!(stamps.len(), 9, "{stamps:?}");
    for w in stamps.windows(2) {
        assert_eq!(w[1] - w[0], 50_000);
    }
    assert!(r.is_leader());
    assert_eq!(r.leader(), Some(A));
    // Without acknowledgements the heartbeats continue until the quorum
    // check deposes it.
    let mut silent = 0;
    while r.is_leader() {
        let (_, outs) = fire(&mut r);
        silent += appends(&outs).len();
        assert!(silent < 20);
    }
    assert!(silent >= 5);
    assert_eq!(events(&mut r)[2..], [Ev::Lost, Ev::Changed(None)]);
}

// 8.3 #11 `test_proposal_id_increment`: 2 of 3 promises for (1,'A'); the
// next timer fires a new Prepare (2,'A'); promises for it win and the value
// goes out under (2,'A'). A late promise for the old ballot does not count.
#[test]
fn test_proposal_id_increment() {
    let mut r = node_a(None);
    let (now, first) = campaign(&mut r);
    assert_eq!(first, b(1, 1));
    assert!(deliver(&mut r, now, 2, &promise(first, &[])).is_empty());
    let (t, second) = campaign(&mut r);
    assert!(t >= now + Duration::from_millis(300));
    assert_eq!(second, b(2, 1));
    assert!(deliver(&mut r, t, 3, &promise(first, &[])).is_empty());
    assert!(deliver(&mut r, t, 2, &promise(second, &[])).is_empty());
    assert!(!r.is_leader(), "a stale promise is not counted");
    deliver(&mut r, t, 3, &promise(second, &[]));
    assert!(r.is_leader());
    assert_eq!(events(&mut r), vec![Ev::Acquired(b(2, 1)), Ev::Changed(Some(A))]);
    r.propose(t, v("foo")).unwrap();
    let outs = flush(&mut r, t);
    let a = appends(&outs);
    assert!(matches!(a[..], [Out { header: Header::Append { ballot, .. }, .. }] if *ballot == b(2, 1)));
    assert_eq!(a[0].values, vec![Some(v("foo"))]);
}

// 8.3, Jan-2013 only, `test_leader_constructor`: removed upstream; its
// substance (a designated initial leader starts leading with the first
// ballot) is `external_test_initial_leader`.

// 8.4 #1 `test_initial_leader`: a node built as the initial leader leads at
// once with the reserved ballot (0, A) and never sends a Prepare.
// Difference (deliberate): the seed sends no proclamation at construction;
// the replica announces itself with a heartbeat at once, but only after its
// promise of (0, A) is durable.
#[test]
fn external_test_initial_leader() {
    let mut r = node_a(Some(1));
    assert!(r.is_leader());
    assert_eq!(r.leader(), Some(A));
    assert_eq!(r.promised(), Some(b(0, 1)));
    assert_eq!(events(&mut r), vec![Ev::Acquired(b(0, 1)), Ev::Changed(Some(A))]);
    assert!(transmits(&mut r).is_empty(), "nothing before the promise is durable");
    let outs = flush(&mut r, Instant::ZERO);
    assert!(prepares(&outs).is_empty());
    let a = appends(&outs);
    assert_eq!(a.len(), 1);
    assert!(matches!(a[0].header, Header::Append { ballot, .. } if ballot == b(0, 1)));
    r.propose(Instant::ZERO, v("foo")).unwrap();
    let outs = flush(&mut r, Instant::ZERO);
    assert!(prepares(&outs).is_empty());
    assert_eq!(appends(&outs)[0].values, vec![Some(v("foo"))]);
}

// 8.4 #2 `test_gain_leader`: the replica has no passive mode (its own timer
// is the failure detector), so the campaign starts from the timer. Variant:
// the value comes from a promise. A followed 2 at (2,2); node 3 reports
// 'foo' accepted under (2,2); A wins with (3,1), names itself leader and
// re-proposes 'foo' in its first append.
#[test]
fn external_test_gain_leader() {
    let mut r = node_a(None);
    deliver(&mut r, ms(10), 2, &heartbeat(b(2, 2)));
    events(&mut r);
    let (now, ballot) = campaign(&mut r);
    assert_eq!(ballot, b(3, 1));
    assert!(deliver(&mut r, now, 2, &promise(ballot, &[])).is_empty());
    let reported = PromisedEntry {
        slot: 0,
        ballot: b(2, 2),
        value: Some(v("foo")),
    };
    let outs = deliver(&mut r, now, 3, &promise(ballot, &[reported]));
    assert!(r.is_leader());
    assert_eq!(r.leader(), Some(A));
    assert_eq!(events(&mut r), vec![Ev::Acquired(b(3, 1)), Ev::Changed(Some(A))]);
    let a = appends(&outs);
    assert_eq!(a.len(), 1);
    assert!(matches!(a[0].header, Header::Append { ballot, first: 0, .. } if ballot == b(3, 1)));
    assert_eq!(a[0].values, vec![Some(v("foo"))]);
}

// 8.4 #3 `test_gain_leader_nack`: one prepare NACK (promised (2,'C')) after
// one promise: no automatic re-prepare (as in ExternalNode), the candidate
// keeps waiting; the next campaign (the replica's timer standing in for the
// explicit `prepare()`) uses (3,'A').
#[test]
fn external_test_gain_leader_nack() {
    let mut r = node_a(None);
    let (now, ballot) = campaign(&mut r);
    assert!(deliver(&mut r, now, 2, &promise(ballot, &[])).is_empty());
    assert!(deliver(&mut r, now, 3, &nack(ballot, Some(b(2, 3)))).is_empty());
    assert!(r.poll_timeout() > now);
    let (_, next) = campaign(&mut r);
    assert_eq!(next, b(3, 1));
}

// 8.4 #4 `test_lose_leader`: the initial leader receives a proclamation
// (append) with (5,'B'): lost, leader is B. The seed's ExternalNode keeps its
// `leader` flag set here (a known bug); the replica really stops leading.
#[test]
fn external_test_lose_leader() {
    let mut r = node_a(Some(1));
    flush(&mut r, Instant::ZERO);
    events(&mut r);
    deliver(&mut r, ms(5), 2, &append(b(5, 2), 0, 0, &[], 5_000));
    assert!(!r.is_leader(), "the seed's ExternalNode bug: still leader");
    assert_eq!(r.leader(), Some(NodeId(2)));
    assert_eq!(events(&mut r), vec![Ev::Lost, Ev::Changed(Some(NodeId(2)))]);
    assert!(r.propose(ms(5), v("x")).is_err());
    // It sends no heartbeats of its own any more.
    let (_, outs) = fire(&mut r);
    assert!(appends(&outs).is_empty());
}

// 8.4 #5 `test_lose_leader_via_nacks`: as 8.3 #7, on the initial leader's
// ballot (0, A): the third NACK deposes it.
#[test]
fn external_test_lose_leader_via_nacks() {
    let mut r = node_a(Some(1));
    flush(&mut r, Instant::ZERO);
    events(&mut r);
    for peer in [2, 3] {
        deliver(&mut r, ms(1), peer, &nack(b(0, 1), Some(b(1, 4))));
        assert!(r.is_leader());
    }
    deliver(&mut r, ms(1), 5, &nack(b(0, 1), Some(b(1, 4))));
    assert!(!r.is_leader());
    assert_eq!(r.leader(), None);
    assert_eq!(events(&mut r), vec![Ev::Lost, Ev::Changed(None)]);
}

// 8.4 #6 `test_regain_leader`: the initial leader accepted 'foo', lost to
// (5,'B'), then campaigns with (6,'A'), wins, and re-proposes 'foo'.
#[test]
fn external_test_regain_leader() {
    let mut r = node_a(Some(1));
    r.propose(Instant::ZERO, v("foo")).unwrap();
    flush(&mut r, Instant::ZERO);
    deliver(&mut r, ms(5), 2, &heartbeat(b(5, 2)));
    assert!(!r.is_leader());
    events(&mut r);
    let (now, ballot) = campaign(&mut r);
    assert_eq!(ballot, b(6, 1));
    deliver(&mut r, now, 4, &promise(ballot, &[]));
    let outs = deliver(&mut r, now, 5, &promise(ballot, &[]));
    assert!(r.is_leader());
    assert_eq!(events(&mut r), vec![Ev::Acquired(b(6, 1)), Ev::Changed(Some(A))]);
    let a = appends(&outs);
    assert_eq!(a.len(), 1);
    assert!(matches!(a[0].header, Header::Append { ballot, first: 0, .. } if ballot == b(6, 1)));
    assert_eq!(a[0].values, vec![Some(v("foo"))]);
}

// 8.4 #7 `test_ignore_old_leader_proclamation`: after A (initial leader) lost
// to (5,'B'), an older proclamation (4,'C') is refused and changes nothing.
// (The seed's (1,'A') from A itself cannot be sent: a replica drops frames
// from itself.)
#[test]
fn external_test_ignore_old_leader_proclamation() {
    let mut r = node_a(Some(1));
    flush(&mut r, Instant::ZERO);
    deliver(&mut r, ms(5), 2, &heartbeat(b(5, 2)));
    events(&mut r);
    let timer = r.poll_timeout();
    let outs = deliver(&mut r, ms(6), 3, &append(b(4, 3), 0, 0, &[Some(v("bad"))], 6_000));
    assert_eq!(outs.len(), 1);
    assert!(
        matches!(outs[0].header, Header::Nack { ballot, promised, .. } if ballot == b(4, 3) && promised == Some(b(5, 2)))
    );
    assert_eq!(r.leader(), Some(NodeId(2)));
    assert_eq!(r.promised(), Some(b(5, 2)));
    assert_eq!(r.poll_timeout(), timer);
    assert!(events(&mut r).is_empty());
    assert_eq!(
        r.handle_message(ms(6), A, &heartbeat(b(9, 1))),
        Handled::Dropped(Dropped::UnknownPeer(A))
    );
}

// 8.4 #8 `test_proposal_id_increment`: after 2 of 3 promises, a re-prepare
// (the timer) gives (2,'A'); three promises (two peers plus A's own) win it
// and the value goes out under (2,'A'). Here the promises come from nodes 4
// and 5 and one reports nothing new, so the proposed value is used.
#[test]
fn external_test_proposal_id_increment() {
    let mut r = node_a(None);
    let (now, first) = campaign(&mut r);
    deliver(&mut r, now, 4, &promise(first, &[]));
    let (t, second) = campaign(&mut r);
    assert_eq!(second, b(2, 1));
    deliver(&mut r, t, 4, &promise(second, &[]));
    assert!(!r.is_leader());
    deliver(&mut r, t, 5, &promise(second, &[]));
    assert!(r.is_leader());
    r.propose(t, v("foo")).unwrap();
    let outs = flush(&mut r, t);
    let a = appends(&outs);
    assert!(matches!(a[..], [Out { header: Header::Append { ballot, .. }, .. }] if *ballot == b(2, 1)));
    assert_eq!(a[0].values, vec![Some(v("foo"))]);
}
