//! Cross-crate test support for the paxos workspace.
//!
//! - [`model`]: drivers for model checking the production state machines
//!   (`tests/model_check.rs`);
//! - [`sim`]: the deterministic simulator of the Multi-Paxos replica
//!   (`tests/simulation.rs`).

pub mod fuzzing;
pub mod model;
pub mod sim;
