//! A real ffmpeg LL-DASH push (2 video renditions + audio) into the real binary, read back
//! over HTTP while it is being uploaded, checked against the persisted files, and decoded
//! by ffmpeg/ffprobe from the MPD.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use casterpak::cmaf::{BoxScanner, ScanEvent};
use common::*;
use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldash_push_is_streamed_chunk_by_chunk_persisted_and_decodable() {
    let origin = Origin::start(&["--stream-idle-secs", "2"]);
    let mut _ffmpeg = ffmpeg_ldash_push(&origin, "t", 16, &[]);
    let client = reqwest::Client::new();
    let mpd_url = origin.egress_url("/live/t/stream.mpd");
    assert!(
        wait_for_200(&client, &mpd_url, Duration::from_secs(15)).await,
        "MPD never appeared; origin log:\n{}",
        origin.log()
    );

    // Wait until segment 2 of representation 0 is being uploaded, then ask for segment 3
    // before its upload starts: the origin holds the request, then streams the upload.
    let seg2 = origin.egress_url("/live/t/chunk-stream0-00002.m4s");
    assert!(wait_for_200(&client, &seg2, Duration::from_secs(10)).await);
    let seg3 = origin.egress_url("/live/t/chunk-stream0-00003.m4s");
    let asked = Instant::now();
    let resp = client.get(&seg3).send().await.unwrap();
    assert_eq!(resp.status(), 200, "held request must end in 200");
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert!(
        resp.headers().get("content-length").is_none(),
        "in-progress: chunked"
    );
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let mut body = Vec::new();
    let mut scanner = BoxScanner::new();
    let mut events = Vec::new();
    let mut first_chunk_at = None;
    let mut stream = resp.bytes_stream();
    while let Some(part) = stream.next().await {
        let part = part.expect("clean end of a complete upload");
        body.extend_from_slice(&part);
        scanner.feed(&part, &mut events).unwrap();
        if first_chunk_at.is_none() && events.iter().any(|e| matches!(e, ScanEvent::Chunk(_))) {
            first_chunk_at = Some(Instant::now());
        }
    }
    let ended = Instant::now();
    let first = first_chunk_at.expect("a complete CMAF chunk arrived");
    let chunks = events
        .iter()
        .filter(|e| matches!(e, ScanEvent::Chunk(_)))
        .count();
    assert_eq!(chunks, 4, "2 s segment of 0.5 s CMAF chunks");
    let lead = ended - first;
    assert!(
        lead >= Duration::from_millis(1000),
        "first CMAF chunk only {lead:?} before the end of the segment (asked {:?} before the end)",
        ended - asked
    );

    // Unknown paths 404 at once, also a far-future segment of a live representation.
    for path in [
        "/live/t/nothing.m4s",
        "/live/t/chunk-stream0-00099.m4s",
        "/live/none/stream.mpd",
    ] {
        let t = Instant::now();
        let r = client.get(origin.egress_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert!(t.elapsed() < Duration::from_millis(500), "{path} was held");
    }

    // ffmpeg decodes the live MPD over HTTP.
    let (ok, err) = run(Command::new("ffmpeg").args([
        "-hide_banner",
        "-v",
        "error",
        "-i",
        &mpd_url,
        "-t",
        "3",
        "-f",
        "null",
        "-",
    ]));
    assert!(ok, "ffmpeg could not decode the live MPD: {err}");

    // The streamed bytes equal the finished object and the persisted file.
    let full = client.get(&seg3).send().await.unwrap();
    assert_eq!(full.status(), 200);
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        full.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert_eq!(
        full.headers()["cache-control"],
        "public, max-age=86400, immutable"
    );
    assert_eq!(full.bytes().await.unwrap(), body);
    let persisted = origin.data_dir.join("live/t/chunk-stream0-00003.m4s");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !persisted.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read(&persisted).unwrap(),
        body,
        "persisted file differs"
    );

    // Conditional and range requests on a finished segment.
    let r = client
        .get(&seg3)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = client
        .get(&seg3)
        .header("range", "bytes=0-23")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), body[..24]);
    let r = client.head(&seg3).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        body.len().to_string().as_str()
    );

    // The audio representation is served as audio.
    let r = client
        .head(origin.egress_url("/live/t/chunk-stream2-00002.m4s"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "audio/mp4");

    // The MPD's clock points at the origin and keeps ffmpeg's low-latency attributes.
    let mpd = client.get(&mpd_url).send().await.unwrap();
    assert_eq!(mpd.headers()["content-type"], "application/dash+xml");
    let text = mpd.text().await.unwrap();
    assert!(text.contains(&format!("value=\"http://{}/time\"", origin.egress)));
    assert!(text.contains("availabilityTimeComplete=\"false\""));
    assert!(text.contains("<Latency"));

    // Streams are listed for the player page.
    let list: serde_json::Value =
        serde_json::from_str(&get_text(&client, origin.egress_url("/streams")).await).unwrap();
    assert_eq!(list["streams"][0]["name"], "live/t");
    assert_eq!(
        list["streams"][0]["manifests"][0]["url"],
        "/live/t/stream.mpd"
    );

    // After the push ends: ffmpeg 5.1 exits without finishing its last chunked bodies (the
    // last segment and often the final static MPD arrive cut). A cut upload must never
    // replace the last good object: the MPD served is still complete, well-formed XML.
    let deadline = Instant::now() + Duration::from_secs(30);
    while _ffmpeg.0.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "ffmpeg did not end");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = client.get(&mpd_url).send().await.unwrap();
    assert_eq!(last.status(), 200);
    let text = last.text().await.unwrap();
    let parsed = casterpak::live::mpd::Mpd::parse(text.as_bytes()).expect("complete MPD");
    assert_eq!(parsed.representations().len(), 3);
    // The stream is listed as ended once uploads stop (--stream-idle-secs 2).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let list = get_text(&client, origin.egress_url("/streams")).await;
    assert!(list.contains("\"state\":\"ended\""), "{list}");
}
