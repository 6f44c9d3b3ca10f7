//! Application snapshots sent to a node behind, in pieces: [`Sends`]
//! (at most one snapshot per peer per interval, each cut by [`split`]
//! under an id from [`Sends::allow`]) and [`Pieces`] (reassembled on the
//! other side). Shared by every driver that sends them (the runtime, the
//! `paxos` program's engine).

use paxos_core::{Duration, Instant, NodeId};
use std::collections::HashMap;

/// When each peer was last sent a snapshot: a node behind asks again and
/// again until it has one, and each costs the whole state.
#[derive(Debug)]
pub struct Sends {
    last: HashMap<NodeId, Instant>,
    every: Duration,
}

impl Sends {
    /// At most one snapshot per peer per `every`.
    pub fn new(every: Duration) -> Self {
        Sends {
            last: HashMap::new(),
            every,
        }
    }

    /// Whether `me` may send `peer` a snapshot at `now`; if so, the id to
    /// send it under (the pieces of one send share it), and the send is
    /// recorded.
    pub fn allow(&mut self, me: NodeId, peer: NodeId, now: Instant) -> Option<u64> {
        if self.last.get(&peer).is_some_and(|at| now < *at + self.every) {
            return None;
        }
        self.last.insert(peer, now);
        Some(now.as_micros() ^ (u64::from(me.0) << 56))
    }
}

/// `bytes` in pieces of at most `chunk` bytes, each with its index and the
/// count: an empty snapshot is one empty piece, so the other side still
/// learns it.
pub fn split(bytes: &[u8], chunk: usize) -> impl Iterator<Item = (u32, u32, &[u8])> {
    let count = u32::try_from(bytes.len().div_ceil(chunk.max(1)).max(1)).unwrap_or(u32::MAX);
    let pieces = bytes.chunks(chunk.max(1)).chain(bytes.is_empty().then_some(&[][..]));
    (0u32..).zip(pieces).map(move |(index, piece)| (index, count, piece))
}

/// The pieces of the snapshot being received. One snapshot at a time: a
/// piece of another (a newer send) starts over.
#[derive(Debug, Default)]
pub struct Pieces {
    current: Option<(u64, Vec<Option<Vec<u8>>>)>,
}

impl Pieces {
    /// Nothing received yet.
    pub fn new() -> Self {
        Pieces::default()
    }

    /// Takes piece `index` of `count` of snapshot `id`; returns the whole
    /// snapshot once every piece is in. A piece that names an impossible
    /// position (`count` 0 or above `max_count`, `index` past `count`) is
    /// ignored, so a hostile or broken sender cannot make this allocate
    /// more than `max_count` slots.
    pub fn offer(&mut self, id: u64, index: u32, count: u32, data: Vec<u8>, max_count: u32) -> Option<Vec<u8>> {
        if count == 0 || count > max_count || index >= count {
            return None;
        }
        let pieces = match &mut self.current {
            Some((current, pieces)) if *current == id && pieces.len() == count as usize => pieces,
            _ => &mut self.current.insert((id, vec![None; count as usize])).1,
        };
        *pieces.get_mut(index as usize)? = Some(data);
        if pieces.iter().any(Option::is_none) {
            return None;
        }
        let whole = pieces.iter().flatten().flatten().copied().collect();
        self.current = None;
        Some(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_pieces_put_back_together_make_the_snapshot() {
        for len in [0usize, 1, 4, 5, 12] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let pieces: Vec<_> = split(&bytes, 4).collect();
            assert_eq!(pieces.len(), len.div_ceil(4).max(1), "{len} bytes");
            let mut p = Pieces::new();
            let mut whole = None;
            for (index, count, piece) in pieces.into_iter().rev() {
                whole = p.offer(9, index, count, piece.to_vec(), 10);
            }
            assert_eq!(whole, Some(bytes));
        }
    }

    #[test]
    fn a_peer_gets_at_most_one_snapshot_per_interval() {
        let mut sends = Sends::new(Duration::from_millis(500));
        let at = |ms| Instant::ZERO + Duration::from_millis(ms);
        let first = sends.allow(NodeId(1), NodeId(2), at(1_000));
        assert!(first.is_some());
        assert_eq!(sends.allow(NodeId(1), NodeId(2), at(1_499)), None);
        assert!(sends.allow(NodeId(1), NodeId(3), at(1_499)).is_some(), "another peer");
        let again = sends.allow(NodeId(1), NodeId(2), at(1_500));
        assert!(again.is_some() && again != first, "a new send, a new id");
    }

    #[test]
    fn pieces_in_any_order_make_the_whole_once() {
        let mut p = Pieces::new();
        assert_eq!(p.offer(7, 1, 3, b"cd".to_vec(), 10), None);
        assert_eq!(p.offer(7, 0, 3, b"ab".to_vec(), 10), None);
        assert_eq!(p.offer(7, 2, 3, b"e".to_vec(), 10), Some(b"abcde".to_vec()));
        assert_eq!(
            p.offer(7, 2, 3, b"e".to_vec(), 10),
            None,
            "starts over after a whole snapshot"
        );
    }

    #[test]
    fn a_newer_snapshot_or_an_impossible_piece_never_mixes_in() {
        let mut p = Pieces::new();
        assert_eq!(p.offer(1, 0, 2, b"old".to_vec(), 10), None);
        assert_eq!(p.offer(2, 0, 2, b"ne".to_vec(), 10), None, "another id starts over");
        assert_eq!(p.offer(2, 5, 2, b"x".to_vec(), 10), None, "index past count");
        assert_eq!(p.offer(2, 0, 0, b"x".to_vec(), 10), None, "no pieces");
        assert_eq!(p.offer(2, 0, 11, b"x".to_vec(), 10), None, "more than the bound");
        assert_eq!(p.offer(2, 1, 2, b"w".to_vec(), 10), Some(b"new".to_vec()));
    }
}
