//! Opening a directory: find the live state, check all of it, repair only
//! a torn tail, and clean up what interrupted operations left behind.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::dir::{self, Listing};
use super::error::{corrupt, io_error};
use super::segment::{self, End, SegmentHeader, SegmentKind, MAX_SEGMENT_FILE_LEN, SEGMENT_HEADER_LEN};
use super::snapshot::{self, SNAPSHOT_HEADER_LEN};
use super::{Corruption, Recovered, StorageError, MAX_SNAPSHOT_LEN};

/// The segment appends go to.
#[derive(Debug)]
pub(super) struct Tail {
    /// The open file, positioned at its end.
    pub file: File,
    /// Its path.
    pub path: PathBuf,
    /// Its length on disk (written, maybe not yet synced).
    pub len: u64,
}

/// What opening found.
#[derive(Debug)]
pub(super) struct Opened {
    /// Where appends go.
    pub tail: Tail,
    /// The sequence number of the next frame.
    pub next_seq: u64,
    /// The live segments, oldest (the base) first, the tail last.
    pub segments: Vec<(u64, PathBuf)>,
    /// The live snapshot file, if the log was compacted.
    pub snapshot: Option<PathBuf>,
    /// What the application gets back.
    pub recovered: Recovered,
    /// Whether a torn tail was cut off.
    pub torn: bool,
}

/// Creates a segment holding only `header`, whole: written to a temporary
/// file, synced, renamed into place, directory synced.
pub(super) fn create_segment(dir: &Path, header: SegmentHeader) -> Result<Tail, StorageError> {
    let path = dir.join(segment::file_name(header.first_seq));
    let temporary = dir::temporary(&path);
    let file = dir::write_synced(&temporary, &[&header.encode()])?;
    dir::rename(&temporary, &path)?;
    dir::sync_dir(dir)?;
    Ok(Tail {
        file,
        path,
        len: SEGMENT_HEADER_LEN as u64,
    })
}

/// Recovers the log in `dir`, which the caller has locked.
pub(super) fn recover(dir: &Path) -> Result<Opened, StorageError> {
    let listing = dir::list(dir)?;
    if listing.segments.is_empty() {
        return start_fresh(dir, &listing);
    }

    // The live log is the newest base segment and every segment after it.
    // Walk back from the newest: a bad header before the base is found is
    // corruption (it might have been a newer base).
    let mut live: Vec<(&PathBuf, SegmentHeader)> = Vec::new();
    for (&seq, path) in listing.segments.iter().rev() {
        let header = read_header(path, seq)?;
        live.push((path, header));
        if header.kind.is_base() {
            break;
        }
    }
    live.reverse();
    let Some(&(base_path, base)) = live.first().filter(|(_, h)| h.kind.is_base()) else {
        let oldest = live.first().map_or_else(|| dir.to_path_buf(), |(p, _)| p.to_path_buf());
        return Err(corrupt(oldest, 12, Corruption::MissingBase));
    };

    let snapshot_path = dir.join(snapshot::file_name(base.first_seq));
    let snapshot = match base.kind {
        SegmentKind::Compacted { snapshot_crc } => {
            if !listing.snapshots.contains_key(&base.first_seq) {
                return Err(corrupt(base_path, 24, Corruption::MissingSnapshot));
            }
            Some(read_snapshot(&snapshot_path, base.first_seq, snapshot_crc)?)
        }
        _ => None,
    };

    // Check every frame of every live segment before changing anything, so
    // a refusal leaves the directory as it was found.
    let mut batches = Vec::new();
    let mut expected = base.first_seq;
    let mut torn_at = None;
    let mut tail_len = 0;
    for (i, &(path, header)) in live.iter().enumerate() {
        let last = i + 1 == live.len();
        let bytes = dir::read_bounded(path, MAX_SEGMENT_FILE_LEN)?;
        // The file may have changed since its header was read; check again.
        let header_now = SegmentHeader::decode(&bytes).map_err(|(o, r)| corrupt(path, o, r))?;
        if header_now != header {
            return Err(corrupt(path, 0, Corruption::Checksum));
        }
        if header.first_seq != expected {
            return Err(corrupt(
                path,
                16,
                Corruption::SequenceGap {
                    expected,
                    found: header.first_seq,
                },
            ));
        }
        let walk = segment::walk(&bytes, &header).map_err(|(o, r)| corrupt(path, o, r))?;
        if matches!(header.kind, SegmentKind::Compacted { .. }) && walk.frames.is_empty() {
            return Err(corrupt(path, SEGMENT_HEADER_LEN as u64, Corruption::MissingCheckpoint));
        }
        expected += walk.frames.len() as u64;
        batches.extend(walk.frames.iter().map(|(_, frame)| frame.payload.to_vec()));
        tail_len = bytes.len() as u64;
        if let End::Damaged {
            offset,
            error,
            header: damaged,
        } = walk.end
        {
            if !last {
                // An older segment was synced whole before the next one was
                // created: damage there is never a torn write.
                return Err(corrupt(path, offset as u64, error.corruption()));
            }
            segment::check_after_damage(&bytes, offset, expected, header.first_seq, damaged)
                .map_err(|(o, r)| corrupt(path, o, r))?;
            torn_at = Some(offset as u64);
        }
    }

    // The state is good. Remove what interrupted operations left behind.
    remove_leftovers(&listing, base.first_seq, snapshot.is_some())?;
    let tail_path = live.last().map_or_else(|| base_path.clone(), |&(path, _)| path.clone());
    let file = OpenOptions::new()
        .append(true)
        .open(&tail_path)
        .map_err(io_error("open", &tail_path))?;
    if let Some(offset) = torn_at {
        file.set_len(offset).map_err(io_error("truncate", &tail_path))?;
        tail_len = offset;
    }
    // What is handed back may so far live only in the page cache (the
    // previous process may have died before its sync): make it durable
    // before anyone acts on it, and the directory's names with it.
    file.sync_all().map_err(io_error("fsync", &tail_path))?;
    dir::sync_dir(dir)?;

    let segments = live
        .iter()
        .map(|&(path, header)| (header.first_seq, path.clone()))
        .collect();
    Ok(Opened {
        tail: Tail {
            file,
            path: tail_path,
            len: tail_len,
        },
        next_seq: expected,
        segments,
        snapshot: snapshot.is_some().then_some(snapshot_path),
        recovered: Recovered { snapshot, batches },
        torn: torn_at.is_some(),
    })
}

/// An empty directory, or one with only leftovers of an unfinished first
/// open: start the log.
fn start_fresh(dir: &Path, listing: &Listing) -> Result<Opened, StorageError> {
    if let Some(path) = listing.snapshots.values().next() {
        return Err(corrupt(path, 0, Corruption::MissingSegments));
    }
    for path in &listing.temporaries {
        dir::remove(path)?;
    }
    let tail = create_segment(
        dir,
        SegmentHeader {
            kind: SegmentKind::Initial,
            first_seq: 1,
        },
    )?;
    Ok(Opened {
        segments: vec![(1, tail.path.clone())],
        tail,
        next_seq: 1,
        snapshot: None,
        recovered: Recovered::default(),
        torn: false,
    })
}

/// Reads and checks the header of the segment named `seq`.
fn read_header(path: &Path, seq: u64) -> Result<SegmentHeader, StorageError> {
    let mut bytes = Vec::with_capacity(SEGMENT_HEADER_LEN);
    File::open(path)
        .and_then(|f| f.take(SEGMENT_HEADER_LEN as u64).read_to_end(&mut bytes))
        .map_err(io_error("read", path))?;
    let header = SegmentHeader::decode(&bytes).map_err(|(o, r)| corrupt(path, o, r))?;
    if header.first_seq != seq {
        return Err(corrupt(
            path,
            16,
            Corruption::NameMismatch {
                name: seq,
                header: header.first_seq,
            },
        ));
    }
    Ok(header)
}

/// Reads the snapshot for the base segment starting at `seq`, which must
/// have the checksum `crc`.
fn read_snapshot(path: &Path, seq: u64, crc: u32) -> Result<Vec<u8>, StorageError> {
    let mut bytes = dir::read_bounded(path, MAX_SNAPSHOT_LEN + SNAPSHOT_HEADER_LEN as u64)?;
    let (_, stored) = snapshot::decode(&bytes, seq).map_err(|(o, r)| corrupt(path, o, r))?;
    if stored != crc {
        return Err(corrupt(path, 28, Corruption::SnapshotMismatch));
    }
    bytes.drain(..SNAPSHOT_HEADER_LEN);
    Ok(bytes)
}

/// Removes temporary files, segments older than the base at `base`, and
/// every snapshot but the base's.
fn remove_leftovers(listing: &Listing, base: u64, keep_snapshot: bool) -> Result<(), StorageError> {
    for path in &listing.temporaries {
        dir::remove(path)?;
    }
    for (_, path) in listing.segments.range(..base) {
        dir::remove(path)?;
    }
    for (&seq, path) in &listing.snapshots {
        if !(keep_snapshot && seq == base) {
            dir::remove(path)?;
        }
    }
    Ok(())
}
