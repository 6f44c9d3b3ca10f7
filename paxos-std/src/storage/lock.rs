//! The exclusive lock on a data directory.
//!
//! An advisory lock (`flock` on Unix, `LockFileEx` on Windows) on the file
//! `LOCK` in the directory. It belongs to the open file, so a second open
//! of the same directory fails whether it comes from another process or
//! from this one, and the lock goes away with the file: on drop, or when
//! the process dies.
//!
//! `std::fs::File::try_lock` does the same but needs Rust 1.89; the
//! workspace supports 1.87, so this uses `fs4`.

use std::fs::{File, OpenOptions};
use std::path::Path;

use super::error::io_error;
use super::StorageError;

/// The lock file's name.
pub(super) const LOCK_FILE: &str = "LOCK";

/// Holds the lock while alive.
#[derive(Debug)]
pub(super) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock on `dir` without waiting.
    pub fn acquire(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error("open", &path))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs4::TryLockError::WouldBlock) => Err(StorageError::Locked { dir: dir.to_path_buf() }),
            Err(fs4::TryLockError::Error(e)) => Err(io_error("lock", &path)(e)),
        }
    }
}
