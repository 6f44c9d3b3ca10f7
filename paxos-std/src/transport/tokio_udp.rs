//! The same transport over a `tokio::net::UdpSocket`: the same datagram
//! format, MAC, peer checks and drop counters as [`super::UdpTransport`],
//! through the same [`Endpoint`]; only the waiting differs.

use core::net::SocketAddr;
use std::io;

use paxos_core::{NodeId, NodeSet};
use tokio::net::UdpSocket;

use super::{check_buffer, is_transient, ClusterKey, DropCounters, Endpoint, Link, Peers, Received, SendError};

/// A node's UDP endpoint on tokio. See the [module docs](super) for the
/// format and what is dropped.
///
/// Sends never wait: they use `try_send_to`, and a datagram the socket
/// buffer cannot take at once fails with [`SendError::Io`]
/// (`WouldBlock`), which Paxos treats as a lost datagram. Receiving is
/// `async`.
#[derive(Debug)]
pub struct TokioUdpTransport {
    socket: UdpSocket,
    endpoint: Endpoint,
}

impl TokioUdpTransport {
    /// Binds a UDP socket to `listen` for node `me`, talking to `peers`
    /// under `key`. Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`UdpTransport::bind`](super::UdpTransport::bind).
    pub async fn bind(
        listen: SocketAddr,
        me: NodeId,
        peers: &[(NodeId, SocketAddr)],
        key: ClusterKey,
    ) -> io::Result<Self> {
        let peers = Peers::new(me, peers)?;
        let socket = UdpSocket::bind(listen).await?;
        let endpoint = Endpoint::new(socket.local_addr()?, peers, key);
        Ok(TokioUdpTransport { socket, endpoint })
    }

    /// Over a std socket the caller has bound (it is made non-blocking).
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`UdpTransport::from_socket`](super::UdpTransport::from_socket).
    pub fn from_std(
        socket: std::net::UdpSocket,
        me: NodeId,
        peers: &[(NodeId, SocketAddr)],
        key: ClusterKey,
    ) -> io::Result<Self> {
        let peers = Peers::new(me, peers)?;
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket)?;
        let endpoint = Endpoint::new(socket.local_addr()?, peers, key);
        Ok(TokioUdpTransport { socket, endpoint })
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

    /// Waits for the next acceptable datagram, receiving it into `buf`
    /// (which should hold [`RECV_BUFFER_LEN`](super::RECV_BUFFER_LEN)
    /// bytes). Datagrams that fail a check are counted and skipped.
    /// Cancel-safe: dropping the future loses no accepted datagram.
    ///
    /// # Errors
    ///
    /// As [`UdpTransport::recv`](super::UdpTransport::recv).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        check_buffer(buf)?;
        loop {
            match self.socket.recv_from(buf).await {
                Ok((len, source)) => {
                    if let Some(received) = self.endpoint.accept(buf, len, source) {
                        return Ok(received);
                    }
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes an acceptable datagram already queued, without waiting.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        check_buffer(buf)?;
        loop {
            match self.socket.try_recv_from(buf) {
                Ok((len, source)) => {
                    if let Some(received) = self.endpoint.accept(buf, len, source) {
                        return Ok(Some(received));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn send_datagram(&self, datagram: &[u8], addr: SocketAddr) -> Result<(), SendError> {
        self.socket
            .try_send_to(datagram, addr)
            .map(|_| ())
            .map_err(|e| SendError::Io(e.kind()))
    }
}

impl Link for TokioUdpTransport {
    fn send(&self, to: NodeId, frame: &[u8]) -> Result<(), SendError> {
        self.endpoint.send(to, frame, |d, addr| self.send_datagram(d, addr))
    }

    fn send_to_set(&self, to: &NodeSet, frame: &[u8]) -> Result<(), SendError> {
        self.endpoint
            .send_to_set(to, frame, |d, addr| self.send_datagram(d, addr))
    }

    fn counters(&self) -> DropCounters {
        self.endpoint.counters()
    }
}
