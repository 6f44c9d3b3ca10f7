//! Compaction interrupted at every step, through the test-only crash hook
//! ([`FileLog::step`]): whatever the step, reopening recovers the old
//! state or the new one, never a mix, and the log goes on from there.

use std::fs;
use std::path::Path;

use super::*;

/// The state a compaction starts from.
#[derive(Clone, Copy, Debug)]
enum Before {
    /// A log nothing was ever appended to (its only segment is replaced).
    Fresh,
    /// Several segments.
    Segments,
    /// A compacted log with several segments after its base.
    Compacted,
}

const OPTIONS: Options = Options { segment_size: 120 };
const NEW_SNAPSHOT: &[u8] = b"the new snapshot";
const NEW_CHECKPOINT: &[u8] = b"the new checkpoint";
/// Steps of a compaction up to and including its commit (the rename of the
/// new base segment): crashing after fewer recovers the old state.
const STEPS_BEFORE_COMMIT: usize = 4;

fn build(dir: &Path, before: Before) -> Recovered {
    let (mut log, _) = FileLog::open_with(dir, OPTIONS).unwrap();
    let append_some = |log: &mut FileLog, tag: &str| {
        for i in 0..12 {
            log.append(format!("{tag} batch {i}").as_bytes()).unwrap();
            if i % 3 == 2 {
                log.sync().unwrap();
            }
        }
    };
    match before {
        Before::Fresh => {}
        Before::Segments => append_some(&mut log, "first"),
        Before::Compacted => {
            append_some(&mut log, "first");
            log.compact(b"old snapshot", b"old checkpoint").unwrap();
            append_some(&mut log, "second");
        }
    }
    drop(log);
    FileLog::open(dir).unwrap().1
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn compaction_crash_at_every_step_recovers_old_or_new() {
    for before in [Before::Fresh, Before::Segments, Before::Compacted] {
        let new = Recovered {
            snapshot: Some(NEW_SNAPSHOT.to_vec()),
            batches: vec![NEW_CHECKPOINT.to_vec()],
        };
        let mut crash_after = 0;
        loop {
            let d = tempfile::tempdir().unwrap();
            let old = build(d.path(), before);
            let old_files = names(d.path());
            let (mut log, _) = FileLog::open_with(d.path(), OPTIONS).unwrap();
            log.crash_after_steps = Some(crash_after);
            let completed = log.compact(NEW_SNAPSHOT, NEW_CHECKPOINT).is_ok();
            if !completed {
                assert!(matches!(log.append(b"x"), Err(StorageError::Poisoned)));
                assert!(matches!(log.sync(), Err(StorageError::Poisoned)));
            }
            drop(log);

            let (mut log, recovered) = FileLog::open(d.path()).unwrap();
            let case = format!("{before:?}, crash after {crash_after} steps");
            let expect_new = completed || crash_after >= STEPS_BEFORE_COMMIT - 1;
            assert_eq!(recovered, if expect_new { new.clone() } else { old.clone() }, "{case}");
            assert_eq!(log.stats().torn_tails_truncated, 0, "{case}");
            // Opening left only the live files.
            let live = names(d.path());
            if expect_new {
                let seq = match before {
                    Before::Fresh => 1,
                    Before::Segments => 13,
                    Before::Compacted => 26,
                };
                let expected = [format!("{seq:020}.seg"), format!("{seq:020}.snap"), "LOCK".into()];
                assert_eq!(live, expected, "{case}");
            } else {
                assert_eq!(live, old_files, "{case}");
            }

            // The log goes on from whichever state it recovered.
            log.append(b"after").unwrap();
            log.sync().unwrap();
            drop(log);
            let mut expected = recovered;
            expected.batches.push(b"after".to_vec());
            assert_eq!(FileLog::open(d.path()).unwrap().1, expected, "{case}, reopened");

            if completed {
                break;
            }
            crash_after += 1;
        }
        assert!(
            crash_after >= STEPS_BEFORE_COMMIT,
            "{before:?}: only {crash_after} steps"
        );
    }
}

#[test]
fn a_failed_sync_or_compaction_poisons_the_log() {
    let d = tempfile::tempdir().unwrap();
    let (mut log, _) = FileLog::open(d.path()).unwrap();
    log.append(b"one").unwrap();
    log.crash_after_steps = Some(0);
    assert!(matches!(log.compact(b"s", b"c"), Err(StorageError::Io { .. })));
    assert!(matches!(log.append(b"two"), Err(StorageError::Poisoned)));
    assert!(matches!(log.compact(b"s", b"c"), Err(StorageError::Poisoned)));
    drop(log);
    // Nothing was synced, nothing is recovered; the leftover is cleaned up.
    let (_, r) = FileLog::open(d.path()).unwrap();
    assert_eq!(r, Recovered::default());
    assert_eq!(names(d.path()), ["00000000000000000001.seg", "LOCK"]);
}
