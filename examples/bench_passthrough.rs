//! Chunk pass-through delay benchmark (issue 2).
//!
//! Starts the real `casterpak` binary, replays a captured ffmpeg CMAF stream
//! (`tests/fixtures/cmaf/`) into its ingest at real-time pace (each CMAF chunk 0.5 s after the
//! previous, split into HTTP chunks of at most 32 KiB like ffmpeg), with N concurrent
//! readers streaming each in-progress segment from egress. For every HTTP chunk written it
//! measures, per reader, the time from the end of the write to the ingest socket to the
//! moment that reader has received the chunk's last byte. Prints p50/p99/max over all
//! (reader, chunk) pairs, the origin's CPU time and its peak RSS.
//!
//! ```text
//! cargo run --release --example bench_passthrough -- [--readers 1,100,1000] [--segments 3]
//!     [--bin target/release/casterpak]
//! ```
//! Needs `ulimit -n` above 2 x readers + 100 (bench/passthrough.sh sets it).
//!
//! Recording create/stop under the push (issue 7): `--recordings 0,10 [--runs 3]
//! [--preroll 6]` pushes a live MPD naming the segments (so the archive indexes them), then
//! `--preroll` segments at real-time pace without readers (so the stream has more than 10 s
//! of archive), then the measured segments. During the measured segments, N workers each
//! repeat `POST /api/v1/recordings {"stream":"live/bench","start":<now-10 s>}`, 200 ms,
//! `POST /api/v1/recordings/{id}/stop`, 100 ms. Every run starts a fresh origin; the runs
//! alternate between the values of `--recordings` (0, 10, 0, 10, ...), and each row also
//! reports how many creates and stops were answered and their median latency.
//!
//! A transcode beside the push (issue 8): `--transcode 0,1 --transcode-clip FILE [--runs 3]`
//! runs alternate between no transcode and one library transcode running during the
//! measured segments: the clip is uploaded by tus to the origin's media library (media root
//! in the run's temporary folder) and the measurement starts once the asset is
//! `processing` (ffmpeg encoding the ladder at its nice level); a row says whether it was
//! still processing at the end.
//!
//! Floor mode (issue 9): `--floor target/release/examples/floor_server [--runs 3]` runs every
//! reader count against the origin and against `examples/floor_server.rs` (one task writing
//! each received buffer of the upload to N reader sockets, no HTTP beyond the request
//! line and the chunk sizes), with the same publisher, fixture, pacing, chunking and readers.
//! Each (run, readers) measures both back to back, origin first in odd runs and floor first in
//! even runs; a fresh server process each time. Rows carry the server's name.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use casterpak::cmaf::{BoxScanner, ScanEvent};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const HTTP_CHUNK: usize = 32 * 1024;

struct Args {
    readers: Vec<usize>,
    segments: usize,
    bin: PathBuf,
    fixture: String,
    /// Recording create/stop workers per run, alternated (empty: the plain benchmark).
    recordings: Vec<usize>,
    runs: usize,
    preroll: usize,
    /// The floor server binary (floor mode).
    floor: Option<PathBuf>,
    /// Runs without (0) and with (1) a library transcode, alternated (empty: off).
    transcode: Vec<usize>,
    /// The clip uploaded for the transcode.
    transcode_clip: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        readers: vec![1, 100, 1000],
        segments: 3,
        bin: PathBuf::from("target/release/casterpak"),
        fixture: "ffmpeg_ldash_640x360".into(),
        recordings: Vec::new(),
        runs: 1,
        preroll: 6,
        floor: None,
        transcode: Vec::new(),
        transcode_clip: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--readers" => a.readers = v.split(',').filter_map(|s| s.parse().ok()).collect(),
            "--segments" => a.segments = v.parse().unwrap_or(3),
            "--bin" => a.bin = PathBuf::from(v),
            "--fixture" => a.fixture = v,
            "--recordings" => a.recordings = v.split(',').filter_map(|s| s.parse().ok()).collect(),
            "--runs" => a.runs = v.parse().unwrap_or(1),
            "--preroll" => a.preroll = v.parse().unwrap_or(6),
            "--floor" => a.floor = Some(PathBuf::from(v)),
            "--transcode" => a.transcode = v.split(',').filter_map(|s| s.parse().ok()).collect(),
            "--transcode-clip" => a.transcode_clip = Some(PathBuf::from(v)),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Origin {
    child: Child,
    ingest: SocketAddr,
    egress: SocketAddr,
    api: SocketAddr,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A temporary folder removed on drop (no extra dependency for an example).
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// What a run measures: the origin, or the floor server (floor mode).
#[derive(Clone, Copy)]
enum Server<'a> {
    Origin(&'a PathBuf),
    Floor(&'a PathBuf),
}

impl Server<'_> {
    fn name(&self) -> &'static str {
        match self {
            Server::Origin(_) => "origin",
            Server::Floor(_) => "floor",
        }
    }
}

impl Origin {
    fn start(server: Server<'_>) -> Origin {
        let dir = std::env::temp_dir().join(format!("casterpak-bench-{}", std::process::id()));
        let ingest = free_addr();
        let egress = free_addr();
        let api = free_addr();
        let child = match server {
            Server::Origin(bin) => Command::new(bin)
                .args(["serve", "--ingest-addr", &ingest.to_string()])
                .args(["--egress-addr", &egress.to_string()])
                .args(["--api-addr", &api.to_string()])
                .arg("--data-dir")
                .arg(dir.join("data"))
                .arg("--media-root")
                .arg({
                    let m = dir.join("media");
                    let _ = std::fs::create_dir_all(&m);
                    m
                })
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start casterpak (build it with cargo build --release)"),
            Server::Floor(bin) => Command::new(bin)
                .args(["--ingest-addr", &ingest.to_string()])
                .args(["--egress-addr", &egress.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start floor_server (cargo build --release --example floor_server)"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(egress).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Origin {
            child,
            ingest,
            egress,
            api,
            _dir: tempdir::Dir(dir),
        }
    }

    /// (utime + stime) in seconds and VmHWM in KiB, from /proc.
    fn cpu_and_peak_rss(&self) -> (f64, u64) {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // Fields after the command: state is index 0, utime is 11, stime is 12.
        let cpu = (ticks(11) + ticks(12)) as f64 / 100.0;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (cpu, hwm)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One segment cut into what ffmpeg would write: the `styp` first, then per CMAF chunk a
/// burst of HTTP chunks of at most 32 KiB, each burst due when its chunk's last sample has
/// been captured (seconds after the segment start, from tfdt/trun and the timescale).
fn bursts(segment: &Bytes, timescale: u32) -> Vec<(f64, Vec<Bytes>)> {
    let mut scanner = BoxScanner::new();
    let mut events = Vec::new();
    scanner.feed(segment, &mut events).unwrap();
    scanner.finish(&mut events).unwrap();
    let chunks: Vec<_> = events
        .into_iter()
        .filter_map(|e| match e {
            ScanEvent::Chunk(c) => Some(c),
            _ => None,
        })
        .collect();
    let Some(first) = chunks.first() else {
        return Vec::new();
    };
    let first_end = first.decode_time + first.duration;
    let secs = |ticks: u64| ticks as f64 / f64::from(timescale.max(1));
    // styp alone at the segment boundary, as ffmpeg sends it.
    let mut out = vec![(0.0, vec![segment.slice(0..24)])];
    for (i, c) in chunks.iter().enumerate() {
        let start = if i == 0 { 24 } else { c.offset as usize };
        let chunk = segment.slice(start..c.end() as usize);
        let due = secs((c.decode_time + c.duration).saturating_sub(first_end));
        out.push((
            due,
            chunk
                .chunks(HTTP_CHUNK)
                .map(|p| chunk.slice_ref(p))
                .collect(),
        ));
    }
    out
}

/// Opens a GET for `path` and records, for each byte offset milestone, when it arrived.
async fn reader(
    egress: SocketAddr,
    path: String,
    milestones: Arc<Vec<u64>>,
    started: tokio::sync::mpsc::Sender<()>,
) -> Vec<Option<Instant>> {
    let stream = TcpStream::connect(egress).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", egress.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = 0u64;
    let mut arrived = vec![None; milestones.len()];
    let mut next = 0;
    let mut signalled = false;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        got += data.len() as u64;
        let now = Instant::now();
        while next < milestones.len() && got >= milestones[next] {
            arrived[next] = Some(now);
            next += 1;
        }
        if !signalled {
            signalled = true;
            let _ = started.send(()).await;
        }
    }
    arrived
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// A live MPD for the pushed representation (ffmpeg's names), so the archive indexes the
/// segments of `live/bench` (recordings need an archive).
fn live_mpd() -> String {
    let ast = casterpak::archive::format_ms(casterpak::archive::now_ms());
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic" minimumUpdatePeriod="PT500S" availabilityStartTime="{ast}" publishTime="{ast}" timeShiftBufferDepth="PT10.0S" maxSegmentDuration="PT2.0S" minBufferTime="PT1.0S">
  <Period id="0" start="PT0.0S">
    <AdaptationSet id="0" contentType="video" startWithSAP="1" segmentAlignment="true" frameRate="30/1">
      <Representation id="0" mimeType="video/mp4" codecs="avc1.64001e" bandwidth="1500000" width="640" height="360">
        <SegmentTemplate timescale="1000000" duration="2000000" availabilityTimeOffset="1.500" availabilityTimeComplete="false" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1"/>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#
    )
}

/// What the recording workers of one run did.
#[derive(Default)]
struct ApiLoad {
    creates: usize,
    stops: usize,
    /// Answers other than 201 (create) and 200 (stop), and failed requests.
    errors: usize,
    create_ms: Vec<f64>,
    stop_ms: Vec<f64>,
}

/// One recording worker: create (start 10 s ago), 200 ms, stop, 100 ms, until `stop`.
async fn recording_worker(api: SocketAddr, stop: Arc<std::sync::atomic::AtomicBool>) -> ApiLoad {
    let client = reqwest::Client::new();
    let mut out = ApiLoad::default();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let start = casterpak::archive::now_ms() / 1000 - 10;
        let t = Instant::now();
        let resp = client
            .post(format!("http://{api}/api/v1/recordings"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"stream":"live/bench","start":{start}}}"#))
            .send()
            .await;
        let id = match resp {
            Ok(r) if r.status() == 201 => {
                let body = r.bytes().await.unwrap_or_default();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                out.create_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                out.creates += 1;
                v["id"].as_str().map(str::to_owned)
            }
            Ok(r) => {
                out.errors += 1;
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                if out.errors == 1 {
                    eprintln!("create: {status} {text}");
                }
                None
            }
            Err(_) => {
                out.errors += 1;
                None
            }
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(id) = id {
            let t = Instant::now();
            match client
                .post(format!("http://{api}/api/v1/recordings/{id}/stop"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => {
                    let _ = r.bytes().await;
                    out.stop_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    out.stops += 1;
                }
                _ => out.errors += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out
}

struct Measured {
    p50: f64,
    p99: f64,
    max: f64,
    cpu: f64,
    hwm: u64,
    missing: usize,
    api: ApiLoad,
    /// The library's transcode was still running when the measurement ended.
    still_transcoding: bool,
}

/// Uploads `clip` to the origin's library by tus and waits until its transcode runs;
/// returns the asset id.
async fn start_transcode(api: SocketAddr, clip: &std::path::Path) -> String {
    let client = reqwest::Client::new();
    let bytes = std::fs::read(clip).expect("read the transcode clip");
    let r = client
        .post(format!("http://{api}/api/v1/uploads"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", bytes.len().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "tus creation");
    let id = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let r = client
        .patch(format!("http://{api}/api/v1/uploads/{id}"))
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "tus upload");
    for _ in 0..600 {
        if asset_status(api, &id).await == "processing" {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the transcode of {id} never started");
}

async fn asset_status(api: SocketAddr, id: &str) -> String {
    let body = reqwest::get(format!("http://{api}/api/v1/assets/{id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["status"].as_str().unwrap_or("").to_owned()
}

/// One fresh origin: `preroll` unmeasured segments (only with `recordings`: a live MPD is
/// pushed first), then `segments` measured ones with `readers` readers; `recordings`
/// create/stop workers run during the measured segments.
// The modes' settings, passed as they are (an example, not an API).
#[allow(clippy::too_many_arguments)]
async fn run_once(
    server: Server<'_>,
    readers: usize,
    segments: &[Bytes],
    init: &Bytes,
    timescale: u32,
    recordings: Option<usize>,
    preroll: usize,
    transcode: Option<&std::path::Path>,
) -> Measured {
    let origin = Origin::start(server);
    let client = reqwest::Client::new();
    let asset = match transcode {
        Some(clip) => Some(start_transcode(origin.api, clip).await),
        None => None,
    };
    client
        .put(format!(
            "http://{}/live/bench/init-stream0.m4s",
            origin.ingest
        ))
        .body(init.clone())
        .send()
        .await
        .unwrap();
    let preroll = if recordings.is_some() {
        client
            .put(format!("http://{}/live/bench/stream.mpd", origin.ingest))
            .body(live_mpd())
            .send()
            .await
            .unwrap();
        preroll
    } else {
        0
    };
    let mut cpu0 = origin.cpu_and_peak_rss().0;
    let mut delays: Vec<f64> = Vec::new();
    let mut missing = 0usize;
    let stop_api = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    let plan_segments: Vec<&Bytes> = segments
        .iter()
        .cycle()
        .take(preroll + segments.len())
        .collect();
    for (n, segment) in plan_segments.into_iter().enumerate() {
        let measured = n >= preroll;
        if n == preroll {
            cpu0 = origin.cpu_and_peak_rss().0;
            for _ in 0..recordings.unwrap_or(0) {
                workers.push(tokio::spawn(recording_worker(
                    origin.api,
                    Arc::clone(&stop_api),
                )));
            }
        }
        let readers = if measured { readers } else { 0 };
        let path = format!("/live/bench/chunk-stream0-{:05}.m4s", n + 1);
        let plan = bursts(segment, timescale);
        let mut milestones = Vec::new();
        let mut end = 0u64;
        for (_, burst) in &plan {
            for part in burst {
                end += part.len() as u64;
                milestones.push(end);
            }
        }
        let milestones = Arc::new(milestones);
        // Ingest: head + styp now; the readers attach to the in-progress object.
        let mut up = TcpStream::connect(origin.ingest).await.unwrap();
        up.set_nodelay(true).unwrap();
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: Lavf/59.27.100\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        up.write_all(head.as_bytes()).await.unwrap();
        let write_times = Arc::new(Mutex::new(Vec::with_capacity(milestones.len())));
        let mut parts = plan.iter().flat_map(|(_, b)| b);
        let first = parts.next().unwrap();
        up.write_all(format!("{:x}\r\n", first.len()).as_bytes())
            .await
            .unwrap();
        up.write_all(first).await.unwrap();
        up.write_all(b"\r\n").await.unwrap();
        write_times.lock().unwrap().push(Instant::now());
        // Let the origin register the upload before the readers ask for it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (tx, mut rx) = tokio::sync::mpsc::channel(readers.max(1));
        let mut tasks = Vec::with_capacity(readers);
        for _ in 0..readers {
            tasks.push(tokio::spawn(reader(
                origin.egress,
                path.clone(),
                Arc::clone(&milestones),
                tx.clone(),
            )));
        }
        drop(tx);
        for _ in 0..readers {
            rx.recv().await;
        }
        // Real-time pace: each CMAF chunk when its last sample would have been captured.
        let t0 = Instant::now();
        for (at, burst) in plan.iter().skip(1) {
            let due = t0 + Duration::from_secs_f64(*at);
            tokio::time::sleep_until(due.into()).await;
            for part in burst {
                up.write_all(format!("{:x}\r\n", part.len()).as_bytes())
                    .await
                    .unwrap();
                up.write_all(part).await.unwrap();
                up.write_all(b"\r\n").await.unwrap();
                write_times.lock().unwrap().push(Instant::now());
            }
        }
        up.write_all(b"0\r\n\r\n").await.unwrap();
        for t in tasks {
            let arrived = t.await.unwrap();
            let writes = write_times.lock().unwrap();
            // Milestone 0 (styp) was received before pacing began: skip it.
            for (k, a) in arrived.iter().enumerate().skip(1) {
                match a {
                    Some(a) => {
                        delays.push(a.saturating_duration_since(writes[k]).as_secs_f64() * 1000.0)
                    }
                    None => missing += 1,
                }
            }
        }
        if !measured {
            // Unmeasured segment: read the upload's response before the next one.
            let mut buf = [0u8; 512];
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::io::AsyncReadExt::read(&mut up, &mut buf),
            )
            .await;
        }
        drop(up);
    }
    stop_api.store(true, std::sync::atomic::Ordering::Relaxed);
    let (cpu1, hwm) = origin.cpu_and_peak_rss();
    let mut api = ApiLoad::default();
    for w in workers {
        let w = w.await.unwrap();
        api.creates += w.creates;
        api.stops += w.stops;
        api.errors += w.errors;
        api.create_ms.extend(w.create_ms);
        api.stop_ms.extend(w.stop_ms);
    }
    let still_transcoding = match &asset {
        Some(id) => asset_status(origin.api, id).await == "processing",
        None => false,
    };
    delays.sort_by(|a, b| a.total_cmp(b));
    Measured {
        still_transcoding,
        p50: percentile(&delays, 0.5),
        p99: percentile(&delays, 0.99),
        max: delays.last().copied().unwrap_or(f64::NAN),
        cpu: cpu1 - cpu0,
        hwm,
        missing,
        api,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    percentile(&v, 0.5)
}

fn main() {
    let a = args();
    let dir = PathBuf::from("tests/fixtures/cmaf");
    let init = Bytes::from(std::fs::read(dir.join(format!("{}_init.m4s", a.fixture))).unwrap());
    let all: Vec<Bytes> = (2..=4)
        .map(|n| Bytes::from(std::fs::read(dir.join(format!("{}_seg{n}.m4s", a.fixture))).unwrap()))
        .collect();
    let segments: Vec<Bytes> = all.iter().cycle().take(a.segments).cloned().collect();
    let timescale = match casterpak::cmaf::scan_init(&init) {
        Some(Ok(info)) => info.tracks[0].timescale,
        _ => panic!("fixture init segment has no readable moov"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(floor) = &a.floor {
        assert!(
            a.recordings.is_empty(),
            "--floor and --recordings are separate modes"
        );
        println!(
            "| run | readers | server | p50 ms | p99 ms | max ms | server CPU s | server peak RSS MiB | missing |"
        );
        println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
        for run in 1..=a.runs {
            for &n in &a.readers {
                let mut order = [Server::Origin(&a.bin), Server::Floor(floor)];
                if run % 2 == 0 {
                    order.reverse();
                }
                for server in order {
                    let m = rt.block_on(run_once(
                        server, n, &segments, &init, timescale, None, 0, None,
                    ));
                    println!(
                        "| {run} | {n} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
                        server.name(),
                        m.p50,
                        m.p99,
                        m.max,
                        m.cpu,
                        m.hwm as f64 / 1024.0,
                        m.missing
                    );
                }
            }
        }
        return;
    }
    if !a.transcode.is_empty() {
        let clip = a
            .transcode_clip
            .clone()
            .expect("--transcode needs --transcode-clip");
        println!(
            "| run | readers | transcode | p50 ms | p99 ms | max ms | origin CPU s | origin peak RSS MiB | missing | still transcoding at the end |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for run in 1..=a.runs {
            for &n in &a.readers {
                for &t in &a.transcode {
                    let m = rt.block_on(run_once(
                        Server::Origin(&a.bin),
                        n,
                        &segments,
                        &init,
                        timescale,
                        None,
                        0,
                        (t > 0).then_some(clip.as_path()),
                    ));
                    println!(
                        "| {run} | {n} | {t} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} |",
                        m.p50,
                        m.p99,
                        m.max,
                        m.cpu,
                        m.hwm as f64 / 1024.0,
                        m.missing,
                        if t > 0 {
                            if m.still_transcoding {
                                "yes"
                            } else {
                                "no"
                            }
                        } else {
                            "-"
                        }
                    );
                }
            }
        }
        return;
    }
    if a.recordings.is_empty() {
        println!(
            "| readers | p50 ms | p99 ms | max ms | origin CPU s | origin peak RSS MiB | missing |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        for &n in &a.readers {
            let m = rt.block_on(run_once(
                Server::Origin(&a.bin),
                n,
                &segments,
                &init,
                timescale,
                None,
                0,
                None,
            ));
            println!(
                "| {n} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
                m.p50,
                m.p99,
                m.max,
                m.cpu,
                m.hwm as f64 / 1024.0,
                m.missing
            );
        }
        return;
    }
    println!(
        "| run | readers | recordings | p50 ms | p99 ms | max ms | origin CPU s | origin peak RSS MiB | missing | creates | stops | API errors | create p50 ms | stop p50 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in 1..=a.runs {
        for &n in &a.readers {
            for &recs in &a.recordings {
                let m = rt.block_on(run_once(
                    Server::Origin(&a.bin),
                    n,
                    &segments,
                    &init,
                    timescale,
                    Some(recs),
                    a.preroll,
                    None,
                ));
                println!(
                    "| {run} | {n} | {recs} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} | {:.2} | {:.2} |",
                    m.p50,
                    m.p99,
                    m.max,
                    m.cpu,
                    m.hwm as f64 / 1024.0,
                    m.missing,
                    m.api.creates,
                    m.api.stops,
                    m.api.errors,
                    median(m.api.create_ms.clone()),
                    median(m.api.stop_ms.clone()),
                );
            }
        }
    }
}
