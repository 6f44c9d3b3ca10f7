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

use super::durable::DurableView;
use super::fasthash::{FastMap as HashMap, FastSet as HashSet};
use super::node::SimReplica;
use super::Value;
use paxos_core::replica::wire::{decode_header, Items, PromisedEntry};
use paxos_core::replica::{Header, ProposalId, Slot};
use paxos_core::{Ballot, NodeId};

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule, short and stable.
    pub rule: &'static str,
    /// What exactly happened.
    pub detail: String,
}

impl Violation {
    /// A violation of `rule`.
    pub fn new(rule: &'static str, detail: impl Into<String>) -> Self {
        Violation {
            rule,
            detail: detail.into(),
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
pub const MAX_RULES: usize = 32;

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
    waive: Vec<&'static str>,
    /// Violations of waived rules, by position in [`RULES`].
    pub waived: [u64; MAX_RULES],
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
        if let Some(known) = self.decided.get(&slot) {
            if known == value {
                return Ok(());
            }
            let detail = format!("slot {slot} decided as {known:?} and as {value:?} ({})", source());
            return self.fail("agreement", detail);
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

    /// Checks a frame node `node` (`id`) sends, against its durable state.
    pub fn on_frame(&mut self, node: usize, id: NodeId, frame: &[u8], view: &DurableView) -> Check {
        let (header, rest) = match decode_header::<Header>(frame) {
            Ok(h) => h,
            Err(e) => return self.fail("frames decode", format!("{id:?} sent a bad frame: {e}")),
        };
        match header {
            Header::Prepare { ballot, .. } => {
                if ballot.node != id {
                    return self.fail("own ballots", format!("{id:?} prepares {ballot:?}"));
                }
                if view.promised < Some(ballot) {
                    return self.fail(
                        "persist before reveal (prepare)",
                        format!("{id:?} sent Prepare {ballot:?}; durable promise {:?}", view.promised),
                    );
                }
            }
            Header::Promise { ballot, .. } => {
                self.check_promise(node, id, ballot, view)?;
                let items = Items::<PromisedEntry<Value>>::new(rest)
                    .map_err(|e| Violation::new("frames decode", format!("{id:?} promise: {e}")))?;
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
                }
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
                let items = Items::<Option<Value>>::new(rest)
                    .map_err(|e| Violation::new("frames decode", format!("{id:?} append: {e}")))?;
                for (slot, item) in (first..).zip(items) {
                    let value =
                        item.map_err(|e| Violation::new("frames decode", format!("{id:?} append item: {e}")))?;
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
                Ok(())
            }
        }
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
        self.check_promises_kept(node, replica)?;
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
