//! Hand-written encoding of headers and records: the same bytes postcard
//! writes for them (varints, variant indices, raw node bytes), without
//! serde's visitor machinery on the hot path. Every message and every
//! record passes through here, so this is where instructions per commit
//! are won; a property test checks byte-for-byte agreement with postcard,
//! both ways, on arbitrary input.

use super::wire::{Header, Record};
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
    fn new() -> Self {
        Out {
            buf: [0; MAX_COMPACT],
            len: 0,
        }
    }

    /// The bytes written.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    fn byte(&mut self, b: u8) {
        if let Some(at) = self.buf.get_mut(self.len) {
            *at = b;
            self.len += 1;
        }
    }

    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.byte((n as u8) | 0x80);
            n >>= 7;
        }
        self.byte(n as u8);
    }

    fn ballot(&mut self, b: Ballot) {
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

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    /// A varint of at most `max_bytes` bytes whose last byte may carry at
    /// most `last_max`: postcard's rule, so the same inputs are refused.
    #[inline]
    fn varint(&mut self, max_bytes: usize, last_max: u8) -> Result<u64, DecodeError> {
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

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.varint(10, 0x01)
    }

    /// An item count (a `u32` varint).
    pub(crate) fn count(&mut self) -> Result<u32, DecodeError> {
        self.u32()
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        // Five bytes, the last carrying the top four bits: always fits.
        self.varint(5, 0x0F).map(|n| n as u32)
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed),
        }
    }

    fn ballot(&mut self) -> Result<Ballot, DecodeError> {
        let round = self.u32()?;
        Ok(Ballot::new(round, NodeId(self.byte()?)))
    }

    fn option_ballot(&mut self) -> Result<Option<Ballot>, DecodeError> {
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

impl Compact for Header {
    fn encode(&self) -> Out {
        let mut o = Out::new();
        match *self {
            Header::Prepare { ballot, from, until } => {
                o.byte(0);
                o.ballot(ballot);
                o.varint(from);
                o.varint(until);
            }
            Header::Promise {
                ballot,
                decided,
                beyond,
            } => {
                o.byte(1);
                o.ballot(ballot);
                o.varint(decided);
                o.byte(u8::from(beyond));
            }
            Header::Append {
                ballot,
                commit,
                first,
                stamp,
            } => {
                o.byte(2);
                o.ballot(ballot);
                o.varint(commit);
                o.varint(first);
                o.varint(stamp);
            }
            Header::Accepted {
                ballot,
                first,
                count,
                stamp,
            } => {
                o.byte(3);
                o.ballot(ballot);
                o.varint(first);
                o.varint(u64::from(count));
                o.varint(stamp);
            }
            Header::Nack {
                ballot,
                promised,
                decided,
            } => {
                o.byte(4);
                o.ballot(ballot);
                match promised {
                    None => o.byte(0),
                    Some(p) => {
                        o.byte(1);
                        o.ballot(p);
                    }
                }
                o.varint(decided);
            }
            Header::CatchUp { from } => {
                o.byte(5);
                o.varint(from);
            }
            Header::Learn { first } => {
                o.byte(6);
                o.varint(first);
            }
        }
        o
    }

    fn decode(i: &mut In<'_>) -> Result<Self, DecodeError> {
        Ok(match i.u32()? {
            0 => Header::Prepare {
                ballot: i.ballot()?,
                from: i.u64()?,
                until: i.u64()?,
            },
            1 => Header::Promise {
                ballot: i.ballot()?,
                decided: i.u64()?,
                beyond: i.bool()?,
            },
            2 => Header::Append {
                ballot: i.ballot()?,
                commit: i.u64()?,
                first: i.u64()?,
                stamp: i.u64()?,
            },
            3 => Header::Accepted {
                ballot: i.ballot()?,
                first: i.u64()?,
                count: i.u32()?,
                stamp: i.u64()?,
            },
            4 => Header::Nack {
                ballot: i.ballot()?,
                promised: i.option_ballot()?,
                decided: i.u64()?,
            },
            5 => Header::CatchUp { from: i.u64()? },
            6 => Header::Learn { first: i.u64()? },
            _ => return Err(DecodeError::Malformed),
        })
    }
}

impl Compact for Record {
    fn encode(&self) -> Out {
        let mut o = Out::new();
        match *self {
            Record::Promised { ballot } => {
                o.byte(0);
                o.ballot(ballot);
            }
            Record::Accepted { ballot, first } => {
                o.byte(1);
                o.ballot(ballot);
                o.varint(first);
            }
            Record::Learned { first } => {
                o.byte(2);
                o.varint(first);
            }
            Record::Committed { slot } => {
                o.byte(3);
                o.varint(slot);
            }
            Record::Snapshot { slot } => {
                o.byte(4);
                o.varint(slot);
            }
            Record::Amnesiac => o.byte(5),
        }
        o
    }

    fn decode(i: &mut In<'_>) -> Result<Self, DecodeError> {
        Ok(match i.u32()? {
            0 => Record::Promised { ballot: i.ballot()? },
            1 => Record::Accepted {
                ballot: i.ballot()?,
                first: i.u64()?,
            },
            2 => Record::Learned { first: i.u64()? },
            3 => Record::Committed { slot: i.u64()? },
            4 => Record::Snapshot { slot: i.u64()? },
            5 => Record::Amnesiac,
            _ => return Err(DecodeError::Malformed),
        })
    }
}

/// Decodes one header or record from the front of `bytes`.
pub(crate) fn take<T: Compact>(bytes: &[u8]) -> Result<(T, &[u8]), DecodeError> {
    let mut input = In::new(bytes);
    let value = T::decode(&mut input)?;
    Ok((value, input.rest()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::wire;
    use proptest::prelude::*;

    fn ballot() -> impl Strategy<Value = Ballot> {
        (any::<u32>(), any::<u8>()).prop_map(|(r, n)| Ballot::new(r, NodeId(n)))
    }

    fn header() -> impl Strategy<Value = Header> {
        prop_oneof![
            (ballot(), any::<u64>(), any::<u64>()).prop_map(|(ballot, from, until)| Header::Prepare {
                ballot,
                from,
                until
            }),
            (ballot(), any::<u64>(), any::<bool>()).prop_map(|(ballot, decided, beyond)| Header::Promise {
                ballot,
                decided,
                beyond
            }),
            (ballot(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(ballot, commit, first, stamp)| {
                Header::Append {
                    ballot,
                    commit,
                    first,
                    stamp,
                }
            }),
            (ballot(), any::<u64>(), any::<u32>(), any::<u64>()).prop_map(|(ballot, first, count, stamp)| {
                Header::Accepted {
                    ballot,
                    first,
                    count,
                    stamp,
                }
            }),
            (ballot(), proptest::option::of(ballot()), any::<u64>()).prop_map(|(ballot, promised, decided)| {
                Header::Nack {
                    ballot,
                    promised,
                    decided,
                }
            }),
            any::<u64>().prop_map(|from| Header::CatchUp { from }),
            any::<u64>().prop_map(|first| Header::Learn { first }),
        ]
    }

    fn record() -> impl Strategy<Value = Record> {
        prop_oneof![
            ballot().prop_map(|ballot| Record::Promised { ballot }),
            (ballot(), any::<u64>()).prop_map(|(ballot, first)| Record::Accepted { ballot, first }),
            any::<u64>().prop_map(|first| Record::Learned { first }),
            any::<u64>().prop_map(|slot| Record::Committed { slot }),
            any::<u64>().prop_map(|slot| Record::Snapshot { slot }),
            Just(Record::Amnesiac),
        ]
    }

    /// Arbitrary bytes, biased towards the shapes of real encodings.
    fn bytes() -> impl Strategy<Value = std::vec::Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                0u8..8,
                any::<u8>(),
                Just(0x80u8),
                Just(0xFFu8),
                Just(0x01u8),
                Just(0x0Fu8)
            ],
            0..36,
        )
    }

    extern crate std;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn headers_encode_as_postcard_does(h in header()) {
            let mut buf = [0u8; 64];
            let expected = postcard::to_slice(&h, &mut buf).unwrap();
            let out = h.encode();
            prop_assert_eq!(out.bytes(), &*expected);
        }

        #[test]
        fn records_encode_as_postcard_does(r in record()) {
            let mut buf = [0u8; 64];
            let expected = postcard::to_slice(&r, &mut buf).unwrap();
            let out = r.encode();
            prop_assert_eq!(out.bytes(), &*expected);
        }

        #[test]
        fn any_bytes_decode_as_postcard_does(b in bytes()) {
            prop_assert_eq!(take::<Header>(&b), wire::take::<Header>(&b));
            prop_assert_eq!(take::<Record>(&b), wire::take::<Record>(&b));
            prop_assert_eq!(In::new(&b).count(), wire::take::<u32>(&b).map(|(n, _)| n));
        }
    }
}
