//! ffmpeg `-f hls` pushes (PUT and POST, TS and fMP4, one and several renditions, one
//! connection per request with `Connection: close`) into the real binary: playlists served
//! as uploaded, segments served and persisted.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use casterpak::cmaf::{BoxScanner, ScanEvent};
use common::*;

/// Runs an ffmpeg `-f hls` push of `seconds` to `url` with `args` after the encoders.
fn hls_push(seconds: u32, maps: &[&str], args: &[&str], url: &str) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=640x360:rate=30:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=1000:sample_rate=48000:duration={seconds}"
        ))
        .args(maps)
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
        .args(["-c:a", "aac", "-b:a", "128k", "-ar", "48000"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "10"])
        .args(args)
        .arg(url)
        .stdin(Stdio::null());
    let (ok, stderr) = run(&mut cmd);
    assert!(ok, "ffmpeg failed: {stderr}");
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String, bytes::Bytes) {
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.bytes().await.unwrap())
}

fn media_uris(text: &str) -> Vec<String> {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p.segments.into_iter().map(|s| s.uri).collect(),
        other => panic!("not a media playlist: {other:?}\n{text}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_put_one_rendition_is_served_and_persisted() {
    let origin = Origin::start(&[]);
    hls_push(
        7,
        &[],
        &["-method", "PUT"],
        &origin.ingest_url("/live/ts/index.m3u8"),
    );
    let client = reqwest::Client::new();
    let (status, ct, body) = get(&client, &origin.egress_url("/live/ts/index.m3u8")).await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/vnd.apple.mpegurl");
    let on_disk = std::fs::read(origin.data_dir.join("live/ts/index.m3u8")).unwrap();
    assert_eq!(body, on_disk, "served as uploaded");
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("#EXT-X-ENDLIST"));
    let uris = media_uris(&text);
    assert!(uris.len() >= 3, "{text}");
    for uri in &uris {
        let (status, ct, body) = get(&client, &origin.egress_url(&format!("/live/ts/{uri}"))).await;
        assert_eq!(status, 200, "{uri}\n{}", origin.log());
        assert_eq!(ct, "video/mp2t");
        assert!(
            !body.is_empty() && body.len() % 188 == 0 && body[0] == 0x47,
            "{uri}"
        );
        let disk = std::fs::read(origin.data_dir.join(format!("live/ts/{uri}"))).unwrap();
        assert_eq!(body, disk, "{uri} persisted");
    }
    assert!(
        !origin.log().contains("upload cut"),
        "a complete upload was taken as cut:\n{}",
        origin.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fmp4_post_several_renditions_is_served_and_persisted() {
    let origin = Origin::start(&[]);
    hls_push(
        7,
        &[
            "-map", "0:v", "-map", "0:v", "-map", "1:a", "-map", "1:a", "-b:v:0", "1500k",
            "-s:v:0", "640x360", "-b:v:1", "400k", "-s:v:1", "320x180",
        ],
        &[
            "-method",
            "POST",
            "-hls_segment_type",
            "fmp4",
            "-master_pl_name",
            "master.m3u8",
            "-var_stream_map",
            "v:0,a:0 v:1,a:1",
        ],
        &origin.ingest_url("/live/fm/stream_%v.m3u8"),
    );
    let client = reqwest::Client::new();
    let (status, _, body) = get(&client, &origin.egress_url("/live/fm/master.m3u8")).await;
    assert_eq!(status, 200, "{}", origin.log());
    let text = String::from_utf8(body.to_vec()).unwrap();
    let mv = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => p,
        other => panic!("{other:?}\n{text}"),
    };
    assert_eq!(mv.variants.len(), 2);
    for v in &mv.variants {
        let (status, _, body) =
            get(&client, &origin.egress_url(&format!("/live/fm/{}", v.uri))).await;
        assert_eq!(status, 200, "{}", v.uri);
        let text = String::from_utf8(body.to_vec()).unwrap();
        let init = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
            .unwrap()
            .trim_end_matches('"')
            .to_owned();
        let (status, ct, _) = get(&client, &origin.egress_url(&format!("/live/fm/{init}"))).await;
        assert_eq!((status, ct.as_str()), (200, "video/mp4"), "{init}");
        let uris = media_uris(&text);
        assert!(uris.len() >= 3, "{text}");
        for uri in &uris {
            let (status, _, body) =
                get(&client, &origin.egress_url(&format!("/live/fm/{uri}"))).await;
            assert_eq!(status, 200, "{uri}");
            let mut scanner = BoxScanner::new();
            let mut events = Vec::new();
            scanner.feed(&body, &mut events).unwrap();
            scanner.finish(&mut events).unwrap();
            assert!(
                events.iter().any(|e| matches!(e, ScanEvent::Chunk(_))),
                "{uri} has a moof+mdat"
            );
            assert!(origin.data_dir.join(format!("live/fm/{uri}")).exists());
        }
    }
    assert!(!origin.log().contains("upload cut"), "{}", origin.log());
}

/// What ffmpeg's non-persistent uploads do: `Connection: close`, the last chunk, then the
/// write side is shut at once, before the response is read. The upload is complete.
#[test]
fn connection_close_upload_half_closed_right_after_its_last_chunk_completes() {
    let origin = Origin::start(&[]);
    for i in 0..20 {
        let mut s = TcpStream::connect(origin.ingest).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let body = format!("#EXTM3U\n#EXT-X-VERSION:3\n# upload {i}\n");
        let req = format!(
            "PUT /live/cc/p{i}.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let got = raw_exchange(
            origin.egress,
            format!("GET /live/cc/p{i}.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            Duration::from_secs(5),
        );
        assert_eq!(statuses(&got), [200], "upload {i} lost; response {out:?}");
        assert!(got.ends_with(&body), "{got}");
    }
    assert!(!origin.log().contains("upload cut"), "{}", origin.log());
}
