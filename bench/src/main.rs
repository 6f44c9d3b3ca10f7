//! `paxos-bench`: this library, raft-rs and omnipaxos side by side, one
//! thread, in-memory storage, every message through each library's codec.
//!
//! Usage:
//!
//! - `paxos-bench [LIB] [MODE] [COMMITS]`: commits/s (median of 5),
//!   messages, bytes and allocations per commit. LIB is `ours` (inline
//!   `Bytes` values), `ours-payload` (`paxos_std::Payload` values),
//!   `omnipaxos` (`omni`), `raft-rs` (`raft`) or `all` (each mode's own
//!   list: the peers and the forms of ours it reports); MODE is `w1` (one
//!   proposal in flight), `w256` (256 in flight, batched), `n5` (five
//!   nodes), `v4k` (4 KiB values, 256 in flight), `v64c4k` (64-byte
//!   values, capacity 4 KiB, 256 in flight), `mixed` (16 B – 4 KiB,
//!   log-uniform, 256 in flight) or `all`; COMMITS defaults to 200 000.
//!   Either of LIB and MODE may be left out.
//! - `paxos-bench count LIB MODE COMMITS`: one run, nothing else; what
//!   the report runs under valgrind.
//! - `paxos-bench breakdown MODE`: where the instructions go in one
//!   mode, under callgrind, as the report's section for it.
//! - `paxos-bench report [--quick]`: everything, including instructions
//!   per commit under valgrind, written to `docs/benchmarks.md`,
//!   `docs/benchmarks.svg` and the README's Benchmarks section (run it from
//!   the repository root: `bash bench/report.sh`).

use paxos_bench::{alloc_count, report, Lib, Mode, MODES};
use std::process::ExitCode;

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

fn main() -> ExitCode {
    // Replicas with 4 KiB values and a 512-slot window are megabytes: give
    // the benchmark a stack that holds them while they are built.
    let worker = std::thread::Builder::new().stack_size(1 << 30).spawn(cli);
    match worker.map(|w| w.join()) {
        Ok(Ok(code)) => code,
        _ => ExitCode::FAILURE,
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("{problem}");
    eprintln!(
        "usage: paxos-bench [ours|ours-payload|omnipaxos|raft-rs|all] [w1|w256|n5|v4k|v64c4k|mixed|all] [COMMITS]"
    );
    eprintln!("       paxos-bench count LIB MODE COMMITS");
    eprintln!("       paxos-bench breakdown MODE");
    eprintln!("       paxos-bench report [--quick]");
    ExitCode::from(2)
}

fn cli() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.first() {
        Some(&"report") => {
            let quick = args.get(1) == Some(&"--quick");
            match report::write_all(quick) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("report failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(&"breakdown") => {
            let Some(mode) = args.get(1).and_then(|s| Mode::parse(s)) else {
                return usage("breakdown needs a MODE");
            };
            match report::breakdown_section(mode) {
                Ok(section) => {
                    print!("{section}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("breakdown failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(&"count") => {
            let (Some(lib), Some(mode), Some(Ok(commits))) = (
                args.get(1).and_then(|s| Lib::parse(s)),
                args.get(2).and_then(|s| Mode::parse(s)),
                args.get(3).map(|s| s.parse::<u64>()),
            ) else {
                return usage("count needs LIB MODE COMMITS");
            };
            match paxos_bench::run(lib, mode, commits) {
                Ok(t) => {
                    println!("{} {} {} {} {}", lib.name(), mode.name, t.commits, t.messages, t.bytes);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e}", lib.name());
                    ExitCode::FAILURE
                }
            }
        }
        _ => table(&args),
    }
}

/// `[LIB] [MODE] [COMMITS]`, each optional, in that order.
fn table(mut args: &[&str]) -> ExitCode {
    // `None`: each mode's own list.
    let mut only = None;
    let mut modes = MODES.to_vec();
    let mut commits = 200_000u64;
    if let Some(lib) = args.first().and_then(|s| Lib::parse(s)) {
        only = Some(lib);
        args = &args[1..];
    } else if args.first() == Some(&"all") {
        args = &args[1..];
    }
    if let Some(mode) = args.first().and_then(|s| Mode::parse(s)) {
        modes = vec![mode];
        args = &args[1..];
    } else if args.first() == Some(&"all") {
        args = &args[1..];
    }
    if let Some(arg) = args.first() {
        match arg.parse() {
            Ok(n) if n > 0 => commits = n,
            _ => return usage(&format!("not a library, mode or commit count: {arg}")),
        }
    }
    println!("| lib | mode | commits/s (median of 5; min-max) | msgs/commit | bytes/commit | allocs/commit | alloc bytes/commit |");
    println!("|---|---|---|---|---|---|---|");
    for mode in modes {
        let libs: Vec<Lib> = match only {
            Some(lib) => vec![lib],
            None => mode.libs().collect(),
        };
        for lib in libs {
            match report::measure_wall(lib, mode, commits) {
                Ok(w) => println!(
                    "| {} | {} | {:.0} ({:.0}-{:.0}) | {:.2} | {:.1} | {:.3} | {:.1} |",
                    lib.label(mode),
                    mode.name,
                    w.rate.median,
                    w.rate.min,
                    w.rate.max,
                    w.messages,
                    w.bytes,
                    w.allocs,
                    w.alloc_bytes
                ),
                Err(e) => {
                    eprintln!("{} {}: {e}", lib.name(), mode.name);
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
