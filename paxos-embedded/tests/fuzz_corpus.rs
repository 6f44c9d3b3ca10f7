//! Runs the `mount_flash` fuzz body on stable: over every file of the
//! committed seed corpus (`fuzz/corpus/mount_flash/`) and over fixed-seed
//! pseudo-random inputs, many of them corpus images with a few bytes
//! changed. The body panics on a bug; this test checks that it returns.
//!
//! `cargo test -p paxos-embedded --test fuzz_corpus -- --ignored`
//! regenerates the seed corpus.

use paxos_core::rng::Rng;
use paxos_embedded::flash::testing::{mount_flash, FaultFlash};
use paxos_embedded::flash::FlashLog;
use std::fs;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/mount_flash")
}

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let data = fs::read(&p).expect("corpus file");
            (p, data)
        })
        .collect()
}

#[test]
fn mount_flash_corpus_and_random() {
    let seeds = corpus();
    assert!(seeds.len() >= 5, "seed corpus missing");
    for (path, data) in &seeds {
        eprintln!("mount_flash: {}", path.display());
        mount_flash(data);
    }
    let mut rng = Rng::new(0xF1A5);
    for n in 0..1_500 {
        let mut data = if n % 4 == 0 {
            let len = (rng.next_u64() % 600) as usize;
            (0..len).map(|_| rng.next_u64() as u8).collect()
        } else {
            seeds[(rng.next_u64() % seeds.len() as u64) as usize].1.clone()
        };
        if n % 4 != 0 && data.len() > 1 {
            for _ in 0..1 + rng.next_u64() % 6 {
                let at = 1 + (rng.next_u64() % (data.len() as u64 - 1)) as usize;
                data[at] ^= 1 << (rng.next_u64() % 8);
            }
        }
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        if let Err(e) = std::panic::catch_unwind(|| mount_flash(&data)) {
            eprintln!("input {n} panicked; hex: {hex}");
            std::panic::resume_unwind(e);
        }
    }
}

/// Images of healthy logs for each geometry the body picks: `[pick]` then
/// the image.
#[test]
#[ignore = "regenerates fuzz/corpus/mount_flash; run on purpose"]
fn regenerate_seed_corpus() {
    fn image<const W: usize, const E: usize>(pages: usize, batches: usize, compact: bool) -> Vec<u8> {
        let mut log = FlashLog::mount(FaultFlash::<W, E>::new(pages, 1)).expect("mount");
        for n in 0..batches {
            let batch = vec![n as u8; 1 + (n * 7) % 40];
            if log.append(&batch).is_err() && compact {
                log.compact(b"checkpoint").expect("compact");
                log.append(&batch).expect("append");
            }
        }
        log.release().image().to_vec()
    }
    let dir = corpus_dir();
    fs::create_dir_all(&dir).expect("corpus dir");
    let write = |name: &str, pick: u8, image: Vec<u8>| {
        let mut data = vec![pick];
        data.extend(image);
        fs::write(dir.join(name), data).expect("corpus file");
    };
    write("empty", 0, Vec::new());
    write("w1-few", 0, image::<1, 256>(2, 3, false));
    write("w1-compacted", 0, image::<1, 256>(2, 12, true));
    write("w4-three-pages", 1, image::<4, 256>(3, 10, true));
    write("w8-compacted", 2, image::<8, 512>(2, 20, true));
    write("w32-few", 3, image::<32, 1024>(2, 5, false));
    let mut torn = image::<8, 512>(2, 6, false);
    torn[16 + 100] ^= 0x20;
    write("w8-torn", 2, torn);
}
