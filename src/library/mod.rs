//! The media library: uploads (tus 1.0 and one-shot multipart), the check of each file with
//! ffprobe, one transcode job per asset into an ABR ladder of faststart MP4s, a poster and
//! a thumbnail sprite, and the asset metadata in SQLite. A room of its own: the server's
//! API routes call it, and it publishes every finished asset through the on-demand
//! packager by writing the rungs under the media root (`<media_root>/assets/<id>/`), where
//! `/i/assets/<id>/<id>_,240,360,p.mp4.csmil/master.m3u8` serves them.
//!
//! ```text
//! tus PATCH / multipart --> <data_dir>/.library/uploads/<id>.part (fsync)
//!   --> rename to .library/sources/<id> --> ffprobe (probe.rs) --> jobs table (queued)
//!   --> worker: nice ffmpeg, one decode split to every rung (ladder.rs), -progress
//!       (progress.rs) --> <media_root>/assets/.tmp/<id>/ --> poster, sprite, WebVTT
//!   --> rename to <media_root>/assets/<id>/ (ready)
//! ```
//!
//! States of an asset: `waiting` (created, no byte yet), `uploading`, `queued`,
//! `processing`, `ready`, `errored`. A failed transcode that is not the input's fault is
//! retried once. A restart re-queues interrupted jobs (killing an ffmpeg left from the
//! previous process) and deletes temporary folders; unfinished uploads expire.

pub mod config;
pub mod db;
pub mod ladder;
pub mod nus;
pub mod probe;
pub mod progress;
pub mod tus;

mod job;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::error::ErrorKind;
pub use config::LibraryConfig;
pub use db::{AssetRow, UploadRow};
use ladder::RungSpec;

/// Library failures; [`LibraryError::kind`] classes them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LibraryError {
    #[error("library database: {0}")]
    Db(String),
    #[error("library files: {0}")]
    Io(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("{0}")]
    Unavailable(String),
}

impl LibraryError {
    /// The class of this error (mapped to HTTP in `server::http`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            LibraryError::Db(_) | LibraryError::Io(_) => ErrorKind::Internal,
            LibraryError::NotFound(_) => ErrorKind::NotFound,
            LibraryError::Conflict(_) => ErrorKind::Conflict,
            LibraryError::BadRequest(_) => ErrorKind::BadRequest,
            LibraryError::TooLarge(_) => ErrorKind::TooLarge,
            LibraryError::InsufficientStorage(_) => ErrorKind::InsufficientStorage,
            LibraryError::Unavailable(_) => ErrorKind::Unavailable,
        }
    }
}

impl From<rusqlite::Error> for LibraryError {
    fn from(e: rusqlite::Error) -> Self {
        LibraryError::Db(e.to_string())
    }
}

impl From<std::io::Error> for LibraryError {
    fn from(e: std::io::Error) -> Self {
        LibraryError::Io(e.to_string())
    }
}

/// Something that happened to an asset (`asset.created`, `asset.updated`,
/// `asset.progress`, `asset.ready`, `asset.errored`, `asset.deleted`, `upload.expired`).
#[derive(Debug, Clone)]
pub struct AssetEvent {
    pub kind: &'static str,
    /// The asset after the change (`None` once deleted).
    pub asset: Option<AssetRow>,
    pub id: String,
}

/// Overall percent at the start of each phase (the `progress.percent` of an asset runs
/// 0..=100 across them).
pub mod percent {
    /// Uploading runs 0..PROBE by bytes received.
    pub const PROBE: f64 = 10.0;
    /// Transcoding runs TRANSCODE..THUMBNAILS by output time.
    pub const TRANSCODE: f64 = 12.0;
    pub const THUMBNAILS: f64 = 92.0;
    pub const PUBLISH: f64 = 98.0;
}

/// Unix time now, milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug)]
struct Running {
    cancel: CancellationToken,
    done: watch::Receiver<bool>,
}

/// The library room. Shared as `Arc<Library>`.
#[derive(Debug)]
pub struct Library {
    cfg: LibraryConfig,
    min_free_bytes: u64,
    db: Mutex<rusqlite::Connection>,
    uploads_dir: PathBuf,
    sources_dir: PathBuf,
    media_dir: PathBuf,
    tmp_dir: PathBuf,
    events: broadcast::Sender<AssetEvent>,
    wake: Notify,
    running: Mutex<HashMap<String, Running>>,
    writing: Mutex<HashSet<String>>,
    /// Segment transcodes of recorded videos at once (as many as jobs).
    segment_slots: tokio::sync::Semaphore,
    /// Recorded videos whose segment transcoder runs.
    nus_busy: nus::Busy,
}

/// Marks an upload as being written; removed on drop.
struct WriteGuard<'a>(&'a Library, String);

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.writing).remove(&self.1);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new asset id: 32 lowercase hex digits (UUID v4 without dashes), safe in paths and in
/// `.csmil` URLs.
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `id` has the shape [`new_id`] makes (so it can name files).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Free bytes for unprivileged users in the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

impl Library {
    /// Opens the library: the database `<data_dir>/.casterpak-library.db`, upload and source
    /// folders under `<data_dir>/.library/`, outputs under `<media_root>/assets/`. Recovers
    /// from a previous process: jobs it left running are queued again (their ffmpeg killed
    /// when still alive), temporary output folders and orphan `.part` files deleted.
    ///
    /// Errors: [`LibraryError::Db`] / [`LibraryError::Io`] when a folder or the database
    /// cannot be made.
    pub fn open(
        cfg: LibraryConfig,
        data_dir: &Path,
        media_root: &Path,
        min_free_bytes: u64,
    ) -> Result<Library, LibraryError> {
        let uploads_dir = data_dir.join(".library/uploads");
        let sources_dir = data_dir.join(".library/sources");
        let media_dir = media_root.join("assets");
        let tmp_dir = media_dir.join(".tmp");
        for d in [&uploads_dir, &sources_dir] {
            std::fs::create_dir_all(d)?;
        }
        // The media root gets `assets/` with the first transcode, not before.
        let _ = std::fs::remove_dir_all(&tmp_dir);
        let conn = db::open(&data_dir.join(".casterpak-library.db"))?;
        let now = now_ms();
        for (id, attempt, pid) in db::running_jobs(&conn)? {
            if let Some(pid) = pid {
                kill_stale(pid, &tmp_dir.join(&id));
            }
            db::queue_job(&conn, &id, attempt, now)?;
            conn.execute(
                "UPDATE assets SET status='queued', phase='queue', eta_secs=NULL, updated_ms=?2 WHERE id=?1",
                rusqlite::params![id, now],
            )?;
            tracing::info!(asset = id, "library: interrupted transcode queued again");
        }
        // Segment transcodes of recorded videos cut by the stop run again.
        conn.execute(
            "UPDATE nus_segments SET status='NIL' WHERE status='PROCESSING'",
            [],
        )?;
        let ids = db::asset_ids(&conn)?;
        if let Ok(rd) = std::fs::read_dir(&uploads_dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(".part").unwrap_or(&name);
                if !ids.contains(id) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Library {
            min_free_bytes,
            db: Mutex::new(conn),
            uploads_dir,
            sources_dir,
            media_dir,
            tmp_dir,
            events: broadcast::channel(1024).0,
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            writing: Mutex::new(HashSet::new()),
            segment_slots: tokio::sync::Semaphore::new(cfg.jobs()),
            nus_busy: Default::default(),
            cfg,
        })
    }

    /// The ffmpeg program under `nice -n <library.nice>` (the nice program execs it, so
    /// the child's pid is ffmpeg's), its output to be set by the caller.
    fn ffmpeg_command(&self) -> tokio::process::Command {
        let mut c = if self.cfg.nice > 0 {
            let mut c = tokio::process::Command::new("nice");
            c.arg("-n")
                .arg(self.cfg.nice.to_string())
                .arg(&self.cfg.ffmpeg);
            c
        } else {
            tokio::process::Command::new(&self.cfg.ffmpeg)
        };
        c.stdin(std::process::Stdio::null()).kill_on_drop(true);
        c
    }

    /// The settings.
    pub fn config(&self) -> &LibraryConfig {
        &self.cfg
    }

    /// A receiver of every asset event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AssetEvent> {
        self.events.subscribe()
    }

    /// Runs `f` with the database (blocking: call from a blocking thread).
    pub fn with_db<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, LibraryError>,
    ) -> Result<T, LibraryError> {
        f(&lock(&self.db))
    }

    /// Runs `f` on a blocking thread.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Library) -> Result<T, LibraryError> + Send + 'static,
    ) -> Result<T, LibraryError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| LibraryError::Db(format!("library task failed: {e}")))?
    }

    fn publish(&self, kind: &'static str, id: &str, asset: Option<AssetRow>) {
        let _ = self.events.send(AssetEvent {
            kind,
            asset,
            id: id.to_owned(),
        });
    }

    /// Logs and publishes an event about the asset as it is now in the database.
    fn announce(&self, kind: &'static str, id: &str) {
        let row = self.with_db(|c| {
            if kind != "asset.progress" {
                db::log_event(c, id, kind, now_ms(), None)?;
            }
            db::get_asset(c, id)
        });
        match row {
            Ok(row) => self.publish(kind, id, row),
            Err(e) => tracing::warn!(asset = id, error = %e, "library: event not logged"),
        }
    }

    /// Refuses an upload of `length` bytes that cannot fit with its outputs (estimated at
    /// the source's size again) above the free-space floor.
    fn check_space(&self, length: u64) -> Result<(), LibraryError> {
        let need_src = length.saturating_add(self.min_free_bytes);
        let need_out = length.saturating_add(self.min_free_bytes);
        let media_root = self.media_dir.parent().unwrap_or(&self.media_dir);
        for (dir, need) in [
            (self.uploads_dir.as_path(), need_src),
            (media_root, need_out),
        ] {
            if let Some(free) = free_bytes(dir) {
                if free < need {
                    return Err(LibraryError::InsufficientStorage(format!(
                        "not enough free space for {length} bytes and their outputs ({free} bytes free)"
                    )));
                }
            }
        }
        Ok(())
    }

    fn check_ladder(ladder: Option<&[RungSpec]>) -> Result<Option<String>, LibraryError> {
        match ladder {
            None => Ok(None),
            Some(l) => {
                ladder::check_ladder(l).map_err(|e| LibraryError::BadRequest(e.to_string()))?;
                Ok(Some(serde_json::to_string(l).unwrap_or_default()))
            }
        }
    }

    /// A new asset for a tus upload of `length` bytes (tus creation): `waiting`, with an
    /// empty `.part` file and an expiry.
    ///
    /// Errors: [`LibraryError::TooLarge`] over `tus_max_size`,
    /// [`LibraryError::InsufficientStorage`], [`LibraryError::BadRequest`] for a bad ladder.
    pub fn create_upload(
        &self,
        length: u64,
        title: Option<String>,
        filename: Option<String>,
        ladder: Option<&[RungSpec]>,
    ) -> Result<(AssetRow, UploadRow), LibraryError> {
        if length > self.cfg.tus_max_size {
            return Err(LibraryError::TooLarge(format!(
                "Upload-Length {length} is over Tus-Max-Size {}",
                self.cfg.tus_max_size
            )));
        }
        let ladder = Self::check_ladder(ladder)?;
        self.check_space(length)?;
        let asset = self.new_asset("waiting", title, filename, ladder);
        let upload = UploadRow {
            id: asset.id.clone(),
            length,
            offset: 0,
            expires_ms: asset.created_ms + self.cfg.upload_expiry_secs as i64 * 1000,
        };
        std::fs::File::create(self.part_path(&asset.id))?;
        self.with_db(|c| {
            db::insert_asset(c, &asset)?;
            db::insert_upload(c, &upload, "")
        })?;
        self.announce("asset.created", &asset.id);
        Ok((asset, upload))
    }

    fn new_asset(
        &self,
        status: &str,
        title: Option<String>,
        filename: Option<String>,
        ladder: Option<String>,
    ) -> AssetRow {
        let now = now_ms();
        let filename = filename
            .map(|f| clip(f.trim(), 255))
            .filter(|f| !f.is_empty());
        let title = title
            .filter(|t| !t.trim().is_empty())
            .or_else(|| filename.clone())
            .map_or_else(|| "Untitled".to_owned(), |t| clip(t.trim(), 255));
        AssetRow {
            id: new_id(),
            title,
            filename,
            status: status.into(),
            phase: "upload".into(),
            percent: 0.0,
            eta_secs: None,
            duration_secs: None,
            source: None,
            renditions: None,
            ladder,
            error_code: None,
            error_message: None,
            log_tail: None,
            created_ms: now,
            updated_ms: now,
        }
    }

    fn part_path(&self, id: &str) -> PathBuf {
        self.uploads_dir.join(format!("{id}.part"))
    }

    fn source_path(&self, id: &str) -> PathBuf {
        self.sources_dir.join(id)
    }

    /// The published folder of an asset (`<media_root>/assets/<id>`).
    pub fn asset_dir(&self, id: &str) -> PathBuf {
        self.media_dir.join(id)
    }

    /// A tus upload's state (for `HEAD`).
    ///
    /// Errors: [`LibraryError::NotFound`] when it does not exist, expired or completed.
    pub fn upload(&self, id: &str) -> Result<UploadRow, LibraryError> {
        let u = self
            .with_db(|c| db::get_upload(c, id))?
            .ok_or_else(|| LibraryError::NotFound(format!("no upload {id}")))?;
        if u.offset < u.length && u.expires_ms < now_ms() {
            return Err(LibraryError::NotFound(format!("upload {id} expired")));
        }
        Ok(u)
    }

    /// Whether the upload `id` is whole and already the asset's source.
    ///
    /// Errors: [`LibraryError::NotFound`] as [`Library::upload`].
    pub fn upload_is_whole(&self, id: &str) -> Result<bool, LibraryError> {
        let u = self.upload(id)?;
        Ok(u.offset == u.length && !self.part_path(id).exists())
    }

    /// Forgets a whole upload (tus termination after the end): `HEAD` answers 404 from
    /// then on; the asset stays.
    pub fn forget_upload(&self, id: &str) -> Result<(), LibraryError> {
        self.with_db(|c| db::delete_upload(c, id))
    }

    /// Appends a tus `PATCH` body at `offset` (tus 1.0 core): checks the offset, writes
    /// every frame as it arrives (memory stays at one frame), fsyncs and records the new
    /// offset even when the body breaks off (the client resumes from `HEAD`). The upload
    /// that reaches its length is renamed to the asset's source, probed and queued.
    ///
    /// Errors: [`LibraryError::NotFound`], [`LibraryError::Conflict`] (offset mismatch, or
    /// another `PATCH` of the same upload in flight), [`LibraryError::TooLarge`] (past
    /// `Upload-Length`: what fits is kept), [`LibraryError::Io`].
    pub async fn append<S, E>(
        self: &Arc<Self>,
        id: &str,
        offset: u64,
        body: S,
    ) -> Result<UploadRow, LibraryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let idc = id.to_owned();
        let mut up = self.blocking(move |l| l.upload(&idc)).await?;
        if up.offset != offset {
            return Err(LibraryError::Conflict(format!(
                "Upload-Offset {offset} does not match the upload's offset {}",
                up.offset
            )));
        }
        if !lock(&self.writing).insert(id.to_owned()) {
            return Err(LibraryError::Conflict(
                "another PATCH of this upload is in progress".into(),
            ));
        }
        let _guard = WriteGuard(self, id.to_owned());
        if up.offset == up.length && !self.part_path(id).exists() {
            // Already whole and renamed to the source (a client resuming a finished
            // upload): nothing more is taken.
            let mut body = body;
            if let Some(Ok(f)) = body.next().await {
                if !f.is_empty() {
                    return Err(LibraryError::TooLarge(
                        "the upload is already complete".into(),
                    ));
                }
            }
            return Ok(up);
        }
        if up.offset == 0 {
            self.set_status(id, "uploading", "upload", 0.0)?;
        }
        let result = self.write_body(&self.part_path(id), &mut up, body).await;
        let (idc, off) = (id.to_owned(), up.offset);
        self.blocking(move |l| l.with_db(|c| db::set_upload_offset(c, &idc, off)))
            .await?;
        let pct = percent::PROBE * up.offset as f64 / up.length.max(1) as f64;
        self.set_status(id, "uploading", "upload", pct)?;
        if up.offset == up.length {
            // Whole, even when a chunked body went on past the length (refused below).
            self.finish_upload(id).await?;
            result?;
        } else {
            result?;
            self.announce("asset.progress", id);
        }
        Ok(up)
    }

    async fn write_body<S, E>(
        &self,
        path: &Path,
        up: &mut UploadRow,
        mut body: S,
    ) -> Result<(), LibraryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let file = tokio::fs::OpenOptions::new().write(true).open(path).await?;
        // Bytes past the recorded offset were never acknowledged (a crash mid-PATCH).
        file.set_len(up.offset).await?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        use tokio::io::AsyncSeekExt;
        file.seek(std::io::SeekFrom::Start(up.offset)).await?;
        let mut outcome = Ok(());
        while let Some(frame) = body.next().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    outcome = Err(LibraryError::BadRequest(format!("upload broke off: {e}")));
                    break;
                }
            };
            let room = up.length - up.offset;
            if frame.len() as u64 > room {
                file.write_all(&frame[..room as usize]).await?;
                up.offset = up.length;
                outcome = Err(LibraryError::TooLarge(
                    "the body goes past Upload-Length".into(),
                ));
                break;
            }
            file.write_all(&frame).await?;
            up.offset += frame.len() as u64;
        }
        file.flush().await?;
        file.get_ref().sync_data().await?;
        outcome
    }

    fn set_status(
        &self,
        id: &str,
        status: &str,
        phase: &str,
        pct: f64,
    ) -> Result<(), LibraryError> {
        self.with_db(|c| {
            c.execute(
                "UPDATE assets SET status=?2, phase=?3, percent=?4, updated_ms=?5 WHERE id=?1",
                rusqlite::params![id, status, phase, pct, now_ms()],
            )?;
            Ok(())
        })
    }

    /// A one-shot upload (multipart `POST /api/v1/assets`): a new asset whose source is
    /// `body`, at most `tus_max_size` bytes; probed and queued when the body ends.
    /// `expected` (the request's `Content-Length`) is checked against the free space first.
    ///
    /// Errors: as [`Library::create_upload`], and [`LibraryError::TooLarge`] when the body
    /// passes the limit (nothing is kept), [`LibraryError::BadRequest`] when it breaks off.
    pub async fn upload_whole<S, E>(
        self: &Arc<Self>,
        title: Option<String>,
        filename: Option<String>,
        expected: Option<u64>,
        body: S,
    ) -> Result<AssetRow, LibraryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.check_space(expected.unwrap_or(0))?;
        let asset = self.new_asset("uploading", title, filename, None);
        let id = asset.id.clone();
        std::fs::File::create(self.part_path(&id))?;
        let a2 = asset.clone();
        self.blocking(move |l| l.with_db(|c| db::insert_asset(c, &a2)))
            .await?;
        self.announce("asset.created", &id);
        let mut up = UploadRow {
            id: id.clone(),
            length: self.cfg.tus_max_size,
            offset: 0,
            expires_ms: 0,
        };
        if let Err(e) = self.write_body(&self.part_path(&id), &mut up, body).await {
            let _ = std::fs::remove_file(self.part_path(&id));
            let idc = id.clone();
            let _ = self
                .blocking(move |l| l.with_db(|c| db::delete_asset(c, &idc)))
                .await;
            self.publish("asset.deleted", &id, None);
            return Err(match e {
                LibraryError::TooLarge(_) => LibraryError::TooLarge(format!(
                    "the file is over the {} byte limit",
                    self.cfg.tus_max_size
                )),
                e => e,
            });
        }
        self.finish_upload(&id).await?;
        let idc = id.clone();
        self.blocking(move |l| l.with_db(|c| db::get_asset(c, &idc)))
            .await?
            .ok_or_else(|| LibraryError::NotFound(format!("asset {id} was deleted")))
    }

    /// The upload is whole: rename it to the source, probe it, and queue the transcode (or
    /// end the asset `errored` with the reason).
    async fn finish_upload(self: &Arc<Self>, id: &str) -> Result<(), LibraryError> {
        let src = self.source_path(id);
        tokio::fs::rename(self.part_path(id), &src).await?;
        // The upload row stays (offset = length), so a client resuming it learns from
        // HEAD that it is whole; it leaves with the asset.
        self.set_status(id, "uploading", "probe", percent::PROBE)?;
        match self.probe(&src).await {
            Ok(info) => {
                let idc = id.to_owned();
                let json = serde_json::to_string(&info).unwrap_or_default();
                self.blocking(move |l| {
                    l.with_db(|c| {
                        let now = now_ms();
                        c.execute(
                            "UPDATE assets SET status='queued', phase='queue', percent=?2, \
                             duration_secs=?3, source=?4, updated_ms=?5 WHERE id=?1",
                            rusqlite::params![
                                idc,
                                percent::TRANSCODE,
                                info.duration_secs,
                                json,
                                now
                            ],
                        )?;
                        db::queue_job(c, &idc, 0, now)
                    })
                })
                .await?;
                self.announce("asset.updated", id);
                self.wake.notify_one();
            }
            Err(e) => {
                self.fail(id, e.code(), &e.to_string(), None)?;
            }
        }
        Ok(())
    }

    async fn probe(&self, path: &Path) -> Result<probe::SourceInfo, probe::ProbeError> {
        let len = tokio::fs::metadata(path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if len == 0 {
            return Err(probe::ProbeError::Empty);
        }
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(&self.cfg.ffprobe)
                .args(probe::ffprobe_args(&path.to_string_lossy()))
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| probe::ProbeError::Unreadable("ffprobe took over 60 s".into()))?
        .map_err(|e| probe::ProbeError::Unreadable(format!("ffprobe did not run: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let err = err.trim();
            let path_s = path.to_string_lossy();
            // ffprobe names the file; the client never sees our paths.
            let err = err.replace(path_s.as_ref(), "input");
            return Err(probe::ProbeError::Unreadable(clip(
                if err.is_empty() {
                    "ffprobe failed"
                } else {
                    &err
                },
                300,
            )));
        }
        probe::parse(&out.stdout, self.cfg.max_duration_secs)
    }

    /// Ends an asset `errored` with `code`, `message` and ffmpeg's last log lines.
    fn fail(
        &self,
        id: &str,
        code: &str,
        message: &str,
        log_tail: Option<&str>,
    ) -> Result<(), LibraryError> {
        tracing::warn!(asset = id, code, message, "library: asset errored");
        self.with_db(|c| {
            c.execute(
                "UPDATE assets SET status='errored', eta_secs=NULL, error_code=?2, \
                 error_message=?3, log_tail=?4, updated_ms=?5 WHERE id=?1",
                rusqlite::params![id, code, message, log_tail, now_ms()],
            )?;
            c.execute(
                "UPDATE jobs SET state='failed', pid=NULL WHERE asset_id=?1",
                [id],
            )?;
            Ok(())
        })?;
        self.announce("asset.errored", id);
        Ok(())
    }

    /// One asset.
    pub fn get(&self, id: &str) -> Result<AssetRow, LibraryError> {
        self.with_db(|c| db::get_asset(c, id))?
            .ok_or_else(|| LibraryError::NotFound(format!("no asset {id}")))
    }

    /// Renames an asset.
    ///
    /// Errors: [`LibraryError::NotFound`], [`LibraryError::BadRequest`] for an empty title.
    pub fn rename(&self, id: &str, title: &str) -> Result<AssetRow, LibraryError> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 255 {
            return Err(LibraryError::BadRequest(
                "title must be 1 to 255 characters".into(),
            ));
        }
        let n = self.with_db(|c| {
            Ok(c.execute(
                "UPDATE assets SET title=?2, updated_ms=?3 WHERE id=?1",
                rusqlite::params![id, title, now_ms()],
            )?)
        })?;
        if n == 0 {
            return Err(LibraryError::NotFound(format!("no asset {id}")));
        }
        self.announce("asset.updated", id);
        self.get(id)
    }

    /// Queues an `errored` asset again (its source must still be there).
    ///
    /// Errors: [`LibraryError::NotFound`], [`LibraryError::Conflict`] unless errored with
    /// a source.
    pub fn retry(&self, id: &str) -> Result<AssetRow, LibraryError> {
        let a = self.get(id)?;
        if a.status != "errored" {
            return Err(LibraryError::Conflict(format!(
                "asset {id} is {}, only an errored asset is retried",
                a.status
            )));
        }
        if a.source.is_none() || !self.source_path(id).is_file() {
            return Err(LibraryError::Conflict(format!(
                "asset {id} has no usable source to retry: upload it again"
            )));
        }
        self.with_db(|c| {
            let now = now_ms();
            c.execute(
                "UPDATE assets SET status='queued', phase='queue', percent=?2, error_code=NULL, \
                 error_message=NULL, log_tail=NULL, updated_ms=?3 WHERE id=?1",
                rusqlite::params![id, percent::TRANSCODE, now],
            )?;
            db::queue_job(c, id, 0, now)
        })?;
        self.announce("asset.updated", id);
        self.wake.notify_one();
        self.get(id)
    }

    /// Deletes an asset: cancels its transcode (ffmpeg killed and waited for), then removes
    /// its rows, its source, its upload and its published folder.
    ///
    /// Errors: [`LibraryError::NotFound`].
    pub async fn delete(self: &Arc<Self>, id: &str) -> Result<(), LibraryError> {
        // The rows go first: a cancelled job then finds no asset to queue again, and the
        // worker no job to start (cancelling first let the job re-queue itself and a new
        // ffmpeg start on the files being deleted).
        let idc = id.to_owned();
        let existed = self
            .blocking(move |l| l.with_db(|c| db::delete_asset(c, &idc)))
            .await?;
        if !existed {
            return Err(LibraryError::NotFound(format!("no asset {id}")));
        }
        let done = lock(&self.running).get(id).map(|r| {
            r.cancel.cancel();
            r.done.clone()
        });
        if let Some(mut done) = done {
            let _ = tokio::time::timeout(Duration::from_secs(30), done.wait_for(|d| *d)).await;
        }
        for f in [self.part_path(id), self.source_path(id)] {
            let _ = tokio::fs::remove_file(f).await;
        }
        for d in [self.asset_dir(id), self.tmp_dir.join(id)] {
            let _ = tokio::fs::remove_dir_all(d).await;
        }
        self.publish("asset.deleted", id, None);
        Ok(())
    }

    /// Expires unfinished uploads: their bytes are deleted and the asset ends `errored`
    /// (`upload_expired`).
    pub fn sweep(&self) -> Result<usize, LibraryError> {
        let ids = self.with_db(|c| db::expired_uploads(c, now_ms()))?;
        for id in &ids {
            if lock(&self.writing).contains(id) {
                continue;
            }
            let _ = std::fs::remove_file(self.part_path(id));
            self.with_db(|c| db::delete_upload(c, id))?;
            self.fail(
                id,
                "upload_expired",
                "the upload did not finish before it expired",
                None,
            )?;
            self.publish(
                "upload.expired",
                id,
                self.with_db(|c| db::get_asset(c, id))?,
            );
        }
        Ok(ids.len())
    }

    /// Transcodes waiting in the queue.
    pub fn queued(&self) -> u64 {
        self.with_db(db::queued_jobs).unwrap_or(0)
    }

    /// Transcodes running now.
    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }

    /// The worker: starts queued jobs while fewer than [`LibraryConfig::jobs`] run, and
    /// sweeps expired uploads every minute, until `shutdown` (which cancels running jobs:
    /// they are queued again for the next start).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut sweep = tokio::time::interval(Duration::from_secs(60));
        let waiting = self
            .blocking(|l| {
                l.with_db(|c| {
                    let mut st =
                        c.prepare("SELECT DISTINCT video_id FROM nus_segments WHERE status='NIL'")?;
                    let rows = st.query_map([], |r| r.get::<_, i64>(0))?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                })
            })
            .await
            .unwrap_or_default();
        for id in waiting {
            self.nus_pump(id);
        }
        loop {
            while !shutdown.is_cancelled() && self.running() < self.cfg.jobs() {
                let next = self
                    .blocking(|l| {
                        l.with_db(|c| {
                            let Some((id, attempt)) = db::next_job(c)? else {
                                return Ok(None);
                            };
                            db::set_job(c, &id, "running", attempt, None, now_ms())?;
                            Ok(Some((id, attempt)))
                        })
                    })
                    .await;
                match next {
                    Ok(Some((id, attempt))) => self.start(id, attempt, &shutdown),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "library: cannot read the job queue");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = sweep.tick() => {
                    if let Err(e) = self.blocking(|l| l.sweep()).await {
                        tracing::warn!(error = %e, "library: upload sweep failed");
                    }
                }
            }
        }
        let waits: Vec<_> = lock(&self.running)
            .values()
            .map(|r| {
                r.cancel.cancel();
                r.done.clone()
            })
            .collect();
        for mut w in waits {
            let _ = tokio::time::timeout(Duration::from_secs(10), w.wait_for(|d| *d)).await;
        }
    }

    fn start(self: &Arc<Self>, id: String, attempt: i64, shutdown: &CancellationToken) {
        let cancel = shutdown.child_token();
        let (done_tx, done) = watch::channel(false);
        lock(&self.running).insert(
            id.clone(),
            Running {
                cancel: cancel.clone(),
                done,
            },
        );
        let me = Arc::clone(self);
        tokio::spawn(async move {
            job::run(&me, &id, attempt, &cancel).await;
            lock(&me.running).remove(&id);
            let _ = done_tx.send(true);
            me.wake.notify_one();
        });
    }
}

/// Kills an ffmpeg a previous process left running on `tmp` (only when its command line
/// names that folder: a reused pid is left alone).
fn kill_stale(pid: u32, tmp: &Path) {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let needle = tmp.to_string_lossy();
    if String::from_utf8_lossy(&cmdline).contains(needle.as_ref()) {
        if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            tracing::info!(
                pid,
                "library: killed an ffmpeg left by the previous process"
            );
        }
    }
}

/// At most `max` characters of `s`.
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_uploads_expire_and_lose_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(
            LibraryConfig::default(),
            &dir.path().join("data"),
            &dir.path().join("media"),
            0,
        )
        .unwrap();
        let (a, _) = lib
            .create_upload(100, Some("t".into()), None, None)
            .unwrap();
        let (b, _) = lib.create_upload(100, None, None, None).unwrap();
        assert!(lib.part_path(&a.id).exists());
        lib.with_db(|c| {
            c.execute("UPDATE uploads SET expires_ms=1 WHERE id=?1", [&a.id])?;
            Ok(())
        })
        .unwrap();
        assert_eq!(lib.sweep().unwrap(), 1);
        assert!(!lib.part_path(&a.id).exists());
        let a = lib.get(&a.id).unwrap();
        assert_eq!(a.status, "errored");
        assert_eq!(a.error_code.as_deref(), Some("upload_expired"));
        assert!(matches!(lib.upload(&a.id), Err(LibraryError::NotFound(_))));
        assert_eq!(
            lib.get(&b.id).unwrap().status,
            "waiting",
            "the other one stays"
        );
        assert!(lib.part_path(&b.id).exists());
        assert!(matches!(
            lib.create_upload(u64::MAX, None, None, None),
            Err(LibraryError::TooLarge(_))
        ));
    }
}
