//! Clients: each proposes a stream of unique values, one at a time,
//! retrying on refusals, displacement and crashes, and records what
//! happened.

use super::Value;
use paxos_core::replica::{ProposalId, Slot};
use paxos_core::Instant;

/// The value a client proposes as its `seq`-th: unique across the run.
pub fn client_value(client: usize, seq: u32) -> Value {
    let mut bytes = [0u8; 6];
    bytes[0] = b'c';
    bytes[1] = client as u8;
    bytes[2..6].copy_from_slice(&seq.to_le_bytes());
    Value::from_slice(&bytes).expect("six bytes fit")
}

/// Which client and which of its values `value` is, if a client made it.
pub fn parse_value(value: &Value) -> Option<(usize, u32)> {
    let b = value.as_slice();
    (b.len() == 6 && b[0] == b'c').then(|| (usize::from(b[1]), u32::from_le_bytes([b[2], b[3], b[4], b[5]])))
}

/// What a client is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// About to propose (a wake-up is scheduled).
    Ready,
    /// Its value was accepted for proposing by `node` (in its
    /// `incarnation`) as `proposal`: waiting for the outcome.
    Waiting {
        /// The node.
        node: usize,
        /// The node's lifetime.
        incarnation: u32,
        /// The id the node gave.
        proposal: ProposalId,
        /// When it was accepted.
        since: Instant,
    },
    /// Finished: the run is winding down.
    Done,
}

/// One thing that happened to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// `propose` at `node` returned this.
    Proposed {
        /// The value's sequence number.
        seq: u32,
        /// The node asked.
        node: usize,
        /// The answer, as text.
        result: String,
    },
    /// The node was down.
    Refused {
        /// The node.
        node: usize,
    },
    /// The value was decided.
    Decided {
        /// The value's sequence number.
        seq: u32,
        /// Where.
        slot: Slot,
    },
    /// The proposal was displaced; the client retries.
    Displaced {
        /// The value's sequence number.
        seq: u32,
    },
    /// No outcome came within the bound (a waived violation); the client
    /// gives up on the proposal and retries.
    Abandoned {
        /// The value's sequence number.
        seq: u32,
    },
    /// The node crashed with the proposal pending; the client retries.
    Lost {
        /// The value's sequence number.
        seq: u32,
    },
}

/// A client.
#[derive(Clone, Debug)]
pub struct Client {
    /// Its index, encoded in its values.
    pub id: usize,
    /// The sequence number of its current value.
    pub seq: u32,
    /// The node it will ask next.
    pub target: usize,
    /// What it is doing.
    pub state: ClientState,
    /// Stop after the current value is decided.
    pub finishing: bool,
    /// Identifies the wake-up that is due; older ones are ignored.
    pub wake_token: u64,
    /// Everything that happened to it, with the time.
    pub history: Vec<(Instant, ClientOp)>,
}

impl Client {
    /// A client that will first ask `target`.
    pub fn new(id: usize, target: usize) -> Self {
        Client {
            id,
            seq: 0,
            target,
            state: ClientState::Ready,
            finishing: false,
            wake_token: 0,
            history: Vec::new(),
        }
    }

    /// Its current value.
    pub fn value(&self) -> Value {
        client_value(self.id, self.seq)
    }

    /// Notes what happened.
    pub fn record(&mut self, now: Instant, op: ClientOp) {
        self.history.push((now, op));
    }
}
