//! The refinement check (`paxos_tests::refinement`): the simulator's runs
//! held, step by step, to the next-state relation of `spec/Replica.tla`.
//!
//! - the CI seeds run with it on: `seeds` in `tests/simulation.rs` (on by
//!   default; `SIM_REFINEMENT=0` turns it off) asserts every step was
//!   held to the spec; `on_apply_seeds` here adds the application model
//!   that reaches restarts from no records;
//! - one test per injected bug (`paxos_core::replica::Bug`): the check
//!   fails, with a refinement rule, at the first wrong step;
//! - `bug_table` (ignored) prints, per bug, the step and rule where the
//!   refinement check fails and where the simulator's own invariants fail
//!   with it off, on the same seed.

use paxos_core::replica::Bug;
use paxos_tests::sim::options::env_u64;
use paxos_tests::sim::{run_seed, run_seeds, threads_from_env, AppDurability, Failure, Options};

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
fn caught(bug: Bug, app: AppDurability, seeds: u64) -> Failure {
    let failure = first_failure(&options(Some(bug), true, app, 2_000), seeds)
        .unwrap_or_else(|| panic!("{bug:?}: no seed of {seeds} failed"));
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

#[test]
fn catches_leader_learns() {
    caught(Bug::LeaderLearns, AppDurability::Checkpoint, 200);
}

#[test]
fn catches_torn_record() {
    caught(Bug::TornRecord, AppDurability::Checkpoint, 200);
}

#[test]
fn catches_unrecorded_learn_watermark() {
    caught(Bug::UnrecordedLearnWatermark, AppDurability::Checkpoint, 200);
}

#[test]
fn catches_amnesiac_votes() {
    caught(Bug::AmnesiacVotes, AppDurability::OnApply, 300);
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
