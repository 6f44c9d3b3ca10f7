//! The transport's error and drop-reason types.

use core::fmt;
use std::io;

use paxos_core::NodeId;

/// Why a key could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be opened or read.
    Io(io::ErrorKind),
    /// The contents are neither exactly 32 raw bytes nor 64 hex digits with
    /// at most one line ending. `len` is the number of bytes read, which
    /// stops a few bytes past the longest valid file.
    WrongLength {
        /// Bytes read.
        len: usize,
    },
    /// 64 characters, but the one at `offset` is not a hex digit.
    InvalidHex {
        /// The byte offset of the first bad character.
        offset: usize,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Io(kind) => write!(f, "cannot read the cluster key file: {kind}"),
            KeyError::WrongLength { len } => write!(
                f,
                "a cluster key file must hold 64 hex digits (and at most one line ending) or exactly 32 raw bytes, \
                 not {len} bytes"
            ),
            KeyError::InvalidHex { offset } => {
                write!(
                    f,
                    "the cluster key file has a character that is not a hex digit at byte {offset}"
                )
            }
        }
    }
}

impl core::error::Error for KeyError {}

/// Why [`seal`](super::seal) could not seal a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The frame is longer than [`MAX_FRAME_LEN`](super::MAX_FRAME_LEN).
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The largest frame that fits one datagram.
        max: usize,
    },
    /// The output buffer is shorter than the datagram.
    BufferTooSmall {
        /// The datagram's length: the frame plus [`OVERHEAD`](super::OVERHEAD).
        required: usize,
    },
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the largest datagram's {max}")
            }
            SealError::BufferTooSmall { required } => write!(f, "output buffer too small: {required} bytes required"),
        }
    }
}

impl core::error::Error for SealError {}

/// Why a [`Link`](super::Link) did not send a frame:
/// [`UdpTransport::send`](super::UdpTransport::send) or
/// [`TcpTransport::send`](super::tcp::TcpTransport::send).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The node is not in the peer table (this node itself never is).
    UnknownPeer(NodeId),
    /// The frame is longer than the transport's largest:
    /// [`MAX_FRAME_LEN`](super::MAX_FRAME_LEN) for datagrams,
    /// [`TcpTransport::max_frame_len`](super::tcp::TcpTransport::max_frame_len)
    /// for streams.
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The largest frame the transport carries.
        max: usize,
    },
    /// The socket refused the datagram, or the stream transport is shut
    /// down.
    Io(io::ErrorKind),
    /// The peer's outbound queue is full: the frame was dropped (and
    /// counted), as a datagram may be lost.
    QueueFull(NodeId),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::UnknownPeer(node) => write!(f, "node {node} is not a peer"),
            SendError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the transport's largest, {max}")
            }
            SendError::Io(kind) => write!(f, "send failed: {kind}"),
            SendError::QueueFull(node) => write!(f, "the queue to node {node} is full: frame dropped"),
        }
    }
}

impl core::error::Error for SendError {}

/// Why a peer table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerError {
    /// One node is listed with two different addresses.
    DuplicateNode(NodeId),
    /// Two nodes share one address, so a datagram's source could not name
    /// its sender.
    SharedAddress(NodeId, NodeId),
    /// A peer's address has an unspecified IP (`0.0.0.0`, `::`) or port 0:
    /// nothing can be sent to it and no datagram comes from it.
    Unspecified(NodeId),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::DuplicateNode(node) => write!(f, "node {node} is listed with two different addresses"),
            PeerError::SharedAddress(a, b) => write!(f, "nodes {a} and {b} share one address"),
            PeerError::Unspecified(node) => {
                write!(
                    f,
                    "node {node} has an unspecified address (IP 0.0.0.0 or ::, or port 0)"
                )
            }
        }
    }
}

impl core::error::Error for PeerError {}

impl From<PeerError> for io::Error {
    fn from(e: PeerError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// Why a received datagram was dropped; each has a counter in
/// [`DropCounters`](super::DropCounters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// From an address not in the peer table, or claiming a sender other
    /// than the one at its source address.
    UnknownPeer,
    /// The tag does not match: forged, corrupted, truncated, or sealed under
    /// another key.
    BadTag,
    /// Too short to hold the header and a tag.
    Malformed,
    /// The first byte is not this build's [`VERSION`](super::VERSION).
    WrongVersion,
    /// Longer than [`MAX_DATAGRAM_LEN`](super::MAX_DATAGRAM_LEN), or longer
    /// than the receive buffer.
    Oversized,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::UnknownPeer => "unknown peer",
            DropReason::BadTag => "bad tag",
            DropReason::Malformed => "malformed",
            DropReason::WrongVersion => "wrong version",
            DropReason::Oversized => "oversized",
        })
    }
}

impl core::error::Error for DropReason {}
