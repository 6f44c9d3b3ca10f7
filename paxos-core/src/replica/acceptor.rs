//! The acceptor's rules, all in one place: when to promise, when to
//! accept, and what a promise reports.

use super::log::Entry;
use super::state::{Notice, Pending, PersistItem, Role};
use super::wire::{Items, Slot};
use super::{Dropped, Replica, Value};
use crate::ballot::{admits, Ballot, NodeId};
use crate::codec::DecodeError;

impl<V: Value, const N: usize, const W: usize> Replica<V, N, W> {
    /// Notes a ballot seen anywhere: the next campaign goes above it.
    pub(super) fn observe(&mut self, ballot: Ballot) {
        self.seen = self.seen.max(Some(ballot));
    }

    /// Round 0 belongs to the configured initial leader alone (it skips
    /// phase 1 because no lower ballot exists); anything else claiming it
    /// is misconfigured and ignored.
    pub(super) fn legitimate(&self, ballot: Ballot) -> bool {
        ballot.round > 0 || self.config.initial_leader == Some(ballot.node)
    }

    /// Whether this node refuses to promise `candidate` now: it lost its
    /// storage (it never promises again), it leads, it heard from another
    /// leader within the election timeout (which also protects that
    /// leader's lease), or it restarted less than a lease ago.
    fn refuses(&self, candidate: NodeId) -> bool {
        let now = self.now;
        self.amnesiac
            || now < self.quiet_until
            || self.role == Role::Leader
            || (self.leader.is_some_and(|l| l != candidate) && now < self.last_heard + self.config.election_timeout)
    }

    /// Queues a refusal of `ballot`, naming the promise as it is now.
    fn refuse(&mut self, to: NodeId, ballot: Ballot) {
        let (promised, decided) = (self.promised, self.log.decided());
        self.queue(
            self.issued,
            Pending::Nack {
                to,
                ballot,
                promised,
                decided,
            },
        );
    }

    /// What every proposer's request goes through first: a ballot that is
    /// not its sender's, or round 0 from anyone but the initial leader, is
    /// ignored (`false`); full queues refuse the request whole.
    fn admit(&mut self, from: NodeId, ballot: Ballot) -> Result<bool, Dropped> {
        if !self.legitimate(ballot) || ballot.node != from {
            self.counters.invalid += 1;
            return Ok(false);
        }
        if !self.has_room() {
            return Err(Dropped::Busy);
        }
        self.observe(ballot);
        Ok(true)
    }

    /// Phase 1a.
    pub(super) fn on_prepare(&mut self, from: NodeId, ballot: Ballot, first: Slot, until: Slot) -> Result<(), Dropped> {
        if !self.admit(from, ballot)? {
            return Ok(());
        }
        let renewal = Some(ballot) == self.promised;
        if !renewal && (!admits(self.promised, ballot) || self.refuses(from)) {
            self.refuse(from, ballot);
            return Ok(());
        }
        if !renewal {
            self.queue_persist(PersistItem::Promised(ballot))
                .map_err(|()| Dropped::Busy)?;
            self.promised = Some(ballot);
            if self.role != Role::Follower {
                self.step_down(None);
            }
            // Give the candidate a full timeout to win before competing.
            self.reset_election_timer();
        }
        self.queue(
            self.issued,
            Pending::Promise {
                to: from,
                ballot,
                from: first,
                until,
            },
        );
        Ok(())
    }

    /// Phase 2a (and heartbeats): accept what the leader sends, learn what
    /// it says is decided.
    pub(super) fn on_append(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        commit: Slot,
        first: Slot,
        stamp: u64,
        rest: &[u8],
    ) -> Result<(), Dropped> {
        let items = Items::<Option<V>>::new(rest).map_err(Dropped::Malformed)?;
        if !self.admit(from, ballot)? {
            return Ok(());
        }
        if self.amnesiac {
            // No vote: follow, and learn what the watermark says is decided.
            self.follow(from);
            if commit > self.log.decided() {
                self.request_catch_up(from, self.log.decided());
            }
            return Ok(());
        }
        if !admits(self.promised, ballot) && !self.config.injected(super::fault::Bug::AcceptBelowPromise) {
            self.refuse(from, ballot);
            return Ok(());
        }
        if Some(ballot) > self.promised && !self.config.injected(super::fault::Bug::NoPromiseOnAccept) {
            self.queue_persist(PersistItem::Promised(ballot))
                .map_err(|()| Dropped::Busy)?;
            self.promised = Some(ballot);
        }
        self.follow(from);
        // Learn the watermark first: slots it decides may be delivered
        // before the new values need their room.
        self.advance_decided(ballot, commit);
        let (accepted_from, count, changed, malformed) = self.accept_values(ballot, first, items);
        if let Some((first, end)) = changed {
            self.queue_persist(PersistItem::Entries { first, end })
                .map_err(|()| Dropped::Busy)?;
        }
        self.queue(
            self.issued,
            Pending::Accepted {
                to: from,
                ballot,
                first: accepted_from,
                count,
                stamp,
            },
        );
        self.learn_commit(from, ballot, commit);
        match malformed {
            Some(e) => Err(Dropped::Malformed(e)),
            None => Ok(()),
        }
    }

    /// `from` leads: reset the election timer and report a change.
    fn follow(&mut self, from: NodeId) {
        if self.role != Role::Follower {
            self.step_down(Some(from));
        } else if self.leader != Some(from) {
            self.leader = Some(from);
            self.notice(Notice::Changed(Some(from)));
        }
        self.last_heard = self.now;
        self.reset_election_timer();
    }

    /// Accepts the values of an append, in order, for as long as the window
    /// holds them. Returns the first slot and count accepted, the slots
    /// whose entry changed (a vote already held, written or queued, needs
    /// no new record: a repeated append costs no write), and the decode
    /// error that stopped it, if any.
    fn accept_values(
        &mut self,
        ballot: Ballot,
        first: Slot,
        items: Items<'_, Option<V>>,
    ) -> (Slot, u32, Option<(Slot, Slot)>, Option<DecodeError>) {
        let mut accepted_from = first;
        let mut count = 0u32;
        let mut changed: Option<(Slot, Slot)> = None;
        let floor = self.persist_floor();
        let mut slot = first;
        let total = items.remaining();
        for item in items {
            let value = match item {
                Ok(v) => v,
                Err(e) => return (accepted_from, count, changed, Some(e)),
            };
            if slot < self.log.start() {
                // Already decided and applied here.
                slot += 1;
                accepted_from = slot;
                continue;
            }
            // What this node holds for the slot: (same value, same ballot).
            let held = self.log.get(slot).map(|e| (e.value == value, e.ballot == Some(ballot)));
            let decided = slot < self.log.decided();
            if decided && held.is_some_and(|(same_value, _)| !same_value) {
                // A decided slot cannot change: a leader that says so is
                // broken. Keep the decided value.
                self.counters.invalid += 1;
                break;
            }
            // A decided cell is never voted again: the leader's value is the
            // decided one, and rewriting the cell would change the record
            // that carries it (a learned value would be written as a plain
            // vote).
            let keep = held == Some((true, true))
                || (decided && held.is_some() && !self.config.injected(super::fault::Bug::UnrecordedLearnWatermark));
            if !keep {
                if !self.store(slot, Some(ballot), value, None, floor) {
                    self.counters.out_of_window += u64::from(total) - u64::from(count);
                    break;
                }
                changed = Some(changed.map_or((slot, slot + 1), |(from, _)| (from, slot + 1)));
            }
            count += 1;
            slot += 1;
        }
        (accepted_from, count, changed, None)
    }

    /// Stores `value` for `slot`, voted under `ballot` (`None`: learned
    /// decided), in place: a value is moved once, into its cell. A local
    /// proposal already there keeps its origin if the value is unchanged
    /// and is reported displaced otherwise; `origin` names a new one.
    pub(super) fn store(
        &mut self,
        slot: Slot,
        ballot: Option<Ballot>,
        value: Option<V>,
        origin: Option<super::ProposalId>,
        floor: Slot,
    ) -> bool {
        let Ok(cell) = self.log.cell(slot, floor) else {
            return false;
        };
        match cell {
            Some(old) if old.slot == slot => {
                let kept = match old.origin.take() {
                    Some(o) if old.value == value => Some(o),
                    Some(o) => {
                        let _ = self.displaced.push_back(o);
                        None
                    }
                    None => None,
                };
                old.ballot = ballot;
                old.value = value;
                old.votes = 0;
                old.origin = kept.or(origin);
            }
            _ => {
                *cell = Some(Entry {
                    origin,
                    ..Entry::new(slot, ballot, value)
                })
            }
        }
        true
    }

    /// The entries a promise reports for a candidate that asked about
    /// `first..until`: every value this acceptor voted for there.
    pub(super) fn promised_entries(
        &self,
        first: Slot,
        until: Slot,
        below: Ballot,
    ) -> impl Iterator<Item = (Slot, Ballot, &Option<V>)> + '_ {
        // Votes at or above the promised ballot came after the promise (from
        // its own winner): they are not the promise's to report, and may
        // not be durable yet.
        self.log
            .range(first, until)
            .filter_map(move |e| e.ballot.filter(|b| *b < below).map(|b| (e.slot, b, &e.value)))
    }

    /// Whether this acceptor holds votes at or beyond `until`.
    pub(super) fn holds_beyond(&self, until: Slot) -> bool {
        self.log.end() > until && self.log.range(until, Slot::MAX).any(|e| e.ballot.is_some())
    }
}
