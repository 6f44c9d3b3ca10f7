//! Node identities, ballots (proposal numbers) and small sets of nodes.

use core::fmt;
use serde::{Deserialize, Serialize};

/// The identity of one node of a cluster.
///
/// Identities are small integers chosen by the operator (`0..=255`); they
/// break ties between ballots with the same round, so every node of a
/// cluster must have a different one.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, postcard::experimental::max_size::MaxSize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeId(pub u8);

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A ballot, also called a proposal number: a round and the node that owns it.
///
/// Ballots are totally ordered, first by round, then by node, so two
/// proposers never share one. "No ballot" is spelled `Option::<Ballot>::None`,
/// and Rust orders `None` below every `Some(ballot)`: an acceptor that has
/// promised nothing accepts any ballot ([`admits`]). Rounds start at 1.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, postcard::experimental::max_size::MaxSize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ballot {
    /// The round; compared first.
    pub round: u32,
    /// The node that owns the ballot; breaks ties between equal rounds.
    pub node: NodeId,
}

impl Ballot {
    /// The ballot `(round, node)`.
    pub const fn new(round: u32, node: NodeId) -> Self {
        Ballot { round, node }
    }

    /// The smallest ballot owned by `node` that is higher than `self`,
    /// or `None` if the round counter is exhausted.
    pub fn next_for(self, node: NodeId) -> Option<Ballot> {
        if node > self.node {
            Some(Ballot::new(self.round, node))
        } else {
            self.round.checked_add(1).map(|round| Ballot::new(round, node))
        }
    }
}

/// The acceptor's rule, the one place it is written: an acceptor that has
/// promised `promised` may promise or accept `ballot` unless it promised a
/// higher one. Having promised nothing (`None`), it admits every ballot.
/// The essential, practical and replica acceptors all decide by it.
pub fn admits(promised: Option<Ballot>, ballot: Ballot) -> bool {
    Some(ballot) >= promised
}

impl fmt::Debug for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({},{})", self.round, self.node.0)
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A set of node identities: a 256-bit map, so every `NodeId` fits and
/// insertion can never fail.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeSet([u64; 4]);

impl NodeSet {
    /// The empty set.
    pub const fn new() -> Self {
        NodeSet([0; 4])
    }

    fn word_and_bit(node: NodeId) -> (usize, u64) {
        (usize::from(node.0 >> 6), 1u64 << (node.0 & 63))
    }

    /// Adds `node`; returns `true` if it was not in the set.
    pub fn insert(&mut self, node: NodeId) -> bool {
        let (word, bit) = Self::word_and_bit(node);
        match self.0.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }

    /// Whether `node` is in the set.
    pub fn contains(&self, node: NodeId) -> bool {
        let (word, bit) = Self::word_and_bit(node);
        self.0.get(word).is_some_and(|w| w & bit != 0)
    }

    /// The number of nodes in the set.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// Removes every node.
    pub fn clear(&mut self) {
        self.0 = [0; 4];
    }

    /// The nodes in the set, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.0.iter().zip(0u8..).flat_map(|(&word, w)| {
            let mut rest = word;
            core::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as u8;
                rest &= rest - 1;
                Some(NodeId(w * 64 + bit))
            })
        })
    }
}

impl fmt::Debug for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<NodeId> for NodeSet {
    fn from_iter<I: IntoIterator<Item = NodeId>>(iter: I) -> Self {
        let mut set = NodeSet::new();
        for n in iter {
            set.insert(n);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId(b'A');
    const B: NodeId = NodeId(b'B');

    #[test]
    fn ballots_order_by_round_then_node() {
        assert!(Ballot::new(1, B) < Ballot::new(2, A));
        assert!(Ballot::new(2, A) < Ballot::new(2, B));
        assert_eq!(Ballot::new(2, A), Ballot::new(2, A));
    }

    #[test]
    fn no_ballot_is_below_every_ballot() {
        // `admits` relies on `None` ordering below every ballot, the extreme
        // ones included.
        let none: Option<Ballot> = None;
        assert!(none < Some(Ballot::new(0, NodeId(0))));
        assert!(none < Some(Ballot::new(u32::MAX, NodeId(255))));
        assert!(Some(Ballot::new(0, NodeId(0))) > none);
        assert_eq!(none.max(Some(Ballot::new(1, A))), Some(Ballot::new(1, A)));
    }

    #[test]
    fn next_for_is_the_smallest_higher_ballot_owned_by_the_node() {
        assert_eq!(Ballot::new(2, A).next_for(B), Some(Ballot::new(2, B)));
        assert_eq!(Ballot::new(2, B).next_for(A), Some(Ballot::new(3, A)));
        assert_eq!(Ballot::new(2, A).next_for(A), Some(Ballot::new(3, A)));
        assert_eq!(Ballot::new(u32::MAX, B).next_for(A), None);
        assert_eq!(Ballot::new(u32::MAX, A).next_for(B), Some(Ballot::new(u32::MAX, B)));
    }

    #[test]
    fn node_set_counts_each_node_once() {
        let mut s = NodeSet::new();
        assert!(s.is_empty());
        assert!(s.insert(A));
        assert!(!s.insert(A));
        assert!(s.insert(NodeId(0)));
        assert!(s.insert(NodeId(255)));
        assert_eq!(s.len(), 3);
        assert!(s.contains(NodeId(255)) && !s.contains(B));
        assert_eq!(
            s.iter().collect::<heapless::Vec<_, 4>>().as_slice(),
            &[NodeId(0), A, NodeId(255)]
        );
        s.clear();
        assert_eq!(s.len(), 0);
    }
}
