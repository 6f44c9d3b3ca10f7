//! The number of this run of a node's process, kept in the data
//! directory: strictly above every earlier run's, whatever the wall clock
//! did between them.
//!
//! File `incarnation`: the number as u64 LE, then its CRC-32C as u32 LE;
//! replaced atomically (written under a temporary name, synced, renamed,
//! directory synced) before the run uses it.

use super::dir;
use super::error::{corrupt, Corruption, StorageError};
use super::record::CRC32C;
use std::path::Path;

const FILE: &str = "incarnation";
const LEN: usize = 12;

/// Returns this run's number and makes it durable: the larger of the
/// wall clock in microseconds and one above the last run's number.
/// Call it once per run, after the data directory is locked.
///
/// # Errors
///
/// The file cannot be read or written, or is not what this function
/// writes.
pub fn next_incarnation(data_dir: &Path) -> Result<u64, StorageError> {
    let path = data_dir.join(FILE);
    let last = if path.exists() {
        let bytes = dir::read_bounded(&path, LEN as u64)?;
        let (Some(value), Some(crc)) = (bytes.get(..8), bytes.get(8..LEN)) else {
            return Err(corrupt(&path, 0, Corruption::Truncated));
        };
        if CRC32C.checksum(value).to_le_bytes() != crc {
            return Err(corrupt(&path, 8, Corruption::Checksum));
        }
        Some(u64::from_le_bytes(value.try_into().unwrap_or_default()))
    } else {
        None
    };
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let next = last.map_or(clock, |last| clock.max(last.saturating_add(1)));
    let value = next.to_le_bytes();
    let temporary = dir::temporary(&path);
    dir::write_synced(&temporary, &[&value, &CRC32C.checksum(&value).to_le_bytes()])?;
    dir::rename(&temporary, &path)?;
    dir::sync_dir(data_dir)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_gets_a_larger_number_even_when_the_clock_is_behind() {
        let dir = tempfile::tempdir().unwrap();
        let first = next_incarnation(dir.path()).unwrap();
        let second = next_incarnation(dir.path()).unwrap();
        assert!(second > first);
        // A number far in the future, as a clock set back would leave it.
        let ahead = u64::MAX / 2;
        let value = ahead.to_le_bytes();
        std::fs::write(
            dir.path().join(FILE),
            [&value[..], &CRC32C.checksum(&value).to_le_bytes()].concat(),
        )
        .unwrap();
        assert_eq!(next_incarnation(dir.path()).unwrap(), ahead + 1);
    }

    #[test]
    fn a_damaged_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        next_incarnation(dir.path()).unwrap();
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            next_incarnation(dir.path()),
            Err(StorageError::Corrupt {
                reason: Corruption::Checksum,
                ..
            })
        ));
        std::fs::write(&path, &bytes[..5]).unwrap();
        assert!(matches!(
            next_incarnation(dir.path()),
            Err(StorageError::Corrupt {
                reason: Corruption::Truncated,
                ..
            })
        ));
    }
}
