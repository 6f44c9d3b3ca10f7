//! The primitives of the hand-written encoding: postcard's varints,
//! variant indices and raw node bytes, without serde's visitor machinery
//! on the hot path. Every message and every record passes through here,
//! so this is where instructions per commit are won. The encodings of the
//! frames themselves sit beside their types in [`super`], with the
//! property test that holds them to postcard.

use crate::ballot::{Ballot, NodeId};
use crate::codec::DecodeError;

/// The longest header or record: a `Header::Accepted` with every varint at
/// its widest is 1 + 6 + 10 + 5 + 10 bytes.
pub(crate) const MAX_COMPACT: usize = 40;

/// An encoder into a fixed scratch array.
pub(crate) struct Out {
    buf: [u8; MAX_COMPACT],
    len: usize,
}

impl Out {
    pub(super) fn new() -> Self {
        Out {
            buf: [0; MAX_COMPACT],
            len: 0,
        }
    }

    /// The bytes written.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    pub(super) fn byte(&mut self, b: u8) {
        if let Some(at) = self.buf.get_mut(self.len) {
            *at = b;
            self.len += 1;
        }
    }

    pub(super) fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.byte((n as u8) | 0x80);
            n >>= 7;
        }
        self.byte(n as u8);
    }

    pub(super) fn ballot(&mut self, b: Ballot) {
        self.varint(u64::from(b.round));
        self.byte(b.node.0);
    }
}

/// A decoder over the front of a byte slice.
pub(crate) struct In<'a> {
    rest: &'a [u8],
}

impl<'a> In<'a> {
    /// Reads from the front of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        In { rest: bytes }
    }

    /// What is left after the values read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(super) fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    /// A varint of at most `max_bytes` bytes whose last byte may carry at
    /// most `last_max`: postcard's rule, so the same inputs are refused.
    #[inline]
    pub(super) fn varint(&mut self, max_bytes: usize, last_max: u8) -> Result<u64, DecodeError> {
        // Most varints here are one byte (variant indices, counts, small
        // slots): take those without the loop.
        if let Some((&b, rest)) = self.rest.split_first() {
            if b < 0x80 {
                self.rest = rest;
                return Ok(u64::from(b));
            }
        }
        let mut out = 0u64;
        for (i, &b) in self.rest.iter().take(max_bytes).enumerate() {
            out |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && b > last_max {
                    return Err(DecodeError::Malformed);
                }
                self.rest = self.rest.get(i + 1..).unwrap_or_default();
                return Ok(out);
            }
        }
        if self.rest.len() < max_bytes {
            Err(DecodeError::Truncated)
        } else {
            Err(DecodeError::Malformed)
        }
    }

    pub(super) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.varint(10, 0x01)
    }

    /// An item count (a `u32` varint).
    pub(crate) fn count(&mut self) -> Result<u32, DecodeError> {
        self.u32()
    }

    pub(super) fn u32(&mut self) -> Result<u32, DecodeError> {
        // Five bytes, the last carrying the top four bits: always fits.
        self.varint(5, 0x0F).map(|n| n as u32)
    }

    pub(super) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed),
        }
    }

    pub(super) fn ballot(&mut self) -> Result<Ballot, DecodeError> {
        let round = self.u32()?;
        Ok(Ballot::new(round, NodeId(self.byte()?)))
    }

    pub(super) fn option_ballot(&mut self) -> Result<Option<Ballot>, DecodeError> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.ballot().map(Some),
            _ => Err(DecodeError::Malformed),
        }
    }
}

/// Types with a hand-written postcard encoding.
pub(crate) trait Compact: Sized {
    /// The encoding.
    fn encode(&self) -> Out;
    /// Decodes one value from the front of `input`.
    fn decode(input: &mut In<'_>) -> Result<Self, DecodeError>;
}

/// Decodes one header or record from the front of `bytes`.
pub(crate) fn take<T: Compact>(bytes: &[u8]) -> Result<(T, &[u8]), DecodeError> {
    let mut input = In::new(bytes);
    let value = T::decode(&mut input)?;
    Ok((value, input.rest()))
}
