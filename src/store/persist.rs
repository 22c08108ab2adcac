//! Finished objects on disk under the data dir, and reading them back after a restart.
//!
//! Layout: the key is the relative path (`<data_dir>/live/x/chunk-stream0-00005.m4s`).
//! Writes go to a hidden temporary file in the same folder and are renamed over the final
//! name, so a reader (or a restart) never sees half a file; the file's mtime is set to the
//! moment the upload completed, so ETag and Last-Modified stay the same when an object
//! moves from memory to disk. Keys can never start with `.` (see [`super::key`]), so
//! temporary names never collide with objects.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;

use super::key::ObjectKey;
use crate::error::ErrorKind;

/// A data-dir failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// An I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl PersistError {
    /// Always [`ErrorKind::Internal`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PersistError + 'a {
    move |source| PersistError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// A finished object read from disk.
#[derive(Debug, Clone)]
pub struct DiskObject {
    /// The whole file.
    pub bytes: Bytes,
    /// The file's mtime: when its upload completed.
    pub modified: SystemTime,
}

/// Reads and writes objects under one root folder.
#[derive(Debug, Clone)]
pub struct Persister {
    root: PathBuf,
}

impl Persister {
    /// Uses `root` (created if missing). Errors: [`PersistError::Io`].
    pub fn open(root: &Path) -> Result<Persister, PersistError> {
        std::fs::create_dir_all(root).map_err(io_err("create", root))?;
        Ok(Persister {
            root: root.to_owned(),
        })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `bytes` at `key` atomically (temp file + rename) with mtime `modified`.
    /// `unique` makes the temp name unique among concurrent writers of the same key.
    ///
    /// Errors: [`PersistError::Io`] (the final file is then untouched).
    pub async fn write(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        modified: SystemTime,
        unique: u64,
    ) -> Result<(), PersistError> {
        let path = key.to_path(&self.root);
        let tmp = path.with_file_name(format!(".{}.{unique}.tmp", key.file_name()));
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
            }
            let result = (|| {
                let file = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
                io::Write::write_all(&mut &file, &bytes).map_err(io_err("write", &tmp))?;
                file.set_modified(modified)
                    .map_err(io_err("set mtime", &tmp))?;
                drop(file);
                std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        })
        .await
        .map_err(|e| PersistError::Io {
            op: "join",
            path: key.to_path(&self.root),
            source: io::Error::other(e),
        })?
    }

    /// Reads the object at `key`; `Ok(None)` when there is no such file.
    ///
    /// Errors: [`PersistError::Io`] for failures other than "not found".
    pub async fn read(&self, key: &ObjectKey) -> Result<Option<DiskObject>, PersistError> {
        let path = key.to_path(&self.root);
        let meta = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(io_err("stat", &path)(e)),
        };
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        Ok(Some(DiskObject {
            bytes: Bytes::from(bytes),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        }))
    }

    /// Whether a file exists at `key`.
    pub async fn exists(&self, key: &ObjectKey) -> bool {
        tokio::fs::metadata(key.to_path(&self.root))
            .await
            .is_ok_and(|m| m.is_file())
    }

    /// Removes the file at `key` (missing is fine). Errors: [`PersistError::Io`].
    pub async fn remove(&self, key: &ObjectKey) -> Result<(), PersistError> {
        let path = key.to_path(&self.root);
        match tokio::fs::remove_file(&path).await {
            Err(e) if !is_missing(&e) => Err(io_err("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Every persisted key whose file name ends with `suffix` (e.g. `.mpd`), for recovery
    /// at start. Hidden (temporary) files are skipped; depth is capped at 16 folders.
    pub fn list_with_suffix(&self, suffix: &str) -> Vec<ObjectKey> {
        let mut found = Vec::new();
        let mut stack = vec![(self.root.clone(), String::new(), 0usize)];
        while let Some((dir, prefix, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let rel = if prefix.is_empty() {
                    name.to_owned()
                } else {
                    format!("{prefix}/{name}")
                };
                let Ok(ft) = entry.file_type() else { continue };
                // Hidden folders (the archive) hold no object keys.
                if ft.is_dir() && depth < 16 && !name.starts_with('.') {
                    stack.push((entry.path(), rel, depth + 1));
                } else if ft.is_file() && name.ends_with(suffix) {
                    if let Ok(key) = ObjectKey::from_decoded(&rel) {
                        found.push(key);
                    }
                }
            }
        }
        found.sort();
        found
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn write_read_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = Persister::open(dir.path()).unwrap();
        let key = ObjectKey::from_decoded("live/x/a.m4s").unwrap();
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        p.write(&key, Bytes::from_static(b"hello"), when, 1)
            .await
            .unwrap();
        let got = p.read(&key).await.unwrap().unwrap();
        assert_eq!(&got.bytes[..], b"hello");
        assert_eq!(got.modified, when);
        assert_eq!(p.list_with_suffix(".m4s"), vec![key.clone()]);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("live/x"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp file left: {leftovers:?}");
        p.remove(&key).await.unwrap();
        assert!(p.read(&key).await.unwrap().is_none());
        p.remove(&key).await.unwrap();
    }
}
