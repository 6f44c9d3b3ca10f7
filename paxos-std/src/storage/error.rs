//! What can go wrong with the data directory.

use core::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An error from [`FileLog`](super::FileLog).
#[derive(Debug)]
#[non_exhaustive]
pub enum StorageError {
    /// A file-system operation failed. After a failed write or sync the log
    /// refuses further work ([`StorageError::Poisoned`]): reopen it.
    Io {
        /// What was being done (`"write"`, `"fdatasync"`, `"rename"`, ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Another [`FileLog`](super::FileLog), in this process or another one,
    /// holds the directory.
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// The directory holds damaged or inconsistent data that is not a torn
    /// tail of an interrupted write. Opening refuses to start rather than
    /// silently fall back to older state; an operator has to look.
    Corrupt {
        /// The file where the damage was found.
        file: PathBuf,
        /// The byte offset in that file.
        offset: u64,
        /// What is wrong there.
        reason: Corruption,
    },
    /// A batch is larger than [`MAX_BATCH_LEN`](super::MAX_BATCH_LEN).
    /// Nothing was written; the log is still usable.
    BatchTooLarge {
        /// The batch's length.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },
    /// A snapshot is larger than
    /// [`MAX_SNAPSHOT_LEN`](super::MAX_SNAPSHOT_LEN). Nothing was written;
    /// the log is still usable.
    SnapshotTooLarge {
        /// The snapshot's length.
        len: u64,
        /// The largest length accepted.
        max: u64,
    },
    /// An earlier write, sync or compaction failed, so what is on disk is
    /// no longer known. Drop the log and open the directory again, which
    /// recovers whatever did reach the disk.
    Poisoned,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            StorageError::Locked { dir } => write!(f, "{} is in use by another process or log", dir.display()),
            StorageError::Corrupt { file, offset, reason } => {
                write!(f, "{} is corrupt at byte {offset}: {reason}", file.display())
            }
            StorageError::BatchTooLarge { len, max } => write!(f, "batch of {len} bytes exceeds the maximum {max}"),
            StorageError::SnapshotTooLarge { len, max } => {
                write!(f, "snapshot of {len} bytes exceeds the maximum {max}")
            }
            StorageError::Poisoned => f.write_str("an earlier write or sync failed; reopen the log"),
        }
    }
}

impl core::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a file is [`StorageError::Corrupt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The data ends in the middle of a header or a frame, where no
    /// interrupted write can have left it.
    Truncated,
    /// A checksum does not match the bytes it covers.
    Checksum,
    /// A length field is larger than the format allows.
    LengthTooLarge {
        /// The length read.
        len: u64,
    },
    /// The file does not start with the expected magic bytes.
    BadMagic,
    /// The file was written by an unknown format version.
    UnsupportedVersion {
        /// The version read.
        version: u32,
    },
    /// A segment header names an unknown segment kind.
    UnknownKind {
        /// The kind read.
        kind: u32,
    },
    /// A file's name and the sequence number in its header disagree.
    NameMismatch {
        /// The sequence number in the name.
        name: u64,
        /// The sequence number in the header.
        header: u64,
    },
    /// A frame or segment does not carry the next sequence number.
    SequenceGap {
        /// The sequence number that should come next.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A sequence number is beyond the range the log ever uses.
    SequenceOutOfRange {
        /// The sequence number read.
        seq: u64,
    },
    /// A frame's commit group does not fit its sequence number or segment.
    BadGroup {
        /// The frame's sequence number.
        seq: u64,
        /// The first sequence number of its commit group, as stored.
        group: u64,
    },
    /// A damaged frame is followed by an intact frame (or frame header) of
    /// a later commit group, so the damaged one had been made durable: this
    /// is not a torn tail.
    DamageBeforeValidData {
        /// The sequence number of the intact frame found after the damage.
        seq: u64,
    },
    /// A file is larger than any file this log writes.
    FileTooLarge {
        /// The file's length.
        len: u64,
        /// The largest length allowed.
        max: u64,
    },
    /// The directory holds segments, but none that starts the log.
    MissingBase,
    /// The directory holds a snapshot but no segment at all.
    MissingSegments,
    /// The base segment refers to a snapshot file that is missing.
    MissingSnapshot,
    /// The snapshot file is not the one the base segment refers to.
    SnapshotMismatch,
    /// A compacted base segment lacks its checkpoint batch.
    MissingCheckpoint,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Corruption::Truncated => f.write_str("data ends inside a header or frame"),
            Corruption::Checksum => f.write_str("checksum mismatch"),
            Corruption::LengthTooLarge { len } => write!(f, "length {len} is larger than allowed"),
            Corruption::BadMagic => f.write_str("bad magic bytes"),
            Corruption::UnsupportedVersion { version } => write!(f, "unsupported format version {version}"),
            Corruption::UnknownKind { kind } => write!(f, "unknown segment kind {kind}"),
            Corruption::NameMismatch { name, header } => {
                write!(f, "file name says sequence {name}, header says {header}")
            }
            Corruption::SequenceGap { expected, found } => {
                write!(f, "expected sequence number {expected}, found {found}")
            }
            Corruption::SequenceOutOfRange { seq } => write!(f, "sequence number {seq} out of range"),
            Corruption::BadGroup { seq, group } => write!(f, "frame {seq} claims commit group {group}"),
            Corruption::DamageBeforeValidData { seq } => {
                write!(f, "damaged frame followed by intact frame {seq} of a later commit")
            }
            Corruption::FileTooLarge { len, max } => write!(f, "file of {len} bytes exceeds {max}"),
            Corruption::MissingBase => f.write_str("no segment starts the log (the first segment is lost)"),
            Corruption::MissingSegments => f.write_str("a snapshot without any log segment"),
            Corruption::MissingSnapshot => f.write_str("the snapshot this segment refers to is missing"),
            Corruption::SnapshotMismatch => f.write_str("the snapshot is not the one this segment refers to"),
            Corruption::MissingCheckpoint => f.write_str("a compacted segment lacks its checkpoint batch"),
        }
    }
}

/// Wraps an [`io::Error`] with what was done to which path. The path is
/// copied only if there is an error: writes and syncs call this on the hot
/// path.
pub(super) fn io_error<'p, P: AsRef<Path> + ?Sized>(
    op: &'static str,
    path: &'p P,
) -> impl FnOnce(io::Error) -> StorageError + 'p {
    move |source| StorageError::Io {
        op,
        path: path.as_ref().to_path_buf(),
        source,
    }
}

/// A [`StorageError::Corrupt`].
pub(super) fn corrupt(file: impl Into<PathBuf>, offset: u64, reason: Corruption) -> StorageError {
    StorageError::Corrupt {
        file: file.into(),
        offset,
        reason,
    }
}

/// What the driver loop's error means for the node: the storage's own
/// error, or (for a batch reported durable that was never written, a
/// storage bug) a log that must not be trusted any more.
impl From<paxos_core::driver::DriveError<StorageError>> for StorageError {
    fn from(e: paxos_core::driver::DriveError<StorageError>) -> Self {
        use paxos_core::driver::DriveError;
        match e {
            DriveError::Append { error, .. } | DriveError::Sync(error) => error,
            DriveError::UnknownPersist(_) => StorageError::Poisoned,
        }
    }
}
