//! Outgoing messages: queued by the rules, held until the records they
//! reveal are durable, encoded when the driver polls for them.

use super::fault::Bug;
use super::state::{Pending, Role};
use super::wire::{Header, Slot, Writer};
use super::{Replica, Transmit, Value};
use crate::ballot::{NodeId, NodeSet};
use crate::codec::EncodeError;
use crate::persist_seq::PersistSeq;

impl<V: Value, const N: usize, const W: usize> Replica<V, N, W> {
    /// Encodes the first queued message whose records are durable
    /// (persist before reveal: a queued message waits on the sequence
    /// number it needs), skipping stale ones, then the leader's append.
    pub(super) fn next_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(&(needs, pending)) = self.outbox.front() {
            if !needs.released_by(self.durable) {
                break;
            }
            self.outbox.pop_front();
            match self.encode_pending(pending, buf) {
                Ok(Some((t, rest))) => {
                    if let Some(rest) = rest {
                        // The rest of a promise goes next: the slot just
                        // freed takes it, so this cannot fail.
                        let _ = self.outbox.push_front((needs, rest));
                    }
                    return Some(t);
                }
                Ok(None) => {}
                Err(_) => self.counters.buffer_too_small += 1,
            }
        }
        if self.role == Role::Leader {
            return self.leader_broadcast(buf);
        }
        None
    }

    fn others(&self) -> NodeSet {
        self.config
            .members
            .iter()
            .copied()
            .filter(|m| *m != self.config.id)
            .collect()
    }

    fn one(to: NodeId) -> NodeSet {
        let mut set = NodeSet::new();
        set.insert(to);
        set
    }

    /// Encodes a queued message as of now; `None` if it went stale. With
    /// the frame, what is left to send of it (the rest of a promise).
    fn encode_pending(
        &self,
        pending: Pending,
        buf: &mut [u8],
    ) -> Result<Option<(Transmit, Option<Pending>)>, EncodeError> {
        let mut w = Writer::frame(buf)?;
        let mut rest = None;
        let to = match pending {
            Pending::Prepare { ballot, from, until } => {
                if self.role != Role::Candidate || self.campaign.ballot != ballot {
                    return Ok(None);
                }
                w.put_compact(&Header::Prepare { ballot, from, until })?;
                self.others()
            }
            Pending::Promise {
                to,
                ballot,
                from,
                until,
            } => {
                if self.promised != Some(ballot) {
                    return Ok(None);
                }
                w.put_compact(&Header::Promise {
                    ballot,
                    decided: self.log.decided(),
                    beyond: self.holds_beyond(until),
                    first: from,
                    complete: true,
                })?;
                let complete_at = w.len() - 1;
                let at = w.reserve_count()?;
                let mut n = 0u32;
                let mut last = None;
                for (slot, vote, value) in self.promised_entries(from, until, ballot) {
                    // A PromisedEntry, field by field: the same bytes,
                    // without a copy of the value.
                    let mark = w.len();
                    if let Err(e) = w.put(&slot).and_then(|()| w.put(&vote)).and_then(|()| w.put(value)) {
                        // The part ends before the entry that does not
                        // fit; if none fits, the buffer is below
                        // MAX_MESSAGE_SIZE for this value.
                        let next = last.ok_or(e)?;
                        w.truncate(mark);
                        w.patch_byte(complete_at, 0);
                        rest = Some(Pending::Promise {
                            to,
                            ballot,
                            from: next,
                            until,
                        });
                        break;
                    }
                    n += 1;
                    last = Some(slot + 1);
                }
                w.patch_count(at, n);
                Self::one(to)
            }
            Pending::Accepted {
                to,
                ballot,
                first,
                count,
                stamp,
            } => {
                // The votes go out once their record is durable, but the
                // record is encoded from the cells when it is written: a
                // newer ballot that rewrote or cleared a cell in between
                // left a durable record without this vote. Under a ballot
                // since superseded, only the prefix whose cells still hold
                // the vote is revealed (its leader has been replaced: a
                // shorter reply costs nothing). Votes under the promised
                // ballot are never shortened: a cell that later learned its
                // decided value no longer shows the ballot, and the leader
                // still needs the vote (it never learns from a peer).
                let count = if self.promised > Some(ballot) {
                    let held = (first..first.saturating_add(u64::from(count)))
                        .take_while(|&slot| self.log.get(slot).is_some_and(|e| e.ballot == Some(ballot)))
                        .count();
                    match u32::try_from(held) {
                        Ok(0) | Err(_) => return Ok(None),
                        Ok(held) => held,
                    }
                } else {
                    count
                };
                w.put_compact(&Header::Accepted {
                    ballot,
                    first,
                    count,
                    stamp,
                })?;
                Self::one(to)
            }
            Pending::Nack {
                to,
                ballot,
                promised,
                decided,
            } => {
                w.put_compact(&Header::Nack {
                    ballot,
                    promised,
                    decided,
                })?;
                Self::one(to)
            }
            Pending::CatchUp { to, from } => {
                w.put_compact(&Header::CatchUp { from })?;
                Self::one(to)
            }
            Pending::Learn { to, from } => {
                if from < self.log.start() || from >= self.log.decided() {
                    return Ok(None);
                }
                w.put_compact(&Header::Learn { first: from })?;
                self.put_values(&mut w, from, self.log.decided(), |_| true)?;
                Self::one(to)
            }
        };
        Ok(Some((Transmit { to, len: w.len() }, rest)))
    }

    /// Writes a count and then the values of `from..to` while they exist,
    /// pass `keep`, and fit. Returns how many were written.
    fn put_values(
        &self,
        w: &mut Writer<'_>,
        from: Slot,
        to: Slot,
        keep: impl Fn(&super::log::Entry<V>) -> bool,
    ) -> Result<u32, EncodeError> {
        let at = w.reserve_count()?;
        let mut n = 0u32;
        let mut slot = from;
        while slot < to {
            let Some(entry) = self.log.get(slot).filter(|e| keep(e)) else {
                break;
            };
            if w.put(&entry.value).is_err() {
                break;
            }
            n += 1;
            slot += 1;
        }
        w.patch_count(at, n);
        Ok(n)
    }

    /// The leader's append to every follower: new values (as many as fit),
    /// a heartbeat, or a new commit watermark.
    fn leader_broadcast(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let others = self.others();
        if self.durable < self.lead.ready {
            // Nothing goes out under a ballot whose promise is not durable.
            return None;
        }
        if others.is_empty() {
            // A one-node cluster: nobody to tell. What would have gone out
            // counts as sent, so the heartbeat and commit deadlines move on
            // instead of staying passed (a driver would spin on them).
            let (next, decided) = (self.lead.next_slot, self.log.decided());
            let lead = &mut self.lead;
            lead.broadcast_from = next;
            lead.last_broadcast = self.now;
            lead.commit_sent = decided;
            lead.heartbeat_due = false;
            return None;
        }
        let now = self.now;
        let lead = &self.lead;
        let has_values = lead.broadcast_from < lead.next_slot;
        let commit_due = lead.commit_sent < self.log.decided() && now >= lead.last_progress + self.commit_delay();
        if !has_values && !lead.heartbeat_due && !commit_due {
            return None;
        }
        let (ballot, first, end) = (lead.ballot, lead.broadcast_from, lead.next_slot);
        let commit = self.log.decided();
        let Ok(mut w) = Writer::frame(buf) else {
            self.counters.buffer_too_small += 1;
            return None;
        };
        let header = Header::Append {
            ballot,
            commit,
            first,
            stamp: now.as_micros(),
        };
        if w.put_compact(&header).is_err() {
            self.counters.buffer_too_small += 1;
            return None;
        }
        // Every slot from `first` holds this leader's proposal: phase 1
        // stored every open slot under its ballot, and a leader takes no
        // value from elsewhere (see `on_learn`).
        let Ok(n) = self.put_values(&mut w, first, end, |e| e.ballot == Some(ballot)) else {
            // The header fitted, its count did not: nothing leaves.
            self.counters.buffer_too_small += 1;
            return None;
        };
        if n == 0 && has_values && !self.lead.heartbeat_due && !commit_due {
            // Nothing fits: stop here rather than send empty appends forever.
            self.counters.buffer_too_small += 1;
            return None;
        }
        let lead = &mut self.lead;
        lead.broadcast_from = first + u64::from(n);
        lead.last_broadcast = now;
        lead.commit_sent = commit;
        lead.heartbeat_due = false;
        Some(Transmit {
            to: others,
            len: w.len(),
        })
    }

    /// Queues `pending` to leave once every record up to `needs` is
    /// durable.
    pub(super) fn queue(&mut self, needs: PersistSeq, pending: Pending) {
        let needs = if self.config.injected(Bug::RevealBeforeDurable) {
            PersistSeq(0)
        } else {
            needs
        };
        // Votes for consecutive slots to the same leader under the same
        // ballot leave as one reply, released once the later record is
        // durable (it covers the earlier one).
        if let (
            Some((
                back_needs,
                Pending::Accepted {
                    to,
                    ballot,
                    first,
                    count,
                    stamp,
                },
            )),
            Pending::Accepted {
                to: to2,
                ballot: ballot2,
                first: first2,
                count: count2,
                stamp: stamp2,
            },
        ) = (self.outbox.back_mut(), pending)
        {
            if *to == to2 && *ballot == ballot2 && *first + u64::from(*count) == first2 {
                if let Some(sum) = count.checked_add(count2) {
                    *count = sum;
                    *stamp = (*stamp).max(stamp2);
                    *back_needs = (*back_needs).max(needs);
                    return;
                }
            }
        }
        if self.outbox.push_back((needs, pending)).is_err() {
            self.counters.outbox_full += 1;
        }
    }
}
