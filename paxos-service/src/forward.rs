//! What nodes say to each other besides Paxos: asks forwarded to the
//! leader, and their answers. Every datagram payload starts with a
//! channel byte so both share one authenticated socket.

use crate::app::{Key, Value};
use serde::{Deserialize, Serialize};

/// Channel byte: a consensus frame for the replica.
pub const CONSENSUS: u8 = 0;
/// Channel byte: a [`Forward`].
pub const FORWARD: u8 = 1;

/// A message between the adapters of two nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Forward {
    /// "Ask this for my client": from a node that does not lead.
    Ask {
        /// The forwarding node's request id.
        request: u64,
        /// The key.
        key: Key,
        /// The value to propose, if any.
        value: Option<Value>,
    },
    /// The answer to an `Ask`.
    Answer {
        /// The request id it answers.
        request: u64,
        /// The key.
        key: Key,
        /// Its value, `None` if unwritten.
        value: Option<Value>,
    },
    /// The node asked cannot answer (it does not lead any more).
    Refused {
        /// The request id it answers.
        request: u64,
    },
    /// One piece of a [`crate::app::Snapshot`] for a node behind the
    /// retained log.
    SnapshotChunk {
        /// Identifies the snapshot the piece belongs to.
        id: u64,
        /// Which piece.
        index: u32,
        /// How many pieces.
        count: u32,
        /// The bytes.
        data: Vec<u8>,
    },
}

/// The largest snapshot piece per datagram.
pub const CHUNK: usize = 60_000;

/// Encodes a forward message behind its channel byte.
pub fn encode(message: &Forward, buf: &mut [u8]) -> Option<usize> {
    let (channel, body) = buf.split_first_mut()?;
    *channel = FORWARD;
    postcard::to_slice(message, body).ok().map(|b| b.len() + 1)
}

/// Decodes a forward message (without its channel byte).
pub fn decode(body: &[u8]) -> Option<Forward> {
    postcard::from_bytes(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_snapshot_piece_fits_one_datagram_and_round_trips() {
        let piece = Forward::SnapshotChunk {
            id: 7,
            index: 0,
            count: 1,
            data: vec![0xAB; CHUNK],
        };
        let mut buf = vec![0u8; paxos_std::transport::MAX_FRAME_LEN];
        let len = encode(&piece, &mut buf).expect("fits");
        assert!(len <= paxos_std::transport::MAX_FRAME_LEN);
        assert_eq!(buf[0], FORWARD);
        assert_eq!(decode(&buf[1..len]), Some(piece));
    }
}
