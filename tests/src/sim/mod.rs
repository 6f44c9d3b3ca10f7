//! A deterministic simulator for the Multi-Paxos replica.
//!
//! Many replicas run in one process on virtual time. One seeded PRNG
//! ([`SimRng`]) makes every choice: the scenario (1, 3 or 5 nodes, window,
//! timeouts, fault rates, persist buffer sizes, drivers), network fates
//! (loss, duplication, variable delay and so reordering, copies held back
//! for seconds, symmetric, one-way and bridged partitions, healing), node
//! crashes, storage wipes and restarts, sync latencies, and client timing.
//! The same seed replays the same run, step for step.
//!
//! # What it was widened with (issue #12)
//!
//! An independent tester broke agreement with faults this simulator never
//! produced; each of these exists to reach one of them, and each can be
//! turned off ([`Options::without`], `SIM_WITHOUT`) to measure that:
//!
//! - **two leaders at once**: the split-brain nemesis makes the leader a
//!   slow bridge between two sides and crashes it; both sides campaign, and
//!   when it is back a candidate of each side may win with it, the first
//!   leading its side for up to an election timeout after the second won
//!   (a leader cut off with one follower, and bridged partitions, too);
//! - **stale side paths**: duplicates of every message kind, the second
//!   copy often held back for up to seconds (log-uniformly), catch-up
//!   requests, answers and snapshots duplicated more often; when a node
//!   leads while another still does, the one behind is offered snapshots
//!   and a stale copy of its last catch-up request comes back;
//! - **tiny persist buffers**: per node, every size from
//!   `MIN_PERSIST_BUFFER` to 47 bytes more equally likely, and
//!   **lazy-persist drivers** (the next batch is written only once the sync
//!   in flight completes), so that batches fill up and later inputs change
//!   cells before they are written;
//! - **storage wipes**: a node's disk and its application's state are
//!   lost; it restarts through `recover` with no records. The driver's
//!   first-boot rule: a node whose storage never held a durable batch, and
//!   whose application applied nothing, boots with `Replica::new`; any
//!   other recovers. A wiped node only learns once fixed, so wipes count
//!   against the nodes that may stay down after healing (at most a
//!   minority: one of three, two of five).
//!
//! # And after commit 97a2a02
//!
//! A leader kept its own votes in a 16-entry queue until their records
//! were durable and dropped the rest silently; a driver syncing on another
//! thread writes more records than that before the first is durable, and
//! a one-node cluster, where nothing else decides, stalled for good. The
//! simulator never ran one node and no leader of it had more than 8
//! proposals in flight. Drawn from a generator of their own (every other
//! seed's run is unchanged), and each can be turned off:
//!
//! - **one-node clusters** (about one seed in ten): node 0 alone; its
//!   faults are crashes (nothing to partition), and a liveness rule holds
//!   at every step: the leader decides each slot within a few syncs of its
//!   vote there being durable ([`invariants::LONE_LEADER`]);
//! - **deep pipelines** ([`DeepLoad`]; half the one-node runs, one in
//!   twenty of the others): 24 to 48 clients, a 64-slot window (32
//!   proposals in flight) and syncs of 3 to 40 ms, a one-node leader's
//!   driver writing a batch after every input whatever syncs (as
//!   `paxos-std`'s `SyncPipeline`): leaders hold dozens of batches written
//!   and not durable ([`Stats::leader_backlog`]).
//!
//! - [`network`]: links, fates, partitions;
//! - [`disk`] and [`durable`]: storage that makes batches durable only
//!   when a sync completes and loses (or tears) the rest at a crash, and
//!   the durable records parsed with the public wire types;
//! - [`node`]: a replica with its disk and application, driven after
//!   every input by the one driver loop, `paxos_core::driver::drain`
//!   (write, send, deliver, confirm what a completed sync made durable);
//! - [`app`] and [`client`]: applications applying decided values, and
//!   clients proposing unique values and retrying;
//! - [`invariants`]: the checker, run as things happen and after every
//!   step (frames as they are sent, durable records as they are synced,
//!   restarts, and every node's records at the end);
//! - [`simulation`]: the loop, fault injection, the calm phase that
//!   measures liveness;
//! - [`runner`]: one seed or many, failures with a replay command;
//! - [`options`], [`SimRng`] (the crate's one generator, [`crate::rng`]),
//!   [`stats`], [`fasthash`]: knobs, randomness, counters, and a fast
//!   hasher for the checker's maps.
//!
//! A run has two phases. *Chaos* injects faults for
//! [`Options::chaos_steps`] steps. *Calm* then heals the network, stops
//! loss and duplication, restarts crashed nodes (sometimes leaving a
//! minority down, wiped nodes counted in it: they must still learn every
//! decided slot, but need not follow the leader with its ballot
//! promised), and lets every client finish its current value: every
//! client must get its value decided and every running node must have
//! applied every decided slot within [`Options::liveness_bound`] of
//! virtual time; a proposal still without an outcome after
//! [`Options::outcome_bound`], or a running node that does not follow the
//! leader that long after the work is done, breaks a rule too.
//!
//! # Durability model
//!
//! A batch from `poll_persist` is appended to the node's [`disk::Disk`];
//! a sync that takes a random time makes every batch written before it
//! started durable, and only then does the driver's next drain confirm it
//! with `persisted` (group commit).
//! A crash loses every unsynced batch — or, sometimes, finds a prefix of
//! them on disk (the OS flushed them) and the next one torn, which
//! storage drops as a checksum would. `recover` gets exactly the durable
//! batches. The application ([`app::App`]) resumes from a checkpoint
//! ([`AppDurability::Checkpoint`]: anywhere between its last durable
//! snapshot and the recovered decided watermark; the replica must hand
//! back every later slot exactly once, through `recover_with` and then
//! `poll_event`) or keeps everything it applied
//! ([`AppDurability::OnApply`]).
//!
//! # Known bugs
//!
//! A rule can be *waived* ([`Options::waive`]): its violations are
//! counted in [`Stats::waived`] and the run goes on, so that one known
//! bug does not hide the others. The test entry points waive exactly the
//! rules of the replica bugs they name, and enforce each in its own
//! ignored test until it is fixed.

pub mod app;
pub mod client;
pub mod clock;
pub mod disk;
pub mod durable;
pub mod fasthash;
pub mod invariants;
pub mod network;
pub mod node;
pub mod options;
pub mod registers;
pub mod runner;
pub mod simulation;
pub mod stats;

/// The value the simulated cluster replicates: a client's `(id, seq)`.
pub type Value = paxos_core::Bytes<16>;

/// The simulator's name for the crate's one generator.
pub use crate::rng::TestRng as SimRng;
pub use invariants::{Checker, Violation};
pub use options::{AppDurability, DeepLoad, Options, Sabotage, Scenario, Widening};
pub use runner::{run_seed, run_seeds, scenario_for, search, simulate_seed, threads_from_env, Failure, Search};
pub use simulation::Simulation;
pub use stats::{Stats, Summary};
