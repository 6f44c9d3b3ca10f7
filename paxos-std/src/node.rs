//! The blocking driver: one replica (running the keyed registers of
//! [`crate::app`]) on a plain loop over a UDP socket and a file log.
//!
//! The loop, which any event loop can copy:
//!
//! 1. wait for an input (a datagram, read by a receiver thread, or a client
//!    request) until the replica's next deadline;
//! 2. hand every input that arrived to the replica or the registers;
//! 3. fire the deadline if it passed;
//! 4. flush: append every record batch the replica asks for, **one**
//!    `fdatasync` for all of them, confirm; then send every message; then
//!    act on every event.
//!
//! Step 4 is where group commit happens: everything that arrived in one
//! turn costs one sync.

use crate::app::{self, App, Key, Value};
use crate::client::{Answer, ClientReply, Status};
use crate::clock::Clock;
use crate::forward::{self, Forward};
use crate::storage::{FileLog, StorageError};
use crate::transport::{ClusterKey, UdpTransport};
use paxos_core::keyed::{self, KeyedEvent};
use paxos_core::replica::{Config, ProposalId, ProposeError, Replica};
use paxos_core::{Instant, NodeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// This node.
    pub id: NodeId,
    /// Its UDP address.
    pub listen: SocketAddr,
    /// Every other node and its UDP address.
    pub peers: Vec<(NodeId, SocketAddr)>,
    /// Where its log lives.
    pub data_dir: PathBuf,
    /// The cluster key that authenticates datagrams.
    pub key: ClusterKey,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Election timeout (randomized up to twice this).
    pub election_timeout: Duration,
}

/// A request from a client (or from the process embedding the node).
#[derive(Debug)]
pub enum Request {
    /// gen_paxos's ask: with a value, propose it; without, read.
    Ask {
        /// The key.
        key: Key,
        /// The value to propose, if any.
        value: Option<Value>,
        /// Where the reply goes.
        reply: Sender<ClientReply>,
    },
    /// The node's status.
    Status {
        /// Where the reply goes.
        reply: Sender<ClientReply>,
    },
    /// The value this node holds for `key`, without consensus (for
    /// checking that replicas agree).
    Local {
        /// The key.
        key: Key,
        /// Where the reply goes.
        reply: Sender<ClientReply>,
    },
}

/// Why a node could not start or stopped.
#[derive(Debug)]
pub enum NodeError {
    /// The data directory could not be used.
    Storage(StorageError),
    /// The records in it could not be replayed.
    Recover(paxos_core::replica::RecoverError),
    /// Its snapshot does not decode.
    Snapshot,
    /// The configuration is invalid.
    Config(paxos_core::replica::ConfigError),
    /// The socket could not be opened.
    Io(std::io::Error),
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Storage(e) => write!(f, "data directory: {e}"),
            NodeError::Recover(e) => write!(f, "recovery: {e}"),
            NodeError::Snapshot => write!(f, "the snapshot in the data directory does not decode"),
            NodeError::Config(e) => write!(f, "configuration: {e}"),
            NodeError::Io(e) => write!(f, "socket: {e}"),
        }
    }
}

impl std::error::Error for NodeError {}

/// Who waits for an ask.
#[derive(Debug)]
enum Origin {
    Client(Sender<ClientReply>),
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

/// How long an ask may stay unanswered before the node gives up on it.
const ASK_EXPIRY: Duration = Duration::from_secs(10);
/// How long before a forwarded ask is sent again.
const FORWARD_RETRY: Duration = Duration::from_millis(300);

/// A running node's state.
struct Node {
    app: Box<App>,
    log: FileLog,
    net: Arc<UdpTransport>,
    clock: Clock,
    me: NodeId,
    tx: Vec<u8>,
    persist: Vec<u8>,
    outstanding: HashMap<u64, Outstanding>,
    by_proposal: HashMap<ProposalId, u64>,
    next_request: u64,
    /// Set when an append or a sync failed: the node must stop voting.
    storage_error: Option<StorageError>,
    /// The applied slot at the last compaction.
    compacted_at: u64,
    /// When a snapshot was last sent to each peer.
    snapshot_sent: HashMap<NodeId, Instant>,
    /// A snapshot being received: its id and pieces.
    receiving: Option<(u64, Vec<Option<Vec<u8>>>)>,
}

/// Compact the log once this many slots were applied since the last time.
const COMPACT_EVERY: u64 = 20_000;
/// Send a lagging peer a snapshot at most this often.
const SNAPSHOT_INTERVAL: paxos_core::Duration = paxos_core::Duration::from_millis(500);

/// What wakes the loop.
enum Input {
    Datagram { from: NodeId, payload: Vec<u8> },
    Request(Request),
}

/// Runs a node until `stop` is set, serving `requests`.
pub fn run(options: NodeOptions, requests: Receiver<Request>, stop: Arc<AtomicBool>) -> Result<(), NodeError> {
    let mut node = Node::start(options)?;
    let (tx, inputs) = mpsc::channel();
    let receiver = spawn_receiver(Arc::clone(&node.net), tx.clone(), Arc::clone(&stop));
    let bridge = spawn_bridge(requests, tx, Arc::clone(&stop));
    let mut result = Ok(());
    while !stop.load(Ordering::Relaxed) {
        node.turn(&inputs);
        if let Some(e) = node.storage_error.take() {
            // A node that cannot make its votes durable must not vote.
            result = Err(NodeError::Storage(e));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = receiver.map(|t| t.join());
    let _ = bridge.map(|t| t.join());
    tracing::info!(node = %node.me, "stopped");
    result
}

/// Reads datagrams and queues them for the loop.
fn spawn_receiver(net: Arc<UdpTransport>, tx: Sender<Input>, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("paxos-udp".into()).spawn(move || {
        let mut buf = vec![0u8; crate::transport::RECV_BUFFER_LEN];
        while !stop.load(Ordering::Relaxed) {
            match net.recv(&mut buf, Some(Duration::from_millis(50))) {
                Ok(Some(received)) => {
                    let payload = buf.get(received.frame).unwrap_or_default().to_vec();
                    if tx
                        .send(Input::Datagram {
                            from: received.from,
                            payload,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("receive failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    })
}

/// Moves client requests into the loop's input queue.
fn spawn_bridge(
    requests: Receiver<Request>,
    tx: Sender<Input>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("paxos-requests".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match requests.recv_timeout(Duration::from_millis(50)) {
                    Ok(r) => {
                        if tx.send(Input::Request(r)).is_err() {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
}

impl Node {
    fn start(options: NodeOptions) -> Result<Self, NodeError> {
        let clock = Clock::new();
        let (log, recovered) = FileLog::open(&options.data_dir).map_err(NodeError::Storage)?;
        let mut members: Vec<NodeId> = options.peers.iter().map(|(id, _)| *id).collect();
        members.push(options.id);
        members.sort();
        let mut config = Config::new(options.id, &members).map_err(NodeError::Config)?;
        config.heartbeat_interval = paxos_core::Duration::from_micros(options.heartbeat.as_micros() as u64);
        config.election_timeout = paxos_core::Duration::from_micros(options.election_timeout.as_micros() as u64);
        config.retransmit_timeout = config.heartbeat_interval.saturating_mul(2);
        config.seed = u64::from(options.id.0) ^ (std::process::id() as u64).rotate_left(17);
        config.validate().map_err(NodeError::Config)?;
        let batches = recovered.batches.iter().map(Vec::as_slice);
        let app = match &recovered.snapshot {
            Some(bytes) => {
                let snapshot = app::Snapshot::decode(bytes).ok_or(NodeError::Snapshot)?;
                App::recover_from(config, clock.now(), snapshot.slot, snapshot.registers, batches)
            }
            None => App::recover(config, clock.now(), batches),
        };
        let app = Box::new(app.map_err(NodeError::Recover)?);
        let compacted_at = app.applied();
        let net = UdpTransport::bind(options.listen, options.id, &options.peers, options.key)
            .map_err(|e| NodeError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", options.listen))))?;
        let net = Arc::new(net);
        tracing::info!(
            node = %options.id,
            decided = app.replica().decided(),
            records = recovered.batches.len(),
            "started"
        );
        Ok(Node {
            app,
            log,
            net,
            clock,
            me: options.id,
            // Room for the largest datagram: replica frames and snapshot pieces.
            tx: vec![0; crate::transport::MAX_FRAME_LEN],
            persist: vec![0; 1 << 20],
            outstanding: HashMap::new(),
            by_proposal: HashMap::new(),
            next_request: 0,
            storage_error: None,
            compacted_at,
            snapshot_sent: HashMap::new(),
            receiving: None,
        })
    }

    /// One turn of the loop.
    fn turn(&mut self, inputs: &Receiver<Input>) {
        let deadline = self.app.replica().poll_timeout();
        let wait = self.clock.until(deadline).min(Duration::from_millis(50));
        // Take every input already queued too, so that one sync covers them.
        let mut next = inputs.recv_timeout(wait).ok();
        let mut taken = 0;
        while let Some(input) = next {
            match input {
                Input::Datagram { from, payload } => self.on_datagram(from, &payload),
                Input::Request(request) => self.on_request(request),
            }
            taken += 1;
            next = if taken < 1024 { inputs.try_recv().ok() } else { None };
        }
        let now = self.clock.now();
        if now >= self.app.replica().poll_timeout() {
            self.app.replica_mut().handle_timeout(now);
        }
        self.retry_asks(now);
        self.flush();
    }

    fn on_datagram(&mut self, from: NodeId, payload: &[u8]) {
        let now = self.clock.now();
        let Some((&channel, body)) = payload.split_first() else {
            return;
        };
        match channel {
            forward::CONSENSUS => {
                if let Err(e) = self.app.replica_mut().handle_message(now, from, body) {
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

    fn on_request(&mut self, request: Request) {
        let now = self.clock.now();
        match request {
            Request::Ask { key, value, reply } => self.submit(key, value, Origin::Client(reply), now),
            Request::Status { reply } => {
                let _ = reply.send(ClientReply::Status(self.status()));
            }
            Request::Local { key, reply } => {
                let value = self.app.local(&key).map(app::text);
                let _ = reply.send(ClientReply::Answer(Answer {
                    key: app::text(&key),
                    value,
                }));
            }
        }
    }

    fn status(&self) -> Status {
        let r = self.app.replica();
        let c = r.counters();
        let t = self.net.counters();
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
        }
    }

    /// Registers an ask and tries it at once.
    fn submit(&mut self, key: Key, value: Option<Value>, origin: Origin, now: Instant) {
        let id = self.next_request;
        self.next_request += 1;
        let expires = now + paxos_core::Duration::from_micros(ASK_EXPIRY.as_micros() as u64);
        self.outstanding.insert(
            id,
            Outstanding {
                key,
                value,
                origin,
                next_try: now,
                expires,
            },
        );
        self.try_ask(id, now);
    }

    fn retry_asks(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, o)| o.next_try <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.try_ask(id, now);
        }
    }

    /// One attempt at an ask: answer it, put it in the log, or forward it.
    fn try_ask(&mut self, id: u64, now: Instant) {
        let Some(o) = self.outstanding.get_mut(&id) else { return };
        if now >= o.expires {
            if let Some(o) = self.outstanding.remove(&id) {
                self.fail(o.origin, "no decision in time");
            }
            return;
        }
        o.next_try = now + paxos_core::Duration::from_micros(FORWARD_RETRY.as_micros() as u64);
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
                let from_peer = matches!(self.outstanding.get(&id).map(|o| &o.origin), Some(Origin::Peer { .. }));
                if from_peer {
                    // Never forward a forward: the asking node retries.
                    if let Some(o) = self.outstanding.remove(&id) {
                        self.fail(o.origin, "not the leader");
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
            Err(ProposeError::NotLeader { leader: None } | ProposeError::Busy) | Err(_) => {
                // Try again soon: an election or a full window passes.
                if let Some(o) = self.outstanding.get_mut(&id) {
                    o.next_try = now + paxos_core::Duration::from_millis(20);
                }
            }
        }
    }

    /// Sends `peer`, which lacks slots from `from`, the registers.
    fn send_snapshot(&mut self, peer: NodeId, from: u64, now: Instant) {
        if self
            .snapshot_sent
            .get(&peer)
            .is_some_and(|at| now < *at + SNAPSHOT_INTERVAL)
        {
            return;
        }
        self.snapshot_sent.insert(peer, now);
        let snapshot = app::Snapshot::of(&self.app);
        let bytes = snapshot.encode();
        let count = bytes.len().div_ceil(forward::CHUNK).max(1) as u32;
        let id = now.as_micros() ^ u64::from(self.me.0) << 56;
        tracing::info!(node = %self.me, %peer, from, slot = snapshot.slot, bytes = bytes.len(), "sending a snapshot");
        for (index, data) in (0u32..).zip(bytes.chunks(forward::CHUNK)) {
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
        if count == 0 || count > 1 + (app::REGISTERS * 200 / forward::CHUNK) as u32 {
            return;
        }
        let pieces = match &mut self.receiving {
            Some((current, pieces)) if *current == id => pieces,
            _ => {
                self.receiving = Some((id, vec![None; count as usize]));
                match &mut self.receiving {
                    Some((_, pieces)) => pieces,
                    None => return,
                }
            }
        };
        if let Some(slot) = pieces.get_mut(index as usize) {
            *slot = Some(data);
        }
        if pieces.iter().any(Option::is_none) {
            return;
        }
        let bytes: Vec<u8> = pieces.iter().flatten().flatten().copied().collect();
        self.receiving = None;
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
        // The log now starts at `slot`: keep the registers in its place.
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
        match self.log.compact(&snapshot, &checkpoint[..len]) {
            Ok(()) => self.compacted_at = self.app.applied(),
            Err(e) => {
                tracing::error!(node = %self.me, "compaction failed: {e}");
                self.storage_error = Some(e);
            }
        }
    }

    fn send_forward(&mut self, to: NodeId, message: &Forward) {
        if let Some(len) = forward::encode(message, &mut self.tx) {
            if let Err(e) = self.net.send(to, &self.tx[..len]) {
                tracing::debug!(node = %self.me, %to, "forward not sent: {e}");
            }
        }
    }

    fn reply(&mut self, origin: Origin, key: Key, value: Option<Value>) {
        match origin {
            Origin::Client(tx) => {
                let answer = Answer {
                    key: app::text(&key),
                    value: value.as_ref().map(app::text),
                };
                let _ = tx.send(ClientReply::Answer(answer));
            }
            Origin::Peer { node, request } => self.send_forward(node, &Forward::Answer { request, key, value }),
        }
    }

    fn fail(&mut self, origin: Origin, why: &str) {
        match origin {
            Origin::Client(tx) => {
                let _ = tx.send(ClientReply::Error { error: why.to_string() });
            }
            Origin::Peer { node, request } => self.send_forward(node, &Forward::Refused { request }),
        }
    }

    /// Persist (one sync), then send, then act on events.
    fn flush(&mut self) {
        let mut confirm = None;
        while let Some(p) = self.app.replica_mut().poll_persist(&mut self.persist) {
            if let Err(e) = self.log.append(&self.persist[..p.len]) {
                tracing::error!(node = %self.me, "append failed: {e}");
                self.storage_error = Some(e);
                return;
            }
            confirm = Some(p.seq);
        }
        if let Some(seq) = confirm {
            if let Err(e) = self.log.sync() {
                tracing::error!(node = %self.me, "sync failed: {e}");
                self.storage_error = Some(e);
                return;
            }
            let _ = self.app.replica_mut().persisted(self.clock.now(), seq);
        }
        // The first byte of `tx` is the channel; the frame follows it.
        while let Some(t) = self
            .app
            .replica_mut()
            .poll_transmit(self.tx.get_mut(1..).unwrap_or_default())
        {
            if let Some(channel) = self.tx.first_mut() {
                *channel = forward::CONSENSUS;
            }
            let frame = self.tx.get(..t.len + 1).unwrap_or_default();
            if let Err(e) = self.net.send_to_set(&t.to, frame) {
                tracing::debug!(node = %self.me, "send failed: {e}");
            }
        }
        let now = self.clock.now();
        while let Some(event) = self.app.poll_event() {
            match event {
                KeyedEvent::Answered { proposal, key, value } => {
                    if let Some(o) = self
                        .by_proposal
                        .remove(&proposal)
                        .and_then(|id| self.outstanding.remove(&id))
                    {
                        self.reply(o.origin, key, value);
                    }
                }
                KeyedEvent::Full { proposal } => {
                    if let Some(o) = self
                        .by_proposal
                        .remove(&proposal)
                        .and_then(|id| self.outstanding.remove(&id))
                    {
                        self.fail(o.origin, "the cluster holds no more keys");
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
        if self.app.applied() >= self.compacted_at + COMPACT_EVERY {
            self.compact();
        }
    }
}
