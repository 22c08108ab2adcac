//! LiveMix compatibility: its README flow replayed as written, with curl and ffmpeg
//! (`-f hls ... -headers 'Video-Source-Name ... MPEG-TS-URI-Prefix: file:///...' -method POST
//! .../v1/playlist`), ends in a playable recording; its envelope (`success`, `request_id`);
//! file reads outside `livemix.allowed_roots` are refused.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn curl(args: &[&str]) -> Value {
    let out = Command::new("curl")
        .args(["-s", "-H", "X-Request-ID: test-req-1"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("curl {args:?}: not JSON ({e}): {text}"))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livemix_readme_flow_ends_in_a_playable_recording() {
    let cams = tempfile::tempdir().unwrap();
    let root = cams.path().canonicalize().unwrap();
    let origin = Origin::start(&["--livemix-allowed-root", root.to_str().unwrap()]);
    let api = |p: &str| origin.api_url(p);

    // curl -X POST .../v1/source -d '{"name": "test-video", ...}'
    let created = curl(&[
        "-X",
        "POST",
        &api("/v1/source"),
        "-d",
        r#"{"name": "test-video", "description": "Test video source", "segment_len": 2}"#,
    ]);
    assert_eq!(created["success"], true, "{created}");
    assert_eq!(created["request_id"], "test-req-1");
    let source = created["source"].clone();
    assert_eq!(source["name"], "test-video");
    assert_eq!(source["segment_length"], 2);
    assert_eq!(source["streaming"], -1);
    let id = source["id"].as_str().unwrap().to_owned();
    // A second source of the same name is refused.
    let dup = curl(&[
        "-X",
        "POST",
        &api("/v1/source"),
        "-d",
        r#"{"name":"test-video","segment_len":2}"#,
    ]);
    assert_eq!(
        (dup["success"].as_bool(), dup["error"]["code"].as_i64()),
        (Some(false), Some(409))
    );

    // The README's ffmpeg push: segments written to local files, playlists POSTed.
    let headers = format!(
        "Video-Source-Name: test-video\r\nMPEG-TS-URI-Prefix: file://{}\r\n",
        root.display()
    );
    let mut ffmpeg = Killed(
        Command::new("ffmpeg")
            .current_dir(&root)
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x180:rate=30:duration=18",
            ])
            .args([
                "-c:v", "libx264", "-crf", "21", "-preset", "veryfast", "-g", "30", "-an",
            ])
            .args([
                "-sc_threshold",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-strftime",
                "1",
            ])
            .args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "5"])
            .args(["-hls_flags", "delete_segments+independent_segments"])
            .args(["-hls_segment_filename", "test-video-%s.ts"])
            .args(["-headers", &headers])
            .args(["-method", "POST"])
            .arg(origin.ingest_url("/v1/playlist"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let live = origin.egress_url(&format!("/v1/vod/live/{id}/vid.m3u8"));
    // Not streaming yet: no live view.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(client.get(&live).send().await.unwrap().status(), 404);
    let on = curl(&[
        "-X",
        "PUT",
        &api(&format!("/v1/source/{id}/streaming?new_state=true")),
    ]);
    assert_eq!(on["success"], true, "{on}");
    assert!(wait_for_200(&client, &live, Duration::from_secs(10)).await);
    let text = get_text(&client, &live).await;
    let first_ts = text
        .lines()
        .find(|l| l.ends_with(".ts"))
        .unwrap()
        .to_owned();
    let r = client
        .get(origin.egress_url(&format!("/v1/vod/live/{id}/{first_ts}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Record from 6 s ago (once 8 s are archived), stop 4 s later.
    let ranges = origin.api_url("/api/v1/streams/livemix%2Ftest-video/ranges");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v: Value =
            serde_json::from_str(&get_text(&client, &ranges).await).unwrap_or(Value::Null);
        let secs: f64 = v["ranges"]
            .as_array()
            .map(|r| r.iter().filter_map(|x| x["duration"].as_f64()).sum())
            .unwrap_or(0.0);
        if secs >= 8.0 {
            break;
        }
        assert!(Instant::now() < deadline, "only {secs} s archived");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let started = curl(&[
        "-X",
        "POST",
        &api(&format!("/v1/source/{id}/recording")),
        "-d",
        &format!("{{\"start_time_epoch\": {}}}", now_secs() - 6),
    ]);
    assert_eq!(started["success"], true, "{started}");
    let rec = started["recording"]["id"].as_str().unwrap().to_owned();
    assert_eq!(started["recording"]["active"], 1);
    assert_eq!(started["recording"]["source"], id.as_str());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stopped = curl(&["-X", "POST", &api(&format!("/v1/recording/{rec}/stop"))]);
    assert_eq!(stopped["recording"]["active"], -1, "{stopped}");
    assert_ne!(stopped["recording"]["end_ts"], "0001-01-01T00:00:00Z");
    let _ = ffmpeg.0.wait();

    // Its segments, then its replay: a finished playlist that decodes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let replay = origin.egress_url(&format!("/v1/vod/recording/{rec}/vid.m3u8"));
    loop {
        let r = client.get(&replay).send().await.unwrap();
        if r.status() == 200 && r.text().await.unwrap().contains("#EXT-X-ENDLIST") {
            break;
        }
        assert!(Instant::now() < deadline, "recording never finished");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let segs = curl(&[&api(&format!("/v1/recording/{rec}/segment"))]);
    let list = segs["segments"].as_array().unwrap();
    assert!((4..=7).contains(&list.len()), "{segs}");
    let total: f64 = list.iter().map(|s| s["length"].as_f64().unwrap()).sum();
    assert!(
        (total - 10.0).abs() <= 2.1,
        "recording of 10 s holds {total} s"
    );
    let (ok, err) = run(Command::new("ffmpeg").args([
        "-hide_banner",
        "-v",
        "error",
        "-i",
        &replay,
        "-f",
        "null",
        "-",
    ]));
    assert!(ok && err.trim().is_empty(), "replay: {err}");

    // An empty body starts now, not in 1970.
    let now_rec = curl(&[
        "-X",
        "POST",
        &api(&format!("/v1/source/{id}/recording")),
        "-d",
        "{}",
    ]);
    let start = now_rec["recording"]["start_ts"].as_str().unwrap();
    assert!(
        start.starts_with(&time::OffsetDateTime::now_utc().year().to_string()),
        "{now_rec}"
    );
    let listed = curl(&[&api(&format!("/v1/source/{id}/recording"))]);
    assert_eq!(listed["recordings"].as_array().unwrap().len(), 2);
    // Unknown ids are 404 in the envelope.
    let missing = curl(&[&api("/v1/recording/nope")]);
    assert_eq!(
        (
            missing["success"].as_bool(),
            missing["error"]["code"].as_i64()
        ),
        (Some(false), Some(404))
    );
}

#[test]
fn playlist_ingest_refuses_files_outside_the_allowed_roots() {
    let cams = tempfile::tempdir().unwrap();
    let root = cams.path().canonicalize().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.ts"), b"x").unwrap();
    std::fs::write(root.join("ok.ts"), vec![0x47u8; 188]).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.ts"), root.join("link.ts")).unwrap();
    let origin = Origin::start(&["--livemix-allowed-root", root.to_str().unwrap()]);
    curl(&[
        "-X",
        "POST",
        &origin.api_url("/v1/source"),
        "-d",
        r#"{"name":"cam","segment_len":2}"#,
    ]);
    let post = |prefix: &str, name: &str, segment: &str| {
        let playlist = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{segment}\n"
        );
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .args(["-H", &format!("Video-Source-Name: {name}")])
            .args(["-H", &format!("MPEG-TS-URI-Prefix: {prefix}")])
            .args(["--data-binary", &playlist])
            .arg(origin.ingest_url("/v1/playlist"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let inside = format!("file://{}", root.display());
    let elsewhere = format!("file://{}", outside.path().display());
    assert_eq!(post(&inside, "cam", "ok.ts"), "200");
    assert!(origin.data_dir.join("livemix/cam/ok.ts").exists());
    assert_eq!(post(&elsewhere, "cam", "secret.ts"), "403");
    assert_eq!(post(&inside, "cam", "../secret.ts"), "403");
    assert_eq!(
        post(&inside, "cam", "link.ts"),
        "403",
        "a symlink out of the root"
    );
    assert_eq!(post("http://example.invalid/x", "cam", "ok.ts"), "400");
    assert_eq!(post(&inside, "nobody", "ok.ts"), "404");
    assert!(!origin.data_dir.join("livemix/cam/secret.ts").exists());
    assert!(!origin.data_dir.join("livemix/cam/link.ts").exists());
}
