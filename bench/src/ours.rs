//! The harness for this library's replica: three (or five) replicas in
//! one thread, synchronous FIFO delivery of encoded frames, records
//! appended to in-memory logs and confirmed at once.

use crate::{Mode, Totals};
use paxos_core::replica::{Config, Event, Replica};
use paxos_core::{Bytes, Instant, NodeId};
use std::collections::VecDeque;

/// Runs `commits` commits in `mode` with values of `V` bytes.
pub fn run<const V: usize, const N: usize, const W: usize>(mode: Mode, commits: u64) -> Totals {
    let ids: Vec<NodeId> = (1..=mode.nodes as u8).map(NodeId).collect();
    let now = Instant::ZERO;
    let mut nodes: Vec<Replica<Bytes<V>, N, W>> = ids
        .iter()
        .map(|&id| {
            let mut config = Config::new(id, &ids).expect("valid config");
            config.initial_leader = Some(ids[0]);
            Replica::new(config, now).expect("valid config")
        })
        .collect();
    let value = Bytes::<V>::from_slice(&vec![0xAB; V]).expect("fits");
    // Frames in flight: (from, to, first byte in `pool`, length), with the
    // bytes in one reused buffer, so the harness does not allocate in the
    // steady state either.
    let mut wire: VecDeque<(NodeId, NodeId, usize, usize)> = VecDeque::with_capacity(4096);
    let mut pool: Vec<u8> = Vec::with_capacity(1 << 22);
    let mut next_pool: Vec<u8> = Vec::with_capacity(1 << 22);
    let mut disks: Vec<Vec<u8>> = (0..nodes.len()).map(|_| Vec::with_capacity(1 << 24)).collect();
    let mut buf = vec![0u8; Replica::<Bytes<V>, N, W>::MAX_MESSAGE_SIZE.max(1 << 16)];
    let mut totals = Totals::default();
    let mut in_flight = 0usize;
    let window = mode.window;
    let mut proposed = 0u64;
    while totals.commits < commits {
        // Keep the leader's pipeline full.
        while in_flight < window && proposed < commits {
            match nodes[0].propose(now, value.clone()) {
                Ok(_) => {
                    in_flight += 1;
                    proposed += 1;
                }
                Err(_) => break,
            }
        }
        // Drain every node's outputs.
        for (i, node) in nodes.iter_mut().enumerate() {
            while let Some(p) = node.poll_persist(&mut buf) {
                let disk = &mut disks[i];
                if disk.len() > (1 << 23) {
                    disk.clear();
                }
                disk.extend_from_slice(&buf[..p.len]);
                node.persisted(now, p.seq).expect("issued");
            }
            while let Some(t) = node.poll_transmit(&mut buf) {
                let start = pool.len();
                pool.extend_from_slice(&buf[..t.len]);
                for to in t.to.iter() {
                    wire.push_back((node.id(), to, start, t.len));
                    totals.messages += 1;
                    totals.bytes += t.len as u64;
                }
            }
            while let Some(event) = node.poll_event() {
                if let (0, Event::Decided { proposal: Some(_), .. }) = (i, event) {
                    totals.commits += 1;
                    in_flight -= 1;
                }
            }
        }
        // Deliver what was sent; replies go out in the next round.
        std::mem::swap(&mut pool, &mut next_pool);
        pool.clear();
        while let Some((from, to, start, len)) = wire.pop_front() {
            let node = &mut nodes[usize::from(to.0) - 1];
            let _ = node.handle_message(now, from, &next_pool[start..start + len]);
        }
    }
    totals
}
