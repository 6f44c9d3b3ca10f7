//! A NOR flash kept in a host file through semihosting, so that the log
//! survives a QEMU restart (the lm3s6965evb model emulates no flash
//! controller). It behaves as NOR does: erase sets a sector to `0xFF`,
//! a write can only clear bits (the file gets `old & new`).

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use semihosting::fs::File;
use semihosting::io::{Read, Seek, SeekFrom, Write};

/// Bytes per erasable sector.
pub const SECTOR: usize = 1024;

/// Why a flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashError {
    /// Out of bounds or misaligned.
    Kind(NorFlashErrorKind),
    /// The host file could not be read or written.
    Io,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::Kind(k) => *k,
            FlashError::Io => NorFlashErrorKind::Other,
        }
    }
}

/// The flash: a host file of `capacity` bytes.
pub struct SemiFlash {
    file: File,
    capacity: u32,
}

impl SemiFlash {
    /// Opens `path`, or creates it erased, `sectors` sectors long.
    pub fn open(path: &core::ffi::CStr, sectors: u32) -> Result<Self, FlashError> {
        let capacity = sectors * SECTOR as u32;
        let existing = File::options().read(true).write(true).open(path).ok();
        let fresh = existing.is_none();
        let file = match existing {
            Some(f) => f,
            None => File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .map_err(|_| FlashError::Io)?,
        };
        let mut flash = SemiFlash { file, capacity };
        let len = flash.file.metadata().map_err(|_| FlashError::Io)?.len();
        if fresh || len < u64::from(capacity) {
            // A new or short file: erase (extend) it to the full size.
            flash.erase(0, capacity)?;
        }
        Ok(flash)
    }

    fn pread(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        self.file
            .seek(SeekFrom::Start(u64::from(offset)))
            .map_err(|_| FlashError::Io)?;
        let mut done = 0;
        while let Some(rest) = bytes.get_mut(done..).filter(|r| !r.is_empty()) {
            match self.file.read(rest) {
                Ok(0) | Err(_) => return Err(FlashError::Io),
                Ok(n) => done += n,
            }
        }
        Ok(())
    }

    fn pwrite(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        self.file
            .seek(SeekFrom::Start(u64::from(offset)))
            .map_err(|_| FlashError::Io)?;
        self.file.write_all(bytes).map_err(|_| FlashError::Io)
    }
}

impl ErrorType for SemiFlash {
    type Error = FlashError;
}

impl ReadNorFlash for SemiFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        check_read(self, offset, bytes.len()).map_err(FlashError::Kind)?;
        self.pread(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.capacity as usize
    }
}

impl NorFlash for SemiFlash {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        check_erase(self, from, to).map_err(FlashError::Kind)?;
        let blank = [0xFF; 256];
        let mut at = from;
        while at < to {
            let n = (to - at).min(blank.len() as u32);
            self.pwrite(at, blank.get(..n as usize).unwrap_or_default())?;
            at += n;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        check_write(self, offset, bytes.len()).map_err(FlashError::Kind)?;
        // NOR semantics: bits only go from 1 to 0.
        let mut chunk = [0u8; 64];
        for (i, part) in bytes.chunks(chunk.len()).enumerate() {
            let at = offset + (i * chunk.len()) as u32;
            let old = chunk.get_mut(..part.len()).unwrap_or_default();
            self.pread(at, old)?;
            for (o, n) in old.iter_mut().zip(part) {
                *o &= n;
            }
            self.pwrite(at, old)?;
        }
        Ok(())
    }
}
