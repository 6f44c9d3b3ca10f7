//! The blocking driver: an [`Engine`] on a plain loop, with a receiver
//! thread reading the UDP socket and clients sending [`Request`]s through
//! [`Requests`]; both feed one bounded queue the loop waits on.
//!
//! One turn: wait (until the replica's deadline) for an input; take every
//! input already queued too, up to [`MAX_INPUTS_PER_TURN`](paxos_std::receiver::MAX_INPUTS_PER_TURN); fire the
//! deadline if it passed; then [`Engine::flush`], the one driver loop:
//! append every record batch to the sync thread, send, act on events,
//! confirm what the last finished sync covered. The sync thread syncs
//! everything queued with one `fdatasync` (group commit) and queues a
//! wake-up when it is done.
//!
//! The steady state allocates nothing per message: datagrams are received
//! into a fixed pool of buffers that travel to the loop and back, the
//! queues are bounded channels (preallocated), and replies are typed.
//!
//! ```no_run
//! use paxos_service::node::{self, NodeOptions};
//! use paxos_service::request::{Reply, Request};
//! # fn demo(options: NodeOptions) -> Result<(), Box<dyn std::error::Error>> {
//! let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
//! let (requests, inbox) = node::inbox();
//! let flag = stop.clone();
//! let worker = std::thread::spawn(move || node::run(options, inbox, flag));
//! let (tx, rx) = std::sync::mpsc::sync_channel(1);
//! let key = paxos_service::app::key("color")?;
//! let value = paxos_service::app::value("blue")?;
//! requests.send(Request::Ask { key, value: Some(value), reply: tx.into() })?;
//! if let Ok(Reply::Answer { value, .. }) = rx.recv() {
//!     println!("decided: {value:?}");
//! }
//! stop.store(true, std::sync::atomic::Ordering::Relaxed);
//! worker.join().expect("node thread")?;
//! # Ok(()) }
//! ```

pub use crate::engine::{NodeError, NodeOptions, STACK};
pub use crate::request::{Reply, ReplyTo, Request};

use crate::engine::{open_log, Engine};
use paxos_std::receiver::{self, Datagram, Pool};
use paxos_std::transport::UdpTransport;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Inputs queued for the loop at most; senders wait beyond.
const INBOX: usize = 1024;

/// What wakes the loop.
enum Input {
    /// A datagram; its buffer goes back to the pool.
    Datagram(Datagram),
    Request(Request),
    /// The sync thread finished a sync: run a turn to confirm it.
    Synced,
}

/// Sends requests to a node started with [`run`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Requests {
    tx: SyncSender<Input>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Datagram(d) => write!(f, "Datagram from {}, {} bytes", d.from, d.frame.len()),
            Input::Request(r) => write!(f, "{r:?}"),
            Input::Synced => f.write_str("Synced"),
        }
    }
}

/// The node stopped: the request was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the node is stopping")
    }
}

impl std::error::Error for Stopped {}

impl Requests {
    /// Queues `request` for the node, waiting while its queue is full.
    ///
    /// # Errors
    ///
    /// [`Stopped`] once the node's loop has ended.
    pub fn send(&self, request: Request) -> Result<(), Stopped> {
        self.tx.send(Input::Request(request)).map_err(|_| Stopped)
    }
}

/// The receiving end of a node's queue: give it to [`run`].
#[derive(Debug)]
pub struct Inbox {
    tx: SyncSender<Input>,
    rx: Receiver<Input>,
}

/// A node's request queue: [`Requests`] to send on, the [`Inbox`] for
/// [`run`].
pub fn inbox() -> (Requests, Inbox) {
    let (tx, rx) = mpsc::sync_channel(INBOX);
    (Requests { tx: tx.clone() }, Inbox { tx, rx })
}

/// Runs a node until `stop` is set, serving the requests sent to `inbox`.
///
/// # Errors
///
/// [`NodeError`] if it cannot start, or when storage fails (a node that
/// cannot make its votes durable must not vote).
pub fn run(options: NodeOptions, inbox: Inbox, stop: Arc<AtomicBool>) -> Result<(), NodeError> {
    let (log, recovered) = open_log(&options)?;
    let net = UdpTransport::bind(options.listen, options.id, &options.peers, options.key.clone())
        .map_err(|e| NodeError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", options.listen))))?;
    let net = Arc::new(net);
    let Inbox { tx, rx: inputs } = inbox;
    let wake = {
        let tx = tx.clone();
        // A full inbox wakes the node anyway.
        Arc::new(move || {
            let _ = tx.try_send(Input::Synced);
        })
    };
    let mut engine = Engine::start(&options, log, &recovered, Arc::clone(&net), wake)?;
    drop(recovered);
    let (pool, receiver) = receiver::spawn(net, tx, Arc::clone(&stop), Input::Datagram).map_err(NodeError::Io)?;
    let mut result = Ok(());
    while !stop.load(Ordering::Relaxed) {
        turn(&mut engine, &inputs, &pool);
        if let Some(e) = engine.take_storage_error() {
            result = Err(NodeError::Storage(e));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    // The receiver may be waiting to queue a datagram: make room.
    drop(inputs);
    let _ = receiver.join();
    tracing::info!(node = %engine.id(), "stopped");
    result
}

/// Runs [`run`] on a new thread named after the node, with the stack it
/// needs ([`STACK`]).
///
/// # Errors
///
/// The thread's, if it cannot be created.
pub fn spawn(
    options: NodeOptions,
    inbox: Inbox,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<Result<(), NodeError>>> {
    std::thread::Builder::new()
        .name(format!("node{}", options.id))
        .stack_size(STACK)
        .spawn(move || run(options, inbox, stop))
}

/// One turn of the loop.
fn turn(engine: &mut Engine<Arc<UdpTransport>>, inputs: &Receiver<Input>, pool: &Pool) {
    // Take every input already queued too, so that one sync covers them.
    let wait = engine.wait();
    receiver::take_turn(inputs, wait, |input| match input {
        Input::Datagram(d) => {
            engine.handle_datagram(d.from, d.payload());
            pool.give_back(d);
        }
        Input::Request(request) => engine.handle_request(request),
        Input::Synced => {}
    });
    engine.tick();
    engine.flush();
}
