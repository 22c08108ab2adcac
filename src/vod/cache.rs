//! A disk cache of immutable blobs (produced segments and playlists, remote input blocks)
//! with a TTL since last access and a size limit.
//!
//! Layout: `<dir>/<key[0..2]>/<key>` where `key` is a 32-digit hex digest (never a request
//! path, so nothing a client sends becomes a file name). Writes go to `<dir>/tmp/<key>.<n>`
//! then `rename` into place, so a reader never sees a partial file. A hit sets the file's
//! mtime to now: mtime is the last-access time the sweeper reads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// A 128-bit FNV-1a digest as 32 lowercase hex digits (stable across builds and platforms).
pub fn digest(parts: &[&[u8]]) -> String {
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for p in parts {
        for &b in *p {
            h ^= u128::from(b);
            h = h.wrapping_mul(PRIME);
        }
        // Separator so ("ab","c") != ("a","bc").
        h ^= 0xFF;
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:032x}")
}

/// A disk blob cache (see the module docs).
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    ttl: Duration,
    max_bytes: u64,
    seq: AtomicU64,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepStats {
    /// Files deleted because their last access is older than the TTL.
    pub expired: u64,
    /// Files deleted (oldest first) to get under the size limit.
    pub evicted: u64,
    /// Bytes left in the cache.
    pub bytes: u64,
}

impl DiskCache {
    /// A cache in `dir` (created on first write). `ttl` since last access, `max_bytes` limit.
    pub fn new(dir: PathBuf, ttl: Duration, max_bytes: u64) -> DiskCache {
        DiskCache {
            dir,
            ttl,
            max_bytes,
            seq: AtomicU64::new(0),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2.min(key.len())]).join(key)
    }

    /// Reads a blob and marks it used; `None` when absent or unreadable.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let path = self.path(key);
        tokio::task::spawn_blocking(move || {
            let data = std::fs::read(&path).ok()?;
            if let Ok(f) = std::fs::File::options().write(true).open(&path) {
                let _ = f.set_modified(SystemTime::now());
            }
            Some(Bytes::from(data))
        })
        .await
        .ok()
        .flatten()
    }

    /// Stores a blob (temp file + rename). Failures are logged, not returned: the cache is
    /// an optimisation.
    pub async fn put(&self, key: &str, data: Bytes) {
        let path = self.path(key);
        let tmp_dir = self.dir.join("tmp");
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp = tmp_dir.join(format!("{key}.{}.{n}", std::process::id()));
        let res = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&tmp_dir)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&tmp, &data)?;
            std::fs::rename(&tmp, &path).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cache write failed")
            }
            Err(e) => tracing::warn!(error = %e, "cache write task failed"),
        }
    }

    /// One sweep: delete entries unused for longer than the TTL, then the least recently
    /// used ones until the total is under the size limit, then stale temp files and empty
    /// folders. Blocking; run it with `spawn_blocking`.
    pub fn sweep_blocking(&self) -> SweepStats {
        let mut stats = SweepStats::default();
        let now = SystemTime::now();
        let mut live: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        let Ok(top) = std::fs::read_dir(&self.dir) else {
            return stats;
        };
        for sub in top.flatten() {
            let sub_path = sub.path();
            let is_tmp = sub.file_name() == "tmp";
            let Ok(entries) = std::fs::read_dir(&sub_path) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(meta) = e.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let mtime = meta.modified().unwrap_or(now);
                let age = now.duration_since(mtime).unwrap_or_default();
                if is_tmp {
                    // A temp file older than an hour is a leftover of a crash.
                    if age > Duration::from_secs(3600) {
                        let _ = std::fs::remove_file(e.path());
                    }
                    continue;
                }
                if age > self.ttl {
                    if std::fs::remove_file(e.path()).is_ok() {
                        stats.expired += 1;
                    }
                } else {
                    live.push((mtime, meta.len(), e.path()));
                }
            }
            if !is_tmp {
                let _ = std::fs::remove_dir(&sub_path); // only succeeds when empty
            }
        }
        let mut total: u64 = live.iter().map(|x| x.1).sum();
        if total > self.max_bytes {
            live.sort_by_key(|x| x.0);
            for (_, len, path) in &live {
                if total <= self.max_bytes {
                    break;
                }
                if std::fs::remove_file(path).is_ok() {
                    total -= len;
                    stats.evicted += 1;
                }
            }
        }
        stats.bytes = total;
        stats
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::new(dir.path().to_owned(), Duration::from_secs(60), 25);
        let k1 = digest(&[b"one"]);
        let k2 = digest(&[b"two"]);
        assert_ne!(k1, k2);
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert!(c.get(&k1).await.is_none());
        c.put(&k1, Bytes::from_static(&[1; 20])).await;
        // Make k1 look older than k2.
        let old = SystemTime::now() - Duration::from_secs(30);
        std::fs::File::options()
            .write(true)
            .open(c.path(&k1))
            .unwrap()
            .set_modified(old)
            .unwrap();
        c.put(&k2, Bytes::from_static(&[2; 20])).await;
        let s = c.sweep_blocking();
        assert_eq!(s.evicted, 1, "{s:?}");
        assert!(c.get(&k1).await.is_none(), "oldest evicted past the limit");
        assert_eq!(c.get(&k2).await.unwrap().len(), 20);
        // TTL since last access.
        std::fs::File::options()
            .write(true)
            .open(c.path(&k2))
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(120))
            .unwrap();
        let s = c.sweep_blocking();
        assert_eq!(s.expired, 1);
        assert!(c.get(&k2).await.is_none());
    }
}
