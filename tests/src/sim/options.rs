//! What a run does: the options a test chooses (and a replay command
//! reproduces), and the scenario the seed draws.

use super::SimRng;
use paxos_core::Duration;

/// How the application's applied watermark survives a crash: the `applied`
/// slot handed to `Replica::recover`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppDurability {
    /// The application checkpoints its state now and then; after a crash
    /// it resumes from a checkpoint the replica can still redeliver from:
    /// a slot between the recovered log's start and its decided watermark.
    Checkpoint,
    /// The application makes every applied value durable at once, so its
    /// watermark may run ahead of the replica's durable records. The
    /// replica documents that it redelivers from `applied`.
    OnApply,
}

/// A deliberately broken driver, to prove the checker is not vacuous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// A correct driver.
    None,
    /// Confirms every batch durable as soon as it is written, before the
    /// sync: persist-before-reveal must catch it.
    ConfirmBeforeSync,
    /// Loses the newest synced batch at every crash: forgotten promises
    /// and votes must be caught.
    LoseSyncedTail,
    /// Clocks drift 80% either way (far beyond the lease's configured bound): stale
    /// lease reads must be caught.
    ClocksBeyondBound,
    /// Any node answers reads from its applied state, lease or not:
    /// stale reads must be caught.
    ReadAtAnyNode,
}

/// Every bug the replica can have injected, by the name `SIM_BUG` gives.
pub fn bug_named(name: &str) -> Option<paxos_core::fault_injection::Bug> {
    use paxos_core::fault_injection::Bug;
    [
        Bug::IgnoreAcceptedValues,
        Bug::AcceptBelowPromise,
        Bug::NoPromiseOnAccept,
        Bug::QuorumOffByOne,
        Bug::RevealBeforeDurable,
        Bug::ForgetOnRestart,
        Bug::ReuseBallotAfterRestart,
        Bug::LeaderLearns,
        Bug::TornRecord,
        Bug::UnrecordedLearnWatermark,
        Bug::AmnesiacVotes,
        // The simulator's reach (3,000 chaos steps, refinement check on):
        // 40 of seeds 0..20,000, first 411, on `DecidedKnown` on disk
        // after a durable watermark record (the simulator's own
        // invariants: 3, first 9,299, on `RESTART`).
        Bug::SnapshotDropsPendingVotes,
        // Not reached: 0 of seeds 0..20,000. A sync covers every batch
        // written when it starts, so the emptied vote record and the
        // snapshot record become durable together; shown by the scripted
        // `scripted_vote_leaves_before_snapshot` (tests/refinement.rs).
        Bug::VoteLeavesBeforeSnapshot,
        Bug::DropSelfVotesWhenFull,
        Bug::ReleaseQueuedSlots,
    ]
    .into_iter()
    .find(|bug| format!("{bug:?}") == name)
}

/// The ways the simulator was widened to find bugs it had been blind to
/// (issue #12). Each can be turned off ([`Options::without`]) to measure
/// what it takes to find a bug, or to keep one bug from hiding another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Widening {
    /// Storage wipes: a node restarts with an empty disk.
    Wipes,
    /// Persist and transmit buffers of a few dozen bytes (else every node
    /// gets 4,096): batches torn anywhere, promises in parts.
    TinyBuffers,
    /// Drivers that write a batch only while no sync is in flight.
    LazyPersist,
    /// Duplicates held back for seconds, and side paths (catch-up, learn,
    /// snapshots) duplicated often.
    LongHolds,
    /// Partitions with a bridge node, and leaders cut off with one
    /// follower: two leaders at once.
    SplitBrain,
    /// Snapshots offered to a node (a leader, often) that is behind.
    SnapshotOffers,
    /// One-node clusters, where the leader's own votes are the only ones
    /// (after commit 97a2a02: nothing else decides there).
    OneNode,
    /// Deep pipelines ([`DeepLoad`]): dozens of clients, a 64-slot window
    /// and slow syncs, so that a leader's driver writes dozens of batches
    /// while one syncs (after commit 97a2a02).
    DeepPipelines,
    /// Drivers that drop delivered slots from memory early
    /// (`Replica::release_delivered`, as the runtime does to bound the
    /// bytes of its window): peers behind get snapshots sooner.
    EarlyRelease,
}

impl Widening {
    /// Every widening.
    pub const ALL: [Widening; 9] = [
        Widening::Wipes,
        Widening::TinyBuffers,
        Widening::LazyPersist,
        Widening::LongHolds,
        Widening::SplitBrain,
        Widening::SnapshotOffers,
        Widening::OneNode,
        Widening::DeepPipelines,
        Widening::EarlyRelease,
    ];

    /// Its name in `SIM_WITHOUT`.
    pub fn name(self) -> &'static str {
        match self {
            Widening::Wipes => "wipes",
            Widening::TinyBuffers => "tiny-buffers",
            Widening::LazyPersist => "lazy-persist",
            Widening::LongHolds => "long-holds",
            Widening::SplitBrain => "split-brain",
            Widening::SnapshotOffers => "snapshot-offers",
            Widening::OneNode => "one-node",
            Widening::DeepPipelines => "deep-pipelines",
            Widening::EarlyRelease => "early-release",
        }
    }
}

/// The knobs of a run that are not drawn from the seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Steps with faults before the cluster is healed.
    pub chaos_steps: u64,
    /// After healing, how long every client may take to get its last
    /// value decided and every node to catch up, in virtual time.
    pub liveness_bound: Duration,
    /// After healing, how long a proposal may stay pending without an
    /// outcome (counted from its proposal or from healing, the later), and
    /// how long after the work is done every running node may take to
    /// follow one leader.
    pub outcome_bound: Duration,
    /// The application model.
    pub app: AppDurability,
    /// Injected driver bugs.
    pub sabotage: Sabotage,
    /// Record a trace of every step (printed on failure and in replays).
    pub trace: bool,
    /// Rules (the `rule` of a violation) that are known broken: a
    /// violation of one is counted in [`super::Stats::waived`] and the run
    /// goes on. Empty by default; every waiver must name its bug.
    pub waive: Vec<&'static str>,
    /// A classic Paxos bug injected into every replica, to prove the
    /// invariants catch it.
    pub bug: Option<paxos_core::fault_injection::Bug>,
    /// Widenings turned off (the seed draws the same scenario; what is
    /// turned off does not happen).
    pub without: Vec<Widening>,
    /// Hold every step to the specification's next-state relation
    /// ([`crate::refinement`]). On by default; `SIM_REFINEMENT=0` turns it
    /// off (to measure its cost).
    pub refinement: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chaos_steps: 3_000,
            liveness_bound: Duration::from_secs(30),
            outcome_bound: Duration::from_secs(10),
            app: AppDurability::Checkpoint,
            sabotage: Sabotage::None,
            trace: false,
            waive: Vec::new(),
            bug: None,
            without: Vec::new(),
            refinement: true,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads a number from the environment.
pub fn env_u64(name: &str) -> Option<u64> {
    env(name).map(|v| {
        v.replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

impl Options {
    /// The defaults, overridden by `SIM_STEPS`, `SIM_APP`
    /// (`checkpoint` | `on-apply`), `SIM_SABOTAGE` (`none` |
    /// `confirm-before-sync` | `lose-synced-tail`), `SIM_TRACE=1` and
    /// `SIM_REFINEMENT=0`.
    pub fn from_env() -> Self {
        let mut o = Options::default();
        o.apply_env();
        o
    }

    /// Applies the environment overrides to these options.
    pub fn apply_env(&mut self) {
        if let Some(steps) = env_u64("SIM_STEPS") {
            self.chaos_steps = steps;
        }
        match env("SIM_APP").as_deref() {
            None => {}
            Some("checkpoint") => self.app = AppDurability::Checkpoint,
            Some("on-apply") => self.app = AppDurability::OnApply,
            Some(other) => panic!("SIM_APP={other}: expected checkpoint or on-apply"),
        }
        match env("SIM_SABOTAGE").as_deref() {
            None => {}
            Some("none") => self.sabotage = Sabotage::None,
            Some("confirm-before-sync") => self.sabotage = Sabotage::ConfirmBeforeSync,
            Some("lose-synced-tail") => self.sabotage = Sabotage::LoseSyncedTail,
            Some("clocks-beyond-bound") => self.sabotage = Sabotage::ClocksBeyondBound,
            Some("read-at-any-node") => self.sabotage = Sabotage::ReadAtAnyNode,
            Some(other) => panic!("SIM_SABOTAGE={other}: unknown"),
        }
        if env("SIM_TRACE").is_some_and(|v| v != "0") {
            self.trace = true;
        }
        if let Some(bug) = env("SIM_BUG") {
            self.bug = Some(bug_named(&bug).unwrap_or_else(|| panic!("SIM_BUG: unknown bug {bug:?}")));
        }
        if let Some(without) = env("SIM_WITHOUT") {
            self.without = without
                .split(',')
                .map(|w| {
                    Widening::ALL
                        .into_iter()
                        .find(|known| known.name() == w.trim())
                        .unwrap_or_else(|| panic!("SIM_WITHOUT: unknown widening {w:?}"))
                })
                .collect();
        }
        if let Some(on) = env("SIM_REFINEMENT") {
            self.refinement = on != "0";
        }
        if let Some(waive) = env("SIM_WAIVE") {
            self.waive = waive
                .split(',')
                .map(|r| {
                    super::invariants::RULES
                        .iter()
                        .copied()
                        .find(|known| *known == r.trim())
                        .unwrap_or_else(|| panic!("SIM_WAIVE: unknown rule {r:?}"))
                })
                .collect();
        }
    }

    /// The environment that reproduces these options.
    pub fn env_vars(&self) -> Vec<String> {
        let mut vars = Vec::new();
        let default = Options::default();
        if self.chaos_steps != default.chaos_steps {
            vars.push(format!("SIM_STEPS={}", self.chaos_steps));
        }
        if self.app == AppDurability::OnApply {
            vars.push("SIM_APP=on-apply".into());
        }
        match self.sabotage {
            Sabotage::None => {}
            Sabotage::ConfirmBeforeSync => vars.push("SIM_SABOTAGE=confirm-before-sync".into()),
            Sabotage::LoseSyncedTail => vars.push("SIM_SABOTAGE=lose-synced-tail".into()),
            Sabotage::ClocksBeyondBound => vars.push("SIM_SABOTAGE=clocks-beyond-bound".into()),
            Sabotage::ReadAtAnyNode => vars.push("SIM_SABOTAGE=read-at-any-node".into()),
        }
        if !self.waive.is_empty() {
            vars.push(format!("SIM_WAIVE='{}'", self.waive.join(",")));
        }
        if !self.without.is_empty() {
            let names: Vec<&str> = self.without.iter().map(|w| w.name()).collect();
            vars.push(format!("SIM_WITHOUT={}", names.join(",")));
        }
        if let Some(bug) = self.bug {
            vars.push(format!("SIM_BUG={bug:?}"));
        }
        if !self.refinement {
            vars.push("SIM_REFINEMENT=0".into());
        }
        vars
    }

    /// Whether `widening` is on.
    pub fn widened(&self, widening: Widening) -> bool {
        !self.without.contains(&widening)
    }

    /// Turns off, in a drawn scenario, what [`Options::without`] excludes,
    /// and applies the one-node and deep-pipeline widenings the seed drew
    /// ([`Scenario::one_node`], [`Scenario::deep`]).
    pub fn shape(&self, scenario: &mut Scenario) {
        if scenario.one_node && self.widened(Widening::OneNode) {
            scenario.nodes = 1;
            scenario.initial_leader = scenario.initial_leader.map(|_| 0);
            scenario.persist_buffers.truncate(1);
            scenario.transmit_buffers.truncate(1);
            scenario.release_lags.truncate(1);
            scenario.lazy_persist.truncate(1);
            scenario.clocks.truncate(1);
            scenario.calm_minority_down = false;
        }
        if let Some(deep) = scenario.deep.filter(|_| self.widened(Widening::DeepPipelines)) {
            scenario.window = DeepLoad::WINDOW;
            scenario.clients = deep.clients;
            scenario.sync_us = deep.sync_us;
            if scenario.nodes == 1 {
                // The pipelined driver: a batch written at every input,
                // whatever syncs.
                scenario.lazy_persist.iter_mut().for_each(|l| *l = false);
            }
        }
        if !self.widened(Widening::TinyBuffers) {
            scenario.persist_buffers.iter_mut().for_each(|b| *b = 4096);
            scenario.transmit_buffers.iter_mut().for_each(|b| *b = 4096);
        }
        if !self.widened(Widening::EarlyRelease) {
            scenario.release_lags.iter_mut().for_each(|l| *l = None);
        }
        if !self.widened(Widening::LazyPersist) {
            scenario.lazy_persist.iter_mut().for_each(|l| *l = false);
        }
        if !self.widened(Widening::LongHolds) {
            scenario.weather.side_dup_ppm = 0;
            scenario.weather.hold_ppm = 0;
        }
    }

    /// The one command that replays `seed` with these options.
    pub fn replay_command(&self, seed: u64) -> String {
        let mut cmd = format!("SIM_SEED={seed}");
        for var in self.env_vars() {
            cmd.push(' ');
            cmd.push_str(&var);
        }
        cmd.push_str(" cargo test -p paxos-tests --test simulation replay -- --nocapture");
        cmd
    }
}

/// Everything a seed decides about a run before it starts.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Cluster size: 3 or 5, or 1 once [`Options::shape`] applied
    /// [`Scenario::one_node`].
    pub nodes: usize,
    /// The log window `W` of every replica: 4, 8 or 16, or
    /// [`DeepLoad::WINDOW`] once [`Options::shape`] applied
    /// [`Scenario::deep`].
    pub window: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// The configured initial leader (index), if any.
    pub initial_leader: Option<usize>,
    /// Heartbeat interval, election timeout and retransmission timeout.
    pub heartbeat: Duration,
    /// See [`Scenario::heartbeat`].
    pub election: Duration,
    /// See [`Scenario::heartbeat`].
    pub retransmit: Duration,
    /// The network's fault rates during chaos.
    pub weather: super::network::Weather,
    /// The time one sync takes: `min..=max` microseconds.
    pub sync_us: (u64, u64),
    /// Probability (ppm) that a crash finds some unsynced batches on disk
    /// after all (the OS flushed them), the next one torn.
    pub partial_flush_ppm: u32,
    /// One fault on average every this many steps during chaos.
    pub fault_every: u64,
    /// Per node, the size of the buffer given to `poll_persist`: in most
    /// runs some nodes get tiny ones, every size from the replica's
    /// minimum to 47 bytes more equally likely, so that every way a batch
    /// can fill up is tried.
    pub persist_buffers: Vec<usize>,
    /// Per node, the size of the buffer given to `poll_transmit`: the
    /// smallest that never drops a message (a promised entry: promises
    /// leave in parts), a few dozen bytes more, or 4,096. Drawn beside the
    /// scenario ([`Scenario::draw_widenings`]) so that the other draws of a
    /// seed stay as they were.
    pub transmit_buffers: Vec<usize>,
    /// Per node, whether its driver drops delivered slots from memory after
    /// every turn, all but the newest `lag` of them (`Some(lag)`, one node
    /// in four), instead of leaving them to the window's slide. Drawn
    /// beside the scenario, after the transmit buffers.
    pub release_lags: Vec<Option<u64>>,
    /// Per node, whether its driver writes the next batch only while no
    /// sync is in flight (see [`super::node::Node::lazy_persist`]).
    pub lazy_persist: Vec<bool>,
    /// Client think time between values: `0..=max` microseconds.
    pub think_us: u64,
    /// Whether, after healing, up to a minority of nodes stays down.
    pub calm_minority_down: bool,
    /// The leader lease, in half the runs.
    pub lease: Option<paxos_core::replica::LeaseConfig>,
    /// Each node's clock, drifting within the lease's bound (or 1,000 ppm
    /// without a lease).
    pub clocks: Vec<super::clock::Clock>,
    /// The run is a one-node cluster (about one seed in ten): node 0 alone,
    /// with the other fields drawn for the first node. Drawn by
    /// [`Scenario::draw_widenings`]; applied by [`Options::shape`].
    pub one_node: bool,
    /// The run is under a deep pipeline (half the one-node runs, one run in
    /// twenty of the others). Drawn by [`Scenario::draw_widenings`];
    /// applied by [`Options::shape`].
    pub deep: Option<DeepLoad>,
}

/// A deep pipeline: enough clients and a window wide enough that a
/// leader keeps more than 16 proposals undecided (the entries a leader's
/// queues of records and of its own votes hold), and syncs slow enough
/// that its driver, which writes a batch after every input whatever syncs
/// (a sync thread pipelining writes, as `paxos-std`'s `SyncPipeline`),
/// has dozens written before the first is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeepLoad {
    /// Concurrent clients: 24 to 48.
    pub clients: usize,
    /// The time one sync takes, `min..=max` microseconds: at least 3 ms,
    /// up to 40 ms.
    pub sync_us: (u64, u64),
}

impl DeepLoad {
    /// The log window of a deep pipeline: 32 proposals in flight.
    pub const WINDOW: usize = 64;
}

impl Scenario {
    /// Draws the widenings of commit 97a2a02 ([`Scenario::one_node`],
    /// [`Scenario::deep`]) from `side`, a generator of their own: the
    /// seed's main generator, and so every seed's run where they are not
    /// drawn, stays as it was.
    pub fn draw_widenings(&mut self, side: &mut SimRng) {
        self.one_node = side.ratio(1, 10);
        let deep = if self.one_node {
            side.ratio(1, 2)
        } else {
            side.ratio(1, 20)
        };
        self.deep = deep.then(|| {
            let clients = side.between(24, 48) as usize;
            let min = side.between(3_000, 10_000);
            DeepLoad {
                clients,
                sync_us: (min, min + side.between(0, 30_000)),
            }
        });
        let min = super::node::SimReplica::<4>::MAX_MESSAGE_SIZE;
        self.transmit_buffers = (0..self.nodes)
            .map(|_| match side.below(4) {
                0 => min,
                1 => min + side.below(96) as usize,
                _ => 4096,
            })
            .collect();
        self.release_lags = (0..self.nodes)
            .map(|_| side.ratio(1, 4).then(|| side.below(8)))
            .collect();
    }

    /// Draws a scenario; `min_persist` is the replica's smallest usable
    /// persist buffer for the chosen window.
    pub fn draw(rng: &mut SimRng, min_persist: impl Fn(usize) -> usize) -> Self {
        let nodes = if rng.ratio(1, 2) { 3 } else { 5 };
        let window = [4, 8, 16][rng.index(3)];
        let clients = rng.between(1, 4) as usize;
        let initial_leader = rng.ratio(1, 2).then(|| rng.index(nodes));
        let heartbeat = Duration::from_millis(rng.between(20, 60));
        let election = Duration::from_millis(rng.between(150, 400));
        let retransmit = Duration::from_millis(rng.between(40, 150));
        let weather = super::network::Weather::draw(rng);
        let sync_min = rng.between(50, 2_000);
        let sync_max = sync_min + rng.between(0, 20_000);
        let partial_flush_ppm = [0, 200_000, 500_000][rng.index(3)];
        let fault_every = rng.between(60, 400);
        let min = min_persist(window);
        let persist_buffers = (0..nodes)
            .map(|_| match rng.below(8) {
                0 => min,
                1..=3 => min + rng.below(48) as usize,
                4 => min + rng.below(256) as usize,
                _ => 4096,
            })
            .collect();
        let lazy_persist = (0..nodes).map(|_| rng.ratio(1, 2)).collect();
        let think_us = [0, 2_000, 20_000][rng.index(3)];
        let calm_minority_down = rng.ratio(1, 4);
        let lease = rng.ratio(1, 2).then(|| {
            paxos_core::replica::LeaseConfig::new(
                Duration::from_micros(election.as_micros() * rng.between(30, 90) / 100),
                [100, 10_000, 100_000][rng.index(3)],
            )
        });
        let drift = lease.map_or(1_000, |l| i64::from(l.max_drift_ppm));
        let clocks = (0..nodes)
            .map(|_| super::clock::Clock {
                offset_us: rng.below(10_000_000),
                ppm: rng.between(0, 2 * drift as u64) as i64 - drift,
            })
            .collect();
        Scenario {
            one_node: false,
            deep: None,
            nodes,
            window,
            clients,
            initial_leader,
            heartbeat,
            election,
            retransmit,
            weather,
            sync_us: (sync_min, sync_max),
            partial_flush_ppm,
            fault_every,
            persist_buffers,
            transmit_buffers: vec![4096; nodes],
            release_lags: vec![None; nodes],
            lazy_persist,
            think_us,
            calm_minority_down,
            lease,
            clocks,
        }
    }
}
