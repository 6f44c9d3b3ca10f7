//! The wire and record codec: a format version byte, then postcard.
//!
//! Every message and durable record of this crate crosses a network or a
//! disk as `[FORMAT_VERSION][postcard body]`, encoded into a buffer the
//! caller owns. The teaching layers encode through this module; the
//! replica's frames ([`crate::replica::wire`]) are the same format, written
//! by a hand-written fast path that a property test holds to postcard byte
//! for byte, both ways. [`max_encoded_size`] gives the largest frame a type can
//! produce, so buffers are sized at compile time; decoding anything
//! malformed, truncated, oversized or of another version is a typed
//! [`DecodeError`], never a panic.

use core::fmt;
use postcard::experimental::max_size::MaxSize;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The version byte that starts every frame. Bumped on any incompatible
/// change to a message or record layout.
pub const FORMAT_VERSION: u8 = 1;

/// The largest frame [`encode`] can produce for an `M`: the version byte
/// plus postcard's bound for `M`.
pub const fn max_encoded_size<M: MaxSize>() -> usize {
    1 + M::POSTCARD_MAX_SIZE
}

/// The length of postcard's encoding of a byte string of `len` bytes: its
/// length as a varint, then the bytes. What [`crate::Bytes`] and any
/// byte-string value type encode to.
pub const fn byte_string_len(len: usize) -> usize {
    crate::value::varint_len(len) + len
}

/// Why a value could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The buffer is too small; `required` bytes would do.
    BufferTooSmall {
        /// The size of the frame.
        required: usize,
    },
    /// The value refused to serialize (a custom `Serialize` failed).
    Unserializable,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { required } => {
                write!(f, "buffer too small: the frame needs {required} bytes")
            }
            EncodeError::Unserializable => write!(f, "the value could not be serialized"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why bytes could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// No bytes at all.
    Empty,
    /// The frame names a format version this build does not speak.
    UnknownVersion(u8),
    /// The frame is longer than any valid frame of this type.
    Oversized {
        /// The length received.
        len: usize,
        /// The longest valid frame.
        max: usize,
    },
    /// The frame ends before the value does.
    Truncated,
    /// Bytes remain after a complete value.
    TrailingBytes,
    /// The bytes do not describe a value of this type (a bad tag, an
    /// overlong varint, a value over its capacity, ...).
    Malformed,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "empty frame"),
            DecodeError::UnknownVersion(v) => {
                write!(f, "unknown format version {v} (this build speaks {FORMAT_VERSION})")
            }
            DecodeError::Oversized { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            DecodeError::Truncated => write!(f, "truncated frame"),
            DecodeError::TrailingBytes => write!(f, "trailing bytes after the frame"),
            DecodeError::Malformed => write!(f, "malformed frame"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Encodes `value` into the start of `buf` and returns the frame.
pub fn encode<'b, M: Serialize>(value: &M, buf: &'b mut [u8]) -> Result<&'b [u8], EncodeError> {
    let too_small = |value: &M| match postcard::experimental::serialized_size(value) {
        Ok(body) => EncodeError::BufferTooSmall { required: body + 1 },
        Err(_) => EncodeError::Unserializable,
    };
    let Some((version, body)) = buf.split_first_mut() else {
        return Err(too_small(value));
    };
    *version = FORMAT_VERSION;
    match postcard::to_slice(value, body) {
        Ok(written) => {
            let len = written.len() + 1;
            Ok(buf.get(..len).unwrap_or_default())
        }
        Err(postcard::Error::SerializeBufferFull) => Err(too_small(value)),
        Err(_) => Err(EncodeError::Unserializable),
    }
}

/// Decodes one complete frame.
pub fn decode<M: DeserializeOwned + MaxSize>(frame: &[u8]) -> Result<M, DecodeError> {
    let max = max_encoded_size::<M>();
    if frame.len() > max {
        return Err(DecodeError::Oversized { len: frame.len(), max });
    }
    let (&version, body) = frame.split_first().ok_or(DecodeError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    match postcard::take_from_bytes::<M>(body) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(DecodeError::TrailingBytes),
        Err(postcard::Error::DeserializeUnexpectedEnd) => Err(DecodeError::Truncated),
        Err(_) => Err(DecodeError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ballot::{Ballot, NodeId};

    #[test]
    fn frame_is_version_then_postcard() {
        let mut buf = [0u8; 16];
        let b = Ballot::new(300, NodeId(7));
        let frame = encode(&b, &mut buf).unwrap();
        assert_eq!(frame, &[FORMAT_VERSION, 0xAC, 0x02, 7]);
        assert_eq!(decode::<Ballot>(frame), Ok(b));
    }

    #[test]
    fn small_buffers_report_the_size_needed() {
        let b = Ballot::new(300, NodeId(7));
        assert_eq!(encode(&b, &mut []), Err(EncodeError::BufferTooSmall { required: 4 }));
        assert_eq!(
            encode(&b, &mut [0; 3]),
            Err(EncodeError::BufferTooSmall { required: 4 })
        );
        assert!(encode(&b, &mut [0; 4]).is_ok());
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert_eq!(decode::<Ballot>(&[]), Err(DecodeError::Empty));
        assert_eq!(decode::<Ballot>(&[9, 1, 1]), Err(DecodeError::UnknownVersion(9)));
        assert_eq!(decode::<Ballot>(&[FORMAT_VERSION, 1]), Err(DecodeError::Truncated));
        assert_eq!(
            decode::<Ballot>(&[FORMAT_VERSION, 1, 1, 1]),
            Err(DecodeError::TrailingBytes)
        );
        // A round varint that never terminates within u32.
        assert_eq!(
            decode::<Ballot>(&[FORMAT_VERSION, 0xFF, 0xFF, 0xFF]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode::<Ballot>(&[FORMAT_VERSION, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
            Err(DecodeError::Malformed)
        );
        let max = max_encoded_size::<Ballot>();
        assert_eq!(max, 1 + 5 + 1);
        assert_eq!(
            decode::<Ballot>(&[FORMAT_VERSION; 8]),
            Err(DecodeError::Oversized { len: 8, max })
        );
    }
}
