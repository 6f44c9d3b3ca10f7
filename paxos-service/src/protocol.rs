//! The binary client protocol of a `paxos node`: persistent connections,
//! many requests in flight on each, answered out of order by request id.
//!
//! A client opens a TCP connection to a node's client address and sends
//! [`MAGIC`]. From then on both sides send frames: a `u32` little-endian
//! length, then that many bytes of postcard — a [`Frame<Request>`] from
//! the client, a [`Frame<Reply>`] from the node, with the request's `id`.
//! A frame longer than [`MAX_FRAME`], or one that does not decode, gets a
//! [`Reply::Error`] with id 0 and the connection is closed.
//!
//! The same address also speaks the line protocol of [`crate::client`]
//! (JSON, one request per line) for scripts: the node tells them apart by
//! the first byte.

use crate::client::Status;
use crate::store::{Command, Output};
use paxos_std::runtime::{ProposeError, SessionTag, MAX_COMMAND};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a binary client sends first.
pub const MAGIC: [u8; 4] = *b"PXC1";
/// The largest frame either side sends, in bytes (its length prefix not
/// counted).
pub const MAX_FRAME: usize = 64 * 1024;
/// The longest key, in bytes.
pub const MAX_KEY: usize = 1024;
/// The longest value, in bytes. Until the runtime carries values of any
/// size, a command (a compare-and-set holds a key and two values) must fit
/// one slot of [`MAX_COMMAND`] bytes.
pub const MAX_VALUE: usize = 1024;

// A compare-and-set of the largest key and values, with postcard's
// lengths and tags, fits a command.
const _: () = assert!(MAX_KEY + 2 * MAX_VALUE + 16 <= MAX_COMMAND);

/// A request or a reply with its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame<T> {
    /// Chosen by the client; the reply carries it back.
    pub id: u64,
    /// The request or the reply.
    pub body: T,
}

/// What a client asks a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The node's status.
    Status,
    /// Opens a client session (for exactly-once writes).
    OpenSession,
    /// The map's value for `key`: linearizable through the log, or, with
    /// `lease`, read on the leader under its lease (refused elsewhere).
    Get {
        /// The key.
        key: Vec<u8>,
        /// Read under the leader's lease instead of through the log.
        lease: bool,
    },
    /// The register's value for `key` (gen_paxos's ask without a value),
    /// linearizable.
    Register {
        /// The key.
        key: Vec<u8>,
    },
    /// A write: applied once per session request when `session` is given.
    Write {
        /// What to do.
        command: Command,
        /// The client's session and request numbers.
        session: Option<SessionTag>,
    },
}

/// What a node answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The node's status.
    Status(Status),
    /// The session opened.
    Session {
        /// Its number.
        client: u64,
    },
    /// A read's value (`None`: absent).
    Value {
        /// The value.
        value: Option<Vec<u8>>,
    },
    /// A write's output.
    Output(Output),
    /// Why the request failed.
    Error(Error),
}

/// A request's failure, as the node reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// What kind of failure: whether to retry, and where.
    pub kind: ErrorKind,
    /// A message for people.
    pub message: String,
}

/// Kinds of [`Error`]: the first four may be retried as they are (a write
/// in a session is then still applied once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No outcome in time (no quorum, or an election): the write may
    /// still be applied later.
    Timeout,
    /// This node cannot serve it (a lease read off the leader).
    NotLeader,
    /// Too many requests in progress on this node.
    Busy,
    /// The node is stopping.
    Stopped,
    /// The request is malformed: a frame that does not decode, an empty
    /// command.
    BadRequest,
    /// A key or a command larger than the node accepts.
    TooLarge,
    /// The session is unknown or no longer keeps this request's output:
    /// its outcome is lost (it was not applied by this attempt).
    SessionExpired,
    /// Applied once by an earlier attempt whose output the node did not
    /// see.
    AppliedEarlier,
    /// The session's request number was used for another command: not
    /// applied.
    SessionConflict,
}

impl ErrorKind {
    /// Whether a client may retry the same request (elsewhere).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout | ErrorKind::NotLeader | ErrorKind::Busy | ErrorKind::Stopped
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
}

impl From<ProposeError> for Error {
    fn from(e: ProposeError) -> Self {
        let kind = match e {
            ProposeError::TooLarge { .. } => ErrorKind::TooLarge,
            ProposeError::Encode(_) => ErrorKind::BadRequest,
            ProposeError::NotLeader => ErrorKind::NotLeader,
            ProposeError::Busy => ErrorKind::Busy,
            ProposeError::SessionExpired => ErrorKind::SessionExpired,
            ProposeError::AppliedEarlier => ErrorKind::AppliedEarlier,
            ProposeError::SessionConflict => ErrorKind::SessionConflict,
            ProposeError::Stopped => ErrorKind::Stopped,
            // Timeout, and any kind added later: the outcome is unknown.
            _ => ErrorKind::Timeout,
        };
        Error::new(kind, e.to_string())
    }
}

/// A frame's bytes: the length prefix and the postcard body.
///
/// # Errors
///
/// [`ErrorKind::TooLarge`] when it is longer than [`MAX_FRAME`].
pub fn encode<T: Serialize>(frame: &Frame<T>) -> Result<Vec<u8>, Error> {
    let bytes = vec![0; 4];
    let bytes = postcard::to_extend(frame, bytes).map_err(|e| Error::new(ErrorKind::BadRequest, e.to_string()))?;
    let len = bytes.len() - 4;
    if len > MAX_FRAME {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("a frame of {len} bytes, more than {MAX_FRAME}"),
        ));
    }
    let mut bytes = bytes;
    bytes[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(bytes)
}

/// The length a frame's prefix announces, checked against [`MAX_FRAME`].
///
/// # Errors
///
/// [`ErrorKind::TooLarge`] for a longer frame.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, Error> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("a frame of {len} bytes, more than {MAX_FRAME}"),
        ));
    }
    Ok(len)
}

/// A frame's body decoded.
///
/// # Errors
///
/// [`ErrorKind::BadRequest`] when the bytes are not one (or have bytes
/// left over).
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Frame<T>, Error> {
    match postcard::take_from_bytes::<Frame<T>>(body) {
        Ok((frame, [])) => Ok(frame),
        Ok(_) => Err(Error::new(ErrorKind::BadRequest, "bytes after the frame")),
        Err(e) => Err(Error::new(
            ErrorKind::BadRequest,
            format!("a frame that does not decode: {e}"),
        )),
    }
}

/// Checks a key's length against [`MAX_KEY`].
///
/// # Errors
///
/// [`ErrorKind::TooLarge`].
pub fn check_key(key: &[u8]) -> Result<(), Error> {
    if key.len() > MAX_KEY {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("a key of {} bytes is longer than {MAX_KEY}", key.len()),
        ));
    }
    Ok(())
}

/// Checks a value's length against [`MAX_VALUE`].
///
/// # Errors
///
/// [`ErrorKind::TooLarge`].
pub fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("a value of {} bytes is longer than {MAX_VALUE}", value.len()),
        ));
    }
    Ok(())
}

/// Checks a command's key and values against [`MAX_KEY`] and
/// [`MAX_VALUE`].
///
/// # Errors
///
/// [`ErrorKind::TooLarge`].
pub fn check_command(command: &Command) -> Result<(), Error> {
    match command {
        Command::Ask { key, value } | Command::Put { key, value } => {
            check_key(key)?;
            check_value(value)
        }
        Command::Delete { key } => check_key(key),
        Command::Cas { key, expected, new } => {
            check_key(key)?;
            expected.iter().chain(new).try_for_each(|v| check_value(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip() {
        let requests = [
            Request::Status,
            Request::OpenSession,
            Request::Get {
                key: b"k".to_vec(),
                lease: true,
            },
            Request::Register { key: vec![] },
            Request::Write {
                command: Command::Cas {
                    key: b"k".to_vec(),
                    expected: None,
                    new: Some(vec![7; 100]),
                },
                session: Some(SessionTag {
                    client: 1,
                    seq: 2,
                    acked: 1,
                }),
            },
        ];
        for (id, body) in requests.into_iter().enumerate() {
            let frame = Frame { id: id as u64, body };
            let bytes = encode(&frame).unwrap();
            let len = frame_len(bytes[..4].try_into().unwrap()).unwrap();
            assert_eq!(len, bytes.len() - 4);
            assert_eq!(decode::<Request>(&bytes[4..]).unwrap(), frame);
        }
    }

    #[test]
    fn oversized_and_garbage_frames_are_typed_errors() {
        assert_eq!(
            frame_len((MAX_FRAME as u32 + 1).to_le_bytes()).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        let big = Frame {
            id: 1,
            body: Request::Register {
                key: vec![0; MAX_FRAME],
            },
        };
        assert_eq!(encode(&big).unwrap_err().kind, ErrorKind::TooLarge);
        assert_eq!(decode::<Request>(&[0xff; 9]).unwrap_err().kind, ErrorKind::BadRequest);
        let mut trailing = encode(&Frame {
            id: 1,
            body: Request::Status,
        })
        .unwrap();
        trailing.push(0);
        assert_eq!(
            decode::<Request>(&trailing[4..]).unwrap_err().kind,
            ErrorKind::BadRequest
        );
        assert_eq!(check_key(&[0; MAX_KEY + 1]).unwrap_err().kind, ErrorKind::TooLarge);
        assert!(check_key(&[0; MAX_KEY]).is_ok());
        let cas = |expected: usize, new: usize| Command::Cas {
            key: vec![0; MAX_KEY],
            expected: Some(vec![0; expected]),
            new: Some(vec![0; new]),
        };
        assert!(check_command(&cas(MAX_VALUE, MAX_VALUE)).is_ok());
        assert_eq!(
            check_command(&cas(MAX_VALUE + 1, 0)).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        assert_eq!(
            check_command(&cas(0, MAX_VALUE + 1)).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        // The largest command the checks allow fits the runtime's slot.
        let largest = postcard::to_allocvec(&cas(MAX_VALUE, MAX_VALUE)).unwrap();
        assert!(largest.len() <= MAX_COMMAND, "{}", largest.len());
    }

    proptest! {
        /// Whatever bytes arrive, decoding returns (never panics).
        #[test]
        fn decoding_any_bytes_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<Request>(&bytes);
            let _ = decode::<Reply>(&bytes);
        }
    }
}
