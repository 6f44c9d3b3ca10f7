//! Running a stateright checker over a model and reading its verdict:
//! how to search ([`Search`]), what was explored (printed), which
//! always-properties failed ([`violations`]) and whether the
//! sometimes-properties were reached ([`assert_checked`]), and bug hunts
//! that stop at the first counterexample ([`counterexamples`]).
//!
//! The environment tunes a run: `MODEL_FULL=1` the large configurations,
//! `MODEL_THREADS` the checker's threads, `MODEL_REPORT` progress while it
//! runs, `MODEL_BUG_STEPS` and `MODEL_BUG_DFS` a hunt's search.

use stateright::report::WriteReporter;
use stateright::{Checker, Expectation, HasDiscoveries, Model};
use std::fmt;
use std::time::Instant;

/// Whether to run the large configurations (`MODEL_FULL=1`).
pub fn full() -> bool {
    std::env::var("MODEL_FULL").is_ok_and(|v| v == "1")
}

/// A numeric override from the environment (for exploring bounds).
pub fn env_or<T: core::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A step bound; 0 means none (every reachable state).
pub fn bound(steps: usize) -> Option<usize> {
    (steps > 0).then_some(steps)
}

/// Checker threads: every core, or `MODEL_THREADS`.
pub fn threads() -> usize {
    env_or(
        "MODEL_THREADS",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    )
}

/// How to explore a model.
#[derive(Clone, Copy, Debug)]
pub enum Search {
    /// Breadth first over every state reachable in at most this many steps
    /// (`None`: every reachable state).
    Bfs(Option<usize>),
    /// Depth first, no deeper than `steps` steps, until the wanted
    /// discoveries are made or `states` states were generated.
    Dfs {
        /// The most states generated.
        states: usize,
        /// The deepest path, in steps.
        steps: usize,
    },
}

/// A depth-first hunt within `steps` steps (capped at five million states).
pub fn dfs(steps: usize) -> Search {
    Search::Dfs {
        states: 5_000_000,
        steps,
    }
}

/// Runs a checker and prints what it explored. `MODEL_REPORT` prints
/// progress while it runs.
pub fn run<M>(name: &str, model: M, search: Search, finish_when: HasDiscoveries) -> Box<dyn Checker<M>>
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + fmt::Debug + core::hash::Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + fmt::Debug + PartialEq + Send + Sync,
{
    let started = Instant::now();
    let builder = model.checker().threads(threads()).finish_when(finish_when);
    let checker = match search {
        // stateright counts the initial state as depth 1 and checks the
        // states below its target depth.
        Search::Bfs(Some(steps)) => builder.target_max_depth(steps + 2).spawn_bfs(),
        Search::Bfs(None) => builder.spawn_bfs(),
        Search::Dfs { states, steps } => {
            let checker = builder
                .target_state_count(states)
                .target_max_depth(steps + 2)
                .spawn_dfs();
            let checker: Box<dyn Checker<M>> = Box::new(wait(checker));
            report(name, &*checker, search, started);
            return checker;
        }
    };
    let checker: Box<dyn Checker<M>> = Box::new(wait(checker));
    report(name, &*checker, search, started);
    checker
}

fn wait<M, C>(checker: C) -> C
where
    M: Model,
    M::State: Clone + fmt::Debug + core::hash::Hash + PartialEq + Send + Sync,
    M::Action: Clone + fmt::Debug + PartialEq,
    C: Checker<M> + Send + Sync,
{
    if std::env::var("MODEL_REPORT").is_ok() {
        checker.join_and_report(&mut WriteReporter::new(&mut std::io::stderr()))
    } else {
        checker.join()
    }
}

fn report<M>(name: &str, checker: &dyn Checker<M>, search: Search, started: Instant)
where
    M: Model,
    M::State: Clone + fmt::Debug + PartialEq,
    M::Action: Clone + fmt::Debug + PartialEq,
{
    // A search that found a violation stops there, done or not.
    let stopped = !violations(checker).is_empty();
    let scope = match (search, checker.is_done()) {
        (Search::Bfs(_), _) if stopped => "breadth first until the first counterexample".to_string(),
        (Search::Bfs(Some(steps)), true) => format!("every state within {steps} steps"),
        (Search::Bfs(None), true) => "every reachable state".to_string(),
        (Search::Dfs { steps, .. }, _) => format!("depth first within {steps} steps, until the wanted discoveries"),
        (_, false) => "stopped early".to_string(),
    };
    eprintln!(
        "model {name}: {} unique states ({} generated), max depth {}, {:.1?}; {scope}",
        checker.unique_state_count(),
        checker.state_count(),
        checker.max_depth(),
        started.elapsed(),
    );
}

/// The always-properties a checker found violated, with their traces.
pub fn violations<M>(checker: &dyn Checker<M>) -> Vec<String>
where
    M: Model,
    M::State: Clone + fmt::Debug + PartialEq,
    M::Action: Clone + fmt::Debug + PartialEq,
{
    checker
        .model()
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always)
        .filter_map(|p| checker.discovery(p.name).map(|path| format!("{}: {path}", p.name)))
        .collect()
}

/// Asserts that no always-property was violated, and that every
/// sometimes-property was reached: with `MODEL_FULL=1` all of them, in CI
/// those named in `in_ci` (the CI bounds are shallower), so that no check
/// passes vacuously.
pub fn assert_checked<M>(checker: &dyn Checker<M>, in_ci: &[&str])
where
    M: Model,
    M::State: Clone + fmt::Debug + PartialEq,
    M::Action: Clone + fmt::Debug + PartialEq,
{
    let found = violations(checker);
    assert!(found.is_empty(), "{found:#?}");
    for p in checker.model().properties() {
        if p.expectation == Expectation::Sometimes {
            let reached = checker.discovery(p.name).is_some();
            eprintln!(
                "  sometimes \"{}\": {}",
                p.name,
                if reached { "reached" } else { "not reached" }
            );
            let required = full() || in_ci.contains(&p.name);
            assert!(
                reached || !required,
                "\"{}\" never happens: the check is vacuous",
                p.name
            );
        }
    }
}

/// Explores `model` as `search` says (`MODEL_BUG_STEPS` overrides its step
/// bound; `MODEL_BUG_DFS=N` makes it depth first over at most N states),
/// stopping at the first violation of a property named in `safety`;
/// returns the names of those violated and prints the first
/// counterexample.
pub fn counterexamples<M>(name: &str, model: M, search: Search, safety: &[&'static str]) -> Vec<&'static str>
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + fmt::Debug + core::hash::Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + fmt::Debug + PartialEq + Send + Sync,
{
    let wanted = HasDiscoveries::AnyOf(safety.iter().copied().collect());
    let steps = match search {
        Search::Bfs(steps) => steps.unwrap_or(0),
        Search::Dfs { steps, .. } => steps,
    };
    let steps = env_or("MODEL_BUG_STEPS", steps);
    let search = match (env_or("MODEL_BUG_DFS", 0), search) {
        (0, Search::Bfs(_)) => Search::Bfs(bound(steps)),
        (0, Search::Dfs { states, .. }) | (states, _) => Search::Dfs { states, steps },
    };
    let checker = run(name, model, search, wanted);
    let found: Vec<&'static str> = safety
        .iter()
        .copied()
        .filter(|p| checker.discovery(p).is_some())
        .collect();
    if let Some(path) = found.first().and_then(|p| checker.discovery(p)) {
        let actions = path.into_actions();
        eprintln!("  {name}: \"{}\" violated after {} steps:", found[0], actions.len());
        for action in &actions {
            eprintln!("    {}", checker.model().format_action(action));
        }
    }
    found
}
