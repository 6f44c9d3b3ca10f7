//! The application the `paxos` service replicates: gen_paxos's write-once
//! registers (`ask`) and a mutable key-value map, as a
//! [`StateMachine`] on [`paxos_std::runtime`].
//!
//! The two live in separate namespaces: a key may hold a register and a map
//! entry at once, and neither command family sees the other's. `apply` is
//! total and deterministic; sizes are checked at the service's boundary, not
//! here.

use paxos_std::runtime::{RestoreError, StateMachine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The snapshot format this version writes and the only one it restores.
const SNAPSHOT_VERSION: u8 = 1;

/// The replicated state: gen_paxos's write-once registers (`ask`) and a
/// mutable key-value map, in separate namespaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    /// Decided registers: once set, never changed.
    registers: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The key-value map.
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// What clients ask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// gen_paxos's ask with a value: decides `value` for `key` unless the
    /// register already holds one.
    Ask {
        /// The register.
        key: Vec<u8>,
        /// The value proposed for it.
        value: Vec<u8>,
    },
    /// Sets `key` to `value` in the map.
    Put {
        /// The map key.
        key: Vec<u8>,
        /// Its new value.
        value: Vec<u8>,
    },
    /// Removes `key` from the map.
    Delete {
        /// The map key.
        key: Vec<u8>,
    },
    /// Compare-and-set on the map: when the current value equals `expected`
    /// (`None` = absent), sets it to `new` (`None` = delete).
    Cas {
        /// The map key.
        key: Vec<u8>,
        /// The value the key must hold (`None`: absent).
        expected: Option<Vec<u8>>,
        /// The value to set (`None`: delete).
        new: Option<Vec<u8>>,
    },
}

/// What applying a [`Command`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// The register's value after the ask, and whether it is the value this
    /// ask proposed (`won`: this command set it; an ask that finds the same
    /// value already decided by someone else has `won = false`).
    Asked {
        /// The value decided for the register.
        value: Vec<u8>,
        /// Whether this ask decided it.
        won: bool,
    },
    /// The value `key` held before a put.
    Put {
        /// The previous value (`None`: absent).
        previous: Option<Vec<u8>>,
    },
    /// The value `key` held before a delete.
    Deleted {
        /// The previous value (`None`: absent).
        previous: Option<Vec<u8>>,
    },
    /// Whether the compare-and-set took place, and the value after it.
    Cas {
        /// Whether the current value matched `expected` and was replaced.
        ok: bool,
        /// The key's value after the command (`None`: absent).
        current: Option<Vec<u8>>,
    },
}

/// The snapshot as written: borrows the store's maps.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u8,
    registers: &'a BTreeMap<Vec<u8>, Vec<u8>>,
    map: &'a BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The snapshot as read: the same layout as [`SnapshotRef`], owned.
#[derive(Deserialize)]
struct Snapshot {
    version: u8,
    registers: BTreeMap<Vec<u8>, Vec<u8>>,
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Store {
    /// The value decided for register `key`, if any.
    pub fn register(&self, key: &[u8]) -> Option<&[u8]> {
        self.registers.get(key).map(Vec::as_slice)
    }

    /// The map's value for `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    /// How many registers are decided.
    pub fn registers(&self) -> usize {
        self.registers.len()
    }

    /// How many keys the map holds.
    pub fn keys(&self) -> usize {
        self.map.len()
    }
}

impl StateMachine for Store {
    type Command = Command;
    type Output = Output;

    fn apply(&mut self, command: Command) -> Output {
        match command {
            Command::Ask { key, value } => match self.registers.get(&key) {
                Some(decided) => Output::Asked {
                    value: decided.clone(),
                    won: false,
                },
                None => {
                    self.registers.insert(key, value.clone());
                    Output::Asked { value, won: true }
                }
            },
            Command::Put { key, value } => Output::Put {
                previous: self.map.insert(key, value),
            },
            Command::Delete { key } => Output::Deleted {
                previous: self.map.remove(&key),
            },
            Command::Cas { key, expected, new } => {
                let current = self.map.get(&key);
                if current != expected.as_ref() {
                    return Output::Cas {
                        ok: false,
                        current: current.cloned(),
                    };
                }
                match &new {
                    Some(value) => self.map.insert(key, value.clone()),
                    None => self.map.remove(&key),
                };
                Output::Cas { ok: true, current: new }
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        let snapshot = SnapshotRef {
            version: SNAPSHOT_VERSION,
            registers: &self.registers,
            map: &self.map,
        };
        // Byte strings in maps always serialize into a Vec.
        postcard::to_allocvec(&snapshot).expect("a store always serializes")
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        // Read the version alone first, so that another version is refused
        // as such rather than as garbage.
        let (version, _) = postcard::take_from_bytes::<u8>(bytes)
            .map_err(|e| RestoreError::new(format!("no snapshot version: {e}")))?;
        if version != SNAPSHOT_VERSION {
            return Err(RestoreError::new(format!(
                "snapshot version {version} unsupported (expected {SNAPSHOT_VERSION})"
            )));
        }
        let (snapshot, rest) = postcard::take_from_bytes::<Snapshot>(bytes)
            .map_err(|e| RestoreError::new(format!("malformed store snapshot: {e}")))?;
        if !rest.is_empty() {
            return Err(RestoreError::new(format!(
                "{} trailing bytes after store snapshot",
                rest.len()
            )));
        }
        debug_assert_eq!(snapshot.version, SNAPSHOT_VERSION);
        self.registers = snapshot.registers;
        self.map = snapshot.map;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    fn ask(key: &str, value: &str) -> Command {
        Command::Ask {
            key: b(key),
            value: b(value),
        }
    }

    fn put(key: &str, value: &str) -> Command {
        Command::Put {
            key: b(key),
            value: b(value),
        }
    }

    fn cas(key: &str, expected: Option<&str>, new: Option<&str>) -> Command {
        Command::Cas {
            key: b(key),
            expected: expected.map(b),
            new: new.map(b),
        }
    }

    /// A store with registers and map entries, some under the same key.
    fn sample() -> Store {
        let mut store = Store::default();
        for command in [
            ask("a", "1"),
            ask("b", ""),
            ask("", "empty key"),
            put("a", "map a"),
            put("c", "3"),
            put("d", "4"),
            Command::Delete { key: b("d") },
        ] {
            store.apply(command);
        }
        store
    }

    #[test]
    fn first_ask_wins_and_later_asks_get_its_value() {
        let mut store = Store::default();
        assert_eq!(store.register(b"k"), None);
        assert_eq!(
            store.apply(ask("k", "first")),
            Output::Asked {
                value: b("first"),
                won: true
            }
        );
        assert_eq!(
            store.apply(ask("k", "second")),
            Output::Asked {
                value: b("first"),
                won: false
            }
        );
        assert_eq!(store.register(b"k"), Some(&b"first"[..]));
        assert_eq!(store.registers(), 1);
    }

    #[test]
    fn ask_with_the_decided_value_does_not_win() {
        let mut store = Store::default();
        assert_eq!(
            store.apply(ask("k", "v")),
            Output::Asked {
                value: b("v"),
                won: true
            }
        );
        assert_eq!(
            store.apply(ask("k", "v")),
            Output::Asked {
                value: b("v"),
                won: false
            }
        );
        assert_eq!(store.registers(), 1);
    }

    #[test]
    fn put_and_delete_return_the_previous_value() {
        let mut store = Store::default();
        assert_eq!(store.apply(put("k", "1")), Output::Put { previous: None });
        assert_eq!(store.apply(put("k", "2")), Output::Put { previous: Some(b("1")) });
        assert_eq!(store.get(b"k"), Some(&b"2"[..]));
        assert_eq!(store.keys(), 1);
        assert_eq!(
            store.apply(Command::Delete { key: b("k") }),
            Output::Deleted { previous: Some(b("2")) }
        );
        assert_eq!(store.get(b"k"), None);
        assert_eq!(store.keys(), 0);
        assert_eq!(
            store.apply(Command::Delete { key: b("k") }),
            Output::Deleted { previous: None }
        );
    }

    #[test]
    fn cas_creates_replaces_deletes_and_fails_on_mismatch() {
        let mut store = Store::default();
        // Expected absent, key absent: creates.
        assert_eq!(
            store.apply(cas("k", None, Some("1"))),
            Output::Cas {
                ok: true,
                current: Some(b("1"))
            }
        );
        assert_eq!(store.get(b"k"), Some(&b"1"[..]));
        // Expected absent, key present: fails, returns current.
        assert_eq!(
            store.apply(cas("k", None, Some("x"))),
            Output::Cas {
                ok: false,
                current: Some(b("1"))
            }
        );
        // Mismatched expected: fails, returns current, changes nothing.
        assert_eq!(
            store.apply(cas("k", Some("0"), Some("x"))),
            Output::Cas {
                ok: false,
                current: Some(b("1"))
            }
        );
        assert_eq!(store.get(b"k"), Some(&b"1"[..]));
        // Matching expected: replaces.
        assert_eq!(
            store.apply(cas("k", Some("1"), Some("2"))),
            Output::Cas {
                ok: true,
                current: Some(b("2"))
            }
        );
        // Matching expected, new None: deletes.
        assert_eq!(
            store.apply(cas("k", Some("2"), None)),
            Output::Cas {
                ok: true,
                current: None
            }
        );
        assert_eq!(store.get(b"k"), None);
        assert_eq!(store.keys(), 0);
        // Expected present, key absent: fails.
        assert_eq!(
            store.apply(cas("k", Some("2"), Some("3"))),
            Output::Cas {
                ok: false,
                current: None
            }
        );
        assert_eq!(store.keys(), 0);
    }

    #[test]
    fn registers_and_map_are_separate_namespaces() {
        let mut store = Store::default();
        store.apply(ask("k", "register"));
        assert_eq!(store.get(b"k"), None);
        assert_eq!(store.apply(put("k", "map")), Output::Put { previous: None });
        assert_eq!(store.register(b"k"), Some(&b"register"[..]));
        assert_eq!(store.get(b"k"), Some(&b"map"[..]));
        store.apply(Command::Delete { key: b("k") });
        assert_eq!(store.register(b"k"), Some(&b"register"[..]));
        assert_eq!(
            store.apply(cas("k", None, Some("again"))),
            Output::Cas {
                ok: true,
                current: Some(b("again"))
            }
        );
        assert_eq!(
            store.apply(ask("k", "other")),
            Output::Asked {
                value: b("register"),
                won: false
            }
        );
        assert_eq!((store.registers(), store.keys()), (1, 1));
    }

    #[test]
    fn snapshot_round_trips() {
        let store = sample();
        assert_eq!((store.registers(), store.keys()), (3, 2));
        let mut restored = Store::default();
        restored.restore(&store.snapshot()).unwrap();
        assert_eq!(restored, store);
        // Restoring replaces, not merges.
        let mut other = Store::default();
        other.apply(ask("zzz", "gone"));
        other.apply(put("zzz", "gone"));
        other.restore(&store.snapshot()).unwrap();
        assert_eq!(other, store);
        // An empty store round-trips too.
        let mut emptied = sample();
        emptied.restore(&Store::default().snapshot()).unwrap();
        assert_eq!(emptied, Store::default());
    }

    #[test]
    fn restore_of_garbage_fails_and_changes_nothing() {
        let before = sample();
        let snapshot = before.snapshot();
        let mut store = before.clone();
        let mut garbage = vec![
            Vec::new(),
            vec![SNAPSHOT_VERSION],
            vec![SNAPSHOT_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            b"definitely not a snapshot".to_vec(),
            [snapshot.as_slice(), &[0]].concat(),
        ];
        // Every proper prefix of a real snapshot.
        garbage.extend((0..snapshot.len()).map(|n| snapshot[..n].to_vec()));
        for bytes in &garbage {
            assert!(store.restore(bytes).is_err(), "restored {bytes:?}");
            assert_eq!(store, before);
        }
    }

    #[test]
    fn restore_refuses_other_versions() {
        let before = sample();
        let mut snapshot = before.snapshot();
        assert_eq!(snapshot[0], SNAPSHOT_VERSION);
        let mut store = before.clone();
        for version in [0, 2, 0x7f] {
            snapshot[0] = version;
            let error = store.restore(&snapshot).unwrap_err();
            assert!(
                error.to_string().contains(&format!("version {version} unsupported")),
                "{error}"
            );
            assert_eq!(store, before);
        }
    }

    /// The model: two hash maps and the obvious semantics.
    #[derive(Default)]
    struct Model {
        registers: HashMap<Vec<u8>, Vec<u8>>,
        map: HashMap<Vec<u8>, Vec<u8>>,
    }

    impl Model {
        fn apply(&mut self, command: &Command) -> Output {
            match command.clone() {
                Command::Ask { key, value } => {
                    let won = !self.registers.contains_key(&key);
                    let value = self.registers.entry(key).or_insert(value).clone();
                    Output::Asked { value, won }
                }
                Command::Put { key, value } => Output::Put {
                    previous: self.map.insert(key, value),
                },
                Command::Delete { key } => Output::Deleted {
                    previous: self.map.remove(&key),
                },
                Command::Cas { key, expected, new } => {
                    if self.map.get(&key) != expected.as_ref() {
                        return Output::Cas {
                            ok: false,
                            current: self.map.get(&key).cloned(),
                        };
                    }
                    match new.clone() {
                        Some(value) => self.map.insert(key, value),
                        None => self.map.remove(&key),
                    };
                    Output::Cas { ok: true, current: new }
                }
            }
        }

        fn matches(&self, store: &Store) {
            assert_eq!(store.registers(), self.registers.len());
            assert_eq!(store.keys(), self.map.len());
            for (key, value) in &self.registers {
                assert_eq!(store.register(key), Some(value.as_slice()));
            }
            for (key, value) in &self.map {
                assert_eq!(store.get(key), Some(value.as_slice()));
            }
        }
    }

    /// Few keys and values, so that commands collide.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(0u8..3, 0..2)
    }

    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            (bytes(), bytes()).prop_map(|(key, value)| Command::Ask { key, value }),
            (bytes(), bytes()).prop_map(|(key, value)| Command::Put { key, value }),
            bytes().prop_map(|key| Command::Delete { key }),
            (bytes(), prop::option::of(bytes()), prop::option::of(bytes()))
                .prop_map(|(key, expected, new)| Command::Cas { key, expected, new }),
        ]
    }

    proptest! {
        #[test]
        fn store_matches_model_and_snapshots_resume(
            commands in prop::collection::vec(command(), 0..64),
            cut in any::<prop::sample::Index>(),
        ) {
            let cut = cut.index(commands.len() + 1);
            let mut store = Store::default();
            let mut model = Model::default();
            let mut midway = None;
            let mut outputs = Vec::new();
            for (i, command) in commands.iter().enumerate() {
                if i == cut {
                    midway = Some(store.snapshot());
                }
                let output = store.apply(command.clone());
                prop_assert_eq!(&output, &model.apply(command));
                model.matches(&store);
                outputs.push(output);
            }
            let midway = midway.unwrap_or_else(|| store.snapshot());
            let mut resumed = Store::default();
            resumed.restore(&midway).unwrap();
            for (command, output) in commands[cut..].iter().zip(&outputs[cut..]) {
                prop_assert_eq!(&resumed.apply(command.clone()), output);
            }
            prop_assert_eq!(&resumed, &store);
        }
    }
}
