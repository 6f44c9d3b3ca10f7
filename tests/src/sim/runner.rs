//! Running seeds: one (for a replay) or many in parallel, with a
//! failure that names its seed and the one command that replays it.

use super::invariants::Violation;
use super::node::SimReplica;
use super::options::{env_u64, DeepLoad, Options, Scenario};
use super::simulation::Simulation;
use super::stats::{Stats, Summary};
use super::SimRng;
use core::fmt;
use core::panic::AssertUnwindSafe;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// A seed that broke an invariant (or panicked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The rule broken, or `panic`.
    pub rule: String,
    /// What happened.
    pub detail: String,
    /// The command that replays it.
    pub replay: String,
    /// The steps the run took until the failure (0 for a panic).
    pub steps: u64,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} failed: {}: {}\n  replay: {}",
            self.seed, self.rule, self.detail, self.replay
        )
    }
}

fn min_persist_buffer(window: usize) -> usize {
    match window {
        4 => SimReplica::<4>::MIN_PERSIST_BUFFER,
        8 => SimReplica::<8>::MIN_PERSIST_BUFFER,
        16 => SimReplica::<16>::MIN_PERSIST_BUFFER,
        _ => SimReplica::<{ DeepLoad::WINDOW }>::MIN_PERSIST_BUFFER,
    }
}

/// Seeds the generator of the widenings drawn beside the scenario
/// ([`Scenario::draw_widenings`]) with `seed ^ WIDENINGS_STREAM`.
const WIDENINGS_STREAM: u64 = 0x0005_eed0_f97a_2a02;

/// The scenario `seed` draws, and the generator positioned after it. The
/// one-node and deep-pipeline widenings are drawn, not applied: see
/// [`Options::shape`].
pub fn scenario_for(seed: u64) -> (Scenario, SimRng) {
    let mut rng = SimRng::new(seed);
    let mut scenario = Scenario::draw(&mut rng, min_persist_buffer);
    scenario.draw_widenings(&mut SimRng::new(seed ^ WIDENINGS_STREAM));
    (scenario, rng)
}

fn simulate<const W: usize>(seed: u64, options: &Options, scenario: Scenario, rng: SimRng) -> Result<Stats, Violation> {
    Simulation::<W>::new(seed, options.clone(), scenario, rng)?.run()
}

/// Runs `seed` to the end without catching panics.
pub fn simulate_seed(seed: u64, options: &Options) -> Result<Stats, Violation> {
    let (mut scenario, rng) = scenario_for(seed);
    options.shape(&mut scenario);
    match scenario.window {
        4 => simulate::<4>(seed, options, scenario, rng),
        8 => simulate::<8>(seed, options, scenario, rng),
        16 => simulate::<16>(seed, options, scenario, rng),
        _ => simulate::<{ DeepLoad::WINDOW }>(seed, options, scenario, rng),
    }
}

/// Runs `seed`; a broken invariant or a panic becomes a [`Failure`].
pub fn run_seed(seed: u64, options: &Options) -> Result<Stats, Failure> {
    let failure = |rule: String, detail: String, steps: u64| Failure {
        seed,
        rule,
        detail,
        replay: options.replay_command(seed),
        steps,
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| simulate_seed(seed, options))) {
        Ok(Ok(stats)) => Ok(stats),
        Ok(Err(v)) => Err(failure(v.rule.into(), v.detail, v.step)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "a panic".into());
            Err(failure("panic".into(), message, 0))
        }
    }
}

/// Runs seeds `first..first + count` on `threads` threads (stopping soon
/// after the first failure). Returns the totals and the failures, by seed.
pub fn run_seeds(first: u64, count: u64, options: &Options, threads: usize) -> (Summary, Vec<Failure>) {
    let next = AtomicU64::new(first);
    let end = first.saturating_add(count);
    let stop = AtomicBool::new(false);
    let summary = Mutex::new(Summary::default());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut local = Summary::default();
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    match run_seed(seed, options) {
                        Ok(stats) => local.add(&stats),
                        Err(f) => {
                            stop.store(true, Ordering::Relaxed);
                            failures.lock().unwrap_or_else(|e| e.into_inner()).push(f);
                        }
                    }
                }
                summary.lock().unwrap_or_else(|e| e.into_inner()).merge(&local);
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|f| f.seed);
    (summary.into_inner().unwrap_or_else(|e| e.into_inner()), failures)
}

/// Threads to use: `SIM_THREADS`, or every core.
pub fn threads_from_env() -> usize {
    env_u64("SIM_THREADS")
        .map(|t| t as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// What [`search`] found.
#[derive(Clone, Debug, Default)]
pub struct Search {
    /// The lowest seed whose failure the search wanted, if any.
    pub found: Option<Failure>,
    /// Seeds run up to and including the one found (every seed, if none).
    pub seeds: u64,
    /// Steps those seeds took (a failing run counts its steps until the
    /// failure).
    pub steps: u64,
    /// Failures of those seeds that the search did not want, by seed.
    pub others: Vec<Failure>,
}

/// Runs seeds `first..first + count` on `threads` threads until one fails
/// in a way `wanted` accepts; the answer is the lowest such seed (the same
/// for any number of threads), with the seeds and steps it took to get
/// there. Other failures are collected and the search goes on.
pub fn search(
    first: u64,
    count: u64,
    options: &Options,
    threads: usize,
    wanted: impl Fn(&Failure) -> bool + Sync,
) -> Search {
    let next = AtomicU64::new(first);
    let end = first.saturating_add(count);
    // The lowest wanted seed so far: seeds above it need not run.
    let best = AtomicU64::new(u64::MAX);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end || seed > best.load(Ordering::Relaxed) {
                    break;
                }
                let result = run_seed(seed, options);
                if let Err(f) = &result {
                    if wanted(f) {
                        best.fetch_min(seed, Ordering::Relaxed);
                    }
                }
                results.lock().unwrap_or_else(|e| e.into_inner()).push((seed, result));
            });
        }
    });
    let best = best.into_inner();
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.retain(|(seed, _)| *seed <= best);
    results.sort_by_key(|(seed, _)| *seed);
    let mut out = Search::default();
    for (seed, result) in results {
        out.seeds += 1;
        match result {
            Ok(stats) => out.steps += stats.steps,
            Err(f) => {
                out.steps += f.steps;
                if seed == best {
                    out.found = Some(f);
                } else {
                    out.others.push(f);
                }
            }
        }
    }
    out
}
