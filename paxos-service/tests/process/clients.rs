//! Concurrent clients that ask keys through the client API until told to
//! stop, retrying on other nodes, and record what each was told.

use super::{ask_api, wait_for};
use paxos_service::client::ClientError;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One key a client asked, what it proposed and what it was told (`None`
/// if it gave up).
#[derive(Clone, Debug)]
pub struct Asked {
    pub client: usize,
    pub key: String,
    pub value: String,
    pub answer: Option<Option<String>>,
}

/// Sets `stop` and `abort` on drop, so clients end promptly even when the
/// test fails.
pub struct StopOnDrop {
    pub stop: Arc<AtomicBool>,
    pub abort: Arc<AtomicBool>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.abort.store(true, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The key a client asks at its `i`th step: mostly its own, every third a
/// key every client asks with its own value.
pub fn key_for(client: usize, i: u64) -> String {
    if i % 3 == 2 {
        format!("shared-{}", i / 3)
    } else {
        format!("c{client}-{i}")
    }
}

/// One client: asks keys until `stop`, each through some node, retried on
/// other nodes on error (the node asked may be down).
pub fn client_loop(
    client: usize,
    nodes: Arc<Vec<SocketAddr>>,
    stop: Arc<AtomicBool>,
    abort: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    errors: Arc<Mutex<BTreeMap<String, u64>>>,
) -> Vec<Asked> {
    let hard_deadline = Instant::now() + Duration::from_secs(60);
    let mut asked = Vec::new();
    for i in 0..100_000u64 {
        if stop.load(Ordering::Relaxed) || Instant::now() >= hard_deadline {
            break;
        }
        let key = key_for(client, i);
        let value = format!("v{client}-{i}");
        let mut answer = None;
        // Once asked, a key is followed through to an answer (bounded), even
        // after `stop`, so that few asks are left in doubt.
        let give_up = Instant::now() + Duration::from_secs(12);
        for attempt in 0..40 {
            let node = nodes[(client + i as usize + attempt) % nodes.len()];
            match ask_api(node, &key, Some(&value)) {
                Ok(a) => {
                    answer = Some(a.value);
                    break;
                }
                Err(e) => {
                    let kind = match e {
                        ClientError::Io(e) => format!("io: {:?}", e.kind()),
                        ClientError::Node(m) => format!("node: {m}"),
                        ClientError::BadReply(m) => format!("bad reply: {m}"),
                    };
                    if let Ok(mut errors) = errors.lock() {
                        *errors.entry(kind).or_default() += 1;
                    }
                    if Instant::now() >= give_up || abort.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        if answer.is_some() {
            answered.fetch_add(1, Ordering::Relaxed);
        }
        asked.push(Asked {
            client,
            key,
            value,
            answer,
        });
    }
    asked
}

/// Waits (bounded) until `answered` grows by at least `by`.
pub fn wait_progress(answered: &AtomicU64, by: u64, limit: Duration, what: &str) {
    let from = answered.load(Ordering::Relaxed);
    let ok = wait_for(limit, Duration::from_millis(50), || {
        (answered.load(Ordering::Relaxed) >= from + by).then_some(())
    });
    assert!(
        ok.is_some(),
        "{what}: fewer than {by} asks answered in {limit:?} (from {from} to {})",
        answered.load(Ordering::Relaxed)
    );
}

/// Clients asking keys concurrently (see [`client_loop`]) until
/// [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    errors: Arc<Mutex<BTreeMap<String, u64>>>,
    threads: Vec<JoinHandle<Vec<Asked>>>,
    stop_guard: StopOnDrop,
}

impl Load {
    /// Starts `clients` clients asking keys through `nodes`.
    pub fn start(nodes: &[SocketAddr], clients: usize) -> Load {
        let nodes = Arc::new(nodes.to_vec());
        let stop = Arc::new(AtomicBool::new(false));
        let abort = Arc::new(AtomicBool::new(false));
        let stop_guard = StopOnDrop {
            stop: Arc::clone(&stop),
            abort: Arc::clone(&abort),
        };
        let answered = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(BTreeMap::new()));
        let threads: Vec<JoinHandle<Vec<Asked>>> = (0..clients)
            .map(|c| {
                let (nodes, stop, abort, answered, errors) = (
                    Arc::clone(&nodes),
                    Arc::clone(&stop),
                    Arc::clone(&abort),
                    Arc::clone(&answered),
                    Arc::clone(&errors),
                );
                std::thread::spawn(move || client_loop(c, nodes, stop, abort, answered, errors))
            })
            .collect();
        Load {
            stop,
            answered,
            errors,
            threads,
            stop_guard,
        }
    }

    /// How many asks were answered so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Waits (bounded) until at least `by` more asks are answered.
    pub fn wait_progress(&self, by: u64, limit: Duration, what: &str) {
        wait_progress(&self.answered, by, limit, what);
    }

    /// Stops the clients once each has its current ask answered (or gave
    /// it up); returns every ask, how many were answered, and the errors
    /// they retried, by kind.
    pub fn stop(self) -> (Vec<Asked>, u64, BTreeMap<String, u64>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut asked = Vec::new();
        for t in self.threads {
            asked.extend(t.join().expect("a client thread panicked"));
        }
        drop(self.stop_guard);
        let errors = self.errors.lock().map(|e| e.clone()).unwrap_or_default();
        (asked, self.answered.load(Ordering::Relaxed), errors)
    }
}
