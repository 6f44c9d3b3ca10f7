//! Black-box tests of the crash-safe file log (`paxos_std::storage`).
//!
//! The format facts these tests rely on (see the module docs): a segment
//! is `<first seq, 20 digits>.seg`, a 32-byte header, then frames of a
//! 28-byte header and the batch.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use paxos_std::storage::{Corruption, FileLog, Options, Recovered, StorageError, MAX_BATCH_LEN};
use paxos_tests::rng::TestRng;

const SEGMENT_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 28;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn open(dir: &Path) -> (FileLog, Recovered) {
    FileLog::open(dir).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

fn open_small(dir: &Path, segment_size: u64) -> (FileLog, Recovered) {
    FileLog::open_with(dir, Options::default().segment_size(segment_size)).unwrap()
}

fn batches(items: &[&[u8]]) -> Vec<Vec<u8>> {
    items.iter().map(|b| b.to_vec()).collect()
}

fn segment(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

fn snapshot(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.snap"))
}

/// The log's files, by name.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names.retain(|n| n != "LOCK");
    names
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .map(|n| dir.join(n))
        .collect()
}

fn corrupt(dir: &Path) -> (PathBuf, u64, Corruption) {
    match FileLog::open(dir) {
        Err(StorageError::Corrupt { file, offset, reason }) => (file, offset, reason),
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok((_, r)) => panic!("expected Corrupt, recovered {r:?}"),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// Appends each batch and syncs after each: one commit group per batch.
fn save_each(log: &mut FileLog, items: &[&[u8]]) {
    for item in items {
        log.append(item).unwrap();
        log.sync().unwrap();
    }
}

// --- Equivalents of the seed's DurableObjectHandlerTester (reference 8.5,
// --- tests 6-13).

/// Seed `test_bad_directory`: the seed required an existing directory; we
/// create a missing one, so the bad case is a path that cannot be one.
#[test]
fn bad_directory() {
    let d = tmp();
    let file = d.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(FileLog::open(&file), Err(StorageError::Io { .. })));
    assert!(matches!(
        FileLog::open(&file.join("below")),
        Err(StorageError::Io { .. })
    ));
    // A missing directory, parents included, is created.
    let (_, r) = open(&d.path().join("new/nested"));
    assert_eq!(r, Recovered::default());
}

/// Seed `test_no_save`: nothing saved, nothing recovered.
#[test]
fn no_save() {
    let d = tmp();
    let (log, r) = open(d.path());
    assert_eq!(
        r,
        Recovered {
            snapshot: None,
            batches: vec![]
        }
    );
    drop(log);
    let (log, r) = open(d.path());
    assert_eq!(r, Recovered::default());
    assert_eq!(log.stats().torn_tails_truncated, 0);
}

/// Seed `test_one_save`.
#[test]
fn one_save() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    save_each(&mut log, &[b"initial"]);
    drop(log);
    assert_eq!(open(d.path()).1.batches, batches(&[b"initial"]));
}

/// Seed `test_two_save`.
#[test]
fn two_saves() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    save_each(&mut log, &[b"initial", b"second"]);
    drop(log);
    assert_eq!(open(d.path()).1.batches, batches(&[b"initial", b"second"]));
}

/// Seed `test_three_save`; also across three opens.
#[test]
fn three_saves() {
    let d = tmp();
    for (i, item) in [&b"initial"[..], b"second", b"third"].into_iter().enumerate() {
        let (mut log, r) = open(d.path());
        assert_eq!(r.batches.len(), i);
        save_each(&mut log, &[item]);
    }
    assert_eq!(open(d.path()).1.batches, batches(&[b"initial", b"second", b"third"]));
}

/// Seed `test_new_object_corrupted` (the newest copy cut to 1 byte; the
/// older one recovered). Here: the newest frame cut to 1 byte is a torn
/// tail: cut off, counted, the earlier batch recovered, appends go on.
#[test]
fn newest_corrupted_is_a_torn_tail() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    save_each(&mut log, &[b"initial", b"second"]);
    drop(log);
    let seg = segment(d.path(), 1);
    let first_end = SEGMENT_HEADER + FRAME_HEADER + 7;
    truncate(&seg, first_end + 1);
    let (mut log, r) = open(d.path());
    assert_eq!(r.batches, batches(&[b"initial"]));
    assert_eq!(log.stats().torn_tails_truncated, 1);
    assert_eq!(len(&seg), first_end);
    save_each(&mut log, &[b"third"]);
    drop(log);
    let (log, r) = open(d.path());
    assert_eq!(r.batches, batches(&[b"initial", b"third"]));
    assert_eq!(log.stats().torn_tails_truncated, 0);
}

/// Seed `test_old_object_corrupted` (the older copy damaged; the seed
/// recovered the newer one). Here the older batch is damaged while a later
/// commit follows it: that is not a torn write, and silently dropping the
/// later batches would roll back confirmed state, so opening refuses. This
/// is the deliberate fix of the seed's silent roll-back.
#[test]
fn older_corrupted_is_refused() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    save_each(&mut log, &[b"initial", b"second"]);
    drop(log);
    let seg = segment(d.path(), 1);
    flip(&seg, SEGMENT_HEADER + FRAME_HEADER + 2);
    let before = fs::read(&seg).unwrap();
    let (file, offset, reason) = corrupt(d.path());
    assert_eq!((file, offset), (seg.clone(), SEGMENT_HEADER));
    assert_eq!(reason, Corruption::DamageBeforeValidData { seq: 2 });
    // Refusing changes nothing on disk.
    assert_eq!(fs::read(&seg).unwrap(), before);
    // A damaged header of the older frame is caught the same way.
    let d = tmp();
    let (mut log, _) = open(d.path());
    save_each(&mut log, &[b"initial", b"second"]);
    drop(log);
    flip(&segment(d.path(), 1), SEGMENT_HEADER + 5);
    assert_eq!(corrupt(d.path()).2, Corruption::DamageBeforeValidData { seq: 2 });
}

/// Seed `test_unrecoverable_corruption`: both copies damaged. Here both
/// batches' payloads are damaged; the intact header of the second proves
/// the first was committed before it.
#[test]
fn both_corrupted_is_refused() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    save_each(&mut log, &[b"initial", b"second"]);
    drop(log);
    let seg = segment(d.path(), 1);
    flip(&seg, SEGMENT_HEADER + FRAME_HEADER);
    flip(&seg, len(&seg) - 1);
    let (_, offset, reason) = corrupt(d.path());
    assert_eq!(offset, SEGMENT_HEADER);
    assert_eq!(reason, Corruption::DamageBeforeValidData { seq: 2 });
}

// --- Crashes while appending.

/// A log whose last write (one sync of three batches) is cut at every
/// byte: reopening recovers exactly the batches written whole before the
/// cut, the partial one is gone, and appending afterwards works.
#[test]
fn crash_at_every_byte_of_the_last_write() {
    let earlier: [&[u8]; 4] = [b"one", b"two", b"three", b""];
    let last: [&[u8]; 3] = [b"fifth batch", b"6", b"the seventh batch, a little longer"];
    let size = |items: &[&[u8]]| SEGMENT_HEADER + items.iter().map(|i| FRAME_HEADER + i.len() as u64).sum::<u64>();
    // Either all in one segment, or the last write alone in a new one.
    for new_segment in [false, true] {
        let segment_size = if new_segment {
            size(&earlier).max(size(&last))
        } else {
            u64::MAX
        };
        let d = tmp();
        let (mut log, _) = open_small(d.path(), segment_size);
        save_each(&mut log, &earlier);
        let tail = segments(d.path()).pop().unwrap();
        let before = len(&tail);
        for item in last {
            log.append(item).unwrap();
        }
        log.sync().unwrap();
        drop(log);
        assert_eq!(segments(d.path()).len(), 1 + usize::from(new_segment));
        let tail = segments(d.path()).pop().unwrap();
        // A last write that started a new segment begins after its header.
        let before = if new_segment { SEGMENT_HEADER } else { before };
        let after = len(&tail);
        let mut boundaries = vec![before];
        for item in &last {
            boundaries.push(boundaries.last().unwrap() + FRAME_HEADER + item.len() as u64);
        }
        assert_eq!(*boundaries.last().unwrap(), after);

        for cut in before..=after {
            let c = tmp();
            copy_dir(d.path(), c.path());
            let cut_tail = c.path().join(tail.file_name().unwrap());
            truncate(&cut_tail, cut);
            let whole = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
            let mut expected = batches(&earlier);
            expected.extend(batches(&last[..whole]));
            let (mut log, r) = FileLog::open(c.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_eq!(r.batches, expected, "cut at {cut}");
            let torn = !boundaries.contains(&cut);
            assert_eq!(log.stats().torn_tails_truncated, u64::from(torn), "cut at {cut}");
            save_each(&mut log, &[b"after"]);
            drop(log);
            expected.push(b"after".to_vec());
            assert_eq!(open(c.path()).1.batches, expected, "cut at {cut}, reopened");
        }
    }
}

/// A crash during a sync may leave a hole anywhere in the commit group
/// being written (pages reach the disk in any order). The whole group is
/// then a torn tail: the frames before the hole are kept, the rest cut.
#[test]
fn hole_in_the_last_commit_group_is_a_torn_tail() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    save_each(&mut log, &[b"synced"]);
    for item in [&b"aaaa"[..], b"bbbb", b"cccc"] {
        log.append(item).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let seg = segment(d.path(), 1);
    let frame = FRAME_HEADER + 4;
    let group_start = SEGMENT_HEADER + FRAME_HEADER + 6;
    for (hole, kept) in [(0, 0), (1, 1), (2, 2)] {
        let c = tmp();
        copy_dir(d.path(), c.path());
        let seg = c.path().join(seg.file_name().unwrap());
        overwrite(&seg, group_start + hole * frame, &vec![0; frame as usize]);
        let (log, r) = open(c.path());
        let mut expected = batches(&[b"synced"]);
        expected.extend(batches(&[&b"aaaa"[..], b"bbbb", b"cccc"][..kept]));
        assert_eq!(r.batches, expected, "hole at frame {hole}");
        assert_eq!(log.stats().torn_tails_truncated, 1);
        assert_eq!(len(&seg), group_start + kept as u64 * frame);
    }
}

/// A hole in an earlier commit group, with a later group intact after it,
/// is corruption: the earlier group had been synced.
#[test]
fn hole_before_a_later_commit_group_is_corruption() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    for item in [&b"aaaa"[..], b"bbbb"] {
        log.append(item).unwrap();
    }
    log.sync().unwrap();
    save_each(&mut log, &[b"later"]);
    drop(log);
    let seg = segment(d.path(), 1);
    let frame = FRAME_HEADER + 4;
    overwrite(&seg, SEGMENT_HEADER + frame, &vec![0; frame as usize]);
    let (_, offset, reason) = corrupt(d.path());
    assert_eq!(offset, SEGMENT_HEADER + frame);
    assert_eq!(reason, Corruption::DamageBeforeValidData { seq: 3 });
}

/// Garbage after the last frame (a file system that grew the file but
/// never wrote the data) is a torn tail.
#[test]
fn garbage_after_the_last_frame_is_a_torn_tail() {
    for garbage in [vec![0u8; 4096], (0..=255u8).cycle().take(5000).collect(), vec![0xff; 3]] {
        let d = tmp();
        let (mut log, _) = open(d.path());
        save_each(&mut log, &[b"one", b"two"]);
        drop(log);
        let seg = segment(d.path(), 1);
        let end = len(&seg);
        overwrite(&seg, end, &garbage);
        let (log, r) = open(d.path());
        assert_eq!(r.batches, batches(&[b"one", b"two"]));
        assert_eq!(log.stats().torn_tails_truncated, 1);
        assert_eq!(len(&seg), end);
    }
}

/// A frame length beyond the file or beyond the maximum batch size is
/// checked before anything is allocated.
#[test]
fn absurd_lengths_do_not_allocate() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    save_each(&mut log, &[b"one", b"two"]);
    drop(log);
    let seg = segment(d.path(), 1);
    // The second frame's length: a huge value (its header checksum now
    // fails, so it is a torn tail).
    overwrite(&seg, SEGMENT_HEADER + FRAME_HEADER + 3, &u32::MAX.to_le_bytes());
    let (_, r) = open(d.path());
    assert_eq!(r.batches, batches(&[b"one"]));
    // A segment far larger than any the log writes is refused unread.
    let d = tmp();
    drop(open(d.path()));
    let seg = segment(d.path(), 1);
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    assert!(matches!(corrupt(d.path()).2, Corruption::FileTooLarge { .. }));
}

// --- Segments.

#[test]
fn segments_rotate_and_recover_in_order() {
    let d = tmp();
    let (mut log, _) = open_small(d.path(), 200);
    let items: Vec<Vec<u8>> = (0..50u32)
        .map(|i| format!("batch {i}").repeat(i as usize % 7).into_bytes())
        .collect();
    for chunk in items.chunks(3) {
        for item in chunk {
            log.append(item).unwrap();
        }
        log.sync().unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.batches_appended, 50);
    assert!(stats.segments_created >= 5, "{stats:?}");
    drop(log);
    assert_eq!(segments(d.path()).len() as u64, 1 + stats.segments_created);
    for seg in segments(d.path()) {
        assert!(len(&seg) <= 200, "{}", seg.display());
    }
    // Reopened with other options, the log reads the same.
    let (mut log, r) = open(d.path());
    assert_eq!(r.batches, items);
    save_each(&mut log, &[b"more"]);
    drop(log);
    assert_eq!(open(d.path()).1.batches.len(), 51);
}

/// Damage in any segment but the last is corruption, even at its very
/// end: every older segment was synced whole before the next one began.
#[test]
fn damage_in_an_older_segment_is_corruption() {
    let d = tmp();
    let (mut log, _) = open_small(d.path(), 1);
    save_each(&mut log, &[b"one", b"two", b"three"]);
    drop(log);
    let segs = segments(d.path());
    assert_eq!(segs.len(), 3);
    truncate(&segs[1], len(&segs[1]) - 1);
    let (file, offset, reason) = corrupt(d.path());
    assert_eq!(
        (file, offset, reason),
        (segs[1].clone(), SEGMENT_HEADER, Corruption::Truncated)
    );
}

#[test]
fn missing_segments_are_corruption() {
    let d = tmp();
    let (mut log, _) = open_small(d.path(), 1);
    save_each(&mut log, &[b"one", b"two", b"three"]);
    drop(log);
    let segs = segments(d.path());

    let c = tmp();
    copy_dir(d.path(), c.path());
    fs::remove_file(c.path().join(segs[1].file_name().unwrap())).unwrap();
    assert_eq!(corrupt(c.path()).2, Corruption::SequenceGap { expected: 2, found: 3 });

    let c = tmp();
    copy_dir(d.path(), c.path());
    fs::remove_file(c.path().join(segs[0].file_name().unwrap())).unwrap();
    assert_eq!(corrupt(c.path()).2, Corruption::MissingBase);

    // A damaged segment header is never a torn write.
    let c = tmp();
    copy_dir(d.path(), c.path());
    flip(&c.path().join(segs[2].file_name().unwrap()), 20);
    assert_eq!(corrupt(c.path()).2, Corruption::Checksum);

    // Nor is a header cut short.
    let c = tmp();
    copy_dir(d.path(), c.path());
    truncate(&c.path().join(segs[2].file_name().unwrap()), 10);
    assert_eq!(corrupt(c.path()).2, Corruption::Truncated);

    // A segment renamed to the wrong sequence number.
    let c = tmp();
    copy_dir(d.path(), c.path());
    fs::rename(c.path().join(segs[2].file_name().unwrap()), segment(c.path(), 9)).unwrap();
    assert_eq!(corrupt(c.path()).2, Corruption::NameMismatch { name: 9, header: 3 });
}

// --- Compaction.

#[test]
fn compaction_replaces_the_log() {
    let d = tmp();
    let (mut log, _) = open_small(d.path(), 100);
    save_each(&mut log, &[b"one", b"two", b"three", b"four"]);
    log.compact(b"state after four", b"checkpoint").unwrap();
    save_each(&mut log, &[b"five"]);
    assert_eq!(log.stats().compactions, 1);
    drop(log);
    // "five" did not fit in the base segment.
    assert_eq!(
        files(d.path()),
        [
            "00000000000000000005.seg",
            "00000000000000000005.snap",
            "00000000000000000006.seg"
        ]
    );
    let (mut log, r) = open(d.path());
    assert_eq!(r.snapshot.as_deref(), Some(&b"state after four"[..]));
    assert_eq!(r.batches, batches(&[b"checkpoint", b"five"]));

    // Again, with unsynced appends before it: they are replaced too.
    log.append(b"six").unwrap();
    log.compact(b"state after six", b"checkpoint 2").unwrap();
    drop(log);
    assert_eq!(
        files(d.path()),
        ["00000000000000000008.seg", "00000000000000000008.snap"]
    );
    let r = open(d.path()).1;
    assert_eq!(r.snapshot.as_deref(), Some(&b"state after six"[..]));
    assert_eq!(r.batches, batches(&[b"checkpoint 2"]));
}

#[test]
fn compaction_of_an_empty_log_and_empty_snapshot() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    log.compact(b"", b"").unwrap();
    log.compact(b"", b"").unwrap();
    drop(log);
    let r = open(d.path()).1;
    assert_eq!(
        r,
        Recovered {
            snapshot: Some(vec![]),
            batches: vec![vec![]]
        }
    );
}

#[test]
fn damaged_or_missing_snapshot_is_corruption() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    save_each(&mut log, &[b"one"]);
    log.compact(b"the snapshot", b"cp").unwrap();
    drop(log);
    let snap = snapshot(d.path(), 2);

    let c = tmp();
    copy_dir(d.path(), c.path());
    flip(&c.path().join(snap.file_name().unwrap()), 40);
    assert_eq!(corrupt(c.path()).2, Corruption::Checksum);

    let c = tmp();
    copy_dir(d.path(), c.path());
    fs::remove_file(c.path().join(snap.file_name().unwrap())).unwrap();
    assert_eq!(corrupt(c.path()).2, Corruption::MissingSnapshot);

    // A valid snapshot that is not the one the base segment refers to.
    let other = tmp();
    let (mut log, _) = open(other.path());
    save_each(&mut log, &[b"one"]);
    log.compact(b"another snapshot", b"cp").unwrap();
    drop(log);
    let c = tmp();
    copy_dir(d.path(), c.path());
    fs::copy(snapshot(other.path(), 2), c.path().join(snap.file_name().unwrap())).unwrap();
    assert_eq!(corrupt(c.path()).2, Corruption::SnapshotMismatch);

    // A damaged checkpoint is never a torn write: it was synced before the
    // segment was renamed into place.
    let c = tmp();
    copy_dir(d.path(), c.path());
    truncate(&segment(c.path(), 2), SEGMENT_HEADER + FRAME_HEADER + 1);
    assert_eq!(corrupt(c.path()).2, Corruption::MissingCheckpoint);

    // A snapshot without any segment.
    let c = tmp();
    copy_dir(d.path(), c.path());
    fs::remove_file(segment(c.path(), 2)).unwrap();
    assert_eq!(corrupt(c.path()).2, Corruption::MissingSegments);
}

/// Leftovers of interrupted work are removed and never read.
#[test]
fn leftover_temporary_files_are_removed() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    save_each(&mut log, &[b"one"]);
    drop(log);
    fs::write(d.path().join("00000000000000000002.seg.tmp"), b"half a segm").unwrap();
    fs::write(d.path().join("00000000000000000002.snap.tmp"), b"garbage").unwrap();
    fs::write(d.path().join("notes.txt"), b"not ours").unwrap();
    let (_, r) = open(d.path());
    assert_eq!(r.batches, batches(&[b"one"]));
    assert_eq!(files(d.path()), ["00000000000000000001.seg", "notes.txt"]);
}

// --- Lock, group commit, limits.

#[test]
fn second_open_is_locked_until_the_first_is_dropped() {
    let d = tmp();
    let (log, _) = open(d.path());
    assert!(matches!(FileLog::open(d.path()), Err(StorageError::Locked { dir }) if dir == d.path()));
    drop(log);
    let (log, _) = open(d.path());
    drop(log);
}

/// Environment variable naming the directory the child process probes.
const LOCK_PROBE: &str = "PAXOS_STORAGE_LOCK_PROBE";

#[test]
fn another_process_cannot_open_a_locked_directory() {
    let d = tmp();
    let (log, _) = open(d.path());
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_probe_child", "--test-threads=1", "--quiet"])
        .env(LOCK_PROBE, d.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the child process could open the locked directory");
    drop(log);
}

/// Run by `another_process_cannot_open_a_locked_directory` in a child
/// process; does nothing otherwise.
#[test]
fn lock_probe_child() {
    if let Some(dir) = std::env::var_os(LOCK_PROBE) {
        assert!(matches!(
            FileLog::open(Path::new(&dir)),
            Err(StorageError::Locked { .. })
        ));
    }
}

#[test]
fn group_commit_is_one_sync() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    for i in 0..100u32 {
        log.append(&i.to_le_bytes()).unwrap();
    }
    log.sync().unwrap();
    log.sync().unwrap(); // nothing new: no fdatasync
    let stats = log.stats();
    assert_eq!(
        (stats.batches_appended, stats.bytes_appended, stats.syncs),
        (100, 400, 1)
    );
    drop(log);
    assert_eq!(open(d.path()).1.batches.len(), 100);
}

#[test]
fn oversized_batch_is_refused_and_the_log_goes_on() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    let big = vec![0u8; MAX_BATCH_LEN + 1];
    assert!(matches!(log.append(&big), Err(StorageError::BatchTooLarge { .. })));
    assert!(matches!(
        log.compact(b"", &big),
        Err(StorageError::BatchTooLarge { .. })
    ));
    save_each(&mut log, &[b"fine"]);
    drop(log);
    assert_eq!(open(d.path()).1.batches, batches(&[b"fine"]));
}

/// A batch of the maximum size round-trips (and crosses the write buffer).
#[test]
fn largest_batch_round_trips() {
    let d = tmp();
    let (mut log, _) = open(d.path());
    let big: Vec<u8> = (0..MAX_BATCH_LEN).map(|i| (i % 251) as u8).collect();
    save_each(&mut log, &[&big, b"small"]);
    drop(log);
    let r = open(d.path()).1;
    assert_eq!(r.batches.len(), 2);
    assert!(r.batches[0] == big);
}

// --- Random damage never panics and never invents data.

#[test]
fn random_damage_never_panics_and_recovers_only_a_prefix() {
    let d = tmp();
    let (mut log, _) = open_small(d.path(), 300);
    let mut written = Vec::new();
    let mut rng = TestRng::new(0x9e37_79b9_7f4a_7c15);
    for round in 0..30u64 {
        for _ in 0..=rng.below(3) {
            let item: Vec<u8> = (0..rng.below(40)).map(|_| rng.next_u64() as u8).collect();
            log.append(&item).unwrap();
            written.push(item);
        }
        log.sync().unwrap();
        if round == 10 {
            log.compact(b"snap", b"cp").unwrap();
            written = vec![b"cp".to_vec()];
        }
    }
    drop(log);
    let all = files(d.path());
    let (mut recovered, mut refused) = (0, 0);
    for case in 0..400 {
        let c = tmp();
        copy_dir(d.path(), c.path());
        // Half the time the last segment, where a torn tail can be.
        let name = if rng.below(2) == 0 {
            all.last()
        } else {
            all.get(rng.below(all.len() as u64) as usize)
        };
        let victim = c.path().join(name.unwrap());
        let size = len(&victim);
        match rng.below(4) {
            0 => truncate(&victim, rng.below(size + 1)),
            1 => {
                for _ in 0..=rng.below(3) {
                    flip(&victim, rng.below(size));
                }
            }
            2 => {
                let at = rng.below(size);
                let n = rng.below(64) as usize;
                overwrite(&victim, at, &vec![0; n]);
            }
            _ => {
                let at = rng.below(size + 1);
                let junk: Vec<u8> = (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect();
                overwrite(&victim, at, &junk);
            }
        }
        match FileLog::open(c.path()) {
            Ok((_, r)) => {
                assert_eq!(r.snapshot.as_deref(), Some(&b"snap"[..]), "case {case}");
                assert!(
                    written.starts_with(&r.batches),
                    "case {case}: recovered something never written"
                );
                recovered += 1;
            }
            Err(StorageError::Corrupt { .. }) => refused += 1,
            Err(e) => panic!("case {case}: {e}"),
        }
    }
    // Both outcomes were exercised.
    assert!(
        recovered > 40 && refused > 40,
        "{recovered} recovered, {refused} refused"
    );
}
