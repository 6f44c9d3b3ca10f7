//! The data directory: which files it holds, and the few file-system
//! steps everything else is built from.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::error::{corrupt, io_error};
use super::{segment, snapshot, Corruption, StorageError};

/// Suffix of files being written before their rename into place.
pub(super) const TEMP_SUFFIX: &str = ".tmp";

/// The log's files in a directory. Other files are left alone.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Segments by first sequence number.
    pub segments: BTreeMap<u64, PathBuf>,
    /// Snapshots by sequence number.
    pub snapshots: BTreeMap<u64, PathBuf>,
    /// Unfinished temporary files of this log.
    pub temporaries: Vec<PathBuf>,
}

/// Lists the log's files in `dir`.
pub(super) fn list(dir: &Path) -> Result<Listing, StorageError> {
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir).map_err(io_error("read directory", dir))? {
        let entry = entry.map_err(io_error("read directory", dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = entry.path();
        if let Some(stem) = name.strip_suffix(TEMP_SUFFIX) {
            if segment::parse_name(stem, segment::EXTENSION).is_some()
                || segment::parse_name(stem, snapshot::EXTENSION).is_some()
            {
                listing.temporaries.push(path);
            }
        } else if let Some(seq) = segment::parse_name(&name, segment::EXTENSION) {
            listing.segments.insert(seq, path);
        } else if let Some(seq) = segment::parse_name(&name, snapshot::EXTENSION) {
            listing.snapshots.insert(seq, path);
        }
    }
    Ok(listing)
}

/// The temporary name `path` is written under before its rename.
pub(super) fn temporary(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMP_SUFFIX);
    PathBuf::from(name)
}

/// Creates (or replaces) the file at `path` with `parts` and syncs it,
/// data and metadata. Returns the open file.
pub(super) fn write_synced(path: &Path, parts: &[&[u8]]) -> Result<File, StorageError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_error("create", path))?;
    for part in parts {
        file.write_all(part).map_err(io_error("write", path))?;
    }
    file.sync_all().map_err(io_error("fsync", path))?;
    Ok(file)
}

/// Renames `from` to `to`, replacing `to`.
pub(super) fn rename(from: &Path, to: &Path) -> Result<(), StorageError> {
    fs::rename(from, to).map_err(io_error("rename", from))
}

/// Removes a file; one already gone is fine.
pub(super) fn remove(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Creates `dir` and any missing parents, and makes their names durable:
/// a data directory that a crash could make vanish would lose everything
/// confirmed in it.
pub(super) fn create(dir: &Path) -> Result<(), StorageError> {
    let mut missing = Vec::new();
    let mut ancestor = Some(dir);
    while let Some(path) = ancestor.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path);
        ancestor = path.parent();
    }
    fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
    for path in missing {
        match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => sync_dir(parent)?,
            None => sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

/// Makes the directory's entries (created, renamed and removed names)
/// durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("fsync directory", dir))
    }
    // Elsewhere a directory cannot be opened as a file; renames there are
    // made durable by the file system itself or not at all.
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Reads a whole file that may be at most `max` bytes long: the length is
/// checked before anything is allocated.
pub(super) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, StorageError> {
    let file = File::open(path).map_err(io_error("open", path))?;
    let len = file.metadata().map_err(io_error("stat", path))?.len();
    if len > max {
        return Err(corrupt(path, 0, Corruption::FileTooLarge { len, max }));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len).read_to_end(&mut bytes).map_err(io_error("read", path))?;
    Ok(bytes)
}
