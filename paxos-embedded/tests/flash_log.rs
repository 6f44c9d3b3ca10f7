//! FlashLog without a replica: geometry, round trips, compaction, the
//! rules (rotate on boot, no double write) and corruption reports.

use paxos_embedded::flash::testing::FaultFlash;
use paxos_embedded::flash::{AppendError, CompactError, Corruption, FlashLog, GeometryError, MountError};

type Small = FaultFlash<4, 1024>;

fn replayed<const W: usize, const E: usize>(log: &mut FlashLog<FaultFlash<W, E>>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; E];
    log.replay(&mut buf, |b| {
        out.push(b.to_vec());
        Ok::<(), ()>(())
    })
    .expect("replay");
    out
}

fn remount<const W: usize, const E: usize>(log: FlashLog<FaultFlash<W, E>>) -> FlashLog<FaultFlash<W, E>> {
    FlashLog::mount(log.release()).expect("remount")
}

#[test]
fn geometry_is_checked() {
    let one_page = FlashLog::mount(Small::new(1, 1));
    assert!(matches!(
        one_page,
        Err(MountError::Geometry(GeometryError::TooFewPages { pages: 1 }))
    ));
    let tiny = FlashLog::mount(FaultFlash::<32, 32>::new(4, 1));
    assert!(matches!(tiny, Err(MountError::Geometry(GeometryError::PageTooSmall { .. }))));
    let ok = FlashLog::mount(FaultFlash::<32, 1024>::new(2, 1)).expect("mount");
    assert_eq!((ok.pages(), ok.page_size(), ok.live_pages()), (2, 1024, 0));
    // Page header 32, record header 20 -> 32: 1024 - 32 - 20 = 972.
    assert_eq!(ok.max_record_len(), 972);
    assert_eq!(ok.record_size(1), 32);
}

#[test]
fn appends_survive_remount_in_order() {
    let mut log = FlashLog::mount(Small::new(3, 7)).expect("mount");
    assert!(replayed(&mut log).is_empty());
    let batches: Vec<Vec<u8>> = (0..20u8).map(|n| vec![n; 1 + n as usize * 3]).collect();
    for b in &batches {
        log.append(b).expect("append");
    }
    let mut log = remount(log);
    assert_eq!(replayed(&mut log), batches);
    assert_eq!(log.next_seq(), 21);
}

#[test]
fn full_then_compact_frees_the_old_pages() {
    let mut log = FlashLog::mount(Small::new(2, 7)).expect("mount");
    let batch = [0xABu8; 100];
    let mut n = 0;
    let err = loop {
        match log.append(&batch) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    // Two pages, one kept for the checkpoint: one page of records.
    assert_eq!(err, AppendError::Full);
    assert_eq!(n, (1024 - 16) / 120);
    log.compact(b"checkpoint").expect("compact");
    log.append(b"after").expect("append after compaction");
    let mut log = remount(log);
    assert_eq!(replayed(&mut log), vec![b"checkpoint".to_vec(), b"after".to_vec()]);
    // Rotate on boot: with two pages the first write after mount needs a
    // compaction, which goes to the freshly erased other page.
    assert_eq!(log.append(b"x"), Err(AppendError::Full));
    log.compact(b"checkpoint 2").expect("compact");
    log.append(b"x").expect("append");
    assert_eq!(log.erase_count(), 1);
    let mut log = remount(log);
    assert_eq!(replayed(&mut log), vec![b"checkpoint 2".to_vec(), b"x".to_vec()]);
}

#[test]
fn too_large_is_refused_without_harm() {
    let mut log = FlashLog::mount(Small::new(2, 7)).expect("mount");
    let max = log.max_record_len();
    let big = vec![1u8; max + 1];
    assert_eq!(log.append(&big), Err(AppendError::TooLarge { len: max + 1, max }));
    assert_eq!(log.compact(&big), Err(CompactError::TooLarge { len: max + 1, max }));
    log.append(&vec![2u8; max]).expect("largest record");
    let mut log = remount(log);
    assert_eq!(replayed(&mut log), vec![vec![2u8; max]]);
}

#[test]
fn multi_write_records_for_every_write_size() {
    fn run<const W: usize>() {
        let mut log = FlashLog::mount(FaultFlash::<W, 2048>::new(3, 3)).expect("mount");
        let batches: Vec<Vec<u8>> = [0usize, 1, 7, 100, 127, 128, 129, 300, 1000]
            .iter()
            .map(|&n| (0..n).map(|i| i as u8).collect())
            .collect();
        for b in batches.iter().filter(|b| !b.is_empty()) {
            log.append(b).expect("append");
        }
        let mut log = remount(log);
        let want: Vec<Vec<u8>> = batches.into_iter().filter(|b| !b.is_empty()).collect();
        assert_eq!(replayed(&mut log), want, "W={W}");
    }
    run::<1>();
    run::<2>();
    run::<4>();
    run::<8>();
    run::<16>();
    run::<32>();
}

#[test]
fn a_hole_in_a_page_is_corruption() {
    let mut log = FlashLog::mount(Small::new(3, 7)).expect("mount");
    for n in 0..4u8 {
        log.append(&[n; 40]).expect("append");
    }
    let mut flash = log.release();
    // The second record: page header 16, first record 20 + 40 = 60.
    flash.corrupt(16 + 60 + 30, 0x01);
    match FlashLog::mount(flash) {
        Err(MountError::Corrupt(Corruption::Hole { page: 0, offset: 76 })) => {}
        other => panic!("expected a hole, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_lost_page_is_a_sequence_gap() {
    let mut log = FlashLog::mount(Small::new(4, 7)).expect("mount");
    for n in 0..25u8 {
        log.append(&[n; 90]).expect("append");
    }
    let mut flash = log.release();
    // Damage the header of the second page: its records drop out.
    flash.corrupt(1024 + 5, 0x40);
    match FlashLog::mount(flash) {
        Err(MountError::Corrupt(Corruption::SequenceGap { .. })) => {}
        other => panic!("expected a gap, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_torn_tail_is_not_corruption() {
    let mut log = FlashLog::mount(Small::new(3, 7)).expect("mount");
    for n in 0..4u8 {
        log.append(&[n; 40]).expect("append");
    }
    let mut flash = log.release();
    // The last record's payload.
    flash.corrupt(16 + 3 * 60 + 25, 0x10);
    let mut log = FlashLog::mount(flash).expect("torn tail mounts");
    assert_eq!(replayed(&mut log).len(), 3);
    // The next record reuses the torn one's sequence number, on a new page.
    log.append(b"next").expect("append");
    let mut log = remount(log);
    assert_eq!(replayed(&mut log).last().map(Vec::as_slice), Some(&b"next"[..]));
}

#[test]
#[should_panic(expected = "written twice")]
fn the_mock_catches_a_double_write() {
    use embedded_storage::nor_flash::NorFlash;
    let mut flash = Small::new(2, 1);
    flash.write(0, &[0, 0, 0, 0]).expect("write");
    let _ = flash.write(0, &[0, 0, 0, 0]);
}
