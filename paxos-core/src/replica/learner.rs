//! Learning decisions: from the leader's commit watermark, from other
//! nodes' decided values when this node fell behind, and from the
//! application's snapshots.

use super::fault::Bug;
use super::state::{Notice, Pending, PersistItem, Role};
use super::wire::{Items, Slot};
use super::{Dropped, Replica, Value};
use crate::ballot::{Ballot, NodeId};

impl<V: Value, const N: usize, const W: usize> Replica<V, N, W> {
    /// The leader of `ballot` says every slot below `commit` is decided
    /// with the value it sent under `ballot`: every slot this node accepted
    /// under that ballot is decided. A slot it lacks, or holds from another
    /// ballot, stops the watermark: ask the leader for it.
    pub(super) fn learn_commit(&mut self, leader: NodeId, ballot: Ballot, commit: Slot) {
        let decided = self.advance_decided(ballot, commit);
        if decided < commit {
            self.request_catch_up(leader, decided);
        }
    }

    /// Marks decided every slot below `commit` accepted under `ballot`, up
    /// to the first that is not; returns the new watermark.
    pub(super) fn advance_decided(&mut self, ballot: Ballot, commit: Slot) -> Slot {
        let mut decided = self.log.decided();
        while decided < commit && self.log.get(decided).is_some_and(|e| e.ballot == Some(ballot)) {
            decided += 1;
        }
        self.set_decided(decided);
        decided
    }

    /// Moves the decided watermark and records it. The record always
    /// finds room (see `queue_persist`): replay needs every watermark the
    /// window slid over, and every learned cell needs one above it.
    pub(super) fn set_decided(&mut self, decided: Slot) {
        if decided > self.log.decided() {
            self.log.set_decided(decided);
            if self.queue_persist(PersistItem::Committed(decided)).is_err() {
                self.counters.busy += 1;
            }
            if self.catch_up.is_some_and(|(slot, _)| slot < decided) {
                self.catch_up = None;
            }
        }
    }

    /// Asks `peer` for the decided values from `from`, at most once per
    /// retransmission timeout for the same slot.
    pub(super) fn request_catch_up(&mut self, peer: NodeId, from: Slot) {
        let recent = self
            .catch_up
            .is_some_and(|(slot, at)| slot == from && self.now < at + self.config.retransmit_timeout);
        if !recent {
            self.catch_up = Some((from, self.now));
            self.queue(crate::practical::PersistSeq(0), Pending::CatchUp { to: peer, from });
        }
    }

    /// A node asks for decided values from `from`.
    pub(super) fn on_catch_up(&mut self, peer: NodeId, from: Slot) -> Result<(), Dropped> {
        if from >= self.log.decided() {
            return Ok(());
        }
        if from < self.log.start() {
            self.notice(Notice::SnapshotNeeded(peer, from));
            return Ok(());
        }
        self.queue(crate::practical::PersistSeq(0), Pending::Learn { to: peer, from });
        Ok(())
    }

    /// Decided values from another node. Only a follower uses them, and
    /// only a run that continues its decided prefix.
    ///
    /// A leader's watermark is what its appends announce as `commit`, and
    /// followers read that as "every slot below it holding a vote under my
    /// ballot is decided": it may cover only values chosen under its own
    /// ballot. A `Learn` at a leader or candidate is either stale (asked
    /// before it campaigned: phase 1 found, and it re-proposes, whatever
    /// it lacks) or the sign of a higher ballot (whose acceptors will
    /// refuse it): it needs neither, so it drops it.
    pub(super) fn on_learn(&mut self, first: Slot, rest: &[u8]) -> Result<(), Dropped> {
        let items = Items::<Option<V>>::new(rest).map_err(Dropped::Malformed)?;
        if self.role != Role::Follower && !self.config.injected(Bug::LeaderLearns) {
            self.counters.stale += 1;
            return Ok(());
        }
        if first > self.log.decided() {
            return Ok(());
        }
        if !self.has_room() {
            return Err(Dropped::Busy);
        }
        let floor = self.persist_floor();
        let mut decided = self.log.decided();
        let mut stored_from = None;
        for (slot, item) in (first..).zip(items) {
            let value = item.map_err(Dropped::Malformed)?;
            if slot == decided {
                if !self.store(slot, None, value, None, floor) {
                    self.counters.out_of_window += 1;
                    break;
                }
                stored_from.get_or_insert(slot);
                decided += 1;
            }
        }
        if let Some(from) = stored_from {
            self.queue_persist(PersistItem::Entries {
                first: from,
                end: decided,
            })
            .map_err(|()| Dropped::Busy)?;
            if self.config.injected(Bug::UnrecordedLearnWatermark) {
                self.log.set_decided(decided);
            } else {
                // The watermark record follows the values: a learned cell is
                // neither a vote a promise reports nor, without a watermark
                // above it, decided on replay. A record is encoded from its
                // cell when polled, so the values alone cannot carry it.
                self.set_decided(decided);
            }
        }
        Ok(())
    }

    /// Moves the log past a snapshot the application installed: every slot
    /// below `slot` is decided and delivered. A node that leads or
    /// campaigns steps down first: its watermark may only cover what its
    /// own ballot decided (see `on_learn`), and the application's state
    /// has already moved, so the jump cannot be refused.
    pub(super) fn jump_to_snapshot(&mut self, slot: Slot) -> Result<(), Dropped> {
        if slot <= self.log.decided() {
            return Ok(());
        }
        let seq = self
            .queue_persist(PersistItem::Snapshot(slot))
            .map_err(|()| Dropped::Busy)?;
        // The jump clears cells whose records are still queued: they will
        // write nothing, so nothing queued may count on them.
        if !self.config.injected(Bug::SnapshotDropsPendingVotes) {
            // A watermark queued over them must not reach disk before the
            // snapshot that covers them. Every such watermark is below the
            // jump (else there would be no jump): it becomes the snapshot
            // record itself, in its place.
            for (_, item) in self.persists.iter_mut() {
                if let PersistItem::Committed(_) = item {
                    *item = PersistItem::Snapshot(slot);
                }
            }
        }
        if !self.config.injected(Bug::VoteLeavesBeforeSnapshot) {
            // A vote waiting on them must not leave before the snapshot is
            // durable either (a batch may end between the two): every
            // waiting reply now waits for the snapshot record.
            for (needs, _) in self.outbox.iter_mut() {
                if !needs.released_by(self.durable) {
                    *needs = seq;
                }
            }
        }
        if self.role != Role::Follower && !self.config.injected(Bug::LeaderLearns) {
            self.step_down(None);
        }
        // The snapshot decides these slots for us: proposals tracked there
        // get no other outcome.
        self.displace(self.log.start(), slot);
        self.log.jump_to(slot);
        self.catch_up = None;
        Ok(())
    }
}
