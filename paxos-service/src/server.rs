//! The client side of a node: one tokio task per connection (no thread),
//! speaking the binary [`protocol`] — many requests in
//! flight, answered out of order — or, when the first byte says so, the
//! JSON line protocol of [`client`](crate::client) for scripts.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections (more are closed at
//! once); per binary connection, [`MAX_IN_FLIGHT`] requests in flight and
//! [`CONNECTION_BUDGET`] bytes of requests unanswered and replies
//! unwritten (the reader stops reading until an answer or a write frees
//! room; a frame larger than the budget is read alone); frames of the
//! node's [`SizeLimits::max_frame`] bytes and JSON lines of [`MAX_LINE`]
//! bytes. So a binary connection holds at most its budget and one frame,
//! besides the replies of its requests in flight that wait for room. A
//! frame or a line must arrive whole within [`FRAME_TIMEOUT`] of its first
//! byte; a new connection must send its first byte within
//! [`FRAME_TIMEOUT`], and a connection with nothing in flight is closed
//! after [`IDLE_TIMEOUT`] of silence (the Rust client reconnects), so
//! silent connections cannot hold every slot for long. A client must also
//! read its replies: a reply (a binary frame or a JSON line) that cannot
//! be written within [`WRITE_TIMEOUT`], or a request that waits
//! [`WRITE_TIMEOUT`] for one of its connection's [`MAX_IN_FLIGHT`] places
//! or for room in its budget (answers take at most the runtime's
//! [`DEADLINE`](paxos_std::runtime::DEADLINE), so a place or room not
//! freed by then means its answers are not being read), closes the
//! connection; a closing connection's answers in progress get
//! [`WRITE_TIMEOUT`] to go out, and then its writer is stopped, so nothing
//! of a closed connection outlives its slot. Whatever a client sends gets
//! a typed error or a closed connection; the node keeps serving everyone
//! else.

use crate::client::{Answer, ClientReply, ClientRequest, PeerContact, Status};
use crate::metrics::Metrics;
use crate::protocol::{self, Error, Frame, Reply, Request, SizeLimits};
use crate::store::{Command, Output, Store};
use paxos_std::runtime::{ProposeError, Runtime, RuntimeStatus};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

mod budget;

use budget::{Budget, Held};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// Requests in flight on one connection.
pub const MAX_IN_FLIGHT: usize = 256;
/// Bytes of one connection's requests read and not yet answered, and of
/// its replies not yet written, beyond which its reader pauses (8 MiB).
pub const CONNECTION_BUDGET: usize = 8 << 20;
/// The longest JSON request line, in bytes.
pub const MAX_LINE: usize = 64 * 1024;
/// How long a frame or a line may take to arrive once it started.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay silent between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long writing one reply may take: a client that reads none of its
/// replies for this long (the socket's buffers full) is closed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds a server keeps that tests shorten.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// [`WRITE_TIMEOUT`].
    write_timeout: Duration,
    /// [`CONNECTION_BUDGET`].
    budget: usize,
}

/// The bounds [`serve`] keeps.
const LIMITS: Limits = Limits {
    write_timeout: WRITE_TIMEOUT,
    budget: CONNECTION_BUDGET,
};

/// What the server serves: the node's runtime and its metrics, and the
/// sizes it accepts.
#[derive(Clone)]
pub struct Node {
    /// The replicated store.
    pub runtime: Arc<Runtime<Store>>,
    /// Where requests are counted.
    pub metrics: Metrics,
    /// The longest key and value accepted, and so the longest frame.
    /// The runtime must accept commands of its
    /// [`max_command`](SizeLimits::max_command).
    pub sizes: SizeLimits,
}

/// A reply on its way to the writer, and the budget its bytes hold until
/// they are written.
struct Outgoing {
    bytes: Vec<u8>,
    _held: Option<Held>,
}

/// Serves clients on `listener` until the runtime it runs on stops.
pub async fn serve(listener: TcpListener, node: Node) {
    serve_with(listener, node, LIMITS).await;
}

/// [`serve`] with the given bounds.
async fn serve_with(listener: TcpListener, node: Node, limits: Limits) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!("accepting a client: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("too many client connections: one closed");
            continue;
        };
        let node = node.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            node.metrics.connection_opened();
            let _ = connection(stream, &node, limits).await;
            node.metrics.connection_closed();
            drop(slot);
        });
    }
}

async fn connection(stream: TcpStream, node: &Node, limits: Limits) -> std::io::Result<()> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(FRAME_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return Ok(()),
    }
    if first[0] == protocol::MAGIC[0] {
        binary(stream, node, limits).await
    } else {
        lines(stream, node, limits).await
    }
}

/// Reads exactly `buf.len()` bytes, within [`FRAME_TIMEOUT`].
async fn read_within(reader: &mut (impl AsyncReadExt + Unpin), buf: &mut [u8]) -> std::io::Result<()> {
    match tokio::time::timeout(FRAME_TIMEOUT, reader.read_exact(buf)).await {
        Ok(result) => result.map(|_| ()),
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn binary(stream: TcpStream, node: &Node, limits: Limits) -> std::io::Result<()> {
    let (mut reader, writer) = stream.into_split();
    let mut magic = [0u8; 4];
    read_within(&mut reader, &mut magic).await?;
    if magic != protocol::MAGIC {
        return Ok(());
    }
    let (replies, outbox) = mpsc::channel::<Outgoing>(MAX_IN_FLIGHT);
    let mut writing = tokio::spawn(write_replies(writer, outbox, limits.write_timeout));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let budget = Budget::new(limits.budget);
    // A writer that stopped (the client does not read its replies, or the
    // connection broke) stops the reader too.
    let refusal = tokio::select! {
        refusal = read_requests(&mut reader, node, &replies, &in_flight, &budget, limits) => refusal,
        () = replies.closed() => None,
    };
    if let Some(error) = refusal {
        tracing::debug!("a client's frame refused: {error}");
        if let Ok(bytes) = encode_reply(0, Reply::Error(error), node.sizes.max_frame()) {
            let refusal = Outgoing { bytes, _held: None };
            let _ = tokio::time::timeout(limits.write_timeout, replies.send(refusal)).await;
        }
    }
    drop(replies);
    // Answers still being computed go out before the connection closes,
    // within the write timeout; then the writer (and the socket, and the
    // replies queued for it) is stopped, not left behind the slot.
    if tokio::time::timeout(limits.write_timeout, &mut writing).await.is_err() {
        writing.abort();
        let _ = writing.await;
    }
    Ok(())
}

/// A binary connection's writer: sends each reply, within `within`; stops
/// (and so closes `outbox`) when one is not taken in time or the
/// connection broke.
async fn write_replies(mut writer: OwnedWriteHalf, mut outbox: mpsc::Receiver<Outgoing>, within: Duration) {
    // Each reply's budget is let go once it is written.
    while let Some(reply) = outbox.recv().await {
        match tokio::time::timeout(within, writer.write_all(&reply.bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::debug!("a client read no reply for {within:?}: closing its connection");
                return;
            }
        }
    }
}

/// A binary connection's reader: reads requests and starts answering each
/// (at most [`MAX_IN_FLIGHT`] at once, within the byte `budget`), until
/// the client closes the connection, breaks a bound, or does not read its
/// replies; the error to send it, if any.
async fn read_requests(
    reader: &mut OwnedReadHalf,
    node: &Node,
    replies: &mpsc::Sender<Outgoing>,
    in_flight: &Arc<Semaphore>,
    budget: &Budget,
    limits: Limits,
) -> Option<Error> {
    let max_frame = node.sizes.max_frame();
    let mut body = Vec::new();
    loop {
        let mut prefix = [0u8; 4];
        // Connections persist between requests, up to the idle timeout
        // (never closed while a request is in flight: its client waits;
        // each is answered within the runtime's deadline and written
        // within the write timeout). A one-byte read that timed out read
        // nothing, so it is retried.
        let started = loop {
            match tokio::time::timeout(IDLE_TIMEOUT, reader.read_exact(&mut prefix[..1])).await {
                Ok(result) => break result.is_ok(),
                Err(_) if in_flight.available_permits() < MAX_IN_FLIGHT => continue,
                Err(_) => break false,
            }
        };
        if !started {
            return None;
        }
        if read_within(reader, &mut prefix[1..]).await.is_err() {
            return None;
        }
        let len = match protocol::frame_len(prefix, max_frame) {
            Ok(len) => len,
            Err(e) => return Some(e),
        };
        // A place, then room for the body, before it is read. A place
        // frees once an answer is handed to the writer, and room once
        // requests are answered and replies written; answers take at most
        // the runtime's deadline, so neither freeing within the write
        // timeout means the client is not reading its replies.
        let admitted = tokio::time::timeout(limits.write_timeout, async {
            let place = Arc::clone(in_flight).acquire_owned().await.ok()?;
            let held = budget.hold(len).await?;
            Some((place, held))
        })
        .await;
        let (place, held) = match admitted {
            Ok(Some(admitted)) => admitted,
            Ok(None) => return None,
            Err(_) => {
                tracing::debug!("a client's replies were not read: closing its connection");
                return None;
            }
        };
        body.resize(len, 0);
        if read_within(reader, &mut body).await.is_err() {
            return None;
        }
        let frame = match protocol::decode::<Request>(&body) {
            Ok(frame) => frame,
            Err(e) => return Some(e),
        };
        let (node, replies, budget) = (node.clone(), replies.clone(), budget.clone());
        tokio::spawn(async move {
            let reply = answer(&node, frame.body).await;
            // Answered: the request's bytes go before the reply's are
            // asked for (never holding some while waiting for more).
            drop(held);
            if let Ok(bytes) = encode_reply(frame.id, reply, max_frame) {
                if let Some(held) = budget.hold(bytes.len()).await {
                    // Taken by the writer, or refused once it stopped.
                    let _ = replies
                        .send(Outgoing {
                            bytes,
                            _held: Some(held),
                        })
                        .await;
                }
            }
            drop(place);
        });
    }
}

fn encode_reply(id: u64, reply: Reply, max_frame: usize) -> Result<Vec<u8>, Error> {
    match protocol::encode(&Frame { id, body: reply }, max_frame) {
        // A reply too large for a frame (a value stored under larger
        // maxima) says so.
        Err(e) => protocol::encode(
            &Frame {
                id,
                body: Reply::Error(e),
            },
            max_frame,
        ),
        ok => ok,
    }
}

/// The name of a request, for metrics.
fn op(request: &Request) -> &'static str {
    match request {
        Request::Status => "status",
        Request::OpenSession => "session",
        Request::Get { .. } => "get",
        Request::Register { .. } => "ask",
        Request::Write { command, .. } => match command {
            Command::Ask { .. } => "ask",
            Command::Put { .. } => "put",
            Command::Delete { .. } => "delete",
            Command::Cas { .. } => "cas",
        },
    }
}

/// Serves one request.
pub async fn answer(node: &Node, request: Request) -> Reply {
    use tracing::Instrument;
    let started = Instant::now();
    let name = op(&request);
    let span = tracing::debug_span!("request", op = name);
    let reply = match execute(node, request).instrument(span).await {
        Ok(reply) => reply,
        Err(e) => Reply::Error(e),
    };
    let ok = !matches!(reply, Reply::Error(_));
    node.metrics.request(name, ok, started.elapsed().as_secs_f64());
    reply
}

async fn execute(node: &Node, request: Request) -> Result<Reply, Error> {
    let runtime = &node.runtime;
    match request {
        Request::Status => Ok(Reply::Status(status(runtime).await?)),
        Request::OpenSession => Ok(Reply::Session {
            client: runtime.open_session_async().await?,
        }),
        Request::Get { key, lease } => {
            node.sizes.check_key(&key)?;
            let read = move |s: &Store| s.get(&key).map(<[u8]>::to_vec);
            let value = if lease {
                runtime.read_local_async(read).await?
            } else {
                runtime.read_async(read).await?
            };
            Ok(Reply::Value { value })
        }
        Request::Register { key } => {
            node.sizes.check_key(&key)?;
            let value = runtime
                .read_async(move |s: &Store| s.register(&key).map(<[u8]>::to_vec))
                .await?;
            Ok(Reply::Value { value })
        }
        Request::Write { command, session } => {
            node.sizes.check_command(&command)?;
            let output = match session {
                Some(tag) => runtime.propose_in_session_async(tag, command).await?,
                None => runtime.propose_async(command).await?,
            };
            Ok(Reply::Output(output))
        }
    }
}

/// The node's status as clients see it.
pub async fn status(runtime: &Runtime<Store>) -> Result<Status, ProposeError> {
    let s = runtime.status_async().await?;
    // This node's own counts, as applied so far (monitoring, not a
    // linearizable read).
    let (registers, keys) = runtime.read_stale_async(|s: &Store| (s.registers(), s.keys())).await?;
    Ok(to_status(&s, registers, keys))
}

/// A runtime status as the status reply carries it.
pub fn to_status(s: &RuntimeStatus, registers: usize, keys: usize) -> Status {
    Status {
        id: s.id,
        leader: s.leader,
        ballot: s.ballot,
        decided: s.decided.checked_sub(1),
        applied: s.applied.checked_sub(1),
        dropped: dropped(s),
        syncs: s.syncs,
        amnesiac: s.amnesiac,
        is_leader: s.is_leader,
        commits: s.commits,
        leader_changes: s.leader_changes,
        waiting: s.waiting as u64,
        registers: registers as u64,
        keys: keys as u64,
        peers: s
            .peers
            .iter()
            .map(|p| PeerContact {
                id: p.id,
                last_heard_ms: p.last_heard_ms,
            })
            .collect(),
    }
}

/// What the node dropped, by reason: the replica's and the transport's
/// counters under one set of names (the status reply's and the metrics').
pub fn dropped(s: &RuntimeStatus) -> BTreeMap<String, u64> {
    let (c, t) = (&s.replica, &s.transport);
    [
        ("unknown_peer", c.unknown_peer),
        ("malformed", c.malformed + t.truncated),
        ("bad_handshake", t.bad_handshake),
        ("bad_tag", t.bad_tag),
        ("oversized", t.oversized),
        ("queue_full", t.queue_full),
        ("busy", c.busy),
        ("outbox_full", c.outbox_full),
        ("out_of_window", c.out_of_window),
        ("invalid", c.invalid),
        ("stale", c.stale),
        ("buffer_too_small", c.buffer_too_small),
    ]
    .into_iter()
    .map(|(name, n)| (name.to_string(), n))
    .collect()
}

/// The JSON line protocol: one request per line, each answered with one
/// line, in order.
async fn lines(stream: TcpStream, node: &Node, limits: Limits) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Idle between lines up to the idle timeout; a line, once started,
        // must end within the frame timeout.
        match tokio::time::timeout(IDLE_TIMEOUT, reader.fill_buf()).await {
            Ok(Ok(buf)) if !buf.is_empty() => {}
            _ => return Ok(()),
        }
        let limited = (&mut reader).take(MAX_LINE as u64 + 1);
        let read = tokio::time::timeout(FRAME_TIMEOUT, read_line(limited, &mut line)).await;
        match read {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => return Ok(()),
            Ok(Ok(_)) => {}
        }
        let too_long = line.len() > MAX_LINE;
        let reply = if too_long {
            json_error(format!("a request line longer than {MAX_LINE} bytes"))
        } else {
            json_answer(node, &line).await
        };
        let mut out = serde_json::to_vec(&reply).unwrap_or_else(|_| b"{\"error\":\"internal\"}".to_vec());
        out.push(b'\n');
        // A client that does not read its replies is closed.
        match tokio::time::timeout(limits.write_timeout, writer.write_all(&out)).await {
            Ok(written) => written?,
            Err(_) => return Ok(()),
        }
        if too_long {
            return Ok(());
        }
    }
}

async fn read_line(mut reader: impl AsyncBufReadExt + Unpin, line: &mut Vec<u8>) -> std::io::Result<usize> {
    reader.read_until(b'\n', line).await
}

fn json_error(error: String) -> serde_json::Value {
    serde_json::json!({ "error": error })
}

/// One JSON request answered: the ops of the line protocol (`ask`,
/// `status`) with their replies as before, and `put`, `get`, `delete`,
/// `cas` with string keys and values.
async fn json_answer(node: &Node, line: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if let Ok(request) = serde_json::from_str::<ClientRequest>(text) {
        return legacy(node, request).await;
    }
    let Ok(request) = serde_json::from_str::<JsonRequest>(text) else {
        return json_error(format!("bad request: {text:?}"));
    };
    let key = request.key.clone();
    let bytes = |v: Option<String>| v.map(String::into_bytes);
    let text_of = |v: Option<Vec<u8>>| v.map(|v| String::from_utf8_lossy(&v).into_owned());
    let command = match request.op.as_str() {
        "put" => match request.value {
            Some(value) => Command::Put {
                key: key.clone().into_bytes(),
                value: value.into_bytes(),
            },
            None => return json_error("put needs a value".into()),
        },
        "delete" => Command::Delete {
            key: key.clone().into_bytes(),
        },
        "cas" => Command::Cas {
            key: key.clone().into_bytes(),
            expected: bytes(request.expected),
            new: bytes(request.new),
        },
        "get" => {
            return match answer(
                node,
                Request::Get {
                    key: key.clone().into_bytes(),
                    lease: request.lease,
                },
            )
            .await
            {
                Reply::Value { value } => serde_json::json!({ "key": key, "value": text_of(value) }),
                Reply::Error(e) => json_error(e.message),
                other => json_error(format!("unexpected {other:?}")),
            };
        }
        other => return json_error(format!("unknown op {other:?}")),
    };
    match answer(node, Request::Write { command, session: None }).await {
        Reply::Output(Output::Put { previous }) | Reply::Output(Output::Deleted { previous }) => {
            serde_json::json!({ "key": key, "previous": text_of(previous) })
        }
        Reply::Output(Output::Cas { ok, current }) => {
            serde_json::json!({ "key": key, "ok": ok, "current": text_of(current) })
        }
        Reply::Error(e) => json_error(e.message),
        other => json_error(format!("unexpected {other:?}")),
    }
}

/// A JSON request beyond the line protocol's first two ops.
#[derive(serde::Deserialize)]
struct JsonRequest {
    op: String,
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    expected: Option<String>,
    #[serde(default)]
    new: Option<String>,
    #[serde(default)]
    lease: bool,
}

/// `ask` and `status`, replying exactly as the line protocol always has.
async fn legacy(node: &Node, request: ClientRequest) -> serde_json::Value {
    let reply = match request {
        ClientRequest::Status => match answer(node, Request::Status).await {
            Reply::Status(s) => ClientReply::Status(s),
            Reply::Error(e) => ClientReply::Error { error: e.message },
            other => ClientReply::Error {
                error: format!("unexpected {other:?}"),
            },
        },
        ClientRequest::Ask { key, value } => {
            let request = match value {
                Some(value) => Request::Write {
                    command: Command::Ask {
                        key: key.clone().into_bytes(),
                        value: value.into_bytes(),
                    },
                    session: None,
                },
                None => Request::Register {
                    key: key.clone().into_bytes(),
                },
            };
            let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
            match answer(node, request).await {
                Reply::Output(Output::Asked { value, won }) => ClientReply::Answer(Answer {
                    key,
                    value: Some(text(value)),
                    won: Some(won),
                }),
                Reply::Value { value } => ClientReply::Answer(Answer {
                    key,
                    value: value.map(text),
                    won: None,
                }),
                Reply::Error(e) => ClientReply::Error { error: e.message },
                other => ClientReply::Error {
                    error: format!("unexpected {other:?}"),
                },
            }
        }
    };
    serde_json::to_value(reply).unwrap_or_else(|_| json_error("internal".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Client, ClientOptions};
    use paxos_core::replica::LeaseConfig;
    use paxos_std::options::NodeOptions;
    use paxos_std::transport::free_loopback_addrs;
    use std::io::Write;
    use std::net::SocketAddr;

    /// A one-node cluster (it elects itself), with a leader lease, served
    /// with `limits`.
    struct Single {
        node: Node,
        addr: SocketAddr,
        _dir: tempfile::TempDir,
    }

    async fn single(limits: Limits) -> Single {
        let single = member(1, limits).await;
        let started = Instant::now();
        while !single.node.runtime.status_async().await.unwrap().is_leader {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the node did not elect itself"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        single
    }

    /// The first node of a cluster of `n` (none of the others started),
    /// with the default sizes, served with `limits`. With `n` above 1 it
    /// has no quorum: writes wait until the runtime's deadline.
    async fn member(n: usize, limits: Limits) -> Single {
        let dir = tempfile::tempdir().unwrap();
        let addrs = free_loopback_addrs(n).unwrap();
        let sizes = SizeLimits::DEFAULT;
        let options = NodeOptions {
            lease: Some(LeaseConfig::new(paxos_core::Duration::from_micros(200_000), 1_000)),
            ..NodeOptions::local_member(0, &addrs, dir.path()).max_command(sizes.max_command())
        };
        let runtime = Runtime::start(options, Store::default()).unwrap();
        let node = Node {
            runtime: Arc::new(runtime),
            metrics: Metrics::new(1),
            sizes,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_with(listener, node.clone(), limits));
        Single { node, addr, _dir: dir }
    }

    /// The `paxos_client_connections` gauge.
    fn connections(node: &Node) -> f64 {
        let text = node.metrics.encode();
        text.lines()
            .filter(|l| l.starts_with("paxos_client_connections{") || l.starts_with("paxos_client_connections "))
            .find_map(|l| l.split_whitespace().last()?.parse().ok())
            .unwrap_or_else(|| panic!("no connections gauge in {text}"))
    }

    /// Waits until the gauge is `n`, for at most `within`; how long it took.
    async fn until_connections(node: &Node, n: f64, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if connections(node) == n {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "the gauge stayed at {} (expected {n}) for {within:?}",
                connections(node)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `requests` copies of `request` in batches of 100, never
    /// reading, until they are sent or a send stalls for a second (the
    /// node stopped reading); the stream, kept open, and how many went.
    fn flood(addr: SocketAddr, first: &[u8], request: &[u8], requests: usize) -> (std::net::TcpStream, usize) {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
        stream.write_all(first).unwrap();
        let batch = request.repeat(100);
        let mut sent = 0;
        while sent < requests && stream.write_all(&batch).is_ok() {
            sent += 100;
        }
        (stream, sent)
    }

    /// Whether the node closed `stream`, found without reading it (reading
    /// would let a stuck writer finish): more of `request` is sent until a
    /// send fails (the node closed its socket with requests unread, so it
    /// was reset) or stalls (the socket is open, unread), for at most
    /// `within`.
    fn closed(stream: &mut std::net::TcpStream, request: &[u8], within: Duration) -> bool {
        let started = Instant::now();
        let batch = request.repeat(100);
        while started.elapsed() < within {
            match stream.write_all(&batch) {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return false
                }
                Err(_) => return true,
            }
        }
        false
    }

    const SHORT: Limits = Limits {
        write_timeout: Duration::from_millis(500),
        budget: CONNECTION_BUDGET,
    };

    fn frame(id: u64, body: Request) -> Vec<u8> {
        protocol::encode(&Frame { id, body }, SizeLimits::DEFAULT.max_frame()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_binary_client_that_never_reads_its_replies_is_closed() {
        let single = single(SHORT).await;
        let client = Client::connect(ClientOptions::new(vec![single.addr])).await.unwrap();
        let value = vec![b'v'; 1024];
        assert_eq!(client.put(b"k", &value).await.unwrap(), None);
        assert_eq!(client.get_under_lease(b"k").await.unwrap(), Some(value.clone()));
        // The client's one connection (its status probes closed).
        let before = 1.0;
        until_connections(&single.node, before, Duration::from_secs(5)).await;
        // Thousands of 1 KiB replies: more than the socket buffers hold.
        // (Read under the lease: a one-node runtime flooded with reads
        // through the log can stall, which is not what this tests.)
        let get = frame(
            1,
            Request::Get {
                key: b"k".to_vec(),
                lease: true,
            },
        );
        let (addr, request) = (single.addr, get.clone());
        let flooding = std::thread::spawn(move || flood(addr, &protocol::MAGIC, &request, 100_000));
        until_connections(&single.node, before + 1.0, Duration::from_secs(10)).await;
        let (mut stream, sent) = tokio::task::spawn_blocking(move || flooding.join().unwrap())
            .await
            .unwrap();
        // Closed, its slot released, within the write timeout (and the
        // time to answer what was sent) — not held forever.
        let took = until_connections(&single.node, before, Duration::from_secs(20)).await;
        let closed = tokio::task::spawn_blocking(move || closed(&mut stream, &get, Duration::from_secs(5)))
            .await
            .unwrap();
        assert!(closed, "the socket is closed too, not left with a detached writer");
        eprintln!("{sent} requests sent; closed {took:?} after the sending stopped");
        // The node serves everyone else.
        assert_eq!(client.get(b"k").await.unwrap(), Some(value.clone()));
        let other = Client::connect(ClientOptions::new(vec![single.addr])).await.unwrap();
        assert_eq!(other.put(b"k", b"w").await.unwrap(), Some(value));
    }

    /// A 3,000-byte put of key `k{i:03}` (every one's frame as long).
    fn put(i: u64) -> Vec<u8> {
        frame(
            i,
            Request::Write {
                command: Command::Put {
                    key: format!("k{i:03}").into_bytes(),
                    value: vec![i as u8; 3000],
                },
                session: None,
            },
        )
    }

    /// Sends `requests` (frames) on a new binary connection from another
    /// thread while this one reads `n` replies; the replies by id.
    fn exchange(addr: SocketAddr, requests: Vec<u8>, n: usize) -> BTreeMap<u64, Reply> {
        use std::io::Read;
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let sending = std::thread::spawn(move || {
            writer.write_all(&protocol::MAGIC)?;
            writer.write_all(&requests)
        });
        let mut reader = std::io::BufReader::new(stream);
        let mut replies = BTreeMap::new();
        for _ in 0..n {
            let mut prefix = [0u8; 4];
            reader.read_exact(&mut prefix).unwrap();
            let mut body = vec![0; protocol::frame_len(prefix, SizeLimits::DEFAULT.max_frame()).unwrap()];
            reader.read_exact(&mut body).unwrap();
            let frame = protocol::decode::<Reply>(&body).unwrap();
            replies.insert(frame.id, frame.body);
        }
        sending.join().unwrap().unwrap();
        replies
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_pipelining_large_requests_is_paused_at_its_byte_budget() {
        // No quorum: every write waits for the runtime's deadline, its
        // bytes held meanwhile.
        let budget = 16 * 1024;
        let single = member(
            3,
            Limits {
                write_timeout: WRITE_TIMEOUT,
                budget,
            },
        )
        .await;
        let len = put(1).len() - 4;
        let admitted = budget / len;
        assert!(admitted >= 2, "{len}");
        let requests: Vec<u8> = (1..=40).flat_map(put).collect();
        let addr = single.addr;
        // The socket buffers take what the node does not read (a send
        // that stalls gives up; the connection stays open).
        let sending = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = stream
                .write_all(&protocol::MAGIC)
                .and_then(|()| stream.write_all(&requests));
            stream
        });
        let waiting = || async { single.node.runtime.status_async().await.unwrap().waiting };
        let started = Instant::now();
        while waiting().await < admitted {
            assert!(started.elapsed() < Duration::from_secs(5), "{} taken", waiting().await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The reader paused at the budget's worth of requests (40 were
        // sent; without the budget all would be taken), and stays paused.
        let _stream = tokio::task::spawn_blocking(move || sending.join().unwrap())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(waiting().await, admitted);
        // The node serves everyone else meanwhile.
        let other = Client::connect(ClientOptions::new(vec![single.addr])).await.unwrap();
        assert_eq!(other.status(single.addr).await.unwrap().waiting, admitted as u64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_requests_and_replies_under_a_small_budget_all_complete() {
        // Room for one put frame or one large reply at a time.
        let single = single(Limits {
            write_timeout: WRITE_TIMEOUT,
            budget: 4 * 1024,
        })
        .await;
        let addr = single.addr;
        let puts: Vec<u8> = (1..=50).flat_map(put).collect();
        let replies = tokio::task::spawn_blocking(move || exchange(addr, puts, 50))
            .await
            .unwrap();
        for i in 1..=50 {
            assert_eq!(replies[&i], Reply::Output(Output::Put { previous: None }), "put {i}");
        }
        // Replies as large as the requests were: one at a time, in order
        // of the budget, every one.
        let gets: Vec<u8> = (1..=50)
            .flat_map(|i: u64| {
                frame(
                    i,
                    Request::Get {
                        key: format!("k{i:03}").into_bytes(),
                        lease: false,
                    },
                )
            })
            .collect();
        let replies = tokio::task::spawn_blocking(move || exchange(addr, gets, 50))
            .await
            .unwrap();
        for i in 1..=50 {
            assert_eq!(
                replies[&i],
                Reply::Value {
                    value: Some(vec![i as u8; 3000])
                },
                "get {i}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_json_client_that_never_reads_its_replies_is_closed() {
        let single = single(SHORT).await;
        let before = 0.0;
        assert_eq!(connections(&single.node), before);
        let addr = single.addr;
        // Status lines: each answered with a few hundred bytes.
        let line = b"{\"op\":\"status\"}\n";
        let flooding = std::thread::spawn(move || flood(addr, b"", line, 200_000));
        until_connections(&single.node, before + 1.0, Duration::from_secs(10)).await;
        let (mut stream, sent) = tokio::task::spawn_blocking(move || flooding.join().unwrap())
            .await
            .unwrap();
        let took = until_connections(&single.node, before, Duration::from_secs(20)).await;
        let closed = tokio::task::spawn_blocking(move || closed(&mut stream, line, Duration::from_secs(5)))
            .await
            .unwrap();
        assert!(closed, "the socket is closed too");
        eprintln!("{sent} lines sent; closed {took:?} after the sending stopped");
        let client = Client::connect(ClientOptions::new(vec![single.addr])).await.unwrap();
        assert_eq!(client.put(b"k", b"v").await.unwrap(), None);
    }
}
