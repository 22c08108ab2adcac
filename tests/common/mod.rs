//! Shared helpers of the integration tests: the real `casterpak` binary on free loopback
//! ports, real ffmpeg pushes, and raw HTTP/1.1 for requests a normal client would "fix".
#![allow(dead_code)]

pub mod openapi;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running origin. Killed on drop.
pub struct Origin {
    pub ingest: SocketAddr,
    pub egress: SocketAddr,
    pub api: SocketAddr,
    pub data_dir: PathBuf,
    pub extra: Vec<String>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Origin {
    /// Starts the binary with a fresh data dir and `extra` flags; waits until egress answers.
    pub fn start(extra: &[&str]) -> Origin {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut o = Origin {
            ingest: SocketAddr::from(([127, 0, 0, 1], free_port())),
            egress: SocketAddr::from(([127, 0, 0, 1], free_port())),
            api: SocketAddr::from(([127, 0, 0, 1], free_port())),
            data_dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            _dir: Some(dir),
        };
        o.spawn();
        o
    }

    /// The folder holding the data dir (to check nothing is written beside it).
    pub fn parent_dir(&self) -> &Path {
        self.data_dir.parent().unwrap()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.parent_dir().join("origin.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_casterpak"))
            .arg("serve")
            .arg("--ingest-addr")
            .arg(self.ingest.to_string())
            .arg("--egress-addr")
            .arg(self.egress.to_string())
            .arg("--api-addr")
            .arg(self.api.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra)
            .env("RUST_LOG", "info,casterpak=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start casterpak");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(self.egress).is_ok()
                && TcpStream::connect(self.ingest).is_ok()
                && TcpStream::connect(self.api).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("origin did not start; log:\n{}", self.log());
    }

    /// Kills the process at once (SIGKILL: no graceful shutdown, like a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the binary again on the same ports and data dir.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The origin's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.parent_dir().join("origin.log")).unwrap_or_default()
    }

    pub fn egress_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.egress)
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    pub fn ingest_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ingest)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- origin log (last {} lines) ---\n{}",
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// A child process killed on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The reference LL-DASH push (`ingest-ffmpeg.md`): 2 video renditions + audio, 2 s segments,
/// 0.5 s CMAF chunks, for `seconds` of real time.
pub fn ffmpeg_ldash_push(origin: &Origin, name: &str, seconds: u32, extra: &[&str]) -> Killed {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=640x360:rate=30:duration={seconds}"),
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=1000:sample_rate=48000:duration={seconds}"),
        ])
        .args(["-map", "0:v", "-map", "0:v", "-map", "1:a"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
        .args([
            "-b:v:0", "1500k", "-s:v:0", "640x360", "-b:v:1", "400k", "-s:v:1", "320x180",
        ])
        .args(["-c:a", "aac", "-b:a", "128k", "-ar", "48000"])
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
        .args([
            "-use_timeline",
            "0",
            "-use_template",
            "1",
            "-window_size",
            "5",
            "-extra_window_size",
            "5",
        ])
        .args(["-method", "PUT", "-http_persistent", "1"])
        .args(["-utc_timing_url", &origin.egress_url("/time")])
        .args(["-target_latency", "1.5", "-format_options", "movflags=cmaf"])
        .args(["-adaptation_sets", "id=0,streams=v id=1,streams=a"])
        .args(extra)
        .arg(origin.ingest_url(&format!("/live/{name}/stream.mpd")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Killed(cmd.spawn().expect("ffmpeg must be installed (see README)"))
}

/// Polls `url` with GET until it answers 200 or `timeout` passes.
pub async fn wait_for_200(client: &reqwest::Client, url: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(url).send().await {
            if r.status() == 200 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// GETs `url` and returns its body as text (panics on a transport error).
pub async fn get_text(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// Sends raw bytes on a new connection and reads until the peer closes or `timeout`.
pub fn raw_exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of every response in `raw` (several when pipelined).
pub fn statuses(raw: &str) -> Vec<u16> {
    raw.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| raw.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// Runs a command and returns (success, stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run command");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

impl Origin {
    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM (graceful drain).
    pub fn terminate(&self) {
        let pid = self.pid().expect("origin running");
        let ok = Command::new("kill")
            .args(["-s", "TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM {pid}");
    }

    /// Waits up to `timeout` for the process to exit; its status, or `None` if still
    /// running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    return Some(st);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Resident memory of the process in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.pid().expect("origin running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

/// The Python of the virtualenv holding Akamai's `akamai-edgeauth` package
/// (scripts/install-deps.sh installs it).
pub fn edgeauth_python() -> PathBuf {
    if let Ok(v) = std::env::var("CASTERPAK_EDGEAUTH_VENV") {
        return PathBuf::from(v).join("bin/python");
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
    cache.join("casterpak/edgeauth-0.3.2/bin/python")
}

/// An EdgeAuth 2.0 ACL token made by Akamai's own `akamai-edgeauth` package: valid from
/// `start` (Unix seconds, or now) for `window` seconds.
pub fn edgeauth_acl_token(key_hex: &str, acl: &str, start: Option<i64>, window: i64) -> String {
    let start = start.map_or("None".to_owned(), |s| s.to_string());
    let script = format!(
        "from akamai.edgeauth import EdgeAuth\n\
         print(EdgeAuth(key='{key_hex}', start_time={start}, window_seconds={window}, token_name='hdnts').generate_acl_token('{acl}'))"
    );
    let out = Command::new(edgeauth_python())
        .args(["-c", &script])
        .output()
        .expect("akamai-edgeauth venv (scripts/install-deps.sh)");
    assert!(
        out.status.success(),
        "edgeauth: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An EdgeAuth 2.0 URL token (no ACL: signs the exact path) from `akamai-edgeauth`.
pub fn edgeauth_url_token(key_hex: &str, url: &str, window: i64) -> String {
    let script = format!(
        "from akamai.edgeauth import EdgeAuth\n\
         print(EdgeAuth(key='{key_hex}', window_seconds={window}, token_name='hdnts').generate_url_token('{url}'))"
    );
    let out = Command::new(edgeauth_python())
        .args(["-c", &script])
        .output()
        .expect("akamai-edgeauth venv (scripts/install-deps.sh)");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Writes `text` as a TOML config file beside the origin's future data dir and returns the
/// `--config` flag pair.
pub fn config_file(dir: &Path, text: &str) -> [String; 2] {
    let path = dir.join("casterpak.toml");
    std::fs::write(&path, text).unwrap();
    ["--config".to_owned(), path.display().to_string()]
}

/// A clip made by ffmpeg at `out`: `secs` seconds of `testsrc2` at `size` (`WxH`) and
/// `rate` frames per second, H.264 (x264 `ultrafast`, one thread), with a sine tone of
/// `tone_hz` in AAC.
pub fn lavfi_clip(out: &Path, secs: f64, size: &str, rate: u32, tone_hz: u32) -> PathBuf {
    let (ok, log) = run(Command::new("ffmpeg").args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={size}:rate={rate}:duration={secs}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency={tone_hz}:sample_rate=44100:duration={secs}"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-threads",
        "1",
        "-c:a",
        "aac",
        "-shortest",
        out.to_str().unwrap(),
    ]));
    assert!(ok, "ffmpeg clip: {log}");
    out.to_owned()
}

/// An origin whose media library writes under a fresh media root (kept with the returned
/// folder), transcoding with x264 `preset`; `extra` flags after.
pub fn library_origin(preset: &str, extra: &[&str]) -> (Origin, tempfile::TempDir) {
    let media = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--media-root",
        media.path().to_str().unwrap(),
        "--library-preset",
        preset,
    ];
    args.extend_from_slice(extra);
    (Origin::start(&args), media)
}
