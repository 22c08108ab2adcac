//! The archive, recordings and the management API with real ffmpeg pushes: a recording
//! started 20 s in the past and stopped 10 s later replays as HLS and DASH of that length
//! (ffprobe), from segments the encoder already DELETEd; it survives a SIGKILL; an encoder
//! restart makes a second session that never overwrites the first and replays across the
//! discontinuity; a disabled stream's pushes store nothing. Must-fail cases: a start
//! outside the archive (409) and a deleted recording's playlist (404).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The path and query of an absolute URL.
fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/')
        .map_or("/".to_owned(), |i| rest[i..].to_owned())
}

async fn api(
    client: &reqwest::Client,
    method: &str,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let url_text = url.clone();
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    // Every API answer of these tests is checked against the OpenAPI document.
    let path = url_path(&url_text);
    if path.starts_with("/api/v1/") {
        common::openapi::assert_conforms(method, &path, status, &v);
    }
    (status, v)
}

/// Archived seconds of `stream` (newest - oldest), 0 when none.
async fn archived_secs(client: &reqwest::Client, origin: &Origin, stream: &str) -> f64 {
    let name = stream.replace('/', "%2F");
    let (status, v) = api(
        client,
        "GET",
        origin.api_url(&format!("/api/v1/streams/{name}/ranges")),
        None,
    )
    .await;
    if status != 200 {
        return 0.0;
    }
    v["ranges"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|x| x["duration"].as_f64().unwrap_or(0.0))
                .sum()
        })
        .unwrap_or(0.0)
}

async fn wait_archived(
    client: &reqwest::Client,
    origin: &Origin,
    stream: &str,
    secs: f64,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = archived_secs(client, origin, stream).await;
        if got >= secs {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {got} s of {stream} archived after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_state(
    client: &reqwest::Client,
    origin: &Origin,
    id: &str,
    state: &str,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, v) = api(
            client,
            "GET",
            origin.api_url(&format!("/api/v1/recordings/{id}")),
            None,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        if v["state"] == state {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "recording never became {state}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// ffprobe's format duration of a URL, in seconds.
fn probe_duration(url: &str) -> f64 {
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
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().unwrap_or_else(|_| {
        panic!(
            "ffprobe {url}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn decodes(url: &str) -> (bool, String) {
    let (ok, err) = run(Command::new("ffmpeg").args([
        "-hide_banner",
        "-v",
        "error",
        "-i",
        url,
        "-f",
        "null",
        "-",
    ]));
    (ok && err.trim().is_empty(), err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_from_the_past_replays_as_hls_and_dash_and_survives_a_crash() {
    // Encoder DELETEs take effect at once: the archive alone keeps old segments.
    let mut origin = Origin::start(&["--delete-retention-secs", "0"]);
    let _ffmpeg = ffmpeg_ldash_push(&origin, "a", 48, &[]);
    let client = reqwest::Client::new();
    wait_archived(&client, &origin, "live/a", 23.0, Duration::from_secs(45)).await;

    // The stream as the API lists it.
    let (status, streams) = api(&client, "GET", origin.api_url("/api/v1/streams"), None).await;
    assert_eq!(status, 200);
    let s = streams["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "live/a")
        .unwrap_or_else(|| panic!("live/a not listed: {streams}"))
        .clone();
    assert_eq!(s["state"], "live");
    assert_eq!(s["sessions"], 1);
    assert_eq!(s["representations"].as_array().unwrap().len(), 3);
    assert_eq!(s["urls"]["dash"], origin.egress_url("/live/a/stream.mpd"));

    // Must fail: a start an hour before the archive.
    let (status, v) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/recordings"),
        Some(json!({"stream": "live/a", "start": now_secs() - 3600.0})),
    )
    .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "conflict");
    // Bad input: an end before the start, a bad time, a missing stream.
    let (status, _) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/recordings"),
        Some(json!({"stream": "live/a", "start": now_secs(), "end": now_secs() - 5.0})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/recordings"),
        Some(json!({"stream": "live/a", "start": "yesterday"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/recordings"),
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(status, 400);

    // Start 20 s in the past (RFC 3339 accepted as well as Unix seconds).
    let start = now_secs() - 20.0;
    let start_text = time::OffsetDateTime::from_unix_timestamp_nanos((start * 1e9) as i128)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, rec) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/recordings"),
        Some(json!({"stream": "live/a", "start": start_text, "title": "last 20 s and 10 more"})),
    )
    .await;
    assert_eq!(status, 201, "{rec}");
    assert_eq!(rec["state"], "recording", "{rec}");
    let id = rec["id"].as_str().unwrap().to_owned();
    let hls = rec["urls"]["hls"].as_str().unwrap().to_owned();
    let dash = rec["urls"]["dash"].as_str().unwrap().to_owned();
    assert_eq!(
        hls,
        origin.egress_url(&format!("/recordings/{id}/master.m3u8"))
    );
    // While recording: an EVENT playlist without ENDLIST, a dynamic MPD.
    let media = get_text(
        &client,
        origin.egress_url(&format!("/recordings/{id}/media_0.m3u8")),
    )
    .await;
    assert!(media.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{media}");
    assert!(!media.contains("#EXT-X-ENDLIST"));
    assert!(get_text(&client, &dash).await.contains("type=\"dynamic\""));

    tokio::time::sleep(Duration::from_secs(10)).await;
    let (status, stopped) = api(
        &client,
        "POST",
        origin.api_url(&format!("/api/v1/recordings/{id}/stop")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{stopped}");
    let done = wait_state(&client, &origin, &id, "done", Duration::from_secs(6)).await;
    let secs = done["duration_secs"].as_f64().unwrap();
    assert!(
        (secs - 30.0).abs() <= 2.1,
        "recording covers {secs} s, asked 30: {done}"
    );

    // Stopping twice is a conflict; title and description can change.
    let (status, _) = api(
        &client,
        "POST",
        origin.api_url(&format!("/api/v1/recordings/{id}/stop")),
        None,
    )
    .await;
    assert_eq!(status, 409);
    let (status, v) = api(
        &client,
        "PATCH",
        origin.api_url(&format!("/api/v1/recordings/{id}")),
        Some(json!({"title": "renamed", "description": "desc"})),
    )
    .await;
    assert_eq!((status, v["title"].as_str()), (200, Some("renamed")));

    // The replays: VOD playlist with ENDLIST and PDT on every segment, static MPD; both
    // have the requested 30 s within one segment, and decode without error.
    let media = get_text(
        &client,
        origin.egress_url(&format!("/recordings/{id}/media_0.m3u8")),
    )
    .await;
    assert!(
        media.contains("#EXT-X-PLAYLIST-TYPE:VOD") && media.contains("#EXT-X-ENDLIST"),
        "{media}"
    );
    assert_eq!(
        media.matches("#EXT-X-PROGRAM-DATE-TIME").count(),
        media.matches("#EXTINF").count()
    );
    let mpd = get_text(&client, &dash).await;
    assert!(
        mpd.contains("type=\"static\"") && mpd.contains("mediaPresentationDuration"),
        "{mpd}"
    );
    for url in [&hls, &dash] {
        let d = probe_duration(url);
        assert!(
            (d - 30.0).abs() <= 2.1,
            "{url}: ffprobe duration {d}, asked 30"
        );
    }
    let (ok, err) = decodes(&hls);
    assert!(ok, "HLS replay does not decode cleanly: {err}");
    let (ok, err) = decodes(&dash);
    assert!(ok, "DASH replay does not decode cleanly: {err}");

    // The MP4 download: one video rendition plus audio, decodes cleanly with the asked
    // duration, and answers Range with 206 and an ETag.
    let mp4 = rec["urls"]["mp4"].as_str().unwrap().to_owned();
    assert_eq!(
        mp4,
        origin.egress_url(&format!("/recordings/{id}/download.mp4"))
    );
    let d = probe_duration(&mp4);
    assert!((d - 30.0).abs() <= 2.1, "MP4 duration {d}, asked 30");
    let (ok, err) = decodes(&mp4);
    assert!(ok, "MP4 download does not decode cleanly: {err}");
    // The download (a fragmented MP4) is itself a VOD input: packaged as HLS-TS and as
    // CMAF HLS, every segment decodes.
    {
        let bytes = client
            .get(&mp4)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("rec.mp4"), &bytes).unwrap();
        let vod = casterpak::vod::Vod::new(&casterpak::vod::config::VodConfig {
            media_root: root.path().to_string_lossy().into_owned(),
            ..Default::default()
        })
        .unwrap();
        use casterpak::vod::csmil::Format;
        for (format, playlist) in [
            (Format::Ts, "index_0_av.m3u8"),
            (Format::Cmaf, "index_0_v.m3u8"),
            (Format::Cmaf, "index_0_a.m3u8"),
        ] {
            let out = root.path().join(format!("{format:?}_{playlist}"));
            std::fs::create_dir_all(&out).unwrap();
            let get = |p: String| {
                let vod = &vod;
                async move {
                    vod.respond_as(format, &p, None)
                        .await
                        .unwrap_or_else(|e| panic!("{p}: {e}"))
                        .body
                }
            };
            let text = get(format!("rec.mp4/{playlist}")).await;
            for l in String::from_utf8_lossy(&text).lines() {
                let name = match l.find("URI=\"") {
                    Some(at) => l[at + 5..].split('"').next().unwrap().to_string(),
                    None if !l.starts_with('#') && !l.is_empty() => l.to_string(),
                    None => continue,
                };
                std::fs::write(out.join(&name), get(format!("rec.mp4/{name}")).await).unwrap();
            }
            std::fs::write(out.join(playlist), &text).unwrap();
            let (ok, err) = decodes(&out.join(playlist).to_string_lossy());
            assert!(ok, "the download packaged as {format:?} {playlist}: {err}");
        }
    }
    let streams = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,width",
            "-of",
            "csv=p=0",
            &mp4,
        ])
        .output()
        .unwrap();
    let streams = String::from_utf8_lossy(&streams.stdout).into_owned();
    assert_eq!(
        streams.lines().count(),
        2,
        "one video and one audio track: {streams}"
    );
    assert!(
        streams.contains("video,640"),
        "the highest rendition by default: {streams}"
    );
    let r = client
        .get(&mp4)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.headers().contains_key("etag"));
    assert_eq!(r.bytes().await.unwrap().len(), 100);
    let full_len = client.head(&mp4).send().await.unwrap().headers()["content-length"]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert!(full_len > 1_000_000, "{full_len}");

    // The first replayed segment was deleted by the encoder from the live window (window
    // 5 + 5 segments, retention 0), yet the replay serves it from the archive.
    let first_uri = media
        .lines()
        .find(|l| l.starts_with("/archive/"))
        .unwrap()
        .to_owned();
    let file = first_uri.rsplit('/').next().unwrap();
    assert!(
        !origin.data_dir.join("live/a").join(file).exists(),
        "{file} should have been DELETEd from the live window by now"
    );
    let r = client
        .get(origin.egress_url(&first_uri))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));

    // SIGKILL and restart: the recording and its replay are still there.
    origin.kill();
    origin.restart();
    // The DVR window survives: a segment the encoder DELETEd is still served under its live
    // name, and the archive index came back without a folder scan.
    let r = client
        .get(origin.egress_url(&format!("/live/a/{file}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{file} after the restart");
    let (status, after) = api(
        &client,
        "GET",
        origin.api_url(&format!("/api/v1/recordings/{id}")),
        None,
    )
    .await;
    assert_eq!(
        (status, after["state"].as_str()),
        (200, Some("done")),
        "{after}"
    );
    let media_after = get_text(
        &client,
        origin.egress_url(&format!("/recordings/{id}/media_0.m3u8")),
    )
    .await;
    assert_eq!(media_after, media, "the replay changed across the restart");
    let (status, list) = api(
        &client,
        "GET",
        origin.api_url("/api/v1/recordings?stream=live/a&state=done"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["recordings"].as_array().unwrap().len(), 1);

    // Deleting it: its playlists are gone (must-fail), a second delete is 404.
    let (status, _) = api(
        &client,
        "DELETE",
        origin.api_url(&format!("/api/v1/recordings/{id}")),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let r = client.get(&hls).send().await.unwrap();
    assert_eq!(r.status(), 404, "a deleted recording must not play");
    let (status, v) = api(
        &client,
        "DELETE",
        origin.api_url(&format!("/api/v1/recordings/{id}")),
        None,
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoder_restart_is_a_new_session_that_never_overwrites_the_first() {
    let origin = Origin::start(&[]);
    let client = reqwest::Client::new();
    let t0 = now_secs();
    {
        let mut first = ffmpeg_ldash_push(&origin, "s", 9, &[]);
        let _ = first.0.wait();
    }
    wait_archived(&client, &origin, "live/s", 6.0, Duration::from_secs(10)).await;
    let first_seg = origin.data_dir.join(".archive");
    let session_dirs = |dir: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sessions = session_dirs(&first_seg);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let s1_file = first_seg.join(&sessions[0]).join("chunk-stream0-00001.m4s");
    let s1_bytes = std::fs::read(&s1_file).unwrap();
    // A new ffmpeg run reuses the same names.
    {
        let mut second = ffmpeg_ldash_push(&origin, "s", 9, &[]);
        let _ = second.0.wait();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while session_dirs(&first_seg).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sessions = session_dirs(&first_seg);
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(
        std::fs::read(&s1_file).unwrap(),
        s1_bytes,
        "session 1 overwritten"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, ranges) = api(
        &client,
        "GET",
        origin.api_url("/api/v1/streams/live%2Fs/ranges"),
        None,
    )
    .await;
    assert_eq!(ranges["ranges"].as_array().unwrap().len(), 2, "{ranges}");

    // A recording over both sessions: a discontinuity and a new EXT-X-MAP; DASH has two
    // Periods; both decode across the break.
    let (status, rec) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/recordings"),
        Some(json!({"stream": "live/s", "start": t0, "end": now_secs()})),
    )
    .await;
    assert_eq!(status, 201, "{rec}");
    let id = rec["id"].as_str().unwrap();
    wait_state(&client, &origin, id, "done", Duration::from_secs(12)).await;
    let media = get_text(
        &client,
        origin.egress_url(&format!("/recordings/{id}/media_0.m3u8")),
    )
    .await;
    assert_eq!(media.matches("#EXT-X-DISCONTINUITY").count(), 1, "{media}");
    assert_eq!(media.matches("#EXT-X-MAP").count(), 2, "{media}");
    let mpd = get_text(
        &client,
        origin.egress_url(&format!("/recordings/{id}/manifest.mpd")),
    )
    .await;
    assert_eq!(mpd.matches("<Period ").count(), 2, "{mpd}");
    let (ok, err) = decodes(rec["urls"]["hls"].as_str().unwrap());
    assert!(ok, "HLS replay across sessions: {err}");
    // The MP4 of a recording over two sessions needs a chosen session.
    let mp4 = rec["urls"]["mp4"].as_str().unwrap();
    assert_eq!(client.get(mp4).send().await.unwrap().status(), 422);
    let first = sessions[0].clone();
    let (ok, err) = decodes(&format!("{mp4}?session={first}&video=1"));
    assert!(ok, "MP4 of one session: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_stream_stores_nothing_and_is_not_served() {
    let origin = Origin::start(&[]);
    let client = reqwest::Client::new();
    // Unknown streams are 404; a known one can be disabled.
    let (status, _) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/streams/live%2Fd/disable"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let put = |path: &str, body: &'static str| {
        let url = origin.ingest_url(path);
        let client = client.clone();
        async move { client.put(url).body(body).send().await }
    };
    assert_eq!(
        put("/live/d/stream.mpd", "<MPD/>").await.unwrap().status(),
        201
    );
    let (status, v) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/streams/live%2Fd/disable"),
        None,
    )
    .await;
    assert_eq!((status, v["disabled"].as_bool()), (200, Some(true)), "{v}");

    // The push is refused with a closed connection and nothing is stored or served.
    let raw = raw_exchange(
        origin.ingest,
        b"PUT /live/d/seg1.m4s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        Duration::from_secs(3),
    );
    assert_eq!(statuses(&raw), vec![403], "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains("connection: close"),
        "{raw}"
    );
    assert!(!origin.data_dir.join("live/d/seg1.m4s").exists());
    let r = client
        .get(origin.egress_url("/live/d/stream.mpd"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Another stream is not disturbed.
    assert_eq!(put("/live/other/x.m4s", "ok").await.unwrap().status(), 201);

    // The flag survives a restart... and enabling lets pushes in again.
    let (status, v) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/streams/live%2Fd/enable"),
        None,
    )
    .await;
    assert_eq!((status, v["disabled"].as_bool()), (200, Some(false)));
    assert!(put("/live/d/seg1.m4s", "hello")
        .await
        .unwrap()
        .status()
        .is_success());
    let r = client
        .get(origin.egress_url("/live/d/seg1.m4s"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The OpenAPI document is served and names every route the tests use.
    let (status, doc) = api(&client, "GET", origin.api_url("/api/v1/openapi.json"), None).await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/streams",
        "/api/v1/streams/{name}/ranges",
        "/api/v1/recordings",
        "/api/v1/recordings/{id}/stop",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let r = client
        .get(origin.api_url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dvr_window_and_time_range_views_of_a_live_stream() {
    let origin = Origin::start(&["--delete-retention-secs", "0", "--dvr-window-secs", "24"]);
    let _ffmpeg = ffmpeg_ldash_push(&origin, "v", 44, &[]);
    let client = reqwest::Client::new();
    wait_archived(&client, &origin, "live/v", 32.0, Duration::from_secs(50)).await;

    // LL-HLS lists the whole DVR window (ffmpeg keeps 10 segments = 20 s and DELETEs the
    // rest, which retention 0 removes at once), parts only for the last 3 target durations.
    let media = get_text(&client, origin.egress_url("/live/v/llhls_0.m3u8")).await;
    let listed: Vec<&str> = media.lines().filter(|l| l.starts_with("chunk-")).collect();
    assert!(
        listed.len() >= 11,
        "{} segments listed, the 24 s window needs 11 or more:\n{media}",
        listed.len()
    );
    let with_parts = media
        .split("#EXTINF")
        .filter(|chunk| chunk.contains("#EXT-X-PART:"))
        .count();
    assert!(with_parts <= 5, "parts on {with_parts} segments:\n{media}");
    // The oldest listed segment is gone from the live folder but still served.
    let oldest = listed[0];
    assert!(
        !origin.data_dir.join("live/v").join(oldest).exists(),
        "{oldest} not deleted yet"
    );
    let r = client
        .get(origin.egress_url(&format!("/live/v/{oldest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "{oldest} of the DVR window must stay fetchable"
    );
    // ?dvr= narrows (0 = pure live), never widens past the setting; delta updates skip.
    let pure = get_text(&client, origin.egress_url("/live/v/llhls_0.m3u8?dvr=0")).await;
    let narrow = get_text(&client, origin.egress_url("/live/v/llhls_0.m3u8?dvr=10")).await;
    let wide = get_text(&client, origin.egress_url("/live/v/llhls_0.m3u8?dvr=1000")).await;
    let n = |t: &str| count(t, "#EXTINF");
    assert!(
        n(&pure) < n(&narrow) && n(&narrow) < n(&wide),
        "{} {} {}",
        n(&pure),
        n(&narrow),
        n(&wide)
    );
    assert!(n(&wide) <= n(&media) + 1);
    let delta = get_text(
        &client,
        origin.egress_url("/live/v/llhls_0.m3u8?_HLS_skip=YES"),
    )
    .await;
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{delta}");
    let mv = get_text(&client, origin.egress_url("/live/v/llhls.m3u8?dvr=10")).await;
    assert!(mv.contains("llhls_0.m3u8?dvr=10"), "{mv}");
    // The MPD's timeShiftBufferDepth is the window, constant across reloads.
    for _ in 0..2 {
        let mpd = get_text(&client, origin.egress_url("/live/v/stream.mpd")).await;
        assert!(mpd.contains("timeShiftBufferDepth=\"PT24.000S\""), "{mpd}");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let mpd = get_text(&client, origin.egress_url("/live/v/stream.mpd?dvr=10")).await;
    assert!(mpd.contains("timeShiftBufferDepth=\"PT10.000S\""), "{mpd}");

    // Time-range views. Both in the past: VOD.
    let now = now_secs();
    let q = format!("start={:.3}&end={:.3}", now - 20.0, now - 10.0);
    let mv = get_text(
        &client,
        origin.egress_url(&format!("/live/v/llhls.m3u8?{q}")),
    )
    .await;
    assert!(
        mv.contains(&format!("llhls_0.m3u8?{q}")),
        "the query carries:\n{mv}"
    );
    let vod = get_text(
        &client,
        origin.egress_url(&format!("/live/v/llhls_0.m3u8?{q}")),
    )
    .await;
    assert!(
        vod.contains("#EXT-X-PLAYLIST-TYPE:VOD") && vod.contains("#EXT-X-ENDLIST"),
        "{vod}"
    );
    assert!(vod.contains(",PRECISE=YES"), "{vod}");
    assert!(vod
        .lines()
        .filter(|l| l.starts_with("/archive/"))
        .all(|l| l.ends_with(&q)));
    let d = probe_duration(&origin.egress_url(&format!("/live/v/llhls.m3u8?{q}")));
    assert!((10.0..=14.1).contains(&d), "VOD view of 10 s lasts {d} s");
    let (ok, err) = decodes(&origin.egress_url(&format!("/live/v/llhls.m3u8?{q}")));
    assert!(ok, "{err}");
    let mpd = get_text(
        &client,
        origin.egress_url(&format!("/live/v/stream.mpd?{q}")),
    )
    .await;
    assert!(mpd.contains("type=\"static\""), "{mpd}");
    let d = probe_duration(&origin.egress_url(&format!("/live/v/stream.mpd?{q}")));
    assert!(
        (9.0..=14.1).contains(&d),
        "static MPD view of 10 s lasts {d} s"
    );
    // Start only, or an end in the future: a growing EVENT view, dynamic MPD.
    for q in [
        format!("start={:.3}", now - 10.0),
        format!("start={:.3}&end={:.3}", now - 10.0, now + 30.0),
    ] {
        let ev = get_text(
            &client,
            origin.egress_url(&format!("/live/v/llhls_0.m3u8?{q}")),
        )
        .await;
        assert!(
            ev.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !ev.contains("#EXT-X-ENDLIST"),
            "{ev}"
        );
        let mpd = get_text(
            &client,
            origin.egress_url(&format!("/live/v/stream.mpd?{q}")),
        )
        .await;
        assert!(mpd.contains("type=\"dynamic\""), "{mpd}");
    }
    // Outside the archive: 404 with a JSON reason; too long or malformed: 400.
    for (q, status) in [
        (
            format!("start={:.0}&end={:.0}", now - 7200.0, now - 3600.0),
            404,
        ),
        (format!("start={:.0}&end={:.0}", now - 100_000.0, now), 400),
        ("start=yesterday".to_owned(), 400),
        (
            format!("start={:.0}&end={:.0}", now - 10.0, now - 20.0),
            400,
        ),
    ] {
        for path in [
            "/live/v/llhls_0.m3u8",
            "/live/v/stream.mpd",
            "/live/v/llhls.m3u8",
        ] {
            let r = client
                .get(origin.egress_url(&format!("{path}?{q}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), status, "{path}?{q}");
            let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            assert!(v["error"]["message"].is_string(), "{v}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hls_ts_push_is_archived_and_replays_as_hls() {
    let origin = Origin::start(&["--delete-retention-secs", "0"]);
    let client = reqwest::Client::new();
    let t0 = now_secs();
    // ffmpeg -f hls by PUT, keeping 3 segments and DELETEing older ones.
    let (ok, err) = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=30:duration=14",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000:duration=14",
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30",
        ])
        .args(["-c:a", "aac", "-b:a", "96k", "-ar", "48000"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "3"])
        .args(["-hls_flags", "delete_segments", "-method", "PUT"])
        .arg(origin.ingest_url("/live/h/index.m3u8")));
    assert!(ok, "ffmpeg: {err}");
    wait_archived(&client, &origin, "live/h", 12.0, Duration::from_secs(10)).await;
    assert!(
        !origin.data_dir.join("live/h/index0.ts").exists(),
        "the encoder's DELETE removed the first segment from the live folder"
    );
    let (status, rec) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/recordings"),
        Some(json!({"stream": "live/h", "start": t0, "end": now_secs()})),
    )
    .await;
    assert_eq!(status, 201, "{rec}");
    let id = rec["id"].as_str().unwrap();
    wait_state(&client, &origin, id, "done", Duration::from_secs(12)).await;
    let media = get_text(
        &client,
        origin.egress_url(&format!("/recordings/{id}/media_index.m3u8")),
    )
    .await;
    assert!(
        !media.contains("#EXT-X-MAP"),
        "TS: no init section\n{media}"
    );
    assert!(media.contains("/index0.ts"), "{media}");
    let hls = rec["urls"]["hls"].as_str().unwrap();
    let d = probe_duration(hls);
    assert!((d - 14.0).abs() <= 2.1, "TS replay lasts {d} s, pushed 14");
    let (ok, err) = decodes(hls);
    assert!(ok, "TS replay: {err}");
    // TS pushes have no DASH or MP4 replay.
    let r = client
        .get(rec["urls"]["dash"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// A webhook receiver on a free port: answers 500 to the first POST, 200 after; keeps
/// every (headers, body) it got.
/// (headers, body) of every webhook delivery received.
type Deliveries = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

fn webhook_receiver() -> (u16, Deliveries) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let got2 = std::sync::Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let n = {
                let mut g = got2.lock().unwrap();
                g.push((head, String::from_utf8_lossy(&body).into_owned()));
                g.len()
            };
            let status = if n == 1 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_recording_starts_with_its_stream_and_events_reach_sse_and_webhooks() {
    let (port, hooks) = webhook_receiver();
    let hook_url = format!("http://127.0.0.1:{port}/hook");
    let origin = Origin::start(&[
        "--webhook-url",
        &hook_url,
        "--webhook-secret",
        "s3cret",
        "--stream-idle-secs",
        "3",
    ]);
    let client = reqwest::Client::new();
    // Server-sent events, read in the background.
    let sse = client
        .get(origin.api_url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert!(sse.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen2 = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut body = sse.bytes_stream();
        while let Some(Ok(chunk)) = body.next().await {
            seen2
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk));
        }
    });

    // A recording of a stream that is not live yet waits as pending; 6 s at most.
    let (status, rec) = api(
        &client,
        "POST",
        origin.api_url("/api/v1/recordings"),
        Some(json!({"stream": "live/p", "max_duration_secs": 6, "title": "auto-stop"})),
    )
    .await;
    assert_eq!(status, 201, "{rec}");
    assert_eq!(rec["state"], "pending");
    assert!(
        rec["end"].is_string(),
        "max_duration_secs sets the end: {rec}"
    );
    let id = rec["id"].as_str().unwrap().to_owned();
    let mut ffmpeg = ffmpeg_ldash_push(&origin, "p", 10, &[]);
    wait_state(&client, &origin, &id, "recording", Duration::from_secs(15)).await;
    let done = wait_state(&client, &origin, &id, "done", Duration::from_secs(15)).await;
    let secs = done["duration_secs"].as_f64().unwrap();
    assert!(secs > 1.0 && secs <= 6.5, "auto-stopped after {secs} s");
    let (ok, err) = decodes(done["urls"]["hls"].as_str().unwrap());
    assert!(ok, "{err}");
    let _ = ffmpeg.0.wait();

    // stream.started, recording.started, recording.stopped, stream.ended, in that order.
    let deadline = Instant::now() + Duration::from_secs(15);
    let order = [
        "stream.started",
        "recording.started",
        "recording.stopped",
        "stream.ended",
    ];
    loop {
        let text = seen.lock().unwrap().clone();
        let pos: Vec<Option<usize>> = order
            .iter()
            .map(|k| text.find(&format!("event: {k}\n")))
            .collect();
        if pos.iter().all(Option::is_some) {
            let p: Vec<usize> = pos.into_iter().flatten().collect();
            assert!(
                p.windows(2).all(|w| w[0] < w[1]),
                "events out of order:\n{text}"
            );
            assert!(text.contains(&format!("\"id\":\"{id}\"")), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "missing events:\n{text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The webhooks: the same events, signed; the refused first delivery was retried.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = hooks.lock().unwrap().clone();
        let kinds: Vec<&str> = got
            .iter()
            .filter_map(|(_, b)| serde_json::from_str::<Value>(b).ok())
            .filter_map(|v| {
                v["type"]
                    .as_str()
                    .map(|s| order.iter().find(|k| **k == s).copied())
            })
            .flatten()
            .collect();
        if order.iter().all(|k| kinds.contains(k)) {
            assert_eq!(
                got[0].1, got[1].1,
                "the first delivery (refused) is retried"
            );
            for (head, body) in &got {
                let sig = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("x-casterpak-signature: ")
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| panic!("unsigned webhook: {head}"));
                let out = Command::new("openssl")
                    .args(["dgst", "-sha256", "-hmac", "s3cret", "-r"])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .and_then(|mut c| {
                        use std::io::Write;
                        c.stdin.take().unwrap().write_all(body.as_bytes())?;
                        c.wait_with_output()
                    })
                    .unwrap();
                let hexd = String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned();
                assert_eq!(sig.trim(), format!("sha256={hexd}"), "signature of {body}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "webhooks got {kinds:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
