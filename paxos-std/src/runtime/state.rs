//! The replicated state: the application's state machine and the two
//! session tables, applied entry by entry in slot order. One home for
//! applying an entry, used alike when a node replays its log at start-up
//! and when it applies what was just decided, so the two cannot drift.

use super::entry::{Body, Entry};
use super::sessions::{self, Check, Clients, Sessions};
use super::{RestoreError, StateMachine};
use serde::{Deserialize, Serialize};

/// What applying one entry did.
pub(super) enum Outcome<O> {
    /// The command was applied now: its output.
    Output(O),
    /// A client session's retry, on the node that took it: applied before,
    /// the output it cached.
    Cached(O),
    /// A client session was opened.
    Opened(u64),
    /// A read barrier: nothing applied.
    Read,
    /// Applied before, or finished at its node: not applied again (and,
    /// for a session retry on another node than the asker's, not decoded).
    Repeated,
    /// A client session's request whose outcome is lost (the session was
    /// closed, or the request is below what it keeps): not applied.
    Expired,
    /// A client session's request number used before for another
    /// command: not applied.
    Conflict,
    /// The command's bytes do not decode: skipped on every node alike.
    Undecodable,
}

/// The state machine and its session tables: everything a snapshot holds.
pub(super) struct Replicated<S> {
    pub(super) machine: S,
    pub(super) sessions: Sessions,
    pub(super) clients: Clients,
}

/// A snapshot's contents: what compaction keeps and what a node behind
/// installs.
#[derive(Deserialize)]
struct Snapshot {
    /// Every slot below this one is applied.
    slot: u64,
    sessions: Sessions,
    clients: Clients,
    app: Vec<u8>,
}

/// [`Snapshot`] as it is written, borrowing the tables.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    slot: u64,
    sessions: &'a Sessions,
    clients: &'a Clients,
    app: Vec<u8>,
}

impl<S: StateMachine> Replicated<S> {
    /// `machine` with empty session tables.
    pub(super) fn new(machine: S) -> Self {
        Replicated {
            machine,
            sessions: Sessions::default(),
            clients: Clients::default(),
        }
    }

    /// Applies `entry`, decided at `slot`. `ours`: this node took the
    /// request, so a session retry's cached output is decoded for it.
    pub(super) fn apply(&mut self, slot: u64, entry: &Entry<'_>, ours: bool) -> Outcome<S::Output> {
        match entry.body {
            Body::Read => Outcome::Read,
            Body::Command(bytes) => {
                if !self.sessions.first_time(entry.origin, entry.done_below, slot) {
                    return Outcome::Repeated;
                }
                match postcard::from_bytes::<S::Command>(bytes) {
                    Ok(command) => Outcome::Output(self.machine.apply(command)),
                    Err(_) => Outcome::Undecodable,
                }
            }
            Body::OpenSession { nonce } => {
                if !self.sessions.first_time(entry.origin, entry.done_below, slot) {
                    return Outcome::Repeated;
                }
                Outcome::Opened(self.clients.open(slot, nonce))
            }
            Body::Session { tag, command } => {
                let digest = sessions::digest(command);
                match self.clients.check(tag, digest) {
                    Check::Expired => Outcome::Expired,
                    Check::Conflict => Outcome::Conflict,
                    // The output was dropped to keep the bounds, or does not
                    // decode: applied earlier, its output lost.
                    Check::Done(Some(output)) if ours => {
                        postcard::from_bytes(output).map_or(Outcome::Repeated, Outcome::Cached)
                    }
                    Check::Done(_) => Outcome::Repeated,
                    Check::New => {
                        let Ok(command) = postcard::from_bytes::<S::Command>(command) else {
                            return Outcome::Undecodable;
                        };
                        let output = self.machine.apply(command);
                        // An output that does not encode is kept empty: a
                        // retry is then told it was applied earlier.
                        let encoded = postcard::to_allocvec(&output).unwrap_or_default();
                        self.clients.record(tag, digest, slot, encoded);
                        Outcome::Output(output)
                    }
                }
            }
        }
    }

    /// The snapshot of everything applied below `slot`.
    pub(super) fn snapshot(&self, slot: u64) -> Vec<u8> {
        let snapshot = SnapshotRef {
            slot,
            sessions: &self.sessions,
            clients: &self.clients,
            app: self.machine.snapshot(),
        };
        postcard::to_allocvec(&snapshot).unwrap_or_default()
    }

    /// Replaces the state by a decoded snapshot's. Nothing changes when
    /// the machine refuses its part.
    pub(super) fn restore(&mut self, snapshot: Decoded) -> Result<(), RestoreError> {
        self.machine.restore(&snapshot.0.app)?;
        self.sessions = snapshot.0.sessions;
        self.clients = snapshot.0.clients;
        Ok(())
    }
}

/// A snapshot that decoded, not yet restored.
pub(super) struct Decoded(Snapshot);

impl Decoded {
    /// Decodes a [`Replicated::snapshot`]; `None` if the bytes are not one.
    pub(super) fn new(bytes: &[u8]) -> Option<Decoded> {
        postcard::from_bytes(bytes).ok().map(Decoded)
    }

    /// Every slot below this one is covered.
    pub(super) fn slot(&self) -> u64 {
        self.0.slot
    }
}
