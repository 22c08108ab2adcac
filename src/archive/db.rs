//! The archive's SQLite file (`<data_dir>/.casterpak.db`, WAL): the segment index, encoder
//! sessions, stream flags and recordings. Plain functions over a [`Connection`]; the caller
//! owns the connection and the thread it runs on (never an async thread).
//!
//! Layout: `segments` is clustered by (stream, representation, wall clock), so a time range
//! of one representation is one sequential read; `sessions` keeps each session's first and
//! end wall clock, so listing a stream's ranges reads one row per session.
//!
//! Units: every `*_ms` column is Unix time in milliseconds, except `dur_ms` (a duration in
//! milliseconds); `media_time` and `duration` are in the representation's timescale ticks
//! (`session_reps.timescale`, the init segment's `mdhd` timescale).

use rusqlite::{params, Connection, OptionalExtension};

use super::{ArchiveError, RecordingRow, RecordingState, RepRow, SegmentRow};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams(
    name TEXT PRIMARY KEY,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions(
    id INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    ast TEXT,
    started_ms INTEGER NOT NULL,
    first_ms INTEGER,
    end_ms INTEGER,
    epoch_ms INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_by_stream ON sessions(stream, id);
CREATE TABLE IF NOT EXISTS session_reps(
    session_id INTEGER NOT NULL,
    rep TEXT NOT NULL,
    kind TEXT NOT NULL,
    codecs TEXT,
    bandwidth INTEGER,
    width INTEGER,
    height INTEGER,
    frame_rate TEXT,
    timescale INTEGER NOT NULL,
    init_file TEXT NOT NULL,
    media_template TEXT,
    PRIMARY KEY(session_id, rep)
);
CREATE TABLE IF NOT EXISTS segments(
    session_id INTEGER NOT NULL,
    rep TEXT NOT NULL,
    number INTEGER NOT NULL,
    stream TEXT NOT NULL,
    media_time INTEGER NOT NULL,
    duration INTEGER NOT NULL,
    wall_ms INTEGER NOT NULL,
    dur_ms INTEGER NOT NULL,
    file TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY(stream, rep, wall_ms, session_id, number)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS segments_by_number ON segments(session_id, rep, number);
CREATE INDEX IF NOT EXISTS segments_by_wall ON segments(stream, wall_ms);
CREATE INDEX IF NOT EXISTS segments_by_age ON segments(wall_ms);
CREATE INDEX IF NOT EXISTS segments_by_file ON segments(stream, file);
CREATE TABLE IF NOT EXISTS recordings(
    id TEXT PRIMARY KEY,
    stream TEXT NOT NULL,
    state TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    title TEXT,
    description TEXT,
    max_duration_secs REAL,
    reason TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS recordings_by_stream ON recordings(stream);
CREATE TABLE IF NOT EXISTS deletes(
    key TEXT PRIMARY KEY,
    deleted_ms INTEGER NOT NULL,
    due_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sources(
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    segment_len INTEGER NOT NULL,
    description TEXT,
    playlist TEXT,
    streaming INTEGER NOT NULL DEFAULT -1,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
";

/// A LiveMix video source (`POST /v1/source`): a named HLS input archived as the stream
/// `livemix/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    /// UUID v4.
    pub id: String,
    /// Unique name (`Video-Source-Name` of its pushes).
    pub name: String,
    /// Target segment length in seconds.
    pub segment_len: i64,
    pub description: Option<String>,
    /// `playlist` URI given at creation.
    pub playlist: Option<String>,
    /// 1 streaming to viewers, -1 not (LiveMix's values).
    pub streaming: i64,
    /// Unix ms.
    pub created_ms: i64,
    pub updated_ms: i64,
}

const SOURCE_COLUMNS: &str =
    "id, name, segment_len, description, playlist, streaming, created_ms, updated_ms";

fn source_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SourceRow> {
    Ok(SourceRow {
        id: r.get(0)?,
        name: r.get(1)?,
        segment_len: r.get(2)?,
        description: r.get(3)?,
        playlist: r.get(4)?,
        streaming: r.get(5)?,
        created_ms: r.get(6)?,
        updated_ms: r.get(7)?,
    })
}

/// Records a pending DELETE of object `key` (Unix ms of the DELETE and of its removal).
pub fn put_delete(
    conn: &Connection,
    key: &str,
    deleted_ms: i64,
    due_ms: i64,
) -> Result<(), ArchiveError> {
    conn.execute(
        "INSERT OR REPLACE INTO deletes(key, deleted_ms, due_ms) VALUES (?1, ?2, ?3)",
        params![key, deleted_ms, due_ms],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Forgets a pending DELETE.
pub fn remove_delete(conn: &Connection, key: &str) -> Result<(), ArchiveError> {
    conn.execute("DELETE FROM deletes WHERE key = ?1", [key])
        .map_err(db_err)?;
    Ok(())
}

/// Every pending DELETE: (key, deleted ms, due ms).
pub fn pending_deletes(conn: &Connection) -> Result<Vec<(String, i64, i64)>, ArchiveError> {
    query(
        conn,
        "SELECT key, deleted_ms, due_ms FROM deletes ORDER BY due_ms",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Inserts a source; `false` when its name is taken.
pub fn insert_source(conn: &Connection, s: &SourceRow) -> Result<bool, ArchiveError> {
    let n = conn
        .execute(
            &format!(
                "INSERT OR IGNORE INTO sources({SOURCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            params![
                s.id,
                s.name,
                s.segment_len,
                s.description,
                s.playlist,
                s.streaming,
                s.created_ms,
                s.updated_ms
            ],
        )
        .map_err(db_err)?;
    Ok(n > 0)
}

/// Sources, by id or name, or all (by creation).
pub fn sources(
    conn: &Connection,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<Vec<SourceRow>, ArchiveError> {
    query(
        conn,
        &format!(
            "SELECT {SOURCE_COLUMNS} FROM sources
             WHERE (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR name = ?2) ORDER BY created_ms, id"
        ),
        params![id, name],
        source_from_row,
    )
}

/// Sets a source's streaming flag (1 or -1).
pub fn set_source_streaming(
    conn: &Connection,
    id: &str,
    streaming: i64,
    now_ms: i64,
) -> Result<bool, ArchiveError> {
    let n = conn
        .execute(
            "UPDATE sources SET streaming = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id, streaming, now_ms],
        )
        .map_err(db_err)?;
    Ok(n > 0)
}

/// Removes a source (its archive stays until retention).
pub fn delete_source(conn: &Connection, id: &str) -> Result<bool, ArchiveError> {
    let n = conn
        .execute("DELETE FROM sources WHERE id = ?1", [id])
        .map_err(db_err)?;
    Ok(n > 0)
}

fn db_err(e: rusqlite::Error) -> ArchiveError {
    ArchiveError::Db(e.to_string())
}

/// Every row of a (cached) statement, mapped by `f`.
fn query<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, ArchiveError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt
        .query_map(params, f)
        .map_err(db_err)?
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    Ok(rows)
}

/// Opens (creating when missing) the archive database at `path` in WAL mode.
///
/// Errors: [`ArchiveError::Db`].
pub fn open(path: &std::path::Path) -> Result<Connection, ArchiveError> {
    let conn = Connection::open(path).map_err(db_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(db_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db_err)?;
    conn.execute_batch(SCHEMA).map_err(db_err)?;
    Ok(conn)
}

/// Opens a read-only connection to the archive database at `path` (WAL: it reads the last
/// committed state without waiting for the writer).
///
/// Errors: [`ArchiveError::Db`].
pub fn open_reader(path: &std::path::Path) -> Result<Connection, ArchiveError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db_err)?;
    Ok(conn)
}

/// The newest session of every stream with, per representation, the highest segment
/// number archived in it: `(stream, session id, ast, [(rep, number)])`.
pub type LastSession = (String, i64, Option<String>, Vec<(String, u64)>);

/// Loads [`LastSession`] of every stream (what the writer needs to tell a new encoder
/// session from the continuation of the last one after a restart).
pub fn last_sessions(conn: &Connection) -> Result<Vec<LastSession>, ArchiveError> {
    let mut stmt = conn
        .prepare(
            "SELECT s.stream, s.id, s.ast FROM sessions s
             WHERE s.id = (SELECT MAX(id) FROM sessions t WHERE t.stream = s.stream)",
        )
        .map_err(db_err)?;
    let heads: Vec<(String, i64, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(db_err)?
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(heads.len());
    let mut numbers = conn
        .prepare("SELECT rep, MAX(number) FROM segments WHERE session_id = ?1 GROUP BY rep")
        .map_err(db_err)?;
    for (stream, id, ast) in heads {
        let reps: Vec<(String, i64)> = numbers
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        out.push((
            stream,
            id,
            ast,
            reps.into_iter()
                .map(|(r, n)| (r, n.max(0) as u64))
                .collect(),
        ));
    }
    Ok(out)
}

/// The wall clock of media time 0 of a session (Unix ms), once known.
pub fn session_epoch(conn: &Connection, session_id: i64) -> Result<Option<i64>, ArchiveError> {
    conn.query_row(
        "SELECT epoch_ms FROM sessions WHERE id = ?1",
        [session_id],
        |r| r.get(0),
    )
    .optional()
    .map(Option::flatten)
    .map_err(db_err)
}

/// Sets the wall clock of media time 0 of a session (Unix ms).
pub fn set_session_epoch(
    conn: &Connection,
    session_id: i64,
    epoch_ms: i64,
) -> Result<(), ArchiveError> {
    conn.execute(
        "UPDATE sessions SET epoch_ms = ?2 WHERE id = ?1",
        params![session_id, epoch_ms],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Inserts a session and returns its id.
pub fn insert_session(
    conn: &Connection,
    stream: &str,
    ast: Option<&str>,
    started_ms: i64,
) -> Result<i64, ArchiveError> {
    conn.execute(
        "INSERT INTO sessions(stream, ast, started_ms) VALUES (?1, ?2, ?3)",
        params![stream, ast, started_ms],
    )
    .map_err(db_err)?;
    Ok(conn.last_insert_rowid())
}

/// Inserts or replaces a representation of a session.
pub fn upsert_rep(conn: &Connection, session_id: i64, rep: &RepRow) -> Result<(), ArchiveError> {
    conn.execute(
        "INSERT OR REPLACE INTO session_reps(session_id, rep, kind, codecs, bandwidth, width,
            height, frame_rate, timescale, init_file, media_template)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            session_id,
            rep.rep,
            rep.kind,
            rep.codecs,
            rep.bandwidth.map(|b| b as i64),
            rep.width,
            rep.height,
            rep.frame_rate,
            rep.timescale,
            rep.init_file,
            rep.media_template
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Inserts or replaces one segment row (a re-PUT of the same segment replaces it).
pub fn upsert_segment(conn: &Connection, s: &SegmentRow) -> Result<(), ArchiveError> {
    conn.execute(
        "INSERT OR REPLACE INTO segments(session_id, rep, number, stream, media_time, duration,
            wall_ms, dur_ms, file, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            s.session_id,
            s.rep,
            s.number as i64,
            s.stream,
            s.media_time as i64,
            s.duration as i64,
            s.wall_ms,
            s.dur_ms,
            s.file,
            s.bytes as i64
        ],
    )
    .map_err(db_err)?;
    conn.execute(
        "UPDATE sessions SET first_ms = MIN(COALESCE(first_ms, ?2), ?2),
                             end_ms = MAX(COALESCE(end_ms, ?3), ?3) WHERE id = ?1",
        params![s.session_id, s.wall_ms, s.wall_ms + s.dur_ms],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Recomputes the first and end wall clock of `session_id` from its segments (after
/// segments were removed).
pub fn refresh_session_span(conn: &Connection, session_id: i64) -> Result<(), ArchiveError> {
    conn.execute(
        "UPDATE sessions SET
            first_ms = (SELECT MIN(wall_ms) FROM segments WHERE session_id = ?1),
            end_ms = (SELECT MAX(wall_ms + dur_ms) FROM segments WHERE session_id = ?1)
         WHERE id = ?1",
        [session_id],
    )
    .map_err(db_err)?;
    Ok(())
}

fn segment_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SegmentRow> {
    Ok(SegmentRow {
        session_id: r.get(0)?,
        rep: r.get(1)?,
        number: r.get::<_, i64>(2)?.max(0) as u64,
        stream: r.get(3)?,
        media_time: r.get::<_, i64>(4)?.max(0) as u64,
        duration: r.get::<_, i64>(5)?.max(0) as u64,
        wall_ms: r.get(6)?,
        dur_ms: r.get(7)?,
        file: r.get(8)?,
        bytes: r.get::<_, i64>(9)?.max(0) as u64,
    })
}

/// Segments of `stream` whose middle lies in `[start_ms, end_ms)` (Unix ms), ordered by
/// session, representation and number: a range is cut at the nearest segment boundary, so
/// a view's duration is within one segment of the range asked for.
pub fn segments_in(
    conn: &Connection,
    stream: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<SegmentRow>, ArchiveError> {
    segments_query(conn, stream, start_ms, end_ms, false)
}

/// Segments of `stream` overlapping `[start_ms, end_ms)` at all (the first one holds the
/// exact start of a time-range view), ordered like [`segments_in`].
pub fn segments_covering(
    conn: &Connection,
    stream: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<SegmentRow>, ArchiveError> {
    segments_query(conn, stream, start_ms, end_ms, true)
}

fn segments_query(
    conn: &Connection,
    stream: &str,
    start_ms: i64,
    end_ms: i64,
    cover: bool,
) -> Result<Vec<SegmentRow>, ArchiveError> {
    let mut out = Vec::new();
    for rep in stream_reps(conn, stream)? {
        out.extend(rep_segments(conn, stream, &rep, start_ms, end_ms, cover)?);
    }
    out.sort_by(|a, b| (a.session_id, &a.rep, a.number).cmp(&(b.session_id, &b.rep, b.number)));
    Ok(out)
}

/// Longest segment the range queries allow for (a bound on the clustered scan).
const MAX_SEGMENT_MS: i64 = 3_600_000;

/// Segments of one representation of `stream` in `[start_ms, end_ms)`, by wall clock (one
/// sequential range of the clustered table). `cover`: every overlapping segment; else only
/// those whose middle is in the range.
pub fn rep_segments(
    conn: &Connection,
    stream: &str,
    rep: &str,
    start_ms: i64,
    end_ms: i64,
    cover: bool,
) -> Result<Vec<SegmentRow>, ArchiveError> {
    query(
        conn,
        "SELECT session_id, rep, number, stream, media_time, duration, wall_ms, dur_ms, file,
                    bytes
             FROM segments
             WHERE stream = ?1 AND rep = ?2 AND wall_ms > ?3 - ?6 AND wall_ms < ?4
               AND wall_ms + dur_ms > ?3
               AND (?5 OR (wall_ms + dur_ms / 2 >= ?3 AND wall_ms + dur_ms / 2 < ?4))
             ORDER BY wall_ms",
        params![stream, rep, start_ms, end_ms, cover, MAX_SEGMENT_MS],
        segment_from_row,
    )
}

/// Milliseconds of `stream` archived in `[start_ms, end_ms)` (segments whose middle is in
/// it), summed over its first representation.
pub fn covered_ms(
    conn: &Connection,
    stream: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<i64, ArchiveError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(dur_ms), 0) FROM segments
             WHERE stream = ?1 AND rep = ?2 AND wall_ms > ?3 - ?5 AND wall_ms < ?4
               AND wall_ms + dur_ms / 2 >= ?3 AND wall_ms + dur_ms / 2 < ?4",
        )
        .map_err(db_err)?;
    let mut best = 0i64;
    for rep in stream_reps(conn, stream)? {
        let ms: i64 = stmt
            .query_row(
                params![stream, rep, start_ms, end_ms, MAX_SEGMENT_MS],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        best = best.max(ms);
    }
    Ok(best)
}

/// The representation ids `stream` ever had.
pub fn stream_reps(conn: &Connection, stream: &str) -> Result<Vec<String>, ArchiveError> {
    query(
        conn,
        "SELECT DISTINCT r.rep FROM session_reps r JOIN sessions s ON s.id = r.session_id
             WHERE s.stream = ?1 ORDER BY r.rep",
        [stream],
        |r| r.get(0),
    )
}

/// The newest session of `stream` holding a segment file named `file`.
pub fn session_of_file(
    conn: &Connection,
    stream: &str,
    file: &str,
) -> Result<Option<i64>, ArchiveError> {
    conn.query_row(
        "SELECT MAX(session_id) FROM segments WHERE stream = ?1 AND file = ?2",
        params![stream, file],
        |r| r.get(0),
    )
    .map_err(db_err)
}

/// The representations of the given sessions.
pub fn reps_of(conn: &Connection, session_id: i64) -> Result<Vec<RepRow>, ArchiveError> {
    query(
        conn,
        "SELECT rep, kind, codecs, bandwidth, width, height, frame_rate, timescale,
                    init_file, media_template
             FROM session_reps WHERE session_id = ?1 ORDER BY rep",
        [session_id],
        |r| {
            Ok(RepRow {
                rep: r.get(0)?,
                kind: r.get(1)?,
                codecs: r.get(2)?,
                bandwidth: r.get::<_, Option<i64>>(3)?.map(|b| b.max(0) as u64),
                width: r.get(4)?,
                height: r.get(5)?,
                frame_rate: r.get(6)?,
                timescale: r.get(7)?,
                init_file: r.get(8)?,
                media_template: r.get(9)?,
            })
        },
    )
}

/// Per session of `stream`: (session id, first wall ms, end wall ms) of its archived
/// segments, oldest first. One contiguous range per session.
pub fn session_spans(
    conn: &Connection,
    stream: &str,
) -> Result<Vec<(i64, i64, i64)>, ArchiveError> {
    query(
        conn,
        "SELECT id, first_ms, end_ms FROM sessions
             WHERE stream = ?1 AND first_ms IS NOT NULL ORDER BY id",
        [stream],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// (oldest wall ms, newest end wall ms) of `stream`'s archive.
pub fn stream_bounds(conn: &Connection, stream: &str) -> Result<Option<(i64, i64)>, ArchiveError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT (SELECT wall_ms FROM segments WHERE stream = ?1 ORDER BY wall_ms LIMIT 1),
                    (SELECT wall_ms + dur_ms FROM segments WHERE stream = ?1
                       ORDER BY wall_ms DESC LIMIT 1)",
        )
        .map_err(db_err)?;
    let (a, b): (Option<i64>, Option<i64>) = stmt
        .query_row([stream], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db_err)?;
    Ok(a.zip(b))
}

/// Names of every stream that has a session or a flag.
pub fn stream_names(conn: &Connection) -> Result<Vec<String>, ArchiveError> {
    query(
        conn,
        "SELECT stream FROM sessions UNION SELECT name FROM streams ORDER BY 1",
        [],
        |r| r.get(0),
    )
}

/// Session ids of `stream`, oldest first.
pub fn session_ids(conn: &Connection, stream: &str) -> Result<Vec<i64>, ArchiveError> {
    query(
        conn,
        "SELECT id FROM sessions WHERE stream = ?1 ORDER BY id",
        [stream],
        |r| r.get(0),
    )
}

/// Sets the disabled flag of a stream.
pub fn set_disabled(conn: &Connection, stream: &str, disabled: bool) -> Result<(), ArchiveError> {
    conn.execute(
        "INSERT INTO streams(name, disabled) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET disabled = excluded.disabled",
        params![stream, disabled],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Names of disabled streams.
pub fn disabled_streams(conn: &Connection) -> Result<Vec<String>, ArchiveError> {
    query(
        conn,
        "SELECT name FROM streams WHERE disabled != 0",
        [],
        |r| r.get(0),
    )
}

const PINNED: &str = "EXISTS (SELECT 1 FROM recordings r WHERE r.stream = s.stream
      AND r.start_ms < s.wall_ms + s.dur_ms AND (r.end_ms IS NULL OR r.end_ms > s.wall_ms))";

/// An archived segment to remove: (session id, rep, number, file, bytes).
pub type Expired = (i64, String, u64, String, u64);

/// Up to `limit` unpinned segments (of `stream`, or of every stream when `None`) whose end
/// is before `before_ms`, oldest first: (session id, rep, number, file).
pub fn expired(
    conn: &Connection,
    stream: Option<&str>,
    before_ms: i64,
    limit: usize,
) -> Result<Vec<Expired>, ArchiveError> {
    let sql = format!(
        "SELECT session_id, rep, number, file, bytes FROM segments s
         WHERE wall_ms < ?1 AND wall_ms + dur_ms < ?1 AND (?2 IS NULL OR stream = ?2)
           AND NOT {PINNED}
         ORDER BY wall_ms LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let rows = stmt
        .query_map(params![before_ms, stream, limit as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, i64>(2)?.max(0) as u64,
                r.get(3)?,
                r.get::<_, i64>(4)?.max(0) as u64,
            ))
        })
        .map_err(db_err)?
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    Ok(rows)
}

/// Pinned segments of `stream` (kept by a recording).
pub fn pinned_count(conn: &Connection, stream: &str) -> Result<u64, ArchiveError> {
    let sql = format!("SELECT COUNT(*) FROM segments s WHERE stream = ?1 AND {PINNED}");
    let n: i64 = conn
        .query_row(&sql, [stream], |r| r.get(0))
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

/// Total bytes of archived segments.
pub fn total_bytes(conn: &Connection) -> Result<u64, ArchiveError> {
    let n: Option<i64> = conn
        .query_row("SELECT SUM(bytes) FROM segments", [], |r| r.get(0))
        .map_err(db_err)?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// Removes one segment row.
pub fn delete_segment(
    conn: &Connection,
    session_id: i64,
    rep: &str,
    number: u64,
) -> Result<(), ArchiveError> {
    // By the unique (session, rep, number) index.
    conn.execute(
        "DELETE FROM segments WHERE session_id = ?1 AND rep = ?2 AND number = ?3",
        params![session_id, rep, number as i64],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Sessions with no segment left that are not the newest of their stream: their rows go
/// and their ids are returned (so their folders can go too).
pub fn drop_empty_sessions(conn: &Connection) -> Result<Vec<i64>, ArchiveError> {
    let mut stmt = conn
        .prepare(
            "SELECT id FROM sessions s
             WHERE NOT EXISTS (SELECT 1 FROM segments g WHERE g.session_id = s.id)
               AND s.id < (SELECT MAX(id) FROM sessions t WHERE t.stream = s.stream)",
        )
        .map_err(db_err)?;
    let ids: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .map_err(db_err)?
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    for id in &ids {
        conn.execute("DELETE FROM session_reps WHERE session_id = ?1", [id])
            .map_err(db_err)?;
        conn.execute("DELETE FROM sessions WHERE id = ?1", [id])
            .map_err(db_err)?;
    }
    Ok(ids)
}

fn recording_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordingRow> {
    let state: String = r.get(2)?;
    Ok(RecordingRow {
        id: r.get(0)?,
        stream: r.get(1)?,
        state: RecordingState::parse(&state).unwrap_or(RecordingState::Failed),
        start_ms: r.get(3)?,
        end_ms: r.get(4)?,
        title: r.get(5)?,
        description: r.get(6)?,
        max_duration_secs: r.get(7)?,
        reason: r.get(8)?,
        created_ms: r.get(9)?,
        updated_ms: r.get(10)?,
    })
}

const RECORDING_COLUMNS: &str = "id, stream, state, start_ms, end_ms, title, description,
    max_duration_secs, reason, created_ms, updated_ms";

/// Inserts or replaces a recording.
pub fn put_recording(conn: &Connection, r: &RecordingRow) -> Result<(), ArchiveError> {
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO recordings({RECORDING_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ),
        params![
            r.id,
            r.stream,
            r.state.as_str(),
            r.start_ms,
            r.end_ms,
            r.title,
            r.description,
            r.max_duration_secs,
            r.reason,
            r.created_ms,
            r.updated_ms
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

/// One recording by id.
pub fn recording(conn: &Connection, id: &str) -> Result<Option<RecordingRow>, ArchiveError> {
    conn.query_row(
        &format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = ?1"),
        [id],
        recording_from_row,
    )
    .optional()
    .map_err(db_err)
}

/// Recordings filtered by stream and state, newest first.
pub fn recordings(
    conn: &Connection,
    stream: Option<&str>,
    state: Option<RecordingState>,
) -> Result<Vec<RecordingRow>, ArchiveError> {
    query(
        conn,
        &format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings
             WHERE (?1 IS NULL OR stream = ?1) AND (?2 IS NULL OR state = ?2)
             ORDER BY created_ms DESC, id"
        ),
        params![stream, state.map(RecordingState::as_str)],
        recording_from_row,
    )
}

/// Removes a recording (its segments are unpinned).
pub fn delete_recording(conn: &Connection, id: &str) -> Result<bool, ArchiveError> {
    let n = conn
        .execute("DELETE FROM recordings WHERE id = ?1", [id])
        .map_err(db_err)?;
    Ok(n > 0)
}
