//! The runtime's thread: one loop over inputs (calls, datagrams, sync
//! wake-ups), the replica driven by `paxos_core::driver::drain`, and the
//! state machine applied from its decided entries.

use super::contact::Contacts;
use super::entry::{pack_push, packed_len, unpack, Body, Entry, Origin};
use super::sessions::SESSION_WINDOW;
use super::state::{Decoded, Outcome, Replicated};
use super::window::WindowBytes;
use super::{Call, ProposeError, ReadFn, ReadHow, Reply, RuntimeStatus, StateMachine, DEADLINE, MAX_COMMAND_LIMIT};
use crate::clock::Clock;
use crate::options::{replica_config, NodeError, NodeOptions};
use crate::payload::decoding_from;
use crate::pieces::{self, Outgoing, Pieces};
use crate::receiver::{self, Datagram};
use crate::storage::{FileLog, SyncPipeline};
use crate::transport::tcp::{TcpOptions, TcpTransport};
use crate::transport::{ChannelNetwork, SendError};
use paxos_core::driver;
use paxos_core::replica::{Event, ProposalId, Replica};
use paxos_core::{Instant, NodeId};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

/// The runtime thread's stack. The replica holds its slots' values by
/// reference (a few KiB of handles), but is built on the stack before it is
/// boxed, several times over in debug builds. Only what is touched is ever
/// committed.
pub(super) const STACK: usize = 16 << 20;
/// Calls and datagrams queued for the loop at most.
pub(super) const INBOX: usize = 1024;
/// The largest cluster.
const MAX_NODES: usize = 8;
/// Slots in flight and retained in memory.
const WINDOW: usize = 256;
/// A slot's value: entries, each a command and its tag behind its length,
/// held by reference.
type Payload = crate::Payload;
/// Entries waiting in the same turn share a slot up to this many bytes; a
/// longer entry takes a slot of its own.
const PACK_TARGET: usize = 64 << 10;
/// The most bytes an entry's tag adds to its command: every varint at its
/// widest (origin 21, done_below 10, body 1, a session tag 30, the
/// command's length up to 5: checked by a test) rounded up.
const ENTRY_OVERHEAD: usize = 72;
type R = Replica<Payload, MAX_NODES, WINDOW>;

/// The sizes that follow from the largest command a node accepts: every
/// buffer and frame limit comes from here, so that none is too small for
/// a command the node took.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// The longest entry (a command and its tag).
    max_entry: usize,
    /// The buffer `poll_transmit` writes into: one slot of the longest
    /// entry always fits (promises longer than it leave in parts).
    frame: usize,
    /// The buffer `poll_persist` writes into: one record of one slot.
    batch: usize,
}

impl Limits {
    /// The limits for commands of up to `max_command` bytes, or
    /// [`NodeError::MaxCommand`] above [`MAX_COMMAND_LIMIT`].
    fn new(max_command: usize) -> Result<Limits, NodeError> {
        if max_command > MAX_COMMAND_LIMIT {
            return Err(NodeError::MaxCommand { max_command });
        }
        let max_entry = max_command + ENTRY_OVERHEAD;
        let max_slot = PACK_TARGET.max(packed_len(max_entry));
        // A slot's Payload encodes as a byte string.
        let value = paxos_core::codec::byte_string_len(max_slot);
        Ok(Limits {
            max_entry,
            frame: R::message_buffer_for(value),
            batch: R::persist_buffer_for(value).max(crate::storage::BATCH_BUFFER),
        })
    }

    /// The transport's options: frames large enough for the largest
    /// message (with its channel byte), queues for several of them.
    fn tcp(&self) -> TcpOptions {
        let default = TcpOptions::DEFAULT;
        let max_frame_len = default.max_frame_len.max(1 + self.frame);
        TcpOptions {
            max_frame_len,
            queue_bytes: default.queue_bytes.max(4 * max_frame_len),
            ..default
        }
    }
}

/// Channel bytes: what a frame between nodes carries.
const CONSENSUS: u8 = 0;
const ENTRY: u8 = 2;
const SNAPSHOT: u8 = 3;
/// Snapshot bytes per frame: a snapshot streams in pieces, so none has to
/// be held whole in a frame and a large one shares the connection.
const CHUNK: usize = 1 << 20;

/// How long before an unanswered request is tried again.
const RETRY: paxos_core::Duration = paxos_core::Duration::from_millis(300);
/// Send a peer that is behind a snapshot at most this often.
const SNAPSHOT_INTERVAL: paxos_core::Duration = paxos_core::Duration::from_millis(500);
/// A snapshot transfer whose connection has taken no piece for this long
/// (the peer unreachable) may be replaced by a new one.
const SNAPSHOT_STALL: paxos_core::Duration = paxos_core::Duration::from_secs(3);
/// The share of a peer's connection queue a snapshot's pieces may fill
/// (one eighth): the rest stays free for consensus messages, which a full
/// queue would drop.
const SNAPSHOT_QUEUE_SHARE: usize = 8;
/// How long the worker waits at most while a snapshot transfer has
/// pieces the connection has not taken yet: it offers more when it wakes.
const SNAPSHOT_PUMP_WAIT: std::time::Duration = std::time::Duration::from_millis(5);
/// The longest the loop sleeps, so retries run.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// What wakes the loop.
pub(super) enum Input<S: StateMachine> {
    Call(Call<S>),
    Datagram(Datagram),
    /// A sync finished, or stop was asked.
    Wake,
}

/// A request this node took and has not answered.
struct Waiter<S: StateMachine> {
    entry: Vec<u8>,
    kind: Kind<S>,
    /// In this turn's batch already (so it is packed once).
    batched: bool,
    /// Carried by a proposal of this node that is still tracked: it ends
    /// decided or displaced, so it is not proposed again meanwhile.
    in_flight: bool,
    /// Times it was forwarded to a leader (each wait doubles).
    forwards: u32,
    next_try: Instant,
    expires: Instant,
}

enum Kind<S: StateMachine> {
    Propose(Reply<S::Output>),
    Read(ReadFn<S>),
    Open(Reply<u64>),
}

impl<S: StateMachine> Kind<S> {
    fn fail(self, e: ProposeError) {
        match self {
            Kind::Propose(reply) => reply(Err(e)),
            Kind::Read(read) => read(Err(e)),
            Kind::Open(reply) => reply(Err(e)),
        }
    }
}

/// The application side: the state machine, the session table, and the
/// requests waiting for their entries. Borrowed by the event callback
/// while the replica is being drained.
struct Applier<S: StateMachine> {
    me: NodeId,
    incarnation: u64,
    state: Replicated<S>,
    /// The next slot to apply.
    applied: u64,
    /// Entries applied since the node started.
    commits: u64,
    /// Leader changes seen since the node started.
    leader_changes: u64,
    /// By request number: the lowest is the oldest unfinished.
    waiting: BTreeMap<u64, Waiter<S>>,
    /// Each proposal of this node in flight: the requests it carries and
    /// its length.
    by_proposal: HashMap<ProposalId, (Vec<u64>, usize)>,
    /// The bytes in flight and kept in the log window, against its budget.
    window: WindowBytes,
    /// Bytes of values applied since the last compaction.
    applied_bytes: u64,
    /// Requests to try again at once (their proposal was displaced).
    retry: Vec<u64>,
    /// Peers that need a snapshot, from this turn's events.
    behind: Vec<NodeId>,
}

impl<S: StateMachine> Applier<S> {
    fn on_event(&mut self, event: Event<'_, Payload>) {
        match event {
            Event::Decided { slot, value, proposal } => {
                if let Some(p) = proposal {
                    self.settle(p);
                }
                let len = value.map_or(0, |v| v.len());
                self.window.decided(slot, len);
                self.applied_bytes += len as u64;
                for entry in value
                    .into_iter()
                    .flat_map(|v| unpack(v.as_slice()))
                    .filter_map(Entry::decode)
                {
                    self.apply(slot, &entry);
                }
                self.applied = slot + 1;
            }
            Event::Displaced { proposal } => {
                for id in self.settle(proposal) {
                    if let Some(w) = self.waiting.get_mut(&id) {
                        w.in_flight = false;
                        self.retry.push(id);
                    }
                }
            }
            Event::SnapshotNeeded { peer, .. } => self.behind.push(peer),
            Event::LeaderChanged { leader } => {
                self.leader_changes += 1;
                tracing::info!(node = %self.me, leader = ?leader.map(|l| l.0), "leader changed");
            }
            Event::LeadershipAcquired { .. } | Event::LeadershipLost => {}
        }
    }

    /// Proposal `p` was decided or displaced: the requests it carried.
    fn settle(&mut self, p: ProposalId) -> Vec<u64> {
        let (ids, len) = self.by_proposal.remove(&p).unwrap_or_default();
        self.window.settled(len);
        if self.by_proposal.is_empty() {
            self.window.none_in_flight();
        }
        ids
    }

    /// Applies one decided entry and answers it if it is this node's.
    fn apply(&mut self, slot: u64, entry: &Entry<'_>) {
        let ours = entry.origin.node == self.me.0 && entry.origin.incarnation == self.incarnation;
        let outcome = self.state.apply(slot, entry, ours);
        if matches!(outcome, Outcome::Output(_) | Outcome::Opened(_)) {
            self.commits += 1;
        }
        if matches!(outcome, Outcome::Undecodable) {
            tracing::warn!(node = %self.me, slot, "a command that does not decode, skipped");
        }
        if !ours {
            return;
        }
        let Some(waiter) = self.waiting.remove(&entry.origin.id) else {
            return;
        };
        match (waiter.kind, outcome) {
            (Kind::Propose(reply), Outcome::Output(output) | Outcome::Cached(output)) => reply(Ok(output)),
            // Decided again after this node installed a snapshot covering
            // the first decision: applied once, its output not seen here.
            (Kind::Propose(reply), Outcome::Repeated) => reply(Err(ProposeError::AppliedEarlier)),
            (Kind::Open(reply), Outcome::Repeated) => reply(Err(ProposeError::AppliedEarlier)),
            (Kind::Propose(reply), Outcome::Expired) => reply(Err(ProposeError::SessionExpired)),
            (Kind::Propose(reply), Outcome::Conflict) => reply(Err(ProposeError::SessionConflict)),
            (Kind::Propose(reply), Outcome::Undecodable) => {
                reply(Err(ProposeError::Encode("the command does not decode".into())));
            }
            (Kind::Read(read), Outcome::Read) => read(Ok(&self.state.machine)),
            (Kind::Open(reply), Outcome::Opened(client)) => reply(Ok(client)),
            // The outcome belongs to the entry's body, which the waiter's
            // kind made: no other pairing occurs.
            (kind, _) => kind.fail(ProposeError::Stopped),
        }
    }
}

struct Worker<S: StateMachine> {
    app: Applier<S>,
    replica: Box<R>,
    log: SyncPipeline,
    link: Arc<TcpTransport>,
    clock: Clock,
    limits: Limits,
    /// The channel byte, then a consensus frame.
    frame: Vec<u8>,
    datagram: Vec<u8>,
    next_id: u64,
    /// Draws the secret of each client session this node opens.
    nonces: std::collections::hash_map::RandomState,
    /// When requests are due to be tried again or to expire, earliest
    /// first (stale entries are skipped when popped).
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// This turn's requests to propose, packed into slots at its end.
    batch: Vec<u64>,
    /// Entries other nodes forwarded this turn, packed with `batch`.
    forwarded: Vec<Vec<u8>>,
    compacted_at: u64,
    compact_every: u64,
    compact_bytes: u64,
    /// Snapshots being sent to peers behind, a piece at a time.
    snapshots_out: Outgoing,
    /// A snapshot piece being built.
    piece: Vec<u8>,
    receiving: Pieces,
    /// When each peer's last frame arrived (for the status).
    contacts: Contacts,
    /// Why the node must stop.
    fatal: Option<NodeError>,
}

/// Sends `body` to `to` on `channel`, built in `datagram` (a channel
/// byte, then the body).
fn send_on(link: &TcpTransport, datagram: &mut Vec<u8>, channel: u8, to: NodeId, body: &[u8]) -> Result<(), SendError> {
    datagram.clear();
    datagram.push(channel);
    datagram.extend_from_slice(body);
    link.send(to, datagram)
        .inspect_err(|e| tracing::debug!(%to, "not sent: {e}"))
}

/// The thread's body: start, report the start, loop until stopped.
pub(super) fn run<S: StateMachine>(
    options: NodeOptions,
    machine: S,
    calls: SyncSender<Input<S>>,
    inbox: Receiver<Input<S>>,
    stop: Arc<AtomicBool>,
    started: SyncSender<Result<(), NodeError>>,
) -> Result<(), NodeError> {
    let net = Limits::new(options.max_command).and_then(|limits| {
        TcpTransport::start_into(
            options.listen,
            options.id,
            &options.peers,
            options.key.clone(),
            limits.tcp(),
            calls.clone(),
            Input::Datagram,
        )
        .map(|net| (net, limits))
        .map_err(|e| NodeError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", options.listen))))
    });
    let wake = {
        let calls = calls.clone();
        Arc::new(move || {
            let _ = calls.try_send(Input::Wake);
        })
    };
    let worker = net.and_then(|(net, limits)| Worker::start(&options, limits, machine, Arc::new(net), wake));
    let mut worker = match worker {
        Ok(w) => {
            let _ = started.send(Ok(()));
            w
        }
        Err(e) => {
            let _ = started.send(Err(e));
            return Ok(());
        }
    };
    let mut result = Ok(());
    while !stop.load(Ordering::Relaxed) {
        worker.turn(&inbox);
        if let Some(e) = worker.fatal.take() {
            result = Err(e);
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    // Whoever still waits learns that the node stopped.
    for (_, waiter) in std::mem::take(&mut worker.app.waiting) {
        waiter.kind.fail(ProposeError::Stopped);
    }
    // The transport's threads stop with it.
    worker.link.shutdown();
    drop(inbox);
    tracing::info!(node = %worker.app.me, "stopped");
    result
}

impl<S: StateMachine> Worker<S> {
    fn start(
        options: &NodeOptions,
        limits: Limits,
        machine: S,
        link: Arc<TcpTransport>,
        wake: crate::storage::Wake,
    ) -> Result<Self, NodeError> {
        let (log, recovered) = FileLog::open(&options.data_dir).map_err(NodeError::Storage)?;
        let config = replica_config(options)?;
        let clock = Clock::new();
        let mut state = Replicated::new(machine);
        let mut applied = 0;
        if let Some(bytes) = &recovered.snapshot {
            let snapshot = Decoded::new(bytes).ok_or(NodeError::Snapshot)?;
            applied = snapshot.slot();
            state.restore(snapshot).map_err(|_| NodeError::Snapshot)?;
        }
        let (mut next, mut gap) = (applied, None);
        let replica = if recovered.snapshot.is_none() && recovered.batches.is_empty() && !options.storage_lost {
            R::new(config, clock.now()).map_err(paxos_core::replica::RecoverError::Config)
        } else {
            let mut deliver = |slot: u64, value: Option<&Payload>| {
                // Slots come in order from the snapshot's: a first slot past
                // it means the log jumped over slots never applied here.
                if slot > next && gap.is_none() {
                    gap = Some(slot);
                }
                next = slot + 1;
                for entry in value
                    .into_iter()
                    .flat_map(|v| unpack(v.as_slice()))
                    .filter_map(Entry::decode)
                {
                    // No request of this run exists yet: nothing to answer.
                    state.apply(slot, &entry, false);
                }
            };
            R::recovery(config, clock.now(), applied).and_then(|mut recovery| {
                for batch in recovered.batches {
                    // Each batch is a buffer of its own, taken without a
                    // copy: the values replayed from it share it.
                    let batch = bytes::Bytes::from(batch);
                    decoding_from(&batch, || recovery.replay(&batch, &mut deliver))?;
                }
                recovery.finish()
            })
        };
        let replica = Box::new(replica.map_err(NodeError::Recover)?);
        // The log may also have jumped past the snapshot with nothing
        // delivered after: then it starts past what was applied.
        if let Some(log_start) = gap.or((replica.delivered() > next).then(|| replica.delivered())) {
            return Err(NodeError::SnapshotBehindLog {
                snapshot: applied,
                log_start,
            });
        }
        let applied = replica.delivered();
        tracing::info!(node = %options.id, decided = replica.decided(), applied, "started");
        // Request numbers start again at 0 in every run: the run's number
        // must differ from every earlier run's, or the session table would
        // take this run's requests for the last run's and skip them.
        let incarnation = crate::storage::next_incarnation(&options.data_dir).map_err(NodeError::Storage)?;
        Ok(Worker {
            app: Applier {
                me: options.id,
                incarnation,
                state,
                applied,
                commits: 0,
                leader_changes: 0,
                waiting: BTreeMap::new(),
                by_proposal: HashMap::new(),
                window: WindowBytes::new(options.window_bytes),
                applied_bytes: 0,
                retry: Vec::new(),
                behind: Vec::new(),
            },
            replica,
            log: SyncPipeline::with_batch_buffer(log, wake, limits.batch).map_err(NodeError::Io)?,
            link,
            clock,
            limits,
            frame: vec![0; 1 + limits.frame],
            datagram: Vec::new(),
            next_id: 0,
            nonces: std::collections::hash_map::RandomState::new(),
            deadlines: BinaryHeap::new(),
            batch: Vec::new(),
            forwarded: Vec::new(),
            compacted_at: applied,
            compact_every: options.compact_every.max(1),
            compact_bytes: options.compact_bytes.max(1),
            snapshots_out: Outgoing::new(SNAPSHOT_INTERVAL, SNAPSHOT_STALL),
            piece: Vec::new(),
            receiving: Pieces::new(),
            contacts: Contacts::new(&options.peers),
            fatal: None,
        })
    }

    fn turn(&mut self, inbox: &Receiver<Input<S>>) {
        let mut wait = self.clock.until(self.replica.poll_timeout()).min(MAX_WAIT);
        if self.snapshots_out.sending() {
            wait = wait.min(SNAPSHOT_PUMP_WAIT);
        }
        receiver::take_turn(inbox, wait, |input| match input {
            Input::Call(call) => self.on_call(call),
            Input::Datagram(d) => self.on_datagram(&d),
            Input::Wake => {}
        });
        let _span = tracing::trace_span!("turn", node = self.app.me.0).entered();
        let now = self.clock.now();
        driver::tick(&mut *self.replica, now);
        self.retry_due(now);
        self.propose_batch(now);
        self.flush(now);
    }

    fn on_call(&mut self, call: Call<S>) {
        let now = self.clock.now();
        match call {
            Call::Propose {
                command,
                session: None,
                reply,
            } => self.submit(Body::Command(&command), Kind::Propose(reply), now),
            Call::Propose {
                command,
                session: Some(tag),
                reply,
            } => self.submit(Body::Session { tag, command: &command }, Kind::Propose(reply), now),
            Call::Open(reply) => {
                let nonce = self.nonces.hash_one(self.next_id);
                self.submit(Body::OpenSession { nonce }, Kind::Open(reply), now);
            }
            Call::Read {
                how: ReadHow::Log,
                read,
            } => self.submit(Body::Read, Kind::Read(read), now),
            Call::Read {
                how: ReadHow::Lease,
                read,
            } => {
                if self.replica.can_read_locally(now) {
                    read(Ok(&self.app.state.machine));
                } else {
                    read(Err(ProposeError::NotLeader));
                }
            }
            Call::Read {
                how: ReadHow::Stale,
                read,
            } => read(Ok(&self.app.state.machine)),
            Call::Status(reply) => reply(Ok(self.status())),
        }
    }

    fn status(&self) -> RuntimeStatus {
        let r = &self.replica;
        RuntimeStatus {
            id: self.app.me.0,
            leader: r.leader().map(|l| l.0),
            is_leader: r.is_leader(),
            ballot: r.promised().map(|b| (b.round, b.node.0)),
            decided: r.decided(),
            applied: self.app.applied,
            commits: self.app.commits,
            leader_changes: self.app.leader_changes,
            syncs: self.log.stats().syncs,
            amnesiac: r.is_amnesiac(),
            waiting: self.app.waiting.len(),
            replica: r.counters(),
            transport: self.link.tcp_counters(),
            peers: self.contacts.report(self.clock.now()),
            log_start: r.log_start(),
            in_flight_bytes: self.app.window.in_flight(),
            kept_bytes: self.app.window.kept(),
            compacted_at: self.compacted_at,
        }
    }

    /// Tags a request, registers it and tries it at once.
    fn submit(&mut self, body: Body<'_>, kind: Kind<S>, now: Instant) {
        let id = self.next_id;
        // The session table forgets nothing this run has not finished, so
        // the oldest unfinished request must stay within its window.
        let done_below = self.app.waiting.first_key_value().map_or(id, |(&oldest, _)| oldest);
        if id - done_below >= SESSION_WINDOW as u64 {
            return kind.fail(ProposeError::Busy);
        }
        self.next_id += 1;
        let origin = Origin {
            node: self.app.me.0,
            incarnation: self.app.incarnation,
            id,
        };
        let entry = match (Entry {
            origin,
            done_below,
            body,
        })
        .encode()
        {
            // Never reached for a command within max_command (a test
            // checks the widest tag), but a slot must never be asked to
            // hold what it cannot.
            Ok(entry) if entry.len() > self.limits.max_entry => {
                return kind.fail(ProposeError::TooLarge {
                    len: entry.len(),
                    max: self.limits.max_entry,
                });
            }
            Ok(entry) => entry,
            Err(e) => return kind.fail(ProposeError::Encode(e.to_string())),
        };
        let expires = now + paxos_core::Duration::from_micros(u64::try_from(DEADLINE.as_micros()).unwrap_or(u64::MAX));
        self.app.waiting.insert(
            id,
            Waiter {
                entry,
                kind,
                batched: false,
                in_flight: false,
                forwards: 0,
                next_try: now,
                expires,
            },
        );
        self.deadlines.push(Reverse((expires, id)));
        self.try_request(id, now);
    }

    /// Tries again the requests whose proposal was displaced and those
    /// whose retry or deadline has come: popped from the deadlines, so a
    /// turn costs what is due, not what waits.
    fn retry_due(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.app.retry);
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            // An entry left by an earlier schedule, or by a request gone:
            // only what is due by the waiter's own times is tried.
            if let Some(w) = self.app.waiting.get(&id) {
                if (w.next_try <= now && !w.in_flight) || w.expires <= now {
                    due.push(id);
                }
            }
        }
        for &id in &due {
            self.try_request(id, now);
        }
        due.clear();
        self.app.retry = due;
    }

    /// Sets request `id`'s next try to `at` and schedules it.
    fn retry_at(&mut self, id: u64, at: Instant) {
        if let Some(w) = self.app.waiting.get_mut(&id) {
            w.next_try = at;
            self.deadlines.push(Reverse((at, id)));
        }
    }

    /// One attempt: queue the entry for this turn's slots if leading,
    /// else forward it to the leader. The entry's tag makes a second
    /// decision harmless.
    fn try_request(&mut self, id: u64, now: Instant) {
        let Some(w) = self.app.waiting.get_mut(&id) else { return };
        if now >= w.expires {
            if let Some(w) = self.app.waiting.remove(&id) {
                w.kind.fail(ProposeError::Timeout);
            }
            return;
        }
        if w.in_flight {
            return;
        }
        w.next_try = now + RETRY;
        if self.replica.is_leader() {
            if !w.batched {
                w.batched = true;
                self.batch.push(id);
            }
        } else if let Some(leader) = self.replica.leader() {
            // The leader may just be slow: wait twice as long after each
            // forward (up to 8 times RETRY) before sending another copy.
            w.next_try = now + RETRY.saturating_mul(1 << w.forwards.min(3));
            w.forwards += 1;
            let _ = send_on(&self.link, &mut self.datagram, ENTRY, leader, &w.entry);
        } else {
            // No leader known yet: an election is under way.
            w.next_try = now + paxos_core::Duration::from_millis(20);
        }
        self.deadlines.push(Reverse((w.next_try, id)));
    }

    /// Proposes this turn's entries, as many to a slot as fit; what the
    /// window has no room for waits for the next turn.
    fn propose_batch(&mut self, now: Instant) {
        if self.batch.is_empty() && self.forwarded.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.batch);
        let forwarded = std::mem::take(&mut self.forwarded);
        let mut pack = Vec::new();
        let mut carried = Vec::new();
        for id in &ids {
            if let Some(w) = self.app.waiting.get_mut(id) {
                w.batched = false;
            }
        }
        let entries = ids
            .iter()
            .filter_map(|id| Some((Some(*id), self.app.waiting.get(id)?.entry.as_slice())))
            .chain(forwarded.iter().map(|e| (None, e.as_slice())));
        let mut packs = Vec::new();
        for (id, entry) in entries {
            if !pack.is_empty() && pack.len() + packed_len(entry.len()) > PACK_TARGET {
                packs.push((std::mem::take(&mut pack), std::mem::take(&mut carried)));
            }
            pack_push(&mut pack, entry);
            carried.extend(id);
        }
        if !pack.is_empty() {
            packs.push((pack, carried));
        }
        for (pack, carried) in packs {
            let len = pack.len();
            if !self.app.window.may_propose(len) {
                // The window's bytes are spent: the next turn (a decision
                // frees room). Forwarded entries are dropped; their nodes
                // retry.
                for id in carried {
                    self.retry_at(id, now);
                }
                continue;
            }
            let Ok(payload) = Payload::from_vec(pack) else {
                // Entries are checked against the limits, far below a
                // payload's: not reached.
                tracing::error!(node = %self.app.me, "a pack larger than a payload, dropped");
                continue;
            };
            match self.replica.propose(now, payload) {
                Ok(proposal) => {
                    for id in &carried {
                        if let Some(w) = self.app.waiting.get_mut(id) {
                            w.in_flight = true;
                        }
                    }
                    self.app.window.proposed(len);
                    self.app.by_proposal.insert(proposal, (carried, len));
                }
                // The window is full: the next turn (a vote frees room).
                // Forwarded entries are dropped; their nodes retry.
                Err(_) => {
                    for id in carried {
                        self.retry_at(id, now);
                    }
                }
            }
        }
    }

    fn on_datagram(&mut self, datagram: &Datagram) {
        let (from, now) = (datagram.from, self.clock.now());
        self.contacts.heard(from, now);
        // Values decoded from it share its buffer rather than copy it.
        datagram.decode(|payload| self.on_frame(from, now, payload));
    }

    fn on_frame(&mut self, from: NodeId, now: Instant, payload: &[u8]) {
        let Some((&channel, body)) = payload.split_first() else {
            return;
        };
        match channel {
            CONSENSUS => {
                if let Some(e) = self.replica.handle_message(now, from, body).dropped() {
                    tracing::debug!(node = %self.app.me, %from, "dropped: {e}");
                }
            }
            ENTRY => {
                // A forwarded entry: propose it this turn if leading;
                // otherwise its node tries again.
                if self.replica.is_leader() && body.len() <= self.limits.max_entry && Entry::decode(body).is_some() {
                    self.forwarded.push(body.to_vec());
                }
            }
            SNAPSHOT => self.on_snapshot_chunk(body, now),
            _ => tracing::debug!(node = %self.app.me, %from, "unknown channel {channel}"),
        }
    }

    /// The driver loop, then snapshots for peers behind and compaction.
    fn flush(&mut self, now: Instant) {
        if self.fatal.is_some() {
            return;
        }
        let mut network = ChannelNetwork {
            link: &*self.link,
            channel: CONSENSUS,
            frame: &mut self.frame,
        };
        let app = &mut self.app;
        let drained = driver::drain(&mut *self.replica, now, &mut self.log, &mut network, |e| {
            app.on_event(e);
        });
        if let Err(e) = drained {
            tracing::error!(node = %self.app.me, "{e}");
            self.fatal = Some(NodeError::Storage(e.into()));
            return;
        }
        let window = &mut self.app.window;
        window.left_below(self.replica.log_start());
        if let Some(below) = window.release_below() {
            window.left_below(self.replica.release_delivered(below));
        }
        for peer in std::mem::take(&mut self.app.behind) {
            self.send_snapshot(peer, now);
        }
        self.pump_snapshots(now);
        if self.app.applied >= self.compacted_at + self.compact_every || self.app.applied_bytes >= self.compact_bytes {
            self.compact();
        }
    }

    fn snapshot_bytes(&self) -> Vec<u8> {
        self.app.state.snapshot(self.app.applied)
    }

    /// Replaces the log by the state machine's snapshot and a checkpoint
    /// of the replica, behind every batch already queued.
    fn compact(&mut self) {
        // Values are held by reference and rarely the widest: start from a
        // window of average slots and grow until the checkpoint fits.
        let mut size = WINDOW * 1024;
        let checkpoint = loop {
            let mut checkpoint = vec![0u8; size];
            match self.replica.write_checkpoint(&mut checkpoint) {
                Ok(len) => {
                    checkpoint.truncate(len);
                    break checkpoint;
                }
                Err(_) if size < crate::storage::MAX_BATCH_LEN => {
                    size = (size * 4).min(crate::storage::MAX_BATCH_LEN);
                }
                Err(e) => {
                    // Compaction waits: the log keeps growing, nothing is
                    // lost. Seen only with a window of the largest slots.
                    tracing::warn!(node = %self.app.me, "no compaction: checkpoint: {e}");
                    return;
                }
            }
        };
        let snapshot = self.snapshot_bytes();
        match self.log.compact(snapshot, checkpoint) {
            Ok(()) => {
                self.compacted_at = self.app.applied;
                self.app.applied_bytes = 0;
            }
            Err(e) => self.fatal = Some(NodeError::Storage(e)),
        }
    }

    /// Starts sending `peer`, behind the retained log, the state
    /// machine's snapshot, unless one is still on its way to it
    /// ([`Outgoing::may_start`]).
    fn send_snapshot(&mut self, peer: NodeId, now: Instant) {
        let drained = self.link.queued_bytes(peer) == Some(0);
        if !self.snapshots_out.may_start(peer, now, drained) {
            return;
        }
        let bytes = self.snapshot_bytes();
        tracing::info!(node = %self.app.me, %peer, slot = self.app.applied, bytes = bytes.len(), "sending a snapshot");
        self.snapshots_out.start(self.app.me, peer, now, bytes, CHUNK);
    }

    /// Queues the next pieces of every snapshot being sent while each
    /// peer's connection queue is below its share for snapshots.
    fn pump_snapshots(&mut self, now: Instant) {
        let link = &*self.link;
        let share = link.options().queue_bytes / SNAPSHOT_QUEUE_SHARE;
        let datagram = &mut self.datagram;
        self.snapshots_out.pump(now, &mut self.piece, |peer, piece| {
            link.queued_bytes(peer).is_some_and(|queued| queued < share)
                && send_on(link, datagram, SNAPSHOT, peer, piece).is_ok()
        });
    }

    fn on_snapshot_chunk(&mut self, body: &[u8], now: Instant) {
        let Some((id, index, count, data)) = pieces::parse_piece(body) else {
            return;
        };
        // At most 2^20 pieces: the table of slots stays small whatever a
        // peer claims.
        let Some(bytes) = self.receiving.offer(id, index, count, data.to_vec(), 1 << 20) else {
            return;
        };
        let Some(snapshot) = Decoded::new(&bytes) else {
            tracing::warn!(node = %self.app.me, "a snapshot that does not decode");
            return;
        };
        let slot = snapshot.slot();
        if slot <= self.replica.decided() {
            return;
        }
        if let Err(e) = self.replica.install_snapshot(now, slot) {
            tracing::warn!(node = %self.app.me, "snapshot not installed: {e}");
            return;
        }
        // The replica has moved past the snapshot's slots: a state machine
        // that cannot follow would diverge, so the node stops instead.
        if let Err(e) = self.app.state.restore(snapshot) {
            tracing::error!(node = %self.app.me, "{e}: stopping");
            self.fatal = Some(NodeError::Snapshot);
            return;
        }
        self.app.applied = slot;
        tracing::info!(node = %self.app.me, slot, "installed a snapshot");
        // The replica's log now starts at the snapshot, and its record of
        // that goes in this turn's batch: the application's state must be
        // on disk first. The compaction is queued now, before the drain
        // appends that batch, and the sync thread keeps the order.
        self.compact();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::entry::SessionTag;

    /// The widest tag every varint allows, on the longest command, fits
    /// an entry, and the entry behind its length fits a slot.
    #[test]
    fn the_widest_entry_fits_a_slot() {
        let command = vec![0xffu8; MAX_COMMAND_LIMIT];
        let entry = Entry {
            origin: Origin {
                node: u8::MAX,
                incarnation: u64::MAX,
                id: u64::MAX,
            },
            done_below: u64::MAX,
            body: Body::Session {
                tag: SessionTag {
                    client: u64::MAX,
                    seq: u64::MAX,
                    acked: u64::MAX,
                },
                command: &command,
            },
        };
        let bytes = entry.encode().unwrap();
        let limits = Limits::new(MAX_COMMAND_LIMIT).unwrap();
        assert!(Limits::new(MAX_COMMAND_LIMIT + 1).is_err());
        assert!(
            bytes.len() <= limits.max_entry,
            "{} > {}",
            bytes.len(),
            limits.max_entry
        );
        // One slot of it fits the frame, and one record of it the batch.
        let slot = Payload::from_vec(bytes).unwrap();
        let mut frame = vec![0u8; limits.frame];
        assert!(limits.frame < limits.tcp().max_frame_len);
        assert!(postcard::to_slice(&slot, &mut frame[limits.frame - slot.encoded_len()..]).is_ok());
        assert!(limits.batch >= R::persist_buffer_for(slot.encoded_len()));
    }
}
