//! Sealing and opening datagrams: the wire format and its MAC.
//!
//! ```text
//! [VERSION u8][sender NodeId u8][frame bytes ...][TAG_LEN-byte tag]
//! ```
//!
//! The tag is BLAKE3 in keyed mode (`blake3::keyed_hash`) under the 32-byte
//! cluster key, over every byte before the tag: the version, the sender and
//! the frame. Both functions are pure, so they are tested and fuzzed without
//! sockets.

use paxos_core::NodeId;

use super::error::{DropReason, SealError};
use super::key::{ClusterKey, KEY_LEN};

/// The first byte of every datagram: the transport's magic and version.
///
/// Distinct from the core codec's `FORMAT_VERSION` (1), so a bare frame sent
/// to a transport port is counted as [`DropReason::WrongVersion`], not
/// mistaken for a sealed one. Bumped on any change to the datagram layout or
/// the MAC.
pub const VERSION: u8 = 0xA1;

/// Bytes before the frame: the version and the sender.
pub const HEADER_LEN: usize = 2;

/// Bytes of the MAC tag after the frame: a full BLAKE3 output.
pub const TAG_LEN: usize = blake3::OUT_LEN;

/// Bytes a datagram adds to its frame: [`HEADER_LEN`] + [`TAG_LEN`].
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// The largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP header bytes),
/// and so the largest datagram this transport sends or accepts.
pub const MAX_DATAGRAM_LEN: usize = 65_507;

/// The largest frame one datagram carries: [`MAX_DATAGRAM_LEN`] - [`OVERHEAD`].
pub const MAX_FRAME_LEN: usize = MAX_DATAGRAM_LEN - OVERHEAD;

/// Seals `frame` from `me` into `out` and returns the datagram's length:
/// `frame.len() + OVERHEAD`.
///
/// Writes only `out[..len]`. Fails, writing nothing, if the frame is longer
/// than [`MAX_FRAME_LEN`] or `out` is too short.
pub fn seal(key: &ClusterKey, me: NodeId, frame: &[u8], out: &mut [u8]) -> Result<usize, SealError> {
    if frame.len() > MAX_FRAME_LEN {
        return Err(SealError::FrameTooLarge {
            len: frame.len(),
            max: MAX_FRAME_LEN,
        });
    }
    let len = frame.len() + OVERHEAD;
    let Some(datagram) = out.get_mut(..len) else {
        return Err(SealError::BufferTooSmall { required: len });
    };
    let (body, tag) = datagram.split_at_mut(len - TAG_LEN);
    body[0] = VERSION;
    body[1] = me.0;
    body[HEADER_LEN..].copy_from_slice(frame);
    tag.copy_from_slice(mac(key.as_bytes(), &[body]).as_bytes());
    Ok(len)
}

/// The MAC of both transports: BLAKE3 in keyed mode under `key`, over the
/// concatenation of `parts`.
///
/// Every input the cluster key authenticates starts with a byte naming
/// what it is ([`VERSION`] for a datagram, the stream handshake's own
/// domain bytes in [`tcp`](super::tcp)), so a tag made for one can never
/// pass for another.
pub(super) fn mac(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_keyed(key);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}

/// Whether `tag` is the [`mac`] of `parts`, compared in constant time (a
/// `blake3::Hash`'s equality is); a tag of any other length never is.
pub(super) fn verify(key: &[u8; KEY_LEN], parts: &[&[u8]], tag: &[u8]) -> bool {
    mac(key, parts) == *tag
}

/// Opens a received datagram: checks its length, version and tag, and
/// returns the claimed sender and the frame.
///
/// The sender is authenticated (the tag covers it) but not yet matched to
/// the source address; [`UdpTransport::recv`](super::UdpTransport::recv) does
/// that. Never panics, whatever the bytes.
///
/// # Errors
///
/// In the order checked: [`DropReason::Oversized`] above [`MAX_DATAGRAM_LEN`],
/// [`DropReason::Malformed`] below [`OVERHEAD`], [`DropReason::WrongVersion`]
/// for another first byte, [`DropReason::BadTag`] for a tag that does not
/// match.
pub fn open<'a>(key: &ClusterKey, datagram: &'a [u8]) -> Result<(NodeId, &'a [u8]), DropReason> {
    if datagram.len() > MAX_DATAGRAM_LEN {
        return Err(DropReason::Oversized);
    }
    let Some(body_len) = datagram.len().checked_sub(TAG_LEN).filter(|&n| n >= HEADER_LEN) else {
        return Err(DropReason::Malformed);
    };
    let (body, tag) = datagram.split_at(body_len);
    // The version is checked before the tag, unauthenticated, only to name
    // the reason better: a node of another version is not an attacker.
    if body[0] != VERSION {
        return Err(DropReason::WrongVersion);
    }
    if !verify(key.as_bytes(), &[body], tag) {
        return Err(DropReason::BadTag);
    }
    Ok((NodeId(body[1]), &body[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ClusterKey {
        ClusterKey::from_bytes([7; 32])
    }

    #[test]
    fn seal_then_open_round_trips() {
        let frame = b"hello, acceptor";
        let mut out = [0u8; 100];
        let len = seal(&key(), NodeId(3), frame, &mut out).unwrap();
        assert_eq!(len, frame.len() + OVERHEAD);
        assert_eq!(out[0], VERSION);
        assert_eq!(out[1], 3);
        assert_eq!(&out[2..2 + frame.len()], frame);
        assert_eq!(open(&key(), &out[..len]), Ok((NodeId(3), &frame[..])));
    }

    #[test]
    fn empty_frame_round_trips() {
        let mut out = [0u8; OVERHEAD];
        let len = seal(&key(), NodeId(255), &[], &mut out).unwrap();
        assert_eq!(len, OVERHEAD);
        assert_eq!(open(&key(), &out), Ok((NodeId(255), &[][..])));
    }

    #[test]
    fn largest_frame_fits_the_largest_datagram() {
        let frame = vec![0x5a; MAX_FRAME_LEN];
        let mut out = vec![0u8; MAX_DATAGRAM_LEN];
        assert_eq!(seal(&key(), NodeId(1), &frame, &mut out), Ok(MAX_DATAGRAM_LEN));
        assert_eq!(open(&key(), &out), Ok((NodeId(1), &frame[..])));
    }

    #[test]
    fn seal_refuses_oversized_frames_and_short_buffers() {
        let frame = vec![0u8; MAX_FRAME_LEN + 1];
        let mut out = vec![0u8; MAX_DATAGRAM_LEN + 100];
        assert_eq!(
            seal(&key(), NodeId(1), &frame, &mut out),
            Err(SealError::FrameTooLarge {
                len: MAX_FRAME_LEN + 1,
                max: MAX_FRAME_LEN
            })
        );
        let mut short = [0u8; OVERHEAD + 9];
        assert_eq!(
            seal(&key(), NodeId(1), &[1; 10], &mut short),
            Err(SealError::BufferTooSmall {
                required: OVERHEAD + 10
            })
        );
        assert_eq!(short, [0u8; OVERHEAD + 9], "nothing written on failure");
    }

    #[test]
    fn open_names_each_reason() {
        let mut out = [0u8; 64];
        let len = seal(&key(), NodeId(2), b"frame", &mut out).unwrap();
        let good = &out[..len];

        assert_eq!(open(&key(), &good[..OVERHEAD - 1]), Err(DropReason::Malformed));
        assert_eq!(open(&key(), &[]), Err(DropReason::Malformed));
        assert_eq!(
            open(&key(), &vec![VERSION; MAX_DATAGRAM_LEN + 1]),
            Err(DropReason::Oversized)
        );

        let mut other_version = good.to_vec();
        other_version[0] = 1;
        assert_eq!(open(&key(), &other_version), Err(DropReason::WrongVersion));

        let mut forged_sender = good.to_vec();
        forged_sender[1] = 9;
        assert_eq!(open(&key(), &forged_sender), Err(DropReason::BadTag));

        let other_key = ClusterKey::from_bytes([8; 32]);
        assert_eq!(open(&other_key, good), Err(DropReason::BadTag));

        // A truncated datagram moves the tag: rejected, not misread.
        assert_eq!(open(&key(), &good[..len - 1]), Err(DropReason::BadTag));
    }

    #[test]
    fn mac_is_keyed_blake3_over_the_parts_joined() {
        let key = [9u8; KEY_LEN];
        let joined = blake3::keyed_hash(&key, b"abcdef");
        assert_eq!(mac(&key, &[b"ab", b"", b"cdef"]), joined);
        assert!(verify(&key, &[b"abc", b"def"], joined.as_bytes()));
        assert!(!verify(&key, &[b"abcdeg"], joined.as_bytes()));
        assert!(
            !verify(&key, &[b"abcdef"], &joined.as_bytes()[..31]),
            "a short tag never matches"
        );
    }
}
