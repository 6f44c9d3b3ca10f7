//! Properties of the byte-stream framing: round trip, garbage between
//! frames, lost bytes and over-long frames.

use paxos_core::rng::Rng;
use paxos_embedded::framing::{decoder_capacity, encode, max_encoded_len, Decoder, Feed};
use proptest::prelude::*;

/// Payloads longer than this are too long for the decoder under test.
const CAPACITY: usize = 200;

/// Where a byte of the test stream came from.
#[derive(Clone, Copy, PartialEq)]
enum Origin {
    Garbage,
    Frame(usize),
}

/// Unique payloads: the index first, so a received frame names its origin.
fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..260), 1..12).prop_map(|bodies| {
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let mut p = (i as u16).to_le_bytes().to_vec();
                p.extend(body);
                p
            })
            .collect()
    })
}

/// Feeds `stream` in chunks of the given sizes; returns the payloads.
fn decode(stream: &[u8], chunks: &[usize]) -> Vec<Vec<u8>> {
    let mut d = Decoder::<{ decoder_capacity(CAPACITY) }>::new();
    let mut out = Vec::new();
    let mut rest = stream;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap()).clamp(1, rest.len());
        let mut chunk = &rest[..size];
        rest = &rest[size..];
        while !chunk.is_empty() {
            let (taken, feed) = d.feed_slice(chunk);
            if let Feed::Frame(p) = feed {
                out.push(p.to_vec());
            }
            chunk = &chunk[taken..];
        }
    }
    let stats = d.stats();
    assert_eq!(stats.frames, out.len() as u64);
    out
}

fn encoded(payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; max_encoded_len(payload.len())];
    let n = encode(payload, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

proptest! {
    #[test]
    fn round_trip(payloads in payloads(), chunks in prop::collection::vec(1usize..64, 1..8)) {
        let stream: Vec<u8> = payloads.iter().flat_map(|p| encoded(p)).collect();
        let fits: Vec<Vec<u8>> = payloads.iter().filter(|p| p.len() <= CAPACITY).cloned().collect();
        prop_assert_eq!(decode(&stream, &chunks), fits);
    }

    /// Garbage before frames and bytes lost anywhere: every frame handed on
    /// is one that was sent, in order, unchanged; and every frame that
    /// arrived whole after a delimiter (or at the start) is handed on.
    #[test]
    fn garbage_and_drops(
        payloads in payloads(),
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 12),
        drop_permille in 0u32..30,
        seed in any::<u64>(),
        chunks in prop::collection::vec(1usize..64, 1..8),
    ) {
        let mut tagged: Vec<(u8, Origin)> = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            tagged.extend(garbage[i].iter().map(|&b| (b, Origin::Garbage)));
            tagged.extend(encoded(p).into_iter().map(|b| (b, Origin::Frame(i))));
        }
        // Drop bytes with a small seeded generator.
        let mut rng = Rng::new(seed);
        tagged.retain(|_| (rng.next_u64() % 1000) as u32 >= drop_permille);
        let stream: Vec<u8> = tagged.iter().map(|(b, _)| *b).collect();
        let mut guaranteed = vec![false; payloads.len()];
        for (i, p) in payloads.iter().enumerate() {
            let positions: Vec<usize> =
                (0..tagged.len()).filter(|&k| tagged[k].1 == Origin::Frame(i)).collect();
            let whole = positions.len() == encoded(p).len();
            let clean_start = positions.first().is_some_and(|&k| k == 0 || tagged[k - 1].0 == 0);
            guaranteed[i] = whole && clean_start && p.len() <= CAPACITY;
        }
        let received = decode(&stream, &chunks);
        let mut last = None;
        for frame in &received {
            let index = u16::from_le_bytes([frame[0], frame[1]]) as usize;
            prop_assert!(index < payloads.len());
            prop_assert_eq!(frame, &payloads[index], "frame {} changed", index);
            prop_assert!(last.is_none_or(|l| l < index), "frames out of order");
            last = Some(index);
        }
        for (i, g) in guaranteed.iter().enumerate() {
            if *g {
                prop_assert!(
                    received.iter().any(|f| u16::from_le_bytes([f[0], f[1]]) as usize == i),
                    "frame {} arrived whole but was not handed on", i
                );
            }
        }
    }
}

#[test]
fn decoder_never_panics_on_any_bytes() {
    // Every byte value at every decoder state reachable from short inputs.
    let mut d = Decoder::<{ decoder_capacity(8) }>::new();
    let mut rng = Rng::new(0x1234_5678);
    for _ in 0..200_000 {
        let x = rng.next_u64();
        // Zeros often enough to end frames of every length.
        let byte = if x.is_multiple_of(7) { 0 } else { (x >> 8) as u8 };
        let _ = d.feed(byte);
    }
    assert!(d.stats().dropped() > 0);
}
