//! Property tests of the codec: round trips and size bounds for every
//! single-decree message and the practical durable record, and typed errors
//! (never a panic) for arbitrary and mutated frames.

use paxos_core::practical::DurableState;
use paxos_core::{
    decode, encode, max_encoded_size, Ballot, Bytes, DecodeError, EncodeError, Message, NodeId, Proposal,
    FORMAT_VERSION,
};
use proptest::prelude::*;

type V = Bytes<64>;
type Msg = Message<V>;
type State = DurableState<V>;

const MSG_MAX: usize = max_encoded_size::<Msg>();
const STATE_MAX: usize = max_encoded_size::<State>();

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Any `u32`, but with every varint length (1 to 5 bytes) well represented:
/// a uniform `u32` almost always takes 5 bytes.
fn round() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => (any::<u32>(), 0u32..32).prop_map(|(r, shift)| r >> shift),
        1 => any::<u32>(),
        1 => Just(u32::MAX),
        1 => Just(0u32),
    ]
}

fn ballot() -> impl Strategy<Value = Ballot> {
    (round(), any::<u8>()).prop_map(|(r, n)| Ballot::new(r, NodeId(n)))
}

/// 0..=64 bytes, with the empty and the full value more frequent.
fn value() -> impl Strategy<Value = V> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..=64),
        1 => prop::collection::vec(any::<u8>(), 64),
        1 => Just(Vec::new()),
    ]
    .prop_map(|v| Bytes::from_slice(&v).expect("at most 64 bytes"))
}

fn proposal() -> impl Strategy<Value = Proposal<V>> {
    (ballot(), value()).prop_map(|(b, v)| Proposal::new(b, v))
}

fn message() -> impl Strategy<Value = Msg> {
    prop_oneof![
        ballot().prop_map(|ballot| Message::Prepare { ballot }),
        ballot().prop_map(|ballot| Message::Promise { ballot, accepted: None }),
        (ballot(), proposal()).prop_map(|(ballot, p)| Message::Promise {
            ballot,
            accepted: Some(p)
        }),
        (ballot(), value()).prop_map(|(ballot, value)| Message::Accept { ballot, value }),
        (ballot(), value()).prop_map(|(ballot, value)| Message::Accepted { ballot, value }),
        (ballot(), ballot()).prop_map(|(ballot, promised)| Message::PrepareNack { ballot, promised }),
        (ballot(), ballot()).prop_map(|(ballot, promised)| Message::AcceptNack { ballot, promised }),
    ]
}

fn durable_state() -> impl Strategy<Value = State> {
    (prop::option::of(ballot()), prop::option::of(proposal()), round()).prop_map(|(promised, accepted, round)| {
        DurableState {
            promised,
            accepted,
            round,
        }
    })
}

/// A frame of either type: the message or record it holds, and its bytes.
fn valid_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        message().prop_map(|m| Frame::Msg(m.clone(), encode_vec(&m, MSG_MAX))),
        durable_state().prop_map(|s| Frame::State(s.clone(), encode_vec(&s, STATE_MAX))),
    ]
}

#[derive(Clone, Debug)]
enum Frame {
    Msg(Msg, Vec<u8>),
    State(State, Vec<u8>),
}

impl Frame {
    fn bytes(&self) -> &[u8] {
        match self {
            Frame::Msg(_, b) | Frame::State(_, b) => b,
        }
    }

    fn max(&self) -> usize {
        match self {
            Frame::Msg(..) => MSG_MAX,
            Frame::State(..) => STATE_MAX,
        }
    }

    /// Whether the frame decodes back to the value it was encoded from.
    fn round_trips(&self) -> bool {
        match self {
            Frame::Msg(m, b) => decode::<Msg>(b).as_ref() == Ok(m),
            Frame::State(s, b) => decode::<State>(b).as_ref() == Ok(s),
        }
    }

    /// Decodes `bytes` as this frame's type, keeping only the error.
    fn decode_err(&self, bytes: &[u8]) -> Result<(), DecodeError> {
        match self {
            Frame::Msg(..) => decode::<Msg>(bytes).map(drop),
            Frame::State(..) => decode::<State>(bytes).map(drop),
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn encode_vec<M: serde::Serialize>(m: &M, max: usize) -> Vec<u8> {
    // One byte more than the bound, so that a bound that is too small shows
    // up as a length check failure rather than as `BufferTooSmall`.
    let mut buf = vec![0u8; max + 1];
    encode(m, &mut buf).expect("encodes").to_vec()
}

/// Fails on any error variant this file does not know: the decoder's errors
/// are a closed, typed set.
fn assert_typed(e: &DecodeError) {
    match e {
        DecodeError::Empty
        | DecodeError::UnknownVersion(_)
        | DecodeError::Oversized { .. }
        | DecodeError::Truncated
        | DecodeError::TrailingBytes
        | DecodeError::Malformed => {}
        other => panic!("unexpected decode error {other:?}"),
    }
}

/// Whatever `bytes` are, decoding gives a value or a typed error that agrees
/// with the frame's length and version byte; a value decoded from arbitrary
/// bytes re-encodes to a frame no longer than the input (postcard accepts
/// non-canonical varints, so not necessarily the same bytes) that decodes to
/// the same value.
fn check_decode_any<M>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    M: serde::Serialize
        + serde::de::DeserializeOwned
        + postcard::experimental::max_size::MaxSize
        + PartialEq
        + core::fmt::Debug,
{
    let max = max_encoded_size::<M>();
    match decode::<M>(bytes) {
        Ok(m) => {
            prop_assert!(!bytes.is_empty() && bytes.len() <= max);
            prop_assert_eq!(bytes[0], FORMAT_VERSION);
            let again = encode_vec(&m, max);
            prop_assert!(again.len() <= bytes.len());
            prop_assert_eq!(decode::<M>(&again), Ok(m));
        }
        Err(e) => {
            assert_typed(&e);
            if bytes.len() > max {
                prop_assert_eq!(e, DecodeError::Oversized { len: bytes.len(), max });
            } else if bytes.is_empty() {
                prop_assert_eq!(e, DecodeError::Empty);
            } else if bytes[0] != FORMAT_VERSION {
                prop_assert_eq!(e, DecodeError::UnknownVersion(bytes[0]));
            } else {
                prop_assert!(matches!(
                    e,
                    DecodeError::Truncated | DecodeError::TrailingBytes | DecodeError::Malformed
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Round trips and bounds
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn message_round_trips_within_bound(m in message()) {
        let mut buf = [0u8; MSG_MAX];
        let frame = encode(&m, &mut buf).expect("the bound is large enough");
        prop_assert!(frame.len() <= MSG_MAX);
        prop_assert_eq!(frame[0], FORMAT_VERSION);
        prop_assert_eq!(decode::<Msg>(frame), Ok(m.clone()));
        // The exact size is enough, one byte less is refused with that size.
        let len = frame.len();
        let mut exact = vec![0u8; len];
        prop_assert_eq!(encode(&m, &mut exact).map(<[u8]>::len), Ok(len));
        let mut short = vec![0u8; len - 1];
        prop_assert_eq!(
            encode(&m, &mut short).map(<[u8]>::len),
            Err(EncodeError::BufferTooSmall { required: len })
        );
    }

    #[test]
    fn durable_state_round_trips_within_bound(s in durable_state()) {
        let mut buf = [0u8; STATE_MAX];
        let frame = encode(&s, &mut buf).expect("the bound is large enough");
        prop_assert!(frame.len() <= STATE_MAX);
        prop_assert_eq!(frame[0], FORMAT_VERSION);
        prop_assert_eq!(decode::<State>(frame), Ok(s));
    }
}

/// Every variant, at its largest: a 64-byte value and `u32::MAX` rounds.
fn largest_messages() -> Vec<Msg> {
    let b = Ballot::new(u32::MAX, NodeId(u8::MAX));
    let v = Bytes::from_slice(&[0xA5; 64]).unwrap();
    vec![
        Message::Prepare { ballot: b },
        Message::Promise {
            ballot: b,
            accepted: None,
        },
        Message::Promise {
            ballot: b,
            accepted: Some(Proposal::new(b, v.clone())),
        },
        Message::Accept {
            ballot: b,
            value: v.clone(),
        },
        Message::Accepted { ballot: b, value: v },
        Message::PrepareNack { ballot: b, promised: b },
        Message::AcceptNack { ballot: b, promised: b },
    ]
}

#[test]
fn bounds_are_tight() {
    // Version + variant tag + ballot (5 + 1) + Some + ballot (5 + 1) +
    // length + 64 bytes.
    assert_eq!(MSG_MAX, 1 + 1 + 6 + 1 + 6 + 1 + 64);
    let lens: Vec<usize> = largest_messages()
        .iter()
        .map(|m| {
            let frame = encode_vec(m, MSG_MAX);
            assert_eq!(decode::<Msg>(&frame).as_ref(), Ok(m));
            frame.len()
        })
        .collect();
    assert!(lens.iter().all(|&l| l <= MSG_MAX), "{lens:?}");
    let largest = *lens.iter().max().unwrap();
    assert!(
        MSG_MAX - largest <= 2,
        "bound {MSG_MAX} is loose: the largest message takes {largest}"
    );
    assert_eq!(largest, MSG_MAX, "a promise carrying a full proposal");

    // Some + ballot + Some + ballot + length + 64 bytes + round.
    assert_eq!(STATE_MAX, 1 + 1 + 6 + 1 + 6 + 1 + 64 + 5);
    let b = Ballot::new(u32::MAX, NodeId(u8::MAX));
    let full = DurableState {
        promised: Some(b),
        accepted: Some(Proposal::new(b, Bytes::from_slice(&[0x5A; 64]).unwrap())),
        round: u32::MAX,
    };
    let frame = encode_vec(&full, STATE_MAX);
    assert_eq!(decode::<State>(&frame), Ok(full));
    assert_eq!(frame.len(), STATE_MAX);
}

// ---------------------------------------------------------------------------
// Arbitrary and mutated bytes
// ---------------------------------------------------------------------------

/// Arbitrary bytes, half of them starting with the right version byte (the
/// other half mostly exercise `UnknownVersion`).
fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    (any::<bool>(), prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(versioned, mut v)| {
        if versioned {
            if let Some(first) = v.first_mut() {
                *first = FORMAT_VERSION;
            }
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in arbitrary_bytes()) {
        check_decode_any::<Msg>(&bytes)?;
        check_decode_any::<State>(&bytes)?;
        check_decode_any::<V>(&bytes)?;
        check_decode_any::<Ballot>(&bytes)?;
    }

    /// Short arbitrary frames, where the version byte is right and the
    /// length is within the bound: these reach the body decoder.
    #[test]
    fn arbitrary_short_bodies_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..STATE_MAX),
    ) {
        let mut bytes = vec![FORMAT_VERSION];
        bytes.extend_from_slice(&body);
        check_decode_any::<Msg>(&bytes)?;
        check_decode_any::<State>(&bytes)?;
        check_decode_any::<V>(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_strict_prefix_is_truncated(f in valid_frame()) {
        let bytes = f.bytes();
        prop_assert_eq!(f.decode_err(&[]), Err(DecodeError::Empty));
        for len in 1..bytes.len() {
            prop_assert_eq!(
                f.decode_err(&bytes[..len]),
                Err(DecodeError::Truncated),
                "prefix of {} of {:02x?}", len, bytes
            );
        }
        prop_assert!(f.round_trips());
    }

    #[test]
    fn appended_bytes_are_trailing_or_oversized(
        f in valid_frame(),
        extra in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let max = f.max();
        for n in 1..=extra.len() {
            let mut bytes = f.bytes().to_vec();
            bytes.extend_from_slice(&extra[..n]);
            let expected = if bytes.len() > max {
                DecodeError::Oversized { len: bytes.len(), max }
            } else {
                DecodeError::TrailingBytes
            };
            prop_assert_eq!(f.decode_err(&bytes), Err(expected), "{:02x?}", bytes);
        }
    }

    #[test]
    fn a_wrong_version_is_named(f in valid_frame(), version in any::<u8>()) {
        prop_assume!(version != FORMAT_VERSION);
        let mut bytes = f.bytes().to_vec();
        bytes[0] = version;
        prop_assert_eq!(f.decode_err(&bytes), Err(DecodeError::UnknownVersion(version)));
    }

    #[test]
    fn single_byte_flips_never_panic(
        f in valid_frame(),
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let mut bytes = f.bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] ^= mask;
        match &f {
            Frame::Msg(..) => check_decode_any::<Msg>(&bytes)?,
            Frame::State(..) => check_decode_any::<State>(&bytes)?,
        }
        if i == 0 {
            prop_assert_eq!(
                f.decode_err(&bytes),
                Err(DecodeError::UnknownVersion(FORMAT_VERSION ^ mask))
            );
        }
    }

    /// Every byte of a frame flipped in turn, with a random mask: a frame's
    /// every field boundary gets hit.
    #[test]
    fn flips_at_every_position_never_panic(f in valid_frame(), mask in 1u8..=255) {
        for i in 0..f.bytes().len() {
            let mut bytes = f.bytes().to_vec();
            bytes[i] ^= mask;
            match &f {
                Frame::Msg(..) => check_decode_any::<Msg>(&bytes)?,
                Frame::State(..) => check_decode_any::<State>(&bytes)?,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Bytes<N>: too long is an error, never a truncation
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// A byte string of `len` bytes decoded as `Bytes<N>`: `Ok` with the
    /// same bytes if `len <= N`, otherwise an error. A bare over-long
    /// `Bytes<N>` frame is always longer than `Bytes<N>`'s bound, so it is
    /// refused as `Oversized` before its body is read.
    #[test]
    fn bare_bytes_longer_than_capacity_are_refused(
        data in prop::collection::vec(any::<u8>(), 0..=200),
    ) {
        let src = Bytes::<200>::from_slice(&data).unwrap();
        let frame = encode_vec(&src, max_encoded_size::<Bytes<200>>());
        fn check<const N: usize>(frame: &[u8], data: &[u8]) -> Result<(), TestCaseError> {
            match decode::<Bytes<N>>(frame) {
                Ok(b) => {
                    prop_assert!(data.len() <= N);
                    prop_assert_eq!(b.as_slice(), data);
                }
                Err(e) => {
                    prop_assert!(data.len() > N, "{} bytes refused by Bytes<{}>: {:?}", data.len(), N, e);
                    prop_assert!(
                        matches!(e, DecodeError::Oversized { .. } | DecodeError::Malformed),
                        "{:?}", e
                    );
                }
            }
            Ok(())
        }
        check::<0>(&frame, &data)?;
        check::<1>(&frame, &data)?;
        check::<16>(&frame, &data)?;
        check::<63>(&frame, &data)?;
        check::<64>(&frame, &data)?;
        check::<127>(&frame, &data)?;
        check::<128>(&frame, &data)?;
        check::<200>(&frame, &data)?;
    }

    /// Inside a message or record, an over-long value fits the frame bound
    /// (other variants are larger), so it reaches the `Bytes` decoder and
    /// must be `Malformed`, never accepted cut down to 64 bytes.
    #[test]
    fn over_long_values_inside_frames_are_malformed(
        b in ballot(),
        p in ballot(),
        len in 65usize..=96,
        kind in 0u8..4,
    ) {
        let v = Bytes::<96>::from_slice(&vec![0xEE; len]).unwrap();
        let (frame, max, result) = match kind {
            0..=2 => {
                let m: Message<Bytes<96>> = match kind {
                    0 => Message::Accept { ballot: b, value: v },
                    1 => Message::Accepted { ballot: b, value: v },
                    _ => Message::Promise { ballot: b, accepted: Some(Proposal::new(p, v)) },
                };
                let frame = encode_vec(&m, max_encoded_size::<Message<Bytes<96>>>());
                let r = decode::<Msg>(&frame).map(drop);
                (frame, MSG_MAX, r)
            }
            _ => {
                let s: DurableState<Bytes<96>> = DurableState {
                    promised: None,
                    accepted: Some(Proposal::new(b, v)),
                    round: 0,
                };
                let frame = encode_vec(&s, max_encoded_size::<DurableState<Bytes<96>>>());
                let r = decode::<State>(&frame).map(drop);
                (frame, STATE_MAX, r)
            }
        };
        if frame.len() > max {
            prop_assert_eq!(result, Err(DecodeError::Oversized { len: frame.len(), max }));
        } else {
            prop_assert_eq!(result, Err(DecodeError::Malformed), "{:02x?}", frame);
        }
    }
}

/// The smallest over-long case, by hand: a 65-byte `Accept` under a small
/// ballot is well within the message bound and is refused as `Malformed`.
#[test]
fn sixty_five_bytes_are_malformed_not_truncated() {
    let v = Bytes::<65>::from_slice(&[1; 65]).unwrap();
    let m = Message::Accept {
        ballot: Ballot::new(1, NodeId(0)),
        value: v,
    };
    let frame = encode_vec(&m, max_encoded_size::<Message<Bytes<65>>>());
    assert!(frame.len() < MSG_MAX);
    assert_eq!(decode::<Msg>(&frame), Err(DecodeError::Malformed));
    // The same 65 bytes as a bare `Bytes<64>` frame exceed its bound.
    let bare = encode_vec(
        &Bytes::<65>::from_slice(&[1; 65]).unwrap(),
        max_encoded_size::<Bytes<65>>(),
    );
    assert_eq!(
        decode::<V>(&bare),
        Err(DecodeError::Oversized {
            len: 67,
            max: max_encoded_size::<V>()
        })
    );
}
