//! [`Bytes`]: a bounded byte string, the ready-made value type.

use core::fmt;
use core::ops::Deref;
use heapless::Vec;
use postcard::experimental::max_size::MaxSize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Up to `N` bytes, stored inline: the value type most users want.
///
/// It encodes as a postcard byte string (a varint length, then the bytes)
/// and implements [`MaxSize`], which heapless 0.9's `Vec` does not, so
/// message buffers can be sized at compile time. Decoding more than `N`
/// bytes is an error, never a truncation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Bytes<const N: usize>(Vec<u8, N>);

/// The value given to [`Bytes::from_slice`] is longer than its capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TooLong {
    /// The length that was offered.
    pub len: usize,
    /// The capacity.
    pub capacity: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "value of {} bytes exceeds the capacity of {}",
            self.len, self.capacity
        )
    }
}

impl core::error::Error for TooLong {}

impl<const N: usize> Bytes<N> {
    /// The empty value.
    pub const fn new() -> Self {
        Bytes(Vec::new())
    }

    /// A copy of `bytes`, or [`TooLong`] if it exceeds `N`.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, TooLong> {
        Vec::from_slice(bytes).map(Bytes).map_err(|_| TooLong {
            len: bytes.len(),
            capacity: N,
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> Deref for Bytes<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> TryFrom<&[u8]> for Bytes<N> {
    type Error = TooLong;
    fn try_from(bytes: &[u8]) -> Result<Self, TooLong> {
        Self::from_slice(bytes)
    }
}

impl<const N: usize> TryFrom<&str> for Bytes<N> {
    type Error = TooLong;
    fn try_from(s: &str) -> Result<Self, TooLong> {
        Self::from_slice(s.as_bytes())
    }
}

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(&self.0) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "{:02x?}", self.0.as_slice()),
        }
    }
}

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BytesVisitor<const N: usize>;

        impl<'de, const N: usize> Visitor<'de> for BytesVisitor<N> {
            type Value = Bytes<N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {N} bytes")
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes<N>, E> {
                Bytes::from_slice(v).map_err(|_| E::invalid_length(v.len(), &self))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes<N>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b).map_err(|_| de::Error::invalid_length(N + 1, &self))?;
                }
                Ok(Bytes(out))
            }
        }

        d.deserialize_bytes(BytesVisitor::<N>)
    }
}

/// The number of bytes postcard's varint encoding of `n` takes.
pub(crate) const fn varint_len(n: usize) -> usize {
    let mut len = 1;
    let mut rest = n >> 7;
    while rest != 0 {
        len += 1;
        rest >>= 7;
    }
    len
}

impl<const N: usize> MaxSize for Bytes<N> {
    const POSTCARD_MAX_SIZE: usize = crate::codec::byte_string_len(N);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_length_then_bytes_and_round_trips() {
        let v = Bytes::<8>::try_from("abc").unwrap();
        let mut buf = [0u8; 16];
        let out = postcard::to_slice(&v, &mut buf).unwrap();
        assert_eq!(out, &[3, b'a', b'b', b'c']);
        assert_eq!(postcard::from_bytes::<Bytes<8>>(out).unwrap(), v);
    }

    #[test]
    fn refuses_values_longer_than_capacity() {
        assert_eq!(Bytes::<2>::from_slice(b"abc"), Err(TooLong { len: 3, capacity: 2 }));
        let mut buf = [0u8; 16];
        let out = postcard::to_slice(&Bytes::<4>::try_from("abc").unwrap(), &mut buf).unwrap();
        assert!(postcard::from_bytes::<Bytes<2>>(out).is_err());
    }

    #[test]
    fn max_size_covers_the_longest_value() {
        let full = Bytes::<200>::from_slice(&[7u8; 200]).unwrap();
        let mut buf = [0u8; 256];
        let n = postcard::to_slice(&full, &mut buf).unwrap().len();
        assert_eq!(n, Bytes::<200>::POSTCARD_MAX_SIZE);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_384), 3);
    }
}
