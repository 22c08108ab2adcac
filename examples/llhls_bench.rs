//! LL-HLS blocking-reload benchmark: N clients blocked on `_HLS_msn/_HLS_part` of the next
//! part of one stream; time from the chunk's last byte written to the ingest socket to the
//! last of the N playlist responses received, origin CPU per release, origin peak RSS.
//!
//! ```text
//! cargo build --release && cargo run --release --example llhls_bench -- \
//!     [--clients 1000] [--releases 40] [--runs 3] [--park-ms 300] [--gzip] \
//!     [--bin $CARGO_TARGET_DIR/release/casterpak]
//! ```
//!
//! The bench is the encoder: it makes a CMAF stream once with ffmpeg (one 640x360 H.264
//! rendition, 2 s segments of 0.5 s chunks, like the reference LL-DASH push), starts the
//! origin binary on free loopback ports, uploads the init segment, a live MPD and segment
//! 1, then uploads each next segment as one chunked PUT, writing one CMAF chunk per
//! release. Before each release every client has sent its blocking request for exactly
//! that part and the bench waited `--park-ms` for them to be parked. Clients and origin
//! share the machine; the clients run on one tokio thread.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use casterpak::cmaf::{BoxScanner, ScanEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

struct Args {
    clients: usize,
    releases: usize,
    runs: usize,
    park_ms: u64,
    bin: PathBuf,
    /// Send `Accept-Encoding: gzip` (the origin answers its gzip rendering).
    gzip: bool,
}

fn args() -> Args {
    let mut a = Args {
        clients: 1000,
        releases: 40,
        runs: 3,
        park_ms: 300,
        gzip: false,
        bin: PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
            .join("release/casterpak"),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        if v[i] == "--gzip" {
            a.gzip = true;
            i += 1;
            continue;
        }
        assert!(i + 1 < v.len(), "{} needs a value", v[i]);
        let val = &v[i + 1];
        match v[i].as_str() {
            "--clients" => a.clients = val.parse().expect("--clients N"),
            "--releases" => a.releases = val.parse().expect("--releases N"),
            "--runs" => a.runs = val.parse().expect("--runs N"),
            "--park-ms" => a.park_ms = val.parse().expect("--park-ms N"),
            "--bin" => a.bin = PathBuf::from(val),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// A segment file split into its CMAF chunks (the first includes `styp`).
struct Segment {
    chunks: Vec<Vec<u8>>,
}

struct Fixture {
    init: Vec<u8>,
    mpd: String,
    segments: Vec<Segment>,
}

fn make_fixture(dir: &Path, seconds: u32) -> Fixture {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=640x360:rate=30:duration={seconds}"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-g",
            "30",
            "-keyint_min",
            "30",
            "-sc_threshold",
            "0",
        ])
        .args([
            "-b:v",
            "1500k",
            "-f",
            "dash",
            "-ldash",
            "1",
            "-streaming",
            "1",
        ])
        .args([
            "-seg_duration",
            "2",
            "-frag_type",
            "duration",
            "-frag_duration",
            "0.5",
        ])
        .args([
            "-use_timeline",
            "0",
            "-use_template",
            "1",
            "-window_size",
            "0",
        ])
        .args(["-format_options", "movflags=cmaf"])
        .arg(dir.join("stream.mpd"))
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg must be installed");
    assert!(status.success(), "ffmpeg failed");
    let init = std::fs::read(dir.join("init-stream0.m4s")).expect("init segment");
    let mpd = std::fs::read_to_string(dir.join("stream.mpd"))
        .expect("mpd")
        .replace("type=\"static\"", "type=\"dynamic\"");
    let mut segments = Vec::new();
    for n in 1.. {
        let Ok(bytes) = std::fs::read(dir.join(format!("chunk-stream0-{n:05}.m4s"))) else {
            break;
        };
        let mut scanner = BoxScanner::new();
        let mut events = Vec::new();
        scanner.feed(&bytes, &mut events).expect("valid CMAF");
        let chunks: Vec<Vec<u8>> = events
            .iter()
            .filter_map(|e| match e {
                ScanEvent::Chunk(c) => Some(bytes[c.offset as usize..c.end() as usize].to_vec()),
                ScanEvent::Moov(_) => None,
            })
            .collect();
        segments.push(Segment { chunks });
    }
    Fixture {
        init,
        mpd,
        segments,
    }
}

struct Origin {
    child: Child,
    ingest: SocketAddr,
    egress: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

fn start_origin(bin: &Path) -> Origin {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ingest, egress) = (free_addr(), free_addr());
    let child = Command::new(bin)
        .arg("serve")
        .args(["--ingest-addr", &ingest.to_string()])
        .args(["--egress-addr", &egress.to_string()])
        .args(["--api-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--stream-idle-secs", "600"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e} (cargo build --release first)", bin.display()));
    for _ in 0..500 {
        if std::net::TcpStream::connect(egress).is_ok()
            && std::net::TcpStream::connect(ingest).is_ok()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Origin {
        child,
        ingest,
        egress,
        _dir: dir,
    }
}

/// CPU time of every thread of `pid`, from /proc/<pid>/task/*/schedstat (nanoseconds).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Peak resident set (VmHWM) of `pid` in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn put_whole(addr: SocketAddr, path: &str, body: &[u8]) {
    let mut s = TcpStream::connect(addr).await.expect("ingest");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink).await;
}

/// Reads one HTTP/1.1 response with Content-Length; returns the status.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<u16> {
    buf.clear();
    let mut tmp = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).ok()?;
            let status = head.get(9..12)?.parse().ok()?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return Some(status);
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

struct Release {
    msn: u64,
    part: u64,
    last_ms: f64,
    median_ms: f64,
    cpu_ms: f64,
}

async fn run_once(a: &Args, fx: &Fixture) -> (Vec<Release>, u64) {
    let origin = start_origin(&a.bin);
    let pid = origin.child.id();
    let ing = origin.ingest;
    put_whole(ing, "/live/b/init-stream0.m4s", &fx.init).await;
    put_whole(ing, "/live/b/stream.mpd", fx.mpd.as_bytes()).await;
    let first: Vec<u8> = fx.segments[0].chunks.concat();
    put_whole(ing, "/live/b/chunk-stream0-00001.m4s", &first).await;

    // Clients: each loops { wait for its go, send the blocking request, read the answer }.
    // `go` carries the (msn, part) to ask for; answers report the receive instant.
    let (go_tx, go_rx) = watch::channel::<Option<(u64, u64)>>(None);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Instant, u16)>();
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<()>();
    let egress = origin.egress;
    let accept = if a.gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    for _ in 0..a.clients {
        let mut go = go_rx.clone();
        let done = done_tx.clone();
        let sent = sent_tx.clone();
        tokio::spawn(async move {
            let mut s = TcpStream::connect(egress).await.expect("egress");
            let _ = s.set_nodelay(true);
            let mut buf = Vec::with_capacity(8192);
            while go.changed().await.is_ok() {
                let Some((msn, part)) = *go.borrow_and_update() else {
                    continue;
                };
                let req = format!(
                    "GET /live/b/llhls_0.m3u8?_HLS_msn={msn}&_HLS_part={part} HTTP/1.1\r\nHost: bench\r\n{accept}\r\n"
                );
                if s.write_all(req.as_bytes()).await.is_err() {
                    return;
                }
                let _ = sent.send(());
                let status = read_response(&mut s, &mut buf).await.unwrap_or(0);
                let _ = done.send((Instant::now(), status));
            }
        });
    }
    drop(done_tx);

    let mut results = Vec::new();
    let mut releases = 0;
    'outer: for (si, seg) in fx.segments.iter().enumerate().skip(1) {
        let msn = si as u64 + 1;
        let mut ingest = TcpStream::connect(ing).await.expect("ingest");
        let _ = ingest.set_nodelay(true);
        ingest
            .write_all(
                format!(
                    "PUT /live/b/chunk-stream0-{msn:05}.m4s HTTP/1.1\r\nHost: bench\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .expect("ingest head");
        for (ci, chunk) in seg.chunks.iter().enumerate() {
            if releases == a.releases {
                break 'outer;
            }
            // Every client asks for this part and is parked.
            go_tx.send_replace(Some((msn, ci as u64)));
            for _ in 0..a.clients {
                sent_rx.recv().await.expect("client alive");
            }
            tokio::time::sleep(Duration::from_millis(a.park_ms)).await;
            let cpu0 = cpu_ns(pid);
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(chunk);
            frame.extend_from_slice(b"\r\n");
            ingest.write_all(&frame).await.expect("ingest chunk");
            let t0 = Instant::now();
            let mut lat = Vec::with_capacity(a.clients);
            for _ in 0..a.clients {
                let (t, status) = done_rx.recv().await.expect("answer");
                assert_eq!(status, 200, "blocking reload answered {status}");
                lat.push(t.saturating_duration_since(t0).as_secs_f64() * 1000.0);
            }
            let cpu1 = cpu_ns(pid);
            lat.sort_by(f64::total_cmp);
            results.push(Release {
                msn,
                part: ci as u64,
                last_ms: lat[lat.len() - 1],
                median_ms: lat[lat.len() / 2],
                cpu_ms: (cpu1 - cpu0) as f64 / 1e6,
            });
            releases += 1;
        }
        let _ = ingest.write_all(b"0\r\n\r\n").await;
    }
    let rss = peak_rss_kib(pid);
    drop(go_tx);
    (results, rss)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let segments_needed = a.releases / 4 + 3;
    let fx = make_fixture(dir.path(), (segments_needed * 2) as u32);
    assert!(fx.segments.len() > a.releases / 4 + 1, "fixture too short");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "clients={} releases/run={} runs={} park={} ms gzip={} origin={}",
        a.clients,
        a.releases,
        a.runs,
        a.park_ms,
        a.gzip,
        a.bin.display()
    );
    println!("run  last_p50_ms  last_p99_ms  last_max_ms  client_p50_ms  cpu_ms/release(p50)  peak_rss_MiB");
    let mut all_last = Vec::new();
    for run in 1..=a.runs {
        let (rel, rss) = rt.block_on(run_once(&a, &fx));
        let mut last: Vec<f64> = rel.iter().map(|r| r.last_ms).collect();
        let mut med: Vec<f64> = rel.iter().map(|r| r.median_ms).collect();
        let mut cpu: Vec<f64> = rel.iter().map(|r| r.cpu_ms).collect();
        for v in [&mut last, &mut med, &mut cpu] {
            v.sort_by(f64::total_cmp);
        }
        println!(
            "{run:>3}  {:>11.2}  {:>11.2}  {:>11.2}  {:>13.2}  {:>19.2}  {:>12.1}",
            pct(&last, 0.5),
            pct(&last, 0.99),
            last[last.len() - 1],
            pct(&med, 0.5),
            pct(&cpu, 0.5),
            rss as f64 / 1024.0
        );
        let slow: Vec<String> = rel
            .iter()
            .filter(|r| r.last_ms > 2.0 * pct(&last, 0.5).max(10.0))
            .map(|r| format!("{}.{}: {:.1} ms", r.msn, r.part, r.last_ms))
            .collect();
        if !slow.is_empty() {
            println!("     slow releases (MSN.part): {}", slow.join(", "));
        }
        all_last.extend(last);
    }
    all_last.sort_by(f64::total_cmp);
    println!(
        "all runs: last-response p50 {:.2} ms, p99 {:.2} ms over {} releases",
        pct(&all_last, 0.5),
        pct(&all_last, 0.99),
        all_last.len()
    );
}
