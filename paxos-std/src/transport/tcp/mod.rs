//! Authenticated TCP between the nodes of a cluster: the same frames as
//! the datagram transports, without a datagram's size limit.
//!
//! [`TcpTransport`] carries each frame as a record on a connection to its
//! peer, and hands each frame it receives, with the peer it came from, to
//! a sink: a callback ([`TcpTransport::start`]) or a driver's channel of
//! [`receiver::Datagram`]s ([`TcpTransport::start_into`]), as the UDP
//! receiving thread ([`receiver::spawn`]) does. It implements [`Link`], so
//! a driver sends through it as through [`UdpTransport`](super::UdpTransport).
//!
//! # Connections
//!
//! Every node opens one connection to each peer, when it first has a
//! frame for it, and carries only its own frames on it: node A's frames to
//! B travel on A's connection to B, and B's to A on B's connection to A.
//! A connection that fails is opened again, while frames wait in the
//! queue, after a back-off that starts at [`TcpOptions::backoff_min`] and
//! doubles up to [`TcpOptions::backoff_max`] (50 ms to 2 s by default);
//! it starts over once a connection has lasted `backoff_max`.
//!
//! A node accepts a connection only from a node in its peer table, as
//! named and proven in the handshake: not by source address, since an
//! outbound connection comes from an ephemeral port. A peer's new
//! connection replaces, and closes, its old one, so a restarted peer is
//! served at once and a half-dead connection does not linger.
//!
//! # Stream format
//!
//! A handshake, then records, all in one direction once the handshake is
//! done (`K` is the cluster key, `|` joins bytes):
//!
//! ```text
//! connecting node A                                           accepting node B
//!   HELLO     = "PXS1" | A u8 | B u8 | nA[16]        ------>  22 bytes
//!                                        B checks the magic, that it is B, that A is a peer
//!   <------   CHALLENGE = nB[16] | MAC(K, 0xC1 | HELLO | nB)  48 bytes
//!   A checks B's proof
//!   PROOF     = MAC(K, 0xC2 | HELLO | nB)            ------>  32 bytes
//!                                        B checks A's proof
//!   both:       S = MAC(K, 0xC3 | HELLO | nB)
//!   RECORD i  = len u32 LE | frame | MAC(S, i u64 LE | len u32 LE | frame)   ------>   i = 0, 1, 2, ...
//! ```
//!
//! `MAC(k, m)` is BLAKE3 in keyed mode, as for datagrams; `nA` and `nB`
//! are fresh nonces ([`NONCE_LEN`] bytes each). A record is its frame
//! plus [`RECORD_OVERHEAD`] (36) bytes. The accepting node never writes
//! after its challenge. It closes the connection, and counts why, on a
//! handshake that fails, on the first length above
//! [`TcpOptions::max_frame_len`] (before allocating anything for it), and
//! on the first tag that does not verify. [`Hello`],
//! [`connect_handshake`], [`accept_handshake`], [`RecordSealer`] and
//! [`RecordDecoder`] are this format as pieces over any byte stream (or
//! plain bytes), for tests, fuzzing and other drivers.
//!
//! # What the MAC does and does not give
//!
//! It gives:
//! - Only a holder of the cluster key completes a handshake, in either
//!   role. The accepting node learns the connecting node's id, which both
//!   proofs cover; the connecting node learns that the node it called
//!   holds the key and accepted the call as itself.
//! - Every record is bound to its connection and its direction: `S` is
//!   made over both nonces and the ordered pair of nodes, so a record
//!   recorded on one connection fails on any other, the reverse direction
//!   and any later connection between the same nodes included. Within a
//!   connection each tag covers the record's number, so a record cannot be
//!   replayed, reordered or removed without the next tag failing.
//! - The handshake's inputs under `K` start with the domain bytes `0xC1`
//!   to `0xC3`, datagrams with `0xA1`: no tag made for one is valid for
//!   another, so the accepting node's proof cannot be reflected as the
//!   connecting node's, nor a datagram's tag passed off as either.
//!
//! It does **not** give:
//! - secrecy: frames travel in clear;
//! - delivery: whoever is on the path can reset a connection, losing the
//!   frames in flight (as it could drop datagrams). The end of a stream is
//!   not authenticated: a cut is only a connection that ended, counted as
//!   truncated if inside a record;
//! - protection from a node that holds the key, or from anyone when the
//!   cluster uses [`ClusterKey::insecure_default`];
//! - availability: anyone who reaches the port can open connections. Each
//!   costs a thread until its handshake fails, with at most
//!   [`TcpOptions::max_handshakes`] at once, each for at most
//!   [`TcpOptions::connect_timeout`]; more are closed at once and counted.
//!
//! # Why a MAC and not TLS
//!
//! - No certificates to issue, rotate and check: the same key file as the
//!   UDP transport ([`ClusterKey::from_file`]) authenticates the streams.
//! - The core already tolerates replayed, duplicated, delayed and
//!   reordered messages (it must, over UDP), so what agreement needs from
//!   the network is only that a message comes unaltered from the peer it
//!   names, which the MAC gives. TLS would add secrecy, which agreement
//!   does not need; where frames must be secret, run the cluster on a
//!   private network or a VPN.
//! - No new dependency: BLAKE3 is already the datagrams' MAC, and the
//!   whole format fits on one screen.
//!
//! # Backpressure and memory
//!
//! [`send`](TcpTransport::send) never waits: it copies the frame (once for
//! all the peers of [`send_to_set`](TcpTransport::send_to_set)) into each
//! peer's queue. A queue holds at most [`TcpOptions::queue_bytes`] (64 MiB
//! by default), counting each frame with its record's overhead, and that
//! includes the batch being written; a frame that does not fit is dropped,
//! counted ([`TcpCounters::queue_full`]) and refused with
//! [`SendError::QueueFull`], which Paxos treats as a lost message. Queued
//! frames wait while a connection is opened; those of a batch whose write
//! fails are lost.
//!
//! Each peer has a writer thread and each inbound connection a reader
//! thread, on blocking std sockets. Clusters are small (a handful of
//! nodes, 255 at most), so that is a handful of threads; each blocks on
//! its own socket only, so a slow or dead peer holds up its own queue and
//! nobody else's; and std has no readiness API, so one thread over
//! non-blocking sockets would need a poller dependency (mio or tokio) that
//! the blocking runtime does without. A write that makes no progress for
//! [`TcpOptions::write_timeout`] closes the connection.
//!
//! A reader takes a frame's bytes as they arrive, capped at
//! [`TcpOptions::max_frame_len`], so a peer that announces a large frame
//! and stalls holds only what it sent. The sink may block: the reader
//! then stops reading, TCP's flow control fills the sender's socket, and
//! the sender's queue drops frames. So a node holds at most, per peer, a
//! queue, a frame being read and a 64 KiB read buffer, plus what waits in
//! the sink (a channel's bound counts frames, not bytes).
//!
//! # Frame size
//!
//! A frame is at most [`TcpOptions::max_frame_len`],
//! [`TcpTransport::MAX_FRAME_LEN`] (16 MiB) by default; every node of a
//! cluster must use the same, since a larger record closes the connection.
//! A driver checks its largest message against it at compile time, for
//! the default, or at start-up with [`TcpTransport::max_frame_len`]:
//!
//! ```
//! # const MAX_MESSAGE_SIZE: usize = 1 << 20;
//! use paxos_std::transport::tcp::TcpTransport;
//! const _: () = assert!(MAX_MESSAGE_SIZE < TcpTransport::MAX_FRAME_LEN);
//! ```
//!
//! # Shutdown
//!
//! [`TcpTransport::shutdown`], or dropping the transport, stops every
//! thread and closes every connection; frames still queued are dropped.
//! It waits for a sink that is blocked: a callback must return, and
//! [`TcpTransport::start_into`]'s channel is given up on when full.
//!
//! # Example
//!
//! ```
//! use std::net::TcpListener;
//! use std::sync::mpsc;
//! use std::time::Duration;
//! use paxos_core::NodeId;
//! use paxos_std::transport::tcp::{TcpOptions, TcpTransport};
//! use paxos_std::transport::ClusterKey;
//!
//! # fn main() -> std::io::Result<()> {
//! let key = ClusterKey::insecure_default(); // demo only: use ClusterKey::from_file
//! let (la, lb) = (TcpListener::bind("127.0.0.1:0")?, TcpListener::bind("127.0.0.1:0")?);
//! let peers = [(NodeId(1), la.local_addr()?), (NodeId(2), lb.local_addr()?)];
//! let a = TcpTransport::start(la, NodeId(1), &peers, key.clone(), TcpOptions::DEFAULT, |_, _| {})?;
//! let (tx, rx) = mpsc::channel();
//! let b = TcpTransport::start(lb, NodeId(2), &peers, key, TcpOptions::DEFAULT, move |from, frame| {
//!     let _ = tx.send((from, frame));
//! })?;
//!
//! let big = vec![7u8; 1 << 20]; // far more than a datagram holds
//! a.send(NodeId(2), &big).unwrap();
//! assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), (NodeId(1), big));
//! # Ok(())
//! # }
//! ```
//!
//! [`receiver::Datagram`]: crate::receiver::Datagram
//! [`receiver::spawn`]: crate::receiver::spawn

mod counters;
mod inbound;
mod outbound;
mod wire;

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use paxos_core::{NodeId, NodeSet};

pub use counters::TcpCounters;
pub use wire::{
    accept_handshake, connect_handshake, HandshakeError, Hello, RecordDecoder, RecordError, RecordSealer, SessionKey,
    CHALLENGE_LEN, HELLO_LEN, LENGTH_LEN, MAGIC, MAX_RECORD_FRAME_LEN, NONCE_LEN, PROOF_LEN, RECORD_OVERHEAD,
};

use super::endpoint::send_each;
#[cfg(doc)]
use super::DropReason;
use super::{ClusterKey, DropCounters, Link, Peers, SendError};
use crate::receiver::{self, Datagram};
use counters::{Count, LiveCounters};
use outbound::Outbound;

/// How a [`TcpTransport`] bounds its frames, its memory and its waits.
///
/// Build one from [`TcpOptions::DEFAULT`]:
/// `TcpOptions { queue_bytes: 1 << 20, ..TcpOptions::DEFAULT }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    /// The largest frame sent or accepted, at most
    /// [`MAX_RECORD_FRAME_LEN`]. Use the same on every node.
    pub max_frame_len: usize,
    /// The bytes each peer's queue holds at most, counting every frame
    /// with its [`RECORD_OVERHEAD`]; at least one largest frame's record.
    pub queue_bytes: usize,
    /// How long opening a connection, and each read and write of the
    /// handshake, may take, on either side.
    pub connect_timeout: Duration,
    /// How long a write to a peer may make no progress before its
    /// connection is closed and opened again.
    pub write_timeout: Duration,
    /// The first wait before connecting again after a failure.
    pub backoff_min: Duration,
    /// The longest wait before connecting again.
    pub backoff_max: Duration,
    /// Inbound connections in their handshake at once at most; more are
    /// closed at once.
    pub max_handshakes: usize,
}

impl TcpOptions {
    /// 16 MiB frames, 64 MiB per peer queue, 5 s to connect and shake
    /// hands, 10 s for a stalled write, 50 ms to 2 s of back-off, 16
    /// handshakes at once.
    pub const DEFAULT: TcpOptions = TcpOptions {
        max_frame_len: 16 << 20,
        queue_bytes: 64 << 20,
        connect_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(10),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_secs(2),
        max_handshakes: 16,
    };

    /// Refuses options the transport cannot run with.
    fn check(&self) -> io::Result<()> {
        let problem = if self.max_frame_len > MAX_RECORD_FRAME_LEN {
            "max_frame_len exceeds what a record's length prefix holds"
        } else if self.queue_bytes < self.max_frame_len.saturating_add(RECORD_OVERHEAD) {
            "queue_bytes must hold at least one largest frame's record"
        } else if self.connect_timeout.is_zero() || self.write_timeout.is_zero() {
            "timeouts must be above zero"
        } else if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            "the back-off must be above zero, and its maximum at least its minimum"
        } else if self.max_handshakes == 0 {
            "max_handshakes must be at least 1"
        } else {
            return Ok(());
        };
        Err(io::Error::new(io::ErrorKind::InvalidInput, problem))
    }
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions::DEFAULT
    }
}

/// Where a [`TcpTransport`] listens: an address to bind, or a listener
/// the caller has bound, for example to learn every node's address (port
/// 0) before starting any transport.
pub trait Listen {
    /// The listener.
    ///
    /// # Errors
    ///
    /// Binding's.
    fn listener(self) -> io::Result<TcpListener>;
}

impl Listen for SocketAddr {
    fn listener(self) -> io::Result<TcpListener> {
        TcpListener::bind(self)
    }
}

impl Listen for TcpListener {
    fn listener(self) -> io::Result<TcpListener> {
        Ok(self)
    }
}

/// Where received frames go: called from the reader threads, at once.
trait Deliver: Send + Sync {
    /// Hands on `frame` from `from`; may wait, but gives up once `stop`
    /// is set if it can.
    fn deliver(&self, from: NodeId, frame: Vec<u8>, stop: &AtomicBool);
}

/// A caller's callback.
struct Callback<F>(F);

impl<F: Fn(NodeId, Vec<u8>) + Send + Sync> Deliver for Callback<F> {
    fn deliver(&self, from: NodeId, frame: Vec<u8>, _stop: &AtomicBool) {
        (self.0)(from, frame);
    }
}

/// A driver's channel, as [`receiver::spawn`] fills it.
struct Channel<I> {
    tx: SyncSender<I>,
    wrap: fn(Datagram) -> I,
}

impl<I: Send> Deliver for Channel<I> {
    fn deliver(&self, from: NodeId, frame: Vec<u8>, stop: &AtomicBool) {
        receiver::offer(&self.tx, (self.wrap)(Datagram::from_frame(from, frame)), stop);
    }
}

/// What the transport's threads share.
struct Shared {
    me: NodeId,
    key: ClusterKey,
    options: TcpOptions,
    peers: Peers,
    stop: AtomicBool,
    counters: LiveCounters,
    inbound: inbound::Registry,
    /// Inbound connections in their handshake.
    handshakes: AtomicUsize,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Locks `mutex`, whatever another thread's panic left: every state
/// behind these locks stays consistent between statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A node's TCP endpoint: queues frames for its peers' connections, and
/// accepts theirs. See the [module docs](self) for the format, the
/// threads and the bounds.
///
/// All methods take `&self`, and the transport is `Sync`: share it in an
/// `Arc` between the threads that send. Dropping it shuts it down.
pub struct TcpTransport {
    shared: Arc<Shared>,
    outbound: BTreeMap<NodeId, Arc<Outbound>>,
    local: SocketAddr,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl TcpTransport {
    /// The largest frame under [`TcpOptions::DEFAULT`]: 16 MiB. A driver
    /// asserts its largest message against it at compile time.
    pub const MAX_FRAME_LEN: usize = TcpOptions::DEFAULT.max_frame_len;

    /// Listens on `listen` (an address to bind, or a [`TcpListener`] bound
    /// already) for node `me`, talking to `peers` under `key`, and hands
    /// every frame received to `deliver(from, frame)`.
    ///
    /// `peers` lists each node's listening address and may list `me` too
    /// (it is skipped), so every node can be given the same cluster-wide
    /// list. `deliver` is called from the reader threads, several at
    /// once; it may block (see the [module docs](self)), but shutdown
    /// waits for it to return.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for options the transport cannot run
    /// with or an ambiguous peer table (a [`PeerError`](super::PeerError)),
    /// checked before binding; the listener's errors; and a failure to
    /// start a thread.
    pub fn start(
        listen: impl Listen,
        me: NodeId,
        peers: &[(NodeId, SocketAddr)],
        key: ClusterKey,
        options: TcpOptions,
        deliver: impl Fn(NodeId, Vec<u8>) + Send + Sync + 'static,
    ) -> io::Result<Self> {
        Self::launch(listen, me, peers, key, options, Arc::new(Callback(deliver)))
    }

    /// Like [`start`](Self::start), queuing every frame received into a
    /// driver's channel as `wrap(datagram)`, as [`receiver::spawn`] does:
    /// a driver's loop takes frames from either transport alike. The
    /// datagram's buffer is the frame's own;
    /// [`Pool::give_back`](crate::receiver::Pool::give_back) lets it go.
    ///
    /// A full channel is waited on, which is backpressure (see the
    /// [module docs](self)), until the transport stops; a closed channel
    /// drops the frames. The channel's bound counts frames: up to its
    /// capacity times the largest frame may wait in it.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn start_into<I: Send + 'static>(
        listen: impl Listen,
        me: NodeId,
        peers: &[(NodeId, SocketAddr)],
        key: ClusterKey,
        options: TcpOptions,
        tx: SyncSender<I>,
        wrap: fn(Datagram) -> I,
    ) -> io::Result<Self> {
        Self::launch(listen, me, peers, key, options, Arc::new(Channel { tx, wrap }))
    }

    fn launch(
        listen: impl Listen,
        me: NodeId,
        peers: &[(NodeId, SocketAddr)],
        key: ClusterKey,
        options: TcpOptions,
        deliver: Arc<dyn Deliver>,
    ) -> io::Result<Self> {
        options.check()?;
        let peers = Peers::new(me, peers)?;
        let listener = listen.listener()?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let outbound = peers
            .iter()
            .map(|(node, addr)| (node, Arc::new(Outbound::new(node, addr, options.queue_bytes))))
            .collect();
        let shared = Arc::new(Shared {
            me: peers.me(),
            key,
            options,
            peers,
            stop: AtomicBool::new(false),
            counters: LiveCounters::default(),
            inbound: inbound::Registry::default(),
            handshakes: AtomicUsize::new(0),
        });
        // Should a thread fail to start, dropping `transport` stops those
        // that did.
        let transport = TcpTransport {
            shared,
            outbound,
            local,
            threads: Mutex::new(Vec::new()),
        };
        let me = transport.shared.me;
        let shared = Arc::clone(&transport.shared);
        transport.spawn(format!("paxos-tcp-accept-{me}"), move || {
            inbound::accept_loop(&shared, &listener, &deliver);
        })?;
        for out in transport.outbound.values() {
            let (shared, out) = (Arc::clone(&transport.shared), Arc::clone(out));
            transport.spawn(format!("paxos-tcp-out-{me}-{}", out.peer), move || {
                outbound::run(&shared, &out);
            })?;
        }
        Ok(transport)
    }

    fn spawn(&self, name: String, run: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let thread = std::thread::Builder::new().name(name).spawn(run)?;
        lock(&self.threads).push(thread);
        Ok(())
    }

    /// This node.
    pub fn me(&self) -> NodeId {
        self.shared.me
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// None: the address is read once at start; the `Result` mirrors
    /// [`UdpTransport::local_addr`](super::UdpTransport::local_addr).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// The peer table.
    pub fn peers(&self) -> &Peers {
        &self.shared.peers
    }

    /// The options the transport runs with.
    pub fn options(&self) -> &TcpOptions {
        &self.shared.options
    }

    /// The largest frame this transport sends and accepts: check a
    /// driver's largest message against it at start-up.
    pub fn max_frame_len(&self) -> usize {
        self.shared.options.max_frame_len
    }

    /// What was dropped, refused and re-established so far.
    pub fn tcp_counters(&self) -> TcpCounters {
        self.shared.counters.snapshot()
    }

    /// The bytes queued for peer `to` and not yet written (each frame
    /// counted as its record, as against [`TcpOptions::queue_bytes`]), or
    /// `None` if `to` is not a peer. A sender of bulk data paces itself by
    /// it, leaving the queue room for other frames.
    pub fn queued_bytes(&self, to: NodeId) -> Option<usize> {
        self.outbound.get(&to).map(|out| out.queued())
    }

    /// Queues `frame` for peer `to`; never waits.
    ///
    /// Success means the frame is queued, not that it arrived.
    ///
    /// # Errors
    ///
    /// [`SendError::FrameTooLarge`] above [`max_frame_len`](Self::max_frame_len),
    /// [`SendError::UnknownPeer`] if `to` is not a peer (this node itself
    /// never is), [`SendError::QueueFull`] if its queue has no room (the
    /// frame is dropped and counted), and [`SendError::Io`]
    /// ([`io::ErrorKind::NotConnected`]) after shutdown.
    pub fn send(&self, to: NodeId, frame: &[u8]) -> Result<(), SendError> {
        self.check_frame(frame)?;
        let out = self.outbound.get(&to).ok_or(SendError::UnknownPeer(to))?;
        self.enqueue(out, &Arc::from(frame))
    }

    /// Queues `frame` for every node of `to` (as the core's `Transmit::to`
    /// names them), copying it once; never waits.
    ///
    /// This node, if in the set, is skipped: delivering a node's own
    /// messages to itself is the driver's job.
    ///
    /// # Errors
    ///
    /// [`SendError::FrameTooLarge`] before queuing anything; otherwise
    /// every other node is still tried and the first failure is returned,
    /// as for [`send`](Self::send).
    pub fn send_to_set(&self, to: &NodeSet, frame: &[u8]) -> Result<(), SendError> {
        self.check_frame(frame)?;
        let frame = Arc::from(frame);
        send_each(self.me(), to, |node| match self.outbound.get(&node) {
            Some(out) => self.enqueue(out, &frame),
            None => Err(SendError::UnknownPeer(node)),
        })
    }

    fn check_frame(&self, frame: &[u8]) -> Result<(), SendError> {
        let max = self.max_frame_len();
        if frame.len() > max {
            return Err(SendError::FrameTooLarge { len: frame.len(), max });
        }
        Ok(())
    }

    fn enqueue(&self, out: &Outbound, frame: &Arc<[u8]>) -> Result<(), SendError> {
        if self.shared.stopping() {
            return Err(SendError::Io(io::ErrorKind::NotConnected));
        }
        if out.push(frame) {
            return Ok(());
        }
        self.shared.counters.add(Count::QueueFull);
        Err(SendError::QueueFull(out.peer))
    }

    /// Stops every thread and closes every connection, waiting for them;
    /// frames still queued are dropped, and later sends fail. Doing it
    /// again does nothing.
    ///
    /// Do not call it from the sink: it waits for the reader threads,
    /// which wait for the sink.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for out in self.outbound.values() {
            out.close();
        }
        self.shared.inbound.close_all();
        let threads = core::mem::take(&mut *lock(&self.threads));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpTransport")
            .field("me", &self.shared.me)
            .field("local", &self.local)
            .field("peers", &self.shared.peers)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl Link for TcpTransport {
    fn send(&self, to: NodeId, frame: &[u8]) -> Result<(), SendError> {
        TcpTransport::send(self, to, frame)
    }

    fn send_to_set(&self, to: &NodeSet, frame: &[u8]) -> Result<(), SendError> {
        TcpTransport::send_to_set(self, to, frame)
    }

    /// [`TcpCounters::drops`]: what the readers refused, as
    /// [`DropReason`]s.
    fn counters(&self) -> DropCounters {
        self.tcp_counters().drops()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_pass_and_bad_ones_are_named() {
        assert!(TcpOptions::DEFAULT.check().is_ok());
        assert_eq!(TcpOptions::default(), TcpOptions::DEFAULT);
        let bad = [
            TcpOptions {
                max_frame_len: MAX_RECORD_FRAME_LEN + 1,
                queue_bytes: usize::MAX,
                ..TcpOptions::DEFAULT
            },
            TcpOptions {
                queue_bytes: TcpOptions::DEFAULT.max_frame_len + RECORD_OVERHEAD - 1,
                ..TcpOptions::DEFAULT
            },
            TcpOptions {
                write_timeout: Duration::ZERO,
                ..TcpOptions::DEFAULT
            },
            TcpOptions {
                backoff_max: Duration::from_millis(1),
                ..TcpOptions::DEFAULT
            },
            TcpOptions {
                max_handshakes: 0,
                ..TcpOptions::DEFAULT
            },
        ];
        for options in bad {
            let e = options.check().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{options:?}");
        }
    }
}
