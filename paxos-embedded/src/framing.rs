//! Messages over a byte stream such as a UART.
//!
//! A frame is the payload followed by its CRC-32 (little-endian), COBS
//! encoded so that it holds no zero byte, then one `0x00` delimiter:
//!
//! ```text
//! COBS(payload ‖ crc32(payload)) 0x00
//! ```
//!
//! COBS is written here rather than taken from a crate: it is thirty lines,
//! and decoding it one byte at a time into a fixed buffer, with typed drop
//! reasons, is the part a general crate does not give. The CRC is there
//! because COBS alone cannot see a lost or changed byte that happens to
//! leave the block structure valid; with it, a damaged frame is dropped and
//! counted, never handed on.
//!
//! The [`Decoder`] resynchronises at every delimiter: garbage, a dropped
//! byte or an over-long frame costs the frame it is in (and, for garbage
//! without a delimiter, the next one), never the stream. A sender may send
//! a lone `0x00` at any time (at boot, say) to end whatever garbage the
//! receiver holds: an empty frame is ignored.

/// Bytes of checksum at the end of every frame.
pub const CRC_LEN: usize = 4;

/// The delimiter that ends every frame.
pub const DELIMITER: u8 = 0x00;

/// The most bytes [`encode`] writes for a payload of `payload_len` bytes,
/// delimiter included.
pub const fn max_encoded_len(payload_len: usize) -> usize {
    let body = payload_len + CRC_LEN;
    // One code byte per started run of 254 bytes, plus the delimiter.
    body + body / 254 + 1 + 1
}

/// The [`Decoder`] capacity that accepts payloads of up to `payload_len`
/// bytes: `Decoder<{ decoder_capacity(MAX) }>`.
pub const fn decoder_capacity(payload_len: usize) -> usize {
    payload_len + CRC_LEN
}

/// The output buffer cannot hold the encoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall {
    /// The bytes the frame needs.
    pub required: usize,
}

impl core::fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the frame needs a buffer of {} bytes", self.required)
    }
}

impl core::error::Error for BufferTooSmall {}

/// Encodes `payload` as one frame, delimiter included, at the start of
/// `out`; returns the frame's length. `out` of [`max_encoded_len`] bytes
/// always suffices.
pub fn encode(payload: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    encode_parts(&[payload], out)
}

/// [`encode`]s the concatenation of `parts` as one frame, without copying
/// them together first: a routing header and a body written elsewhere,
/// say. `out` of [`max_encoded_len`] of their total length suffices.
pub fn encode_parts(parts: &[&[u8]], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut crc = Crc32::new();
    parts.iter().for_each(|part| crc.update(part));
    let crc = crc.finish().to_le_bytes();
    let mut w = CobsWriter {
        out,
        code_at: 0,
        len: 1,
    };
    let written = parts
        .iter()
        .flat_map(|part| part.iter())
        .chain(crc.iter())
        .try_for_each(|&byte| w.push(byte))
        .and_then(|()| w.finish());
    written.ok_or(BufferTooSmall {
        required: max_encoded_len(parts.iter().map(|part| part.len()).sum()),
    })
}

/// COBS encoding into a slice: `code_at` is the reserved place of the
/// current block's code byte, `len` the bytes written so far. `None` means
/// the slice is full.
struct CobsWriter<'a> {
    out: &'a mut [u8],
    code_at: usize,
    len: usize,
}

impl CobsWriter<'_> {
    fn put(&mut self, at: usize, byte: u8) -> Option<()> {
        *self.out.get_mut(at)? = byte;
        Some(())
    }

    /// Closes the current block (its code is the distance to here) and
    /// reserves the next code byte.
    fn close_block(&mut self) -> Option<()> {
        let code = (self.len - self.code_at) as u8;
        self.put(self.code_at, code)?;
        self.code_at = self.len;
        self.len += 1;
        Some(())
    }

    fn push(&mut self, byte: u8) -> Option<()> {
        if byte == 0 {
            return self.close_block();
        }
        self.put(self.len, byte)?;
        self.len += 1;
        if self.len - self.code_at == 0xFF {
            self.close_block()?;
        }
        Some(())
    }

    fn finish(&mut self) -> Option<usize> {
        let code = (self.len - self.code_at) as u8;
        self.put(self.code_at, code)?;
        self.put(self.len, DELIMITER)?;
        Some(self.len + 1)
    }
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(bytes);
    crc.finish()
}

/// CRC-32 computed over pieces, equal to [`crc32`] of their concatenation.
/// Bit by bit, no table: a few dozen bytes of code.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A checksum over nothing yet.
    pub const fn new() -> Self {
        Crc32(!0)
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u32::from(byte);
            for _ in 0..8 {
                let mask = (self.0 & 1).wrapping_neg();
                self.0 = (self.0 >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
    }

    /// The checksum.
    pub const fn finish(self) -> u32 {
        !self.0
    }
}

/// Why a frame was dropped. Each is also counted in [`DecoderStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DropReason {
    /// The delimiter came inside a COBS block: bytes were lost.
    Truncated,
    /// The frame did not fit the decoder's buffer.
    TooLong,
    /// The frame is shorter than its checksum.
    TooShort,
    /// The checksum does not match: bytes were lost, changed or invented.
    BadChecksum,
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DropReason::Truncated => "frame truncated",
            DropReason::TooLong => "frame too long",
            DropReason::TooShort => "frame shorter than its checksum",
            DropReason::BadChecksum => "checksum mismatch",
        })
    }
}

/// What the decoder made of the input so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed<'a> {
    /// No frame ended yet.
    Pending,
    /// A whole, verified frame's payload; valid until the next feed.
    Frame(&'a [u8]),
    /// A frame ended and was dropped.
    Dropped(DropReason),
}

/// Frames decoded and dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecoderStats {
    /// Frames handed on.
    pub frames: u64,
    /// Dropped: the delimiter came inside a block.
    pub truncated: u64,
    /// Dropped: longer than the buffer.
    pub too_long: u64,
    /// Dropped: shorter than the checksum.
    pub too_short: u64,
    /// Dropped: checksum mismatch.
    pub bad_checksum: u64,
}

impl DecoderStats {
    /// Every frame dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.truncated + self.too_long + self.too_short + self.bad_checksum
    }

    fn count(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::Truncated => &mut self.truncated,
            DropReason::TooLong => &mut self.too_long,
            DropReason::TooShort => &mut self.too_short,
            DropReason::BadChecksum => &mut self.bad_checksum,
        };
        *counter += 1;
    }
}

/// An incremental frame decoder with a fixed buffer of `N` bytes, which
/// holds a payload of up to `N - CRC_LEN` bytes (see [`decoder_capacity`]).
/// Fed byte by byte ([`Decoder::feed`]) or by slices
/// ([`Decoder::feed_slice`]); it decodes COBS as the bytes arrive, so the
/// buffer holds the payload, not the encoded frame.
#[derive(Clone, Debug)]
pub struct Decoder<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// Data bytes left in the current block; 0 means a code byte is next.
    remaining: u8,
    /// Whether the current block ends with an implied zero, written when
    /// the next block starts (the last block's is not part of the data).
    zero_pending: bool,
    /// Bytes have arrived since the last delimiter.
    started: bool,
    /// The frame outgrew the buffer: skip to the delimiter.
    overflowed: bool,
    stats: DecoderStats,
}

impl<const N: usize> Default for Decoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Decoder<N> {
    /// An empty decoder.
    pub const fn new() -> Self {
        Decoder {
            buf: [0; N],
            len: 0,
            remaining: 0,
            zero_pending: false,
            started: false,
            overflowed: false,
            stats: DecoderStats {
                frames: 0,
                truncated: 0,
                too_long: 0,
                too_short: 0,
                bad_checksum: 0,
            },
        }
    }

    /// What was decoded and dropped so far.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Forgets any partial frame (after a link reset, say).
    pub fn reset(&mut self) {
        self.len = 0;
        self.remaining = 0;
        self.zero_pending = false;
        self.started = false;
        self.overflowed = false;
    }

    /// Takes one byte.
    pub fn feed(&mut self, byte: u8) -> Feed<'_> {
        if byte == DELIMITER {
            return self.end_frame();
        }
        self.started = true;
        if self.overflowed {
            return Feed::Pending;
        }
        if self.remaining == 0 {
            if self.zero_pending {
                self.store(0);
            }
            self.remaining = byte - 1;
            self.zero_pending = byte != 0xFF;
        } else {
            self.remaining -= 1;
            self.store(byte);
        }
        Feed::Pending
    }

    /// Takes bytes from `bytes` until a frame ends or they run out; returns
    /// how many it took and the outcome. Call again with the rest.
    pub fn feed_slice(&mut self, bytes: &[u8]) -> (usize, Feed<'_>) {
        // Find the first delimiter; everything before it only fills the
        // buffer, so the borrow of the outcome starts at the last byte.
        let end = bytes.iter().position(|&b| b == DELIMITER);
        let body = match end {
            Some(at) => bytes.get(..at).unwrap_or_default(),
            None => bytes,
        };
        for &byte in body {
            let _ = self.feed(byte);
        }
        match end {
            Some(at) => (at + 1, self.end_frame()),
            None => (bytes.len(), Feed::Pending),
        }
    }

    fn store(&mut self, byte: u8) {
        match self.buf.get_mut(self.len) {
            Some(cell) => {
                *cell = byte;
                self.len += 1;
            }
            None => self.overflowed = true,
        }
    }

    fn end_frame(&mut self) -> Feed<'_> {
        let (started, overflowed, remaining, len) = (self.started, self.overflowed, self.remaining, self.len);
        self.reset();
        if !started {
            return Feed::Pending;
        }
        let verdict = if overflowed {
            Err(DropReason::TooLong)
        } else if remaining != 0 {
            Err(DropReason::Truncated)
        } else if len < CRC_LEN {
            Err(DropReason::TooShort)
        } else {
            let (payload, crc) = self.buf.get(..len).unwrap_or_default().split_at(len - CRC_LEN);
            let mut expected = [0u8; CRC_LEN];
            expected.copy_from_slice(crc);
            if crc32(payload) == u32::from_le_bytes(expected) {
                Ok(payload.len())
            } else {
                Err(DropReason::BadChecksum)
            }
        };
        match verdict {
            Ok(payload_len) => {
                self.stats.frames += 1;
                Feed::Frame(self.buf.get(..payload_len).unwrap_or_default())
            }
            Err(reason) => {
                self.stats.count(reason);
                Feed::Dropped(reason)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> ([u8; 600], usize) {
        let mut out = [0u8; 600];
        let n = encode(payload, &mut out).unwrap();
        (out, n)
    }

    fn decode_all<const N: usize>(d: &mut Decoder<N>, bytes: &[u8]) -> ([[u8; 64]; 4], [usize; 4], usize) {
        let mut frames = [[0u8; 64]; 4];
        let mut lens = [0usize; 4];
        let mut count = 0;
        for &b in bytes {
            if let Feed::Frame(p) = d.feed(b) {
                frames[count][..p.len()].copy_from_slice(p);
                lens[count] = p.len();
                count += 1;
            }
        }
        (frames, lens, count)
    }

    #[test]
    fn parts_encode_as_their_concatenation() {
        let payload: [u8; 300] = core::array::from_fn(|i| (i % 7) as u8);
        for cut in [0, 1, 3, 253, 254, 255, 300] {
            let (head, tail) = payload.split_at(cut);
            let mut out = [0u8; 600];
            let n = encode_parts(&[head, &[], tail], &mut out).unwrap();
            assert_eq!(out[..n], frame(&payload).0[..n], "cut at {cut}");
            assert_eq!(n, frame(&payload).1);
        }
        let mut short = [0u8; 8];
        assert_eq!(
            encode_parts(&[b"abc", b"defgh"], &mut short),
            Err(BufferTooSmall {
                required: max_encoded_len(8)
            })
        );
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn encoded_frame_has_one_zero_at_the_end() {
        let (out, n) = frame(&[0, 1, 0, 0, 2]);
        assert_eq!(out[n - 1], 0);
        assert!(!out[..n - 1].contains(&0));
        assert!(n <= max_encoded_len(5));
    }

    #[test]
    fn known_cobs_bytes() {
        // The CRC of [0x11, 0x00, 0x22] is part of the last block.
        let (out, n) = frame(&[0x11, 0x00, 0x22]);
        let crc = crc32(&[0x11, 0x00, 0x22]).to_le_bytes();
        assert_eq!(
            &out[..3],
            &[0x02, 0x11, 0x02 + crc.iter().take_while(|&&b| b != 0).count() as u8]
        );
        assert_eq!(out[3], 0x22);
        assert_eq!(out[n - 1], 0);
    }

    #[test]
    fn long_runs_without_zeros_round_trip() {
        for len in [253, 254, 255, 256, 508, 509, 510] {
            let payload: [u8; 520] = core::array::from_fn(|i| (i % 255 + 1) as u8);
            let (out, n) = frame(&payload[..len]);
            assert!(n <= max_encoded_len(len), "len {len}: {n}");
            let mut d = Decoder::<{ decoder_capacity(520) }>::new();
            let (consumed, feed) = d.feed_slice(&out[..n]);
            assert_eq!(consumed, n);
            assert_eq!(feed, Feed::Frame(&payload[..len]));
        }
    }

    #[test]
    fn round_trip_byte_by_byte() {
        let mut d = Decoder::<{ decoder_capacity(64) }>::new();
        let (a, na) = frame(b"hello");
        let (b, nb) = frame(&[]);
        let mut stream = [0u8; 64];
        stream[..na].copy_from_slice(&a[..na]);
        stream[na..na + nb].copy_from_slice(&b[..nb]);
        let (frames, lens, count) = decode_all(&mut d, &stream[..na + nb]);
        assert_eq!(count, 2);
        assert_eq!(&frames[0][..lens[0]], b"hello");
        assert_eq!(lens[1], 0);
        assert_eq!(d.stats().frames, 2);
    }

    #[test]
    fn lone_delimiters_are_ignored() {
        let mut d = Decoder::<16>::new();
        for _ in 0..5 {
            assert_eq!(d.feed(0), Feed::Pending);
        }
        assert_eq!(d.stats(), DecoderStats::default());
    }

    #[test]
    fn garbage_then_delimiter_is_dropped_and_the_next_frame_arrives() {
        let mut d = Decoder::<{ decoder_capacity(16) }>::new();
        for b in [7u8, 200, 3, 3, 3, 3, 3, 3] {
            assert_eq!(d.feed(b), Feed::Pending);
        }
        assert!(matches!(d.feed(0), Feed::Dropped(_)));
        let (out, n) = frame(b"ok");
        let (_, feed) = d.feed_slice(&out[..n]);
        assert_eq!(feed, Feed::Frame(b"ok"));
        assert_eq!(d.stats().dropped(), 1);
    }

    #[test]
    fn dropped_byte_is_detected() {
        let (out, n) = frame(b"paxos");
        for skip in 0..n - 1 {
            let mut d = Decoder::<{ decoder_capacity(16) }>::new();
            let mut outcome = Feed::Pending;
            for (i, &b) in out[..n].iter().enumerate() {
                if i != skip {
                    outcome = d.feed(b);
                }
            }
            assert!(matches!(outcome, Feed::Dropped(_)), "skip {skip}: {outcome:?}");
        }
    }

    #[test]
    fn over_long_frame_is_dropped_and_counted() {
        let mut d = Decoder::<{ decoder_capacity(4) }>::new();
        let (out, n) = frame(b"too long for it");
        let (_, feed) = d.feed_slice(&out[..n]);
        assert_eq!(feed, Feed::Dropped(DropReason::TooLong));
        let (out, n) = frame(b"fits");
        let (_, feed) = d.feed_slice(&out[..n]);
        assert_eq!(feed, Feed::Frame(b"fits"));
        assert_eq!(d.stats().too_long, 1);
    }

    #[test]
    fn short_frame_is_dropped() {
        let mut d = Decoder::<16>::new();
        let (_, feed) = d.feed_slice(&[0x02, 0x05, 0x00]);
        assert_eq!(feed, Feed::Dropped(DropReason::TooShort));
    }

    #[test]
    fn small_output_buffer_is_an_error() {
        let mut out = [0u8; 6];
        assert!(encode(b"abc", &mut out).is_err());
        let mut out = [0u8; 9];
        assert_eq!(encode(b"abc", &mut out), Ok(9));
    }
}
