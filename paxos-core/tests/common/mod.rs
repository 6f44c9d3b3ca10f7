//! Helpers shared by the replica test files: a three-node cluster's
//! configuration, time in milliseconds, frames built from headers and
//! items, a driver step that writes and confirms every record, the inputs
//! a peer sends (prepares, appends, votes, decided values) and what the
//! replica sends back, decoded.

// Each test file uses its own subset.
#![allow(dead_code)]

use paxos_core::codec::encode;
use paxos_core::replica::wire::{decode_header, Header, Items, PromisedEntry, Record};
use paxos_core::replica::{Config, Dropped, RecoverError, Replica};
use paxos_core::time::{Duration, Instant};
use paxos_core::{Ballot, Bytes, NodeId};

/// The value type of the tests.
pub type V = Bytes<8>;
/// A replica of three nodes with a window of eight slots.
pub type R = Replica<V, 3, 8>;

/// The members.
pub const IDS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

/// The ballot of the initial leader, node 1: round 0.
pub const LEADER: Ballot = Ballot::new(0, NodeId(1));

/// Node `id`'s configuration, with `initial_leader` if any.
pub fn config(id: u8, initial_leader: Option<u8>) -> Config<3> {
    Config::builder(NodeId(id), &IDS)
        .initial_leader(initial_leader.map(NodeId))
        .build()
        .unwrap()
}

/// Node 2, following the initial leader node 1, with a window of `W`
/// slots.
pub fn follower<const W: usize>() -> Replica<V, 3, W> {
    Replica::new(config(2, Some(1)), at(0)).unwrap()
}

/// Node 2 leading round 0 as the initial leader, its promise durable;
/// returns it with its ballot.
pub fn leader() -> (R, Ballot) {
    let mut r = R::new(config(2, Some(2)), at(0)).unwrap();
    sync(&mut r, at(0));
    let ballot = r.promised().unwrap();
    (r, ballot)
}

/// The only node of a one-node cluster, leading round 0 with its promise
/// durable, with a window of `W` slots.
pub fn solo_leader<const W: usize>() -> Replica<V, 1, W> {
    let c = Config::builder(NodeId(1), &[NodeId(1)])
        .initial_leader(NodeId(1))
        .build()
        .unwrap();
    let mut r = Replica::new(c, at(0)).unwrap();
    sync(&mut r, at(0));
    r
}

/// Node `id` (the initial leader being node 1) restarted at 10 ms from
/// `batches`, its application having applied `applied` slots.
pub fn recover(id: u8, batches: &[Vec<u8>], applied: u64) -> Result<R, RecoverError> {
    R::recover(config(id, Some(1)), at(10), batches.iter().map(Vec::as_slice), applied)
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
/// `first`, with commit watermark `commit` (and the stamp 0); returns what
/// `handle_message` returned.
pub fn try_append<const W: usize>(
    r: &mut Replica<V, 3, W>,
    now: Instant,
    ballot: Ballot,
    commit: u64,
    first: u64,
    values: &[&str],
) -> Result<(), Dropped> {
    let header = Header::Append {
        ballot,
        commit,
        first,
        stamp: 0,
    };
    r.handle_message(now, ballot.node, &frame(&header, values))
        .into_result()
}

/// [`try_append`], which must be taken.
pub fn append<const W: usize>(
    r: &mut Replica<V, 3, W>,
    now: Instant,
    ballot: Ballot,
    commit: u64,
    first: u64,
    values: &[&str],
) {
    try_append(r, now, ballot, commit, first, values).unwrap();
}

/// [`append`], then [`sync`]: returns the records it wrote.
pub fn append_synced(
    r: &mut R,
    now: Instant,
    ballot: Ballot,
    commit: u64,
    first: u64,
    values: &[&str],
) -> Vec<Vec<u8>> {
    append(r, now, ballot, commit, first, values);
    sync(r, now)
}

/// Hands `r` decided values from node 1, from slot `first`.
pub fn learn(r: &mut R, now: Instant, first: u64, values: &[&str]) -> Result<(), Dropped> {
    r.handle_message(now, NodeId(1), &frame(&Header::Learn { first }, values))
        .into_result()
}

/// Hands the leader `r` an `Accepted` from `from`: its votes for `count`
/// slots from `first` under `ballot`, echoing `stamp` (the send time, in
/// microseconds, of the append it answers).
pub fn accepted_stamped(r: &mut R, now: Instant, from: NodeId, ballot: Ballot, first: u64, count: u32, stamp: u64) {
    let header = Header::Accepted {
        ballot,
        first,
        count,
        stamp,
    };
    r.handle_message(now, from, &bare(&header)).into_result().unwrap();
}

/// [`accepted_stamped`] echoing the stamp 0.
pub fn accepted(r: &mut R, now: Instant, from: NodeId, ballot: Ballot, first: u64, count: u32) {
    accepted_stamped(r, now, from, ballot, first, count, 0);
}

/// [`accepted_stamped`] from node `from`, echoing `now`: an answer to an
/// append sent at once.
pub fn accepted_now(r: &mut R, now: Instant, from: u8, ballot: Ballot, first: u64, count: u32) {
    accepted_stamped(r, now, NodeId(from), ballot, first, count, now.as_micros());
}

/// Hands `r` a prepare for `ballot` from its owner and returns the answer
/// sent back: a `Promise`, a `Nack`, or `None` when it was ignored.
pub fn prepare(r: &mut R, now: Instant, ballot: Ballot) -> Option<Header> {
    prepare_saving(r, now, ballot.node, ballot, &mut Vec::new())
}

/// [`prepare`] sent by `from`, keeping the records written in `disk`.
pub fn prepare_saving(
    r: &mut R,
    now: Instant,
    from: NodeId,
    ballot: Ballot,
    disk: &mut Vec<Vec<u8>>,
) -> Option<Header> {
    let mut buf = [0u8; 64];
    let frame = encode(
        &Header::Prepare {
            ballot,
            from: 0,
            until: 8,
        },
        &mut buf,
    )
    .unwrap();
    let _ = r.handle_message(now, from, frame);
    disk.extend(sync(r, now));
    let mut out = vec![0u8; R::MAX_MESSAGE_SIZE];
    let mut answer = None;
    while let Some(t) = r.poll_transmit(&mut out) {
        let (header, _) = decode_header::<Header>(&out[..t.len]).unwrap();
        if t.to.contains(from) && matches!(header, Header::Promise { .. } | Header::Nack { .. }) {
            answer = Some(header);
        }
    }
    answer
}

/// Hands the candidate `r` a promise from `from` for `ballot`: its
/// acceptor decided `decided` slots, holds no vote beyond the slots asked
/// about, and reports `entries`.
pub fn promise<const N: usize, const W: usize>(
    r: &mut Replica<V, N, W>,
    now: Instant,
    from: NodeId,
    ballot: Ballot,
    decided: u64,
    entries: &[PromisedEntry<V>],
) {
    let header = Header::Promise {
        ballot,
        decided,
        beyond: false,
        first: r.decided(),
        complete: true,
    };
    r.handle_message(now, from, &frame_of(&header, entries))
        .into_result()
        .unwrap();
}

/// Whether `answer` is a promise.
pub fn promised(answer: Option<Header>) -> bool {
    matches!(answer, Some(Header::Promise { .. }))
}

/// Whether `answer` is a refusal.
pub fn refused(answer: Option<Header>) -> bool {
    matches!(answer, Some(Header::Nack { .. }))
}

/// Every frame `r` sends now, decoded: the header, and the values of an
/// `Append` or a `Learn`.
pub fn sent_with_values(r: &mut R) -> Vec<(Header, Vec<Option<V>>)> {
    let mut buf = vec![0u8; R::MAX_MESSAGE_SIZE];
    let mut out = Vec::new();
    while let Some(t) = r.poll_transmit(&mut buf) {
        let (header, rest) = decode_header::<Header>(&buf[..t.len]).unwrap();
        let values = match header {
            Header::Append { .. } | Header::Learn { .. } => {
                Items::<Option<V>>::new(rest).unwrap().map(Result::unwrap).collect()
            }
            _ => Vec::new(),
        };
        out.push((header, values));
    }
    out
}

/// The first slot and the values of every append `r` sends now.
pub fn appended(r: &mut R) -> Vec<(u64, Vec<Option<V>>)> {
    sent_with_values(r)
        .into_iter()
        .filter_map(|(header, values)| match header {
            Header::Append { first, .. } => Some((first, values)),
            _ => None,
        })
        .collect()
}

/// The ballot, first slot and count of every `Accepted` reply among
/// `headers`.
pub fn votes(headers: &[Header]) -> Vec<(Ballot, u64, u32)> {
    headers
        .iter()
        .filter_map(|h| match *h {
            Header::Accepted {
                ballot, first, count, ..
            } => Some((ballot, first, count)),
            _ => None,
        })
        .collect()
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
