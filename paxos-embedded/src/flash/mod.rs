//! The replica's record batches on NOR flash, safe against power loss at
//! any instant.
//!
//! [`FlashLog`] is an append-only log of opaque batches (the byte strings
//! [`Replica::poll_persist`](paxos_core::replica::Replica::poll_persist)
//! writes) over a whole `embedded_storage` [`NorFlash`] device, blocking,
//! without allocation. It never looks inside a batch.
//!
//! ```no_run
//! # use embedded_storage::nor_flash::NorFlash;
//! # fn demo<F: NorFlash>(flash: F, checkpoint: &[u8]) -> Option<()> where F::Error: core::fmt::Debug {
//! use paxos_embedded::flash::{AppendError, FlashLog};
//! let mut log = FlashLog::mount(flash).ok()?;
//! let mut buf = [0u8; 512];
//! log.replay(&mut buf, |batch| -> Result<(), ()> {
//!     // recovery.replay(batch, ..)
//!     Ok(())
//! }).ok()?;
//! match log.append(b"\x01batch") {
//!     Ok(()) => {} // durable: confirm it with `persisted`
//!     Err(AppendError::Full) => {
//!         log.compact(checkpoint).ok()?; // from `write_checkpoint`
//!         log.append(b"\x01batch").ok()?;
//!     }
//!     Err(_) => return None, // release, mount again
//! }
//! # Some(()) }
//! ```
//!
//! # Layout and rules
//!
//! The device is a ring of erase pages. A page in use starts with a header
//! carrying its *epoch*, one more than any page opened before, so pages
//! order themselves. Records follow, each with a sequence number and a
//! checksum over its header and one over its payload, padded to the write
//! size (see `format.rs` for the bytes). The live log is the newest *base*
//! record (the first record of its page: a checkpoint, or the first batch
//! ever) and every record after it, in epoch order.
//!
//! - **No word is written twice.** Records go only to words erased in this
//!   session.
//! - **Rotate on boot.** The first write after a mount goes to a freshly
//!   erased page, so that a tear of the previous session (words that read
//!   0xFF but are not virgin) is never written over.
//! - **A needed page is never erased.** A checkpoint goes to a free page;
//!   the pages before it become free only once it is durable. Appends keep
//!   one page free for that checkpoint and report [`AppendError::Full`]
//!   when they would take it.
//! - **Torn is not corrupt.** A record that fails its checksum, or whose
//!   read fails (ECC), is a torn write and ends its page. An intact record
//!   after damage in the same page ([`Corruption::Hole`]), or a sequence
//!   number out of order across pages ([`Corruption::SequenceGap`]), is
//!   corruption: mounting refuses rather than roll back what it may have
//!   confirmed.
//! - Any failed write or erase poisons the log: release it and mount
//!   again.
//!
//! Records never span pages: a batch longer than
//! [`FlashLog::max_record_len`] is refused with [`AppendError::TooLarge`];
//! give the replica a persist buffer no longer than that.
//!
//! # Limits
//!
//! Damage that keeps every checksum intact cannot be told from a shorter
//! log: losing the newest page's header, or every record including the only
//! base, looks like a log that ends earlier (or a fresh device).

mod crc;
mod error;
mod format;
mod io;
#[cfg(feature = "test-flash")]
pub mod testing;

pub use error::{AppendError, CompactError, Corruption, GeometryError, MountError, ReplayError};

use embedded_storage::nor_flash::NorFlash;
use format::{Geometry, Kind, RecordHeader};
use io::Slot;

/// The newest base record: where the live log starts.
#[derive(Clone, Copy, Debug)]
struct Base {
    page: u32,
    epoch: u64,
    seq: u64,
}

/// Where the next record goes in the current page.
#[derive(Clone, Copy, Debug)]
struct Head {
    page: u32,
    at: u32,
}

/// A walk over the live log stopped.
enum Stop<E, V> {
    Corrupt(Corruption),
    Flash(E),
    Visit(V),
}

impl<E, V> From<E> for Stop<E, V> {
    fn from(e: E) -> Self {
        Stop::Flash(e)
    }
}

/// What a walk over the live log found.
struct Walked {
    next_seq: u64,
    live_pages: u32,
    last_page: u32,
}

/// A power-fail-safe append-only log of record batches on NOR flash. See
/// the [module documentation](self).
#[derive(Debug)]
pub struct FlashLog<F> {
    flash: F,
    geo: Geometry,
    base: Option<Base>,
    /// `None` until the first write of this session opens a page.
    head: Option<Head>,
    /// The highest epoch of any intact page header.
    max_epoch: u64,
    next_seq: u64,
    /// Pages holding needed records (the head page included).
    live_pages: u32,
    /// The page written last: free pages are taken cyclically after it.
    last_page: u32,
    erases: u32,
    poisoned: bool,
}

impl<F: NorFlash> FlashLog<F> {
    /// Takes the whole device (`capacity()`), finds the live log and
    /// checks it. Reads only: the first write happens on the first append
    /// or compaction.
    pub fn mount(mut flash: F) -> Result<Self, MountError<F::Error>> {
        let geo = Geometry::new(flash.capacity(), F::READ_SIZE, F::WRITE_SIZE, F::ERASE_SIZE)
            .map_err(MountError::Geometry)?;
        let mut base: Option<Base> = None;
        let mut any_record = false;
        let mut max_epoch = 0;
        for page in 0..geo.pages {
            let Some(epoch) = io::page_epoch(&mut flash, &geo, page).map_err(MountError::Flash)? else {
                continue;
            };
            max_epoch = max_epoch.max(epoch);
            let start = geo.page_start(page);
            let first = io::read_record(&mut flash, &geo, start + geo.first_record(), start + geo.page_size)
                .map_err(MountError::Flash)?;
            if let Slot::Record(h) = first {
                any_record = true;
                if h.kind == Kind::Base && base.is_none_or(|b| epoch > b.epoch) {
                    base = Some(Base {
                        page,
                        epoch,
                        seq: h.seq,
                    });
                }
            }
        }
        if base.is_none() && any_record {
            return Err(MountError::Corrupt(Corruption::NoBase));
        }
        let mut log = FlashLog {
            flash,
            geo,
            base,
            head: None,
            max_epoch,
            next_seq: 1,
            live_pages: 0,
            last_page: geo.pages - 1,
            erases: 0,
            poisoned: false,
        };
        match log.walk(|_, _, _, _| Ok::<(), Stop<F::Error, ()>>(())) {
            Ok(walked) => {
                log.next_seq = walked.next_seq;
                log.live_pages = walked.live_pages;
                log.last_page = walked.last_page;
                Ok(log)
            }
            Err(Stop::Corrupt(c)) => Err(MountError::Corrupt(c)),
            Err(Stop::Flash(e)) => Err(MountError::Flash(e)),
            Err(Stop::Visit(())) => Err(MountError::Corrupt(Corruption::Changed)),
        }
    }

    /// Hands every durable batch of the live log (the newest checkpoint
    /// and everything after it) to `f`, in the order written, through
    /// `buf`, which must hold the longest record.
    pub fn replay<E>(
        &mut self,
        buf: &mut [u8],
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), ReplayError<F::Error, E>> {
        let buf_len = buf.len();
        let walked = self.walk(|flash, geo, at, header| {
            let out = buf
                .get_mut(..header.len)
                .ok_or(Stop::Visit(Refused::Buffer(header.len)))?;
            if !io::read_payload(flash, geo, at, header, out)? {
                return Err(Stop::Corrupt(Corruption::Changed));
            }
            f(out).map_err(|e| Stop::Visit(Refused::Apply(e)))
        });
        match walked {
            Ok(w) if self.base.is_none() || w.next_seq == self.next_seq => Ok(()),
            Ok(_) => Err(ReplayError::Corrupt(Corruption::Changed)),
            Err(Stop::Corrupt(c)) => Err(ReplayError::Corrupt(c)),
            Err(Stop::Flash(e)) => Err(ReplayError::Flash(e)),
            Err(Stop::Visit(Refused::Buffer(needed))) => Err(ReplayError::BufferTooSmall { needed, len: buf_len }),
            Err(Stop::Visit(Refused::Apply(e))) => Err(ReplayError::Apply(e)),
        }
    }

    /// Appends `batch` as one record. Durable when it returns `Ok`.
    pub fn append(&mut self, batch: &[u8]) -> Result<(), AppendError<F::Error>> {
        if self.poisoned {
            return Err(AppendError::Poisoned);
        }
        let max = self.max_record_len();
        if batch.len() > max {
            return Err(AppendError::TooLarge { len: batch.len(), max });
        }
        let size = self.geo.record_size(batch.len()) as u32;
        let head = match self.head {
            Some(h) if h.at + size <= self.geo.page_start(h.page) + self.geo.page_size => h,
            // Opening a page: one must stay free for the next checkpoint.
            _ if self.free_pages() < 2 => return Err(AppendError::Full),
            _ => {
                let page = self.open_page().map_err(AppendError::Flash)?.ok_or(AppendError::Full)?;
                self.live_pages += 1;
                Head {
                    page,
                    at: self.geo.page_start(page) + self.geo.first_record(),
                }
            }
        };
        let kind = if self.base.is_none() { Kind::Base } else { Kind::Batch };
        self.write_at(head, kind, batch).map_err(AppendError::Flash)
    }

    /// Writes `checkpoint` (from
    /// [`Replica::write_checkpoint`](paxos_core::replica::Replica::write_checkpoint))
    /// as the base of a freshly erased page. Once it returns `Ok`, every
    /// earlier page is free; until then, the old log stays whole.
    pub fn compact(&mut self, checkpoint: &[u8]) -> Result<(), CompactError<F::Error>> {
        if self.poisoned {
            return Err(CompactError::Poisoned);
        }
        let max = self.max_record_len();
        if checkpoint.len() > max {
            return Err(CompactError::TooLarge {
                len: checkpoint.len(),
                max,
            });
        }
        let page = match self.free_pages() {
            0 => None,
            _ => self.open_page().map_err(CompactError::Flash)?,
        };
        let page = page.ok_or(CompactError::NoFreePage)?;
        let head = Head {
            page,
            at: self.geo.page_start(page) + self.geo.first_record(),
        };
        self.base = None;
        self.write_at(head, Kind::Base, checkpoint).map_err(CompactError::Flash)?;
        self.live_pages = 1;
        Ok(())
    }

    /// The device, to read (statistics of a driver, say).
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// Gives the flash back.
    pub fn release(self) -> F {
        self.flash
    }

    /// The largest batch or checkpoint a record holds: a page less its
    /// header and the record header.
    pub fn max_record_len(&self) -> usize {
        self.geo.max_payload()
    }

    /// The flash bytes a record with `len` payload bytes takes: the
    /// 20-byte header and the payload, padded to the write size.
    pub fn record_size(&self, len: usize) -> usize {
        self.geo.record_size(len)
    }

    /// Erase pages on the device.
    pub fn pages(&self) -> u32 {
        self.geo.pages
    }

    /// Bytes per erase page.
    pub fn page_size(&self) -> u32 {
        self.geo.page_size
    }

    /// Pages holding needed records.
    pub fn live_pages(&self) -> u32 {
        self.live_pages
    }

    /// Pages that hold nothing needed (one of them is kept for the next
    /// checkpoint).
    pub fn free_pages(&self) -> u32 {
        self.geo.pages.saturating_sub(self.live_pages)
    }

    /// Record bytes (headers and padding included) that appends can still
    /// take before [`AppendError::Full`].
    pub fn free_bytes(&self) -> u64 {
        let usable = u64::from(self.geo.page_size - self.geo.first_record());
        let in_head = self.head.map_or(0, |h| {
            u64::from(self.geo.page_start(h.page) + self.geo.page_size - h.at)
        });
        in_head + u64::from(self.free_pages().saturating_sub(1)) * usable
    }

    /// Pages erased since mount.
    pub fn erase_count(&self) -> u32 {
        self.erases
    }

    /// The sequence number the next record gets (records since the first
    /// ever, counting from 1).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Writes one record at `head` and moves the head past it.
    fn write_at(&mut self, head: Head, kind: Kind, payload: &[u8]) -> Result<(), F::Error> {
        let seq = self.next_seq;
        if let Err(e) = io::write_record(&mut self.flash, &self.geo, head.at, kind, seq, payload) {
            self.poisoned = true;
            return Err(e);
        }
        if kind == Kind::Base {
            self.base = Some(Base {
                page: head.page,
                epoch: self.max_epoch,
                seq,
            });
        }
        self.next_seq += 1;
        self.last_page = head.page;
        self.head = Some(Head {
            page: head.page,
            at: head.at + self.geo.record_size(payload.len()) as u32,
        });
        Ok(())
    }

    /// Erases the next free page after the last one written and gives it a
    /// header with a new epoch. `Ok(None)` if no page is free.
    fn open_page(&mut self) -> Result<Option<u32>, F::Error> {
        let pages = self.geo.pages;
        let mut page = None;
        for step in 1..=pages {
            let candidate = (self.last_page + step) % pages;
            if self.is_free(candidate)? {
                page = Some(candidate);
                break;
            }
        }
        let Some(page) = page else { return Ok(None) };
        let start = self.geo.page_start(page);
        // Poisoned until the page is ready: what a failure left is unknown.
        self.poisoned = true;
        self.flash.erase(start, start + self.geo.page_size)?;
        self.erases += 1;
        let epoch = self.max_epoch + 1;
        io::write_page_header(&mut self.flash, &self.geo, page, epoch)?;
        self.poisoned = false;
        self.max_epoch = epoch;
        self.last_page = page;
        self.head = None;
        Ok(Some(page))
    }

    /// Whether `page` holds nothing the live log needs.
    fn is_free(&mut self, page: u32) -> Result<bool, F::Error> {
        if self.head.is_some_and(|h| h.page == page) {
            return Ok(false);
        }
        let Some(base) = self.base else { return Ok(true) };
        match io::page_epoch(&mut self.flash, &self.geo, page)? {
            Some(epoch) if epoch >= base.epoch => {
                let start = self.geo.page_start(page);
                let first = io::read_record(
                    &mut self.flash,
                    &self.geo,
                    start + self.geo.first_record(),
                    start + self.geo.page_size,
                )?;
                Ok(!matches!(first, Slot::Record(_)))
            }
            _ => Ok(true),
        }
    }

    /// The page with the lowest intact epoch above `after`.
    fn next_page(&mut self, after: u64) -> Result<Option<(u32, u64)>, F::Error> {
        let mut next: Option<(u32, u64)> = None;
        for page in 0..self.geo.pages {
            if let Some(epoch) = io::page_epoch(&mut self.flash, &self.geo, page)? {
                if epoch > after && next.is_none_or(|(_, e)| epoch < e) {
                    next = Some((page, epoch));
                }
            }
        }
        Ok(next)
    }

    /// Visits every record of the live log in order, checking that the
    /// sequence numbers run on and that damage ends its page.
    fn walk<V>(
        &mut self,
        mut visit: impl FnMut(&mut F, &Geometry, u32, &RecordHeader) -> Result<(), Stop<F::Error, V>>,
    ) -> Result<Walked, Stop<F::Error, V>> {
        let geo = self.geo;
        let Some(base) = self.base else {
            return Ok(Walked {
                next_seq: 1,
                live_pages: 0,
                last_page: geo.pages - 1,
            });
        };
        let mut walked = Walked {
            next_seq: base.seq,
            live_pages: 0,
            last_page: base.page,
        };
        let mut current = Some((base.page, base.epoch));
        while let Some((page, epoch)) = current {
            let start = geo.page_start(page);
            let end = start + geo.page_size;
            let mut at = start + geo.first_record();
            let mut any = false;
            let resume = loop {
                match io::read_record(&mut self.flash, &geo, at, end)? {
                    Slot::Record(h) => {
                        if h.seq != walked.next_seq {
                            return Err(Stop::Corrupt(Corruption::SequenceGap {
                                expected: walked.next_seq,
                                found: h.seq,
                            }));
                        }
                        visit(&mut self.flash, &geo, at, &h)?;
                        walked.next_seq += 1;
                        at += geo.record_size(h.len) as u32;
                        any = true;
                    }
                    Slot::Erased => break Some(at + geo.unit),
                    Slot::Damaged { resume } => break Some(resume),
                    Slot::End => break None,
                }
            };
            // A torn write is the last thing written to its page: nothing
            // intact may follow it.
            if let Some(resume) = resume.filter(|&r| r < end) {
                if !io::is_erased(&mut self.flash, &geo, resume, end)? {
                    let mut probe = resume;
                    while probe < end {
                        if let Slot::Record(h) = io::read_record(&mut self.flash, &geo, probe, end)? {
                            if h.seq >= walked.next_seq {
                                return Err(Stop::Corrupt(Corruption::Hole {
                                    page,
                                    offset: at - start,
                                }));
                            }
                        }
                        probe += geo.unit;
                    }
                }
            }
            if any {
                walked.live_pages += 1;
                walked.last_page = page;
            }
            current = self.next_page(epoch)?;
        }
        Ok(walked)
    }
}

/// Why replay's visitor stopped.
enum Refused<E> {
    Buffer(usize),
    Apply(E),
}
