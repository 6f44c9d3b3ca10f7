//! What both UDP transports share whatever their socket: the peer table,
//! sealing and opening datagrams, and the drop counters. The blocking and
//! the tokio transport differ only in how they wait on the socket.

use core::net::{SocketAddr, SocketAddrV6};
use std::sync::{Mutex, MutexGuard, PoisonError};

use paxos_core::{NodeId, NodeSet};

use super::auth::{open, seal, HEADER_LEN, MAX_DATAGRAM_LEN, MAX_FRAME_LEN};
use super::counters::AtomicDropCounters;
use super::error::{DropReason, SealError, SendError};
use super::key::ClusterKey;
use super::peers::Peers;
use super::{DropCounters, Received};

/// A node's end of the cluster's datagram format, without the socket.
#[derive(Debug)]
pub(crate) struct Endpoint {
    key: ClusterKey,
    peers: Peers,
    /// Whether the socket is IPv6, so IPv4 peers are sent to as
    /// IPv4-mapped addresses.
    ipv6: bool,
    /// Where datagrams are sealed; one send at a time uses it.
    send_buf: Mutex<Vec<u8>>,
    drops: AtomicDropCounters,
}

impl Endpoint {
    pub(crate) fn new(local: SocketAddr, peers: Peers, key: ClusterKey) -> Self {
        Endpoint {
            key,
            peers,
            ipv6: local.is_ipv6(),
            send_buf: Mutex::new(vec![0; MAX_DATAGRAM_LEN]),
            drops: AtomicDropCounters::default(),
        }
    }

    pub(crate) fn me(&self) -> NodeId {
        self.peers.me()
    }

    pub(crate) fn peers(&self) -> &Peers {
        &self.peers
    }

    pub(crate) fn counters(&self) -> DropCounters {
        self.drops.snapshot()
    }

    pub(crate) fn record(&self, reason: DropReason) {
        self.drops.record(reason);
    }

    /// Checks the `len` bytes received into `buf` from `source`: the frame
    /// they carry, or `None` after counting why they were dropped.
    pub(crate) fn accept(&self, buf: &[u8], len: usize, source: SocketAddr) -> Option<Received> {
        match self.check(buf.get(..len).unwrap_or_default(), buf.len(), source) {
            Ok((from, frame_len)) => Some(Received {
                from,
                frame: HEADER_LEN..HEADER_LEN + frame_len,
            }),
            Err(reason) => {
                self.drops.record(reason);
                None
            }
        }
    }

    fn check(&self, datagram: &[u8], buf_len: usize, source: SocketAddr) -> Result<(NodeId, usize), DropReason> {
        // A datagram that fills the buffer may have been truncated.
        if datagram.len() >= buf_len {
            return Err(DropReason::Oversized);
        }
        // The cheap address check first, so strangers cost no hashing.
        self.peers.node_at(source).ok_or(DropReason::UnknownPeer)?;
        let (sender, frame) = open(&self.key, datagram)?;
        let from = self.peers.check(source, sender)?;
        Ok((from, frame.len()))
    }

    /// Seals `frame` once and hands the datagram to `send` for peer `to`.
    pub(crate) fn send(
        &self,
        to: NodeId,
        frame: &[u8],
        send: impl FnOnce(&[u8], SocketAddr) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        let addr = self.peers.addr_of(to).ok_or(SendError::UnknownPeer(to))?;
        let mut buf = self.send_buf();
        let len = self.seal_into(&mut buf, frame)?;
        send(buf.get(..len).unwrap_or_default(), self.target(addr))
    }

    /// Seals `frame` once and hands the datagram to `send` for every node
    /// of `to` but this one; every node is tried, the first error returned.
    pub(crate) fn send_to_set(
        &self,
        to: &NodeSet,
        frame: &[u8],
        mut send: impl FnMut(&[u8], SocketAddr) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        let mut buf = self.send_buf();
        let len = self.seal_into(&mut buf, frame)?;
        let datagram = buf.get(..len).unwrap_or_default();
        send_each(self.me(), to, |node| match self.peers.addr_of(node) {
            Some(addr) => send(datagram, self.target(addr)),
            None => Err(SendError::UnknownPeer(node)),
        })
    }

    fn send_buf(&self) -> MutexGuard<'_, Vec<u8>> {
        // Sealing cannot leave the buffer in a bad state, so a panic in
        // another sender does not matter here.
        self.send_buf.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn seal_into(&self, buf: &mut [u8], frame: &[u8]) -> Result<usize, SendError> {
        seal(&self.key, self.me(), frame, buf).map_err(|e| match e {
            SealError::FrameTooLarge { len, max } => SendError::FrameTooLarge { len, max },
            // The buffer holds the largest datagram, so only an oversized
            // frame ends here.
            SealError::BufferTooSmall { .. } => SendError::FrameTooLarge {
                len: frame.len(),
                max: MAX_FRAME_LEN,
            },
        })
    }

    /// `addr` as the socket must be given it.
    fn target(&self, addr: SocketAddr) -> SocketAddr {
        match addr {
            SocketAddr::V4(v4) if self.ipv6 => {
                SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
            }
            _ => addr,
        }
    }
}

/// Calls `send` for every node of `to` but `me`: every node is tried, and
/// the first error is returned. How every transport sends to a set.
pub(crate) fn send_each(
    me: NodeId,
    to: &NodeSet,
    mut send: impl FnMut(NodeId) -> Result<(), SendError>,
) -> Result<(), SendError> {
    let mut result = Ok(());
    for node in to.iter().filter(|&node| node != me) {
        let sent = send(node);
        if result.is_ok() {
            result = sent;
        }
    }
    result
}
