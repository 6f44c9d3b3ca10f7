//! The stream format as pure pieces: the handshake's messages, the record
//! sealer and the record decoder, with thin wrappers that run the handshake
//! over any `Read + Write`. Nothing here touches a socket, so it is tested
//! and fuzzed on bytes.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};

use paxos_core::NodeId;

use crate::transport::auth::{mac, verify, TAG_LEN};
use crate::transport::key::{ClusterKey, KEY_LEN};

/// The first bytes of every stream: the format's magic and version
/// (paxos stream, version 1). Bumped on any change to the handshake or
/// the records.
pub const MAGIC: [u8; 4] = *b"PXS1";

/// Bytes of each side's handshake nonce.
pub const NONCE_LEN: usize = 16;

/// Bytes of the connecting node's hello: [`MAGIC`], its id, the id of the
/// node it calls, its nonce.
pub const HELLO_LEN: usize = MAGIC.len() + 2 + NONCE_LEN;

/// Bytes of the accepting node's challenge: its nonce and its proof.
pub const CHALLENGE_LEN: usize = NONCE_LEN + TAG_LEN;

/// Bytes of the connecting node's proof.
pub const PROOF_LEN: usize = TAG_LEN;

/// Bytes of a record's length prefix (a little-endian `u32`).
pub const LENGTH_LEN: usize = 4;

/// Bytes a record adds to its frame: the length prefix and the tag.
pub const RECORD_OVERHEAD: usize = LENGTH_LEN + TAG_LEN;

/// The largest frame the length prefix can describe.
pub const MAX_RECORD_FRAME_LEN: usize = u32::MAX as usize;

/// Domain bytes: the first byte of every MAC input made under the cluster
/// key by the handshake. Datagrams start with `0xA1`, so no tag made for
/// one passes for another.
const ACCEPT: u8 = 0xC1;
const CONNECT: u8 = 0xC2;
const SESSION: u8 = 0xC3;

/// The key of one connection's records, which both ends derive from the
/// cluster key and the handshake (see the [module docs](super)).
///
/// `Debug` never prints the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey([u8; KEY_LEN]);

impl SessionKey {
    /// A session key from its bytes: for tests and fuzzing, since a
    /// handshake derives the real ones.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SessionKey(bytes)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// Why a handshake failed. The connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The stream failed, ended or timed out before the handshake was
    /// complete.
    Io(io::ErrorKind),
    /// The hello does not start with [`MAGIC`]: not this format, or
    /// another version of it.
    BadMagic,
    /// The hello calls another node than this one.
    WrongNode(NodeId),
    /// The hello names a node that is not in this node's peer table.
    UnknownPeer(NodeId),
    /// The other side's proof does not verify: it does not hold the
    /// cluster key, or the handshake was tampered with.
    BadProof,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Io(kind) => write!(f, "handshake cut short: {kind}"),
            HandshakeError::BadMagic => f.write_str("not a paxos stream of this version"),
            HandshakeError::WrongNode(node) => write!(f, "the hello calls node {node}, not this one"),
            HandshakeError::UnknownPeer(node) => write!(f, "node {node} is not a peer"),
            HandshakeError::BadProof => f.write_str("the handshake's proof does not verify"),
        }
    }
}

impl core::error::Error for HandshakeError {}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> Self {
        HandshakeError::Io(e.kind())
    }
}

/// Why a stream of records was refused. The connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// A length prefix above the largest frame allowed; nothing was
    /// allocated for it.
    Oversized {
        /// The length the prefix announced.
        len: usize,
        /// The largest frame allowed.
        max: usize,
    },
    /// A record's tag does not verify: forged, corrupted, replayed from
    /// another connection, or out of order.
    BadTag,
    /// The stream ended in the middle of a record.
    Truncated,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Oversized { len, max } => {
                write!(f, "a record of {len} bytes exceeds the largest frame's {max}")
            }
            RecordError::BadTag => f.write_str("a record's tag does not verify"),
            RecordError::Truncated => f.write_str("the stream ended inside a record"),
        }
    }
}

impl core::error::Error for RecordError {}

/// The connecting node's first message: who it is, whom it calls, and its
/// nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The connecting node.
    pub from: NodeId,
    /// The node it calls.
    pub to: NodeId,
    /// Its fresh nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl Hello {
    /// A hello from `from` to `to` with a fresh nonce.
    pub fn new(from: NodeId, to: NodeId) -> Self {
        Hello {
            from,
            to,
            nonce: fresh_nonce(),
        }
    }

    /// The hello's bytes: `[MAGIC][from u8][to u8][nonce]`.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut bytes = [0; HELLO_LEN];
        let (magic, rest) = bytes.split_at_mut(MAGIC.len());
        magic.copy_from_slice(&MAGIC);
        rest[0] = self.from.0;
        rest[1] = self.to.0;
        rest[2..].copy_from_slice(&self.nonce);
        bytes
    }

    /// Reads a hello's bytes.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::BadMagic`] if they do not start with [`MAGIC`].
    pub fn decode(bytes: &[u8; HELLO_LEN]) -> Result<Self, HandshakeError> {
        let (magic, rest) = bytes.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(HandshakeError::BadMagic);
        }
        let mut nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(&rest[2..]);
        Ok(Hello {
            from: NodeId(rest[0]),
            to: NodeId(rest[1]),
            nonce,
        })
    }

    /// The connecting node's answer to the accepting node's `challenge`:
    /// the proof to send, and the connection's session key.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::BadProof`] if the challenge was not made under
    /// `key` for this hello.
    pub fn answer(
        &self,
        key: &ClusterKey,
        challenge: &[u8; CHALLENGE_LEN],
    ) -> Result<([u8; PROOF_LEN], SessionKey), HandshakeError> {
        let (nonce, proof) = challenge.split_at(NONCE_LEN);
        let transcript = Transcript::new(self, nonce);
        if !verify(key.as_bytes(), &transcript.parts(&ACCEPT), proof) {
            return Err(HandshakeError::BadProof);
        }
        Ok((transcript.mac(key, CONNECT), transcript.session(key)))
    }
}

/// The hello and the accepting node's nonce: everything the proofs and
/// the session key are made over.
struct Transcript {
    hello: [u8; HELLO_LEN],
    nonce: [u8; NONCE_LEN],
}

impl Transcript {
    fn new(hello: &Hello, nonce: &[u8]) -> Self {
        let mut transcript = Transcript {
            hello: hello.encode(),
            nonce: [0; NONCE_LEN],
        };
        transcript.nonce.copy_from_slice(nonce);
        transcript
    }

    fn parts<'a>(&'a self, domain: &'a u8) -> [&'a [u8]; 3] {
        [core::slice::from_ref(domain), &self.hello, &self.nonce]
    }

    fn mac(&self, key: &ClusterKey, domain: u8) -> [u8; TAG_LEN] {
        *mac(key.as_bytes(), &self.parts(&domain)).as_bytes()
    }

    fn session(&self, key: &ClusterKey) -> SessionKey {
        SessionKey(self.mac(key, SESSION))
    }
}

/// The accepting node's side of a handshake, between its challenge and
/// the connecting node's proof.
pub(super) struct Challenge(Transcript);

impl Challenge {
    /// A challenge to `hello` with a fresh nonce.
    pub(super) fn new(hello: &Hello) -> Self {
        Challenge(Transcript::new(hello, &fresh_nonce()))
    }

    /// The challenge's bytes: the nonce and this node's proof.
    pub(super) fn encode(&self, key: &ClusterKey) -> [u8; CHALLENGE_LEN] {
        let mut bytes = [0; CHALLENGE_LEN];
        let (nonce, proof) = bytes.split_at_mut(NONCE_LEN);
        nonce.copy_from_slice(&self.0.nonce);
        proof.copy_from_slice(&self.0.mac(key, ACCEPT));
        bytes
    }

    /// Checks the connecting node's proof; the session key if it holds.
    pub(super) fn check(&self, key: &ClusterKey, proof: &[u8; PROOF_LEN]) -> Result<SessionKey, HandshakeError> {
        if !verify(key.as_bytes(), &self.0.parts(&CONNECT), proof) {
            return Err(HandshakeError::BadProof);
        }
        Ok(self.0.session(key))
    }
}

/// Runs the connecting node's side of the handshake over `stream`: node
/// `me` calls node `peer`. Returns the session key the records are sealed
/// under, once `peer` has proved it holds `key`.
///
/// `stream` should have read and write timeouts: the handshake waits for
/// the other side.
///
/// # Errors
///
/// [`HandshakeError::Io`] if the stream fails or ends, and
/// [`HandshakeError::BadProof`] if the other side does not hold `key` (or
/// rejected this node and closed the connection, which is
/// [`HandshakeError::Io`]).
pub fn connect_handshake<S: Read + Write>(
    stream: &mut S,
    key: &ClusterKey,
    me: NodeId,
    peer: NodeId,
) -> Result<SessionKey, HandshakeError> {
    let hello = Hello::new(me, peer);
    stream.write_all(&hello.encode())?;
    stream.flush()?;
    let mut challenge = [0; CHALLENGE_LEN];
    stream.read_exact(&mut challenge)?;
    let (proof, session) = hello.answer(key, &challenge)?;
    stream.write_all(&proof)?;
    stream.flush()?;
    Ok(session)
}

/// Runs the accepting node's side of the handshake over `stream` for node
/// `me`, taking only a connecting node for which `is_peer` holds. Returns
/// that node, proven to hold `key`, and the session key its records are
/// sealed under.
///
/// A stranger costs one read and no hashing: the hello's magic, callee
/// and caller are checked before anything is computed.
///
/// # Errors
///
/// In the order checked: [`HandshakeError::Io`] if the stream fails or
/// ends, [`HandshakeError::BadMagic`], [`HandshakeError::WrongNode`],
/// [`HandshakeError::UnknownPeer`], [`HandshakeError::BadProof`].
pub fn accept_handshake<S: Read + Write>(
    stream: &mut S,
    key: &ClusterKey,
    me: NodeId,
    is_peer: impl FnOnce(NodeId) -> bool,
) -> Result<(NodeId, SessionKey), HandshakeError> {
    let mut bytes = [0; HELLO_LEN];
    stream.read_exact(&mut bytes)?;
    let hello = Hello::decode(&bytes)?;
    if hello.to != me {
        return Err(HandshakeError::WrongNode(hello.to));
    }
    if hello.from == me || !is_peer(hello.from) {
        return Err(HandshakeError::UnknownPeer(hello.from));
    }
    let challenge = Challenge::new(&hello);
    stream.write_all(&challenge.encode(key))?;
    stream.flush()?;
    let mut proof = [0; PROOF_LEN];
    stream.read_exact(&mut proof)?;
    let session = challenge.check(key, &proof)?;
    Ok((hello.from, session))
}

/// A nonce that no other handshake, in this process or another, uses:
/// 64 bits from the OS's randomness (std's hash seeds), a counter, the
/// time and the process id, hashed. It need not be secret, only never
/// repeated.
fn fresh_nonce() -> [u8; NONCE_LEN] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one(count);
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = blake3::Hasher::new();
    hasher
        .update(&random.to_le_bytes())
        .update(&count.to_le_bytes())
        .update(&time.to_le_bytes())
        .update(&std::process::id().to_le_bytes());
    let mut nonce = [0; NONCE_LEN];
    nonce.copy_from_slice(&hasher.finalize().as_bytes()[..NONCE_LEN]);
    nonce
}

/// The tag of record number `seq`, whose length prefix is `length`.
fn record_tag(key: &SessionKey, seq: u64, length: &[u8; LENGTH_LEN], frame: &[u8]) -> blake3::Hash {
    mac(&key.0, &[&seq.to_le_bytes(), length, frame])
}

/// Seals the records of one connection, numbering them from 0.
#[derive(Debug)]
pub struct RecordSealer {
    key: SessionKey,
    seq: u64,
}

impl RecordSealer {
    /// A sealer for a connection whose handshake gave `key`.
    pub fn new(key: SessionKey) -> Self {
        RecordSealer { key, seq: 0 }
    }

    /// Writes `frame` as the connection's next record:
    /// `[length u32 LE][frame][tag]`, in three writes (wrap `out` in a
    /// `BufWriter` for small frames).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a frame above
    /// [`MAX_RECORD_FRAME_LEN`], writing nothing; otherwise `out`'s errors,
    /// after which the connection is unusable (its peer would see a
    /// truncated record or a gap in the numbering).
    pub fn write_record<W: Write>(&mut self, out: &mut W, frame: &[u8]) -> io::Result<()> {
        let length = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long for a record"))?
            .to_le_bytes();
        let tag = record_tag(&self.key, self.seq, &length, frame);
        self.seq = self.seq.wrapping_add(1);
        out.write_all(&length)?;
        out.write_all(frame)?;
        out.write_all(tag.as_bytes())
    }
}

/// Where the decoder is inside the current record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// `got` bytes of the length prefix read.
    Length { got: usize },
    /// Reading a frame of `len` bytes into `frame`.
    Frame { len: usize },
    /// `got` bytes of the tag read.
    Tag { got: usize },
}

/// Decodes one connection's records from its bytes, in whatever pieces
/// they arrive, checking each record's length before taking its frame and
/// its tag before handing it on.
///
/// Memory is bounded by the frame being read: a frame's buffer grows with
/// the bytes that arrived for it, never with the length the prefix claims,
/// and never beyond the largest frame allowed. After an error the decoder
/// refuses everything: close the connection.
#[derive(Debug)]
pub struct RecordDecoder {
    key: SessionKey,
    max_frame_len: usize,
    seq: u64,
    stage: Stage,
    length: [u8; LENGTH_LEN],
    frame: Vec<u8>,
    tag: [u8; TAG_LEN],
    failed: Option<RecordError>,
}

impl RecordDecoder {
    /// A decoder for a connection whose handshake gave `key`, taking
    /// frames of at most `max_frame_len` bytes.
    pub fn new(key: SessionKey, max_frame_len: usize) -> Self {
        RecordDecoder {
            key,
            max_frame_len,
            seq: 0,
            stage: Stage::Length { got: 0 },
            length: [0; LENGTH_LEN],
            frame: Vec::new(),
            tag: [0; TAG_LEN],
            failed: None,
        }
    }

    /// Takes the next `bytes` of the stream, handing each frame whose
    /// record is complete and verified to `deliver`, in order.
    ///
    /// Never panics, whatever the bytes.
    ///
    /// # Errors
    ///
    /// [`RecordError::Oversized`] or [`RecordError::BadTag`] for the first
    /// bad record (frames before it were delivered), and the same error
    /// again for every later call.
    pub fn push(&mut self, mut bytes: &[u8], mut deliver: impl FnMut(Vec<u8>)) -> Result<(), RecordError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        while !bytes.is_empty() {
            self.stage = match self.stage {
                Stage::Length { got } => {
                    let got = got + fill(&mut self.length[got..], &mut bytes);
                    if got < LENGTH_LEN {
                        Stage::Length { got }
                    } else {
                        let len = usize::try_from(u32::from_le_bytes(self.length)).unwrap_or(usize::MAX);
                        if len > self.max_frame_len {
                            return self.fail(RecordError::Oversized {
                                len,
                                max: self.max_frame_len,
                            });
                        }
                        self.frame = Vec::new();
                        match len {
                            0 => Stage::Tag { got: 0 },
                            len => Stage::Frame { len },
                        }
                    }
                }
                Stage::Frame { len } => {
                    let (now, rest) = bytes.split_at(bytes.len().min(len - self.frame.len()));
                    grow(&mut self.frame, now.len(), len);
                    self.frame.extend_from_slice(now);
                    bytes = rest;
                    if self.frame.len() < len {
                        Stage::Frame { len }
                    } else {
                        Stage::Tag { got: 0 }
                    }
                }
                Stage::Tag { got } => {
                    let got = got + fill(&mut self.tag[got..], &mut bytes);
                    if got < TAG_LEN {
                        Stage::Tag { got }
                    } else {
                        if record_tag(&self.key, self.seq, &self.length, &self.frame) != self.tag {
                            return self.fail(RecordError::BadTag);
                        }
                        self.seq = self.seq.wrapping_add(1);
                        deliver(core::mem::take(&mut self.frame));
                        Stage::Length { got: 0 }
                    }
                }
            };
        }
        Ok(())
    }

    /// Whether the bytes so far end on a record boundary.
    pub fn is_idle(&self) -> bool {
        self.stage == Stage::Length { got: 0 } && self.failed.is_none()
    }

    /// Checks the end of the stream.
    ///
    /// # Errors
    ///
    /// [`RecordError::Truncated`] if it ended inside a record, or the
    /// error that stopped the decoder.
    pub fn finish(&self) -> Result<(), RecordError> {
        match self.failed {
            Some(e) => Err(e),
            None if self.is_idle() => Ok(()),
            None => Err(RecordError::Truncated),
        }
    }

    fn fail(&mut self, e: RecordError) -> Result<(), RecordError> {
        self.failed = Some(e);
        self.frame = Vec::new();
        Err(e)
    }
}

/// Copies as much of `bytes` as fits into `into`, advancing `bytes`;
/// returns how much.
fn fill(into: &mut [u8], bytes: &mut &[u8]) -> usize {
    let n = into.len().min(bytes.len());
    let (now, rest) = bytes.split_at(n);
    into[..n].copy_from_slice(now);
    *bytes = rest;
    n
}

/// Makes room in `frame` for `more` bytes of a frame of `len`: doubling,
/// so large frames cost few copies, but never past `len`.
fn grow(frame: &mut Vec<u8>, more: usize, len: usize) {
    let need = frame.len() + more;
    if need > frame.capacity() {
        let target = need.max(frame.capacity().saturating_mul(2)).min(len);
        frame.reserve_exact(target - frame.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> ClusterKey {
        ClusterKey::from_bytes([3; 32])
    }

    fn session() -> SessionKey {
        SessionKey::from_bytes([5; 32])
    }

    fn sealed(frames: &[&[u8]]) -> Vec<u8> {
        let mut sealer = RecordSealer::new(session());
        let mut out = Vec::new();
        for frame in frames {
            sealer.write_record(&mut out, frame).unwrap();
        }
        out
    }

    fn decode(bytes: &[u8], max: usize) -> (Vec<Vec<u8>>, Result<(), RecordError>) {
        let mut decoder = RecordDecoder::new(session(), max);
        let mut frames = Vec::new();
        let pushed = decoder.push(bytes, |f| frames.push(f));
        (frames, pushed.and_then(|()| decoder.finish()))
    }

    /// Both sides of a handshake, without a stream.
    fn handshake(
        connect_key: &ClusterKey,
        accept_key: &ClusterKey,
    ) -> Result<(SessionKey, SessionKey), HandshakeError> {
        let hello = Hello::decode(&Hello::new(NodeId(1), NodeId(2)).encode())?;
        let challenge = Challenge::new(&hello);
        let (proof, connector) = hello.answer(connect_key, &challenge.encode(accept_key))?;
        Ok((connector, challenge.check(accept_key, &proof)?))
    }

    #[test]
    fn both_sides_derive_one_session_key_and_each_handshake_another() {
        let (a, b) = handshake(&key(), &key()).unwrap();
        assert_eq!(a, b);
        let (c, _) = handshake(&key(), &key()).unwrap();
        assert_ne!(a, c, "fresh nonces give every connection its own key");
    }

    #[test]
    fn each_side_refuses_a_peer_without_the_key() {
        let other = ClusterKey::from_bytes([4; 32]);
        assert_eq!(handshake(&other, &key()), Err(HandshakeError::BadProof));
        assert_eq!(handshake(&key(), &other), Err(HandshakeError::BadProof));
        // The accepting side's proof is not the connecting side's: a
        // challenge reflected back as a proof fails.
        let hello = Hello::new(NodeId(1), NodeId(2));
        let challenge = Challenge::new(&hello);
        let bytes = challenge.encode(&key());
        let reflected: [u8; PROOF_LEN] = bytes[NONCE_LEN..].try_into().unwrap();
        assert_eq!(
            challenge.check(&key(), &reflected).unwrap_err(),
            HandshakeError::BadProof
        );
    }

    #[test]
    fn the_proof_covers_the_hello() {
        let hello = Hello::new(NodeId(1), NodeId(2));
        let challenge = Challenge::new(&hello).encode(&key());
        let forged = Hello {
            from: NodeId(3),
            ..hello
        };
        assert_eq!(forged.answer(&key(), &challenge).unwrap_err(), HandshakeError::BadProof);
    }

    #[test]
    fn hello_layout() {
        let hello = Hello {
            from: NodeId(7),
            to: NodeId(9),
            nonce: [0xAB; NONCE_LEN],
        };
        let bytes = hello.encode();
        assert_eq!(&bytes[..4], b"PXS1");
        assert_eq!(bytes[4..6], [7, 9]);
        assert_eq!(bytes[6..], [0xAB; NONCE_LEN]);
        assert_eq!(Hello::decode(&bytes), Ok(hello));
        let mut other = bytes;
        other[3] = b'2';
        assert_eq!(Hello::decode(&other), Err(HandshakeError::BadMagic));
    }

    #[test]
    fn accept_checks_callee_then_caller() {
        let run = |from: u8, to: u8| {
            let mut stream = io::Cursor::new(Hello::new(NodeId(from), NodeId(to)).encode().to_vec());
            accept_handshake(&mut stream, &key(), NodeId(2), |n| n == NodeId(1)).map(|_| ())
        };
        assert_eq!(run(1, 3), Err(HandshakeError::WrongNode(NodeId(3))));
        assert_eq!(run(4, 2), Err(HandshakeError::UnknownPeer(NodeId(4))));
        assert_eq!(run(2, 2), Err(HandshakeError::UnknownPeer(NodeId(2))));
        // A known peer gets a challenge; the cursor then has no proof.
        assert_eq!(run(1, 2), Err(HandshakeError::Io(io::ErrorKind::UnexpectedEof)));
    }

    #[test]
    fn nonces_do_not_repeat() {
        let nonces: std::collections::HashSet<_> = (0..1000).map(|_| fresh_nonce()).collect();
        assert_eq!(nonces.len(), 1000);
    }

    #[test]
    fn record_layout() {
        let bytes = sealed(&[b"abc"]);
        assert_eq!(bytes.len(), 3 + RECORD_OVERHEAD);
        assert_eq!(bytes[..4], 3u32.to_le_bytes());
        assert_eq!(&bytes[4..7], b"abc");
        let tag = mac(&[5; 32], &[&0u64.to_le_bytes(), &3u32.to_le_bytes(), b"abc"]);
        assert_eq!(bytes[7..], *tag.as_bytes());
    }

    #[test]
    fn records_round_trip_byte_by_byte() {
        let frames: [&[u8]; 4] = [b"", b"x", &[7; 1000], b""];
        let bytes = sealed(&frames);
        let mut decoder = RecordDecoder::new(session(), 1000);
        let mut got = Vec::new();
        for byte in &bytes {
            decoder.push(core::slice::from_ref(byte), |f| got.push(f)).unwrap();
        }
        assert_eq!(got, frames.map(<[u8]>::to_vec));
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn an_oversized_length_is_refused_before_its_frame() {
        let (frames, end) = decode(&u32::MAX.to_le_bytes(), 1 << 20);
        assert!(frames.is_empty());
        assert_eq!(
            end,
            Err(RecordError::Oversized {
                len: u32::MAX as usize,
                max: 1 << 20
            })
        );
        // Exactly the maximum is fine.
        let (frames, end) = decode(&sealed(&[&[1; 16]]), 16);
        assert_eq!((frames.len(), end), (1, Ok(())));
        let (_, end) = decode(&sealed(&[&[1; 17]]), 16);
        assert_eq!(end, Err(RecordError::Oversized { len: 17, max: 16 }));
    }

    #[test]
    fn a_frame_buffer_grows_with_the_bytes_not_the_claim() {
        let mut decoder = RecordDecoder::new(session(), 1 << 30);
        let mut bytes = (1u32 << 30).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 100]);
        decoder.push(&bytes, |_| unreachable!()).unwrap();
        assert!(decoder.frame.capacity() < 1 << 10, "{}", decoder.frame.capacity());
        let mut small = RecordDecoder::new(session(), 100);
        small.push(&sealed(&[&[0; 100]])[..60], |_| {}).unwrap();
        assert!(small.frame.capacity() <= 100);
    }

    #[test]
    fn bad_tags_reordering_and_splicing_are_refused() {
        let bytes = sealed(&[b"one", b"two"]);
        let first = 3 + RECORD_OVERHEAD;

        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let (frames, end) = decode(&flipped, 100);
        assert_eq!((frames, end), (vec![b"one".to_vec()], Err(RecordError::BadTag)));

        // The second record alone (a dropped record) or twice (a replay).
        let (frames, end) = decode(&bytes[first..], 100);
        assert_eq!((frames.len(), end), (0, Err(RecordError::BadTag)));
        let mut twice = bytes.clone();
        twice.extend_from_slice(&bytes[first..]);
        assert_eq!(decode(&twice, 100).1, Err(RecordError::BadTag));

        // Another connection's key.
        let mut decoder = RecordDecoder::new(SessionKey::from_bytes([6; 32]), 100);
        assert_eq!(decoder.push(&bytes, |_| unreachable!()), Err(RecordError::BadTag));
        assert_eq!(
            decoder.push(b"", |_| unreachable!()),
            Err(RecordError::BadTag),
            "sticky"
        );
        assert_eq!(decoder.finish(), Err(RecordError::BadTag));
    }

    #[test]
    fn a_stream_ending_inside_a_record_is_truncated() {
        let bytes = sealed(&[b"frame"]);
        for cut in 1..bytes.len() {
            assert_eq!(
                decode(&bytes[..cut], 100),
                (Vec::new(), Err(RecordError::Truncated)),
                "{cut}"
            );
        }
        assert_eq!(decode(&[], 100), (Vec::new(), Ok(())));
    }

    proptest! {
        #[test]
        fn the_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                    cuts in proptest::collection::vec(any::<usize>(), 0..8),
                                    max in 0usize..512) {
            let mut decoder = RecordDecoder::new(session(), max);
            let mut rest = &bytes[..];
            for cut in cuts {
                let (now, later) = rest.split_at(cut % (rest.len() + 1));
                let _ = decoder.push(now, |f| assert!(f.len() <= max));
                rest = later;
            }
            let _ = decoder.push(rest, |f| assert!(f.len() <= max));
            let _ = decoder.finish();
        }

        #[test]
        fn sealed_records_decode_whatever_the_pieces(frames in proptest::collection::vec(
                                                         proptest::collection::vec(any::<u8>(), 0..300), 0..6),
                                                     cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let bytes = sealed(&frames.iter().map(Vec::as_slice).collect::<Vec<_>>());
            let mut decoder = RecordDecoder::new(session(), 300);
            let mut got = Vec::new();
            let mut rest = &bytes[..];
            for cut in cuts {
                let (now, later) = rest.split_at(cut % (rest.len() + 1));
                decoder.push(now, |f| got.push(f)).unwrap();
                rest = later;
            }
            decoder.push(rest, |f| got.push(f)).unwrap();
            prop_assert_eq!(decoder.finish(), Ok(()));
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn a_corrupted_stream_never_delivers_a_wrong_frame(frames in proptest::collection::vec(
                                                               proptest::collection::vec(any::<u8>(), 0..100), 1..5),
                                                           at in any::<usize>(), flip in 1u8..=255) {
            let mut bytes = sealed(&frames.iter().map(Vec::as_slice).collect::<Vec<_>>());
            let at = at % bytes.len();
            bytes[at] ^= flip;
            let (got, end) = decode(&bytes, 1000);
            prop_assert!(end.is_err());
            prop_assert!(got.len() < frames.len());
            prop_assert_eq!(&got[..], &frames[..got.len()]);
        }
    }
}
