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
}

fn args() -> Args {
    let mut a = Args {
        readers: vec![1, 100, 1000],
        segments: 3,
        bin: PathBuf::from("target/release/casterpak"),
        fixture: "ffmpeg_ldash_640x360".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--readers" => a.readers = v.split(',').filter_map(|s| s.parse().ok()).collect(),
            "--segments" => a.segments = v.parse().unwrap_or(3),
            "--bin" => a.bin = PathBuf::from(v),
            "--fixture" => a.fixture = v,
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

impl Origin {
    fn start(bin: &PathBuf) -> Origin {
        let dir = std::env::temp_dir().join(format!("casterpak-bench-{}", std::process::id()));
        let ingest = free_addr();
        let egress = free_addr();
        let child = Command::new(bin)
            .args(["serve", "--ingest-addr", &ingest.to_string()])
            .args(["--egress-addr", &egress.to_string()])
            .args(["--api-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start casterpak (build it with cargo build --release)");
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

async fn run_once(
    bin: &PathBuf,
    readers: usize,
    segments: &[Bytes],
    init: &Bytes,
    timescale: u32,
) -> (f64, f64, f64, f64, u64, usize) {
    let origin = Origin::start(bin);
    let client = reqwest::Client::new();
    client
        .put(format!(
            "http://{}/live/bench/init-stream0.m4s",
            origin.ingest
        ))
        .body(init.clone())
        .send()
        .await
        .unwrap();
    let (cpu0, _) = origin.cpu_and_peak_rss();
    let mut delays: Vec<f64> = Vec::new();
    let mut missing = 0usize;
    for (n, segment) in segments.iter().enumerate() {
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
        let (tx, mut rx) = tokio::sync::mpsc::channel(readers);
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
        drop(up);
    }
    let (cpu1, hwm) = origin.cpu_and_peak_rss();
    delays.sort_by(|a, b| a.total_cmp(b));
    (
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(f64::NAN),
        cpu1 - cpu0,
        hwm,
        missing,
    )
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
    println!(
        "| readers | p50 ms | p99 ms | max ms | origin CPU s | origin peak RSS MiB | missing |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &a.readers {
        let (p50, p99, max, cpu, hwm, missing) =
            rt.block_on(run_once(&a.bin, n, &segments, &init, timescale));
        println!(
            "| {n} | {p50:.2} | {p99:.2} | {max:.2} | {cpu:.2} | {:.1} | {missing} |",
            hwm as f64 / 1024.0
        );
    }
}
