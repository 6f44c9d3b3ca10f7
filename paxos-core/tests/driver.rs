//! The one driver loop (`paxos_core::driver`): the order of its steps (a
//! leader's appends leave before its own sync; its votes and a follower's
//! wait for it), and that nothing is confirmed when the storage fails or
//! reports a batch it was never given.

use core::cell::RefCell;
use paxos_core::driver::{self, Drained, DriveError, Network, Storage};
use paxos_core::keyed::{KeyedEvent, KeyedNode};
use paxos_core::replica::wire::{decode_header, Header};
use paxos_core::replica::Event;
use paxos_core::{Ballot, Bytes, NodeId, NodeSet, PersistSeq};

mod common;
use common::*;

/// What a turn did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Append(u64),
    Send(Header),
    Sync(Option<u64>),
}

type Trace = RefCell<Vec<Step>>;

/// A disk that is durable once `sync` runs (or, with `AT_ONCE`, once it
/// has appended), unless told to fail or lie.
struct Disk<'t, const AT_ONCE: bool = false> {
    trace: &'t Trace,
    buf: Vec<u8>,
    appended: Option<PersistSeq>,
    reported: Option<PersistSeq>,
    fail_sync: bool,
    fail_append: bool,
    /// Reports this batch as durable, whatever was appended.
    lie: Option<PersistSeq>,
}

impl<'t, const AT_ONCE: bool> Disk<'t, AT_ONCE> {
    fn new(trace: &'t Trace) -> Self {
        Disk {
            trace,
            buf: vec![0; 4096],
            appended: None,
            reported: None,
            fail_sync: false,
            fail_append: false,
            lie: None,
        }
    }
}

impl<const AT_ONCE: bool> Storage for Disk<'_, AT_ONCE> {
    type Error = &'static str;
    const DURABLE_ON_APPEND: bool = AT_ONCE;

    fn buffer(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    fn append(&mut self, seq: PersistSeq, len: usize) -> Result<(), &'static str> {
        let batch = &self.buf[..len];
        assert!(self.appended < Some(seq), "batches come in order");
        if self.fail_append {
            return Err("flash full");
        }
        assert!(!batch.is_empty());
        self.appended = Some(seq);
        self.trace.borrow_mut().push(Step::Append(seq.0));
        Ok(())
    }

    fn sync(&mut self) -> Result<Option<PersistSeq>, &'static str> {
        if self.fail_sync {
            return Err("disk gone");
        }
        let durable = self.lie.or(self.appended).filter(|&s| Some(s) > self.reported);
        self.reported = self.reported.max(durable);
        self.trace.borrow_mut().push(Step::Sync(durable.map(|s| s.0)));
        Ok(durable)
    }
}

/// A network that records the header of every frame.
struct Wire<'t>(&'t Trace, Vec<u8>);

impl<'t> Wire<'t> {
    fn new(trace: &'t Trace) -> Self {
        Wire(trace, vec![0; R::MAX_MESSAGE_SIZE])
    }
}

impl Network for Wire<'_> {
    fn buffer(&mut self) -> &mut [u8] {
        &mut self.1
    }

    fn send(&mut self, _to: NodeSet, len: usize) {
        let header = decode_header::<Header>(&self.1[..len]).unwrap().0;
        self.0.borrow_mut().push(Step::Send(header));
    }
}

/// One drain of `r`; returns its result and the slots it delivered.
fn drain<const AT_ONCE: bool>(
    r: &mut R,
    disk: &mut Disk<'_, AT_ONCE>,
) -> (Result<Drained, DriveError<&'static str>>, Vec<u64>) {
    let mut wire = Wire::new(disk.trace);
    let mut decided = Vec::new();
    let result = driver::drain(r, at(5), disk, &mut wire, |e| {
        if let Event::Decided { slot, .. } = e {
            decided.push(slot);
        }
    });
    (result, decided)
}

fn position(trace: &[Step], pick: impl Fn(&Step) -> bool) -> usize {
    trace
        .iter()
        .position(pick)
        .unwrap_or_else(|| panic!("not in {trace:?}"))
}

/// The leader's append reaches the network before the leader's own sync
/// (so the followers' syncs overlap it); its own vote waits for that sync.
#[test]
fn a_leader_sends_its_appends_before_its_own_sync() {
    let (mut r, ballot) = leader();
    let trace = Trace::default();
    let mut disk = Disk::<false>::new(&trace);
    r.propose(at(1), v("x")).unwrap();
    let (result, _) = drain(&mut r, &mut disk);
    let done = result.unwrap();
    assert_eq!(done.batches, 1);
    assert!(done.confirmed.is_some());
    let trace = trace.into_inner();
    let append = position(&trace, |s| matches!(s, Step::Send(Header::Append { first: 0, .. })));
    let sync = position(&trace, |s| matches!(s, Step::Sync(Some(_))));
    assert!(append < sync, "{trace:?}");
    assert_eq!(r.promised(), Some(ballot));
}

/// A follower's vote leaves only after the sync that made it durable.
#[test]
fn a_follower_votes_only_after_its_sync() {
    let mut r: R = follower();
    let trace = Trace::default();
    let mut disk = Disk::<false>::new(&trace);
    append(&mut r, at(1), LEADER, 0, 0, &["x"]);
    let (result, _) = drain(&mut r, &mut disk);
    assert_eq!(result.unwrap().frames, 1);
    let trace = trace.into_inner();
    let sync = position(&trace, |s| matches!(s, Step::Sync(Some(_))));
    let vote = position(&trace, |s| matches!(s, Step::Send(Header::Accepted { .. })));
    assert!(sync < vote, "{trace:?}");
}

/// A failed sync stops the turn: nothing is confirmed, the vote stays
/// inside the replica, and a later honest sync releases it.
#[test]
fn a_failed_sync_confirms_nothing_and_reveals_no_vote() {
    let mut r: R = follower();
    let trace = Trace::default();
    let mut disk = Disk::<false>::new(&trace);
    disk.fail_sync = true;
    append(&mut r, at(1), LEADER, 0, 0, &["x"]);
    let (result, _) = drain(&mut r, &mut disk);
    assert_eq!(result, Err(DriveError::Sync("disk gone")));
    assert!(!trace.borrow().iter().any(|s| matches!(s, Step::Send(_))), "{trace:?}");
    assert!(sent(&mut r).is_empty(), "the vote is still held");
    disk.fail_sync = false;
    let (result, _) = drain(&mut r, &mut disk);
    assert_eq!(result.unwrap().frames, 1, "the vote leaves once durable");
}

/// A failed append names its batch (a driver that can still make it
/// durable confirms it itself) and stops the turn before any sync.
#[test]
fn a_failed_append_names_its_batch_and_syncs_nothing() {
    let mut r: R = follower();
    let trace = Trace::default();
    let mut disk = Disk::<false>::new(&trace);
    disk.fail_append = true;
    append(&mut r, at(1), LEADER, 0, 0, &["x"]);
    let (result, _) = drain(&mut r, &mut disk);
    let Err(DriveError::Append {
        seq,
        error: "flash full",
    }) = result
    else {
        panic!("{result:?}");
    };
    assert!(trace.borrow().is_empty(), "{trace:?}");
    assert!(sent(&mut r).is_empty(), "the vote is still held");
    r.persisted(at(2), seq).unwrap();
    assert_eq!(sent(&mut r).len(), 1, "confirmed by the driver, the vote leaves");
}

/// A storage that reports a batch it was never given is refused and
/// nothing is confirmed.
#[test]
fn a_storage_reporting_an_unwritten_batch_is_refused() {
    let mut r: R = follower();
    let trace = Trace::default();
    let mut disk = Disk::<false>::new(&trace);
    disk.lie = Some(PersistSeq(9));
    append(&mut r, at(1), LEADER, 0, 0, &["x"]);
    let (result, _) = drain(&mut r, &mut disk);
    assert_eq!(result, Err(DriveError::UnknownPersist(PersistSeq(9))));
    assert!(sent(&mut r).is_empty(), "the vote is still held");
}

/// Decided values reach the application through the callback, in order;
/// a quiet turn does nothing and syncs nothing new.
#[test]
fn decided_values_are_delivered_and_a_quiet_turn_does_nothing() {
    let mut r: R = follower();
    let trace = Trace::default();
    let mut disk = Disk::<false>::new(&trace);
    append(&mut r, at(1), LEADER, 0, 0, &["x", "y"]);
    append(&mut r, at(1), LEADER, 2, 2, &[]);
    let (result, decided) = drain(&mut r, &mut disk);
    assert_eq!(result.unwrap().events, 2);
    assert_eq!(decided, [0, 1]);
    let (result, decided) = drain(&mut r, &mut disk);
    assert_eq!(
        result.unwrap(),
        Drained {
            batches: 0,
            confirmed: None,
            frames: 0,
            events: 0,
        }
    );
    assert!(decided.is_empty());
}

/// `tick` fires the deadline only once it has passed.
#[test]
fn tick_fires_only_when_due() {
    let mut r: R = follower();
    let due = driver::Core::poll_timeout(&r);
    assert!(!driver::tick(&mut r, at(0)));
    assert!(driver::tick(&mut r, due));
    assert!(r.is_candidate() || r.is_leader());
}

/// The keyed node drains through the same loop, with its own events.
#[test]
fn a_keyed_node_drains_through_the_same_loop() {
    type K = KeyedNode<Bytes<8>, Bytes<8>, 1, 8, 8>;
    let config = paxos_core::replica::Config::builder(NodeId(1), &[NodeId(1)])
        .initial_leader(NodeId(1))
        .build()
        .unwrap();
    let mut node = K::new(config, at(0)).unwrap();
    let trace = Trace::default();
    let mut disk = Disk::<false>::new(&trace);
    let mut wire = Wire::new(&trace);
    let mut answers = Vec::new();
    let mut turn = |node: &mut K| {
        driver::drain(node, at(1), &mut disk, &mut wire, |e| {
            if let KeyedEvent::Answered { value, .. } = e {
                answers.push(value);
            }
        })
        .unwrap();
    };
    turn(&mut node);
    let _ = node.ask(at(1), v("k"), v("a")).unwrap();
    turn(&mut node);
    assert_eq!(answers, [Some(v("a"))]);
}

/// A storage durable on append is confirmed before anything is sent: the
/// follower's vote leaves in the same single pass as everything else.
#[test]
fn a_storage_durable_on_append_is_confirmed_before_anything_is_sent() {
    let mut r: R = follower();
    let trace = Trace::default();
    let mut disk = Disk::<true>::new(&trace);
    append(&mut r, at(1), LEADER, 0, 0, &["x"]);
    let (result, _) = drain(&mut r, &mut disk);
    let done = result.unwrap();
    assert_eq!((done.batches, done.frames), (1, 1));
    let trace = trace.into_inner();
    assert!(
        matches!(
            trace[..],
            [
                Step::Append(_),
                Step::Sync(Some(_)),
                Step::Send(Header::Accepted { .. })
            ]
        ),
        "{trace:?}"
    );
}

/// Records a confirmation queues are written in the same drain: a
/// candidate that wins when its own promise is confirmed re-proposes the
/// value a promiser reported, and that vote is written at once instead of
/// waiting for the next input.
#[test]
fn records_queued_by_a_confirmation_are_written_in_the_same_drain() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    r.handle_timeout(at(2_000));
    let ballot = r.promised().unwrap();
    let reported = paxos_core::replica::PromisedEntry {
        slot: 0,
        ballot: Ballot::new(1, NodeId(3)),
        value: Some(v("x")),
    };
    promise(&mut r, at(2_001), NodeId(3), ballot, 0, &[reported]);
    assert!(!r.is_leader(), "its own promise is not durable yet");
    let trace = Trace::default();
    let mut disk = Disk::<true>::new(&trace);
    let (result, _) = drain(&mut r, &mut disk);
    let done = result.unwrap();
    assert!(r.is_leader());
    assert_eq!(
        done.batches,
        2,
        "the promise, then the re-proposal's vote: {:?}",
        trace.borrow()
    );
    assert!(
        trace
            .borrow()
            .iter()
            .any(|s| matches!(s, Step::Send(Header::Append { first: 0, .. }))),
        "{trace:?}"
    );
}

/// A keyed leader's timers and frames go through the same loop: `tick`
/// fires its deadline (a heartbeat) and `drain` sends its appends.
#[test]
fn a_keyed_leader_fires_its_timers_and_sends_through_the_loop() {
    type K = KeyedNode<Bytes<8>, Bytes<8>, 3, 8, 8>;
    let config = paxos_core::replica::Config::builder(NodeId(1), &IDS)
        .initial_leader(NodeId(1))
        .build()
        .unwrap();
    let mut node = K::new(config, at(0)).unwrap();
    let trace = Trace::default();
    let mut disk = Disk::<true>::new(&trace);
    let mut wire = Wire::new(&trace);
    let mut turn = |node: &mut K, now| driver::drain(node, now, &mut disk, &mut wire, |_| {}).unwrap();
    turn(&mut node, at(0));
    let _ = node.ask(at(1), v("k"), v("a")).unwrap();
    assert!(turn(&mut node, at(1)).frames >= 1, "the append to the followers");
    let due = driver::Core::poll_timeout(&node);
    assert!(due > at(1));
    assert!(!driver::tick(&mut node, at(1)));
    assert!(driver::tick(&mut node, due));
    let sent = turn(&mut node, due).frames;
    assert!(sent >= 1, "the heartbeat or the resent append");
}
