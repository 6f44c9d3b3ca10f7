//! The replicated tables that make a retried entry apply once.
//!
//! Two kinds of retry reach the log. A node retries its own requests
//! (after a leader change, a lost forward): [`Sessions`] records, per run
//! of each node, which request numbers were applied. A client retries
//! through another node after a lost reply: [`Clients`] records, per
//! client session, the output of each request the client has not yet
//! acknowledged, so the retry gets the first application's output.
//!
//! Both are part of the replicated state: every node updates them alike,
//! in slot order, and they travel in snapshots. Every bound is enforced
//! the same way on every node (eviction by least recent slot, ties by
//! key), so the tables never diverge.

use super::entry::{Origin, SessionTag};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Request numbers one node run may have applied above its floor. A node
/// refuses new requests (`Busy`) rather than let its oldest unfinished
/// request fall this far behind its newest, so for a correct node the
/// window never overflows (docs/safety.md, "each request applied once").
pub const SESSION_WINDOW: usize = 4096;
/// Node runs remembered; the one applied to least recently is dropped
/// first.
pub const MAX_SESSIONS: usize = 256;

/// One node run's applied requests: everything below `floor` is finished,
/// and `seen` holds the applied numbers at or above it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Run {
    floor: u64,
    seen: BTreeSet<u64>,
    /// The slot of the last entry applied for it (for eviction).
    last_slot: u64,
}

/// The replicated table of requests each node run applied, so that an
/// entry decided twice (retried after a leader change, forwarded twice)
/// is applied once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    runs: BTreeMap<(u8, u64), Run>,
}

impl Sessions {
    /// Records `origin` as applied at `slot`; false if it was already, or
    /// if it is below what its node declared finished (`done_below`):
    /// then the entry must not be applied.
    ///
    /// The floor rises to `done_below` and over the contiguous applied
    /// prefix above it, never past a number that was neither applied nor
    /// declared finished: a request still in flight at its node cannot be
    /// forgotten, and so cannot be skipped. A node keeps its unfinished
    /// requests within [`SESSION_WINDOW`] numbers of its newest, so `seen`
    /// stays within the window; should a faulty node overflow it, the
    /// lowest numbers are forgotten (their requests, if decided later,
    /// are not applied) rather than memory grow.
    pub fn first_time(&mut self, origin: Origin, done_below: u64, slot: u64) -> bool {
        let key = (origin.node, origin.incarnation);
        if !self.runs.contains_key(&key) && self.runs.len() >= MAX_SESSIONS {
            let oldest = self
                .runs
                .iter()
                .min_by_key(|(k, s)| (s.last_slot, **k))
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.runs.remove(&oldest);
            }
        }
        let run = self.runs.entry(key).or_default();
        run.raise_floor(done_below);
        if origin.id < run.floor || !run.seen.insert(origin.id) {
            return false;
        }
        run.last_slot = slot;
        let floor = run.floor;
        run.raise_floor(floor);
        while run.seen.len() > SESSION_WINDOW {
            if let Some(lowest) = run.seen.pop_first() {
                run.floor = lowest + 1;
            }
        }
        true
    }
}

impl Run {
    /// Raises the floor to `to`, then over applied numbers contiguous
    /// with it.
    fn raise_floor(&mut self, to: u64) {
        if to > self.floor {
            self.floor = to;
            while self.seen.first().is_some_and(|&n| n < to) {
                self.seen.pop_first();
            }
        }
        while self.seen.first() == Some(&self.floor) {
            self.seen.pop_first();
            self.floor += 1;
        }
    }
}

/// Client sessions kept; opening one more drops the least recently used.
pub const MAX_CLIENTS: usize = 1024;
/// Outputs one session keeps for requests its client has not
/// acknowledged; beyond it the lowest are dropped (a retry of them is
/// refused as expired). A client keeps fewer requests in flight.
pub const MAX_UNACKED: usize = 256;
/// Bytes of cached outputs across all sessions; beyond it the least
/// recently used sessions are closed.
pub const MAX_CACHED_BYTES: usize = 64 << 20;

/// One client session: the outputs of its unacknowledged requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Client {
    /// Requests below this are acknowledged or dropped.
    floor: u64,
    outputs: BTreeMap<u64, Vec<u8>>,
    last_slot: u64,
}

impl Client {
    fn bytes(&self) -> usize {
        self.outputs.values().map(Vec::len).sum()
    }
}

/// What [`Clients::check`] found for a session request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check<'a> {
    /// Not applied yet: apply it, then [`Clients::record`] its output.
    New,
    /// Applied before: its output, encoded.
    Done(&'a [u8]),
    /// The session is unknown (never opened, or closed to make room), or
    /// the request is below what the session keeps: its outcome is lost,
    /// and it must not be applied.
    Expired,
}

/// The replicated table of client sessions (as in Raft's client
/// sessions): each client opens a session, numbers its requests, and
/// says with each which outputs it holds. A request applies once per
/// (session, number).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clients {
    /// The next session number.
    next: u64,
    clients: BTreeMap<u64, Client>,
    /// Bytes of cached outputs.
    bytes: usize,
}

impl Clients {
    /// Opens a session at `slot`; its number.
    pub fn open(&mut self, slot: u64) -> u64 {
        if self.clients.len() >= MAX_CLIENTS {
            self.close_least_recent(None);
        }
        self.next += 1;
        let client = self.next;
        self.clients.insert(
            client,
            Client {
                last_slot: slot,
                ..Client::default()
            },
        );
        client
    }

    /// Whether `tag`'s request was applied; drops the outputs the client
    /// acknowledged.
    pub fn check(&mut self, tag: SessionTag) -> Check<'_> {
        let Some(client) = self.clients.get_mut(&tag.client) else {
            return Check::Expired;
        };
        if tag.acked > client.floor {
            client.floor = tag.acked;
            let kept = client.outputs.split_off(&tag.acked);
            self.bytes -= client.bytes();
            client.outputs = kept;
        }
        if tag.seq < client.floor {
            return Check::Expired;
        }
        match client.outputs.get(&tag.seq) {
            Some(output) => Check::Done(output),
            None => Check::New,
        }
    }

    /// Records the output of `tag`'s request, applied at `slot` (after a
    /// [`Check::New`]).
    pub fn record(&mut self, tag: SessionTag, slot: u64, output: Vec<u8>) {
        let Some(client) = self.clients.get_mut(&tag.client) else {
            return;
        };
        client.last_slot = slot;
        self.bytes += output.len();
        if let Some(old) = client.outputs.insert(tag.seq, output) {
            self.bytes -= old.len();
        }
        while client.outputs.len() > MAX_UNACKED {
            if let Some((seq, old)) = client.outputs.pop_first() {
                client.floor = seq + 1;
                self.bytes -= old.len();
            }
        }
        while self.bytes > MAX_CACHED_BYTES && self.clients.len() > 1 {
            self.close_least_recent(Some(tag.client));
        }
    }

    /// Closes the least recently used session other than `keep`.
    fn close_least_recent(&mut self, keep: Option<u64>) {
        let oldest = self
            .clients
            .iter()
            .filter(|(id, _)| Some(**id) != keep)
            .min_by_key(|(id, c)| (c.last_slot, **id))
            .map(|(id, _)| *id);
        if let Some(client) = oldest.and_then(|id| self.clients.remove(&id)) {
            self.bytes -= client.bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(node: u8, incarnation: u64, id: u64) -> Origin {
        Origin { node, incarnation, id }
    }

    #[test]
    fn a_request_is_applied_once_in_any_order() {
        let mut s = Sessions::default();
        assert!(s.first_time(origin(1, 5, 2), 0, 0));
        assert!(s.first_time(origin(1, 5, 0), 0, 1), "out of order is fine");
        assert!(!s.first_time(origin(1, 5, 2), 0, 2), "a retry is refused");
        assert!(!s.first_time(origin(1, 5, 0), 0, 2), "below the floor now");
        assert!(
            s.first_time(origin(1, 6, 2), 0, 3),
            "another run of the node is another session"
        );
        assert!(s.first_time(origin(2, 5, 2), 0, 4), "another node is another session");
    }

    #[test]
    fn the_floor_never_passes_a_request_still_in_flight() {
        // Request 0 stays in flight at its node (done_below stays 0) while
        // every later number its node may issue (the window) is applied.
        let mut s = Sessions::default();
        let n = SESSION_WINDOW as u64;
        for id in 1..n {
            assert!(s.first_time(origin(1, 1, id), 0, id));
        }
        assert_eq!(s.runs[&(1, 1)].floor, 0, "request 0 was never finished");
        assert!(
            s.first_time(origin(1, 1, 0), 0, n),
            "the late request still applies once"
        );
        assert_eq!(
            s.runs[&(1, 1)].floor,
            n,
            "then the floor jumps over the contiguous prefix"
        );
        assert!(s.runs[&(1, 1)].seen.is_empty());
        assert!(!s.first_time(origin(1, 1, 0), 0, n + 1));
    }

    #[test]
    fn done_below_forgets_finished_requests() {
        let mut s = Sessions::default();
        assert!(s.first_time(origin(1, 1, 5), 0, 0));
        // Requests 0..5 were given up at the node: an entry saying so
        // raises the floor past them, and a late copy of 3 is not applied.
        assert!(s.first_time(origin(1, 1, 7), 5, 1));
        assert!(
            !s.first_time(origin(1, 1, 3), 0, 2),
            "finished at its node: never applied after"
        );
        assert_eq!(s.runs[&(1, 1)].floor, 6);
        assert!(s.first_time(origin(1, 1, 6), 0, 3));
        assert_eq!(s.runs[&(1, 1)].floor, 8);
    }

    #[test]
    fn the_window_and_the_session_count_stay_bounded() {
        let mut s = Sessions::default();
        // A faulty node that never declares anything finished and skips
        // request 0: the window still bounds the table.
        for id in 1..(SESSION_WINDOW as u64 + 11) {
            assert!(s.first_time(origin(1, 1, id), 0, id));
        }
        let run = &s.runs[&(1, 1)];
        assert!(run.seen.len() <= SESSION_WINDOW);
        assert_eq!(run.floor, SESSION_WINDOW as u64 + 11, "forgotten, then contiguous");
        assert!(
            !s.first_time(origin(1, 1, 0), 0, 0),
            "forgotten numbers are not applied"
        );
        for incarnation in 0..(MAX_SESSIONS as u64 + 5) {
            s.first_time(origin(3, incarnation, 0), 0, 10_000 + incarnation);
        }
        assert_eq!(s.runs.len(), MAX_SESSIONS);
        assert!(
            !s.runs.contains_key(&(1, 1)),
            "the least recently applied run went first"
        );
    }

    fn tag(client: u64, seq: u64, acked: u64) -> SessionTag {
        SessionTag { client, seq, acked }
    }

    #[test]
    fn a_client_retry_gets_the_first_output() {
        let mut c = Clients::default();
        let a = c.open(0);
        let b = c.open(1);
        assert_ne!(a, b);
        assert_eq!(c.check(tag(a, 0, 0)), Check::New);
        c.record(tag(a, 0, 0), 2, b"first".to_vec());
        assert_eq!(c.check(tag(a, 0, 0)), Check::Done(b"first"));
        assert_eq!(c.check(tag(b, 0, 0)), Check::New, "sessions are separate");
        assert_eq!(c.check(tag(99, 0, 0)), Check::Expired, "never opened");
        // Acknowledging drops the output: a retry below is refused.
        assert_eq!(c.check(tag(a, 1, 1)), Check::New);
        assert_eq!(c.check(tag(a, 0, 1)), Check::Expired);
        assert_eq!(c.bytes, 0);
    }

    #[test]
    fn client_tables_stay_bounded() {
        let mut c = Clients::default();
        let a = c.open(0);
        for seq in 0..(MAX_UNACKED as u64 + 3) {
            assert_eq!(c.check(tag(a, seq, 0)), Check::New);
            c.record(tag(a, seq, 0), seq, vec![1; 10]);
        }
        assert_eq!(c.clients[&a].outputs.len(), MAX_UNACKED);
        assert_eq!(c.check(tag(a, 0, 0)), Check::Expired, "dropped, so refused");
        assert_eq!(c.bytes, MAX_UNACKED * 10);
        for slot in 0..(MAX_CLIENTS as u64) {
            c.open(1000 + slot);
        }
        assert_eq!(c.clients.len(), MAX_CLIENTS);
        assert_eq!(
            c.check(tag(a, 300, 0)),
            Check::Expired,
            "the least recent session closed"
        );
        assert_eq!(c.bytes, 0, "its outputs went with it");
        // Outputs beyond the byte budget close the least recent sessions.
        let big = vec![0; MAX_CACHED_BYTES / 4 + 1];
        let mut ids = Vec::new();
        for i in 0..5 {
            let id = c.open(5000 + i);
            c.record(tag(id, 0, 0), 5000 + i, big.clone());
            ids.push(id);
        }
        assert!(c.bytes <= MAX_CACHED_BYTES);
        assert_eq!(c.check(tag(ids[0], 0, 0)), Check::Expired, "the least recent went");
        let kept = matches!(c.check(tag(ids[4], 0, 0)), Check::Done(o) if o.len() == big.len());
        assert!(kept, "the newest output is kept");
    }
}
