//! The media library end to end with real files and real ffmpeg: tus uploads (interrupted
//! and resumed), multipart uploads, bad inputs, the ladder's rungs (decoded with ffprobe,
//! keyframes aligned), the published HLS, poster and thumbnails, deletion during a
//! transcode and a restart in the middle of one.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{run, Origin};
use serde_json::Value;

/// Runs curl and returns its stdout (the test fails when curl does).
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(args).output().expect("run curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A clip made by ffmpeg: `secs` seconds of `testsrc2` at `size` with a sine tone.
fn clip(dir: &Path, name: &str, secs: u32, size: &str) -> PathBuf {
    common::lavfi_clip(&dir.join(name), f64::from(secs), size, 25, 440)
}

/// An origin whose media root is a fresh folder, transcoding with x264 `preset`.
fn library_origin(preset: &str) -> (Origin, PathBuf, tempfile::TempDir) {
    let (o, keep) = common::library_origin(preset, &[]);
    let media = keep.path().to_owned();
    (o, media, keep)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn asset(client: &reqwest::Client, o: &Origin, id: &str) -> Value {
    let r = client
        .get(o.api_url(&format!("/api/v1/assets/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET asset {id}");
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

/// Polls the asset until its status is `want` (or `errored`/`ready`, which end it).
async fn wait_status(
    client: &reqwest::Client,
    o: &Origin,
    id: &str,
    want: &str,
    secs: u64,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let a = asset(client, o, id).await;
        let s = a["status"].as_str().unwrap().to_owned();
        if s == want || s == "ready" || s == "errored" || Instant::now() > deadline {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn tus_create(client: &reqwest::Client, o: &Origin, length: u64, title: &str) -> String {
    let r = client
        .post(o.api_url("/api/v1/uploads"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", length.to_string())
        .header(
            "upload-metadata",
            format!("filename {},title {}", b64("clip.mp4"), b64(title)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    assert!(r.headers().contains_key("upload-expires"));
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    loc.strip_prefix("/api/v1/uploads/").unwrap().to_owned()
}

async fn tus_patch(
    client: &reqwest::Client,
    o: &Origin,
    id: &str,
    offset: u64,
    body: Vec<u8>,
) -> reqwest::Response {
    client
        .patch(o.api_url(&format!("/api/v1/uploads/{id}")))
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn tus_offset(client: &reqwest::Client, o: &Origin, id: &str) -> u64 {
    let r = client
        .head(o.api_url(&format!("/api/v1/uploads/{id}")))
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Keyframe times (seconds, 3 decimals) of a file's video.
fn keyframes(path: &str) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
            path,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {path}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            format!(
                "{:.3}",
                l.trim().trim_end_matches(',').parse::<f64>().unwrap()
            )
        })
        .collect()
}

/// Width and height of a picture or video, from ffprobe.
fn picture_size(path: &str) -> (u32, u32) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
            path,
        ])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    let mut it = s.trim().split(',').map(|n| n.parse::<u32>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// Decodes every frame of a file (ffmpeg to null): whether it decodes without error.
fn decodes(path: &str) -> bool {
    let (ok, log) = run(Command::new("ffmpeg").args([
        "-hide_banner",
        "-v",
        "error",
        "-xerror",
        "-i",
        path,
        "-f",
        "null",
        "-",
    ]));
    ok && log.trim().is_empty()
}

/// PIDs of processes whose command line contains `needle`.
fn pids_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let c = String::from_utf8_lossy(&c);
            if c.contains(needle) && c.contains("ffmpeg") {
                out.push(pid);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tus_upload_interrupted_and_resumed_becomes_ready_and_is_published() {
    let (o, media, _keep) = library_origin("ultrafast");
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 8, "640x360");
    let bytes = std::fs::read(&src).unwrap();
    let len = bytes.len() as u64;
    let client = reqwest::Client::new();

    // Discovery (tus OPTIONS).
    let r = client
        .request(reqwest::Method::OPTIONS, o.api_url("/api/v1/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["tus-version"], "1.0.0");
    assert!(r.headers()["tus-extension"]
        .to_str()
        .unwrap()
        .contains("creation-with-upload"));
    assert_eq!(r.headers()["tus-max-size"], "17179869184");

    // Asset events over SSE, read from before the creation.
    let mut sse = client
        .get(o.api_url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    let events = tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_secs(120), sse.chunk()).await
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: asset.ready") {
                break;
            }
        }
        text
    });

    let id = tus_create(&client, &o, len, "My clip").await;
    let a = asset(&client, &o, &id).await;
    assert_eq!(
        a["status"], "waiting",
        "the asset exists from the creation on"
    );
    assert_eq!(a["title"], "My clip");

    // The first PATCH breaks off: headers announce the rest, half of it is sent, then the
    // connection is dropped.
    let half = bytes.len() / 2;
    {
        let mut s = TcpStream::connect(o.api).unwrap();
        write!(
            s,
            "PATCH /api/v1/uploads/{id} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n\
             Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n\
             Content-Length: {len}\r\n\r\n"
        )
        .unwrap();
        s.write_all(&bytes[..half]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut offset = 0;
    while Instant::now() < deadline {
        offset = tus_offset(&client, &o, &id).await;
        if offset == half as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        offset, half as u64,
        "every byte received before the break is kept"
    );
    let a = asset(&client, &o, &id).await;
    assert_eq!(
        a["status"], "uploading",
        "an interrupted upload is never complete"
    );

    // Must-fail cases of the protocol.
    let r = tus_patch(&client, &o, &id, 0, bytes[..10].to_vec()).await;
    assert_eq!(r.status(), 409, "a wrong offset");
    let r = client
        .patch(o.api_url(&format!("/api/v1/uploads/{id}")))
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 4])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "a wrong content type");
    let r = client
        .head(o.api_url(&format!("/api/v1/uploads/{id}")))
        .header("tus-resumable", "0.2.2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412, "another protocol version");
    assert_eq!(
        tus_offset(&client, &o, &id).await,
        half as u64,
        "nothing moved"
    );

    // Resume from the offset.
    let r = tus_patch(&client, &o, &id, offset, bytes[half..].to_vec()).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["upload-offset"], len.to_string().as_str());
    let source = o.data_dir.join(".library/sources").join(&id);
    assert_eq!(
        std::fs::read(&source).unwrap(),
        bytes,
        "the bytes on disk equal the source"
    );

    let a = wait_status(&client, &o, &id, "ready", 120).await;
    assert_eq!(a["status"], "ready", "{a:#}");
    assert_eq!(a["progress"]["percent"], 100.0);
    assert!((a["duration_secs"].as_f64().unwrap() - 8.0).abs() < 0.2);
    let names: Vec<&str> = a["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["240p", "360p"], "no rung above the 360p source");

    let events = events.await.unwrap();
    for kind in [
        "asset.created",
        "asset.progress",
        "asset.updated",
        "asset.ready",
    ] {
        assert!(
            events.contains(&format!("event: {kind}\n")),
            "{kind} in {events}"
        );
    }
    let ready = events
        .lines()
        .skip_while(|l| *l != "event: asset.ready")
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    let ready: Value = serde_json::from_str(ready).unwrap();
    assert_eq!(ready["asset"]["id"], id.as_str());
    assert_eq!(ready["asset"]["status"], "ready");

    // Every rung decodes, at its height, with keyframes at the same times.
    let out = media.join("assets").join(&id);
    let mut kf: Vec<Vec<String>> = Vec::new();
    for (name, height) in [("240p", 240), ("360p", 360)] {
        let f = out.join(format!("{id}_{name}.mp4"));
        let f = f.to_str().unwrap();
        assert!(decodes(f), "{name} decodes");
        assert_eq!(picture_size(f).1, height);
        kf.push(keyframes(f));
    }
    assert_eq!(kf[0], kf[1], "keyframes align across rungs");
    assert_eq!(kf[0][..4], ["0.000", "2.000", "4.000", "6.000"], "2 s GOPs");

    // Published through the packager: the .csmil master of the rungs, and a segment.
    let hls = a["playback"]["hls"].as_str().unwrap();
    assert_eq!(
        hls,
        o.egress_url(&format!(
            "/i/assets/{id}/{id}_,240,360,p.mp4.csmil/master.m3u8"
        ))
    );
    let master = client.get(hls).send().await.unwrap().text().await.unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 3, "{master}");
    let media_uri = master
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    let media_url = reqwest::Url::parse(hls).unwrap().join(media_uri).unwrap();
    let playlist = client
        .get(media_url.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let seg = playlist.lines().find(|l| l.ends_with(".ts")).unwrap();
    let seg = client
        .get(media_url.join(seg).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(seg.status(), 200);
    assert_eq!(seg.bytes().await.unwrap()[0], 0x47, "MPEG-TS");

    // Poster and thumbnails.
    let poster = client
        .get(a["poster"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(poster.headers()["content-type"], "image/jpeg");
    assert_eq!(
        &poster.bytes().await.unwrap()[..3],
        &[0xFF, 0xD8, 0xFF],
        "a JPEG"
    );
    let vtt = client
        .get(a["thumbnails"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(vtt.starts_with("WEBVTT\n"));
    let (sw, sh) = picture_size(out.join("sprite.jpg").to_str().unwrap());
    let cues: Vec<&str> = vtt.lines().filter(|l| l.contains("#xywh=")).collect();
    assert_eq!(cues.len(), 4, "{vtt}");
    for c in cues {
        let (uri, frag) = c.split_once("#xywh=").unwrap();
        assert_eq!(uri, "sprite.jpg");
        let n: Vec<u32> = frag.split(',').map(|v| v.parse().unwrap()).collect();
        assert!(
            n[0] + n[2] <= sw && n[1] + n[3] <= sh,
            "{c} inside {sw}x{sh}"
        );
    }
    let sprite = client
        .get(o.egress_url(&format!("/assets/{id}/sprite.jpg")))
        .send()
        .await
        .unwrap();
    assert_eq!(sprite.status(), 200);

    // Rename, list, search.
    let r = client
        .patch(o.api_url(&format!("/api/v1/assets/{id}")))
        .header("content-type", "application/json")
        .body(r#"{"title":"Renamed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = client
        .get(o.api_url("/api/v1/assets?status=ready&q=renam"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    assert_eq!(list["assets"][0]["id"], id.as_str());
    assert_eq!(list["assets"][0]["title"], "Renamed");
    let none: Value = client
        .get(o.api_url("/api/v1/assets?q=%25"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    assert_eq!(none["assets"].as_array().unwrap().len(), 0, "% is literal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_and_bad_inputs() {
    let (o, media, _keep) = library_origin("ultrafast");
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 4, "320x180");
    let client = reqwest::Client::new();

    // curl, as a user would.
    let out = curl(&[
        "-sS",
        "-F",
        &format!("file=@{}", src.display()),
        "-F",
        "title=From curl",
        &o.api_url("/api/v1/assets"),
    ]);
    let a: Value = serde_json::from_str(&out).unwrap();
    let good = a["id"].as_str().unwrap().to_owned();
    assert_eq!(a["title"], "From curl");

    // Bad inputs: text, a truncated MP4, nothing.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just some text, not a video\n".repeat(100)).unwrap();
    let bytes = std::fs::read(&src).unwrap();
    let truncated = dir.path().join("cut.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let mut bad = Vec::new();
    for f in [&text, &truncated] {
        let out = curl(&[
            "-sS",
            "-F",
            &format!("file=@{}", f.display()),
            &o.api_url("/api/v1/assets"),
        ]);
        let a: Value = serde_json::from_str(&out).unwrap();
        bad.push(a["id"].as_str().unwrap().to_owned());
    }
    let empty = tus_create(&client, &o, 0, "empty").await;
    bad.push(empty);

    let a = wait_status(&client, &o, &good, "ready", 120).await;
    assert_eq!(a["status"], "ready", "{a:#}");
    assert_eq!(
        a["renditions"].as_array().unwrap().len(),
        1,
        "the lowest rung always"
    );
    assert_eq!(a["renditions"][0]["height"], 240);
    let codes: Vec<String> = {
        let mut v = Vec::new();
        for id in &bad {
            let a = wait_status(&client, &o, id, "errored", 60).await;
            assert_eq!(a["status"], "errored", "{a:#}");
            assert!(!a["error"]["message"].as_str().unwrap().is_empty());
            assert!(
                !a["error"]["message"].as_str().unwrap().contains(".library"),
                "no server path in {a:#}"
            );
            assert!(a["playback"].is_null());
            assert!(
                !media.join("assets").join(id).exists(),
                "no rendition files"
            );
            v.push(a["error"]["code"].as_str().unwrap().to_owned());
        }
        v
    };
    assert_eq!(
        codes,
        ["unreadable_input", "unreadable_input", "empty_file"]
    );

    // An errored asset can be retried (it fails again the same way) and deleted.
    let r = client
        .post(o.api_url(&format!("/api/v1/assets/{}/retry", bad[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "a text file has no probed source to retry");
    let r = client
        .post(o.api_url(&format!("/api/v1/assets/{good}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "a ready asset is not retried");
    for id in &bad {
        let r = client
            .delete(o.api_url(&format!("/api/v1/assets/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert!(!o.data_dir.join(".library/sources").join(id).exists());
    }
    let r = client
        .get(o.api_url(&format!("/api/v1/assets/{}", bad[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Over the size limit: 413 and nothing kept.
    let r = client
        .post(o.api_url("/api/v1/uploads"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", (17u64 << 30).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let list: Value = client
        .get(o.api_url("/api/v1/assets"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    assert_eq!(list["assets"].as_array().unwrap().len(), 1);
}

/// The Python of the virtualenv holding tuspy (scripts/install-deps.sh).
fn tuspy_python() -> PathBuf {
    if let Ok(v) = std::env::var("CASTERPAK_TUSPY_VENV") {
        return PathBuf::from(v).join("bin/python");
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
    cache.join("casterpak/tuspy-1.1.0/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_uploads_in_chunks_and_resumes_with_a_new_client() {
    let (o, _media, _keep) = library_origin("ultrafast");
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 6, "426x240");
    // tus's own Python client: three 32 KiB chunks, then a new uploader for the same URL
    // (which asks the server for the offset with HEAD) sends the rest.
    let script = format!(
        r#"
from tusclient import client
c = client.TusClient("{endpoint}")
u = c.uploader("{path}", chunk_size=32768, metadata={{"filename": "phone.mp4", "title": "From tuspy"}})
for _ in range(3):
    u.upload_chunk()
assert u.offset == 3 * 32768, u.offset
again = c.uploader("{path}", url=u.url, chunk_size=32768)
assert again.offset == 3 * 32768, again.offset
again.upload()
print(u.url)
"#,
        endpoint = o.api_url("/api/v1/uploads"),
        path = src.display()
    );
    let out = Command::new(tuspy_python())
        .args(["-c", &script])
        .output()
        .expect("tuspy (scripts/install-deps.sh)");
    assert!(
        out.status.success(),
        "tuspy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let id = url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        std::fs::read(o.data_dir.join(".library/sources").join(&id)).unwrap(),
        std::fs::read(&src).unwrap()
    );
    let client = reqwest::Client::new();
    let a = wait_status(&client, &o, &id, "ready", 120).await;
    assert_eq!(a["status"], "ready", "{a:#}");
    assert_eq!(a["title"], "From tuspy");
    assert_eq!(a["filename"], "phone.mp4");
}

/// A clip long enough that its transcode is still running when the test acts.
fn long_clip(dir: &Path) -> PathBuf {
    clip(dir, "long.mp4", 120, "1280x720")
}

async fn upload_whole(client: &reqwest::Client, o: &Origin, path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let id = tus_create(client, o, bytes.len() as u64, "long").await;
    let r = tus_patch(client, o, &id, 0, bytes).await;
    assert_eq!(r.status(), 204);
    id
}

async fn wait_transcoding(client: &reqwest::Client, o: &Origin, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = asset(client, o, id).await;
        if a["progress"]["phase"] == "transcode"
            && a["progress"]["percent"].as_f64().unwrap() > 12.0
        {
            return a;
        }
        assert!(Instant::now() < deadline, "no transcode progress: {a:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_during_a_transcode_kills_ffmpeg_and_removes_everything() {
    let (o, media, _keep) = library_origin("medium");
    let dir = tempfile::tempdir().unwrap();
    let src = long_clip(dir.path());
    let client = reqwest::Client::new();
    let id = upload_whole(&client, &o, &src).await;
    let a = wait_transcoding(&client, &o, &id).await;
    assert!(a["progress"]["eta_secs"].is_number(), "{a:#}");
    let pids = pids_with(&id);
    assert_eq!(pids.len(), 1, "one ffmpeg per asset");
    let r = client
        .delete(o.api_url(&format!("/api/v1/assets/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        !Path::new(&format!("/proc/{}", pids[0])).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", pids[0]))
                .is_ok_and(|s| s.contains(") Z")),
        "ffmpeg was killed"
    );
    assert!(pids_with(&id).is_empty());
    // And none starts again: the cancelled job must not queue itself again (it once did,
    // and a new ffmpeg ran on the files being deleted).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        pids_with(&id).is_empty(),
        "an ffmpeg started after the DELETE"
    );
    assert!(!o.log().contains("retrying once"), "{}", o.log());
    assert!(!media.join("assets").join(&id).exists());
    assert!(!media.join("assets/.tmp").join(&id).exists());
    assert!(!o.data_dir.join(".library/sources").join(&id).exists());
    let r = client
        .get(o.api_url(&format!("/api/v1/assets/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_transcode_finishes_the_job() {
    let (mut o, media, _keep) = library_origin("ultrafast");
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "mid.mp4", 60, "1280x720");
    let client = reqwest::Client::new();
    let id = upload_whole(&client, &o, &src).await;
    wait_transcoding(&client, &o, &id).await;
    // A crash: SIGKILL leaves ffmpeg running as an orphan.
    o.kill();
    o.restart();
    let a = wait_status(&client, &o, &id, "ready", 300).await;
    assert_eq!(a["status"], "ready", "{a:#}");
    assert!(pids_with(&id).is_empty(), "no ffmpeg left behind");
    assert!(o.log().contains("interrupted transcode queued again"));
    let rungs = a["renditions"].as_array().unwrap().len();
    assert_eq!(rungs, 4);
    for r in a["renditions"].as_array().unwrap() {
        let f = media
            .join("assets")
            .join(&id)
            .join(format!("{id}_{}.mp4", r["name"].as_str().unwrap()));
        assert!(decodes(f.to_str().unwrap()), "{}", f.display());
    }
    assert!(std::fs::read_dir(media.join("assets/.tmp"))
        .unwrap()
        .next()
        .is_none());
}

/// A stand-in for the ffmpeg program that runs the real one except as told: `hang_first`
/// makes the first call hang without a progress line (a stalled encoder), otherwise every
/// call fails like a crashed encoder. Fault injection around the real ffmpeg.
fn faulty_ffmpeg(dir: &Path, hang_first: bool) -> PathBuf {
    let path = dir.join(if hang_first {
        "ffmpeg-hangs-once"
    } else {
        "ffmpeg-fails"
    });
    let mark = dir.join("hung");
    let body = if hang_first {
        format!(
            "#!/bin/sh\nif [ ! -e '{m}' ]; then touch '{m}'; exec sleep 600; fi\nexec ffmpeg \"$@\"\n",
            m = mark.display()
        )
    } else {
        "#!/bin/sh\necho 'encoder crashed (injected)' >&2\nexit 1\n".to_owned()
    };
    std::fs::write(&path, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_ffmpeg_is_killed_and_retried_once_and_a_failing_one_ends_errored() {
    let dir = tempfile::tempdir().unwrap();
    let src = clip(dir.path(), "src.mp4", 4, "320x180");
    let client = reqwest::Client::new();
    for hang_first in [true, false] {
        let media = tempfile::tempdir().unwrap();
        let ffmpeg = faulty_ffmpeg(dir.path(), hang_first);
        let o = Origin::start(&[
            "--media-root",
            media.path().to_str().unwrap(),
            "--library-preset",
            "ultrafast",
            "--library-stall-secs",
            "5",
            "--library-ffmpeg",
            ffmpeg.to_str().unwrap(),
        ]);
        let id = upload_whole(&client, &o, &src).await;
        let a = wait_status(&client, &o, &id, "ready", 90).await;
        if hang_first {
            assert_eq!(a["status"], "ready", "{a:#}");
            assert!(
                o.log().contains("retrying once"),
                "the stall was a failed attempt"
            );
            assert!(o.log().contains("made no progress for 5 s"));
        } else {
            assert_eq!(a["status"], "errored", "{a:#}");
            assert_eq!(a["error"]["code"], "transcode_failed");
            assert!(a["error"]["log_tail"]
                .as_str()
                .unwrap()
                .contains("encoder crashed (injected)"));
            assert_eq!(
                o.log().matches("retrying once").count(),
                1,
                "one retry, then errored"
            );
            assert!(!media.path().join("assets").join(&id).exists());
        }
    }
}
