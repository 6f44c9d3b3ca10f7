//! # paxos-std
//!
//! The std adapter for [`paxos_core`]: crash-safe file storage
//! ([`storage`]), an authenticated UDP transport ([`transport`]), the
//! per-turn logic of a node ([`engine`]), two drivers around it — the
//! blocking [`node`] and, with the `tokio` feature, `async_node` — a
//! client protocol, and the `paxos` program built from them.
//!
//! # Writing your own driver
//!
//! The core is sans-IO: it never waits, reads a clock, or touches a socket
//! or a file. A driver is a loop that feeds it what happened and carries
//! out what it asks, in this order:
//!
//! ```text
//! loop {
//!     now = clock()
//!     for each input that arrived:                     // as many as are ready
//!         datagram  -> replica.handle_message(now, from, frame)
//!         client    -> replica.propose(now, value)
//!     if now >= replica.poll_timeout():
//!         replica.handle_timeout(now)
//!     last = None
//!     while let Some(p) = replica.poll_persist(&mut buf):
//!         log.append(&buf[..p.len])                    // buffered, not durable yet
//!         last = Some(p.seq)
//!     if let Some(seq) = last:
//!         log.sync()                                   // ONE fdatasync for the whole group
//!         replica.persisted(now, seq)                  // confirms seq and every earlier one
//!     while let Some(t) = replica.poll_transmit(&mut buf):
//!         send(&buf[..t.len], to every node in t.to)
//!     while let Some(event) = replica.poll_event():
//!         apply(event)                                 // decided values, in slot order
//!     wait for the next input, at most until replica.poll_timeout()
//! }
//! ```
//!
//! The rules:
//!
//! - **Persist before reveal.** Call `persisted` only once the bytes are
//!   durable (`fdatasync` returned). The replica holds back every promise
//!   and vote queued after a record until that record is confirmed, so
//!   `poll_transmit` cannot reveal state a crash could lose — provided the
//!   confirmation is true. If a sync fails, stop: the kernel may have
//!   dropped what it could not write, and the node must recover from what
//!   is really on disk.
//! - **One confirmation covers all earlier sequence numbers.** Append every
//!   batch `poll_persist` hands out, sync once, and confirm the last `seq`:
//!   that is group commit, and it is where throughput comes from.
//! - **Call `handle_timeout` when the deadline passes.** `poll_timeout`
//!   changes after any input; read it again before each wait. Elections,
//!   heartbeats and retransmissions all hang on it.
//!
//! This loop is written once, in [`paxos_core::driver`]: `driver::drain`
//! does everything after the inputs, over a `Storage` and a `Network` you
//! implement (or take from here: [`storage::SyncPipeline`] is a
//! [`storage::FileLog`] on its own sync thread). It appends first and
//! sends before it syncs, so a leader's appends reach the followers while
//! its own `fdatasync` runs; the core holds back every promise and vote
//! until its record is confirmed, so the order is safe by construction.
//!
//! [`engine::Engine`] is that loop for the `paxos` program's keyed
//! registers, with the waiting left out; [`node`] and `async_node` show two
//! ways to wait (threads and a bounded channel; tokio's `select!`), both
//! woken by the sync thread when a sync finishes.

#![forbid(unsafe_code)]

pub mod app;
#[cfg(feature = "tokio")]
pub mod async_node;
pub mod client;
pub mod clock;
pub mod engine;
pub mod forward;
pub mod node;
mod receiver;
pub mod request;
pub mod runtime;
pub mod server;
pub mod storage;
pub mod transport;

pub use paxos_core as core;
