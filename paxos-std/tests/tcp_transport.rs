//! The TCP transport over real loopback connections: frames of every size
//! both ways, reconnection to a restarted peer, a full queue, and every
//! kind of bad connection, written byte by byte on a raw `TcpStream`,
//! each closed and counted while the real peer is still served.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

use paxos_core::{NodeId, NodeSet};
use paxos_std::receiver::Datagram;
use paxos_std::transport::tcp::{
    connect_handshake, HandshakeError, Hello, RecordSealer, TcpCounters, TcpOptions, TcpTransport, CHALLENGE_LEN,
    PROOF_LEN,
};
use paxos_std::transport::{ClusterKey, Link, SendError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// The longest any test waits for something that happens at once on
/// loopback: generous, so a loaded machine does not fail the tests.
const WAIT: Duration = Duration::from_secs(30);

fn key() -> ClusterKey {
    ClusterKey::from_bytes(*b"tcp transport test key, 32 byte!")
}

fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener")
}

/// An address where nothing listens: a listener's, closed. Only for
/// peers that are never sent to, since another test may bind it again.
fn dead_addr() -> SocketAddr {
    loopback().local_addr().unwrap()
}

/// A transport and the frames it received.
struct Node {
    net: TcpTransport,
    rx: Receiver<(NodeId, Vec<u8>)>,
}

impl Node {
    fn start(listener: TcpListener, me: u8, peers: &[(NodeId, SocketAddr)], options: TcpOptions) -> Node {
        let (tx, rx) = mpsc::channel();
        let net = TcpTransport::start(listener, NodeId(me), peers, key(), options, move |from, frame| {
            let _ = tx.send((from, frame));
        })
        .expect("start a transport");
        Node { net, rx }
    }

    fn recv(&self) -> (NodeId, Vec<u8>) {
        self.rx.recv_timeout(WAIT).expect("a frame within the wait")
    }

    fn addr(&self) -> SocketAddr {
        self.net.local_addr().unwrap()
    }
}

/// Nodes 1 and 2, started, knowing each other and node 3, which never
/// runs: its id is what the raw connections claim.
fn pair(options: TcpOptions) -> (Node, Node) {
    let (l1, l2) = (loopback(), loopback());
    let peers = [
        (NodeId(1), l1.local_addr().unwrap()),
        (NodeId(2), l2.local_addr().unwrap()),
        (NodeId(3), dead_addr()),
    ];
    (Node::start(l1, 1, &peers, options), Node::start(l2, 2, &peers, options))
}

/// Polls `done` until it holds, for at most [`WAIT`].
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT, "not within {WAIT:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A raw connection to `node`, with reads that give up after [`WAIT`].
fn raw(node: &Node) -> TcpStream {
    let stream = TcpStream::connect(node.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// A raw connection to node 2 that has shaken hands as node 3.
fn raw_as_node_3(node: &Node) -> (TcpStream, RecordSealer) {
    let mut stream = raw(node);
    let session = connect_handshake(&mut stream, &key(), NodeId(3), NodeId(2)).expect("the handshake");
    (stream, RecordSealer::new(session))
}

/// `frames` as the connection's next records.
fn records(sealer: &mut RecordSealer, frames: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for frame in frames {
        sealer.write_record(&mut bytes, frame).unwrap();
    }
    bytes
}

/// Waits until the transport closes `stream`; it never writes to it (any
/// challenge has been read).
fn assert_closed(stream: &mut TcpStream) {
    match stream.read(&mut [0; 64]) {
        Ok(0) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ) => {}
        other => panic!("the connection is still open: {other:?}"),
    }
}

/// Node 1's frames still reach node 2.
fn assert_still_served(a: &Node, b: &Node) {
    a.net.send(NodeId(2), b"still here").unwrap();
    assert_eq!(b.recv(), (NodeId(1), b"still here".to_vec()));
}

fn set(nodes: &[u8]) -> NodeSet {
    let mut set = NodeSet::new();
    for &node in nodes {
        set.insert(NodeId(node));
    }
    set
}

/// Node 2 counted what `set` names and nothing else, and node 1's frames
/// still reach it.
fn assert_counted_and_served(a: &Node, b: &Node, set: impl FnOnce(&mut TcpCounters)) {
    let mut expected = TcpCounters::default();
    set(&mut expected);
    assert_eq!(b.net.tcp_counters(), expected);
    assert_still_served(a, b);
}

#[test]
fn frames_of_0_1_and_4_mib_round_trip_both_ways() {
    let (a, b) = pair(TcpOptions::DEFAULT);
    let big: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    for frame in [&[][..], b"x", &big] {
        a.net.send(NodeId(2), frame).unwrap();
        b.net.send(NodeId(1), frame).unwrap();
    }
    for (node, from) in [(&b, NodeId(1)), (&a, NodeId(2))] {
        assert_eq!(node.recv(), (from, Vec::new()));
        assert_eq!(node.recv(), (from, b"x".to_vec()));
        let (sender, frame) = node.recv();
        assert_eq!(sender, from);
        assert!(frame == big, "the 4 MiB frame arrived changed");
    }
    assert_eq!(a.net.tcp_counters(), TcpCounters::default());
    assert_eq!(b.net.tcp_counters(), TcpCounters::default());
}

#[test]
fn send_to_set_reaches_every_other_peer_and_names_unknown_ones() {
    let listeners = [loopback(), loopback(), loopback()];
    let peers: Vec<_> = (1..=3)
        .zip(&listeners)
        .map(|(n, l)| (NodeId(n), l.local_addr().unwrap()))
        .collect();
    let nodes: Vec<Node> = (1..=3)
        .zip(listeners)
        .map(|(n, l)| Node::start(l, n, &peers, TcpOptions::DEFAULT))
        .collect();
    let mut to = set(&[1, 2, 3]);
    Link::send_to_set(&nodes[0].net, &to, b"accept").unwrap();
    assert_eq!(nodes[1].recv(), (NodeId(1), b"accept".to_vec()));
    assert_eq!(nodes[2].recv(), (NodeId(1), b"accept".to_vec()));
    to.insert(NodeId(9));
    assert_eq!(
        nodes[0].net.send_to_set(&to, b"again"),
        Err(SendError::UnknownPeer(NodeId(9)))
    );
    assert_eq!(
        nodes[1].recv(),
        (NodeId(1), b"again".to_vec()),
        "the others are still sent to"
    );
    assert_eq!(nodes[2].recv(), (NodeId(1), b"again".to_vec()));
    assert_eq!(
        nodes[0].net.send(NodeId(1), b"me"),
        Err(SendError::UnknownPeer(NodeId(1)))
    );
}

#[test]
fn frames_above_the_maximum_are_refused_before_queuing() {
    let options = TcpOptions {
        max_frame_len: 1000,
        ..TcpOptions::DEFAULT
    };
    let (a, b) = pair(options);
    assert_eq!(a.net.max_frame_len(), 1000);
    a.net.send(NodeId(2), &[1; 1000]).unwrap();
    assert_eq!(b.recv(), (NodeId(1), vec![1; 1000]));
    let refused = Err(SendError::FrameTooLarge { len: 1001, max: 1000 });
    assert_eq!(a.net.send(NodeId(2), &[1; 1001]), refused);
    assert_eq!(a.net.send_to_set(&set(&[2, 3]), &[1; 1001]), refused);
    assert_eq!(TcpTransport::MAX_FRAME_LEN, 16 << 20);
}

#[test]
fn a_restarted_peer_is_reconnected_to_and_frames_flow_again() {
    let (a, b) = pair(TcpOptions::DEFAULT);
    a.net.send(NodeId(2), b"before").unwrap();
    assert_eq!(b.recv(), (NodeId(1), b"before".to_vec()));
    b.net.send(NodeId(1), b"hello a").unwrap();
    assert_eq!(a.recv(), (NodeId(2), b"hello a".to_vec()));

    let addr = b.addr();
    drop(b);
    let peers = [(NodeId(1), a.addr()), (NodeId(2), addr), (NodeId(3), dead_addr())];
    let b = Node::start(TcpListener::bind(addr).unwrap(), 2, &peers, TcpOptions::DEFAULT);

    // Frames sent while the connection is found dead may be lost, as
    // datagrams may: send until one arrives.
    let start = Instant::now();
    let got = loop {
        assert!(start.elapsed() < WAIT, "no frame reached the restarted peer");
        a.net.send(NodeId(2), b"after").unwrap();
        if let Ok(got) = b.rx.recv_timeout(Duration::from_millis(100)) {
            break got;
        }
    };
    assert_eq!(got, (NodeId(1), b"after".to_vec()));
    assert!(a.net.tcp_counters().reconnects >= 1, "{:?}", a.net.tcp_counters());
    // And the restarted peer's own connection is taken.
    b.net.send(NodeId(1), b"back").unwrap();
    assert_eq!(a.recv(), (NodeId(2), b"back".to_vec()));
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let options = TcpOptions {
        max_frame_len: 256 << 10,
        queue_bytes: 1 << 20,
        ..TcpOptions::DEFAULT
    };
    // Node 2 never answers (its listener, held here so that no other test
    // takes the port, never accepts): nothing ever leaves the queue.
    let options = TcpOptions {
        connect_timeout: Duration::from_millis(100),
        ..options
    };
    let silent = loopback();
    let a = Node::start(loopback(), 1, &[(NodeId(2), silent.local_addr().unwrap())], options);
    let frame = vec![0; 256 << 10];
    let results: Vec<_> = (0..64).map(|_| a.net.send(NodeId(2), &frame)).collect();
    // Three frames and their records' overhead fit in 1 MiB; four do not.
    assert!(results[..3].iter().all(Result::is_ok), "{:?}", &results[..3]);
    assert!(results[3..].iter().all(|r| *r == Err(SendError::QueueFull(NodeId(2)))));
    assert_eq!(a.net.tcp_counters().queue_full, 61);
    // The writer keeps trying, backing off, without draining the queue.
    eventually("connection attempts", || a.net.tcp_counters().connect_failures >= 2);
    assert_eq!(a.net.send(NodeId(2), &frame), Err(SendError::QueueFull(NodeId(2))));
}

#[test]
fn a_stranger_without_the_key_is_refused() {
    let (a, b) = pair(TcpOptions::DEFAULT);

    // A forged proof.
    let mut stream = raw(&b);
    stream.write_all(&Hello::new(NodeId(3), NodeId(2)).encode()).unwrap();
    stream.read_exact(&mut [0; CHALLENGE_LEN]).unwrap();
    stream.write_all(&[0; PROOF_LEN]).unwrap();
    assert_closed(&mut stream);
    assert_eq!(b.net.tcp_counters().bad_handshake, 1);

    // Another key: the stranger cannot check node 2's proof either, and
    // gives up, which node 2 counts too.
    let mut stream = raw(&b);
    let other = ClusterKey::from_bytes([1; 32]);
    assert_eq!(
        connect_handshake(&mut stream, &other, NodeId(3), NodeId(2)),
        Err(HandshakeError::BadProof)
    );
    drop(stream);
    eventually("the second bad handshake counted", || {
        b.net.tcp_counters().bad_handshake == 2
    });
    assert_still_served(&a, &b);
    assert_eq!(Link::counters(&b.net).malformed, 2);
}

#[test]
fn only_peers_calling_this_node_are_accepted() {
    let (a, b) = pair(TcpOptions::DEFAULT);
    for (from, to) in [(9, 2), (2, 2), (3, 1)] {
        let mut stream = raw(&b);
        stream
            .write_all(&Hello::new(NodeId(from), NodeId(to)).encode())
            .unwrap();
        assert_closed(&mut stream);
    }
    assert_counted_and_served(&a, &b, |c| c.bad_handshake = 3);
}

#[test]
fn a_bad_tag_closes_the_connection_after_the_good_records() {
    let (a, b) = pair(TcpOptions::DEFAULT);
    let (mut stream, mut sealer) = raw_as_node_3(&b);
    let mut bytes = records(&mut sealer, &[b"good", b"forged"]);
    *bytes.last_mut().unwrap() ^= 0x80;
    stream.write_all(&bytes).unwrap();
    assert_eq!(b.recv(), (NodeId(3), b"good".to_vec()));
    assert_closed(&mut stream);
    assert_eq!(Link::counters(&b.net).bad_tag, 1);
    assert_counted_and_served(&a, &b, |c| c.bad_tag = 1);
}

#[test]
fn a_record_replayed_on_a_new_connection_is_refused() {
    let (a, b) = pair(TcpOptions::DEFAULT);
    let (mut first, mut sealer) = raw_as_node_3(&b);
    let recorded = records(&mut sealer, &[b"once"]);
    first.write_all(&recorded).unwrap();
    assert_eq!(b.recv(), (NodeId(3), b"once".to_vec()));
    let (mut second, _) = raw_as_node_3(&b);
    second.write_all(&recorded).unwrap();
    assert_closed(&mut second);
    assert_closed(&mut first);
    assert_counted_and_served(&a, &b, |c| {
        c.replaced = 1;
        c.bad_tag = 1;
    });
}

#[test]
fn a_truncated_record_is_counted() {
    let (a, b) = pair(TcpOptions::DEFAULT);
    let (mut stream, mut sealer) = raw_as_node_3(&b);
    let bytes = records(&mut sealer, &[&[5; 100]]);
    stream.write_all(&bytes[..bytes.len() / 2]).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(&mut stream);
    assert_counted_and_served(&a, &b, |c| c.truncated = 1);
}

#[test]
fn an_oversized_length_closes_the_connection() {
    let (a, b) = pair(TcpOptions::DEFAULT);
    for length in [u32::MAX, (16 << 20) + 1] {
        let (mut stream, _) = raw_as_node_3(&b);
        stream.write_all(&length.to_le_bytes()).unwrap();
        assert_closed(&mut stream);
    }
    assert_eq!(Link::counters(&b.net).oversized, 2);
    assert_counted_and_served(&a, &b, |c| c.oversized = 2);
}

#[test]
fn garbage_on_a_fresh_connection_is_refused() {
    let (a, b) = pair(TcpOptions::DEFAULT);
    let mut stream = raw(&b);
    stream.write_all(b"GET / HTTP/1.1\r\nHost: paxos\r\n\r\n").unwrap();
    assert_closed(&mut stream);
    // Too short for a hello, then the end of the stream.
    let mut stream = raw(&b);
    stream.write_all(b"PXS1").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(&mut stream);
    assert_counted_and_served(&a, &b, |c| c.bad_handshake = 2);
}

#[test]
fn a_silent_stranger_is_closed_after_the_handshake_timeout() {
    let options = TcpOptions {
        connect_timeout: Duration::from_millis(200),
        ..TcpOptions::DEFAULT
    };
    let (a, b) = pair(options);
    let mut stream = raw(&b);
    assert_closed(&mut stream);
    assert_eq!(b.net.tcp_counters().bad_handshake, 1);
    assert_still_served(&a, &b);
}

#[test]
fn connections_beyond_the_handshake_limit_are_closed_at_once() {
    let options = TcpOptions {
        max_handshakes: 1,
        ..TcpOptions::DEFAULT
    };
    let (a, b) = pair(options);
    let silent = raw(&b);
    let mut second = raw(&b);
    assert_closed(&mut second);
    assert_eq!(b.net.tcp_counters().refused, 1);
    drop(silent);
    eventually("the silent connection's handshake fails", || {
        b.net.tcp_counters().bad_handshake == 1
    });
    assert_still_served(&a, &b);
}

#[test]
fn a_second_connection_from_a_peer_replaces_the_first() {
    let (a, b) = pair(TcpOptions::DEFAULT);
    let (mut first, mut sealer) = raw_as_node_3(&b);
    sealer.write_record(&mut first, b"one").unwrap();
    assert_eq!(b.recv(), (NodeId(3), b"one".to_vec()));
    let (mut second, mut sealer) = raw_as_node_3(&b);
    assert_closed(&mut first);
    sealer.write_record(&mut second, b"two").unwrap();
    assert_eq!(b.recv(), (NodeId(3), b"two".to_vec()));
    assert_counted_and_served(&a, &b, |c| c.replaced = 1);
}

#[test]
fn start_into_queues_datagrams_for_a_driver_loop() {
    fn wrap(datagram: Datagram) -> Datagram {
        datagram
    }
    let la = loopback();
    let (tx, rx) = mpsc::sync_channel(1);
    let peers = [(NodeId(1), la.local_addr().unwrap())];
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let b = TcpTransport::start_into(listen, NodeId(2), &peers, key(), TcpOptions::DEFAULT, tx, wrap).unwrap();
    let peers = [(NodeId(2), b.local_addr().unwrap())];
    let a = Node::start(la, 1, &peers, TcpOptions::DEFAULT);
    for frame in [&b"first"[..], b"second", b"third", b"fourth"] {
        a.net.send(NodeId(2), frame).unwrap();
    }
    let got = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((got.from, got.payload()), (NodeId(1), &b"first"[..]));
    // The channel fills and the reader waits on it: shutdown still ends.
    let next = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(next.payload(), b"second");
    b.shutdown();
    assert_eq!(
        b.send(NodeId(1), b"late"),
        Err(SendError::Io(io::ErrorKind::NotConnected))
    );
}

#[test]
fn shutdown_stops_listening_and_later_sends_fail() {
    let (a, b) = pair(TcpOptions::DEFAULT);
    a.net.send(NodeId(2), b"up").unwrap();
    assert_eq!(b.recv(), (NodeId(1), b"up".to_vec()));
    b.net.shutdown();
    b.net.shutdown();
    assert_eq!(
        b.net.send(NodeId(1), b"down"),
        Err(SendError::Io(io::ErrorKind::NotConnected))
    );
    let refused = TcpStream::connect(b.addr()).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    drop(a);
}

#[test]
fn bad_options_and_peer_tables_are_refused() {
    let bad = TcpOptions {
        queue_bytes: 10,
        ..TcpOptions::DEFAULT
    };
    let start = |options, peers: &[(NodeId, SocketAddr)]| {
        TcpTransport::start(loopback(), NodeId(1), peers, key(), options, |_, _| {}).unwrap_err()
    };
    assert_eq!(start(bad, &[]).kind(), io::ErrorKind::InvalidInput);
    let twice = [
        (NodeId(2), "127.0.0.1:7001".parse().unwrap()),
        (NodeId(2), "127.0.0.1:7002".parse().unwrap()),
    ];
    assert_eq!(start(TcpOptions::DEFAULT, &twice).kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn arbitrary_bytes_after_a_handshake_close_the_connection_and_nothing_else() {
    let (a, b) = pair(TcpOptions {
        max_frame_len: 4096,
        ..TcpOptions::DEFAULT
    });
    let mut runner = TestRunner::new(Config::with_cases(24));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..512), |bytes| {
            let (mut stream, _) = raw_as_node_3(&b);
            stream.write_all(&bytes).unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            assert_closed(&mut stream);
            prop_assert!(
                b.rx.try_recv().is_err(),
                "no frame from bytes sealed without the session key"
            );
            Ok(())
        })
        .unwrap();
    let counters = b.net.tcp_counters();
    assert_eq!(counters.bad_handshake + counters.queue_full + counters.refused, 0);
    assert_still_served(&a, &b);
}
