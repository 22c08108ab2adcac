//! HLS AES-128 encryption of on-demand output (RFC 8216bis §5.2, §4.4.4.4 `EXT-X-KEY`).
//!
//! A media segment is encrypted whole with AES-128 in CBC mode with PKCS#7 padding; the
//! IV is the segment number as a 128-bit big-endian integer, written in every
//! `EXT-X-KEY` (`IV=0x...`) so it never depends on the playlist's media sequence.
//!
//! Keys, 16 bytes, come from one configured source:
//! - a master secret: the key of a file is the first 16 bytes of
//!   HMAC-SHA256(secret, `"casterpak hls aes-128\0" + <path under the media root>`), so every
//!   rendition has its own key and nothing has to be stored;
//! - a key file: one key (16 raw bytes, or 32 hex digits) for every file.
//!
//! The key of rendition `i` of a URL is served by the origin next to its playlists
//! (`key_<i>.key`), so the playback token rules of the other files cover it.

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Where keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// Per-file keys derived from this secret.
    Secret(Vec<u8>),
    /// One key for every file.
    Fixed([u8; 16]),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        match self {
            KeySource::Secret(_) => f.write_str("KeySource::Secret(..)"),
            KeySource::Fixed(_) => f.write_str("KeySource::Fixed(..)"),
        }
    }
}

impl KeySource {
    /// Reads a key file: 16 raw bytes, or 32 hex digits (surrounding whitespace ignored).
    ///
    /// Errors: a message naming what the file holds instead.
    pub fn from_key_file(bytes: &[u8]) -> Result<KeySource, String> {
        if bytes.len() == 16 {
            let mut k = [0u8; 16];
            k.copy_from_slice(bytes);
            return Ok(KeySource::Fixed(k));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| {
                format!(
                    "{} bytes: neither 16 raw bytes nor 32 hex digits",
                    bytes.len()
                )
            })?
            .trim();
        let raw = hex::decode(text).map_err(|_| "not 32 hex digits".to_string())?;
        <[u8; 16]>::try_from(raw.as_slice())
            .map(KeySource::Fixed)
            .map_err(|_| format!("{} hex bytes, a key has 16", raw.len()))
    }

    /// The 16-byte key of the file at `rel` (its path under the media root).
    pub fn key_for(&self, rel: &str) -> [u8; 16] {
        match self {
            KeySource::Fixed(k) => *k,
            KeySource::Secret(secret) => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
                mac.update(b"casterpak hls aes-128\0");
                mac.update(rel.as_bytes());
                let out = mac.finalize().into_bytes();
                let mut k = [0u8; 16];
                k.copy_from_slice(&out[..16]);
                k
            }
        }
    }

    /// A short fingerprint of the source (for cache keys; reveals nothing of the key).
    pub fn fingerprint(&self) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"casterpak key fingerprint")
            .expect("HMAC takes any key length");
        match self {
            KeySource::Fixed(k) => mac.update(k),
            KeySource::Secret(s) => mac.update(s),
        }
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

/// The IV of segment `number`: the number as a 128-bit big-endian integer.
pub fn iv_for(number: u32) -> [u8; 16] {
    u128::from(number).to_be_bytes()
}

/// `data` encrypted with AES-128-CBC and PKCS#7 padding (the output is 1 to 16 bytes
/// longer than the input, a multiple of 16).
pub fn encrypt(key: &[u8; 16], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_and_padding() {
        // NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt), first block.
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let iv = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let pt = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        let ct = encrypt(&key.try_into().unwrap(), &iv.try_into().unwrap(), &pt);
        assert_eq!(hex::encode(&ct[..16]), "7649abac8119b246cee98e9b12e9197d");
        assert_eq!(ct.len(), 32, "a full block of PKCS#7 padding");
        assert_eq!(iv_for(3)[15], 3);
    }

    #[test]
    fn key_sources() {
        let s = KeySource::Secret(b"master".to_vec());
        assert_ne!(s.key_for("a.mp4"), s.key_for("b.mp4"));
        assert_eq!(s.key_for("a.mp4"), s.key_for("a.mp4"));
        let f = KeySource::from_key_file(b"00112233445566778899aabbccddeeff\n").unwrap();
        assert_eq!(f.key_for("x")[1], 0x11);
        assert!(KeySource::from_key_file(b"0011").is_err());
        assert!(KeySource::from_key_file(&[7u8; 16]).is_ok());
        assert!(!format!("{s:?}").contains("master"));
    }
}
