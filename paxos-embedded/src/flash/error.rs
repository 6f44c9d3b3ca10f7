//! What can go wrong, by operation.

use core::fmt;

/// The device cannot hold a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GeometryError {
    /// Fewer than two erase pages: a checkpoint needs a page of its own
    /// while the previous one is still needed.
    TooFewPages {
        /// Whole pages in `capacity()`.
        pages: usize,
    },
    /// A page cannot hold its header and one record of one byte.
    PageTooSmall {
        /// `ERASE_SIZE`.
        erase_size: usize,
        /// The smallest usable page.
        min: usize,
    },
    /// `READ_SIZE` and `WRITE_SIZE` are zero, do not divide one another,
    /// or the larger exceeds 64 bytes.
    Alignment {
        /// `READ_SIZE`.
        read_size: usize,
        /// `WRITE_SIZE`.
        write_size: usize,
    },
    /// `ERASE_SIZE` is not a multiple of the read and write alignment.
    PageNotAligned {
        /// `ERASE_SIZE`.
        erase_size: usize,
        /// The larger of `READ_SIZE` and `WRITE_SIZE`.
        unit: usize,
    },
    /// The device is larger than 32-bit offsets reach.
    TooLarge {
        /// `capacity()`.
        capacity: usize,
    },
}

/// Damage that is not a torn write: mounting refuses rather than fall
/// back to older state than it may have confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Corruption {
    /// A needed record is missing or out of order: `expected` is not
    /// intact, while a later record (`found`) is.
    SequenceGap {
        /// The sequence number expected.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
    /// An intact record follows a damaged one in the same page: a torn
    /// write is always the last record of its page.
    Hole {
        /// The page.
        page: u32,
        /// The damaged record's offset in the page.
        offset: u32,
    },
    /// Intact records exist but no base record (checkpoint) to start from.
    NoBase,
    /// Replay read something other than what mount found.
    Changed,
}

/// Why [`FlashLog::mount`](super::FlashLog::mount) refused the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MountError<E> {
    /// The device's geometry cannot hold a log.
    Geometry(GeometryError),
    /// The log is damaged beyond a torn write.
    Corrupt(Corruption),
    /// A read failed as out of bounds or misaligned: the driver disagrees
    /// with its own geometry. (Other read errors count as torn records.)
    Flash(E),
}

/// Why [`FlashLog::replay`](super::FlashLog::replay) stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReplayError<E, V> {
    /// A record is longer than the buffer; nothing after it was replayed.
    BufferTooSmall {
        /// The record's length.
        needed: usize,
        /// The buffer's length.
        len: usize,
    },
    /// The log changed under the mount, or is damaged.
    Corrupt(Corruption),
    /// A read failed as out of bounds or misaligned.
    Flash(E),
    /// The callback refused a batch.
    Apply(V),
}

/// Why [`FlashLog::append`](super::FlashLog::append) wrote nothing durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AppendError<E> {
    /// No room without compaction: call
    /// [`FlashLog::compact`](super::FlashLog::compact), then append again.
    /// Nothing was written; the log is still usable.
    Full,
    /// The batch exceeds the largest record a page holds. Nothing was
    /// written; the log is still usable.
    TooLarge {
        /// The batch's length.
        len: usize,
        /// [`FlashLog::max_record_len`](super::FlashLog::max_record_len).
        max: usize,
    },
    /// The flash failed a write or erase. What reached the flash is
    /// unknown: the log refuses further writes ([`AppendError::Poisoned`]);
    /// release and mount it again.
    Flash(E),
    /// An earlier write failed: release and mount again.
    Poisoned,
}

/// Why [`FlashLog::compact`](super::FlashLog::compact) did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CompactError<E> {
    /// Every page holds needed records. The log never gets there itself
    /// (appends keep one page free for this); an image written elsewhere
    /// can.
    NoFreePage,
    /// The checkpoint exceeds the largest record a page holds. Nothing was
    /// written; the log is still usable.
    TooLarge {
        /// The checkpoint's length.
        len: usize,
        /// [`FlashLog::max_record_len`](super::FlashLog::max_record_len).
        max: usize,
    },
    /// The flash failed a write or erase; the log is poisoned. The old
    /// log stays valid on flash until the checkpoint is durable.
    Flash(E),
    /// An earlier write failed: release and mount again.
    Poisoned,
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GeometryError::TooFewPages { pages } => write!(f, "{pages} erase page(s); at least 2 needed"),
            GeometryError::PageTooSmall { erase_size, min } => {
                write!(f, "erase page of {erase_size} bytes; at least {min} needed")
            }
            GeometryError::Alignment { read_size, write_size } => {
                write!(f, "unsupported read size {read_size} / write size {write_size}")
            }
            GeometryError::PageNotAligned { erase_size, unit } => {
                write!(f, "erase size {erase_size} is not a multiple of {unit}")
            }
            GeometryError::TooLarge { capacity } => write!(f, "capacity {capacity} exceeds 32-bit offsets"),
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::SequenceGap { expected, found } => {
                write!(f, "record {expected} missing; record {found} follows")
            }
            Corruption::Hole { page, offset } => {
                write!(f, "intact records follow damage at page {page} offset {offset}")
            }
            Corruption::NoBase => f.write_str("records without a base record"),
            Corruption::Changed => f.write_str("the flash changed since mount"),
        }
    }
}

impl<E: fmt::Debug> fmt::Display for MountError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::Geometry(e) => write!(f, "geometry: {e}"),
            MountError::Corrupt(e) => write!(f, "corrupt log: {e}"),
            MountError::Flash(e) => write!(f, "flash: {e:?}"),
        }
    }
}

impl<E: fmt::Debug, V: fmt::Debug> fmt::Display for ReplayError<E, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::BufferTooSmall { needed, len } => {
                write!(f, "a record of {needed} bytes exceeds the buffer of {len}")
            }
            ReplayError::Corrupt(e) => write!(f, "corrupt log: {e}"),
            ReplayError::Flash(e) => write!(f, "flash: {e:?}"),
            ReplayError::Apply(e) => write!(f, "batch refused: {e:?}"),
        }
    }
}

impl<E: fmt::Debug> fmt::Display for AppendError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::Full => f.write_str("log full: compact"),
            AppendError::TooLarge { len, max } => write!(f, "batch of {len} bytes exceeds the maximum {max}"),
            AppendError::Flash(e) => write!(f, "flash: {e:?}"),
            AppendError::Poisoned => f.write_str("an earlier write failed; mount again"),
        }
    }
}

impl<E: fmt::Debug> fmt::Display for CompactError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompactError::NoFreePage => f.write_str("no free page for the checkpoint"),
            CompactError::TooLarge { len, max } => {
                write!(f, "checkpoint of {len} bytes exceeds the maximum {max}")
            }
            CompactError::Flash(e) => write!(f, "flash: {e:?}"),
            CompactError::Poisoned => f.write_str("an earlier write failed; mount again"),
        }
    }
}

impl core::error::Error for GeometryError {}
impl core::error::Error for Corruption {}
impl<E: fmt::Debug> core::error::Error for MountError<E> {}
impl<E: fmt::Debug, V: fmt::Debug> core::error::Error for ReplayError<E, V> {}
impl<E: fmt::Debug> core::error::Error for AppendError<E> {}
impl<E: fmt::Debug> core::error::Error for CompactError<E> {}
