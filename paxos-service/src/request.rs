//! What a process embedding a node asks it, and what it answers.
//!
//! Replies are typed (keys and values as the registers hold them), so that
//! answering an ask allocates nothing in the node; the TCP
//! [`server`](crate::server) turns them into JSON for clients.

use crate::app::{self, Key, Value};
use crate::client::{Answer, ClientReply, Status};
use std::sync::mpsc::SyncSender;

/// A request to a node.
#[derive(Debug)]
pub enum Request {
    /// gen_paxos's ask: with a value, propose it; without, read.
    Ask {
        /// The key.
        key: Key,
        /// The value to propose, if any.
        value: Option<Value>,
        /// Where the reply goes.
        reply: ReplyTo,
    },
    /// The node's status.
    Status {
        /// Where the reply goes.
        reply: ReplyTo,
    },
    /// The value this node holds for `key`, without consensus (for
    /// checking that replicas agree).
    Local {
        /// The key.
        key: Key,
        /// Where the reply goes.
        reply: ReplyTo,
    },
}

/// A node's reply to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The value decided for `key` (`None`: nobody wrote it).
    Answer {
        /// The key.
        key: Key,
        /// Its value.
        value: Option<Value>,
    },
    /// The node's status.
    Status(Status),
    /// Why the ask of `key` failed.
    Failed {
        /// The key asked.
        key: Key,
        /// Why.
        error: &'static str,
    },
}

impl Reply {
    /// The reply as the client protocol carries it.
    pub fn to_client(&self) -> ClientReply {
        match self {
            Reply::Answer { key, value } => ClientReply::Answer(Answer {
                key: app::text(key),
                value: value.as_ref().map(app::text),
            }),
            Reply::Status(s) => ClientReply::Status(s.clone()),
            Reply::Failed { error, .. } => ClientReply::Error {
                error: error.to_string(),
            },
        }
    }
}

/// Where a node sends a reply. The node never waits for the asker: a
/// reply that does not fit in the channel at once is dropped, so give each
/// channel room for every request it has outstanding.
#[derive(Clone, Debug)]
pub enum ReplyTo {
    /// A std channel (`std::sync::mpsc::sync_channel`).
    Std(SyncSender<Reply>),
    /// A tokio channel (`tokio::sync::mpsc::channel`).
    #[cfg(feature = "tokio")]
    Tokio(tokio::sync::mpsc::Sender<Reply>),
}

impl ReplyTo {
    /// Sends `reply` without waiting; a full or closed channel drops it.
    pub fn send(&self, reply: Reply) {
        match self {
            ReplyTo::Std(tx) => {
                let _ = tx.try_send(reply);
            }
            #[cfg(feature = "tokio")]
            ReplyTo::Tokio(tx) => {
                let _ = tx.try_send(reply);
            }
        }
    }
}

impl From<SyncSender<Reply>> for ReplyTo {
    fn from(tx: SyncSender<Reply>) -> Self {
        ReplyTo::Std(tx)
    }
}

#[cfg(feature = "tokio")]
impl From<tokio::sync::mpsc::Sender<Reply>> for ReplyTo {
    fn from(tx: tokio::sync::mpsc::Sender<Reply>) -> Self {
        ReplyTo::Tokio(tx)
    }
}
