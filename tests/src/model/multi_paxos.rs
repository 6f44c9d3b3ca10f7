//! Model 2: Multi-Paxos. `N` [`paxos_core::replica::Replica`]s, driven
//! through [`ReplicaHost`] as stateright actors, and clients that each ask
//! to append one value; elections happen when a follower's timer fires.
//! The node count is a const generic (`RConfig<N>`, `ReplicaHost<N>`):
//! [`Scenario::StaleLearn`] runs five replicas and three clients.
//!
//! The fault model is the single-decree model's (an unordered,
//! duplicating, optionally lossy network; records durable only after a
//! separate flush step; a crash at any point and a restart from what was
//! written, `Replica::recover_with`), except that clients never crash. The
//! ghost state (every value a replica ever delivered) lives in durable
//! storage next to the real records. [`Scenario`]s restrict the model for
//! the bug hunts.

use super::fingerprint::Sealed;
use super::forgetful::{network, node_id, Forgetful};
use super::replica::{self as rm, ReplicaHost};
use paxos_core::fault_injection::Bug;
use paxos_core::replica::wire::{decode_header, Items};
use paxos_core::replica::{Header, PromisedEntry, Slot};
use paxos_core::{Ballot, NodeId};
use stateright::actor::{
    model_timeout, Actor, ActorModel, ActorModelAction, ActorModelState, Envelope, Id, LossyNetwork, Out,
};
use stateright::semantics::write_once_register::{WORegister, WORegisterOp, WORegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use stateright::Expectation;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A replica frame, printed decoded.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerFrame(Vec<u8>);

impl fmt::Debug for PeerFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok((header, rest)) = decode_header::<Header>(&self.0) else {
            return write!(f, "undecodable {:02x?}", self.0);
        };
        write!(f, "{header:?}")?;
        match header {
            Header::Append { .. } | Header::Learn { .. } => {
                if let Ok(items) = Items::<Option<rm::Value>>::new(rest) {
                    let items: Vec<_> = items.flatten().collect();
                    write!(f, " {items:?}")?;
                }
            }
            Header::Promise { .. } => {
                if let Ok(items) = Items::<PromisedEntry<rm::Value>>::new(rest) {
                    let items: Vec<_> = items.flatten().collect();
                    write!(f, " {items:?}")?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A message of the replica model.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RMsg {
    /// Between replicas.
    Peer(PeerFrame),
    /// From a client: append `value`. `retry` is false on the first
    /// attempt, which is when the operation is invoked.
    Request {
        /// The value to append.
        value: rm::Value,
        /// Whether this is a resend.
        retry: bool,
    },
    /// To a client.
    Reply(rm::Reply),
}

/// A batch of records, as written.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Batch(Vec<u8>);

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Batch({} bytes)", self.0.len())
    }
}

/// What survives a replica's crash: its durable log (real) and ghosts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RStore {
    log: Vec<Batch>,
    /// Ghost: the clock, which keeps running across a restart.
    clock: u64,
    /// Ghost: timer firings so far (the bound).
    ticks: u8,
    /// Ghost: how often this node restarted.
    restarts: u8,
    /// Ghost: every (slot, value) this node ever delivered.
    delivered: BTreeSet<(Slot, Option<rm::Value>)>,
}

/// A client's state: its one request and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState {
    value: rm::Value,
    attempts: u8,
    /// The replica to try next.
    target: u8,
    outcome: Option<rm::Reply>,
}

/// An actor of a cluster of `N` replicas: a replica or a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RState<const N: usize> {
    /// A replica and its driver.
    Replica {
        /// Boxed: a replica is kilobytes, a client a few bytes.
        host: Box<Sealed<ReplicaHost<N>>>,
        /// A copy of what is in durable storage.
        store: RStore,
    },
    /// A client.
    Client(ClientState),
}

/// The timers of the replica model's actors.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RTimer {
    /// Write and confirm the oldest unwritten batch.
    Flush,
    /// The replica's deadline (see `ReplicaHost::tick`).
    Tick,
    /// A client resends its request.
    Retry,
}

/// An actor of the replica model, as configured: a replica or a client.
#[derive(Clone)]
pub enum RActor<const N: usize> {
    /// A replica.
    Replica {
        /// The configured initial leader, if any.
        initial_leader: Option<NodeId>,
        /// Timer firings, across restarts.
        max_ticks: u8,
        /// How its driver treats records.
        durability: rm::Durability,
        /// A classic Paxos bug injected, if any.
        bug: Option<Bug>,
    },
    /// A client.
    Client {
        /// The value it appends.
        value: rm::Value,
        /// The replica asked first.
        target: u8,
        /// Requests (the first and its retries).
        max_attempts: u8,
    },
}

/// A replica model: `N` replicas (ids `0..N`) and clients (ids `N..`).
#[derive(Clone)]
pub struct RConfig<const N: usize> {
    /// The values clients `NODES`, `NODES + 1`, ... append.
    pub values: Vec<rm::Value>,
    /// The replica each client asks first, by client (replica 0 for those
    /// not listed).
    pub targets: Vec<u8>,
    /// The configured initial leader, if any.
    pub initial_leader: Option<NodeId>,
    /// Timer firings of replica 0, 1, ..., each across restarts.
    pub ticks: [u8; N],
    /// Requests per client (the first and its retries).
    pub max_attempts: u8,
    /// The replica that may crash (and restart), if any.
    pub crash: Option<usize>,
    /// How often it may crash and restart.
    pub restarts: usize,
    /// Whether it crashes only while it holds unwritten records, so that
    /// every crash loses something (the bug scenarios with
    /// `Durability::Correct`: see `Scenario`).
    pub crash_loses: bool,
    /// Whether a request waits in the network until the replica it is
    /// sent to leads (the bug scenarios: clients never hear a redirect).
    pub requests_to_leaders: bool,
    /// A replica that never receives anything (the network loses every
    /// message to it), if any.
    pub isolated: Option<usize>,
    /// Whether client `k` is served only by a replica that restarted `k`
    /// times (the first client before the crash, the second after it).
    pub staged: bool,
    /// Whether the network may drop a message for good.
    pub lossy: bool,
    /// Whether the network may deliver a message more than once (the bug
    /// scenarios turn that off: see `Scenario`).
    pub duplicating: bool,
    /// How the crashing replica's driver treats records (the others write
    /// theirs at once: see `Durability::Immediate`).
    pub durability: rm::Durability,
    /// A classic Paxos bug injected into every replica (test builds only).
    pub bug: Option<Bug>,
    /// A scenario's own restrictions, on top of those above: whether it
    /// allows an action in a state (see `Scenario::StaleLearn`).
    pub rule: Rule<N>,
    /// Whether the model has the sometimes-property [`LOSING_VOTE`].
    pub watch_losing_votes: bool,
}

/// Which actions a scenario allows in a state (beyond [`r_allowed`]'s).
pub type Rule<const N: usize> = fn(&RConfig<N>, &RSystem<N>, &RAction) -> bool;

/// The rule of a scenario with no restrictions of its own.
pub fn no_rule<const N: usize>(_: &RConfig<N>, _: &RSystem<N>, _: &RAction) -> bool {
    true
}

impl<const N: usize> RActor<N> {
    fn emit(state: &mut RStore, had_pending: bool, host: &ReplicaHost<N>, effects: Vec<rm::Effect>, o: &mut Out<Self>) {
        let mut save = false;
        for effect in effects {
            match effect {
                rm::Effect::Send { to, frame } => o.send(Id::from(usize::from(to.0)), RMsg::Peer(PeerFrame(frame))),
                rm::Effect::Delivered { slot, value } => save |= state.delivered.insert((slot, value)),
                rm::Effect::Written(batch) => {
                    state.log.push(Batch(batch));
                    save = true;
                }
                rm::Effect::Reply { client, reply } => o.send(Id::from(usize::from(client)), RMsg::Reply(reply)),
            }
        }
        if save {
            o.save(state.clone());
        }
        if !had_pending && host.has_pending() {
            o.set_timer(RTimer::Flush, model_timeout());
        }
    }

    fn resend(client: &mut ClientState, hint: Option<NodeId>, o: &mut Out<Self>) {
        client.target = match hint {
            Some(n) => n.0,
            None => (client.target + 1) % N as u8,
        };
        client.attempts += 1;
        o.send(
            Id::from(usize::from(client.target)),
            RMsg::Request {
                value: client.value,
                retry: true,
            },
        );
    }
}

impl<const N: usize> Actor for RActor<N> {
    type Msg = RMsg;
    type State = RState<N>;
    type Timer = RTimer;
    type Storage = RStore;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<RStore>, o: &mut Out<Self>) -> RState<N> {
        match self {
            RActor::Replica {
                initial_leader,
                max_ticks,
                durability,
                bug,
            } => {
                let config = rm::config(node_id(id), *initial_leader)
                    .to_builder()
                    .inject(*bug)
                    .build()
                    .expect("a valid configuration");
                let (host, effects, store) = match storage {
                    None => {
                        let (host, effects) = ReplicaHost::new(config, *durability);
                        (host, effects, RStore::default())
                    }
                    Some(store) => {
                        let mut store = store.clone();
                        store.restarts += 1;
                        let log: Vec<Vec<u8>> = store.log.iter().map(|b| b.0.clone()).collect();
                        let clock = paxos_core::Instant::from_micros(store.clock);
                        match ReplicaHost::recover(config.clone(), clock, &log, *durability) {
                            Ok((host, effects)) => (host, effects, store),
                            Err(_) => {
                                let (mut host, _) = ReplicaHost::new(config, *durability);
                                host.set_unrecoverable();
                                (host, Vec::new(), store)
                            }
                        }
                    }
                };
                let mut store = store;
                Self::emit(&mut store, false, &host, effects, o);
                o.save(store.clone());
                if store.ticks < *max_ticks {
                    o.set_timer(RTimer::Tick, model_timeout());
                }
                RState::Replica {
                    host: Box::new(Sealed::new(host)),
                    store,
                }
            }
            RActor::Client {
                value,
                target,
                max_attempts,
            } => {
                let target = *target;
                o.send(
                    Id::from(usize::from(target)),
                    RMsg::Request {
                        value: *value,
                        retry: false,
                    },
                );
                if *max_attempts > 1 {
                    o.set_timer(RTimer::Retry, model_timeout());
                }
                RState::Client(ClientState {
                    value: *value,
                    attempts: 1,
                    target,
                    outcome: None,
                })
            }
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<'_, RState<N>>, src: Id, msg: RMsg, o: &mut Out<Self>) {
        let mut next = (**state).clone();
        match (&mut next, msg) {
            (RState::Replica { host, store }, RMsg::Peer(frame)) => {
                let had = host.get().has_pending();
                let effects = host.update(|h| h.receive(node_id(src), &frame.0));
                Self::emit(store, had, host.get(), effects, o);
            }
            (RState::Replica { host, store }, RMsg::Request { value, .. }) => {
                let had = host.get().has_pending();
                let client = usize::from(src) as u8;
                let effects = host.update(|h| h.propose(client, value));
                Self::emit(store, had, host.get(), effects, o);
            }
            (RState::Client(client), RMsg::Reply(reply)) => {
                let RActor::Client { max_attempts, .. } = self else {
                    return;
                };
                if client.outcome.is_some() {
                    return;
                }
                match reply {
                    rm::Reply::Decided { .. } => client.outcome = Some(reply),
                    rm::Reply::Redirect(hint) if client.attempts < *max_attempts => Self::resend(client, hint, o),
                    rm::Reply::Busy | rm::Reply::Displaced if client.attempts < *max_attempts => {
                        Self::resend(client, Some(node_id(src)), o)
                    }
                    _ => {}
                }
            }
            _ => return,
        }
        if next != **state {
            *state = Cow::Owned(next);
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<'_, RState<N>>, timer: &RTimer, o: &mut Out<Self>) {
        let mut next = (**state).clone();
        match (&mut next, timer, self) {
            (RState::Replica { host, store }, RTimer::Flush, _) => {
                let Some((batch, effects)) = host.update(ReplicaHost::flush) else {
                    return;
                };
                store.log.push(Batch(batch));
                Self::emit(store, false, host.get(), effects, o);
                o.save(store.clone());
                if host.get().has_pending() {
                    o.set_timer(RTimer::Flush, model_timeout());
                }
            }
            (RState::Replica { host, store }, RTimer::Tick, RActor::Replica { max_ticks, .. }) => {
                if store.ticks >= *max_ticks {
                    return;
                }
                let had = host.get().has_pending();
                let effects = host.update(ReplicaHost::tick);
                store.ticks += 1;
                store.clock = host.get().clock().as_micros();
                Self::emit(store, had, host.get(), effects, o);
                o.save(store.clone());
                if store.ticks < *max_ticks {
                    o.set_timer(RTimer::Tick, model_timeout());
                }
            }
            (RState::Client(client), RTimer::Retry, RActor::Client { max_attempts, .. }) => {
                if client.outcome.is_some() || client.attempts >= *max_attempts {
                    return;
                }
                Self::resend(client, None, o);
                if client.attempts < *max_attempts {
                    o.set_timer(RTimer::Retry, model_timeout());
                }
            }
            _ => return,
        }
        *state = Cow::Owned(next);
    }
}

/// History: the clients' operations, for the linearizability check.
///
/// Each client performs one operation, `Write(value)` on a write-once
/// register whose value is the first value of the replicated log: it is
/// invoked when the client first sends its request, and returns when the
/// client first learns that its value was decided at some slot — `WriteOk`
/// if the log's first value is its own, `WriteFail` otherwise. That is
/// what is linearizable about a replicated log seen through appends: the
/// order of the log is a linearization of the appends, and a client that
/// learns its append's slot learns the whole prefix before it. (The log
/// itself is checked directly by "agreement".)
#[derive(Clone, Debug, PartialEq, Hash)]
pub struct Clients {
    tester: LinearizabilityTester<Id, WORegister<rm::Value>>,
    returned: BTreeSet<Id>,
}

/// The replica model of `N` replicas.
pub type RModel<const N: usize> = Forgetful<RActor<N>, RConfig<N>, Clients>;
/// A state of [`RModel`].
pub type RSystem<const N: usize> = ActorModelState<RActor<N>, Clients>;
/// An action of [`RModel`].
pub type RAction = ActorModelAction<RMsg, RTimer, ()>;

fn r_stores<const N: usize>(state: &RSystem<N>) -> impl Iterator<Item = &RStore> {
    state.actor_storages.iter().flatten()
}

fn r_hosts<const N: usize>(state: &RSystem<N>) -> impl Iterator<Item = &ReplicaHost<N>> {
    state.actor_states.iter().filter_map(|a| match &**a {
        RState::Replica { host, .. } => Some(host.get()),
        RState::Client(_) => None,
    })
}

/// Every (slot, value) ever delivered anywhere, by slot.
fn r_delivered<const N: usize>(state: &RSystem<N>) -> BTreeMap<Slot, BTreeSet<Option<rm::Value>>> {
    let mut by_slot: BTreeMap<Slot, BTreeSet<Option<rm::Value>>> = BTreeMap::new();
    for (slot, value) in r_stores(state).flat_map(|s| s.delivered.iter()) {
        by_slot.entry(*slot).or_default().insert(*value);
    }
    by_slot
}

fn r_restarts<const N: usize>(state: &RSystem<N>) -> usize {
    let restarted: usize = r_stores(state).map(|s| usize::from(s.restarts)).sum();
    restarted + state.crashed.iter().filter(|c| **c).count()
}

/// The messages that stay no-ops for ever once they are (see
/// `Forgetful::purging`), to a replica that never crashes or to a client
/// (clients never crash):
///
/// - a `Promise` counts only for the candidate's current campaign, once
///   per acceptor; a campaign's ballot is never used again;
/// - an `Accepted` counts only for the leader's current ballot, which is
///   never used again once it stops leading; the votes it adds and the
///   stamp it raises only grow;
/// - a `CatchUp` from slot `s` is answered only while `s` is below the
///   decided watermark, which only grows;
/// - a reply to a client counts only until the client has its outcome or
///   runs out of attempts, and both are final.
///
/// Not appends and prepares (their replies depend on the receiver's state
/// at the time), nor NACKs (a leader that does not hear a quorum now may
/// later, and act on the same NACK), nor `Learn` (values beyond the
/// decided watermark are useless now but not later).
fn r_purgeable<const N: usize>(cfg: &RConfig<N>, env: &Envelope<RMsg>) -> bool {
    match &env.msg {
        RMsg::Peer(frame) => {
            cfg.crash != Some(usize::from(env.dst))
                && matches!(
                    decode_header::<Header>(&frame.0),
                    Ok((
                        Header::Promise { .. } | Header::Accepted { .. } | Header::CatchUp { .. },
                        _
                    ))
                )
        }
        RMsg::Reply(_) => true,
        RMsg::Request { .. } => false,
    }
}

/// The actions a bug scenario allows (see `Scenario`); every one
/// otherwise.
fn r_allowed<const N: usize>(cfg: &RConfig<N>, s: &RSystem<N>, action: &RAction) -> bool {
    r_allowed_by_config(cfg, s, action) && (cfg.rule)(cfg, s, action)
}

fn r_allowed_by_config<const N: usize>(cfg: &RConfig<N>, s: &RSystem<N>, action: &RAction) -> bool {
    let host = |id: &Id| match s.actor_states.get(usize::from(*id)).map(|a| &**a) {
        Some(RState::Replica { host, .. }) => Some(host.get()),
        _ => None,
    };
    match action {
        ActorModelAction::Crash(id) if cfg.crash_loses => host(id).is_some_and(ReplicaHost::has_pending),
        ActorModelAction::Deliver {
            src,
            dst,
            msg: RMsg::Request { .. },
        } if cfg.requests_to_leaders => {
            let restarts = s
                .actor_storages
                .get(usize::from(*dst))
                .and_then(|st| st.as_ref())
                .map(|st| st.restarts);
            let stage_ok = !cfg.staged || restarts.map(usize::from) == Some(usize::from(*src) - N);
            stage_ok && host(dst).is_some_and(|h| h.replica().is_leader())
        }
        ActorModelAction::Deliver { dst, .. } => cfg.isolated != Some(usize::from(*dst)),
        _ => true,
    }
}

/// The replica model of `cfg`, with its properties: "agreement",
/// "validity", "driver contract" and "linearizable" always; "a value is
/// decided", "a client learns its outcome" and "a restarted node delivers
/// again" sometimes, and [`LOSING_VOTE`] if `cfg` watches it.
pub fn replica_model<const N: usize>(cfg: RConfig<N>) -> RModel<N> {
    let replicas: Vec<_> = (0..N)
        .map(|i| RActor::Replica {
            initial_leader: cfg.initial_leader,
            max_ticks: cfg.ticks[i],
            bug: cfg.bug,
            durability: if cfg.crash == Some(i) {
                cfg.durability
            } else {
                rm::Durability::Immediate
            },
        })
        .collect();
    let clients: Vec<_> = cfg
        .values
        .iter()
        .enumerate()
        .map(|(i, &value)| RActor::Client {
            value,
            target: cfg.targets.get(i).copied().unwrap_or(0),
            max_attempts: cfg.max_attempts,
        })
        .collect();
    let lossy = if cfg.lossy { LossyNetwork::Yes } else { LossyNetwork::No };
    let max_crashes = if cfg.crash.is_some() { cfg.restarts.min(1) } else { 0 };
    let history = Clients {
        tester: LinearizabilityTester::new(WORegister(None)),
        returned: BTreeSet::new(),
    };
    let network = network(cfg.duplicating);
    let watch_losing_votes = cfg.watch_losing_votes;
    let inner = ActorModel::new(cfg, history)
        .actors(replicas)
        .actors(clients)
        .init_network(network)
        .lossy_network(lossy)
        .max_crashes(max_crashes)
        .record_msg_out(|_, history, env: Envelope<&RMsg>| match env.msg {
            RMsg::Request { value, retry: false } => {
                let mut next = history.clone();
                let _ = next.tester.on_invoke(env.src, WORegisterOp::Write(*value));
                Some(next)
            }
            _ => None,
        })
        .record_msg_in(|cfg, history, env: Envelope<&RMsg>| match env.msg {
            RMsg::Reply(rm::Reply::Decided { first, .. }) if !history.returned.contains(&env.dst) => {
                let own = cfg.values.get(usize::from(env.dst) - N)?;
                let ret = if first == own {
                    WORegisterRet::WriteOk
                } else {
                    WORegisterRet::WriteFail
                };
                let mut next = history.clone();
                let _ = next.tester.on_return(env.dst, ret);
                next.returned.insert(env.dst);
                Some(next)
            }
            _ => None,
        })
        .within_boundary(|cfg, s| {
            let others_up = s.crashed.iter().enumerate().all(|(i, c)| !c || cfg.crash == Some(i));
            others_up && r_restarts(s) <= cfg.restarts
        });
    let model = Forgetful::new(inner)
        .purging(r_purgeable)
        .restricted(r_allowed)
        .property(Expectation::Always, "agreement", |_, s| {
            r_delivered(s).values().all(|values| values.len() == 1)
        })
        .property(Expectation::Always, "validity", |m, s| {
            r_delivered(s)
                .values()
                .flatten()
                .flatten()
                .all(|v| m.cfg().values.contains(v))
        })
        .property(Expectation::Always, "driver contract", |_, s| {
            r_hosts(s).all(|h| !h.faults().any())
        })
        .property(Expectation::Always, "linearizable", |_, s| {
            s.history.tester.serialized_history().is_some()
        })
        .property(Expectation::Sometimes, "a value is decided", |_, s| {
            r_delivered(s).values().flatten().any(Option::is_some)
        })
        .property(Expectation::Sometimes, "a client learns its outcome", |_, s| {
            !s.history.returned.is_empty()
        })
        .property(Expectation::Sometimes, "a restarted node delivers again", |m, s| {
            m.cfg().restarts == 0
                || s.actor_states.iter().zip(&s.actor_storages).any(|(a, st)| {
                    matches!(&**a, RState::Replica { host, .. } if !host.get().applied().is_empty())
                        && st.as_ref().is_some_and(|st| st.restarts > 0)
                })
        });
    if watch_losing_votes {
        model.property(Expectation::Sometimes, LOSING_VOTE, |_, s| losing_vote(s))
    } else {
        model
    }
}

/// A sometimes-property of the scenarios that watch it
/// (`RConfig::watch_losing_votes`): see [`losing_vote`].
pub const LOSING_VOTE: &str = "a losing vote waits under a live leader";

/// Whether a replica holds a vote, under ballot `b`, for a value other than
/// one delivered at the same slot, while a replica still leads `b`: one
/// heartbeat of that leader announcing the slot decided would deliver the
/// losing value. A control reaching it shows that the danger a bug hunt
/// looks for is there, and that the replica meets it safely.
fn losing_vote<const N: usize>(s: &RSystem<N>) -> bool {
    let delivered = r_delivered(s);
    let leading: Vec<Ballot> = r_hosts(s)
        .filter(|h| h.replica().is_leader())
        .filter_map(|h| h.replica().promised())
        .collect();
    r_hosts(s).any(|h| {
        delivered.iter().any(|(slot, values)| match h.replica().entry(*slot) {
            Some((Some(ballot), value)) => leading.contains(&ballot) && !values.contains(&value.copied()),
            _ => false,
        })
    })
}

/// A small situation in which a bug can show, for the bug hunts: each
/// keeps the replicas, the clients and the fault model, but fixes who may
/// do what, so that the checker can search every interleaving of the few
/// steps a counterexample needs. In all, the network delivers each
/// message at most once (see [`network`]), a request waits until the
/// replica it was sent to leads, clients do not retry, and a replica whose
/// driver writes records in a later step (`Durability::Correct`) crashes
/// only while one is unwritten (see [`r_allowed`]).
#[derive(Clone, Copy, Debug)]
pub enum Scenario {
    /// Replica 0 leads from the start (ballot 0) and may crash and restart
    /// once; clients `x` and `y` both ask it; no timer fires. A leader that
    /// comes back without what it promised and accepted leads ballot 0
    /// again, and may decide `y` where it had decided `x`.
    LeaderRestarts(rm::Durability),
    /// Replica 0 leads from the start and client `x` asks it; replica 2's
    /// timer fires once, so it campaigns, and client `y` asks it;
    /// replica 1, whose vote both quorums need, may crash and restart once.
    /// Only a restart lets replica 1 promise to replica 2: a follower that
    /// heard from its leader within the election timeout refuses other
    /// candidates, and replica 1's clock does not move here.
    Takeover(rm::Durability),
    /// Replica 0 leads from the start, client `x` asks it, and it may
    /// crash and restart once (after which it no longer leads); replica 2
    /// campaigns once and client `y` asks it; replica 0 may campaign once
    /// too. Meant for `NoPromiseOnAccept`: replica 1 votes `y` under
    /// replica 2's ballot without promising it, then a stale append of `x`
    /// under ballot 0, and replica 0's campaign finds `x`.
    Rivals(rm::Durability),
    /// No initial leader; replica 2 is cut off (it hears nothing), so
    /// replicas 0 and 1 are each other's only quorum. Replica 0 may
    /// campaign up to three times (its timer fires three times: a
    /// campaign, a campaign after it restarts, a heartbeat) and may crash
    /// and restart once; clients `x` and `y` both ask it. Meant for
    /// `ReuseBallotAfterRestart`: a restarted replica 0 campaigns with the
    /// ballot it used before the crash, so two values travel under one
    /// ballot, and a stale append of the first overwrites the second.
    Reelect(rm::Durability),
    /// Five replicas, no crash, every record written at once
    /// (`Durability::Immediate`): two leaders at once, the older one hears
    /// a catch-up answer it asked for before it led. Meant for
    /// `LeaderLearns`; see [`stale_learn_rule`] for the roles and the
    /// restrictions.
    StaleLearn,
}

/// The replicas of `Scenario::StaleLearn`, by role (issue #12's trace A
/// names them n2, n4, n3, n5 and n1, and its simpler form L2, B, A, F and
/// L1). Ballots order by round, then by node, so the ids are chosen for
/// the campaigns to need no extra round: `STALE`'s first ballot, (1,4), is
/// above the ones its voters' own campaigns take, (1,2) and (1,3).
mod stale_learn {
    /// L2: the initial leader (ballot (0,0)); later it leads again, with
    /// the highest ballot, (2,0).
    pub const LEADER: usize = 0;
    /// B: votes only in `LEADER`'s quorums.
    pub const VOTER: usize = 1;
    /// A: the member both quorums share.
    pub const SHARED: usize = 2;
    /// F: the only voter for `STALE`'s proposal.
    pub const FOLLOWER: usize = 3;
    /// L1: leads (1,4) with {`STALE`, `FOLLOWER`, `SHARED`}.
    pub const STALE: usize = 4;
    /// The clients' values: `LEADER` decides 100 under ballot 0, `STALE`
    /// proposes 111, `LEADER` proposes 222 under its second ballot.
    pub const VALUES: [u8; 3] = [100, 111, 222];
    /// The replica each client asks.
    pub const TARGETS: [u8; 3] = [LEADER as u8, STALE as u8, LEADER as u8];
    /// Timer firings: `LEADER` one (the heartbeat that carries its
    /// watermark), `STALE` two (its campaign, then a heartbeat), `SHARED`
    /// and `FOLLOWER` one each (a campaign, which moves their clocks past
    /// the election timeout, so that they promise `STALE`).
    pub const TICKS: [u8; 5] = [1, 0, 1, 1, 2];
}

/// The restrictions of `Scenario::StaleLearn`, with the roles of
/// [`stale_learn`]. The story it leaves room for (agreement violation A of
/// issue #12, in its simpler form): `LEADER` decides 100 at slot 0 with
/// `SHARED` and `VOTER`; `STALE` misses that append but hears the
/// heartbeat that carries the watermark, and asks `LEADER` to catch it up;
/// the network holds that request back. `SHARED`, `FOLLOWER` and `STALE`
/// campaign, `STALE` wins (1,4) with the other two (`SHARED`'s promise
/// reports 100, which it proposes again) and proposes 111 at slot 1,
/// which only `FOLLOWER` accepts (2 of 5: not chosen). `LEADER`'s
/// heartbeat reaches `FOLLOWER` late, which refuses it naming a higher
/// ballot; `LEADER` steps down and campaigns at once with (2,0), wins
/// with `SHARED` and `VOTER`, whose promises do not hold 111, and decides
/// 222 at slot 1. The held-back request reaches it, and its answer (slots
/// 0 and 1: 100, 222) reaches `STALE`, which still leads. With
/// `Bug::LeaderLearns` `STALE` takes it, and its next append tells
/// `FOLLOWER` that slot 1 is decided: `FOLLOWER` delivers 111 where
/// `LEADER` delivered 222. Fixed, `STALE` drops the answer (it leads).
/// Trace A has the request duplicated so that its node catches up before
/// campaigning, and the old leader step down when cut off; neither is
/// needed: `STALE`'s campaign recovers slot 0 from `SHARED`'s promise,
/// and a refusal naming a higher ballot makes `LEADER` campaign.
///
/// Each rule only forbids actions in some states, so the checker explores
/// a subset of the full model's behaviours (the timer budgets and the
/// replica each client asks are in [`Scenario::config`]):
///
/// - `STALE`'s timer fires for its campaign only once it follows
///   `LEADER`'s ballot 0 (it heard the watermark);
/// - a prepare of `STALE` reaches only `FOLLOWER` and `SHARED`, one of
///   `LEADER` only `SHARED` and `VOTER`; nobody hears the other campaigns
///   (they only move those replicas' clocks past the election timeout);
/// - an append of `STALE` reaches only `FOLLOWER`; one of `LEADER` that
///   carries values only `SHARED` and `VOTER`; one without values (a
///   heartbeat) only `STALE` and `FOLLOWER`, and only under ballot 0 with
///   a watermark above 0;
/// - votes (`Accepted`) reach only `LEADER`, and only from `SHARED` and
///   `VOTER` (so `STALE`'s ballot decides nothing by itself); only
///   `STALE`'s catch-up request is delivered (`SHARED` and `VOTER` ask
///   too, for slot 0, when `LEADER`'s second ballot announces its
///   watermark); promises, refusals and catch-up answers reach whom they
///   are sent to;
/// - `LEADER` takes the request for 100 only while it leads ballot 0, and
///   the one for 222 only under a later ballot; `STALE` takes the one for
///   111 only while its watermark is 0 (before it learned anything: a
///   later proposal would be the same bug taking another path).
fn stale_learn_rule<const N: usize>(_: &RConfig<N>, s: &RSystem<N>, action: &RAction) -> bool {
    use stale_learn::*;
    let replica = |i: usize| match s.actor_states.get(i).map(|a| &**a) {
        Some(RState::Replica { host, .. }) => Some(host.get().replica()),
        _ => None,
    };
    let decided = |i: usize| replica(i).map_or(0, |r| r.decided());
    let round = |i: usize| replica(i).and_then(|r| r.promised()).map(|b| b.round);
    match action {
        ActorModelAction::Timeout(id, RTimer::Tick) if usize::from(*id) == STALE => {
            replica(STALE).is_some_and(|r| r.is_leader() || r.promised() == Some(Ballot::new(0, NodeId(LEADER as u8))))
        }
        ActorModelAction::Deliver { src, dst, msg } => {
            let (src, dst) = (usize::from(*src), usize::from(*dst));
            match msg {
                RMsg::Peer(frame) => {
                    let Ok((header, rest)) = decode_header::<Header>(&frame.0) else {
                        return false;
                    };
                    match header {
                        Header::Prepare { .. } => match src {
                            STALE => dst == FOLLOWER || dst == SHARED,
                            LEADER => dst == SHARED || dst == VOTER,
                            _ => false,
                        },
                        Header::Append { ballot, commit, .. } => {
                            let values = Items::<Option<rm::Value>>::new(rest).is_ok_and(|i| i.remaining() > 0);
                            match src {
                                STALE => dst == FOLLOWER,
                                LEADER if values => dst == SHARED || dst == VOTER,
                                LEADER => ballot.round == 0 && commit > 0 && (dst == STALE || dst == FOLLOWER),
                                _ => false,
                            }
                        }
                        Header::Accepted { .. } => dst == LEADER && (src == SHARED || src == VOTER),
                        Header::CatchUp { .. } => src == STALE,
                        Header::Promise { .. } | Header::Nack { .. } | Header::Learn { .. } => true,
                    }
                }
                RMsg::Request { .. } => match src.checked_sub(N) {
                    Some(0) => round(dst) == Some(0),
                    Some(1) => decided(dst) == 0,
                    Some(2) => round(dst).is_some_and(|r| r > 0),
                    _ => true,
                },
                RMsg::Reply(_) => true,
            }
        }
        _ => true,
    }
}

impl Scenario {
    /// The cluster size.
    pub fn nodes(self) -> usize {
        match self {
            Scenario::StaleLearn => 5,
            _ => 3,
        }
    }

    /// The configuration, for a cluster of `N = self.nodes()`.
    pub fn config<const N: usize>(self, bug: Option<Bug>) -> RConfig<N> {
        assert_eq!(N, self.nodes(), "{self:?} has {} replicas", self.nodes());
        let (crash, durability, targets, ticks): (_, _, Vec<u8>, &[u8]) = match self {
            Scenario::LeaderRestarts(durability) => (Some(0), durability, vec![0, 0], &[0, 0, 0]),
            Scenario::Takeover(durability) => (Some(1), durability, vec![0, 2], &[0, 0, 1]),
            Scenario::Rivals(durability) => (Some(0), durability, vec![0, 2], &[1, 0, 1]),
            Scenario::Reelect(durability) => (Some(0), durability, vec![0, 0], &[3, 0, 0]),
            Scenario::StaleLearn => (
                None,
                rm::Durability::Immediate,
                stale_learn::TARGETS.to_vec(),
                &stale_learn::TICKS,
            ),
        };
        let reelect = matches!(self, Scenario::Reelect(_));
        let stale = matches!(self, Scenario::StaleLearn);
        RConfig {
            values: if stale {
                stale_learn::VALUES.to_vec()
            } else {
                vec![b'x', b'y']
            },
            targets,
            initial_leader: (!reelect).then_some(NodeId(0)),
            ticks: core::array::from_fn(|i| ticks[i]),
            max_attempts: 1,
            crash,
            restarts: usize::from(crash.is_some()),
            crash_loses: durability == rm::Durability::Correct,
            requests_to_leaders: true,
            isolated: reelect.then_some(2),
            staged: reelect,
            lossy: false,
            duplicating: false,
            durability,
            bug,
            rule: if stale { stale_learn_rule } else { no_rule },
            watch_losing_votes: stale,
        }
    }
}
