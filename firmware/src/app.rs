//! The replicated application: it folds every decided value into a count
//! and a rolling hash, and knows the first slot it has not applied. Its
//! state goes into every compaction checkpoint, so that a restart after
//! compaction resumes from it (`Replica::recovery(.., applied)`), and the
//! slots the checkpoint no longer holds are not needed.

use paxos_core::replica::Slot;

/// Encoded size of the state.
pub const STATE_LEN: usize = 20;

/// The application's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct App {
    /// The first slot not applied yet.
    pub applied: Slot,
    /// Values applied (no-ops excluded).
    pub count: u64,
    /// FNV-1a over every (slot, value) applied, in order.
    pub hash: u32,
}

/// What [`App::apply`] did with a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The next slot: applied.
    Next,
    /// Already applied before (a replay after restart): skipped.
    Old,
    /// Beyond the next slot: a slot was skipped, which the replica never
    /// does; reported and not applied.
    Gap,
}

impl App {
    /// The state before any slot.
    pub const fn new() -> Self {
        App {
            applied: 0,
            count: 0,
            hash: 0x811C_9DC5,
        }
    }

    /// Applies `slot`, which must be the next one.
    pub fn apply(&mut self, slot: Slot, value: Option<&[u8]>) -> Applied {
        if slot < self.applied {
            return Applied::Old;
        }
        if slot > self.applied {
            return Applied::Gap;
        }
        self.fold(&slot.to_le_bytes());
        if let Some(v) = value {
            self.fold(v);
            self.count += 1;
        }
        self.applied += 1;
        Applied::Next
    }

    fn fold(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash = (self.hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
    }

    /// The state as stored in a checkpoint.
    pub fn encode(&self) -> [u8; STATE_LEN] {
        let mut out = [0u8; STATE_LEN];
        let (a, rest) = out.split_at_mut(8);
        let (c, h) = rest.split_at_mut(8);
        a.copy_from_slice(&self.applied.to_le_bytes());
        c.copy_from_slice(&self.count.to_le_bytes());
        h.copy_from_slice(&self.hash.to_le_bytes());
        out
    }

    /// The state from a checkpoint; `None` if `bytes` is too short.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let applied = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let count = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        let hash = u32::from_le_bytes(bytes.get(16..20)?.try_into().ok()?);
        Some(App { applied, count, hash })
    }
}
