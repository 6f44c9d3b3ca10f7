//! The receiving side: the accept loop, one thread per inbound connection
//! that runs the handshake and then decodes records for the sink, and the
//! registry of open connections through which a peer's new connection
//! replaces its old one and shutdown closes them all.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use paxos_core::NodeId;

use super::counters::Count;
use super::wire::{accept_handshake, RecordDecoder};
use super::{lock, Deliver, Shared};

/// How often the accept loop looks at the stop flag when no connection
/// arrives.
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// Bytes read from a connection at a time.
const READ_BUFFER: usize = 64 << 10;

/// The open inbound connections.
#[derive(Debug, Default)]
pub(super) struct Registry(Mutex<Connections>);

#[derive(Debug, Default)]
struct Connections {
    next: u64,
    /// A handle on every open connection, by its number.
    streams: HashMap<u64, TcpStream>,
    /// Each peer's current connection.
    current: HashMap<NodeId, u64>,
    /// Set on shutdown: no connection is taken after it.
    closed: bool,
}

impl Registry {
    /// Registers `stream` and returns its number, or `None` once closed.
    fn add(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let mut conns = lock(&self.0);
        if conns.closed {
            return None;
        }
        let id = conns.next;
        conns.next += 1;
        conns.streams.insert(id, clone);
        Some(id)
    }

    /// Makes connection `id` `peer`'s current one; true if it replaced
    /// another, which is closed.
    fn promote(&self, id: u64, peer: NodeId) -> bool {
        let mut conns = lock(&self.0);
        let Some(old) = conns.current.insert(peer, id) else {
            return false;
        };
        if let Some(stream) = conns.streams.get(&old) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        true
    }

    fn is_current(&self, id: u64, peer: NodeId) -> bool {
        lock(&self.0).current.get(&peer) == Some(&id)
    }

    /// Closes connection `id` and forgets it.
    fn remove(&self, id: u64) {
        let mut conns = lock(&self.0);
        if let Some(stream) = conns.streams.remove(&id) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        conns.current.retain(|_, current| *current != id);
    }

    /// Closes every connection and refuses new ones.
    pub(super) fn close_all(&self) {
        let mut conns = lock(&self.0);
        conns.closed = true;
        for stream in conns.streams.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Closes and forgets a connection when its thread ends, however it ends.
struct Registered<'a> {
    registry: &'a Registry,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

/// The accept thread: returns once the transport stops, after every
/// connection thread it started has returned.
pub(super) fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, deliver: &Arc<dyn Deliver>) {
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, source)) => {
                threads.retain(|t| !t.is_finished());
                threads.extend(start_connection(shared, stream, source, deliver));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors, for example: wait for some to close.
                tracing::warn!(me = %shared.me, "accept failed: {e}");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
    shared.inbound.close_all();
    for thread in threads {
        let _ = thread.join();
    }
}

/// Starts the thread of a new connection, unless too many are in their
/// handshake already.
fn start_connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    source: SocketAddr,
    deliver: &Arc<dyn Deliver>,
) -> Option<JoinHandle<()>> {
    if shared.handshakes.load(Ordering::SeqCst) >= shared.options.max_handshakes {
        shared.counters.add(Count::Refused);
        tracing::debug!(me = %shared.me, %source, "refused: too many handshakes");
        return None;
    }
    // The listener is non-blocking, and on some systems its connections
    // inherit that. A stranger gets `connect_timeout` to prove itself.
    let timeout = Some(shared.options.connect_timeout);
    stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(timeout))
        .and_then(|()| stream.set_write_timeout(timeout))
        .ok()?;
    let id = shared.inbound.add(&stream)?;
    shared.handshakes.fetch_add(1, Ordering::SeqCst);
    let thread = {
        let (shared, deliver) = (Arc::clone(shared), Arc::clone(deliver));
        std::thread::Builder::new()
            .name(format!("paxos-tcp-in-{}", shared.me))
            .spawn(move || serve(&shared, stream, id, source, &*deliver))
    };
    match thread {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::warn!(me = %shared.me, "cannot start a connection thread: {e}");
            shared.handshakes.fetch_sub(1, Ordering::SeqCst);
            shared.inbound.remove(id);
            None
        }
    }
}

/// One inbound connection: the handshake, then records until the
/// connection ends or a record is refused. Whatever ends it is counted
/// before the connection is closed.
fn serve(shared: &Shared, mut stream: TcpStream, id: u64, source: SocketAddr, deliver: &dyn Deliver) {
    let _registered = Registered {
        registry: &shared.inbound,
        id,
    };
    let handshake = accept_handshake(&mut stream, &shared.key, shared.me, |node| {
        shared.peers.addr_of(node).is_some()
    });
    shared.handshakes.fetch_sub(1, Ordering::SeqCst);
    let (peer, session) = match handshake {
        Ok(accepted) => accepted,
        Err(e) => {
            if !shared.stopping() {
                shared.counters.add(Count::of_handshake(e, false));
                tracing::debug!(me = %shared.me, %source, "handshake refused: {e}");
            }
            return;
        }
    };
    if stream.set_read_timeout(None).is_err() {
        return;
    }
    if shared.inbound.promote(id, peer) {
        shared.counters.add(Count::Replaced);
    }
    let mut decoder = RecordDecoder::new(session, shared.options.max_frame_len);
    let mut buf = vec![0; READ_BUFFER];
    let ended = loop {
        match stream.read(&mut buf) {
            Ok(0) => break decoder.finish(),
            Ok(n) => {
                let bytes = buf.get(..n).unwrap_or_default();
                if let Err(e) = decoder.push(bytes, |frame| deliver.deliver(peer, frame, &shared.stop)) {
                    break Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Reset: whatever the decoder holds is cut short.
            Err(_) => break decoder.finish(),
        }
    };
    if let Err(e) = ended {
        // A connection closed by this node (replaced, or on shutdown) may
        // end inside a record without the peer being at fault.
        let ours = shared.stopping() || !shared.inbound.is_current(id, peer);
        let count = Count::of_record(e);
        if count != Count::Truncated || !ours {
            shared.counters.add(count);
            tracing::debug!(me = %shared.me, %peer, "connection closed: {e}");
        }
    }
}
