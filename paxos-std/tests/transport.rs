//! The UDP transport over real loopback sockets, its datagram format as
//! pure functions, and cluster key files.

use core::hint::black_box;
use core::net::SocketAddr;
use core::time::Duration;
use std::io;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Instant;

use paxos_core::{NodeId, NodeSet};
use paxos_std::transport::{
    open, seal, ClusterKey, DropCounters, DropReason, KeyError, Received, SendError, UdpTransport, MAX_DATAGRAM_LEN,
    MAX_FRAME_LEN, OVERHEAD, RECV_BUFFER_LEN, VERSION,
};
use proptest::prelude::*;

/// Long enough for a loopback datagram to arrive, short enough to wait for
/// many times.
const WAIT: Duration = Duration::from_millis(300);

fn key() -> ClusterKey {
    ClusterKey::from_bytes(*b"transport test key, 32 bytes ok!")
}

fn loopback() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind a loopback socket")
}

fn addr(socket: &UdpSocket) -> SocketAddr {
    socket.local_addr().unwrap()
}

fn sealed(key: &ClusterKey, from: NodeId, frame: &[u8]) -> Vec<u8> {
    let mut out = vec![0; frame.len() + OVERHEAD];
    let len = seal(key, from, frame, &mut out).unwrap();
    out.truncate(len);
    out
}

/// Two transports, nodes 1 and 2, that know each other.
fn pair() -> (UdpTransport, UdpTransport) {
    let (s1, s2) = (loopback(), loopback());
    let peers = [(NodeId(1), addr(&s1)), (NodeId(2), addr(&s2))];
    let a = UdpTransport::from_socket(s1, NodeId(1), &peers, key()).unwrap();
    let b = UdpTransport::from_socket(s2, NodeId(2), &peers, key()).unwrap();
    (a, b)
}

fn recv_frame(t: &UdpTransport) -> (NodeId, Vec<u8>) {
    let mut buf = vec![0; RECV_BUFFER_LEN];
    let Received { from, frame } = t
        .recv(&mut buf, Some(Duration::from_secs(5)))
        .unwrap()
        .expect("a datagram");
    (from, buf[frame].to_vec())
}

#[test]
fn frames_round_trip_both_ways() {
    let (a, b) = pair();
    a.send(NodeId(2), b"prepare").unwrap();
    assert_eq!(recv_frame(&b), (NodeId(1), b"prepare".to_vec()));
    b.send(NodeId(1), b"promise").unwrap();
    assert_eq!(recv_frame(&a), (NodeId(2), b"promise".to_vec()));
    b.send(NodeId(1), b"").unwrap();
    assert_eq!(recv_frame(&a), (NodeId(2), Vec::new()));
    assert_eq!(a.counters(), DropCounters::default());
    assert_eq!(b.counters(), DropCounters::default());
}

#[test]
fn the_largest_frame_round_trips_and_a_larger_one_is_refused() {
    let (a, b) = pair();
    let big: Vec<u8> = (0..MAX_FRAME_LEN).map(|i| i as u8).collect();
    a.send(NodeId(2), &big).unwrap();
    assert_eq!(recv_frame(&b), (NodeId(1), big));
    let too_big = vec![0; MAX_FRAME_LEN + 1];
    let refused = SendError::FrameTooLarge {
        len: MAX_FRAME_LEN + 1,
        max: MAX_FRAME_LEN,
    };
    assert_eq!(a.send(NodeId(2), &too_big), Err(refused));
    assert_eq!(
        a.send_to_set(&[NodeId(2)].into_iter().collect(), &too_big),
        Err(refused)
    );
}

#[test]
fn send_to_set_reaches_every_peer_but_not_itself() {
    let (s1, s2, s3) = (loopback(), loopback(), loopback());
    let peers = [(NodeId(1), addr(&s1)), (NodeId(2), addr(&s2)), (NodeId(3), addr(&s3))];
    let a = UdpTransport::from_socket(s1, NodeId(1), &peers, key()).unwrap();
    let b = UdpTransport::from_socket(s2, NodeId(2), &peers, key()).unwrap();
    let c = UdpTransport::from_socket(s3, NodeId(3), &peers, key()).unwrap();
    let all: NodeSet = [NodeId(1), NodeId(2), NodeId(3)].into_iter().collect();
    a.send_to_set(&all, b"accept").unwrap();
    assert_eq!(recv_frame(&b), (NodeId(1), b"accept".to_vec()));
    assert_eq!(recv_frame(&c), (NodeId(1), b"accept".to_vec()));
    let mut buf = vec![0; RECV_BUFFER_LEN];
    assert_eq!(a.recv(&mut buf, Some(WAIT)).unwrap(), None, "no copy to itself");

    // An unknown node is reported, and the others are still sent to.
    let with_stranger: NodeSet = [NodeId(2), NodeId(9), NodeId(3)].into_iter().collect();
    assert_eq!(
        a.send_to_set(&with_stranger, b"x"),
        Err(SendError::UnknownPeer(NodeId(9)))
    );
    assert_eq!(recv_frame(&b), (NodeId(1), b"x".to_vec()));
    assert_eq!(recv_frame(&c), (NodeId(1), b"x".to_vec()));
}

#[test]
fn sending_to_a_non_peer_is_an_error() {
    let (a, _b) = pair();
    assert_eq!(a.send(NodeId(7), b"x"), Err(SendError::UnknownPeer(NodeId(7))));
    assert_eq!(
        a.send(NodeId(1), b"x"),
        Err(SendError::UnknownPeer(NodeId(1))),
        "itself"
    );
}

#[test]
fn bind_listens_and_refuses_ambiguous_peer_tables() {
    let peer = loopback();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let t = UdpTransport::bind(listen, NodeId(1), &[(NodeId(2), addr(&peer))], key()).unwrap();
    assert_eq!(t.me(), NodeId(1));
    assert_ne!(t.local_addr().unwrap().port(), 0);
    assert_eq!(t.peers().node_at(addr(&peer)), Some(NodeId(2)));

    peer.send_to(&sealed(&key(), NodeId(2), b"hi"), t.local_addr().unwrap())
        .unwrap();
    assert_eq!(recv_frame(&t), (NodeId(2), b"hi".to_vec()));

    let shared = [(NodeId(2), addr(&peer)), (NodeId(3), addr(&peer))];
    let err = UdpTransport::bind(listen, NodeId(1), &shared, key()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let twice = [(NodeId(2), addr(&peer)), (NodeId(2), t.local_addr().unwrap())];
    assert_eq!(
        UdpTransport::bind(listen, NodeId(1), &twice, key()).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn recv_refuses_a_buffer_too_small_for_any_datagram() {
    let (a, _b) = pair();
    let mut buf = [0u8; OVERHEAD];
    assert_eq!(
        a.recv(&mut buf, Some(WAIT)).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn recv_waits_out_its_timeout() {
    let (a, _b) = pair();
    let mut buf = vec![0; RECV_BUFFER_LEN];
    let start = Instant::now();
    assert_eq!(a.recv(&mut buf, Some(WAIT)).unwrap(), None);
    assert!(start.elapsed() >= WAIT, "returned early");
    // A zero timeout does not wait.
    assert_eq!(a.recv(&mut buf, Some(Duration::ZERO)).unwrap(), None);
}

#[test]
fn a_zero_timeout_drains_queued_datagrams() {
    let (a, b) = pair();
    for i in 0..3u8 {
        a.send(NodeId(2), &[i]).unwrap();
    }
    let mut buf = vec![0; RECV_BUFFER_LEN];
    let first = b.recv(&mut buf, Some(Duration::from_secs(5))).unwrap().unwrap();
    let mut seen = vec![buf[first.frame][0]];
    // Loopback has queued the rest by now, or will very soon.
    for _ in 0..500 {
        match b.recv(&mut buf, Some(Duration::ZERO)).unwrap() {
            Some(got) => seen.push(buf[got.frame][0]),
            None if seen.len() == 3 => break,
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert_eq!(seen, [0, 1, 2]);
    // And blocking receives work after non-blocking ones.
    a.send(NodeId(2), b"later").unwrap();
    assert_eq!(recv_frame(&b), (NodeId(1), b"later".to_vec()));
}

/// A transport for node 1 whose peers are node 2 at `peer`'s address and
/// node 3 at `other`'s.
struct Target {
    transport: UdpTransport,
    peer: UdpSocket,
    other: UdpSocket,
    stranger: UdpSocket,
}

impl Target {
    fn new() -> Self {
        let (peer, other, stranger) = (loopback(), loopback(), loopback());
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let peers = [(NodeId(2), addr(&peer)), (NodeId(3), addr(&other))];
        let transport = UdpTransport::bind(listen, NodeId(1), &peers, key()).unwrap();
        Target {
            transport,
            peer,
            other,
            stranger,
        }
    }

    /// Sends `datagram` from `from`, receives into a buffer of `buf_len`
    /// bytes, and checks it is dropped as exactly one `reason`.
    fn expect_drop(&self, from: &UdpSocket, datagram: &[u8], buf_len: usize, reason: DropReason) {
        let before = self.transport.counters();
        from.send_to(datagram, self.transport.local_addr().unwrap()).unwrap();
        let mut buf = vec![0; buf_len];
        assert_eq!(
            self.transport.recv(&mut buf, Some(WAIT)).unwrap(),
            None,
            "{reason:?} delivered"
        );
        let mut expected = before;
        expected.record(reason);
        assert_eq!(self.transport.counters(), expected, "{reason:?}");
    }
}

#[test]
fn every_drop_reason_is_counted() {
    let t = Target::new();
    let good = sealed(&key(), NodeId(2), b"a frame");

    // From an address that is no peer, although well sealed.
    t.expect_drop(&t.stranger, &good, RECV_BUFFER_LEN, DropReason::UnknownPeer);
    // From node 3's address but claiming to be node 2.
    t.expect_drop(&t.other, &good, RECV_BUFFER_LEN, DropReason::UnknownPeer);
    // Claiming node 3 from node 2's address.
    t.expect_drop(
        &t.peer,
        &sealed(&key(), NodeId(3), b"x"),
        RECV_BUFFER_LEN,
        DropReason::UnknownPeer,
    );
    // Claiming this node itself.
    t.expect_drop(
        &t.peer,
        &sealed(&key(), NodeId(1), b"x"),
        RECV_BUFFER_LEN,
        DropReason::UnknownPeer,
    );

    // Sealed under another key.
    let other_key = ClusterKey::from_bytes([0x42; 32]);
    t.expect_drop(
        &t.peer,
        &sealed(&other_key, NodeId(2), b"a frame"),
        RECV_BUFFER_LEN,
        DropReason::BadTag,
    );
    // Altered frame, altered tag.
    let mut altered = good.clone();
    altered[3] ^= 0x01;
    t.expect_drop(&t.peer, &altered, RECV_BUFFER_LEN, DropReason::BadTag);
    let mut bad_tag = good.clone();
    *bad_tag.last_mut().unwrap() ^= 0x80;
    t.expect_drop(&t.peer, &bad_tag, RECV_BUFFER_LEN, DropReason::BadTag);

    // Too short to hold a header and a tag, down to the empty datagram.
    t.expect_drop(&t.peer, &good[..OVERHEAD - 1], RECV_BUFFER_LEN, DropReason::Malformed);
    t.expect_drop(&t.peer, &[VERSION, 2], RECV_BUFFER_LEN, DropReason::Malformed);
    t.expect_drop(&t.peer, &[], RECV_BUFFER_LEN, DropReason::Malformed);

    // Another version byte; a bare core frame starts with 1.
    let mut old = good.clone();
    old[0] = 1;
    t.expect_drop(&t.peer, &old, RECV_BUFFER_LEN, DropReason::WrongVersion);

    // Larger than the receive buffer: it may have been cut short.
    t.expect_drop(
        &t.peer,
        &sealed(&key(), NodeId(2), &[7; 200]),
        100,
        DropReason::Oversized,
    );
    // Exactly filling it: may have been cut short too.
    t.expect_drop(&t.peer, &good, good.len(), DropReason::Oversized);

    let counters = t.transport.counters();
    assert_eq!(
        counters,
        DropCounters {
            unknown_peer: 4,
            bad_tag: 3,
            malformed: 3,
            wrong_version: 1,
            oversized: 2,
        }
    );
    assert_eq!(counters.total(), 13);
}

#[test]
fn recv_skips_dropped_datagrams_and_keeps_waiting() {
    let t = Target::new();
    let to = t.transport.local_addr().unwrap();
    t.stranger.send_to(&sealed(&key(), NodeId(2), b"forged"), to).unwrap();
    t.peer.send_to(b"garbage", to).unwrap();
    t.peer
        .send_to(&sealed(&ClusterKey::insecure_default(), NodeId(2), b"demo"), to)
        .unwrap();
    t.peer.send_to(&sealed(&key(), NodeId(2), b"real"), to).unwrap();

    let mut buf = vec![0; RECV_BUFFER_LEN];
    let got = t
        .transport
        .recv(&mut buf, Some(Duration::from_secs(5)))
        .unwrap()
        .unwrap();
    assert_eq!((got.from, &buf[got.frame]), (NodeId(2), &b"real"[..]));
    let counters = t.transport.counters();
    assert_eq!((counters.unknown_peer, counters.malformed, counters.bad_tag), (1, 1, 1));
}

#[test]
fn the_transport_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<UdpTransport>();

    let (a, b) = pair();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..10u8 {
                a.send(NodeId(2), &[i]).unwrap();
            }
        });
        let mut seen = Vec::new();
        let mut buf = vec![0; RECV_BUFFER_LEN];
        while seen.len() < 10 {
            let got = b
                .recv(&mut buf, Some(Duration::from_secs(5)))
                .unwrap()
                .expect("all ten arrive on loopback");
            seen.push(buf[got.frame][0]);
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    });
}

// --- The datagram format as pure functions. ---

proptest! {
    #[test]
    fn open_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        // 2^-256 chance of a random forgery: any Ok is a bug.
        prop_assert!(open(&key(), &bytes).is_err());
    }

    #[test]
    fn open_never_panics_on_arbitrary_bytes_of_this_version(
        sender in any::<u8>(),
        rest in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = vec![VERSION, sender];
        bytes.extend_from_slice(&rest);
        prop_assert!(open(&key(), &bytes).is_err());
    }

    #[test]
    fn sealed_datagrams_open_to_their_sender_and_frame(
        key_bytes in any::<[u8; 32]>(),
        sender in any::<u8>(),
        frame in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let key = ClusterKey::from_bytes(key_bytes);
        let datagram = sealed(&key, NodeId(sender), &frame);
        prop_assert_eq!(datagram.len(), frame.len() + OVERHEAD);
        prop_assert_eq!(open(&key, &datagram), Ok((NodeId(sender), &frame[..])));
    }

    #[test]
    fn flipping_any_bit_of_a_sealed_datagram_gets_it_rejected(
        key_bytes in any::<[u8; 32]>(),
        sender in any::<u8>(),
        frame in proptest::collection::vec(any::<u8>(), 0..300),
        bit in any::<proptest::sample::Index>(),
    ) {
        let key = ClusterKey::from_bytes(key_bytes);
        let mut datagram = sealed(&key, NodeId(sender), &frame);
        let bit = bit.index(datagram.len() * 8);
        datagram[bit / 8] ^= 1 << (bit % 8);
        let expected = if bit < 8 { DropReason::WrongVersion } else { DropReason::BadTag };
        prop_assert_eq!(open(&key, &datagram), Err(expected));
    }

    #[test]
    fn truncating_or_extending_a_sealed_datagram_gets_it_rejected(
        frame in proptest::collection::vec(any::<u8>(), 0..100),
        cut in any::<proptest::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 1..40),
    ) {
        let datagram = sealed(&key(), NodeId(5), &frame);
        let cut = cut.index(datagram.len());
        prop_assert!(open(&key(), &datagram[..cut]).is_err());
        let mut longer = datagram.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(open(&key(), &longer).is_err());
    }
}

#[test]
fn open_refuses_datagrams_above_the_largest() {
    let mut big = vec![0; MAX_DATAGRAM_LEN + 1];
    big[0] = VERSION;
    assert_eq!(open(&key(), &big), Err(DropReason::Oversized));
}

// --- Key files. ---

const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
const KEY: [u8; 32] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22,
    0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];

fn key_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("transport-key-files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn key_files_of_hex_or_raw_bytes_load() {
    let cases: [(&str, Vec<u8>, [u8; 32]); 5] = [
        ("hex", HEX.as_bytes().to_vec(), KEY),
        ("hex-lf", format!("{HEX}\n").into_bytes(), KEY),
        ("hex-crlf", format!("{HEX}\r\n").into_bytes(), KEY),
        ("raw", KEY.to_vec(), KEY),
        (
            "raw-text",
            b"exactly thirty-two bytes of text".to_vec(),
            *b"exactly thirty-two bytes of text",
        ),
    ];
    for (name, contents, expected) in cases {
        let loaded = ClusterKey::from_file(key_file(name, &contents)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(loaded.as_bytes(), &expected, "{name}");
    }
}

#[test]
fn bad_key_files_are_typed_errors() {
    let cases: [(&str, Vec<u8>, KeyError); 8] = [
        ("empty", Vec::new(), KeyError::WrongLength { len: 0 }),
        ("short-raw", vec![1; 31], KeyError::WrongLength { len: 31 }),
        ("long-raw", vec![1; 33], KeyError::WrongLength { len: 33 }),
        (
            "short-hex",
            HEX.as_bytes()[..62].to_vec(),
            KeyError::WrongLength { len: 62 },
        ),
        (
            "two-newlines",
            format!("{HEX}\n\n").into_bytes(),
            KeyError::WrongLength { len: 66 },
        ),
        ("huge", vec![b'a'; 1 << 20], KeyError::WrongLength { len: 67 }),
        (
            "not-hex",
            HEX.replace('7', "x").into_bytes(),
            KeyError::InvalidHex { offset: 14 },
        ),
        (
            "not-hex-lf",
            format!("{}\n", HEX.replacen("ff", "f-", 1)).into_bytes(),
            KeyError::InvalidHex { offset: 31 },
        ),
    ];
    for (name, contents, expected) in cases {
        let err = ClusterKey::from_file(key_file(name, &contents)).unwrap_err();
        assert_eq!(err, expected, "{name}");
        assert!(!err.to_string().is_empty());
    }
    let missing = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-such-key-file");
    assert_eq!(
        ClusterKey::from_file(missing).unwrap_err(),
        KeyError::Io(io::ErrorKind::NotFound)
    );
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    assert!(matches!(ClusterKey::from_file(directory), Err(KeyError::Io(_))));
}

// --- Cost. ---

/// Prints the time to seal and to open a 200-byte frame. A measurement, not
/// a test: `cargo test --release -p paxos-std --test transport -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings; run by hand"]
fn seal_and_open_cost_for_a_200_byte_frame() {
    const ROUNDS: u32 = 200_000;
    let key = key();
    let frame = [0xabu8; 200];
    let mut out = [0u8; 200 + OVERHEAD];

    let start = Instant::now();
    for i in 0..ROUNDS {
        let len = seal(&key, NodeId(i as u8), black_box(&frame), &mut out).unwrap();
        black_box(&out[..len]);
    }
    let sealing = start.elapsed() / ROUNDS;

    let datagram = sealed(&key, NodeId(1), &frame);
    let start = Instant::now();
    for _ in 0..ROUNDS {
        black_box(open(&key, black_box(&datagram)).unwrap());
    }
    let opening = start.elapsed() / ROUNDS;
    println!("200-byte frame, {OVERHEAD} bytes overhead: seal {sealing:?}, open {opening:?} per datagram");
}
