//! What a node's durable records say, parsed with the public wire types:
//! the ground truth persist-before-reveal is checked against.

use super::fasthash::FastMap as HashMap;
use super::Value;
use paxos_core::replica::wire::{decode_header, Items, Record, Slot};
use paxos_core::{Ballot, FORMAT_VERSION};

/// The state a node's durable records establish. Votes are kept as a
/// history: a vote once durable stays a fact even when a later record
/// replaces it.
#[derive(Clone, Debug, Default)]
pub struct DurableView {
    /// The highest ballot promised (an accepted ballot counts as promised).
    pub promised: Option<Ballot>,
    /// Every `(slot, ballot)` durably accepted, with its value.
    pub votes: HashMap<(Slot, Ballot), Option<Value>>,
    /// Every slot durably learned as decided, with its value.
    pub learned: HashMap<Slot, Option<Value>>,
    /// Per slot, what its newest record says, as a replay would leave the
    /// cell: a vote under a ballot, or a learned value (`None`).
    pub last: HashMap<Slot, Option<Ballot>>,
    /// The decided watermark a replay reaches.
    pub decided: Slot,
    /// The highest slot a snapshot record covers (the application's
    /// durable state is at least there).
    pub snapshot: Slot,
    /// Records parsed.
    pub records: u64,
    /// The node recorded that it lost its storage (a learner from then on).
    pub amnesiac: bool,
}

/// Decodes the record at the front of `bytes` (which carry no version
/// byte); returns it and how many bytes it took.
fn take_record(bytes: &[u8]) -> Result<(Record, usize), String> {
    let mut framed = Vec::with_capacity(bytes.len() + 1);
    framed.push(FORMAT_VERSION);
    framed.extend_from_slice(bytes);
    let (record, rest) = decode_header::<Record>(&framed).map_err(|e| format!("bad record: {e}"))?;
    Ok((record, bytes.len() - rest.len()))
}

/// Decodes the `Option<V>` items at the front of `bytes`; returns them and
/// how many bytes they took.
fn take_values(bytes: &[u8]) -> Result<(Vec<Option<Value>>, usize), String> {
    let mut items = Items::<Option<Value>>::new(bytes).map_err(|e| format!("bad count: {e}"))?;
    let values = items
        .by_ref()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad value: {e}"))?;
    let rest = items.finish().map_err(|e| format!("bad items: {e}"))?;
    Ok((values, bytes.len() - rest.len()))
}

impl DurableView {
    /// Applies one batch written by `poll_persist`, as a replay would.
    pub fn apply_batch(&mut self, batch: &[u8]) -> Result<(), String> {
        let (&version, mut rest) = batch.split_first().ok_or("empty batch")?;
        if version != FORMAT_VERSION {
            return Err(format!("batch of version {version}"));
        }
        while !rest.is_empty() {
            let (record, used) = take_record(rest)?;
            rest = &rest[used..];
            self.records += 1;
            match record {
                Record::Promised { ballot } => self.promised = self.promised.max(Some(ballot)),
                Record::Amnesiac => self.amnesiac = true,
                Record::Committed { slot } => self.decided = self.decided.max(slot),
                Record::Snapshot { slot } => {
                    self.decided = self.decided.max(slot);
                    self.snapshot = self.snapshot.max(slot);
                }
                Record::Accepted { ballot, first } => {
                    self.promised = self.promised.max(Some(ballot));
                    let (values, used) = take_values(rest)?;
                    rest = &rest[used..];
                    for (slot, value) in (first..).zip(values) {
                        self.votes.insert((slot, ballot), value);
                        self.last.insert(slot, Some(ballot));
                    }
                }
                Record::Learned { first } => {
                    let (values, used) = take_values(rest)?;
                    rest = &rest[used..];
                    for (slot, value) in (first..).zip(values) {
                        self.learned.insert(slot, value);
                        self.last.insert(slot, None);
                        if slot == self.decided {
                            self.decided = slot + 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `slot` is durably accepted under `ballot` (returning the
    /// value), or durably known decided (`Some(None)` when only the
    /// watermark says so).
    pub fn backs_vote(&self, slot: Slot, ballot: Ballot) -> Option<Option<&Option<Value>>> {
        if let Some(v) = self.votes.get(&(slot, ballot)) {
            return Some(Some(v));
        }
        if let Some(v) = self.learned.get(&slot) {
            return Some(Some(v));
        }
        (slot < self.decided).then_some(None)
    }
}
