//! Tests of the replica's plain state and helper types, written to kill
//! mutants that cargo-mutants found surviving (see `docs/mutants.md`): the
//! state hash the model checker relies on, configuration checks, time and
//! value arithmetic.

use paxos_core::replica::{Config, Event, Replica};
use paxos_core::time::{Duration, Instant};
use paxos_core::{Bytes, NodeId};
use std::hash::{DefaultHasher, Hash, Hasher};

type R = Replica<Bytes<8>, 3, 8>;

const IDS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

fn hash_of(r: &R) -> u64 {
    let mut h = DefaultHasher::new();
    r.hash(&mut h);
    h.finish()
}

fn initial_leader() -> R {
    let mut c = Config::new(NodeId(1), &IDS).unwrap();
    c.initial_leader = Some(NodeId(1));
    Replica::new(c, Instant::ZERO).unwrap()
}

/// The model checker deduplicates states by this hash, so two replicas
/// that differ only in a queue (here: one has not yet reported that it
/// leads) must hash differently, and equal replicas equally.
#[test]
fn replicas_that_differ_only_in_a_queue_hash_differently() {
    let (mut a, b) = (initial_leader(), initial_leader());
    assert_eq!(hash_of(&a), hash_of(&b));
    assert!(matches!(a.poll_event(), Some(Event::LeadershipAcquired { .. })));
    assert_ne!(hash_of(&a), hash_of(&b));
    let mut c = initial_leader();
    let _ = c.poll_event();
    assert_eq!(hash_of(&a), hash_of(&c));
}

/// `Duration` and `Instant` unit conversions and arithmetic.
#[test]
fn time_units_and_arithmetic() {
    let d = Duration::from_millis(1_234);
    assert_eq!(d.as_micros(), 1_234_000);
    assert_eq!(d.as_millis(), 1_234);
    assert_eq!(Duration::from_micros(1_999).as_millis(), 1);
    assert_eq!(Duration::from_secs(3).as_micros(), 3_000_000);
    let t = Instant::from_millis(5);
    assert_eq!(t.as_micros(), 5_000);
    assert_eq!(Instant::from_micros(7).as_micros(), 7);
    assert_eq!((t + d).as_micros(), 1_239_000);
    assert_eq!((t + d) - t, d);
    assert_eq!((t + d).saturating_since(t), d);
    assert_eq!(t.saturating_since(t + d), Duration::ZERO);
    assert_eq!(d + d, Duration::from_millis(2_468));
    assert_eq!(d.saturating_mul(3), Duration::from_millis(3_702));
}

/// Widest encodings, measured: every number at its widest varint, every
/// 8-byte value full. Returns (widest header, widest promise entry,
/// widest value item, widest record), each without the version byte.
fn widest() -> (usize, usize, usize, usize) {
    use paxos_core::replica::wire::{Header, PromisedEntry, Record};
    use paxos_core::Ballot;
    let ballot = Ballot::new(u32::MAX, NodeId(u8::MAX));
    let value = Some(Bytes::<8>::try_from("12345678").unwrap());
    let mut buf = [0u8; 256];
    let mut len = |v: &dyn erased::Encode| v.encoded_len(&mut buf);
    let headers = [
        Header::Prepare {
            ballot,
            from: u64::MAX,
            until: u64::MAX,
        },
        Header::Promise {
            ballot,
            decided: u64::MAX,
            beyond: true,
        },
        Header::Append {
            ballot,
            commit: u64::MAX,
            first: u64::MAX,
            stamp: u64::MAX,
        },
        Header::Accepted {
            ballot,
            first: u64::MAX,
            count: u32::MAX,
            stamp: u64::MAX,
        },
        Header::Nack {
            ballot,
            promised: Some(ballot),
            decided: u64::MAX,
        },
        Header::CatchUp { from: u64::MAX },
        Header::Learn { first: u64::MAX },
    ];
    let records = [
        Record::Promised { ballot },
        Record::Accepted {
            ballot,
            first: u64::MAX,
        },
        Record::Learned { first: u64::MAX },
        Record::Committed { slot: u64::MAX },
        Record::Snapshot { slot: u64::MAX },
    ];
    let header = headers.iter().map(|h| len(h)).max().unwrap();
    let record = records.iter().map(|r| len(r)).max().unwrap();
    let entry = len(&PromisedEntry {
        slot: u64::MAX,
        ballot,
        value: value.clone(),
    });
    (header, entry, len(&value), record)
}

mod erased {
    /// Postcard's encoded length of a value, through one object type.
    pub trait Encode {
        fn encoded_len(&self, buf: &mut [u8]) -> usize;
    }
    impl<T: serde::Serialize> Encode for T {
        fn encoded_len(&self, buf: &mut [u8]) -> usize {
            postcard::to_slice(self, buf).unwrap().len()
        }
    }
}

/// `MAX_MESSAGE_SIZE` is exactly the widest frame's parts, each measured
/// from a real encoding: the version byte, the widest header, a five-byte
/// item count and a promise's worth (`W`) of the widest entries. Smaller,
/// a promise could be dropped; larger, every buffer wastes memory.
#[test]
fn max_message_size_is_the_widest_frame() {
    let (header, entry, ..) = widest();
    assert_eq!(R::MAX_MESSAGE_SIZE, 1 + header + 5 + 8 * entry);
}

/// `MIN_PERSIST_BUFFER` is exactly one widest record holding one widest
/// value: the version byte, the record, a five-byte count, the value.
#[test]
fn min_persist_buffer_is_one_widest_record_with_one_value() {
    let (_, _, item, record) = widest();
    assert_eq!(R::MIN_PERSIST_BUFFER, 1 + record + 5 + item);
}

/// Postcard's length of a full `Bytes<N>` against its `MaxSize`.
fn full_len_and_bound<const N: usize>() -> (usize, usize) {
    use postcard::experimental::max_size::MaxSize;
    let full = Bytes::<N>::from_slice(&[7u8; N]).unwrap();
    let mut buf = vec![0u8; N + 8];
    (
        postcard::to_slice(&full, &mut buf).unwrap().len(),
        Bytes::<N>::POSTCARD_MAX_SIZE,
    )
}

/// A full `Bytes<N>` encodes to exactly its `MaxSize`, on both sides of
/// every varint length step of its length prefix (1, 2 and 3 bytes).
#[test]
fn bytes_max_size_is_exact_across_varint_widths() {
    let sizes = [
        full_len_and_bound::<0>(),
        full_len_and_bound::<127>(),
        full_len_and_bound::<128>(),
        full_len_and_bound::<16_383>(),
        full_len_and_bound::<16_384>(),
    ];
    assert_eq!(
        sizes,
        [(1, 1), (128, 128), (130, 130), (16_385, 16_385), (16_387, 16_387)]
    );
}

/// `Bytes` round-trips through postcard, refuses more than `N` bytes
/// however it is given them (as a byte string or as a sequence, the form
/// self-describing formats use), and reads the same bytes either way.
#[test]
fn bytes_decode_from_byte_strings_and_sequences_within_capacity() {
    use serde::de::value::{Error, SeqDeserializer};
    use serde::Deserialize;
    let v = Bytes::<4>::try_from("abcd").unwrap();
    assert_eq!(v.as_slice(), b"abcd");
    assert_eq!(&*v, b"abcd");
    assert_eq!(Bytes::<4>::try_from(&b"abcd"[..]).unwrap(), v);
    let too_long = Bytes::<4>::try_from("abcde").unwrap_err();
    assert_eq!((too_long.len, too_long.capacity), (5, 4));
    let mut buf = [0u8; 8];
    let encoded = postcard::to_slice(&v, &mut buf).unwrap();
    assert_eq!(encoded, b"\x04abcd");
    assert_eq!(postcard::from_bytes::<Bytes<4>>(encoded).unwrap(), v);
    assert!(postcard::from_bytes::<Bytes<3>>(b"\x04abcd").is_err());
    fn seq(bytes: &[u8]) -> SeqDeserializer<core::iter::Copied<core::slice::Iter<'_, u8>>, Error> {
        SeqDeserializer::new(bytes.iter().copied())
    }
    assert_eq!(Bytes::<4>::deserialize(seq(b"abcd")).unwrap(), v);
    assert_eq!(Bytes::<4>::deserialize(seq(b"")).unwrap(), Bytes::new());
    // The error names the first length over capacity.
    let err = Bytes::<3>::deserialize(seq(b"abcd")).unwrap_err();
    assert_eq!(err.to_string(), "invalid length 4, expected at most 3 bytes");
}
