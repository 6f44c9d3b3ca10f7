//! # paxos-std
//!
//! Replicate your own state machine with Paxos: implement
//! [`runtime::StateMachine`] (a command type, an output type, `apply`,
//! `snapshot`, `restore`) and start a [`runtime::Runtime`] on each node.
//! The runtime keeps the log on disk with group commit on a sync thread,
//! compacts it with your snapshots, restarts from it, forwards proposals
//! to the leader, brings nodes that fell behind up to date, and returns
//! your output to whoever proposed; reads go through the log or, with a
//! lease, stay on the leader. `examples/kv` is a replicated map in 55
//! lines of application code; `examples/lock` a lock service with lease
//! reads; `examples/kv_tokio` the map on tokio.
//!
//! Underneath, and usable on their own: crash-safe file storage
//! ([`storage`]: [`storage::FileLog`], and [`storage::SyncPipeline`] which
//! runs it on its own thread), authenticated UDP and TCP transports
//! ([`transport`], [`transport::tcp`]), a receiving thread ([`receiver`]), a monotonic clock
//! ([`clock`]) and the node options ([`options`]). The `paxos` program
//! (crate `paxos-service`) is built on this crate.
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
//! The runtime's worker is that loop for any [`runtime::StateMachine`];
//! the `paxos-service` crate's engine is it for the `paxos` program's keyed
//! registers.
//!
//! # Snapshots, compaction and which batch to confirm
//!
//! Compaction replaces the log by the application's snapshot and one
//! checkpoint batch written by `Replica::write_checkpoint`, which holds the
//! replica's promise, watermarks and every slot in memory. Queue it behind
//! the batches already handed to storage ([`storage::SyncPipeline::compact`]
//! does): it covers them, and their confirmations stay valid, so keep
//! confirming batches in the order `poll_persist` issued them — the
//! checkpoint itself is never confirmed, since it holds nothing the core
//! is waiting for. A node behind the retained log gets the snapshot
//! (`Event::SnapshotNeeded`), installs it with `Replica::install_snapshot`
//! after restoring the application, and compacts at once so that its own
//! log starts at the snapshot too.

#![forbid(unsafe_code)]

pub mod clock;
pub mod options;
pub mod payload;
pub mod pieces;
pub mod receiver;
pub mod runtime;
pub mod storage;
pub mod transport;

pub use paxos_core as core;
pub use payload::Payload;
