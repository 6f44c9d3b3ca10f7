//! The sending side: for each peer a bounded queue that `send` fills
//! without waiting, and a writer thread that connects lazily, runs the
//! handshake, writes the queue out as records, and connects again with
//! back-off when the connection fails.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use paxos_core::NodeId;

use super::counters::Count;
use super::wire::{connect_handshake, RecordSealer, SessionKey, RECORD_OVERHEAD};
use super::{lock, Shared};

/// Bytes the writer gathers before a `write` call: many small frames go
/// out in one system call, large ones go straight through.
const WRITE_BUFFER: usize = 64 << 10;

/// What a frame costs in its queue: its record's bytes, so that even
/// empty frames fill a queue.
pub(super) fn cost(frame: &[u8]) -> usize {
    frame.len() + RECORD_OVERHEAD
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Arc<[u8]>>,
    /// The cost of the frames queued and of the batch being written.
    bytes: usize,
}

/// One peer's outbound state, shared by `send` and the peer's writer.
#[derive(Debug)]
pub(super) struct Outbound {
    pub(super) peer: NodeId,
    addr: SocketAddr,
    limit: usize,
    queue: Mutex<Queue>,
    /// Signalled when a frame is queued, and on shutdown.
    ready: Condvar,
    /// The connection being opened or used, for shutdown to close.
    stream: Mutex<Option<TcpStream>>,
}

impl Outbound {
    pub(super) fn new(peer: NodeId, addr: SocketAddr, limit: usize) -> Self {
        Outbound {
            peer,
            addr,
            limit,
            queue: Mutex::default(),
            ready: Condvar::new(),
            stream: Mutex::new(None),
        }
    }

    /// Queues `frame` unless that would take the queue past its limit.
    pub(super) fn push(&self, frame: &Arc<[u8]>) -> bool {
        let cost = cost(frame);
        let mut queue = lock(&self.queue);
        if queue.bytes.saturating_add(cost) > self.limit {
            return false;
        }
        queue.bytes += cost;
        queue.frames.push_back(Arc::clone(frame));
        drop(queue);
        self.ready.notify_one();
        true
    }

    /// The cost of the frames queued and of the batch being written.
    pub(super) fn queued(&self) -> usize {
        lock(&self.queue).bytes
    }

    /// Wakes the writer wherever it waits and closes its connection: it
    /// sees `stop` and returns.
    pub(super) fn close(&self) {
        drop(lock(&self.queue));
        self.ready.notify_all();
        if let Some(stream) = lock(&self.stream).as_ref() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Waits until a frame is queued; false once `stop` is set.
    fn wait_for_frames(&self, stop: &AtomicBool) -> bool {
        let queue = lock(&self.queue);
        let _queue = self
            .ready
            .wait_while(queue, |q| q.frames.is_empty() && !stopping(stop))
            .unwrap_or_else(PoisonError::into_inner);
        !stopping(stop)
    }

    /// Takes every queued frame; their cost stays counted until
    /// [`release`](Self::release), so the queue's limit bounds what is
    /// written too.
    fn take(&self) -> (VecDeque<Arc<[u8]>>, usize) {
        let frames = core::mem::take(&mut lock(&self.queue).frames);
        let bytes = frames.iter().map(|f| cost(f)).sum();
        (frames, bytes)
    }

    fn release(&self, bytes: usize) {
        let mut queue = lock(&self.queue);
        queue.bytes = queue.bytes.saturating_sub(bytes);
    }

    /// Sleeps `delay`, or less if `stop` is set; false once it is.
    fn pause(&self, delay: Duration, stop: &AtomicBool) -> bool {
        let queue = lock(&self.queue);
        let _queue = self
            .ready
            .wait_timeout_while(queue, delay, |_| !stopping(stop))
            .unwrap_or_else(PoisonError::into_inner);
        !stopping(stop)
    }

    /// Keeps a handle on `stream` for [`close`](Self::close); false if
    /// the transport is already stopping.
    fn hold(&self, stream: Option<&TcpStream>, stop: &AtomicBool) -> bool {
        *lock(&self.stream) = stream.and_then(|s| s.try_clone().ok());
        !stopping(stop)
    }
}

fn stopping(stop: &AtomicBool) -> bool {
    stop.load(core::sync::atomic::Ordering::SeqCst)
}

/// Exponential back-off between connection attempts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(super) fn new(min: Duration, max: Duration) -> Self {
        Backoff { min, max, next: min }
    }

    /// The next delay: `min`, doubling up to `max`.
    pub(super) fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = delay.saturating_mul(2).min(self.max);
        delay
    }

    pub(super) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// The writer thread of one peer: returns once the transport stops.
pub(super) fn run(shared: &Shared, out: &Outbound) {
    let stop = &shared.stop;
    let options = &shared.options;
    let mut backoff = Backoff::new(options.backoff_min, options.backoff_max);
    let mut connected_before = false;
    while out.wait_for_frames(stop) {
        let (stream, session) = match connect(shared, out) {
            Ok(connected) => connected,
            Err(count) => {
                out.hold(None, stop);
                if !stopping(stop) {
                    shared.counters.add(count);
                }
                if out.pause(backoff.next(), stop) {
                    continue;
                }
                break;
            }
        };
        if connected_before {
            shared.counters.add(Count::Reconnect);
        }
        connected_before = true;
        let since = Instant::now();
        let ended = write_frames(shared, out, &stream, session);
        out.hold(None, stop);
        drop(stream);
        if let Err(e) = ended {
            tracing::debug!(me = %shared.me, peer = %out.peer, "connection ended: {e}");
        }
        // A connection that lasted has earned a quick reconnection; one
        // that failed at once keeps backing off.
        if since.elapsed() >= options.backoff_max {
            backoff.reset();
        }
        if !out.pause(backoff.next(), stop) {
            break;
        }
    }
    out.hold(None, stop);
}

/// Opens the connection and runs the handshake; what to count if either
/// fails.
fn connect(shared: &Shared, out: &Outbound) -> Result<(TcpStream, SessionKey), Count> {
    let timeout = shared.options.connect_timeout;
    let mut stream = TcpStream::connect_timeout(&out.addr, timeout).map_err(|e| {
        tracing::debug!(me = %shared.me, peer = %out.peer, "cannot connect: {e}");
        Count::ConnectFailure
    })?;
    if !out.hold(Some(&stream), &shared.stop) {
        return Err(Count::ConnectFailure);
    }
    let configured = stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(timeout)))
        .and_then(|()| stream.set_write_timeout(Some(timeout)));
    if configured.is_err() {
        return Err(Count::ConnectFailure);
    }
    let session = connect_handshake(&mut stream, &shared.key, shared.me, out.peer).map_err(|e| {
        tracing::debug!(me = %shared.me, peer = %out.peer, "handshake failed: {e}");
        Count::of_handshake(e, true)
    })?;
    stream
        .set_write_timeout(Some(shared.options.write_timeout))
        .map_err(|_| Count::ConnectFailure)?;
    Ok((stream, session))
}

/// Writes queued frames as records until the connection fails or the
/// transport stops. Frames of a batch that fails are lost, as datagrams
/// would be; frames still queued wait for the next connection.
fn write_frames(shared: &Shared, out: &Outbound, stream: &TcpStream, session: SessionKey) -> io::Result<()> {
    let mut sealer = RecordSealer::new(session);
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, stream);
    while out.wait_for_frames(&shared.stop) {
        check_open(stream)?;
        let (batch, bytes) = out.take();
        let written = batch
            .iter()
            .try_for_each(|frame| sealer.write_record(&mut writer, frame))
            .and_then(|()| writer.flush());
        out.release(bytes);
        written?;
    }
    Ok(())
}

/// Fails if the peer closed the connection. The accepting side never
/// writes after the handshake, so anything readable is its end: this
/// catches a restarted or replacing peer before a batch is lost into the
/// dead connection.
fn check_open(stream: &TcpStream) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    let peeked = stream.peek(&mut [0; 1]);
    stream.set_nonblocking(false)?;
    match peeked {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the peer closed the connection",
        )),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the peer wrote after the handshake",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        let delays: Vec<u128> = (0..8).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(50));
    }

    #[test]
    fn the_queue_is_bounded_by_bytes_including_record_overhead() {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);
        let out = Outbound::new(NodeId(2), addr, 2 * RECORD_OVERHEAD + 10);
        let empty: Arc<[u8]> = Arc::from(&[][..]);
        let ten: Arc<[u8]> = Arc::from(&[0; 10][..]);
        assert!(out.push(&ten));
        assert!(out.push(&empty));
        assert!(!out.push(&empty), "an empty frame still costs its record");
        let (batch, bytes) = out.take();
        assert_eq!((batch.len(), bytes), (2, 2 * RECORD_OVERHEAD + 10));
        assert!(!out.push(&empty), "a batch being written still counts");
        out.release(bytes);
        assert!(out.push(&ten));
    }

    #[test]
    fn waits_end_on_stop() {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);
        let out = Arc::new(Outbound::new(NodeId(2), addr, 1000));
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (out, stop) = (Arc::clone(&out), Arc::clone(&stop));
            std::thread::spawn(move || (out.wait_for_frames(&stop), out.pause(Duration::from_secs(600), &stop)))
        };
        stop.store(true, core::sync::atomic::Ordering::SeqCst);
        out.close();
        assert_eq!(waiter.join().unwrap(), (false, false));
    }
}
