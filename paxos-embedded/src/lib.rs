//! # paxos-embedded
//!
//! The embedded adapter for [`paxos_core`]: NOR flash storage through
//! `embedded-storage`, byte-stream framing and `defmt`. It grows with the
//! replica; today it re-exports the core so the workspace builds for
//! Cortex-M end to end.
#![no_std]
#![forbid(unsafe_code)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

pub use paxos_core as core;
