//! One simulated node: a replica (while running), its disk, its
//! application, and the driver that drains the replica after every input.
//!
//! The driver is the one driver loop, `paxos_core::driver::drain`, over
//! the simulated disk (a [`Storage`] whose sync reports the sync that
//! completed, in virtual time, since the last drain) and a frame sink
//! (a [`Network`] collecting [`Output::Frame`]s). Not a plain `drain`
//! in one respect: a lazy-persist driver ([`Node::lazy_persist`]) takes
//! no batch from the replica while a sync is in flight, so that records
//! wait inside it and later inputs change the cells they will be encoded
//! from; it drains a `Deferring` view of the replica, which hands out
//! no batch, through the same loop.

use super::app::App;
use super::disk::Disk;
use super::Value;
use core::cell::RefCell;
use paxos_core::driver::{self, Core, Network, Storage};
use paxos_core::replica::{Config, Event, PersistRequest, ProposalId, Replica, Slot, Transmit, UnknownPersist};
use paxos_core::{Ballot, Instant, NodeId, NodeSet, PersistSeq};
use std::rc::Rc;

/// The largest cluster simulated.
pub const MAX_NODES: usize = 5;

/// The replica type under test, with a log window of `W`.
pub type SimReplica<const W: usize> = Replica<Value, MAX_NODES, W>;

/// An [`Event`] that owns its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// See [`Event::Decided`].
    Decided {
        /// The slot.
        slot: Slot,
        /// The value.
        value: Option<Value>,
        /// The local proposal.
        proposal: Option<ProposalId>,
    },
    /// See [`Event::Displaced`].
    Displaced(ProposalId),
    /// See [`Event::LeadershipAcquired`].
    Acquired(Ballot),
    /// See [`Event::LeadershipLost`].
    Lost,
    /// See [`Event::LeaderChanged`].
    LeaderChanged(Option<NodeId>),
    /// See [`Event::SnapshotNeeded`].
    SnapshotNeeded {
        /// The node behind.
        peer: NodeId,
        /// The first slot it lacks.
        from: Slot,
    },
}

impl NodeEvent {
    fn from_event(event: Event<'_, Value>) -> Self {
        match event {
            Event::Decided { slot, value, proposal } => NodeEvent::Decided {
                slot,
                value: value.cloned(),
                proposal,
            },
            Event::Displaced { proposal } => NodeEvent::Displaced(proposal),
            Event::LeadershipAcquired { ballot } => NodeEvent::Acquired(ballot),
            Event::LeadershipLost => NodeEvent::Lost,
            Event::LeaderChanged { leader } => NodeEvent::LeaderChanged(leader),
            Event::SnapshotNeeded { peer, from } => NodeEvent::SnapshotNeeded { peer, from },
        }
    }
}

/// What a drain produced, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A frame to send to every node in `to`.
    Frame {
        /// The recipients.
        to: NodeSet,
        /// The frame.
        bytes: Rc<[u8]>,
    },
    /// Something for the application.
    Event(NodeEvent),
}

/// A node of the simulated cluster.
#[derive(Debug)]
pub struct Node<const W: usize> {
    /// Its position among the members.
    pub index: usize,
    /// Its configuration (the same at every restart).
    pub config: Config<MAX_NODES>,
    /// The running replica; `None` while crashed.
    pub replica: Option<SimReplica<W>>,
    /// Bumped at every crash: work scheduled for an older lifetime is
    /// ignored.
    pub incarnation: u32,
    /// Its storage.
    pub disk: Disk,
    /// Its application.
    pub app: App,
    /// Stays down until the run ends.
    pub stay_down: bool,
    /// Batches written.
    pub batches: u64,
    /// The driver writes the next batch only while no sync is in flight
    /// (one I/O at a time): records wait in the replica meanwhile, and
    /// later inputs may change the cells they will be encoded from.
    pub lazy_persist: bool,
    /// When the sync in flight completes, if one is.
    pub sync_due: Option<Instant>,
    /// The newest batch a completed sync made durable, for the next drain
    /// to confirm ([`Node::synced`]).
    synced: Option<PersistSeq>,
    persist_buf: Vec<u8>,
    transmit_buf: Vec<u8>,
    /// After every turn, drop delivered slots from memory but the newest
    /// this many ([`Node::set_release_lag`]).
    release_lag: Option<u64>,
}

impl<const W: usize> Node<W> {
    /// A node that has not started yet; `persist_buffer` is the size of
    /// the buffer handed to `poll_persist`.
    pub fn new(index: usize, config: Config<MAX_NODES>, persist_buffer: usize) -> Self {
        Node {
            index,
            config,
            replica: None,
            incarnation: 0,
            disk: Disk::default(),
            app: App::default(),
            stay_down: false,
            batches: 0,
            lazy_persist: false,
            sync_due: None,
            synced: None,
            persist_buf: vec![0; persist_buffer],
            transmit_buf: vec![0; SimReplica::<W>::MAX_MESSAGE_SIZE],
            release_lag: None,
        }
    }

    /// Gives `poll_transmit` a buffer of `size` bytes (the smallest that
    /// never drops a message, [`Replica::MAX_MESSAGE_SIZE`], by default):
    /// a small one splits promises into parts and appends into more frames.
    pub fn set_transmit_buffer(&mut self, size: usize) {
        self.transmit_buf = vec![0; size];
    }

    /// Makes the driver drop delivered slots from memory after every turn
    /// (`Replica::release_delivered`), all but the newest `lag`, as a
    /// driver bounding its window's bytes does; `None`: the window slides
    /// on its own.
    pub fn set_release_lag(&mut self, lag: Option<u64>) {
        self.release_lag = lag;
    }

    /// Its identity.
    pub fn id(&self) -> NodeId {
        self.config.id()
    }

    /// Whether it runs.
    pub fn is_up(&self) -> bool {
        self.replica.is_some()
    }

    /// A sync completed: every batch up to `seq` is durable. The next
    /// [`Node::drain`] confirms it.
    pub fn synced(&mut self, seq: PersistSeq) {
        self.synced = self.synced.max(Some(seq));
    }

    /// Forgets a sync not yet confirmed (a crash).
    pub fn forget_sync(&mut self) {
        self.synced = None;
    }

    /// The driver's turn after an input: `driver::drain` writes every
    /// batch to the disk (none while a lazy driver's sync is in flight),
    /// collects frames and events in `out`, and confirms what a completed
    /// sync made durable — or, if `confirm_at_once` (a sabotage), every
    /// batch it wrote, synced or not.
    pub fn drain(&mut self, now: Instant, confirm_at_once: bool, out: &mut Vec<Output>) -> Result<(), String> {
        if self.replica.is_none() {
            return Ok(());
        }
        // Slots delivered in earlier turns (those of this turn are still
        // reported in memory: the release is a step of its own).
        if let (Some(lag), Some(r)) = (self.release_lag, self.replica.as_mut()) {
            r.release_delivered(r.delivered().saturating_sub(lag));
        }
        let defer = self.lazy_persist && self.disk.syncing();
        let out = RefCell::new(out);
        let mut disk = SimDisk {
            buf: &mut self.persist_buf,
            disk: &mut self.disk,
            batches: &mut self.batches,
            synced: self.synced.take(),
            written: None,
            confirm_at_once,
        };
        let mut sink = Sink {
            buf: &mut self.transmit_buf,
            out: &out,
            empty: false,
        };
        let event = |e: Event<'_, Value>| out.borrow_mut().push(Output::Event(NodeEvent::from_event(e)));
        let drained = if defer {
            let Some(replica) = self.replica.take() else {
                return Ok(());
            };
            let mut lazy = Deferring(replica);
            let drained = driver::drain(&mut lazy, now, &mut disk, &mut sink, &event);
            self.replica = Some(lazy.0);
            drained
        } else {
            let Some(replica) = self.replica.as_mut() else {
                return Ok(());
            };
            driver::drain(replica, now, &mut disk, &mut sink, &event)
        };
        drained.map_err(|e| e.to_string())?;
        if sink.empty {
            return Err("poll_transmit claimed more bytes than its buffer holds".into());
        }
        Ok(())
    }
}

/// The node's disk as the driver sees it.
struct SimDisk<'a> {
    buf: &'a mut [u8],
    disk: &'a mut Disk,
    batches: &'a mut u64,
    /// What a completed sync made durable, not yet reported.
    synced: Option<PersistSeq>,
    /// The newest batch written in this drain.
    written: Option<PersistSeq>,
    /// The sabotage: report every batch written as durable.
    confirm_at_once: bool,
}

impl Storage for SimDisk<'_> {
    type Error = String;

    fn buffer(&mut self) -> &mut [u8] {
        self.buf
    }

    fn append(&mut self, seq: PersistSeq, len: usize) -> Result<(), String> {
        let Some(batch) = self.buf.get(..len).filter(|b| !b.is_empty()) else {
            return Err(format!(
                "poll_persist claimed {len} bytes of a {}-byte buffer (batch {})",
                self.buf.len(),
                seq.0
            ));
        };
        self.disk.write(seq, batch);
        *self.batches += 1;
        self.written = Some(seq);
        Ok(())
    }

    fn sync(&mut self) -> Result<Option<PersistSeq>, String> {
        let written = self.written.take().filter(|_| self.confirm_at_once);
        Ok(self.synced.take().max(written))
    }
}

/// Frames as [`Output::Frame`]s, in the order sent.
struct Sink<'a, 'o> {
    buf: &'a mut [u8],
    out: &'a RefCell<&'o mut Vec<Output>>,
    /// A frame was empty: a length past the transmit buffer.
    empty: bool,
}

impl Network for Sink<'_, '_> {
    fn buffer(&mut self) -> &mut [u8] {
        self.buf
    }

    fn send(&mut self, to: NodeSet, len: usize) {
        let frame = self.buf.get(..len).unwrap_or_default();
        self.empty |= frame.is_empty();
        self.out.borrow_mut().push(Output::Frame {
            to,
            bytes: Rc::from(frame),
        });
    }
}

/// A replica as a lazy driver drains it while a sync is in flight: it
/// takes no batch, so records wait inside the replica. It owns the
/// replica (moved in and out for the drain): a view that borrowed it
/// could not be drained, since `drain`'s event callback takes the events
/// of every lifetime, which would make the borrow `'static`.
struct Deferring<C>(C);

impl<C: Core> Core for Deferring<C> {
    type Event<'a>
        = C::Event<'a>
    where
        Self: 'a;

    fn poll_timeout(&self) -> Instant {
        self.0.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.0.handle_timeout(now);
    }

    fn poll_persist(&mut self, _buf: &mut [u8]) -> Option<PersistRequest> {
        None
    }

    fn persisted(&mut self, now: Instant, seq: PersistSeq) -> Result<(), UnknownPersist> {
        self.0.persisted(now, seq)
    }

    fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        self.0.poll_transmit(buf)
    }

    fn poll_event(&mut self) -> Option<C::Event<'_>> {
        self.0.poll_event()
    }
}
