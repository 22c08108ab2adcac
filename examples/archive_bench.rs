//! Archive and recordings benchmark (issue 7).
//!
//! Builds a synthetic data dir: a 7-day archive of one stream (`live/bench`) with one
//! encoder session per day, 2 s segments in 3 representations (two video at timescale
//! 15360, one AAC audio at 48000 whose segments are whole 1024-sample frames, as ffmpeg
//! cuts them), 907,200 segment rows in all, inserted through `casterpak::archive::db` in one
//! transaction, wall clocks ending now; plus one `done` recording of 24 h inside the
//! archive (across an encoder-session boundary). No segment file is written: playlists and
//! the API read the index only.
//!
//! Then, per run, the release binary is started on free loopback ports with that data dir
//! and measured:
//! - start-up: from spawn to the first `200` of `GET /api/v1/streams/live%2Fbench`;
//! - `GET /recordings/<id>/media_0.m3u8` and `.../manifest.mpd` (N sequential requests on one
//!   keep-alive connection each, whole body read), `GET /api/v1/streams/live%2Fbench/ranges`
//!   and `GET /api/v1/recordings/<id>` (M requests each): p50 / p99 / max, body sizes.
//!
//! ```text
//! cargo build --release --bin casterpak --example archive_bench
//! target/release/examples/archive_bench [--runs 5] [--requests 100] [--api-requests 200]
//!     [--days 7] [--bin target/release/casterpak] [--dir DIR] [--keep] [--cold]
//!     [--phases] [--contention 4]
//! ```
//! `--dir` reuses (or keeps, with `--keep`) a data dir instead of a temporary one;
//! `--cold` evicts the index file from the page cache before each start
//! (`dd iflag=nocache count=0`, this file only); `--phases` also times, in process, what
//! the handlers do (SQL read, grouping, rendering) and prints SQLite's query plans;
//! `--contention N` (after the runs, on a fresh origin) sends N MPD requests at once, each on
//! its own connection, and 5 ms later one ranges request, 3 rounds, and prints their times.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use casterpak::archive::{
    self, db, replay, Archive, ArchiveConfig, RecordingRow, RecordingState, RepRow, SegmentRow,
};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const STREAM: &str = "live/bench";
const DAY_MS: i64 = 86_400_000;
const SEG_MS: i64 = 2_000;
const VIDEO_TS: u32 = 15_360;
const AUDIO_TS: u32 = 48_000;
const AAC_FRAME: u64 = 1_024;

struct Args {
    runs: usize,
    requests: usize,
    api_requests: usize,
    days: i64,
    bin: PathBuf,
    dir: Option<PathBuf>,
    keep: bool,
    cold: bool,
    phases: bool,
    contention: usize,
}

fn args() -> Args {
    let mut a = Args {
        runs: 5,
        requests: 100,
        api_requests: 200,
        days: 7,
        bin: PathBuf::from("target/release/casterpak"),
        dir: None,
        keep: false,
        cold: false,
        phases: false,
        contention: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--keep" => a.keep = true,
            "--cold" => a.cold = true,
            "--phases" => a.phases = true,
            _ => {
                let v = it.next().unwrap_or_default();
                match flag.as_str() {
                    "--runs" => a.runs = v.parse().expect("--runs N"),
                    "--requests" => a.requests = v.parse().expect("--requests N"),
                    "--api-requests" => a.api_requests = v.parse().expect("--api-requests N"),
                    "--days" => a.days = v.parse().expect("--days N"),
                    "--bin" => a.bin = PathBuf::from(v),
                    "--dir" => a.dir = Some(PathBuf::from(v)),
                    "--contention" => a.contention = v.parse().expect("--contention N"),
                    other => panic!("unknown flag {other}"),
                }
            }
        }
    }
    a
}

// ---- the synthetic data dir ----

/// The three representations of every session, as ffmpeg's MPD names them.
fn reps() -> Vec<RepRow> {
    let rep =
        |id: &str, kind: &str, codecs: &str, bw: u64, wh: Option<(u32, u32)>, ts: u32| RepRow {
            rep: id.into(),
            kind: kind.into(),
            codecs: Some(codecs.into()),
            bandwidth: Some(bw),
            width: wh.map(|w| w.0),
            height: wh.map(|w| w.1),
            frame_rate: wh.map(|_| "30/1".into()),
            timescale: ts,
            init_file: format!("init-stream{id}.m4s"),
            media_template: Some(format!("chunk-stream{id}-$Number%05d$.m4s")),
        };
    vec![
        rep(
            "0",
            "video",
            "avc1.64001e",
            1_500_000,
            Some((640, 360)),
            VIDEO_TS,
        ),
        rep(
            "1",
            "video",
            "avc1.64000d",
            400_000,
            Some((320, 180)),
            VIDEO_TS,
        ),
        rep("2", "audio", "mp4a.40.2", 128_000, None, AUDIO_TS),
    ]
}

/// AAC frames before segment boundary `n` (0-based): ffmpeg ends an audio segment at the
/// first frame boundary at or after the video boundary n x 2 s.
fn aac_frames_before(n: u64) -> u64 {
    (n * 2 * AUDIO_TS as u64).div_ceil(AAC_FRAME)
}

struct Built {
    rows: u64,
    recording: RecordingRow,
    secs: f64,
    db_bytes: u64,
}

fn recording_id() -> String {
    format!("rec_{}", uuid::Uuid::new_v4().simple())
}

/// Writes `<data>/.casterpak.db` (and empty session folders) for `days` days ending at
/// `end_ms`.
fn build(data: &Path, days: i64, end_ms: i64) -> Built {
    std::fs::create_dir_all(data.join(archive::ARCHIVE_DIR)).unwrap();
    let t = Instant::now();
    let conn = db::open(&data.join(archive::DB_FILE)).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    let per_session = (DAY_MS / SEG_MS) as u64;
    let mut rows = 0u64;
    let mut session_start = Vec::new();
    for d in 0..days {
        let start = end_ms - (days - d) * DAY_MS;
        session_start.push(start);
        let ast = archive::format_ms(start);
        let id = db::insert_session(&conn, STREAM, Some(&ast), start).unwrap();
        // Every segment's wall clock is the session's epoch plus its media time.
        db::set_session_epoch(&conn, id, start).unwrap();
        std::fs::create_dir_all(data.join(archive::ARCHIVE_DIR).join(id.to_string())).unwrap();
        for r in reps() {
            db::upsert_rep(&conn, id, &r).unwrap();
        }
        for r in reps() {
            for n in 1..=per_session {
                let (media_time, duration) = if r.kind == "audio" {
                    let a = aac_frames_before(n - 1);
                    let b = aac_frames_before(n);
                    (a * AAC_FRAME, (b - a) * AAC_FRAME)
                } else {
                    let d = 2 * VIDEO_TS as u64;
                    ((n - 1) * d, d)
                };
                let ts = r.timescale as u64;
                let wall_ms = start + (media_time * 1000 / ts) as i64;
                let dur_ms = ((duration * 1000 + ts / 2) / ts) as i64;
                // Sizes vary a little around the bitrate (not read by what is measured).
                let nominal = r.bandwidth.unwrap_or(0) / 4;
                let bytes = nominal - nominal / 10 + (n * 7919 % 100) * nominal / 500;
                db::upsert_segment(
                    &conn,
                    &SegmentRow {
                        session_id: id,
                        rep: r.rep.clone(),
                        number: n,
                        stream: STREAM.into(),
                        media_time,
                        duration,
                        wall_ms,
                        dur_ms,
                        file: format!("chunk-stream{}-{n:05}.m4s", r.rep),
                        bytes,
                    },
                )
                .unwrap();
                rows += 1;
            }
        }
    }
    // A day-long recording, done, from the middle of one session to the middle of the
    // next (two encoder sessions: a discontinuity / two Periods).
    let mid = (days / 2).max(1) as usize;
    let rec_start = session_start[mid] - DAY_MS / 2;
    let recording = RecordingRow {
        id: recording_id(),
        stream: STREAM.into(),
        state: RecordingState::Done,
        start_ms: rec_start,
        end_ms: Some(rec_start + DAY_MS),
        title: Some("bench: 24 h".into()),
        description: None,
        max_duration_secs: None,
        reason: None,
        created_ms: rec_start,
        updated_ms: rec_start + DAY_MS + 5_000,
    };
    db::put_recording(&conn, &recording).unwrap();
    conn.execute_batch("COMMIT").unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    drop(conn);
    let secs = t.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(data.join(archive::DB_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    Built {
        rows,
        recording,
        secs,
        db_bytes,
    }
}

/// The recording of an existing data dir (`--dir` reused).
fn existing(data: &Path) -> Option<Built> {
    let path = data.join(archive::DB_FILE);
    if !path.exists() {
        return None;
    }
    let conn = db::open(&path).ok()?;
    let recording = db::recordings(&conn, Some(STREAM), Some(RecordingState::Done))
        .ok()?
        .into_iter()
        .next()?;
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM segments", [], |r| r.get(0))
        .ok()?;
    Some(Built {
        rows: rows as u64,
        recording,
        secs: 0.0,
        db_bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
    })
}

// ---- the origin ----

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Origin {
    child: Child,
    egress: SocketAddr,
    api: SocketAddr,
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(bin: &Path, data: &Path, days: i64) -> Origin {
    let (ingest, egress, api) = (free_addr(), free_addr(), free_addr());
    // Retention above the archive's age: the default (one day) would make the first sweep
    // (right at start) remove six days of it.
    let retention = ((days + 3) * DAY_MS / 1000).to_string();
    let child = Command::new(bin)
        .args(["serve", "--ingest-addr", &ingest.to_string()])
        .args(["--egress-addr", &egress.to_string()])
        .args(["--api-addr", &api.to_string()])
        .args(["--archive-retention-secs", &retention])
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start casterpak (build it with cargo build --release)");
    Origin { child, egress, api }
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> std::io::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(send)
}

/// One GET on a keep-alive connection: (status, body bytes, ms from send to the last body
/// byte).
async fn get(send: &mut Sender, host: SocketAddr, path: &str) -> (u16, usize, f64) {
    send.ready().await.expect("connection usable");
    let req = http::Request::get(path)
        .header("host", host.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let t = Instant::now();
    let resp = send.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body.len(), t.elapsed().as_secs_f64() * 1000.0)
}

/// Milliseconds from spawn to the first 200 of the stream's API entry.
async fn startup(origin: &Origin, spawned: Instant) -> f64 {
    let path = format!("/api/v1/streams/{}", STREAM.replace('/', "%2F"));
    loop {
        if spawned.elapsed() > Duration::from_secs(60) {
            panic!("origin not answering after 60 s");
        }
        let Ok(mut s) = connect(origin.api).await else {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        };
        match tokio::time::timeout(Duration::from_secs(30), get(&mut s, origin.api, &path)).await {
            Ok((200, _, _)) => return spawned.elapsed().as_secs_f64() * 1000.0,
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Stats {
    first: f64,
    p50: f64,
    p99: f64,
    max: f64,
    bytes: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// `n` sequential GETs of `path` on one keep-alive connection.
async fn series(addr: SocketAddr, path: &str, n: usize) -> Stats {
    let mut s = connect(addr).await.expect("connect");
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let (status, len, ms) = get(&mut s, addr, path).await;
        assert_eq!(status, 200, "GET {path}");
        bytes = len;
        times.push(ms);
    }
    let first = times[0];
    times.sort_by(|a, b| a.total_cmp(b));
    Stats {
        first,
        p50: percentile(&times, 0.5),
        p99: percentile(&times, 0.99),
        max: *times.last().unwrap(),
        bytes,
    }
}

struct Run {
    startup_ms: f64,
    hls: Stats,
    mpd: Stats,
    ranges: Stats,
    json: Stats,
    rss_kib: u64,
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn evict(path: &Path) {
    let _ = Command::new("dd")
        .arg(format!("if={}", path.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .status();
}

async fn run_once(a: &Args, data: &Path, rec: &str) -> Run {
    if a.cold {
        evict(&data.join(archive::DB_FILE));
    }
    let spawned = Instant::now();
    let origin = spawn(&a.bin, data, a.days);
    let startup_ms = startup(&origin, spawned).await;
    let hls = series(
        origin.egress,
        &format!("/recordings/{rec}/media_0.m3u8"),
        a.requests,
    )
    .await;
    let mpd = series(
        origin.egress,
        &format!("/recordings/{rec}/manifest.mpd"),
        a.requests,
    )
    .await;
    let enc = STREAM.replace('/', "%2F");
    let ranges = series(
        origin.api,
        &format!("/api/v1/streams/{enc}/ranges"),
        a.api_requests,
    )
    .await;
    let json = series(
        origin.api,
        &format!("/api/v1/recordings/{rec}"),
        a.api_requests,
    )
    .await;
    let rss_kib = peak_rss_kib(origin.child.id());
    Run {
        startup_ms,
        hls,
        mpd,
        ranges,
        json,
        rss_kib,
    }
}

/// N concurrent MPD requests and, 5 ms later, one ranges request: (MPD ms each, ranges ms).
async fn contention_round(origin: &Origin, rec: &str, n: usize) -> (Vec<f64>, f64) {
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(connect(origin.egress).await.expect("connect"));
    }
    let mut api = connect(origin.api).await.expect("connect");
    let path = format!("/recordings/{rec}/manifest.mpd");
    let egress = origin.egress;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let path = path.clone();
            tokio::spawn(async move { get(&mut c, egress, &path).await.2 })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let enc = STREAM.replace('/', "%2F");
    let ranges = get(
        &mut api,
        origin.api,
        &format!("/api/v1/streams/{enc}/ranges"),
    )
    .await
    .2;
    let mut mpd = Vec::new();
    for t in tasks {
        mpd.push(t.await.unwrap());
    }
    (mpd, ranges)
}

async fn contention(a: &Args, data: &Path, rec: &str) {
    let spawned = Instant::now();
    let origin = spawn(&a.bin, data, a.days);
    startup(&origin, spawned).await;
    // Warm: one of each first.
    series(origin.egress, &format!("/recordings/{rec}/manifest.mpd"), 1).await;
    println!(
        "contention: {} MPD requests at once (one connection each) + one ranges request 5 ms later",
        a.contention
    );
    for round in 1..=3 {
        let (mpd, ranges) = contention_round(&origin, rec, a.contention).await;
        let list: Vec<String> = mpd.iter().map(|m| format!("{m:.1}")).collect();
        println!(
            "  round {round}: MPD ms {}; ranges {ranges:.1} ms",
            list.join(", ")
        );
    }
}

// ---- in-process phases ----

fn time_ms<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed().as_secs_f64() * 1000.0)
}

fn median_of(mut f: impl FnMut() -> f64, n: usize) -> f64 {
    let mut v: Vec<f64> = (0..n).map(|_| f()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn phases(data: &Path, rec: &RecordingRow) {
    let a = Archive::open(data, ArchiveConfig::default()).unwrap();
    let (start, end) = (rec.start_ms, rec.end_ms.unwrap());
    let n = 9;
    println!("in-process phases (median of {n}, ms):");
    let sql_rep = median_of(
        || {
            time_ms(|| {
                a.with_conn(|c| db::rep_segments(c, STREAM, "0", start, end, false))
                    .unwrap()
                    .len()
            })
            .1
        },
        n,
    );
    let rows = a
        .with_conn(|c| db::rep_segments(c, STREAM, "0", start, end, false))
        .unwrap()
        .len();
    // The same range read without building rows: the B-tree walk alone, then with the
    // columns fetched but not turned into Rust strings.
    let count_only = median_of(
        || {
            time_ms(|| {
                a.with_conn(|c| {
                    Ok(c.query_row(
                        "SELECT COUNT(*) FROM segments WHERE stream = ?1 AND rep = ?2
                         AND wall_ms > ?3 - 3600000 AND wall_ms < ?4 AND wall_ms + dur_ms > ?3
                         AND wall_ms + dur_ms / 2 >= ?3 AND wall_ms + dur_ms / 2 < ?4",
                        rusqlite::params![STREAM, "0", start, end],
                        |r| r.get::<_, i64>(0),
                    )
                    .unwrap())
                })
                .unwrap()
            })
            .1
        },
        n,
    );
    let columns_only = median_of(
        || {
            time_ms(|| {
                a.with_conn(|c| {
                    let mut st = c
                        .prepare_cached(
                            "SELECT session_id, rep, number, stream, media_time, duration, wall_ms,
                                    dur_ms, file, bytes FROM segments WHERE stream = ?1 AND rep = ?2
                             AND wall_ms > ?3 - 3600000 AND wall_ms < ?4 AND wall_ms + dur_ms > ?3
                             AND wall_ms + dur_ms / 2 >= ?3 AND wall_ms + dur_ms / 2 < ?4
                             ORDER BY wall_ms",
                        )
                        .unwrap();
                    let mut rows = st
                        .query(rusqlite::params![STREAM, "0", start, end])
                        .unwrap();
                    let mut k = 0usize;
                    while let Some(r) = rows.next().unwrap() {
                        k += r.get_ref(8).unwrap().as_bytes().unwrap().len();
                        k += r.get::<_, i64>(6).unwrap() as usize & 1;
                    }
                    Ok(k)
                })
                .unwrap()
            })
            .1
        },
        n,
    );
    println!(
        "  one representation, 24 h: COUNT(*) of the range {count_only:.2}, rows stepped (file, wall_ms read, no allocation) {columns_only:.2}"
    );
    let view_rep = median_of(
        || time_ms(|| a.view_rep(STREAM, "0", start, end, false).unwrap()).1,
        n,
    );
    let view = a.view_rep(STREAM, "0", start, end, false).unwrap();
    let opts = replay::ViewOptions {
        growing: false,
        query: "",
        now_ms: archive::now_ms(),
        time_url: "http://127.0.0.1:5001/time",
        media_prefix: "media_",
        start_offset_ms: 0,
    };
    let render_hls = median_of(
        || time_ms(|| replay::hls_media(&view, "0", &opts).unwrap().len()).1,
        n,
    );
    let body = replay::hls_media(&view, "0", &opts).unwrap();
    let etag_hls = median_of(
        || time_ms(|| std::hint::black_box(fnv64(std::hint::black_box(body.as_bytes())))).1,
        n,
    );
    println!(
        "  media_0.m3u8: ETag hash of the {} B body (FNV-1a byte loop, as server/replay.rs) {etag_hls:.2}",
        body.len()
    );
    println!(
        "  media_0.m3u8: SQL rep_segments {sql_rep:.2} ({rows} rows), view_rep (SQL + group) {view_rep:.2}, render hls_media {render_hls:.2}"
    );
    let sql_all = median_of(
        || {
            time_ms(|| {
                a.with_conn(|c| db::segments_in(c, STREAM, start, end))
                    .unwrap()
                    .len()
            })
            .1
        },
        n,
    );
    let all_rows = a
        .with_conn(|c| db::segments_in(c, STREAM, start, end))
        .unwrap()
        .len();
    let rows_all = a
        .with_conn(|c| db::segments_in(c, STREAM, start, end))
        .unwrap();
    let sort_all = median_of(
        || {
            let mut v = rows_all.clone();
            time_ms(|| {
                v.sort_by(|a, b| {
                    (a.session_id, &a.rep, a.number).cmp(&(b.session_id, &b.rep, b.number))
                });
                std::hint::black_box(v.len())
            })
            .1
        },
        n,
    );
    println!(
        "  manifest.mpd: one sort of the {} rows by (session, rep, number) {sort_all:.2} (segments_in sorts once, view's grouping again)",
        rows_all.len()
    );
    let view_all = median_of(|| time_ms(|| a.view(STREAM, start, end).unwrap()).1, n);
    let full = a.view(STREAM, start, end).unwrap();
    let render_mpd = median_of(
        || time_ms(|| replay::dash_mpd(&full, &opts).unwrap().len()).1,
        n,
    );
    println!(
        "  manifest.mpd: SQL segments_in {sql_all:.2} ({all_rows} rows), view (SQL + sort + group) {view_all:.2}, render dash_mpd {render_mpd:.2}"
    );
    let covered = median_of(
        || {
            time_ms(|| {
                a.with_conn(|c| db::covered_ms(c, STREAM, start, end))
                    .unwrap()
            })
            .1
        },
        n,
    );
    let spans = median_of(
        || time_ms(|| a.with_conn(|c| db::session_spans(c, STREAM)).unwrap()).1,
        n,
    );
    let bounds = median_of(
        || time_ms(|| a.with_conn(|c| db::stream_bounds(c, STREAM)).unwrap()).1,
        n,
    );
    println!(
        "  recording JSON: covered_ms {covered:.2}; ranges: session_spans {spans:.3}; stream_bounds {bounds:.3}"
    );
    println!("query plans:");
    // The statements of `db` with this run's values in place of their parameters.
    let (s0, e0) = (start.to_string(), end.to_string());
    let lit = |sql: &str| {
        sql.replace("?1", "'live/bench'")
            .replace("?2", "'0'")
            .replace("?3", &s0)
            .replace("?4", &e0)
            .replace("?5", "3600000")
    };
    let plans = [
        (
            "rep_segments",
            lit("SELECT session_id, rep, number, stream, media_time, duration, wall_ms, dur_ms, file, bytes FROM segments WHERE stream = ?1 AND rep = ?2 AND wall_ms > ?3 - ?5 AND wall_ms < ?4 AND wall_ms + dur_ms > ?3 AND (0 OR (wall_ms + dur_ms / 2 >= ?3 AND wall_ms + dur_ms / 2 < ?4)) ORDER BY wall_ms"),
        ),
        (
            "covered_ms",
            lit("SELECT COALESCE(SUM(dur_ms), 0) FROM segments WHERE stream = ?1 AND rep = ?2 AND wall_ms > ?3 - ?5 AND wall_ms < ?4 AND wall_ms + dur_ms / 2 >= ?3 AND wall_ms + dur_ms / 2 < ?4"),
        ),
        (
            "stream_reps",
            lit("SELECT DISTINCT r.rep FROM session_reps r JOIN sessions s ON s.id = r.session_id WHERE s.stream = ?1 ORDER BY r.rep"),
        ),
        (
            "session_spans",
            lit("SELECT id, first_ms, end_ms FROM sessions WHERE stream = ?1 AND first_ms IS NOT NULL ORDER BY id"),
        ),
        (
            "stream_bounds",
            lit("SELECT (SELECT wall_ms FROM segments WHERE stream = ?1 ORDER BY wall_ms LIMIT 1), (SELECT wall_ms + dur_ms FROM segments WHERE stream = ?1 ORDER BY wall_ms DESC LIMIT 1)"),
        ),
    ];
    a.with_conn(|c| {
        for (name, sql) in plans {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let lines: Vec<String> = st
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .map(|l| l.unwrap())
                .collect();
            println!("  {name}: {}", lines.join(" | "));
        }
        Ok(())
    })
    .unwrap();
}

/// The ETag hash of `server/replay.rs` (a private function there), copied to time it.
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---- main ----

fn main() {
    let a = args();
    let tmp;
    let (root, data) = match &a.dir {
        Some(d) => (None, d.clone()),
        None => {
            tmp = std::env::temp_dir()
                .join(format!("casterpak-archive-bench-{}", std::process::id()));
            (Some(tmp.clone()), tmp.join("data"))
        }
    };
    let built = match existing(&data) {
        Some(b) => {
            println!(
                "data dir {} reused: {} segment rows, index {:.1} MiB",
                data.display(),
                b.rows,
                b.db_bytes as f64 / 1048576.0
            );
            b
        }
        None => {
            let end = archive::now_ms() / 1000 * 1000;
            let b = build(&data, a.days, end);
            println!(
                "data dir {}: {} days, {} segment rows inserted in {:.1} s (one transaction), index {:.1} MiB",
                data.display(),
                a.days,
                b.rows,
                b.secs,
                b.db_bytes as f64 / 1048576.0
            );
            b
        }
    };
    let rec = &built.recording;
    println!(
        "recording {} ({}): {} .. {}",
        rec.id,
        rec.state.as_str(),
        archive::format_ms(rec.start_ms),
        archive::format_ms(rec.end_ms.unwrap_or(0))
    );
    if a.phases {
        phases(&data, rec);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runs = Vec::new();
    for _ in 0..a.runs {
        runs.push(rt.block_on(run_once(&a, &data, &rec.id)));
    }
    let r0 = &runs[0];
    println!(
        "body sizes: media_0.m3u8 {} B, manifest.mpd {} B, ranges {} B, recording JSON {} B",
        r0.hls.bytes, r0.mpd.bytes, r0.ranges.bytes, r0.json.bytes
    );
    println!();
    println!(
        "| run | start-up ms | m3u8 first | m3u8 p50 | m3u8 p99 | m3u8 max | mpd first | mpd p50 | mpd p99 | mpd max | ranges p50 | ranges p99 | ranges max | JSON p50 | JSON p99 | JSON max | peak RSS MiB |"
    );
    println!(
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let cells = |r: &Run| {
        vec![
            r.startup_ms,
            r.hls.first,
            r.hls.p50,
            r.hls.p99,
            r.hls.max,
            r.mpd.first,
            r.mpd.p50,
            r.mpd.p99,
            r.mpd.max,
            r.ranges.p50,
            r.ranges.p99,
            r.ranges.max,
            r.json.p50,
            r.json.p99,
            r.json.max,
            r.rss_kib as f64 / 1024.0,
        ]
    };
    let fmt = |v: &[f64]| {
        v.iter()
            .enumerate()
            .map(|(i, x)| {
                if i == 0 || i == v.len() - 1 {
                    format!("{x:.1}")
                } else {
                    format!("{x:.2}")
                }
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let all: Vec<Vec<f64>> = runs.iter().map(cells).collect();
    for (i, c) in all.iter().enumerate() {
        println!("| {} | {} |", i + 1, fmt(c));
    }
    let med: Vec<f64> = (0..all[0].len())
        .map(|k| {
            let mut col: Vec<f64> = all.iter().map(|c| c[k]).collect();
            col.sort_by(|a, b| a.total_cmp(b));
            let m = col.len();
            if m % 2 == 1 {
                col[m / 2]
            } else {
                (col[m / 2 - 1] + col[m / 2]) / 2.0
            }
        })
        .collect();
    println!("| **median** | {} |", fmt(&med));
    if a.contention > 0 {
        rt.block_on(contention(&a, &data, &rec.id));
    }
    if let Some(root) = root {
        if !a.keep {
            let _ = std::fs::remove_dir_all(root);
        } else {
            println!("kept {}", data.display());
        }
    }
}
