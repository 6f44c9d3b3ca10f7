//! Host-side test support (feature `test-flash`, uses `std`): a RAM flash
//! that cuts power at a chosen operation and tears what it interrupts, and
//! the body of the `mount_flash` fuzz target.

extern crate std;

use super::FlashLog;
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use paxos_core::rng::Rng;
use std::vec;
use std::vec::Vec;

/// How an interrupted operation leaves the words it was changing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tear {
    /// Writes land word by word: a prefix is new, the interrupted word
    /// random, the rest untouched. An interrupted erase has cleared a
    /// prefix of the page, randomized one word and left the rest old.
    Sequential,
    /// Every word of the interrupted write is independently old, new or
    /// random; every word of the interrupted erase independently old, 0xFF
    /// or random.
    Adversarial,
}

/// The state of one word, for the never-write-twice rule and ECC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Word {
    Erased,
    Programmed,
    /// Interrupted: not virgin, and unreadable with ECC.
    Torn,
}

/// Errors of [`FaultFlash`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// Power is off: the cut happened.
    PowerLost,
    /// A read touched a torn word of an ECC flash.
    Ecc,
    /// Out of bounds.
    OutOfBounds,
}

impl NorFlashError for FaultError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FaultError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// A RAM-backed NOR flash of `pages` pages of `E` bytes, written in words
/// of `W` bytes, that counts operations (one per word written, one per
/// page erased), cuts power at a chosen one, and panics on a second write
/// to a word (the ECC rule) or a misaligned access.
#[derive(Clone, Debug)]
pub struct FaultFlash<const W: usize, const E: usize> {
    data: Vec<u8>,
    words: Vec<Word>,
    /// How interrupted operations tear.
    pub tear: Tear,
    /// Whether reading a torn word fails, as on ECC flash.
    pub ecc: bool,
    fuel: Option<u64>,
    dead: bool,
    ops: u64,
    word_writes: u64,
    erases: u64,
    erases_per_page: Vec<u64>,
    rng: Rng,
}

impl<const W: usize, const E: usize> FaultFlash<W, E> {
    /// An erased device; `seed` drives the random parts of tears.
    pub fn new(pages: usize, seed: u64) -> Self {
        FaultFlash {
            data: vec![0xFF; pages * E],
            words: vec![Word::Erased; pages * E / W],
            tear: Tear::Sequential,
            ecc: false,
            fuel: None,
            dead: false,
            ops: 0,
            word_writes: 0,
            erases: 0,
            erases_per_page: vec![0; pages],
            rng: Rng::new(seed),
        }
    }

    /// A device holding `image` (cut or padded with 0xFF to whole pages),
    /// every word of unknown history: any write before an erase panics.
    pub fn from_image(pages: usize, image: &[u8]) -> Self {
        let mut flash = Self::new(pages, 0x9E37_79B9);
        for (d, s) in flash.data.iter_mut().zip(image) {
            *d = *s;
        }
        flash.words.fill(Word::Programmed);
        flash
    }

    /// Cuts power when `ops` more operations have completed: the next one
    /// is torn, and every later one fails. `None` keeps power on.
    pub fn cut_after(&mut self, ops: Option<u64>) {
        self.fuel = ops;
    }

    /// Powers up again after a cut (the contents stay as the cut left
    /// them); no cut is armed.
    pub fn power_on(&mut self) {
        self.dead = false;
        self.fuel = None;
    }

    /// Whether the armed cut happened.
    pub fn cut_happened(&self) -> bool {
        self.dead
    }

    /// Operations completed so far (words written plus pages erased).
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Words written.
    pub fn word_writes(&self) -> u64 {
        self.word_writes
    }

    /// Pages erased.
    pub fn erases(&self) -> u64 {
        self.erases
    }

    /// Erases per page.
    pub fn page_erases(&self) -> &[u64] {
        &self.erases_per_page
    }

    /// The raw contents.
    pub fn image(&self) -> &[u8] {
        &self.data
    }

    /// Flips bits of byte `at`, as bit rot would, keeping the word's state.
    pub fn corrupt(&mut self, at: usize, mask: u8) {
        self.data[at] ^= mask;
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn random_word(&mut self, word: usize) {
        for i in 0..W {
            self.data[word * W + i] = self.random() as u8;
        }
    }

    /// Takes one operation's fuel; false if this operation is the cut.
    fn burn(&mut self) -> bool {
        match self.fuel {
            Some(0) => {
                self.dead = true;
                false
            }
            Some(n) => {
                self.fuel = Some(n - 1);
                self.ops += 1;
                true
            }
            None => {
                self.ops += 1;
                true
            }
        }
    }
}

impl<const W: usize, const E: usize> ErrorType for FaultFlash<W, E> {
    type Error = FaultError;
}

impl<const W: usize, const E: usize> ReadNorFlash for FaultFlash<W, E> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FaultError> {
        if self.dead {
            return Err(FaultError::PowerLost);
        }
        let from = offset as usize;
        let to = from.checked_add(bytes.len()).filter(|&t| t <= self.data.len());
        let Some(to) = to else {
            return Err(FaultError::OutOfBounds);
        };
        if self.ecc && to > from && self.words[from / W..=(to - 1) / W].contains(&Word::Torn) {
            return Err(FaultError::Ecc);
        }
        bytes.copy_from_slice(&self.data[from..to]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl<const W: usize, const E: usize> NorFlash for FaultFlash<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FaultError> {
        let (from, to) = (from as usize, to as usize);
        assert!(
            from.is_multiple_of(E) && to.is_multiple_of(E) && from <= to,
            "misaligned erase {from}..{to}"
        );
        if to > self.data.len() {
            return Err(FaultError::OutOfBounds);
        }
        if self.dead {
            return Err(FaultError::PowerLost);
        }
        for page in from / E..to / E {
            let words = page * E / W..(page + 1) * E / W;
            if self.burn() {
                self.data[page * E..(page + 1) * E].fill(0xFF);
                self.words[words].fill(Word::Erased);
                self.erases += 1;
                self.erases_per_page[page] += 1;
                continue;
            }
            let cut = words.start + (self.random() as usize) % (E / W);
            for word in words {
                let fate = match self.tear {
                    Tear::Sequential if word < cut => 1,
                    Tear::Sequential if word == cut => 2,
                    Tear::Sequential => 0,
                    Tear::Adversarial => self.random() % 3,
                };
                match fate {
                    0 => {}
                    1 => self.data[word * W..(word + 1) * W].fill(0xFF),
                    _ => self.random_word(word),
                }
                self.words[word] = Word::Torn;
            }
            return Err(FaultError::PowerLost);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FaultError> {
        let from = offset as usize;
        assert!(
            from.is_multiple_of(W) && bytes.len().is_multiple_of(W),
            "misaligned write of {} bytes at {from}",
            bytes.len()
        );
        if from + bytes.len() > self.data.len() {
            return Err(FaultError::OutOfBounds);
        }
        if self.dead {
            return Err(FaultError::PowerLost);
        }
        let first = from / W;
        let count = bytes.len() / W;
        for i in 0..count {
            let word = first + i;
            assert!(
                self.words[word] == Word::Erased,
                "word {word} (offset {}) written twice: {:?}",
                word * W,
                self.words[word]
            );
        }
        for i in 0..count {
            let word = first + i;
            let new = &bytes[i * W..(i + 1) * W];
            if self.burn() {
                self.data[word * W..(word + 1) * W].copy_from_slice(new);
                self.words[word] = Word::Programmed;
                self.word_writes += 1;
                continue;
            }
            // The cut: tear this word and, adversarially, all the others.
            let torn = match self.tear {
                Tear::Sequential => word..word + 1,
                Tear::Adversarial => first..first + count,
            };
            for w in torn {
                match self.random() % 3 {
                    0 => {}
                    1 => {
                        let j = w - first;
                        self.data[w * W..(w + 1) * W].copy_from_slice(&bytes[j * W..(j + 1) * W]);
                    }
                    _ => self.random_word(w),
                }
                self.words[w] = Word::Torn;
            }
            return Err(FaultError::PowerLost);
        }
        Ok(())
    }
}

/// The `mount_flash` fuzz body: byte 0 picks a geometry, the rest is the
/// flash image. Mounts, replays, appends and compacts; never panics unless
/// the log breaks a rule (writes a word twice, loses an appended batch).
pub fn mount_flash(data: &[u8]) {
    let (pick, image) = data.split_first().unwrap_or((&0, &[]));
    match pick % 4 {
        0 => fuzz_one(FaultFlash::<1, 256>::from_image(2, image)),
        1 => fuzz_one(FaultFlash::<4, 256>::from_image(3, image)),
        2 => fuzz_one(FaultFlash::<8, 512>::from_image(2, image)),
        _ => fuzz_one(FaultFlash::<32, 1024>::from_image(2, image)),
    }
}

fn fuzz_one<const W: usize, const E: usize>(flash: FaultFlash<W, E>) {
    let Ok(mut log) = FlashLog::mount(flash) else { return };
    let mut buf = [0u8; 1024];
    if log.replay(&mut buf, |_| Ok::<(), ()>(())).is_err() {
        return;
    }
    // Append a few batches, compacting when full; every one that returned
    // Ok must come back, last, after a remount.
    let mut appended: Vec<Vec<u8>> = Vec::new();
    for n in 0..6u8 {
        let batch = vec![n; 1 + usize::from(n) * 13];
        match log.append(&batch) {
            Ok(()) => appended.push(batch),
            Err(super::AppendError::Full) => {
                if log.compact(b"checkpoint").is_err() {
                    return;
                }
                appended.clear();
                appended.push(b"checkpoint".to_vec());
                if log.append(&batch).is_ok() {
                    appended.push(batch);
                }
            }
            Err(_) => return,
        }
    }
    let flash = log.release();
    let mut log = match FlashLog::mount(flash) {
        Ok(log) => log,
        Err(e) => panic!("remount after appends failed: {e:?}"),
    };
    let mut replayed: Vec<Vec<u8>> = Vec::new();
    if let Err(e) = log.replay(&mut buf, |b| {
        replayed.push(b.to_vec());
        Ok::<(), ()>(())
    }) {
        panic!("replay after appends failed: {e:?}");
    }
    assert!(
        replayed.ends_with(&appended),
        "appended batches lost: replayed {} batches, appended {}",
        replayed.len(),
        appended.len()
    );
}
