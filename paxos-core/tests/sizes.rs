//! The size constants and what they promise: `MAX_MESSAGE_SIZE`,
//! `MIN_PERSIST_BUFFER` and `MAX_CHECKPOINT_SIZE` are exact bounds,
//! measured against real encodings; `MAX_IN_FLIGHT`; `Bytes`' postcard
//! bound.

use paxos_core::codec::{encode, max_encoded_size};
use paxos_core::replica::wire::Record;
use paxos_core::replica::Replica;
use paxos_core::{Ballot, Bytes, NodeId};

mod common;
use common::*;

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
            first: u64::MAX,
            complete: true,
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

/// `MAX_MESSAGE_SIZE` is exactly the widest one-item frame's parts, each
/// measured from a real encoding: the version byte, the widest header, a
/// five-byte item count and the widest entry. Smaller, a value could never
/// leave; larger, every buffer wastes memory (a promise longer than a frame
/// continues in the next: `promise_parts.rs`).
#[test]
fn max_message_size_is_the_widest_one_item_frame() {
    let (header, entry, ..) = widest();
    assert_eq!(R::MAX_MESSAGE_SIZE, 1 + header + 5 + entry);
    assert_eq!(R::message_buffer_for(8 + 1), R::MAX_MESSAGE_SIZE);
}

/// `MIN_PERSIST_BUFFER` is exactly one widest record holding one widest
/// value: the version byte, the record, a five-byte count, the value.
#[test]
fn min_persist_buffer_is_one_widest_record_with_one_value() {
    let (_, _, item, record) = widest();
    assert_eq!(R::MIN_PERSIST_BUFFER, 1 + record + 5 + item);
}

/// `MAX_CHECKPOINT_SIZE` bounds the largest checkpoint and is tight: a
/// window of the largest values, every slot voted under its own ballot,
/// with the largest ballots and slots, fits a buffer of exactly that size,
/// and the bound exceeds it only by sizing the four bookkeeping records
/// (the lost-storage mark, which this node has not written, promise,
/// snapshot, watermark) as the largest record. Every slot under its own
/// ballot also checks that a change of ballot does not end the checkpoint.
#[test]
fn the_checkpoint_bound_holds_the_largest_checkpoint_and_is_tight() {
    type C = Replica<V, 3, 4>;
    let c = config(2, None).to_builder().lease(None).build().unwrap();
    let mut r = C::new(c.clone(), at(0)).unwrap();
    let base = 1u64 << 63;
    r.install_snapshot(at(0), base).unwrap();
    let top = u32::MAX;
    for i in 0..4u32 {
        let ballot = Ballot::new(top - 3 + i, NodeId(1));
        append(&mut r, at(1), ballot, base, base + u64::from(i), &["abcdefgh"]);
    }
    let batches = sync(&mut r, at(1));
    let mut buf = vec![0u8; C::MAX_CHECKPOINT_SIZE];
    let len = r.write_checkpoint(&mut buf).unwrap();

    let size = |record: &Record| encode(record, &mut [0u8; 64]).unwrap().len() - 1;
    let largest = max_encoded_size::<Record>() - 1;
    let bookkeeping = size(&Record::Promised {
        ballot: Ballot::new(top, NodeId(1)),
    }) + size(&Record::Snapshot { slot: base })
        + size(&Record::Committed { slot: base });
    assert_eq!(C::MAX_CHECKPOINT_SIZE - len, 4 * largest - bookkeeping);
    assert!(r.write_checkpoint(&mut buf[..len - 1]).is_err());

    // The checkpoint alone restores what the records restore.
    let from_checkpoint = C::recover(c.clone(), at(2), [&buf[..len]], base).unwrap();
    let from_records = C::recover(c, at(2), batches.iter().map(Vec::as_slice), base).unwrap();
    assert_eq!(from_checkpoint.promised(), Some(Ballot::new(top, NodeId(1))));
    assert_eq!(from_checkpoint.promised(), from_records.promised());
    assert_eq!(from_checkpoint.log_start(), base);
    assert_eq!(from_checkpoint.decided(), from_records.decided());
}

#[test]
fn a_one_slot_window_still_keeps_one_proposal_in_flight() {
    type One = Replica<Bytes<8>, 1, 1>;
    assert_eq!(One::MAX_IN_FLIGHT, 1);
    assert_eq!(R::MAX_IN_FLIGHT, 4);
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
