//! `paxos-bench`: commits per second, messages and bytes per commit, and
//! allocations per commit for an in-memory cluster, one thread, every
//! message through the real codec.
//!
//! Usage: `paxos-bench [MODE] [COMMITS]` with MODE one of `w1`, `w256`,
//! `n5`, `v4k` (default: all, 200 000 commits each). Instructions per
//! commit come from running one mode twice under valgrind:
//! `bench/instructions.sh`.

mod alloc_count;
mod ours;

use std::time::Instant;

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

/// A benchmark configuration.
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    /// Its name on the command line.
    pub name: &'static str,
    /// Cluster size.
    pub nodes: usize,
    /// Proposals kept in flight.
    pub window: usize,
    /// Value size in bytes.
    pub value: usize,
}

/// What one run counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    /// Proposals decided at the leader.
    pub commits: u64,
    /// Messages delivered (one per recipient).
    pub messages: u64,
    /// Encoded bytes delivered.
    pub bytes: u64,
}

const MODES: [Mode; 4] = [
    Mode {
        name: "w1",
        nodes: 3,
        window: 1,
        value: 64,
    },
    Mode {
        name: "w256",
        nodes: 3,
        window: 256,
        value: 64,
    },
    Mode {
        name: "n5",
        nodes: 5,
        window: 1,
        value: 64,
    },
    Mode {
        name: "v4k",
        nodes: 3,
        window: 256,
        value: 4096,
    },
];

fn run(mode: Mode, commits: u64) -> Totals {
    match mode.name {
        "w1" => ours::run::<64, 3, 256>(mode, commits),
        "w256" => ours::run::<64, 3, 512>(mode, commits),
        "n5" => ours::run::<64, 5, 256>(mode, commits),
        _ => ours::run::<4096, 3, 512>(mode, commits),
    }
}

fn main() {
    // Replicas with 4 KiB values and a 512-slot window are megabytes: give
    // the benchmark a stack that holds them while they are built.
    let worker = std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(bench)
        .expect("spawn the benchmark thread");
    if worker.join().is_err() {
        std::process::exit(1);
    }
}

fn bench() {
    let args: Vec<String> = std::env::args().collect();
    let selected: Vec<Mode> = match args.get(1).map(String::as_str) {
        None | Some("all") => MODES.to_vec(),
        Some(name) => match MODES.iter().find(|m| m.name == name) {
            Some(m) => vec![*m],
            None => {
                eprintln!("unknown mode {name}: use one of w1, w256, n5, v4k, all");
                std::process::exit(2);
            }
        },
    };
    let commits: u64 = match args.get(2).map(|s| s.parse()) {
        None => 200_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("COMMITS must be a positive integer");
            std::process::exit(2);
        }
    };
    println!("| mode | commits/s (median of 5; min-max) | msgs/commit | bytes/commit | allocs/commit |");
    println!("|---|---|---|---|---|");
    for mode in selected {
        // Warm up, then count allocations over a separate run.
        run(mode, commits / 10 + 1);
        let mut rates = Vec::new();
        let mut last = Totals::default();
        let mut allocs = 0u64;
        for _ in 0..5 {
            let (a0, _) = alloc_count::snapshot();
            let start = Instant::now();
            last = run(mode, commits);
            let secs = start.elapsed().as_secs_f64();
            let (a1, _) = alloc_count::snapshot();
            allocs = a1 - a0;
            rates.push(last.commits as f64 / secs);
        }
        rates.sort_by(f64::total_cmp);
        let c = last.commits as f64;
        println!(
            "| {} | {:.0} ({:.0}-{:.0}) | {:.2} | {:.1} | {:.4} (set-up included) |",
            mode.name,
            rates[2],
            rates[0],
            rates[4],
            last.messages as f64 / c,
            last.bytes as f64 / c,
            allocs as f64 / c,
        );
    }
}
