//! tus 1.0 request headers (<https://tus.io/protocols/resumable-upload>): the protocol
//! version, `Upload-Length`, `Upload-Offset` and `Upload-Metadata`. Pure parsing of client
//! input: sizes are checked before anything is allocated from them.

use std::collections::BTreeMap;

use base64::Engine;

/// The only protocol version served (`Tus-Resumable`, `Tus-Version`).
pub const VERSION: &str = "1.0.0";
/// The extensions served (`Tus-Extension`).
pub const EXTENSIONS: &str = "creation,creation-with-upload,expiration,termination";
/// The longest `Upload-Metadata` header accepted, bytes.
pub const MAX_METADATA_BYTES: usize = 4096;

/// A header that breaks the protocol (answered 400, or 412 for the version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TusError {
    #[error("Tus-Resumable must be {VERSION}")]
    Version,
    #[error("{0} must be a non-negative decimal integer")]
    Number(&'static str),
    #[error("Upload-Metadata: {0}")]
    Metadata(String),
}

/// Checks `Tus-Resumable` (tus 1.0 section 3.2: every request but `OPTIONS` carries it).
pub fn check_version(value: Option<&str>) -> Result<(), TusError> {
    match value {
        Some(VERSION) => Ok(()),
        _ => Err(TusError::Version),
    }
}

/// Parses `Upload-Length` / `Upload-Offset`: decimal digits only, at most 19 of them (no
/// sign, no spaces, fits `u64` before any comparison with a limit).
pub fn number(name: &'static str, value: &str) -> Result<u64, TusError> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TusError::Number(name));
    }
    value.parse().map_err(|_| TusError::Number(name))
}

/// Parses `Upload-Metadata`: comma-separated `key base64value` pairs (tus 1.0 creation
/// extension), a key alone meaning an empty value. Keys are ASCII without spaces or commas
/// and unique; values must be UTF-8 text for the keys casterpak reads.
pub fn metadata(value: &str) -> Result<BTreeMap<String, String>, TusError> {
    if value.len() > MAX_METADATA_BYTES {
        return Err(TusError::Metadata(format!(
            "longer than {MAX_METADATA_BYTES} bytes"
        )));
    }
    let mut out = BTreeMap::new();
    if value.trim().is_empty() {
        return Ok(out);
    }
    for pair in value.split(',') {
        let pair = pair.trim();
        let (key, v) = match pair.split_once(' ') {
            Some((k, v)) => (k, v.trim()),
            None => (pair, ""),
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TusError::Metadata(format!("bad key {key:?}")));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v)
            .map_err(|_| TusError::Metadata(format!("the value of {key} is not base64")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| TusError::Metadata(format!("the value of {key} is not UTF-8")))?;
        if out.insert(key.to_owned(), text).is_some() {
            return Err(TusError::Metadata(format!("{key} appears twice")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs() {
        // The example of the tus 1.0 creation extension.
        let m = metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential").unwrap();
        assert_eq!(m["filename"], "world_domination_plan.pdf");
        assert_eq!(m["is_confidential"], "");
        assert!(metadata("a !!!").is_err());
        assert!(metadata("a YQ==,a YQ==").is_err());
        assert!(metadata(&"a".repeat(5000)).is_err());
        assert!(metadata("").unwrap().is_empty());
    }

    #[test]
    fn numbers_and_version() {
        assert_eq!(number("Upload-Length", "1024"), Ok(1024));
        for bad in ["", "-1", "+1", " 1", "1.0", "99999999999999999999", "0x10"] {
            assert!(number("Upload-Length", bad).is_err(), "{bad}");
        }
        assert!(check_version(Some("1.0.0")).is_ok());
        assert!(check_version(Some("0.2.2")).is_err());
        assert!(check_version(None).is_err());
    }
}
