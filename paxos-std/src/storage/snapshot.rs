//! Snapshot files: the application state a compaction replaced the log
//! with, opaque to the storage.
//!
//! A snapshot is named `<seq, 20 digits>.snap` after the sequence number
//! of the checkpoint frame that starts the compacted base segment it goes
//! with, and holds a 32-byte header, then the snapshot:
//!
//! ```text
//! offset  size  field
//!      0     8  magic    "PAXOSNAP"
//!      8     4  version  u32 LE, 1
//!     12     8  seq      u64 LE, as in the name
//!     20     8  len      u64 LE, the snapshot's length (the file is exactly 32 + len bytes)
//!     28     4  crc      CRC-32C over bytes 0..28 and the snapshot
//! ```
//!
//! The base segment's header repeats `crc`, so a snapshot left over from
//! another compaction can never be taken for this one.

use super::record::{to_array, CRC32C};
use super::segment::FORMAT_VERSION;
use super::Corruption;

/// Bytes of a snapshot header.
pub(super) const SNAPSHOT_HEADER_LEN: usize = 32;
/// The first bytes of every snapshot file.
const MAGIC: [u8; 8] = *b"PAXOSNAP";
/// File-name extension of snapshots.
pub(super) const EXTENSION: &str = "snap";

/// The file name of the snapshot that goes with the base segment starting
/// at `seq`.
pub(super) fn file_name(seq: u64) -> String {
    format!("{seq:020}.{EXTENSION}")
}

/// The header of the snapshot `payload` for `seq`, and its checksum.
pub(super) fn encode_header(seq: u64, payload: &[u8]) -> ([u8; SNAPSHOT_HEADER_LEN], u32) {
    let mut header = [0u8; SNAPSHOT_HEADER_LEN];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&seq.to_le_bytes());
    header[20..28].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut digest = CRC32C.digest();
    digest.update(&header[..28]);
    digest.update(payload);
    let crc = digest.finalize();
    header[28..32].copy_from_slice(&crc.to_le_bytes());
    (header, crc)
}

/// Checks a whole snapshot file's bytes and returns the snapshot and its
/// checksum; the error carries the offset of the bad field.
pub(super) fn decode(bytes: &[u8], seq: u64) -> Result<(&[u8], u32), (u64, Corruption)> {
    let Some(header) = bytes.get(..SNAPSHOT_HEADER_LEN) else {
        return Err((0, Corruption::Truncated));
    };
    if header[0..8] != MAGIC {
        return Err((0, Corruption::BadMagic));
    }
    let len = u64::from_le_bytes(to_array(&header[20..28]));
    let payload = &bytes[SNAPSHOT_HEADER_LEN..];
    if len != payload.len() as u64 {
        let reason = if len > payload.len() as u64 {
            Corruption::Truncated
        } else {
            Corruption::LengthTooLarge { len }
        };
        return Err((20, reason));
    }
    let crc = u32::from_le_bytes(to_array(&header[28..32]));
    let mut digest = CRC32C.digest();
    digest.update(&header[..28]);
    digest.update(payload);
    if digest.finalize() != crc {
        return Err((28, Corruption::Checksum));
    }
    let version = u32::from_le_bytes(to_array(&header[8..12]));
    if version != FORMAT_VERSION {
        return Err((8, Corruption::UnsupportedVersion { version }));
    }
    let stored = u64::from_le_bytes(to_array(&header[12..20]));
    if stored != seq {
        return Err((
            12,
            Corruption::NameMismatch {
                name: seq,
                header: stored,
            },
        ));
    }
    Ok((payload, crc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(seq: u64, payload: &[u8]) -> Vec<u8> {
        let (header, _) = encode_header(seq, payload);
        [&header[..], payload].concat()
    }

    #[test]
    fn round_trip() {
        let bytes = file(9, b"state");
        let (header, crc) = encode_header(9, b"state");
        assert_eq!(decode(&bytes, 9), Ok((&b"state"[..], crc)));
        assert_eq!(&bytes[..SNAPSHOT_HEADER_LEN], &header);
        assert_eq!(decode(&file(9, b""), 9).map(|(p, _)| p.len()), Ok(0));
    }

    #[test]
    fn damage_is_caught() {
        let good = file(9, b"state");
        for i in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decode(&bad, 9).is_err(), "bit {i}");
        }
        for len in 0..good.len() {
            assert!(decode(&good[..len], 9).is_err(), "len {len}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode(&longer, 9).is_err());
        assert_eq!(
            decode(&good, 10),
            Err((12, Corruption::NameMismatch { name: 10, header: 9 }))
        );
    }
}
