//! The replication runtime: your state machine on every node, kept in step
//! by Paxos.
//!
//! Implement [`StateMachine`] (a command type, an output type, `apply`,
//! `snapshot`, `restore`) and start one [`Runtime`] per node. The runtime
//! does the rest: the log and its group commits on a sync thread,
//! checkpoints and compaction with your state, restart from disk,
//! snapshots for nodes that fell behind, forwarding to the leader, and one
//! outcome for every proposal, with your output, on the node that took it.
//!
//! ```no_run
//! use paxos_std::runtime::{Runtime, StateMachine, RestoreError};
//! use paxos_std::options::NodeOptions;
//!
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     type Command = u64;
//!     type Output = u64;
//!     fn apply(&mut self, add: u64) -> u64 {
//!         self.0 += add;
//!         self.0
//!     }
//!     fn snapshot(&self) -> Vec<u8> {
//!         self.0.to_le_bytes().to_vec()
//!     }
//!     fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
//!         self.0 = u64::from_le_bytes(bytes.try_into().map_err(|_| RestoreError::new("not a counter"))?);
//!         Ok(())
//!     }
//! }
//!
//! # fn demo(options: NodeOptions) -> Result<(), Box<dyn std::error::Error>> {
//! let node = Runtime::start(options, Counter::default())?;
//! let total = node.propose(5)?;          // decided, applied, answered
//! let now = node.read(|c| c.0)?;         // linearizable: through the log
//! # Ok(()) }
//! ```
//!
//! How a proposal travels: the node that takes it tags it with its
//! [`Origin`] (node, run, request number) and proposes it
//! if it leads, or forwards it to the leader. Every node applies every
//! decided entry in slot order; the node that took it recognises its own
//! tag and hands your output to the caller. A request is retried (after a
//! leader change, a lost forward) until it is applied or its deadline
//! passes, and the replicated session table applies each tag once.
//!
//! Nodes talk over the authenticated TCP transport
//! ([`transport::tcp`](crate::transport::tcp)): a window of 256 slots,
//! promises that do not fit a frame sent in parts, snapshots streamed in
//! 1 MiB pieces as the peer's connection takes them (at most an eighth of
//! its queue at a time, so consensus messages keep their room and a state
//! of any size arrives; see [`pieces::Outgoing`](crate::pieces::Outgoing)).
//! Entries waiting in the same turn share slots, up to
//! 64 KiB a slot; a larger command takes a slot of its own. A slot's value
//! is a [`Payload`](crate::Payload), held by reference: the core moves a
//! pointer, and a command's bytes are copied only into its records and
//! frames. Commands encode to at most
//! [`NodeOptions::max_command`](crate::options::NodeOptions::max_command)
//! bytes ([`MAX_COMMAND`], 1 MiB, by default; up to
//! [`MAX_COMMAND_LIMIT`]). Memory: the values a node holds in its window
//! of slots are bounded in bytes by
//! [`NodeOptions::window_bytes`](crate::options::NodeOptions::window_bytes)
//! ([`WINDOW_BYTES`], 64 MiB, by default): half for its proposals in
//! flight, half for decided slots kept for peers behind (older ones leave
//! memory; a peer that needs them gets a snapshot).

mod contact;
mod entry;
mod sessions;
mod state;
mod window;
mod worker;

pub use contact::PeerContact;
pub use entry::{Origin, SessionTag};
pub use sessions::{MAX_CACHED_BYTES, MAX_CLIENTS, MAX_SESSIONS, MAX_UNACKED, SESSION_WINDOW};

use crate::options::{NodeError, NodeOptions};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The largest encoded command (postcard), in bytes, unless
/// [`NodeOptions::max_command`](crate::options::NodeOptions::max_command)
/// says otherwise: 1 MiB.
pub const MAX_COMMAND: usize = 1 << 20;

/// The most `NodeOptions::max_command` may be: 16 MiB (a frame between
/// nodes holds at least one slot, and a checkpoint a window of them).
pub const MAX_COMMAND_LIMIT: usize = 16 << 20;

/// The bytes of values a node's log window holds, unless
/// [`NodeOptions::window_bytes`](crate::options::NodeOptions::window_bytes)
/// says otherwise: 64 MiB.
pub const WINDOW_BYTES: usize = 64 << 20;

/// How long a proposal or a read may wait for its outcome.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// An application replicated by the runtime. `apply` must be
/// deterministic: every node applies the same commands in the same order
/// and must reach the same state.
pub trait StateMachine: Send + 'static {
    /// What clients ask for.
    type Command: Serialize + DeserializeOwned + Send + 'static;
    /// What applying a command returns to the client that proposed it.
    /// Serializable: a client session keeps it, in the replicated state,
    /// for a client that retries after a lost reply.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Applies one decided command.
    fn apply(&mut self, command: Self::Command) -> Self::Output;

    /// The whole state, as bytes (for compaction and for nodes behind).
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state by a snapshot's.
    ///
    /// # Errors
    ///
    /// The bytes are not a snapshot of this machine.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError>;
}

/// A snapshot the state machine could not restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreError(String);

impl RestoreError {
    /// An error saying `why`.
    pub fn new(why: impl Into<String>) -> Self {
        RestoreError(why.into())
    }
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snapshot not restored: {}", self.0)
    }
}

impl std::error::Error for RestoreError {}

/// Why a proposal or a read has no outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProposeError {
    /// The command encodes to more than the node accepts
    /// ([`NodeOptions::max_command`](crate::options::NodeOptions::max_command())).
    TooLarge {
        /// Its encoded length.
        len: usize,
        /// The most the node accepts.
        max: usize,
    },
    /// The command could not be encoded.
    Encode(String),
    /// No outcome before [`DEADLINE`]: the command may still be applied
    /// later (no quorum was reachable, or no leader was elected).
    Timeout,
    /// This node is not the leader or its lease does not hold
    /// ([`Runtime::read_local`] only).
    NotLeader,
    /// The node stopped.
    Stopped,
    /// Too many requests of this node are unfinished: try again once some
    /// are answered.
    Busy,
    /// The command was applied, once, by an earlier decision whose output
    /// this node did not see (it installed a snapshot that covered it).
    AppliedEarlier,
    /// The client session is unknown (never opened, or closed to make
    /// room) or no longer keeps this request's output: its outcome is
    /// lost, and it was not applied now. Open a new session.
    SessionExpired,
    /// This session's request number was used before for another command:
    /// the command was not applied (a client must give each command its
    /// own number, and keep it for retries).
    SessionConflict,
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::TooLarge { len, max } => {
                write!(
                    f,
                    "the command encodes to {len} bytes, more than the {max} this node accepts"
                )
            }
            ProposeError::Encode(e) => write!(f, "the command does not encode: {e}"),
            ProposeError::Timeout => write!(f, "no outcome within {DEADLINE:?}"),
            ProposeError::NotLeader => write!(f, "not the leader, or its lease does not hold"),
            ProposeError::Stopped => write!(f, "the node stopped"),
            ProposeError::Busy => write!(f, "too many requests in progress on this node"),
            ProposeError::AppliedEarlier => {
                write!(f, "applied by an earlier attempt whose output this node did not see")
            }
            ProposeError::SessionExpired => write!(f, "the client session expired: its outcome is lost"),
            ProposeError::SessionConflict => {
                write!(f, "this session request number was used for another command")
            }
        }
    }
}

impl std::error::Error for ProposeError {}

/// What one node of the runtime knows, for monitoring.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeStatus {
    /// This node.
    pub id: u8,
    /// The leader this node knows of.
    pub leader: Option<u8>,
    /// Whether this node leads.
    pub is_leader: bool,
    /// The ballot it promised, as `(round, node)`.
    pub ballot: Option<(u32, u8)>,
    /// Slots decided (the next undecided slot).
    pub decided: u64,
    /// Slots applied to the state machine.
    pub applied: u64,
    /// Commands applied and sessions opened since the node started.
    pub commits: u64,
    /// Leader changes this node saw since it started.
    pub leader_changes: u64,
    /// `fdatasync` calls so far.
    pub syncs: u64,
    /// The node lost its storage and only learns: it never votes or leads.
    pub amnesiac: bool,
    /// Requests this node took and has not answered.
    pub waiting: usize,
    /// What the replica dropped or refused, by reason.
    pub replica: paxos_core::replica::Counters,
    /// What the transport between nodes dropped, refused and re-opened.
    pub transport: crate::transport::tcp::TcpCounters,
    /// How recently a frame arrived from each peer, in the order of
    /// [`NodeOptions::peers`].
    pub peers: Vec<PeerContact>,
    /// The lowest slot whose value is still in memory (slots below it left
    /// with the window or a snapshot).
    pub log_start: u64,
    /// The bytes of this node's proposals in flight (see
    /// [`NodeOptions::window_bytes`]).
    pub in_flight_bytes: usize,
    /// The bytes of decided slots kept in memory for peers' catch-up (see
    /// [`NodeOptions::window_bytes`]).
    pub kept_bytes: usize,
    /// The applied slot at this node's last compaction of its log, or
    /// where it started if none since.
    pub compacted_at: u64,
}

type Reply<T> = Box<dyn FnOnce(Result<T, ProposeError>) + Send>;
type ReadFn<S> = Box<dyn FnOnce(Result<&S, ProposeError>) + Send>;

/// How a read is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadHow {
    /// Behind a read barrier through the log: linearizable.
    Log,
    /// On the leader under its lease.
    Lease,
    /// This node's state as applied so far.
    Stale,
}

/// What callers hand to the worker.
enum Call<S: StateMachine> {
    Propose {
        command: Vec<u8>,
        session: Option<SessionTag>,
        reply: Reply<S::Output>,
    },
    Open(Reply<u64>),
    Read {
        how: ReadHow,
        read: ReadFn<S>,
    },
    Status(Reply<RuntimeStatus>),
}

/// One node of a replicated state machine; see the [module docs](self).
/// Cheap to share across threads by reference: every method takes `&self`.
pub struct Runtime<S: StateMachine> {
    calls: SyncSender<worker::Input<S>>,
    /// [`NodeOptions::max_command()`], checked before a command is queued.
    max_command: usize,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), NodeError>>>,
}

impl<S: StateMachine> fmt::Debug for Runtime<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl<S: StateMachine> Runtime<S> {
    /// Starts the node of `options` with `machine` as its initial state
    /// (replaced by what its data directory holds, if anything), on a
    /// thread of its own.
    ///
    /// # Errors
    ///
    /// [`NodeError`] if the data directory, the socket or the
    /// configuration cannot be used, or the log does not replay.
    pub fn start(options: NodeOptions, machine: S) -> Result<Self, NodeError> {
        let max_command = options.max_command;
        let stop = Arc::new(AtomicBool::new(false));
        let (calls, inbox) = mpsc::sync_channel(worker::INBOX);
        let (started_tx, started_rx) = mpsc::sync_channel(1);
        let thread = {
            let stop = Arc::clone(&stop);
            let calls = calls.clone();
            std::thread::Builder::new()
                .name(format!("paxos-runtime-{}", options.id))
                .stack_size(worker::STACK)
                .spawn(move || worker::run(options, machine, calls, inbox, stop, started_tx))
                .map_err(NodeError::Io)?
        };
        match started_rx.recv() {
            Ok(Ok(())) => Ok(Runtime {
                calls,
                max_command,
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => match thread.join() {
                Ok(Err(e)) => Err(e),
                _ => Err(NodeError::Io(std::io::Error::other(
                    "the runtime thread ended at start",
                ))),
            },
        }
    }

    /// Proposes `command` and waits for its output: it was decided and
    /// applied on this node (and is durable at a quorum).
    ///
    /// # Errors
    ///
    /// [`ProposeError`]: too large, no outcome in time, or stopped.
    pub fn propose(&self, command: S::Command) -> Result<S::Output, ProposeError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.propose_with(command, move |outcome| {
            let _ = tx.send(outcome);
        })?;
        rx.recv().unwrap_or(Err(ProposeError::Stopped))
    }

    /// Proposes `command`; `done` gets its outcome, on the runtime's
    /// thread (keep it short: send it somewhere). The building block of
    /// [`Runtime::propose`] and of async front-ends.
    ///
    /// # Errors
    ///
    /// The command does not encode or is too large, or the node stopped;
    /// `done` is not called then.
    pub fn propose_with(
        &self,
        command: S::Command,
        done: impl FnOnce(Result<S::Output, ProposeError>) + Send + 'static,
    ) -> Result<(), ProposeError> {
        let command = encode::<S>(&command, self.max_command)?;
        self.call(Call::Propose {
            command,
            session: None,
            reply: Box::new(done),
        })
    }

    /// Opens a client session: the number a client gives, with a request
    /// number of its own, to [`Runtime::propose_in_session`]. Sessions are
    /// replicated, so a client may retry through any node.
    ///
    /// # Errors
    ///
    /// No outcome in time, or stopped.
    pub fn open_session(&self) -> Result<u64, ProposeError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.call(Call::Open(Box::new(move |outcome| {
            let _ = tx.send(outcome);
        })))?;
        rx.recv().unwrap_or(Err(ProposeError::Stopped))
    }

    /// Proposes `command` as request `tag.seq` of client session
    /// `tag.client`: applied once however often it is retried, through
    /// whichever node; a retry gets the first application's output (as
    /// long as the client has not acknowledged it with `tag.acked`).
    ///
    /// # Errors
    ///
    /// As [`Runtime::propose`], and [`ProposeError::SessionExpired`].
    pub fn propose_in_session(&self, tag: SessionTag, command: S::Command) -> Result<S::Output, ProposeError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.propose_in_session_with(tag, command, move |outcome| {
            let _ = tx.send(outcome);
        })?;
        rx.recv().unwrap_or(Err(ProposeError::Stopped))
    }

    /// [`Runtime::propose_in_session`] with a callback, as
    /// [`Runtime::propose_with`].
    ///
    /// # Errors
    ///
    /// As [`Runtime::propose_with`].
    pub fn propose_in_session_with(
        &self,
        tag: SessionTag,
        command: S::Command,
        done: impl FnOnce(Result<S::Output, ProposeError>) + Send + 'static,
    ) -> Result<(), ProposeError> {
        let command = encode::<S>(&command, self.max_command)?;
        self.call(Call::Propose {
            command,
            session: Some(tag),
            reply: Box::new(done),
        })
    }

    /// Reads the state linearizably: `read` runs on this node's state once
    /// everything decided before the read was asked is applied (a read
    /// barrier goes through the log).
    ///
    /// # Errors
    ///
    /// No outcome in time, or stopped.
    pub fn read<T: Send + 'static>(&self, read: impl FnOnce(&S) -> T + Send + 'static) -> Result<T, ProposeError> {
        self.read_via(ReadHow::Log, read)
    }

    /// Reads the state on the leader under its lease, without a log round
    /// trip (enable the lease in the options). Linearizable under the
    /// lease's clock assumption.
    ///
    /// # Errors
    ///
    /// [`ProposeError::NotLeader`] when this node does not hold the lease.
    pub fn read_local<T: Send + 'static>(
        &self,
        read: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T, ProposeError> {
        self.read_via(ReadHow::Lease, read)
    }

    /// What this node knows, for monitoring.
    ///
    /// # Errors
    ///
    /// [`ProposeError::Stopped`].
    pub fn status(&self) -> Result<RuntimeStatus, ProposeError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.call(Call::Status(Box::new(move |s| {
            let _ = tx.send(s);
        })))?;
        rx.recv().unwrap_or(Err(ProposeError::Stopped))
    }

    /// Stops the node: the queued log work is written and synced first.
    ///
    /// # Errors
    ///
    /// The error that stopped the node earlier, if one did.
    pub fn shutdown(mut self) -> Result<(), NodeError> {
        self.stop_thread()
    }

    /// Reads this node's state as applied so far, at once: not
    /// linearizable (a follower may lag), for monitoring and for reads that
    /// tolerate staleness.
    ///
    /// # Errors
    ///
    /// [`ProposeError::Stopped`].
    pub fn read_stale<T: Send + 'static>(
        &self,
        read: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T, ProposeError> {
        self.read_via(ReadHow::Stale, read)
    }

    fn read_via<T: Send + 'static>(
        &self,
        how: ReadHow,
        read: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T, ProposeError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.call(Call::Read {
            how,
            read: Box::new(move |state: Result<&S, ProposeError>| {
                let _ = tx.send(state.map(read));
            }),
        })?;
        rx.recv().unwrap_or(Err(ProposeError::Stopped))
    }

    fn call(&self, call: Call<S>) -> Result<(), ProposeError> {
        self.calls
            .send(worker::Input::Call(call))
            .map_err(|_| ProposeError::Stopped)
    }

    fn stop_thread(&mut self) -> Result<(), NodeError> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.calls.try_send(worker::Input::Wake);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(NodeError::Io(std::io::Error::other("the runtime thread panicked"))),
            None => Ok(()),
        }
    }
}

/// The async front-end (feature `tokio`): the same runtime, awaited.
#[cfg(feature = "tokio")]
impl<S: StateMachine> Runtime<S> {
    /// [`Runtime::propose`], awaited: the task waits, not the thread.
    ///
    /// # Errors
    ///
    /// As [`Runtime::propose`].
    pub async fn propose_async(&self, command: S::Command) -> Result<S::Output, ProposeError> {
        self.propose_async_in(None, command).await
    }

    /// [`Runtime::propose_in_session`], awaited.
    ///
    /// # Errors
    ///
    /// As [`Runtime::propose_in_session`].
    pub async fn propose_in_session_async(
        &self,
        tag: SessionTag,
        command: S::Command,
    ) -> Result<S::Output, ProposeError> {
        self.propose_async_in(Some(tag), command).await
    }

    /// A proposal, in a client session or not, awaited.
    async fn propose_async_in(
        &self,
        session: Option<SessionTag>,
        command: S::Command,
    ) -> Result<S::Output, ProposeError> {
        let command = encode::<S>(&command, self.max_command)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let reply: Reply<S::Output> = Box::new(move |outcome| {
            let _ = tx.send(outcome);
        });
        self.call_async(Call::Propose {
            command,
            session,
            reply,
        })
        .await?;
        rx.await.unwrap_or(Err(ProposeError::Stopped))
    }

    /// [`Runtime::open_session`], awaited.
    ///
    /// # Errors
    ///
    /// As [`Runtime::open_session`].
    pub async fn open_session_async(&self) -> Result<u64, ProposeError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let reply: Reply<u64> = Box::new(move |outcome| {
            let _ = tx.send(outcome);
        });
        self.call_async(Call::Open(reply)).await?;
        rx.await.unwrap_or(Err(ProposeError::Stopped))
    }

    /// [`Runtime::read_local`], awaited (it never waits for the log).
    ///
    /// # Errors
    ///
    /// As [`Runtime::read_local`].
    pub async fn read_local_async<T: Send + 'static>(
        &self,
        read: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T, ProposeError> {
        self.read_async_via(ReadHow::Lease, read).await
    }

    /// [`Runtime::read_stale`], awaited.
    ///
    /// # Errors
    ///
    /// As [`Runtime::read_stale`].
    pub async fn read_stale_async<T: Send + 'static>(
        &self,
        read: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T, ProposeError> {
        self.read_async_via(ReadHow::Stale, read).await
    }

    async fn read_async_via<T: Send + 'static>(
        &self,
        how: ReadHow,
        read: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T, ProposeError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let read: ReadFn<S> = Box::new(move |state: Result<&S, ProposeError>| {
            let _ = tx.send(state.map(read));
        });
        self.call_async(Call::Read { how, read }).await?;
        rx.await.unwrap_or(Err(ProposeError::Stopped))
    }

    /// [`Runtime::status`], awaited.
    ///
    /// # Errors
    ///
    /// As [`Runtime::status`].
    pub async fn status_async(&self) -> Result<RuntimeStatus, ProposeError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.call_async(Call::Status(Box::new(move |s| {
            let _ = tx.send(s);
        })))
        .await?;
        rx.await.unwrap_or(Err(ProposeError::Stopped))
    }

    /// [`Runtime::read`], awaited.
    ///
    /// # Errors
    ///
    /// As [`Runtime::read`].
    pub async fn read_async<T: Send + 'static>(
        &self,
        read: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T, ProposeError> {
        self.read_async_via(ReadHow::Log, read).await
    }

    /// Queues `call` without blocking the thread: a full queue makes the
    /// task wait its turn.
    async fn call_async(&self, call: Call<S>) -> Result<(), ProposeError> {
        let mut input = worker::Input::Call(call);
        loop {
            match self.calls.try_send(input) {
                Ok(()) => return Ok(()),
                Err(mpsc::TrySendError::Full(back)) => {
                    input = back;
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                Err(mpsc::TrySendError::Disconnected(_)) => return Err(ProposeError::Stopped),
            }
        }
    }
}

/// A command's bytes, checked against `max` (the node's
/// [`NodeOptions::max_command()`]).
fn encode<S: StateMachine>(command: &S::Command, max: usize) -> Result<Vec<u8>, ProposeError> {
    let bytes = postcard::to_allocvec(command).map_err(|e| ProposeError::Encode(e.to_string()))?;
    if bytes.len() > max {
        return Err(ProposeError::TooLarge { len: bytes.len(), max });
    }
    Ok(bytes)
}

impl<S: StateMachine> Drop for Runtime<S> {
    fn drop(&mut self) {
        let _ = self.stop_thread();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine whose commands are byte strings.
    struct Log;

    impl StateMachine for Log {
        type Command = Vec<u8>;
        type Output = ();
        fn apply(&mut self, _: Vec<u8>) {}
        fn snapshot(&self) -> Vec<u8> {
            Vec::new()
        }
        fn restore(&mut self, _: &[u8]) -> Result<(), RestoreError> {
            Ok(())
        }
    }

    #[test]
    fn commands_are_checked_against_the_given_maximum() {
        // 100 bytes behind their one-byte length.
        let command = vec![7u8; 100];
        assert_eq!(encode::<Log>(&command, 101).unwrap().len(), 101);
        assert_eq!(
            encode::<Log>(&command, 100),
            Err(ProposeError::TooLarge { len: 101, max: 100 })
        );
        // Not bound to MAX_COMMAND either way.
        let big = vec![7u8; 2 * MAX_COMMAND];
        assert!(encode::<Log>(&big, 3 * MAX_COMMAND).is_ok());
        assert!(matches!(
            encode::<Log>(&big, MAX_COMMAND),
            Err(ProposeError::TooLarge { .. })
        ));
    }
}
