//! Crash-safe file storage for the replica's record batches.
//!
//! [`FileLog`] is an append-only log of opaque batches (the byte strings
//! [`Replica::poll_persist`](paxos_core::replica::Replica::poll_persist)
//! writes) in a data directory. It never looks inside a batch. After a
//! restart [`FileLog::open`] hands back every batch made durable, in
//! order, for `Replica::recover`, and the snapshot of the last compaction.
//!
//! ```no_run
//! use paxos_std::storage::FileLog;
//! # fn main() -> Result<(), paxos_std::storage::StorageError> {
//! let (mut log, recovered) = FileLog::open("data".as_ref())?;
//! // ... rebuild the replica from `recovered.snapshot` and `recovered.batches` ...
//! # let _ = recovered;
//! log.append(b"\x01first batch")?;
//! log.append(b"\x01second batch")?;
//! log.sync()?; // one fdatasync makes both durable: group commit
//! // ... now confirm them to the replica with `persisted` ...
//! # Ok(()) }
//! ```
//!
//! # Durability
//!
//! - [`FileLog::append`] only buffers; nothing is promised until
//!   [`FileLog::sync`] returns, which writes the buffer and calls
//!   `fdatasync`. Many appends and one sync form one *commit group*.
//! - When a segment is full the log syncs it, then creates the next one
//!   whole (temporary file, `fsync`, rename, `fsync` of the directory), so
//!   every segment but the last is complete on disk.
//! - [`FileLog::compact`] replaces the whole log by a snapshot and one
//!   checkpoint batch with a single atomic rename as its commit point:
//!   write the snapshot and the new base segment to temporary files and
//!   `fsync` them, rename the snapshot into place and `fsync` the
//!   directory (a snapshot no base segment refers to is ignored), rename
//!   the segment into place and `fsync` the directory (the commit), then
//!   delete the old segments and snapshot. A crash anywhere recovers the
//!   old state or the new one, never a mix.
//! - Any failed write, sync or compaction poisons the log
//!   ([`StorageError::Poisoned`]): after a failed `fdatasync` the kernel may
//!   have dropped the data it could not write, so the only safe way on is
//!   to reopen and recover from what really is on disk.
//! - Opening syncs the last segment and the directory before returning,
//!   so whatever it hands back is durable even if the previous process
//!   died before its own sync. A data directory it creates is made durable
//!   in its parent.
//! - Dropping a `FileLog` does not sync: batches appended since the last
//!   sync may or may not survive, exactly as after a crash.
//!
//! # Recovery
//!
//! Opening checks every header, frame, checksum and sequence number of the
//! live log before it changes anything. It repairs exactly one thing: a
//! **torn tail**, the frames of the last commit group of the last segment
//! that a crash left partly written. A crash during a sync may leave any
//! of that group's frames missing or half-written, in any order, while
//! every earlier group is whole (the next group is written only after the
//! previous sync returned). So damage in the last segment is a torn tail
//! unless an intact frame header after it belongs to a commit group that
//! started after the damaged frame; the log is cut at the damage, the cut is
//! synced, and it is counted in [`Stats::torn_tails_truncated`]. Frames of
//! that group before the damage are kept: they were never confirmed, and
//! keeping them is as safe as losing them.
//!
//! Everything else is [`StorageError::Corrupt`] with the file, the byte
//! offset and a [`Corruption`] reason, and the directory is left as it was
//! for an operator: damage followed by an intact frame header of a later
//! commit group, damage in any segment but the last, an intact frame out of
//! sequence, a sequence gap between segments, a missing or
//! damaged base segment, snapshot or checkpoint. The log never silently
//! falls back to older state than what it may have confirmed.
//!
//! Nothing read from disk can make it panic or allocate without bound:
//! every length is checked against the file's size and against
//! [`MAX_BATCH_LEN`] (frames), [`MAX_SEGMENT_SIZE`] (segments) or
//! [`MAX_SNAPSHOT_LEN`] (snapshots) first.
//!
//! # Files
//!
//! ```text
//! LOCK                          the exclusive lock (flock), empty
//! 00000000000000000001.seg      segments, named after their first sequence number
//! 00000000000000000913.seg
//! 00000000000000000913.snap     the snapshot going with the base segment 913
//! *.seg.tmp, *.snap.tmp         unfinished; removed when the log is opened
//! ```
//!
//! The live log is the newest *base* segment (the first segment of a new
//! log, or one a compaction wrote) and every segment after it; older
//! segments and other snapshots are leftovers of a compaction interrupted
//! while deleting, and opening removes them. All integers are little-endian;
//! all checksums are CRC-32C (Castagnoli).
//!
//! A segment is a 32-byte header, then frames:
//!
//! ```text
//! segment header                         frame
//!  0  8  magic "PAXOSLOG"                 0  4  len          payload length (<= MAX_BATCH_LEN)
//!  8  4  version (1)                      4  8  seq          previous frame's seq + 1, from 1
//! 12  4  kind: 0 continuation,           12  8  group        seq of the first frame of its commit group
//!         1 initial base, 2 compacted    20  4  payload_crc  crc of the payload
//! 16  8  first_seq                       24  4  header_crc   crc of bytes 0..24
//! 24  4  snapshot crc (compacted) or 0   28  len payload     one batch
//! 28  4  crc over bytes 0..28
//! ```
//!
//! The frame header has its own checksum so it can be trusted when the
//! payload behind it is damaged: an intact header after damage is evidence
//! that the damage is not a torn write. A compacted base segment's first
//! frame is the checkpoint batch. A
//! snapshot file is a 32-byte header (magic `"PAXOSNAP"`, version,
//! sequence number, length, crc over the header and the snapshot) and the
//! snapshot.
//!
//! # Limits
//!
//! - Corruption that keeps every checksum intact cannot be told from a
//!   shorter log: losing the newest segment file whole, or the tail of the
//!   last commit group after its sync (a disk that lies about flushes).
//!   Damage inside the last commit group is taken for a torn write, as it
//!   must be when a crash is possible.
//! - The lock is advisory: it keeps out other `FileLog`s, not other
//!   programs.
//! - Written for Unix file semantics: `fdatasync`, `fsync` of a directory,
//!   and a rename that replaces an open file (a compaction of a log whose
//!   last segment is empty replaces that segment).

mod dir;
mod error;
mod incarnation;
mod lock;
mod pipeline;
mod record;
mod recover;
mod segment;
mod snapshot;
#[cfg(test)]
mod tests;

use core::mem;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use error::{Corruption, StorageError};
pub use incarnation::next_incarnation;
pub use pipeline::{SyncPipeline, Wake, BATCH_BUFFER, MAX_QUEUED_BYTES};
pub use record::MAX_BATCH_LEN;
pub use segment::{DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE};

use error::io_error;
use lock::DirLock;
use record::FRAME_HEADER_LEN;
use recover::Tail;
use segment::{SegmentHeader, SegmentKind, SEGMENT_HEADER_LEN};

/// The largest snapshot [`FileLog::compact`] accepts (4 GiB).
pub const MAX_SNAPSHOT_LEN: u64 = 4 << 30;

/// Appended frames are written to the file once this many bytes wait,
/// even before a sync.
const WRITE_BUFFER_LEN: usize = 1 << 20;

/// What opening a data directory recovered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The snapshot of the last compaction, if there was one.
    pub snapshot: Option<Vec<u8>>,
    /// Every durable batch in append order; after a compaction the first is
    /// its checkpoint.
    pub batches: Vec<Vec<u8>>,
}

/// Counters of a [`FileLog`] since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Batches appended.
    pub batches_appended: u64,
    /// Bytes of those batches (payload, without framing).
    pub bytes_appended: u64,
    /// `fdatasync` calls that made appended batches durable: one per
    /// [`FileLog::sync`] that had something to sync, and one per full
    /// segment.
    pub syncs: u64,
    /// New segments started because the last one was full.
    pub segments_created: u64,
    /// Compactions done.
    pub compactions: u64,
    /// Torn tails cut off when the log was opened (0 or 1).
    pub torn_tails_truncated: u64,
}

/// How a [`FileLog`] lays out its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Start a new segment once appending would take the current one past
    /// this many bytes (a segment holds at least one frame). At most
    /// [`MAX_SEGMENT_SIZE`]; [`DEFAULT_SEGMENT_SIZE`] by default.
    pub segment_size: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size: DEFAULT_SEGMENT_SIZE,
        }
    }
}

impl Options {
    /// These options with `segment_size` set (clamped to
    /// [`MAX_SEGMENT_SIZE`]).
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes.min(MAX_SEGMENT_SIZE);
        self
    }
}

/// An append-only, crash-safe log of opaque batches in a directory it
/// holds exclusively. See the [module documentation](self) for the
/// guarantees and the format.
#[derive(Debug)]
pub struct FileLog {
    dir: PathBuf,
    options: Options,
    /// The segment appends go to.
    tail: Tail,
    /// Encoded frames not yet written to `tail`.
    pending: Vec<u8>,
    /// Whether `tail` has written data not yet synced.
    unsynced: bool,
    /// The first sequence number of the commit group being appended.
    group: Option<u64>,
    next_seq: u64,
    /// The live segments, the base first, the tail last.
    segments: Vec<(u64, PathBuf)>,
    /// The live snapshot file, if any.
    snapshot: Option<PathBuf>,
    stats: Stats,
    poisoned: bool,
    /// Test hook: fail with a simulated crash after this many more steps of
    /// a compaction.
    #[cfg(test)]
    crash_after_steps: Option<usize>,
    /// Declared last so it is released after the files are closed.
    _lock: DirLock,
}

impl FileLog {
    /// Opens (creating if needed) the data directory `dir` with default
    /// [`Options`], takes its exclusive lock, and recovers the log.
    ///
    /// Fails with [`StorageError::Locked`] if another `FileLog`, in this
    /// process or another, has it open, and with [`StorageError::Corrupt`]
    /// if it holds damage that is not a torn tail.
    pub fn open(dir: &Path) -> Result<(FileLog, Recovered), StorageError> {
        FileLog::open_with(dir, Options::default())
    }

    /// [`FileLog::open`] with explicit [`Options`]. They only shape what is
    /// written from now on; a log written with other options opens the same.
    pub fn open_with(dir: &Path, options: Options) -> Result<(FileLog, Recovered), StorageError> {
        dir::create(dir)?;
        let lock = DirLock::acquire(dir)?;
        let opened = recover::recover(dir)?;
        let stats = Stats {
            torn_tails_truncated: u64::from(opened.torn),
            ..Stats::default()
        };
        let log = FileLog {
            dir: dir.to_path_buf(),
            options: options.segment_size(options.segment_size),
            tail: opened.tail,
            pending: Vec::new(),
            unsynced: false,
            group: None,
            next_seq: opened.next_seq,
            segments: opened.segments,
            snapshot: opened.snapshot,
            stats,
            poisoned: false,
            #[cfg(test)]
            crash_after_steps: None,
            _lock: lock,
        };
        Ok((log, opened.recovered))
    }

    /// Appends one batch. The write is buffered and **not yet durable**:
    /// call [`FileLog::sync`] before confirming it. Many appends then one
    /// sync is a group commit.
    pub fn append(&mut self, batch: &[u8]) -> Result<(), StorageError> {
        self.check()?;
        if batch.len() > MAX_BATCH_LEN {
            return Err(StorageError::BatchTooLarge {
                len: batch.len(),
                max: MAX_BATCH_LEN,
            });
        }
        self.poison_on_error(|log| log.append_frame(batch))
    }

    /// Makes every appended batch durable: writes what is buffered and
    /// calls `fdatasync` (none if nothing was appended since the last sync).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.check()?;
        self.poison_on_error(FileLog::sync_tail)
    }

    /// Replaces everything in the log so far, batches appended but not
    /// synced included, by `snapshot` (application state, opaque) and one
    /// `checkpoint` batch, which the next open returns as the first batch
    /// beside the snapshot. Durable when it returns; atomic across a crash
    /// at any point (the old state or the new one is recovered, never a
    /// mix).
    pub fn compact(&mut self, snapshot: &[u8], checkpoint: &[u8]) -> Result<(), StorageError> {
        self.check()?;
        if checkpoint.len() > MAX_BATCH_LEN {
            return Err(StorageError::BatchTooLarge {
                len: checkpoint.len(),
                max: MAX_BATCH_LEN,
            });
        }
        if snapshot.len() as u64 > MAX_SNAPSHOT_LEN {
            return Err(StorageError::SnapshotTooLarge {
                len: snapshot.len() as u64,
                max: MAX_SNAPSHOT_LEN,
            });
        }
        self.poison_on_error(|log| log.compact_files(snapshot, checkpoint))
    }

    /// The counters since the log was opened.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check(&self) -> Result<(), StorageError> {
        if self.poisoned {
            Err(StorageError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn poison_on_error<T>(
        &mut self,
        f: impl FnOnce(&mut FileLog) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let result = f(self);
        self.poisoned |= result.is_err();
        result
    }

    fn append_frame(&mut self, batch: &[u8]) -> Result<(), StorageError> {
        let frame_len = (FRAME_HEADER_LEN + batch.len()) as u64;
        let used = self.tail.len + self.pending.len() as u64;
        if used > SEGMENT_HEADER_LEN as u64 && used + frame_len > self.options.segment_size {
            self.rotate()?;
        }
        let seq = self.next_seq;
        let group = *self.group.get_or_insert(seq);
        record::encode(&mut self.pending, seq, group, batch);
        self.next_seq += 1;
        self.stats.batches_appended += 1;
        self.stats.bytes_appended += batch.len() as u64;
        if self.pending.len() >= WRITE_BUFFER_LEN {
            self.write_pending()?;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.tail
            .file
            .write_all(&self.pending)
            .map_err(io_error("write", &self.tail.path))?;
        self.tail.len += self.pending.len() as u64;
        self.pending.clear();
        self.unsynced = true;
        Ok(())
    }

    fn sync_tail(&mut self) -> Result<(), StorageError> {
        self.write_pending()?;
        if self.unsynced {
            self.tail
                .file
                .sync_data()
                .map_err(io_error("fdatasync", &self.tail.path))?;
            self.stats.syncs += 1;
            self.unsynced = false;
        }
        // The next frame starts a new commit group only once this one is
        // durable: recovery relies on it.
        self.group = None;
        Ok(())
    }

    /// Seals the full tail segment and starts the next one.
    fn rotate(&mut self) -> Result<(), StorageError> {
        // Synced before the next segment exists, so damage in any segment
        // but the last is never a torn write.
        self.sync_tail()?;
        let header = SegmentHeader {
            kind: SegmentKind::Continuation,
            first_seq: self.next_seq,
        };
        self.tail = recover::create_segment(&self.dir, header)?;
        self.segments.push((self.next_seq, self.tail.path.clone()));
        self.stats.segments_created += 1;
        Ok(())
    }

    fn compact_files(&mut self, snapshot: &[u8], checkpoint: &[u8]) -> Result<(), StorageError> {
        let seq = self.next_seq;
        self.pending.clear();
        let snapshot_path = self.dir.join(snapshot::file_name(seq));
        let segment_path = self.dir.join(segment::file_name(seq));
        let snapshot_temporary = dir::temporary(&snapshot_path);
        let segment_temporary = dir::temporary(&segment_path);

        let (snapshot_header, snapshot_crc) = snapshot::encode_header(seq, snapshot);
        dir::write_synced(&snapshot_temporary, &[&snapshot_header, snapshot])?;
        self.step()?;
        let header = SegmentHeader {
            kind: SegmentKind::Compacted { snapshot_crc },
            first_seq: seq,
        };
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + checkpoint.len());
        record::encode(&mut frame, seq, seq, checkpoint);
        let file = dir::write_synced(&segment_temporary, &[&header.encode(), &frame])?;
        self.step()?;
        // No base segment refers to this snapshot yet: recovery ignores it.
        dir::rename(&snapshot_temporary, &snapshot_path)?;
        dir::sync_dir(&self.dir)?;
        self.step()?;
        // The commit point. When `segment_path` exists it is the tail and
        // holds no frame (its first sequence number is the next one), so
        // replacing it loses nothing.
        dir::rename(&segment_temporary, &segment_path)?;
        dir::sync_dir(&self.dir)?;
        self.step()?;

        let old_segments = mem::replace(&mut self.segments, vec![(seq, segment_path.clone())]);
        let old_snapshot = self.snapshot.replace(snapshot_path);
        self.tail = Tail {
            file,
            path: segment_path,
            len: (SEGMENT_HEADER_LEN + frame.len()) as u64,
        };
        self.next_seq = seq + 1;
        self.group = None;
        self.unsynced = false;
        self.stats.compactions += 1;
        for (first, path) in old_segments {
            if first < seq {
                dir::remove(&path)?;
                self.step()?;
            }
        }
        if let Some(path) = old_snapshot {
            dir::remove(&path)?;
            self.step()?;
        }
        // Not needed for correctness: a removal that does not survive a
        // crash is redone by the next open.
        dir::sync_dir(&self.dir)
    }

    /// A point in a compaction where a test may simulate a crash.
    #[cfg(not(test))]
    fn step(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    /// A point in a compaction where a test may simulate a crash.
    #[cfg(test)]
    fn step(&mut self) -> Result<(), StorageError> {
        match self.crash_after_steps {
            Some(0) => Err(StorageError::Io {
                op: "simulated crash",
                path: self.dir.clone(),
                source: std::io::Error::other("simulated crash"),
            }),
            Some(n) => {
                self.crash_after_steps = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }
}
