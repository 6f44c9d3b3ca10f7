//! [`Payload`]: a replicated value held by reference, so that a value
//! costs its size, not a capacity.
//!
//! The core moves and clones the values it replicates (into its log, its
//! promises, its events); with [`paxos_core::Bytes`] each of those moves
//! copies the whole inline capacity. A `Payload` is a reference-counted
//! buffer: those moves copy a pointer, and the bytes are touched only where
//! they must be — encoded once into a record and once into each frame,
//! decoded once from each frame or record read.

use paxos_core::codec::byte_string_len;
use paxos_core::replica::Value;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::ops::Deref;

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
}
