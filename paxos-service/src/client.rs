//! The client protocol of a `paxos node`: one JSON request per line over
//! TCP, one JSON reply line back.
//!
//! Requests: `{"op":"ask","key":"K","value":"V"}` (propose V for K unless K
//! has a value), `{"op":"ask","key":"K"}` (read), `{"op":"status"}`.
//! Replies: `{"key":"K","value":"V"}` (`null` when unwritten),
//! `{"error":"..."}`, or a status object.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A request line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientRequest {
    /// gen_paxos's ask: with a value, propose it; without, read.
    Ask {
        /// The key.
        key: String,
        /// The value to propose, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
    /// The node's status.
    Status,
}

/// The answer to an ask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The key.
    pub key: String,
    /// The value decided for it; `None` when nobody wrote it.
    pub value: Option<String>,
    /// For an ask with a value: whether this ask's value is the one
    /// decided (absent for a read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub won: Option<bool>,
}

/// A node's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node.
    pub id: u8,
    /// The leader it knows of.
    pub leader: Option<u8>,
    /// Its promised ballot, as `[round, node]`.
    pub ballot: Option<(u32, u8)>,
    /// The highest decided slot (one below the decided watermark).
    pub decided: Option<u64>,
    /// The highest slot applied to the registers.
    pub applied: Option<u64>,
    /// Dropped messages by reason.
    pub dropped: std::collections::BTreeMap<String, u64>,
    /// `fdatasync` calls of its log since it started.
    #[serde(default)]
    pub syncs: u64,
    /// The node lost its storage and only learns: it never votes or leads
    /// (started with `--storage-lost` on an empty data directory).
    #[serde(default)]
    pub amnesiac: bool,
    /// Whether this node leads.
    #[serde(default)]
    pub is_leader: bool,
    /// Commands applied (and sessions opened) since the node started.
    #[serde(default)]
    pub commits: u64,
    /// Leader changes this node saw since it started.
    #[serde(default)]
    pub leader_changes: u64,
    /// Requests this node took and has not answered yet.
    #[serde(default)]
    pub waiting: u64,
    /// Registers written (gen_paxos's ask).
    #[serde(default)]
    pub registers: u64,
    /// Keys in the map.
    #[serde(default)]
    pub keys: u64,
    /// How recently a frame from each of its peers arrived, in the order
    /// of its `--peer`s.
    #[serde(default)]
    pub peers: Vec<PeerContact>,
}

/// How recently a node heard from one of its peers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerContact {
    /// The peer.
    pub id: u8,
    /// Milliseconds since a frame from it last arrived; `None` (`null`)
    /// when none has since the node started.
    pub last_heard_ms: Option<u64>,
}

/// A reply line: an answer, a status or an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClientReply {
    /// An ask's answer.
    Answer(Answer),
    /// A status.
    Status(Status),
    /// What went wrong.
    Error {
        /// The message.
        error: String,
    },
}

/// Why a client call failed.
#[derive(Debug)]
pub enum ClientError {
    /// Connecting, writing or reading failed (or timed out).
    Io(std::io::Error),
    /// The reply was not valid JSON of the expected shape.
    BadReply(String),
    /// The node answered with an error.
    Node(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::BadReply(s) => write!(f, "unexpected reply: {s}"),
            ClientError::Node(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Sends one request to the node at `addr` and waits up to `timeout` for
/// the reply.
pub fn call(addr: SocketAddr, request: &ClientRequest, timeout: Duration) -> Result<ClientReply, ClientError> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(ClientError::Io)?;
    stream.set_read_timeout(Some(timeout)).map_err(ClientError::Io)?;
    stream.set_write_timeout(Some(timeout)).map_err(ClientError::Io)?;
    let mut line = serde_json::to_string(request).map_err(|e| ClientError::BadReply(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(ClientError::Io)?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).map_err(ClientError::Io)?;
    if reply.is_empty() {
        return Err(ClientError::BadReply("connection closed".into()));
    }
    match serde_json::from_str::<ClientReply>(reply.trim_end()) {
        Ok(ClientReply::Error { error }) => Err(ClientError::Node(error)),
        Ok(r) => Ok(r),
        Err(e) => Err(ClientError::BadReply(format!("{e}: {reply}"))),
    }
}
