//! Durability: the records the replica asks the driver to write, their
//! sequence numbers, and recovery from them.

use super::fault::Bug;
use super::log::Entry;
use super::state::{PersistItem, OUTBOX, PERSISTS};
use super::wire::{Items, Record, Slot, Writer};
use super::{PersistRequest, RecoverError, Replica, Value};
use crate::ballot::Ballot;
use crate::codec::{DecodeError, EncodeError, FORMAT_VERSION};
use crate::persist_seq::PersistSeq;

impl<V: Value, const N: usize, const W: usize> Replica<V, N, W> {
    /// Whether one more input's records and replies fit. The most an input
    /// queues is an append's: a promise, a watermark, its votes and a
    /// second watermark — and the votes still find the place `queue_persist`
    /// keeps for a watermark free.
    pub(super) fn has_room(&self) -> bool {
        PERSISTS - self.persists.len() >= 4 && OUTBOX - self.outbox.len() >= 2
    }

    /// Queues a record, merging it into the newest queued one where it
    /// extends it. Returns the sequence number that will cover it.
    pub(super) fn queue_persist(&mut self, item: PersistItem) -> Result<PersistSeq, ()> {
        if let PersistItem::Committed(_) = item {
            self.commit_wait
                .get_or_insert(self.now + self.config.heartbeat_interval);
        }
        if let Some((seq, back)) = self.persists.back_mut() {
            let merged = match (*back, item) {
                (PersistItem::Entries { first, end }, PersistItem::Entries { first: f2, end: e2 })
                    if f2 <= end && e2 >= first =>
                {
                    Some(PersistItem::Entries {
                        first: first.min(f2),
                        end: end.max(e2),
                    })
                }
                (PersistItem::Committed(a), PersistItem::Committed(b)) => Some(PersistItem::Committed(a.max(b))),
                (PersistItem::Promised(a), PersistItem::Promised(b)) => Some(PersistItem::Promised(a.max(b))),
                _ => None,
            };
            if let Some(m) = merged {
                *back = m;
                return Ok(*seq);
            }
        }
        // The last free place is kept for a watermark: a watermark then
        // always finds room, either beside another one (they merge) or in
        // the place every other kind left free.
        let watermark = matches!(item, PersistItem::Committed(_));
        if !watermark && PERSISTS - self.persists.len() < 2 {
            return Err(());
        }
        let seq = PersistSeq(self.issued.0 + 1);
        self.persists.push_back((seq, item)).map_err(|_| ())?;
        self.issued = seq;
        Ok(seq)
    }

    /// Whether the queue holds only commit watermarks that may wait: for
    /// at most a heartbeat interval, and only while no reply waits on them.
    /// At one decision at a time this halves the syncs of the leader,
    /// whose watermark otherwise takes a sync of its own after every
    /// decision.
    fn lone_commit_waits(&self) -> bool {
        self.commit_wait.is_some_and(|at| self.now < at)
            && self
                .persists
                .iter()
                .all(|(_, item)| matches!(item, PersistItem::Committed(_)))
            && self.outbox.iter().all(|(needs, _)| *needs <= self.written)
    }

    /// The lowest slot whose record is still queued: the log must keep it
    /// in memory until it is written.
    pub(super) fn persist_floor(&self) -> Slot {
        self.persists
            .iter()
            .filter_map(|(_, item)| match item {
                PersistItem::Entries { first, .. } => Some(*first),
                _ => None,
            })
            .min()
            .unwrap_or(Slot::MAX)
    }

    /// Writes as many queued records as fit into `buf`, whole records only
    /// (an entries record too large is split into runs): see
    /// [`Replica::poll_persist`].
    pub(super) fn write_batch(&mut self, buf: &mut [u8]) -> Option<PersistRequest> {
        if self.persists.is_empty() || self.lone_commit_waits() {
            return None;
        }
        let Ok(mut w) = Writer::frame(buf) else {
            self.counters.buffer_too_small += 1;
            return None;
        };
        let mut wrote_any = false;
        while let Some(&(seq, item)) = self.persists.front() {
            let rest = self.write_item(&mut w, item);
            match rest {
                // Written whole.
                None => {
                    self.persists.pop_front();
                    self.written = seq;
                    wrote_any = true;
                }
                // Written in part (or not at all): the rest waits for the
                // next batch.
                Some(rest) => {
                    if let Some(front) = self.persists.front_mut() {
                        if front.1 != rest {
                            wrote_any = true;
                        }
                        front.1 = rest;
                    }
                    break;
                }
            }
        }
        if !wrote_any {
            self.counters.buffer_too_small += 1;
            return None;
        }
        if self.persists.is_empty() {
            self.commit_wait = None;
        }
        Some(PersistRequest {
            seq: self.written,
            len: w.len(),
        })
    }

    /// Writes `item`; returns what did not fit.
    fn write_item(&self, w: &mut Writer<'_>, item: PersistItem) -> Option<PersistItem> {
        let simple = match item {
            PersistItem::Promised(ballot) => Record::Promised { ballot },
            PersistItem::Committed(slot) => Record::Committed { slot },
            PersistItem::Snapshot(slot) => Record::Snapshot { slot },
            PersistItem::Amnesiac => Record::Amnesiac,
            PersistItem::Entries { first, end } => return self.write_entries(w, first, end),
        };
        match w.put_compact(&simple) {
            Ok(()) => None,
            Err(_) => Some(item),
        }
    }

    /// Writes the slots `first..end` as runs of one ballot each.
    fn write_entries(&self, w: &mut Writer<'_>, first: Slot, end: Slot) -> Option<PersistItem> {
        let mut slot = first;
        while slot < end {
            let Some(head) = self.log.get(slot) else {
                // Left memory without being written: cannot happen, as the
                // log keeps every slot at or above the persist floor.
                slot += 1;
                continue;
            };
            let run_ballot = head.ballot;
            let record = match run_ballot {
                Some(ballot) => Record::Accepted { ballot, first: slot },
                None => Record::Learned { first: slot },
            };
            // A batch ends at a record boundary: whatever part of this run's
            // header was written is taken back if the rest does not fit.
            let mark = w.len();
            let Ok(at) = w.put_compact(&record).and_then(|()| w.reserve_count()) else {
                if !self.config.injected(Bug::TornRecord) {
                    w.truncate(mark);
                }
                return Some(PersistItem::Entries { first: slot, end });
            };
            let mut count = 0u32;
            while slot < end {
                let Some(entry) = self.log.get(slot).filter(|e| e.ballot == run_ballot) else {
                    break;
                };
                if w.put(&entry.value).is_err() {
                    break;
                }
                count += 1;
                slot += 1;
            }
            if count == 0 {
                w.truncate(mark);
                return Some(PersistItem::Entries { first: slot, end });
            }
            w.patch_count(at, count);
            if slot < end && self.log.get(slot).is_some_and(|e| e.ballot == run_ballot) {
                // The buffer is full.
                return Some(PersistItem::Entries { first: slot, end });
            }
        }
        None
    }

    /// Writes the batch [`Replica::write_checkpoint`] describes.
    pub(super) fn checkpoint(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let too_small = EncodeError::BufferTooSmall {
            required: Self::MAX_CHECKPOINT_SIZE,
        };
        let mut w = Writer::frame(buf)?;
        if self.amnesiac {
            w.put_compact(&Record::Amnesiac)?;
        }
        if let Some(ballot) = self.promised {
            w.put_compact(&Record::Promised { ballot })?;
        }
        w.put_compact(&Record::Snapshot { slot: self.log.start() })?;
        // The values first, then the watermark over them, as in any log.
        if self.write_entries(&mut w, self.log.start(), self.log.end()).is_some() {
            return Err(too_small);
        }
        w.put_compact(&Record::Committed {
            slot: self.log.decided(),
        })?;
        Ok(w.len())
    }

    /// Applies one batch written by [`Replica::poll_persist`].
    pub(super) fn replay(
        &mut self,
        batch: &[u8],
        applied: Slot,
        deliver: &mut impl FnMut(Slot, Option<&V>),
    ) -> Result<(), RecoverError> {
        let corrupt = RecoverError::Corrupt;
        let (&version, mut rest) = batch.split_first().ok_or(corrupt(DecodeError::Empty))?;
        if version != FORMAT_VERSION {
            return Err(corrupt(DecodeError::UnknownVersion(version)));
        }
        while !rest.is_empty() {
            let (record, after) = super::wire::compact::take::<Record>(rest).map_err(corrupt)?;
            rest = after;
            match record {
                Record::Promised { ballot } => self.promised = self.promised.max(Some(ballot)),
                Record::Committed { slot } => {
                    // A watermark is written only over slots whose values
                    // were written before it (or a snapshot covered).
                    if slot > self.log.end().max(self.log.start()) {
                        return Err(RecoverError::Corrupt(DecodeError::Malformed));
                    }
                    self.log.set_decided(slot);
                }
                Record::Snapshot { slot } => self.log.jump_to(slot),
                Record::Amnesiac => self.amnesiac = true,
                Record::Accepted { ballot, first } => {
                    self.promised = self.promised.max(Some(ballot));
                    rest = self.replay_values(Some(ballot), first, rest, applied, deliver)?;
                }
                Record::Learned { first } => {
                    rest = self.replay_values(None, first, rest, applied, deliver)?;
                }
            }
        }
        Ok(())
    }

    fn replay_values<'a>(
        &mut self,
        ballot: Option<Ballot>,
        first: Slot,
        bytes: &'a [u8],
        applied: Slot,
        deliver: &mut impl FnMut(Slot, Option<&V>),
    ) -> Result<&'a [u8], RecoverError> {
        let mut items = Items::<Option<V>>::new(bytes).map_err(RecoverError::Corrupt)?;
        let mut slot = first;
        for value in items.by_ref() {
            let value = value.map_err(RecoverError::Corrupt)?;
            // Let the window slide over everything decided, handing what
            // leaves it to the application first.
            self.log.set_delivered(self.log.decided());
            let new_start = (slot + 1).saturating_sub(W as u64).min(self.log.decided());
            for s in self.log.start().max(applied)..new_start {
                deliver(s, self.log.get(s).and_then(|e| e.value.as_ref()));
            }
            let entry = Entry::new(slot, ballot, value);
            self.log.put(entry, Slot::MAX).map_err(RecoverError::OutOfWindow)?;
            slot += 1;
            if ballot.is_none() && self.log.decided() + 1 == slot {
                self.log.set_decided(slot);
            }
        }
        items.finish().map_err(RecoverError::Corrupt)
    }

    /// Ends a restart: checks what replay rebuilt, takes the application's
    /// applied slot as a snapshot where it is ahead of the records, and
    /// marks a node with no records at all amnesiac. See
    /// [`super::Recovery::finish`].
    pub(super) fn finish_recovery(mut self, applied: Slot, replayed: bool) -> Result<Self, RecoverError> {
        // Every decided slot still in memory must have its value: a hole
        // means records were lost or forged, and delivering a no-op there
        // would invent a decision.
        let (start, decided) = (self.log.start(), self.log.decided());
        if (start..decided).any(|slot| self.log.get(slot).is_none()) {
            return Err(RecoverError::Corrupt(DecodeError::Malformed));
        }
        if applied > self.log.decided() {
            // The application applied slots whose commit record had not
            // reached disk: they are decided, and its state covers them, as
            // a snapshot would. The cells held for them may be older votes,
            // not the decided values: drop them rather than serve them, and
            // record the jump so that the next replay makes it too.
            self.log.jump_to(applied);
            let _ = self.queue_persist(PersistItem::Snapshot(applied));
        }
        // A learned cell is neither a vote (promises do not report it) nor
        // anything but a decided value: one above the watermark means the
        // watermark that covered it was lost, and this node could no
        // longer report what it may have acknowledged.
        if self
            .log
            .range(self.log.decided(), Slot::MAX)
            .any(|e| e.ballot.is_none())
        {
            return Err(RecoverError::Corrupt(DecodeError::Malformed));
        }
        self.log.set_delivered(applied);
        if !replayed {
            if self.config.injected(Bug::AmnesiacVotes) || self.config.injected(Bug::ForgetOnRestart) {
                self.start_fresh();
                return Ok(self);
            }
            // No records: this node's storage was lost (a first boot goes
            // through `Replica::new`). Whatever it promised and accepted
            // is gone, and promising or voting again could complete a
            // quorum that a chosen value's voters no longer intersect.
            // It says so on disk first, so that it stays a learner across
            // restarts.
            self.amnesiac = true;
            let _ = self.queue_persist(PersistItem::Amnesiac);
        }
        if let Some(lease) = self.config.lease {
            // A restarted node forgot which leader it acknowledged: it
            // waits out any lease it may have granted.
            self.quiet_until = self.now + lease.duration;
        }
        Ok(self)
    }
}
