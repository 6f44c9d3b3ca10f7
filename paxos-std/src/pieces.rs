//! [`Pieces`]: a snapshot reassembled from the pieces it was sent in.
//! Shared by every driver that sends application snapshots to a node
//! behind (the runtime, the `paxos` program's engine).

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
