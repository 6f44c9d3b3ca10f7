//! The client side of a node: one tokio task per connection (no thread),
//! speaking the binary [`protocol`] — many requests in
//! flight, answered out of order — or, when the first byte says so, the
//! JSON line protocol of [`client`](crate::client) for scripts.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections (more are closed at
//! once), [`MAX_IN_FLIGHT`] requests in flight per connection (the reader
//! stops reading until one is answered), frames of [`MAX_FRAME`](crate::protocol::MAX_FRAME) bytes
//! and JSON lines of [`MAX_LINE`] bytes. A frame or a line must arrive
//! whole within [`FRAME_TIMEOUT`] of its first byte; a new connection
//! must send its first byte within [`FRAME_TIMEOUT`], and a connection
//! with nothing in flight is closed after [`IDLE_TIMEOUT`] of silence (the
//! Rust client reconnects), so silent connections cannot hold every slot
//! for long. Whatever a client
//! sends gets a typed error or a closed connection; the node keeps
//! serving everyone else.

use crate::client::{Answer, ClientReply, ClientRequest, Status};
use crate::metrics::Metrics;
use crate::protocol::{self, Error, Frame, Reply, Request};
use crate::store::{Command, Output, Store};
use paxos_std::runtime::{ProposeError, Runtime, RuntimeStatus};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// Requests in flight on one connection.
pub const MAX_IN_FLIGHT: usize = 256;
/// The longest JSON request line, in bytes.
pub const MAX_LINE: usize = 64 * 1024;
/// How long a frame or a line may take to arrive once it started.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay silent between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// What the server serves: the node's runtime and its metrics.
#[derive(Clone)]
pub struct Node {
    /// The replicated store.
    pub runtime: Arc<Runtime<Store>>,
    /// Where requests are counted.
    pub metrics: Metrics,
}

/// Serves clients on `listener` until the runtime it runs on stops.
pub async fn serve(listener: TcpListener, node: Node) {
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
            let _ = connection(stream, &node).await;
            node.metrics.connection_closed();
            drop(slot);
        });
    }
}

async fn connection(stream: TcpStream, node: &Node) -> std::io::Result<()> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(FRAME_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return Ok(()),
    }
    if first[0] == protocol::MAGIC[0] {
        binary(stream, node).await
    } else {
        lines(stream, node).await
    }
}

/// Reads exactly `buf.len()` bytes, within [`FRAME_TIMEOUT`].
async fn read_within(reader: &mut (impl AsyncReadExt + Unpin), buf: &mut [u8]) -> std::io::Result<()> {
    match tokio::time::timeout(FRAME_TIMEOUT, reader.read_exact(buf)).await {
        Ok(result) => result.map(|_| ()),
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn binary(stream: TcpStream, node: &Node) -> std::io::Result<()> {
    let (mut reader, mut writer) = stream.into_split();
    let mut magic = [0u8; 4];
    read_within(&mut reader, &mut magic).await?;
    if magic != protocol::MAGIC {
        return Ok(());
    }
    let (replies, mut outbox) = mpsc::channel::<Vec<u8>>(MAX_IN_FLIGHT);
    let writing = tokio::spawn(async move {
        while let Some(bytes) = outbox.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut body = Vec::new();
    let refusal = loop {
        let mut prefix = [0u8; 4];
        // Connections persist between requests, up to the idle timeout
        // (never closed while a request is in flight: its client waits).
        // A one-byte read that timed out read nothing, so it is retried.
        let started = loop {
            match tokio::time::timeout(IDLE_TIMEOUT, reader.read_exact(&mut prefix[..1])).await {
                Ok(result) => break result.is_ok(),
                Err(_) if in_flight.available_permits() < MAX_IN_FLIGHT => continue,
                Err(_) => break false,
            }
        };
        if !started {
            break None;
        }
        if read_within(&mut reader, &mut prefix[1..]).await.is_err() {
            break None;
        }
        let len = match protocol::frame_len(prefix) {
            Ok(len) => len,
            Err(e) => break Some(e),
        };
        body.resize(len, 0);
        if read_within(&mut reader, &mut body).await.is_err() {
            break None;
        }
        let frame = match protocol::decode::<Request>(&body) {
            Ok(frame) => frame,
            Err(e) => break Some(e),
        };
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            break None;
        };
        let (node, replies) = (node.clone(), replies.clone());
        tokio::spawn(async move {
            let reply = answer(&node, frame.body).await;
            if let Ok(bytes) = encode_reply(frame.id, reply) {
                let _ = replies.send(bytes).await;
            }
            drop(permit);
        });
    };
    if let Some(error) = refusal {
        tracing::debug!("a client's frame refused: {error}");
        if let Ok(bytes) = encode_reply(0, Reply::Error(error)) {
            let _ = replies.send(bytes).await;
        }
    }
    drop(replies);
    // Answers still being computed go out before the connection closes.
    let _ = tokio::time::timeout(Duration::from_secs(30), writing).await;
    Ok(())
}

fn encode_reply(id: u64, reply: Reply) -> Result<Vec<u8>, Error> {
    match protocol::encode(&Frame { id, body: reply }) {
        // A reply too large for a frame (a status, a value) says so.
        Err(e) => protocol::encode(&Frame {
            id,
            body: Reply::Error(e),
        }),
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
            protocol::check_key(&key)?;
            let read = move |s: &Store| s.get(&key).map(<[u8]>::to_vec);
            let value = if lease {
                runtime.read_local_async(read).await?
            } else {
                runtime.read_async(read).await?
            };
            Ok(Reply::Value { value })
        }
        Request::Register { key } => {
            protocol::check_key(&key)?;
            let value = runtime
                .read_async(move |s: &Store| s.register(&key).map(<[u8]>::to_vec))
                .await?;
            Ok(Reply::Value { value })
        }
        Request::Write { command, session } => {
            protocol::check_command(&command)?;
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
async fn lines(stream: TcpStream, node: &Node) -> std::io::Result<()> {
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
        writer.write_all(&out).await?;
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
