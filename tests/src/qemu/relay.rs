//! The relay: reads every node's UART, decodes frames
//! (`paxos_embedded::framing`), and forwards each to the node named in its
//! `[from][to]` header, through seeded faults: loss, delay (which also
//! reorders) and cut links.

use crate::rng::TestRng;
use paxos_embedded::framing::{self, decoder_capacity, max_encoded_len, Decoder, Feed};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest payload relayed: more than any replica frame of the
/// firmware's configuration.
const MAX_PAYLOAD: usize = 2048;

/// What the relay does to frames.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// Seeds every choice below.
    pub seed: u64,
    /// Frames lost, per thousand.
    pub drop_permille: u32,
    /// Each frame is held back a random time up to this.
    pub max_delay: Duration,
}

/// What the relay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Frames delivered.
    pub forwarded: u64,
    /// Frames lost on purpose.
    pub dropped: u64,
    /// Frames stopped by a cut link.
    pub cut: u64,
    /// Frames for a node that was down.
    pub undeliverable: u64,
    /// Frames with a bad header (sender not the connection's node, or an
    /// unknown destination).
    pub misaddressed: u64,
    /// Frames the decoder dropped (damaged on the line).
    pub damaged: u64,
}

struct Shared {
    nodes: u8,
    writers: Mutex<Vec<Option<TcpStream>>>,
    cut: Mutex<HashSet<(u8, u8)>>,
    stats: Mutex<RelayStats>,
    stop: AtomicBool,
}

/// A frame read from `from`'s UART.
struct Inbound {
    conn: u8,
    payload: Vec<u8>,
}

/// The running relay.
pub struct Relay {
    shared: Arc<Shared>,
    inbound: Option<Sender<Inbound>>,
    router: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts the router for nodes `1..=nodes`; attach their UARTs next.
    pub fn start(nodes: u8, faults: Faults) -> Self {
        let shared = Arc::new(Shared {
            nodes,
            writers: Mutex::new((0..nodes).map(|_| None).collect()),
            cut: Mutex::new(HashSet::new()),
            stats: Mutex::new(RelayStats::default()),
            stop: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel();
        let router = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || route(&shared, &rx, faults))
        };
        Relay {
            shared,
            inbound: Some(tx),
            router: Some(router),
        }
    }

    /// Connects node `id`'s UART.
    pub fn attach(&self, id: u8, stream: TcpStream) -> Result<(), String> {
        let reader = stream.try_clone().map_err(|e| format!("clone: {e}"))?;
        let _ = stream.set_nodelay(true);
        if let Ok(mut w) = self.shared.writers.lock() {
            if let Some(slot) = w.get_mut(usize::from(id) - 1) {
                *slot = Some(stream);
            }
        }
        let tx = self.inbound.clone().ok_or("relay stopped")?;
        let shared = Arc::clone(&self.shared);
        std::thread::spawn(move || read_uart(id, reader, &tx, &shared));
        Ok(())
    }

    /// Disconnects node `id` (it was killed).
    pub fn detach(&self, id: u8) {
        if let Ok(mut w) = self.shared.writers.lock() {
            if let Some(stream) = w.get_mut(usize::from(id) - 1).and_then(Option::take) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&self, a: u8, b: u8) {
        if let Ok(mut c) = self.shared.cut.lock() {
            c.insert((a, b));
            c.insert((b, a));
        }
    }

    /// Cuts `node` off from every other node.
    pub fn isolate(&self, node: u8) {
        for other in (1..=self.shared.nodes).filter(|&o| o != node) {
            self.cut(node, other);
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        if let Ok(mut c) = self.shared.cut.lock() {
            c.clear();
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> RelayStats {
        self.shared.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Stops the router and closes every connection.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.inbound = None;
        for id in 1..=self.shared.nodes {
            self.detach(id);
        }
        if let Some(r) = self.router.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_uart(conn: u8, mut stream: TcpStream, tx: &Sender<Inbound>, shared: &Shared) {
    let mut decoder = Decoder::<{ decoder_capacity(MAX_PAYLOAD) }>::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let (taken, feed) = decoder.feed_slice(rest);
            rest = &rest[taken..];
            match feed {
                Feed::Frame(payload) => {
                    if tx
                        .send(Inbound {
                            conn,
                            payload: payload.to_vec(),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Feed::Dropped(_) => {
                    if let Ok(mut s) = shared.stats.lock() {
                        s.damaged += 1;
                    }
                }
                Feed::Pending => {}
            }
        }
    }
}

/// A frame held back until `due`; `seq` keeps equal times in order.
type Held = Reverse<(Instant, u64, u8, Vec<u8>)>;

fn route(shared: &Shared, rx: &Receiver<Inbound>, faults: Faults) {
    let mut rng = TestRng::new(faults.seed);
    let mut held: BinaryHeap<Held> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut encoded = vec![0u8; max_encoded_len(MAX_PAYLOAD)];
    while !shared.stop.load(Ordering::Relaxed) {
        let wait = held
            .peek()
            .map(|Reverse((due, ..))| due.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(20))
            .min(Duration::from_millis(20));
        match rx.recv_timeout(wait) {
            Ok(frame) => {
                let verdict = judge(shared, &frame, &mut rng, faults);
                if let Some(to) = verdict {
                    let delay = Duration::from_micros(rng.below(faults.max_delay.as_micros() as u64 + 1));
                    seq += 1;
                    held.push(Reverse((Instant::now() + delay, seq, to, frame.payload)));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        while held.peek().is_some_and(|Reverse((due, ..))| *due <= now) {
            let Some(Reverse((_, _, to, payload))) = held.pop() else {
                break;
            };
            let Ok(n) = framing::encode(&payload, &mut encoded) else {
                continue;
            };
            let sent = shared.writers.lock().ok().is_some_and(|mut w| {
                w.get_mut(usize::from(to) - 1)
                    .and_then(Option::as_mut)
                    .is_some_and(|s| s.write_all(&encoded[..n]).is_ok())
            });
            if let Ok(mut s) = shared.stats.lock() {
                if sent {
                    s.forwarded += 1;
                } else {
                    s.undeliverable += 1;
                }
            }
        }
    }
}

/// Where a frame goes, if anywhere; counts why not.
fn judge(shared: &Shared, frame: &Inbound, rng: &mut TestRng, faults: Faults) -> Option<u8> {
    let mut stats = shared.stats.lock().ok()?;
    let (from, to) = match frame.payload.as_slice() {
        [from, to, ..] if *from == frame.conn && (1..=shared.nodes).contains(to) && to != from => (*from, *to),
        _ => {
            stats.misaddressed += 1;
            return None;
        }
    };
    if shared.cut.lock().is_ok_and(|c| c.contains(&(from, to))) {
        stats.cut += 1;
        return None;
    }
    if rng.below(1000) < u64::from(faults.drop_permille) {
        stats.dropped += 1;
        return None;
    }
    Some(to)
}
