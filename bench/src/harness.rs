//! The one driving loop every library runs under, and the check that all
//! nodes applied the same sequence.
//!
//! Each round: the leader is topped up to the window of proposals in
//! flight, every node's outputs are drained (storage written, messages
//! encoded onto the [`Wire`], applied values recorded in the [`Ledger`]),
//! then every frame sent is decoded and handed to its recipient.

use crate::wire::{Frame, Wire};
use crate::{Mode, Totals};

/// One library's cluster, as the harness drives it. Node index 0 is the
/// leader once [`Cluster::ready`] says so.
pub trait Cluster {
    /// Whether node 0 leads and takes proposals.
    fn ready(&self) -> bool;
    /// Offers `value` to the leader; false if it takes no more now.
    fn propose(&mut self, value: &[u8]) -> bool;
    /// Drains every node's outputs: persists, encodes messages onto
    /// `wire`, records applied values in `ledger`.
    fn drain(&mut self, wire: &mut Wire, ledger: &mut Ledger);
    /// Decodes `frame` and hands it to node `to`.
    fn deliver(&mut self, from: usize, to: usize, frame: Frame<'_>);
    /// Whether its nodes keep slices of the frames delivered to them
    /// ([`Frame::shared`]): the wire then delivers frames that can be
    /// shared.
    fn shares_frames(&self) -> bool {
        false
    }
    /// Lets logical time pass (elections, heartbeats, flushes).
    fn tick(&mut self);
}

/// Per node, how many values it applied and a digest of their order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    applied: Vec<u64>,
    digest: Vec<u64>,
}

/// Nodes ended the run with different applied sequences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disagreement {
    /// Values applied per node.
    pub applied: Vec<u64>,
    /// Order digests per node.
    pub digest: Vec<u64>,
    /// Values the leader was asked to commit.
    pub wanted: u64,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "nodes disagree after {} commits: applied {:?}, digests {:x?}",
            self.wanted, self.applied, self.digest
        )
    }
}

impl std::error::Error for Disagreement {}

impl Ledger {
    /// A ledger for `nodes` nodes.
    pub fn new(nodes: usize) -> Ledger {
        Ledger {
            applied: vec![0; nodes],
            digest: vec![0; nodes],
        }
    }

    /// Node `node` applied `value`: its first 8 bytes are the proposal's
    /// sequence number, folded into an order-sensitive digest.
    pub fn apply(&mut self, node: usize, value: &[u8]) {
        let mut seq = [0u8; 8];
        let n = value.len().min(8);
        seq[..n].copy_from_slice(&value[..n]);
        self.applied[node] += 1;
        self.digest[node] = self.digest[node].rotate_left(7) ^ u64::from_le_bytes(seq);
    }

    /// Values the leader (node 0) applied.
    pub fn leader_applied(&self) -> u64 {
        self.applied[0]
    }

    fn agrees(&self) -> bool {
        self.applied.iter().all(|&a| a == self.applied[0]) && self.digest.iter().all(|&d| d == self.digest[0])
    }
}

/// Rounds without progress after which the run gives up.
const STALL_ROUNDS: u32 = 10_000;

/// Commits `commits` values through `cluster` in `mode`, then ticks until
/// the followers caught up, and checks they applied the same sequence.
pub fn run<C: Cluster>(cluster: &mut C, mode: Mode, commits: u64) -> Result<Totals, Disagreement> {
    let mut wire = Wire::with_capacity(1 << 22);
    if cluster.shares_frames() {
        wire = wire.sharing();
    }
    let mut ledger = Ledger::new(mode.nodes);
    let sizes = mode.values.sizes();
    let mut value = vec![0xAB; sizes.iter().copied().max().unwrap_or(8).max(8)];
    let mut proposed = 0u64;
    let mut idle = 0u32;
    // Elect node 0 (set-up: not counted against the libraries because the
    // instruction figures subtract two run lengths).
    while !cluster.ready() {
        if step(cluster, &mut wire, &mut ledger) == 0 {
            cluster.tick();
        }
        idle += 1;
        if idle > STALL_ROUNDS {
            return Err(disagreement(&ledger, commits));
        }
    }
    let (messages, bytes) = (wire.messages, wire.bytes);
    idle = 0;
    while ledger.leader_applied() < commits {
        while proposed - ledger.leader_applied() < mode.window as u64 && proposed < commits {
            value[..8].copy_from_slice(&(proposed + 1).to_le_bytes());
            let size = sizes[proposed as usize % sizes.len()];
            if !cluster.propose(&value[..size]) {
                break;
            }
            proposed += 1;
        }
        let before = ledger.leader_applied();
        let delivered = step(cluster, &mut wire, &mut ledger);
        if ledger.leader_applied() > before {
            idle = 0;
        } else if delivered == 0 {
            // Nothing moving: let time pass (a library may flush or resend
            // on a tick); give up if it never recovers.
            cluster.tick();
            idle += 1;
            if idle > STALL_ROUNDS {
                return Err(disagreement(&ledger, commits));
            }
        }
    }
    let totals = Totals {
        commits: ledger.leader_applied(),
        messages: wire.messages - messages,
        bytes: wire.bytes - bytes,
    };
    // Let the followers learn the last decisions (heartbeats, decides).
    for _ in 0..STALL_ROUNDS {
        if ledger.agrees() {
            break;
        }
        if step(cluster, &mut wire, &mut ledger) == 0 {
            cluster.tick();
        }
    }
    if ledger.agrees() && totals.commits == commits {
        Ok(totals)
    } else {
        Err(disagreement(&ledger, commits))
    }
}

/// One round: drain every node, then deliver what was sent. Returns how
/// many frames were delivered.
fn step<C: Cluster>(cluster: &mut C, wire: &mut Wire, ledger: &mut Ledger) -> u64 {
    let before = wire.messages;
    cluster.drain(wire, ledger);
    wire.deliver(|from, to, frame| cluster.deliver(from, to, frame));
    wire.messages - before
}

fn disagreement(ledger: &Ledger, wanted: u64) -> Disagreement {
    Disagreement {
        applied: ledger.applied.clone(),
        digest: ledger.digest.clone(),
        wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_agreement_needs_the_same_values_in_the_same_order() {
        let seq = |n: u64| n.to_le_bytes();
        let mut same = Ledger::new(2);
        let mut swapped = Ledger::new(2);
        let mut short = Ledger::new(2);
        for n in [1, 2] {
            same.apply(0, &seq(n));
            same.apply(1, &seq(n));
            swapped.apply(0, &seq(n));
            swapped.apply(1, &seq(3 - n));
            short.apply(0, &seq(n));
        }
        short.apply(1, &seq(1));
        assert!(same.agrees());
        assert!(!swapped.agrees());
        assert!(!short.agrees());
        assert_eq!(same.leader_applied(), 2);
    }
}
