//! Where MP4 renditions are read from: a local folder or an HTTP(S) base URL.
//!
//! - Local: `<root>/<rel>` is canonicalised (symlinks resolved) and must stay under the
//!   canonical root, else [`SourceError::Forbidden`]; identity = size + mtime.
//! - HTTP: `<base>/<rel>` read with `Range` requests (RFC 9110 section 14): a 1-byte probe
//!   gives size (`Content-Range`), `ETag` and `Last-Modified`; every later response must
//!   be a 206 with the same total size, ETag and Last-Modified and exactly the requested
//!   length, else [`SourceError::Changed`] and nothing is cached. With an input cache, data
//!   is kept in 1 MiB blocks keyed by URL + identity + block number.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use super::cache::{digest, DiskCache};

/// Input cache block size in bytes.
pub const BLOCK: u64 = 1 << 20;

/// Most WebVTT sidecars one MP4 gets ([`Source::sidecars`]).
pub const MAX_SIDECARS: usize = 32;

/// Whether `tag` can be the `<lang>` of a sidecar `<name>.<lang>.vtt`: 1 to 35 ASCII
/// letters, digits and `-` (`en`, `pt-BR`, `eng`; BCP 47 tags fit, RFC 5646).
pub fn is_sidecar_language(tag: &str) -> bool {
    (1..=35).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// One opened source file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Relative path under the media root (as routed).
    pub rel: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (local mtime or remote Last-Modified; now when unknown).
    pub mtime: SystemTime,
    /// Identity string: `size:mtime_ns` (local) or `size:etag:last-modified` (remote).
    pub identity: String,
    loc: Loc,
}

#[derive(Debug, Clone)]
enum Loc {
    Path(PathBuf),
    Url {
        url: String,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// Source failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No such file.
    #[error("{0}: not found")]
    NotFound(String),
    /// The path resolves outside the media root.
    #[error("{0}: outside the media root")]
    Forbidden(String),
    /// Local I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// Relative path under the media root.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The remote answered badly or failed.
    #[error("{url}: {reason}")]
    Upstream {
        /// The remote URL.
        url: String,
        /// Status or transport error.
        reason: String,
    },
    /// The remote file changed or was truncated under us.
    #[error("{url}: remote file changed ({reason})")]
    Changed {
        /// The remote URL.
        url: String,
        /// Which check failed (size, ETag, Last-Modified, short body).
        reason: String,
    },
}

/// A media root.
#[derive(Debug)]
pub enum Source {
    /// A local folder.
    Local(LocalSource),
    /// An HTTP(S) base URL.
    Http(HttpSource),
}

/// Local source state.
#[derive(Debug)]
pub struct LocalSource {
    /// The folder's canonical path.
    root: PathBuf,
    /// The `.vtt` file names of each folder listed for sidecars, with the folder's mtime
    /// when listed: a master request then costs one `stat` of the folder, not a listing of
    /// every file in it (a library folder may hold thousands).
    vtt_names: moka::future::Cache<PathBuf, (SystemTime, Arc<Vec<String>>)>,
}

/// A folder listing is kept only when the folder's mtime is at least this old: on a file
/// system with coarse timestamps, a sidecar added in the same tick as the listing would
/// otherwise leave the folder's mtime unchanged and the listing stale.
const LISTING_SETTLE: Duration = Duration::from_secs(2);

/// Remote source state.
#[derive(Debug)]
pub struct HttpSource {
    base: String,
    client: reqwest::Client,
    blocks: Option<Arc<DiskCache>>,
    meta: moka::future::Cache<String, SourceFile>,
    /// Language tags of the sidecars probed beside each MP4 (`vod.remote_sidecar_languages`).
    sidecar_languages: Vec<String>,
    /// Sidecar paths the remote answered 404/410 for, kept for the revalidate time like a
    /// found file's `meta`, so a master request does not probe every tag again.
    absent: moka::future::Cache<String, ()>,
}

const PATH_SET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%');

impl Source {
    /// A local source; `root` must be an existing folder.
    pub fn local(root: &Path) -> std::io::Result<Source> {
        let canon = std::fs::canonicalize(root)?;
        if !canon.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a folder",
                root.display()
            )));
        }
        Ok(Source::Local(LocalSource {
            root: canon,
            vtt_names: moka::future::Cache::builder().max_capacity(10_000).build(),
        }))
    }

    /// A remote source under `base` (ending `/` added), with an optional input cache; a
    /// file's size/ETag/Last-Modified (and a sidecar's absence) is trusted for `revalidate`;
    /// `sidecar_languages` are the tags whose sidecars [`Source::sidecars`] probes.
    pub fn http(
        base: &str,
        blocks: Option<Arc<DiskCache>>,
        revalidate: Duration,
        sidecar_languages: Vec<String>,
    ) -> Source {
        let mut base = base.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Source::Http(HttpSource {
            base,
            client,
            blocks,
            meta: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(revalidate)
                .build(),
            sidecar_languages,
            absent: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(revalidate)
                .build(),
        })
    }

    /// Opens `rel` (already checked by the router: relative, no `..`).
    pub async fn open(&self, rel: &str) -> Result<SourceFile, SourceError> {
        match self {
            Source::Local(l) => open_local(&l.root, rel).await,
            Source::Http(h) => h.open(rel).await,
        }
    }

    /// Reads `range` of an opened file (whole range or an error).
    pub async fn read(&self, f: &SourceFile, range: Range<u64>) -> Result<Bytes, SourceError> {
        if range.end > f.size || range.start > range.end {
            return Err(SourceError::Changed {
                url: f.rel.clone(),
                reason: format!("range {range:?} beyond size {}", f.size),
            });
        }
        match (&f.loc, self) {
            (Loc::Path(_), _) => read_local(f.clone(), range).await,
            (Loc::Url { .. }, Source::Http(h)) => h.read(f, range).await,
            (Loc::Url { url, .. }, Source::Local(_)) => Err(SourceError::Upstream {
                url: url.clone(),
                reason: "remote file on a local source".into(),
            }),
        }
    }

    /// WebVTT sidecars of the MP4 `rel` (already checked by the router): the files
    /// `<stem>.<lang>.vtt` beside it, where `<stem>` is its name without the extension and
    /// `<lang>` a language tag ([`is_sidecar_language`]). Returns (language, relative path)
    /// pairs sorted by language, at most [`MAX_SIDECARS`]. A local folder is listed; an
    /// HTTP base cannot be, so there each configured tag is probed (one 1-byte `Range`
    /// request; a found file and a 404/410 are kept for the revalidate time). A probe that
    /// fails otherwise (5xx, timeout, an empty file's 416) is logged and its sidecar still
    /// returned, so the track numbers stay put and reading that track fails alone.
    pub async fn sidecars(&self, rel: &str) -> Vec<(String, String)> {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
        let local = match self {
            Source::Local(local) => local,
            Source::Http(h) => return h.sidecars(dir, stem).await,
        };
        let Some(names) = local.vtt_names(dir).await else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for file in names.iter() {
            let Some(lang) = file
                .strip_prefix(stem)
                .and_then(|r| r.strip_prefix('.'))
                .and_then(|r| r.strip_suffix(".vtt"))
            else {
                continue;
            };
            if is_sidecar_language(lang) {
                found.push((lang.to_string(), join(dir, file)));
                if found.len() == MAX_SIDECARS {
                    break;
                }
            }
        }
        found.sort();
        found
    }

    /// The canonical local path of an opened file (local sources only).
    pub fn local_path<'f>(&self, f: &'f SourceFile) -> Option<&'f Path> {
        match &f.loc {
            Loc::Path(p) => Some(p),
            Loc::Url { .. } => None,
        }
    }

    /// Forgets cached metadata of a remote file (after a mismatch).
    pub async fn invalidate(&self, rel: &str) {
        if let Source::Http(h) = self {
            h.meta.invalidate(rel).await;
        }
    }
}

async fn open_local(root: &Path, rel: &str) -> Result<SourceFile, SourceError> {
    let joined = root.join(rel);
    let canon = match tokio::fs::canonicalize(&joined).await {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SourceError::NotFound(rel.into()))
        }
        Err(e) => {
            return Err(SourceError::Io {
                path: rel.into(),
                source: e,
            })
        }
    };
    if !canon.starts_with(root) {
        return Err(SourceError::Forbidden(rel.into()));
    }
    let meta = tokio::fs::metadata(&canon)
        .await
        .map_err(|e| SourceError::Io {
            path: rel.into(),
            source: e,
        })?;
    if !meta.is_file() {
        return Err(SourceError::NotFound(rel.into()));
    }
    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let ns = mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(SourceFile {
        rel: rel.into(),
        size: meta.len(),
        mtime,
        identity: format!("{}:{ns}", meta.len()),
        loc: Loc::Path(canon),
    })
}

/// Opens a local file and checks it is still the one that was indexed (same size and
/// mtime), so a file replaced or truncated in place is never read as the old one.
fn open_checked(f: &SourceFile) -> Result<std::fs::File, SourceError> {
    let Loc::Path(path) = &f.loc else {
        return Err(SourceError::Upstream {
            url: f.rel.clone(),
            reason: "not a local file".into(),
        });
    };
    let io = |e| SourceError::Io {
        path: f.rel.clone(),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.len() != f.size || meta.modified().ok() != Some(f.mtime) {
        return Err(SourceError::Changed {
            url: f.rel.clone(),
            reason: format!(
                "size {} -> {} or mtime changed since it was opened",
                f.size,
                meta.len()
            ),
        });
    }
    Ok(file)
}

impl LocalSource {
    /// The names of the `.vtt` files in folder `dir` (relative to the root), sorted; from
    /// the cache while the folder's mtime is the one it was listed with. `None` when the
    /// folder cannot be read.
    async fn vtt_names(&self, dir: &str) -> Option<Arc<Vec<String>>> {
        let path = self.root.join(dir);
        let mtime = tokio::fs::metadata(&path).await.ok()?.modified().ok()?;
        if let Some((listed, names)) = self.vtt_names.get(&path).await {
            if listed == mtime {
                return Some(names);
            }
        }
        let mut entries = tokio::fs::read_dir(&path).await.ok()?;
        let mut names = Vec::new();
        while let Ok(Some(e)) = entries.next_entry().await {
            if let Some(file) = e.file_name().to_str() {
                if file.ends_with(".vtt") {
                    names.push(file.to_string());
                }
            }
        }
        names.sort();
        let names = Arc::new(names);
        let settled = SystemTime::now()
            .duration_since(mtime)
            .is_ok_and(|age| age >= LISTING_SETTLE);
        if settled {
            self.vtt_names
                .insert(path, (mtime, Arc::clone(&names)))
                .await;
        }
        Some(names)
    }
}

async fn read_local(f: SourceFile, range: Range<u64>) -> Result<Bytes, SourceError> {
    let rel = f.rel.clone();
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        read_ranges_blocking(&f, std::slice::from_ref(&range), &mut buf)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(|e| SourceError::Io {
        path: rel,
        source: std::io::Error::other(e),
    })?
}

/// Reads `ranges` of an opened local file, appending them to `buf` (a reused scratch
/// buffer, so no fresh pages per request, and no zero-fill pass); returns each range's
/// file offset and position in `buf`. Blocking.
///
/// Errors: [`SourceError::Changed`] when the file's size or mtime is no longer the opened
/// one, [`SourceError::Io`] for I/O errors or a file shorter than a range.
pub fn read_ranges_blocking(
    f: &SourceFile,
    ranges: &[Range<u64>],
    buf: &mut Vec<u8>,
) -> Result<Vec<(u64, Range<usize>)>, SourceError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = open_checked(f)?;
    let io = |e| SourceError::Io {
        path: f.rel.clone(),
        source: e,
    };
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let len = r.end.saturating_sub(r.start);
        file.seek(SeekFrom::Start(r.start)).map_err(io)?;
        let start = buf.len();
        buf.reserve(usize::try_from(len).map_err(|e| io(std::io::Error::other(e)))?);
        (&mut file).take(len).read_to_end(buf).map_err(io)?;
        if (buf.len() - start) as u64 != len {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("file ended inside range {r:?}"),
            )));
        }
        out.push((r.start, start..buf.len()));
    }
    Ok(out)
}

/// `bytes START-END/TOTAL` -> (start, end inclusive, total).
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (s, e) = range.split_once('-')?;
    Some((s.parse().ok()?, e.parse().ok()?, total.parse().ok()?))
}

/// `dir/name`, or `name` in the root (`dir` empty).
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl HttpSource {
    fn url(&self, rel: &str) -> String {
        format!("{}{}", self.base, utf8_percent_encode(rel, PATH_SET))
    }

    /// The configured tags' sidecars `<dir>/<stem>.<lang>.vtt` that the remote has, probed
    /// together; see [`Source::sidecars`].
    async fn sidecars(&self, dir: &str, stem: &str) -> Vec<(String, String)> {
        let probes = self.sidecar_languages.iter().map(|lang| async move {
            let rel = join(dir, &format!("{stem}.{lang}.vtt"));
            if self.absent.contains_key(&rel) {
                return None;
            }
            match self.open(&rel).await {
                Ok(_) => Some((lang.clone(), rel)),
                Err(SourceError::NotFound(_)) => {
                    self.absent.insert(rel, ()).await;
                    None
                }
                Err(e) => {
                    // Offered all the same, so the track numbers stay put and only this
                    // track's requests fail while the remote does.
                    tracing::warn!(error = %e, "sidecar probe failed");
                    Some((lang.clone(), rel))
                }
            }
        });
        let mut found: Vec<_> = futures_util::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect();
        found.sort();
        found.truncate(MAX_SIDECARS);
        found
    }

    async fn open(&self, rel: &str) -> Result<SourceFile, SourceError> {
        if let Some(f) = self.meta.get(rel).await {
            return Ok(f);
        }
        let url = self.url(rel);
        let up = |reason: String| SourceError::Upstream {
            url: url.clone(),
            reason,
        };
        let resp = self
            .client
            .get(&url)
            .header(reqwest::header::RANGE, "bytes=0-0")
            .send()
            .await
            .map_err(|e| up(e.to_string()))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(SourceError::NotFound(rel.into()));
        }
        if status != reqwest::StatusCode::PARTIAL_CONTENT {
            return Err(up(format!("probe answered {status}, expected 206")));
        }
        let h = resp.headers();
        let text = |name: reqwest::header::HeaderName| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (_, _, size) = text(reqwest::header::CONTENT_RANGE)
            .as_deref()
            .and_then(parse_content_range)
            .ok_or_else(|| up("probe without a usable Content-Range".into()))?;
        let etag = text(reqwest::header::ETAG);
        let last_modified = text(reqwest::header::LAST_MODIFIED);
        let mtime = last_modified
            .as_deref()
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .unwrap_or_else(SystemTime::now);
        let f = SourceFile {
            rel: rel.into(),
            size,
            mtime,
            identity: format!(
                "{size}:{}:{}",
                etag.as_deref().unwrap_or(""),
                last_modified.as_deref().unwrap_or("")
            ),
            loc: Loc::Url {
                url,
                etag,
                last_modified,
            },
        };
        self.meta.insert(rel.into(), f.clone()).await;
        Ok(f)
    }

    /// One validated Range request.
    async fn fetch(&self, f: &SourceFile, range: Range<u64>) -> Result<Bytes, SourceError> {
        let Loc::Url {
            url,
            etag,
            last_modified,
        } = &f.loc
        else {
            unreachable!("fetch is only called for remote files")
        };
        let changed = |reason: String| SourceError::Changed {
            url: url.clone(),
            reason,
        };
        let resp = self
            .client
            .get(url)
            .header(
                reqwest::header::RANGE,
                format!("bytes={}-{}", range.start, range.end - 1),
            )
            .send()
            .await
            .map_err(|e| SourceError::Upstream {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            return Err(changed(format!("range answered {}", resp.status())));
        }
        let h = resp.headers();
        let get = |name| {
            h.get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
        };
        match get(reqwest::header::CONTENT_RANGE).and_then(parse_content_range) {
            Some((s, e, total)) if s == range.start && e + 1 == range.end && total == f.size => {}
            other => return Err(changed(format!("Content-Range {other:?} for {range:?}"))),
        }
        if get(reqwest::header::ETAG) != etag.as_deref() {
            return Err(changed("ETag differs".into()));
        }
        if get(reqwest::header::LAST_MODIFIED) != last_modified.as_deref() {
            return Err(changed("Last-Modified differs".into()));
        }
        // Never buffer more than the requested length, whatever the server sends.
        let want = range.end - range.start;
        if resp.content_length().is_some_and(|n| n != want) {
            return Err(changed(format!(
                "Content-Length {:?} for a {want}-byte range",
                resp.content_length()
            )));
        }
        let mut resp = resp;
        let mut body = BytesMut::with_capacity(usize::try_from(want).unwrap_or(0));
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if body.len() as u64 + c.len() as u64 > want {
                        return Err(changed(format!("body longer than the {want}-byte range")));
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(SourceError::Upstream {
                        url: url.clone(),
                        reason: format!("body cut after {} of {want} bytes: {e}", body.len()),
                    })
                }
            }
        }
        if body.len() as u64 != want {
            return Err(changed(format!(
                "body of {} bytes for a {want}-byte range (truncated)",
                body.len()
            )));
        }
        Ok(body.freeze())
    }

    async fn read(&self, f: &SourceFile, range: Range<u64>) -> Result<Bytes, SourceError> {
        let Some(cache) = &self.blocks else {
            return self.fetch(f, range).await;
        };
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let first = range.start / BLOCK;
        let last = (range.end - 1) / BLOCK;
        let key = |b: u64| digest(&[f.rel.as_bytes(), f.identity.as_bytes(), &b.to_be_bytes()]);
        let mut blocks: Vec<Option<Bytes>> = Vec::with_capacity((last - first + 1) as usize);
        for b in first..=last {
            blocks.push(
                cache
                    .get(&key(b))
                    .await
                    .filter(|d| d.len() as u64 == (f.size - b * BLOCK).min(BLOCK)),
            );
        }
        // Fetch each run of missing blocks with one request.
        let mut b = first;
        while b <= last {
            if blocks[(b - first) as usize].is_some() {
                b += 1;
                continue;
            }
            let mut e = b;
            while e < last && blocks[(e + 1 - first) as usize].is_none() {
                e += 1;
            }
            let start = b * BLOCK;
            let end = ((e + 1) * BLOCK).min(f.size);
            let data = self.fetch(f, start..end).await?;
            for k in b..=e {
                let s = ((k - b) * BLOCK) as usize;
                let piece = data.slice(s..((s as u64 + BLOCK) as usize).min(data.len()));
                cache.put(&key(k), piece.clone()).await;
                blocks[(k - first) as usize] = Some(piece);
            }
            b = e + 1;
        }
        let mut out = BytesMut::with_capacity((range.end - range.start) as usize);
        for (i, blk) in blocks.into_iter().enumerate() {
            let blk = blk.unwrap_or_default();
            let base = (first + i as u64) * BLOCK;
            let s = range.start.max(base) - base;
            let e = range.end.min(base + blk.len() as u64) - base;
            out.extend_from_slice(&blk[s as usize..e as usize]);
        }
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 0-0/1234"), Some((0, 0, 1234)));
        assert_eq!(parse_content_range("bytes */1234"), None);
    }

    #[tokio::test]
    async fn local_refuses_symlinks_out() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.mp4"), b"x").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("in.mp4"), b"abc").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.mp4"),
            root.path().join("link.mp4"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("dir")).unwrap();
        let src = Source::local(root.path()).unwrap();
        let f = src.open("in.mp4").await.unwrap();
        assert_eq!(f.size, 3);
        assert_eq!(&src.read(&f, 1..3).await.unwrap()[..], b"bc");
        assert!(src.read(&f, 1..4).await.is_err());
        assert!(matches!(
            src.open("link.mp4").await,
            Err(SourceError::Forbidden(_))
        ));
        assert!(matches!(
            src.open("dir/secret.mp4").await,
            Err(SourceError::Forbidden(_))
        ));
        assert!(matches!(
            src.open("nope.mp4").await,
            Err(SourceError::NotFound(_))
        ));
    }

    /// A folder's `.vtt` listing is kept while its mtime stands still, and a sidecar added
    /// later (which moves the mtime) is found; a folder that changed in the last
    /// [`LISTING_SETTLE`] is listed again on every request.
    #[tokio::test]
    async fn sidecar_listing_is_kept_per_folder_mtime() {
        let root = tempfile::tempdir().unwrap();
        let sub = root.path().join("films");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("a.mp4"), b"x").unwrap();
        std::fs::write(sub.join("a.en.vtt"), b"WEBVTT\n").unwrap();
        std::fs::write(sub.join("b.fr.vtt"), b"WEBVTT\n").unwrap();
        let age = |secs| {
            std::fs::File::open(&sub)
                .unwrap()
                .set_modified(SystemTime::now() - Duration::from_secs(secs))
                .unwrap();
        };
        age(60);
        let src = Source::local(root.path()).unwrap();
        let Source::Local(local) = &src else {
            unreachable!()
        };
        let want = |langs: &[&str]| -> Vec<(String, String)> {
            langs
                .iter()
                .map(|l| (l.to_string(), format!("films/a.{l}.vtt")))
                .collect()
        };
        assert_eq!(src.sidecars("films/a.mp4").await, want(&["en"]));
        assert!(local.vtt_names.get(&sub).await.is_some(), "settled: kept");
        // A new sidecar moves the folder's mtime: listed again.
        std::fs::write(sub.join("a.de.vtt"), b"WEBVTT\n").unwrap();
        assert_eq!(src.sidecars("films/a.mp4").await, want(&["de", "en"]));
        // Just changed: not kept, so a second change in the same tick is not missed.
        local.vtt_names.invalidate(&sub).await;
        assert_eq!(src.sidecars("films/a.mp4").await, want(&["de", "en"]));
        assert!(
            local.vtt_names.get(&sub).await.is_none(),
            "unsettled: not kept"
        );
        // Must fail without the mtime check: a cached listing that is stale.
        age(30);
        assert_eq!(src.sidecars("films/a.mp4").await, want(&["de", "en"]));
        std::fs::remove_file(sub.join("a.de.vtt")).unwrap();
        age(20);
        assert_eq!(src.sidecars("films/a.mp4").await, want(&["en"]));
        assert_eq!(src.sidecars("nope/a.mp4").await, Vec::new());
    }
}
