//! The receiving side of a blocking driver: a thread that reads the UDP
//! socket into a fixed pool of buffers and queues each datagram for the
//! driver's loop, which hands the buffer back to the pool when done.
//!
//! A datagram's buffer is a [`bytes::Bytes`], so that the payloads decoded
//! from it ([`Datagram::decode`]) can share it rather than copy it (see
//! [`decoding_from`]). A buffer a payload still shares when it is handed
//! back stays with that payload, and the pool takes a fresh one instead.

use crate::payload::decoding_from;
use crate::transport::{UdpTransport, RECV_BUFFER_LEN};
use bytes::{Bytes, BytesMut};
use paxos_core::NodeId;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Receive buffers per node. A buffer is back in the pool as soon as the
/// loop handled its datagram, so this bounds only bursts; when all are
/// out, datagrams wait in the socket's buffer.
const POOL: usize = 64;
/// How often the thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// A datagram's payload, `buf[frame]`, from `from`; `buf` goes back to the
/// pool through [`Pool::give_back`].
#[derive(Debug)]
pub struct Datagram {
    /// The sender.
    pub from: NodeId,
    /// The whole buffer it was received into: what a payload decoded from
    /// it and sharing it keeps alive.
    pub buf: Bytes,
    /// Where the payload is in `buf`.
    pub frame: Range<usize>,
}

impl Datagram {
    /// A frame received some other way (from
    /// [`TcpTransport`](crate::transport::tcp::TcpTransport)), in a buffer
    /// of its own, taken without a copy: the whole buffer is the payload,
    /// and [`Pool::give_back`] lets it go.
    pub fn from_frame(from: NodeId, frame: Vec<u8>) -> Self {
        let buf = Bytes::from(frame);
        Datagram {
            from,
            frame: 0..buf.len(),
            buf,
        }
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        self.buf.get(self.frame.clone()).unwrap_or_default()
    }

    /// Runs `decode` over the payload inside [`decoding_from`] the whole
    /// buffer: the [`Payload`](crate::Payload)s it decodes may share the
    /// buffer instead of copying their bytes. The buffer, not just the
    /// payload, is the frame whose size bounds what a shared payload keeps
    /// alive.
    pub fn decode<R>(&self, decode: impl FnOnce(&[u8]) -> R) -> R {
        decoding_from(&self.buf, || decode(self.payload()))
    }
}

/// Where the loop returns receive buffers.
#[derive(Debug)]
pub struct Pool(SyncSender<BytesMut>);

impl Pool {
    /// Hands a datagram's buffer back for the next receive. A buffer that
    /// is not a receive buffer ([`Datagram::from_frame`]'s) is dropped. A
    /// receive buffer that payloads decoded from it still share stays
    /// theirs, and a fresh one takes its place in the pool.
    pub fn give_back(&self, datagram: Datagram) {
        if datagram.buf.len() != RECV_BUFFER_LEN {
            return;
        }
        let buf = datagram
            .buf
            .try_into_mut()
            .unwrap_or_else(|_| BytesMut::zeroed(RECV_BUFFER_LEN));
        // The pool has room for every buffer there is.
        let _ = self.0.try_send(buf);
    }
}

/// Inputs a driver takes in one turn at most, so one turn (and its one
/// sync) never waits on an endless stream of them.
pub const MAX_INPUTS_PER_TURN: usize = 1024;

/// One turn's inputs: waits up to `wait` for the first, then takes every
/// input already queued too (so that one sync covers them), at most
/// [`MAX_INPUTS_PER_TURN`], handing each to `handle`.
pub fn take_turn<I>(inbox: &Receiver<I>, wait: Duration, mut handle: impl FnMut(I)) {
    let mut next = inbox.recv_timeout(wait).ok();
    let mut taken = 0;
    while let Some(input) = next {
        handle(input);
        taken += 1;
        next = if taken < MAX_INPUTS_PER_TURN {
            inbox.try_recv().ok()
        } else {
            None
        };
    }
}

/// Starts the receiving thread: every datagram goes to `tx` as
/// `wrap(datagram)`. Stops when `stop` is set or `tx` is closed.
///
/// # Errors
///
/// The thread could not be spawned.
pub fn spawn<I: Send + 'static>(
    net: Arc<UdpTransport>,
    tx: SyncSender<I>,
    stop: Arc<AtomicBool>,
    wrap: fn(Datagram) -> I,
) -> std::io::Result<(Pool, JoinHandle<()>)> {
    let (pool_tx, pool) = mpsc::sync_channel(POOL);
    for _ in 0..POOL {
        let _ = pool_tx.try_send(BytesMut::zeroed(RECV_BUFFER_LEN));
    }
    let thread = std::thread::Builder::new()
        .name("paxos-udp".into())
        .spawn(move || receive(&net, &tx, &pool, &stop, wrap))?;
    Ok((Pool(pool_tx), thread))
}

fn receive<I>(
    net: &UdpTransport,
    tx: &SyncSender<I>,
    pool: &Receiver<BytesMut>,
    stop: &AtomicBool,
    wrap: fn(Datagram) -> I,
) {
    let mut held: Option<BytesMut> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut buf = match held.take() {
            Some(buf) => buf,
            None => match pool.recv_timeout(POLL) {
                Ok(buf) => buf,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        match net.recv(&mut buf, Some(POLL)) {
            Ok(Some(received)) => {
                let input = wrap(Datagram {
                    from: received.from,
                    // The whole buffer, without a copy.
                    buf: buf.freeze(),
                    frame: received.frame,
                });
                if !offer(tx, input, stop) {
                    return;
                }
            }
            Ok(None) => held = Some(buf),
            Err(e) => {
                tracing::warn!("receive failed: {e}");
                held = Some(buf);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Queues `input` for the loop, waiting for room while `stop` is clear;
/// false if it was not queued (the loop is gone, or stop was set).
pub(crate) fn offer<I>(tx: &SyncSender<I>, mut input: I, stop: &AtomicBool) -> bool {
    loop {
        match tx.try_send(input) {
            Ok(()) => return true,
            Err(TrySendError::Full(back)) if !stop.load(Ordering::Relaxed) => {
                input = back;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_datagram_is_its_own_buffer_and_leaves_the_pool_alone() {
        let datagram = Datagram::from_frame(NodeId(4), b"frame".to_vec());
        assert_eq!((datagram.from, datagram.payload()), (NodeId(4), &b"frame"[..]));
        let (tx, rx) = mpsc::sync_channel(2);
        let pool = Pool(tx);
        pool.give_back(datagram);
        pool.give_back(Datagram::from_frame(NodeId(4), Vec::new()));
        assert!(rx.try_recv().is_err(), "not receive buffers: dropped");
        let buf = Bytes::from(vec![0; RECV_BUFFER_LEN]);
        let at = buf.as_ptr();
        pool.give_back(Datagram {
            from: NodeId(4),
            buf,
            frame: 0..0,
        });
        let back = rx.try_recv().unwrap();
        assert_eq!(
            (back.len(), back.as_ptr()),
            (RECV_BUFFER_LEN, at),
            "the same buffer again"
        );
    }

    /// Payloads decoded from a datagram share its buffer; handed back
    /// while they live, the buffer stays theirs and the pool gets a fresh
    /// one, so the next receive never writes under them.
    #[test]
    fn a_shared_buffer_stays_with_its_payloads() {
        let value = crate::Payload::from_vec(vec![5; 4096]).unwrap();
        let encoded = postcard::to_allocvec(&value).unwrap();
        let mut buf = BytesMut::zeroed(RECV_BUFFER_LEN);
        buf[10..10 + encoded.len()].copy_from_slice(&encoded);
        let datagram = Datagram {
            from: NodeId(2),
            buf: buf.freeze(),
            frame: 10..10 + encoded.len(),
        };
        let at = datagram.buf.as_ptr();
        let decoded: crate::Payload = datagram.decode(|b| postcard::from_bytes(b)).unwrap();
        assert_eq!(decoded, value);
        let inside = datagram.buf.as_ptr_range();
        assert!(inside.contains(&decoded.as_slice().as_ptr()), "shares the buffer");
        let (tx, rx) = mpsc::sync_channel(1);
        Pool(tx).give_back(datagram);
        let fresh = rx.try_recv().unwrap();
        assert_eq!(fresh.len(), RECV_BUFFER_LEN);
        assert_ne!(fresh.as_ptr(), at, "a fresh buffer");
        assert_eq!(decoded, value, "the payload's bytes are untouched");
        // A frame from the stream transport is its own buffer.
        let frame = Datagram::from_frame(NodeId(3), encoded.clone());
        let decoded: crate::Payload = frame.decode(|b| postcard::from_bytes(b)).unwrap();
        assert!(frame.buf.as_ptr_range().contains(&decoded.as_slice().as_ptr()));
    }

    #[test]
    fn offer_queues_or_gives_up_on_stop_or_a_closed_loop() {
        let (tx, rx) = mpsc::sync_channel(1);
        let stop = AtomicBool::new(false);
        assert!(offer(&tx, 1, &stop));
        stop.store(true, Ordering::Relaxed);
        assert!(!offer(&tx, 2, &stop), "full, and stopping");
        assert_eq!(rx.try_recv(), Ok(1));
        drop(rx);
        assert!(!offer(&tx, 3, &AtomicBool::new(false)), "the loop is gone");
    }
}
