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

/// How long `acquire` waits for a lock held by someone else.
pub(super) const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(200);

/// Holds the lock while alive.
#[derive(Debug)]
pub(super) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock on `dir`, waiting at most [`LOCK_PATIENCE`].
    ///
    /// The short wait is for a lock held only for an instant by someone
    /// else's copy of the file: a child process forked by this one between
    /// `fork` and `exec` holds every open file until `exec` closes it.
    pub fn acquire(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error("open", &path))?;
        let started = std::time::Instant::now();
        loop {
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => return Ok(DirLock { _file: file }),
                Err(fs4::TryLockError::WouldBlock) if started.elapsed() < LOCK_PATIENCE => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(fs4::TryLockError::WouldBlock) => return Err(StorageError::Locked { dir: dir.to_path_buf() }),
                Err(fs4::TryLockError::Error(e)) => return Err(io_error("lock", &path)(e)),
            }
        }
    }
}
