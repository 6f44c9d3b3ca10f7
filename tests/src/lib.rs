//! Cross-crate test support for the paxos workspace.
//!
//! - [`rng`]: the one seeded pseudo-random generator of the tests;
//! - [`fuzzing`]: the bodies of the fuzz targets (`fuzz/`), also run over
//!   the committed corpus by `tests/fuzz_corpus.rs`;
//! - [`model`]: drivers for model checking the production state machines
//!   (`tests/model_check.rs`);
//! - [`sim`]: the deterministic simulator of the Multi-Paxos replica
//!   (`tests/simulation.rs`);
//! - [`qemu`]: three firmware nodes under QEMU joined by a relay
//!   (`tests/qemu_cluster.rs`);
//! - [`refinement`]: the simulator's runs held, step by step, to the
//!   next-state relation of `spec/Replica.tla` (`tests/refinement.rs`).

pub mod fuzzing;
pub mod model;
pub mod qemu;
pub mod refinement;
pub mod rng;
pub mod sim;
