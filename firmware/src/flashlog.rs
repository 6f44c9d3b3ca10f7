//! A stand-in for `paxos_embedded::flash::FlashLog`, with the same names
//! and shapes, used until that module lands (it is being written on the
//! `flash` branch). Deliberately minimal: one append-only run of
//! `[len u16][crc32 u32][bytes]` records over the whole device, and a
//! compaction that erases everything and then writes the checkpoint, which
//! is **not** safe against power loss between the two steps. The real
//! module replaces it; nothing else in the firmware changes.

use embedded_storage::nor_flash::NorFlash;
use paxos_embedded::framing::{crc32, Crc32};

const HEADER: usize = 6;
const ERASED_LEN: u16 = 0xFFFF;

/// The device could not be mounted.
#[derive(Debug)]
pub enum MountError<E> {
    /// The flash failed.
    Flash(E),
}

/// Replay stopped.
#[derive(Debug)]
pub enum ReplayError<E, U> {
    /// The flash failed.
    Flash(E),
    /// A record is longer than the caller's buffer.
    BufferTooSmall,
    /// The caller's callback failed.
    User(U),
}

/// A batch was not appended.
#[derive(Debug)]
pub enum AppendError<E> {
    /// No room left: compact, then append again.
    Full,
    /// The batch is longer than a record can be.
    TooLarge,
    /// The flash failed.
    Flash(E),
}

/// The log on a whole flash device.
pub struct FlashLog<F> {
    flash: F,
    /// Where the next record goes.
    end: u32,
}

impl<F: NorFlash> FlashLog<F> {
    /// Finds the end of the records (the first erased header, or the first
    /// record whose checksum fails: a torn append).
    pub fn mount(mut flash: F) -> Result<Self, MountError<F::Error>> {
        let mut at = 0u32;
        let capacity = flash.capacity() as u32;
        let mut header = [0u8; HEADER];
        let mut body = [0u8; 64];
        while at + HEADER as u32 <= capacity {
            flash.read(at, &mut header).map_err(MountError::Flash)?;
            let (len, crc) = parse(&header);
            if len == ERASED_LEN || at + HEADER as u32 + u32::from(len) > capacity {
                break;
            }
            // Check the body piece by piece: the buffer here is small.
            let mut state = Crc32::new();
            let mut offset = 0u32;
            while offset < u32::from(len) {
                let n = (u32::from(len) - offset).min(body.len() as u32) as usize;
                let piece = body.get_mut(..n).unwrap_or_default();
                flash
                    .read(at + HEADER as u32 + offset, piece)
                    .map_err(MountError::Flash)?;
                state.update(piece);
                offset += n as u32;
            }
            if state.finish() != crc {
                break;
            }
            at += HEADER as u32 + u32::from(len);
        }
        Ok(FlashLog { flash, end: at })
    }

    /// Hands every batch, in the order appended, to `f`; `buf` must hold
    /// the longest.
    pub fn replay<U>(
        &mut self,
        buf: &mut [u8],
        mut f: impl FnMut(&[u8]) -> Result<(), U>,
    ) -> Result<(), ReplayError<F::Error, U>> {
        let mut at = 0u32;
        let mut header = [0u8; HEADER];
        while at < self.end {
            self.flash.read(at, &mut header).map_err(ReplayError::Flash)?;
            let (len, _) = parse(&header);
            let batch = buf.get_mut(..usize::from(len)).ok_or(ReplayError::BufferTooSmall)?;
            self.flash.read(at + HEADER as u32, batch).map_err(ReplayError::Flash)?;
            f(batch).map_err(ReplayError::User)?;
            at += HEADER as u32 + u32::from(len);
        }
        Ok(())
    }

    /// Appends one batch.
    pub fn append(&mut self, batch: &[u8]) -> Result<(), AppendError<F::Error>> {
        let len = u16::try_from(batch.len())
            .ok()
            .filter(|&l| l != ERASED_LEN)
            .ok_or(AppendError::TooLarge)?;
        if self.end as usize + HEADER + batch.len() > self.flash.capacity() {
            return Err(AppendError::Full);
        }
        let mut header = [0u8; HEADER];
        let (l, c) = header.split_at_mut(2);
        l.copy_from_slice(&len.to_le_bytes());
        c.copy_from_slice(&crc32(batch).to_le_bytes());
        // Body first, header last: a torn append leaves an erased header.
        self.flash
            .write(self.end + HEADER as u32, batch)
            .map_err(AppendError::Flash)?;
        self.flash.write(self.end, &header).map_err(AppendError::Flash)?;
        self.end += (HEADER + batch.len()) as u32;
        Ok(())
    }

    /// Replaces every batch with `checkpoint`.
    pub fn compact(&mut self, checkpoint: &[u8]) -> Result<(), AppendError<F::Error>> {
        let capacity = self.flash.capacity() as u32;
        self.flash.erase(0, capacity).map_err(AppendError::Flash)?;
        self.end = 0;
        self.append(checkpoint)
    }

    /// Bytes used.
    pub fn used(&self) -> u32 {
        self.end
    }

    /// Gives the flash back.
    #[allow(dead_code)] // Part of the API the real module has.
    pub fn release(self) -> F {
        self.flash
    }
}

fn parse(header: &[u8; HEADER]) -> (u16, u32) {
    let [l0, l1, c0, c1, c2, c3] = *header;
    (u16::from_le_bytes([l0, l1]), u32::from_le_bytes([c0, c1, c2, c3]))
}
