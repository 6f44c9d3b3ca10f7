//! Counts of dropped datagrams, by reason.

use core::sync::atomic::{AtomicU64, Ordering};

use super::error::DropReason;

/// How many received datagrams were dropped, by [`DropReason`].
///
/// A snapshot: [`UdpTransport::counters`](super::UdpTransport::counters)
/// returns a new one each time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// [`DropReason::UnknownPeer`]: from an address not in the peer table,
    /// or claiming another sender than the peer at that address.
    pub unknown_peer: u64,
    /// [`DropReason::BadTag`]: the MAC did not verify.
    pub bad_tag: u64,
    /// [`DropReason::Malformed`]: too short for a header and a tag.
    pub malformed: u64,
    /// [`DropReason::WrongVersion`]: another datagram version.
    pub wrong_version: u64,
    /// [`DropReason::Oversized`]: larger than the largest datagram or the
    /// receive buffer.
    pub oversized: u64,
}

impl DropCounters {
    /// The counter for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::UnknownPeer => self.unknown_peer,
            DropReason::BadTag => self.bad_tag,
            DropReason::Malformed => self.malformed,
            DropReason::WrongVersion => self.wrong_version,
            DropReason::Oversized => self.oversized,
        }
    }

    /// Counts one drop for `reason`.
    pub fn record(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::UnknownPeer => &mut self.unknown_peer,
            DropReason::BadTag => &mut self.bad_tag,
            DropReason::Malformed => &mut self.malformed,
            DropReason::WrongVersion => &mut self.wrong_version,
            DropReason::Oversized => &mut self.oversized,
        };
        *counter = counter.saturating_add(1);
    }

    /// All drops, whatever the reason.
    pub fn total(&self) -> u64 {
        [
            self.unknown_peer,
            self.bad_tag,
            self.malformed,
            self.wrong_version,
            self.oversized,
        ]
        .iter()
        .fold(0u64, |sum, &n| sum.saturating_add(n))
    }
}

/// The live counters behind a transport shared between threads.
#[derive(Debug, Default)]
pub(super) struct AtomicDropCounters {
    unknown_peer: AtomicU64,
    bad_tag: AtomicU64,
    malformed: AtomicU64,
    wrong_version: AtomicU64,
    oversized: AtomicU64,
}

impl AtomicDropCounters {
    pub(super) fn record(&self, reason: DropReason) {
        let counter = match reason {
            DropReason::UnknownPeer => &self.unknown_peer,
            DropReason::BadTag => &self.bad_tag,
            DropReason::Malformed => &self.malformed,
            DropReason::WrongVersion => &self.wrong_version,
            DropReason::Oversized => &self.oversized,
        };
        // Statistics only: no other memory is ordered by these.
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> DropCounters {
        DropCounters {
            unknown_peer: self.unknown_peer.load(Ordering::Relaxed),
            bad_tag: self.bad_tag.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            wrong_version: self.wrong_version.load(Ordering::Relaxed),
            oversized: self.oversized.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [DropReason; 5] = [
        DropReason::UnknownPeer,
        DropReason::BadTag,
        DropReason::Malformed,
        DropReason::WrongVersion,
        DropReason::Oversized,
    ];

    #[test]
    fn each_reason_has_its_own_counter() {
        for (i, &reason) in ALL.iter().enumerate() {
            let live = AtomicDropCounters::default();
            let mut plain = DropCounters::default();
            for _ in 0..=i {
                live.record(reason);
                plain.record(reason);
            }
            let snapshot = live.snapshot();
            assert_eq!(snapshot, plain);
            assert_eq!(snapshot.total(), i as u64 + 1);
            for &other in &ALL {
                let expected = if other == reason { i as u64 + 1 } else { 0 };
                assert_eq!(snapshot.get(other), expected, "{reason:?} vs {other:?}");
            }
        }
    }
}
