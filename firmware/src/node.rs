//! The node: boot (recovery from flash), then the driver loop.
//!
//! The loop: take every byte the UART holds, handing whole frames to the
//! replica; fire its timer; propose while leading; then flush: append each
//! record batch to flash and only then confirm it (persist before
//! reveal), send every message, apply every decided value. When a turn
//! found nothing to do the core sleeps until the next SysTick.

use crate::app::{self, App, Applied};
use crate::clock::Clock;
use crate::flashlog::{AppendError, FlashLog};
use crate::report;
use crate::semiflash::SemiFlash;
use crate::uart::Uart;
use core::convert::Infallible;
use core::fmt::Write as _;
use paxos_core::replica::{Config, Event, Recovery, Replica};
use paxos_core::{Bytes, Duration, Instant, NodeId};
use paxos_embedded::framing::{self, decoder_capacity, max_encoded_len, Decoder, Feed};

/// The cluster: three nodes, a window of 8 slots, 32-byte values.
const NODES: usize = 3;
const WINDOW: usize = 8;
type Value = Bytes<32>;
type Node = Replica<Value, NODES, WINDOW>;

/// `[from][to]` before each replica frame.
const ADDRESS: usize = 2;
const MESSAGE: usize = ADDRESS + Node::MAX_MESSAGE_SIZE;
/// Record batches: a kind byte, then the replica's bytes.
const PERSIST: usize = 1 + if Node::MIN_PERSIST_BUFFER > 256 {
    Node::MIN_PERSIST_BUFFER
} else {
    256
};
/// Checkpoints (and replay, which reads the largest batch).
const SCRATCH: usize = 1 + app::STATE_LEN + Node::MAX_CHECKPOINT_SIZE + PERSIST;
/// Batch kinds in the flash log.
const KIND_RECORDS: u8 = 0;
const KIND_CHECKPOINT: u8 = 1;

/// Flash: 8 sectors of 1 KiB, small enough that a run compacts.
const FLASH_SECTORS: u32 = 8;
/// The leader proposes one value this often.
const PROPOSE_EVERY: Duration = Duration::from_millis(5);
/// And stops once this many slots are decided, so a run is bounded.
const MAX_SLOTS: u64 = 1_000;

type Log = FlashLog<SemiFlash>;

/// The node's buffers, all of fixed size.
struct Buffers {
    rx: Decoder<{ decoder_capacity(MESSAGE) }>,
    tx: [u8; MESSAGE],
    encoded: [u8; max_encoded_len(MESSAGE)],
    persist: [u8; PERSIST],
    scratch: [u8; SCRATCH],
}

/// Boots the node and runs it; returns only on a fatal error.
pub fn run() -> Result<Infallible, &'static str> {
    let core = cortex_m::Peripherals::take().ok_or("peripherals taken twice")?;
    let mut clock = Clock::start(core.SYST);
    let mut uart = Uart::take();
    let id = node_id().ok_or("no node id: pass 1, 2 or 3 on the semihosting command line (-append)")?;
    let mut path = heapless::String::<24>::new();
    write!(path, "node{id}.flash\0").map_err(|_| "path")?;
    let path = core::ffi::CStr::from_bytes_with_nul(path.as_bytes()).map_err(|_| "path")?;
    let flash = SemiFlash::open(path, FLASH_SECTORS).map_err(|_| "cannot open the flash file")?;
    let mut log = FlashLog::mount(flash).map_err(|_| "cannot mount the flash log")?;
    let mut bufs = Buffers {
        rx: Decoder::new(),
        tx: [0; MESSAGE],
        encoded: [0; max_encoded_len(MESSAGE)],
        persist: [0; PERSIST],
        scratch: [0; SCRATCH],
    };
    let config = config(id)?;
    let (mut replica, mut app) = recover(&mut log, &config, clock.now(), &mut bufs.scratch)?;
    report::boot(id, app.applied, replica.decided(), log.used());
    report::footprint(
        core::mem::size_of::<Node>(),
        core::mem::size_of_val(&bufs.rx),
        bufs.tx.len() + bufs.encoded.len(),
        bufs.persist.len(),
        bufs.scratch.len(),
    );
    // End whatever the relay's side of the line holds from before.
    uart.write_all(&[framing::DELIMITER]);
    let mut next_value = replica.decided();
    let mut next_propose = clock.now();
    let mut reported_state = app.applied;
    loop {
        let mut busy = false;
        while let Some(byte) = uart.read_byte() {
            busy = true;
            if let Feed::Frame(frame) = bufs.rx.feed(byte) {
                deliver(&mut replica, id, clock.now(), frame);
            }
        }
        let now = clock.now();
        if now >= replica.poll_timeout() {
            replica.handle_timeout(now);
        }
        if replica.is_leader() && now >= next_propose && replica.decided() < MAX_SLOTS {
            next_propose = now + PROPOSE_EVERY;
            let mut text = heapless::String::<32>::new();
            let _ = write!(text, "n{id}-{next_value}");
            // Busy (the window is full) or no longer leading: try again
            // at the next turn, with the same value.
            if let Ok(Ok(_)) = Value::from_slice(text.as_bytes()).map(|v| replica.propose(now, v)) {
                next_value += 1;
            }
        }
        busy |= flush(&mut replica, &mut app, &mut log, &mut uart, &mut bufs, id, clock.now())?;
        if app.applied >= reported_state + 20 {
            reported_state = app.applied;
            report::state(app.applied, app.count, app.hash);
        }
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
    let mut config = Config::new(NodeId(id), &members).map_err(|_| "bad configuration")?;
    config.heartbeat_interval = Duration::from_millis(20);
    config.election_timeout = Duration::from_millis(200);
    config.retransmit_timeout = Duration::from_millis(50);
    config.initial_leader = Some(NodeId(1));
    config.seed = 0x5EED_0000 + u64::from(id);
    config.validate().map_err(|_| "bad configuration")?;
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
        Applied::Next => report::decided(slot, bytes),
        Applied::Old => {}
        Applied::Gap => report::error("a decided slot was skipped"),
    }
}

/// Hands a received frame addressed to this node to the replica.
fn deliver(replica: &mut Node, id: u8, now: Instant, frame: &[u8]) {
    if let [from, to, message @ ..] = frame {
        if *to == id {
            // Malformed or unexpected frames are dropped and counted by
            // the replica.
            let _ = replica.handle_message(now, NodeId(*from), message);
        }
    }
}

/// Persists, sends, applies. Returns whether there was anything to do.
fn flush(
    replica: &mut Node,
    app: &mut App,
    log: &mut Log,
    uart: &mut Uart,
    bufs: &mut Buffers,
    id: u8,
    now: Instant,
) -> Result<bool, &'static str> {
    let mut busy = false;
    if let Some(kind) = bufs.persist.first_mut() {
        *kind = KIND_RECORDS;
    }
    while let Some(request) = replica.poll_persist(bufs.persist.get_mut(1..).unwrap_or_default()) {
        busy = true;
        let batch = bufs.persist.get(..1 + request.len).ok_or("buffer")?;
        match log.append(batch) {
            Ok(()) => {}
            // The checkpoint holds everything the batch holds: the
            // replica wrote the batch from the state it checkpoints now.
            Err(AppendError::Full) => compact(replica, app, log, &mut bufs.scratch)?,
            Err(_) => return Err("flash append failed"),
        }
        // Durable now: only now may the replica reveal what it recorded.
        let _ = replica.persisted(now, request.seq);
    }
    while let Some(t) = replica.poll_transmit(bufs.tx.get_mut(ADDRESS..).unwrap_or_default()) {
        busy = true;
        for to in t.to.iter() {
            if let Some(address) = bufs.tx.get_mut(..ADDRESS) {
                address.copy_from_slice(&[id, to.0]);
            }
            let payload = bufs.tx.get(..ADDRESS + t.len).unwrap_or_default();
            if let Ok(n) = framing::encode(payload, &mut bufs.encoded) {
                uart.write_all(bufs.encoded.get(..n).unwrap_or_default());
            }
        }
    }
    while let Some(event) = replica.poll_event() {
        busy = true;
        match event {
            Event::Decided { slot, value, .. } => apply(app, slot, value),
            Event::LeadershipAcquired { ballot } => report::leader(u64::from(ballot.round)),
            _ => {}
        }
    }
    Ok(busy)
}

/// Replaces the log with one checkpoint: the application's state and the
/// replica's.
fn compact(replica: &Node, app: &App, log: &mut Log, scratch: &mut [u8]) -> Result<(), &'static str> {
    if app.applied < replica.log_start() {
        // Slots below the log start would be lost to the application.
        return Err("flash full and the application lags the log");
    }
    let (head, rest) = scratch.split_at_mut(1 + app::STATE_LEN);
    let (kind, state) = head.split_first_mut().ok_or("buffer")?;
    *kind = KIND_CHECKPOINT;
    state.copy_from_slice(&app.encode());
    let len = replica
        .write_checkpoint(rest)
        .map_err(|_| "checkpoint buffer too small")?;
    let checkpoint = scratch.get(..1 + app::STATE_LEN + len).ok_or("buffer")?;
    log.compact(checkpoint).map_err(|_| "flash compaction failed")?;
    report::compacted(app.applied, log.used());
    Ok(())
}
