//! Cross-crate test support for the paxos workspace.
//!
//! - [`sim`]: the deterministic simulator of the Multi-Paxos replica
//!   (`tests/simulation.rs`).

pub mod sim;
