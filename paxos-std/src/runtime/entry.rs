//! What the runtime puts in the log: an application command, a read
//! barrier, or a client session's opening or command, tagged with who
//! asked (node, incarnation, request id) so that the asking node
//! recognises its own entry when it applies it. The tables that make a
//! retried entry apply once live in [`super::sessions`].

use serde::{Deserialize, Serialize};

/// Who asked for an entry: a node, in one run of its process, and the
/// request's number in that run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The node that took the request.
    pub node: u8,
    /// Distinguishes runs of that node's process (its start time in
    /// microseconds): request numbers start again at 0 in each.
    pub incarnation: u64,
    /// The request's number in that run.
    pub id: u64,
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<'a> {
    /// Who asked.
    pub origin: Origin,
    /// Every request of the origin's run numbered below this was finished
    /// at its node when the entry was made (answered or given up): the
    /// session table may forget them, and never applies them after.
    pub done_below: u64,
    /// What to do.
    #[serde(borrow)]
    pub body: Body<'a>,
}

/// What an entry does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body<'a> {
    /// An application command, encoded by postcard.
    Command(&'a [u8]),
    /// A read barrier: applies nothing; the asking node answers its read
    /// once everything decided before it is applied (a linearizable read).
    Read,
    /// Opens a client session: its number is derived, when the entry is
    /// applied, from the opening node's secret `nonce`, the same on every
    /// node and not guessable by other clients.
    OpenSession {
        /// Drawn at random by the node that took the request.
        nonce: u64,
    },
    /// A command of a client session: applied once per (client, seq),
    /// however often the client retries it and through whichever node;
    /// a retry gets the first application's output.
    Session {
        /// The client's session and request numbers.
        tag: SessionTag,
        /// The application command, encoded by postcard.
        command: &'a [u8],
    },
}

/// A client's request within its session (as Raft's client sessions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionTag {
    /// The session, as [`Runtime::open_session`](super::Runtime::open_session) opened it.
    pub client: u64,
    /// The request's number in the session. A retry keeps its number.
    pub seq: u64,
    /// The client holds the outcome of every request numbered below this:
    /// their cached outputs may be dropped.
    pub acked: u64,
}

impl Entry<'_> {
    /// The entry's bytes, as the replica stores them.
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }
}

impl<'a> Entry<'a> {
    /// The entry in `bytes`, if they hold one.
    pub fn decode(bytes: &'a [u8]) -> Option<Entry<'a>> {
        postcard::from_bytes(bytes).ok()
    }
}

/// Appends `entry` to `pack`, the value of one log slot: entries one
/// after the other, each behind its length (a postcard varint).
pub fn pack_push(pack: &mut Vec<u8>, entry: &[u8]) {
    let mut len = entry.len();
    while len >= 0x80 {
        pack.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    pack.push(len as u8);
    pack.extend_from_slice(entry);
}

/// How many bytes [`pack_push`] adds for an entry of `len` bytes: a pack
/// is postcard byte strings end to end.
pub fn packed_len(len: usize) -> usize {
    paxos_core::codec::byte_string_len(len)
}

/// The entries of one slot's value, in order. Stops at the first entry
/// that is cut short or whose length does not decode: every node reads
/// the same bytes the same way, so all skip the same tail.
pub fn unpack(mut value: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let (&byte, rest) = value.split_first()?;
            value = rest;
            len |= usize::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return None;
            }
        }
        let (entry, rest) = (value.get(..len)?, value.get(len..)?);
        value = rest;
        Some(entry)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(node: u8, incarnation: u64, id: u64) -> Origin {
        Origin { node, incarnation, id }
    }

    #[test]
    fn entries_round_trip() {
        for body in [
            Body::Command(b"put x 1"),
            Body::Command(b""),
            Body::Read,
            Body::OpenSession { nonce: 77 },
            Body::Session {
                tag: SessionTag {
                    client: 3,
                    seq: 9,
                    acked: 4,
                },
                command: b"x",
            },
        ] {
            let entry = Entry {
                origin: origin(2, 99, 7),
                done_below: 5,
                body,
            };
            let bytes = entry.encode().unwrap();
            assert_eq!(Entry::decode(&bytes), Some(entry));
        }
        assert_eq!(Entry::decode(&[0xff; 3]), None);
    }

    #[test]
    fn packs_hold_entries_in_order_and_a_cut_tail_is_skipped() {
        let entries: Vec<Vec<u8>> = vec![vec![], vec![7; 3], vec![9; 300]];
        let mut pack = Vec::new();
        for e in &entries {
            let before = pack.len();
            pack_push(&mut pack, e);
            assert_eq!(pack.len() - before, packed_len(e.len()));
        }
        let back: Vec<&[u8]> = unpack(&pack).collect();
        assert_eq!(back, entries.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let cut = &pack[..pack.len() - 1];
        assert_eq!(unpack(cut).count(), 2, "the cut entry and nothing after it");
        assert_eq!(unpack(&[0xff; 8]).count(), 0, "a length that does not end");
    }
}
