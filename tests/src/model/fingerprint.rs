//! Fingerprints: how model states that hold production types are hashed
//! and compared.
//!
//! A model checker stores every state it has seen and skips a state it
//! meets again, so two states it takes for equal must behave the same from
//! then on. A fingerprint here is a 128-bit hash of a text rendering of the
//! whole value: its derived `Debug` output, which prints every field of
//! every type involved (the ids, ballots, sets, heapless queues and maps of
//! `paxos-core` all print their full contents). Equal texts therefore mean
//! equal field values, and equal field values behave the same because the
//! core is deterministic.
//!
//! Where a rendering leaves something out or puts it in a canonical form,
//! the function that does it says why that is sound: see
//! [`replica_text`] and `NodeHost`'s `Fingerprint` in [`super::single`].

use core::fmt::Debug;
use core::hash::{Hash, Hasher};
use paxos_core::replica::Replica;
use std::hash::DefaultHasher;

/// A 128-bit hash of `text`. `DefaultHasher::new` uses fixed keys, so the
/// value is the same in every run (needed to replay discovered paths).
pub fn of_text(text: &str) -> u128 {
    let mut a = DefaultHasher::new();
    text.hash(&mut a);
    let mut b = DefaultHasher::new();
    0x5eed_u16.hash(&mut b);
    text.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// The text a value is fingerprinted by. `Debug` must print everything the
/// text is made from: [`Sealed`] skips the text when the `Debug` output did
/// not change.
pub trait Fingerprint: Debug {
    /// A rendering that determines the value's future behaviour.
    fn fingerprint_text(&self) -> String;

    /// The fingerprint of [`Fingerprint::fingerprint_text`].
    fn fingerprint(&self) -> u128 {
        of_text(&self.fingerprint_text())
    }
}

impl<V: Debug, const N: usize, const W: usize> Fingerprint for Replica<V, N, W> {
    fn fingerprint_text(&self) -> String {
        replica_text(self)
    }
}

/// A replica's state without three fields that would make the state space
/// infinite and never change its behaviour under the model's driver:
///
/// - `counters`: drop and refusal statistics. They are only ever
///   incremented and read back through `Replica::counters`, which the model
///   never calls; nothing in the replica's logic reads them. Left in, a
///   duplicated message that is counted as invalid would make a new state
///   each time it is delivered.
/// - `rng` and `election_at`: the election jitter. The PRNG advances on
///   every append a follower receives, so with a duplicating network it
///   would take unboundedly many values. Its only output is the jitter
///   added to `election_at`, and `election_at` is read only by
///   `handle_timeout` (for a follower or candidate: `now >= election_at`)
///   and `poll_timeout`. The model's driver never asks a follower or
///   candidate for `poll_timeout`: its timer advances the node's clock by a
///   fixed step of twice the election timeout, which is past any
///   `election_at` the node can have set (at most `now + 2 * timeout - 1`
///   µs, with `now` never above the clock). So `now >= election_at` is
///   always true when it is asked, whatever the jitter: the two fields
///   cannot influence anything the node does. See
///   [`super::replica::ReplicaHost::tick`].
///
/// The outbox of held messages is put in the canonical form of
/// [`canonical_held_queue`]: a held message is encoded from the replica's
/// state when it leaves, and the items of one release point are encoded
/// one after the other in the same `poll_transmit` drain, with nothing
/// changing the replica in between.
///
/// This text is only sound with that driver; a driver that sleeps until
/// `poll_timeout` on a follower must fingerprint the whole replica (it
/// implements `Hash` and `Eq`).
///
/// # Panics
///
/// If a field is not found, so that a change to the replica's layout
/// cannot silently change what is fingerprinted.
pub fn replica_text<V: Debug, const N: usize, const W: usize>(replica: &Replica<V, N, W>) -> String {
    replica_canonical(replica, true)
}

/// [`replica_text`] without the number of held messages: equal shapes
/// differ at most in how many copies of the same messages wait (see
/// [`super::replica::ReplicaHost::receive`]).
pub fn replica_shape<V: Debug, const N: usize, const W: usize>(replica: &Replica<V, N, W>) -> String {
    replica_canonical(replica, false)
}

fn replica_canonical<V: Debug, const N: usize, const W: usize>(replica: &Replica<V, N, W>, counts: bool) -> String {
    let text = format!("{replica:?}");
    let text = remove_field(&text, ", rng: Rng(", ")");
    let text = remove_field(&text, ", election_at: ", ",");
    let text = remove_field(&text, ", counters: Counters {", "}");
    canonical_held_queue(&text, ", outbox: [", counts, false)
}

/// Removes `start` and everything after it up to and including the first
/// `end` that follows (for `,`, the comma is kept as the next field's).
///
/// # Panics
///
/// If `start` is not found.
pub fn remove_field(text: &str, start: &str, end: &str) -> String {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("Debug output lacks {start:?}: {text}"));
    let after = at + start.len();
    let stop = text[after..]
        .find(end)
        .unwrap_or_else(|| panic!("Debug output: {start:?} is not closed"));
    let resume = if end == "," {
        after + stop
    } else {
        after + stop + end.len()
    };
    format!("{}{}", &text[..at], &text[resume..])
}

/// Splits `text` at the commas that are not nested in brackets, trimming
/// each part; stops at the first unmatched closing bracket and returns the
/// parts and the offset of that bracket (or the end).
fn split_top_level(text: &str) -> (Vec<&str>, usize) {
    let (mut depth, mut parts, mut from) = (0usize, Vec::new(), 0);
    for (i, c) in text.char_indices() {
        match c {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' if depth == 0 => {
                let last = text[from..i].trim();
                if !last.is_empty() {
                    parts.push(last);
                }
                return (parts, i);
            }
            '}' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    let last = text[from..].trim();
    if !last.is_empty() {
        parts.push(last);
    }
    (parts, text.len())
}

/// Rewrites every list that follows `marker` (up to its closing bracket)
/// with `rewrite`, which gets the list's top-level items.
pub fn rewrite_lists(text: &str, marker: &str, rewrite: impl Fn(Vec<&str>) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let body_start = at + marker.len();
        out.push_str(&rest[..body_start]);
        let (items, end) = split_top_level(&rest[body_start..]);
        out.push_str(&rewrite(items));
        rest = &rest[body_start + end..];
    }
    out.push_str(rest);
    out
}

/// Sorts the entries of every `{k: v, ...}` map that follows `marker`
/// (which ends with the opening brace).
pub fn sort_map_entries(text: &str, marker: &str) -> String {
    rewrite_lists(text, marker, |mut entries| {
        entries.sort_unstable();
        entries.join(", ")
    })
}

/// Canonicalizes every queue of held messages that follows `marker`
/// (which ends with the opening bracket): a list of
/// `(PersistSeq(n), message)` whose front leaves once the driver has
/// confirmed `n` durable.
///
/// An item leaves once every item up to it may leave, so what decides
/// when it leaves is the largest sequence number up to it; items with the
/// same such number leave in the same drain of the outputs, one after the
/// other, with nothing changing the node in between. The model's driver
/// sends them into a network that is a set, so their order and their
/// repetitions make no difference — except to the queue's length, which
/// decides when the node refuses input for want of room. With `fixed`
/// (the message was built when it was queued, as in the practical
/// `Outbox`; not the replica's, which encodes a held message when it
/// leaves), neither does a copy of a message held for an earlier release
/// point: it is sent after that one. The canonical form keeps, per release
/// point, the set of distinct messages (not held earlier, with `fixed`)
/// and (with `counts`) how many items there are.
///
/// # Panics
///
/// If an item is not a `(PersistSeq(n), _)` pair.
pub fn canonical_held_queue(text: &str, marker: &str, counts: bool, fixed: bool) -> String {
    rewrite_lists(text, marker, |items| {
        let mut groups: Vec<(u64, usize, Vec<&str>)> = Vec::new();
        let mut release = 0u64;
        for item in items {
            let (pair, _) = split_top_level(
                item.strip_prefix('(')
                    .unwrap_or_else(|| panic!("held item {item:?} is not a pair")),
            );
            let [seq, message] = pair[..] else {
                panic!("held item {item:?} is not a pair")
            };
            let seq: u64 = seq
                .strip_prefix("PersistSeq(")
                .and_then(|s| s.strip_suffix(')'))
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("held item {item:?} has no sequence number"));
            release = release.max(seq);
            match groups.last_mut() {
                Some((at, count, messages)) if *at == release => {
                    *count += 1;
                    messages.push(message);
                }
                _ => groups.push((release, 1, vec![message])),
            }
        }
        let mut earlier: Vec<&str> = Vec::new();
        let groups: Vec<String> = groups
            .into_iter()
            .map(|(at, count, mut messages)| {
                messages.sort_unstable();
                messages.dedup();
                // A copy of a message an earlier release point holds leaves
                // after it: sending it again changes nothing.
                if fixed {
                    messages.retain(|m| !earlier.contains(m));
                }
                earlier.extend(messages.iter().copied());
                if counts {
                    format!("{count} after {at}: {{{}}}", messages.join(", "))
                } else {
                    format!("after {at}: {{{}}}", messages.join(", "))
                }
            })
            .collect();
        groups.join("; ")
    })
}

/// Every queue of held messages that follows `marker` as one set of
/// distinct messages and (with `counts`) the number of items, for a driver
/// that confirms every persist at once, so that all of them leave together
/// (see `NodeHost::flush` in [`super::single`]).
///
/// # Panics
///
/// If an item is not a `(PersistSeq(n), message)` pair.
pub fn held_set(text: &str, marker: &str, counts: bool) -> String {
    rewrite_lists(text, marker, |items| {
        let count = items.len();
        let mut messages: Vec<&str> = items
            .into_iter()
            .map(|item| {
                let (pair, _) = split_top_level(
                    item.strip_prefix('(')
                        .unwrap_or_else(|| panic!("held item {item:?} is not a pair")),
                );
                match pair[..] {
                    [_, message] => message,
                    _ => panic!("held item {item:?} is not a pair"),
                }
            })
            .collect();
        messages.sort_unstable();
        messages.dedup();
        if counts {
            format!("{count} held: {}", messages.join(", "))
        } else {
            format!("held: {}", messages.join(", "))
        }
    })
}

/// A value with its fingerprint computed once, when it was built or last
/// changed; hashing and comparing use the fingerprint alone.
///
/// The value can only be changed through [`Sealed::update`], which
/// recomputes the fingerprint. Most steps a checker tries change nothing
/// (a duplicate delivered again), so `update` first compares a hash of the
/// plain `Debug` output, which is cheap, and rebuilds the fingerprint text
/// (string rewriting, the expensive part) only when that changed.
#[derive(Clone)]
pub struct Sealed<T> {
    value: T,
    fingerprint: u128,
    /// [`of_text`] of the value's `Debug` output.
    raw: u128,
}

impl<T: Fingerprint> Sealed<T> {
    /// Seals `value`.
    pub fn new(value: T) -> Self {
        let fingerprint = value.fingerprint();
        let raw = of_text(&format!("{value:?}"));
        Sealed {
            value,
            fingerprint,
            raw,
        }
    }

    /// Changes the value and recomputes the fingerprint (if its `Debug`
    /// output changed: the fingerprint text is made from what that prints).
    pub fn update<R>(&mut self, change: impl FnOnce(&mut T) -> R) -> R {
        let result = change(&mut self.value);
        let raw = of_text(&format!("{:?}", self.value));
        if raw != self.raw {
            self.raw = raw;
            self.fingerprint = self.value.fingerprint();
        }
        result
    }

    /// The value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The fingerprint.
    pub fn fingerprint(&self) -> u128 {
        self.fingerprint
    }

    /// The value, unsealed.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T: Debug> Debug for Sealed<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.value.fmt(f)
    }
}

impl<T> PartialEq for Sealed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl<T> Eq for Sealed<T> {}

impl<T> Hash for Sealed<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.fingerprint.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::replica::Config;
    use paxos_core::{Instant, NodeId};

    #[test]
    fn replica_text_drops_exactly_the_three_fields() {
        let ids = [NodeId(0), NodeId(1), NodeId(2)];
        let config = Config::<3>::new(NodeId(1), &ids).unwrap();
        let r: Replica<u8, 3, 4> = Replica::new(config, Instant::ZERO).unwrap();
        let full = format!("{r:?}");
        let text = replica_text(&r);
        assert!(full.contains("rng: Rng(") && !text.contains("rng"));
        assert!(full.contains("election_at") && !text.contains("election_at"));
        assert!(full.contains("counters") && !text.contains("counters"));
        assert!(text.contains(", now: t+0us, promised: None,"), "{text}");
        assert!(text.contains(", quiet_until: t+0us,"), "{text}");
        assert!(text.ends_with("next_proposal: 0 }"), "{text}");
    }

    #[test]
    fn map_entries_are_sorted_in_place() {
        let text = "A { votes: {n2: P { b: (1,0), v: 1 }, n0: P { b: (1,0), v: 1 }}, x: {b: 1, a: 2} }";
        assert_eq!(
            sort_map_entries(text, "votes: {"),
            "A { votes: {n0: P { b: (1,0), v: 1 }, n2: P { b: (1,0), v: 1 }}, x: {b: 1, a: 2} }"
        );
        assert_eq!(sort_map_entries("votes: {}", "votes: {"), "votes: {}");
    }

    #[test]
    fn held_queues_group_by_release_point() {
        let a = "O { others: [(PersistSeq(1), B { x: 1 }), (PersistSeq(1), A), \
                 (PersistSeq(1), B { x: 1 }), (PersistSeq(3), C), (PersistSeq(0), D)], n: 1 }";
        let b = "O { others: [(PersistSeq(1), A), (PersistSeq(1), B { x: 1 }), \
                 (PersistSeq(1), A), (PersistSeq(3), D), (PersistSeq(2), C), (PersistSeq(3), A)], n: 1 }";
        let canonical = "O { others: [3 after 1: {A, B { x: 1 }}; 2 after 3: {C, D}], n: 1 }";
        assert_eq!(canonical_held_queue(a, "others: [", true, true), canonical);
        assert_eq!(
            canonical_held_queue(b, "others: [", true, true),
            "O { others: [3 after 1: {A, B { x: 1 }}; 3 after 3: {C, D}], n: 1 }"
        );
        assert_eq!(
            canonical_held_queue(a, "others: [", false, true),
            "O { others: [after 1: {A, B { x: 1 }}; after 3: {C, D}], n: 1 }"
        );
        assert_eq!(
            canonical_held_queue(b, "others: [", true, false),
            "O { others: [3 after 1: {A, B { x: 1 }}; 3 after 3: {A, C, D}], n: 1 }"
        );
        assert_eq!(
            canonical_held_queue("others: []", "others: [", true, true),
            "others: []"
        );
    }

    #[test]
    fn held_sets_merge_release_points() {
        let a = "O { others: [(PersistSeq(1), B { x: 1 }), (PersistSeq(2), A), (PersistSeq(3), B { x: 1 })], n: 1 }";
        assert_eq!(
            held_set(a, "others: [", true),
            "O { others: [3 held: A, B { x: 1 }], n: 1 }"
        );
        assert_eq!(
            held_set(a, "others: [", false),
            "O { others: [held: A, B { x: 1 }], n: 1 }"
        );
    }

    #[test]
    fn sealed_values_compare_by_fingerprint() {
        #[derive(Debug)]
        struct T(u8);
        impl Fingerprint for T {
            fn fingerprint_text(&self) -> String {
                format!("{}", self.0 / 2)
            }
        }
        let a = Sealed::new(T(2));
        let mut b = Sealed::new(T(3));
        assert!(a == b, "same rendering");
        b.update(|t| t.0 = 4);
        assert!(a != b);
        assert_eq!(b.get().0, 4);
    }
}
