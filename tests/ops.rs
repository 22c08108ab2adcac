//! Operability and limits with real tools (issue 9): Debian's Prometheus scraping the
//! origin during a push and `promtool check metrics`; 2,000 idle connections against a
//! player; caps per address; a stalled upload cut at the frame-gap timeout; the drain on
//! SIGTERM and the exit on a second one.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Origin;

fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/install-deps.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Prometheus scrapes the origin during a push; a few series are read back through its
/// HTTP API, and promtool (lint included) accepts the exposition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_origin() {
    let o = Origin::start(&[]);
    let _push = common::ffmpeg_ldash_push(&o, "prom", 14, &[]);
    let c = reqwest::Client::new();
    assert!(
        common::wait_for_200(
            &c,
            &o.egress_url("/live/prom/llhls.m3u8"),
            Duration::from_secs(15)
        )
        .await
    );
    // A player's requests, so egress series exist.
    let _ = common::get_text(&c, o.egress_url("/live/prom/stream.mpd")).await;

    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: casterpak\n    static_configs:\n      - targets: ['{}']\n",
            o.api
        ),
    )
    .unwrap();
    let mut prom = common::Killed(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian's package; scripts/install-deps.sh)"),
    );
    let query = |q: &'static str| {
        let c = c.clone();
        async move {
            let q = percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC);
            let url = format!("http://127.0.0.1:{port}/api/v1/query?query={q}");
            let r = c.get(url).send().await.ok()?;
            let j: serde_json::Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
            let results = j["data"]["result"].as_array()?.clone();
            (!results.is_empty()).then_some(results)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = None;
    while Instant::now() < deadline {
        if let Some(r) = query("casterpak_ingest_bytes_total{stream=\"live/prom\"}").await {
            got = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let got = got.expect("Prometheus never stored casterpak_ingest_bytes_total");
    let bytes: f64 = got[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(bytes > 10_000.0, "{got:?}");
    let ages = query("casterpak_live_edge_age_seconds{stream=\"live/prom\"}")
        .await
        .expect("edge age");
    assert!(ages.len() >= 2, "one series per representation: {ages:?}");
    let up = query("up{job=\"casterpak\"}").await.expect("up");
    assert_eq!(up[0]["value"][1], "1");
    assert!(
        query("casterpak_http_requests_total{listener=\"egress\",kind=\"mpd\"}")
            .await
            .is_some()
    );
    assert!(query("casterpak_stream_live{stream=\"live/prom\"}")
        .await
        .is_some());
    assert!(query("process_resident_memory_bytes").await.is_some());
    let jobs = query("casterpak_library_jobs{state=\"queued\"}")
        .await
        .expect("the library's job queue");
    assert_eq!(jobs[0]["value"][1], "0");
    let _ = prom.0.kill();

    // promtool, lint included, on both formats; and it must be able to fail.
    let text = common::get_text(&c, o.api_url("/metrics")).await;
    let (ok, out) = promtool_check(&text);
    assert!(ok, "promtool check metrics: {out}\n{text}");
    let broken = "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests 1\n";
    assert!(
        !promtool_check(broken).0,
        "promtool must flag a counter without _total"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        for banned in ["peer=", "ip=", "token", "session", "number="] {
            assert!(!line.contains(banned), "unbounded label: {line}");
        }
    }
    let om = c
        .get(o.api_url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(om.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(om.text().await.unwrap().ends_with("# EOF\n"));
}

fn open_idle(addr: std::net::SocketAddr, n: usize, partial: bool) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            if partial {
                // A slow-loris: a request head that never ends.
                s.write_all(b"GET /time HTTP/1.1\r\nHost: x\r\n").unwrap();
            }
            s
        })
        .collect()
}

/// Whether the peer closed (EOF or reset), after whatever it sent first (a 408).
fn is_closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    );
}

/// 2,000 idle connections (1,000 silent, 800 slow-loris heads, 200 partial HTTP/2
/// prefaces) do not block a player and grow the origin's memory by less than 64 MiB; the
/// header-read timeout closes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_bounded() {
    raise_nofile();
    let o = Origin::start(&["--header-read-timeout-secs", "10"]);
    let c = reqwest::Client::new();
    let playlist = o.egress_url("/i/clip_360p.mp4/master.m3u8");
    assert!(common::wait_for_200(&c, &playlist, Duration::from_secs(5)).await);
    let before = o.rss_kib();
    let addr = o.egress;
    let mut idle = tokio::task::spawn_blocking(move || {
        let mut v = open_idle(addr, 1000, false);
        v.extend(open_idle(addr, 800, true));
        for _ in 0..200 {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
            v.push(s);
        }
        v
    })
    .await
    .unwrap();
    // A player still gets its playlist and a segment at once.
    let t = Instant::now();
    let text = common::get_text(&c, &playlist).await;
    assert!(text.contains("#EXTM3U"));
    let seg = c
        .get(o.egress_url("/i/clip_360p.mp4/segment1_0_av.ts"))
        .send()
        .await
        .unwrap();
    assert_eq!(seg.status(), 200);
    assert!(!seg.bytes().await.unwrap().is_empty());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "player blocked: {:?}",
        t.elapsed()
    );
    let during = o.rss_kib();
    assert!(
        during.saturating_sub(before) < 64 * 1024,
        "2,000 idle connections grew RSS by {} KiB",
        during - before
    );
    // Every one of them was accepted and is held open.
    let mut open = 0.0;
    let deadline = Instant::now() + Duration::from_secs(3);
    while open < 2000.0 && Instant::now() < deadline {
        let metrics = common::get_text(&c, o.api_url("/metrics")).await;
        open = metrics
            .lines()
            .find_map(|l| l.strip_prefix("casterpak_connections{listener=\"egress\"} "))
            .unwrap()
            .parse()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(open >= 2000.0, "{open}");
    let during = during.max(o.rss_kib());
    assert!(
        during.saturating_sub(before) < 64 * 1024,
        "2,000 idle connections grew RSS by {} KiB",
        during - before
    );
    // The header-read timeout (10 s) closes every one of them.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let closed =
        tokio::task::spawn_blocking(move || idle.iter_mut().map(is_closed).filter(|c| *c).count())
            .await
            .unwrap();
    assert_eq!(
        closed, 2000,
        "idle connections left open past the header timeout"
    );
}

/// Over the per-address cap a connection is closed at once and counted.
#[test]
fn connections_per_address_are_capped() {
    let o = Origin::start(&["--max-connections-per-ip", "4"]);
    std::thread::sleep(Duration::from_millis(300));
    let held = open_idle(o.egress, 4, true);
    let mut fifth = TcpStream::connect(o.egress).unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let _ = fifth.write_all(b"GET /time HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut b = [0u8; 64];
    let n = fifth.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "the fifth connection must be closed");
    drop(held);
    let metrics = common::raw_exchange(
        o.api,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(
        metrics.contains("casterpak_connections_refused_total{listener=\"egress\",reason=\"max_connections_per_ip\"} 1"),
        "{metrics}"
    );
    // Room again once they closed.
    let r = common::raw_exchange(
        o.egress,
        b"GET /time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

/// An upload that stops sending is cut at the frame-gap timeout: its reader's response is
/// aborted (not ended cleanly), the object is never served as complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_upload_is_cut() {
    let o = Origin::start(&["--ingest-frame-gap-secs", "2"]);
    let seg = std::fs::read("tests/fixtures/cmaf/ffmpeg_ldash_640x360_seg2.m4s").unwrap();
    let mut up = TcpStream::connect(o.ingest).unwrap();
    up.write_all(
        b"PUT /live/stall/seg.m4s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    let half = &seg[..seg.len() / 2];
    up.write_all(format!("{:x}\r\n", half.len()).as_bytes())
        .unwrap();
    up.write_all(half).unwrap();
    up.write_all(b"\r\n").unwrap();
    let c = reqwest::Client::new();
    let started = Instant::now();
    let resp = c
        .get(o.egress_url("/live/stall/seg.m4s"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await;
    assert!(
        body.is_err(),
        "the reader's response must be aborted, not ended"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    up.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let after = c
        .get(o.egress_url("/live/stall/seg.m4s"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 404);
    assert!(!o.data_dir.join("live/stall/seg.m4s").exists());
    let metrics = common::get_text(&c, o.api_url("/metrics")).await;
    assert!(
        metrics.contains("casterpak_ingest_objects_total{stream=\"live/stall\",kind=\"segment\",result=\"truncated\"} 1"),
        "{metrics}"
    );
}

/// SIGTERM: /readyz fails at once, a held blocking reload is answered at once (503), an
/// upload in progress still completes and is persisted, then the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains() {
    let mut o = Origin::start(&[
        "--drain-start-wait-ms",
        "1500",
        "--drain-timeout-secs",
        "10",
    ]);
    let c = reqwest::Client::new();
    // A live stream with LL-HLS, for a blocking reload to hold.
    let push = common::ffmpeg_ldash_push(&o, "drain", 30, &[]);
    let media = o.egress_url("/live/drain/llhls_0.m3u8");
    assert!(common::wait_for_200(&c, &media, Duration::from_secs(15)).await);
    let text = common::get_text(&c, &media).await;
    let msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse::<u64>()
        .unwrap()
        + text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    drop(push);
    // The encoder is gone: a reload for the segment after next would wait 3 target
    // durations.
    let held = tokio::spawn({
        let c = c.clone();
        let url = format!("{media}?_HLS_msn={}", msn + 1);
        async move {
            let t = Instant::now();
            let r = c.get(url).send().await.unwrap();
            (
                r.status().as_u16(),
                r.headers().get("retry-after").is_some(),
                t.elapsed(),
            )
        }
    });
    // An upload in progress across the signal.
    let seg = std::fs::read("tests/fixtures/cmaf/ffmpeg_ldash_640x360_seg3.m4s").unwrap();
    let mut up = TcpStream::connect(o.ingest).unwrap();
    up.write_all(b"PUT /live/up/seg.m4s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let (a, b) = seg.split_at(seg.len() / 2);
    up.write_all(format!("{:x}\r\n", a.len()).as_bytes())
        .unwrap();
    up.write_all(a).unwrap();
    up.write_all(b"\r\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A reader of that segment while it is uploaded: its response must run to the end.
    let reader = tokio::spawn({
        let c = c.clone();
        let url = o.egress_url("/live/up/seg.m4s");
        async move {
            let r = c.get(url).send().await.unwrap();
            r.bytes().await.map(|b| b.to_vec())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    o.terminate();
    let (status, retry, waited) = held.await.unwrap();
    assert_eq!(status, 503);
    assert!(retry, "Retry-After on a released reload");
    assert!(signalled.elapsed() < Duration::from_secs(1) || waited < Duration::from_secs(2));
    let ready = c.get(o.api_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("draining"));
    // The rest of the upload, after the signal: still accepted and persisted.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    up.write_all(format!("{:x}\r\n", b.len()).as_bytes())
        .unwrap();
    up.write_all(b).unwrap();
    up.write_all(b"\r\n0\r\n\r\n").unwrap();
    up.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = [0u8; 64];
    let n = up.read(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 201"));
    let read = reader
        .await
        .unwrap()
        .expect("the in-flight segment response was cut");
    assert_eq!(read, seg, "the in-flight segment response ran to its end");
    let status = o
        .wait_exit(Duration::from_secs(12))
        .expect("the origin did not exit");
    assert!(status.success(), "{status:?}\n{}", o.log());
    assert_eq!(
        std::fs::read(o.data_dir.join("live/up/seg.m4s")).unwrap(),
        seg,
        "the upload finished during the drain is persisted whole"
    );
}

/// A second signal exits at once, even with an upload still open.
#[test]
fn second_sigterm_exits_at_once() {
    let mut o = Origin::start(&["--drain-start-wait-ms", "5000"]);
    let mut up = TcpStream::connect(o.ingest).unwrap();
    up.write_all(b"PUT /live/x/seg.m4s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    o.terminate();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    o.terminate();
    let status = o
        .wait_exit(Duration::from_secs(3))
        .expect("still running after a second signal");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(status.code(), Some(130));
}

/// Over `max_held_reloads`, a blocking reload is answered at once with 503 and
/// `Retry-After`, not queued; the held one still gets its playlist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_reloads_are_capped() {
    let o = Origin::start(&["--max-held-reloads", "1"]);
    let c = reqwest::Client::new();
    let _push = common::ffmpeg_ldash_push(&o, "cap", 16, &[]);
    let media = o.egress_url("/live/cap/llhls_0.m3u8");
    assert!(common::wait_for_200(&c, &media, Duration::from_secs(15)).await);
    let text = common::get_text(&c, &media).await;
    let next: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse::<u64>()
        .unwrap()
        + text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    // The segment after the one being written: held for sure while the second request
    // comes.
    let url = format!("{media}?_HLS_msn={}", next + 1);
    let held = tokio::spawn({
        let (c, url) = (c.clone(), url.clone());
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let over = c.get(&url).send().await.unwrap();
    assert_eq!(over.status(), 503);
    assert_eq!(over.headers()["retry-after"], "1");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        held.await.unwrap(),
        200,
        "the held reload is answered when the segment comes"
    );
    let metrics = common::get_text(&c, o.api_url("/metrics")).await;
    assert!(
        metrics.contains("casterpak_blocking_outcome_total{result=\"over_cap\"} 1"),
        "{metrics}"
    );
}

/// ffmpeg's DASH muxer without `-streaming` opens a segment's upload when the segment
/// starts and sends it when it ends: a wait longer than the frame gap before the first
/// byte is not a stall.
#[test]
fn non_streaming_dash_is_not_cut() {
    let o = Origin::start(&["--ingest-frame-gap-secs", "2"]);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "warning", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=9",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-f",
            "dash",
            "-seg_duration",
            "4",
            "-use_template",
            "1",
            "-use_timeline",
            "0",
        ])
        .args(["-method", "PUT", "-http_persistent", "1"])
        .arg(o.ingest_url("/live/slow/stream.mpd"))
        .stdin(Stdio::null());
    let (ok, err) = common::run(&mut cmd);
    assert!(ok, "ffmpeg: {err}");
    let files = common::files_under(&o.data_dir.join("live/slow"));
    assert!(
        files.iter().filter(|f| f.ends_with(".m4s")).count() >= 3,
        "{files:?}"
    );
    assert!(!o.log().contains("stalled"), "{}", o.log());
}
