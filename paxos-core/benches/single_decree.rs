//! One single-decree decision among three in-process `practical::Node`s.
//!
//! Node 0 proposes a 64-byte value with `prepare(true)`. A synchronous FIFO
//! "network" carries every `Send` as a frame encoded with the real codec
//! into a stack buffer of `max_encoded_size::<Message<Bytes<64>>>()` bytes;
//! every receiver decodes its own copy (`Destination::All` reaches all three
//! nodes, the sender included). Persists are confirmed at once. The loop
//! stops once all three nodes have reported `Event::Resolved`.
//!
//! Before criterion runs, `main` prints the sizes of the roles and the
//! codec bounds, and the message and byte counts of one decision.

use core::hint::black_box;
use core::mem::size_of;
use std::collections::VecDeque;

use criterion::{BatchSize, Criterion};
use paxos_core::practical::{self, DurableState, Event, Persist, Transmit};
use paxos_core::{decode, encode, essential, max_encoded_size, Bytes, Destination, Message, NodeId};

type V = Bytes<64>;
type Node = practical::Node<V, 3>;

const FRAME_MAX: usize = max_encoded_size::<Message<V>>();
const NODES: usize = 3;
const QUORUM: usize = 2;

/// One encoded message on the wire.
struct InFlight {
    from: NodeId,
    to: Destination,
    len: usize,
    frame: [u8; FRAME_MAX],
}

/// What one decision cost.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    /// `Transmit`s, each encoded once.
    sends: usize,
    /// Broadcast sends among them.
    broadcasts: usize,
    /// Bytes encoded, one frame per send.
    bytes_sent: usize,
    /// Frames decoded by receivers (a broadcast counts three times).
    deliveries: usize,
    /// Bytes decoded by receivers.
    bytes_delivered: usize,
    /// Frames sent to another node (a broadcast counts twice): what a real
    /// network would carry.
    remote_deliveries: usize,
    /// Bytes of those.
    remote_bytes: usize,
    /// Persists requested (and confirmed at once).
    persists: usize,
    /// The deepest the network queue got.
    max_in_flight: usize,
}

struct Cluster {
    nodes: [Node; NODES],
    net: VecDeque<InFlight>,
    resolved: [bool; NODES],
    value: V,
    stats: Stats,
}

fn fresh_cluster() -> Cluster {
    let value: Vec<u8> = (0..64u8).collect();
    Cluster {
        nodes: [0, 1, 2].map(|i| Node::new(NodeId(i), QUORUM)),
        net: VecDeque::with_capacity(64),
        resolved: [false; NODES],
        value: Bytes::from_slice(&value).expect("64 bytes fit"),
        stats: Stats::default(),
    }
}

/// Acts on every output `nodes[i]` has: persists (confirmed at once, which
/// releases what waited on them), then transmits, then events. Nothing
/// polled creates a new output, so one pass leaves all three queues empty.
fn drain(c: &mut Cluster, i: usize) {
    let node = &mut c.nodes[i];
    while let Some(Persist { seq, .. }) = node.poll_persist() {
        c.stats.persists += 1;
        node.persisted(seq).expect("issued");
    }
    while let Some(Transmit { to, message }) = node.poll_transmit() {
        let mut frame = [0u8; FRAME_MAX];
        let len = encode(&message, &mut frame).expect("fits the bound").len();
        c.stats.sends += 1;
        c.stats.broadcasts += usize::from(to == Destination::All);
        c.stats.bytes_sent += len;
        c.net.push_back(InFlight {
            from: node.id(),
            to,
            len,
            frame,
        });
        c.stats.max_in_flight = c.stats.max_in_flight.max(c.net.len());
    }
    while let Some(event) = node.poll_event() {
        match event {
            Event::Resolved(decision) => {
                debug_assert_eq!(decision.value, c.value);
                c.resolved[i] = true;
            }
            Event::LeadershipAcquired => {}
        }
    }
}

/// Runs one decision to the end; returns the cluster (dropped outside the
/// measurement by `iter_batched`).
fn decide(mut c: Cluster) -> Cluster {
    let value = c.value.clone();
    c.nodes[0].set_proposal(value).expect("room");
    c.nodes[0].prepare(true).expect("room");
    for i in 0..NODES {
        drain(&mut c, i);
    }
    while !c.resolved.iter().all(|&r| r) {
        let m = c.net.pop_front().expect("the network ran dry before a decision");
        let frame = &m.frame[..m.len];
        for i in 0..NODES {
            let to_i = Destination::Node(NodeId(i as u8));
            if m.to != Destination::All && m.to != to_i {
                continue;
            }
            let message: Message<V> = decode(frame).expect("a valid frame");
            c.stats.deliveries += 1;
            c.stats.bytes_delivered += m.len;
            if m.from != NodeId(i as u8) {
                c.stats.remote_deliveries += 1;
                c.stats.remote_bytes += m.len;
            }
            c.nodes[i].handle_message(m.from, message).expect("room");
            drain(&mut c, i);
        }
    }
    c
}

fn print_sizes() {
    println!("size_of (V = Bytes<64>, size_of::<V>() = {}):", size_of::<V>());
    let rows: [(&str, usize); 13] = [
        ("essential::Proposer<V>", size_of::<essential::Proposer<V>>()),
        ("essential::Acceptor<V>", size_of::<essential::Acceptor<V>>()),
        ("essential::Learner<V, 3>", size_of::<essential::Learner<V, 3>>()),
        ("practical::Proposer<V>", size_of::<practical::Proposer<V>>()),
        ("practical::Acceptor<V>", size_of::<practical::Acceptor<V>>()),
        ("practical::Learner<V, 3>", size_of::<practical::Learner<V, 3>>()),
        ("practical::Node<V, 3>", size_of::<practical::Node<V, 3>>()),
        ("practical::Outbox<V>", size_of::<practical::Outbox<V>>()),
        ("Message<V>", size_of::<Message<V>>()),
        ("DurableState<V>", size_of::<DurableState<V>>()),
        ("practical::Persist<V>", size_of::<Persist<V>>()),
        ("practical::Transmit<V>", size_of::<Transmit<V>>()),
        ("practical::Event<V>", size_of::<Event<V>>()),
    ];
    for (name, size) in rows {
        println!("  {name:<26} {size:>5} bytes");
    }
    println!("max_encoded_size:");
    println!("  Message<Bytes<64>>         {FRAME_MAX:>5} bytes");
    println!(
        "  DurableState<Bytes<64>>    {:>5} bytes",
        max_encoded_size::<DurableState<V>>()
    );
}

fn print_counts() {
    let c = decide(fresh_cluster());
    for node in &c.nodes {
        assert_eq!(node.learner().final_value(), Some(&c.value));
    }
    let s = c.stats;
    println!("one decision (3 nodes, quorum 2, 64-byte value):");
    println!(
        "  sends (encoded once each): {} ({} broadcast), {} bytes encoded",
        s.sends, s.broadcasts, s.bytes_sent
    );
    println!(
        "  deliveries (decoded, self-copies included): {}, {} bytes decoded",
        s.deliveries, s.bytes_delivered
    );
    println!(
        "  deliveries to another node: {}, {} bytes",
        s.remote_deliveries, s.remote_bytes
    );
    println!(
        "  persists confirmed: {}; undelivered at the end: {}; deepest queue: {}",
        s.persists,
        c.net.len(),
        s.max_in_flight
    );
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("single_decree");
    // Fresh nodes each iteration, built in criterion's untimed setup.
    group.bench_function("decide (iter_batched, setup untimed)", |b| {
        b.iter_batched(
            fresh_cluster,
            |cluster| black_box(decide(black_box(cluster))),
            BatchSize::SmallInput,
        )
    });
    // The same with the three `Node::new`s and the queue allocation timed.
    group.bench_function("build + decide (iter)", |b| {
        b.iter(|| black_box(decide(fresh_cluster())).stats.sends)
    });
    group.finish();
}

fn main() {
    print_sizes();
    print_counts();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
