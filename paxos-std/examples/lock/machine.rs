//! A lock service on the runtime: named locks, each held by at most one
//! owner. This file is the whole application.

use paxos_std::runtime::{RestoreError, StateMachine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What clients ask.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    /// Take `lock` for `owner` (again, if it holds it already).
    Acquire { lock: String, owner: String },
    /// Give `lock` back, if `owner` holds it.
    Release { lock: String, owner: String },
}

/// The locks and their holders.
#[derive(Default, Debug)]
pub struct Locks(pub BTreeMap<String, String>);

impl Locks {
    /// Who holds `lock`.
    pub fn holder(&self, lock: &str) -> Option<String> {
        self.0.get(lock).cloned()
    }
}

impl StateMachine for Locks {
    type Command = Command;
    /// `Ok(())`, or `Err(holder)` when someone else holds the lock.
    type Output = Result<(), Option<String>>;

    fn apply(&mut self, command: Command) -> Self::Output {
        match command {
            Command::Acquire { lock, owner } => match self.0.get(&lock) {
                Some(holder) if *holder != owner => Err(Some(holder.clone())),
                _ => {
                    self.0.insert(lock, owner);
                    Ok(())
                }
            },
            Command::Release { lock, owner } => match self.0.get(&lock) {
                Some(holder) if *holder == owner => {
                    self.0.remove(&lock);
                    Ok(())
                }
                other => Err(other.cloned()),
            },
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.0).unwrap_or_default()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        self.0 = postcard::from_bytes(bytes).map_err(|e| RestoreError::new(e.to_string()))?;
        Ok(())
    }
}
