//! The spec's messages (`msgs` in `spec/Replica.tla`) and durable records
//! (`disk`), parsed from the bytes a node sends and writes with the
//! replica's public wire types only.

use crate::sim::Value;
use paxos_core::replica::wire::{decode_header, Items, PromisedEntry, Record};
use paxos_core::replica::{Header, Slot};
use paxos_core::{Ballot, FORMAT_VERSION};

/// A value as the spec sees it: `None` is the no-op `NoOp`.
pub type Val = Option<Value>;

/// One message of the spec's `msgs`, as a node sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// `Prepare{bal, from, until}`: a candidate asks for promises.
    Prepare {
        /// The campaign's ballot.
        ballot: Ballot,
        /// The candidate's decided watermark when it campaigned.
        from: Slot,
        /// One past the last slot it asks about.
        until: Slot,
    },
    /// `Promise{bal, dec, beyond, ent}`, or a part of one.
    Promise(PromisePart),
    /// `Append{bal, commit, first, vals}`.
    Append {
        /// The leader's ballot.
        ballot: Ballot,
        /// Every slot below is decided (the leader's watermark).
        commit: Slot,
        /// The slot of the first value.
        first: Slot,
        /// The values of `first..`.
        values: Vec<Val>,
    },
    /// `Accepted{bal, first, count}`.
    Accepted {
        /// The ballot voted.
        ballot: Ballot,
        /// The first slot.
        first: Slot,
        /// How many slots.
        count: u32,
    },
    /// `Nack{bal, prom, dec}`.
    Nack {
        /// The ballot refused.
        ballot: Ballot,
        /// The refuser's promise.
        promised: Option<Ballot>,
        /// The refuser's decided watermark.
        decided: Slot,
    },
    /// `CatchUp{from}`.
    CatchUp {
        /// The first slot the sender lacks.
        from: Slot,
    },
    /// `Learn{first, vals}`: decided values.
    Learn {
        /// The slot of the first value.
        first: Slot,
        /// The values of `first..`.
        values: Vec<Val>,
    },
}

fn values(rest: &[u8]) -> Result<Vec<Val>, String> {
    let mut items = Items::<Val>::new(rest).map_err(|e| format!("count: {e}"))?;
    let values = items
        .by_ref()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("value: {e}"))?;
    let rest = items.finish().map_err(|e| format!("items: {e}"))?;
    if rest.is_empty() {
        Ok(values)
    } else {
        Err(format!("{} bytes after the values", rest.len()))
    }
}

fn nothing_after(rest: &[u8]) -> Result<(), String> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes after the header", rest.len()))
    }
}

/// A promise, or a part of one: it answers for `first..` the prepare's
/// `until` when `complete`, else for `first..=` its last entry's slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromisePart {
    /// The ballot promised.
    pub ballot: Ballot,
    /// The acceptor's decided watermark.
    pub decided: Slot,
    /// It holds votes at or beyond the prepare's `until`.
    pub beyond: bool,
    /// The first slot this part answers for.
    pub first: Slot,
    /// The last part.
    pub complete: bool,
    /// The votes reported: `(slot, ballot, value)`.
    pub entries: Vec<(Slot, Ballot, Val)>,
}

impl Msg {
    /// Parses a frame a replica sent.
    pub fn parse(frame: &[u8]) -> Result<Msg, String> {
        let (header, rest) = decode_header::<Header>(frame).map_err(|e| format!("header: {e}"))?;
        Ok(match header {
            Header::Prepare { ballot, from, until } => {
                nothing_after(rest)?;
                Msg::Prepare { ballot, from, until }
            }
            Header::Promise {
                ballot,
                decided,
                beyond,
                first,
                complete,
            } => {
                let mut items = Items::<PromisedEntry<Value>>::new(rest).map_err(|e| format!("count: {e}"))?;
                let entries = items
                    .by_ref()
                    .map(|e| e.map(|e| (e.slot, e.ballot, e.value)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("entry: {e}"))?;
                nothing_after(items.finish().map_err(|e| format!("items: {e}"))?)?;
                Msg::Promise(PromisePart {
                    ballot,
                    decided,
                    beyond,
                    first,
                    complete,
                    entries,
                })
            }
            Header::Append {
                ballot, commit, first, ..
            } => Msg::Append {
                ballot,
                commit,
                first,
                values: values(rest)?,
            },
            Header::Accepted {
                ballot, first, count, ..
            } => {
                nothing_after(rest)?;
                Msg::Accepted { ballot, first, count }
            }
            Header::Nack {
                ballot,
                promised,
                decided,
            } => {
                nothing_after(rest)?;
                Msg::Nack {
                    ballot,
                    promised,
                    decided,
                }
            }
            Header::CatchUp { from } => {
                nothing_after(rest)?;
                Msg::CatchUp { from }
            }
            Header::Learn { first } => Msg::Learn {
                first,
                values: values(rest)?,
            },
        })
    }

    /// Whether the spec's persist-before-reveal (`Implied`) ties this
    /// message to its sender's durable state.
    pub fn needs_durable_state(&self) -> bool {
        match self {
            Msg::Prepare { .. } | Msg::Promise(_) | Msg::Append { .. } | Msg::Accepted { .. } => true,
            Msg::Nack { promised, .. } => promised.is_some(),
            Msg::CatchUp { .. } | Msg::Learn { .. } => false,
        }
    }
}

/// One durable record (`persist.rs` `PersistItem` as written), with the
/// values of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rec {
    /// `Promised{ballot}`.
    Promised(Ballot),
    /// `Accepted{ballot, first}` and its values: votes.
    Accepted {
        /// The ballot of the run.
        ballot: Ballot,
        /// The slot of the first value.
        first: Slot,
        /// The values.
        values: Vec<Val>,
    },
    /// `Learned{first}` and its values: decided values learned (ballot None).
    Learned {
        /// The slot of the first value.
        first: Slot,
        /// The values.
        values: Vec<Val>,
    },
    /// `Committed{slot}`: the decided watermark.
    Committed(Slot),
    /// `Snapshot{slot}`.
    Snapshot(Slot),
    /// `Amnesiac`: the spec's `LearnerRec`.
    Amnesiac,
}

/// More bytes than any record header takes (a tag, a ballot and a slot,
/// as varints): decoding a header never needs the bytes after these.
const RECORD_HEAD: usize = 32;

/// Decodes the record at the front of `bytes` (no version byte); returns
/// it and the bytes after it.
fn take_record(bytes: &[u8]) -> Result<(Record, &[u8]), String> {
    let head = bytes.len().min(RECORD_HEAD);
    let mut framed = [0u8; RECORD_HEAD + 1];
    framed[0] = FORMAT_VERSION;
    framed[1..=head].copy_from_slice(&bytes[..head]);
    let (record, rest) = decode_header::<Record>(&framed[..=head]).map_err(|e| format!("record: {e}"))?;
    let used = head - rest.len();
    Ok((record, &bytes[used..]))
}

/// Takes the `Option<V>` items at the front of `bytes`; returns them and
/// the bytes after them.
fn take_values(bytes: &[u8]) -> Result<(Vec<Val>, &[u8]), String> {
    let mut items = Items::<Val>::new(bytes).map_err(|e| format!("count: {e}"))?;
    let values = items
        .by_ref()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("value: {e}"))?;
    let rest = items.finish().map_err(|e| format!("items: {e}"))?;
    Ok((values, rest))
}

/// Parses a batch `poll_persist` wrote into whole records: a batch that
/// ends inside a record (a header without its values) is an error.
pub fn parse_batch(batch: &[u8]) -> Result<Vec<Rec>, String> {
    let (&version, mut rest) = batch.split_first().ok_or("empty batch")?;
    if version != FORMAT_VERSION {
        return Err(format!("batch of version {version}"));
    }
    let mut records = Vec::new();
    while !rest.is_empty() {
        let (record, after) = take_record(rest)?;
        rest = after;
        records.push(match record {
            Record::Promised { ballot } => Rec::Promised(ballot),
            Record::Committed { slot } => Rec::Committed(slot),
            Record::Snapshot { slot } => Rec::Snapshot(slot),
            Record::Amnesiac => Rec::Amnesiac,
            Record::Accepted { ballot, first } => {
                let (values, after) = take_values(rest)?;
                rest = after;
                Rec::Accepted { ballot, first, values }
            }
            Record::Learned { first } => {
                let (values, after) = take_values(rest)?;
                rest = after;
                Rec::Learned { first, values }
            }
        });
    }
    Ok(records)
}
