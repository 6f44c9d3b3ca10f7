//! Helpers shared by the replica test files: a three-node cluster's
//! configuration, time in milliseconds, frames built from headers and
//! items, and a driver step that writes and confirms every record.

// Each test file uses its own subset.
#![allow(dead_code)]

use paxos_core::codec::encode;
use paxos_core::replica::wire::{decode_header, Header, Items, Record};
use paxos_core::replica::{Config, Replica};
use paxos_core::time::{Duration, Instant};
use paxos_core::{Ballot, Bytes, NodeId};

/// The value type of the tests.
pub type V = Bytes<8>;
/// A replica of three nodes with a window of eight slots.
pub type R = Replica<V, 3, 8>;

/// The members.
pub const IDS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

/// Node `id`'s configuration, with `initial_leader` if any.
pub fn config(id: u8, initial_leader: Option<u8>) -> Config<3> {
    let mut c = Config::new(NodeId(id), &IDS).unwrap();
    c.initial_leader = initial_leader.map(NodeId);
    c
}

/// `ms` milliseconds after time zero.
pub fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

/// A value.
pub fn v(s: &str) -> V {
    V::try_from(s).unwrap()
}

/// A frame: `header`, then `items` (a count, then each item).
pub fn frame_of<T: serde::Serialize>(header: &Header, items: &[T]) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let mut frame = encode(header, &mut buf).unwrap().to_vec();
    frame.push(u8::try_from(items.len()).unwrap());
    for item in items {
        // An item is its own frame without the version byte.
        frame.extend_from_slice(&encode(item, &mut buf).unwrap()[1..]);
    }
    frame
}

/// A frame: `header`, then `values` as items.
pub fn frame(header: &Header, values: &[&str]) -> Vec<u8> {
    let values: Vec<Option<V>> = values.iter().map(|s| Some(v(s))).collect();
    frame_of(header, &values)
}

/// A frame carrying no items.
pub fn bare(header: &Header) -> Vec<u8> {
    let mut buf = [0u8; 128];
    encode(header, &mut buf).unwrap().to_vec()
}

/// Writes and confirms every queued record; returns the batches.
pub fn sync<const N: usize, const W: usize>(r: &mut Replica<V, N, W>, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut batches = Vec::new();
    while let Some(p) = r.poll_persist(&mut buf) {
        batches.push(buf[..p.len].to_vec());
        r.persisted(now, p.seq).unwrap();
    }
    batches
}

/// The headers of every message `r` sends now.
pub fn sent(r: &mut R) -> Vec<Header> {
    let mut out = vec![0u8; R::MAX_MESSAGE_SIZE];
    let mut headers = Vec::new();
    while let Some(t) = r.poll_transmit(&mut out) {
        headers.push(decode_header::<Header>(&out[..t.len]).unwrap().0);
    }
    headers
}

/// Hands `r` an append from `ballot`'s owner carrying `values` from slot
/// `first`, with commit watermark `commit`.
pub fn append(r: &mut R, now: Instant, ballot: Ballot, commit: u64, first: u64, values: &[&str]) {
    let header = Header::Append {
        ballot,
        commit,
        first,
        stamp: 0,
    };
    assert_eq!(r.handle_message(now, ballot.node, &frame(&header, values)), None);
}

/// The records of one batch, each with the values it carries.
pub fn records(batch: &[u8]) -> Vec<(Record, Vec<Option<V>>)> {
    let mut out = Vec::new();
    let mut rest = &batch[1..];
    while !rest.is_empty() {
        // Decode the next record as a frame of its own.
        let mut framed = vec![batch[0]];
        framed.extend_from_slice(rest);
        let (record, after) = decode_header::<Record>(&framed).unwrap();
        rest = &rest[framed.len() - 1 - after.len()..];
        let mut values = Vec::new();
        if matches!(record, Record::Accepted { .. } | Record::Learned { .. }) {
            let mut items = Items::<Option<V>>::new(rest).unwrap();
            for item in items.by_ref() {
                values.push(item.unwrap());
            }
            rest = items.finish().unwrap();
        }
        out.push((record, values));
    }
    out
}

/// A batch of `records`, each with the values it carries: the inverse of
/// [`records`].
pub fn batch_of(records: &[(Record, Vec<Option<V>>)]) -> Vec<u8> {
    let mut buf = [0u8; 128];
    let mut out = vec![paxos_core::codec::FORMAT_VERSION];
    for (record, values) in records {
        out.extend_from_slice(&encode(record, &mut buf).unwrap()[1..]);
        if matches!(record, Record::Accepted { .. } | Record::Learned { .. }) {
            out.push(u8::try_from(values.len()).unwrap());
            for value in values {
                out.extend_from_slice(&encode(value, &mut buf).unwrap()[1..]);
            }
        }
    }
    out
}
