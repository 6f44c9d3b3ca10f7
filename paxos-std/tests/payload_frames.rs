//! Payloads decoded from what the transports receive share the received
//! buffer instead of copying it: a frame from the TCP transport and a
//! datagram from the UDP receiving thread are each a `bytes::Bytes` taken
//! without a copy, and `Datagram::decode` decodes inside it.

use core::time::Duration;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};

use paxos_core::NodeId;
use paxos_std::payload::SHARE_FACTOR;
use paxos_std::receiver::{self, Datagram};
use paxos_std::transport::tcp::{TcpOptions, TcpTransport};
use paxos_std::transport::{ClusterKey, UdpTransport, RECV_BUFFER_LEN};
use paxos_std::Payload;

const WAIT: Duration = Duration::from_secs(30);

fn key() -> ClusterKey {
    ClusterKey::from_bytes(*b"payload frames test key, 32 byte")
}

fn wrap(datagram: Datagram) -> Datagram {
    datagram
}

fn within(p: &Payload, datagram: &Datagram) -> bool {
    datagram.buf.as_ptr_range().contains(&p.as_slice().as_ptr())
}

/// Two payloads in one frame: one large enough to share, one too short.
fn frame() -> (Payload, Payload, Vec<u8>) {
    let (large, short) = (
        Payload::from_vec(vec![1; 8000]).unwrap(),
        Payload::from_vec(vec![2; 8]).unwrap(),
    );
    let frame = postcard::to_allocvec(&(&large, &short)).unwrap();
    (large, short, frame)
}

#[test]
fn a_payload_from_a_tcp_frame_shares_the_frame() {
    let (la, lb) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let peers = [
        (NodeId(1), la.local_addr().unwrap()),
        (NodeId(2), lb.local_addr().unwrap()),
    ];
    let (tx, rx) = mpsc::sync_channel(4);
    let b = TcpTransport::start_into(lb, NodeId(2), &peers, key(), TcpOptions::DEFAULT, tx, wrap).unwrap();
    let (atx, _arx) = mpsc::sync_channel(4);
    let a = TcpTransport::start_into(la, NodeId(1), &peers, key(), TcpOptions::DEFAULT, atx, wrap).unwrap();
    let (large, short, bytes) = frame();
    a.send(NodeId(2), &bytes).unwrap();
    let got = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((got.from, got.payload()), (NodeId(1), &bytes[..]));
    assert_eq!(got.buf.len(), bytes.len(), "the frame's own buffer");
    let (l, s): (Payload, Payload) = got.decode(|b| postcard::from_bytes(b)).unwrap();
    assert_eq!((&l, &s), (&large, &short));
    assert!(within(&l, &got), "shared");
    assert!(!within(&s, &got), "too short to share: copied");
    // Outside `decode`, the same frame is copied from.
    let (l, _): (Payload, Payload) = postcard::from_bytes(got.payload()).unwrap();
    assert!(!within(&l, &got));
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_payload_from_a_udp_datagram_shares_the_receive_buffer() {
    let (sa, sb) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let peers: [(NodeId, SocketAddr); 2] = [
        (NodeId(1), sa.local_addr().unwrap()),
        (NodeId(2), sb.local_addr().unwrap()),
    ];
    let a = UdpTransport::from_socket(sa, NodeId(1), &peers, key()).unwrap();
    let b = Arc::new(UdpTransport::from_socket(sb, NodeId(2), &peers, key()).unwrap());
    let (tx, rx) = mpsc::sync_channel(4);
    let stop = Arc::new(AtomicBool::new(false));
    let (pool, thread) = receiver::spawn(b, tx, stop.clone(), wrap).unwrap();
    let (large, short, bytes) = frame();
    // A payload pins the whole receive buffer, so it shares only if it is
    // at least a SHARE_FACTOR-th of it.
    assert!(large.len() * SHARE_FACTOR >= RECV_BUFFER_LEN);
    let got = loop {
        // UDP on loopback rarely loses a datagram, but may.
        a.send(NodeId(2), &bytes).unwrap();
        if let Ok(got) = rx.recv_timeout(Duration::from_millis(500)) {
            break got;
        }
    };
    assert_eq!((got.from, got.payload()), (NodeId(1), &bytes[..]));
    assert_eq!(got.buf.len(), RECV_BUFFER_LEN, "the whole receive buffer");
    let (l, s): (Payload, Payload) = got.decode(|b| postcard::from_bytes(b)).unwrap();
    assert_eq!((&l, &s), (&large, &short));
    assert!(within(&l, &got), "shared");
    assert!(!within(&s, &got), "too short to share: copied");
    // Handed back while shared: the payload keeps its bytes, whatever the
    // thread receives next.
    pool.give_back(got);
    a.send(NodeId(2), &[0xFF; 9000]).unwrap();
    let next = rx.recv_timeout(Duration::from_millis(500));
    assert_eq!(l, large);
    drop(next);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thread.join().unwrap();
}
