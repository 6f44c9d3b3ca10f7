//! One node's work, without any waiting: the replica and its registers,
//! the file log, the asks in progress. Both drivers — the blocking
//! [`node`](crate::node) and the tokio `async_node`
//! when that feature is on — feed an [`Engine`] the same way and differ
//! only in how they wait for inputs, deadlines and `fdatasync`.
//!
//! One turn:
//!
//! ```text
//! for each input that arrived:  engine.handle_datagram(..) / engine.handle_request(..)
//! engine.tick()                 // fires the replica's deadline if passed, retries asks
//! engine.flush()                // paxos_core::driver::drain: append, send, events, confirm
//! sleep until engine.wait()     // or the next input, or the sync thread's wake-up
//! ```
//!
//! The log lives on its own thread ([`SyncPipeline`]): `flush` never waits
//! for the disk. The leader's appends leave before its own `fdatasync`, the
//! followers sync while it does, and the next group is built while the
//! last one syncs; the pipeline wakes the driver when a sync finishes, and
//! the next `flush` confirms it and releases what waited on it.

use crate::app::{self, App, Key, Value};
use crate::client::Status;
use crate::forward::{self, Forward};
use crate::request::{Reply, ReplyTo, Request};
use paxos_core::driver;
use paxos_core::keyed::{self, KeyedEvent};
use paxos_core::replica::{Handled, ProposalId, ProposeError, Replica};
use paxos_core::{Instant, NodeId};
use paxos_std::clock::Clock;
use paxos_std::options::replica_config;
pub use paxos_std::options::{NodeError, NodeOptions};
use paxos_std::pieces::{self, Pieces, Sends};
use paxos_std::storage::{FileLog, Recovered, StorageError, SyncPipeline, Wake};
use paxos_std::transport::{ChannelNetwork, Link};
use std::collections::HashMap;
use std::time::Duration;

/// Who waits for an ask.
#[derive(Debug)]
enum Origin {
    Client(ReplyTo),
    Peer { node: NodeId, request: u64 },
}

/// An ask not answered yet.
#[derive(Debug)]
struct Outstanding {
    key: Key,
    value: Option<Value>,
    origin: Origin,
    next_try: Instant,
    expires: Instant,
}

// The sync thread's batch buffers hold the smallest batch the replica
// needs.
const _: () = assert!(
    Replica::<keyed::Command<Key, Value>, { app::MAX_NODES }, { app::WINDOW }>::MIN_PERSIST_BUFFER
        <= paxos_std::storage::BATCH_BUFFER
);

/// How long an ask may stay unanswered before the node gives up on it.
const ASK_EXPIRY: paxos_core::Duration = paxos_core::Duration::from_millis(10_000);
/// How long before a forwarded ask is sent again.
const FORWARD_RETRY: paxos_core::Duration = paxos_core::Duration::from_millis(300);
/// Send a lagging peer a snapshot at most this often.
const SNAPSHOT_INTERVAL: paxos_core::Duration = paxos_core::Duration::from_millis(500);
/// The longest a driver sleeps between turns, so retries run.
const MAX_WAIT: Duration = Duration::from_millis(50);
pub use paxos_std::receiver::MAX_INPUTS_PER_TURN;

/// Why an ask of a new key failed: every register is taken. The `Set` was
/// still decided (the log is the log), on every node alike.
pub const FULL: &str = "the cluster holds no more keys";

/// The stack a thread needs to [`Engine::start`]: rebuilding the registers
/// (megabytes) goes through the stack before it lands in its box.
pub const STACK: usize = 256 << 20;

/// Opens the data directory of `options` (taking its lock) and reads what
/// it holds, for [`Engine::start`].
///
/// # Errors
///
/// [`NodeError::Storage`] if the directory cannot be used.
pub fn open_log(options: &NodeOptions) -> Result<(FileLog, Recovered), NodeError> {
    FileLog::open(&options.data_dir).map_err(NodeError::Storage)
}

/// A node's state and the logic of one turn; see the [module docs](self).
///
/// `L` is how it sends: [`UdpTransport`](paxos_std::transport::UdpTransport),
/// `transport::TokioUdpTransport` (feature
/// `tokio`), or an `Arc` of either.
pub struct Engine<L: Link> {
    app: Box<App>,
    log: SyncPipeline,
    link: L,
    clock: Clock,
    me: NodeId,
    /// Forwards and snapshot pieces are encoded here (its length is its
    /// capacity: never resized).
    tx: Vec<u8>,
    /// Consensus datagram payloads are built here: a channel byte, then
    /// the frame the replica writes in place.
    datagram: Vec<u8>,
    /// The events of a turn, kept to reuse the allocation.
    events: Vec<KeyedEvent<Key, Value>>,
    outstanding: HashMap<u64, Outstanding>,
    by_proposal: HashMap<ProposalId, u64>,
    next_request: u64,
    /// Scratch for the asks due in a turn, reused so turns do not allocate.
    due: Vec<u64>,
    /// Set when an append or a sync failed: the node must stop voting.
    storage_error: Option<StorageError>,
    /// The applied slot at the last compaction.
    compacted_at: u64,
    compact_every: u64,
    /// When a snapshot was last sent to each peer.
    snapshot_sends: Sends,
    /// A snapshot being received: its id and pieces.
    receiving: Pieces,
}

impl<L: Link> Engine<L> {
    /// Rebuilds a node from what its log held and starts it, sending
    /// through `link`. The log moves to its sync thread, which calls
    /// `wake` after each sync: the driver then runs a turn.
    ///
    /// # Errors
    ///
    /// [`NodeError::Config`] for invalid options,
    /// [`NodeError::Recover`] / [`NodeError::Snapshot`] if the log's
    /// contents do not replay, [`NodeError::Io`] if the sync thread does
    /// not start.
    pub fn start(
        options: &NodeOptions,
        log: FileLog,
        recovered: &Recovered,
        link: L,
        wake: Wake,
    ) -> Result<Self, NodeError> {
        let clock = Clock::new();
        let config = replica_config(options)?;
        let batches = recovered.batches.iter().map(Vec::as_slice);
        let snapshot = match &recovered.snapshot {
            Some(bytes) => Some(app::Snapshot::decode(bytes).ok_or(NodeError::Snapshot)?),
            None => None,
        };
        let app = match snapshot {
            Some(snapshot) => App::recover_from(config, clock.now(), snapshot.slot, snapshot.registers, batches),
            // An empty data directory is this node's first boot. A node
            // whose disk was lost must not boot as new (it would vote again
            // and forget what it voted): start it with
            // `NodeOptions::storage_lost`, and it comes back as a learner.
            None if recovered.batches.is_empty() && !options.storage_lost => {
                App::new(config, clock.now()).map_err(paxos_core::replica::RecoverError::Config)
            }
            None => App::recover(config, clock.now(), batches),
        };
        let app = Box::new(app.map_err(NodeError::Recover)?);
        let compacted_at = app.applied();
        tracing::info!(
            node = %options.id,
            decided = app.replica().decided(),
            records = recovered.batches.len(),
            "started"
        );
        Ok(Engine {
            app,
            log: SyncPipeline::start(log, wake).map_err(NodeError::Io)?,
            link,
            clock,
            me: options.id,
            // Room for the largest datagram: replica frames and snapshot pieces.
            tx: vec![0; paxos_std::transport::MAX_FRAME_LEN],
            datagram: vec![0; paxos_std::transport::MAX_FRAME_LEN],
            events: Vec::new(),
            outstanding: HashMap::new(),
            by_proposal: HashMap::new(),
            next_request: 0,
            due: Vec::new(),
            storage_error: None,
            compacted_at,
            compact_every: options.compact_every.max(1),
            snapshot_sends: Sends::new(SNAPSHOT_INTERVAL),
            receiving: Pieces::new(),
        })
    }

    /// This node.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// The transport it sends through.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// The replica and its registers.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// How long the driver may wait for inputs before calling
    /// [`tick`](Self::tick): until the replica's deadline, at most 50 ms.
    pub fn wait(&self) -> Duration {
        self.clock.until(self.app.replica().poll_timeout()).min(MAX_WAIT)
    }

    /// The storage error that stopped the node, if one did: a node that
    /// cannot make its votes durable must not vote, so the driver stops.
    pub fn take_storage_error(&mut self) -> Option<StorageError> {
        self.storage_error.take()
    }

    /// Takes a datagram's payload from `from` (a channel byte, then a
    /// consensus frame or a [`Forward`]).
    pub fn handle_datagram(&mut self, from: NodeId, payload: &[u8]) {
        let now = self.clock.now();
        let Some((&channel, body)) = payload.split_first() else {
            return;
        };
        match channel {
            forward::CONSENSUS => {
                if let Handled::Dropped(e) = self.app.replica_mut().handle_message(now, from, body) {
                    tracing::debug!(node = %self.me, %from, "dropped: {e}");
                }
            }
            forward::FORWARD => {
                if let Some(message) = forward::decode(body) {
                    self.on_forward(from, message);
                }
            }
            _ => tracing::debug!(node = %self.me, %from, "unknown channel {channel}"),
        }
    }

    /// Takes a request from the embedding process.
    pub fn handle_request(&mut self, request: Request) {
        let now = self.clock.now();
        match request {
            Request::Ask { key, value, reply } => self.submit(key, value, Origin::Client(reply), now),
            Request::Status { reply } => reply.send(Reply::Status(self.status())),
            Request::Local { key, reply } => {
                let value = self.app.local(&key).cloned();
                reply.send(Reply::Answer { key, value });
            }
        }
    }

    /// Fires the replica's deadline if it passed, and retries the asks
    /// that are due. Call once per turn, after the inputs.
    pub fn tick(&mut self) {
        let now = self.clock.now();
        if now >= self.app.replica().poll_timeout() {
            self.app.replica_mut().handle_timeout(now);
        }
        self.retry_asks(now);
    }

    /// The rest of a turn: [`driver::drain`] (append every batch to the
    /// sync thread, send what may leave, act on events, confirm what the
    /// last finished sync covered, send and act again), then compaction if
    /// due. Never waits for the disk. Does nothing once storage failed.
    pub fn flush(&mut self) {
        if self.storage_error.is_some() {
            return;
        }
        let now = self.clock.now();
        let mut events = std::mem::take(&mut self.events);
        let drained = {
            let mut network = ChannelNetwork {
                link: &self.link,
                channel: forward::CONSENSUS,
                frame: &mut self.datagram,
            };
            driver::drain(&mut *self.app, now, &mut self.log, &mut network, |e| events.push(e))
        };
        for event in events.drain(..) {
            self.on_event(event, now);
        }
        self.events = events;
        if let Err(e) = drained {
            tracing::error!(node = %self.me, "{e}");
            self.storage_error = Some(e.into());
            return;
        }
        if self.app.applied() >= self.compacted_at + self.compact_every {
            self.compact();
        }
    }

    fn on_event(&mut self, event: KeyedEvent<Key, Value>, now: Instant) {
        match event {
            KeyedEvent::Answered { proposal, key, value } => {
                if let Some(o) = self.take_proposal(proposal) {
                    self.reply(o.origin, key, value);
                }
            }
            KeyedEvent::Full { proposal } => {
                if let Some(o) = self.take_proposal(proposal) {
                    self.fail(o.origin, o.key, FULL);
                }
            }
            KeyedEvent::Displaced { proposal } => {
                if let Some(id) = self.by_proposal.remove(&proposal) {
                    if let Some(o) = self.outstanding.get_mut(&id) {
                        o.next_try = now;
                    }
                }
            }
            KeyedEvent::LeaderChanged { leader } => {
                tracing::info!(node = %self.me, leader = ?leader.map(|l| l.0), "leader changed");
            }
            KeyedEvent::SnapshotNeeded { peer, from } => self.send_snapshot(peer, from, now),
            KeyedEvent::Applied { .. } => {}
        }
    }

    fn take_proposal(&mut self, proposal: ProposalId) -> Option<Outstanding> {
        self.by_proposal
            .remove(&proposal)
            .and_then(|id| self.outstanding.remove(&id))
    }

    fn on_forward(&mut self, from: NodeId, message: Forward) {
        let now = self.clock.now();
        match message {
            Forward::Ask { request, key, value } => {
                let origin = Origin::Peer { node: from, request };
                self.submit(key, value, origin, now);
            }
            Forward::Answer { request, key, value } => {
                if let Some(o) = self.outstanding.remove(&request) {
                    self.reply(o.origin, key, value);
                }
            }
            Forward::Refused { request } => {
                if let Some(o) = self.outstanding.get_mut(&request) {
                    o.next_try = now + paxos_core::Duration::from_millis(50);
                }
            }
            Forward::SnapshotChunk { id, index, count, data } => self.on_snapshot_chunk(id, index, count, data),
        }
    }

    fn status(&self) -> Status {
        let r = self.app.replica();
        let c = r.counters();
        let t = self.link.counters();
        let mut dropped = std::collections::BTreeMap::new();
        for (name, n) in [
            ("unknown_peer", c.unknown_peer + t.unknown_peer),
            ("malformed", c.malformed + t.malformed),
            ("bad_tag", t.bad_tag),
            ("wrong_version", t.wrong_version),
            ("oversized", t.oversized),
            ("busy", c.busy),
            ("outbox_full", c.outbox_full),
            ("out_of_window", c.out_of_window),
            ("invalid", c.invalid),
            ("stale", c.stale),
            ("buffer_too_small", c.buffer_too_small),
        ] {
            dropped.insert(name.to_string(), n);
        }
        Status {
            id: self.me.0,
            leader: r.leader().map(|l| l.0),
            ballot: r.promised().map(|b| (b.round, b.node.0)),
            decided: r.decided().checked_sub(1),
            applied: self.app.applied().checked_sub(1),
            dropped,
            syncs: self.log.stats().syncs,
            amnesiac: r.is_amnesiac(),
        }
    }

    /// Registers an ask and tries it at once.
    fn submit(&mut self, key: Key, value: Option<Value>, origin: Origin, now: Instant) {
        let id = self.next_request;
        self.next_request += 1;
        self.outstanding.insert(
            id,
            Outstanding {
                key,
                value,
                origin,
                next_try: now,
                expires: now + ASK_EXPIRY,
            },
        );
        self.try_ask(id, now);
    }

    fn retry_asks(&mut self, now: Instant) {
        let mut due = core::mem::take(&mut self.due);
        due.clear();
        due.extend(
            self.outstanding
                .iter()
                .filter(|(_, o)| o.next_try <= now)
                .map(|(id, _)| *id),
        );
        for &id in &due {
            self.try_ask(id, now);
        }
        self.due = due;
    }

    /// One attempt at an ask: answer it, put it in the log, or forward it.
    fn try_ask(&mut self, id: u64, now: Instant) {
        let Some(o) = self.outstanding.get_mut(&id) else { return };
        if now >= o.expires {
            if let Some(o) = self.outstanding.remove(&id) {
                self.fail(o.origin, o.key, "no decision in time");
            }
            return;
        }
        o.next_try = now + FORWARD_RETRY;
        let from_peer = matches!(o.origin, Origin::Peer { .. });
        let (key, value) = (o.key.clone(), o.value.clone());
        let attempt = match value.clone() {
            Some(v) => self.app.ask(now, key.clone(), v),
            None => self.app.read(now, key.clone()),
        };
        match attempt {
            Ok(keyed::Answer::Now(v)) => {
                if let Some(o) = self.outstanding.remove(&id) {
                    self.reply(o.origin, key, v);
                }
            }
            Ok(keyed::Answer::Pending(proposal)) => {
                self.by_proposal.insert(proposal, id);
            }
            Err(ProposeError::NotLeader { leader: Some(leader) }) => {
                if from_peer {
                    // Never forward a forward: the asking node retries.
                    if let Some(o) = self.outstanding.remove(&id) {
                        self.fail(o.origin, o.key, "not the leader");
                    }
                } else {
                    self.send_forward(
                        leader,
                        &Forward::Ask {
                            request: id,
                            key,
                            value,
                        },
                    );
                }
            }
            Err(ProposeError::Busy) => {
                // The pipeline is full: try again next turn, which comes
                // with the next message (a vote frees room) or within
                // MAX_WAIT.
                if let Some(o) = self.outstanding.get_mut(&id) {
                    o.next_try = now;
                }
            }
            Err(_) => {
                // No leader known: an election is under way.
                if let Some(o) = self.outstanding.get_mut(&id) {
                    o.next_try = now + paxos_core::Duration::from_millis(20);
                }
            }
        }
    }

    /// Sends `peer`, which lacks slots from `from`, the registers.
    fn send_snapshot(&mut self, peer: NodeId, from: u64, now: Instant) {
        let Some(id) = self.snapshot_sends.allow(self.me, peer, now) else {
            return;
        };
        let snapshot = app::Snapshot::of(&self.app);
        let bytes = snapshot.encode();
        tracing::info!(node = %self.me, %peer, from, slot = snapshot.slot, bytes = bytes.len(), "sending a snapshot");
        for (index, count, data) in pieces::split(&bytes, forward::CHUNK) {
            self.send_forward(
                peer,
                &Forward::SnapshotChunk {
                    id,
                    index,
                    count,
                    data: data.to_vec(),
                },
            );
        }
    }

    /// Collects a snapshot's pieces; installs it once whole.
    fn on_snapshot_chunk(&mut self, id: u64, index: u32, count: u32, data: Vec<u8>) {
        tracing::debug!(node = %self.me, id, index, count, len = data.len(), "snapshot piece");
        let max_count = 1 + (app::REGISTERS * 200 / forward::CHUNK) as u32;
        let Some(bytes) = self.receiving.offer(id, index, count, data, max_count) else {
            return;
        };
        let Some(snapshot) = app::Snapshot::decode(&bytes) else {
            tracing::warn!(node = %self.me, "a snapshot that does not decode");
            return;
        };
        if snapshot.slot <= self.app.replica().decided() {
            return;
        }
        let now = self.clock.now();
        let slot = snapshot.slot;
        if let Err(e) = self.app.install_snapshot(now, slot, snapshot.registers) {
            tracing::warn!(node = %self.me, "snapshot not installed: {e}");
            return;
        }
        tracing::info!(node = %self.me, slot, "installed a snapshot");
        // The replica's log now starts at `slot`, and its record of that
        // goes in this turn's batch: the registers must be on disk first.
        // The compaction is queued now, before the drain appends that
        // batch, and the sync thread keeps the order.
        self.compact();
    }

    /// Replaces the log with a snapshot of the registers and a checkpoint
    /// of the replica.
    fn compact(&mut self) {
        let snapshot = app::Snapshot::of(&self.app).encode();
        let mut checkpoint =
            vec![0u8; Replica::<keyed::Command<Key, Value>, { app::MAX_NODES }, { app::WINDOW }>::MAX_CHECKPOINT_SIZE];
        let Ok(len) = self.app.replica().write_checkpoint(&mut checkpoint) else {
            return;
        };
        checkpoint.truncate(len);
        match self.log.compact(snapshot, checkpoint) {
            Ok(()) => self.compacted_at = self.app.applied(),
            Err(e) => {
                tracing::error!(node = %self.me, "compaction failed: {e}");
                self.storage_error = Some(e);
            }
        }
    }

    fn send_forward(&mut self, to: NodeId, message: &Forward) {
        if let Some(len) = forward::encode(message, &mut self.tx) {
            if let Err(e) = self.link.send(to, self.tx.get(..len).unwrap_or_default()) {
                tracing::debug!(node = %self.me, %to, "forward not sent: {e}");
            }
        }
    }

    fn reply(&mut self, origin: Origin, key: Key, value: Option<Value>) {
        match origin {
            Origin::Client(tx) => tx.send(Reply::Answer { key, value }),
            Origin::Peer { node, request } => self.send_forward(node, &Forward::Answer { request, key, value }),
        }
    }

    fn fail(&mut self, origin: Origin, key: Key, why: &'static str) {
        match origin {
            Origin::Client(tx) => tx.send(Reply::Failed { key, error: why }),
            Origin::Peer { node, request } => self.send_forward(node, &Forward::Refused { request }),
        }
    }
}
