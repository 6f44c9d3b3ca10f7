//! The abstract state of one node, as `spec/Replica.tla` sees it, mapped
//! from the replica's public getters (volatile part) and from its durable
//! batches (`disk`).

use super::messages::{parse_batch, Rec, Val};
use crate::sim::fasthash::FastMap as HashMap;
use crate::sim::node::SimReplica;
use paxos_core::replica::Slot;
use paxos_core::Ballot;
use std::collections::BTreeMap;

/// The spec's `role`: `"F"`, `"C"`, `"L"` or `"A"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows (or knows no leader).
    Follower,
    /// Runs phase 1 with a ballot of its own.
    Candidate,
    /// Leads.
    Leader,
    /// Lost its storage: learns only (fix D).
    Amnesiac,
}

impl Role {
    /// Leads or campaigns.
    pub fn proposes(self) -> bool {
        matches!(self, Role::Leader | Role::Candidate)
    }
}

/// A cell: `[bal, val]`; `ballot: None` is a learned decided value (the
/// spec's `NoBallot`), an absent cell is `Empty`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// The ballot voted under; `None` for a learned decided value.
    pub ballot: Option<Ballot>,
    /// The value.
    pub value: Val,
}

impl Cell {
    /// A vote (`IsVote`), not a learned value.
    pub fn is_vote(&self) -> bool {
        self.ballot.is_some()
    }
}

/// The volatile state of a running node: `role`, `promised`, `cell` (the
/// slots in memory), `decided`, `start`. The ballot of a leader or
/// candidate (`bal`) is its promise: a node that leads or campaigns
/// promises exactly its own ballot (it steps down on any higher one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// The role.
    pub role: Role,
    /// The promise (`NoBallot` is `None`).
    pub promised: Option<Ballot>,
    /// Slots below left memory.
    pub start: Slot,
    /// Every slot below is decided.
    pub decided: Slot,
    /// `cells[k]` is slot `start + k`, for the `W` slots memory can hold.
    pub cells: Vec<Option<Cell>>,
}

impl NodeState {
    /// Maps a running replica; an amnesiac that leads or campaigns is
    /// reported (the mapping would hide it otherwise).
    pub fn of<const W: usize>(r: &SimReplica<W>) -> Result<NodeState, String> {
        let role = if r.is_leader() {
            Role::Leader
        } else if r.is_candidate() {
            Role::Candidate
        } else if r.is_amnesiac() {
            Role::Amnesiac
        } else {
            Role::Follower
        };
        if r.is_amnesiac() && role != Role::Amnesiac {
            return Err(format!("an amnesiac node is a {role:?}"));
        }
        let start = r.log_start();
        let cells = (start..start + W as u64)
            .map(|s| {
                r.entry(s).map(|(ballot, value)| Cell {
                    ballot,
                    value: value.cloned(),
                })
            })
            .collect();
        Ok(NodeState {
            role,
            promised: r.promised(),
            start,
            decided: r.decided(),
            cells,
        })
    }

    /// The cell of `slot` while in memory.
    pub fn cell(&self, slot: Slot) -> Option<&Cell> {
        let k = slot.checked_sub(self.start)?;
        self.cells.get(usize::try_from(k).ok()?)?.as_ref()
    }

    /// One past the last slot memory can hold.
    pub fn limit(&self) -> Slot {
        self.start + self.cells.len() as u64
    }

    /// The ballot it leads or campaigns with (`bal`).
    pub fn ballot(&self) -> Option<Ballot> {
        if self.role.proposes() {
            self.promised
        } else {
            None
        }
    }

    /// Every cell in memory, by slot.
    pub fn slots(&self) -> impl Iterator<Item = (Slot, &Cell)> + '_ {
        (self.start..)
            .zip(self.cells.iter())
            .filter_map(|(s, c)| c.as_ref().map(|c| (s, c)))
    }
}

/// What a batch made durable: the votes (for the chosen set) and the
/// slots whose replayed cell changed.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// New durable votes: `(slot, ballot, value)`.
    pub votes: Vec<(Slot, Ballot, Val)>,
    /// Slots whose replayed cell changed.
    pub slots: Vec<Slot>,
    /// The first durable watermark record that left the replayed state
    /// breaking `DecidedKnown` on disk: the record's position, the state
    /// it left and the slot below the watermark with no durable value.
    pub uncovered: Option<Uncovered>,
}

/// A durable watermark over a slot with no durable value, as replay
/// reached it record by record (`DecidedKnown` on disk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uncovered {
    /// The durable batch: its index among the node's durable batches
    /// since its storage was last lost.
    pub batch: usize,
    /// The record's index in its batch.
    pub record: usize,
    /// The replayed watermark after the record.
    pub dec: Slot,
    /// The replayed snapshot slot (`disk.start`) after the record.
    pub start: Slot,
    /// The first slot in `start..dec` with no durable cell.
    pub slot: Slot,
}

/// The spec's `disk`: what replay (`persist.rs`) rebuilds from the
/// durable batches, record by record (`ApplyRec`), plus the history of
/// every vote ever durable (a vote once durable is a fact, even when a
/// later record replaces its cell).
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// `prom`: the highest ballot promised (an accepted ballot counts).
    pub prom: Option<Ballot>,
    /// `cells`: the latest record of each slot.
    pub cells: BTreeMap<Slot, Cell>,
    /// `dec`: the decided watermark replay reaches.
    pub dec: Slot,
    /// `start`: slots below were covered by a snapshot.
    pub start: Slot,
    /// `learner`: the amnesia record.
    pub learner: bool,
    /// Every `(slot, ballot)` ever durably voted, with its value.
    pub votes: HashMap<(Slot, Ballot), Val>,
    /// Whether any batch with records was durable (what `Recovery`
    /// calls `replayed`; none is the spec's `NoRecords`).
    pub any_records: bool,
    /// Durable batches applied so far.
    pub batches: usize,
}

impl Disk {
    /// Applies one durable batch, record by record.
    pub fn apply_batch(&mut self, batch: &[u8], applied: &mut Applied) -> Result<(), String> {
        let records = parse_batch(batch)?;
        let index = self.batches;
        self.batches += 1;
        self.any_records |= !records.is_empty();
        for (k, record) in records.into_iter().enumerate() {
            let dec = self.dec;
            self.apply(record, applied);
            // `DecidedKnown` on disk after every record that moves the
            // watermark, as the spec's `Persist` makes records durable one
            // at a time (`PersistGrain`): a batch, or a sync of several,
            // may end between a watermark record and the record that would
            // cover its hole (a later snapshot record, fault E), and a
            // crash there leaves that state. Slots below the old watermark
            // were checked when it moved (a cell only leaves replay under
            // a snapshot record, which moves `start` past it).
            if self.dec > dec && applied.uncovered.is_none() {
                if let Some(slot) = (dec.max(self.start)..self.dec).find(|s| !self.cells.contains_key(s)) {
                    applied.uncovered = Some(Uncovered {
                        batch: index,
                        record: k,
                        dec: self.dec,
                        start: self.start,
                        slot,
                    });
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, record: Rec, applied: &mut Applied) {
        match record {
            Rec::Promised(b) => self.prom = self.prom.max(Some(b)),
            Rec::Committed(s) => self.dec = self.dec.max(s),
            Rec::Snapshot(s) => {
                if s > self.start {
                    self.dec = self.dec.max(s);
                    self.start = s;
                    let kept = self.cells.split_off(&s);
                    applied.slots.extend(self.cells.keys().copied());
                    self.cells = kept;
                }
            }
            Rec::Amnesiac => self.learner = true,
            Rec::Accepted { ballot, first, values } => {
                self.prom = self.prom.max(Some(ballot));
                for (slot, value) in (first..).zip(values) {
                    self.votes.insert((slot, ballot), value.clone());
                    applied.votes.push((slot, ballot, value.clone()));
                    applied.slots.push(slot);
                    self.cells.insert(
                        slot,
                        Cell {
                            ballot: Some(ballot),
                            value,
                        },
                    );
                }
            }
            Rec::Learned { first, values } => {
                for (slot, value) in (first..).zip(values) {
                    applied.slots.push(slot);
                    self.cells.insert(slot, Cell { ballot: None, value });
                    // A learned run contiguous with the watermark.
                    if self.dec == slot {
                        self.dec = slot + 1;
                    }
                }
            }
        }
    }

    /// Whether the durable state backs a vote for `slot` under `ballot`
    /// (`Implied` for an `Accepted`): the vote was durable, or a later one
    /// is (a record is encoded from its cell when written, so a vote
    /// replaced before its record was written is written as the later
    /// one), or the slot is durably decided or covered by a snapshot.
    pub fn backs_vote(&self, slot: Slot, ballot: Ballot) -> bool {
        self.votes.contains_key(&(slot, ballot)) || self.keeps_vote(slot, ballot)
    }

    /// Whether a vote revealed for `slot` under `ballot` is still in the
    /// durable state, as that vote or a higher one, or under the
    /// watermark (`RevealedVotesDurable`).
    pub fn keeps_vote(&self, slot: Slot, ballot: Ballot) -> bool {
        slot < self.dec || slot < self.start || self.cells.get(&slot).is_some_and(|c| c.ballot >= Some(ballot))
    }
}
