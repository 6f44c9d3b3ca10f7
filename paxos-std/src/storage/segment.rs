//! Segment files: names, the fixed header, and walking the frames.
//!
//! A segment is named `<first seq, 20 digits>.seg` and starts with a
//! 32-byte header, then frames (see [`super::record`]):
//!
//! ```text
//! offset  size  field
//!      0     8  magic         "PAXOSLOG"
//!      8     4  version       u32 LE, 1
//!     12     4  kind          u32 LE: 0 continuation, 1 initial base, 2 compacted base
//!     16     8  first_seq     u64 LE: the sequence number of its first frame
//!     24     4  snapshot_crc  u32 LE: the CRC of the snapshot file (compacted base), else 0
//!     28     4  crc           CRC-32C over bytes 0..28
//! ```
//!
//! Segments are created whole (written to a temporary file, synced,
//! renamed), so a header is never torn: a bad header is corruption.

use super::record::{self, to_array, Frame, FrameError, Header, CRC32C, FRAME_HEADER_LEN, MAX_BATCH_LEN};
use super::Corruption;

/// Bytes of a segment header.
pub(super) const SEGMENT_HEADER_LEN: usize = 32;
/// The first bytes of every segment.
const MAGIC: [u8; 8] = *b"PAXOSLOG";
/// The on-disk format version this code writes and reads.
pub(super) const FORMAT_VERSION: u32 = 1;
/// File-name extension of segments.
pub(super) const EXTENSION: &str = "seg";

/// The default size at which the log starts a new segment (64 MiB).
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// The largest segment size [`Options::segment_size`](super::Options) may ask for (256 MiB).
pub const MAX_SEGMENT_SIZE: u64 = 256 << 20;
/// The largest segment file the log ever writes: a full segment plus one
/// largest frame. Recovery rejects larger files before reading them.
pub(super) const MAX_SEGMENT_FILE_LEN: u64 =
    MAX_SEGMENT_SIZE + (SEGMENT_HEADER_LEN + FRAME_HEADER_LEN + MAX_BATCH_LEN) as u64;
/// Sequence numbers stay below this; anything above is corruption. It
/// keeps `seq + 1` and window arithmetic far from overflow.
pub(super) const MAX_SEQ: u64 = 1 << 62;

/// What a segment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SegmentKind {
    /// Continues the log after the previous segment.
    Continuation,
    /// Starts a log that was never compacted.
    Initial,
    /// Starts the log after a compaction: its first frame is the
    /// checkpoint, and the snapshot with the same sequence number goes with
    /// it.
    Compacted {
        /// The snapshot file's checksum, binding the two.
        snapshot_crc: u32,
    },
}

impl SegmentKind {
    /// Whether everything before this segment is obsolete.
    pub fn is_base(self) -> bool {
        !matches!(self, SegmentKind::Continuation)
    }
}

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SegmentHeader {
    /// What the segment is.
    pub kind: SegmentKind,
    /// The sequence number of its first frame.
    pub first_seq: u64,
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let (kind, snapshot_crc) = match self.kind {
            SegmentKind::Continuation => (0u32, 0u32),
            SegmentKind::Initial => (1, 0),
            SegmentKind::Compacted { snapshot_crc } => (2, snapshot_crc),
        };
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&kind.to_le_bytes());
        out[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        out[24..28].copy_from_slice(&snapshot_crc.to_le_bytes());
        let crc = CRC32C.checksum(&out[..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes the header at the start of `bytes`; the error carries the
    /// offset of the bad field.
    pub fn decode(bytes: &[u8]) -> Result<Self, (u64, Corruption)> {
        let Some(header) = bytes.get(..SEGMENT_HEADER_LEN) else {
            return Err((0, Corruption::Truncated));
        };
        if header[0..8] != MAGIC {
            return Err((0, Corruption::BadMagic));
        }
        let crc = u32::from_le_bytes(to_array(&header[28..32]));
        if CRC32C.checksum(&header[..28]) != crc {
            return Err((28, Corruption::Checksum));
        }
        let version = u32::from_le_bytes(to_array(&header[8..12]));
        if version != FORMAT_VERSION {
            return Err((8, Corruption::UnsupportedVersion { version }));
        }
        let snapshot_crc = u32::from_le_bytes(to_array(&header[24..28]));
        let kind = match u32::from_le_bytes(to_array(&header[12..16])) {
            0 => SegmentKind::Continuation,
            1 => SegmentKind::Initial,
            2 => SegmentKind::Compacted { snapshot_crc },
            kind => return Err((12, Corruption::UnknownKind { kind })),
        };
        let first_seq = u64::from_le_bytes(to_array(&header[16..24]));
        if first_seq == 0 || first_seq > MAX_SEQ {
            return Err((16, Corruption::SequenceOutOfRange { seq: first_seq }));
        }
        Ok(SegmentHeader { kind, first_seq })
    }
}

/// The file name of the segment whose first frame is `first_seq`.
pub(super) fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{EXTENSION}")
}

/// The sequence number in a file name `<20 digits>.<extension>`.
pub(super) fn parse_name(name: &str, extension: &str) -> Option<u64> {
    let digits = name.strip_suffix(extension)?.strip_suffix('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// How the frames of one segment end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The frames fill the segment exactly.
    Clean,
    /// The bytes at `offset` are not an intact frame.
    Damaged {
        /// Where the damage starts.
        offset: usize,
        /// What is wrong there.
        error: FrameError,
        /// The frame's header, if it is intact (only the payload is bad or
        /// cut short).
        header: Option<Header>,
    },
}

/// The frames of a segment, in order, up to the first damage.
#[derive(Debug)]
pub(super) struct Walk<'a> {
    /// Each intact frame with its offset in the file.
    pub frames: Vec<(usize, Frame<'a>)>,
    /// How the walk stopped.
    pub end: End,
}

/// Walks the frames of a segment's bytes (header included), checking each
/// frame's checksums, sequence number and commit group. Damage (a frame
/// that is cut short or fails a checksum) ends the walk and is left to
/// the caller to judge; an intact frame or frame header that breaks the
/// sequence is corruption at once: no torn write makes one.
pub(super) fn walk<'a>(bytes: &'a [u8], header: &SegmentHeader) -> Result<Walk<'a>, (u64, Corruption)> {
    let mut frames = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    let mut expected = header.first_seq;
    loop {
        let Some(rest) = bytes.get(offset..).filter(|rest| !rest.is_empty()) else {
            return Ok(Walk {
                frames,
                end: End::Clean,
            });
        };
        let decoded = record::decode(rest);
        let intact = match decoded {
            Ok(_) => None,
            Err(_) => record::header(rest).ok(),
        };
        let fields = match (&decoded, intact) {
            (Ok(frame), _) => Some((frame.seq, frame.group)),
            (Err(_), header) => header.map(|h| (h.seq, h.group)),
        };
        if let Some((seq, group)) = fields {
            if seq != expected {
                return Err((offset as u64, Corruption::SequenceGap { expected, found: seq }));
            }
            if group < header.first_seq || group > seq {
                return Err((offset as u64, Corruption::BadGroup { seq, group }));
            }
        }
        let frame = match decoded {
            Ok(frame) => frame,
            Err(error) => {
                return Ok(Walk {
                    frames,
                    end: End::Damaged {
                        offset,
                        error,
                        header: intact,
                    },
                })
            }
        };
        frames.push((offset, frame));
        offset += frame.encoded_len();
        expected += 1;
        if expected > MAX_SEQ {
            return Err((offset as u64, Corruption::SequenceOutOfRange { seq: expected }));
        }
    }
}

/// Looks past damage at `offset` in the last segment (`damaged` is the
/// damaged frame's header if that is intact) for evidence that the damage
/// is not a torn write.
///
/// The frames of one commit group are written together and made durable
/// by one sync; a crash during that sync may leave any of them missing or
/// partly written, in any order, but every earlier group is wholly on disk
/// (the next group is only written after the previous sync returned). The
/// damaged frame has sequence number `expected`. An intact frame header
/// after it whose group started after `expected` belongs to a later
/// commit group, so the damaged frame had been made durable: corruption.
/// Without such evidence the damage is a torn tail. The error carries the
/// offset of the damage.
///
/// Candidates are found by trying every offset, filtered by their fields
/// before the header checksum is computed; an intact frame is skipped
/// whole.
pub(super) fn check_after_damage(
    bytes: &[u8],
    offset: usize,
    expected: u64,
    first_seq: u64,
    damaged: Option<Header>,
) -> Result<(), (u64, Corruption)> {
    let mut pos = match damaged {
        Some(h) => offset.saturating_add(h.frame_len()),
        None => offset + 1,
    };
    while let Some(rest) = bytes.get(pos..).filter(|rest| rest.len() >= FRAME_HEADER_LEN) {
        let plausible = record::peek_seq_group(rest)
            .is_some_and(|(seq, group)| seq > expected && group >= first_seq && group <= seq);
        match plausible.then(|| record::header(rest)) {
            Some(Ok(h)) if h.group > expected => {
                return Err((offset as u64, Corruption::DamageBeforeValidData { seq: h.seq }));
            }
            Some(Ok(h)) => pos = pos.saturating_add(h.frame_len()),
            _ => pos += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        for kind in [
            SegmentKind::Continuation,
            SegmentKind::Initial,
            SegmentKind::Compacted { snapshot_crc: 0xdead },
        ] {
            let header = SegmentHeader { kind, first_seq: 42 };
            let bytes = header.encode();
            assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
            for i in 0..bytes.len() * 8 {
                let mut bad = bytes;
                bad[i / 8] ^= 1 << (i % 8);
                assert!(SegmentHeader::decode(&bad).is_err(), "bit {i}");
            }
            for len in 0..SEGMENT_HEADER_LEN {
                assert_eq!(SegmentHeader::decode(&bytes[..len]), Err((0, Corruption::Truncated)));
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(file_name(7), "00000000000000000007.seg");
        assert_eq!(parse_name("00000000000000000007.seg", EXTENSION), Some(7));
        assert_eq!(parse_name("00000000000000000007.snap", "snap"), Some(7));
        for bad in [
            "7.seg",
            "0000000000000000000x.seg",
            "00000000000000000007.seg.tmp",
            "LOCK",
            "+0000000000000000007.seg",
        ] {
            assert_eq!(parse_name(bad, EXTENSION), None, "{bad}");
        }
        // 20 digits beyond u64.
        assert_eq!(parse_name("99999999999999999999.seg", EXTENSION), None);
    }
}
