//! # paxos-std
//!
//! The std adapter for [`paxos_core`]: sockets, files and a command-line
//! program. It grows with the replica; today it re-exports the core so the
//! workspace builds end to end.

pub use paxos_core as core;
