//! The driver loop, written once.
//!
//! The core never waits, reads a clock or touches a device: a driver feeds
//! it inputs and carries out its outputs. Everything a driver does after
//! its inputs is the same whatever the device, so it lives here, in
//! [`drain`], over three small traits a host implements: [`Core`] (what is
//! driven: a [`Replica`] or a [`KeyedNode`]), [`Storage`] (where record
//! batches go) and [`Network`] (where frames go). The std runtime, the
//! firmware, the simulator, the model checker, the fuzzer and the
//! benchmark all drain through it; they differ only in how they wait and
//! in what their storage and network are.
//!
//! One turn of a driver:
//!
//! ```text
//! for each input that arrived: core.handle_message(..) / propose(..)
//! driver::tick(core, now)                 // fires the deadline if it passed
//! driver::drain(core, now, storage, network, on_event)
//! wait for an input, a finished sync, or core.poll_timeout()
//! ```
//!
//! The core writes batches and frames straight into buffers the storage
//! and the network lend it ([`Storage::buffer`], [`Network::buffer`]):
//! nothing is copied on the way, and a host can leave room for its own
//! header in front.
//!
//! [`drain`]'s order is what makes a node fast and safe at once:
//!
//! 1. **write** every record batch the core asks for ([`Storage::append`],
//!    not yet durable);
//! 2. **send** every frame that may leave now. Persist before reveal is
//!    the core's rule, not the driver's: promises and votes that depend on
//!    the batches just written stay queued inside the core, while a
//!    leader's appends (which reveal nothing of its own durable state)
//!    leave at once, so the followers' syncs run while the leader's does;
//! 3. **deliver** events: decisions rest on votes already durable at a
//!    quorum;
//! 4. **sync** ([`Storage::sync`]): a blocking log makes everything
//!    appended durable here, a pipelined one reports what its sync thread
//!    finished; either way the newest durable batch is confirmed with
//!    `persisted` (one confirmation covers every earlier batch: group
//!    commit), and what it released is sent and delivered; records the
//!    confirmation queued (a new leader's re-proposals) are written at
//!    once, going round again.
//!
//! A storage that is durable as soon as it has appended (flash written
//! synchronously, an in-memory log) says so with
//! [`Storage::DURABLE_ON_APPEND`]: it is then confirmed before anything is
//! sent, and everything leaves in one pass.
//!
//! A storage error stops the turn before anything is confirmed: a node
//! must never confirm a record that is not durable.
//!
//! [`Replica`]: crate::replica::Replica
//! [`KeyedNode`]: crate::keyed::KeyedNode

use crate::ballot::NodeSet;
use crate::keyed::{KeyedEvent, KeyedNode};
use crate::persist_seq::PersistSeq;
use crate::replica::{Event, PersistRequest, Replica, Transmit, UnknownPersist, Value};
use crate::time::Instant;
use core::fmt;
use core::hash::Hash;

/// What a driver drives: the outputs of a sans-IO node, in quinn's shape.
/// Implemented by [`Replica`] and [`KeyedNode`]; inputs (messages,
/// proposals) stay on the concrete types, since they differ.
pub trait Core {
    /// What the node reports to its application.
    type Event<'a>
    where
        Self: 'a;

    /// When [`Core::handle_timeout`] is due next.
    fn poll_timeout(&self) -> Instant;
    /// Fires the node's timers.
    fn handle_timeout(&mut self, now: Instant);
    /// The next record batch to make durable, written into `buf`.
    fn poll_persist(&mut self, buf: &mut [u8]) -> Option<PersistRequest>;
    /// Every batch up to `seq` is durable.
    fn persisted(&mut self, now: Instant, seq: PersistSeq) -> Result<(), UnknownPersist>;
    /// The next frame to send, written into `buf`.
    fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit>;
    /// The next event for the application.
    fn poll_event(&mut self) -> Option<Self::Event<'_>>;
}

/// Where record batches go: a file, flash, or a simulated disk.
pub trait Storage {
    /// Why the storage failed; the node must stop.
    type Error;

    /// Whether a batch is durable once [`Storage::append`] returns.
    const DURABLE_ON_APPEND: bool = false;

    /// Where the core writes the next batch:
    /// [`Replica::MIN_PERSIST_BUFFER`](crate::replica::Replica::MIN_PERSIST_BUFFER)
    /// bytes at least.
    fn buffer(&mut self) -> &mut [u8];

    /// The first `len` bytes of the buffer last lent are batch `seq`
    /// (batches come in order). It need not be durable when this returns;
    /// a storage that is durable at once remembers `seq` for the next
    /// [`Storage::sync`].
    fn append(&mut self, seq: PersistSeq, len: usize) -> Result<(), Self::Error>;

    /// Makes progress on durability and reports it: the newest batch that
    /// is durable now and was not reported before, or `None`. A blocking
    /// log syncs here; a pipelined one returns what its sync thread has
    /// finished, without waiting. Never report a batch that is not
    /// durable: the core would reveal votes a crash could lose.
    fn sync(&mut self) -> Result<Option<PersistSeq>, Self::Error>;
}

/// Where frames go. Delivery is best effort: the protocol survives loss,
/// so a send that fails is the network's to count, not the driver's.
pub trait Network {
    /// Where the core writes the next frame:
    /// [`Replica::MAX_MESSAGE_SIZE`](crate::replica::Replica::MAX_MESSAGE_SIZE)
    /// bytes for every message to fit.
    fn buffer(&mut self) -> &mut [u8];

    /// Sends the first `len` bytes of the buffer last lent to every node
    /// of `to` (this node included, if `to` names it: delivering to itself
    /// is the network's job).
    fn send(&mut self, to: NodeSet, len: usize);
}

/// What one [`drain`] did, for counters and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Record batches appended.
    pub batches: usize,
    /// The newest batch confirmed durable, if one was.
    pub confirmed: Option<PersistSeq>,
    /// Frames sent.
    pub frames: usize,
    /// Events delivered.
    pub events: usize,
}

/// Why [`drain`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveError<E> {
    /// Appending batch `seq` failed. The batch has left the core: a
    /// driver that can still make its contents durable (a full flash log
    /// compacted into a checkpoint, which holds everything the batch
    /// held) confirms `seq` itself and drains again; any other driver
    /// stops the node.
    Append {
        /// The batch that was not appended.
        seq: PersistSeq,
        /// Why.
        error: E,
    },
    /// The sync failed: stop the node. What was appended may not be
    /// durable, and nothing was confirmed.
    Sync(E),
    /// The storage reported a batch the core never handed out (a storage
    /// bug). Nothing was confirmed.
    UnknownPersist(PersistSeq),
}

impl<E: fmt::Display> fmt::Display for DriveError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriveError::Append { seq, error } => write!(f, "appending batch {} failed: {error}", seq.0),
            DriveError::Sync(e) => write!(f, "sync failed: {e}"),
            DriveError::UnknownPersist(seq) => write!(f, "storage confirmed batch {} that was never written", seq.0),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for DriveError<E> {}

/// Fires `core`'s deadline if it has passed. Returns whether it fired.
pub fn tick<C: Core>(core: &mut C, now: Instant) -> bool {
    let due = now >= core.poll_timeout();
    if due {
        core.handle_timeout(now);
    }
    due
}

/// Carries out every output `core` has after its inputs: write, send,
/// deliver, sync, confirm, send and deliver again, and round again while
/// confirmations queue new records. See the [module docs](self) for why
/// in this order.
///
/// # Errors
///
/// [`DriveError::Append`] or [`DriveError::Sync`] when the storage fails
/// (nothing is confirmed after it), [`DriveError::UnknownPersist`] when it
/// reports a batch never written.
#[inline]
pub fn drain<C, S, N>(
    core: &mut C,
    now: Instant,
    storage: &mut S,
    network: &mut N,
    mut on_event: impl FnMut(C::Event<'_>),
) -> Result<Drained, DriveError<S::Error>>
where
    C: Core,
    S: Storage,
    N: Network,
{
    let mut done = Drained::default();
    let mut first = true;
    loop {
        let mut appended = 0;
        while let Some(p) = core.poll_persist(storage.buffer()) {
            storage
                .append(p.seq, p.len)
                .map_err(|error| DriveError::Append { seq: p.seq, error })?;
            appended += 1;
        }
        done.batches += appended;
        // After a confirmation, a round with nothing new to write is over:
        // what the confirmation released has been sent.
        if !first && appended == 0 {
            return Ok(done);
        }
        first = false;
        if !S::DURABLE_ON_APPEND {
            send_and_deliver(core, network, &mut on_event, &mut done);
        }
        let confirmed = storage.sync().map_err(DriveError::Sync)?;
        if let Some(seq) = confirmed {
            core.persisted(now, seq)
                .map_err(|UnknownPersist(seq)| DriveError::UnknownPersist(seq))?;
            done.confirmed = Some(seq);
        }
        if S::DURABLE_ON_APPEND || confirmed.is_some() {
            send_and_deliver(core, network, &mut on_event, &mut done);
        }
        if confirmed.is_none() {
            return Ok(done);
        }
    }
}

#[inline]
fn send_and_deliver<C: Core, N: Network>(
    core: &mut C,
    network: &mut N,
    on_event: &mut impl FnMut(C::Event<'_>),
    done: &mut Drained,
) {
    while let Some(t) = core.poll_transmit(network.buffer()) {
        network.send(t.to, t.len);
        done.frames += 1;
    }
    while let Some(event) = core.poll_event() {
        on_event(event);
        done.events += 1;
    }
}

impl<V: Value, const N: usize, const W: usize> Core for Replica<V, N, W> {
    type Event<'a>
        = Event<'a, V>
    where
        Self: 'a;

    fn poll_timeout(&self) -> Instant {
        Replica::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Replica::handle_timeout(self, now);
    }

    fn poll_persist(&mut self, buf: &mut [u8]) -> Option<PersistRequest> {
        Replica::poll_persist(self, buf)
    }

    fn persisted(&mut self, now: Instant, seq: PersistSeq) -> Result<(), UnknownPersist> {
        Replica::persisted(self, now, seq)
    }

    fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        Replica::poll_transmit(self, buf)
    }

    fn poll_event(&mut self) -> Option<Event<'_, V>> {
        Replica::poll_event(self)
    }
}

impl<K, V, const N: usize, const W: usize, const CAP: usize> Core for KeyedNode<K, V, N, W, CAP>
where
    K: Value + Hash,
    V: Value,
{
    type Event<'a>
        = KeyedEvent<K, V>
    where
        Self: 'a;

    fn poll_timeout(&self) -> Instant {
        self.replica().poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.replica_mut().handle_timeout(now);
    }

    fn poll_persist(&mut self, buf: &mut [u8]) -> Option<PersistRequest> {
        self.replica_mut().poll_persist(buf)
    }

    fn persisted(&mut self, now: Instant, seq: PersistSeq) -> Result<(), UnknownPersist> {
        self.replica_mut().persisted(now, seq)
    }

    fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        self.replica_mut().poll_transmit(buf)
    }

    fn poll_event(&mut self) -> Option<KeyedEvent<K, V>> {
        KeyedNode::poll_event(self)
    }
}
