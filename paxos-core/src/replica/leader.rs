//! Proposing: elections (phase 1 once for every open slot), the leader's
//! pipeline (phase 2), vote counting, leases, and stepping down.

use super::log::ProposalId;
use super::state::{Notice, Pending, PersistItem, Role};
use super::wire::{Items, PromisedEntry, Slot};
use super::{Dropped, ProposeError, Replica, Value};
use crate::ballot::{Ballot, NodeId};
use crate::time::{Duration, Instant};

fn count(mask: u64) -> usize {
    mask.count_ones() as usize
}

impl<V: Value, const N: usize, const W: usize> Replica<V, N, W> {
    fn bit(index: usize) -> u64 {
        1u64 << index
    }

    /// The designated initial leader of a fresh cluster leads at once with
    /// ballot `(0, id)`; the others follow it.
    pub(super) fn start_fresh(&mut self) {
        let Some(initial) = self.config.initial_leader else {
            return;
        };
        if initial != self.config.id {
            self.leader = Some(initial);
            return;
        }
        let ballot = Ballot::new(0, self.config.id);
        if let Ok(seq) = self.queue_persist(PersistItem::Promised(ballot)) {
            self.promised = Some(ballot);
            self.become_leader(ballot, self.log.decided(), self.log.decided(), seq);
        }
    }

    /// Starts phase 1 with a ballot above every ballot seen.
    pub(super) fn start_campaign(&mut self) {
        self.reset_election_timer();
        if !self.has_room() {
            return;
        }
        let floor = if self.config.injected(super::fault::Bug::ReuseBallotAfterRestart) {
            self.seen
        } else {
            self.promised.max(self.seen)
        };
        let Some(mut ballot) = floor.map_or(Some(Ballot::new(1, self.config.id)), |f| f.next_for(self.config.id))
        else {
            // Every round is used up: this node can no longer lead.
            self.counters.invalid += 1;
            return;
        };
        if ballot.round == 0 {
            ballot = Ballot::new(1, self.config.id);
        }
        let Ok(self_seq) = self.queue_persist(PersistItem::Promised(ballot)) else {
            return;
        };
        self.promised = Some(ballot);
        self.observe(ballot);
        self.role = Role::Candidate;
        let from = self.log.decided();
        let until = self.log.limit_with_floor(self.persist_floor());
        let campaign = &mut self.campaign;
        campaign.ballot = ballot;
        campaign.from = from;
        campaign.until = until;
        campaign.promises = 0;
        campaign.nacks = 0;
        campaign.self_seq = self_seq;
        campaign.answered = [0; W];
        for cell in campaign.best.iter_mut() {
            *cell = None;
        }
        // The prepare waits for the self-promise to be durable: a restarted
        // node then never reuses the ballot.
        self.queue(self.issued, Pending::Prepare { ballot, from, until });
        self.maybe_win();
    }

    /// Phase 1b: a promise, or one part of one. A peer's promise counts
    /// once its parts, in whatever order they came, answered for every
    /// slot of the campaign. Parts of different answers to the same ballot
    /// may combine: once a node promised the ballot, its votes below it
    /// never change, so every part reports what one whole promise would
    /// have for its slots.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_promise(
        &mut self,
        peer: usize,
        ballot: Ballot,
        decided: Slot,
        beyond: bool,
        first: Slot,
        complete: bool,
        rest: &[u8],
    ) -> Result<(), Dropped> {
        let items = Items::<PromisedEntry<V>>::new(rest).map_err(Dropped::Malformed)?;
        if self.role != Role::Candidate || ballot != self.campaign.ballot {
            return Ok(());
        }
        if self.campaign.promises & Self::bit(peer) != 0 {
            return Ok(());
        }
        let (from, until) = (self.campaign.from, self.campaign.until);
        if decided > from || beyond {
            // This node is behind: it cannot know what was decided there.
            // Let a node that knows lead, and catch up meanwhile.
            let peer_id = self.member(peer);
            self.abandon_campaign();
            if let Some(peer_id) = peer_id {
                self.request_catch_up(peer_id, self.log.decided());
            }
            return Ok(());
        }
        if first < from {
            self.counters.invalid += 1;
            return Ok(());
        }
        let mut end = first;
        for item in items {
            // Merging part of a bad promise is harmless (every reported
            // value was really accepted); counting it would not be.
            let PromisedEntry { slot, ballot: b, value } = item.map_err(Dropped::Malformed)?;
            if slot < first || slot >= until {
                self.counters.invalid += 1;
                continue;
            }
            end = end.max(slot + 1);
            let index = usize::try_from(slot - from).unwrap_or(usize::MAX);
            if let Some(cell) = self.campaign.best.get_mut(index) {
                if cell.as_ref().is_none_or(|(best, _)| b > *best) {
                    *cell = Some((b, value));
                }
            }
        }
        // The last part answers up to the campaign's end, any other
        // through its last entry.
        let end = if complete { until } else { end };
        if self.answer_for(peer, first, end) || self.config.injected(super::fault::Bug::CountPartialPromise) {
            self.campaign.promises |= Self::bit(peer);
            self.maybe_win();
        }
        Ok(())
    }

    /// Notes that `peer`'s promise answered for `first..end`; whether it
    /// has now answered for every slot of the campaign.
    fn answer_for(&mut self, peer: usize, first: Slot, end: Slot) -> bool {
        let campaign = &mut self.campaign;
        let (from, until) = (campaign.from, campaign.until);
        let bit = Self::bit(peer);
        let index = |slot: Slot| usize::try_from(slot - from).unwrap_or(usize::MAX);
        for slot in first.max(from)..end.min(until) {
            if let Some(cell) = campaign.answered.get_mut(index(slot)) {
                *cell |= bit;
            }
        }
        (from..until).all(|slot| campaign.answered.get(index(slot)).is_some_and(|cell| cell & bit != 0))
    }

    fn member(&self, index: usize) -> Option<NodeId> {
        self.config.members.get(index).copied()
    }

    fn abandon_campaign(&mut self) {
        self.role = Role::Follower;
        self.reset_election_timer();
    }

    /// Wins once a quorum promised (this node's own promise counts once
    /// durable).
    pub(super) fn maybe_win(&mut self) {
        if self.role != Role::Candidate || count(self.campaign.promises) < self.config.quorum() {
            return;
        }
        if !self.has_room() {
            // Retried on the next promise or confirmation.
            return;
        }
        // Choose, for every slot anyone reported, the value with the
        // highest ballot; fill the gaps with no-ops.
        let (ballot, from, until) = (self.campaign.ballot, self.campaign.from, self.campaign.until);
        let mut end = from.max(self.log.decided());
        for (i, cell) in self.campaign.best.iter().enumerate() {
            if cell.is_some() {
                end = end.max(from + i as u64 + 1);
            }
        }
        if let Some(last) = self.promised_entries(from, until, ballot).last() {
            end = end.max(last.0 + 1);
        }
        let floor = self.persist_floor();
        for slot in from..end {
            let index = usize::try_from(slot - from).unwrap_or(usize::MAX);
            let mut reported = self.campaign.best.get_mut(index).and_then(Option::take);
            let mut own = self.log.get(slot).map(|e| (e.ballot, e.value.clone()));
            if self.config.injected(super::fault::Bug::IgnoreAcceptedValues) && slot >= self.log.decided() {
                (reported, own) = (None, None);
            }
            let value = match (own, reported) {
                // Decided here: keep it.
                (Some((_, v)), _) if slot < self.log.decided() => v,
                (Some((Some(b), v)), Some((rb, _))) if b >= rb => v,
                (_, Some((_, rv))) => rv,
                (Some((_, v)), None) => v,
                (None, None) => None,
            };
            if !self.store(slot, Some(ballot), value, None, floor) {
                // Cannot happen: `end` is within the window the campaign
                // was sized for. Stay a candidate and retry later.
                self.counters.out_of_window += 1;
                return;
            }
        }
        if end > from {
            let Ok(seq) = self.queue_persist(PersistItem::Entries { first: from, end }) else {
                return;
            };
            self.queue_self_votes(seq, ballot, from, end);
        }
        self.become_leader(ballot, from, end, self.campaign.self_seq);
    }

    fn become_leader(&mut self, ballot: Ballot, from: Slot, end: Slot, ready: crate::practical::PersistSeq) {
        self.role = Role::Leader;
        let now = self.now;
        let lead = &mut self.lead;
        lead.ballot = ballot;
        lead.next_slot = end;
        lead.broadcast_from = from;
        lead.recovery_end = end;
        lead.since = now;
        lead.last_progress = now;
        lead.commit_sent = 0;
        lead.stamps = [None; N];
        lead.nacks = 0;
        // Announce at once.
        lead.heartbeat_due = true;
        lead.ready = ready;
        self.notice(Notice::Acquired(ballot));
        if self.leader != Some(self.config.id) {
            self.leader = Some(self.config.id);
            self.notice(Notice::Changed(Some(self.config.id)));
        }
        // A single-node cluster decides with its own votes alone.
        self.on_durable();
    }

    fn queue_self_votes(&mut self, seq: crate::practical::PersistSeq, ballot: Ballot, first: Slot, end: Slot) {
        // The injected fault skips the fold below: with no room, the vote
        // is dropped.
        let full = self.self_votes.is_full() && !self.config.injected(super::fault::Bug::DropSelfVotesWhenFull);
        if let Some(back) = self.self_votes.back_mut() {
            if back.1 == ballot && back.3 == first && (back.0 == seq || full) {
                // Contiguous votes of one ballot share an entry. When the
                // queue is full (more records written than it has entries,
                // none durable yet), the entry waits for the newer record:
                // its votes are counted later, never earlier, and never
                // lost: a vote dropped here would leave a one-node cluster,
                // where nothing else decides, stalled for good.
                back.0 = seq;
                back.3 = end;
                return;
            }
        }
        if self.self_votes.push_back((seq, ballot, first, end)).is_err() {
            // Not contiguous with the newest entry and no room: cannot
            // happen for a leader, whose proposals take consecutive slots
            // under one ballot (the queue is cleared when it steps down).
            self.counters.busy += 1;
        }
    }

    /// Phase 2a for a new value: stores it in the next slot under the
    /// leader's ballot and queues its record and the leader's own vote.
    pub(super) fn append_proposal(&mut self, value: V) -> Result<ProposalId, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader.filter(|l| *l != self.config.id),
            });
        }
        let slot = self.lead.next_slot;
        if slot < self.log.decided() && !self.config.injected(super::fault::Bug::LeaderLearns) {
            // A leader's watermark covers only what its ballot decided, all
            // below its next slot; a slot past it is never written again.
            self.counters.invalid += 1;
            return Err(ProposeError::Busy);
        }
        let floor = self.persist_floor();
        if slot >= self.log.limit_with_floor(floor)
            || slot >= self.log.decided() + Self::MAX_IN_FLIGHT
            || !self.has_room()
        {
            return Err(ProposeError::Busy);
        }
        let id = ProposalId(self.next_proposal);
        let ballot = self.lead.ballot;
        if !self.store(slot, Some(ballot), Some(value), Some(id), floor) {
            return Err(ProposeError::Busy);
        }
        let Ok(seq) = self.queue_persist(PersistItem::Entries {
            first: slot,
            end: slot + 1,
        }) else {
            return Err(ProposeError::Busy);
        };
        if slot == self.log.decided() {
            // Nothing was undecided: the retransmission clock starts with
            // this proposal, not at the last decision, which may be long
            // past (the append would be resent at the next tick).
            self.lead.last_progress = self.now;
        }
        self.next_proposal += 1;
        self.lead.next_slot = slot + 1;
        self.queue_self_votes(seq, ballot, slot, slot + 1);
        Ok(id)
    }

    /// Phase 2b at the leader.
    pub(super) fn on_accepted(&mut self, peer: usize, ballot: Ballot, first: Slot, count: u32, stamp: u64) {
        if self.role != Role::Leader || ballot != self.lead.ballot {
            return;
        }
        if let Some(s) = self.lead.stamps.get_mut(peer) {
            let stamp = Instant::from_micros(stamp);
            *s = Some(s.map_or(stamp, |old| old.max(stamp)));
        }
        let lo = first.max(self.log.decided());
        let hi = first.saturating_add(u64::from(count)).min(self.lead.next_slot);
        self.add_votes(peer, ballot, lo, hi);
    }

    fn add_votes(&mut self, member: usize, ballot: Ballot, lo: Slot, hi: Slot) {
        let bit = Self::bit(member);
        self.log.for_each_mut(lo, hi, |entry| {
            if entry.ballot == Some(ballot) {
                entry.votes |= bit;
            }
        });
        self.advance_commit();
    }

    fn advance_commit(&mut self) {
        let quorum = self.config.quorum();
        let mut decided = self.log.decided();
        while decided < self.lead.next_slot && self.log.get(decided).is_some_and(|e| count(e.votes) >= quorum) {
            decided += 1;
        }
        if decided > self.log.decided() {
            self.set_decided(decided);
            self.lead.last_progress = self.now;
        }
    }

    /// Everything up to `self.durable` is on disk: count this node's own
    /// promise and votes.
    pub(super) fn on_durable(&mut self) {
        if self.role == Role::Candidate && self.durable >= self.campaign.self_seq {
            self.campaign.promises |= Self::bit(self.me);
            self.maybe_win();
        }
        while let Some(&(seq, ballot, lo, hi)) = self.self_votes.front() {
            if seq > self.durable {
                break;
            }
            self.self_votes.pop_front();
            if self.role == Role::Leader && ballot == self.lead.ballot {
                self.add_votes(self.me, ballot, lo.max(self.log.decided()), hi);
            }
        }
    }

    /// A refusal.
    pub(super) fn on_nack(
        &mut self,
        from: NodeId,
        peer: usize,
        ballot: Ballot,
        promised: Option<Ballot>,
        decided: Slot,
    ) {
        if let Some(p) = promised {
            self.observe(p);
        }
        match self.role {
            Role::Candidate if ballot == self.campaign.ballot => {
                if decided > self.campaign.from {
                    self.abandon_campaign();
                    self.request_catch_up(from, self.log.decided());
                    return;
                }
                self.campaign.nacks |= Self::bit(peer);
                if count(self.campaign.nacks) > self.config.members.len() - self.config.quorum() {
                    self.abandon_campaign();
                }
            }
            Role::Leader if ballot == self.lead.ballot => {
                self.lead.nacks |= Self::bit(peer);
                if count(self.lead.nacks) >= self.config.quorum() {
                    self.step_down(None);
                } else if promised > Some(ballot) && self.hears_quorum(self.now) {
                    // A node whose own failed campaigns raised its promise
                    // (while cut off, say) would refuse this ballot for as
                    // long as this leader lives: run phase 1 above it.
                    self.step_down(None);
                    self.start_campaign();
                }
            }
            _ => {}
        }
    }

    /// Stops leading or campaigning; `leader` is the node now followed.
    pub(super) fn step_down(&mut self, leader: Option<NodeId>) {
        let was_leader = self.role == Role::Leader;
        self.role = Role::Follower;
        self.self_votes.clear();
        if was_leader {
            self.notice(Notice::Lost);
            // Nobody tracks this node's undecided proposals any more: report
            // each one now (a new leader may still decide it; clients retry).
            self.displace(self.log.decided(), Slot::MAX);
        }
        if self.leader != leader {
            self.leader = leader;
            self.notice(Notice::Changed(leader));
        }
        self.reset_election_timer();
    }

    /// Reports every local proposal still tracked in `from..to` displaced.
    pub(super) fn displace(&mut self, from: Slot, to: Slot) {
        let displaced = &mut self.displaced;
        self.log.for_each_mut(from, to, |e| {
            if let Some(origin) = e.origin.take() {
                // One per window slot at most: it fits.
                let _ = displaced.push_back(origin);
            }
        });
    }

    /// Timers of a leader: retransmission and the quorum check.
    pub(super) fn leader_tick(&mut self, now: Instant) {
        let config = &self.config;
        if self.log.decided() < self.lead.next_slot && now >= self.lead.last_progress + config.retransmit_timeout {
            // Resend everything undecided to everyone.
            self.lead.broadcast_from = self.lead.broadcast_from.min(self.log.decided());
            self.lead.last_progress = now;
        }
        if now >= self.lead.last_broadcast + config.heartbeat_interval {
            self.lead.heartbeat_due = true;
        }
        if now >= self.lead.since + config.election_timeout && !self.hears_quorum(now) {
            // Cut off from a quorum: stop claiming leadership so that the
            // nodes this one can reach may elect someone.
            self.step_down(None);
        }
    }

    fn hears_quorum(&self, now: Instant) -> bool {
        let window = self.config.election_timeout;
        let heard = self
            .lead
            .stamps
            .iter()
            .enumerate()
            .filter(|(i, s)| *i == self.me || s.is_some_and(|s| s + window > now))
            .count();
        heard >= self.config.quorum()
    }

    /// When the leader next has something to do.
    pub(super) fn leader_deadline(&self) -> Instant {
        let config = &self.config;
        // The quorum check runs with the heartbeat, which is more frequent
        // than the election timeout.
        let mut at = self.lead.last_broadcast + config.heartbeat_interval;
        if self.log.decided() < self.lead.next_slot {
            at = at.min(self.lead.last_progress + config.retransmit_timeout);
        }
        if self.lead.commit_sent < self.log.decided() {
            at = at.min(self.lead.last_progress + self.commit_delay());
        }
        if self.durable < self.lead.ready {
            // Nothing can leave before the ballot's promise is durable, and
            // that confirmation is an input of its own: a deadline that
            // passed would only make the driver spin. Tick at the
            // heartbeat pace for the quorum check.
            at = at.max(self.now + config.heartbeat_interval);
        }
        at
    }

    /// How long a new commit watermark may wait for an append to carry it
    /// before a heartbeat is sent for it alone.
    pub(super) fn commit_delay(&self) -> Duration {
        Duration::from_micros(self.config.heartbeat_interval.as_micros() / 8)
    }

    /// Sets the next election a randomized timeout from now.
    pub(super) fn reset_election_timer(&mut self) {
        let base = self.config.election_timeout;
        let jitter = Duration::from_micros(self.rng.below(base.as_micros()));
        self.election_at = self.now + base + jitter;
    }

    /// Whether a quorum acknowledged this leader recently enough that no
    /// other node can lead before the lease runs out.
    pub(super) fn lease_valid(&self, now: Instant) -> bool {
        let Some(lease) = self.config.lease else {
            return false;
        };
        // The quorum-th freshest stamp, this node's own counting as now.
        let mut fresh: heapless::Vec<Instant, N> = heapless::Vec::new();
        for (i, stamp) in self.lead.stamps.iter().enumerate() {
            let stamp = if i == self.me { Some(now) } else { *stamp };
            if let Some(s) = stamp {
                let _ = fresh.push(s);
            }
        }
        let quorum = self.config.quorum();
        if fresh.len() < quorum {
            return false;
        }
        fresh.sort_unstable_by(|a, b| b.cmp(a));
        fresh
            .get(quorum - 1)
            .is_some_and(|start| *start + lease.safe_duration() > now)
    }
}
