//! The in-process "network": encoded frames in one byte pool, delivered
//! in FIFO order, counted per recipient.
//!
//! Each library's encoder writes straight into the pool through
//! [`Wire::write`] (no intermediate buffer, no allocation in the steady
//! state); [`Wire::send`] then addresses the frame just written. A frame
//! sent to several nodes is stored once. The pool stays initialised to its
//! full length and only grows, so handing out its tail costs nothing.
//!
//! A wire made [`Wire::sharing`] delivers a round's pool as a
//! [`bytes::Bytes`], and each frame ([`Frame`]) can be taken as a slice of
//! it, as a runtime receives each frame into a buffer of its own: values
//! decoded inside `paxos_std::payload::decoding_from` then share the pool
//! rather than copy their bytes. A pool that values still share stays
//! theirs; the next rounds write into older pools nothing shares any more,
//! or a fresh one, so nothing is ever written under a value. Otherwise two
//! pools take turns, and a frame is only lent.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::ops::Range;

/// Pools kept after their round, waiting for the values sharing them to
/// go: past this many, the oldest is left to its values.
const SPENT: usize = 16;

/// Frames in flight and what was delivered so far.
#[derive(Debug, Default)]
pub struct Wire {
    pool: BytesMut,
    used: usize,
    /// Not sharing: the pool delivered last, written again next round.
    delivering: BytesMut,
    /// Sharing: delivered pools, oldest first, to write into again once
    /// nothing shares them.
    spent: VecDeque<Bytes>,
    sharing: bool,
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
            pool: BytesMut::zeroed(bytes),
            delivering: BytesMut::zeroed(bytes),
            frames: VecDeque::with_capacity(4096),
            ..Wire::default()
        }
    }

    /// Delivers frames that can be shared ([`Frame::shared`] slices the
    /// pool instead of copying the frame), as a runtime's receive path
    /// hands them on.
    pub fn sharing(mut self) -> Wire {
        self.sharing = true;
        self.spent.push_back(std::mem::take(&mut self.delivering).freeze());
        self
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
    /// `deliver(from, to, frame)`. Frames sent while delivering wait for the
    /// next call.
    pub fn deliver(&mut self, mut deliver: impl FnMut(usize, usize, Frame<'_>)) {
        if !self.sharing {
            std::mem::swap(&mut self.pool, &mut self.delivering);
            self.used = 0;
            for (from, to, range) in self.frames.drain(..) {
                let bytes = &self.delivering[range];
                deliver(from, to, Frame { bytes, pool: None });
            }
            return;
        }
        // The oldest spent pool is the likeliest to be free: values leave
        // the replicas in the order they came.
        let next = match self.spent.pop_front() {
            Some(spent) if spent.is_unique() => spent.try_into_mut().ok(),
            Some(spent) => {
                self.spent.push_front(spent);
                None
            }
            None => None,
        };
        let next = next.unwrap_or_else(|| BytesMut::zeroed(self.pool.len()));
        let sent = std::mem::replace(&mut self.pool, next).freeze();
        self.used = 0;
        for (from, to, range) in self.frames.drain(..) {
            let bytes = &sent[range];
            deliver(
                from,
                to,
                Frame {
                    bytes,
                    pool: Some(&sent),
                },
            );
        }
        self.spent.push_back(sent);
        if self.spent.len() > SPENT {
            self.spent.pop_front();
        }
    }
}

/// A delivered frame: its bytes, and on a sharing wire the round's pool
/// they are part of.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    bytes: &'a [u8],
    pool: Option<&'a Bytes>,
}

impl<'a> Frame<'a> {
    /// The frame's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The frame as a buffer of its own, as a runtime's receive path hands
    /// it on: on a [sharing](Wire::sharing) wire a slice of the pool, and
    /// otherwise a copy.
    pub fn shared(&self) -> Bytes {
        match self.pool {
            Some(pool) => pool.slice_ref(self.bytes),
            None => Bytes::copy_from_slice(self.bytes),
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
        wire.deliver(|from, to, frame| got.push((from, to, frame.bytes().to_vec())));
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

    /// A pool something still shares is never written again; once free it
    /// is written again, without allocating.
    #[test]
    fn a_shared_pool_is_not_written_under_its_sharers() {
        let mut wire = Wire::with_capacity(16).sharing();
        let mut held = Vec::new();
        for round in 0..4u8 {
            assert!(wire.write(4, |b| {
                b[..4].fill(round);
                Some(4)
            }));
            wire.send(0, 1);
            wire.deliver(|_, _, frame| {
                assert_eq!(frame.bytes(), [round; 4]);
                held.push(frame.shared());
            });
        }
        for (round, frame) in held.iter().enumerate() {
            assert_eq!(frame[..], [round as u8; 4], "untouched");
        }
        let pools: Vec<*const u8> = held.iter().map(|f| f.as_ptr()).collect();
        drop(held);
        // Free again: once the current pool is delivered, the next rounds
        // write into the oldest pools.
        for round in 0..3 {
            assert!(wire.write(4, |_| Some(4)));
            wire.send(0, 1);
            wire.deliver(|_, _, frame| {
                assert_eq!(pools.contains(&frame.shared().as_ptr()), round > 0, "round {round}");
            });
        }
    }
}
