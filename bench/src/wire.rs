//! The in-process "network": encoded frames in one byte pool, delivered
//! in FIFO order, counted per recipient.
//!
//! Each library's encoder writes straight into the pool through
//! [`Wire::write`] (no intermediate buffer, no allocation in the steady
//! state); [`Wire::send`] then addresses the frame just written. A frame
//! sent to several nodes is stored once. The pool stays initialised to its
//! full length and only grows, so handing out its tail costs nothing.

use std::collections::VecDeque;
use std::ops::Range;

/// Frames in flight and what was delivered so far.
#[derive(Debug, Default)]
pub struct Wire {
    pool: Vec<u8>,
    used: usize,
    delivering: Vec<u8>,
    frames: VecDeque<(usize, usize, Range<usize>)>,
    last: Range<usize>,
    /// Messages delivered, one per recipient.
    pub messages: u64,
    /// Encoded bytes delivered, counted per recipient.
    pub bytes: u64,
}

impl Wire {
    /// An empty network with room for `bytes` of frames per round.
    pub fn with_capacity(bytes: usize) -> Wire {
        Wire {
            pool: vec![0; bytes],
            delivering: vec![0; bytes],
            frames: VecDeque::with_capacity(4096),
            ..Wire::default()
        }
    }

    /// At least `room` free bytes at the end of the pool, for a frame
    /// [`Wire::commit`] then keeps.
    pub fn reserve(&mut self, room: usize) -> &mut [u8] {
        if self.pool.len() < self.used + room {
            self.pool.resize((self.used + room).next_power_of_two(), 0);
        }
        &mut self.pool[self.used..]
    }

    /// Keeps the first `len` bytes of the space [`Wire::reserve`] gave as
    /// a frame ([`Wire::send`] then addresses it).
    pub fn commit(&mut self, len: usize) {
        self.last = self.used..self.used + len;
        self.used += len;
    }

    /// Lets `encode` write one frame into at least `room` free bytes; it
    /// returns the frame's length, or `None` to write nothing. Returns
    /// whether a frame was written (then [`Wire::send`] addresses it).
    pub fn write(&mut self, room: usize, encode: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        if self.pool.len() < self.used + room {
            self.pool.resize((self.used + room).next_power_of_two(), 0);
        }
        match encode(&mut self.pool[self.used..]) {
            Some(len) => {
                self.last = self.used..self.used + len;
                self.used += len;
                true
            }
            None => false,
        }
    }

    /// Sends the frame last written from node index `from` to node index
    /// `to`.
    pub fn send(&mut self, from: usize, to: usize) {
        self.messages += 1;
        self.bytes += self.last.len() as u64;
        self.frames.push_back((from, to, self.last.clone()));
    }

    /// Delivers every frame sent so far, in order, as
    /// `deliver(from, to, bytes)`. Frames sent while delivering wait for the
    /// next call.
    pub fn deliver(&mut self, mut deliver: impl FnMut(usize, usize, &[u8])) {
        std::mem::swap(&mut self.pool, &mut self.delivering);
        self.used = 0;
        for (from, to, range) in self.frames.drain(..) {
            deliver(from, to, &self.delivering[range]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_arrive_in_order_with_their_bytes_and_are_counted_per_recipient() {
        let mut wire = Wire::with_capacity(4);
        assert!(wire.write(3, |b| {
            b[..3].copy_from_slice(b"abc");
            Some(3)
        }));
        wire.send(0, 1);
        wire.send(0, 2);
        // Grows past the initial capacity.
        assert!(wire.write(10, |b| {
            b[..10].copy_from_slice(b"0123456789");
            Some(10)
        }));
        wire.send(2, 0);
        assert!(!wire.write(1, |_| None));
        let mut got = Vec::new();
        wire.deliver(|from, to, frame| got.push((from, to, frame.to_vec())));
        assert_eq!(
            got,
            vec![
                (0, 1, b"abc".to_vec()),
                (0, 2, b"abc".to_vec()),
                (2, 0, b"0123456789".to_vec())
            ]
        );
        assert_eq!((wire.messages, wire.bytes), (3, 16));
        let mut again = 0;
        wire.deliver(|_, _, _| again += 1);
        assert_eq!(again, 0);
    }
}
