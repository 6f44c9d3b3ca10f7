//! The on-flash layout: page headers, record headers, and the geometry
//! that aligns them.
//!
//! ```text
//! page header (16 bytes, padded to the unit)   record header (20 bytes), payload, 0xFF padding to the unit
//!  0  4  magic "PXFL"                            0  1  kind: 0xB5 batch, 0xC3 base (starts the log)
//!  4  8  epoch: one more than any page before    1  3  payload length
//! 12  4  crc of bytes 0..12                      4  8  seq: one more than the previous record
//!                                               12  4  crc of the payload
//!                                               16  4  crc of bytes 0..16
//! ```
//!
//! All integers are little-endian. Records never span pages.

use super::crc::crc32;
use super::error::GeometryError;

/// `PXFL` as a little-endian word.
const PAGE_MAGIC: u32 = u32::from_le_bytes(*b"PXFL");
/// The page header's length before padding.
pub(crate) const PAGE_HEADER: usize = 16;
/// The record header's length before padding.
pub(crate) const RECORD_HEADER: usize = 20;
/// The largest unit (read or write alignment) supported: the scratch
/// buffers hold whole units.
pub(crate) const MAX_UNIT: usize = 64;
/// The largest payload length the header can carry.
const MAX_LEN: usize = (1 << 24) - 1;

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A batch appended after the base.
    Batch,
    /// The first record of the live log: a checkpoint, or the first batch
    /// of a new log. Nothing before it is needed.
    Base,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Batch => 0xB5,
            Kind::Base => 0xC3,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0xB5 => Some(Kind::Batch),
            0xC3 => Some(Kind::Base),
            _ => None,
        }
    }
}

/// A record header that passed its own checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) kind: Kind,
    pub(crate) len: usize,
    pub(crate) seq: u64,
    pub(crate) payload_crc: u32,
}

impl RecordHeader {
    pub(crate) fn new(kind: Kind, seq: u64, payload: &[u8]) -> Self {
        RecordHeader {
            kind,
            len: payload.len(),
            seq,
            payload_crc: crc32(payload),
        }
    }

    pub(crate) fn encode(&self) -> [u8; RECORD_HEADER] {
        let mut h = [0u8; RECORD_HEADER];
        let len = (self.len as u32).to_le_bytes();
        h[0] = self.kind.byte();
        h[1..4].copy_from_slice(&len[..3]);
        h[4..12].copy_from_slice(&self.seq.to_le_bytes());
        h[12..16].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32(&h[..16]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub(crate) fn decode(h: &[u8; RECORD_HEADER]) -> Option<Self> {
        let [kind, l0, l1, l2, s0, s1, s2, s3, s4, s5, s6, s7, p0, p1, p2, p3, c0, c1, c2, c3] = *h;
        if crc32(h.get(..16)?) != u32::from_le_bytes([c0, c1, c2, c3]) {
            return None;
        }
        Some(RecordHeader {
            kind: Kind::from_byte(kind)?,
            len: u32::from_le_bytes([l0, l1, l2, 0]) as usize,
            seq: u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
            payload_crc: u32::from_le_bytes([p0, p1, p2, p3]),
        })
    }
}

pub(crate) fn encode_page_header(epoch: u64) -> [u8; PAGE_HEADER] {
    let mut h = [0u8; PAGE_HEADER];
    h[..4].copy_from_slice(&PAGE_MAGIC.to_le_bytes());
    h[4..12].copy_from_slice(&epoch.to_le_bytes());
    let crc = crc32(&h[..12]);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The page's epoch, if its header is intact.
pub(crate) fn decode_page_header(h: &[u8; PAGE_HEADER]) -> Option<u64> {
    let [m0, m1, m2, m3, e0, e1, e2, e3, e4, e5, e6, e7, c0, c1, c2, c3] = *h;
    let intact = u32::from_le_bytes([m0, m1, m2, m3]) == PAGE_MAGIC
        && crc32(h.get(..12)?) == u32::from_le_bytes([c0, c1, c2, c3]);
    intact.then_some(u64::from_le_bytes([e0, e1, e2, e3, e4, e5, e6, e7]))
}

/// The device's layout, checked once at mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Erase pages.
    pub(crate) pages: u32,
    /// Bytes per page (`ERASE_SIZE`).
    pub(crate) page_size: u32,
    /// The alignment of every read and write: the larger of `READ_SIZE`
    /// and `WRITE_SIZE`.
    pub(crate) unit: u32,
}

impl Geometry {
    pub(crate) fn new(
        capacity: usize,
        read_size: usize,
        write_size: usize,
        erase_size: usize,
    ) -> Result<Self, GeometryError> {
        let unit = read_size.max(write_size);
        let small = read_size.min(write_size);
        if small == 0 || unit % small != 0 || unit > MAX_UNIT {
            return Err(GeometryError::Alignment {
                read_size,
                write_size,
            });
        }
        if erase_size == 0 || erase_size % unit != 0 {
            return Err(GeometryError::PageNotAligned { erase_size, unit });
        }
        let min_page = pad_to(PAGE_HEADER, unit) + pad_to(RECORD_HEADER + 1, unit);
        if erase_size < min_page {
            return Err(GeometryError::PageTooSmall {
                erase_size,
                min: min_page,
            });
        }
        let pages = capacity / erase_size;
        if pages < 2 {
            return Err(GeometryError::TooFewPages { pages });
        }
        let (Ok(page_size), Ok(pages32), Ok(_)) = (
            u32::try_from(erase_size),
            u32::try_from(pages),
            u32::try_from(pages * erase_size),
        ) else {
            return Err(GeometryError::TooLarge { capacity });
        };
        Ok(Geometry {
            pages: pages32,
            page_size,
            unit: unit as u32,
        })
    }

    pub(crate) fn pad(&self, len: usize) -> usize {
        pad_to(len, self.unit as usize)
    }

    /// Where records start in a page.
    pub(crate) fn first_record(&self) -> u32 {
        self.pad(PAGE_HEADER) as u32
    }

    /// The bytes a record with `len` payload bytes occupies.
    pub(crate) fn record_size(&self, len: usize) -> usize {
        self.pad(RECORD_HEADER + len)
    }

    /// The largest payload a record can carry.
    pub(crate) fn max_payload(&self) -> usize {
        let room = (self.page_size - self.first_record()) as usize;
        // Round down to whole units, then leave the header.
        (room - room % self.unit as usize - RECORD_HEADER).min(MAX_LEN)
    }

    pub(crate) fn page_start(&self, page: u32) -> u32 {
        page * self.page_size
    }
}

fn pad_to(len: usize, unit: usize) -> usize {
    len.div_ceil(unit) * unit
}
