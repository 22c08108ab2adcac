//! The NUS CS5248 app's flow against the origin with real files: create a video, upload
//! three recorded segments (out of order, one twice), watch the playlists grow with only
//! the contiguous prefix, end it, and play it as VOD with ffmpeg (HLS and the MPD).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{run, Origin};
use serde_json::Value;

/// A recorded segment as the phone makes it: `secs` seconds of video and sound.
fn segment(dir: &Path, n: u32, secs: f64) -> PathBuf {
    common::lavfi_clip(
        &dir.join(format!("seg{n}.mp4")),
        secs,
        "640x480",
        30,
        300 + 100 * n,
    )
}

fn curl(args: &[&str]) -> (u16, String) {
    let mut a = vec!["-sS", "-w", "\n%{http_code}"];
    a.extend_from_slice(args);
    let out = Command::new("curl").args(&a).output().expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

fn upload(o: &Origin, id: i64, seg: i64, ext: &str, file: &Path) -> (u16, Value) {
    let (code, body) = curl(&[
        "-F",
        &format!("segment_id={seg}"),
        "-F",
        &format!("original_extension={ext}"),
        "-F",
        &format!("data=@{}", file.display()),
        &o.api_url(&format!("/video_segment/{id}")),
    ]);
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn get_json(o: &Origin, path: &str) -> Value {
    let (code, body) = curl(&[&o.api_url(path)]);
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn wait_ok(o: &Origin, id: i64, segs: &[i64]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list = get_json(o, &format!("/segments/{id}"));
        let ok = segs.iter().all(|s| {
            list.as_array()
                .unwrap()
                .iter()
                .any(|x| x["segment_id"] == *s && x["status"] == "OK")
        });
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "segments {segs:?} never OK: {list:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `(EXTINF durations, URIs)` of a media playlist.
fn entries(playlist: &str) -> (Vec<f64>, Vec<String>) {
    let d = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse().unwrap())
        .collect();
    let u = playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    (d, u)
}

fn ffprobe_duration(url: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn the_nus_flow_plays_live_then_as_vod() {
    let (o, _media) = common::library_origin("ultrafast", &[]);
    let dir = tempfile::tempdir().unwrap();
    let durs = [3.0, 2.5, 3.2];
    let files: Vec<PathBuf> = durs
        .iter()
        .enumerate()
        .map(|(i, d)| segment(dir.path(), i as u32, *d))
        .collect();

    let (code, body) = curl(&["-d", "title=Phone", &o.api_url("/videos")]);
    assert_eq!(code, 201, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let id = v["video_id"].as_i64().unwrap();
    assert_eq!(v["status"], "EMPTY");
    assert_eq!(v["type"], "LIVE");
    assert_eq!(v["segment_count"], -1);
    for k in [
        "repr_1_name",
        "repr_1_bandwidth",
        "uri_mpd",
        "uri_m3u8",
        "base_url",
    ] {
        assert!(!v[k].is_null(), "{k} in {v:#}");
    }

    // Segment 0, then 2 before 1: only the contiguous prefix plays.
    assert_eq!(upload(&o, id, 0, "mp4", &files[0]).0, 201);
    let (code, s2) = upload(&o, id, 2, "mp4; rm -rf /", &files[2]);
    assert_eq!(code, 201);
    assert_eq!(s2["original_extension"], "mp4", "names on disk are ours");
    wait_ok(&o, id, &[0]);
    let master = curl(&[&o.api_url(&format!("/live_m3u8/{id}/root.m3u8"))]).1;
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 3, "{master}");
    assert!(master.contains("HIGH/stream.m3u8"));
    let media_url = o.api_url(&format!("/live_m3u8/{id}/HIGH/stream.m3u8"));
    std::thread::sleep(Duration::from_secs(2));
    let live = curl(&[&media_url]).1;
    let (d, uris) = entries(&live);
    assert_eq!(uris, [format!("/video_files/{id}/HIGH/0.ts")], "{live}");
    assert!((d[0] - 3.0).abs() < 0.1, "{live}");
    assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !live.contains("ENDLIST"));
    let seg2 = get_json(&o, &format!("/video_segment/{id}/2"));
    assert_eq!(seg2["status"], "NIL", "segment 2 waits for segment 1");

    // A re-upload of segment 0 is idempotent.
    let ts0 = media_file(&o, id, "HIGH", 0);
    let before = std::fs::metadata(&ts0).unwrap().modified().unwrap();
    let (code, again) = upload(&o, id, 0, "mp4", &files[0]);
    assert_eq!(code, 201);
    assert_eq!(again["status"], "OK");
    assert_eq!(std::fs::metadata(&ts0).unwrap().modified().unwrap(), before);

    // Segment 1 arrives: all three play, with measured durations, still live.
    assert_eq!(upload(&o, id, 1, "mp4", &files[1]).0, 201);
    wait_ok(&o, id, &[0, 1, 2]);
    let live = curl(&[&media_url]).1;
    let (d, uris) = entries(&live);
    assert_eq!(uris.len(), 3, "{live}");
    for (got, want) in d.iter().zip(durs) {
        assert!((got - want).abs() < 0.1, "{d:?} vs {durs:?}");
    }
    assert!(!live.contains("ENDLIST"));
    let livestreams = get_json(&o, "/livestreams");
    assert!(livestreams
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["video_id"] == id));
    let (code, _) = upload(&o, id, -1, "mp4", &files[0]);
    assert_eq!(code, 400);

    // The end: VOD.
    let (code, body) = curl(&[
        "-d",
        "last_segment_id=2",
        &o.api_url(&format!("/video_end/{id}")),
    ]);
    assert_eq!(code, 201, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "OK");
    assert_eq!(v["segment_count"], 3);
    let vod = curl(&[&media_url]).1;
    assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD") && vod.ends_with("#EXT-X-ENDLIST\n"));
    assert!(!get_json(&o, "/livestreams")
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["video_id"] == id));

    // ffmpeg plays it whole: HLS and the MPD, 8.7 s on one timeline.
    let total: f64 = durs.iter().sum();
    let hls = o.api_url(&format!("/live_m3u8/{id}/root.m3u8"));
    let (ok, log) = run(Command::new("ffmpeg").args([
        "-hide_banner",
        "-v",
        "error",
        "-i",
        &hls,
        "-map",
        "0:v:0",
        "-f",
        "null",
        "-",
    ]));
    assert!(ok && log.trim().is_empty(), "{log}");
    let got = ffprobe_duration(&hls);
    assert!((got - total).abs() < 0.3, "HLS lasts {got} s, not {total}");
    let mpd_url = o.api_url(&format!("/live_mpd/{id}.mpd"));
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", &mpd_url])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        head.contains("lastsegmentid: 2") && head.contains("streamended: true"),
        "{head}"
    );
    // The MPD (MPEG-2 TS simple profile): its timeline sums to the whole, and every
    // segment it names is served as MPEG-TS. (ffmpeg's DASH demuxer does not read TS
    // segments, so no player reads it here.)
    let mpd = curl(&[&mpd_url]).1;
    assert!(
        mpd.contains("type=\"static\"") && mpd.contains("mp2t-simple"),
        "{mpd}"
    );
    assert_eq!(mpd.matches("<Representation ").count(), 3);
    let first_rep = &mpd[..mpd.find("</Representation>").unwrap()];
    let sum: f64 = first_rep
        .split("<S ")
        .skip(1)
        .map(|s| {
            let d = s.split("d=\"").nth(1).unwrap();
            d[..d.find('"').unwrap()].parse::<f64>().unwrap() / 1000.0
        })
        .sum();
    assert!((sum - total).abs() < 0.01, "{mpd}");
    for url in first_rep
        .split("media=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
    {
        let out = Command::new("curl")
            .args(["-sS", "-f", &o.api_url(url)])
            .output()
            .unwrap();
        assert!(out.status.success() && out.stdout[0] == 0x47, "{url}");
    }

    // Rename (201 like the seed) and delete (files too).
    let (code, _) = curl(&[
        "-X",
        "PUT",
        "-d",
        "title=Renamed",
        &o.api_url(&format!("/video/{id}")),
    ]);
    assert_eq!(code, 201);
    assert_eq!(get_json(&o, &format!("/video/{id}"))["title"], "Renamed");
    let (code, _) = curl(&["-X", "DELETE", &o.api_url(&format!("/video/{id}"))]);
    assert_eq!(code, 204);
    assert!(!ts0.exists());
    let (code, _) = curl(&[&o.api_url(&format!("/video/{id}"))]);
    assert_eq!(code, 404);
}

fn media_file(o: &Origin, id: i64, repr: &str, seg: i64) -> PathBuf {
    o.data_dir
        .join(".library/nus")
        .join(id.to_string())
        .join(repr)
        .join(format!("{seg}.ts"))
}
