//! The stream archive: every complete media segment of every live LL-DASH/CMAF stream, kept
//! on disk beyond the encoder's window, with a persisted segment index (SQLite, see [`db`]),
//! encoder sessions, retention and pins, and recordings (named, pinned time ranges of the
//! archive, replayed by [`replay`]).
//!
//! ```text
//! ingest --IngestEvent::ObjectComplete--> Archive::on_complete
//!     init segment  -> kept in memory (and on disk in the data dir) until a session needs it
//!     media segment -> which representation and number (the stream's MPD), timing (tfdt/trun
//!                      in timescale ticks), wall clock (prft, else arrival), session
//!                   -> file hard-linked (or written) to <data>/.archive/<session>/<file>
//!                   -> one row in `segments`
//! sweeper -> Archive::sweep (retention, max_bytes; pinned segments stay)
//!         -> Archive::tick  (recording states)
//! ```
//!
//! Encoder sessions: a new `MPD@availabilityStartTime`, a re-sent init segment with other
//! bytes, or a segment number at or below the last one of its representation starts a new
//! session. Each session has its own folder, so ffmpeg reusing `chunk-stream0-00001.m4s`
//! after a restart never overwrites an earlier session's segment.
//!
//! Synchronous code: every method runs on a blocking thread (the server wraps them in
//! `spawn_blocking`); the one SQLite connection is behind a mutex.

pub mod db;
pub mod replay;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::Connection;
use serde::Deserialize;

use crate::cmaf::{CmafChunk, InitInfo};
use crate::error::ErrorKind;
use crate::events::CompletedObject;
use crate::live::Registry;
use crate::store::ObjectKey;

/// Idle reader connections kept open.
pub const MAX_READERS: usize = 4;

/// Folder of the archive under the data dir (hidden: no pushed key can start with `.`).
pub const ARCHIVE_DIR: &str = ".archive";
/// The index database under the data dir.
pub const DB_FILE: &str = ".casterpak.db";

/// Errors of the archive layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// SQLite failed.
    #[error("archive index: {0}")]
    Db(String),
    /// A file of the archive could not be read or written.
    #[error("archive file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No such recording or stream.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed (bad time, bad name).
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the archive's state (a start older than the archive, a
    /// recording already stopped).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed but impossible (an end before the start, a range too long).
    #[error("{0}")]
    Unprocessable(String),
}

impl ArchiveError {
    /// The error class for the one HTTP mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Db(_) | ArchiveError::Io { .. } => ErrorKind::Internal,
            ArchiveError::NotFound(_) => ErrorKind::NotFound,
            ArchiveError::BadRequest(_) => ErrorKind::BadRequest,
            ArchiveError::Conflict(_) => ErrorKind::Conflict,
            ArchiveError::Unprocessable(_) => ErrorKind::Unprocessable,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `[archive]` settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Seconds every archived segment is kept (0 keeps only what the encoder leaves:
    /// archived segments go as soon as they are not pinned by a recording).
    pub retention_secs: u64,
    /// Largest size of the archive in bytes; the oldest unpinned segments go first past it
    /// (0 = no limit).
    pub max_bytes: u64,
    /// Longest time range a view or a recording may span, in seconds.
    pub max_range_secs: u64,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            retention_secs: 86_400,
            max_bytes: 0,
            max_range_secs: 86_400,
        }
    }
}

/// One representation of an encoder session (from the MPD and the init segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepRow {
    /// `Representation@id`.
    pub rep: String,
    /// `video`, `audio`, `text` or `other`.
    pub kind: String,
    /// RFC 6381 codecs string.
    pub codecs: Option<String>,
    /// Declared bandwidth in bits per second.
    pub bandwidth: Option<u64>,
    /// Picture size in pixels.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Frame rate as the MPD wrote it (`30/1`).
    pub frame_rate: Option<String>,
    /// Ticks per second of `media_time` and `duration` (the init segment's `mdhd`).
    pub timescale: u32,
    /// File name of the init segment in the session folder.
    pub init_file: String,
    /// The MPD's media template with `$RepresentationID$` substituted
    /// (`chunk-stream0-$Number%05d$.m4s`).
    pub media_template: Option<String>,
}

/// One archived media segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    /// Encoder session.
    pub session_id: i64,
    /// `Representation@id`.
    pub rep: String,
    /// Segment number (`$Number$`).
    pub number: u64,
    /// Stream name (`live/x`).
    pub stream: String,
    /// `tfdt` of the first chunk, in timescale ticks.
    pub media_time: u64,
    /// Sum of the sample durations, in timescale ticks.
    pub duration: u64,
    /// Wall clock of the first sample, Unix ms (`prft` when present, else arrival).
    pub wall_ms: i64,
    /// Duration in milliseconds (rounded).
    pub dur_ms: i64,
    /// File name in the session folder.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Recording states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordingState {
    /// Waiting for its start or for its stream's first segment.
    Pending,
    /// Segments in its range are being archived.
    Recording,
    /// Its end has passed and its last segment is archived.
    Done,
    /// Its range ended with no segment archived.
    Failed,
}

impl RecordingState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Pending => "pending",
            RecordingState::Recording => "recording",
            RecordingState::Done => "done",
            RecordingState::Failed => "failed",
        }
    }

    /// From the API name.
    pub fn parse(s: &str) -> Option<RecordingState> {
        Some(match s {
            "pending" => RecordingState::Pending,
            "recording" => RecordingState::Recording,
            "done" => RecordingState::Done,
            "failed" => RecordingState::Failed,
            _ => return None,
        })
    }

    /// Whether the recording can still change (not done or failed).
    pub fn is_active(self) -> bool {
        matches!(self, RecordingState::Pending | RecordingState::Recording)
    }
}

/// A recording: a named, pinned time range of one stream's archive.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRow {
    /// Opaque id (`rec_` + 32 hex digits).
    pub id: String,
    /// Stream name.
    pub stream: String,
    /// State.
    pub state: RecordingState,
    /// Start, Unix ms.
    pub start_ms: i64,
    /// End, Unix ms; `None` while open-ended.
    pub end_ms: Option<i64>,
    /// Free text.
    pub title: Option<String>,
    pub description: Option<String>,
    /// Auto-stop after this many seconds from the start.
    pub max_duration_secs: Option<f64>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Unix ms.
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// What a new recording asks for (times in Unix ms).
#[derive(Debug, Clone, Default)]
pub struct NewRecording {
    pub stream: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub max_duration_secs: Option<f64>,
}

/// A state change of a recording found by [`Archive::tick`].
#[derive(Debug, Clone)]
pub struct Transition {
    pub recording: RecordingRow,
    pub from: RecordingState,
}

/// Per stream: the session segments are going into.
#[derive(Debug, Default)]
struct OpenSession {
    id: i64,
    ast: Option<String>,
    /// Highest number per representation.
    last: HashMap<String, u64>,
    /// Representations whose row and init file exist, with the init bytes' hash.
    reps: HashMap<String, u64>,
    /// An init segment with other bytes arrived: the next segment opens a new session.
    init_changed: bool,
    /// HLS pushes: the media sequence of the last playlist of each representation (a
    /// lower one is a restarted encoder).
    hls_sequence: HashMap<String, u64>,
    /// CMAF pushes: the wall clock of media time 0 (Unix ms), from the session's first
    /// segment. Every segment's wall clock is this plus its media time, so all the
    /// representations of a session map a media time to the same date (RFC 8216bis §6.2.4:
    /// EXT-X-PROGRAM-DATE-TIME must agree across renditions).
    epoch_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct Writer {
    loaded: bool,
    open: HashMap<String, OpenSession>,
    /// Last uploaded init segments: key -> (bytes, hash).
    inits: HashMap<ObjectKey, (Bytes, u64)>,
    /// Variants of pushed HLS multivariant playlists: media playlist key -> facts.
    hls_variants: HashMap<ObjectKey, crate::hls::parse::ParsedVariant>,
    /// Pushed HLS media playlists that listed a segment not persisted yet: playlist key ->
    /// (body, upload end). ffmpeg's last playlist can arrive before its last segment is
    /// complete (two connections), and no later playlist lists it again; the segment's own
    /// completion archives it from here.
    hls_pending: HashMap<ObjectKey, (Bytes, std::time::SystemTime)>,
    warned: HashSet<String>,
}

/// The archive of one data dir.
#[derive(Debug)]
pub struct Archive {
    data_dir: PathBuf,
    root: PathBuf,
    cfg: ArchiveConfig,
    conn: Mutex<Connection>,
    /// Idle read-only connections (WAL readers never wait for the writer).
    readers: Mutex<Vec<Connection>>,
    db_path: PathBuf,
    writer: Mutex<Writer>,
    disabled: RwLock<HashSet<String>>,
    transitions: tokio::sync::broadcast::Sender<Transition>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Unix time in ms.
pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// A hash of an init segment's codec configuration: its `stsd` box (ISO/IEC 14496-12
/// §8.5.2) when found, else the whole init. Durations and other header fields an encoder
/// may rewrite do not count: only a new codec configuration is a new encoder session.
fn codec_hash(init: &[u8]) -> u64 {
    let stsd = init.windows(4).position(|w| w == b"stsd").and_then(|at| {
        let start = at.checked_sub(4)?;
        let size = u32::from_be_bytes(init.get(start..at)?.try_into().ok()?) as usize;
        init.get(start..start.checked_add(size)?)
    });
    hash(stsd.unwrap_or(init))
}

/// Timing of a media segment from its CMAF chunks: (media time of the first sample, total
/// duration), both in timescale ticks. Samples without a duration in the `moof` take the
/// init segment's `trex` default.
pub fn segment_timing(chunks: &[CmafChunk], init: &InitInfo) -> Option<(u64, u64)> {
    let first = chunks.first()?;
    let default = init
        .track(first.track_id)
        .or(init.tracks.first())
        .map_or(0, |t| t.default_sample_duration as u64);
    let duration = chunks.iter().fold(0u64, |acc, c| {
        acc.saturating_add(c.duration)
            .saturating_add(c.samples_without_duration as u64 * default)
    });
    Some((first.decode_time, duration))
}

impl Archive {
    /// Opens the archive of `data_dir` (`.casterpak.db` and `.archive/`, created when
    /// missing). Loads nothing but the disabled-stream flags: the index is read on demand.
    ///
    /// Errors: [`ArchiveError::Db`], [`ArchiveError::Io`].
    pub fn open(data_dir: &Path, cfg: ArchiveConfig) -> Result<Archive, ArchiveError> {
        let root = data_dir.join(ARCHIVE_DIR);
        std::fs::create_dir_all(&root).map_err(io_err(&root))?;
        let conn = db::open(&data_dir.join(DB_FILE))?;
        let disabled = db::disabled_streams(&conn)?.into_iter().collect();
        Ok(Archive {
            data_dir: data_dir.to_owned(),
            root,
            cfg,
            conn: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            db_path: data_dir.join(DB_FILE),
            writer: Mutex::new(Writer::default()),
            disabled: RwLock::new(disabled),
            transitions: tokio::sync::broadcast::channel(1024).0,
        })
    }

    /// A receiver of every recording state change from now on (whoever caused it: the
    /// sweeper's tick, a create or a stop).
    pub fn transitions(&self) -> tokio::sync::broadcast::Receiver<Transition> {
        self.transitions.subscribe()
    }

    /// The settings.
    pub fn config(&self) -> &ArchiveConfig {
        &self.cfg
    }

    /// Path of an archived file of a session (`<data>/.archive/<session>/<file>`); `None`
    /// when `file` is not a plain file name.
    pub fn file_path(&self, session_id: i64, file: &str) -> Option<PathBuf> {
        let ok = !file.is_empty()
            && !file.starts_with('.')
            && !file.contains(['/', '\\'])
            && !file.chars().any(char::is_control);
        ok.then(|| self.root.join(session_id.to_string()).join(file))
    }

    /// Where the newest archived copy of the live object `dir/file` is, if any.
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn find_live_file(&self, dir: &str, file: &str) -> Result<Option<PathBuf>, ArchiveError> {
        let session = self.with_read(|c| db::session_of_file(c, dir, file))?;
        Ok(session.and_then(|s| self.file_path(s, file)))
    }

    /// Remembers an encoder DELETE of live object `key` to carry out at `due_ms` (Unix ms),
    /// so a restart restores the timer.
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn schedule_delete(
        &self,
        key: &str,
        deleted_ms: i64,
        due_ms: i64,
    ) -> Result<(), ArchiveError> {
        self.with_conn(|c| db::put_delete(c, key, deleted_ms, due_ms))
    }

    /// The DELETE of `key` was carried out.
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn done_delete(&self, key: &str) -> Result<(), ArchiveError> {
        self.with_conn(|c| db::remove_delete(c, key))
    }

    /// DELETEs still to carry out: (key, deleted Unix ms, due Unix ms).
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn pending_deletes(&self) -> Result<Vec<(String, i64, i64)>, ArchiveError> {
        self.with_conn(db::pending_deletes)
    }

    /// Bytes of every archived segment (a sum over the index, on a read connection).
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn total_bytes(&self) -> Result<u64, ArchiveError> {
        self.with_read(db::total_bytes)
    }

    /// Runs the read-only `f` on a reader connection of its own (opened on demand, up to
    /// [`MAX_READERS`] kept), so long reads (a day-long manifest) never hold up archiving,
    /// the API or each other.
    ///
    /// Errors: those of `f`, [`ArchiveError::Db`] when no connection opens.
    pub fn with_read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, ArchiveError>,
    ) -> Result<T, ArchiveError> {
        let conn = match lock(&self.readers).pop() {
            Some(c) => c,
            None => db::open_reader(&self.db_path)?,
        };
        let out = f(&conn);
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_READERS {
            idle.push(conn);
        }
        out
    }

    /// Runs `f` with the index's writer connection.
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, ArchiveError>,
    ) -> Result<T, ArchiveError> {
        f(&lock(&self.conn))
    }

    /// Whether pushes to `stream` are refused.
    pub fn is_disabled(&self, stream: &str) -> bool {
        self.disabled
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(stream)
    }

    /// Disables or enables a stream (persisted).
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn set_disabled(&self, stream: &str, disabled: bool) -> Result<(), ArchiveError> {
        self.with_conn(|c| db::set_disabled(c, stream, disabled))?;
        let mut set = self.disabled.write().unwrap_or_else(|e| e.into_inner());
        if disabled {
            set.insert(stream.to_owned());
        } else {
            set.remove(stream);
        }
        Ok(())
    }

    fn load_open_sessions(&self, w: &mut Writer) -> Result<(), ArchiveError> {
        if w.loaded {
            return Ok(());
        }
        for (stream, id, ast, last) in self.with_conn(db::last_sessions)? {
            let reps = self
                .with_conn(|c| db::reps_of(c, id))?
                .into_iter()
                .map(|r| (r.rep, 0u64))
                .collect();
            let epoch_ms = self.with_conn(|c| db::session_epoch(c, id))?;
            w.open.insert(
                stream,
                OpenSession {
                    id,
                    ast,
                    last: last.into_iter().collect(),
                    reps,
                    init_changed: false,
                    hls_sequence: HashMap::new(),
                    epoch_ms,
                },
            );
        }
        w.loaded = true;
        Ok(())
    }

    /// Takes a finished upload: remembers init segments; archives media segments of a
    /// stream whose MPD names them. Other objects are ignored.
    ///
    /// Errors: [`ArchiveError::Db`], [`ArchiveError::Io`] (the segment is then not
    /// archived; the live stream is not affected).
    pub fn on_complete(
        &self,
        registry: &Registry,
        obj: &CompletedObject,
    ) -> Result<Option<SegmentRow>, ArchiveError> {
        let mut w = lock(&self.writer);
        self.load_open_sessions(&mut w)?;
        let stream = obj.key.dir().to_owned();
        if obj.init.is_some() && obj.chunks.is_empty() {
            let h = codec_hash(&obj.bytes);
            if let Some(open) = w.open.get_mut(&stream) {
                let file = obj.key.file_name();
                // Which representation uses this init file, in the current MPD.
                if let Some(mpd) = registry.mpd(&stream) {
                    for rep in mpd.representations() {
                        if rep.init.as_deref() == Some(file) {
                            if let Some(&old) = open.reps.get(&rep.id) {
                                if old != 0 && old != h {
                                    open.init_changed = true;
                                }
                            }
                        }
                    }
                }
            }
            w.inits.insert(obj.key.clone(), (obj.bytes.clone(), h));
            return Ok(None);
        }
        if obj.key.extension().as_deref() == Some("m3u8") && registry.mpd(&stream).is_none() {
            return self.on_hls_playlist(&mut w, obj);
        }
        let pending: Vec<ObjectKey> = w
            .hls_pending
            .keys()
            .filter(|k| k.dir() == stream)
            .cloned()
            .collect();
        if !pending.is_empty() {
            let mut last = None;
            for key in pending {
                let Some((bytes, finished_at)) = w.hls_pending.remove(&key) else {
                    continue;
                };
                let playlist = CompletedObject {
                    key,
                    bytes,
                    chunks: Vec::new(),
                    init: None,
                    finished_at,
                    persisted: true,
                };
                if let Some(row) = self.on_hls_playlist(&mut w, &playlist)? {
                    last = Some(row);
                }
            }
            return Ok(last);
        }
        let Some((rep, number)) = registry.segment_of(&obj.key) else {
            return Ok(None);
        };
        if obj.chunks.is_empty() {
            return Ok(None);
        }
        let Some(init_file) = rep.init.clone() else {
            return Ok(None);
        };
        let Some(init_info) = registry.init_of(&stream, &init_file) else {
            if w.warned.insert(format!("{stream}/{init_file}")) {
                tracing::warn!(
                    stream,
                    init = init_file,
                    "no init segment known: not archived"
                );
            }
            return Ok(None);
        };
        let Some(track) = init_info.tracks.first() else {
            return Ok(None);
        };
        let timescale = track.timescale;
        let Some((media_time, duration)) = segment_timing(&obj.chunks, &init_info) else {
            return Ok(None);
        };
        let dur_ms = (duration as i128 * 1000 / timescale.max(1) as i128) as i64;
        let arrival = unix_ms(obj.finished_at) - dur_ms;
        let wall_ms = match crate::cmaf::first_prft(&obj.bytes) {
            Some((ntp_ms, prft_media)) => {
                let offset_ms =
                    (media_time as i128 - prft_media as i128) * 1000 / timescale.max(1) as i128;
                let w = ntp_ms + offset_ms as i64;
                // An encoder clock a day off is not trusted.
                if (w - arrival).abs() < 86_400_000 {
                    w
                } else {
                    arrival
                }
            }
            None => arrival,
        };
        let ast = registry
            .mpd(&stream)
            .and_then(|m| m.availability_start_time.clone());
        // ffmpeg's first MPD versions may move availabilityStartTime by a few ms: only a
        // jump of more than a second is a new run. A segment number below the last one is a
        // restarted numbering (the same number again is a re-PUT of that segment).
        let ast_ms = |a: &Option<String>| a.as_deref().and_then(|t| parse_time(t).ok());
        let new_session = match w.open.get(&stream) {
            None => true,
            Some(open) => {
                ast_ms(&ast)
                    .zip(ast_ms(&open.ast))
                    .is_some_and(|(a, b)| (a - b).abs() > 1000)
                    || open.init_changed
                    || open.last.get(&rep.id).is_some_and(|&last| number < last)
            }
        };
        if new_session {
            let id = self.with_conn(|c| db::insert_session(c, &stream, ast.as_deref(), wall_ms))?;
            tracing::info!(stream, session = id, "archive: new encoder session");
            w.open.insert(
                stream.clone(),
                OpenSession {
                    id,
                    ast: ast.clone(),
                    ..Default::default()
                },
            );
        }
        let session_id = w.open.get(&stream).map_or(0, |o| o.id);
        let media_ms = (media_time as i128 * 1000 / timescale.max(1) as i128) as i64;
        let epoch = match w.open.get(&stream).and_then(|o| o.epoch_ms) {
            Some(e) => e,
            None => {
                let e = wall_ms - media_ms;
                self.with_conn(|c| db::set_session_epoch(c, session_id, e))?;
                if let Some(open) = w.open.get_mut(&stream) {
                    open.epoch_ms = Some(e);
                }
                e
            }
        };
        let wall_ms = epoch + media_ms;
        let session_dir = self.root.join(session_id.to_string());
        let has_rep = w
            .open
            .get(&stream)
            .is_some_and(|o| o.reps.contains_key(&rep.id));
        if !has_rep {
            std::fs::create_dir_all(&session_dir).map_err(io_err(&session_dir))?;
            let init_key = obj.key.sibling(&init_file).ok();
            let init_bytes = match init_key.as_ref().and_then(|k| w.inits.get(k)) {
                Some((b, _)) => Some(b.clone()),
                None => init_key
                    .as_ref()
                    .and_then(|k| std::fs::read(k.to_path(&self.data_dir)).ok())
                    .map(Bytes::from),
            };
            let Some(init_bytes) = init_bytes else {
                if w.warned.insert(format!("{stream}/{init_file}/bytes")) {
                    tracing::warn!(
                        stream,
                        init = init_file,
                        "init segment bytes not found: not archived"
                    );
                }
                return Ok(None);
            };
            let path = session_dir.join(&init_file);
            write_file(&path, &init_bytes)?;
            let row = RepRow {
                rep: rep.id.clone(),
                kind: rep.content_type.clone(),
                codecs: rep.codecs.clone(),
                bandwidth: rep.bandwidth,
                width: rep.width.or(Some(track.width as u32).filter(|w| *w > 0)),
                height: rep.height.or(Some(track.height as u32).filter(|h| *h > 0)),
                frame_rate: rep.frame_rate.clone(),
                timescale,
                init_file: init_file.clone(),
                media_template: rep.media.clone(),
            };
            self.with_conn(|c| db::upsert_rep(c, session_id, &row))?;
            if let Some(open) = w.open.get_mut(&stream) {
                open.reps.insert(rep.id.clone(), codec_hash(&init_bytes));
            }
        }
        let file = obj.key.file_name().to_owned();
        let path = session_dir.join(&file);
        let linked = obj.persisted
            && std::fs::remove_file(&path)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .and_then(|()| std::fs::hard_link(obj.key.to_path(&self.data_dir), &path))
                .is_ok()
            && std::fs::metadata(&path).is_ok_and(|m| m.len() == obj.bytes.len() as u64);
        if !linked {
            write_file(&path, &obj.bytes)?;
        }
        let row = SegmentRow {
            session_id,
            rep: rep.id.clone(),
            number,
            stream: stream.clone(),
            media_time,
            duration,
            wall_ms,
            dur_ms,
            file,
            bytes: obj.bytes.len() as u64,
        };
        self.with_conn(|c| db::upsert_segment(c, &row))?;
        if let Some(open) = w.open.get_mut(&stream) {
            open.last.insert(rep.id.clone(), number);
        }
        Ok(Some(row))
    }

    /// An HLS push's playlist (RFC 8216bis): a multivariant playlist gives the variants'
    /// facts; a media playlist archives every listed segment not archived yet (its bytes
    /// from the data dir, where they were persisted before the playlist that lists them),
    /// with its EXTINF as duration, its PROGRAM-DATE-TIME (else its completion time) as
    /// wall clock, and its media sequence number. The representation is the playlist's
    /// file stem; a media sequence going back is a new encoder session. Returns the last
    /// segment archived.
    fn on_hls_playlist(
        &self,
        w: &mut Writer,
        obj: &CompletedObject,
    ) -> Result<Option<SegmentRow>, ArchiveError> {
        use crate::hls::parse;
        let Ok(text) = std::str::from_utf8(&obj.bytes) else {
            return Ok(None);
        };
        let stream = obj.key.dir().to_owned();
        let variants = parse::parse_multivariant(text);
        if !variants.is_empty() {
            for v in variants {
                if let Ok(k) = obj.key.sibling(&v.uri) {
                    w.hls_variants.insert(k, v);
                }
            }
            return Ok(None);
        }
        let Some(media) = parse::parse_media(text) else {
            return Ok(None);
        };
        // This playlist supersedes an earlier one still waiting for a segment.
        w.hls_pending.remove(&obj.key);
        let file_name = obj.key.file_name();
        let rep = file_name
            .rsplit_once('.')
            .map_or(file_name, |(stem, _)| stem)
            .to_owned();
        let restarted = w.open.get(&stream).is_none_or(|o| {
            o.ast.is_some()
                || o.hls_sequence
                    .get(&rep)
                    .is_some_and(|&last| media.media_sequence < last)
        });
        if restarted {
            let first_wall = media
                .segments
                .first()
                .and_then(|s| s.pdt_ms)
                .unwrap_or_else(|| unix_ms(obj.finished_at));
            let id = self.with_conn(|c| db::insert_session(c, &stream, None, first_wall))?;
            tracing::info!(
                stream,
                session = id,
                "archive: new encoder session (HLS push)"
            );
            w.open.insert(
                stream.clone(),
                OpenSession {
                    id,
                    ..Default::default()
                },
            );
        }
        let variant = w.hls_variants.get(&obj.key).cloned();
        let Some(open) = w.open.get_mut(&stream) else {
            return Ok(None);
        };
        open.hls_sequence.insert(rep.clone(), media.media_sequence);
        let session_id = open.id;
        let session_dir = self.root.join(session_id.to_string());
        let mut last_row = None;
        for (i, seg) in media.segments.iter().enumerate() {
            let number = media.media_sequence + i as u64;
            if open.last.get(&rep).is_some_and(|&l| number <= l) {
                continue;
            }
            // Only plain file names beside the playlist are archived.
            let Ok(seg_key) = obj.key.sibling(&seg.uri) else {
                continue;
            };
            if seg.uri.contains('/') {
                continue;
            }
            let src = seg_key.to_path(&self.data_dir);
            let Ok(meta) = std::fs::metadata(&src) else {
                // Not persisted yet: the next playlist lists it again, or, for the last
                // playlist, the segment's own completion re-reads this one.
                w.hls_pending
                    .insert(obj.key.clone(), (obj.bytes.clone(), obj.finished_at));
                break;
            };
            std::fs::create_dir_all(&session_dir).map_err(io_err(&session_dir))?;
            let init_file = seg.map_uri.as_deref().filter(|u| !u.contains('/'));
            if !open.reps.contains_key(&rep) {
                if let Some(init) = init_file {
                    let init_src = obj
                        .key
                        .sibling(init)
                        .ok()
                        .map(|k| k.to_path(&self.data_dir));
                    let Some(bytes) = init_src.and_then(|p| std::fs::read(p).ok()) else {
                        break;
                    };
                    write_file(&session_dir.join(init), &bytes)?;
                }
                let row = RepRow {
                    rep: rep.clone(),
                    kind: "muxed".into(),
                    codecs: variant.as_ref().and_then(|v| v.codecs.clone()),
                    bandwidth: variant.as_ref().and_then(|v| v.bandwidth),
                    width: variant.as_ref().and_then(|v| v.resolution).map(|r| r.0),
                    height: variant.as_ref().and_then(|v| v.resolution).map(|r| r.1),
                    frame_rate: None,
                    timescale: 90_000,
                    init_file: init_file.unwrap_or_default().to_owned(),
                    media_template: None,
                };
                self.with_conn(|c| db::upsert_rep(c, session_id, &row))?;
                open.reps.insert(rep.clone(), 0);
            }
            let dst = session_dir.join(&seg.uri);
            let _ = std::fs::remove_file(&dst);
            if std::fs::hard_link(&src, &dst).is_err() {
                let bytes = std::fs::read(&src).map_err(io_err(&src))?;
                write_file(&dst, &bytes)?;
            }
            let completed = meta.modified().map(unix_ms).unwrap_or_else(|_| now_ms());
            let dur_ms = seg.duration_ms as i64;
            let wall_ms = seg.pdt_ms.unwrap_or(completed - dur_ms);
            let row = SegmentRow {
                session_id,
                rep: rep.clone(),
                number,
                stream: stream.clone(),
                media_time: (wall_ms.max(0) as u64).saturating_mul(90),
                duration: seg.duration_ms.saturating_mul(90),
                wall_ms,
                dur_ms,
                file: seg.uri.clone(),
                bytes: meta.len(),
            };
            self.with_conn(|c| db::upsert_segment(c, &row))?;
            open.last.insert(rep.clone(), number);
            last_row = Some(row);
        }
        Ok(last_row)
    }

    /// Removes unpinned segments past the retention, oldest first, then more while the
    /// archive is above `max_bytes`; then the folders of emptied sessions. Returns how many
    /// segments went.
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn sweep(&self, now_ms: i64) -> Result<u64, ArchiveError> {
        let cutoff = now_ms - (self.cfg.retention_secs as i64) * 1000;
        let mut removed = 0u64;
        loop {
            let batch = self.with_conn(|c| db::expired(c, None, cutoff, 500))?;
            if batch.is_empty() {
                break;
            }
            removed += self.remove_segments(&batch)?;
        }
        if self.cfg.max_bytes > 0 {
            let mut total = self.with_conn(db::total_bytes)?;
            while total > self.cfg.max_bytes {
                let mut batch = self.with_conn(|c| db::expired(c, None, i64::MAX, 100))?;
                if batch.is_empty() {
                    break;
                }
                // Only as many of the oldest as it takes to get under the limit.
                let mut keep = 0;
                for s in &batch {
                    if total <= self.cfg.max_bytes {
                        break;
                    }
                    total = total.saturating_sub(s.4);
                    keep += 1;
                }
                batch.truncate(keep);
                removed += self.remove_segments(&batch)?;
            }
        }
        if removed > 0 {
            for id in self.with_conn(db::drop_empty_sessions)? {
                let _ = std::fs::remove_dir_all(self.root.join(id.to_string()));
            }
        }
        Ok(removed)
    }

    fn remove_segments(&self, batch: &[db::Expired]) -> Result<u64, ArchiveError> {
        let conn = lock(&self.conn);
        conn.execute_batch("BEGIN")
            .map_err(|e| ArchiveError::Db(e.to_string()))?;
        let mut touched = HashSet::new();
        for (session, rep, number, file, _) in batch {
            db::delete_segment(&conn, *session, rep, *number)?;
            let _ = std::fs::remove_file(self.root.join(session.to_string()).join(file));
            touched.insert(*session);
        }
        for session in touched {
            db::refresh_session_span(&conn, session)?;
        }
        conn.execute_batch("COMMIT")
            .map_err(|e| ArchiveError::Db(e.to_string()))?;
        Ok(batch.len() as u64)
    }

    /// Removes every unpinned segment of `stream`: (removed, kept because pinned).
    ///
    /// Errors: [`ArchiveError::NotFound`] for a stream without archive, [`ArchiveError::Db`].
    pub fn delete_stream_archive(&self, stream: &str) -> Result<(u64, u64), ArchiveError> {
        if self.with_conn(|c| db::session_ids(c, stream))?.is_empty() {
            return Err(ArchiveError::NotFound(format!(
                "no archive for stream {stream}"
            )));
        }
        let mut removed = 0;
        loop {
            let batch = self.with_conn(|c| db::expired(c, Some(stream), i64::MAX, 500))?;
            if batch.is_empty() {
                break;
            }
            removed += self.remove_segments(&batch)?;
        }
        for id in self.with_conn(db::drop_empty_sessions)? {
            let _ = std::fs::remove_dir_all(self.root.join(id.to_string()));
        }
        let kept = self.with_conn(|c| db::pinned_count(c, stream))?;
        Ok((removed, kept))
    }

    /// Creates a recording. A start in the past must be inside the stream's archive; a
    /// stream with no segment yet (or a start in the future) gives a `pending` recording.
    ///
    /// Errors: [`ArchiveError::BadRequest`] (bad stream name),
    /// [`ArchiveError::Unprocessable`] (end not after start, range over `max_range_secs`,
    /// non-positive max duration), [`ArchiveError::Conflict`] (start older than the
    /// archive), [`ArchiveError::Db`].
    pub fn create_recording(
        &self,
        new: NewRecording,
        now: i64,
    ) -> Result<RecordingRow, ArchiveError> {
        if ObjectKey::from_decoded(&new.stream).is_err() {
            return Err(ArchiveError::BadRequest(format!(
                "stream {:?} is not a valid stream name",
                new.stream
            )));
        }
        let start = new.start_ms.unwrap_or(now);
        if let Some(m) = new.max_duration_secs {
            if !(m.is_finite() && m > 0.0 && m <= self.cfg.max_range_secs as f64) {
                return Err(ArchiveError::Unprocessable(format!(
                    "max_duration_secs must be above 0 and at most archive.max_range_secs ({})",
                    self.cfg.max_range_secs
                )));
            }
        }
        let mut end = new.end_ms;
        if let Some(m) = new.max_duration_secs {
            let auto = start.saturating_add((m * 1000.0) as i64);
            end = Some(end.map_or(auto, |e| e.min(auto)));
        }
        self.check_range(start, end)?;
        // A start more than a second in the past must be archived.
        if start < now - 1000 {
            let bounds = self.with_conn(|c| db::stream_bounds(c, &new.stream))?;
            match bounds {
                Some((oldest, _)) if start >= oldest => {}
                Some((oldest, _)) => {
                    // Within half a segment of the oldest one: segment-granular start.
                    let first = self.with_conn(|c| {
                        db::segments_in(c, &new.stream, oldest, oldest.saturating_add(3_600_000))
                    })?;
                    let slack = first.first().map_or(0, |s| s.dur_ms / 2);
                    if start + slack < oldest {
                        return Err(ArchiveError::Conflict(format!(
                            "start {} is older than the archive of {} (oldest segment {})",
                            format_ms(start),
                            new.stream,
                            format_ms(oldest)
                        )));
                    }
                }
                None => {
                    return Err(ArchiveError::Conflict(format!(
                        "start {} is in the past and stream {} has no archive",
                        format_ms(start),
                        new.stream
                    )));
                }
            }
        }
        let row = RecordingRow {
            id: format!("rec_{}", uuid::Uuid::new_v4().simple()),
            stream: new.stream,
            state: RecordingState::Pending,
            start_ms: start,
            end_ms: end,
            title: new.title,
            description: new.description,
            max_duration_secs: new.max_duration_secs,
            reason: None,
            created_ms: now,
            updated_ms: now,
        };
        self.with_conn(|c| db::put_recording(c, &row))?;
        // The state right away (a start in the past with segments is already recording).
        let _ = self.tick(now);
        self.recording(&row.id)
    }

    fn check_range(&self, start: i64, end: Option<i64>) -> Result<(), ArchiveError> {
        if let Some(end) = end {
            if end <= start {
                return Err(ArchiveError::Unprocessable(format!(
                    "end {} is not after start {}",
                    format_ms(end),
                    format_ms(start)
                )));
            }
            if end - start > self.cfg.max_range_secs as i64 * 1000 {
                return Err(ArchiveError::Unprocessable(format!(
                    "the range is longer than archive.max_range_secs ({} s)",
                    self.cfg.max_range_secs
                )));
            }
        }
        Ok(())
    }

    /// One recording.
    ///
    /// Errors: [`ArchiveError::NotFound`], [`ArchiveError::Db`].
    pub fn recording(&self, id: &str) -> Result<RecordingRow, ArchiveError> {
        self.with_read(|c| db::recording(c, id))?
            .ok_or_else(|| ArchiveError::NotFound(format!("no recording {id}")))
    }

    /// Recordings, filtered, newest first.
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn recordings(
        &self,
        stream: Option<&str>,
        state: Option<RecordingState>,
    ) -> Result<Vec<RecordingRow>, ArchiveError> {
        self.with_read(|c| db::recordings(c, stream, state))
    }

    /// Milliseconds of `stream` archived in `[start_ms, end_ms)` (one representation).
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn covered_ms(
        &self,
        stream: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<i64, ArchiveError> {
        self.with_read(|c| db::covered_ms(c, stream, start_ms, end_ms))
    }

    /// Stops a recording at `end` (default now; an end in the past trims it).
    ///
    /// Errors: [`ArchiveError::NotFound`], [`ArchiveError::Conflict`] (already done or
    /// failed), [`ArchiveError::Unprocessable`] (end not after the start).
    pub fn stop_recording(
        &self,
        id: &str,
        end: Option<i64>,
        now: i64,
    ) -> Result<RecordingRow, ArchiveError> {
        let mut r = self.recording(id)?;
        if !r.state.is_active() {
            return Err(ArchiveError::Conflict(format!(
                "recording {id} is already {}",
                r.state.as_str()
            )));
        }
        let end = end.unwrap_or(now);
        self.check_range(r.start_ms, Some(end))?;
        r.end_ms = Some(r.end_ms.map_or(end, |e| e.min(end)));
        r.updated_ms = now;
        self.with_conn(|c| db::put_recording(c, &r))?;
        let _ = self.tick(now);
        self.recording(id)
    }

    /// Changes title and description (`Some(None)` clears one).
    ///
    /// Errors: [`ArchiveError::NotFound`], [`ArchiveError::Db`].
    pub fn update_recording(
        &self,
        id: &str,
        title: Option<Option<String>>,
        description: Option<Option<String>>,
        now: i64,
    ) -> Result<RecordingRow, ArchiveError> {
        let mut r = self.recording(id)?;
        if let Some(t) = title {
            r.title = t;
        }
        if let Some(d) = description {
            r.description = d;
        }
        r.updated_ms = now;
        self.with_conn(|c| db::put_recording(c, &r))?;
        Ok(r)
    }

    /// Deletes a recording: its segments are unpinned (the next sweep may remove them).
    ///
    /// Errors: [`ArchiveError::NotFound`], [`ArchiveError::Db`].
    pub fn delete_recording(&self, id: &str) -> Result<(), ArchiveError> {
        if self.with_conn(|c| db::delete_recording(c, id))? {
            Ok(())
        } else {
            Err(ArchiveError::NotFound(format!("no recording {id}")))
        }
    }

    /// Moves active recordings through their states at `now` (Unix ms):
    /// pending -> recording once a segment of its range is archived; -> done once its end
    /// has passed and the segment covering the end is archived (or 10 s later at the
    /// latest); -> failed when the range ended without any segment.
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn tick(&self, now: i64) -> Result<Vec<Transition>, ArchiveError> {
        let mut out = Vec::new();
        let active: Vec<RecordingRow> = self
            .recordings(None, None)?
            .into_iter()
            .filter(|r| r.state.is_active())
            .collect();
        for mut r in active {
            let from = r.state;
            let end = r.end_ms.unwrap_or(i64::MAX);
            // Index lookups only (a day-long recording is checked every second).
            let bounds = self.with_conn(|c| db::stream_bounds(c, &r.stream))?;
            let has = bounds.is_some_and(|(oldest, newest)| newest > r.start_ms && oldest < end);
            let newest = bounds.map_or(i64::MIN, |(_, n)| n);
            let next = if end != i64::MAX && now >= end && (newest >= end || now >= end + 10_000) {
                if has {
                    RecordingState::Done
                } else {
                    r.reason = Some("no segment of the stream was archived in the range".into());
                    RecordingState::Failed
                }
            } else if has {
                RecordingState::Recording
            } else {
                RecordingState::Pending
            };
            if next != from {
                r.state = next;
                r.updated_ms = now;
                self.with_conn(|c| db::put_recording(c, &r))?;
                let t = Transition { recording: r, from };
                let _ = self.transitions.send(t.clone());
                out.push(t);
            }
        }
        Ok(out)
    }

    /// What a replay of `stream` over `[start_ms, end_ms)` shows: the sessions with their
    /// representations and segments (segment-granular: every segment overlapping the
    /// range).
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn view(
        &self,
        stream: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<replay::Session>, ArchiveError> {
        self.view_rows(stream, start_ms, end_ms, false)
    }

    /// Like [`Archive::view`], but every segment overlapping the range is in (the first
    /// holds the exact start): what a time-range view on a live manifest shows.
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn view_covering(
        &self,
        stream: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<replay::Session>, ArchiveError> {
        self.view_rows(stream, start_ms, end_ms, true)
    }

    /// (oldest wall ms, newest end wall ms) of `stream`'s archive.
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn bounds(&self, stream: &str) -> Result<Option<(i64, i64)>, ArchiveError> {
        self.with_read(|c| db::stream_bounds(c, stream))
    }

    /// Like [`Archive::view`] (`cover` as [`Archive::view_covering`]) but reading only
    /// representation `rep`: what one media playlist needs.
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn view_rep(
        &self,
        stream: &str,
        rep: &str,
        start_ms: i64,
        end_ms: i64,
        cover: bool,
    ) -> Result<Vec<replay::Session>, ArchiveError> {
        let rows = self.with_read(|c| db::rep_segments(c, stream, rep, start_ms, end_ms, cover))?;
        self.group(rows)
    }

    fn view_rows(
        &self,
        stream: &str,
        start_ms: i64,
        end_ms: i64,
        cover: bool,
    ) -> Result<Vec<replay::Session>, ArchiveError> {
        let rows = self.with_read(|c| {
            if cover {
                db::segments_covering(c, stream, start_ms, end_ms)
            } else {
                db::segments_in(c, stream, start_ms, end_ms)
            }
        })?;
        self.group(rows)
    }

    /// Rows ordered by session, grouped into sessions with their representations.
    fn group(&self, mut rows: Vec<SegmentRow>) -> Result<Vec<replay::Session>, ArchiveError> {
        rows.sort_by(|a, b| {
            (a.session_id, &a.rep, a.number).cmp(&(b.session_id, &b.rep, b.number))
        });
        let mut sessions: Vec<replay::Session> = Vec::new();
        for row in rows {
            if sessions.last().is_none_or(|s| s.id != row.session_id) {
                let reps = self.with_read(|c| db::reps_of(c, row.session_id))?;
                sessions.push(replay::Session {
                    id: row.session_id,
                    reps,
                    segments: Vec::new(),
                });
            }
            if let Some(s) = sessions.last_mut() {
                s.segments.push(row);
            }
        }
        Ok(sessions)
    }

    /// The archived time ranges of `stream` (one per encoder session) within
    /// `[start_ms, end_ms)`: `(session, start Unix ms, end Unix ms)`.
    ///
    /// Errors: [`ArchiveError::Db`].
    pub fn ranges(
        &self,
        stream: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, i64, i64)>, ArchiveError> {
        Ok(self
            .with_read(|c| db::session_spans(c, stream))?
            .into_iter()
            .filter(|&(_, a, b)| a < end_ms && b > start_ms)
            .map(|(s, a, b)| (s, a.max(start_ms), b.min(end_ms)))
            .collect())
    }
}

/// Largest recording MP4 assembled for download, in bytes.
pub const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;

impl Archive {
    /// One fragmented MP4 of a view's encoder session `session` (default: the only one):
    /// the video representation `video` (default the highest bandwidth) as track 1 and the
    /// first audio representation as track 2, their CMAF fragments interleaved by wall
    /// clock, made from the archived files without re-encoding (ISO/IEC 14496-12 §8.8 movie
    /// fragments; see `cmaf::mux`).
    ///
    /// Errors: [`ArchiveError::NotFound`] (no such representation or session, no segment),
    /// [`ArchiveError::Unprocessable`] (several sessions and none chosen, over
    /// [`MAX_DOWNLOAD_BYTES`], segments `cmaf::mux` cannot merge), [`ArchiveError::Io`].
    pub fn download_mp4(
        &self,
        view: &[replay::Session],
        session: Option<i64>,
        video: Option<&str>,
    ) -> Result<Bytes, ArchiveError> {
        let s = match session {
            Some(id) => view.iter().find(|s| s.id == id).ok_or_else(|| {
                ArchiveError::NotFound(format!("no session {id} in the recording"))
            })?,
            None if view.len() == 1 => &view[0],
            None if view.is_empty() => {
                return Err(ArchiveError::NotFound(
                    "the recording holds no segment".into(),
                ))
            }
            None => {
                let ids: Vec<String> = view.iter().map(|s| s.id.to_string()).collect();
                return Err(ArchiveError::Unprocessable(format!(
                    "the recording spans {} encoder sessions ({}): choose one with ?session=",
                    ids.len(),
                    ids.join(", ")
                )));
            }
        };
        let has = |r: &&RepRow| s.segments.iter().any(|g| g.rep == r.rep);
        let v = match video {
            Some(id) => s
                .reps
                .iter()
                .filter(has)
                .find(|r| r.rep == id && r.kind == "video")
                .ok_or_else(|| ArchiveError::NotFound(format!("no video representation {id}")))?,
            None => s
                .reps
                .iter()
                .filter(has)
                .filter(|r| r.kind == "video")
                .max_by_key(|r| r.bandwidth.unwrap_or(0))
                .ok_or_else(|| ArchiveError::NotFound("no video representation".into()))?,
        };
        let a = s.reps.iter().filter(has).find(|r| r.kind == "audio");
        let total: u64 = s
            .segments
            .iter()
            .filter(|g| g.rep == v.rep || a.is_some_and(|a| a.rep == g.rep))
            .map(|g| g.bytes)
            .sum();
        if total > MAX_DOWNLOAD_BYTES {
            return Err(ArchiveError::Unprocessable(format!(
                "the download would be {total} bytes, over the {MAX_DOWNLOAD_BYTES}-byte limit"
            )));
        }
        let read = |file: &str| -> Result<Vec<u8>, ArchiveError> {
            let path = self.root.join(s.id.to_string()).join(file);
            std::fs::read(&path).map_err(io_err(&path))
        };
        let mux_err = |e: crate::cmaf::mux::MuxError| ArchiveError::Unprocessable(e.to_string());
        let video_init = read(&v.init_file)?;
        let mut out = match a {
            Some(a) => crate::cmaf::mux::merge_inits(&video_init, &read(&a.init_file)?)
                .map_err(mux_err)?
                .to_vec(),
            None => video_init,
        };
        out.reserve(total as usize);
        let mut parts: Vec<&SegmentRow> = s
            .segments
            .iter()
            .filter(|g| g.rep == v.rep || a.is_some_and(|a| a.rep == g.rep))
            .collect();
        parts.sort_by_key(|g| (g.wall_ms, g.rep != v.rep));
        // The file starts at 0: every track loses the same time T, the earlier of the
        // tracks' first decode times (so audio and video stay in sync).
        let first_of = |rep: &str| {
            s.segments
                .iter()
                .filter(|g| g.rep == rep)
                .map(|g| g.media_time)
                .min()
        };
        let v_ts = v.timescale.max(1) as u128;
        let v_first = first_of(&v.rep).unwrap_or(0) as u128;
        let a_first = a.and_then(|a| Some((first_of(&a.rep)? as u128, a.timescale.max(1) as u128)));
        let (t_num, t_den) = match a_first {
            Some((af, ats)) if af * v_ts < v_first * ats => (af, ats),
            _ => (v_first, v_ts),
        };
        let minus = |ts: u32| (t_num * ts.max(1) as u128 / t_den) as u64;
        for g in parts {
            let mut bytes = read(&g.file)?;
            if g.rep == v.rep {
                crate::cmaf::mux::rebase_decode_times(&mut bytes, minus(v.timescale))
                    .map_err(mux_err)?;
            } else if let Some(a) = a {
                let mut moved =
                    crate::cmaf::mux::retrack_segment(&bytes, crate::cmaf::mux::AUDIO_TRACK_ID)
                        .map_err(mux_err)?
                        .to_vec();
                crate::cmaf::mux::rebase_decode_times(&mut moved, minus(a.timescale))
                    .map_err(mux_err)?;
                bytes = moved;
            }
            out.extend_from_slice(&bytes);
        }
        Ok(Bytes::from(out))
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
    let tmp = path.with_extension("archive-tmp");
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Unix ms as RFC 3339 UTC with milliseconds (`2026-11-29T18:00:00.000Z`).
pub fn format_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

/// A time given as RFC 3339 text or Unix seconds (as text, e.g. from a query string),
/// in Unix ms.
///
/// Errors: [`ArchiveError::BadRequest`] naming the value.
pub fn parse_time(s: &str) -> Result<i64, ArchiveError> {
    let s = s.trim();
    let ms = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() => Some((secs * 1000.0).round()),
        Ok(_) => None,
        Err(_) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as f64),
    };
    match ms {
        Some(ms) => check_time_ms(ms),
        None => Err(ArchiveError::BadRequest(format!(
            "{s:?} is neither an RFC 3339 time nor Unix seconds"
        ))),
    }
}

/// Latest time accepted, Unix ms (9999-12-31T23:59:59.999Z).
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// A time in Unix ms within 1970-01-01 .. 9999-12-31, else [`ArchiveError::BadRequest`].
pub fn check_time_ms(ms: f64) -> Result<i64, ArchiveError> {
    if (0.0..=MAX_TIME_MS as f64).contains(&ms) {
        Ok(ms as i64)
    } else {
        Err(ArchiveError::BadRequest(
            "times must be between 1970-01-01 and 9999-12-31".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive with one session of `n` 2 s segments of one representation, ending at
    /// `end_ms`, each segment a 1000-byte file.
    fn archive_with(dir: &Path, cfg: ArchiveConfig, n: u64, end_ms: i64) -> Archive {
        let a = Archive::open(dir, cfg).unwrap();
        let first = end_ms - n as i64 * 2000;
        let session = a
            .with_conn(|c| db::insert_session(c, "live/x", None, first))
            .unwrap();
        let rep = RepRow {
            rep: "0".into(),
            kind: "video".into(),
            codecs: None,
            bandwidth: None,
            width: None,
            height: None,
            frame_rate: None,
            timescale: 1000,
            init_file: "init.m4s".into(),
            media_template: None,
        };
        a.with_conn(|c| db::upsert_rep(c, session, &rep)).unwrap();
        let folder = dir.join(ARCHIVE_DIR).join(session.to_string());
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..n {
            let file = format!("seg{i}.m4s");
            std::fs::write(folder.join(&file), [0u8; 1000]).unwrap();
            let row = SegmentRow {
                session_id: session,
                rep: "0".into(),
                number: i + 1,
                stream: "live/x".into(),
                media_time: i * 2000,
                duration: 2000,
                wall_ms: first + i as i64 * 2000,
                dur_ms: 2000,
                file,
                bytes: 1000,
            };
            a.with_conn(|c| db::upsert_segment(c, &row)).unwrap();
        }
        a
    }

    fn count(a: &Archive) -> usize {
        a.view("live/x", 0, i64::MAX)
            .unwrap()
            .iter()
            .map(|s| s.segments.len())
            .sum()
    }

    #[test]
    fn the_sweep_removes_unpinned_segments_past_retention_and_keeps_pinned_ones() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_800_000_000_000;
        let cfg = ArchiveConfig {
            retention_secs: 60,
            ..ArchiveConfig::default()
        };
        // 100 segments = 200 s; the oldest 70 end more than 60 s ago.
        let a = archive_with(dir.path(), cfg, 100, now);
        let first = now - 200_000;
        // A recording pins [first + 20 s, first + 40 s).
        let rec = a
            .create_recording(
                NewRecording {
                    stream: "live/x".into(),
                    start_ms: Some(first + 20_000),
                    end_ms: Some(first + 40_000),
                    ..Default::default()
                },
                now,
            )
            .unwrap();
        assert_eq!(rec.state, RecordingState::Done);
        let removed = a.sweep(now).unwrap();
        // Past retention: the 69 segments ending before now - 60 s, less the 10 the
        // recording pins.
        assert_eq!(removed, 59);
        assert_eq!(count(&a), 100 - removed as usize);
        let ranges = a.ranges("live/x", 0, i64::MAX).unwrap();
        assert_eq!(
            ranges[0].1,
            first + 20_000,
            "the session span follows the sweep"
        );
        let files = std::fs::read_dir(dir.path().join(ARCHIVE_DIR).join("1"))
            .unwrap()
            .count();
        assert_eq!(files, 100 - removed as usize, "files go with their rows");
        // The recording still replays whole; deleting it unpins.
        assert_eq!(
            a.view("live/x", first + 20_000, first + 40_000).unwrap()[0]
                .segments
                .len(),
            10
        );
        a.delete_recording(&rec.id).unwrap();
        assert_eq!(a.sweep(now).unwrap(), 10);
        assert_eq!(count(&a), 31);
    }

    #[test]
    fn max_bytes_keeps_the_archive_under_its_size_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_800_000_000_000;
        let cfg = ArchiveConfig {
            max_bytes: 25_000,
            ..ArchiveConfig::default()
        };
        let a = archive_with(dir.path(), cfg, 40, now);
        a.sweep(now).unwrap();
        assert_eq!(count(&a), 25);
        let oldest = a.bounds("live/x").unwrap().unwrap().0;
        assert_eq!(oldest, now - 50_000, "the newest 25 segments stay");
        let (removed, kept) = a.delete_stream_archive("live/x").unwrap();
        assert_eq!((removed, kept), (25, 0));
        assert!(matches!(
            a.delete_stream_archive("live/none"),
            Err(ArchiveError::NotFound(_))
        ));
    }

    #[test]
    fn times_parse_both_ways() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20.250+01:00").unwrap(),
            1_700_000_000_250
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("1e300").is_err());
        assert!(parse_time("500000000000").is_err());
        assert!(parse_time("-5").is_err());
        assert_eq!(format_ms(1_700_000_000_250), "2023-11-14T22:13:20.250Z");
    }
}
