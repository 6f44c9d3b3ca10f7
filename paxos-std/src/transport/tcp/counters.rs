//! What the stream transport counts: frames it dropped, connections it
//! refused or closed, and how often it connected again.

use core::sync::atomic::{AtomicU64, Ordering};

use super::wire::{HandshakeError, RecordError};
use crate::transport::DropCounters;

/// What a [`TcpTransport`](super::TcpTransport) dropped, refused and
/// re-established so far. A snapshot: each call to
/// [`tcp_counters`](super::TcpTransport::tcp_counters) returns a new one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpCounters {
    /// Frames `send` dropped because the peer's queue was full.
    pub queue_full: u64,
    /// Handshakes that failed, on either side: garbage or another version,
    /// a hello for another node or from a node not in the peer table, a
    /// proof that does not verify, or a stream that ended or went silent
    /// before the handshake was done. The connection was closed.
    pub bad_handshake: u64,
    /// Inbound records whose tag did not verify. The connection was closed.
    pub bad_tag: u64,
    /// Inbound records whose length prefix exceeded the largest frame.
    /// The connection was closed before anything was allocated for them.
    pub oversized: u64,
    /// Inbound connections that ended inside a record.
    pub truncated: u64,
    /// Inbound connections closed at once because too many others were
    /// still in their handshake.
    pub refused: u64,
    /// Outbound connections that could not be opened, or whose handshake
    /// the stream cut short.
    pub connect_failures: u64,
    /// Outbound connections established to a peer after an earlier one to
    /// it ended.
    pub reconnects: u64,
    /// Inbound connections closed because the same peer connected again.
    pub replaced: u64,
}

impl TcpCounters {
    /// The counters as the datagram transports' [`DropCounters`], for
    /// [`Link::counters`](crate::transport::Link::counters): `bad_tag` and
    /// `oversized` as they are, and `truncated` and `bad_handshake` as
    /// `malformed`. Nothing is `unknown_peer` or `wrong_version`: a
    /// stranger or another version fails its handshake.
    pub fn drops(&self) -> DropCounters {
        DropCounters {
            bad_tag: self.bad_tag,
            oversized: self.oversized,
            malformed: self.truncated.saturating_add(self.bad_handshake),
            ..DropCounters::default()
        }
    }
}

/// One live counter of [`TcpCounters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Count {
    QueueFull,
    BadHandshake,
    BadTag,
    Oversized,
    Truncated,
    Refused,
    ConnectFailure,
    Reconnect,
    Replaced,
}

impl Count {
    const ALL: [Count; 9] = [
        Count::QueueFull,
        Count::BadHandshake,
        Count::BadTag,
        Count::Oversized,
        Count::Truncated,
        Count::Refused,
        Count::ConnectFailure,
        Count::Reconnect,
        Count::Replaced,
    ];

    /// What a failed handshake counts as: an I/O failure of one's own
    /// outbound connection is a connection failure; anything else is a
    /// bad handshake.
    pub(super) fn of_handshake(e: HandshakeError, outbound: bool) -> Count {
        match e {
            HandshakeError::Io(_) if outbound => Count::ConnectFailure,
            _ => Count::BadHandshake,
        }
    }

    pub(super) fn of_record(e: RecordError) -> Count {
        match e {
            RecordError::Oversized { .. } => Count::Oversized,
            RecordError::BadTag => Count::BadTag,
            RecordError::Truncated => Count::Truncated,
        }
    }
}

/// The counters behind a transport shared between its threads.
#[derive(Debug, Default)]
pub(super) struct LiveCounters([AtomicU64; Count::ALL.len()]);

impl LiveCounters {
    pub(super) fn add(&self, count: Count) {
        // Statistics only: no other memory is ordered by these.
        self.0[count as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> TcpCounters {
        let get = |count: Count| self.0[count as usize].load(Ordering::Relaxed);
        TcpCounters {
            queue_full: get(Count::QueueFull),
            bad_handshake: get(Count::BadHandshake),
            bad_tag: get(Count::BadTag),
            oversized: get(Count::Oversized),
            truncated: get(Count::Truncated),
            refused: get(Count::Refused),
            connect_failures: get(Count::ConnectFailure),
            reconnects: get(Count::Reconnect),
            replaced: get(Count::Replaced),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_count_has_its_own_field() {
        for (i, &count) in Count::ALL.iter().enumerate() {
            assert_eq!(count as usize, i);
            let live = LiveCounters::default();
            live.add(count);
            let snapshot = live.snapshot();
            let fields = [
                snapshot.queue_full,
                snapshot.bad_handshake,
                snapshot.bad_tag,
                snapshot.oversized,
                snapshot.truncated,
                snapshot.refused,
                snapshot.connect_failures,
                snapshot.reconnects,
                snapshot.replaced,
            ];
            let expected: Vec<u64> = (0..fields.len()).map(|j| u64::from(j == i)).collect();
            assert_eq!(fields.to_vec(), expected, "{count:?}");
        }
    }

    #[test]
    fn drops_map_onto_the_datagram_reasons() {
        let counters = TcpCounters {
            bad_tag: 1,
            oversized: 2,
            truncated: 3,
            bad_handshake: 4,
            queue_full: 100,
            ..TcpCounters::default()
        };
        let drops = counters.drops();
        assert_eq!((drops.bad_tag, drops.oversized, drops.malformed), (1, 2, 7));
        assert_eq!(drops.total(), 10);
    }

    #[test]
    fn handshake_and_record_errors_are_classified() {
        let io = HandshakeError::Io(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(Count::of_handshake(io, true), Count::ConnectFailure);
        assert_eq!(Count::of_handshake(io, false), Count::BadHandshake);
        assert_eq!(Count::of_handshake(HandshakeError::BadProof, true), Count::BadHandshake);
        assert_eq!(Count::of_record(RecordError::BadTag), Count::BadTag);
        assert_eq!(Count::of_record(RecordError::Truncated), Count::Truncated);
        assert_eq!(
            Count::of_record(RecordError::Oversized { len: 2, max: 1 }),
            Count::Oversized
        );
    }
}
