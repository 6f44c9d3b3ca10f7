//! Wear figures for the README: flash bytes per decision and decisions per
//! page erase under a real single-node `Replica` with 32-byte values,
//! compacting whenever the log is full. Prints the figures (run with
//! `--nocapture`); asserts only that wear is levelled across pages.

use paxos_core::replica::{Config, Event, Replica};
use paxos_core::{Bytes, Duration, Instant, NodeId};
use paxos_embedded::flash::testing::FaultFlash;
use paxos_embedded::flash::{AppendError, FlashLog};

type V = Bytes<32>;
type R = Replica<V, 1, 8>;

struct Figures {
    decisions: u64,
    batches: u64,
    payload: u64,
    flash_bytes: u64,
    erases: u64,
    compactions: u64,
    page_erases: Vec<u64>,
}

/// Runs `decisions` decisions, proposing `burst` values per step.
fn run<const W: usize, const E: usize>(pages: usize, burst: usize, decisions: u64) -> Figures {
    let mut log = FlashLog::mount(FaultFlash::<W, E>::new(pages, 1)).expect("mount");
    let config = Config::builder(NodeId(1), &[NodeId(1)])
        .initial_leader(NodeId(1))
        .build()
        .expect("config");
    let mut replica = R::new(config, Instant::ZERO).expect("replica");
    let mut now = Instant::ZERO;
    let mut f = Figures {
        decisions: 0,
        batches: 0,
        payload: 0,
        flash_bytes: 0,
        erases: 0,
        compactions: 0,
        page_erases: Vec::new(),
    };
    let mut buf = [0u8; 1024];
    let mut next = 0u64;
    while f.decisions < decisions {
        now = now + Duration::from_millis(1);
        for _ in 0..burst {
            let mut value = [0u8; 32];
            value[..8].copy_from_slice(&next.to_le_bytes());
            if replica.propose(now, V::from_slice(&value).expect("value")).is_ok() {
                next += 1;
            }
        }
        loop {
            while let Some(p) = replica.poll_persist(&mut buf) {
                match log.append(&buf[..p.len]) {
                    Ok(()) => {}
                    Err(AppendError::Full) => {
                        let mut checkpoint = vec![0u8; R::MAX_CHECKPOINT_SIZE];
                        let len = replica.write_checkpoint(&mut checkpoint).expect("checkpoint");
                        log.compact(&checkpoint[..len]).expect("compact");
                        f.flash_bytes += log.record_size(len) as u64;
                        f.compactions += 1;
                        log.append(&buf[..p.len]).expect("append");
                    }
                    Err(e) => panic!("append: {e}"),
                }
                f.batches += 1;
                f.payload += p.len as u64;
                f.flash_bytes += log.record_size(p.len) as u64;
                replica.persisted(now, p.seq).expect("persisted");
            }
            let mut any = false;
            while let Some(e) = replica.poll_event() {
                any = true;
                if let Event::Decided { .. } = e {
                    f.decisions += 1;
                }
            }
            if !any {
                break;
            }
        }
    }
    f.erases = log.flash().erases();
    f.page_erases = log.flash().page_erases().to_vec();
    f
}

fn report<const W: usize, const E: usize>(pages: usize, decisions: u64) {
    for burst in [1, 4] {
        let f = run::<W, E>(pages, burst, decisions);
        let per_decision = f.flash_bytes as f64 / f.decisions as f64;
        let per_erase = f.decisions as f64 / f.erases.max(1) as f64;
        eprintln!(
            "{pages} x {} KiB, W={W}, burst {burst}: {} decisions, {} batches, payload {:.1} B/decision, \
             flash {per_decision:.1} B/decision, {} compactions, {} erases, {per_erase:.0} decisions/erase, \
             per-page erases {:?}",
            E / 1024,
            f.decisions,
            f.batches,
            f.payload as f64 / f.decisions as f64,
            f.compactions,
            f.erases,
            f.page_erases
        );
        let (min, max) = (
            f.page_erases.iter().min().copied().unwrap_or(0),
            f.page_erases.iter().max().copied().unwrap_or(0),
        );
        assert!(f.erases >= pages as u64, "the run should wrap the device");
        assert!(max - min <= 1, "wear not levelled: {:?}", f.page_erases);
    }
}

#[test]
fn wear_figures() {
    report::<8, 2048>(2, 2_000);
    report::<4, 4096>(16, 8_000);
    report::<32, { 128 * 1024 }>(4, 40_000);
}
