//! [`Payload`]: a replicated value held by reference, so that a value
//! costs its size, not a capacity.
//!
//! The core moves and clones the values it replicates (into its log, its
//! promises, its events); with [`paxos_core::Bytes`] each of those moves
//! copies the whole inline capacity. A `Payload` is a reference-counted
//! buffer: those moves copy a pointer, and the bytes are touched only where
//! they must be — encoded once into a record and once into each frame,
//! decoded once from each frame or record read.
//!
//! # Decoding without a copy
//!
//! Decoding a payload from a plain `&[u8]` copies its bytes: serde hands
//! the decoder a borrow, which cannot outlive the call. When the buffer
//! being decoded is itself a [`bytes::Bytes`] (a received frame, a log
//! record read back), wrap the decoding in [`decoding_from`]: inside it, a
//! payload whose bytes lie within that buffer takes a slice of it
//! ([`bytes::Bytes::slice_ref`]), sharing the buffer instead of copying,
//! when sharing pays (see [`SHARE_MIN`], [`SHARE_FACTOR`] and
//! [`SHARE_FRAME_MIN`]).
//!
//! ```
//! use paxos_std::payload::{decoding_from, Payload};
//!
//! let value = Payload::from_vec(vec![7; 4096]).unwrap();
//! let frame = bytes::Bytes::from(postcard::to_allocvec(&value).unwrap());
//! let decoded: Payload = decoding_from(&frame, || postcard::from_bytes(&frame)).unwrap();
//! assert_eq!(decoded, value);
//! // The decoded payload is a slice of the frame, not a copy.
//! let inside = frame.as_ptr_range();
//! assert!(inside.contains(&decoded.as_slice().as_ptr()));
//! ```

use paxos_core::codec::byte_string_len;
use paxos_core::replica::Value;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::cell::RefCell;
use std::fmt;
use std::ops::Deref;

/// The shortest payload decoded as a slice of its frame: below it a
/// copy (a few dozen bytes, no more than a pointer-sized move or two) is
/// cheaper than taking and later dropping a reference count on the frame.
pub const SHARE_MIN: usize = 32;

/// How many times larger than a payload its frame may be for the payload
/// to share it. A shared payload keeps its whole frame alive for as long
/// as it lives (in the replica's window, in the application), so a short
/// payload decoded from a large frame would pin memory out of all
/// proportion to its size; past this factor it is copied, and the memory
/// a shared payload holds is at most `SHARE_FACTOR` times its own size.
pub const SHARE_FACTOR: usize = 1024;

/// Frames shorter than this (1 KiB) are never shared: copying a payload
/// out of one costs at most a copy of a kilobyte, and lets the frame go.
pub const SHARE_FRAME_MIN: usize = 1024;

thread_local! {
    /// The buffer [`decoding_from`] is decoding on this thread, if any.
    static FRAME: RefCell<Option<bytes::Bytes>> = const { RefCell::new(None) };
}

/// Runs `f`, in which payloads decoded from bytes inside `frame` share
/// `frame` rather than copy it, and returns what it returns.
///
/// A payload shares the frame when its bytes lie entirely within `frame`'s
/// memory, it is at least [`SHARE_MIN`] bytes long, the frame is at least
/// [`SHARE_FRAME_MIN`] bytes long and at most [`SHARE_FACTOR`] times the
/// payload's length; any other payload decoded in `f` is copied, as outside.
///
/// Calls nest: the inner frame applies within the inner call, and the
/// outer one again once it returns or unwinds. The frame applies only to
/// decoding on this thread.
pub fn decoding_from<R>(frame: &bytes::Bytes, f: impl FnOnce() -> R) -> R {
    /// Puts the outer frame back, on return and on unwinding alike.
    struct Restore(Option<bytes::Bytes>);

    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            // The thread-local may already be gone while the thread exits:
            // then there is nothing to restore.
            let _ = FRAME.try_with(|current| *current.borrow_mut() = outer);
        }
    }

    match FRAME.try_with(|current| current.replace(Some(frame.clone()))) {
        Ok(outer) => {
            let _restore = Restore(outer);
            f()
        }
        // Called while the thread's locals are being destroyed: decoding
        // copies, as outside.
        Err(_) => f(),
    }
}

/// `v` as a slice of the frame [`decoding_from`] set, if it lies within
/// that frame and sharing pays (see [`decoding_from`]).
fn share(v: &[u8]) -> Option<Payload> {
    if v.len() < SHARE_MIN {
        return None;
    }
    FRAME
        .try_with(|current| {
            let current = current.borrow();
            let frame = current.as_ref()?;
            if frame.len() < SHARE_FRAME_MIN || frame.len() > v.len().saturating_mul(SHARE_FACTOR) {
                return None;
            }
            // Addresses as integers: no pointer arithmetic across objects.
            let start = frame.as_ptr() as usize;
            let end = start.checked_add(frame.len())?;
            let v_start = v.as_ptr() as usize;
            let v_end = v_start.checked_add(v.len())?;
            (start <= v_start && v_end <= end).then(|| Payload(frame.slice_ref(v)))
        })
        .ok()
        .flatten()
}

/// Shared, immutable bytes of any length up to [`Payload::MAX_LEN`]:
/// cloning one shares the buffer.
///
/// It encodes as a postcard byte string (a varint length, then the
/// bytes), like [`paxos_core::Bytes`]; decoding more than `MAX_LEN` bytes
/// is an error.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Payload(bytes::Bytes);

impl Payload {
    /// The longest payload: 64 MiB. The core sizes its largest-case
    /// buffers from it ([`paxos_core::replica::Replica::MAX_MESSAGE_SIZE`]);
    /// a driver sizes its own from the limit it enforces, with
    /// [`paxos_core::replica::Replica::message_buffer_for`].
    pub const MAX_LEN: usize = 64 << 20;

    /// The empty payload.
    pub const fn new() -> Self {
        Payload(bytes::Bytes::new())
    }

    /// Takes `bytes` without copying them, or gives them back if they
    /// exceed [`Payload::MAX_LEN`].
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self, Vec<u8>> {
        if bytes.len() > Self::MAX_LEN {
            return Err(bytes);
        }
        Ok(Payload(bytes::Bytes::from(bytes)))
    }

    /// A copy of `bytes`, or `None` if they exceed [`Payload::MAX_LEN`].
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        (bytes.len() <= Self::MAX_LEN).then(|| Payload(bytes::Bytes::copy_from_slice(bytes)))
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The length of its encoding: the varint length, then the bytes.
    pub fn encoded_len(&self) -> usize {
        byte_string_len(self.0.len())
    }
}

impl Value for Payload {
    const MAX_ENCODED_LEN: usize = byte_string_len(Payload::MAX_LEN);
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        let head = &self.0[..self.0.len().min(SHOWN)];
        write!(f, "Payload({} bytes: {head:02x?}", self.0.len())?;
        if self.0.len() > SHOWN {
            write!(f, "…")?;
        }
        write!(f, ")")
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PayloadVisitor;

        impl<'de> Visitor<'de> for PayloadVisitor {
            type Value = Payload;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {} bytes", Payload::MAX_LEN)
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Payload, E> {
                if v.len() > Payload::MAX_LEN {
                    return Err(E::invalid_length(v.len(), &self));
                }
                if let Some(shared) = share(v) {
                    return Ok(shared);
                }
                Payload::from_slice(v).ok_or_else(|| E::invalid_length(v.len(), &self))
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
                let len = v.len();
                Payload::from_vec(v).map_err(|_| E::invalid_length(len, &self))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element()? {
                    if out.len() == Payload::MAX_LEN {
                        return Err(de::Error::invalid_length(Payload::MAX_LEN + 1, &self));
                    }
                    out.push(b);
                }
                Ok(Payload(bytes::Bytes::from(out)))
            }
        }

        d.deserialize_bytes(PayloadVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload encodes exactly as the core's inline `Bytes` of the same
    /// content (the two are interchangeable on the wire and on disk), its
    /// `encoded_len` is that length, and it decodes back.
    #[test]
    fn encodes_as_a_byte_string_and_round_trips() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 70_000] {
            let content: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let p = Payload::from_vec(content.clone()).unwrap();
            let bytes = postcard::to_allocvec(&p).unwrap();
            assert_eq!(bytes.len(), p.encoded_len(), "len {len}");
            if len <= 128 {
                let inline = paxos_core::Bytes::<128>::from_slice(&content).unwrap();
                assert_eq!(bytes, postcard::to_allocvec(&inline).unwrap());
            }
            let back: Payload = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, p);
        }
    }

    /// A length prefix past `MAX_LEN` is refused, never allocated.
    #[test]
    fn refuses_a_length_past_the_maximum() {
        let mut frame = Vec::new();
        let mut n = Payload::MAX_LEN + 1;
        while n >= 0x80 {
            frame.push((n as u8) | 0x80);
            n >>= 7;
        }
        frame.push(n as u8);
        assert!(postcard::from_bytes::<Payload>(&frame).is_err());
        assert!(Payload::from_vec(vec![0; Payload::MAX_LEN + 1]).is_err());
        assert_eq!(Payload::MAX_ENCODED_LEN, 4 + Payload::MAX_LEN);
    }

    /// Cloning shares the buffer: no copy of the bytes.
    #[test]
    fn clones_share_the_bytes() {
        let p = Payload::from_vec(vec![7; 1 << 20]).unwrap();
        let q = p.clone();
        assert_eq!(p.as_slice().as_ptr(), q.as_slice().as_ptr());
    }

    /// Whether `p`'s bytes lie in `frame`'s memory.
    fn within(p: &Payload, frame: &bytes::Bytes) -> bool {
        let range = frame.as_ptr_range();
        let (start, end) = (range.start as usize, range.end as usize);
        let at = p.as_slice().as_ptr() as usize;
        start <= at && at + p.len() <= end
    }

    fn payload(len: usize, fill: u8) -> Payload {
        Payload::from_vec(vec![fill; len]).unwrap()
    }

    fn frame_of<T: Serialize>(value: &T) -> bytes::Bytes {
        bytes::Bytes::from(postcard::to_allocvec(value).unwrap())
    }

    /// Inside `decoding_from`, a payload from a large frame is a slice of
    /// that frame; the frame stays alive with it.
    #[test]
    fn a_payload_decoded_from_a_large_frame_shares_it() {
        let value = payload(4096, 3);
        let frame = frame_of(&value);
        let decoded: Payload = decoding_from(&frame, || postcard::from_bytes(&frame)).unwrap();
        assert_eq!(decoded, value);
        assert!(within(&decoded, &frame));
        // Exactly at the limits: SHARE_MIN bytes, in a frame SHARE_FACTOR
        // times as long.
        let value = payload(SHARE_MIN, 4);
        let filler = payload(SHARE_MIN * SHARE_FACTOR - (1 + SHARE_MIN) - 3, 5);
        let frame = frame_of(&(&value, &filler));
        assert_eq!(frame.len(), SHARE_MIN * SHARE_FACTOR);
        let (a, b): (Payload, Payload) = decoding_from(&frame, || postcard::from_bytes(&frame)).unwrap();
        assert_eq!((&a, &b), (&value, &filler));
        assert!(within(&a, &frame) && within(&b, &frame));
        drop(frame);
        assert_eq!(a, value, "the slice keeps the frame alive");
    }

    /// A payload shorter than `SHARE_MIN` is copied, even from a frame it
    /// could share.
    #[test]
    fn a_payload_below_the_minimum_is_copied() {
        let (short, long) = (payload(SHARE_MIN - 1, 1), payload(4000, 2));
        let frame = frame_of(&(&short, &long));
        let (a, b): (Payload, Payload) = decoding_from(&frame, || postcard::from_bytes(&frame)).unwrap();
        assert_eq!((&a, &b), (&short, &long));
        assert!(!within(&a, &frame), "below SHARE_MIN: copied");
        assert!(within(&b, &frame));
    }

    /// A payload whose frame is more than `SHARE_FACTOR` times its size is
    /// copied: it must not pin the whole frame.
    #[test]
    fn a_payload_in_a_frame_too_large_for_it_is_copied() {
        let small = payload(40, 1);
        let filler = payload(40 * SHARE_FACTOR, 2);
        let frame = frame_of(&(&small, &filler));
        assert!(frame.len() > small.len() * SHARE_FACTOR);
        let (a, b): (Payload, Payload) = decoding_from(&frame, || postcard::from_bytes(&frame)).unwrap();
        assert_eq!((&a, &b), (&small, &filler));
        assert!(!within(&a, &frame), "over SHARE_FACTOR: copied");
        assert!(within(&b, &frame));
    }

    /// A frame below `SHARE_FRAME_MIN` is never shared: the copy is cheap.
    #[test]
    fn a_payload_in_a_small_frame_is_copied() {
        let value = payload(SHARE_FRAME_MIN / 2, 9);
        let frame = frame_of(&value);
        assert!(frame.len() < SHARE_FRAME_MIN);
        let decoded: Payload = decoding_from(&frame, || postcard::from_bytes(&frame)).unwrap();
        assert_eq!(decoded, value);
        assert!(!within(&decoded, &frame));
    }

    /// Outside `decoding_from`, or from bytes outside its frame, decoding
    /// copies.
    #[test]
    fn a_payload_decoded_outside_its_frame_is_copied() {
        let value = payload(4096, 6);
        let frame = frame_of(&value);
        let decoded: Payload = postcard::from_bytes(&frame).unwrap();
        assert_eq!(decoded, value);
        assert!(!within(&decoded, &frame), "outside decoding_from");
        let other = frame_of(&value);
        let decoded: Payload = decoding_from(&other, || postcard::from_bytes(&frame)).unwrap();
        assert_eq!(decoded, value);
        assert!(!within(&decoded, &frame) && !within(&decoded, &other), "another frame");
        // A frame that holds only part of the bytes.
        let part = frame.slice(..frame.len() - 1);
        let decoded: Payload = decoding_from(&part, || postcard::from_bytes(&frame)).unwrap();
        assert!(!within(&decoded, &frame));
        // The frame is this thread's: another thread decoding meanwhile
        // copies.
        let decoded = decoding_from(&frame, || {
            std::thread::scope(|s| s.spawn(|| postcard::from_bytes::<Payload>(&frame)).join())
        })
        .unwrap()
        .unwrap();
        assert!(!within(&decoded, &frame), "another thread");
    }

    /// A nested `decoding_from` applies within itself, and the outer frame
    /// applies again after it, whether it returns or panics.
    #[test]
    fn nesting_and_panics_restore_the_outer_frame() {
        let (outer_value, inner_value) = (payload(2048, 1), payload(2048, 2));
        let (outer, inner) = (frame_of(&outer_value), frame_of(&inner_value));
        let decode = |frame: &bytes::Bytes| postcard::from_bytes::<Payload>(frame).unwrap();
        decoding_from(&outer, || {
            let from_inner = decoding_from(&inner, || {
                assert!(!within(&decode(&outer), &outer), "the inner frame applies");
                decode(&inner)
            });
            assert!(within(&from_inner, &inner));
            assert!(within(&decode(&outer), &outer), "the outer frame again");
            assert!(!within(&decode(&inner), &inner));

            let unwound = std::panic::catch_unwind(|| decoding_from(&inner, || panic!("while decoding")));
            assert!(unwound.is_err());
            assert!(within(&decode(&outer), &outer), "restored after a panic");
            assert!(!within(&decode(&inner), &inner));
        });
        assert!(!within(&decode(&outer), &outer), "none after the outermost");
        let unwound = std::panic::catch_unwind(|| decoding_from(&inner, || panic!("while decoding")));
        assert!(unwound.is_err());
        assert!(!within(&decode(&inner), &inner), "none after a panic either");
    }

    /// Shared or copied, a decoded payload encodes to the same bytes it
    /// was decoded from.
    #[test]
    fn round_trips_byte_identical_shared_or_copied() {
        for len in [0usize, 1, SHARE_MIN - 1, SHARE_MIN, 127, 128, 1000, 16_384, 70_000] {
            let content: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let value = Payload::from_vec(content.clone()).unwrap();
            let pad = payload(3000, 0xEE);
            let frame = frame_of(&(&pad, &value, &pad));
            let (p1, back, p2): (Payload, Payload, Payload) =
                decoding_from(&frame, || postcard::from_bytes(&frame)).unwrap();
            assert_eq!(back.as_slice(), &content[..], "len {len}");
            assert_eq!((&p1, &p2), (&pad, &pad));
            assert_eq!(frame_of(&(&p1, &back, &p2)), frame, "len {len}");
            assert_eq!(
                postcard::to_allocvec(&back).unwrap(),
                postcard::to_allocvec(&value).unwrap()
            );
        }
    }
}
