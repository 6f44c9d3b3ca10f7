//! The node: boot (recovery from flash), then the driver loop.
//!
//! The loop: take every byte the UART holds, handing whole frames to the
//! replica; fire its timer (`driver::tick`); propose while leading; then
//! flush through the one driver loop, `driver::drain`: append each record
//! batch to flash (durable when the append returns; the drain's sync
//! reports it and only then confirms it: persist before reveal), send
//! every message, apply every decided value. A full flash is compacted
//! into a checkpoint, which holds what the batch held, and the batch is
//! confirmed by hand. When a turn found nothing to do the core sleeps
//! until the next SysTick.
//!
//! A frame's payload is `[from][to][channel][body]`: channel 0 carries a
//! replica frame, channel 1 an application snapshot (the state of
//! [`App`]) for a node so far behind that the sender's log window no
//! longer holds the slots it lacks.

use crate::app::{self, App, Applied};
use crate::clock::Clock;
use crate::report;
use crate::semiflash::{FlashError, SemiFlash};
use crate::uart::Uart;
use core::convert::Infallible;
use core::fmt::Write as _;
use paxos_core::driver::{self, Drained, DriveError, Network, Storage};
use paxos_core::replica::{Config, Event, Recovery, Replica};
use paxos_core::{Bytes, Duration, Instant, NodeId, NodeSet, PersistSeq};
use paxos_embedded::flash::{AppendError, FlashLog};
use paxos_embedded::framing::{self, decoder_capacity, max_encoded_len, Decoder, Feed};

/// The cluster: three nodes, a window of 8 slots, 32-byte values.
const NODES: usize = 3;
const WINDOW: usize = 8;
type Value = Bytes<32>;
type Node = Replica<Value, NODES, WINDOW>;

/// `[from][to][channel]` before each body.
const HEADER: usize = 3;
const CHANNEL_REPLICA: u8 = 0;
const CHANNEL_SNAPSHOT: u8 = 1;
const MESSAGE: usize = HEADER + Node::MAX_MESSAGE_SIZE;
/// Record batches as the replica writes them, in place after the kind
/// byte the flash holds before each.
const PERSIST: usize = if Node::MIN_PERSIST_BUFFER > 256 {
    Node::MIN_PERSIST_BUFFER
} else {
    256
};
/// Checkpoints, and replay, which reads the largest record (a batch and
/// its kind byte).
const SCRATCH: usize = 1 + app::STATE_LEN + Node::MAX_CHECKPOINT_SIZE + 1 + PERSIST;
/// Batch kinds in the flash log.
const KIND_RECORDS: u8 = 0;
const KIND_CHECKPOINT: u8 = 1;

/// Flash: 8 sectors of 1 KiB, small enough that a run compacts.
const FLASH_SECTORS: u32 = 8;
/// The leader proposes one value this often.
const PROPOSE_EVERY: Duration = Duration::from_millis(5);
/// And stops once this many slots are decided, so a run is bounded.
const MAX_SLOTS: u64 = 100_000;
/// The application reports its state every this many slots.
const STATE_EVERY: u64 = 25;
/// A lagging peer gets a snapshot at most this often.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);

type Log = FlashLog<SemiFlash>;

/// The node's buffers, all of fixed size (the receive decoder is apart:
/// a frame borrowed from it is handled with the rest mutable).
struct Buffers {
    /// A replica frame; its header is framed with it, not copied before it.
    tx: [u8; Node::MAX_MESSAGE_SIZE],
    encoded: [u8; max_encoded_len(MESSAGE)],
    persist: [u8; 1 + PERSIST],
    scratch: [u8; SCRATCH],
}

/// Everything the loop works on.
struct Firmware {
    id: u8,
    replica: Node,
    app: App,
    log: Log,
    uart: Uart,
    bufs: Buffers,
    /// When each peer was last sent a snapshot.
    snapshot_sent: [Option<Instant>; NODES],
}

/// Boots the node and runs it; returns only on a fatal error.
pub fn run() -> Result<Infallible, &'static str> {
    let core = cortex_m::Peripherals::take().ok_or("peripherals taken twice")?;
    let mut clock = Clock::start(core.SYST);
    let uart = Uart::take();
    let id = node_id().ok_or("no node id: pass 1, 2 or 3 on the semihosting command line (-append)")?;
    let mut path = heapless::String::<24>::new();
    write!(path, "node{id}.flash\0").map_err(|_| "path")?;
    let path = core::ffi::CStr::from_bytes_with_nul(path.as_bytes()).map_err(|_| "path")?;
    let flash = SemiFlash::open(path, FLASH_SECTORS).map_err(|_| "cannot open the flash file")?;
    let mut log = FlashLog::mount(flash).map_err(|_| "cannot mount the flash log")?;
    let mut rx = Decoder::<{ decoder_capacity(MESSAGE) }>::new();
    let mut bufs = Buffers {
        tx: [0; Node::MAX_MESSAGE_SIZE],
        encoded: [0; max_encoded_len(MESSAGE)],
        persist: [0; 1 + PERSIST],
        scratch: [0; SCRATCH],
    };
    let config = config(id)?;
    let (replica, app) = recover(&mut log, &config, clock.now(), &mut bufs.scratch)?;
    report::boot(id, app.applied, replica.decided(), log.live_pages());
    report::footprint(
        core::mem::size_of::<Node>(),
        core::mem::size_of_val(&rx),
        bufs.tx.len() + bufs.encoded.len(),
        bufs.persist.len(),
        bufs.scratch.len(),
    );
    let mut fw = Firmware {
        id,
        replica,
        app,
        log,
        uart,
        bufs,
        snapshot_sent: [None; NODES],
    };
    // End whatever the relay's side of the line holds from before.
    fw.uart.write_all(&[framing::DELIMITER]);
    let mut next_value = fw.replica.decided();
    let mut next_propose = clock.now();
    loop {
        let mut busy = false;
        while let Some(byte) = fw.uart.read_byte() {
            busy = true;
            if let Feed::Frame(frame) = rx.feed(byte) {
                fw.receive(clock.now(), frame)?;
            }
        }
        let now = clock.now();
        driver::tick(&mut fw.replica, now);
        if fw.replica.is_leader() && now >= next_propose && fw.replica.decided() < MAX_SLOTS {
            next_propose = now + PROPOSE_EVERY;
            let mut text = heapless::String::<32>::new();
            let _ = write!(text, "n{id}-{next_value}");
            // Busy (the window is full) or no longer leading: try again
            // at the next turn, with the same value.
            if let Ok(Ok(_)) = Value::from_slice(text.as_bytes()).map(|v| fw.replica.propose(now, v)) {
                next_value += 1;
            }
        }
        busy |= fw.flush(clock.now())?;
        if !busy {
            cortex_m::asm::wfi();
        }
    }
}

/// The node id: the last word of the semihosting command line.
fn node_id() -> Option<u8> {
    let args = semihosting::experimental::env::args::<256>().ok()?;
    let mut id = None;
    for arg in &args {
        id = arg.ok().and_then(|a| a.parse::<u8>().ok());
    }
    id.filter(|i| (1..=NODES as u8).contains(i))
}

fn config(id: u8) -> Result<Config<NODES>, &'static str> {
    let members = [NodeId(1), NodeId(2), NodeId(3)];
    let config = Config::builder(NodeId(id), &members)
        .heartbeat_interval(Duration::from_millis(20))
        .election_timeout(Duration::from_millis(200))
        .retransmit_timeout(Duration::from_millis(50))
        .initial_leader(NodeId(1))
        .seed(0x5EED_0000 + u64::from(id))
        .build()
        .map_err(|_| "bad configuration")?;
    Ok(config)
}

/// Rebuilds the replica and the application from the flash log.
fn recover(log: &mut Log, config: &Config<NODES>, now: Instant, buf: &mut [u8]) -> Result<(Node, App), &'static str> {
    let mut app = App::new();
    let mut recovery: Option<Recovery<Value, NODES, WINDOW>> = None;
    log.replay(buf, |batch| {
        let (&kind, rest) = batch.split_first().ok_or("empty batch")?;
        let records = match kind {
            KIND_CHECKPOINT => {
                let (state, records) = rest.split_at_checked(app::STATE_LEN).ok_or("short checkpoint")?;
                app = App::decode(state).ok_or("bad checkpoint")?;
                recovery = None;
                records
            }
            KIND_RECORDS => rest,
            _ => return Err("unknown batch kind"),
        };
        let r = match &mut recovery {
            Some(r) => r,
            None => recovery.insert(Node::recovery(config.clone(), now, app.applied).map_err(|_| "recovery")?),
        };
        r.replay(records, |slot, value| apply(&mut app, slot, value))
            .map_err(|_| "corrupt records")
    })
    .map_err(|_| "cannot replay the flash log")?;
    let replica = match recovery {
        Some(r) => r.finish().map_err(|_| "recovery refused the records")?,
        None => Node::new(config.clone(), now).map_err(|_| "bad configuration")?,
    };
    Ok((replica, app))
}

/// Applies a decided slot and reports it.
fn apply(app: &mut App, slot: u64, value: Option<&Value>) {
    let bytes = value.map(Bytes::as_slice);
    match app.apply(slot, bytes) {
        Applied::Next => {
            report::decided(slot, bytes);
            // At the same slots on every node, so the host can compare.
            if app.applied.is_multiple_of(STATE_EVERY) {
                report::state(app.applied, app.count, app.hash);
            }
        }
        Applied::Old => {}
        Applied::Gap => report::error("a decided slot was skipped"),
    }
}

impl Firmware {
    /// Handles a received frame addressed to this node.
    fn receive(&mut self, now: Instant, frame: &[u8]) -> Result<(), &'static str> {
        let [from, to, channel, body @ ..] = frame else {
            return Ok(());
        };
        if *to != self.id {
            return Ok(());
        }
        match *channel {
            // Malformed or unexpected frames are dropped and counted by
            // the replica.
            CHANNEL_REPLICA => {
                let _ = self.replica.handle_message(now, NodeId(*from), body);
            }
            CHANNEL_SNAPSHOT => {
                if let Some(state) = App::decode(body).filter(|s| s.applied > self.app.applied) {
                    if self.replica.install_snapshot(now, state.applied).is_ok() {
                        self.app = state;
                        // The application state and the log's new start
                        // become durable together, in one checkpoint.
                        self.compact()?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Persists, sends, applies, through the driver loop. Returns whether
    /// there was anything to do.
    fn flush(&mut self, now: Instant) -> Result<bool, &'static str> {
        let mut busy = false;
        let mut lagging: Option<u8> = None;
        loop {
            let mut storage = Flash {
                log: &mut self.log,
                record: &mut self.bufs.persist,
                written: None,
            };
            let mut uart = Uplink {
                id: self.id,
                uart: &mut self.uart,
                frame: &mut self.bufs.tx,
                encoded: &mut self.bufs.encoded,
            };
            let app = &mut self.app;
            let drained = driver::drain(&mut self.replica, now, &mut storage, &mut uart, |event| match event {
                Event::Decided { slot, value, .. } => apply(app, slot, value),
                Event::LeadershipAcquired { ballot } => report::leader(u64::from(ballot.round)),
                Event::SnapshotNeeded { peer, .. } => lagging = Some(peer.0),
                _ => {}
            });
            match drained {
                Ok(done) => {
                    busy |= done != Drained::default();
                    break;
                }
                // The checkpoint holds everything the batch holds: the
                // replica wrote the batch from the state it checkpoints
                // now. Durable, so the replica may reveal it; then drain
                // the rest.
                Err(DriveError::Append {
                    seq,
                    error: AppendError::Full,
                }) => {
                    self.compact()?;
                    self.replica
                        .persisted(now, seq)
                        .map_err(|_| "confirmed an unknown batch")?;
                    busy = true;
                }
                Err(_) => return Err("flash append failed"),
            }
        }
        if let Some(peer) = lagging {
            self.send_snapshot(peer, now);
        }
        Ok(busy)
    }

    /// Sends `peer` the application's state, at most every
    /// [`SNAPSHOT_EVERY`].
    fn send_snapshot(&mut self, peer: u8, now: Instant) {
        let Some(sent) = self.snapshot_sent.get_mut(usize::from(peer).wrapping_sub(1)) else {
            return;
        };
        if sent.is_some_and(|at| now < at + SNAPSHOT_EVERY) {
            return;
        }
        *sent = Some(now);
        let state = self.app.encode();
        send(
            &mut self.uart,
            &mut self.bufs.encoded,
            [self.id, peer, CHANNEL_SNAPSHOT],
            &state,
        );
    }

    /// Replaces the log with one checkpoint: the application's state and
    /// the replica's.
    fn compact(&mut self) -> Result<(), &'static str> {
        if self.app.applied < self.replica.log_start() {
            // Slots below the log start would be lost to the application.
            return Err("flash full and the application lags the log");
        }
        let scratch = &mut self.bufs.scratch;
        let (head, rest) = scratch.split_at_mut(1 + app::STATE_LEN);
        let (kind, state) = head.split_first_mut().ok_or("buffer")?;
        *kind = KIND_CHECKPOINT;
        state.copy_from_slice(&self.app.encode());
        let len = self
            .replica
            .write_checkpoint(rest)
            .map_err(|_| "checkpoint buffer too small")?;
        let checkpoint = scratch.get(..1 + app::STATE_LEN + len).ok_or("buffer")?;
        self.log.compact(checkpoint).map_err(|_| "flash compaction failed")?;
        report::compacted(self.app.applied, self.log.live_pages());
        Ok(())
    }
}

/// Frames `body` after its `[from][to][channel]` header onto the UART.
fn send(uart: &mut Uart, encoded: &mut [u8], header: [u8; HEADER], body: &[u8]) {
    if let Ok(n) = framing::encode_parts(&[&header, body], encoded) {
        uart.write_all(encoded.get(..n).unwrap_or_default());
    }
}

/// The flash log as the driver loop sees it: a batch is durable when its
/// append returns, and the next sync reports it.
struct Flash<'a> {
    log: &'a mut Log,
    /// A record: its kind byte, then the batch the replica writes in place.
    record: &'a mut [u8],
    written: Option<PersistSeq>,
}

impl Storage for Flash<'_> {
    type Error = AppendError<FlashError>;
    const DURABLE_ON_APPEND: bool = true;

    fn buffer(&mut self) -> &mut [u8] {
        self.record.get_mut(1..).unwrap_or_default()
    }

    fn append(&mut self, seq: PersistSeq, len: usize) -> Result<(), Self::Error> {
        let max = self.record.len();
        let record = self
            .record
            .get_mut(..1 + len)
            .ok_or(AppendError::TooLarge { len: 1 + len, max })?;
        if let Some(kind) = record.first_mut() {
            *kind = KIND_RECORDS;
        }
        self.log.append(record)?;
        self.written = Some(seq);
        Ok(())
    }

    fn sync(&mut self) -> Result<Option<PersistSeq>, Self::Error> {
        Ok(self.written.take())
    }
}

/// The UART as the driver loop sees it: each replica frame goes to every
/// recipient on the replica channel.
struct Uplink<'a> {
    id: u8,
    uart: &'a mut Uart,
    /// The replica writes each frame here; its header is framed with it.
    frame: &'a mut [u8],
    encoded: &'a mut [u8],
}

impl Network for Uplink<'_> {
    fn buffer(&mut self) -> &mut [u8] {
        self.frame
    }

    fn send(&mut self, to: NodeSet, len: usize) {
        let frame = self.frame.get(..len).unwrap_or_default();
        for peer in to.iter() {
            send(self.uart, self.encoded, [self.id, peer.0, CHANNEL_REPLICA], frame);
        }
    }
}
