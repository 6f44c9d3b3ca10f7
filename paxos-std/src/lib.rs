//! # paxos-std
//!
//! The std adapter for [`paxos_core`]: crash-safe file storage, an
//! authenticated UDP transport, a blocking driver, a client protocol, and
//! the `paxos` program built from them.

pub mod app;
pub mod client;
pub mod clock;
pub mod forward;
pub mod node;
pub mod server;
pub mod storage;
pub mod transport;

pub use paxos_core as core;
