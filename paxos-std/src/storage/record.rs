//! Record framing: one batch as it sits in a segment, and the checksum.
//!
//! ```text
//! offset  size  field
//!      0     4  len          payload length, u32 little-endian, at most MAX_BATCH_LEN
//!      4     8  seq          sequence number, u64 LE, one more than the previous frame's
//!     12     8  group        sequence number of the first frame of this frame's commit
//!                            group (the frames written between two syncs), u64 LE
//!     20     4  payload_crc  CRC-32C of the payload, u32 LE
//!     24     4  header_crc   CRC-32C of bytes 0..24, u32 LE
//!     28   len  payload
//! ```
//!
//! The header has its own checksum so that it can be trusted when the
//! payload behind it is damaged: an intact header after damage is
//! evidence of what was written there (see
//! [`check_after_damage`](super::segment::check_after_damage)).

use crc::{Crc, Table, CRC_32_ISCSI};

/// Bytes before a frame's payload.
pub(super) const FRAME_HEADER_LEN: usize = 28;

/// The largest batch [`FileLog::append`](super::FileLog::append) accepts
/// (64 MiB). Recovery rejects a frame claiming more before allocating.
pub const MAX_BATCH_LEN: usize = 64 << 20;

/// CRC-32C (Castagnoli), the checksum of frames, headers and snapshots.
pub(super) static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// One intact frame, borrowed from the bytes it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Frame<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// The sequence number of the first frame of its commit group.
    pub group: u64,
    /// The batch.
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Bytes the frame takes on disk.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload.len()
    }
}

/// An intact frame header (its checksum matched), payload unchecked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    /// The payload length, at most [`MAX_BATCH_LEN`].
    pub len: usize,
    /// The sequence number.
    pub seq: u64,
    /// The first sequence number of the commit group.
    pub group: u64,
    /// The payload's checksum.
    pub payload_crc: u32,
}

impl Header {
    /// Bytes the whole frame takes on disk.
    pub fn frame_len(&self) -> usize {
        FRAME_HEADER_LEN + self.len
    }
}

/// Why bytes are not an intact frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FrameError {
    /// The bytes end before the header or the payload does.
    Incomplete,
    /// The header's checksum does not match.
    HeaderChecksum,
    /// The header is intact but its length exceeds [`MAX_BATCH_LEN`].
    TooLong {
        /// The length read.
        len: u32,
    },
    /// The header is intact, the payload's checksum does not match.
    PayloadChecksum,
}

impl FrameError {
    /// The corruption this is when it cannot be a torn tail.
    pub fn corruption(self) -> super::Corruption {
        match self {
            FrameError::Incomplete => super::Corruption::Truncated,
            FrameError::TooLong { len } => super::Corruption::LengthTooLarge { len: u64::from(len) },
            FrameError::HeaderChecksum | FrameError::PayloadChecksum => super::Corruption::Checksum,
        }
    }
}

/// Appends one frame to `out`. The caller checked `payload.len()` against
/// [`MAX_BATCH_LEN`].
pub(super) fn encode(out: &mut Vec<u8>, seq: u64, group: u64, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_BATCH_LEN);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut header = [0u8; FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&len.to_le_bytes());
    header[4..12].copy_from_slice(&seq.to_le_bytes());
    header[12..20].copy_from_slice(&group.to_le_bytes());
    header[20..24].copy_from_slice(&CRC32C.checksum(payload).to_le_bytes());
    let header_crc = CRC32C.checksum(&header[..24]);
    header[24..28].copy_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
}

/// Reads and checks the frame header at the start of `bytes`.
pub(super) fn header(bytes: &[u8]) -> Result<Header, FrameError> {
    let Some(raw) = bytes.get(..FRAME_HEADER_LEN) else {
        return Err(FrameError::Incomplete);
    };
    if CRC32C.checksum(&raw[..24]) != u32::from_le_bytes(to_array(&raw[24..28])) {
        return Err(FrameError::HeaderChecksum);
    }
    let len = u32::from_le_bytes(to_array(&raw[0..4]));
    if len as usize > MAX_BATCH_LEN {
        return Err(FrameError::TooLong { len });
    }
    Ok(Header {
        len: len as usize,
        seq: u64::from_le_bytes(to_array(&raw[4..12])),
        group: u64::from_le_bytes(to_array(&raw[12..20])),
        payload_crc: u32::from_le_bytes(to_array(&raw[20..24])),
    })
}

/// The sequence number and commit group fields at the start of `bytes`,
/// unchecked: a cheap filter before [`header`].
pub(super) fn peek_seq_group(bytes: &[u8]) -> Option<(u64, u64)> {
    let raw = bytes.get(..20)?;
    Some((
        u64::from_le_bytes(to_array(&raw[4..12])),
        u64::from_le_bytes(to_array(&raw[12..20])),
    ))
}

/// Decodes the frame at the start of `bytes` (which may continue past it).
pub(super) fn decode(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let header = header(bytes)?;
    let payload = bytes
        .get(FRAME_HEADER_LEN..header.frame_len())
        .ok_or(FrameError::Incomplete)?;
    if CRC32C.checksum(payload) != header.payload_crc {
        return Err(FrameError::PayloadChecksum);
    }
    Ok(Frame {
        seq: header.seq,
        group: header.group,
        payload,
    })
}

/// Copies a slice whose length the caller fixed into an array.
pub(super) fn to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = bytes.len().min(N);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

#[cfg(test)]
mod tests {
    //! Equivalents of the seed's `DurableReadTester` (reference 8.5, tests
    //! 1-5), on one frame instead of one whole-object record.
    use super::*;

    fn frame(seq: u64, group: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, seq, group, payload);
        out
    }

    /// Seed `test_read_zero_length`: empty input is cut short.
    #[test]
    fn read_zero_length() {
        assert_eq!(decode(&[]), Err(FrameError::Incomplete));
    }

    /// Seed `test_read_header_too_small`: a header one byte short.
    #[test]
    fn read_header_too_small() {
        assert_eq!(decode(&[0u8; FRAME_HEADER_LEN - 1]), Err(FrameError::Incomplete));
    }

    /// Seed `test_read_no_pickle_data`: a header promising 5 bytes, no payload.
    #[test]
    fn read_payload_missing() {
        let mut bytes = frame(1, 1, b"xxxxx");
        bytes.truncate(FRAME_HEADER_LEN);
        assert_eq!(decode(&bytes), Err(FrameError::Incomplete));
        let mut bytes = frame(1, 1, b"xxxxx");
        bytes.pop();
        assert_eq!(decode(&bytes), Err(FrameError::Incomplete));
    }

    /// Seed `test_read_bad_hash_mismatch`: a zero checksum, length 5 and 5
    /// payload bytes.
    #[test]
    fn read_checksum_mismatch() {
        let mut bytes = frame(1, 1, b"xxxxx");
        bytes[24..28].fill(0);
        assert_eq!(decode(&bytes), Err(FrameError::HeaderChecksum));
        let mut bytes = frame(1, 1, b"xxxxx");
        bytes[FRAME_HEADER_LEN] ^= 1;
        assert_eq!(decode(&bytes), Err(FrameError::PayloadChecksum));
        // The header alone is still trusted when only the payload is bad.
        assert_eq!(header(&bytes).map(|h| (h.seq, h.len)), Ok((1, 5)));
        // Every single-bit flip anywhere is caught.
        let good = frame(7, 3, b"hello");
        for i in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decode(&bad).is_err(), "bit {i}");
        }
    }

    /// Seed `test_read_ok`: a hand-built record (here: a hand-built frame
    /// with a checksum computed independently of `encode`).
    #[test]
    fn read_ok() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&5u32.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes()); // seq
        bytes.extend_from_slice(&1u64.to_le_bytes()); // group
        let crc32c = Crc::<u32>::new(&CRC_32_ISCSI);
        bytes.extend_from_slice(&crc32c.checksum(b"xxxxx").to_le_bytes());
        let header_crc = crc32c.checksum(&bytes);
        bytes.extend_from_slice(&header_crc.to_le_bytes());
        bytes.extend_from_slice(b"xxxxx");
        bytes.extend_from_slice(b"trailing bytes are not part of the frame");
        let f = decode(&bytes).unwrap();
        assert_eq!(
            f,
            Frame {
                seq: 1,
                group: 1,
                payload: b"xxxxx"
            }
        );
        assert_eq!(f.encoded_len(), FRAME_HEADER_LEN + 5);
        assert_eq!(&bytes[..f.encoded_len()], &frame(1, 1, b"xxxxx")[..]);
    }

    #[test]
    fn known_crc32c_vector() {
        // The standard check value of CRC-32C.
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn oversized_length_is_rejected_before_reading_the_payload() {
        let mut bytes = frame(1, 1, b"");
        bytes[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let header_crc = CRC32C.checksum(&bytes[..24]);
        bytes[24..28].copy_from_slice(&header_crc.to_le_bytes());
        assert_eq!(decode(&bytes), Err(FrameError::TooLong { len: u32::MAX }));
    }

    #[test]
    fn zeroes_are_not_a_frame() {
        assert_eq!(decode(&[0u8; 64]), Err(FrameError::HeaderChecksum));
    }
}
