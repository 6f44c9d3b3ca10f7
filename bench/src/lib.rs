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
pub mod profile;
pub mod raft_rs;
pub mod report;
pub mod wire;

/// The libraries compared. Ours runs in two forms that differ only in
/// the value type the replica holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lib {
    /// This workspace's `paxos-core` replica with inline values,
    /// `paxos_core::Bytes<C>` for the mode's capacity `C`: no allocation,
    /// but every move of a value copies `C` bytes.
    Ours,
    /// The same replica with `paxos_std::Payload` values (a shared
    /// `bytes::Bytes`): a move copies a pointer, a value costs its size
    /// and one allocation where it is made or decoded.
    OursPayload,
    /// raft-rs 0.7 (`RawNode` over `MemStorage`).
    Raft,
    /// omnipaxos 0.2 (`OmniPaxos` over `MemoryStorage`).
    Omni,
}

impl Lib {
    /// All of them, in report order.
    pub const ALL: [Lib; 4] = [Lib::Ours, Lib::OursPayload, Lib::Omni, Lib::Raft];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Lib::Ours => "ours",
            Lib::OursPayload => "ours-payload",
            Lib::Raft => "raft-rs",
            Lib::Omni => "omnipaxos",
        }
    }

    /// Parses a command-line name (`raft` is accepted for `raft-rs`).
    pub fn parse(name: &str) -> Option<Lib> {
        match name {
            "ours" | "paxos" => Some(Lib::Ours),
            "ours-payload" | "payload" => Some(Lib::OursPayload),
            "raft" | "raft-rs" => Some(Lib::Raft),
            "omni" | "omnipaxos" => Some(Lib::Omni),
            _ => None,
        }
    }

    /// Whether this is one of our forms.
    pub fn is_ours(self) -> bool {
        matches!(self, Lib::Ours | Lib::OursPayload)
    }

    /// How the report names it in `mode`: ours with its value type.
    pub fn label(self, mode: Mode) -> String {
        match self {
            Lib::Ours => format!("ours, `Bytes<{}>`", mode.capacity),
            Lib::OursPayload => "ours, `Payload`".to_owned(),
            lib => lib.name().to_owned(),
        }
    }
}

/// The sizes of the values a mode proposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    /// Every value has this many bytes.
    Fixed(usize),
    /// Sizes drawn log-uniformly from `min..=max` bytes by a fixed seeded
    /// generator: the same sequence for every library.
    Mixed {
        /// The smallest size (at least 8: a value starts with its sequence
        /// number).
        min: usize,
        /// The largest size.
        max: usize,
    },
}

/// How many sizes [`Values::sizes`] draws before the sequence repeats.
const MIXED_PERIOD: usize = 4096;

impl Values {
    /// The size of every proposal in turn: proposal `n` (from 0) has size
    /// `sizes[n % sizes.len()]`.
    pub fn sizes(self) -> Vec<usize> {
        match self {
            Values::Fixed(size) => vec![size],
            Values::Mixed { min, max } => {
                // splitmix64: a fixed, seeded sequence (no dependency).
                let mut state = 0x5EEDu64;
                let span = (max as f64 / min as f64).ln();
                (0..MIXED_PERIOD)
                    .map(|_| {
                        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                        let mut z = state;
                        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                        z ^= z >> 31;
                        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
                        ((min as f64 * (span * unit).exp()).round() as usize).clamp(min, max)
                    })
                    .collect()
            }
        }
    }

    /// The mean size, in bytes.
    pub fn mean(self) -> f64 {
        let sizes = self.sizes();
        sizes.iter().sum::<usize>() as f64 / sizes.len() as f64
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
    /// The sizes of the values proposed.
    pub values: Values,
    /// The largest value the application allows: the inline capacity of
    /// [`Lib::Ours`] (`Bytes<capacity>`, one of
    /// [`ours::INLINE_CAPACITIES`]) and the limit [`Lib::OursPayload`]
    /// sizes its buffers from.
    pub capacity: usize,
    /// Our forms that run in this mode, the one the goals are checked
    /// against first.
    pub ours: &'static [Lib],
}

/// Modes whose values are all at the capacity and small: inline values
/// are the better form (no allocation), so only they run.
const INLINE: &[Lib] = &[Lib::Ours];
/// Modes with large or varying values: `Payload` first (a value costs
/// its size, as the peers' heap payloads do), inline for contrast.
const PAYLOAD_FIRST: &[Lib] = &[Lib::OursPayload, Lib::Ours];

/// The configurations.
pub const MODES: [Mode; 6] = [
    Mode {
        name: "w1",
        nodes: 3,
        window: 1,
        values: Values::Fixed(64),
        capacity: 64,
        ours: INLINE,
    },
    Mode {
        name: "w256",
        nodes: 3,
        window: 256,
        values: Values::Fixed(64),
        capacity: 64,
        ours: INLINE,
    },
    Mode {
        name: "n5",
        nodes: 5,
        window: 1,
        values: Values::Fixed(64),
        capacity: 64,
        ours: INLINE,
    },
    Mode {
        name: "v4k",
        nodes: 3,
        window: 256,
        values: Values::Fixed(4096),
        capacity: 4096,
        ours: PAYLOAD_FIRST,
    },
    Mode {
        name: "v64c4k",
        nodes: 3,
        window: 256,
        values: Values::Fixed(64),
        capacity: 4096,
        ours: PAYLOAD_FIRST,
    },
    Mode {
        name: "mixed",
        nodes: 3,
        window: 256,
        values: Values::Mixed { min: 16, max: 4096 },
        capacity: 4096,
        ours: PAYLOAD_FIRST,
    },
];

impl Mode {
    /// The mode called `name`.
    pub fn parse(name: &str) -> Option<Mode> {
        MODES.iter().copied().find(|m| m.name == name)
    }

    /// The libraries that run in this mode: our forms, then the peers.
    pub fn libs(self) -> impl Iterator<Item = Lib> {
        self.ours.iter().copied().chain([Lib::Omni, Lib::Raft])
    }

    /// Our form whose figures the goals are checked against.
    pub fn headline(self) -> Lib {
        self.ours.first().copied().unwrap_or(Lib::Ours)
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
        Lib::Ours => ours::run_inline(mode, commits),
        Lib::OursPayload => ours::run_payload(mode, commits),
        Lib::Raft => harness::run(&mut raft_rs::RaftCluster::new(mode), mode, commits),
        Lib::Omni => harness::run(&mut omni::OmniCluster::new(mode), mode, commits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_sizes_are_a_fixed_log_uniform_sequence_within_bounds() {
        let mixed = Values::Mixed { min: 16, max: 4096 };
        let sizes = mixed.sizes();
        assert_eq!(sizes, mixed.sizes(), "the same sequence every time");
        assert_eq!(sizes.len(), MIXED_PERIOD);
        assert!(sizes.iter().all(|s| (16..=4096).contains(s)));
        // Log-uniform: half below the geometric middle (256 B), and both
        // ends reached.
        let below = sizes.iter().filter(|&&s| s < 256).count() as f64 / sizes.len() as f64;
        assert!((below - 0.5).abs() < 0.05, "{below}");
        assert!(sizes.iter().any(|&s| s < 24) && sizes.iter().any(|&s| s > 3500));
        assert_eq!(Values::Fixed(64).sizes(), vec![64]);
    }

    #[test]
    fn every_mode_parses_by_name_and_fits_its_capacity() {
        for mode in MODES {
            assert_eq!(Mode::parse(mode.name), Some(mode));
            assert!(mode.values.sizes().iter().all(|&s| (8..=mode.capacity).contains(&s)));
            assert!(ours::INLINE_CAPACITIES.contains(&mode.capacity), "{}", mode.name);
            assert!(mode.headline().is_ours());
            assert_eq!(mode.libs().filter(|l| !l.is_ours()).count(), 2);
        }
        for lib in Lib::ALL {
            assert_eq!(Lib::parse(lib.name()), Some(lib));
        }
    }
}
