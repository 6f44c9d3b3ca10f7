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
/// Bytes of cached outputs one session keeps; beyond it its lowest
/// outputs are dropped, their requests still known as applied (a retry
/// is told it was applied earlier), so one session cannot push the
/// others out.
pub const MAX_SESSION_BYTES: usize = MAX_CACHED_BYTES / 8;

/// A request applied in a session: the digest of its command (a retry
/// must carry the same command) and its output, unless dropped to keep
/// the byte bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Applied {
    digest: u64,
    output: Option<Vec<u8>>,
}

impl Applied {
    fn bytes(&self) -> usize {
        self.output.as_ref().map_or(0, Vec::len)
    }
}

/// One client session: its unacknowledged requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Client {
    /// Requests below this are acknowledged or dropped.
    floor: u64,
    applied: BTreeMap<u64, Applied>,
    /// Bytes of its cached outputs.
    bytes: usize,
    last_slot: u64,
}

impl Client {
    /// Drops the outputs of the lowest requests until at most `max` bytes
    /// remain, keeping the requests known as applied. The bytes freed.
    fn shed(&mut self, max: usize) -> usize {
        let mut freed = 0;
        for applied in self.applied.values_mut() {
            if self.bytes <= max {
                break;
            }
            let n = applied.bytes();
            applied.output = None;
            self.bytes -= n;
            freed += n;
        }
        freed
    }
}

/// What [`Clients::check`] found for a session request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check<'a> {
    /// Not applied yet: apply it, then [`Clients::record`] its output.
    New,
    /// Applied before: its output, encoded, if still kept.
    Done(Option<&'a [u8]>),
    /// The session is unknown (never opened, or closed to make room), or
    /// the request is below what the session keeps: its outcome is lost,
    /// and it must not be applied.
    Expired,
    /// Applied before with another command: this one must not be applied.
    Conflict,
}

/// The replicated table of client sessions (as in Raft's client
/// sessions): each client opens a session, numbers its requests, and
/// says with each which outputs it holds. A request applies once per
/// (session, number). Session numbers are derived from a secret the
/// opening node drew, so one client cannot guess another's session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clients {
    /// Sessions opened so far.
    opened: u64,
    clients: BTreeMap<u64, Client>,
    /// Bytes of cached outputs.
    bytes: usize,
}

/// The digest of a session command's bytes: a retry must carry the same.
pub fn digest(command: &[u8]) -> u64 {
    let hash = blake3::hash(command);
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().unwrap_or_default())
}

impl Clients {
    /// Opens a session at `slot` with the opener's secret `nonce`; its
    /// number (never 0, never one in use).
    pub fn open(&mut self, slot: u64, nonce: u64) -> u64 {
        if self.clients.len() >= MAX_CLIENTS {
            self.close_least_recent(None);
        }
        let client = loop {
            self.opened += 1;
            let mut input = [0u8; 16];
            input[..8].copy_from_slice(&self.opened.to_le_bytes());
            input[8..].copy_from_slice(&nonce.to_le_bytes());
            let id = digest(&input);
            if id != 0 && !self.clients.contains_key(&id) {
                break id;
            }
        };
        self.clients.insert(
            client,
            Client {
                last_slot: slot,
                ..Client::default()
            },
        );
        client
    }

    /// Whether `tag`'s request, whose command has `digest`, was applied;
    /// drops what the client acknowledged.
    pub fn check(&mut self, tag: SessionTag, digest: u64) -> Check<'_> {
        let Some(client) = self.clients.get_mut(&tag.client) else {
            return Check::Expired;
        };
        if tag.acked > client.floor {
            client.floor = tag.acked;
            let kept = client.applied.split_off(&tag.acked);
            let dropped: usize = client.applied.values().map(Applied::bytes).sum();
            client.bytes -= dropped;
            self.bytes -= dropped;
            client.applied = kept;
        }
        if tag.seq < client.floor {
            return Check::Expired;
        }
        match client.applied.get(&tag.seq) {
            Some(applied) if applied.digest != digest => Check::Conflict,
            Some(applied) => Check::Done(applied.output.as_deref()),
            None => Check::New,
        }
    }

    /// Records the output of `tag`'s request, whose command has `digest`,
    /// applied at `slot` (after a [`Check::New`]).
    pub fn record(&mut self, tag: SessionTag, digest: u64, slot: u64, output: Vec<u8>) {
        let Some(client) = self.clients.get_mut(&tag.client) else {
            return;
        };
        client.last_slot = slot;
        client.bytes += output.len();
        self.bytes += output.len();
        let applied = Applied {
            digest,
            output: Some(output),
        };
        if let Some(old) = client.applied.insert(tag.seq, applied) {
            client.bytes -= old.bytes();
            self.bytes -= old.bytes();
        }
        while client.applied.len() > MAX_UNACKED {
            if let Some((seq, old)) = client.applied.pop_first() {
                client.floor = seq + 1;
                client.bytes -= old.bytes();
                self.bytes -= old.bytes();
            }
        }
        self.bytes -= client.shed(MAX_SESSION_BYTES);
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
            self.bytes -= client.bytes;
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

    /// Every node's table answers a retry with the first output.
    #[test]
    fn a_client_retry_gets_the_first_output() {
        let mut c = Clients::default();
        let a = c.open(0, 7);
        let b = c.open(1, 7);
        assert_ne!(a, b);
        let d = digest(b"put x 1");
        assert_eq!(c.check(tag(a, 0, 0), d), Check::New);
        c.record(tag(a, 0, 0), d, 2, b"first".to_vec());
        assert_eq!(c.check(tag(a, 0, 0), d), Check::Done(Some(&b"first"[..])));
        assert_eq!(c.check(tag(b, 0, 0), d), Check::New, "sessions are separate");
        assert_eq!(c.check(tag(a ^ 1, 0, 0), d), Check::Expired, "never opened");
        // Acknowledging drops the output: a retry below is refused.
        assert_eq!(c.check(tag(a, 1, 1), d), Check::New);
        assert_eq!(c.check(tag(a, 0, 1), d), Check::Expired);
        assert_eq!(c.bytes, 0);
    }

    /// A request number reused for another command is refused, not taken
    /// for a retry of the first (whose output would be returned for a
    /// command never applied).
    #[test]
    fn a_request_number_is_bound_to_its_command() {
        let mut c = Clients::default();
        let a = c.open(0, 1);
        c.record(tag(a, 0, 0), digest(b"put x 1"), 1, b"out".to_vec());
        assert_eq!(c.check(tag(a, 0, 0), digest(b"put y 2")), Check::Conflict);
        assert_eq!(
            c.check(tag(a, 0, 0), digest(b"put x 1")),
            Check::Done(Some(&b"out"[..]))
        );
    }

    /// Session numbers depend on the opener's secret: knowing how many
    /// sessions were opened does not give another client's number.
    #[test]
    fn session_numbers_depend_on_the_openers_secret() {
        let (mut c, mut d) = (Clients::default(), Clients::default());
        let (a, b) = (c.open(0, 1), d.open(0, 2));
        assert_ne!(a, b, "the same position, another secret");
        assert!(a > 1 << 8 && b > 1 << 8, "not a small counter: {a} {b}");
        // Replicas that open with the same secrets agree.
        let mut e = Clients::default();
        assert_eq!(e.open(0, 1), a);
    }

    #[test]
    fn client_tables_stay_bounded() {
        let mut c = Clients::default();
        let d = digest(b"");
        let a = c.open(0, 0);
        for seq in 0..(MAX_UNACKED as u64 + 3) {
            assert_eq!(c.check(tag(a, seq, 0), d), Check::New);
            c.record(tag(a, seq, 0), d, seq, vec![1; 10]);
        }
        assert_eq!(c.clients[&a].applied.len(), MAX_UNACKED);
        assert_eq!(c.check(tag(a, 0, 0), d), Check::Expired, "dropped, so refused");
        assert_eq!(c.bytes, MAX_UNACKED * 10);
        for slot in 0..(MAX_CLIENTS as u64) {
            c.open(1000 + slot, slot);
        }
        assert_eq!(c.clients.len(), MAX_CLIENTS);
        assert_eq!(
            c.check(tag(a, 300, 0), d),
            Check::Expired,
            "the least recent session closed"
        );
        assert_eq!(c.bytes, 0, "its outputs went with it");
        // Outputs beyond the byte budget close the least recent sessions.
        let big = vec![0; MAX_SESSION_BYTES];
        let mut ids = Vec::new();
        for i in 0..9 {
            let id = c.open(5000 + i, i);
            c.record(tag(id, 0, 0), d, 5000 + i, big.clone());
            ids.push(id);
        }
        assert!(c.bytes <= MAX_CACHED_BYTES);
        assert_eq!(c.check(tag(ids[0], 0, 0), d), Check::Expired, "the least recent went");
        let kept = matches!(c.check(tag(ids[8], 0, 0), d), Check::Done(Some(o)) if o.len() == big.len());
        assert!(kept, "the newest output is kept");
    }

    /// One session's outputs beyond its share are dropped, lowest first,
    /// and their requests stay known as applied: it closes no other
    /// session, and a retry is never applied again.
    #[test]
    fn one_session_cannot_push_the_others_out() {
        let mut c = Clients::default();
        let d = digest(b"");
        let others: Vec<u64> = (0..10).map(|i| c.open(i, i)).collect();
        for &o in &others {
            c.record(tag(o, 0, 0), d, 20, vec![1; 100]);
        }
        let greedy = c.open(30, 99);
        for seq in 0..(MAX_UNACKED as u64) {
            c.record(tag(greedy, seq, 0), d, 40 + seq, vec![2; 1 << 20]);
        }
        assert!(c.bytes <= MAX_CACHED_BYTES, "{} bytes cached", c.bytes);
        assert_eq!(
            c.clients[&greedy].bytes,
            c.clients[&greedy].applied.values().map(Applied::bytes).sum::<usize>()
        );
        for &o in &others {
            assert_eq!(
                c.check(tag(o, 0, 0), d),
                Check::Done(Some(&[1u8; 100][..])),
                "another session closed"
            );
        }
        assert_eq!(
            c.check(tag(greedy, 0, 0), d),
            Check::Done(None),
            "applied, its output dropped"
        );
        let newest = MAX_UNACKED as u64 - 1;
        assert!(matches!(c.check(tag(greedy, newest, 0), d), Check::Done(Some(_))));
    }
}
