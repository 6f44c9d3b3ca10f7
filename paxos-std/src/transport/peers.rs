//! The peer table: which node sends from, and receives at, which address.

use core::net::{IpAddr, SocketAddr};
use std::collections::{BTreeMap, HashMap};

use paxos_core::NodeId;

use super::error::{DropReason, PeerError};

/// The other nodes of the cluster and their addresses: where each sends
/// its datagrams from and receives them, or listens for connections.
///
/// A datagram is accepted only from its sender's address, so each node
/// needs a different address. (A stream's peer is named in its handshake
/// instead, and its connection may come from any address.) Addresses are compared by IP and port only,
/// with IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) taken as the IPv4
/// address, so a dual-stack socket matches peers listed as IPv4.
#[derive(Clone, Debug)]
pub struct Peers {
    me: NodeId,
    by_node: BTreeMap<NodeId, SocketAddr>,
    by_addr: HashMap<(IpAddr, u16), NodeId>,
}

impl Peers {
    /// A table for node `me`.
    ///
    /// Entries for `me` itself are skipped, so one cluster-wide list serves
    /// every node; an entry listed twice with the same address counts once.
    ///
    /// # Errors
    ///
    /// [`PeerError`] for a node listed with two addresses, two nodes at one
    /// address, or a peer at an unspecified IP or port 0.
    pub fn new(me: NodeId, peers: &[(NodeId, SocketAddr)]) -> Result<Self, PeerError> {
        let mut by_node = BTreeMap::new();
        let mut by_addr = HashMap::new();
        for &(node, addr) in peers.iter().filter(|(node, _)| *node != me) {
            if addr.ip().is_unspecified() || addr.port() == 0 {
                return Err(PeerError::Unspecified(node));
            }
            if let Some(&known) = by_node.get(&node) {
                if canonical(known) != canonical(addr) {
                    return Err(PeerError::DuplicateNode(node));
                }
                continue;
            }
            if let Some(&other) = by_addr.get(&canonical(addr)) {
                return Err(PeerError::SharedAddress(other, node));
            }
            by_node.insert(node, addr);
            by_addr.insert(canonical(addr), node);
        }
        Ok(Peers { me, by_node, by_addr })
    }

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The address of `node`, if it is a peer.
    pub fn addr_of(&self, node: NodeId) -> Option<SocketAddr> {
        self.by_node.get(&node).copied()
    }

    /// The peer at `addr`, if any.
    pub fn node_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.by_addr.get(&canonical(addr)).copied()
    }

    /// Accepts a datagram from `source` whose authenticated header claims
    /// `sender` only if `sender` is the peer at `source`.
    ///
    /// # Errors
    ///
    /// [`DropReason::UnknownPeer`] otherwise.
    pub fn check(&self, source: SocketAddr, sender: NodeId) -> Result<NodeId, DropReason> {
        match self.node_at(source) {
            Some(node) if node == sender => Ok(node),
            _ => Err(DropReason::UnknownPeer),
        }
    }

    /// The peers in increasing order of identity.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, SocketAddr)> + '_ {
        self.by_node.iter().map(|(&node, &addr)| (node, addr))
    }

    /// The number of peers.
    pub fn len(&self) -> usize {
        self.by_node.len()
    }

    /// Whether there are no peers.
    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }
}

/// The IP and port, with an IPv4-mapped IPv6 address taken as IPv4.
fn canonical(addr: SocketAddr) -> (IpAddr, u16) {
    (addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    fn v4(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    #[test]
    fn looks_up_both_ways_and_skips_me() {
        let peers = Peers::new(NodeId(1), &[(NodeId(1), v4(1)), (NodeId(2), v4(2)), (NodeId(3), v4(3))]).unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers.addr_of(NodeId(2)), Some(v4(2)));
        assert_eq!(peers.addr_of(NodeId(1)), None);
        assert_eq!(peers.node_at(v4(3)), Some(NodeId(3)));
        assert_eq!(peers.node_at(v4(1)), None);
        assert_eq!(peers.check(v4(2), NodeId(2)), Ok(NodeId(2)));
        assert_eq!(peers.check(v4(2), NodeId(3)), Err(DropReason::UnknownPeer));
        assert_eq!(peers.check(v4(9), NodeId(2)), Err(DropReason::UnknownPeer));
        assert_eq!(peers.iter().map(|(n, _)| n.0).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn ipv4_mapped_sources_match_ipv4_peers() {
        let peers = Peers::new(NodeId(0), &[(NodeId(2), v4(2))]).unwrap();
        let mapped = SocketAddr::V6(SocketAddrV6::new(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 2, 0, 0));
        assert_eq!(peers.node_at(mapped), Some(NodeId(2)));
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 2));
        assert_eq!(peers.node_at(v6), None);
    }

    #[test]
    fn refuses_ambiguous_tables() {
        let me = NodeId(0);
        assert_eq!(
            Peers::new(me, &[(NodeId(2), v4(2)), (NodeId(2), v4(3))]).unwrap_err(),
            PeerError::DuplicateNode(NodeId(2))
        );
        assert_eq!(
            Peers::new(me, &[(NodeId(2), v4(2)), (NodeId(3), v4(2))]).unwrap_err(),
            PeerError::SharedAddress(NodeId(2), NodeId(3))
        );
        assert_eq!(
            Peers::new(me, &[(NodeId(2), v4(0))]).unwrap_err(),
            PeerError::Unspecified(NodeId(2))
        );
        assert_eq!(
            Peers::new(me, &[(NodeId(2), SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5)))]).unwrap_err(),
            PeerError::Unspecified(NodeId(2))
        );
        assert_eq!(
            Peers::new(me, &[(NodeId(2), v4(2)), (NodeId(2), v4(2))]).unwrap().len(),
            1
        );
    }
}
