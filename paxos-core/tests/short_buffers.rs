//! A buffer one byte short never yields a torn frame or batch: every frame
//! `poll_transmit` hands out and every batch `poll_persist` hands out
//! decodes whole, at every buffer size, and what does not fit is counted.

use paxos_core::replica::wire::{decode_header, Header, Items};

mod common;
use common::{at, config, records, sync, v, R, V};

/// Node 1 leading round 0 with three values in flight, its promise durable.
fn leader_with_values() -> R {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    for s in ["aaaaaaaa", "b", "cccc"] {
        r.propose(at(1), v(s)).unwrap();
    }
    r
}

#[test]
fn every_frame_a_leader_sends_decodes_whole_at_every_buffer_size() {
    for size in 0..R::MAX_MESSAGE_SIZE {
        let mut r = leader_with_values();
        let mut buf = vec![0u8; size];
        let before = r.counters().buffer_too_small;
        let mut sent = 0;
        while let Some(t) = r.poll_transmit(&mut buf) {
            let (header, rest) = decode_header::<Header>(&buf[..t.len]).unwrap();
            assert!(matches!(header, Header::Append { .. }), "{size}: {header:?}");
            let mut items = Items::<Option<V>>::new(rest).unwrap_or_else(|e| panic!("{size}: {e}"));
            for item in items.by_ref() {
                item.unwrap_or_else(|e| panic!("{size}: {e}"));
            }
            assert!(items.finish().unwrap().is_empty(), "{size}");
            sent += 1;
            if sent > 8 {
                break;
            }
        }
        assert!(
            sent > 0 || r.counters().buffer_too_small > before,
            "{size}: nothing sent and nothing counted"
        );
    }
}

#[test]
fn every_batch_decodes_whole_at_every_buffer_size() {
    for size in 0..R::MIN_PERSIST_BUFFER + 32 {
        let mut r = leader_with_values();
        let mut buf = vec![0u8; size];
        let mut batches = 0;
        while let Some(p) = r.poll_persist(&mut buf) {
            // `records` decodes every record and its items, or panics.
            assert!(!records(&buf[..p.len]).is_empty(), "{size}");
            r.persisted(at(1), p.seq).unwrap();
            batches += 1;
        }
        assert!(batches > 0 || r.counters().buffer_too_small > 0, "{size}");
    }
}
