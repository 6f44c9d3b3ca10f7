//! When this node last heard from each peer: the `peers` of a
//! [`RuntimeStatus`](super::RuntimeStatus), for operators (a peer this
//! node cannot hear from shows it long before an election does).

use paxos_core::{Instant, NodeId};
use std::net::SocketAddr;

/// How recently this node received a frame from one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerContact {
    /// The peer.
    pub id: u8,
    /// Milliseconds since a frame from it last arrived (any frame: a
    /// consensus message, a forwarded request, a snapshot piece); `None`
    /// when none has since this node started.
    pub last_heard_ms: Option<u64>,
}

/// The last arrival from each configured peer, in the order of the
/// options' peers.
#[derive(Debug)]
pub(super) struct Contacts {
    heard: Vec<(NodeId, Option<Instant>)>,
}

impl Contacts {
    /// Nothing heard yet from any of `peers`.
    pub(super) fn new(peers: &[(NodeId, SocketAddr)]) -> Self {
        Contacts {
            heard: peers.iter().map(|&(id, _)| (id, None)).collect(),
        }
    }

    /// A frame from `from` arrived at `now`; a node not configured as a
    /// peer is not tracked (the transport only admits peers anyway).
    pub(super) fn heard(&mut self, from: NodeId, now: Instant) {
        if let Some((_, at)) = self.heard.iter_mut().find(|(id, _)| *id == from) {
            *at = Some(now);
        }
    }

    /// Every peer's contact as of `now`.
    pub(super) fn report(&self, now: Instant) -> Vec<PeerContact> {
        self.heard
            .iter()
            .map(|&(id, at)| PeerContact {
                id: id.0,
                last_heard_ms: at.map(|at| now.saturating_since(at).as_millis()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_reports_the_time_since_its_last_frame() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut contacts = Contacts::new(&[(NodeId(2), addr), (NodeId(3), addr)]);
        let contact = |id, last_heard_ms| PeerContact { id, last_heard_ms };
        assert_eq!(
            contacts.report(Instant::from_millis(5)),
            [contact(2, None), contact(3, None)]
        );
        contacts.heard(NodeId(3), Instant::from_millis(100));
        contacts.heard(NodeId(3), Instant::from_millis(250));
        // Not a peer: ignored.
        contacts.heard(NodeId(9), Instant::from_millis(250));
        assert_eq!(
            contacts.report(Instant::from_millis(1_250)),
            [contact(2, None), contact(3, Some(1_000))]
        );
        // A clock read before the arrival (never, but) says 0, not a wrap.
        assert_eq!(contacts.report(Instant::from_millis(200))[1], contact(3, Some(0)));
    }
}
