//! Model 1: single-decree Paxos. Three [`paxos_core::practical::Node`]s,
//! driven through [`NodeHost`](super::single::NodeHost) as stateright
//! actors; nodes 0 and 1 propose different values and prepare at once, and
//! may prepare again (a new, higher ballot) on a timer, up to a bound.
//!
//! The fault model: an unordered, duplicating and (optionally) lossy
//! network of encoded frames; a persist durable only after a separate
//! `Flush` step; a crash at any point and a restart from what was written
//! (`Node::recover`). The ghost state the properties read (every value a
//! node ever resolved, across restarts) lives in the actor's durable
//! storage next to the real record, where a crash cannot erase it; the
//! node under test never reads it back.

use super::fingerprint::Sealed;
use super::forgetful::{network, node_id, Forgetful};
use super::single::{self as sm, NodeHost};
use paxos_core::practical::DurableState;
use paxos_core::{decode, Ballot, Destination, Message};
use stateright::actor::{model_timeout, Actor, ActorModel, ActorModelState, Envelope, Id, LossyNetwork, Out};
use stateright::Expectation;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A single-decree message as it crosses the network: the encoded frame.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame(Vec<u8>);

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match decode::<Message<sm::Value>>(&self.0) {
            Ok(m) => write!(f, "{m:?}"),
            Err(e) => write!(f, "undecodable {:02x?} ({e:?})", self.0),
        }
    }
}

/// The single durable record of a node, as written.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Record(Vec<u8>);

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match sm::decode_state(&self.0) {
            Some(DurableState {
                promised,
                accepted,
                round,
            }) => write!(
                f,
                "Record {{ promised: {promised:?}, accepted: {accepted:?}, round: {round} }}"
            ),
            None => write!(f, "unreadable record {:02x?}", self.0),
        }
    }
}

/// What survives a crash: the record (real) and ghost variables the
/// properties and bounds read (never the node).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SdStore {
    record: Option<Record>,
    /// Ghost: `prepare(true)` calls so far, across restarts (the bound).
    prepares: u8,
    /// Ghost: how often this node restarted.
    restarts: u8,
    /// Ghost: every value this node's learner ever resolved.
    resolved: BTreeSet<sm::Value>,
    /// Ghost: whether it resolved one after a restart.
    resolved_after_restart: bool,
}

/// A node's state: its driver and a copy of its durable storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SdState {
    /// The node, through its driver.
    host: Sealed<NodeHost>,
    /// A copy of what is in durable storage.
    store: SdStore,
}

/// A node's timers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SdTimer {
    /// Write and confirm the oldest unwritten persist.
    Flush,
    /// Start a new round with a higher ballot.
    Prepare,
}

/// A node as configured.
#[derive(Clone)]
pub struct SdActor {
    /// The nodes whose learners hear votes (bit per node).
    learners: u8,
    /// What it proposes, if anything.
    proposal: Option<sm::Value>,
    /// `prepare(true)` calls, across restarts.
    max_prepares: u8,
    /// How its driver treats persists.
    durability: sm::Durability,
}

/// A single-decree model: who proposes, who may crash, the network.
#[derive(Clone)]
pub struct SdConfig {
    /// What nodes 0, 1, ... propose.
    pub proposals: Vec<sm::Value>,
    /// `prepare(true)` calls per proposing node, across restarts.
    pub max_prepares: u8,
    /// The node that may crash (and restart), if any.
    pub crash: Option<usize>,
    /// How often it may crash and restart.
    pub restarts: usize,
    /// Whether the network may drop a message for good.
    pub lossy: bool,
    /// Whether the network may deliver a message more than once.
    pub duplicating: bool,
    /// How the crashing node's driver treats persists (the others write
    /// theirs at once: see `Durability::Immediate`).
    pub durability: sm::Durability,
    /// The nodes whose learners hear votes. Votes sent to the others are
    /// lost (as the network may lose any message): fewer learners, fewer
    /// states. "one value chosen" judges every vote sent, whoever hears it;
    /// with no learner, votes go to an address with no actor alone.
    pub learners: Vec<usize>,
}

/// An address with no actor: with no learner, votes are sent there so that
/// the history still records them. Nothing delivers them; they stay in the
/// network, where they add no state (the history holds the same votes).
const OBSERVER: usize = sm::NODES;

impl SdActor {
    /// Acts on a step's effects: sends, ghost records, timers.
    fn emit(&self, state: &mut SdState, had_pending: bool, effects: Vec<sm::Effect>, o: &mut Out<Self>) {
        let mut save = false;
        for effect in effects {
            match effect {
                sm::Effect::Send { to, frame } => match to {
                    Destination::All => {
                        let vote = matches!(decode::<Message<sm::Value>>(&frame), Ok(Message::Accepted { .. }));
                        for i in 0..sm::NODES {
                            if !vote || self.learners & (1 << i) != 0 {
                                o.send(Id::from(i), Frame(frame.clone()));
                            }
                        }
                        if vote && self.learners == 0 {
                            // To no actor (it is never delivered), so that the
                            // history records the vote (see `SdConfig::learners`).
                            o.send(Id::from(OBSERVER), Frame(frame));
                        }
                    }
                    Destination::Node(n) => o.send(Id::from(usize::from(n.0)), Frame(frame)),
                },
                sm::Effect::Written(record) => {
                    state.store.record = Some(Record(record));
                    save = true;
                }
                sm::Effect::Resolved(proposal) => {
                    save |= state.store.resolved.insert(proposal.value);
                    if state.store.restarts > 0 && !state.store.resolved_after_restart {
                        state.store.resolved_after_restart = true;
                        save = true;
                    }
                }
            }
        }
        if save {
            o.save(state.store.clone());
        }
        if !had_pending && state.host.get().has_pending() {
            o.set_timer(SdTimer::Flush, model_timeout());
        }
    }

    fn may_prepare(&self, store: &SdStore) -> bool {
        self.proposal.is_some() && store.prepares < self.max_prepares
    }
}

impl Actor for SdActor {
    type Msg = Frame;
    type State = SdState;
    type Timer = SdTimer;
    type Storage = SdStore;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<SdStore>, o: &mut Out<Self>) -> SdState {
        let me = node_id(id);
        let mut effects = Vec::new();
        let (host, store) = match storage {
            None => {
                let mut host = NodeHost::new(me, self.durability);
                let mut store = SdStore::default();
                if let Some(v) = self.proposal {
                    effects.extend(host.set_proposal(v));
                    if self.may_prepare(&store) {
                        effects.extend(host.prepare(true));
                        store.prepares += 1;
                    }
                }
                (host, store)
            }
            Some(store) => {
                let mut store = store.clone();
                store.restarts += 1;
                let record = store.record.as_ref().map(|r| r.0.as_slice());
                let mut host = NodeHost::recover(me, record, self.durability);
                if let Some(v) = self.proposal {
                    // The application proposes again; the new round waits
                    // for the timer.
                    effects.extend(host.set_proposal(v));
                }
                (host, store)
            }
        };
        o.save(store.clone());
        let mut state = SdState {
            host: Sealed::new(host),
            store,
        };
        self.emit(&mut state, false, effects, o);
        if self.may_prepare(&state.store) {
            o.set_timer(SdTimer::Prepare, model_timeout());
        }
        state
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<'_, SdState>, src: Id, msg: Frame, o: &mut Out<Self>) {
        let mut next = (**state).clone();
        let had = next.host.get().has_pending();
        let effects = next.host.update(|h| h.receive(node_id(src), &msg.0));
        self.emit(&mut next, had, effects, o);
        if next != **state {
            *state = Cow::Owned(next);
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<'_, SdState>, timer: &SdTimer, o: &mut Out<Self>) {
        let mut next = (**state).clone();
        match timer {
            SdTimer::Flush => {
                let Some((record, effects)) = next.host.update(NodeHost::flush) else {
                    return;
                };
                next.store.record = Some(Record(record));
                o.save(next.store.clone());
                self.emit(&mut next, false, effects, o);
                if next.host.get().has_pending() {
                    o.set_timer(SdTimer::Flush, model_timeout());
                }
            }
            SdTimer::Prepare => {
                if !self.may_prepare(&next.store) {
                    return;
                }
                let had = next.host.get().has_pending();
                let effects = next.host.update(|h| h.prepare(true));
                next.store.prepares += 1;
                o.save(next.store.clone());
                self.emit(&mut next, had, effects, o);
                if self.may_prepare(&next.store) {
                    o.set_timer(SdTimer::Prepare, model_timeout());
                }
            }
        }
        *state = Cow::Owned(next);
    }
}

/// History, from the messages sent: what each acceptor revealed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Revealed {
    /// Per node, the highest ballot it revealed having promised (in a
    /// promise, a vote or a NACK). Its acceptor must never fall below it,
    /// even after a restart.
    promised: [Option<Ballot>; sm::NODES],
    /// Every vote sent: (acceptor, ballot, value). A value is chosen once
    /// a quorum of acceptors voted for it under one ballot, whether or not
    /// any learner hears of it.
    votes: BTreeSet<(u8, Ballot, sm::Value)>,
}

impl Revealed {
    /// The values chosen so far.
    fn chosen(&self) -> BTreeSet<sm::Value> {
        let mut count: BTreeMap<(Ballot, sm::Value), usize> = BTreeMap::new();
        for (_, ballot, value) in &self.votes {
            *count.entry((*ballot, *value)).or_default() += 1;
        }
        count
            .into_iter()
            .filter(|(_, n)| *n >= sm::QUORUM)
            .map(|((_, v), _)| v)
            .collect()
    }
}

/// The single-decree model.
pub type SdModel = Forgetful<SdActor, SdConfig, Revealed>;
type SdSystem = ActorModelState<SdActor, Revealed>;

fn sd_stores(state: &SdSystem) -> impl Iterator<Item = &SdStore> {
    state.actor_storages.iter().flatten()
}

fn sd_resolved(state: &SdSystem) -> BTreeSet<sm::Value> {
    sd_stores(state).flat_map(|s| s.resolved.iter().copied()).collect()
}

fn sd_restarts(state: &SdSystem) -> usize {
    let restarted: usize = sd_stores(state).map(|s| usize::from(s.restarts)).sum();
    restarted + state.crashed.iter().filter(|c| **c).count()
}

/// The messages that stay no-ops for ever once they are (see
/// `Forgetful::purging`): replies — promises, refusals and votes — to a node
/// that never crashes, because what they act on only moves forward in a
/// node that keeps its memory:
///
/// - a `Promise` for ballot `b` is counted if `b` is the proposer's current
///   ballot and it does not lead yet, else ignored; the ballot only grows,
///   and promises are only forgotten when it does;
/// - a NACK only raises the proposer's next round above the promise it
///   names, and that round never falls;
/// - a vote (`Accepted`) is recorded if it is newer than the acceptor's
///   last one and the learner has not decided; the recorded vote only
///   grows and a decision is final. (A vote is also ignored if another
///   acceptor voted a different value under the same ballot, and could be
///   taken later. That needs two values under one ballot, which the
///   property "one value per ballot" rules out on every path the checker
///   explores, so it cannot hide a violation.)
///
/// A full outbox would also make them no-ops for a while, but a node that
/// never crashes writes its persists at once and never holds outputs. A
/// node that may crash forgets all of the above, so its messages stay.
fn sd_purgeable(cfg: &SdConfig, env: &Envelope<Frame>) -> bool {
    cfg.crash != Some(usize::from(env.dst))
        && matches!(
            decode::<Message<sm::Value>>(&env.msg.0),
            Ok(Message::Promise { .. }
                | Message::PrepareNack { .. }
                | Message::AcceptNack { .. }
                | Message::Accepted { .. })
        )
}

/// The single-decree model of `cfg`, with its properties: "agreement",
/// "one value per ballot", "one value chosen", "validity" and "promises
/// kept" always; "a value is chosen", "a value is resolved" and "a
/// restarted node resolves" sometimes.
pub fn single_decree_model(cfg: SdConfig) -> SdModel {
    let actors: Vec<_> = (0..sm::NODES)
        .map(|i| SdActor {
            learners: cfg.learners.iter().fold(0, |m, l| m | 1 << l),
            proposal: cfg.proposals.get(i).copied(),
            max_prepares: cfg.max_prepares,
            durability: if cfg.crash == Some(i) {
                cfg.durability
            } else {
                sm::Durability::Immediate
            },
        })
        .collect();
    let lossy = if cfg.lossy { LossyNetwork::Yes } else { LossyNetwork::No };
    let max_crashes = if cfg.crash.is_some() { cfg.restarts.min(1) } else { 0 };
    let network = network(cfg.duplicating);
    let inner = ActorModel::new(cfg, Revealed::default())
        .actors(actors)
        .init_network(network)
        .lossy_network(lossy)
        .max_crashes(max_crashes)
        .record_msg_out(|_, history, env: Envelope<&Frame>| {
            let (revealed, vote) = match decode::<Message<sm::Value>>(&env.msg.0).ok()? {
                Message::Accepted { ballot, value } => (ballot, Some((ballot, value))),
                Message::Promise { ballot, .. } => (ballot, None),
                Message::PrepareNack { promised, .. } | Message::AcceptNack { promised, .. } => (promised, None),
                _ => return None,
            };
            let i = usize::from(env.src);
            let vote = vote.map(|(ballot, value)| (i as u8, ballot, value));
            if history.promised[i] >= Some(revealed) && vote.is_none_or(|v| history.votes.contains(&v)) {
                return None;
            }
            let mut next = history.clone();
            next.promised[i] = next.promised[i].max(Some(revealed));
            next.votes.extend(vote);
            Some(next)
        })
        .within_boundary(|cfg, s| {
            let others_up = s.crashed.iter().enumerate().all(|(i, c)| !c || cfg.crash == Some(i));
            others_up && sd_restarts(s) <= cfg.restarts
        });
    Forgetful::new(inner)
        .purging(sd_purgeable)
        .property(Expectation::Always, "agreement", |_, s| sd_resolved(s).len() <= 1)
        .property(Expectation::Always, "one value per ballot", |_, s| {
            let mut by_ballot: BTreeMap<Ballot, sm::Value> = BTreeMap::new();
            s.history
                .votes
                .iter()
                .all(|(_, b, v)| *by_ballot.entry(*b).or_insert(*v) == *v)
        })
        .property(Expectation::Always, "one value chosen", |_, s| {
            s.history.chosen().len() <= 1
        })
        .property(Expectation::Always, "validity", |m, s| {
            let proposed = |v: &sm::Value| m.cfg().proposals.contains(v);
            sd_resolved(s).iter().all(proposed) && s.history.votes.iter().all(|(_, _, v)| proposed(v))
        })
        .property(Expectation::Always, "promises kept", |_, s| {
            s.actor_states
                .iter()
                .enumerate()
                .all(|(i, a)| s.crashed[i] || a.host.get().node().acceptor().promised() >= s.history.promised[i])
        })
        .property(Expectation::Sometimes, "a value is chosen", |_, s| {
            !s.history.chosen().is_empty()
        })
        .property(Expectation::Sometimes, "a value is resolved", |_, s| {
            !sd_resolved(s).is_empty()
        })
        .property(Expectation::Sometimes, "a restarted node resolves", |m, s| {
            m.cfg().restarts == 0 || sd_stores(s).any(|st| st.resolved_after_restart)
        })
}
