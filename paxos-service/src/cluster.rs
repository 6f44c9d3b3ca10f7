//! The Rust client of a paxos cluster, over the binary
//! [`protocol`].
//!
//! A [`Client`] keeps one connection, to one node at a time (the leader
//! when a status says which node leads; any node otherwise, as followers
//! forward writes), and pipelines every caller's requests on it: they are
//! answered out of order, by request id. When the connection breaks, or
//! the node cannot serve (an election, a lost quorum, a node stopping), the
//! request is retried on another node until the request timeout.
//!
//! Writes are exactly-once: the client opens a session on its first write
//! and numbers its writes; a retry keeps its number, so the cluster applies
//! each write once however often and through whichever node it is retried,
//! and a retry gets the first application's output.
//!
//! [`BlockingClient`] is the same client for code without an async runtime.

use crate::client::Status;
use crate::protocol::{self, Error, ErrorKind, Frame, Reply, Request, SizeLimits, MAGIC};
use crate::store::{Command, Output};
use paxos_std::runtime::SessionTag;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore, SemaphorePermit};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};

/// The most calls a client keeps in flight, and the widest span of write
/// numbers it has outstanding: well below the 256 unacknowledged outputs a
/// node keeps per session, so a retry always finds its output.
const MAX_IN_FLIGHT: usize = 128;
/// How long finding a node waits for the nodes' statuses.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause after a round of connecting that found no node, doubled
/// after each such round up to [`FIND_BACKOFF_MAX`].
const FIND_BACKOFF_FIRST: Duration = Duration::from_millis(50);
/// The longest pause between rounds of connecting.
const FIND_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// The pause before a call's first retry, doubled after each retry up to
/// [`RETRY_BACKOFF_MAX`].
const RETRY_BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// The longest pause between a call's retries.
const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(500);
/// Frames queued for a connection's writer.
const OUTBOX: usize = 2 * MAX_IN_FLIGHT;
/// Bytes the writer gathers into one write.
const WRITE_BATCH: usize = 256 * 1024;

/// How a client reaches a cluster.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Every node's client address.
    pub nodes: Vec<SocketAddr>,
    /// How long a call keeps trying before it gives up with
    /// [`CallError::Unavailable`] (default 20 s).
    pub request_timeout: Duration,
    /// How long one attempt on one node may take (default 3 s).
    pub attempt_timeout: Duration,
    /// Calls in flight at once; more wait (default 128, clamped to
    /// `1..=128`).
    pub max_in_flight: usize,
    /// The longest key and value (default [`SizeLimits::DEFAULT`], the
    /// nodes' default): longer ones are refused before they are sent, and
    /// replies are read up to its [`max_frame`](SizeLimits::max_frame).
    /// Give the nodes' own settings.
    pub sizes: SizeLimits,
}

impl ClientOptions {
    /// The defaults, for a cluster of `nodes`.
    pub fn new(nodes: Vec<SocketAddr>) -> Self {
        ClientOptions {
            nodes,
            request_timeout: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(3),
            max_in_flight: MAX_IN_FLIGHT,
            sizes: SizeLimits::DEFAULT,
        }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// A node refused it for a reason a retry cannot fix, or the client
    /// did before sending it (a key or value longer than
    /// [`ClientOptions::sizes`] allows): its error. For a
    /// write, only [`ErrorKind::AppliedEarlier`] means it was applied (by
    /// an earlier attempt, whose output is lost); every other kind (a bad
    /// request, a key or command too large, a session that expired before
    /// any attempt was sent, a [`ErrorKind::SessionConflict`], a session
    /// that could not be opened) means it was not applied.
    Refused(Error),
    /// No node gave an outcome within the request timeout, or the outcome
    /// is lost (the session expired after an attempt was sent): a write
    /// may be applied (once) or not. `last` says what the last attempt
    /// saw.
    Unavailable {
        /// What the last attempt saw.
        last: String,
    },
    /// The client was given no node addresses.
    NoNodes,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Refused(e) => write!(f, "refused: {e}"),
            CallError::Unavailable { last } => write!(f, "no node answered in time (last: {last})"),
            CallError::NoNodes => f.write_str("no node addresses given"),
        }
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Refused(e) => Some(e),
            _ => None,
        }
    }
}

/// The answer to gen_paxos's ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    /// The value decided for the register.
    pub value: Vec<u8>,
    /// Whether this ask decided it.
    pub won: bool,
}

/// The outcome of a compare-and-set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasOutcome {
    /// Whether the value matched and was replaced.
    pub ok: bool,
    /// The key's value after the command (`None`: absent).
    pub current: Option<Vec<u8>>,
}

/// An async client of a cluster: cheap to clone (the clones share one
/// connection and one session), used from many tasks at once — their
/// requests are pipelined on one connection and answered out of order.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("nodes", &self.inner.nodes)
            .field("node", &self.inner.node())
            .field("session", &self.session())
            .finish()
    }
}

impl Client {
    /// Connects to the cluster: to the node whose status says it leads, or
    /// else to any node that answers. Nodes that are down are passed over.
    ///
    /// # Errors
    ///
    /// [`CallError::NoNodes`] without addresses; [`CallError::Unavailable`]
    /// when no node answered within the request timeout.
    pub async fn connect(options: ClientOptions) -> Result<Client, CallError> {
        if options.nodes.is_empty() {
            return Err(CallError::NoNodes);
        }
        let client = Client {
            inner: Arc::new(Inner::new(options)),
        };
        let deadline = after(client.inner.request_timeout);
        match timeout_at(deadline, client.inner.connection(deadline)).await {
            Ok(Ok(_)) => Ok(client),
            Ok(Err(last)) => Err(CallError::Unavailable { last }),
            Err(_) => Err(client.inner.unavailable(String::new())),
        }
    }

    /// gen_paxos's ask: decides `value` for register `key` unless it holds
    /// one already; the decided value, and whether this ask decided it.
    ///
    /// # Errors
    ///
    /// As [`Client::write`].
    pub async fn ask(&self, key: &[u8], value: &[u8]) -> Result<Asked, CallError> {
        let command = Command::Ask {
            key: key.to_vec(),
            value: value.to_vec(),
        };
        match self.write(command).await? {
            Output::Asked { value, won } => Ok(Asked { value, won }),
            other => Err(mismatch(&other)),
        }
    }

    /// The value decided for register `key`, if any (linearizable).
    ///
    /// # Errors
    ///
    /// [`CallError::Refused`] for a key that is too long;
    /// [`CallError::Unavailable`] when no node answered in time.
    pub async fn register(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CallError> {
        self.read(Request::Register { key: key.to_vec() }).await
    }

    /// Sets `key` to `value` in the map; the previous value.
    ///
    /// # Errors
    ///
    /// As [`Client::write`].
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, CallError> {
        let command = Command::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        };
        match self.write(command).await? {
            Output::Put { previous } => Ok(previous),
            other => Err(mismatch(&other)),
        }
    }

    /// Removes `key` from the map; the previous value.
    ///
    /// # Errors
    ///
    /// As [`Client::write`].
    pub async fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CallError> {
        match self.write(Command::Delete { key: key.to_vec() }).await? {
            Output::Deleted { previous } => Ok(previous),
            other => Err(mismatch(&other)),
        }
    }

    /// Compare-and-set: when `key` holds `expected` (`None`: absent), sets
    /// it to `new` (`None`: deletes it).
    ///
    /// # Errors
    ///
    /// As [`Client::write`].
    pub async fn cas(&self, key: &[u8], expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<CasOutcome, CallError> {
        let command = Command::Cas {
            key: key.to_vec(),
            expected: expected.map(<[u8]>::to_vec),
            new: new.map(<[u8]>::to_vec),
        };
        match self.write(command).await? {
            Output::Cas { ok, current } => Ok(CasOutcome { ok, current }),
            other => Err(mismatch(&other)),
        }
    }

    /// The map's value for `key` (linearizable, through the log).
    ///
    /// # Errors
    ///
    /// As [`Client::register`].
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CallError> {
        self.read(Request::Get {
            key: key.to_vec(),
            lease: false,
        })
        .await
    }

    /// The map's value for `key`, read by the leader under its lease
    /// (cheaper than [`Client::get`]). A node that cannot serve it says
    /// so, and the read is retried on the other nodes.
    ///
    /// # Errors
    ///
    /// As [`Client::register`]; [`CallError::Unavailable`] also when no
    /// node served it under a lease in time.
    pub async fn get_under_lease(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CallError> {
        self.read(Request::Get {
            key: key.to_vec(),
            lease: true,
        })
        .await
    }

    /// Applies `command`, exactly once: within the client's session (opened
    /// on the first write), however often it is retried.
    ///
    /// # Errors
    ///
    /// [`CallError::Refused`] when a node refuses it for good: a key or a
    /// command too large, a session that expired before any attempt of
    /// this write was sent (the next write opens a new one), a
    /// [`ErrorKind::SessionConflict`] — none of these applied it — or
    /// [`ErrorKind::AppliedEarlier`]: applied once, by an earlier attempt,
    /// its output lost. A session that cannot be opened is also
    /// [`CallError::Refused`], with the node's kind (never
    /// `AppliedEarlier`: an open answered so is opened again) and a
    /// message that says the write was not sent.
    ///
    /// [`CallError::Unavailable`] when no node gave an outcome in time, or
    /// when the session expired after an attempt of this write was sent
    /// (its outcome is lost): the write may be applied, once, or not — do
    /// not simply issue it again.
    pub async fn write(&self, command: Command) -> Result<Output, CallError> {
        let inner = &self.inner;
        let deadline = after(inner.request_timeout);
        let _permit = inner.permit(deadline).await?;
        inner.sizes.check_command(&command).map_err(CallError::Refused)?;
        // The largest this request's frame can be, checked before it takes
        // a number.
        let largest = Request::Write {
            command: command.clone(),
            session: Some(SessionTag {
                client: u64::MAX,
                seq: u64::MAX,
                acked: u64::MAX,
            }),
        };
        protocol::encode(
            &Frame {
                id: u64::MAX,
                body: largest,
            },
            inner.sizes.max_frame(),
        )
        .map_err(CallError::Refused)?;
        let (session, seq) = inner.take_seq(deadline).await?;
        let _finish = Finish { session: &session, seq };
        inner
            .call(
                deadline,
                || Request::Write {
                    command: command.clone(),
                    session: Some(SessionTag {
                        client: session.client,
                        seq,
                        acked: session.acked(),
                    }),
                },
                |reply| match reply {
                    Reply::Output(output) if fits(&command, &output) => Ok(output),
                    other => Err(unexpected(&other)),
                },
                |e, sent| {
                    if e.kind == ErrorKind::SessionExpired {
                        inner.expire(&session);
                        // An earlier attempt may have been applied before
                        // the session was dropped: the outcome is lost,
                        // and issuing the write again could apply it
                        // twice.
                        if sent {
                            return Verdict::Fail(CallError::Unavailable {
                                last: format!(
                                    "outcome unknown: the session expired after an attempt was sent \
                                     (the write may or may not have been applied): {e}"
                                ),
                            });
                        }
                    }
                    // Not applied (SessionExpired on the first attempt,
                    // SessionConflict, a bad or too large command), or
                    // applied once (AppliedEarlier): final either way.
                    Verdict::Fail(CallError::Refused(e))
                },
            )
            .await
    }

    /// `node`'s status, over a connection of its own, within the attempt
    /// timeout (not retried).
    ///
    /// # Errors
    ///
    /// [`CallError::Unavailable`] when it did not answer;
    /// [`CallError::Refused`] when it refused.
    pub async fn status(&self, node: SocketAddr) -> Result<Status, CallError> {
        fetch_status(node, self.inner.attempt_timeout, self.inner.sizes.max_frame()).await
    }

    /// Every node's status, asked concurrently, in the order of the nodes.
    pub async fn statuses(&self) -> Vec<(SocketAddr, Result<Status, CallError>)> {
        let nodes = &self.inner.nodes;
        nodes
            .iter()
            .copied()
            .zip(
                probe(
                    nodes,
                    self.inner.attempt_timeout,
                    self.inner.sizes.max_frame(),
                    |_, _| false,
                )
                .await,
            )
            .collect()
    }

    /// The session's number once a write opened it.
    pub fn session(&self) -> Option<u64> {
        lock(&self.inner.session).as_ref().map(|s| s.client)
    }

    /// A read: retried through the nodes until the request timeout.
    async fn read(&self, request: Request) -> Result<Option<Vec<u8>>, CallError> {
        if let Request::Get { key, .. } | Request::Register { key } = &request {
            self.inner.sizes.check_key(key).map_err(CallError::Refused)?;
        }
        let deadline = after(self.inner.request_timeout);
        let _permit = self.inner.permit(deadline).await?;
        self.inner
            .call(
                deadline,
                || request.clone(),
                |reply| match reply {
                    Reply::Value { value } => Ok(value),
                    other => Err(unexpected(&other)),
                },
                |e, _| Verdict::Fail(CallError::Refused(e)),
            )
            .await
    }
}

/// The same client for code without an async runtime: it owns a small
/// tokio runtime, and every method blocks. Share it across threads (by
/// reference or in an `Arc`): their calls are pipelined as the async
/// client's are.
///
/// Its methods must not be called from within an async runtime (they
/// would panic, as tokio's `block_on` does there).
pub struct BlockingClient {
    // Dropped before the runtime.
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingClient").field("client", &self.client).finish()
    }
}

impl BlockingClient {
    /// Starts the runtime and connects, as [`Client::connect`].
    ///
    /// # Errors
    ///
    /// As [`Client::connect`]; [`CallError::Unavailable`] also when the
    /// runtime cannot start.
    pub fn connect(options: ClientOptions) -> Result<BlockingClient, CallError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("paxos-client")
            .enable_all()
            .build()
            .map_err(|e| CallError::Unavailable {
                last: format!("cannot start the client's runtime: {e}"),
            })?;
        let client = runtime.block_on(Client::connect(options))?;
        Ok(BlockingClient { client, runtime })
    }

    /// The async client inside.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// As [`Client::ask`].
    ///
    /// # Errors
    ///
    /// As [`Client::write`].
    pub fn ask(&self, key: &[u8], value: &[u8]) -> Result<Asked, CallError> {
        self.runtime.block_on(self.client.ask(key, value))
    }

    /// As [`Client::register`].
    ///
    /// # Errors
    ///
    /// As [`Client::register`].
    pub fn register(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CallError> {
        self.runtime.block_on(self.client.register(key))
    }

    /// As [`Client::put`].
    ///
    /// # Errors
    ///
    /// As [`Client::write`].
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, CallError> {
        self.runtime.block_on(self.client.put(key, value))
    }

    /// As [`Client::delete`].
    ///
    /// # Errors
    ///
    /// As [`Client::write`].
    pub fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CallError> {
        self.runtime.block_on(self.client.delete(key))
    }

    /// As [`Client::cas`].
    ///
    /// # Errors
    ///
    /// As [`Client::write`].
    pub fn cas(&self, key: &[u8], expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<CasOutcome, CallError> {
        self.runtime.block_on(self.client.cas(key, expected, new))
    }

    /// As [`Client::get`].
    ///
    /// # Errors
    ///
    /// As [`Client::register`].
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CallError> {
        self.runtime.block_on(self.client.get(key))
    }

    /// As [`Client::get_under_lease`].
    ///
    /// # Errors
    ///
    /// As [`Client::get_under_lease`].
    pub fn get_under_lease(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CallError> {
        self.runtime.block_on(self.client.get_under_lease(key))
    }

    /// As [`Client::write`].
    ///
    /// # Errors
    ///
    /// As [`Client::write`].
    pub fn write(&self, command: Command) -> Result<Output, CallError> {
        self.runtime.block_on(self.client.write(command))
    }

    /// As [`Client::status`].
    ///
    /// # Errors
    ///
    /// As [`Client::status`].
    pub fn status(&self, node: SocketAddr) -> Result<Status, CallError> {
        self.runtime.block_on(self.client.status(node))
    }

    /// As [`Client::statuses`].
    pub fn statuses(&self) -> Vec<(SocketAddr, Result<Status, CallError>)> {
        self.runtime.block_on(self.client.statuses())
    }

    /// As [`Client::session`].
    pub fn session(&self) -> Option<u64> {
        self.client.session()
    }
}

/// Locks `mutex`; nothing panics while holding one, but should something,
/// the data is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The instant `duration` from now (or far in the future, for a duration
/// too long to add).
fn after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Whether `output` is what `command` returns.
fn fits(command: &Command, output: &Output) -> bool {
    matches!(
        (command, output),
        (Command::Ask { .. }, Output::Asked { .. })
            | (Command::Put { .. }, Output::Put { .. })
            | (Command::Delete { .. }, Output::Deleted { .. })
            | (Command::Cas { .. }, Output::Cas { .. })
    )
}

/// A reply of the wrong kind, described.
fn unexpected(reply: &Reply) -> String {
    let shown = format!("{reply:?}");
    format!("a reply of the wrong kind: {shown:.200}")
}

/// The error for an output of the wrong kind (which [`Client::write`]
/// never returns: it checks).
fn mismatch(output: &Output) -> CallError {
    CallError::Unavailable {
        last: format!("an output of the wrong kind: {output:?}"),
    }
}

/// What a client shares between its clones.
struct Inner {
    nodes: Vec<SocketAddr>,
    sizes: SizeLimits,
    request_timeout: Duration,
    attempt_timeout: Duration,
    permits: Semaphore,
    /// The next request id (0 is the node's: errors about the connection).
    next_id: AtomicU64,
    /// The connection in use.
    current: Mutex<Current>,
    /// Held while finding a node: one caller connects, the others wait.
    finding: tokio::sync::Mutex<Finding>,
    /// Why the last round of finding a node failed.
    last_failure: Mutex<String>,
    /// The session, once opened.
    session: Mutex<Option<Arc<Session>>>,
    /// Held while opening a session: one is opened at a time.
    opening: tokio::sync::Mutex<()>,
}

/// The connection in use, and the node to avoid when finding another.
#[derive(Default)]
struct Current {
    conn: Option<Arc<Conn>>,
    /// The index of the node that failed last.
    avoid: Option<usize>,
}

/// The state of finding a node.
struct Finding {
    /// The pause after the next round that finds no node.
    backoff: Duration,
}

impl Inner {
    fn new(options: ClientOptions) -> Self {
        Inner {
            nodes: options.nodes,
            sizes: options.sizes,
            request_timeout: options.request_timeout,
            attempt_timeout: options.attempt_timeout,
            permits: Semaphore::new(options.max_in_flight.clamp(1, MAX_IN_FLIGHT)),
            next_id: AtomicU64::new(1),
            current: Mutex::new(Current::default()),
            finding: tokio::sync::Mutex::new(Finding {
                backoff: FIND_BACKOFF_FIRST,
            }),
            last_failure: Mutex::new(String::new()),
            session: Mutex::new(None),
            opening: tokio::sync::Mutex::new(()),
        }
    }

    /// The node of the connection in use.
    fn node(&self) -> Option<SocketAddr> {
        lock(&self.current).conn.as_ref().map(|c| c.node)
    }

    /// `Unavailable`, saying `last` or else why finding a node failed.
    fn unavailable(&self, last: String) -> CallError {
        let last = if last.is_empty() {
            let failure = lock(&self.last_failure).clone();
            if failure.is_empty() {
                "no node answered".to_string()
            } else {
                failure
            }
        } else {
            last
        };
        CallError::Unavailable { last }
    }

    /// A permit to have a call in flight, waited for until `deadline`.
    async fn permit(&self, deadline: Instant) -> Result<SemaphorePermit<'_>, CallError> {
        match timeout_at(deadline, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(CallError::Unavailable {
                last: "too many calls in flight".to_string(),
            }),
        }
    }

    /// The connection in use, if it is still open; a closed one is let go.
    fn live(&self) -> Option<Arc<Conn>> {
        let mut current = lock(&self.current);
        match &current.conn {
            Some(conn) if conn.pending.is_open() => Some(Arc::clone(conn)),
            Some(conn) => {
                let index = conn.index;
                let closed = current.conn.take();
                current.avoid = Some(index);
                drop(current);
                drop(closed);
                None
            }
            None => None,
        }
    }

    /// Stops sending new requests on `conn` (if it is still the one in
    /// use): the next request finds a node, another one first. Requests in
    /// flight on it still get their replies.
    fn leave(&self, conn: &Arc<Conn>) {
        let mut current = lock(&self.current);
        if current.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            let left = current.conn.take();
            current.avoid = Some(conn.index);
            drop(current);
            tracing::debug!(node = %conn.node, "leaving the node");
            drop(left);
        }
    }

    /// The connection to use: the current one, or a new one to the node
    /// found best. Keeps trying until `deadline`; the caller bounds it.
    async fn connection(&self, deadline: Instant) -> Result<Arc<Conn>, String> {
        if let Some(conn) = self.live() {
            return Ok(conn);
        }
        let mut finding = self.finding.lock().await;
        loop {
            // Another caller may have connected while this one waited.
            if let Some(conn) = self.live() {
                return Ok(conn);
            }
            match self.find().await {
                Ok(conn) => {
                    finding.backoff = FIND_BACKOFF_FIRST;
                    tracing::debug!(node = %conn.node, "connected");
                    lock(&self.current).conn = Some(Arc::clone(&conn));
                    return Ok(conn);
                }
                Err(reason) => {
                    tracing::debug!("no node found: {reason}");
                    *lock(&self.last_failure) = reason.clone();
                    let pause = finding.backoff;
                    finding.backoff = (pause * 2).min(FIND_BACKOFF_MAX);
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(reason);
                    }
                    sleep_until((now + pause).min(deadline)).await;
                }
            }
        }
    }

    /// One round of finding a node: asks every node's status, then
    /// connects to the first that answers of: the nodes that say they
    /// lead, then the others in turn from the one after the node that
    /// failed last, which comes last.
    async fn find(&self) -> Result<Arc<Conn>, String> {
        let avoid = lock(&self.current).avoid;
        // A leader answering is enough, unless it is the node that failed.
        let enough = |index: usize, status: &Status| status.leader == Some(status.id) && avoid != Some(index);
        let max_frame = self.sizes.max_frame();
        let statuses = probe(&self.nodes, self.attempt_timeout.min(PROBE_TIMEOUT), max_frame, enough).await;
        let n = self.nodes.len();
        let start = avoid.map_or(0, |i| i + 1);
        let mut failures = Vec::new();
        let mut candidates = Vec::new();
        for (index, status) in statuses.into_iter().enumerate() {
            match status {
                Ok(status) => {
                    let leads = status.leader == Some(status.id);
                    candidates.push((avoid == Some(index), !leads, (index + n - start % n) % n, index));
                }
                Err(CallError::Unavailable { last }) => failures.push(last),
                Err(e) => failures.push(format!("{}: {e}", self.nodes[index])),
            }
        }
        candidates.sort_unstable();
        for (_, _, _, index) in candidates {
            match Conn::open(self.nodes[index], index, self.attempt_timeout, max_frame).await {
                Ok(conn) => return Ok(Arc::new(conn)),
                Err(e) => failures.push(e),
            }
        }
        Err(failures.join("; "))
    }

    /// Sends the request `make` builds (anew for each attempt) until a
    /// node gives an outcome or `deadline` passes; `extract` takes the
    /// answer out of the reply (or describes a reply of the wrong kind);
    /// `refused` says what a node's error that is not
    /// [retryable](ErrorKind::retryable) means, given whether an earlier
    /// attempt was sent (and so may have reached a node).
    async fn call<T>(
        &self,
        deadline: Instant,
        mut make: impl FnMut() -> Request,
        extract: impl Fn(Reply) -> Result<T, String>,
        refused: impl Fn(Error, bool) -> Verdict,
    ) -> Result<T, CallError> {
        let mut last = String::new();
        let mut pause = RETRY_BACKOFF_FIRST;
        // Whether an attempt left the client (was queued on a connection).
        let mut sent = false;
        loop {
            let conn = match timeout_at(deadline, self.connection(deadline)).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(reason)) => return Err(CallError::Unavailable { last: reason }),
                Err(_) => return Err(self.unavailable(last)),
            };
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let bytes =
                protocol::encode(&Frame { id, body: make() }, self.sizes.max_frame()).map_err(CallError::Refused)?;
            let attempt_deadline = after(self.attempt_timeout).min(deadline);
            let sent_before = sent;
            let mut queued = false;
            let result = conn.request(id, bytes, attempt_deadline, &mut queued).await;
            sent |= queued;
            match result {
                Ok(Reply::Error(e)) if e.kind.retryable() => {
                    last = format!("{}: {e}", conn.node);
                    // A busy node is still the right one; otherwise another
                    // node may serve it (or know the new leader).
                    if e.kind != ErrorKind::Busy {
                        self.leave(&conn);
                    }
                }
                Ok(Reply::Error(e)) => {
                    let said = format!("{}: {e}", conn.node);
                    match refused(e, sent_before) {
                        Verdict::Fail(error) => return Err(error),
                        Verdict::Retry => last = said,
                    }
                }
                Ok(reply) => match extract(reply) {
                    Ok(answer) => return Ok(answer),
                    Err(unexpected) => {
                        last = format!("{}: {unexpected}", conn.node);
                        self.leave(&conn);
                    }
                },
                Err(reason) => {
                    last = reason;
                    self.leave(&conn);
                }
            }
            drop(conn);
            tracing::debug!("retrying: {last}");
            let now = Instant::now();
            if now >= deadline {
                return Err(CallError::Unavailable { last });
            }
            sleep_until((now + pause).min(deadline)).await;
            pause = (pause * 2).min(RETRY_BACKOFF_MAX);
        }
    }

    /// The session and the number of a new write, opening the session if
    /// need be.
    async fn take_seq(&self, deadline: Instant) -> Result<(Arc<Session>, u64), CallError> {
        loop {
            let current = lock(&self.session).clone();
            let Some(session) = current else {
                self.open_session(deadline).await?;
                continue;
            };
            let changed = session.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match session.take() {
                Take::Seq(seq) => return Ok((Arc::clone(&session), seq)),
                Take::Expired => continue,
                Take::Full => {
                    if timeout_at(deadline, changed).await.is_err() {
                        return Err(CallError::Unavailable {
                            last: "waiting for the session's earlier writes".to_string(),
                        });
                    }
                }
            }
        }
    }

    /// Opens a session unless one is open.
    async fn open_session(&self, deadline: Instant) -> Result<(), CallError> {
        let _opening = timeout_at(deadline, self.opening.lock())
            .await
            .map_err(|_| CallError::Unavailable {
                last: "waiting for the session to open".to_string(),
            })?;
        if lock(&self.session).is_some() {
            return Ok(());
        }
        // An open that times out is retried: at worst a session is wasted.
        // Its errors are never the write's outcome (the write is not sent
        // yet): an open the node says was applied earlier (it installed a
        // snapshot covering it, and does not know the number) is opened
        // again; any other refusal keeps its kind — never
        // `AppliedEarlier` — and says the write was not sent.
        let client = self
            .call(
                deadline,
                || Request::OpenSession,
                |reply| match reply {
                    Reply::Session { client } => Ok(client),
                    other => Err(unexpected(&other)),
                },
                |e, _| match e.kind {
                    ErrorKind::AppliedEarlier => Verdict::Retry,
                    kind => Verdict::Fail(CallError::Refused(Error::new(
                        kind,
                        format!("the write was not sent: opening a session failed: {}", e.message),
                    ))),
                },
            )
            .await?;
        tracing::debug!(client, "session opened");
        *lock(&self.session) = Some(Arc::new(Session::new(client)));
        Ok(())
    }

    /// Drops `session` (the cluster forgot it): the next write opens one.
    fn expire(&self, session: &Arc<Session>) {
        {
            let mut current = lock(&self.session);
            if current.as_ref().is_some_and(|s| Arc::ptr_eq(s, session)) {
                *current = None;
            }
        }
        lock(&session.state).expired = true;
        session.changed.notify_waiters();
    }
}

/// A client session: its number and its writes' numbers.
struct Session {
    client: u64,
    state: Mutex<Seqs>,
    /// Notified when a write finishes or the session expires.
    changed: Notify,
}

/// The numbers of a session's writes.
#[derive(Default)]
struct Seqs {
    next: u64,
    /// Writes taken and not finished.
    outstanding: BTreeSet<u64>,
    expired: bool,
}

/// What [`Session::take`] found.
enum Take {
    Seq(u64),
    /// Too far ahead of the oldest write still outstanding.
    Full,
    Expired,
}

impl Session {
    fn new(client: u64) -> Self {
        Session {
            client,
            state: Mutex::new(Seqs::default()),
            changed: Notify::new(),
        }
    }

    /// A new write's number, kept within [`MAX_IN_FLIGHT`] of the oldest
    /// outstanding one, so the node still keeps the output of every write
    /// the client may retry.
    fn take(&self) -> Take {
        let mut state = lock(&self.state);
        if state.expired {
            return Take::Expired;
        }
        let oldest = state.outstanding.first().copied().unwrap_or(state.next);
        if state.next - oldest >= MAX_IN_FLIGHT as u64 {
            return Take::Full;
        }
        let seq = state.next;
        state.next += 1;
        state.outstanding.insert(seq);
        Take::Seq(seq)
    }

    /// Below this number the client holds every write's outcome.
    fn acked(&self) -> u64 {
        let state = lock(&self.state);
        state.outstanding.first().copied().unwrap_or(state.next)
    }

    fn finish(&self, seq: u64) {
        lock(&self.state).outstanding.remove(&seq);
        self.changed.notify_waiters();
    }
}

/// Finishes a write when its call ends, however it ends.
struct Finish<'a> {
    session: &'a Session,
    seq: u64,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.session.finish(self.seq);
    }
}

/// What [`Inner::call`] does with a node's error that is not retryable
/// as it is.
enum Verdict {
    /// Try again (after the usual pause), until the deadline.
    Retry,
    /// The call's outcome.
    Fail(CallError),
}

/// Where a request waits for its reply.
type Waiter = oneshot::Sender<Result<Reply, String>>;

/// A connection's requests waiting for replies; `None` once it closed.
struct Pending {
    state: Mutex<PendingState>,
}

struct PendingState {
    waiters: Option<HashMap<u64, Waiter>>,
    /// Why it closed.
    reason: String,
}

impl Pending {
    fn new() -> Self {
        Pending {
            state: Mutex::new(PendingState {
                waiters: Some(HashMap::new()),
                reason: String::new(),
            }),
        }
    }

    fn is_open(&self) -> bool {
        lock(&self.state).waiters.is_some()
    }

    /// Registers request `id`; the connection's closing reason if closed.
    fn register(&self, id: u64, waiter: Waiter) -> Result<(), String> {
        let mut state = lock(&self.state);
        match &mut state.waiters {
            Some(waiters) => {
                waiters.insert(id, waiter);
                Ok(())
            }
            None => Err(state.reason.clone()),
        }
    }

    fn remove(&self, id: u64) {
        if let Some(waiters) = &mut lock(&self.state).waiters {
            waiters.remove(&id);
        }
    }

    /// Hands `reply` to request `id` (if it still waits).
    fn deliver(&self, id: u64, reply: Reply) {
        let waiter = lock(&self.state).waiters.as_mut().and_then(|w| w.remove(&id));
        if let Some(waiter) = waiter {
            let _ = waiter.send(Ok(reply));
        }
    }

    /// Closes: every waiting request gets `reason`.
    fn close(&self, reason: String) {
        let waiters = {
            let mut state = lock(&self.state);
            let waiters = state.waiters.take();
            if waiters.is_some() {
                state.reason = reason.clone();
            }
            waiters
        };
        for (_, waiter) in waiters.into_iter().flatten() {
            let _ = waiter.send(Err(reason.clone()));
        }
    }
}

/// Unregisters a request when its attempt ends, however it ends.
struct Registered<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.pending.remove(self.id);
    }
}

/// A connection to one node: a writer task sends the queued frames, a
/// reader task hands each reply to its request. Dropping it stops both
/// and closes the socket.
struct Conn {
    node: SocketAddr,
    /// The node's index in the client's list.
    index: usize,
    pending: Arc<Pending>,
    outbox: mpsc::Sender<Vec<u8>>,
    tasks: [AbortHandle; 2],
}

impl Conn {
    /// Connects to `node` and sends [`MAGIC`], within `within`; its
    /// replies are read up to `max_frame` bytes.
    async fn open(node: SocketAddr, index: usize, within: Duration, max_frame: usize) -> Result<Conn, String> {
        let connecting = async {
            let mut stream = TcpStream::connect(node).await?;
            stream.set_nodelay(true)?;
            stream.write_all(&MAGIC).await?;
            Ok::<_, std::io::Error>(stream)
        };
        let stream = match timeout(within, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(format!("{node}: {e}")),
            Err(_) => return Err(format!("{node}: no connection within {within:?}")),
        };
        let (reader, writer) = stream.into_split();
        let pending = Arc::new(Pending::new());
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let reading = tokio::spawn(read_replies(
            BufReader::new(reader),
            Arc::clone(&pending),
            node,
            max_frame,
        ));
        let writing = tokio::spawn(write_requests(writer, queued, Arc::clone(&pending), node));
        Ok(Conn {
            node,
            index,
            pending,
            outbox,
            tasks: [reading.abort_handle(), writing.abort_handle()],
        })
    }

    /// Sends request `id` (its frame `bytes`) and waits for its reply
    /// until `deadline`; why not, if not. Sets `queued` once the frame is
    /// queued for the writer (from then on it may reach the node).
    async fn request(&self, id: u64, bytes: Vec<u8>, deadline: Instant, queued: &mut bool) -> Result<Reply, String> {
        let (waiter, reply) = oneshot::channel();
        self.pending
            .register(id, waiter)
            .map_err(|reason| format!("{}: {reason}", self.node))?;
        let _registered = Registered {
            pending: &self.pending,
            id,
        };
        let exchange = async {
            if self.outbox.send(bytes).await.is_err() {
                return Err("the connection is closed".to_string());
            }
            *queued = true;
            match reply.await {
                Ok(result) => result,
                Err(_) => Err("the connection is closed".to_string()),
            }
        };
        match timeout_at(deadline, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(reason)) => Err(format!("{}: {reason}", self.node)),
            Err(_) => Err(format!("{}: no reply in time", self.node)),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.pending.close("the connection was dropped".to_string());
    }
}

/// A connection's writer: sends queued frames, several per write when
/// they queue up.
async fn write_requests(
    mut writer: OwnedWriteHalf,
    mut queued: mpsc::Receiver<Vec<u8>>,
    pending: Arc<Pending>,
    node: SocketAddr,
) {
    let mut batch = Vec::new();
    while let Some(bytes) = queued.recv().await {
        batch.extend_from_slice(&bytes);
        while batch.len() < WRITE_BATCH {
            match queued.try_recv() {
                Ok(bytes) => batch.extend_from_slice(&bytes),
                Err(_) => break,
            }
        }
        if let Err(e) = writer.write_all(&batch).await {
            pending.close(format!("writing to {node}: {e}"));
            return;
        }
        batch.clear();
    }
}

/// A connection's reader: hands each reply to its request until the
/// connection ends or the node says something wrong, then closes it.
async fn read_replies(mut reader: BufReader<OwnedReadHalf>, pending: Arc<Pending>, node: SocketAddr, max_frame: usize) {
    let reason = loop {
        match read_frame(&mut reader, max_frame).await {
            Ok(Frame {
                id: 0,
                body: Reply::Error(e),
            }) => break format!("{node} closed the connection: {e}"),
            Ok(Frame { id: 0, body }) => break format!("{node} sent a reply with id 0: {body:?}"),
            Ok(frame) => pending.deliver(frame.id, frame.body),
            Err(e) => break e,
        }
    };
    tracing::debug!("connection closed: {reason}");
    pending.close(reason);
}

/// Reads one reply frame, its length checked against `max_frame` before
/// anything is allocated.
async fn read_frame(reader: &mut (impl AsyncRead + Unpin), max_frame: usize) -> Result<Frame<Reply>, String> {
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the node closed the connection".to_string(),
        _ => format!("reading: {e}"),
    })?;
    let len = protocol::frame_len(prefix, max_frame).map_err(|e| e.to_string())?;
    let mut body = vec![0; len];
    reader
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("reading a frame: {e}"))?;
    protocol::decode(&body).map_err(|e| e.to_string())
}

/// Every node's status, asked concurrently, in the order of `nodes`, or
/// only until one for which `enough` holds (the nodes not heard from by
/// then are unavailable).
async fn probe(
    nodes: &[SocketAddr],
    within: Duration,
    max_frame: usize,
    enough: impl Fn(usize, &Status) -> bool,
) -> Vec<Result<Status, CallError>> {
    let mut asking = JoinSet::new();
    for (index, &node) in nodes.iter().enumerate() {
        asking.spawn(async move { (index, fetch_status(node, within, max_frame).await) });
    }
    let mut statuses: Vec<Result<Status, CallError>> = nodes
        .iter()
        .map(|node| {
            Err(CallError::Unavailable {
                last: format!("{node}: no status"),
            })
        })
        .collect();
    while let Some(joined) = asking.join_next().await {
        if let Ok((index, status)) = joined {
            let done = status.as_ref().is_ok_and(|s| enough(index, s));
            statuses[index] = status;
            if done {
                break;
            }
        }
    }
    statuses
}

/// `node`'s status, over a connection of its own, within `within`.
async fn fetch_status(node: SocketAddr, within: Duration, max_frame: usize) -> Result<Status, CallError> {
    match timeout(within, status_once(node, max_frame)).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Unavailable {
            last: format!("{node}: no status within {within:?}"),
        }),
    }
}

async fn status_once(node: SocketAddr, max_frame: usize) -> Result<Status, CallError> {
    let unavailable = |e: String| CallError::Unavailable {
        last: format!("{node}: {e}"),
    };
    let mut stream = TcpStream::connect(node).await.map_err(|e| unavailable(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let mut bytes = MAGIC.to_vec();
    bytes.extend(
        protocol::encode(
            &Frame {
                id: 1,
                body: Request::Status,
            },
            max_frame,
        )
        .map_err(CallError::Refused)?,
    );
    stream.write_all(&bytes).await.map_err(|e| unavailable(e.to_string()))?;
    let frame = read_frame(&mut stream, max_frame).await.map_err(unavailable)?;
    match frame.body {
        Reply::Status(status) => Ok(status),
        Reply::Error(e) if e.kind.retryable() => Err(unavailable(e.to_string())),
        Reply::Error(e) => Err(CallError::Refused(e)),
        other => Err(unavailable(format!("a reply of the wrong kind: {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use paxos_std::runtime::StateMachine;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use tokio::net::TcpListener;

    /// The replicated state the fakes of one cluster share.
    #[derive(Default)]
    struct Cluster {
        store: Store,
        /// Session outputs by (client, seq).
        outputs: HashMap<(u64, u64), Output>,
        /// Open sessions.
        clients: HashSet<u64>,
        next_client: u64,
        /// Commands applied per key.
        applies: HashMap<Vec<u8>, usize>,
        /// Session tags whose `acked` was above their `seq`.
        bad_acks: usize,
    }

    impl Cluster {
        fn apply(&mut self, command: Command) -> Output {
            let key = match &command {
                Command::Ask { key, .. }
                | Command::Put { key, .. }
                | Command::Delete { key }
                | Command::Cas { key, .. } => key,
            };
            *self.applies.entry(key.clone()).or_default() += 1;
            self.store.apply(command)
        }

        fn applies(&self, key: &[u8]) -> usize {
            self.applies.get(key).copied().unwrap_or(0)
        }
    }

    /// What a fake node does besides answering.
    #[derive(Default)]
    struct Knobs {
        /// Apply the next write, then close the connection without a reply.
        drop_reply_of_next_write: bool,
        /// With the dropped reply, forget every session (evicted before the
        /// retry comes).
        forget_sessions_with_dropped_reply: bool,
        /// With the dropped reply, fail the next request (the retry) with
        /// this kind.
        fail_after_dropped_reply: Option<ErrorKind>,
        /// Fail the next requests (not statuses) with this kind.
        fail: Option<(ErrorKind, usize)>,
        /// Hold replies until this many are held, then send them in
        /// reverse (0: in order).
        out_of_order: usize,
        /// Send these bytes instead of the next reply (not to statuses).
        garbage: Option<Vec<u8>>,
        /// Wait this long before serving each request.
        delay: Duration,
        /// Never answer requests (but statuses).
        silent: bool,
        status: Status,
    }

    struct FakeState {
        cluster: Arc<Mutex<Cluster>>,
        knobs: Mutex<Knobs>,
        /// Connections that carried a request other than a status.
        connections: AtomicUsize,
        /// Requests other than statuses.
        requests: AtomicUsize,
        tasks: Mutex<Vec<AbortHandle>>,
        down: AtomicBool,
    }

    /// A node that speaks the protocol over an in-memory cluster.
    struct Fake {
        addr: SocketAddr,
        state: Arc<FakeState>,
    }

    enum Action {
        Reply(Reply),
        Close,
        Garbage(Vec<u8>),
        Ignore,
    }

    impl Fake {
        async fn start(cluster: &Arc<Mutex<Cluster>>, id: u8, leader: Option<u8>) -> Fake {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let state = Arc::new(FakeState {
                cluster: Arc::clone(cluster),
                knobs: Mutex::new(Knobs {
                    status: Status {
                        id,
                        leader,
                        ..Status::default()
                    },
                    ..Knobs::default()
                }),
                connections: AtomicUsize::new(0),
                requests: AtomicUsize::new(0),
                tasks: Mutex::new(Vec::new()),
                down: AtomicBool::new(false),
            });
            let serving = Arc::clone(&state);
            let accepting = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let task = tokio::spawn(serve(stream, Arc::clone(&serving)));
                    lock(&serving.tasks).push(task.abort_handle());
                    if serving.down.load(Ordering::SeqCst) {
                        task.abort();
                    }
                }
            });
            lock(&state.tasks).push(accepting.abort_handle());
            Fake { addr, state }
        }

        fn knobs(&self) -> MutexGuard<'_, Knobs> {
            lock(&self.state.knobs)
        }

        fn cluster(&self) -> MutexGuard<'_, Cluster> {
            lock(&self.state.cluster)
        }

        fn connections(&self) -> usize {
            self.state.connections.load(Ordering::SeqCst)
        }

        fn requests(&self) -> usize {
            self.state.requests.load(Ordering::SeqCst)
        }

        /// Stops listening and closes every connection.
        fn shutdown(&self) {
            self.state.down.store(true, Ordering::SeqCst);
            for task in lock(&self.state.tasks).drain(..) {
                task.abort();
            }
        }
    }

    fn answer(state: &FakeState, request: Request) -> Action {
        let mut knobs = lock(&state.knobs);
        if request == Request::Status {
            return Action::Reply(Reply::Status(knobs.status.clone()));
        }
        if let Some(bytes) = knobs.garbage.take() {
            return Action::Garbage(bytes);
        }
        if knobs.silent {
            return Action::Ignore;
        }
        if let Some((kind, n)) = knobs.fail {
            knobs.fail = (n > 1).then_some((kind, n.saturating_sub(1)));
            return Action::Reply(Reply::Error(Error::new(kind, "injected")));
        }
        let drop_reply =
            matches!(request, Request::Write { .. }) && std::mem::take(&mut knobs.drop_reply_of_next_write);
        let forget_sessions = drop_reply && std::mem::take(&mut knobs.forget_sessions_with_dropped_reply);
        if drop_reply {
            if let Some(kind) = knobs.fail_after_dropped_reply.take() {
                knobs.fail = Some((kind, 1));
            }
        }
        drop(knobs);
        let mut cluster = lock(&state.cluster);
        let reply = match request {
            Request::Status => unreachable!("answered above"),
            Request::OpenSession => {
                cluster.next_client += 1;
                let client = cluster.next_client;
                cluster.clients.insert(client);
                Reply::Session { client }
            }
            Request::Get { key, .. } => Reply::Value {
                value: cluster.store.get(&key).map(<[u8]>::to_vec),
            },
            Request::Register { key } => Reply::Value {
                value: cluster.store.register(&key).map(<[u8]>::to_vec),
            },
            Request::Write { command, session: None } => Reply::Output(cluster.apply(command)),
            Request::Write {
                command,
                session: Some(tag),
            } => {
                if tag.acked > tag.seq {
                    cluster.bad_acks += 1;
                }
                if !cluster.clients.contains(&tag.client) {
                    Reply::Error(Error::new(ErrorKind::SessionExpired, "unknown session"))
                } else if let Some(output) = cluster.outputs.get(&(tag.client, tag.seq)) {
                    Reply::Output(output.clone())
                } else {
                    let output = cluster.apply(command);
                    cluster.outputs.insert((tag.client, tag.seq), output.clone());
                    Reply::Output(output)
                }
            }
        };
        if forget_sessions {
            cluster.clients.clear();
        }
        if drop_reply {
            Action::Close
        } else {
            Action::Reply(reply)
        }
    }

    async fn read_request(stream: &mut TcpStream) -> Option<Frame<Request>> {
        let mut prefix = [0u8; 4];
        stream.read_exact(&mut prefix).await.ok()?;
        let mut body = vec![0; protocol::frame_len(prefix, SizeLimits::DEFAULT.max_frame()).ok()?];
        stream.read_exact(&mut body).await.ok()?;
        protocol::decode(&body).ok()
    }

    async fn serve(mut stream: TcpStream, state: Arc<FakeState>) {
        let mut magic = [0u8; 4];
        if stream.read_exact(&mut magic).await.is_err() || magic != MAGIC {
            return;
        }
        let mut counted = false;
        let mut held = Vec::new();
        while let Some(frame) = read_request(&mut stream).await {
            if frame.body != Request::Status {
                state.requests.fetch_add(1, Ordering::SeqCst);
                if !counted {
                    counted = true;
                    state.connections.fetch_add(1, Ordering::SeqCst);
                }
            }
            let delay = lock(&state.knobs).delay;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let bytes = match answer(&state, frame.body) {
                Action::Close => return,
                Action::Ignore => continue,
                Action::Garbage(bytes) => bytes,
                Action::Reply(reply) => {
                    let bytes = protocol::encode(
                        &Frame {
                            id: frame.id,
                            body: reply,
                        },
                        SizeLimits::DEFAULT.max_frame(),
                    )
                    .unwrap();
                    let hold = lock(&state.knobs).out_of_order;
                    if hold > 0 {
                        held.push(bytes);
                        if held.len() < hold {
                            continue;
                        }
                        held.drain(..).rev().flatten().collect()
                    } else {
                        bytes
                    }
                }
            };
            if stream.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }

    fn options(fakes: &[&Fake]) -> ClientOptions {
        ClientOptions {
            request_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(1),
            ..ClientOptions::new(fakes.iter().map(|f| f.addr).collect())
        }
    }

    fn cluster() -> Arc<Mutex<Cluster>> {
        Arc::new(Mutex::new(Cluster::default()))
    }

    #[tokio::test]
    async fn calls_give_the_stores_answers() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        let client = Client::connect(options(&[&fake])).await.unwrap();
        assert_eq!(client.session(), None, "opened on the first write");
        assert_eq!(client.put(b"k", b"1").await.unwrap(), None);
        assert!(client.session().is_some());
        assert_eq!(client.put(b"k", b"2").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(client.get(b"k").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(client.get_under_lease(b"k").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(client.get(b"absent").await.unwrap(), None);
        assert_eq!(
            client.cas(b"k", Some(b"1"), Some(b"3")).await.unwrap(),
            CasOutcome {
                ok: false,
                current: Some(b"2".to_vec())
            }
        );
        assert_eq!(
            client.cas(b"k", Some(b"2"), Some(b"3")).await.unwrap(),
            CasOutcome {
                ok: true,
                current: Some(b"3".to_vec())
            }
        );
        assert_eq!(client.delete(b"k").await.unwrap(), Some(b"3".to_vec()));
        assert_eq!(client.delete(b"k").await.unwrap(), None);
        assert_eq!(client.get(b"k").await.unwrap(), None);
        assert_eq!(client.register(b"r").await.unwrap(), None);
        assert_eq!(
            client.ask(b"r", b"first").await.unwrap(),
            Asked {
                value: b"first".to_vec(),
                won: true
            }
        );
        assert_eq!(
            client.ask(b"r", b"second").await.unwrap(),
            Asked {
                value: b"first".to_vec(),
                won: false
            }
        );
        assert_eq!(client.register(b"r").await.unwrap(), Some(b"first".to_vec()));
        let output = client
            .write(Command::Put {
                key: b"w".to_vec(),
                value: b"v".to_vec(),
            })
            .await
            .unwrap();
        assert_eq!(output, Output::Put { previous: None });
        let status = client.status(fake.addr).await.unwrap();
        assert_eq!((status.id, status.leader), (1, Some(1)));
        let statuses = client.statuses().await;
        assert_eq!(statuses.len(), 1);
        assert_eq!(statuses[0].0, fake.addr);
        assert_eq!(statuses[0].1.as_ref().unwrap().id, 1);
        assert_eq!(fake.connections(), 1);
        assert_eq!(fake.cluster().bad_acks, 0);
    }

    #[tokio::test]
    async fn a_lost_reply_is_retried_and_applied_once() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        let client = Client::connect(options(&[&fake])).await.unwrap();
        assert_eq!(client.put(b"k", b"1").await.unwrap(), None);
        let session = client.session();
        fake.knobs().drop_reply_of_next_write = true;
        // Applied, then the connection closed: the retry of the same
        // (client, seq) gets the first output, `previous` = "1" (a second
        // application would have returned "2").
        assert_eq!(client.put(b"k", b"2").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(fake.cluster().applies(b"k"), 2);
        assert_eq!(fake.connections(), 2, "reconnected");
        assert_eq!(client.session(), session);
        assert_eq!(client.get(b"k").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(fake.cluster().bad_acks, 0);
    }

    #[tokio::test]
    async fn writes_carry_on_through_another_node_when_the_leader_dies() {
        let shared = cluster();
        let a = Fake::start(&shared, 1, Some(1)).await;
        let b = Fake::start(&shared, 2, Some(1)).await;
        a.knobs().delay = Duration::from_millis(2);
        // B first: the client must still prefer A, the leader.
        let client = Client::connect(options(&[&b, &a])).await.unwrap();
        assert_eq!(client.inner.node(), Some(a.addr));
        let mut tasks = Vec::new();
        for t in 0..16 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut results = Vec::new();
                for i in (t..100).step_by(16) {
                    let key = format!("k{i}");
                    results.push((i, client.put(key.as_bytes(), format!("v{i}").as_bytes()).await));
                }
                results
            }));
        }
        let waited = Instant::now() + Duration::from_secs(5);
        while shared.lock().unwrap().applies.len() < 30 {
            assert!(Instant::now() < waited, "the workload did not start");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        a.shutdown();
        for task in tasks {
            for (i, result) in task.await.unwrap() {
                // Each key is written once: a second application would
                // have returned the first value as `previous`.
                assert_eq!(result, Ok(None), "put k{i}");
            }
        }
        let cluster = shared.lock().unwrap();
        for i in 0..100 {
            let key = format!("k{i}");
            assert_eq!(cluster.applies(key.as_bytes()), 1, "{key}");
            assert_eq!(cluster.store.get(key.as_bytes()), Some(format!("v{i}").as_bytes()));
        }
        assert!(b.requests() > 0, "B served the rest");
        assert!(a.requests() < 100, "A died mid-workload");
        assert_eq!(cluster.bad_acks, 0);
        drop(cluster);
        assert_eq!(client.inner.node(), Some(b.addr));
    }

    #[tokio::test]
    async fn pipelined_requests_are_matched_to_replies_out_of_order() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        for i in 0..64 {
            fake.cluster().store.apply(Command::Put {
                key: format!("k{i}").into_bytes(),
                value: format!("v{i}").into_bytes(),
            });
        }
        let client = Client::connect(options(&[&fake])).await.unwrap();
        // Every reply is held until all 64 requests arrived: they must be
        // in flight at once.
        fake.knobs().out_of_order = 64;
        let mut tasks = Vec::new();
        for i in 0..64 {
            let client = client.clone();
            tasks.push(tokio::spawn(
                async move { client.get(format!("k{i}").as_bytes()).await },
            ));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), Ok(Some(format!("v{i}").into_bytes())));
        }
        assert_eq!(fake.requests(), 64, "no retries");
        assert_eq!(fake.connections(), 1);
    }

    #[tokio::test]
    async fn retryable_errors_are_retried_and_others_refused() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        let client = Client::connect(options(&[&fake])).await.unwrap();
        assert_eq!(client.put(b"k", b"1").await.unwrap(), None);

        fake.knobs().fail = Some((ErrorKind::Busy, 2));
        let before = fake.requests();
        assert_eq!(client.put(b"k", b"2").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(fake.requests() - before, 3);

        fake.knobs().fail = Some((ErrorKind::Timeout, 2));
        let before = fake.requests();
        assert_eq!(client.get(b"k").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(fake.requests() - before, 3);

        fake.knobs().fail = Some((ErrorKind::TooLarge, 1));
        let before = fake.requests();
        let refused = client.put(b"k", b"3").await.unwrap_err();
        assert!(
            matches!(&refused, CallError::Refused(e) if e.kind == ErrorKind::TooLarge),
            "{refused}"
        );
        assert_eq!(fake.requests() - before, 1, "not retried");
        assert_eq!(client.get(b"k").await.unwrap(), Some(b"2".to_vec()));

        // Too large to send: refused without asking a node.
        let before = fake.requests();
        let refused = client.put(&[0; protocol::DEFAULT_MAX_KEY + 1], b"").await.unwrap_err();
        assert!(matches!(&refused, CallError::Refused(e) if e.kind == ErrorKind::TooLarge));
        let refused = client
            .put(b"big", &vec![0; protocol::DEFAULT_MAX_VALUE + 1])
            .await
            .unwrap_err();
        assert!(matches!(&refused, CallError::Refused(e) if e.kind == ErrorKind::TooLarge));
        assert_eq!(fake.requests(), before);
        // The session carries on.
        assert_eq!(client.put(b"k", b"4").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(fake.cluster().bad_acks, 0);
    }

    #[tokio::test]
    async fn the_configured_sizes_are_checked_before_sending() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        let sizes = SizeLimits::new(8, 3000).unwrap();
        let client = Client::connect(ClientOptions {
            sizes,
            ..options(&[&fake])
        })
        .await
        .unwrap();
        // Values of 3,000 bytes, above the 1 KiB of old, are sent.
        let value = vec![7; 3000];
        assert_eq!(client.put(b"12345678", &value).await.unwrap(), None);
        assert_eq!(client.get(b"12345678").await.unwrap(), Some(value));
        let before = fake.requests();
        let refusals = [
            client.put(b"k", &[0; 3001]).await.unwrap_err(),
            client.cas(b"k", Some(&[0; 3001]), None).await.unwrap_err(),
            client.ask(b"123456789", b"v").await.unwrap_err(),
            client.get(b"123456789").await.unwrap_err(),
            client.register(b"123456789").await.unwrap_err(),
            client.delete(b"123456789").await.unwrap_err(),
        ];
        for (i, refused) in refusals.iter().enumerate() {
            let CallError::Refused(e) = refused else {
                panic!("{i}: {refused}");
            };
            assert_eq!(e.kind, ErrorKind::TooLarge, "{i}");
            let maximum = if i < 2 {
                "maximum, 3000 bytes"
            } else {
                "maximum, 8 bytes"
            };
            assert!(e.message.contains(maximum), "{i}: {e}");
        }
        assert_eq!(fake.requests(), before, "none was sent");
    }

    #[tokio::test]
    async fn with_every_node_down_calls_are_unavailable_in_time() {
        let shared = cluster();
        let a = Fake::start(&shared, 1, Some(1)).await;
        let b = Fake::start(&shared, 2, Some(1)).await;
        let mut options = options(&[&a, &b]);
        options.request_timeout = Duration::from_secs(1);
        let client = Client::connect(options.clone()).await.unwrap();
        assert_eq!(client.put(b"k", b"1").await.unwrap(), None);
        a.shutdown();
        b.shutdown();
        for _ in 0..2 {
            let started = Instant::now();
            let error = client.put(b"k", b"2").await.unwrap_err();
            assert!(matches!(error, CallError::Unavailable { .. }), "{error}");
            assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        }
        let started = Instant::now();
        let error = client.get(b"k").await.unwrap_err();
        assert!(matches!(error, CallError::Unavailable { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(3));

        let started = Instant::now();
        let error = Client::connect(options).await.unwrap_err();
        assert!(matches!(error, CallError::Unavailable { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(
            Client::connect(ClientOptions::new(Vec::new())).await.unwrap_err(),
            CallError::NoNodes
        );
    }

    #[tokio::test]
    async fn connect_passes_over_nodes_that_are_down() {
        let shared = cluster();
        let down = Fake::start(&shared, 1, Some(1)).await;
        down.shutdown();
        let up = Fake::start(&shared, 2, None).await;
        let client = Client::connect(options(&[&down, &up])).await.unwrap();
        assert_eq!(client.inner.node(), Some(up.addr));
        assert_eq!(client.put(b"k", b"v").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_expired_session_is_refused_and_replaced() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        let client = Client::connect(options(&[&fake])).await.unwrap();
        assert_eq!(client.put(b"k", b"1").await.unwrap(), None);
        let first = client.session().unwrap();
        fake.cluster().clients.clear();
        let error = client.put(b"k", b"2").await.unwrap_err();
        assert!(
            matches!(&error, CallError::Refused(e) if e.kind == ErrorKind::SessionExpired),
            "{error}"
        );
        assert_eq!(client.session(), None);
        assert_eq!(client.put(b"k", b"3").await.unwrap(), Some(b"1".to_vec()));
        let second = client.session().unwrap();
        assert_ne!(first, second);
    }

    #[tokio::test]
    async fn a_session_expiring_after_an_attempt_was_sent_leaves_the_outcome_unknown() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        let client = Client::connect(options(&[&fake])).await.unwrap();
        assert_eq!(client.put(b"k", b"1").await.unwrap(), None);
        let first = client.session().unwrap();
        // The first attempt is applied, its reply lost, and the session
        // evicted before the retry: the retry is told SessionExpired.
        {
            let mut knobs = fake.knobs();
            knobs.drop_reply_of_next_write = true;
            knobs.forget_sessions_with_dropped_reply = true;
        }
        let error = client.put(b"k", b"2").await.unwrap_err();
        // Not "refused for good": a caller issuing it again would apply
        // it twice.
        assert!(
            matches!(&error, CallError::Unavailable { last } if last.contains("outcome unknown")),
            "{error}"
        );
        assert_eq!(fake.cluster().applies(b"k"), 2, "applied once, by the first attempt");
        assert_eq!(client.session(), None, "the expired session is dropped");
        // The next write opens a new session, and sees that it was applied.
        assert_eq!(client.put(b"k", b"3").await.unwrap(), Some(b"2".to_vec()));
        assert_ne!(client.session(), Some(first));
        assert_eq!(fake.cluster().bad_acks, 0);
    }

    #[tokio::test]
    async fn refusals_of_a_retried_write_say_whether_it_was_applied() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        let client = Client::connect(options(&[&fake])).await.unwrap();
        assert_eq!(client.put(b"k", b"1").await.unwrap(), None);
        // The first attempt applied (reply lost), the retry told it was
        // applied earlier: refused, and applied.
        {
            let mut knobs = fake.knobs();
            knobs.drop_reply_of_next_write = true;
            knobs.fail_after_dropped_reply = Some(ErrorKind::AppliedEarlier);
        }
        let error = client.put(b"k", b"2").await.unwrap_err();
        assert!(
            matches!(&error, CallError::Refused(e) if e.kind == ErrorKind::AppliedEarlier),
            "{error}"
        );
        assert_eq!(fake.cluster().applies(b"k"), 2);
        // A number used for another command: refused, not retried, and
        // the session carries on.
        fake.knobs().fail = Some((ErrorKind::SessionConflict, 1));
        let before = fake.requests();
        let error = client.put(b"k", b"3").await.unwrap_err();
        assert!(
            matches!(&error, CallError::Refused(e) if e.kind == ErrorKind::SessionConflict),
            "{error}"
        );
        assert_eq!(fake.requests() - before, 1, "not retried");
        assert_eq!(fake.cluster().applies(b"k"), 2, "not applied");
        {
            let mut knobs = fake.knobs();
            knobs.drop_reply_of_next_write = true;
            knobs.fail_after_dropped_reply = Some(ErrorKind::SessionConflict);
        }
        let error = client.put(b"k", b"4").await.unwrap_err();
        assert!(
            matches!(&error, CallError::Refused(e) if e.kind == ErrorKind::SessionConflict),
            "{error}"
        );
        assert!(client.session().is_some());
        assert_eq!(client.put(b"k", b"5").await.unwrap(), Some(b"4".to_vec()));
    }

    #[tokio::test]
    async fn an_open_answered_applied_earlier_is_opened_again_not_the_writes_outcome() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        let client = Client::connect(options(&[&fake])).await.unwrap();
        // The first request is the write's OpenSession: the node installed
        // a snapshot covering it and says AppliedEarlier. The write was
        // never sent: it must not be told "applied earlier".
        fake.knobs().fail = Some((ErrorKind::AppliedEarlier, 2));
        let before = fake.requests();
        assert_eq!(client.put(b"k", b"1").await.unwrap(), None);
        assert_eq!(fake.requests() - before, 4, "two refused opens, an open, the write");
        assert_eq!(fake.cluster().applies(b"k"), 1);
        assert!(client.session().is_some());
    }

    #[tokio::test]
    async fn an_open_refused_for_good_is_not_mistaken_for_the_write() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        let client = Client::connect(options(&[&fake])).await.unwrap();
        fake.knobs().fail = Some((ErrorKind::BadRequest, 1));
        let error = client.put(b"k", b"1").await.unwrap_err();
        assert!(
            matches!(&error, CallError::Refused(e) if e.kind == ErrorKind::BadRequest
                && e.message.contains("the write was not sent")),
            "{error}"
        );
        assert_eq!(fake.cluster().applies(b"k"), 0, "never sent");
        assert_eq!(client.session(), None);
        assert_eq!(client.put(b"k", b"2").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_node_that_stops_answering_is_left_after_the_attempt_timeout() {
        let shared = cluster();
        let a = Fake::start(&shared, 1, Some(1)).await;
        let b = Fake::start(&shared, 2, Some(1)).await;
        let mut options = options(&[&a, &b]);
        options.attempt_timeout = Duration::from_millis(300);
        let client = Client::connect(options).await.unwrap();
        assert_eq!(client.put(b"k", b"1").await.unwrap(), None);
        assert_eq!(client.inner.node(), Some(a.addr));
        // A still says it leads, but answers nothing.
        a.knobs().silent = true;
        let started = Instant::now();
        assert_eq!(client.put(b"k", b"2").await.unwrap(), Some(b"1".to_vec()));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(client.inner.node(), Some(b.addr));
        assert_eq!(shared.lock().unwrap().applies(b"k"), 2);
    }

    #[test]
    fn write_numbers_stay_within_the_window_of_the_oldest_outstanding() {
        let session = Session::new(7);
        for seq in 0..MAX_IN_FLIGHT as u64 {
            assert!(matches!(session.take(), Take::Seq(s) if s == seq));
            assert_eq!(session.acked(), 0);
        }
        assert!(matches!(session.take(), Take::Full));
        // Later writes finishing do not widen the window.
        session.finish(5);
        assert!(matches!(session.take(), Take::Full));
        session.finish(0);
        assert_eq!(session.acked(), 1);
        assert!(matches!(session.take(), Take::Seq(128)));
        assert!(matches!(session.take(), Take::Full));
        for seq in 1..=128 {
            session.finish(seq);
        }
        assert_eq!(session.acked(), 129);
        session.state.lock().unwrap().expired = true;
        assert!(matches!(session.take(), Take::Expired));
    }

    #[test]
    fn the_blocking_client_works_from_several_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<BlockingClient>();
        send_sync::<Client>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fake = runtime.block_on(Fake::start(&cluster(), 1, Some(1)));
        let client = BlockingClient::connect(options(&[&fake])).unwrap();
        assert_eq!(client.put(b"k", b"v").unwrap(), None);
        assert_eq!(client.get(b"k").unwrap(), Some(b"v".to_vec()));
        assert!(client.session().is_some());
        assert_eq!(client.status(fake.addr).unwrap().id, 1);
        std::thread::scope(|s| {
            for t in 0..4 {
                let client = &client;
                s.spawn(move || {
                    for i in 0..10 {
                        let key = format!("t{t}-{i}");
                        assert_eq!(client.put(key.as_bytes(), b"x").unwrap(), None);
                        assert_eq!(client.get(key.as_bytes()).unwrap(), Some(b"x".to_vec()));
                    }
                });
            }
        });
        assert_eq!(fake.cluster().store.keys(), 41);
        assert_eq!(fake.connections(), 1);
    }

    #[tokio::test]
    async fn garbage_from_a_node_drops_the_connection_and_the_call_is_retried() {
        let fake = Fake::start(&cluster(), 1, Some(1)).await;
        let client = Client::connect(options(&[&fake])).await.unwrap();
        assert_eq!(client.put(b"k", b"0").await.unwrap(), None);
        let max_frame = SizeLimits::DEFAULT.max_frame();
        let node_error = protocol::encode(
            &Frame {
                id: 0,
                body: Reply::Error(Error::new(ErrorKind::BadRequest, "a frame that does not decode")),
            },
            max_frame,
        )
        .unwrap();
        let garbage = [
            // A frame whose bytes do not decode.
            vec![3, 0, 0, 0, 0xff, 0xff, 0xff],
            // A length over the frame limit.
            (max_frame as u32 + 1).to_le_bytes().to_vec(),
            u32::MAX.to_le_bytes().to_vec(),
            // The node's error about the connection.
            node_error,
        ];
        for (i, bytes) in garbage.into_iter().enumerate() {
            fake.knobs().garbage = Some(bytes);
            let value = format!("{}", i + 1);
            let previous = client.put(b"k", value.as_bytes()).await.unwrap();
            assert_eq!(previous, Some(format!("{i}").into_bytes()));
            assert_eq!(fake.connections(), i + 2, "a new connection");
        }
        assert_eq!(fake.cluster().applies(b"k"), 5);
        // A read retried the same way.
        fake.knobs().garbage = Some(vec![1, 0, 0, 0, 0xff]);
        assert_eq!(client.get(b"k").await.unwrap(), Some(b"4".to_vec()));
    }
}
