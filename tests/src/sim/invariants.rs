//! The safety invariants, checked as things happen and after every step.
//!
//! - **Agreement**: one value per slot, across every node and every
//!   lifetime: decided events, leaders' commit claims, catch-up answers
//!   and every node's in-memory decided log all feed one global map.
//! - **Validity**: a decided value was proposed by a client; a value is
//!   decided in no more slots than `propose` accepted it.
//! - **Delivery**: each node lifetime delivers slots in order, each once,
//!   starting where its application's state ends.
//! - **Promises**: an acceptor never goes back on a promise or a vote it
//!   revealed, across restarts; one value per (ballot, slot).
//! - **Persist before reveal**: every prepare, promise, vote and refusal a
//!   node sends is backed by its durable (synced) records at that instant.
//! - **Revealed votes stay reported**: a vote an acceptor revealed (an
//!   `Accepted` frame) is reported by every later promise it sends for a
//!   prepare whose range holds the slot, unless the promise's decided
//!   watermark covers the slot — across restarts too.
//! - **Commit claims**: an `Append` under ballot `b` with watermark `c`
//!   claims every slot below `c` decided with the value sent under `b`
//!   (that is what its followers act on): every such value must be the
//!   decided one.
//! - **Ballots are led once**: no leadership takes a ballot under which
//!   appends were already sent (a node that forgot it led).
//! - **Restarts**: a node can always restart from its own durable records:
//!   every durable batch decodes, and `recover` accepts them (tried at
//!   every restart, now and then on running nodes, and at the end).
//! - **A lone leader decides** ([`LONE_LEADER`], checked by the
//!   simulation): in a one-node cluster, the leader decides each slot
//!   soon after its vote there is durable (a liveness rule, at every
//!   step, faults or not: alone, its own votes are the only ones).
//!
//! A node whose storage was wiped has lost its promise: the state-based
//! promise check skips it, and the frame-based checks (promises only rise,
//! votes keep promises, revealed votes stay reported) hold it to what it
//! revealed before.

use super::durable::DurableView;
use super::fasthash::{FastMap as HashMap, FastSet as HashSet};
use super::node::SimReplica;
use super::Value;
use paxos_core::replica::wire::{decode_header, Items, PromisedEntry};
use paxos_core::replica::{Header, ProposalId, Slot};
use paxos_core::{Ballot, NodeId};
use std::collections::BTreeMap;

/// The rule a restart refused by `recover` (or a durable batch that does
/// not decode) breaks.
pub const RESTART: &str = "a node can always restart from its own durable records";
/// The rule a promise that omits a vote its sender revealed breaks.
pub const VOTE_REPORTED: &str = "a revealed vote is reported by every later promise";
/// The rule an append whose watermark covers a value its ballot did not
/// get chosen breaks.
pub const COMMIT_CLAIM: &str = "a leader's commit covers only values chosen under its ballot";
/// The rule a leadership under a ballot that already sent appends breaks.
pub const BALLOT_REUSE: &str = "no leadership reuses a revealed ballot";
/// The rule a one-node cluster whose leader does not decide a slot soon
/// after its vote there is durable breaks (a liveness rule: alone, a
/// leader's own votes are the only ones).
pub const LONE_LEADER: &str = "a lone leader decides each slot soon after its vote there is durable";

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule, short and stable.
    pub rule: &'static str,
    /// What exactly happened.
    pub detail: String,
    /// The step of the run at which it was found (0 if not known).
    pub step: u64,
}

impl Violation {
    /// A violation of `rule`.
    pub fn new(rule: &'static str, detail: impl Into<String>) -> Self {
        Violation {
            rule,
            detail: detail.into(),
            step: 0,
        }
    }
}

impl core::fmt::Display for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

type Check = Result<(), Violation>;

const _: () = assert!(RULES.len() <= MAX_RULES);

/// Room for per-rule counters.
pub const MAX_RULES: usize = 40;

/// A counter per rule, by position in [`RULES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleCounts(pub [u64; MAX_RULES]);

impl Default for RuleCounts {
    fn default() -> Self {
        RuleCounts([0; MAX_RULES])
    }
}

impl core::ops::Deref for RuleCounts {
    type Target = [u64; MAX_RULES];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl core::ops::DerefMut for RuleCounts {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Every rule the checker enforces (the `rule` of its violations).
pub const RULES: &[&str] = &[
    "agreement",
    "validity",
    "no duplication",
    "delivery in order, once",
    "delivers only decided slots",
    "redelivery starts at the applied slot",
    "one outcome per proposal",
    "outcome names its value",
    "every proposal gets an outcome",
    "every proposal gets an outcome (dropped by a snapshot)",
    "every proposal gets an outcome (after its leader stepped down)",
    "every running node follows the leader after healing",
    "leaders lead with their own ballot",
    "one leader per ballot",
    "leadership events match the role",
    "frames decode",
    "own ballots",
    "one value per ballot and slot",
    "one value per ballot and slot (round 0)",
    "promises only rise",
    "votes keep promises",
    "promise reports lower votes",
    "an acceptor never goes back on a promise",
    "persist before reveal (prepare)",
    "persist before reveal (promise)",
    "persist before reveal (promise reports a vote)",
    "persist before reveal (promise reports a vote under its own ballot)",
    "persist before reveal (vote)",
    "persist before reveal (refusal)",
    RESTART,
    VOTE_REPORTED,
    COMMIT_CLAIM,
    BALLOT_REUSE,
    LONE_LEADER,
];

/// The global record the invariants are checked against.
#[derive(Clone, Debug, Default)]
pub struct Checker {
    decided: HashMap<Slot, Option<Value>>,
    /// The highest slot known decided anywhere.
    pub max_decided: Option<Slot>,
    proposed: HashSet<Value>,
    accepted_proposals: HashMap<Value, u32>,
    decided_slots: HashMap<Value, Vec<Slot>>,
    ballot_values: HashMap<(Ballot, Slot), Option<Value>>,
    /// Per node, the highest ballot of a promise it sent.
    promise_revealed: Vec<Option<Ballot>>,
    /// Per node, the highest ballot of a vote it sent.
    vote_revealed: Vec<Option<Ballot>>,
    /// Per node, the ballot it leads with according to its events.
    leading: Vec<Option<Ballot>>,
    /// Ballots that became leaders, and how often.
    acquired: HashMap<Ballot, u32>,
    /// Leaderships acquired with a ballot some earlier leadership used.
    pub reused_ballots: u64,
    /// Leaderships acquired while another node led.
    pub concurrent_leaders: u64,
    /// Per ballot, the value seen sent under it per slot (the commit
    /// claims are checked against these).
    ballot_slots: HashMap<Ballot, BTreeMap<Slot, Option<Value>>>,
    /// Per ballot, the highest commit watermark an append under it claimed.
    claimed: HashMap<Ballot, Slot>,
    /// Per node, per slot, the highest ballot of a vote it revealed.
    votes_revealed: Vec<BTreeMap<Slot, Ballot>>,
    /// Per candidate ballot, the slots its prepare asked about.
    prepared: HashMap<Ballot, (Slot, Slot)>,
    /// Ballots under which appends were sent, with the lifetime of their
    /// leader that sent the first.
    appended: HashMap<Ballot, u32>,
    /// Per node, its lifetimes so far (restarts).
    lifetimes: Vec<u32>,
    /// Nodes whose storage was wiped.
    wiped: Vec<bool>,
    waive: Vec<&'static str>,
    /// Violations of waived rules, by position in [`RULES`].
    pub waived: RuleCounts,
}

impl Checker {
    /// A checker for `n` nodes that counts, rather than reports,
    /// violations of the rules in `waive`.
    pub fn new(n: usize, waive: Vec<&'static str>) -> Self {
        Checker {
            waive,
            promise_revealed: vec![None; n],
            vote_revealed: vec![None; n],
            leading: vec![None; n],
            votes_revealed: vec![BTreeMap::new(); n],
            wiped: vec![false; n],
            lifetimes: vec![0; n],
            ..Checker::default()
        }
    }

    /// Reports a violation of `rule` found outside the checker: an error
    /// unless the rule is waived.
    pub fn report(&mut self, rule: &'static str, detail: String) -> Check {
        self.fail(rule, detail)
    }

    fn fail(&mut self, rule: &'static str, detail: String) -> Check {
        if self.waive.contains(&rule) {
            if let Some(i) = RULES.iter().position(|r| *r == rule) {
                self.waived[i] += 1;
            }
            return Ok(());
        }
        Err(Violation::new(rule, detail))
    }

    /// How many slots are known decided.
    pub fn decisions(&self) -> usize {
        self.decided.len()
    }

    /// Every slot known decided, in order.
    pub fn decided_log(&self) -> Vec<(Slot, Option<Value>)> {
        let mut log: Vec<_> = self.decided.iter().map(|(s, v)| (*s, v.clone())).collect();
        log.sort_by_key(|(s, _)| *s);
        log
    }

    /// The value decided in `slot`, if known.
    pub fn decided(&self, slot: Slot) -> Option<&Option<Value>> {
        self.decided.get(&slot)
    }

    /// A client passed `value` to `propose`; `accepted` if it returned Ok.
    pub fn on_propose(&mut self, value: &Value, accepted: bool) {
        self.proposed.insert(value.clone());
        if accepted {
            *self.accepted_proposals.entry(value.clone()).or_default() += 1;
        }
    }

    /// Someone claims `slot` decided with `value`.
    /// `source` says who claims it, for the report.
    pub fn record_decision(&mut self, slot: Slot, value: &Option<Value>, source: impl FnOnce() -> String) -> Check {
        self.record_decision_as("agreement", slot, value, source)
    }

    /// As [`Checker::record_decision`], reporting a conflict as `rule`.
    fn record_decision_as(
        &mut self,
        rule: &'static str,
        slot: Slot,
        value: &Option<Value>,
        source: impl FnOnce() -> String,
    ) -> Check {
        if let Some(known) = self.decided.get(&slot) {
            if known == value {
                return Ok(());
            }
            let detail = format!("slot {slot} decided as {known:?} and as {value:?} ({})", source());
            return self.fail(rule, detail);
        }
        let source = source();
        if let Some(v) = value {
            if !self.proposed.contains(v) {
                return self.fail(
                    "validity",
                    format!("slot {slot} decided {v:?}, which no client proposed ({source})"),
                );
            }
            let slots = self.decided_slots.entry(v.clone()).or_default();
            slots.push(slot);
            let slots = slots.clone();
            let accepted = self.accepted_proposals.get(v).copied().unwrap_or(0);
            if slots.len() > accepted as usize {
                return self.fail(
                    "no duplication",
                    format!("{v:?} decided in slots {slots:?} but propose accepted it {accepted} times ({source})"),
                );
            }
        }
        self.decided.insert(slot, value.clone());
        self.max_decided = self.max_decided.max(Some(slot));
        Ok(())
    }

    /// Node `node` delivered `slot`; its application expected `expected`.
    pub fn on_delivered(&mut self, node: usize, expected: Slot, slot: Slot, value: &Option<Value>) -> Check {
        if slot != expected {
            return self.fail(
                "delivery in order, once",
                format!("n{node} delivered slot {slot}, its application expected {expected}"),
            );
        }
        self.record_decision(slot, value, || format!("Decided at n{node}"))
    }

    /// A `Decided` event named `proposal`, whose value was `proposed`.
    pub fn on_outcome(
        &mut self,
        node: usize,
        proposal: ProposalId,
        proposed: Option<&Value>,
        decided: &Option<Value>,
    ) -> Check {
        match proposed {
            None => self.fail(
                "one outcome per proposal",
                format!("n{node} reported {proposal:?}, which has no pending proposal"),
            ),
            Some(p) if decided.as_ref() != Some(p) => self.fail(
                "outcome names its value",
                format!("n{node} reported {proposal:?} ({p:?}) decided as {decided:?}"),
            ),
            Some(_) => Ok(()),
        }
    }

    /// Node `node` (`id`) reports leadership with `ballot`.
    pub fn on_acquired(&mut self, node: usize, id: NodeId, ballot: Ballot) -> Check {
        if ballot.node != id {
            return self.fail(
                "leaders lead with their own ballot",
                format!("{id:?} leads with {ballot:?}"),
            );
        }
        if let Some(other) = (0..self.leading.len()).find(|&j| j != node && self.leading[j] == Some(ballot)) {
            return self.fail(
                "one leader per ballot",
                format!("nodes {node} and {other} both lead with {ballot:?}"),
            );
        }
        // Within a lifetime a node's ballots only rise (and a leadership's
        // first appends are checked before its event): only a restarted
        // node can take a ballot again.
        if self.appended.get(&ballot).is_some_and(|l| *l < self.lifetimes[node]) {
            return self.fail(
                BALLOT_REUSE,
                format!("n{node} leads with {ballot:?} again, under which it sent appends before it restarted"),
            );
        }
        if self.leading.iter().enumerate().any(|(j, l)| j != node && l.is_some()) {
            self.concurrent_leaders += 1;
        }
        let times = self.acquired.entry(ballot).or_default();
        *times += 1;
        if *times > 1 {
            self.reused_ballots += 1;
        }
        self.leading[node] = Some(ballot);
        Ok(())
    }

    /// Node `node` stopped leading (or crashed).
    pub fn on_not_leading(&mut self, node: usize) {
        self.leading[node] = None;
    }

    /// Node `node` lost its storage: it no longer knows its promise.
    pub fn on_wiped(&mut self, node: usize) {
        self.wiped[node] = true;
    }

    /// Whether node `node`'s storage was ever wiped.
    pub fn wiped(&self, node: usize) -> bool {
        self.wiped[node]
    }

    /// Checks a frame node `node` (`id`) sends, against its durable state.
    pub fn on_frame(&mut self, node: usize, id: NodeId, frame: &[u8], view: &DurableView) -> Check {
        let (header, rest) = match decode_header::<Header>(frame) {
            Ok(h) => h,
            Err(e) => return self.fail("frames decode", format!("{id:?} sent a bad frame: {e}")),
        };
        match header {
            Header::Prepare { ballot, from, until } => {
                if ballot.node != id {
                    return self.fail("own ballots", format!("{id:?} prepares {ballot:?}"));
                }
                self.prepared.insert(ballot, (from, until));
                if view.promised < Some(ballot) {
                    return self.fail(
                        "persist before reveal (prepare)",
                        format!("{id:?} sent Prepare {ballot:?}; durable promise {:?}", view.promised),
                    );
                }
            }
            Header::Promise {
                ballot,
                decided,
                first,
                complete,
                ..
            } => {
                self.check_promise(node, id, ballot, view)?;
                let items = Items::<PromisedEntry<Value>>::new(rest)
                    .map_err(|e| Violation::new("frames decode", format!("{id:?} promise: {e}")))?;
                let mut reported: Vec<(Slot, Ballot)> = Vec::new();
                for item in items {
                    let entry =
                        item.map_err(|e| Violation::new("frames decode", format!("{id:?} promise item: {e}")))?;
                    if entry.ballot > ballot {
                        return self.fail(
                            "promise reports lower votes",
                            format!("{id:?} promised {ballot:?} reporting {entry:?}"),
                        );
                    }
                    match view.votes.get(&(entry.slot, entry.ballot)) {
                        Some(v) if *v == entry.value => {}
                        durable => {
                            // A vote under the promised ballot itself can
                            // only have been cast after the promise was
                            // queued; it is told apart because it is a
                            // narrower bug than an older vote not durable.
                            let rule = if entry.ballot == ballot {
                                "persist before reveal (promise reports a vote under its own ballot)"
                            } else {
                                "persist before reveal (promise reports a vote)"
                            };
                            let detail =
                                format!("{id:?} promised {ballot:?} reporting vote {entry:?}; durable: {durable:?}");
                            self.fail(rule, detail)?;
                        }
                    }
                    self.check_ballot_value(entry.ballot, entry.slot, &entry.value, id)?;
                    reported.push((entry.slot, entry.ballot));
                }
                // A part answers for `first..` the prepare's end if it is
                // the last, else through its last entry.
                let end = if complete {
                    None
                } else {
                    Some(reported.iter().map(|(s, _)| s + 1).max().unwrap_or(first))
                };
                self.check_votes_reported(node, id, ballot, decided, (first, end), &reported)?;
            }
            Header::Accepted {
                ballot, first, count, ..
            } => {
                if Some(ballot) < self.promise_revealed[node] {
                    return self.fail(
                        "votes keep promises",
                        format!(
                            "{id:?} voted {ballot:?} after promising {:?}",
                            self.promise_revealed[node]
                        ),
                    );
                }
                if view.promised < Some(ballot) {
                    return self.fail(
                        "persist before reveal (vote)",
                        format!("{id:?} sent Accepted {ballot:?}; durable promise {:?}", view.promised),
                    );
                }
                for slot in first..first + u64::from(count) {
                    match view.backs_vote(slot, ballot) {
                        None => {
                            return self.fail(
                                "persist before reveal (vote)",
                                format!(
                                    "{id:?} sent Accepted {ballot:?} for {first}+{count}; slot {slot} is not durably accepted"
                                ),
                            )
                        }
                        Some(Some(value)) => {
                            if view.votes.contains_key(&(slot, ballot)) {
                                self.check_ballot_value(ballot, slot, value, id)?;
                            }
                        }
                        Some(None) => {}
                    }
                }
                self.vote_revealed[node] = self.vote_revealed[node].max(Some(ballot));
                let revealed = &mut self.votes_revealed[node];
                for slot in first..first + u64::from(count) {
                    let known = revealed.entry(slot).or_insert(ballot);
                    *known = (*known).max(ballot);
                }
            }
            Header::Nack { promised, .. } => {
                if promised.is_some() && view.promised < promised {
                    self.fail(
                        "persist before reveal (refusal)",
                        format!(
                            "{id:?} sent a refusal revealing promise {promised:?}; durable promise {:?}",
                            view.promised
                        ),
                    )?;
                }
            }
            Header::Append {
                ballot, commit, first, ..
            } => {
                if ballot.node != id {
                    return self.fail("own ballots", format!("{id:?} appends under {ballot:?}"));
                }
                self.appended.entry(ballot).or_insert(self.lifetimes[node]);
                let items = Items::<Option<Value>>::new(rest)
                    .map_err(|e| Violation::new("frames decode", format!("{id:?} append: {e}")))?
                    .map(|item| item.map_err(|e| Violation::new("frames decode", format!("{id:?} append item: {e}"))))
                    .collect::<Result<Vec<Option<Value>>, Violation>>()?;
                let end = first + items.len() as u64;
                self.check_commit_claim(ballot, commit, id, first..end)?;
                for (slot, value) in (first..).zip(items) {
                    self.check_ballot_value(ballot, slot, &value, id)?;
                    if slot < commit {
                        self.record_decision(slot, &value, || {
                            format!("append from {id:?} under {ballot:?}, commit {commit}")
                        })?;
                    }
                }
            }
            Header::Learn { first } => {
                let items = Items::<Option<Value>>::new(rest)
                    .map_err(|e| Violation::new("frames decode", format!("{id:?} learn: {e}")))?;
                for (slot, item) in (first..).zip(items) {
                    let value = item.map_err(|e| Violation::new("frames decode", format!("{id:?} learn item: {e}")))?;
                    self.record_decision(slot, &value, || format!("catch-up answer from {id:?}"))?;
                }
            }
            Header::CatchUp { .. } => {}
        }
        Ok(())
    }

    /// Node `node`'s durable records changed: a restart from them must
    /// still hold every vote it revealed above the watermark they give (a
    /// vote under the same or a higher ballot), or its next promise would
    /// not report it. A wiped node lost them all, and is held to its
    /// frames instead.
    pub fn after_sync(&mut self, node: usize, view: &DurableView) -> Check {
        if self.wiped[node] {
            return Ok(());
        }
        let lost = self.votes_revealed[node]
            .range(view.decided..)
            .find(|(slot, vote)| !view.last.get(slot).is_some_and(|b| b.is_some_and(|b| b >= **vote)))
            .map(|(s, b)| (*s, *b));
        if let Some((slot, vote)) = lost {
            let detail = format!(
                "n{node} revealed a vote under {vote:?} in slot {slot}; its durable records, replayed, \
                 hold {:?} there above their watermark {}: a promise after a restart would not report it",
                view.last.get(&slot),
                view.decided
            );
            return self.fail(VOTE_REPORTED, detail);
        }
        Ok(())
    }

    fn check_promise(&mut self, node: usize, id: NodeId, ballot: Ballot, view: &DurableView) -> Check {
        if Some(ballot) < self.promise_revealed[node] {
            return self.fail(
                "promises only rise",
                format!(
                    "{id:?} promised {ballot:?} after promising {:?}",
                    self.promise_revealed[node]
                ),
            );
        }
        if Some(ballot) < self.vote_revealed[node] {
            return self.fail(
                "promises only rise",
                format!("{id:?} promised {ballot:?} after voting {:?}", self.vote_revealed[node]),
            );
        }
        if view.promised < Some(ballot) {
            return self.fail(
                "persist before reveal (promise)",
                format!("{id:?} sent Promise {ballot:?}; durable promise {:?}", view.promised),
            );
        }
        self.promise_revealed[node] = Some(ballot);
        Ok(())
    }

    fn check_ballot_value(&mut self, ballot: Ballot, slot: Slot, value: &Option<Value>, id: NodeId) -> Check {
        // Round 0 is the configured initial leader's, skipping phase 1: a
        // conflict there is told apart as its own bug.
        let rule = if ballot.round == 0 {
            "one value per ballot and slot (round 0)"
        } else {
            "one value per ballot and slot"
        };
        match self.ballot_values.get(&(ballot, slot)).cloned() {
            Some(known) if known != *value => self.fail(
                rule,
                format!("slot {slot} under {ballot:?}: {known:?} and {value:?} (seen at {id:?})"),
            ),
            Some(_) => Ok(()),
            None => {
                self.ballot_values.insert((ballot, slot), value.clone());
                self.ballot_slots.entry(ballot).or_default().insert(slot, value.clone());
                let claimed = self.claimed.get(&ballot).copied().unwrap_or(0);
                if slot < claimed {
                    self.claim(ballot, slot, value, claimed, id)?;
                }
                Ok(())
            }
        }
    }

    /// An append under `ballot` claims every slot below `commit` decided
    /// with the value sent under `ballot`: each one seen so far must be
    /// the decided value (the ones seen later are checked as they come),
    /// and above the slot its phase 1 started from (0 for round 0), every
    /// slot must have had a value sent under `ballot` — before, or in this
    /// append (`sending`): a leader decides only what its ballot proposed.
    fn check_commit_claim(
        &mut self,
        ballot: Ballot,
        commit: Slot,
        id: NodeId,
        sending: core::ops::Range<Slot>,
    ) -> Check {
        let claimed = self.claimed.get(&ballot).copied().unwrap_or(0);
        if commit <= claimed {
            return Ok(());
        }
        self.claimed.insert(ballot, commit);
        let from = if ballot.round == 0 {
            Some(0)
        } else {
            self.prepared.get(&ballot).map(|p| p.0)
        };
        let empty = BTreeMap::new();
        let values = self.ballot_slots.get(&ballot).unwrap_or(&empty);
        if let Some(from) = from {
            let lo = from.max(claimed);
            if let Some(slot) = (lo..commit).find(|s| !values.contains_key(s) && !sending.contains(s)) {
                let detail = format!(
                    "{id:?}'s append under {ballot:?} claims commit {commit}, over slot {slot}, \
                     for which nothing was sent under {ballot:?} (its phase 1 started at {from})"
                );
                return self.fail(COMMIT_CLAIM, detail);
            }
        }
        let covered: Vec<(Slot, Option<Value>)> = values.range(claimed..commit).map(|(s, v)| (*s, v.clone())).collect();
        for (slot, value) in covered {
            self.claim(ballot, slot, &value, commit, id)?;
        }
        Ok(())
    }

    fn claim(&mut self, ballot: Ballot, slot: Slot, value: &Option<Value>, commit: Slot, id: NodeId) -> Check {
        self.record_decision_as(COMMIT_CLAIM, slot, value, || {
            format!("{id:?}'s append under {ballot:?} claims commit {commit}, over {value:?} sent under {ballot:?}")
        })
    }

    /// A promise of `ballot` (or a part of one, answering for `first..end`,
    /// `None` for the prepare's end) from node `node` reported `reported`
    /// (slot, ballot) with watermark `decided`: every vote the node
    /// revealed below `ballot` in the range the part answers for, above
    /// the watermark, must be among them (or a later vote of the slot). A promise sent after its
    /// candidate already won (appended) counts for nothing and may have
    /// been encoded after the node voted for the winner: skipped.
    fn check_votes_reported(
        &mut self,
        node: usize,
        id: NodeId,
        ballot: Ballot,
        decided: Slot,
        (first, end): (Slot, Option<Slot>),
        reported: &[(Slot, Ballot)],
    ) -> Check {
        let Some(&(prepared_from, prepared_until)) = self.prepared.get(&ballot) else {
            return Ok(());
        };
        let from = prepared_from.max(first);
        let until = end.map_or(prepared_until, |end| end.min(prepared_until));
        if self.appended.contains_key(&ballot) {
            return Ok(());
        }
        let lo = from.max(decided);
        if lo >= until {
            return Ok(());
        }
        let missing = self.votes_revealed[node]
            .range(lo..until)
            .find(|(slot, vote)| **vote < ballot && !reported.iter().any(|(s, b)| s == *slot && b >= *vote))
            .map(|(s, b)| (*s, *b));
        if let Some((slot, vote)) = missing {
            let detail = format!(
                "{id:?} revealed a vote under {vote:?} in slot {slot}, then promised {ballot:?} \
                 (prepare {from}..{until}, decided {decided}) reporting only {reported:?}{}",
                if self.wiped[node] {
                    " (its storage was wiped)"
                } else {
                    ""
                }
            );
            return self.fail(VOTE_REPORTED, detail);
        }
        Ok(())
    }

    /// Checks a node restarted from its records with `applied`, whose
    /// application, after what replay handed over, expects `next`.
    pub fn after_recover<const W: usize>(
        &mut self,
        node: usize,
        replica: &SimReplica<W>,
        applied: Slot,
        next: Slot,
    ) -> Check {
        self.leading[node] = None;
        self.lifetimes[node] += 1;
        // Its promise is checked with every running node's at the end of
        // the step, after the refinement check has seen the restart.
        if replica.delivered() != next {
            return self.fail(
                "redelivery starts at the applied slot",
                format!(
                    "n{node} recovered with applied {applied}, replay delivered up to {next}, \
                     but poll_event delivers from {} (decided {}, log start {})",
                    replica.delivered(),
                    replica.decided(),
                    replica.log_start()
                ),
            );
        }
        Ok(())
    }

    fn check_promises_kept<const W: usize>(&mut self, node: usize, replica: &SimReplica<W>) -> Check {
        if self.wiped[node] {
            // Its promise went with its storage; its frames are checked.
            return Ok(());
        }
        let revealed = self.promise_revealed[node].max(self.vote_revealed[node]);
        if replica.promised() < revealed {
            return self.fail(
                "an acceptor never goes back on a promise",
                format!("n{node} promises {:?} but revealed {revealed:?}", replica.promised()),
            );
        }
        Ok(())
    }

    /// The checks run on every running node after every step.
    pub fn after_step<const W: usize>(&mut self, node: usize, replica: &SimReplica<W>) -> Check {
        self.check_promises_kept(node, replica)?;
        if replica.delivered() > replica.decided() {
            return self.fail(
                "delivers only decided slots",
                format!(
                    "n{node} delivered up to {} but decided {}",
                    replica.delivered(),
                    replica.decided()
                ),
            );
        }
        if replica.is_leader() != self.leading[node].is_some() {
            return self.fail(
                "leadership events match the role",
                format!(
                    "n{node}: is_leader {} but events say {:?}",
                    replica.is_leader(),
                    self.leading[node]
                ),
            );
        }
        let end = replica.decided().min(replica.log_start() + W as u64);
        for slot in replica.log_start()..end {
            let Some(value) = replica.decided_value(slot) else {
                continue;
            };
            if self.decided.get(&slot).is_some_and(|known| known.as_ref() == value) {
                continue;
            }
            let value = value.cloned();
            self.record_decision(slot, &value, || format!("decided log of n{node}"))?;
        }
        Ok(())
    }
}
