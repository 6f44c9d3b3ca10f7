//! # paxos-service
//!
//! The `paxos` program's library: a replicated key-value store with
//! gen_paxos's write-once registers beside it ([`store`]: `ask(key, value)`
//! returns the value decided for the key and whether yours won; `put`,
//! `get`, `delete` and compare-and-set on a map), replicated by
//! [`paxos_std::runtime`]. Around it:
//!
//! - [`service`]: one node — the runtime, the client server and the
//!   metrics endpoint;
//! - [`server`] and [`protocol`]: the client protocol, binary and
//!   pipelined (many requests in flight per connection, answered out of
//!   order), and the JSON line protocol for scripts ([`client`]);
//! - [`cluster`]: the Rust [`Client`] (async, and [`BlockingClient`]),
//!   which finds the leader, carries on through leader changes and node
//!   deaths, and makes retried writes exactly-once with a client session;
//! - [`config`]: a node's settings from a TOML file and flags, and cluster
//!   keys; [`metrics`]: the Prometheus endpoint.
//!
//! To replicate an application of your own, use [`paxos_std::runtime`]
//! directly: this crate is one application built on it.

#![forbid(unsafe_code)]

pub mod client;
pub mod cluster;
pub mod config;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod service;
pub mod store;

pub use cluster::{BlockingClient, Client, ClientOptions};
