//! The in-memory window of the replicated log.
//!
//! A ring of `W` cells holds the slots `start..start + W`. A cell holds
//! what this node's acceptor accepted for its slot (or a decided value it
//! learned), plus the leader's vote count for it. Slots below `start` have
//! left memory: they were decided and delivered.

use super::wire::Slot;
use crate::ballot::Ballot;

/// Identifies a proposal made through [`super::Replica::propose`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ProposalId(pub u64);

/// One slot's accepted value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Entry<V> {
    pub(crate) slot: Slot,
    /// The ballot under which this node's acceptor accepted the value;
    /// `None` for a decided value learned from another node (never voted).
    pub(crate) ballot: Option<Ballot>,
    /// The value; `None` is a no-op.
    pub(crate) value: Option<V>,
    /// The members (bit per index) whose durable vote for `(slot, ballot)`
    /// the leader has counted.
    pub(crate) votes: u64,
    /// The local proposal this value came from, if it was proposed here and
    /// its outcome is not reported yet.
    pub(crate) origin: Option<ProposalId>,
}

impl<V> Entry<V> {
    /// A value accepted (`ballot`) or learned decided (`None`) for `slot`,
    /// with no votes counted and no local proposal.
    pub(crate) fn new(slot: Slot, ballot: Option<Ballot>, value: Option<V>) -> Self {
        Entry {
            slot,
            ballot,
            value,
            votes: 0,
            origin: None,
        }
    }
}

/// The window of slots `start..start + W`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Log<V, const W: usize> {
    cells: [Option<Entry<V>>; W],
    /// The lowest slot memory may hold.
    start: Slot,
    /// Every slot below `decided` is decided and its cell, if still in
    /// memory, holds the decided value.
    decided: Slot,
    /// The next slot to hand to the application.
    delivered: Slot,
    /// One past the highest slot with a cell.
    end: Slot,
}

impl<V, const W: usize> Log<V, W> {
    pub(crate) fn new(start: Slot) -> Self {
        Log {
            cells: core::array::from_fn(|_| None),
            start,
            decided: start,
            delivered: start,
            end: start,
        }
    }

    fn index(slot: Slot) -> usize {
        // W is at least 1 (checked at construction), and the result is
        // below W, so it fits a usize.
        (slot % W as u64) as usize
    }

    pub(crate) fn start(&self) -> Slot {
        self.start
    }

    pub(crate) fn decided(&self) -> Slot {
        self.decided
    }

    pub(crate) fn delivered(&self) -> Slot {
        self.delivered
    }

    pub(crate) fn end(&self) -> Slot {
        self.end
    }

    /// One past the highest slot the window can hold now.
    pub(crate) fn limit(&self) -> Slot {
        self.start.saturating_add(W as u64)
    }

    pub(crate) fn get(&self, slot: Slot) -> Option<&Entry<V>> {
        if slot < self.start || slot >= self.limit() {
            return None;
        }
        self.cells.get(Self::index(slot))?.as_ref().filter(|e| e.slot == slot)
    }

    pub(crate) fn get_mut(&mut self, slot: Slot) -> Option<&mut Entry<V>> {
        if slot < self.start || slot >= self.limit() {
            return None;
        }
        self.cells
            .get_mut(Self::index(slot))?
            .as_mut()
            .filter(|e| e.slot == slot)
    }

    /// One past the highest slot the window could hold after dropping
    /// every delivered slot below `floor`.
    pub(crate) fn limit_with_floor(&self, floor: Slot) -> Slot {
        self.delivered.min(floor).max(self.start).saturating_add(W as u64)
    }

    /// Stores `entry` in its slot, replacing what was there, first
    /// dropping delivered slots below `floor` if the window must move.
    /// Refuses (with the slot) a slot below the window or beyond what it
    /// can reach. Entries are written in place and never returned: moving
    /// values around was a fifth of the cost of a batched commit.
    pub(crate) fn put(&mut self, entry: Entry<V>, floor: Slot) -> Result<(), Slot> {
        let slot = entry.slot;
        *self.cell(slot, floor)? = Some(entry);
        Ok(())
    }

    /// The cell for `slot` (which may hold an older slot's entry, or
    /// none), first dropping delivered slots below `floor` if the window
    /// must move, so that a caller can update an entry where it lies.
    /// Refuses a slot below the window or beyond what it can reach.
    pub(crate) fn cell(&mut self, slot: Slot, floor: Slot) -> Result<&mut Option<Entry<V>>, Slot> {
        if slot < self.start || slot >= self.limit_with_floor(floor) {
            return Err(slot);
        }
        self.advance_start(slot.saturating_add(1).saturating_sub(W as u64).min(floor));
        self.end = self.end.max(slot + 1);
        self.cells.get_mut(Self::index(slot)).ok_or(slot)
    }

    /// Drops every slot below `to` (never beyond what was delivered).
    pub(crate) fn advance_start(&mut self, to: Slot) {
        let to = to.min(self.delivered);
        if to <= self.start {
            return;
        }
        // Clear the cells of the dropped slots: at most the whole ring, so a
        // long jump costs W steps, not one per slot.
        let (start, span) = (self.start, to - self.start);
        if span >= W as u64 {
            self.cells.iter_mut().for_each(|c| *c = None);
        } else {
            for slot in start..to {
                if let Some(cell) = self.cells.get_mut(Self::index(slot)) {
                    if cell.as_ref().is_some_and(|e| e.slot == slot) {
                        *cell = None;
                    }
                }
            }
        }
        self.start = to;
        self.end = self.end.max(self.start);
    }

    /// Marks every slot below `to` decided.
    pub(crate) fn set_decided(&mut self, to: Slot) {
        self.decided = self.decided.max(to);
        self.end = self.end.max(self.decided);
    }

    /// Takes the next decided, undelivered slot.
    pub(crate) fn next_to_deliver(&mut self) -> Option<Slot> {
        if self.delivered < self.decided {
            let slot = self.delivered;
            self.delivered += 1;
            Some(slot)
        } else {
            None
        }
    }

    /// Skips delivery (and memory) up to `slot`: a snapshot covers it.
    pub(crate) fn jump_to(&mut self, slot: Slot) {
        if slot <= self.start {
            return;
        }
        self.decided = self.decided.max(slot);
        self.delivered = self.delivered.max(slot);
        self.advance_start(slot);
        self.end = self.end.max(slot);
    }

    /// Redelivers from `slot` after a restart (not below the window).
    pub(crate) fn set_delivered(&mut self, slot: Slot) {
        self.delivered = slot.clamp(self.start, self.decided);
    }

    /// The cells in `from..to`, in slot order, skipping empty ones.
    pub(crate) fn range(&self, from: Slot, to: Slot) -> impl Iterator<Item = &Entry<V>> + '_ {
        (from.max(self.start)..to.min(self.end).min(self.limit())).filter_map(move |s| self.get(s))
    }

    /// Calls `f` on the cell of every slot in `from..to` that has one.
    pub(crate) fn for_each_mut(&mut self, from: Slot, to: Slot, mut f: impl FnMut(&mut Entry<V>)) {
        for slot in from.max(self.start)..to.min(self.end).min(self.limit()) {
            if let Some(entry) = self.get_mut(slot) {
                f(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ballot::NodeId;

    fn entry(slot: Slot, v: u8) -> Entry<u8> {
        Entry {
            slot,
            ballot: Some(Ballot::new(1, NodeId(0))),
            value: Some(v),
            votes: 0,
            origin: None,
        }
    }

    #[test]
    fn window_moves_only_over_delivered_slots() {
        let mut log: Log<u8, 4> = Log::new(0);
        for s in 0..4 {
            log.put(entry(s, s as u8), Slot::MAX).unwrap();
        }
        assert_eq!(log.end(), 4);
        assert!(log.put(entry(4, 4), Slot::MAX).is_err(), "slot 0 is not delivered");
        log.set_decided(2);
        assert_eq!(log.next_to_deliver(), Some(0));
        assert_eq!(log.next_to_deliver(), Some(1));
        assert_eq!(log.next_to_deliver(), None);
        assert!(log.put(entry(5, 5), Slot::MAX).is_ok(), "slots 0 and 1 leave");
        assert_eq!(log.start(), 2);
        assert!(log.get(1).is_none() && log.get(5).is_some());
        assert!(log.put(entry(1, 1), Slot::MAX).is_err(), "below the window");
        assert!(log.put(entry(6, 6), Slot::MAX).is_err(), "slot 2 is not delivered");
        assert_eq!(
            log.range(0, 10)
                .map(|e| e.slot)
                .collect::<heapless::Vec<_, 8>>()
                .as_slice(),
            &[2, 3, 5]
        );
    }

    #[test]
    fn a_jump_to_the_end_of_time_takes_no_time() {
        let mut log: Log<u8, 4> = Log::new(0);
        log.put(entry(1, 1), Slot::MAX).unwrap();
        log.jump_to(u64::MAX - 10);
        assert_eq!(log.start(), u64::MAX - 10);
        assert!(log.get(1).is_none());
        assert!(log.put(entry(u64::MAX - 8, 2), Slot::MAX).is_ok());
    }

    #[test]
    fn replacing_overwrites_and_jump_skips() {
        let mut log: Log<u8, 4> = Log::new(10);
        log.put(entry(11, 1), Slot::MAX).unwrap();
        log.put(entry(11, 2), Slot::MAX).unwrap();
        assert_eq!(log.get(11).map(|e| e.value), Some(Some(2)));
        log.jump_to(20);
        assert_eq!((log.start(), log.decided(), log.delivered()), (20, 20, 20));
        assert!(log.get(11).is_none());
        assert!(log.put(entry(23, 3), Slot::MAX).is_ok());
        assert!(log.put(entry(24, 3), Slot::MAX).is_err() || log.start() > 20);
    }
}
