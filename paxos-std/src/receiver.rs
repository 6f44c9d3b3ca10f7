//! The receiving side of a blocking driver: a thread that reads the UDP
//! socket into a fixed pool of buffers and queues each datagram for the
//! driver's loop, which hands the buffer back to the pool when done.

use crate::transport::{UdpTransport, RECV_BUFFER_LEN};
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
    /// The buffer it was received into.
    pub buf: Box<[u8]>,
    /// Where the payload is in `buf`.
    pub frame: Range<usize>,
}

impl Datagram {
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        self.buf.get(self.frame.clone()).unwrap_or_default()
    }
}

/// Where the loop returns receive buffers.
#[derive(Debug)]
pub struct Pool(SyncSender<Box<[u8]>>);

impl Pool {
    /// Hands a datagram's buffer back for the next receive.
    pub fn give_back(&self, datagram: Datagram) {
        // The pool has room for every buffer there is.
        let _ = self.0.try_send(datagram.buf);
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
        let _ = pool_tx.try_send(vec![0u8; RECV_BUFFER_LEN].into_boxed_slice());
    }
    let thread = std::thread::Builder::new()
        .name("paxos-udp".into())
        .spawn(move || receive(&net, &tx, &pool, &stop, wrap))?;
    Ok((Pool(pool_tx), thread))
}

fn receive<I>(
    net: &UdpTransport,
    tx: &SyncSender<I>,
    pool: &Receiver<Box<[u8]>>,
    stop: &AtomicBool,
    wrap: fn(Datagram) -> I,
) {
    let mut held: Option<Box<[u8]>> = None;
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
                let mut input = wrap(Datagram {
                    from: received.from,
                    buf,
                    frame: received.frame,
                });
                // Wait for room, but keep an eye on the stop flag.
                loop {
                    match tx.try_send(input) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) if !stop.load(Ordering::Relaxed) => {
                            input = back;
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        Err(_) => return,
                    }
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
