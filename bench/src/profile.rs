//! Where the instructions go: callgrind over two run lengths of one
//! library in one mode, each function's own (exclusive) instructions
//! differenced and divided by the commits between the two, so set-up and
//! election cancel as they do in the instruction figures; then the
//! functions grouped by what they are (the library's own code, byte
//! copies, the allocator, the codec, ...). Code inlined into a function
//! counts as that function's.

use crate::{Lib, Mode};
use std::collections::HashMap;
use std::error::Error;
use std::process::Command;

/// What a function is, for the breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The consensus library's own code (`paxos_core`, `omnipaxos`,
    /// `raft`), with whatever it inlined.
    Library,
    /// `memcpy`/`memmove`: value and frame bytes copied.
    Copies,
    /// `malloc`, `free` and the benchmark's counting wrapper.
    Allocator,
    /// Value handles: `bytes::Bytes` and `paxos_std::Payload`.
    Handles,
    /// serde, postcard and protobuf.
    Codec,
    /// The harness (`paxos_bench`): the driving loop, the wire, the
    /// in-memory logs.
    Harness,
    /// Everything else (std collections, ...).
    Other,
}

impl Part {
    /// Every part, in table order.
    pub const ALL: [Part; 7] = [
        Part::Library,
        Part::Copies,
        Part::Allocator,
        Part::Handles,
        Part::Codec,
        Part::Harness,
        Part::Other,
    ];

    /// How the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Part::Library => "the library's own code",
            Part::Copies => "memcpy (value and frame bytes)",
            Part::Allocator => "allocator (malloc, free)",
            Part::Handles => "value handles (`bytes::Bytes`, `Payload`)",
            Part::Codec => "codec (serde, postcard, protobuf)",
            Part::Harness => "harness (drive loop, wire, logs)",
            Part::Other => "other (std collections, ...)",
        }
    }

    /// The part `function` (a demangled name) belongs to. Checked in
    /// this order: a serde impl inside the harness is codec, a `Payload`
    /// method inside the core is a handle's.
    pub fn of(function: &str) -> Part {
        let has = |s: &str| function.contains(s);
        if has("memcpy") || has("memmove") {
            Part::Copies
        } else if (!has("::") && LIBC_ALLOCATOR.iter().any(|s| has(s))) || RUST_ALLOCATOR.iter().any(|s| has(s)) {
            Part::Allocator
        } else if has("serde") || has("postcard") || has("protobuf") {
            Part::Codec
        } else if has("bytes::bytes::") || function.starts_with("bytes::") || has("paxos_std::payload") {
            Part::Handles
        } else if has("paxos_core") || has("omnipaxos") || has("raft") {
            Part::Library
        } else if has("paxos_bench") {
            Part::Harness
        } else {
            Part::Other
        }
    }
}

/// Pieces of the C library's allocator's function names (plain C names,
/// no `::`).
const LIBC_ALLOCATOR: [&str; 8] = [
    "malloc",
    "free",
    "_int_",
    "unlink_chunk",
    "alloc_perturb",
    "mprotect",
    "realloc",
    "consolidate",
];

/// Rust's allocation shims and the benchmark's counting allocator.
const RUST_ALLOCATOR: [&str; 4] = ["__rust_alloc", "__rust_dealloc", "__rust_no_alloc", "alloc_count"];

/// One library's instructions per commit in one mode, by part and by
/// function.
#[derive(Clone, Debug)]
pub struct Breakdown {
    /// The library.
    pub lib: Lib,
    /// The mode.
    pub mode: Mode,
    /// Every function's instructions per commit summed.
    pub total: f64,
    /// Instructions per commit of each part, in [`Part::ALL`] order.
    pub parts: Vec<(Part, f64)>,
    /// The costliest functions: `(instructions per commit, function)`.
    pub top: Vec<(f64, String)>,
}

impl Breakdown {
    /// Instructions per commit of `part`.
    pub fn part(&self, part: Part) -> f64 {
        self.parts.iter().find(|(p, _)| *p == part).map_or(0.0, |(_, x)| *x)
    }
}

/// Profiles `lib` in `mode` over `short` and `long` commits and keeps
/// the `top` costliest functions.
pub fn breakdown(lib: Lib, mode: Mode, short: u64, long: u64, top: usize) -> Result<Breakdown, Box<dyn Error>> {
    let a = self_costs(lib, mode, short)?;
    let b = self_costs(lib, mode, long)?;
    let span = (long - short) as f64;
    let mut per: Vec<(f64, String)> = b
        .into_iter()
        .map(|(f, n)| ((n as f64 - a.get(&f).copied().unwrap_or(0) as f64) / span, f))
        .collect();
    per.sort_by(|x, y| y.0.total_cmp(&x.0));
    let parts = Part::ALL
        .iter()
        .map(|&p| (p, per.iter().filter(|(_, f)| Part::of(f) == p).map(|(x, _)| x).sum()))
        .collect();
    Ok(Breakdown {
        lib,
        mode,
        total: per.iter().map(|(x, _)| x).sum(),
        parts,
        top: per.into_iter().take(top).collect(),
    })
}

/// Each function's own instructions in one callgrind run of `commits`.
fn self_costs(lib: Lib, mode: Mode, commits: u64) -> Result<HashMap<String, u64>, Box<dyn Error>> {
    let exe = std::env::current_exe()?;
    let out_file = std::env::temp_dir().join(format!(
        "paxos-bench-callgrind-{}-{}-{commits}-{}.out",
        lib.name(),
        mode.name,
        std::process::id()
    ));
    let run = Command::new("valgrind")
        .args(["--tool=callgrind", "--dump-instr=no"])
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&exe)
        .args(["count", lib.name(), mode.name, &commits.to_string()])
        .output()
        .map_err(|e| format!("running valgrind (apt-get install valgrind): {e}"))?;
    if !run.status.success() {
        let _ = std::fs::remove_file(&out_file);
        return Err(format!("callgrind failed: {}", String::from_utf8_lossy(&run.stderr)).into());
    }
    let annotated = Command::new("callgrind_annotate")
        .args(["--threshold=100", "--auto=no"])
        .arg(&out_file)
        .output();
    let _ = std::fs::remove_file(&out_file);
    Ok(parse_annotated(&String::from_utf8_lossy(&annotated?.stdout)))
}

/// `callgrind_annotate`'s function lines ("1,234 (5.6%)  file:function
/// [binary]", the percentage optional), summed per function (inlined code
/// appears once per source file).
fn parse_annotated(text: &str) -> HashMap<String, u64> {
    let mut costs = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('(') {
            Some(r) => r.split_once(')').map_or(r, |(_, tail)| tail).trim_start(),
            None => rest,
        };
        // "PROGRAM TOTALS" and other summary lines have no file part.
        let Some((_, function)) = rest.split_once(':') else {
            continue;
        };
        let function = function.split(" [").next().unwrap_or(function).trim();
        *costs.entry(function.to_owned()).or_insert(0) += count;
    }
    costs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_fall_into_their_parts() {
        let cases = [
            ("__memcpy_avx_unaligned_erms", Part::Copies),
            ("_int_free", Part::Allocator),
            (
                "<paxos_bench::alloc_count::Counting as core::alloc::global::GlobalAlloc>::alloc",
                Part::Allocator,
            ),
            (
                "<paxos_std::payload::Payload as serde_core::ser::Serialize>::serialize",
                Part::Codec,
            ),
            (
                "paxos_bench::omni::_::<impl serde_core::ser::Serialize for paxos_bench::omni::Value>::serialize",
                Part::Codec,
            ),
            ("bytes::bytes::promotable_even_drop", Part::Handles),
            (
                "<bytes::bytes::Bytes as core::convert::From<alloc::vec::Vec<u8>>>::from",
                Part::Handles,
            ),
            ("paxos_std::payload::Payload::from_slice", Part::Handles),
            ("paxos_core::replica::log::Log<V,_>::cell", Part::Library),
            ("omnipaxos::sequence_paxos::SequencePaxos<T,B>::append", Part::Library),
            (
                "core::ptr::drop_in_place<raft_proto::protos::eraftpb::Entry>",
                Part::Library,
            ),
            ("paxos_bench::harness::run", Part::Harness),
            ("<alloc::vec::Vec<T,A> as core::clone::Clone>::clone", Part::Other),
        ];
        for (f, part) in cases {
            assert_eq!(Part::of(f), part, "{f}");
        }
    }

    #[test]
    fn annotated_lines_are_summed_per_function() {
        let text = "\
--------------------------------------------------------------------------------
49,276,279 (100.0%)  PROGRAM TOTALS
--------------------------------------------------------------------------------
Ir                   file:function
--------------------------------------------------------------------------------
3,299,389 ( 6.70%)  ./string/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms [/usr/lib/libc.so.6]
1,460,736 ( 2.96%)  /work/paxos-core/src/replica/log.rs:paxos_core::replica::log::Log<V,_>::cell [/work/bench]
  511,488  /rustc/library/core/src/cmp.rs:paxos_core::replica::log::Log<V,_>::cell
";
        let costs = parse_annotated(text);
        assert_eq!(costs.len(), 2);
        assert_eq!(costs["__memcpy_avx_unaligned_erms"], 3_299_389);
        assert_eq!(costs["paxos_core::replica::log::Log<V,_>::cell"], 1_972_224);
    }
}
