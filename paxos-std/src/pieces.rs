//! Application snapshots sent to a node behind, in pieces: [`Outgoing`]
//! (one transfer per peer, its pieces queued as the peer's connection
//! takes them, each a [`piece`] header and a slice of the state) and
//! [`Pieces`] (reassembled on the other side, headers read by
//! [`parse_piece`]).

use paxos_core::{Duration, Instant, NodeId};
use std::collections::HashMap;

/// Bytes of a piece's header: `[id u64][index u32][count u32]`, little
/// endian, before its slice of the snapshot.
pub const PIECE_HEADER: usize = 16;

/// Snapshots being sent, one per peer, a piece at a time.
///
/// Queuing a whole snapshot at once overflows the peer's connection queue
/// once the state is larger than it: pieces are dropped, the receiver,
/// which needs every piece of one transfer, never completes, and each new
/// try starts over, so the node behind never catches up. A transfer here
/// queues pieces only while the peer's connection takes them (the caller's
/// `send` says when it will not), resumes on a later turn from the first
/// piece not taken, and holds the serialised state until it is done.
/// A new snapshot for a peer starts only when its last one was all taken
/// and `every` has passed since it started, or it has not moved for
/// `stall` (the peer unreachable): a new transfer replaces the old one at
/// the receiver, so starting one while the last pieces of the previous are
/// still on their way would throw them away.
#[derive(Debug)]
pub struct Outgoing {
    transfers: HashMap<NodeId, Transfer>,
    every: Duration,
    stall: Duration,
}

#[derive(Debug)]
struct Transfer {
    id: u64,
    bytes: Vec<u8>,
    chunk: usize,
    /// The first piece not yet taken.
    next: u32,
    count: u32,
    started: Instant,
    /// When a piece was last taken (or the transfer started).
    moved: Instant,
}

impl Transfer {
    fn done(&self) -> bool {
        self.next >= self.count
    }
}

impl Outgoing {
    /// No transfer yet; a peer gets a new snapshot at most every `every`,
    /// and a transfer that has not moved for `stall` may be replaced.
    pub fn new(every: Duration, stall: Duration) -> Self {
        Outgoing {
            transfers: HashMap::new(),
            every,
            stall,
        }
    }

    /// Whether a new snapshot may start for `peer` at `now`; `drained` is
    /// whether the peer's connection has written everything queued for it
    /// (the last transfer's pieces are on their way, not waiting).
    pub fn may_start(&self, peer: NodeId, now: Instant, drained: bool) -> bool {
        match self.transfers.get(&peer) {
            None => true,
            Some(t) if t.done() && drained => now >= t.started + self.every,
            Some(t) => now >= t.moved + self.stall,
        }
    }

    /// Starts sending `bytes` to `peer` in pieces of at most `chunk`
    /// bytes, replacing any transfer to it; returns the transfer's id.
    pub fn start(&mut self, me: NodeId, peer: NodeId, now: Instant, bytes: Vec<u8>, chunk: usize) -> u64 {
        let id = now.as_micros() ^ (u64::from(me.0) << 56);
        let chunk = chunk.max(1);
        let count = u32::try_from(bytes.len().div_ceil(chunk).max(1)).unwrap_or(u32::MAX);
        let transfer = Transfer {
            id,
            bytes,
            chunk,
            next: 0,
            count,
            started: now,
            moved: now,
        };
        self.transfers.insert(peer, transfer);
        id
    }

    /// Whether some transfer still has pieces to queue.
    pub fn sending(&self) -> bool {
        self.transfers.values().any(|t| !t.done())
    }

    /// Offers every transfer's next pieces, each built in `buf`, to
    /// `send`, which returns whether the peer's connection took it; a
    /// transfer stops at the first piece not taken and resumes there on
    /// the next call. A finished transfer lets its bytes go.
    pub fn pump(&mut self, now: Instant, buf: &mut Vec<u8>, mut send: impl FnMut(NodeId, &[u8]) -> bool) {
        for (&peer, t) in &mut self.transfers {
            while !t.done() {
                let from = (t.next as usize).saturating_mul(t.chunk).min(t.bytes.len());
                let to = from.saturating_add(t.chunk).min(t.bytes.len());
                piece(buf, t.id, t.next, t.count, &t.bytes[from..to]);
                if !send(peer, buf) {
                    break;
                }
                t.next += 1;
                t.moved = now;
            }
            if t.done() {
                t.bytes = Vec::new();
            }
        }
    }
}

/// Builds in `buf` piece `index` of `count` of transfer `id`, carrying
/// `data`.
pub fn piece(buf: &mut Vec<u8>, id: u64, index: u32, count: u32, data: &[u8]) {
    buf.clear();
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&index.to_le_bytes());
    buf.extend_from_slice(&count.to_le_bytes());
    buf.extend_from_slice(data);
}

/// A piece's id, index, count and data, or `None` if it is shorter than
/// its header.
pub fn parse_piece(body: &[u8]) -> Option<(u64, u32, u32, &[u8])> {
    let id = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    let index = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?);
    let count = u32::from_le_bytes(body.get(12..PIECE_HEADER)?.try_into().ok()?);
    Some((id, index, count, &body[PIECE_HEADER..]))
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

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    /// Every piece a transfer queues, read back and offered in reverse,
    /// makes the snapshot (an empty one is one empty piece).
    #[test]
    fn pieces_sent_put_back_together_make_the_snapshot() {
        for len in [0usize, 1, 4, 5, 12] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let mut out = Outgoing::new(Duration::from_millis(500), Duration::from_secs(3));
            out.start(NodeId(1), NodeId(2), at(0), bytes.clone(), 4);
            let mut sent = Vec::new();
            out.pump(at(0), &mut Vec::new(), |peer, piece| {
                assert_eq!(peer, NodeId(2));
                sent.push(piece.to_vec());
                true
            });
            assert_eq!(sent.len(), len.div_ceil(4).max(1), "{len} bytes");
            assert!(!out.sending());
            let mut p = Pieces::new();
            let mut whole = None;
            for piece in sent.iter().rev() {
                let (id, index, count, data) = parse_piece(piece).unwrap();
                whole = p.offer(id, index, count, data.to_vec(), 10);
            }
            assert_eq!(whole, Some(bytes));
        }
        assert_eq!(parse_piece(&[0; PIECE_HEADER - 1]), None);
    }

    /// A connection that takes no more stops the transfer; the next pump
    /// resumes at the first piece not taken, none lost or repeated.
    #[test]
    fn a_transfer_resumes_where_the_connection_stopped_taking() {
        let bytes: Vec<u8> = (0..40).collect();
        let mut out = Outgoing::new(Duration::from_millis(500), Duration::from_secs(3));
        out.start(NodeId(1), NodeId(2), at(0), bytes, 4);
        let mut taken = Vec::new();
        for turn in 0..10 {
            // Three pieces a turn.
            let mut room = 3;
            out.pump(at(turn), &mut Vec::new(), |_, piece| {
                if room == 0 {
                    return false;
                }
                room -= 1;
                taken.push(parse_piece(piece).unwrap().1);
                true
            });
        }
        assert_eq!(taken, (0..10).collect::<Vec<u32>>());
        assert!(!out.sending());
    }

    /// A new snapshot waits for the last one: while it is being taken, and
    /// once taken until the connection has written it and `every` passed;
    /// one that has not moved for `stall` may be replaced.
    #[test]
    fn a_new_snapshot_waits_for_the_last_one() {
        let (every, stall) = (Duration::from_millis(500), Duration::from_secs(3));
        let mut out = Outgoing::new(every, stall);
        let (me, peer) = (NodeId(1), NodeId(2));
        assert!(out.may_start(peer, at(0), true));
        let first = out.start(me, peer, at(1_000), vec![0; 12], 4);
        // Stuck: the connection takes nothing.
        out.pump(at(1_000), &mut Vec::new(), |_, _| false);
        assert!(!out.may_start(peer, at(3_999), true), "in progress");
        assert!(out.may_start(peer, at(4_000), true), "stalled for 3 s");
        assert!(out.may_start(NodeId(3), at(1_000), true), "another peer");
        let second = out.start(me, peer, at(4_000), vec![0; 12], 4);
        assert_ne!(first, second, "a new transfer, a new id");
        out.pump(at(4_100), &mut Vec::new(), |_, _| true);
        assert!(!out.may_start(peer, at(4_600), false), "taken, not yet written");
        assert!(
            !out.may_start(peer, at(4_400), true),
            "taken, written, but within every"
        );
        assert!(out.may_start(peer, at(4_500), true));
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
