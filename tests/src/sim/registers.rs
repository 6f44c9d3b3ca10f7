//! Keyed write-once registers over the simulated log, as gen_paxos's
//! `ask` sees them: every client value names a key, the first value
//! decided for a key is its register's value, a client's proposal is an
//! `ask(key, value)` answered with that winner when its value is decided,
//! and leaders holding a lease answer reads from their applied state. The
//! history of asks and reads, with real (virtual) invocation and response
//! times, must be linearizable.

use super::client::parse_value;
use super::Value;
use paxos_core::Instant;
use std::collections::HashMap;

/// The key a client value writes: its sequence number halved, so every
/// client's first and second values ask the same key, clients at the same
/// point collide, and fresh keys keep coming (a read of a fresh key is
/// where a stale leader would show).
pub fn key_of(value: &Value) -> Option<Key> {
    parse_value(value).map(|(_, seq)| seq / 2)
}

/// A register's name.
pub type Key = u32;

/// The first value per key in a sequence of applied values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Winners(HashMap<Key, Value>);

impl Winners {
    /// Notes the next applied value.
    pub fn apply(&mut self, value: Option<&Value>) {
        if let Some((k, v)) = value.and_then(|v| key_of(v).map(|k| (k, v))) {
            self.0.entry(k).or_insert_with(|| v.clone());
        }
    }

    /// The winners of a whole history.
    pub fn of(history: &[Option<Value>]) -> Self {
        let mut w = Winners::default();
        history.iter().for_each(|v| w.apply(v.as_ref()));
        w
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: Key) -> Option<&Value> {
        self.0.get(&key)
    }
}

#[derive(Clone, Debug)]
struct Ask {
    value: Value,
    invoked: Instant,
    answered: Option<(Instant, Value)>,
}

#[derive(Clone, Debug)]
struct Read {
    key: Key,
    at: Instant,
    value: Option<Value>,
}

/// The history of asks and lease reads.
#[derive(Clone, Debug, Default)]
pub struct Registers {
    asks: Vec<Ask>,
    by_value: HashMap<Value, usize>,
    reads: Vec<Read>,
    /// The highest key asked so far, kept so reads need not scan the asks.
    newest_key: Key,
}

impl Registers {
    /// A client starts asking with `value` (later attempts of the same
    /// value continue the same ask).
    pub fn invoke(&mut self, value: &Value, now: Instant) {
        let Some(key) = key_of(value) else {
            return;
        };
        if self.by_value.contains_key(value) {
            return;
        }
        self.newest_key = self.newest_key.max(key);
        self.by_value.insert(value.clone(), self.asks.len());
        self.asks.push(Ask {
            value: value.clone(),
            invoked: now,
            answered: None,
        });
    }

    /// The ask with `value` is answered with `winner` (its first answer
    /// counts: the client stops waiting then).
    pub fn answer(&mut self, value: &Value, now: Instant, winner: Value) {
        if let Some(ask) = self.by_value.get(value).and_then(|&i| self.asks.get_mut(i)) {
            ask.answered.get_or_insert((now, winner));
        }
    }

    /// A lease read of `key` at `now` answered `value`.
    pub fn read(&mut self, key: Key, now: Instant, value: Option<Value>) {
        self.reads.push(Read { key, at: now, value });
    }

    /// The highest key asked so far.
    pub fn newest_key(&self) -> Key {
        self.newest_key
    }

    /// Asks and reads recorded.
    pub fn counts(&self) -> (usize, usize) {
        (self.asks.len(), self.reads.len())
    }

    /// Checks that the history is linearizable. For a write-once register
    /// that is exact and cheap: every answer names one value `w`, asked by
    /// some ask `W`, and some instant `L` (the write taking effect) lies in
    /// `W`'s interval, after every read that saw nothing began, and before
    /// every operation that saw `w` ended.
    pub fn check(&self) -> Result<(), String> {
        let mut keys: Vec<Key> = self.asks.iter().filter_map(|a| key_of(&a.value)).collect();
        keys.extend(self.reads.iter().map(|r| r.key));
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().try_for_each(|key| self.check_key(key))
    }

    fn check_key(&self, key: Key) -> Result<(), String> {
        let asks = self.asks.iter().filter(|a| key_of(&a.value) == Some(key));
        let reads = self.reads.iter().filter(|r| r.key == key);
        let mut seen: Option<&Value> = None;
        let mut earliest_seen = Instant::from_micros(u64::MAX);
        let mut latest_empty_read = Instant::ZERO;
        let answers = asks
            .clone()
            .filter_map(|a| a.answered.as_ref().map(|(t, v)| (*t, Some(v))));
        for (at, value) in answers.chain(reads.map(|r| (r.at, r.value.as_ref()))) {
            match value {
                None => latest_empty_read = latest_empty_read.max(at),
                Some(v) => {
                    if seen.is_some_and(|s| s != v) {
                        return Err(format!("key {key} answered both {:?} and {v:?}", seen));
                    }
                    seen = Some(v);
                    earliest_seen = earliest_seen.min(at);
                }
            }
        }
        let Some(w) = seen else {
            return Ok(());
        };
        let writer = self
            .by_value
            .get(w)
            .and_then(|&i| self.asks.get(i))
            .ok_or_else(|| format!("key {key} answered {w:?}, which no client asked"))?;
        let lo = writer.invoked.max(latest_empty_read);
        let hi = writer
            .answered
            .as_ref()
            .map_or(earliest_seen, |(t, _)| earliest_seen.min(*t));
        if lo > hi {
            return Err(format!(
                "key {key}: {w:?} (asked at {} µs) must take effect after a read saw nothing at {} µs \
                 but before an answer naming it at {} µs",
                writer.invoked.as_micros(),
                latest_empty_read.as_micros(),
                hi.as_micros()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::client_value;
    use super::*;

    fn t(us: u64) -> Instant {
        Instant::from_micros(us)
    }

    /// Two values of client 0 with the same key.
    fn same_key() -> (Value, Value) {
        let a = client_value(0, 0);
        let b = client_value(1, 1);
        assert_eq!(key_of(&a), key_of(&b));
        (a, b)
    }

    #[test]
    fn a_linearizable_history_passes() {
        let (a, b) = same_key();
        let key = key_of(&a).unwrap();
        let mut r = Registers::default();
        r.read(key, t(1), None);
        r.invoke(&a, t(2));
        r.invoke(&b, t(3));
        r.read(key, t(4), None); // a may take effect after this read
        r.answer(&a, t(5), a.clone());
        r.answer(&b, t(6), a.clone());
        r.read(key, t(7), Some(a.clone()));
        assert_eq!(r.check(), Ok(()));
    }

    #[test]
    fn two_winners_are_caught() {
        let (a, b) = same_key();
        let mut r = Registers::default();
        r.invoke(&a, t(1));
        r.invoke(&b, t(1));
        r.answer(&a, t(2), a.clone());
        r.answer(&b, t(3), b.clone());
        assert!(r.check().is_err());
    }

    #[test]
    fn a_stale_read_is_caught() {
        let (a, _) = same_key();
        let key = key_of(&a).unwrap();
        let mut r = Registers::default();
        r.invoke(&a, t(1));
        r.answer(&a, t(2), a.clone());
        r.read(key, t(3), None); // after the write was answered: stale
        assert!(r.check().unwrap_err().contains("read saw nothing"));
    }

    #[test]
    fn a_value_seen_before_it_was_asked_is_caught() {
        let (a, b) = same_key();
        let key = key_of(&a).unwrap();
        let mut r = Registers::default();
        r.read(key, t(1), Some(a.clone()));
        r.invoke(&a, t(2));
        r.invoke(&b, t(2));
        r.answer(&b, t(3), a.clone());
        assert!(r.check().is_err());
    }
}
