//! The library's SQLite file (`<data_dir>/.casterpak-library.db`, WAL): assets, tus
//! uploads, transcode jobs and an event log. Plain functions over a [`Connection`]; the
//! caller owns the connection and runs them off the async threads.
//!
//! Units: every `*_ms` column is Unix time in milliseconds; `duration_secs`, `eta_secs` are
//! seconds; `length`, `offset` bytes; `percent` 0..=100.

use rusqlite::{params, Connection, OptionalExtension};

use super::LibraryError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS assets(
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    filename TEXT,
    status TEXT NOT NULL,
    phase TEXT NOT NULL,
    percent REAL NOT NULL DEFAULT 0,
    eta_secs REAL,
    duration_secs REAL,
    source TEXT,
    renditions TEXT,
    ladder TEXT,
    error_code TEXT,
    error_message TEXT,
    log_tail TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_by_created ON assets(created_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS assets_by_status ON assets(status, created_ms DESC, id DESC);
CREATE TABLE IF NOT EXISTS uploads(
    id TEXT PRIMARY KEY,
    length INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    metadata TEXT
);
CREATE TABLE IF NOT EXISTS jobs(
    asset_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    queued_ms INTEGER NOT NULL,
    started_ms INTEGER,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, queued_ms);
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS events_by_asset ON events(asset_id, seq);
CREATE TABLE IF NOT EXISTS nus_videos(
    video_id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    segment_count INTEGER NOT NULL DEFAULT -1,
    ended INTEGER NOT NULL DEFAULT 0,
    rungs TEXT
);
CREATE TABLE IF NOT EXISTS nus_segments(
    video_id INTEGER NOT NULL,
    segment_id INTEGER NOT NULL,
    ext TEXT NOT NULL,
    status TEXT NOT NULL,
    duration_secs REAL,
    error TEXT,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY(video_id, segment_id)
) WITHOUT ROWID;
";

/// Opens (creating when needed) the library database at `path`.
///
/// Errors: [`LibraryError::Db`] when SQLite cannot open or migrate it.
pub fn open(path: &std::path::Path) -> Result<Connection, LibraryError> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    c.execute_batch(SCHEMA)?;
    Ok(c)
}

/// An asset row.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRow {
    pub id: String,
    pub title: String,
    /// The client's file name (shown, never used on disk).
    pub filename: Option<String>,
    /// `waiting`, `uploading`, `queued`, `processing`, `ready`, `errored`.
    pub status: String,
    /// `upload`, `probe`, `queue`, `transcode`, `thumbnails`, `publish`, `done`.
    pub phase: String,
    pub percent: f64,
    pub eta_secs: Option<f64>,
    pub duration_secs: Option<f64>,
    /// [`super::probe::SourceInfo`] as JSON.
    pub source: Option<String>,
    /// The published rungs (`[super::ladder::Rung]`) as JSON.
    pub renditions: Option<String>,
    /// The ladder asked for at upload (`[super::ladder::RungSpec]` JSON), else the config's.
    pub ladder: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub log_tail: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const ASSET_COLUMNS: &str = "id, title, filename, status, phase, percent, eta_secs, \
    duration_secs, source, renditions, ladder, error_code, error_message, log_tail, \
    created_ms, updated_ms";

fn asset_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AssetRow> {
    Ok(AssetRow {
        id: r.get(0)?,
        title: r.get(1)?,
        filename: r.get(2)?,
        status: r.get(3)?,
        phase: r.get(4)?,
        percent: r.get(5)?,
        eta_secs: r.get(6)?,
        duration_secs: r.get(7)?,
        source: r.get(8)?,
        renditions: r.get(9)?,
        ladder: r.get(10)?,
        error_code: r.get(11)?,
        error_message: r.get(12)?,
        log_tail: r.get(13)?,
        created_ms: r.get(14)?,
        updated_ms: r.get(15)?,
    })
}

pub fn insert_asset(c: &Connection, a: &AssetRow) -> Result<(), LibraryError> {
    c.execute(
        &format!("INSERT INTO assets({ASSET_COLUMNS}) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)"),
        params![
            a.id, a.title, a.filename, a.status, a.phase, a.percent, a.eta_secs,
            a.duration_secs, a.source, a.renditions, a.ladder, a.error_code,
            a.error_message, a.log_tail, a.created_ms, a.updated_ms
        ],
    )?;
    Ok(())
}

/// Writes every mutable column of `a` (by id). Returns whether the row exists.
pub fn update_asset(c: &Connection, a: &AssetRow) -> Result<bool, LibraryError> {
    let n = c.execute(
        "UPDATE assets SET title=?2, status=?3, phase=?4, percent=?5, eta_secs=?6, \
         duration_secs=?7, source=?8, renditions=?9, error_code=?10, error_message=?11, \
         log_tail=?12, updated_ms=?13 WHERE id=?1",
        params![
            a.id,
            a.title,
            a.status,
            a.phase,
            a.percent,
            a.eta_secs,
            a.duration_secs,
            a.source,
            a.renditions,
            a.error_code,
            a.error_message,
            a.log_tail,
            a.updated_ms
        ],
    )?;
    Ok(n > 0)
}

pub fn get_asset(c: &Connection, id: &str) -> Result<Option<AssetRow>, LibraryError> {
    Ok(c.query_row(
        &format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id=?1"),
        [id],
        asset_from_row,
    )
    .optional()?)
}

/// A page of assets, newest first. `after` is the `(created_ms, id)` of the last asset of
/// the previous page; `q` matches titles and file names (SQL `LIKE`, its `%`/`_` escaped).
pub fn list_assets(
    c: &Connection,
    status: Option<&str>,
    q: Option<&str>,
    after: Option<(i64, &str)>,
    limit: u32,
) -> Result<Vec<AssetRow>, LibraryError> {
    let mut sql = format!("SELECT {ASSET_COLUMNS} FROM assets WHERE 1=1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(s) = status {
        args.push(s.to_owned().into());
        sql.push_str(&format!(" AND status=?{}", args.len()));
    }
    if let Some(q) = q {
        let pat = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        args.push(pat.into());
        let n = args.len();
        sql.push_str(&format!(
            " AND (title LIKE ?{n} ESCAPE '\\' OR filename LIKE ?{n} ESCAPE '\\')"
        ));
    }
    if let Some((ms, id)) = after {
        args.push(ms.into());
        args.push(id.to_owned().into());
        let n = args.len();
        sql.push_str(&format!(
            " AND (created_ms < ?{} OR (created_ms = ?{} AND id < ?{n}))",
            n - 1,
            n - 1
        ));
    }
    args.push(i64::from(limit).into());
    sql.push_str(&format!(
        " ORDER BY created_ms DESC, id DESC LIMIT ?{}",
        args.len()
    ));
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(args), asset_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete_asset(c: &Connection, id: &str) -> Result<bool, LibraryError> {
    let n = c.execute("DELETE FROM assets WHERE id=?1", [id])?;
    c.execute("DELETE FROM uploads WHERE id=?1", [id])?;
    c.execute("DELETE FROM jobs WHERE asset_id=?1", [id])?;
    Ok(n > 0)
}

/// A tus upload's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub id: String,
    /// `Upload-Length`, bytes.
    pub length: u64,
    /// Bytes safely written (fsync'd) so far.
    pub offset: u64,
    /// Unix ms after which the upload is gone (`Upload-Expires`).
    pub expires_ms: i64,
}

pub fn insert_upload(c: &Connection, u: &UploadRow, metadata: &str) -> Result<(), LibraryError> {
    c.execute(
        "INSERT INTO uploads(id, length, offset, expires_ms, metadata) VALUES(?1,?2,?3,?4,?5)",
        params![
            u.id,
            u.length as i64,
            u.offset as i64,
            u.expires_ms,
            metadata
        ],
    )?;
    Ok(())
}

pub fn get_upload(c: &Connection, id: &str) -> Result<Option<UploadRow>, LibraryError> {
    Ok(c.query_row(
        "SELECT id, length, offset, expires_ms FROM uploads WHERE id=?1",
        [id],
        |r| {
            Ok(UploadRow {
                id: r.get(0)?,
                length: r.get::<_, i64>(1)? as u64,
                offset: r.get::<_, i64>(2)? as u64,
                expires_ms: r.get(3)?,
            })
        },
    )
    .optional()?)
}

pub fn set_upload_offset(c: &Connection, id: &str, offset: u64) -> Result<(), LibraryError> {
    c.execute(
        "UPDATE uploads SET offset=?2 WHERE id=?1",
        params![id, offset as i64],
    )?;
    Ok(())
}

pub fn delete_upload(c: &Connection, id: &str) -> Result<(), LibraryError> {
    c.execute("DELETE FROM uploads WHERE id=?1", [id])?;
    Ok(())
}

/// Unfinished uploads whose expiry passed before `now_ms`.
pub fn expired_uploads(c: &Connection, now_ms: i64) -> Result<Vec<String>, LibraryError> {
    let mut st =
        c.prepare_cached("SELECT id FROM uploads WHERE expires_ms < ?1 AND offset < length")?;
    let rows = st.query_map([now_ms], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Queues (or re-queues) the job of an asset with `attempt` attempts already made; nothing
/// when the asset is gone (deleted while its job ran).
pub fn queue_job(c: &Connection, id: &str, attempt: i64, now_ms: i64) -> Result<(), LibraryError> {
    c.execute(
        "INSERT INTO jobs(asset_id, state, attempt, queued_ms, updated_ms) \
         SELECT ?1,'queued',?2,?3,?3 WHERE EXISTS (SELECT 1 FROM assets WHERE id=?1) \
         ON CONFLICT(asset_id) DO UPDATE SET state='queued', attempt=?2, pid=NULL, queued_ms=?3, updated_ms=?3",
        params![id, attempt, now_ms],
    )?;
    Ok(())
}

/// The oldest queued job not in `skip`: `(asset id, attempts made)`.
pub fn next_job(c: &Connection) -> Result<Option<(String, i64)>, LibraryError> {
    Ok(c.query_row(
        "SELECT asset_id, attempt FROM jobs WHERE state='queued' ORDER BY queued_ms, asset_id LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?)
}

pub fn set_job(
    c: &Connection,
    id: &str,
    state: &str,
    attempt: i64,
    pid: Option<u32>,
    now_ms: i64,
) -> Result<(), LibraryError> {
    c.execute(
        "UPDATE jobs SET state=?2, attempt=?3, pid=?4, updated_ms=?5, \
         started_ms=CASE WHEN ?2='running' AND started_ms IS NULL THEN ?5 ELSE started_ms END \
         WHERE asset_id=?1",
        params![id, state, attempt, pid, now_ms],
    )?;
    Ok(())
}

/// Jobs left `running` by a process that stopped: `(asset id, attempts, ffmpeg pid)`.
pub fn running_jobs(c: &Connection) -> Result<Vec<(String, i64, Option<u32>)>, LibraryError> {
    let mut st =
        c.prepare_cached("SELECT asset_id, attempt, pid FROM jobs WHERE state='running'")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many jobs wait.
pub fn queued_jobs(c: &Connection) -> Result<u64, LibraryError> {
    Ok(
        c.query_row("SELECT count(*) FROM jobs WHERE state='queued'", [], |r| {
            r.get::<_, i64>(0)
        })? as u64,
    )
}

pub fn log_event(
    c: &Connection,
    id: &str,
    kind: &str,
    now_ms: i64,
    detail: Option<&str>,
) -> Result<(), LibraryError> {
    c.execute(
        "INSERT INTO events(asset_id, kind, time_ms, detail) VALUES(?1,?2,?3,?4)",
        params![id, kind, now_ms, detail],
    )?;
    Ok(())
}

/// Every asset id (for the start-up clean-up of files without a row).
pub fn asset_ids(c: &Connection) -> Result<std::collections::HashSet<String>, LibraryError> {
    let mut st = c.prepare_cached("SELECT id FROM assets")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
