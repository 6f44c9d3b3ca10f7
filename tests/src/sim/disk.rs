//! A node's simulated storage: batches are written, then made durable by
//! a sync that takes time; a crash loses what no sync covered.

use super::durable::DurableView;
use super::SimRng;
use paxos_core::practical::PersistSeq;
use std::collections::VecDeque;

/// What a crash did to the unsynced tail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashDamage {
    /// Unsynced batches that reached the disk anyway (the OS flushed
    /// them), so they survive.
    pub flushed: u64,
    /// A batch torn in the middle: its checksum fails, storage drops it.
    pub torn: u64,
    /// Unsynced batches lost.
    pub lost: u64,
}

/// One sync in flight: it covers the first `covers` unsynced batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight {
    token: u64,
    covers: usize,
}

/// A node's log of record batches.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// Durable batches, in the order written: what `recover` gets.
    pub synced: Vec<Vec<u8>>,
    /// The state the durable batches establish.
    pub view: DurableView,
    unsynced: VecDeque<(PersistSeq, Vec<u8>)>,
    syncing: Option<InFlight>,
    next_token: u64,
    /// Syncs completed.
    pub syncs: u64,
    /// Whether a batch was ever durable here since the cluster's first
    /// boot, wipes included: a node without one boots as new.
    pub ever_synced: bool,
}

impl Disk {
    /// Appends a batch (not durable yet).
    pub fn write(&mut self, seq: PersistSeq, bytes: &[u8]) {
        self.unsynced.push_back((seq, bytes.to_vec()));
    }

    /// Starts a sync of everything written so far if none is in flight;
    /// returns its token.
    pub fn start_sync(&mut self) -> Option<u64> {
        if self.syncing.is_some() || self.unsynced.is_empty() {
            return None;
        }
        self.next_token += 1;
        self.syncing = Some(InFlight {
            token: self.next_token,
            covers: self.unsynced.len(),
        });
        Some(self.next_token)
    }

    /// Completes the sync `token`: its batches are durable. Returns the
    /// sequence number to confirm.
    pub fn complete_sync(&mut self, token: u64) -> Result<Option<PersistSeq>, String> {
        let Some(sync) = self.syncing.filter(|s| s.token == token) else {
            return Ok(None);
        };
        self.syncing = None;
        self.syncs += 1;
        let mut last = None;
        for _ in 0..sync.covers {
            let Some((seq, batch)) = self.unsynced.pop_front() else {
                break;
            };
            self.make_durable(batch)?;
            last = Some(seq);
        }
        Ok(last)
    }

    fn make_durable(&mut self, batch: Vec<u8>) -> Result<(), String> {
        let index = self.synced.len();
        self.synced.push(batch);
        self.ever_synced = true;
        let batch = &self.synced[index];
        self.view
            .apply_batch(batch)
            .map_err(|e| format!("durable batch {index} ({} bytes {batch:02x?}): {e}", batch.len()))
    }

    /// Whether a sync is in flight.
    pub fn syncing(&self) -> bool {
        self.syncing.is_some()
    }

    /// The storage is lost (replaced, reformatted): nothing is left, synced
    /// or not. Call after a crash.
    pub fn wipe(&mut self) {
        self.synced.clear();
        self.unsynced.clear();
        self.syncing = None;
        self.view = DurableView::default();
    }

    /// Power loss. Unsynced batches are lost, except that with probability
    /// `partial_flush_ppm` a prefix of them reached the disk and the next
    /// one is torn (dropped, as a checksum would reveal).
    pub fn crash(&mut self, rng: &mut SimRng, partial_flush_ppm: u32) -> Result<CrashDamage, String> {
        self.syncing = None;
        let mut damage = CrashDamage::default();
        let pending = self.unsynced.len();
        if pending > 0 && rng.chance_ppm(partial_flush_ppm) {
            let survive = rng.index(pending + 1);
            for _ in 0..survive {
                if let Some((_, batch)) = self.unsynced.pop_front() {
                    self.make_durable(batch)?;
                    damage.flushed += 1;
                }
            }
            if !self.unsynced.is_empty() {
                damage.torn = 1;
            }
        }
        damage.lost = self.unsynced.len() as u64 - damage.torn;
        self.unsynced.clear();
        Ok(damage)
    }

    /// Sabotage: forgets the newest durable batch and rebuilds the view.
    pub fn lose_synced_tail(&mut self) -> Result<(), String> {
        self.synced.pop();
        self.view = DurableView::default();
        for batch in &self.synced {
            self.view.apply_batch(batch)?;
        }
        Ok(())
    }

    /// Batches written but not yet durable.
    pub fn unsynced(&self) -> usize {
        self.unsynced.len()
    }

    /// The batches written but not yet durable, oldest first.
    pub fn unsynced_batches(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.unsynced.iter().map(|(_, batch)| batch.as_slice())
    }
}
