//! The replica's wire messages and durable records.
//!
//! A frame is `[FORMAT_VERSION][postcard header]` followed, for the kinds
//! that carry values, by a postcard sequence: a varint count, then the
//! items. Items are written straight from the log and read back one by one
//! into the log, so no message ever holds a batch of values in a struct of
//! its own: a batch costs one copy in and one copy out.

pub(super) mod compact;

use crate::ballot::Ballot;
use crate::codec::{DecodeError, EncodeError, FORMAT_VERSION};
pub(crate) use compact::Compact;
use compact::{In, Out};
use core::marker::PhantomData;
use postcard::experimental::max_size::MaxSize;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A position in the replicated log.
pub type Slot = u64;

/// The header of a replica message. The two kinds that carry values are
/// followed by a sequence of items, noted on each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Header {
    /// Phase 1a, from a candidate to every other node: promise `ballot` and
    /// report every value accepted in slots `from..until`.
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// The first slot the candidate has not seen decided.
        from: Slot,
        /// One past the last slot the candidate can hold.
        until: Slot,
    },
    /// Phase 1b, or one part of it. Items: [`PromisedEntry`] for every
    /// slot from `first` in which the acceptor holds a vote below `ballot`,
    /// in slot order. A promise too long for one frame leaves in parts:
    /// the first has `first` = the prepare's `from`, each next one starts
    /// one past the last entry of the one before, and only the last is
    /// `complete`. A part that is not complete carries at least one entry
    /// and answers for `first..=` its last entry's slot; a complete one for
    /// `first..until`. The candidate counts the promise once its parts
    /// cover `from..until`.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The acceptor's decided watermark: every slot below it is decided.
        decided: Slot,
        /// The acceptor holds accepted values at or beyond `until`: the
        /// candidate is too far behind to lead.
        beyond: bool,
        /// The first slot this part answers for.
        first: Slot,
        /// This part ends the promise. Last in the encoding: the sender
        /// writes it after the entries, when it knows whether they all fit.
        complete: bool,
    },
    /// Phase 2a from the leader, and its heartbeat when it carries no
    /// values. Items: `Option<V>` (a value, or a no-op) for the slots
    /// `first..`.
    Append {
        /// The leader's ballot.
        ballot: Ballot,
        /// Every slot below `commit` is decided, with the value the
        /// leader sent under `ballot`.
        commit: Slot,
        /// The slot of the first item.
        first: Slot,
        /// Echoed in the reply; the leader's clock when it sent this, for
        /// the lease.
        stamp: u64,
    },
    /// Phase 2b, to the leader: the sender durably accepted `first..first +
    /// count` under `ballot` (a heartbeat acknowledgement when `count` is 0).
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
        /// The first slot accepted.
        first: Slot,
        /// How many slots.
        count: u32,
        /// The stamp of the append answered.
        stamp: u64,
    },
    /// A refusal of a prepare or an append carrying `ballot`.
    Nack {
        /// The ballot refused.
        ballot: Ballot,
        /// The refuser's promise.
        promised: Option<Ballot>,
        /// The refuser's decided watermark.
        decided: Slot,
    },
    /// "Send me the decided values from `from`": to the leader from a
    /// follower with a gap, or to any node from a candidate that is behind.
    CatchUp {
        /// The first slot the sender lacks.
        from: Slot,
    },
    /// Decided values, in answer to a catch-up. Items: `Option<V>` for the
    /// slots `first..`, every one of them decided.
    Learn {
        /// The slot of the first item.
        first: Slot,
    },
}

/// One item of a [`Header::Promise`]: a slot's accepted value and ballot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PromisedEntry<V> {
    /// The slot.
    pub slot: Slot,
    /// The ballot the value was accepted under.
    pub ballot: Ballot,
    /// The value; `None` is a no-op.
    pub value: Option<V>,
}

/// A durable record. `Accepted` and `Learned` are followed by `Option<V>`
/// items for the slots `first..`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Record {
    /// The acceptor promised `ballot`.
    Promised {
        /// The ballot.
        ballot: Ballot,
    },
    /// The acceptor accepted the following values under `ballot`.
    Accepted {
        /// The ballot.
        ballot: Ballot,
        /// The slot of the first value.
        first: Slot,
    },
    /// The following values, for the slots `first..`, are decided
    /// (learned from another node).
    Learned {
        /// The slot of the first value.
        first: Slot,
    },
    /// Every slot below `slot` is decided.
    Committed {
        /// The watermark.
        slot: Slot,
    },
    /// The application installed a snapshot covering every slot below
    /// `slot`: older records are no longer needed.
    Snapshot {
        /// The first slot not covered.
        slot: Slot,
    },
    /// This node restarted with no records: whatever it promised and
    /// accepted before is lost, so it learns decided values and never
    /// promises, accepts or leads again under its identity.
    Amnesiac,
}

/// Writes postcard encodings into a buffer, tracking the position.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    /// A writer that starts the frame with the version byte.
    pub(crate) fn frame(buf: &'b mut [u8]) -> Result<Self, EncodeError> {
        let mut w = Writer { buf, len: 0 };
        w.put(&FORMAT_VERSION)?;
        Ok(w)
    }

    /// Appends one postcard value.
    pub(crate) fn put<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let rest = self.buf.get_mut(self.len..).unwrap_or_default();
        match postcard::to_slice(value, rest) {
            Ok(written) => {
                self.len += written.len();
                Ok(())
            }
            Err(postcard::Error::SerializeBufferFull) => Err(EncodeError::BufferTooSmall {
                required: self.len + postcard::experimental::serialized_size(value).unwrap_or(0),
            }),
            Err(_) => Err(EncodeError::Unserializable),
        }
    }

    /// Appends a header or record through its hand-written encoding.
    pub(crate) fn put_compact<T: Compact>(&mut self, value: &T) -> Result<(), EncodeError> {
        let out = value.encode();
        let bytes = out.bytes();
        let end = self.len + bytes.len();
        let dest = self
            .buf
            .get_mut(self.len..end)
            .ok_or(EncodeError::BufferTooSmall { required: end })?;
        dest.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Appends a count as a varint (tests build frames by hand with it).
    #[cfg(test)]
    pub(crate) fn put_count(&mut self, count: u32) -> Result<(), EncodeError> {
        self.put(&count)
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Forgets everything written after `len`.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// Writes a count placeholder of fixed width so it can be patched
    /// after the items are written; returns its position.
    pub(crate) fn reserve_count(&mut self) -> Result<usize, EncodeError> {
        let at = self.len;
        // Five bytes hold any u32 varint; a padded varint (0x80 continuation
        // bytes) decodes to the same number.
        if self.remaining() < 5 {
            return Err(EncodeError::BufferTooSmall { required: self.len + 5 });
        }
        self.len += 5;
        Ok(at)
    }

    /// Overwrites the byte at `at`, written earlier (a header's last
    /// flag, known only once the items after it are written).
    pub(crate) fn patch_byte(&mut self, at: usize, byte: u8) {
        if let Some(b) = self.buf.get_mut(at) {
            *b = byte;
        }
    }

    /// Patches a count written with [`Writer::reserve_count`].
    pub(crate) fn patch_count(&mut self, at: usize, count: u32) {
        if let Some(slot) = self.buf.get_mut(at..at + 5) {
            let mut n = count;
            for (i, byte) in slot.iter_mut().enumerate() {
                let low = (n & 0x7F) as u8;
                n >>= 7;
                *byte = if i < 4 { low | 0x80 } else { low };
            }
        }
    }
}

/// Splits a frame into its header and the bytes after it.
pub fn decode_header<H: DeserializeOwned + MaxSize>(frame: &[u8]) -> Result<(H, &[u8]), DecodeError> {
    let (&version, body) = frame.split_first().ok_or(DecodeError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    take(body)
}

/// Splits a frame into its header (or record) and the bytes after it,
/// through the hand-written decoder.
pub(crate) fn decode_frame<T: Compact>(frame: &[u8]) -> Result<(T, &[u8]), DecodeError> {
    let (&version, body) = frame.split_first().ok_or(DecodeError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    compact::take(body)
}

/// Decodes one postcard value from the front of `bytes`.
pub(crate) fn take<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, &[u8]), DecodeError> {
    postcard::take_from_bytes(bytes).map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
        _ => DecodeError::Malformed,
    })
}

/// The items that follow a header: a count, then that many `T`, decoded
/// lazily. Once all are read, [`Items::finish`] checks nothing trails.
#[derive(Debug)]
pub struct Items<'a, T> {
    rest: &'a [u8],
    remaining: u32,
    _item: PhantomData<T>,
}

impl<'a, T: DeserializeOwned> Items<'a, T> {
    /// Reads the count at the front of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut input = compact::In::new(bytes);
        let remaining = input.count()?;
        let rest = input.rest();
        Ok(Items {
            rest,
            remaining,
            _item: PhantomData,
        })
    }

    /// How many items are left.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Checks that every item was read and nothing follows.
    pub fn finish(self) -> Result<&'a [u8], DecodeError> {
        if self.remaining == 0 {
            Ok(self.rest)
        } else {
            Err(DecodeError::Truncated)
        }
    }
}

impl<T: DeserializeOwned> Iterator for Items<'_, T> {
    type Item = Result<T, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        match take::<T>(self.rest) {
            Ok((item, rest)) => {
                self.rest = rest;
                self.remaining -= 1;
                Some(Ok(item))
            }
            Err(e) => {
                // Stop here: nothing after a bad item can be trusted.
                self.remaining = 0;
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ballot::NodeId;

    /// A write that does not fit says how long the frame would have been,
    /// and leaves the writer as it was; a count needs its five bytes.
    #[test]
    fn writes_that_do_not_fit_name_the_length_required() {
        let mut buf = [0u8; 8];
        let mut w = Writer::frame(&mut buf).unwrap();
        w.put(&[1u8, 2, 3]).unwrap();
        assert_eq!(w.len(), 4);
        assert_eq!(w.put(&[0u8; 6]), Err(EncodeError::BufferTooSmall { required: 4 + 6 }));
        assert_eq!(w.len(), 4);
        assert_eq!(w.remaining(), 4);
        assert_eq!(w.reserve_count(), Err(EncodeError::BufferTooSmall { required: 4 + 5 }));
        w.truncate(3);
        assert_eq!(w.len(), 3);
        assert_eq!(w.reserve_count(), Ok(3), "exactly five bytes left is enough");
        assert_eq!(w.remaining(), 0);
    }

    #[test]
    fn padded_counts_decode_to_the_same_number() {
        let mut buf = [0u8; 32];
        let mut w = Writer::frame(&mut buf).unwrap();
        let at = w.reserve_count().unwrap();
        w.put(&Some(7u8)).unwrap();
        w.put(&None::<u8>).unwrap();
        w.patch_count(at, 2);
        let len = w.len();
        let body = &buf[1..len];
        let items: Result<heapless::Vec<Option<u8>, 4>, _> = Items::<Option<u8>>::new(body).unwrap().collect();
        assert_eq!(items.unwrap().as_slice(), &[Some(7), None]);
        for count in [0u32, 1, 127, 128, 300_000, u32::MAX] {
            let mut buf = [0u8; 8];
            let mut w = Writer::frame(&mut buf).unwrap();
            let at = w.reserve_count().unwrap();
            w.patch_count(at, count);
            assert_eq!(take::<u32>(&buf[1..6]).unwrap().0, count);
        }
    }

    #[test]
    fn headers_round_trip_and_bad_items_stop_iteration() {
        let h = Header::Append {
            ballot: Ballot::new(3, NodeId(1)),
            commit: 9,
            first: 10,
            stamp: 77,
        };
        let mut buf = [0u8; 64];
        let mut w = Writer::frame(&mut buf).unwrap();
        w.put(&h).unwrap();
        w.put(&2u32).unwrap();
        w.put(&Some(5u8)).unwrap();
        // A bad Option tag as the second item.
        w.put(&9u8).unwrap();
        let len = w.len();
        let (got, rest) = decode_header::<Header>(&buf[..len]).unwrap();
        assert_eq!(got, h);
        let mut items = Items::<Option<u8>>::new(rest).unwrap();
        assert_eq!(items.next(), Some(Ok(Some(5))));
        assert_eq!(items.next(), Some(Err(DecodeError::Malformed)));
        assert_eq!(items.next(), None);
        assert_eq!(decode_header::<Header>(&[]), Err(DecodeError::Empty));
        assert_eq!(decode_header::<Header>(&[0xEE]), Err(DecodeError::UnknownVersion(0xEE)));
    }
}

// The hand-written fast path of each frame type; its derive(Serialize,
// Deserialize) is the specification, and `compact_tests` holds the two to
// the same bytes.

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
                first,
                complete,
            } => {
                o.byte(1);
                o.ballot(ballot);
                o.varint(decided);
                o.byte(u8::from(beyond));
                o.varint(first);
                o.byte(u8::from(complete));
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
                first: i.u64()?,
                complete: i.bool()?,
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

#[cfg(test)]
mod compact_tests {
    use super::compact::{take as compact_take, In};
    use super::*;
    use crate::ballot::NodeId;
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
            (ballot(), any::<u64>(), any::<bool>(), any::<u64>(), any::<bool>()).prop_map(
                |(ballot, decided, beyond, first, complete)| Header::Promise {
                    ballot,
                    decided,
                    beyond,
                    first,
                    complete,
                }
            ),
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
            prop_assert_eq!(compact_take::<Header>(&b), super::take::<Header>(&b));
            prop_assert_eq!(compact_take::<Record>(&b), super::take::<Record>(&b));
            prop_assert_eq!(In::new(&b).count(), super::take::<u32>(&b).map(|(n, _)| n));
        }
    }
}
