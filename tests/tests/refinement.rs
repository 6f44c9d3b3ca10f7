//! The refinement check (`paxos_tests::refinement`): the simulator's runs
//! held, step by step, to the next-state relation of `spec/Replica.tla`.
//!
//! - the CI seeds run with it on: `seeds` in `tests/simulation.rs` (on by
//!   default; `SIM_REFINEMENT=0` turns it off) asserts every step was
//!   held to the spec; `on_apply_seeds` here adds the application model
//!   that reaches restarts from no records;
//! - one test per injected bug (`paxos_core::fault_injection::Bug`): the check
//!   fails, with a refinement rule, at the first wrong step. `TornRecord`
//!   needs a driver that writes lazily and `AmnesiacVotes` a storage wipe,
//!   which this simulator's scenarios do not draw: scripted three-node
//!   runs (`Cluster`) show them through the same hooks, and a driver that
//!   syncs one batch at a time shows the two halves of a snapshot taken
//!   with vote records queued (`scripted_snapshot_drops_pending_votes`,
//!   fault E; `scripted_vote_leaves_before_snapshot`, fault H, which the
//!   simulator does not reach);
//! - `every_path_is_taken`: the fixed code takes every path of the
//!   relation, so its rules are not vacuous;
//! - `bug_table` (ignored) prints, per bug, the step and rule where the
//!   refinement check fails and where the simulator's own invariants fail
//!   with it off, on the same seed.

use paxos_core::fault_injection::Bug;
use paxos_core::replica::Config;
use paxos_core::{Instant, NodeId, NodeSet};
use paxos_tests::refinement::{parse_batch, rules, Coverage, Input, Msg, Rec, Refinement};
use paxos_tests::sim::node::{Node, Output, SimReplica, MAX_NODES};
use paxos_tests::sim::options::env_u64;
use paxos_tests::sim::{
    run_seed, run_seeds, scenario_for, threads_from_env, AppDurability, Failure, Options, Scenario, SimRng, Simulation,
    Value, Violation, Widening,
};
use std::rc::Rc;

/// The step a failure names (`[step N, ...]` in its detail).
fn step_of(f: &Failure) -> Option<u64> {
    let at = f.detail.rfind("[step ")?;
    let rest = &f.detail[at + 6..];
    rest[..rest.find(',')?].parse().ok()
}

fn options(bug: Option<Bug>, refinement: bool, app: AppDurability, steps: u64) -> Options {
    Options {
        bug,
        refinement,
        app,
        chaos_steps: steps,
        ..Options::default()
    }
}

/// The first seed of `0..seeds` that fails, with its failure.
fn first_failure(options: &Options, seeds: u64) -> Option<Failure> {
    let (_, failures) = run_seeds(0, seeds, options, threads_from_env());
    failures.into_iter().next()
}

/// `bug` injected: some seed of `0..seeds` fails a refinement rule.
///
/// Over the scenarios these tests were written against: without the
/// one-node and deep-pipeline widenings of commit 97a2a02, which made seed
/// 0 a deep pipeline where `AcceptBelowPromise` does not show within 2,000
/// steps; the next seed, 3, shows it first as an `Accepted` of count 0
/// (no vote) under a ballot below the promise, which the simulator's
/// "votes keep promises" flags and the refinement check does not (it
/// carries no vote). The main run holds every widened scenario to the
/// specification.
fn caught(bug: Bug, app: AppDurability, seeds: u64) -> Failure {
    let mut options = options(Some(bug), true, app, 2_000);
    options.without = vec![Widening::OneNode, Widening::DeepPipelines];
    let failure = first_failure(&options, seeds).unwrap_or_else(|| panic!("{bug:?}: no seed of {seeds} failed"));
    println!("{bug:?}: {failure}");
    assert!(
        failure.rule.starts_with("refinement: "),
        "{bug:?} was caught by another check first: {failure}"
    );
    failure
}

/// The fixed code refines the spec with an application that makes every
/// value durable as it applies it: restarts that find no records (a node
/// that never synced) must come back as amnesiac learners.
#[test]
fn on_apply_seeds() {
    let seeds = env_u64("SIM_SEEDS").unwrap_or(300);
    let options = options(None, true, AppDurability::OnApply, 3_000);
    let (summary, failures) = run_seeds(0, seeds, &options, threads_from_env());
    if let Some(f) = failures.first() {
        panic!("{} seed(s) failed; the first:\n{f}", failures.len());
    }
    assert!(summary.total.refined_steps > summary.total.steps / 2, "{summary}");
}

/// A learn reaches a candidate or a leader only when a catch-up answer is
/// held back across an election: about one seed in a thousand here (the
/// simulator's own invariants never catch it in 3,000).
#[test]
fn catches_leader_learns() {
    caught(Bug::LeaderLearns, AppDurability::Checkpoint, 3_000);
}

#[test]
fn catches_unrecorded_learn_watermark() {
    caught(Bug::UnrecordedLearnWatermark, AppDurability::Checkpoint, 200);
}

#[test]
fn catches_ignore_accepted_values() {
    caught(Bug::IgnoreAcceptedValues, AppDurability::Checkpoint, 200);
}

#[test]
fn catches_accept_below_promise() {
    caught(Bug::AcceptBelowPromise, AppDurability::Checkpoint, 200);
}

#[test]
fn catches_no_promise_on_accept() {
    caught(Bug::NoPromiseOnAccept, AppDurability::Checkpoint, 200);
}

#[test]
fn catches_quorum_off_by_one() {
    caught(Bug::QuorumOffByOne, AppDurability::Checkpoint, 200);
}

#[test]
fn catches_reveal_before_durable() {
    caught(Bug::RevealBeforeDurable, AppDurability::Checkpoint, 200);
}

#[test]
fn catches_forget_on_restart() {
    caught(Bug::ForgetOnRestart, AppDurability::Checkpoint, 200);
}

#[test]
fn catches_reuse_ballot_after_restart() {
    caught(Bug::ReuseBallotAfterRestart, AppDurability::Checkpoint, 200);
}

/// A driver releasing delivered slots whose records are still queued
/// (`Replica::release_delivered` without its floor): the watermark record
/// reaches the disk over a slot whose record wrote nothing. The simulator's
/// own restart rule sees it only at the end of a run (first at seed 10);
/// the check sees the record that does it (seed 0, step 457).
#[test]
fn catches_released_queued_slots() {
    caught(Bug::ReleaseQueuedSlots, AppDurability::Checkpoint, 20);
}

/// Per bug: the first seed the refinement check fails, its rule and step;
/// then the same seed with the check off (the simulator's own
/// invariants), and the first seed those fail at all.
#[test]
#[ignore = "a report: cargo test --release -p paxos-tests --test refinement bug_table -- --ignored --nocapture"]
fn bug_table() {
    let seeds = env_u64("SIM_SEEDS").unwrap_or(300);
    let bugs = [
        (Bug::LeaderLearns, AppDurability::Checkpoint),
        (Bug::TornRecord, AppDurability::Checkpoint),
        (Bug::UnrecordedLearnWatermark, AppDurability::Checkpoint),
        (Bug::AmnesiacVotes, AppDurability::OnApply),
        (Bug::IgnoreAcceptedValues, AppDurability::Checkpoint),
        (Bug::AcceptBelowPromise, AppDurability::Checkpoint),
        (Bug::NoPromiseOnAccept, AppDurability::Checkpoint),
        (Bug::QuorumOffByOne, AppDurability::Checkpoint),
        (Bug::RevealBeforeDurable, AppDurability::Checkpoint),
        (Bug::ForgetOnRestart, AppDurability::Checkpoint),
        (Bug::ReuseBallotAfterRestart, AppDurability::Checkpoint),
        // Found by the simulator through this check since `DecidedKnown` on
        // disk is held after every durable watermark record: 40 of seeds
        // 0..20,000 at 3,000 chaos steps, the first 411
        // (`finds_snapshot_dropping_pending_votes` in tests/simulation.rs);
        // here (2,000 steps) seed 411 at step 332, and without the check
        // no seed of 1,000 fails. None below 411: not within the default
        // 300.
        (Bug::SnapshotDropsPendingVotes, AppDurability::Checkpoint),
        // Not reached by the simulator (0 of seeds 0..20,000 at 3,000
        // chaos steps): its syncs cover every batch written when they
        // start, so the record the snapshot emptied and the snapshot
        // record become durable together (docs/refinement.md, "Faults E
        // and H"). Caught by `scripted_vote_leaves_before_snapshot`.
        (Bug::VoteLeavesBeforeSnapshot, AppDurability::Checkpoint),
        // Not caught by this check in 300 seeds: a win is matched against
        // any quorum of the promises sent, not the ones the candidate
        // received, and another quorum usually explains it. The
        // simulator's agreement rule finds it (`finds_partial_promises`),
        // and TLC (`bug_count_partial_promise.cfg`).
        (Bug::CountPartialPromise, AppDurability::Checkpoint),
        (Bug::ReleaseQueuedSlots, AppDurability::Checkpoint),
    ];
    let only = std::env::var("REFINE_BUGS").unwrap_or_default();
    for (bug, app) in bugs {
        if !only.is_empty() && !only.split(',').any(|b| b.trim() == format!("{bug:?}")) {
            continue;
        }
        let on = options(Some(bug), true, app, 2_000);
        let off = options(Some(bug), false, app, 2_000);
        let (summary, failures) = run_seeds(0, seeds, &on, threads_from_env());
        let Some(f) = failures.first() else {
            println!("{bug:?} ({app:?}): not caught in {} seeds", summary.seeds);
            continue;
        };
        println!(
            "{bug:?} ({app:?}): refinement fails seed {} at step {:?}: {}: {}",
            f.seed,
            step_of(f),
            f.rule,
            f.detail.lines().next().unwrap_or("")
        );
        match run_seed(f.seed, &off) {
            Ok(_) => println!("    without it, seed {} passes", f.seed),
            Err(g) => println!(
                "    without it, seed {} fails at step {:?}: {}: {}",
                g.seed,
                step_of(&g),
                g.rule,
                g.detail.lines().next().unwrap_or("")
            ),
        }
        match first_failure(&off, seeds) {
            Some(g) => println!(
                "    without it, the first failing seed is {} (step {:?}, {})",
                g.seed,
                step_of(&g),
                g.rule
            ),
            None => println!("    without it, no seed of {seeds} fails"),
        }
    }
}

/// Runs `seed` to the end; returns how often each path of the next-state
/// relation was taken.
fn coverage_of(seed: u64, options: &Options) -> Coverage {
    fn run<const W: usize>(seed: u64, options: &Options, scenario: Scenario, rng: SimRng) -> Coverage {
        let mut sim = Simulation::<W>::new(seed, options.clone(), scenario, rng).unwrap();
        sim.run().unwrap_or_else(|v| panic!("seed {seed}: {v}"));
        sim.refinement().map(|r| r.coverage()).unwrap_or_default()
    }
    let (scenario, rng) = scenario_for(seed);
    match scenario.window {
        4 => run::<4>(seed, options, scenario, rng),
        8 => run::<8>(seed, options, scenario, rng),
        _ => run::<16>(seed, options, scenario, rng),
    }
}

/// The check is not vacuous on the fixed code: over a few seeds of each
/// application model, every path of the relation is taken (phase 1 with
/// re-proposals, every way a slot becomes decided, restarts), and every
/// step's input was noted.
#[test]
fn every_path_is_taken() {
    let seeds = env_u64("SIM_SEEDS").unwrap_or(100);
    let mut total = Coverage::default();
    for app in [AppDurability::Checkpoint, AppDurability::OnApply] {
        let options = options(None, true, app, 3_000);
        for seed in 0..seeds {
            let c = coverage_of(seed, &options);
            macro_rules! add {
                ($($f:ident),*) => { $(total.$f += c.$f;)* };
            }
            add!(
                steps,
                unknown_inputs,
                boots,
                restarts,
                amnesiac_restarts,
                boots_as_new,
                wipes,
                campaigns,
                wins,
                wins_with_values,
                votes,
                proposals,
                leader_commits,
                append_commits,
                learned,
                snapshots,
                messages,
                promises,
                promise_parts,
                renewals_past_own_vote,
                chosen
            );
        }
    }
    println!("coverage over {seeds} seeds of each application model: {total:#?}");
    assert_eq!(total.unknown_inputs, 0);
    for (path, n) in [
        ("boots", total.boots),
        ("restarts", total.restarts),
        ("campaigns", total.campaigns),
        ("wins", total.wins),
        ("wins with values", total.wins_with_values),
        ("votes", total.votes),
        ("proposals", total.proposals),
        ("leader commits", total.leader_commits),
        ("append commits", total.append_commits),
        ("learned", total.learned),
        ("snapshots", total.snapshots),
        ("promises", total.promises),
        ("promises in parts", total.promise_parts),
        ("chosen", total.chosen),
    ] {
        assert!(n > 0, "no {path}: {total:?}");
    }
}

/// A three-node cluster driven by hand through the simulator's nodes and
/// the same refinement hooks: for the bugs this branch's scenarios do not
/// reach (a driver that writes lazily, a storage wipe).
struct Cluster {
    nodes: Vec<Node<8>>,
    refinement: Refinement,
    /// Frames sent and the nodes they have not reached yet.
    wire: Vec<(usize, NodeSet, Rc<[u8]>)>,
    now: Instant,
}

impl Cluster {
    /// Node 0 is the initial leader; `buffers` are the persist buffers.
    fn new(bug: Option<Bug>, buffers: [usize; 3]) -> Result<Self, Violation> {
        let members = [NodeId(0), NodeId(1), NodeId(2)];
        let mut cluster = Cluster {
            nodes: Vec::new(),
            refinement: Refinement::new(3, 8, Some(0)),
            wire: Vec::new(),
            now: Instant::ZERO,
        };
        for (i, size) in buffers.into_iter().enumerate() {
            let config = Config::<MAX_NODES>::builder(members[i], &members)
                .initial_leader(NodeId(0))
                .inject(bug)
                .build()
                .unwrap();
            let mut node = Node::new(i, config.clone(), size);
            node.replica = Some(SimReplica::<8>::new(config, cluster.now).unwrap());
            cluster.nodes.push(node);
            cluster.drain(i, Input::Boot)?;
        }
        Ok(cluster)
    }

    /// The driver's drain after `input`, held to the spec.
    fn drain(&mut self, i: usize, input: Input) -> Result<(), Violation> {
        let mut out = Vec::new();
        self.nodes[i].drain(self.now, false, &mut out).unwrap();
        self.refinement.step(i, &self.nodes[i], input, &out)?;
        for o in out {
            if let Output::Frame { to, bytes } = o {
                self.wire.push((i, to, bytes));
            }
        }
        Ok(())
    }

    /// Node `i` syncs everything it wrote.
    fn sync(&mut self, i: usize) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        while let Some(token) = node.disk.start_sync() {
            if let Some(seq) = node.disk.complete_sync(token).unwrap() {
                node.synced(seq);
            }
        }
        // The drain confirms what the sync made durable.
        self.drain(i, Input::Synced)
    }

    fn propose(&mut self, i: usize, value: &str) -> Result<(), Violation> {
        let value = Value::try_from(value).unwrap();
        self.nodes[i]
            .replica
            .as_mut()
            .unwrap()
            .propose(self.now, value.clone())
            .unwrap();
        self.drain(i, Input::Propose(value))
    }

    /// Delivers every frame `from` sent to `to`; a lazy driver drains once
    /// after all of them (one step of several inputs), an eager one after
    /// each.
    fn deliver(&mut self, from: usize, to: usize, lazy: bool) -> Result<(), Violation> {
        let mut frames = Vec::new();
        for (sender, recipients, bytes) in &mut self.wire {
            if *sender == from && recipients.contains(NodeId(to as u8)) {
                let mut rest = NodeSet::new();
                recipients.iter().filter(|n| n.0 as usize != to).for_each(|n| {
                    rest.insert(n);
                });
                *recipients = rest;
                frames.push(bytes.clone());
            }
        }
        for frame in frames {
            let _ = self.nodes[to]
                .replica
                .as_mut()
                .unwrap()
                .handle_message(self.now, NodeId(from as u8), &frame);
            if !lazy {
                self.drain(to, Input::message(from, &frame))?;
            }
        }
        if lazy {
            self.drain(to, Input::Unknown)?;
        }
        Ok(())
    }

    /// Node `i` loses its storage and restarts from no records.
    fn wipe_and_recover(&mut self, i: usize) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        node.replica = None;
        node.disk = Default::default();
        self.refinement.crash(i, &self.nodes[i])?;
        let config = self.nodes[i].config.clone();
        self.nodes[i].replica = Some(SimReplica::<8>::recover(config, self.now, [], 0).unwrap());
        self.drain(i, Input::Restart { applied: 0 })
    }
}

/// A value of the largest size a client uses.
fn big(c: char) -> String {
    core::iter::repeat_n(c, 16).collect()
}

/// Node 0 leads round 0 and decides `v1` at slot 0 with node 2; node 1, a
/// lazy driver with a `buffer`-byte persist buffer, then gets the append
/// of `v1` and the next one (`v2`, commit 1) before it writes anything:
/// its next drain holds two runs with a watermark between them.
fn lazy_follower_script(bug: Option<Bug>, buffer: usize) -> Result<(), Violation> {
    let mut c = Cluster::new(bug, [4096, buffer, 4096])?;
    c.sync(0)?;
    c.propose(0, &big('a'))?;
    c.sync(0)?;
    c.deliver(0, 2, false)?;
    c.sync(2)?;
    c.deliver(2, 0, false)?;
    c.propose(0, &big('b'))?;
    c.sync(0)?;
    c.deliver(0, 1, true)?;
    c.sync(1)?;
    c.deliver(1, 0, false)
}

/// The fixed writer: at every buffer size the lazy follower's batches
/// hold whole records and every step refines the spec. With the old one
/// (`TornRecord`), some size ends a batch inside a run header, and the
/// check fails at the drain that writes it, before any sync or restart.
#[test]
fn scripted_torn_record() {
    let sizes = SimReplica::<8>::MIN_PERSIST_BUFFER..SimReplica::<8>::MIN_PERSIST_BUFFER + 64;
    for size in sizes.clone() {
        lazy_follower_script(None, size).unwrap_or_else(|v| panic!("buffer {size}: {v}"));
    }
    let torn: Vec<(usize, Violation)> = sizes
        .filter_map(|size| {
            lazy_follower_script(Some(Bug::TornRecord), size)
                .err()
                .map(|v| (size, v))
        })
        .collect();
    let (size, first) = torn.first().expect("some buffer size tears a record");
    println!("TornRecord: buffer {size}: {first}");
    assert!(torn.iter().all(|(_, v)| v.rule == rules::BATCH), "{torn:?}");
}

/// Node 0 (the initial leader) decides `X` with node 1, then loses its
/// storage and restarts from no records. Fixed: an amnesiac learner.
/// With `AmnesiacVotes` it boots as new, leading round 0 again after it
/// revealed votes under it: the check fails at that restart.
#[test]
fn scripted_amnesiac_votes() {
    let script = |bug| -> Result<(), Violation> {
        let mut c = Cluster::new(bug, [4096; 3])?;
        c.sync(0)?;
        c.propose(0, "X")?;
        c.sync(0)?;
        c.deliver(0, 1, false)?;
        c.sync(1)?;
        c.deliver(1, 0, false)?;
        assert_eq!(c.nodes[0].replica.as_ref().unwrap().decided(), 1);
        c.wipe_and_recover(0)?;
        assert!(c.nodes[0].replica.as_ref().unwrap().is_amnesiac());
        Ok(())
    };
    script(None).unwrap();
    let v = script(Some(Bug::AmnesiacVotes)).expect_err("the amnesiac's first boot is caught");
    println!("AmnesiacVotes: {v}");
    assert_eq!(v.rule, rules::BOOT_AS_NEW, "{v}");
}

impl Cluster {
    /// A driver that writes one batch at a time and syncs it before the
    /// next (one I/O in flight): a step per batch. Returns whether it
    /// wrote one; the step's frames are left in `sent`, checked or not.
    fn write_one_batch(
        &mut self,
        i: usize,
        size: usize,
        input: Input,
        sent: &mut Vec<Rc<[u8]>>,
    ) -> Result<bool, Violation> {
        sent.clear();
        let now = self.now;
        let node = &mut self.nodes[i];
        let replica = node.replica.as_mut().unwrap();
        let mut buf = vec![0u8; size];
        let Some(p) = replica.poll_persist(&mut buf) else {
            return Ok(false);
        };
        node.disk.write(p.seq, &buf[..p.len]);
        node.batches += 1;
        let token = node.disk.start_sync().unwrap();
        if let Some(seq) = node.disk.complete_sync(token).unwrap() {
            replica.persisted(now, seq).unwrap();
        }
        let mut out = Vec::new();
        let mut frame = vec![0u8; SimReplica::<8>::MAX_MESSAGE_SIZE];
        while let Some(t) = replica.poll_transmit(&mut frame) {
            out.push(Output::Frame {
                to: t.to,
                bytes: Rc::from(&frame[..t.len]),
            });
        }
        while replica.poll_event().is_some() {}
        sent.extend(out.iter().filter_map(|o| match o {
            Output::Frame { bytes, .. } => Some(bytes.clone()),
            Output::Event(_) => None,
        }));
        self.refinement.step(i, &self.nodes[i], input, &out)?;
        for o in out {
            if let Output::Frame { to, bytes } = o {
                self.wire.push((i, to, bytes));
            }
        }
        Ok(true)
    }

    /// Delivers every frame `from` sent to `to` without draining.
    fn hand(&mut self, from: usize, to: usize) {
        let mut frames = Vec::new();
        for (sender, recipients, bytes) in &mut self.wire {
            if *sender == from && recipients.contains(NodeId(to as u8)) {
                let mut rest = NodeSet::new();
                recipients.iter().filter(|n| n.0 as usize != to).for_each(|n| {
                    rest.insert(n);
                });
                *recipients = rest;
                frames.push(bytes.clone());
            }
        }
        for frame in frames {
            let _ = self.nodes[to]
                .replica
                .as_mut()
                .unwrap()
                .handle_message(self.now, NodeId(from as u8), &frame);
        }
    }

    /// Whether node `i`'s durable batches, read as raw records, back a
    /// vote for `slot`: a durable vote record for it, or a durable
    /// watermark or snapshot record above it. Independent of the
    /// refinement check's replay: the test's own view of what the fault
    /// is.
    fn durably_backs(&self, i: usize, slot: u64) -> bool {
        self.nodes[i].disk.synced.iter().any(|batch| {
            parse_batch(batch).unwrap().iter().any(|r| match r {
                Rec::Accepted { first, values, .. } => (*first..*first + values.len() as u64).contains(&slot),
                Rec::Committed(s) | Rec::Snapshot(s) => slot < *s,
                _ => false,
            })
        })
    }
}

/// What node 1 holds queued — records not yet written — when the
/// application installs a snapshot at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Queued {
    /// Values node 0 first gets decided with node 2 alone; node 1 gets
    /// their appends too, and the append after them carries the
    /// watermark over them (a `Committed` record queued among the votes).
    decided: usize,
    /// Values node 0 proposes next: votes only.
    votes: usize,
    /// The snapshot's slot: it clears node 1's cells below it.
    snapshot: u64,
}

impl Queued {
    /// Fault E's shape: the append of slot 0, then slots 1..5 with commit
    /// 1, then a snapshot to slot 3 (a watermark queued over cleared
    /// votes).
    const WATERMARK_OVER_CLEARED: Queued = Queued {
        decided: 1,
        votes: 4,
        snapshot: 3,
    };
    /// Fault H's shape (as in `paxos-core/tests/persist_batches.rs`):
    /// votes for slots 0..3, no watermark, then a snapshot to slot 1 that
    /// clears only the first: its record writes nothing, the others' do.
    const VOTES_PARTLY_CLEARED: Queued = Queued {
        decided: 0,
        votes: 3,
        snapshot: 1,
    };

    /// Every shape the tests below sweep: no value or one value decided
    /// first, one to four votes after, and every snapshot slot from the
    /// first to one past the last vote.
    fn all() -> Vec<Queued> {
        let mut shapes = Vec::new();
        for decided in 0..=1 {
            for votes in 1..=4 {
                for snapshot in 1..=(decided + votes) as u64 + 1 {
                    shapes.push(Queued {
                        decided,
                        votes,
                        snapshot,
                    });
                }
            }
        }
        shapes
    }
}

/// The run of a snapshot with votes pending, and what it showed.
struct PendingRun {
    cluster: Cluster,
    /// The refinement check's verdict.
    result: Result<(), Violation>,
    /// Node 1's batches written (one per step after the snapshot).
    batches: usize,
    /// The first `Accepted` node 1 sent covering a slot the snapshot
    /// cleared while its durable records backed no vote there: the batch
    /// after which it left, the slot, and the frame's range.
    early: Option<(usize, u64, String)>,
}

/// Node 1, a driver that writes one batch at a time through a
/// `size`-byte buffer, gets node 0's appends (`queued`) and installs a
/// snapshot before writing anything: the snapshot clears cells whose
/// `Entries` records are still queued, so those records write nothing,
/// while the records queued around them (the other votes, a watermark)
/// are written. Every batch is synced and confirmed before the next is
/// written, so any buffer that ends a batch between the cleared records
/// and the `Snapshot` record makes that state durable — and confirms the
/// cleared records' sequence numbers.
fn snapshot_with_votes_pending(queued: Queued, size: usize, bug: Option<Bug>) -> PendingRun {
    let mut c = Cluster::new(bug, [4096, size, 4096]).unwrap();
    let mut batches = 0;
    let mut early = None;
    let result = (|| {
        c.sync(0)?;
        let mut values = ('a'..='z').map(big);
        if queued.decided > 0 {
            for v in values.by_ref().take(queued.decided) {
                c.propose(0, &v)?;
            }
            c.sync(0)?;
            c.deliver(0, 2, false)?;
            c.sync(2)?;
            c.deliver(2, 0, false)?;
        }
        for v in values.by_ref().take(queued.votes) {
            c.propose(0, &v)?;
        }
        c.sync(0)?;
        c.hand(0, 1);
        c.nodes[1]
            .replica
            .as_mut()
            .unwrap()
            .install_snapshot(c.now, queued.snapshot)
            .unwrap();
        // The first step folds the appends and the snapshot in: not noted.
        let mut input = Input::Unknown;
        let mut sent = Vec::new();
        loop {
            let input = core::mem::replace(&mut input, Input::Synced);
            let step = c.write_one_batch(1, size, input, &mut sent);
            if let Ok(false) = step {
                return Ok(());
            }
            batches += 1;
            // The step's frames, whether the check passed it or not.
            for frame in &sent {
                if let Ok(Msg::Accepted { first, count, .. }) = Msg::parse(frame) {
                    for slot in (first..first + u64::from(count)).filter(|s| *s < queued.snapshot) {
                        if early.is_none() && !c.durably_backs(1, slot) {
                            early = Some((batches, slot, format!("{first}+{count}")));
                        }
                    }
                }
            }
            step?;
        }
    })();
    PendingRun {
        cluster: c,
        result,
        batches,
        early,
    }
}

/// A fault the specification's model checker found (`spec/Replica.tla`,
/// `SnapshotDropsPendingVotes`), now fixed and injected back here: a
/// snapshot installed while vote records are queued left a durable
/// watermark over a slot with no durable value until the `Snapshot` record
/// was durable too (`DecidedKnown` on disk); a crash then left records
/// that `recover` refuses. A driver that writes one batch at a time
/// reaches it, and the check fails at the sync that makes that batch
/// durable.
#[test]
fn scripted_snapshot_drops_pending_votes() {
    let mut caught = 0;
    for size in persist_buffers() {
        let run = snapshot_with_votes_pending(
            Queued::WATERMARK_OVER_CLEARED,
            size,
            Some(Bug::SnapshotDropsPendingVotes),
        );
        let Err(v) = run.result else { continue };
        assert_eq!(v.rule, rules::DECIDED_KNOWN, "buffer {size}: {v}");
        let node = &run.cluster.nodes[1];
        let restarted = SimReplica::<8>::recover(
            node.config.clone(),
            run.cluster.now,
            node.disk.synced.iter().map(Vec::as_slice),
            0,
        );
        assert!(restarted.is_err(), "buffer {size}: the records recover");
        if caught == 0 {
            println!("buffer {size}: {v}; recover: {:?}", restarted.err());
        }
        caught += 1;
    }
    assert!(caught > 0, "no buffer size reaches the fault");
}

/// The persist buffers the scripted snapshot runs sweep: 64 sizes from
/// the smallest a replica accepts.
fn persist_buffers() -> core::ops::Range<usize> {
    SimReplica::<8>::MIN_PERSIST_BUFFER..SimReplica::<8>::MIN_PERSIST_BUFFER + 64
}

/// Fault H (docs/safety.md), E's other half, injected back
/// (`Bug::VoteLeavesBeforeSnapshot`): the votes whose records the
/// snapshot emptied wait only for those (empty) records, so a batch that
/// ends between them and the `Snapshot` record releases the `Accepted`
/// with nothing durable behind the cleared slot. The check must fail on
/// persist before reveal (vote) at every buffer size and shape where that
/// happens — where an `Accepted` covering a cleared slot leaves while
/// node 1's durable records, read raw, back no vote there — at the step
/// that sends it, and nowhere else; without the bug no size of any shape
/// reveals such a vote.
#[test]
fn scripted_vote_leaves_before_snapshot() {
    let mut arises = Vec::new();
    for queued in Queued::all() {
        let mut sizes = Vec::new();
        for size in persist_buffers() {
            let fixed = snapshot_with_votes_pending(queued, size, None);
            if let Err(v) = fixed.result {
                panic!("{queued:?}, buffer {size}, fixed: {v}");
            }
            assert_eq!(fixed.early, None, "{queued:?}, buffer {size}, fixed");
            let run = snapshot_with_votes_pending(queued, size, Some(Bug::VoteLeavesBeforeSnapshot));
            match (&run.early, &run.result) {
                (None, Ok(())) => {}
                (Some((batch, slot, accepted)), Err(v)) => {
                    assert_eq!(v.rule, rules::PBR_VOTE, "{queued:?}, buffer {size}: {v}");
                    assert_eq!(
                        *batch, run.batches,
                        "{queued:?}, buffer {size}: Accepted {accepted} (slot {slot}) left after batch {batch}; the check failed after batch {}: {v}",
                        run.batches
                    );
                    if sizes.is_empty() {
                        println!(
                            "VoteLeavesBeforeSnapshot, {queued:?}, buffer {size}: Accepted {accepted} after batch {batch}, slot {slot} backed by nothing durable: {v}"
                        );
                    }
                    sizes.push(size);
                }
                (Some((batch, slot, accepted)), Ok(())) => panic!(
                    "{queued:?}, buffer {size}: Accepted {accepted} left after batch {batch} with nothing durable behind slot {slot}, and the check passed"
                ),
                (None, Err(v)) => panic!("{queued:?}, buffer {size}: no vote left too soon, yet: {v}"),
            }
        }
        println!(
            "VoteLeavesBeforeSnapshot, {queued:?}: caught at {} buffer sizes: {sizes:?}",
            sizes.len()
        );
        arises.push((queued, sizes));
    }
    let reached = arises.iter().filter(|(_, sizes)| !sizes.is_empty()).count();
    let runs: usize = arises.iter().map(|(_, sizes)| sizes.len()).sum();
    println!(
        "VoteLeavesBeforeSnapshot: {reached} of {} shapes reach the fault, at {runs} (shape, buffer) pairs of {}; caught at every one",
        arises.len(),
        arises.len() * persist_buffers().len()
    );
    // The shape of the core-level test reaches it (the fault is not
    // vacuous here).
    assert!(
        arises
            .iter()
            .any(|(q, sizes)| *q == Queued::VOTES_PARTLY_CLEARED && !sizes.is_empty()),
        "{arises:?}"
    );
}

/// The fixes of `SnapshotDropsPendingVotes` and `VoteLeavesBeforeSnapshot`:
/// the watermark queued over the cleared cells becomes the snapshot record
/// and the waiting votes wait for it, so every shape at every buffer size
/// refines and the records recover.
#[test]
fn snapshot_with_votes_pending_refines() {
    for queued in Queued::all() {
        for size in persist_buffers() {
            let run = snapshot_with_votes_pending(queued, size, None);
            if let Err(v) = run.result {
                panic!("{queued:?}, buffer {size}: {v}");
            }
            let node = &run.cluster.nodes[1];
            SimReplica::<8>::recover(
                node.config.clone(),
                run.cluster.now,
                node.disk.synced.iter().map(Vec::as_slice),
                0,
            )
            .unwrap_or_else(|e| panic!("{queued:?}, buffer {size}: {e:?}"));
        }
    }
}
