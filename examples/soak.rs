//! Soak test (issue 9): one long live push with readers, LL-HLS clients and a recording,
//! the origin's memory, open files and CPU sampled all along.
//!
//! ```text
//! soak --bin target/release/casterpak --secs 3600 [--readers 200] [--llhls 50]
//!      [--interval 10] [--mark-secs 600] [--out /tmp/casterpak-soak]
//!      [--origin-args "--delete-retention-secs 0 ..."] [--origin-wrap "heaptrack -o FILE"]
//! ```
//! With `--origin-wrap` the origin runs under that command (a heap profiler); the casterpak
//! process below it is the one sampled, and at the end it is killed with SIGKILL (its heap as
//! it was then) and the wrapper is given up to 5 minutes to write its output.
//! (`bench/soak.sh` builds and runs it.)
//!
//! - The origin: the release binary on free loopback ports, default settings, a fresh data dir
//!   under `--out`, `RUST_LOG=warn`, its log in `--out/origin.log`.
//! - The push: real ffmpeg with the README's LL-DASH command (libx264 veryfast zerolatency,
//!   2 s segments of 0.5 s CMAF chunks, AAC, `-method PUT -http_persistent 1`) from a synthetic
//!   `lavfi` source at real-time pace (`-re`): `testsrc2` 640x360 at 30 fps, 1.5 Mb/s, and a
//!   `sine` at 48 kHz. Stream `live/soak`; its log in `--out/ffmpeg.log`.
//! - `--readers` chunked readers of the in-progress segments of the video representation, like
//!   LL-DASH players: each starts at the segment after the newest complete one and then asks
//!   for segment n+1 as soon as n has ended (the origin holds the request until its upload
//!   starts, then streams it chunk by chunk). One keep-alive connection each. A 404 or an error
//!   resynchronises from the playlist.
//! - `--llhls` LL-HLS clients, like hls.js in low-latency mode: the multivariant playlist,
//!   then for the video and the audio media playlist each: the init section, then blocking
//!   reloads `_HLS_msn=M&_HLS_part=P` of the part named by the last `PRELOAD-HINT`, with
//!   `_HLS_skip=YES` after the first load, and a GET of every part newer than the last one
//!   fetched (at start, the last three). A 503 or an error starts over without blocking.
//! - One recording, created through the API (`POST /api/v1/recordings`, start = now, no end)
//!   once the stream is up, its state read every minute, stopped at the end; then its HLS media
//!   playlist is fetched and its duration printed.
//! - Every `--interval` seconds from the start of the clients: the origin's VmRSS (and RssAnon,
//!   RssFile, VmHWM), the number of entries of `/proc/<pid>/fd`, threads, utime + stime, and the
//!   clients' counters, one CSV row each (`--out/soak.csv`).
//! - At the end: RSS at the mark (`--mark-secs`, default the 10-minute mark, or 1/6 of the
//!   run when it is shorter than an hour) against the last sample (pass when the end is within
//!   10 % of the mark), open files and CPU, the clients' totals.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STREAM: &str = "live/soak";

struct Args {
    bin: PathBuf,
    ffmpeg: String,
    secs: u64,
    readers: usize,
    llhls: usize,
    interval: u64,
    mark: Option<u64>,
    out: PathBuf,
    /// Extra `casterpak serve` flags (whitespace-separated), e.g. to try other settings.
    origin_args: Vec<String>,
    /// A command the origin is started under (whitespace-separated), e.g. `heaptrack -o F`.
    wrap: Vec<String>,
}

fn args() -> Args {
    let mut a = Args {
        bin: PathBuf::from("target/release/casterpak"),
        ffmpeg: "ffmpeg".into(),
        secs: 3600,
        readers: 200,
        llhls: 50,
        interval: 10,
        mark: None,
        out: std::env::temp_dir().join("casterpak-soak"),
        origin_args: Vec::new(),
        wrap: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--bin" => a.bin = PathBuf::from(v),
            "--ffmpeg" => a.ffmpeg = v,
            "--secs" => a.secs = v.parse().expect("--secs"),
            "--readers" => a.readers = v.parse().expect("--readers"),
            "--llhls" => a.llhls = v.parse().expect("--llhls"),
            "--interval" => a.interval = v.parse().expect("--interval"),
            "--mark-secs" => a.mark = Some(v.parse().expect("--mark-secs")),
            "--out" => a.out = PathBuf::from(v),
            "--origin-args" => a.origin_args = v.split_whitespace().map(str::to_owned).collect(),
            "--origin-wrap" => a.wrap = v.split_whitespace().map(str::to_owned).collect(),
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

/// Children killed when dropped (the origin and ffmpeg).
struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The clients' counters, read by the sampler.
#[derive(Default)]
struct Stats {
    reader_segments: AtomicU64,
    reader_bytes: AtomicU64,
    reader_errors: AtomicU64,
    reader_resyncs: AtomicU64,
    hls_reloads: AtomicU64,
    hls_parts: AtomicU64,
    hls_bytes: AtomicU64,
    hls_errors: AtomicU64,
    /// From a playlist response to the end of the part it announced (ms), every part.
    part_ms: Mutex<Vec<f32>>,
    /// Segments each reader completed.
    per_reader: Mutex<Vec<u64>>,
}

/// One /proc sample of a process.
#[derive(Default, Clone)]
struct Proc {
    rss: u64,
    rss_anon: u64,
    rss_file: u64,
    hwm: u64,
    threads: u64,
    fds: u64,
    cpu_s: f64,
}

fn sample(pid: u32) -> Proc {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
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
    // After the command: state is index 0, utime 11, stime 12 (clock ticks of 10 ms).
    let cpu_s = (ticks(11) + ticks(12)) as f64 / 100.0;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Proc {
        rss: field("VmRSS:"),
        rss_anon: field("RssAnon:"),
        rss_file: field("RssFile:"),
        hwm: field("VmHWM:"),
        threads: field("Threads:"),
        fds,
        cpu_s,
    }
}

fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `(msn, part index)` of an `llhls-part_<rep>_<msn>_<i>.m4s` URI.
fn part_pos(uri: &str) -> Option<(u64, u64)> {
    let name = uri.rsplit('/').next()?.split('?').next()?;
    let stem = name.strip_prefix("llhls-part_")?.strip_suffix(".m4s")?;
    let mut it = stem.rsplitn(3, '_');
    let idx = it.next()?.parse().ok()?;
    let msn = it.next()?.parse().ok()?;
    Some((msn, idx))
}

/// The value of `URI="..."` in a tag line.
fn uri_attr(line: &str) -> Option<&str> {
    let rest = line.split_once("URI=\"")?.1;
    rest.split_once('"').map(|(u, _)| u)
}

/// The number of the newest complete segment of `rep` listed in its LL-HLS media playlist
/// (ffmpeg's `chunk-stream<rep>-<n>.m4s` names).
async fn newest_segment(client: &reqwest::Client, egress: SocketAddr, rep: &str) -> Option<u64> {
    let text = client
        .get(format!("http://{egress}/{STREAM}/llhls_{rep}.m3u8"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let prefix = format!("chunk-stream{rep}-");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(&prefix)?.strip_suffix(".m4s")?.parse().ok())
        .next_back()
}

/// A chunked reader of the in-progress segments of `rep`, like an LL-DASH player.
async fn reader(i: usize, egress: SocketAddr, rep: &str, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut next: Option<u64> = None;
    while !stop.load(Ordering::Relaxed) {
        let n = match next {
            Some(n) => n,
            None => match newest_segment(&client, egress, rep).await {
                Some(n) => n + 1,
                None => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let url = format!("http://{egress}/{STREAM}/chunk-stream{rep}-{n:05}.m4s");
        let ok = match client.get(&url).send().await {
            Ok(mut resp) if resp.status() == 200 => {
                let mut clean = true;
                loop {
                    match resp.chunk().await {
                        Ok(Some(c)) => {
                            stats
                                .reader_bytes
                                .fetch_add(c.len() as u64, Ordering::Relaxed);
                        }
                        Ok(None) => break,
                        Err(_) => {
                            clean = false;
                            break;
                        }
                    }
                }
                clean
            }
            Ok(resp) if resp.status() == 404 => {
                // Not the next segment (yet): find the live edge again.
                stats.reader_resyncs.fetch_add(1, Ordering::Relaxed);
                next = None;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            _ => false,
        };
        if ok {
            stats.reader_segments.fetch_add(1, Ordering::Relaxed);
            stats.per_reader.lock().unwrap()[i] += 1;
            next = Some(n + 1);
        } else {
            stats.reader_errors.fetch_add(1, Ordering::Relaxed);
            next = None;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// One media playlist of an LL-HLS client: blocking reloads and parts.
async fn llhls_media(
    client: reqwest::Client,
    egress: SocketAddr,
    media: String,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let base = format!("http://{egress}/{STREAM}/");
    let mut init_done = false;
    let mut next: Option<(u64, u64)> = None;
    let mut last: Option<(u64, u64)> = None;
    let mut recent: VecDeque<f32> = VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        let url = match next {
            Some((m, p)) => format!("{base}{media}?_HLS_msn={m}&_HLS_part={p}&_HLS_skip=YES"),
            None => format!("{base}{media}"),
        };
        let text = match client.get(&url).send().await {
            Ok(r) if r.status() == 200 => r.text().await.unwrap_or_default(),
            _ => String::new(),
        };
        if text.is_empty() {
            stats.hls_errors.fetch_add(1, Ordering::Relaxed);
            next = None;
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        stats.hls_reloads.fetch_add(1, Ordering::Relaxed);
        let got = Instant::now();
        if !init_done {
            if let Some(init) = text
                .lines()
                .find(|l| l.starts_with("#EXT-X-MAP:"))
                .and_then(uri_attr)
            {
                let ok = match client.get(format!("{base}{init}")).send().await {
                    Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                    _ => false,
                };
                if ok {
                    init_done = true;
                } else {
                    stats.hls_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let parts: Vec<(u64, u64, &str)> = text
            .lines()
            .filter(|l| l.starts_with("#EXT-X-PART:"))
            .filter_map(|l| {
                let uri = uri_attr(l)?;
                let (m, p) = part_pos(uri)?;
                Some((m, p, uri))
            })
            .collect();
        let new: Vec<&(u64, u64, &str)> = match last {
            Some(l) => parts.iter().filter(|p| (p.0, p.1) > l).collect(),
            None => parts.iter().rev().take(3).rev().collect(),
        };
        for (m, p, uri) in new {
            match client.get(format!("{base}{uri}")).send().await {
                Ok(r) if r.status() == 200 => match r.bytes().await {
                    Ok(b) => {
                        stats.hls_parts.fetch_add(1, Ordering::Relaxed);
                        stats.hls_bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                        recent.push_back(got.elapsed().as_secs_f32() * 1000.0);
                    }
                    Err(_) => {
                        stats.hls_errors.fetch_add(1, Ordering::Relaxed);
                    }
                },
                _ => {
                    stats.hls_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            last = Some((*m, *p));
        }
        if recent.len() >= 64 {
            stats.part_ms.lock().unwrap().extend(recent.drain(..));
        }
        next = text
            .lines()
            .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
            .and_then(uri_attr)
            .and_then(part_pos);
        if next.is_none() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    stats.part_ms.lock().unwrap().extend(recent.drain(..));
}

/// An LL-HLS client: the multivariant playlist, then every media playlist it names (the
/// video variant and the audio rendition) as [`llhls_media`].
async fn llhls_client(egress: SocketAddr, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let medias: Vec<String> = loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let text = match client
            .get(format!("http://{egress}/{STREAM}/llhls.m3u8"))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => r.text().await.unwrap_or_default(),
            _ => String::new(),
        };
        let mut medias: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("#EXT-X-MEDIA:"))
            .filter_map(uri_attr)
            .chain(
                text.lines()
                    .filter(|l| !l.is_empty() && !l.starts_with('#')),
            )
            .map(|u| u.split('?').next().unwrap_or(u).to_owned())
            .collect();
        medias.dedup();
        if !medias.is_empty() {
            break medias;
        }
        stats.hls_errors.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let tasks: Vec<_> = medias
        .into_iter()
        .map(|m| {
            tokio::spawn(llhls_media(
                client.clone(),
                egress,
                m,
                Arc::clone(&stats),
                Arc::clone(&stop),
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// The first process named `name` below `root` (itself included), from /proc.
fn descendant_named(root: u32, name: &str) -> Option<u32> {
    let mut parent = std::collections::HashMap::new();
    let mut named = Vec::new();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let ppid: u32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        parent.insert(pid, ppid);
        if comm == name {
            named.push(pid);
        }
    }
    named.into_iter().find(|&pid| {
        let mut p = pid;
        for _ in 0..64 {
            if p == root {
                return true;
            }
            match parent.get(&p) {
                Some(&pp) if pp != 0 => p = pp,
                _ => return false,
            }
        }
        false
    })
}

/// Starts the origin (under `--origin-wrap` if given); returns it, the casterpak pid and its
/// ingest, egress and API addresses.
fn start_origin(a: &Args, data: &Path) -> (Kill, u32, SocketAddr, SocketAddr, SocketAddr) {
    let ingest = free_addr();
    let egress = free_addr();
    let api = free_addr();
    let log = std::fs::File::create(a.out.join("origin.log")).unwrap();
    let mut cmd = match a.wrap.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg(&a.bin);
            c
        }
        None => Command::new(&a.bin),
    };
    let child = cmd
        .args(["serve", "--ingest-addr", &ingest.to_string()])
        .args(["--egress-addr", &egress.to_string()])
        .args(["--api-addr", &api.to_string()])
        .arg("--data-dir")
        .arg(data)
        .args(&a.origin_args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start casterpak (build it with cargo build --release)");
    for _ in 0..1500 {
        if std::net::TcpStream::connect(egress).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = if a.wrap.is_empty() {
        child.id()
    } else {
        descendant_named(child.id(), "casterpak").expect("no casterpak process under the wrapper")
    };
    (Kill(child), pid, ingest, egress, api)
}

/// The README's LL-DASH push, from a synthetic source at real-time pace.
fn start_ffmpeg(a: &Args, ingest: SocketAddr, egress: SocketAddr) -> Kill {
    let log = std::fs::File::create(a.out.join("ffmpeg.log")).unwrap();
    let child = Command::new(&a.ffmpeg)
        .args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"])
        .args(["-map", "0:v", "-map", "1:a"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
        ])
        .args(["-pix_fmt", "yuv420p", "-b:v", "1500k", "-maxrate", "1500k"])
        .args(["-bufsize", "3000k", "-g", "30", "-keyint_min", "30"])
        .args([
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ar",
            "48000",
        ])
        .args([
            "-f",
            "dash",
            "-ldash",
            "1",
            "-streaming",
            "1",
            "-seg_duration",
            "2",
        ])
        .args(["-frag_type", "duration", "-frag_duration", "0.5"])
        .args(["-use_timeline", "0", "-use_template", "1"])
        .args(["-window_size", "5", "-extra_window_size", "5"])
        .args([
            "-method",
            "PUT",
            "-http_persistent",
            "1",
            "-ignore_io_errors",
            "1",
        ])
        .args(["-utc_timing_url", &format!("http://{egress}/time")])
        .args(["-target_latency", "1.5", "-format_options", "movflags=cmaf"])
        .args(["-adaptation_sets", "id=0,streams=v id=1,streams=a"])
        .arg(format!("http://{ingest}/{STREAM}/stream.mpd"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start ffmpeg");
    Kill(child)
}

async fn create_recording(api: SocketAddr) -> Option<String> {
    let client = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let resp = client
        .post(format!("http://{api}/api/v1/recordings"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"stream":"{STREAM}","start":{now},"title":"soak"}}"#
        ))
        .send()
        .await
        .ok()?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if status != 201 {
        eprintln!("recording create: {status} {body}");
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["id"].as_str().map(str::to_owned)
}

/// (state, duration_secs) of a recording.
async fn recording_state(api: SocketAddr, id: &str) -> Option<(String, f64)> {
    let body = reqwest::get(format!("http://{api}/api/v1/recordings/{id}"))
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    Some((
        v["state"].as_str().unwrap_or("?").to_owned(),
        v["duration_secs"].as_f64().unwrap_or(f64::NAN),
    ))
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.out).unwrap();
    let data = a.out.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let mark = a
        .mark
        .unwrap_or(if a.secs >= 3600 { 600 } else { a.secs / 6 });
    let mark = mark / a.interval * a.interval;
    let (mut origin, pid, ingest, egress, api) = start_origin(&a, &data);
    let mut ffmpeg = start_ffmpeg(&a, ingest, egress);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Wait for the stream: a media playlist with two complete segments.
        let client = reqwest::Client::new();
        let up = Instant::now();
        loop {
            if newest_segment(&client, egress, "0").await.unwrap_or(0) >= 2 {
                break;
            }
            assert!(
                up.elapsed() < Duration::from_secs(60),
                "the push did not start: see {}",
                a.out.join("ffmpeg.log").display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "stream up after {:.1} s; origin pid {pid}; {} readers, {} LL-HLS clients, {} s, mark at {} s",
            up.elapsed().as_secs_f64(),
            a.readers,
            a.llhls,
            a.secs,
            mark
        );
        let recording = create_recording(api).await;
        let stats = Arc::new(Stats::default());
        *stats.per_reader.lock().unwrap() = vec![0; a.readers];
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for i in 0..a.readers {
            tasks.push(tokio::spawn(reader(
                i,
                egress,
                "0",
                Arc::clone(&stats),
                Arc::clone(&stop),
            )));
        }
        for _ in 0..a.llhls {
            tasks.push(tokio::spawn(llhls_client(
                egress,
                Arc::clone(&stats),
                Arc::clone(&stop),
            )));
        }
        let csv_path = a.out.join("soak.csv");
        let mut csv = std::fs::File::create(&csv_path).unwrap();
        use std::io::Write;
        writeln!(
            csv,
            "t_s,rss_kib,rss_anon_kib,rss_file_kib,hwm_kib,fds,threads,cpu_s,cpu_pct,\
             reader_segments,reader_mib,reader_errors,reader_resyncs,hls_reloads,hls_parts,\
             hls_mib,hls_errors,recording_state,recording_secs,ffmpeg_running,load1"
        )
        .unwrap();
        let t0 = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(a.interval));
        let mut samples: Vec<(u64, Proc)> = Vec::new();
        let mut prev_cpu = (0.0f64, t0);
        let mut rec = ("-".to_owned(), f64::NAN);
        let mut interrupted = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = tokio::signal::ctrl_c() => { interrupted = true; }
            }
            let t = (t0.elapsed().as_secs_f64() / a.interval as f64).round() as u64 * a.interval;
            let p = sample(pid);
            let now = Instant::now();
            let cpu_pct = if samples.is_empty() {
                0.0
            } else {
                (p.cpu_s - prev_cpu.0) / now.duration_since(prev_cpu.1).as_secs_f64() * 100.0
            };
            prev_cpu = (p.cpu_s, now);
            if let Some(id) = &recording {
                if t % 60 == 0 || t >= a.secs || interrupted {
                    if let Some(s) = recording_state(api, id).await {
                        rec = s;
                    }
                }
            }
            let ff = ffmpeg.0.try_wait().ok().flatten().is_none();
            let s = &stats;
            writeln!(
                csv,
                "{t},{},{},{},{},{},{},{:.2},{:.1},{},{:.1},{},{},{},{},{:.1},{},{},{:.1},{},{}",
                p.rss,
                p.rss_anon,
                p.rss_file,
                p.hwm,
                p.fds,
                p.threads,
                p.cpu_s,
                cpu_pct,
                s.reader_segments.load(Ordering::Relaxed),
                s.reader_bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
                s.reader_errors.load(Ordering::Relaxed),
                s.reader_resyncs.load(Ordering::Relaxed),
                s.hls_reloads.load(Ordering::Relaxed),
                s.hls_parts.load(Ordering::Relaxed),
                s.hls_bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
                s.hls_errors.load(Ordering::Relaxed),
                rec.0,
                rec.1,
                u8::from(ff),
                load1(),
            )
            .unwrap();
            csv.flush().unwrap();
            if t % 60 == 0 {
                eprintln!(
                    "t={t:>5}s rss {:.1} MiB fds {} cpu {:.1}% segments {} parts {} errors {}/{} recording {} {:.0}s ffmpeg {}",
                    p.rss as f64 / 1024.0,
                    p.fds,
                    cpu_pct,
                    s.reader_segments.load(Ordering::Relaxed),
                    s.hls_parts.load(Ordering::Relaxed),
                    s.reader_errors.load(Ordering::Relaxed),
                    s.hls_errors.load(Ordering::Relaxed),
                    rec.0,
                    rec.1,
                    if ff { "running" } else { "EXITED" }
                );
            }
            samples.push((t, p));
            if t >= a.secs || interrupted || !ff {
                break;
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        // Stop the recording and read back what it holds.
        let mut rec_report = String::from("no recording (create failed)");
        if let Some(id) = &recording {
            let stopped = reqwest::Client::new()
                .post(format!("http://{api}/api/v1/recordings/{id}/stop"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_secs(3)).await;
            let (state, dur) = recording_state(api, id).await.unwrap_or(("?".into(), f64::NAN));
            let playlist = reqwest::get(format!("http://{egress}/recordings/{id}/media_0.m3u8"))
                .await
                .ok();
            let (status, segs) = match playlist {
                Some(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    (status, text.lines().filter(|l| l.starts_with("#EXTINF")).count())
                }
                None => (0, 0),
            };
            rec_report = format!(
                "{id}: stop -> {stopped}, then state {state}, duration_secs {dur:.1}; \
                 /recordings/{id}/media_0.m3u8 -> {status}, {segs} segments"
            );
        }
        for t in tasks {
            t.abort();
        }
        report(&a, &samples, mark, wall, &stats, &rec_report, interrupted);
        eprintln!("CSV: {}", csv_path.display());
    });
    drop(ffmpeg);
    if !a.wrap.is_empty() {
        // The profiler keeps what the heap held at the kill; let it write its output.
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        for _ in 0..300 {
            if origin.0.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    drop(origin);
    let _ = std::fs::remove_dir_all(&data);
}

fn report(
    a: &Args,
    samples: &[(u64, Proc)],
    mark: u64,
    wall: f64,
    stats: &Stats,
    rec: &str,
    interrupted: bool,
) {
    let Some((t_end, end)) = samples.last().cloned() else {
        return;
    };
    let at_mark = samples
        .iter()
        .find(|(t, _)| *t >= mark)
        .cloned()
        .unwrap_or_else(|| (t_end, end.clone()));
    let after: Vec<&Proc> = samples
        .iter()
        .filter(|(t, _)| *t >= at_mark.0)
        .map(|(_, p)| p)
        .collect();
    let mib = |k: u64| k as f64 / 1024.0;
    let ratio = end.rss as f64 / at_mark.1.rss.max(1) as f64;
    let pass = (ratio - 1.0).abs() <= 0.10;
    let first = &samples[0].1;
    let cpu_total = end.cpu_s - first.cpu_s;
    let mut pcts: Vec<f64> = samples
        .windows(2)
        .map(|w| (w[1].1.cpu_s - w[0].1.cpu_s) / (w[1].0 - w[0].0).max(1) as f64 * 100.0)
        .collect();
    pcts.sort_by(|x, y| x.total_cmp(y));
    let mut part_ms: Vec<f64> = stats
        .part_ms
        .lock()
        .unwrap()
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    part_ms.sort_by(|x, y| x.total_cmp(y));
    let mut per_reader = stats.per_reader.lock().unwrap().clone();
    per_reader.sort_unstable();
    let fmax = after.iter().map(|p| p.fds).max().unwrap_or(0);
    let fmin = after.iter().map(|p| p.fds).min().unwrap_or(0);
    let rmax = after.iter().map(|p| p.rss).max().unwrap_or(0);
    let rmin = after.iter().map(|p| p.rss).min().unwrap_or(0);
    println!(
        "soak: {} s planned, {:.0} s run{}, {} readers, {} LL-HLS clients, sampled every {} s",
        a.secs,
        wall,
        if interrupted { " (interrupted)" } else { "" },
        a.readers,
        a.llhls,
        a.interval
    );
    println!(
        "RSS: {:.1} MiB at the mark (t={} s), {:.1} MiB at the end (t={} s): end/mark = {:.3} -> {} (within 10 %: {})",
        mib(at_mark.1.rss),
        at_mark.0,
        mib(end.rss),
        t_end,
        ratio,
        if pass { "PASS" } else { "FAIL" },
        if pass { "yes" } else { "no" }
    );
    println!(
        "RSS after the mark: min {:.1} MiB, max {:.1} MiB; RssAnon {:.1} -> {:.1} MiB, RssFile {:.1} -> {:.1} MiB; first sample {:.1} MiB; VmHWM at the end {:.1} MiB",
        mib(rmin),
        mib(rmax),
        mib(at_mark.1.rss_anon),
        mib(end.rss_anon),
        mib(at_mark.1.rss_file),
        mib(end.rss_file),
        mib(first.rss),
        mib(end.hwm)
    );
    println!(
        "open files: {} at the start, {} at the mark, {} at the end, {}-{} after the mark; threads {} at the end",
        first.fds, at_mark.1.fds, end.fds, fmin, fmax, end.threads
    );
    println!(
        "CPU: {:.1} s over {} s = {:.1} % of one core on average; per {} s interval: median {:.1} %, max {:.1} %",
        cpu_total,
        t_end,
        cpu_total / t_end.max(1) as f64 * 100.0,
        a.interval,
        percentile(&pcts, 0.5),
        pcts.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "readers: {} segments ({:.1} MiB), {} errors, {} resyncs; per reader min {} / median {} / max {} segments",
        stats.reader_segments.load(Ordering::Relaxed),
        stats.reader_bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
        stats.reader_errors.load(Ordering::Relaxed),
        stats.reader_resyncs.load(Ordering::Relaxed),
        per_reader.first().copied().unwrap_or(0),
        per_reader.get(per_reader.len() / 2).copied().unwrap_or(0),
        per_reader.last().copied().unwrap_or(0),
    );
    println!(
        "LL-HLS: {} playlist loads, {} parts ({:.1} MiB), {} errors; playlist answer to part received: p50 {:.1} ms, p99 {:.1} ms",
        stats.hls_reloads.load(Ordering::Relaxed),
        stats.hls_parts.load(Ordering::Relaxed),
        stats.hls_bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
        stats.hls_errors.load(Ordering::Relaxed),
        percentile(&part_ms, 0.5),
        percentile(&part_ms, 0.99),
    );
    println!("recording {rec}");
}
