//! Authenticated transports between the nodes of a cluster: UDP
//! datagrams and TCP streams.
//!
//! The core hands the driver encoded frames and the nodes they go to
//! (`poll_transmit`), and takes frames back with the node they came from
//! (`handle_message`). This module carries those frames, authenticated by
//! a BLAKE3 MAC under a key every node shares ([`ClusterKey`], one key
//! file for both transports), from and to the nodes of a fixed peer table
//! ([`Peers`]). Both transports send through the [`Link`] trait, so a
//! driver can switch:
//!
//! - [`UdpTransport`] (and `TokioUdpTransport` with the `tokio`
//!   feature): one frame per datagram, each sealed on its own; a frame is
//!   at most [`MAX_FRAME_LEN`] (about 64 KB). Receiving is the caller's
//!   loop ([`UdpTransport::recv`], or a thread from
//!   [`receiver::spawn`](crate::receiver::spawn)). The rest of these docs
//!   describe it.
//! - [`tcp::TcpTransport`]: one connection per peer, opened after a
//!   handshake that proves the key, carrying length-prefixed records whose
//!   tags are bound to the connection; a frame is at most 16 MiB by
//!   default. Sends queue the frame for a writer thread per peer and never
//!   wait; received frames go to a callback or a driver's channel. See
//!   [`tcp`] for its format, what its MAC gives, and its bounds.
//!
//! # Datagram format
//!
//! ```text
//! offset 0        1                2                   len - 32
//!        +--------+----------------+------ ... ------+----------------+
//!        |VERSION | sender NodeId  |   frame bytes   |  32-byte tag   |
//!        +--------+----------------+------ ... ------+----------------+
//! ```
//!
//! - [`VERSION`] (`0xA1`) is this format's magic and version.
//! - The sender is the sending node's [`NodeId`].
//! - The tag is `blake3::keyed_hash(cluster_key, bytes before the tag)`,
//!   compared in constant time.
//!
//! So a datagram is its frame plus [`OVERHEAD`] (34) bytes, and a frame is at
//! most [`MAX_FRAME_LEN`] bytes, which with the overhead makes the largest
//! UDP payload over IPv4, [`MAX_DATAGRAM_LEN`]. [`seal`] and [`open`] are
//! the format as pure functions, for tests, fuzzing and other drivers.
//!
//! # What is dropped
//!
//! [`UdpTransport::recv`] drops, counts by [`DropReason`] in
//! [`DropCounters`], and keeps waiting past any datagram that is larger than
//! [`MAX_DATAGRAM_LEN`] or the receive buffer, shorter than [`OVERHEAD`], of
//! another version, with a tag that does not verify, from an address not in
//! the peer table, or naming a sender other than the peer at its source
//! address. It never panics on what it receives.
//!
//! # What the MAC does and does not give
//!
//! A node accepts a frame only from a holder of the cluster key, with the
//! sender it names, unaltered. It does **not** give:
//! - secrecy: frames travel in clear;
//! - freshness: a recorded datagram can be replayed later, to its recipient
//!   or, since the recipient is not covered by the tag, to another node. The
//!   core must, and does, tolerate duplicated, delayed and reordered
//!   messages;
//! - protection from a node that holds the key.
//!
//! [`ClusterKey::insecure_default`] is public and so protects nothing; use it
//! only for demos.
//!
//! # Example
//!
//! ```
//! use std::net::{SocketAddr, UdpSocket};
//! use std::time::Duration;
//! use paxos_core::NodeId;
//! use paxos_std::transport::{ClusterKey, UdpTransport, RECV_BUFFER_LEN};
//!
//! # fn main() -> std::io::Result<()> {
//! let key = ClusterKey::insecure_default(); // demo only: use ClusterKey::from_file
//! let (sa, sb) = (UdpSocket::bind("127.0.0.1:0")?, UdpSocket::bind("127.0.0.1:0")?);
//! let peers = [(NodeId(1), sa.local_addr()?), (NodeId(2), sb.local_addr()?)];
//! let a = UdpTransport::from_socket(sa, NodeId(1), &peers, key.clone())?;
//! let b = UdpTransport::from_socket(sb, NodeId(2), &peers, key)?;
//!
//! a.send(NodeId(2), b"frame").unwrap();
//! let mut buf = vec![0; RECV_BUFFER_LEN];
//! let got = b.recv(&mut buf, Some(Duration::from_secs(5)))?.expect("delivered on loopback");
//! assert_eq!(got.from, NodeId(1));
//! assert_eq!(&buf[got.frame], b"frame");
//! # Ok(())
//! # }
//! ```

mod auth;
mod counters;
mod endpoint;
mod error;
mod key;
mod peers;
pub mod tcp;
#[cfg(feature = "tokio")]
mod tokio_udp;

use core::net::SocketAddr;
use core::ops::Range;
use core::time::Duration;
use std::io;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Instant;

use paxos_core::{NodeId, NodeSet};

pub use auth::{open, seal, HEADER_LEN, MAX_DATAGRAM_LEN, MAX_FRAME_LEN, OVERHEAD, TAG_LEN, VERSION};
pub use counters::DropCounters;
pub use error::{DropReason, KeyError, PeerError, SealError, SendError};
pub use key::{ClusterKey, KEY_LEN};
pub use peers::Peers;
#[cfg(feature = "tokio")]
pub use tokio_udp::TokioUdpTransport;

/// `n` free loopback addresses, free for UDP and for TCP alike: each port
/// is bound with both (all held together, so all differ), then released
/// for the nodes to bind with either transport. For clusters on one
/// machine.
///
/// The ports come from below the kernel's ephemeral range (read from
/// `/proc/sys/net/ipv4/ip_local_port_range` where there is one): a port
/// the kernel picked for `:0` is one it also hands to outgoing
/// connections, and the nodes' own connections to each other could take
/// a port released here before the node meant to listen on it starts.
/// Successive calls in one process walk on from a random start, so they
/// do not hand out the same port twice.
pub fn free_loopback_addrs(n: usize) -> io::Result<Vec<SocketAddr>> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 10_000;
    let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|&start| start > LOW + 1_000)
        .unwrap_or(32_768);
    let span = high - LOW;
    if NEXT.load(Ordering::Relaxed) == 0 {
        // A start of its own per process: parallel test binaries spread out.
        let seed = std::process::id().wrapping_mul(2_654_435_761)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
        let _ = NEXT.compare_exchange(0, seed % span + 1, Ordering::Relaxed, Ordering::Relaxed);
    }
    let mut held = Vec::with_capacity(n);
    let mut tries = 0;
    while held.len() < n {
        tries += 1;
        if tries > 100 * n.max(1) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "no port free for both UDP and TCP",
            ));
        }
        let port = LOW + NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let addr = SocketAddr::from(([127, 0, 0, 1], u16::try_from(port).unwrap_or(0)));
        let Ok(tcp) = std::net::TcpListener::bind(addr) else {
            continue;
        };
        if let Ok(udp) = UdpSocket::bind(addr) {
            held.push((tcp, udp));
        }
    }
    held.iter().map(|(tcp, _)| tcp.local_addr()).collect()
}

use endpoint::Endpoint;

/// A receive buffer of this length takes every datagram this transport
/// accepts: one byte more than [`MAX_DATAGRAM_LEN`], so that a datagram that
/// fills the buffer is known to be oversized.
pub const RECV_BUFFER_LEN: usize = MAX_DATAGRAM_LEN + 1;

/// A frame received from a peer.
///
/// The frame is a range of the buffer given to [`UdpTransport::recv`]
/// rather than a borrow of it, so the caller can keep the buffer in the
/// same struct as whatever handles the frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The authenticated sender, matched to its source address: pass it to
    /// the replica's `handle_message`.
    pub from: NodeId,
    /// Where the frame is in the receive buffer: `&buf[received.frame]`.
    pub frame: Range<usize>,
}

/// The sending side of a transport, as a driver (the runtime's worker, the
/// `paxos` program's engine in crate `paxos-service`) uses it:
/// [`UdpTransport`], `TokioUdpTransport` or [`tcp::TcpTransport`]. Sends
/// never wait: a frame the transport cannot take at once (a full socket
/// buffer, a full queue) is an error, which the protocol treats like a
/// lost message.
pub trait Link {
    /// Sends `frame` to peer `to`.
    ///
    /// # Errors
    ///
    /// As [`UdpTransport::send`] or [`tcp::TcpTransport::send`].
    fn send(&self, to: NodeId, frame: &[u8]) -> Result<(), SendError>;

    /// Sends `frame` to every node of `to` but this one, sealing or
    /// copying it once.
    ///
    /// # Errors
    ///
    /// As [`UdpTransport::send_to_set`] or [`tcp::TcpTransport::send_to_set`].
    fn send_to_set(&self, to: &NodeSet, frame: &[u8]) -> Result<(), SendError>;

    /// How many received messages were dropped so far, by reason.
    fn counters(&self) -> DropCounters;
}

impl<T: Link + ?Sized> Link for Arc<T> {
    fn send(&self, to: NodeId, frame: &[u8]) -> Result<(), SendError> {
        (**self).send(to, frame)
    }

    fn send_to_set(&self, to: &NodeSet, frame: &[u8]) -> Result<(), SendError> {
        (**self).send_to_set(to, frame)
    }

    fn counters(&self) -> DropCounters {
        (**self).counters()
    }
}

/// A node's UDP endpoint: sends sealed frames to peers and receives,
/// checks and opens theirs.
///
/// All methods take `&self`, and the transport is `Sync`: one thread may
/// receive while others send. Receive from one thread at a time, though,
/// since [`recv`](Self::recv) sets the socket's read timeout and, for a
/// zero timeout, briefly makes it non-blocking.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    endpoint: Endpoint,
}

impl UdpTransport {
    /// Binds a UDP socket to `listen` for node `me`, talking to `peers`
    /// under `key`.
    ///
    /// `peers` may list `me` too (it is skipped), so every node can be given
    /// the same cluster-wide list.
    ///
    /// # Errors
    ///
    /// The socket's errors, and [`io::ErrorKind::InvalidInput`] wrapping a
    /// [`PeerError`] for an ambiguous peer table (checked before binding).
    pub fn bind(listen: SocketAddr, me: NodeId, peers: &[(NodeId, SocketAddr)], key: ClusterKey) -> io::Result<Self> {
        let peers = Peers::new(me, peers)?;
        Self::with_peers(UdpSocket::bind(listen)?, peers, key)
    }

    /// Like [`bind`](Self::bind), over a socket the caller has bound: for
    /// example to learn every node's address (port 0) before building any
    /// transport. The socket is set to blocking mode.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn from_socket(
        socket: UdpSocket,
        me: NodeId,
        peers: &[(NodeId, SocketAddr)],
        key: ClusterKey,
    ) -> io::Result<Self> {
        Self::with_peers(socket, Peers::new(me, peers)?, key)
    }

    fn with_peers(socket: UdpSocket, peers: Peers, key: ClusterKey) -> io::Result<Self> {
        socket.set_nonblocking(false)?;
        let endpoint = Endpoint::new(socket.local_addr()?, peers, key);
        Ok(UdpTransport { socket, endpoint })
    }

    /// This node.
    pub fn me(&self) -> NodeId {
        self.endpoint.me()
    }

    /// The address the socket is bound to.
    ///
    /// # Errors
    ///
    /// The socket's, if it cannot tell.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The peer table.
    pub fn peers(&self) -> &Peers {
        self.endpoint.peers()
    }

    /// How many received datagrams were dropped so far, by reason.
    pub fn counters(&self) -> DropCounters {
        self.endpoint.counters()
    }

    /// Sends `frame` to peer `to` in one datagram.
    ///
    /// UDP: success means the datagram left this node, not that it arrived.
    ///
    /// # Errors
    ///
    /// [`SendError::UnknownPeer`] if `to` is not a peer (this node itself
    /// never is), [`SendError::FrameTooLarge`] above [`MAX_FRAME_LEN`], and
    /// [`SendError::Io`] if the socket refuses.
    pub fn send(&self, to: NodeId, frame: &[u8]) -> Result<(), SendError> {
        self.endpoint.send(to, frame, |d, addr| self.send_datagram(d, addr))
    }

    /// Sends `frame` to every node of `to` (as the core's `Transmit::to`
    /// names them), sealing it once.
    ///
    /// This node, if in the set, is skipped: delivering a node's own
    /// messages to itself is the driver's job.
    ///
    /// # Errors
    ///
    /// [`SendError::FrameTooLarge`] before sending anything; otherwise every
    /// other node is still tried and the first failure is returned
    /// ([`SendError::UnknownPeer`] or [`SendError::Io`]).
    pub fn send_to_set(&self, to: &NodeSet, frame: &[u8]) -> Result<(), SendError> {
        self.endpoint
            .send_to_set(to, frame, |d, addr| self.send_datagram(d, addr))
    }

    /// Waits for the next acceptable datagram, receiving it into `buf`, and
    /// returns its sender and where its frame is in `buf`, or `None` once
    /// `timeout` has passed (`None` waits forever).
    ///
    /// `Some(Duration::ZERO)` does not wait: it takes a datagram already
    /// queued, or returns `None`. Use it to drain the socket after a wait.
    /// Any other timeout is rounded up to the OS's timer resolution (on
    /// Linux a scheduler tick, 1 to 4 ms), and once it has passed a last
    /// look takes whatever is already queued.
    ///
    /// Every datagram that fails a check (see the [module docs](self)) is
    /// counted in [`counters`](Self::counters) and skipped, and the wait goes
    /// on until the same deadline. A datagram that fills `buf` may have been
    /// cut short by the OS and is dropped as oversized, so `buf` should hold
    /// [`RECV_BUFFER_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `buf` is not longer than
    /// [`OVERHEAD`], and the socket's errors, except interruptions and the
    /// ICMP-driven "connection refused/reset" some systems report on UDP,
    /// which are waited through.
    pub fn recv(&self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<Option<Received>> {
        check_buffer(buf)?;
        // A timeout too long to add is as good as none.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let received = match left {
                Some(left) if left.is_zero() => self.recv_queued(buf),
                wait => self
                    .socket
                    .set_read_timeout(wait)
                    .and_then(|()| self.socket.recv_from(buf)),
            };
            let (len, source) = match received {
                Ok(received) => received,
                Err(e) if is_empty(&e) && left.is_some_and(|left| left.is_zero()) => return Ok(None),
                Err(e) if is_empty(&e) || is_transient(&e) => continue,
                Err(e) if is_truncated(&e) => {
                    self.endpoint.record(DropReason::Oversized);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(received) = self.endpoint.accept(buf, len, source) {
                return Ok(Some(received));
            }
        }
    }

    /// Receives a datagram already queued, without waiting.
    ///
    /// std has no per-call "don't wait" flag, so the socket is non-blocking
    /// for the duration of this one call; a concurrent send that finds the
    /// send buffer full meanwhile is retried by `send_datagram`.
    fn recv_queued(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.set_nonblocking(true)?;
        let received = self.socket.recv_from(buf);
        self.socket.set_nonblocking(false)?;
        received
    }

    fn send_datagram(&self, datagram: &[u8], addr: SocketAddr) -> Result<(), SendError> {
        // Retry a few interruptions, and a full send buffer met while `recv`
        // has the socket non-blocking; give up rather than spin.
        let mut tries = 0;
        loop {
            match self.socket.send_to(datagram, addr) {
                Ok(_) => return Ok(()),
                Err(e) if tries < 3 && matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock) => {
                    tries += 1;
                    std::thread::yield_now();
                }
                Err(e) => return Err(SendError::Io(e.kind())),
            }
        }
    }
}

impl Link for UdpTransport {
    fn send(&self, to: NodeId, frame: &[u8]) -> Result<(), SendError> {
        UdpTransport::send(self, to, frame)
    }

    fn send_to_set(&self, to: &NodeSet, frame: &[u8]) -> Result<(), SendError> {
        UdpTransport::send_to_set(self, to, frame)
    }

    fn counters(&self) -> DropCounters {
        UdpTransport::counters(self)
    }
}

/// Refuses a receive buffer too small for any datagram.
fn check_buffer(buf: &[u8]) -> io::Result<()> {
    if buf.len() <= OVERHEAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "receive buffer too small for any datagram",
        ));
    }
    Ok(())
}

/// Whether a receive found nothing: the wait ran out, or nothing was queued.
fn is_empty(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Errors [`UdpTransport::recv`] waits through.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

/// Whether the OS refused a datagram larger than the buffer (Windows reports
/// `WSAEMSGSIZE`; Unix silently truncates, which the length check catches).
fn is_truncated(e: &io::Error) -> bool {
    cfg!(windows) && e.raw_os_error() == Some(10040)
}

/// One channel of a [`Link`] as the driver loop's network
/// (`paxos_core::driver::Network`): `frame` holds a channel byte and then
/// the frame the core writes in place, so the payload the link seals is
/// one slice, nothing copied. The runtime and the `paxos` program both
/// send their consensus frames through it.
#[derive(Debug)]
pub struct ChannelNetwork<'a, L> {
    /// Where frames go.
    pub link: &'a L,
    /// The channel byte written in front of each frame.
    pub channel: u8,
    /// The channel byte's place, then room for the largest frame.
    pub frame: &'a mut [u8],
}

impl<L: Link> paxos_core::driver::Network for ChannelNetwork<'_, L> {
    fn buffer(&mut self) -> &mut [u8] {
        self.frame.get_mut(1..).unwrap_or_default()
    }

    fn send(&mut self, to: NodeSet, len: usize) {
        if let Some(channel) = self.frame.first_mut() {
            *channel = self.channel;
        }
        let payload = self.frame.get(..1 + len).unwrap_or_default();
        if let Err(e) = self.link.send_to_set(&to, payload) {
            tracing::debug!(to = ?to, "send failed: {e}");
        }
    }
}
