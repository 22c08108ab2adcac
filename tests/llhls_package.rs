//! A finished DASH/CMAF package (ffmpeg `-f dash` without `-streaming`: a static MPD) pushed
//! through ingest is served as DASH and as a VOD HLS playlist at the stream's `llhls.m3u8`,
//! whatever order its files arrive in, with every segment:
//! - a package made on disk, then PUT file by file in three orders (MPD last, MPD first with
//!   the segments reversed and the init segment last, shuffled);
//! - ffmpeg pushing the package itself (its last dynamic MPD and the final static one race);
//! - must-fail: a package missing its last video segment is not served as complete.
//!
//! Each playlist is read back with m3u8-rs, ffprobe and ffmpeg (`-v warning`, no message).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{get_text, run, Origin};

const SECONDS: f64 = 12.0;
/// One video frame at 30 fps, in seconds.
const FRAME: f64 = 1.0 / 30.0;
/// One AAC frame at 48 kHz, in seconds.
const AAC_FRAME: f64 = 1024.0 / 48_000.0;

fn dash_args() -> Vec<String> {
    let args = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000",
        "-t",
        "12",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "30",
        "-keyint_min",
        "30",
        "-sc_threshold",
        "0",
        "-b:v",
        "400k",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-ar",
        "48000",
        "-f",
        "dash",
        "-seg_duration",
        "2",
        "-use_timeline",
        "1",
        "-use_template",
        "1",
        "-format_options",
        "movflags=cmaf",
        "-adaptation_sets",
        "id=0,streams=v id=1,streams=a",
    ];
    args.iter().map(|s| s.to_string()).collect()
}

/// Makes the package in `dir` and returns its files (MPD, init and media segments).
fn make_package(dir: &Path) -> Vec<PathBuf> {
    let (ok, log) = run(Command::new("ffmpeg")
        .args(dash_args())
        .arg(dir.join("stream.mpd")));
    assert!(ok, "ffmpeg: {log}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 2 + 2 + 12, "{files:?}");
    files
}

async fn put(client: &reqwest::Client, origin: &Origin, name: &str, file: &Path) {
    let url = origin.ingest_url(&format!(
        "/vod/{name}/{}",
        file.file_name().unwrap().to_str().unwrap()
    ));
    let r = client
        .put(&url)
        .body(std::fs::read(file).unwrap())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "PUT {url}: {}", r.status());
}

/// What a VOD playlist of the stream says: (rendition URI, segment count, total EXTINF).
async fn read_vod(
    client: &reqwest::Client,
    origin: &Origin,
    name: &str,
) -> Vec<(String, usize, f64)> {
    let base = origin.egress_url(&format!("/vod/{name}"));
    let text = get_text(client, format!("{base}/llhls.m3u8")).await;
    let m3u8_rs::Playlist::MasterPlaylist(master) =
        m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
    else {
        panic!("not a multivariant playlist:\n{text}");
    };
    let mut uris: Vec<String> = master.variants.iter().map(|v| v.uri.clone()).collect();
    uris.extend(master.alternatives.iter().filter_map(|a| a.uri.clone()));
    assert_eq!(uris.len(), 2, "{text}");
    let mut out = Vec::new();
    for uri in uris {
        let text = get_text(client, format!("{base}/{uri}")).await;
        let p = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
            other => panic!("{other:?}\n{text}"),
        };
        assert!(p.end_list, "{uri}:\n{text}");
        assert_eq!(
            p.playlist_type,
            Some(m3u8_rs::MediaPlaylistType::Vod),
            "{uri}:\n{text}"
        );
        for tag in [
            "#EXT-X-PART",
            "SERVER-CONTROL",
            "PRELOAD-HINT",
            "RENDITION-REPORT",
        ] {
            assert!(!text.contains(tag), "{tag} in {uri}:\n{text}");
        }
        let total: f64 = p.segments.iter().map(|s| f64::from(s.duration)).sum();
        out.push((uri, p.segments.len(), total));
    }
    out
}

/// Every rendition lists all six segments and the package's whole duration; ffprobe reads
/// 12 s from the HLS and ffmpeg decodes it without a message.
async fn check_complete(client: &reqwest::Client, origin: &Origin, name: &str) {
    let vod = read_vod(client, origin, name).await;
    for (uri, count, total) in &vod {
        let audio = uri.contains("_1");
        let tolerance = if audio { AAC_FRAME } else { FRAME } + 1e-3;
        let segments = if audio { 6..=7 } else { 6..=6 };
        assert!(segments.contains(count), "{uri}: {vod:?}");
        assert!(
            (total - SECONDS).abs() <= tolerance,
            "{uri}: {total} s, {vod:?}"
        );
    }
    let url = origin.egress_url(&format!("/vod/{name}/llhls.m3u8"));
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&url)
        .output()
        .unwrap();
    let secs: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!((secs - SECONDS).abs() < 0.1, "ffprobe: {secs} s");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "warning", "-i"])
        .arg(&url)
        .args(["-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "",
        "ffmpeg warnings"
    );
    // DASH: the package's own static MPD.
    let mpd = get_text(
        client,
        origin.egress_url(&format!("/vod/{name}/stream.mpd")),
    )
    .await;
    assert!(mpd.contains(r#"type="static""#), "{mpd}");
}

/// Waits for the multivariant playlist (the stream's timing is fixed once enough arrived).
async fn wait_ready(client: &reqwest::Client, origin: &Origin, name: &str) {
    let url = origin.egress_url(&format!("/vod/{name}/llhls.m3u8"));
    assert!(
        common::wait_for_200(client, &url, Duration::from_secs(20)).await,
        "no {url}; log:\n{}",
        origin.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_put_in_any_order_is_vod_hls_with_every_segment() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_package(dir.path());
    let origin = Origin::start(&[]);
    let client = reqwest::Client::new();
    let is = |f: &PathBuf, s: &str| f.file_name().unwrap().to_str().unwrap().contains(s);

    // MPD last (a copy tool's alphabetical order would put the MPD after the chunks too).
    let mut natural: Vec<PathBuf> = files.iter().filter(|f| is(f, "init")).cloned().collect();
    natural.extend(files.iter().filter(|f| is(f, "chunk")).cloned());
    natural.extend(files.iter().filter(|f| is(f, ".mpd")).cloned());
    // MPD first, segments reversed, init segments last.
    let mut reversed: Vec<PathBuf> = files.iter().filter(|f| is(f, ".mpd")).cloned().collect();
    reversed.extend(files.iter().filter(|f| is(f, "chunk")).rev().cloned());
    reversed.extend(files.iter().filter(|f| is(f, "init")).cloned());
    // Shuffled (a fixed linear congruential sequence).
    let mut shuffled = files.clone();
    let mut x: u64 = 0x2545_f491;
    for i in (1..shuffled.len()).rev() {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        shuffled.swap(i, (x >> 33) as usize % (i + 1));
    }
    for (name, order) in [
        ("natural", &natural),
        ("reversed", &reversed),
        ("shuffled", &shuffled),
    ] {
        for f in order {
            put(&client, &origin, name, f).await;
        }
        wait_ready(&client, &origin, name).await;
        check_complete(&client, &origin, name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_pushing_a_package_gives_every_segment() {
    let origin = Origin::start(&[]);
    let client = reqwest::Client::new();
    for n in 0..3 {
        let name = format!("push{n}");
        let (ok, log) = run(Command::new("ffmpeg")
            .args(dash_args())
            .args(["-method", "PUT"])
            .arg(origin.ingest_url(&format!("/vod/{name}/stream.mpd"))));
        assert!(ok, "ffmpeg: {log}");
        wait_ready(&client, &origin, &name).await;
        check_complete(&client, &origin, &name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_missing_a_segment_is_not_served_as_complete() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_package(dir.path());
    let origin = Origin::start(&[]);
    let client = reqwest::Client::new();
    let last_video = files
        .iter()
        .filter(|f| f.to_str().unwrap().contains("chunk-stream0-"))
        .max()
        .unwrap()
        .clone();
    for f in files.iter().filter(|f| **f != last_video) {
        put(&client, &origin, "holed", f).await;
    }
    // Within the grace period the media playlists wait (and time out), never a 12 s VOD
    // playlist that lacks a segment.
    let started = Instant::now();
    let r = client
        .get(origin.egress_url("/vod/holed/llhls_0.m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "{}", r.text().await.unwrap());
    assert!(started.elapsed() >= Duration::from_secs(3));
    // The segment arrives late: the playlist is then complete.
    put(&client, &origin, "holed", &last_video).await;
    check_complete(&client, &origin, "holed").await;
}
