//! The plain types: `Duration` and `Instant` arithmetic, `Bytes` as a
//! serde value, and the `Hash` of a `Replica` that the model checker
//! deduplicates states by.

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
    let c = Config::builder(NodeId(1), &IDS)
        .initial_leader(NodeId(1))
        .build()
        .unwrap();
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
