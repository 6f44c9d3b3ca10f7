//! # paxos-core
//!
//! Paxos as a `no_std`, allocation-free, sans-IO state machine.
//!
//! The crate never touches a clock, a socket, a file or a random source:
//! the driver hands in what happened (a message received, a deadline
//! reached, a proposal, a persist confirmed) and drains what to do (send,
//! persist, report). The same inputs give the same outputs byte for byte,
//! which is what makes simulation, replay, fuzzing and model checking of
//! the real code possible.
//!
//! ## What to use
//!
//! - [`replica::Replica`]: a Multi-Paxos replica of a log of values —
//!   elections with a stable leader, pipelined and batched phase 2,
//!   catch-up, snapshots, leader leases, crash-safe records. Its module
//!   docs show the whole driver loop (input, then drain
//!   [`poll_persist`](replica::Replica::poll_persist) →
//!   [`persisted`](replica::Replica::persisted) →
//!   [`poll_transmit`](replica::Replica::poll_transmit) →
//!   [`poll_event`](replica::Replica::poll_event), then sleep until
//!   [`poll_timeout`](replica::Replica::poll_timeout)) as a runnable
//!   three-node example.
//! - [`keyed::KeyedNode`]: keyed consensus on top of it — `ask(key, value)`
//!   answers with the value decided for the key, from any node.
//!
//! - [`driver`]: the driver loop, written once: implement its `Storage`
//!   and `Network` for your disk and your wire, feed inputs, then
//!   [`driver::drain`].
//!
//! ```
//! use paxos_core::driver::{self, Network, Storage};
//! use paxos_core::replica::{Config, Event, Replica};
//! use paxos_core::{Bytes, Instant, NodeId, NodeSet, PersistSeq};
//!
//! type V = Bytes<16>;
//! type R = Replica<V, 3, 8>;
//!
//! /// An in-memory log: durable as soon as appended.
//! struct Memory { buf: Vec<u8>, log: Vec<Vec<u8>>, last: Option<PersistSeq> }
//! impl Storage for Memory {
//!     type Error = core::convert::Infallible;
//!     const DURABLE_ON_APPEND: bool = true;
//!     fn buffer(&mut self) -> &mut [u8] { &mut self.buf }
//!     fn append(&mut self, seq: PersistSeq, len: usize) -> Result<(), Self::Error> {
//!         self.log.push(self.buf[..len].to_vec());
//!         self.last = Some(seq);
//!         Ok(())
//!     }
//!     fn sync(&mut self) -> Result<Option<PersistSeq>, Self::Error> { Ok(self.last.take()) }
//! }
//!
//! /// Frames collected for delivery: (recipients, bytes).
//! struct Outbox { buf: Vec<u8>, sent: Vec<(NodeSet, Vec<u8>)> }
//! impl Network for Outbox {
//!     fn buffer(&mut self) -> &mut [u8] { &mut self.buf }
//!     fn send(&mut self, to: NodeSet, len: usize) { self.sent.push((to, self.buf[..len].to_vec())); }
//! }
//!
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let now = Instant::ZERO;
//! let mut nodes: Vec<R> = ids
//!     .iter()
//!     .map(|&id| Replica::new(Config::builder(id, &ids).initial_leader(NodeId(1)).build().unwrap(), now).unwrap())
//!     .collect();
//! let mut disks: Vec<Memory> = (0..3).map(|_| Memory { buf: vec![0; 4096], log: vec![], last: None }).collect();
//! let mut net = Outbox { buf: vec![0; R::MAX_MESSAGE_SIZE], sent: vec![] };
//! nodes[0].propose(now, V::try_from("hello").unwrap()).unwrap();
//! let mut decided = 0;
//! for round in 0..10u64 {
//!     // Time passes: the leader's heartbeat tells the followers what is decided.
//!     let now = Instant::from_micros(round * 60_000);
//!     let mut inbox = Vec::new();
//!     for (i, node) in nodes.iter_mut().enumerate() {
//!         driver::tick(node, now);
//!         driver::drain(node, now, &mut disks[i], &mut net, |e| {
//!             if let Event::Decided { value: Some(v), .. } = e {
//!                 assert_eq!(v.as_slice(), b"hello");
//!                 decided += 1;
//!             }
//!         })
//!         .unwrap();
//!         inbox.extend(net.sent.drain(..).map(|(to, frame)| (ids[i], to, frame)));
//!     }
//!     for (from, to, frame) in inbox {
//!         for (j, node) in nodes.iter_mut().enumerate() {
//!             if to.contains(ids[j]) {
//!                 let _ = node.handle_message(now, from, &frame);
//!             }
//!         }
//!     }
//! }
//! assert_eq!(decided, 3, "every node delivers the value");
//! ```
//!
//! `paxos-std` drives these over UDP and files; `paxos-embedded` over
//! NOR flash. `docs/safety.md` in the repository walks every rule the
//! replica keeps and what checks it.
//!
//! ## Reading the algorithm
//!
//! Two teaching layers show the same protocol without the machinery:
//!
//! - [`essential`]: single-decree Proposer, Acceptor and Learner in their
//!   plainest form, short enough to read in one sitting;
//! - [`practical`]: the same roles with NACKs, leadership, retransmission,
//!   passive mode, recovery and persist-before-reveal, combined in
//!   [`practical::Node`].
//!
//! [`codec`] encodes their messages and records as `[version][postcard]`
//! in caller buffers, with compile-time size bounds and typed errors.
//! Building blocks shared by all layers: [`Ballot`], [`NodeId`],
//! [`NodeSet`], [`Message`], [`Bytes`] and [`time`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod ballot;
pub mod codec;
pub mod driver;
pub mod essential;
pub mod keyed;
pub mod message;
pub mod persist_seq;
pub mod practical;
pub mod replica;
pub mod rng;
pub mod time;
pub mod value;

/// Switches on classic Paxos bugs so the verification suites can prove they
/// catch them. Exists only with the `bug-injection` feature, which only the
/// test crates enable; not part of the library's API.
#[cfg(feature = "bug-injection")]
#[doc(hidden)]
pub mod fault_injection {
    pub use crate::replica::fault::Bug;
}

pub use ballot::{Ballot, NodeId, NodeSet};
pub use codec::{decode, encode, max_encoded_size, DecodeError, EncodeError, FORMAT_VERSION};
pub use message::{Destination, Message, Proposal};
pub use persist_seq::PersistSeq;
pub use time::{Duration, Instant};
pub use value::Bytes;
