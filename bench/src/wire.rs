//! The in-process "network": encoded frames in one byte pool, delivered
//! in FIFO order, counted per recipient.
//!
//! Senders append their encoding to [`Wire::pool`] and then address the
//! bytes from `start` to the end with [`Wire::send`]; a frame sent to
//! several nodes is stored once. The pool is reused between rounds, so
//! the network itself does not allocate in the steady state.

use std::collections::VecDeque;
use std::ops::Range;

/// Frames in flight and what was delivered so far.
#[derive(Debug, Default)]
pub struct Wire {
    /// Encoded frames of the current round; senders append here.
    pub pool: Vec<u8>,
    delivering: Vec<u8>,
    frames: VecDeque<(usize, usize, Range<usize>)>,
    /// Messages delivered, one per recipient.
    pub messages: u64,
    /// Encoded bytes delivered, counted per recipient.
    pub bytes: u64,
}

impl Wire {
    /// An empty network with room for `bytes` of frames per round.
    pub fn with_capacity(bytes: usize) -> Wire {
        Wire {
            pool: Vec::with_capacity(bytes),
            delivering: Vec::with_capacity(bytes),
            frames: VecDeque::with_capacity(4096),
            ..Wire::default()
        }
    }

    /// Sends `pool[start..]` from node index `from` to node index `to`.
    pub fn send(&mut self, from: usize, to: usize, start: usize) {
        let frame = start..self.pool.len();
        self.messages += 1;
        self.bytes += frame.len() as u64;
        self.frames.push_back((from, to, frame));
    }

    /// Delivers every frame sent so far, in order, as
    /// `deliver(from, to, bytes)`. Frames sent while delivering wait for the
    /// next call.
    pub fn deliver(&mut self, mut deliver: impl FnMut(usize, usize, &[u8])) {
        std::mem::swap(&mut self.pool, &mut self.delivering);
        self.pool.clear();
        for (from, to, range) in self.frames.drain(..) {
            deliver(from, to, &self.delivering[range]);
        }
    }
}
