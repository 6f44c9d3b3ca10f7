//! The application on each node: it applies decided values in slot order
//! and keeps a watermark that survives crashes as its durability model
//! says.

use super::registers::Winners;
use super::Value;
use paxos_core::replica::Slot;
use std::rc::Rc;

/// A node's application state machine: the list of values it applied.
#[derive(Clone, Debug, Default)]
pub struct App {
    /// The values applied, by slot (`None` is a no-op). Its length is the
    /// first slot not applied.
    pub history: Vec<Option<Value>>,
    /// The first value applied per key (the keyed registers).
    pub winners: Winners,
}

impl App {
    /// The first slot not applied: the next `Decided` must name it.
    pub fn applied(&self) -> Slot {
        self.history.len() as Slot
    }

    /// Applies the next slot.
    pub fn apply(&mut self, value: Option<Value>) {
        self.winners.apply(value.as_ref());
        self.history.push(value);
    }

    /// Replaces the state with a snapshot of another node's.
    pub fn install(&mut self, snapshot: &Rc<Vec<Option<Value>>>) {
        self.history = snapshot.as_ref().clone();
        self.winners = Winners::of(&self.history);
    }

    /// After a crash: the state as of the checkpoint at `applied`.
    pub fn roll_back_to(&mut self, applied: Slot) {
        self.history.truncate(usize::try_from(applied).unwrap_or(usize::MAX));
        self.winners = Winners::of(&self.history);
    }

    /// A snapshot to send to a peer.
    pub fn snapshot(&self) -> Rc<Vec<Option<Value>>> {
        Rc::new(self.history.clone())
    }
}
