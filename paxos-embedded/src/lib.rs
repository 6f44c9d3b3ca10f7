//! # paxos-embedded
//!
//! The embedded adapter for [`paxos_core`]: the replica's durable records
//! on NOR flash through `embedded-storage` ([`flash`]), its messages over a
//! byte stream such as a UART ([`framing`]), and `defmt` logging as an
//! optional feature.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

pub use paxos_core as core;

pub mod flash;
pub mod framing;
