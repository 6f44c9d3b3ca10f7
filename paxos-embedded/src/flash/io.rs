//! Aligned reads and writes through small stack buffers, and the reading
//! of one record. A read error other than a misuse (misaligned, out of
//! bounds) is a torn word: on ECC flash an interrupted program or erase
//! reads back as an error.

use super::crc::Crc32;
use super::format::{encode_page_header, Geometry, Kind, RecordHeader, MAX_UNIT, PAGE_HEADER, RECORD_HEADER};
use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};

/// Scratch space for reads and small records: two units at the least.
const STAGE: usize = 2 * MAX_UNIT;

/// What lies at a record position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// An intact record.
    Record(RecordHeader),
    /// The header area reads all 0xFF: nothing was written here (or a
    /// tear left it looking so).
    Erased,
    /// Anything else. Scanning for later records may resume at `resume`:
    /// past the record if its header is intact, else one unit on.
    Damaged { resume: u32 },
    /// No room for a header before the end of the page.
    End,
}

/// Whether a read error is misuse (fatal) rather than a torn word.
fn fatal<E: NorFlashError>(e: &E) -> bool {
    matches!(e.kind(), NorFlashErrorKind::NotAligned | NorFlashErrorKind::OutOfBounds)
}

/// Copies `src` into `dst` from `at`, as far as `dst` reaches.
pub(crate) fn copy_into(dst: &mut [u8], at: usize, src: &[u8]) {
    for (d, s) in dst.iter_mut().skip(at).zip(src) {
        *d = *s;
    }
}

/// Reads `[from, from + len)` (aligned) in chunks, handing each to `f`
/// with its offset. `Ok(false)` if a read failed as torn.
pub(crate) fn for_chunks<F: NorFlash>(
    flash: &mut F,
    geo: &Geometry,
    from: u32,
    len: u32,
    mut f: impl FnMut(u32, &[u8]),
) -> Result<bool, F::Error> {
    let unit = geo.unit as usize;
    let chunk = STAGE - STAGE % unit;
    let mut buf = [0u8; STAGE];
    let mut at = from;
    let end = from.saturating_add(len);
    while at < end {
        let n = ((end - at) as usize).min(chunk);
        let Some(part) = buf.get_mut(..n) else { return Ok(false) };
        match flash.read(at, part) {
            Ok(()) => f(at, part),
            Err(e) if fatal(&e) => return Err(e),
            Err(_) => return Ok(false),
        }
        at += n as u32;
    }
    Ok(true)
}

/// Whether `[from, to)` reads all 0xFF (a torn read is not erased).
pub(crate) fn is_erased<F: NorFlash>(flash: &mut F, geo: &Geometry, from: u32, to: u32) -> Result<bool, F::Error> {
    let mut erased = true;
    let whole = for_chunks(flash, geo, from, to.saturating_sub(from), |_, bytes| {
        erased &= bytes.iter().all(|&b| b == 0xFF);
    })?;
    Ok(whole && erased)
}

/// Reads `N` header bytes at `at` (aligned); `None` if torn.
fn read_header<F: NorFlash, const N: usize>(
    flash: &mut F,
    geo: &Geometry,
    at: u32,
) -> Result<Option<[u8; N]>, F::Error> {
    let mut out = [0u8; N];
    let whole = for_chunks(flash, geo, at, geo.pad(N) as u32, |pos, bytes| {
        copy_into(&mut out, (pos - at) as usize, bytes);
    })?;
    Ok(whole.then_some(out))
}

/// The epoch of `page`, if its header is intact.
pub(crate) fn page_epoch<F: NorFlash>(flash: &mut F, geo: &Geometry, page: u32) -> Result<Option<u64>, F::Error> {
    let header = read_header::<F, PAGE_HEADER>(flash, geo, geo.page_start(page))?;
    Ok(header.and_then(|h| super::format::decode_page_header(&h)))
}

/// Reads the record at `at`, which must end by `page_end`, and checks
/// both checksums.
pub(crate) fn read_record<F: NorFlash>(
    flash: &mut F,
    geo: &Geometry,
    at: u32,
    page_end: u32,
) -> Result<Slot, F::Error> {
    let unit = geo.unit;
    if at + geo.pad(RECORD_HEADER) as u32 > page_end {
        return Ok(Slot::End);
    }
    let next = Slot::Damaged { resume: at + unit };
    let Some(raw) = read_header::<F, RECORD_HEADER>(flash, geo, at)? else {
        return Ok(next);
    };
    if raw.iter().all(|&b| b == 0xFF) {
        return Ok(Slot::Erased);
    }
    let Some(header) = RecordHeader::decode(&raw) else {
        return Ok(next);
    };
    let size = geo.record_size(header.len) as u32;
    if size > page_end - at {
        return Ok(next);
    }
    let mut crc = Crc32::new();
    let payload = at + RECORD_HEADER as u32..at + (RECORD_HEADER + header.len) as u32;
    let whole = for_chunks(flash, geo, at, size, |pos, bytes| {
        let (lo, hi) = (payload.start.max(pos), payload.end.min(pos + bytes.len() as u32));
        if lo < hi {
            crc.update(bytes.get((lo - pos) as usize..(hi - pos) as usize).unwrap_or_default());
        }
    })?;
    if whole && crc.finish() == header.payload_crc {
        Ok(Slot::Record(header))
    } else {
        Ok(Slot::Damaged { resume: at + size })
    }
}

/// Reads the payload of the record at `at` into `out` (which must hold
/// it); `Ok(false)` if torn or its checksum no longer matches.
pub(crate) fn read_payload<F: NorFlash>(
    flash: &mut F,
    geo: &Geometry,
    at: u32,
    header: &RecordHeader,
    out: &mut [u8],
) -> Result<bool, F::Error> {
    let start = at + RECORD_HEADER as u32;
    let end = start + header.len as u32;
    let mut crc = Crc32::new();
    let whole = for_chunks(flash, geo, at, geo.record_size(header.len) as u32, |pos, bytes| {
        let (lo, hi) = (start.max(pos), end.min(pos + bytes.len() as u32));
        if lo < hi {
            let part = bytes.get((lo - pos) as usize..(hi - pos) as usize).unwrap_or_default();
            crc.update(part);
            copy_into(out, (lo - start) as usize, part);
        }
    })?;
    Ok(whole && crc.finish() == header.payload_crc)
}

pub(crate) fn write_page_header<F: NorFlash>(
    flash: &mut F,
    geo: &Geometry,
    page: u32,
    epoch: u64,
) -> Result<(), F::Error> {
    let mut stage = [0xFFu8; STAGE];
    copy_into(&mut stage, 0, &encode_page_header(epoch));
    flash.write(geo.page_start(page), stage.get(..geo.pad(PAGE_HEADER)).unwrap_or_default())
}

/// Writes one record at `at` with as few writes as the alignment allows
/// without a buffer for the whole record: one for a record of up to
/// `STAGE` bytes, else header and first bytes, the aligned middle straight
/// from `payload`, and the padded tail.
pub(crate) fn write_record<F: NorFlash>(
    flash: &mut F,
    geo: &Geometry,
    at: u32,
    kind: Kind,
    seq: u64,
    payload: &[u8],
) -> Result<(), F::Error> {
    let header = RecordHeader::new(kind, seq, payload).encode();
    let total = geo.record_size(payload.len());
    let mut stage = [0xFFu8; STAGE];
    copy_into(&mut stage, 0, &header);
    if total <= STAGE {
        copy_into(&mut stage, RECORD_HEADER, payload);
        return flash.write(at, stage.get(..total).unwrap_or_default());
    }
    let first = geo.pad(RECORD_HEADER);
    let (head, rest) = payload.split_at_checked(first - RECORD_HEADER).unwrap_or((payload, &[]));
    copy_into(&mut stage, RECORD_HEADER, head);
    flash.write(at, stage.get(..first).unwrap_or_default())?;
    let unit = geo.unit as usize;
    let (middle, tail) = rest.split_at_checked(rest.len() - rest.len() % unit).unwrap_or((rest, &[]));
    let mut at = at + first as u32;
    if !middle.is_empty() {
        flash.write(at, middle)?;
        at += middle.len() as u32;
    }
    if !tail.is_empty() {
        let mut last = [0xFFu8; MAX_UNIT];
        copy_into(&mut last, 0, tail);
        flash.write(at, last.get(..unit).unwrap_or_default())?;
    }
    Ok(())
}
