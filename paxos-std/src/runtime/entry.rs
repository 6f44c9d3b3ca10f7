//! What the runtime puts in the log: an application command or a read
//! barrier, tagged with who asked (node, incarnation, request id) so that
//! the asking node recognises its own entry when it applies it, and so
//! that a retried entry is applied once ([`Sessions`]).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

/// How many bytes [`pack_push`] adds for an entry of `len` bytes.
pub fn packed_len(len: usize) -> usize {
    let mut prefix = 1;
    let mut rest = len >> 7;
    while rest != 0 {
        prefix += 1;
        rest >>= 7;
    }
    prefix + len
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

/// Request numbers remembered per session; above it the lowest are
/// forgotten (and refused as duplicates from then on).
pub const SESSION_WINDOW: usize = 4096;
/// Sessions kept; the one applied to least recently is dropped first.
pub const MAX_SESSIONS: usize = 256;

/// One session's applied requests: everything below `floor`, and `seen`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    floor: u64,
    seen: BTreeSet<u64>,
    /// The slot of the last entry applied for it (for eviction).
    last_slot: u64,
}

/// The replicated table of applied requests, so that an entry decided
/// twice (retried after a leader change, forwarded twice) is applied once.
/// Part of the replicated state: every node updates it alike, and it
/// travels in snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    sessions: BTreeMap<(u8, u64), Session>,
}

impl Sessions {
    /// Records `origin` as applied at `slot`; false if it was already
    /// (then the entry must not be applied again).
    pub fn first_time(&mut self, origin: Origin, slot: u64) -> bool {
        let key = (origin.node, origin.incarnation);
        if !self.sessions.contains_key(&key) && self.sessions.len() >= MAX_SESSIONS {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(k, s)| (s.last_slot, **k))
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.sessions.remove(&oldest);
            }
        }
        let session = self.sessions.entry(key).or_default();
        if origin.id < session.floor || !session.seen.insert(origin.id) {
            return false;
        }
        session.last_slot = slot;
        while session.seen.len() > SESSION_WINDOW {
            if let Some(lowest) = session.seen.pop_first() {
                session.floor = lowest + 1;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(node: u8, incarnation: u64, id: u64) -> Origin {
        Origin { node, incarnation, id }
    }

    #[test]
    fn entries_round_trip() {
        for body in [Body::Command(b"put x 1"), Body::Command(b""), Body::Read] {
            let entry = Entry {
                origin: origin(2, 99, 7),
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

    #[test]
    fn a_request_is_applied_once_in_any_order() {
        let mut s = Sessions::default();
        assert!(s.first_time(origin(1, 5, 2), 0));
        assert!(s.first_time(origin(1, 5, 0), 1), "out of order is fine");
        assert!(!s.first_time(origin(1, 5, 2), 2), "a retry is refused");
        assert!(
            s.first_time(origin(1, 6, 2), 3),
            "another run of the node is another session"
        );
        assert!(s.first_time(origin(2, 5, 2), 4), "another node is another session");
    }

    #[test]
    fn the_window_and_the_session_count_stay_bounded() {
        let mut s = Sessions::default();
        for id in 0..(SESSION_WINDOW as u64 + 10) {
            assert!(s.first_time(origin(1, 1, id), id));
        }
        let session = &s.sessions[&(1, 1)];
        assert_eq!(session.seen.len(), SESSION_WINDOW);
        assert_eq!(session.floor, 10);
        assert!(!s.first_time(origin(1, 1, 3), 0), "forgotten numbers count as applied");
        for incarnation in 0..(MAX_SESSIONS as u64 + 5) {
            s.first_time(origin(3, incarnation, 0), 10_000 + incarnation);
        }
        assert_eq!(s.sessions.len(), MAX_SESSIONS);
        assert!(
            !s.sessions.contains_key(&(1, 1)),
            "the least recently applied session went first"
        );
    }
}
