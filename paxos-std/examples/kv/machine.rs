//! A replicated key-value map on the runtime: put, get, delete and
//! compare-and-set. This file is the whole application.

use paxos_std::runtime::{RestoreError, StateMachine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What clients ask.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    /// Set `key` to `value`.
    Put { key: String, value: String },
    /// Remove `key`.
    Delete { key: String },
    /// Set `key` to `new` if it holds `expected` (`None`: absent).
    Cas {
        key: String,
        expected: Option<String>,
        new: String,
    },
}

/// What a command returns: the value the key held before it.
pub type Output = Result<Option<String>, Option<String>>;

/// The map.
#[derive(Default, Debug)]
pub struct Kv(pub BTreeMap<String, String>);

impl StateMachine for Kv {
    type Command = Command;
    /// `Ok(previous)`, or for a failed compare-and-set `Err(actual)`.
    type Output = Output;

    fn apply(&mut self, command: Command) -> Output {
        match command {
            Command::Put { key, value } => Ok(self.0.insert(key, value)),
            Command::Delete { key } => Ok(self.0.remove(&key)),
            Command::Cas { key, expected, new } => {
                let actual = self.0.get(&key).cloned();
                if actual != expected {
                    return Err(actual);
                }
                Ok(self.0.insert(key, new))
            }
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
