//! The bytes of values a node's log window holds, bounded by
//! [`NodeOptions::window_bytes`](crate::options::NodeOptions::window_bytes).
//!
//! The replica keeps a window of slots in memory; with values of any size
//! a count of slots bounds nothing. Half the budget is for this node's
//! proposals in flight: a leader proposes no more until some are decided
//! (one is always allowed, so a command as large as the budget still
//! goes). The other half is for decided slots kept for peers' catch-up:
//! the oldest leave memory first
//! ([`Replica::release_delivered`](paxos_core::replica::Replica::release_delivered)),
//! and a peer that needs them then gets a snapshot. A follower's undecided
//! slots are the leader's proposals in flight, so its window is bounded by
//! the leader's budget and its own (nodes should share the setting).

use std::collections::VecDeque;

/// The bytes in flight and kept, against their budgets.
#[derive(Debug)]
pub(super) struct WindowBytes {
    /// Each half's budget.
    half: usize,
    in_flight: usize,
    /// Decided slots still counted as in memory, oldest first, with the
    /// length of their value.
    kept: VecDeque<(u64, usize)>,
    kept_bytes: usize,
}

impl WindowBytes {
    pub(super) fn new(budget: usize) -> Self {
        WindowBytes {
            half: (budget / 2).max(1),
            in_flight: 0,
            kept: VecDeque::new(),
            kept_bytes: 0,
        }
    }

    /// Whether a proposal of `len` bytes may leave now.
    pub(super) fn may_propose(&self, len: usize) -> bool {
        self.in_flight == 0 || self.in_flight.saturating_add(len) <= self.half
    }

    /// A proposal of `len` bytes left.
    pub(super) fn proposed(&mut self, len: usize) {
        self.in_flight = self.in_flight.saturating_add(len);
    }

    /// A proposal of `len` bytes was decided or displaced.
    pub(super) fn settled(&mut self, len: usize) {
        self.in_flight = self.in_flight.saturating_sub(len);
    }

    /// No proposal of this node is in flight any more (its tracking is
    /// empty): whatever the count says, nothing is.
    pub(super) fn none_in_flight(&mut self) {
        self.in_flight = 0;
    }

    /// `slot` was decided with a value of `len` bytes and is kept.
    pub(super) fn decided(&mut self, slot: u64, len: usize) {
        self.kept.push_back((slot, len));
        self.kept_bytes += len;
    }

    /// The slot below which decided slots should leave memory to keep
    /// within budget, if any must. Nothing is forgotten until the replica
    /// says what left ([`WindowBytes::left_below`]): it keeps a slot whose
    /// record is still queued.
    pub(super) fn release_below(&self) -> Option<u64> {
        let mut bytes = self.kept_bytes;
        let mut below = None;
        for &(slot, len) in &self.kept {
            if bytes <= self.half {
                break;
            }
            bytes -= len;
            below = Some(slot + 1);
        }
        below
    }

    /// The log now starts at `log_start`: the slots below it left memory
    /// (released, slid out of the window or replaced by a snapshot).
    pub(super) fn left_below(&mut self, log_start: u64) {
        while let Some(&(slot, len)) = self.kept.front() {
            if slot >= log_start {
                break;
            }
            self.kept.pop_front();
            self.kept_bytes -= len;
        }
    }

    /// The bytes of this node's proposals in flight.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The bytes of decided slots kept in memory.
    pub(super) fn kept(&self) -> usize {
        self.kept_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::WindowBytes;

    #[test]
    fn one_proposal_always_leaves_and_more_wait_for_room() {
        let mut w = WindowBytes::new(100);
        assert!(w.may_propose(500), "alone, even above the budget");
        w.proposed(30);
        assert!(w.may_propose(20));
        assert!(!w.may_propose(21));
        w.settled(30);
        assert_eq!(w.in_flight(), 0);
        w.proposed(10);
        w.none_in_flight();
        assert!(w.may_propose(500));
    }

    #[test]
    fn the_oldest_decided_slots_leave_first_down_to_half_the_budget() {
        let mut w = WindowBytes::new(100);
        for slot in 0..5 {
            w.decided(slot, 20);
        }
        // 100 bytes kept, 50 allowed: slots 0..3 should leave.
        assert_eq!(w.release_below(), Some(3));
        // The replica kept slot 2 (its record queued): only 0..2 left.
        w.left_below(2);
        assert_eq!(w.kept(), 60);
        assert_eq!(w.release_below(), Some(3), "slot 2 is still to leave");
        w.left_below(3);
        assert_eq!(w.kept(), 40);
        assert_eq!(w.release_below(), None);
        // Slots that left with the window are forgotten too.
        w.left_below(4);
        assert_eq!(w.kept(), 20);
    }
}
