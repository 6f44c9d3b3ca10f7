//! The binary client protocol of a `paxos node`: persistent connections,
//! many requests in flight on each, answered out of order by request id.
//!
//! A client opens a TCP connection to a node's client address and sends
//! [`MAGIC`]. From then on both sides send frames: a `u32` little-endian
//! length, then that many bytes of postcard — a [`Frame<Request>`] from
//! the client, a [`Frame<Reply>`] from the node, with the request's `id`.
//! A frame longer than the node's [`SizeLimits::max_frame`], or one that
//! does not decode, gets a [`Reply::Error`] with id 0 and the connection
//! is closed.
//!
//! Keys and values are bytes of a configured maximum size
//! ([`SizeLimits`]: by default keys of up to [`DEFAULT_MAX_KEY`] and
//! values of up to [`DEFAULT_MAX_VALUE`] bytes); the frame limit and the
//! largest command the runtime must accept follow from those maxima.
//!
//! The same address also speaks the line protocol of [`crate::client`]
//! (JSON, one request per line) for scripts: the node tells them apart by
//! the first byte.

use crate::client::Status;
use crate::store::{Command, Output};
use paxos_std::runtime::{ProposeError, SessionTag};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a binary client sends first.
pub const MAGIC: [u8; 4] = *b"PXC1";
/// The longest key, in bytes, unless configured otherwise.
pub const DEFAULT_MAX_KEY: usize = 1024;
/// The longest value, in bytes, unless configured otherwise (1 MiB).
pub const DEFAULT_MAX_VALUE: usize = 1 << 20;
/// The largest maximum key length a node or a client may be configured
/// with (64 KiB).
pub const KEY_CEILING: usize = 64 << 10;
/// The largest maximum value length a node or a client may be configured
/// with (4 MiB): a compare-and-set carries a key and two values, and the
/// runtime takes commands of up to
/// [`MAX_COMMAND_LIMIT`](paxos_std::runtime::MAX_COMMAND_LIMIT).
pub const VALUE_CEILING: usize = 4 << 20;
/// The smallest frame limit, whatever the maxima: room for the frames that
/// carry no key or value (a status, an error and its message).
pub const MIN_FRAME: usize = 64 << 10;

/// What a compare-and-set's encoding adds to its key and two values: the
/// command's tag, the key's length, and each value's `Some` and length,
/// every length at its widest for keys and values up to the ceilings.
/// Measured with the real encoding by a test.
const CAS_OVERHEAD: usize = 14;
/// What a write's request frame adds to its command: the request id, the
/// request's tag and a session tag, each number at its widest. Measured
/// with the real encoding by a test; every reply adds less to its one
/// value.
const WRITE_FRAME_OVERHEAD: usize = 42;

// The largest command the ceilings allow is one the runtime takes.
const _: () = assert!(KEY_CEILING + 2 * VALUE_CEILING + CAS_OVERHEAD <= paxos_std::runtime::MAX_COMMAND_LIMIT);

/// [`ErrorKind::TooLarge`] naming the maximum when a `what` of `len` bytes
/// is longer than `max`.
fn check_len(what: &str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("a {what} of {len} bytes is longer than the maximum, {max} bytes"),
        ));
    }
    Ok(())
}

/// The largest key and value a node accepts or a client sends, and what
/// follows from them: the largest command and the largest frame. Always
/// within the ceilings ([`SizeLimits::new`] checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeLimits {
    max_key: usize,
    max_value: usize,
}

impl Default for SizeLimits {
    fn default() -> Self {
        SizeLimits::DEFAULT
    }
}

impl SizeLimits {
    /// Keys of up to [`DEFAULT_MAX_KEY`] bytes and values of up to
    /// [`DEFAULT_MAX_VALUE`].
    pub const DEFAULT: SizeLimits = SizeLimits {
        max_key: DEFAULT_MAX_KEY,
        max_value: DEFAULT_MAX_VALUE,
    };

    /// Keys of up to `max_key` bytes and values of up to `max_value`.
    ///
    /// # Errors
    ///
    /// [`SizeLimitError`]: a zero `max_key` (no key would fit; an empty
    /// value is a value, so `max_value` may be 0), or either above its
    /// ceiling ([`KEY_CEILING`], [`VALUE_CEILING`]).
    pub fn new(max_key: usize, max_value: usize) -> Result<SizeLimits, SizeLimitError> {
        if max_key == 0 {
            return Err(SizeLimitError::ZeroKey);
        }
        if max_key > KEY_CEILING {
            return Err(SizeLimitError::KeyAboveCeiling { max_key });
        }
        if max_value > VALUE_CEILING {
            return Err(SizeLimitError::ValueAboveCeiling { max_value });
        }
        Ok(SizeLimits { max_key, max_value })
    }

    /// The longest key, in bytes.
    pub const fn max_key(self) -> usize {
        self.max_key
    }

    /// The longest value, in bytes.
    pub const fn max_value(self) -> usize {
        self.max_value
    }

    /// The longest encoded command: a compare-and-set of the longest key
    /// and two of the longest values. What the runtime must accept
    /// ([`NodeOptions::max_command`](paxos_std::options::NodeOptions::max_command())).
    pub const fn max_command(self) -> usize {
        self.max_key + 2 * self.max_value + CAS_OVERHEAD
    }

    /// The longest frame either side sends or reads (its length prefix
    /// not counted): a write of [`SizeLimits::max_command`] in a session,
    /// and at least [`MIN_FRAME`].
    pub const fn max_frame(self) -> usize {
        let write = self.max_command() + WRITE_FRAME_OVERHEAD;
        if write > MIN_FRAME {
            write
        } else {
            MIN_FRAME
        }
    }

    /// Checks a key's length.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooLarge`], naming the maximum.
    pub fn check_key(self, key: &[u8]) -> Result<(), Error> {
        check_len("key", key.len(), self.max_key)
    }

    /// Checks a value's length.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooLarge`], naming the maximum.
    pub fn check_value(self, value: &[u8]) -> Result<(), Error> {
        check_len("value", value.len(), self.max_value)
    }

    /// Checks a command's key and values.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooLarge`], naming the maximum.
    pub fn check_command(self, command: &Command) -> Result<(), Error> {
        match command {
            Command::Ask { key, value } | Command::Put { key, value } => {
                self.check_key(key)?;
                self.check_value(value)
            }
            Command::Delete { key } => self.check_key(key),
            Command::Cas { key, expected, new } => {
                self.check_key(key)?;
                expected.iter().chain(new).try_for_each(|v| self.check_value(v))
            }
        }
    }
}

/// Why [`SizeLimits::new`] refused a maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SizeLimitError {
    /// The longest key would be 0 bytes: no key would fit.
    ZeroKey,
    /// The longest key is above [`KEY_CEILING`].
    KeyAboveCeiling {
        /// The maximum asked for.
        max_key: usize,
    },
    /// The longest value is above [`VALUE_CEILING`].
    ValueAboveCeiling {
        /// The maximum asked for.
        max_value: usize,
    },
}

impl fmt::Display for SizeLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeLimitError::ZeroKey => f.write_str("a maximum key length of 0 bytes: a key needs at least 1 byte"),
            SizeLimitError::KeyAboveCeiling { max_key } => write!(
                f,
                "a maximum key length of {max_key} bytes is more than the ceiling, {KEY_CEILING} bytes (64 KiB)"
            ),
            SizeLimitError::ValueAboveCeiling { max_value } => write!(
                f,
                "a maximum value length of {max_value} bytes is more than the ceiling, {VALUE_CEILING} bytes (4 MiB)"
            ),
        }
    }
}

impl std::error::Error for SizeLimitError {}

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
/// [`ErrorKind::TooLarge`] when it is longer than `max_frame` (a side's
/// [`SizeLimits::max_frame`]).
pub fn encode<T: Serialize>(frame: &Frame<T>, max_frame: usize) -> Result<Vec<u8>, Error> {
    let bytes = vec![0; 4];
    let bytes = postcard::to_extend(frame, bytes).map_err(|e| Error::new(ErrorKind::BadRequest, e.to_string()))?;
    let len = bytes.len() - 4;
    check_frame_len(len, max_frame)?;
    let mut bytes = bytes;
    // Checked: at most u32::MAX.
    bytes[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(bytes)
}

/// The length a frame's prefix announces, checked against `max_frame` (a
/// side's [`SizeLimits::max_frame`]).
///
/// # Errors
///
/// [`ErrorKind::TooLarge`] for a longer frame.
pub fn frame_len(prefix: [u8; 4], max_frame: usize) -> Result<usize, Error> {
    let len = u32::from_le_bytes(prefix) as usize;
    check_frame_len(len, max_frame)?;
    Ok(len)
}

/// Checks a frame's length against `max_frame`, and against what its
/// `u32` prefix can say.
fn check_frame_len(len: usize, max_frame: usize) -> Result<(), Error> {
    let max_frame = max_frame.min(u32::MAX as usize);
    if len > max_frame {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("a frame of {len} bytes, more than {max_frame}"),
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WIDEST_TAG: SessionTag = SessionTag {
        client: u64::MAX,
        seq: u64::MAX,
        acked: u64::MAX,
    };

    /// A compare-and-set of the longest key and values `limits` allow.
    fn largest_cas(limits: SizeLimits) -> Command {
        Command::Cas {
            key: vec![0xff; limits.max_key()],
            expected: Some(vec![0xff; limits.max_value()]),
            new: Some(vec![0xff; limits.max_value()]),
        }
    }

    /// Every request at its largest for `limits`, with the widest id.
    fn largest_requests(limits: SizeLimits) -> Vec<Frame<Request>> {
        let key = vec![0xff; limits.max_key()];
        let value = vec![0xff; limits.max_value()];
        let writes = [
            largest_cas(limits),
            Command::Ask {
                key: key.clone(),
                value: value.clone(),
            },
            Command::Put {
                key: key.clone(),
                value,
            },
            Command::Delete { key: key.clone() },
        ];
        writes
            .into_iter()
            .map(|command| Request::Write {
                command,
                session: Some(WIDEST_TAG),
            })
            .chain([
                Request::Get {
                    key: key.clone(),
                    lease: true,
                },
                Request::Register { key },
            ])
            .map(|body| Frame { id: u64::MAX, body })
            .collect()
    }

    /// Every reply carrying the longest value `limits` allow.
    fn largest_replies(limits: SizeLimits) -> Vec<Frame<Reply>> {
        let value = vec![0xff; limits.max_value()];
        [
            Reply::Value {
                value: Some(value.clone()),
            },
            Reply::Output(Output::Asked {
                value: value.clone(),
                won: true,
            }),
            Reply::Output(Output::Put {
                previous: Some(value.clone()),
            }),
            Reply::Output(Output::Deleted {
                previous: Some(value.clone()),
            }),
            Reply::Output(Output::Cas {
                ok: true,
                current: Some(value),
            }),
        ]
        .into_iter()
        .map(|body| Frame { id: u64::MAX, body })
        .collect()
    }

    fn encoded_len<T: Serialize>(value: &T) -> usize {
        postcard::to_allocvec(value).unwrap().len()
    }

    #[test]
    fn frames_round_trip() {
        let max = SizeLimits::DEFAULT.max_frame();
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
            let bytes = encode(&frame, max).unwrap();
            let len = frame_len(bytes[..4].try_into().unwrap(), max).unwrap();
            assert_eq!(len, bytes.len() - 4);
            assert_eq!(decode::<Request>(&bytes[4..]).unwrap(), frame);
        }
    }

    #[test]
    fn oversized_and_garbage_frames_are_typed_errors() {
        let max = SizeLimits::DEFAULT.max_frame();
        assert_eq!(
            frame_len((max as u32 + 1).to_le_bytes(), max).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        assert_eq!(frame_len((max as u32).to_le_bytes(), max), Ok(max));
        // A limit past what the prefix can say is the prefix's.
        assert_eq!(frame_len(u32::MAX.to_le_bytes(), usize::MAX), Ok(u32::MAX as usize));
        let big = Frame {
            id: 1,
            body: Request::Register { key: vec![0; max] },
        };
        let refused = encode(&big, max).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::TooLarge);
        assert!(refused.message.contains(&max.to_string()), "{refused}");
        assert_eq!(decode::<Request>(&[0xff; 9]).unwrap_err().kind, ErrorKind::BadRequest);
        let mut trailing = encode(
            &Frame {
                id: 1,
                body: Request::Status,
            },
            max,
        )
        .unwrap();
        trailing.push(0);
        assert_eq!(
            decode::<Request>(&trailing[4..]).unwrap_err().kind,
            ErrorKind::BadRequest
        );
    }

    #[test]
    fn checks_refuse_what_is_longer_than_the_configured_maximum_and_name_it() {
        let limits = SizeLimits::new(8, 3000).unwrap();
        assert!(limits.check_key(&[0; 8]).is_ok());
        let refused = limits.check_key(&[0; 9]).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::TooLarge);
        assert_eq!(refused.message, "a key of 9 bytes is longer than the maximum, 8 bytes");
        assert!(limits.check_value(&[0; 3000]).is_ok());
        let refused = limits.check_value(&[0; 3001]).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::TooLarge);
        assert!(refused.message.contains("maximum, 3000 bytes"), "{refused}");
        let cas = |expected: usize, new: usize| Command::Cas {
            key: vec![0; 8],
            expected: Some(vec![0; expected]),
            new: Some(vec![0; new]),
        };
        assert!(limits.check_command(&cas(3000, 3000)).is_ok());
        for command in [
            cas(3001, 0),
            cas(0, 3001),
            Command::Put {
                key: vec![0; 9],
                value: vec![],
            },
            Command::Ask {
                key: vec![0; 1],
                value: vec![0; 3001],
            },
            Command::Delete { key: vec![0; 9] },
        ] {
            assert_eq!(limits.check_command(&command).unwrap_err().kind, ErrorKind::TooLarge);
        }
        // The defaults: 1 KiB keys, 1 MiB values.
        assert!(SizeLimits::DEFAULT.check_value(&vec![0; 1 << 20]).is_ok());
        assert!(SizeLimits::DEFAULT.check_value(&vec![0; (1 << 20) + 1]).is_err());
        assert!(SizeLimits::DEFAULT.check_key(&[0; 1025]).is_err());
    }

    #[test]
    fn limits_are_checked_against_their_floor_and_ceilings() {
        assert_eq!(SizeLimits::new(0, 10), Err(SizeLimitError::ZeroKey));
        assert_eq!(
            SizeLimits::new(KEY_CEILING + 1, 10),
            Err(SizeLimitError::KeyAboveCeiling {
                max_key: KEY_CEILING + 1
            })
        );
        let refused = SizeLimits::new(1, VALUE_CEILING + 1).unwrap_err();
        assert_eq!(
            refused,
            SizeLimitError::ValueAboveCeiling {
                max_value: VALUE_CEILING + 1
            }
        );
        let message = refused.to_string();
        assert!(message.contains("4194305") && message.contains("4194304"), "{message}");
        // The extremes allowed: a one-byte key, an empty value, the ceilings.
        let least = SizeLimits::new(1, 0).unwrap();
        assert_eq!((least.max_key(), least.max_value()), (1, 0));
        assert!(SizeLimits::new(KEY_CEILING, VALUE_CEILING).is_ok());
        assert_eq!(
            SizeLimits::new(DEFAULT_MAX_KEY, DEFAULT_MAX_VALUE),
            Ok(SizeLimits::DEFAULT)
        );
        assert_eq!(SizeLimits::default(), SizeLimits::DEFAULT);
    }

    /// The overheads are the real encoding's, at the widest lengths the
    /// ceilings allow: keys from 2^14 bytes and values from 2^21 bytes have
    /// the varint lengths (3 and 4 bytes) of the ceilings themselves.
    #[test]
    fn the_command_and_frame_overheads_are_the_encodings() {
        let varint = |n: usize| encoded_len(&n);
        assert_eq!(varint(1 << 14), varint(KEY_CEILING));
        assert_eq!(varint(1 << 21), varint(VALUE_CEILING));
        let widest = SizeLimits::new(1 << 14, 1 << 21).unwrap();
        assert_eq!(encoded_len(&largest_cas(widest)), widest.max_command());
        let write = &largest_requests(widest)[0];
        assert_eq!(encoded_len(write), widest.max_command() + WRITE_FRAME_OVERHEAD);
        assert_eq!(widest.max_frame(), widest.max_command() + WRITE_FRAME_OVERHEAD);
        // At the ceilings, the frame's length still fits its prefix.
        let ceilings = SizeLimits::new(KEY_CEILING, VALUE_CEILING).unwrap();
        assert!(ceilings.max_frame() < u32::MAX as usize / 16);
    }

    /// For any maxima, every request and every reply at its largest fits
    /// the frame limit, and every command the runtime's budget.
    #[test]
    fn the_largest_requests_and_replies_fit_the_frame_limit() {
        let limits = [
            SizeLimits::new(1, 0).unwrap(),
            SizeLimits::new(100, 3000).unwrap(),
            SizeLimits::DEFAULT,
            SizeLimits::new(KEY_CEILING, 1 << 14).unwrap(),
        ];
        for limits in limits {
            let max = limits.max_frame();
            assert!(max >= MIN_FRAME);
            assert!(encoded_len(&largest_cas(limits)) <= limits.max_command(), "{limits:?}");
            for frame in largest_requests(limits) {
                let bytes = encode(&frame, max).unwrap_or_else(|e| panic!("{limits:?}: {e}"));
                if let Request::Write { command, .. } = &frame.body {
                    assert!(limits.check_command(command).is_ok());
                    assert!(encoded_len(command) <= limits.max_command());
                }
                assert_eq!(decode::<Request>(&bytes[4..]).unwrap(), frame);
            }
            for frame in largest_replies(limits) {
                encode(&frame, max).unwrap_or_else(|e| panic!("{limits:?}: {e}"));
            }
        }
        // The defaults' limit: two 1 MiB values, a key and the envelope.
        assert_eq!(
            SizeLimits::DEFAULT.max_frame(),
            (2 << 20) + 1024 + CAS_OVERHEAD + WRITE_FRAME_OVERHEAD
        );
    }

    /// Replies without a key or value fit [`MIN_FRAME`]: a status of the
    /// largest cluster with every number at its widest.
    #[test]
    fn a_status_fits_the_smallest_frame_limit() {
        let status = Status {
            id: u8::MAX,
            leader: Some(u8::MAX),
            ballot: Some((u32::MAX, u8::MAX)),
            decided: Some(u64::MAX),
            applied: Some(u64::MAX),
            dropped: (0..32).map(|i| (format!("some_drop_reason_{i}"), u64::MAX)).collect(),
            syncs: u64::MAX,
            commits: u64::MAX,
            peers: (0..crate::config::MAX_NODES as u8)
                .map(|id| crate::client::PeerContact {
                    id,
                    last_heard_ms: Some(u64::MAX),
                })
                .collect(),
            ..Status::default()
        };
        let frame = Frame {
            id: u64::MAX,
            body: Reply::Status(status),
        };
        let bytes = encode(&frame, MIN_FRAME).unwrap();
        assert!(bytes.len() < MIN_FRAME / 16, "{}", bytes.len());
        assert_eq!(decode::<Reply>(&bytes[4..]).unwrap(), frame);
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
