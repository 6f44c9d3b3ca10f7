//! The cluster key: 32 secret bytes shared by every node of a cluster.

use core::fmt;
use std::io::Read;
use std::path::Path;

use super::error::KeyError;

/// The length of a cluster key in bytes.
pub const KEY_LEN: usize = 32;

/// The longest key file accepted: 64 hex digits and a `\r\n`.
const MAX_FILE_LEN: usize = 2 * KEY_LEN + 2;

/// The secret that keys every datagram's MAC.
///
/// Every node of a cluster needs the same key; a datagram sealed under
/// another key is dropped as [`DropReason::BadTag`](super::DropReason::BadTag).
/// `Debug` never prints the bytes.
#[derive(Clone)]
pub struct ClusterKey([u8; KEY_LEN]);

impl ClusterKey {
    /// A key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        ClusterKey(bytes)
    }

    /// The well-known demo key.
    ///
    /// # INSECURE: FOR DEMOS AND TESTS ONLY
    ///
    /// These bytes are published in this crate's source, so this key
    /// authenticates **nothing**: anyone who can send a datagram to a node
    /// using it can forge messages from any peer and break the cluster's
    /// agreement. Never use it on a network you do not fully control; make a
    /// real key with, for example, `head -c 32 /dev/urandom > cluster.key`
    /// and load it with [`ClusterKey::from_file`].
    pub const fn insecure_default() -> Self {
        ClusterKey(*b"paxos insecure demo key: PUBLIC!")
    }

    /// Reads a key file: exactly 32 raw bytes, or 64 hex digits (either
    /// case) optionally followed by one `\n` or `\r\n`.
    ///
    /// Reads at most a few bytes more than the longest valid file, so
    /// pointing it at a large file is cheap.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] if the file cannot be read, and the errors of
    /// [`ClusterKey::parse`] for its contents.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let file = std::fs::File::open(path).map_err(|e| KeyError::Io(e.kind()))?;
        let mut contents = Vec::with_capacity(MAX_FILE_LEN + 1);
        file.take(MAX_FILE_LEN as u64 + 1)
            .read_to_end(&mut contents)
            .map_err(|e| KeyError::Io(e.kind()))?;
        Self::parse(&contents)
    }

    /// Parses the contents of a key file; see [`ClusterKey::from_file`].
    ///
    /// Exactly 32 bytes are always taken as the raw key, even if they look
    /// like text. Anything else must be 64 hex digits and at most one line
    /// ending.
    ///
    /// # Errors
    ///
    /// [`KeyError::WrongLength`] for any other length, [`KeyError::InvalidHex`]
    /// for 64 characters that are not all hex digits.
    pub fn parse(contents: &[u8]) -> Result<Self, KeyError> {
        if let Ok(raw) = <[u8; KEY_LEN]>::try_from(contents) {
            return Ok(ClusterKey(raw));
        }
        let hex = contents
            .strip_suffix(b"\r\n")
            .or_else(|| contents.strip_suffix(b"\n"))
            .unwrap_or(contents);
        if hex.len() != 2 * KEY_LEN {
            return Err(KeyError::WrongLength { len: contents.len() });
        }
        let mut key = [0u8; KEY_LEN];
        for (i, (byte, pair)) in key.iter_mut().zip(hex.chunks_exact(2)).enumerate() {
            let digit = |offset: usize| hex_digit(pair[offset]).ok_or(KeyError::InvalidHex { offset: 2 * i + offset });
            *byte = (digit(0)? << 4) | digit(1)?;
        }
        Ok(ClusterKey(key))
    }

    /// The key's bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";

    fn counting() -> [u8; 32] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn hex_with_or_without_a_line_ending() {
        for contents in [HEX.to_string(), format!("{HEX}\n"), format!("{HEX}\r\n")] {
            assert_eq!(ClusterKey::parse(contents.as_bytes()).unwrap().as_bytes(), &counting());
        }
    }

    #[test]
    fn exactly_32_bytes_are_raw_even_if_printable() {
        let raw = [0xffu8; 32];
        assert_eq!(ClusterKey::parse(&raw).unwrap().as_bytes(), &raw);
        let text = b"0123456789abcdef0123456789abcdef";
        assert_eq!(ClusterKey::parse(text).unwrap().as_bytes(), text);
        let with_newline = [b'\n'; 32];
        assert_eq!(ClusterKey::parse(&with_newline).unwrap().as_bytes(), &with_newline);
    }

    #[test]
    fn other_lengths_are_wrong_length() {
        let hex = HEX.as_bytes();
        for contents in [
            &b""[..],
            &b"\n"[..],
            &[0u8; 31][..],
            &[0u8; 33][..],
            &hex[..63],
            &hex[..62],
            &format!("{HEX}\n\n").into_bytes()[..],
            &format!("{HEX} ").into_bytes()[..],
            &format!(" {HEX}").into_bytes()[..],
            &format!("{HEX}0").into_bytes()[..],
            &format!("{HEX}{HEX}").into_bytes()[..],
        ] {
            assert_eq!(
                ClusterKey::parse(contents).unwrap_err(),
                KeyError::WrongLength { len: contents.len() },
                "{contents:?}"
            );
        }
    }

    #[test]
    fn non_hex_characters_are_located() {
        let mut bad = HEX.as_bytes().to_vec();
        bad[17] = b'g';
        assert_eq!(
            ClusterKey::parse(&bad).unwrap_err(),
            KeyError::InvalidHex { offset: 17 }
        );
        bad[3] = b' ';
        assert_eq!(ClusterKey::parse(&bad).unwrap_err(), KeyError::InvalidHex { offset: 3 });
        let mut sign = HEX.as_bytes().to_vec();
        sign[0] = b'+';
        assert_eq!(
            ClusterKey::parse(&sign).unwrap_err(),
            KeyError::InvalidHex { offset: 0 }
        );
        let mut utf8 = HEX.as_bytes().to_vec();
        utf8[62] = 0xc3;
        utf8[63] = 0xa9;
        assert_eq!(
            ClusterKey::parse(&utf8).unwrap_err(),
            KeyError::InvalidHex { offset: 62 }
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", ClusterKey::from_bytes(*b"super secret super secret bytes!"));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn insecure_default_is_stable() {
        // Nodes of different builds must agree on the demo key.
        assert_eq!(
            ClusterKey::insecure_default().as_bytes(),
            b"paxos insecure demo key: PUBLIC!"
        );
    }
}
