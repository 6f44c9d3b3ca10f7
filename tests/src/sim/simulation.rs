//! The simulation loop: virtual time, one event queue, the replicas'
//! timers, faults, and the invariants after every step.

use super::client::{Client, ClientOp, ClientState};
use super::fasthash::FastMap as HashMap;
use super::invariants::{Checker, Violation, LONE_LEADER, RESTART};
use super::network::{Kind, Network, Weather};
use super::node::{Node, NodeEvent, Output, SimReplica, MAX_NODES};
use super::options::{AppDurability, Options, Sabotage, Scenario, Widening};
use super::registers::{key_of, Key, Registers};
use super::stats::Stats;
use super::SimRng;
use super::Value;
use crate::refinement::{Input, Refinement};
use core::cmp::{Ordering, Reverse};
use core::fmt::Write as _;
use paxos_core::driver;
use paxos_core::replica::wire::decode_header;
use paxos_core::replica::{Config, Dropped, Header, ProposalId, ProposeError, Slot};
use paxos_core::{Duration, Instant, NodeId};
use std::collections::BinaryHeap;
use std::rc::Rc;

mod calm;
mod clients;
mod faults;

/// Something scheduled at a virtual time.
#[derive(Clone, Debug)]
enum Action {
    Deliver {
        from: usize,
        to: usize,
        frame: Rc<[u8]>,
    },
    SyncDone {
        node: usize,
        incarnation: u32,
        token: u64,
    },
    ClientWake {
        client: usize,
        token: u64,
    },
    Restart {
        node: usize,
    },
    /// A reader asks a random node for a key near the newest asked.
    Read,
    Heal {
        generation: u64,
    },
    /// A snapshot offered to a node (a leader behind another).
    OfferSnapshot {
        to: usize,
    },
    Snapshot {
        from: usize,
        to: usize,
        history: Rc<Vec<Option<Value>>>,
    },
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    order: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Faults are injected.
    Chaos,
    /// Faults stopped at `since`: every client must finish and every
    /// running node catch up within the liveness bound.
    Calm { since: Instant },
    /// Finished.
    Done,
}

/// How often a node's timer may fire at one instant before the run fails:
/// a deadline that does not move after `handle_timeout` makes a real
/// driver spin.
const TIMER_SPIN_LIMIT: u32 = 100;

/// A proposal `propose` accepted that has no outcome yet.
#[derive(Clone, Debug)]
struct PendingProposal {
    /// The client waiting for it; `None` once it gave up.
    client: Option<usize>,
    /// The value proposed.
    value: Value,
    /// Its node lost leadership since.
    stepped_down: bool,
    /// Its node installed a snapshot since.
    snapshot: bool,
}

/// One simulated run: a cluster of replicas, their disks and
/// applications, a network, clients, and the checker.
pub struct Simulation<const W: usize> {
    seed: u64,
    options: Options,
    scenario: Scenario,
    rng: SimRng,
    now: Instant,
    steps: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    order: u64,
    nodes: Vec<Node<W>>,
    network: Network,
    clients: Vec<Client>,
    /// Proposals without an outcome: (node, incarnation, id) → the
    /// client waiting for it (`None` once it gave up) and the value.
    proposals: HashMap<(usize, u32, ProposalId), PendingProposal>,
    checker: Checker,
    stats: Stats,
    phase: Phase,
    spin: (usize, Instant, u32),
    /// Nodes that took an input this step: only their state can have
    /// changed, so only they need the per-step checks.
    touched: Vec<bool>,
    /// When, after healing, every client was done and every node caught up.
    quiet_at: Option<Instant>,
    /// The keyed-register history: asks and lease reads.
    registers: Registers,
    /// A split-brain nemesis runs until then: no other fault meanwhile.
    nemesis_until: Instant,
    /// Per node, the last catch-up request it sent: (to, frame), for
    /// stale duplicates.
    last_catch_up: Vec<Option<(usize, Rc<[u8]>)>>,
    /// Per node, the last time a side path (a catch-up answer, a snapshot)
    /// moved its watermark while it led: named in commit-claim reports.
    leader_jump: Vec<Option<String>>,
    /// The refinement check, if on ([`Options::refinement`]).
    refinement: Option<Box<Refinement>>,
    /// The input the next drain follows, noted for the refinement check.
    input: Input,
    /// In a one-node cluster: the leader's first undecided slot, the
    /// ballot it leads with, and since when its vote there has been
    /// durable (see [`Simulation::check_lone_leader`]).
    lone_wait: Option<(Slot, paxos_core::Ballot, Instant)>,
}

/// Node `i` is `NodeId(i)`, so traces and reports name every node the
/// same way (`n2` is index 2 and the `2` of ballot `(5,2)`).
fn node_id(index: usize) -> NodeId {
    NodeId(index as u8)
}

fn us(rng: &mut SimRng, lo: u64, hi: u64) -> Duration {
    Duration::from_micros(rng.between(lo, hi))
}

impl<const W: usize> Simulation<W> {
    /// A cluster for `scenario` (drawn from `rng`, which the run goes on
    /// using), started at time zero.
    pub fn new(seed: u64, options: Options, mut scenario: Scenario, mut rng: SimRng) -> Result<Self, Violation> {
        if options.sabotage == Sabotage::ClocksBeyondBound {
            for clock in scenario.clocks.iter_mut() {
                clock.ppm = if rng.ratio(1, 2) { -800_000 } else { 800_000 };
            }
        }
        let n = scenario.nodes;
        let members: Vec<NodeId> = (0..n).map(node_id).collect();
        let mut nodes = Vec::with_capacity(n);
        for (i, &id) in members.iter().enumerate() {
            let config = Config::<MAX_NODES>::builder(id, &members)
                .heartbeat_interval(scenario.heartbeat)
                .election_timeout(scenario.election)
                .retransmit_timeout(scenario.retransmit)
                .initial_leader(scenario.initial_leader.map(node_id))
                .seed(rng.next_u64())
                .inject(options.bug)
                .lease(scenario.lease)
                .build()
                .map_err(|e| Violation::new("setup", format!("config: {e}")))?;
            let mut node = Node::new(i, config, scenario.persist_buffers[i]);
            node.set_transmit_buffer(scenario.transmit_buffers[i]);
            node.set_release_lag(scenario.release_lags[i]);
            node.lazy_persist = scenario.lazy_persist[i];
            nodes.push(node);
        }
        let clients = (0..scenario.clients).map(|c| Client::new(c, rng.index(n))).collect();
        let network = Network::new(n, scenario.weather);
        let waive = options.waive.clone();
        let mut sim = Simulation {
            seed,
            options,
            rng,
            now: Instant::ZERO,
            steps: 0,
            queue: BinaryHeap::new(),
            order: 0,
            nodes,
            network,
            clients,
            proposals: HashMap::default(),
            checker: Checker::new(n, waive),
            stats: Stats {
                nodes: n as u64,
                lazy_nodes: scenario.lazy_persist.iter().filter(|l| **l).count() as u64,
                deep_runs: u64::from(scenario.deep.is_some() && scenario.window == super::options::DeepLoad::WINDOW),
                ..Stats::default()
            },
            phase: Phase::Chaos,
            spin: (usize::MAX, Instant::ZERO, 0),
            touched: vec![false; n],
            quiet_at: None,
            registers: Registers::default(),
            nemesis_until: Instant::ZERO,
            last_catch_up: vec![None; n],
            leader_jump: vec![None; n],
            refinement: None,
            input: Input::Unknown,
            lone_wait: None,
            scenario,
        };
        if sim.options.refinement {
            let (window, leader) = (sim.scenario.window, sim.scenario.initial_leader);
            sim.refinement = Some(Box::new(Refinement::new(n, window, leader)));
        }
        for i in 0..n {
            let config = sim.nodes[i].config.clone();
            let replica =
                SimReplica::<W>::new(config, sim.local(i)).map_err(|e| Violation::new("setup", format!("new: {e}")))?;
            sim.nodes[i].replica = Some(replica);
            sim.note(|| Input::Boot);
            sim.after_input(i)?;
        }
        for c in 0..sim.clients.len() {
            let delay = us(&mut sim.rng, 0, 50_000);
            sim.wake_client(c, delay);
        }
        if sim.scenario.lease.is_some() || sim.options.sabotage == Sabotage::ReadAtAnyNode {
            sim.schedule(Duration::from_millis(1), Action::Read);
        }
        Ok(sim)
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The scenario the seed drew.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The checker, with the global decided log.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The refinement check, if on.
    pub fn refinement(&self) -> Option<&Refinement> {
        self.refinement.as_deref()
    }

    /// The nodes.
    pub fn nodes(&self) -> &[Node<W>] {
        &self.nodes
    }

    /// The clients, with their histories.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.steps = self.steps;
        s.virtual_us = self.now.as_micros();
        s.lease_runs = u64::from(self.scenario.lease.is_some());
        s.decisions = self.checker.decisions() as u64;
        s.syncs = self.nodes.iter().map(|n| n.disk.syncs).sum();
        s.reused_ballots = self.checker.reused_ballots;
        s.concurrent_leaders = self.checker.concurrent_leaders;
        s.refined_steps = self.refinement.as_ref().map_or(0, |r| r.steps());
        s.waived = self.checker.waived;
        s.net = self.network.stats;
        s.digest = self.digest();
        s
    }

    /// FNV-1a over the decided log and the clients' histories.
    fn digest(&self) -> u64 {
        let mut text = format!("{:?}", self.checker.decided_log());
        for c in &self.clients {
            let _ = write!(text, "{:?}", c.history);
        }
        crate::rng::fnv1a(text.bytes())
    }

    /// Runs to the end: chaos, then calm until every client finished and
    /// every running node caught up.
    pub fn run(&mut self) -> Result<Stats, Violation> {
        while self.phase != Phase::Done {
            self.step().map_err(|v| Violation {
                detail: format!(
                    "{} [step {}, t={:.3} ms]",
                    v.detail,
                    self.steps,
                    self.now.as_micros() as f64 / 1e3
                ),
                step: self.steps,
                ..v
            })?;
        }
        // Every node must be able to restart from its records as they are
        // at the end, crashed or not.
        for i in 0..self.nodes.len() {
            self.probe_recovery(i)
                .map_err(|v| Violation { step: self.steps, ..v })?;
        }
        self.registers
            .check()
            .map_err(|detail| Violation::new("keyed registers are linearizable", detail))?;
        Ok(self.stats())
    }

    /// What node `i`'s clock reads now.
    fn local(&self, i: usize) -> Instant {
        self.scenario.clocks[i].local(self.now)
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.options.trace {
            println!(
                "[{:>10.3} ms #{:>6}] {}",
                self.now.as_micros() as f64 / 1e3,
                self.steps,
                what()
            );
        }
    }

    fn schedule(&mut self, after: Duration, action: Action) {
        self.order += 1;
        self.queue.push(Reverse(Scheduled {
            at: self.now + after,
            order: self.order,
            action,
        }));
    }

    fn wake_client(&mut self, c: usize, after: Duration) {
        self.clients[c].wake_token += 1;
        let token = self.clients[c].wake_token;
        self.schedule(after, Action::ClientWake { client: c, token });
    }

    fn index_of(&self, id: NodeId) -> Result<usize, Violation> {
        let i = usize::from(id.0);
        if i < self.nodes.len() {
            Ok(i)
        } else {
            Err(Violation::new("members only", format!("unknown {id:?}")))
        }
    }

    /// One step: the earliest timer or scheduled action, a fault now and
    /// then, then every invariant.
    fn step(&mut self) -> Result<(), Violation> {
        match self.phase {
            Phase::Chaos if self.steps >= self.options.chaos_steps => self.calm()?,
            Phase::Calm { since } => {
                if self.quiet_at.is_none() && self.quiet() {
                    self.quiet_at = Some(self.now);
                    self.stats.liveness_us = (self.now - since).as_micros();
                }
                if self.quiet_at.is_some() {
                    if self.rejoined() {
                        self.stats.rejoin_us = (self.now - since).as_micros();
                        self.phase = Phase::Done;
                        return Ok(());
                    }
                    let quiet_at = self.quiet_at.unwrap_or(since);
                    if self.now > quiet_at + self.options.outcome_bound {
                        let detail = format!(
                            "{} ms after faults stopped, not every running node follows one leader:\n{}",
                            (self.now - since).as_millis(),
                            self.describe()
                        );
                        self.checker
                            .report("every running node follows the leader after healing", detail)?;
                        self.phase = Phase::Done;
                        return Ok(());
                    }
                }
                self.check_outcomes(since)?;
                if self.quiet_at.is_none() && self.now > since + self.options.liveness_bound {
                    return Err(Violation::new(
                        "liveness",
                        format!(
                            "{} ms after faults stopped, work remains:\n{}",
                            (self.now - since).as_millis(),
                            self.describe()
                        ),
                    ));
                }
            }
            _ => {}
        }
        let timer = self
            .nodes
            .iter()
            .filter_map(|n| {
                let clock = self.scenario.clocks[n.index];
                n.replica.as_ref().map(|r| {
                    let at = clock.virtual_at(r.poll_timeout());
                    // A lazy driver busy with a sync handles its timers
                    // once the sync is done (a deadline for records it has
                    // not polled yet would otherwise fire again at once).
                    let at = match n.sync_due {
                        // Just after the sync completes (a timer wins a tie).
                        Some(due) if n.lazy_persist => at.max(due + Duration::from_micros(1)),
                        _ => at,
                    };
                    (at, n.index)
                })
            })
            .min();
        let queued = self.queue.peek().map(|s| s.0.at);
        match (timer, queued) {
            (None, None) => {
                return Err(Violation::new(
                    "liveness",
                    format!("nothing left to happen:\n{}", self.describe()),
                ))
            }
            (Some((at, i)), q) if q.is_none_or(|q| at <= q) => {
                self.now = self.now.max(at);
                self.fire_timer(i)?;
            }
            _ => {
                let Some(Reverse(next)) = self.queue.pop() else {
                    return Ok(());
                };
                self.now = self.now.max(next.at);
                self.perform(next.action)?;
            }
        }
        self.steps += 1;
        if self.phase == Phase::Chaos && self.now >= self.nemesis_until && self.rng.ratio(1, self.scenario.fault_every)
        {
            self.inject_fault()?;
        }
        for node in &self.nodes {
            if !core::mem::take(&mut self.touched[node.index]) {
                continue;
            }
            if let Some(r) = &node.replica {
                self.checker.after_step(node.index, r)?;
            }
        }
        if self.nodes.len() == 1 {
            self.check_lone_leader()?;
        }
        Ok(())
    }

    /// How long a one-node cluster's leader may take to decide a slot
    /// once its vote there is durable: the vote may wait for a newer
    /// record's sync (the leader's self-vote queue, when full, counts a
    /// vote with a newer record's), which takes two syncs at most; twice
    /// that, and two heartbeats, to spare.
    fn lone_bound(&self) -> Duration {
        Duration::from_micros(4 * self.scenario.sync_us.1 + 2 * self.scenario.heartbeat.as_micros())
    }

    /// A leader alone (a one-node cluster) decides each slot soon after
    /// its vote there is durable: its own votes are the only ones, so a
    /// vote it loses track of stalls the cluster for good (commit
    /// 97a2a02). Checked after every step: the vote at its first undecided
    /// slot, under the ballot it leads with, must not stay durable and
    /// undecided longer than [`Simulation::lone_bound`].
    fn check_lone_leader(&mut self) -> Result<(), Violation> {
        let node = &self.nodes[0];
        let waiting = node
            .replica
            .as_ref()
            .filter(|r| r.is_leader())
            .and_then(|r| Some((r.decided(), r.promised()?)))
            .filter(|key| node.disk.view.votes.contains_key(key));
        let Some((slot, ballot)) = waiting else {
            self.lone_wait = None;
            return Ok(());
        };
        let since = match self.lone_wait {
            Some((s, b, since)) if (s, b) == (slot, ballot) => since,
            _ => {
                self.lone_wait = Some((slot, ballot, self.now));
                return Ok(());
            }
        };
        let bound = self.lone_bound();
        if self.now <= since + bound {
            return Ok(());
        }
        // Reported once per slot.
        self.lone_wait = Some((slot, ballot, Instant::from_micros(u64::MAX / 2)));
        let detail = format!(
            "n0 leads alone with {ballot:?}; its vote at slot {slot} has been durable since t={:.3} ms \
             and the slot is still undecided {} ms later (bound {} ms: syncs take at most {} us):\n{}",
            since.as_micros() as f64 / 1e3,
            (self.now - since).as_millis(),
            bound.as_millis(),
            self.scenario.sync_us.1,
            self.describe()
        );
        self.checker.report(LONE_LEADER, detail)
    }

    fn fire_timer(&mut self, i: usize) -> Result<(), Violation> {
        if self.spin.0 == i && self.spin.1 == self.now {
            self.spin.2 += 1;
            if self.spin.2 > TIMER_SPIN_LIMIT {
                return Err(Violation::new(
                    "deadlines advance",
                    format!("n{i}'s poll_timeout stays at {:?} after handle_timeout", self.now),
                ));
            }
        } else {
            self.spin = (i, self.now, 1);
        }
        self.trace(|| format!("n{i} timer"));
        let local = self.local(i);
        if let Some(r) = self.nodes[i].replica.as_mut() {
            // The timer is scheduled at the first virtual instant the
            // node's clock reaches its deadline: it is due.
            if !driver::tick(r, local) {
                return Err(Violation::new(
                    "simulator model",
                    format!("n{i}'s timer fired before its deadline {:?}", r.poll_timeout()),
                ));
            }
        }
        self.note(|| Input::Timeout);
        self.after_input(i)
    }

    fn perform(&mut self, action: Action) -> Result<(), Violation> {
        match action {
            Action::Deliver { from, to, frame } => self.deliver(from, to, &frame),
            Action::SyncDone {
                node,
                incarnation,
                token,
            } => self.sync_done(node, incarnation, token),
            Action::Read => {
                if self.phase == Phase::Chaos {
                    let node = self.rng.index(self.nodes.len());
                    let key = (self.registers.newest_key() + 1).saturating_sub(self.rng.below(3) as Key);
                    self.lease_read(node, key);
                    let delay = us(&mut self.rng, 1_000, 15_000);
                    self.schedule(delay, Action::Read);
                }
                Ok(())
            }
            Action::ClientWake { client, token } => {
                if self.clients[client].wake_token == token && self.clients[client].state == ClientState::Ready {
                    self.client_propose(client)?;
                }
                Ok(())
            }
            Action::Restart { node } => self.restart(node),
            Action::Heal { generation } => {
                if self.network.generation == generation {
                    self.trace(|| "network healed".into());
                    self.network.heal();
                }
                Ok(())
            }
            Action::Snapshot { from, to, history } => self.install_snapshot(from, to, &history),
            Action::OfferSnapshot { to } => {
                if self.phase == Phase::Chaos {
                    self.offer_snapshot(to);
                }
                Ok(())
            }
        }
    }

    fn deliver(&mut self, from: usize, to: usize, frame: &[u8]) -> Result<(), Violation> {
        if !self.nodes[to].is_up() || !self.network.link_up(from, to) {
            self.network.stats.cut += 1;
            return Ok(());
        }
        self.network.stats.delivered += 1;
        if self.options.trace {
            let header = decode_header::<Header>(frame).map(|(h, _)| h);
            self.trace(|| format!("n{from} -> n{to}: {header:?}"));
        }
        let now = self.local(to);
        let from_id = node_id(from);
        self.note(|| Input::message(from, frame));
        let Some(r) = self.nodes[to].replica.as_mut() else {
            return Ok(());
        };
        let learning_leader = (r.is_leader() && Kind::of(frame) == Kind::Learn).then(|| r.decided());
        if learning_leader.is_some() {
            self.stats.leader_learns += 1;
        }
        let result = r.handle_message(now, from_id, frame);
        if let Some(d) = learning_leader.filter(|d| r.decided() > *d) {
            self.stats.leader_learned += 1;
            self.leader_jump[to] = Some(format!(
                "a catch-up answer from n{from} moved n{to}'s watermark from {d} to {} while it led, at t={:.3} ms",
                r.decided(),
                self.now.as_micros() as f64 / 1e3
            ));
        }
        match result.dropped() {
            None => {}
            Some(Dropped::Busy) => self.stats.busy += 1,
            Some(e) => {
                return Err(Violation::new(
                    "frames from replicas are accepted",
                    format!("n{to} refused a frame from n{from}: {e}"),
                ))
            }
        }
        self.after_input(to)
    }

    fn sync_done(&mut self, i: usize, incarnation: u32, token: u64) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        if node.incarnation != incarnation || !node.is_up() {
            return Ok(());
        }
        node.sync_due = None;
        let seq = match node.disk.complete_sync(token) {
            Ok(seq) => seq,
            Err(e) => {
                self.checker.report(RESTART, format!("n{i}: {e}"))?;
                None
            }
        };
        self.checker.after_sync(i, &self.nodes[i].disk.view)?;
        if let Some(seq) = seq {
            self.trace(|| format!("n{i} synced up to {}", seq.0));
            // The drain that follows confirms it (the sabotaged driver
            // confirmed every batch when it wrote it).
            if self.options.sabotage != Sabotage::ConfirmBeforeSync {
                self.nodes[i].synced(seq);
            }
        }
        self.note(|| Input::Synced);
        self.after_input(i)
    }

    /// Notes the input the next drain follows, for the refinement check.
    fn note(&mut self, input: impl FnOnce() -> Input) {
        if self.refinement.is_some() {
            self.input = input();
        }
    }

    /// Drains node `i` after an input and acts on what it produced.
    fn after_input(&mut self, i: usize) -> Result<(), Violation> {
        self.touched[i] = true;
        let mut out = Vec::new();
        let confirm = self.options.sabotage == Sabotage::ConfirmBeforeSync;
        let local = self.local(i);
        self.nodes[i]
            .drain(local, confirm, &mut out)
            .map_err(|e| Violation::new("driver contract", format!("n{i}: {e}")))?;
        if let Some(refinement) = self.refinement.as_mut() {
            let input = core::mem::replace(&mut self.input, Input::Unknown);
            refinement.step(i, &self.nodes[i], input, &out)?;
        }
        let id = node_id(i);
        for output in out {
            match output {
                Output::Frame { to, bytes } => {
                    if self.options.trace {
                        let header = decode_header::<Header>(&bytes).map(|(h, _)| h);
                        self.trace(|| format!("n{i} sends to {to:?}: {header:?}"));
                    }
                    self.checker
                        .on_frame(i, id, &bytes, &self.nodes[i].disk.view)
                        .map_err(|v| match (&self.leader_jump[i], v.rule) {
                            (Some(jump), super::invariants::COMMIT_CLAIM) => Violation {
                                detail: format!("{}; {jump}", v.detail),
                                ..v
                            },
                            _ => v,
                        })?;
                    let kind = Kind::of(&bytes);
                    if kind == Kind::CatchUp {
                        if let Some(dest) = to.iter().next() {
                            self.last_catch_up[i] = Some((self.index_of(dest)?, bytes.clone()));
                        }
                    }
                    for dest in to.iter() {
                        let j = self.index_of(dest)?;
                        if j == i {
                            return Err(Violation::new("members only", format!("n{i} sends to itself")));
                        }
                        for delay in self.network.fates(&mut self.rng, i, j, kind) {
                            self.schedule(
                                delay,
                                Action::Deliver {
                                    from: i,
                                    to: j,
                                    frame: bytes.clone(),
                                },
                            );
                        }
                    }
                }
                Output::Event(event) => self.on_event(i, event)?,
            }
        }
        if self.nodes[i].replica.as_ref().is_some_and(|r| r.is_leader()) {
            let backlog = self.nodes[i].disk.unsynced() as u64;
            self.stats.leader_backlog = self.stats.leader_backlog.max(backlog);
        }
        if let Some(token) = self.nodes[i].disk.start_sync() {
            let (lo, hi) = self.scenario.sync_us;
            let delay = us(&mut self.rng, lo, hi);
            let incarnation = self.nodes[i].incarnation;
            self.nodes[i].sync_due = Some(self.now + delay);
            self.schedule(
                delay,
                Action::SyncDone {
                    node: i,
                    incarnation,
                    token,
                },
            );
        }
        Ok(())
    }

    fn on_event(&mut self, i: usize, event: NodeEvent) -> Result<(), Violation> {
        self.trace(|| format!("n{i} event {event:?}"));
        match event {
            NodeEvent::Decided { slot, value, proposal } => {
                let expected = self.nodes[i].app.applied();
                self.checker.on_delivered(i, expected, slot, &value)?;
                self.nodes[i].app.apply(value.clone());
                self.stats.delivered += 1;
                if let Some(pid) = proposal {
                    let key = (i, self.nodes[i].incarnation, pid);
                    let pending = self.proposals.remove(&key);
                    let proposed = pending.as_ref().map(|p| &p.value);
                    self.checker.on_outcome(i, pid, proposed, &value)?;
                    match pending.map(|p| p.client) {
                        Some(Some(c)) => self.client_decided(c, slot, i),
                        Some(None) => self.stats.late_outcomes += 1,
                        None => {}
                    }
                }
            }
            NodeEvent::Displaced(pid) => {
                let key = (i, self.nodes[i].incarnation, pid);
                let c = match self.proposals.remove(&key).map(|p| p.client) {
                    Some(Some(c)) => c,
                    Some(None) => {
                        self.stats.late_outcomes += 1;
                        return Ok(());
                    }
                    None => {
                        return self.checker.report(
                            "one outcome per proposal",
                            format!("n{i} displaced {pid:?}, which has no pending proposal"),
                        )
                    }
                };
                self.stats.displaced += 1;
                let client = &mut self.clients[c];
                let seq = client.seq;
                client.record(self.now, ClientOp::Displaced { seq });
                client.state = ClientState::Ready;
                let delay = us(&mut self.rng, 1_000, 10_000);
                self.wake_client(c, delay);
            }
            NodeEvent::Acquired(ballot) => {
                self.stats.leader_changes += 1;
                self.checker.on_acquired(i, node_id(i), ballot)?;
                // Two leaders at once: the one behind may be offered a
                // snapshot while it still leads (a stale transfer).
                let behind = (0..self.nodes.len())
                    .filter(|&j| j != i && self.nodes[j].replica.as_ref().is_some_and(|r| r.is_leader()))
                    .min_by_key(|&j| self.nodes[j].app.applied());
                if let Some(j) = behind {
                    // A few times over the next election timeout: the new
                    // leader must first decide something.
                    let e = self.scenario.election.as_micros();
                    if self.phase == Phase::Chaos && self.options.widened(Widening::SnapshotOffers) {
                        for _ in 0..3 {
                            let after = us(&mut self.rng, 0, e);
                            self.schedule(after, Action::OfferSnapshot { to: j });
                        }
                    }
                    // A stale copy of the last catch-up request the one
                    // behind sent, asked before it led, comes back now.
                    if let Some((to, frame)) = self.last_catch_up[j].clone() {
                        if self.phase == Phase::Chaos && self.options.widened(Widening::LongHolds) {
                            for _ in 0..3 {
                                let after = us(&mut self.rng, 0, e);
                                self.network.stats.held += 1;
                                self.schedule(
                                    after,
                                    Action::Deliver {
                                        from: j,
                                        to,
                                        frame: frame.clone(),
                                    },
                                );
                            }
                        }
                    }
                }
            }
            NodeEvent::Lost => {
                self.checker.on_not_leading(i);
                self.mark_pending(i, |p| p.stepped_down = true);
            }
            NodeEvent::LeaderChanged(_) => {}
            NodeEvent::SnapshotNeeded { peer, .. } => {
                let j = self.index_of(peer)?;
                self.send_snapshot(i, j);
            }
        }
        Ok(())
    }

    /// Node `i`'s application sends its state to node `j`.
    pub(super) fn send_snapshot(&mut self, i: usize, j: usize) {
        let history = self.nodes[i].app.snapshot();
        for delay in self.network.fates(&mut self.rng, i, j, Kind::Snapshot) {
            self.schedule(
                delay,
                Action::Snapshot {
                    from: i,
                    to: j,
                    history: history.clone(),
                },
            );
        }
    }

    fn install_snapshot(&mut self, from: usize, to: usize, history: &Rc<Vec<Option<Value>>>) -> Result<(), Violation> {
        if !self.nodes[to].is_up() || !self.network.link_up(from, to) {
            return Ok(());
        }
        let slot = history.len() as Slot;
        let node = &mut self.nodes[to];
        if slot <= node.app.applied() {
            return Ok(());
        }
        if let Some(s) = node.app.history.iter().zip(history.iter()).position(|(a, b)| a != b) {
            return Err(Violation::new(
                "application states agree",
                format!("snapshot from n{from} differs from n{to}'s state at slot {s}"),
            ));
        }
        node.app.install(history);
        let now = self.scenario.clocks[to].local(self.now);
        if let Some(r) = node.replica.as_ref().filter(|r| r.is_leader()) {
            self.stats.leader_snapshots += 1;
            self.leader_jump[to] = Some(format!(
                "a snapshot from n{from} moved n{to}'s watermark from {} to {slot} while it led, at t={:.3} ms",
                r.decided(),
                self.now.as_micros() as f64 / 1e3
            ));
        }
        if let Some(r) = node.replica.as_mut() {
            r.install_snapshot(now, slot)
                .map_err(|e| Violation::new("install_snapshot", format!("n{to} refused slot {slot}: {e}")))?;
            if r.delivered() != slot {
                return Err(Violation::new(
                    "a snapshot resumes delivery at its slot",
                    format!("n{to} installed {slot} but delivers from {}", r.delivered()),
                ));
            }
        }
        self.stats.snapshots += 1;
        self.mark_pending(to, |p| p.snapshot = true);
        self.trace(|| format!("n{to} installed a snapshot to slot {slot} from n{from}"));
        self.note(|| Input::Snapshot(slot));
        self.after_input(to)
    }
}
