//! Object keys: the one place where a request path becomes a name in the store and on disk.
//!
//! A key is the URI path without its leading `/`, percent-decoded once, e.g.
//! `live/x/chunk-stream0-00005.m4s`. Anything that could name a file outside the data
//! directory, or two different files with one name, is refused before it reaches the store:
//! `.` and `..` segments (plain or percent-encoded), empty segments (`//`, absolute paths after
//! decoding), encoded separators (`%2F`, `%5C`), backslashes, NUL and other control
//! characters, names starting with `.` (reserved for temporary files), and over-long names.

use std::fmt;
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

use crate::error::ErrorKind;

/// Longest accepted key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest accepted path segment, in bytes (a common file-system name limit).
pub const MAX_SEGMENT_BYTES: usize = 255;

/// Why a request path is not a valid object key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The path does not start with `/` or is empty.
    #[error("path must be absolute and name an object")]
    Empty,
    /// Percent-encoding is broken or decodes to invalid UTF-8.
    #[error("path is not valid percent-encoded UTF-8")]
    BadEncoding,
    /// The path tries to leave its folder or smuggle a separator.
    #[error("path traversal refused: {0}")]
    Traversal(&'static str),
    /// The path or one of its segments is too long.
    #[error("path too long")]
    TooLong,
}

impl KeyError {
    /// The error class; traversal is [`ErrorKind::Forbidden`], the rest
    /// [`ErrorKind::BadRequest`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            KeyError::Traversal(_) => ErrorKind::Forbidden,
            _ => ErrorKind::BadRequest,
        }
    }
}

/// A validated object key (no leading `/`, segments separated by `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Validates a raw URI path (as received, percent-encoded, starting with `/`).
    ///
    /// Errors: [`KeyError`] naming the rule that refused it.
    pub fn from_uri_path(raw: &str) -> Result<ObjectKey, KeyError> {
        let rest = raw.strip_prefix('/').ok_or(KeyError::Empty)?;
        if rest.is_empty() {
            return Err(KeyError::Empty);
        }
        if rest.len() > MAX_KEY_BYTES * 3 {
            return Err(KeyError::TooLong);
        }
        // Encoded separators would let one name mean two files after decoding.
        let lower = rest.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") {
            return Err(KeyError::Traversal("encoded path separator"));
        }
        let decoded = percent_decode_str(rest)
            .decode_utf8()
            .map_err(|_| KeyError::BadEncoding)?;
        Self::from_decoded(&decoded)
    }

    /// Validates an already decoded relative path such as `live/x/stream.mpd`.
    ///
    /// Errors: [`KeyError`] naming the rule that refused it.
    pub fn from_decoded(decoded: &str) -> Result<ObjectKey, KeyError> {
        if decoded.is_empty() {
            return Err(KeyError::Empty);
        }
        if decoded.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLong);
        }
        if decoded.contains('\\') {
            return Err(KeyError::Traversal("backslash"));
        }
        if decoded.chars().any(char::is_control) {
            return Err(KeyError::Traversal("control character"));
        }
        for segment in decoded.split('/') {
            match segment {
                "" => return Err(KeyError::Traversal("empty segment or absolute path")),
                "." | ".." => return Err(KeyError::Traversal("dot segment")),
                s if s.starts_with('.') => return Err(KeyError::Traversal("hidden name")),
                s if s.len() > MAX_SEGMENT_BYTES => return Err(KeyError::TooLong),
                _ => {}
            }
        }
        Ok(ObjectKey(decoded.to_owned()))
    }

    /// The key as a string, e.g. `live/x/stream.mpd`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder part (`live/x` for `live/x/stream.mpd`, `""` at top level).
    pub fn dir(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(d, _)| d)
    }

    /// The last segment (`stream.mpd`).
    pub fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, f)| f)
    }

    /// The lower-case extension of the file name, without the dot.
    pub fn extension(&self) -> Option<String> {
        let name = self.file_name();
        name.rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .filter(|e| !e.is_empty())
    }

    /// A sibling in the same folder. Errors as [`ObjectKey::from_decoded`].
    pub fn sibling(&self, file_name: &str) -> Result<ObjectKey, KeyError> {
        match self.dir() {
            "" => ObjectKey::from_decoded(file_name),
            dir => ObjectKey::from_decoded(&format!("{dir}/{file_name}")),
        }
    }

    /// Where this key lives under `root`. Safe by construction: no segment is `.`/`..`
    /// or empty, so the result is always inside `root`.
    pub fn to_path(&self, root: &Path) -> PathBuf {
        let mut p = root.to_path_buf();
        p.extend(self.0.split('/'));
        p
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for p in [
            "/live/x/stream.mpd",
            "/live/x/chunk-stream0-00005.m4s",
            "/live/Streams(video.cmfv)",
            "/a%20b/c.ts",
            "/live/x/init-stream0.m4s",
        ] {
            assert!(ObjectKey::from_uri_path(p).is_ok(), "{p}");
        }
        let k = ObjectKey::from_uri_path("/a%20b/c.ts").unwrap();
        assert_eq!(k.as_str(), "a b/c.ts");
        assert_eq!(k.dir(), "a b");
        assert_eq!(k.file_name(), "c.ts");
        assert_eq!(k.extension().as_deref(), Some("ts"));
    }

    #[test]
    fn refuses_traversal_in_every_spelling() {
        for p in [
            "/../etc/passwd",
            "/live/../../x",
            "/live/%2e%2e/x",
            "/live/%2E%2E/x",
            "/live/.%2e/x",
            "/live/%2e/x",
            "/live/..%2fx",
            "/live/..%2Fx",
            "/live/..%5cx",
            "/live\\..\\x",
            "//etc/passwd",
            "/%2fetc/passwd",
            "/live//x",
            "/live/x/",
            "/live/.hidden",
            "/live/x%00.mpd",
            "/live/a\nb",
        ] {
            let err = ObjectKey::from_uri_path(p).unwrap_err();
            assert!(
                matches!(err, KeyError::Traversal(_)),
                "{p} gave {err:?} instead of Traversal"
            );
        }
    }

    #[test]
    fn refuses_bad_encoding_and_length() {
        assert_eq!(ObjectKey::from_uri_path("/"), Err(KeyError::Empty));
        assert_eq!(ObjectKey::from_uri_path("x"), Err(KeyError::Empty));
        assert_eq!(
            ObjectKey::from_uri_path("/%ff%fe"),
            Err(KeyError::BadEncoding)
        );
        let long = format!("/{}", "a".repeat(300));
        assert_eq!(ObjectKey::from_uri_path(&long), Err(KeyError::TooLong));
        let deep = format!("/{}", "ab/".repeat(400) + "c");
        assert_eq!(ObjectKey::from_uri_path(&deep), Err(KeyError::TooLong));
    }

    #[test]
    fn to_path_stays_under_root() {
        let root = Path::new("/data");
        let k = ObjectKey::from_uri_path("/live/x/a.m4s").unwrap();
        assert_eq!(k.to_path(root), PathBuf::from("/data/live/x/a.m4s"));
        assert!(k.to_path(root).starts_with(root));
    }
}
