//! `paxos-bench`: this library, raft-rs 0.7 and omnipaxos 0.2 driven by one
//! harness (see [`harness`]), and the report that compares them (see
//! [`report`]).
//!
//! Every library runs the same way: all nodes in one thread, messages
//! encoded with the library's own codec into a shared buffer and decoded
//! at the receiver, delivered in FIFO rounds, storage in memory, a
//! proposal counted when the leader applies it.

pub mod alloc_count;
pub mod chart;
pub mod harness;
pub mod omni;
pub mod ours;
pub mod raft_rs;
pub mod report;
pub mod wire;

/// The libraries compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lib {
    /// This workspace's `paxos-core` replica.
    Ours,
    /// raft-rs 0.7 (`RawNode` over `MemStorage`).
    Raft,
    /// omnipaxos 0.2 (`OmniPaxos` over `MemoryStorage`).
    Omni,
}

impl Lib {
    /// All of them, in report order.
    pub const ALL: [Lib; 3] = [Lib::Ours, Lib::Omni, Lib::Raft];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Lib::Ours => "ours",
            Lib::Raft => "raft-rs",
            Lib::Omni => "omnipaxos",
        }
    }

    /// Parses a command-line name (`raft` is accepted for `raft-rs`).
    pub fn parse(name: &str) -> Option<Lib> {
        match name {
            "ours" | "paxos" => Some(Lib::Ours),
            "raft" | "raft-rs" => Some(Lib::Raft),
            "omni" | "omnipaxos" => Some(Lib::Omni),
            _ => None,
        }
    }
}

/// A benchmark configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// Its name on the command line.
    pub name: &'static str,
    /// Cluster size.
    pub nodes: usize,
    /// Proposals kept in flight at the leader.
    pub window: usize,
    /// Value size in bytes.
    pub value: usize,
}

/// The four configurations.
pub const MODES: [Mode; 4] = [
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

impl Mode {
    /// The mode called `name`.
    pub fn parse(name: &str) -> Option<Mode> {
        MODES.iter().copied().find(|m| m.name == name)
    }
}

/// What one run counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Proposals applied at the leader.
    pub commits: u64,
    /// Messages delivered (one per recipient).
    pub messages: u64,
    /// Encoded bytes delivered (per recipient).
    pub bytes: u64,
}

/// Runs `commits` proposals of `lib` in `mode`, then lets the followers
/// catch up and checks that every node applied the same sequence.
pub fn run(lib: Lib, mode: Mode, commits: u64) -> Result<Totals, harness::Disagreement> {
    match lib {
        Lib::Ours => ours::run(mode, commits),
        Lib::Raft => harness::run(&mut raft_rs::RaftCluster::new(mode), mode, commits),
        Lib::Omni => harness::run(&mut omni::OmniCluster::new(mode), mode, commits),
    }
}
