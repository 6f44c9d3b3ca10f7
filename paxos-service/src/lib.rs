//! # paxos-service
//!
//! The `paxos` program's library: gen_paxos's keyed write-once registers
//! ([`app`]: `ask(key, value)` returns the value decided for the key) as a
//! service on [`paxos_std`]'s storage and transport, driven through
//! `paxos_core::driver` by one [`engine::Engine`] and two drivers around it
//! (the blocking [`node`] and, with the `tokio` feature, `async_node`), a
//! JSON client protocol ([`client`], [`server`], [`request`]) and the
//! messages nodes exchange besides Paxos ([`forward`]).
//!
//! To replicate an application of your own, use [`paxos_std::runtime`]
//! instead: this crate is the program built on the same parts.

#![forbid(unsafe_code)]

pub mod app;
#[cfg(feature = "tokio")]
pub mod async_node;
pub mod client;
pub mod engine;
pub mod forward;
pub mod node;
pub mod request;
pub mod server;
