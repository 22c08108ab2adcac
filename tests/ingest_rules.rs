//! Ingest and egress rules on the real binary with hand-made requests: interrupted uploads,
//! traversal, pipelining, size limits, DELETE retention, headers. No encoder needed: these
//! are the cases a normal client would never send.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;

/// One ISO-BMFF box.
fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(payload);
    v
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut v = format!("{:x}\r\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    v
}

/// A PUT head the way ffmpeg sends it: chunked, no Content-Type.
fn put_head(path: &str) -> Vec<u8> {
    format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: Lavf/59.27.100\r\nTransfer-Encoding: chunked\r\nIcy-MetaData: 1\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_upload_aborts_readers_and_is_never_served() {
    let origin = Origin::start(&[]);
    let client = reqwest::Client::new();
    let mut uploader = TcpStream::connect(origin.ingest).unwrap();
    uploader
        .write_all(&put_head("/live/cut/chunk-stream0-00001.m4s"))
        .unwrap();
    uploader
        .write_all(&chunk(&boxed(b"styp", b"msdhmsix")))
        .unwrap();
    uploader
        .write_all(&chunk(&boxed(b"mdat", &[7; 5000])))
        .unwrap();
    uploader.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let url = origin.egress_url("/live/cut/chunk-stream0-00001.m4s");
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty(), "reader got the bytes so far");
    // The encoder dies mid-segment: no terminating chunk.
    drop(uploader);
    let mut ended_with_error = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(Some(part)) = tokio::time::timeout_at(deadline.into(), stream.next()).await {
        if part.is_err() {
            ended_with_error = true;
            break;
        }
    }
    assert!(
        ended_with_error,
        "the response must be aborted, not ended cleanly"
    );
    // Never served as complete, never persisted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.get(&url).send().await.unwrap().status(), 404);
    assert!(!origin
        .data_dir
        .join("live/cut/chunk-stream0-00001.m4s")
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_re_put_keeps_the_previous_good_object() {
    let origin = Origin::start(&[]);
    let client = reqwest::Client::new();
    let url = origin.ingest_url("/live/m/stream.mpd");
    let good = "<MPD type=\"static\"><Period/></MPD>";
    assert_eq!(
        client.put(&url).body(good).send().await.unwrap().status(),
        201
    );
    let mut uploader = TcpStream::connect(origin.ingest).unwrap();
    uploader.write_all(&put_head("/live/m/stream.mpd")).unwrap();
    uploader.write_all(&chunk(b"<MPD type=\"dyn")).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(uploader);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = get_text(&client, origin.egress_url("/live/m/stream.mpd")).await;
    assert!(body.contains("type=\"static\""), "{body}");
}

#[test]
fn traversal_is_refused_and_nothing_lands_outside_the_data_dir() {
    let origin = Origin::start(&[]);
    let attempts = [
        "/../escape.m4s",
        "/live/../../escape.m4s",
        "/live/%2e%2e/%2e%2e/escape.m4s",
        "/live/%2E%2E%2Fescape.m4s",
        "/live/..%5cescape.m4s",
        "/live\\..\\escape.m4s",
        "//tmp/escape.m4s",
        "/%2ftmp/escape.m4s",
        "/live/.hidden.m4s",
    ];
    for path in attempts {
        let mut req = put_head(path);
        req.extend(chunk(b"payload"));
        req.extend_from_slice(b"0\r\n\r\n");
        let raw = raw_exchange(origin.ingest, &req, Duration::from_millis(500));
        let st = statuses(&raw);
        assert!(
            st == [400] || st == [403],
            "PUT {path} answered {st:?}: {raw}"
        );
        let get = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let raw = raw_exchange(origin.egress, get.as_bytes(), Duration::from_millis(500));
        let st = statuses(&raw);
        assert!(st == [400] || st == [403], "GET {path} answered {st:?}");
    }
    // Reading the server's own files through egress fails too.
    let raw = raw_exchange(
        origin.egress,
        b"GET /player/../Cargo.toml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_millis(500),
    );
    assert!(statuses(&raw) == [403] || statuses(&raw) == [400]);
    // Nothing was written anywhere: beside the data dir only the log exists, inside nothing
    // but the archive's and the media library's databases (created at start).
    let beside: Vec<String> = files_under(origin.parent_dir())
        .into_iter()
        .filter(|f| {
            !f.starts_with("data/.casterpak.db") && !f.starts_with("data/.casterpak-library.db")
        })
        .collect();
    assert_eq!(beside, ["origin.log"], "files written: {beside:?}");
    assert!(!std::path::Path::new("/tmp/escape.m4s").exists());
}

#[test]
fn pipelined_requests_are_answered_at_once_and_the_connection_stays_open() {
    let origin = Origin::start(&[]);
    let mut s = TcpStream::connect(origin.ingest).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    // Two PUTs and a DELETE written back to back before reading anything, as ffmpeg does.
    let mut req = put_head("/live/p/a.m4s");
    req.extend(chunk(&boxed(b"styp", b"msdh")));
    req.extend_from_slice(b"0\r\n\r\n");
    req.extend(put_head("/live/p/stream.mpd"));
    req.extend(chunk(b"<MPD/>"));
    req.extend_from_slice(b"0\r\n\r\n");
    req.extend_from_slice(
        b"DELETE /live/p/a.m4s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    s.write_all(&req).unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(3);
    while statuses(&got).len() < 3 && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => break,
        }
    }
    assert_eq!(statuses(&got), [201, 201, 204], "{got}");
    assert!(!got.to_ascii_lowercase().contains("connection: close"));
    // The connection is still usable afterwards.
    let mut again = put_head("/live/p/b.m4s");
    again.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&again).unwrap();
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 201"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limit_refuses_without_disturbing_another_stream() {
    let origin = Origin::start(&["--max-object-bytes", "10000"]);
    let client = reqwest::Client::new();
    let big = client
        .put(origin.ingest_url("/live/bad/chunk-stream0-00001.m4s"))
        .body(vec![0u8; 20000])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let ok = client
        .put(origin.ingest_url("/live/good/chunk-stream0-00001.m4s"))
        .body(boxed(b"styp", b"msdh"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    assert_eq!(
        client
            .get(origin.egress_url("/live/bad/chunk-stream0-00001.m4s"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let good = client
        .get(origin.egress_url("/live/good/chunk-stream0-00001.m4s"))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    assert_eq!(good.bytes().await.unwrap(), boxed(b"styp", b"msdh"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_advisory_for_the_retention_then_removes() {
    let origin = Origin::start(&["--delete-retention-secs", "1"]);
    let client = reqwest::Client::new();
    let ingest = origin.ingest_url("/live/d/chunk-stream0-00001.m4s");
    let egress = origin.egress_url("/live/d/chunk-stream0-00001.m4s");
    client.put(&ingest).body("x").send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(origin
        .data_dir
        .join("live/d/chunk-stream0-00001.m4s")
        .exists());
    assert_eq!(client.delete(&ingest).send().await.unwrap().status(), 204);
    assert_eq!(
        client.get(&egress).send().await.unwrap().status(),
        200,
        "kept for DVR"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(client.get(&egress).send().await.unwrap().status(), 404);
    assert!(!origin
        .data_dir
        .join("live/d/chunk-stream0-00001.m4s")
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_retention_timers_survive_a_restart() {
    let mut origin = Origin::start(&["--delete-retention-secs", "3"]);
    let client = reqwest::Client::new();
    let ingest = origin.ingest_url("/live/r/chunk-stream0-00001.m4s");
    let kept = origin.ingest_url("/live/r/chunk-stream0-00002.m4s");
    let file = origin.data_dir.join("live/r/chunk-stream0-00001.m4s");
    client.put(&ingest).body("x").send().await.unwrap();
    client.put(&kept).body("y").send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.delete(&ingest).send().await.unwrap().status(), 204);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Crash before the timer fires: the restarted origin still removes it on time.
    origin.kill();
    origin.restart();
    let egress = origin.egress_url("/live/r/chunk-stream0-00001.m4s");
    assert_eq!(
        client.get(&egress).send().await.unwrap().status(),
        200,
        "still in its retention"
    );
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(client.get(&egress).send().await.unwrap().status(), 404);
    assert!(!file.exists(), "the restored timer removed the file");
    assert!(origin
        .data_dir
        .join("live/r/chunk-stream0-00002.m4s")
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_cors_time_and_errors() {
    let origin = Origin::start(&[]);
    let client = reqwest::Client::new();
    client
        .put(origin.ingest_url("/live/h/stream.mpd"))
        .body(include_str!("fixtures/mpd/ffmpeg_ldash_first_put.mpd"))
        .send()
        .await
        .unwrap();
    let r = client
        .get(origin.egress_url("/live/h/stream.mpd"))
        .header("origin", "http://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.contains("date") && exposed.contains("age"),
        "{exposed}"
    );
    assert_eq!(r.headers()["cache-control"], "public, max-age=1");
    assert!(r.headers().contains_key("etag") && r.headers().contains_key("last-modified"));
    let text = r.text().await.unwrap();
    assert!(text.contains(&format!("http://{}/time", origin.egress)));
    assert!(text.contains("<Latency target=\"1500\"/>"));

    // A preflight is answered.
    let pre = client
        .request(
            reqwest::Method::OPTIONS,
            origin.egress_url("/live/h/stream.mpd"),
        )
        .header("origin", "http://player.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success());
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");

    // /time is ISO 8601 UTC with milliseconds, close to our clock.
    let t = client.get(origin.egress_url("/time")).send().await.unwrap();
    assert_eq!(t.headers()["cache-control"], "no-store");
    let text = t.text().await.unwrap();
    let parsed = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 time");
    let skew = (parsed - time::OffsetDateTime::now_utc()).abs();
    assert!(skew < time::Duration::seconds(2), "{text}");
    assert_eq!(text.len(), "2026-11-20T21:44:00.422Z".len());

    // Egress refuses writes; ingest refuses reads.
    let put = client
        .put(origin.egress_url("/live/h/x"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    let get = client
        .get(origin.ingest_url("/live/h/stream.mpd"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);

    // The player page is served.
    let page = client
        .get(origin.egress_url("/player/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_holds_up_neither_ingest_nor_other_readers() {
    let origin = Origin::start(&[]);
    let client = reqwest::Client::new();
    let mut uploader = TcpStream::connect(origin.ingest).unwrap();
    uploader
        .write_all(&put_head("/live/slow/chunk-stream0-00001.m4s"))
        .unwrap();
    uploader
        .write_all(&chunk(&boxed(b"styp", b"msdh")))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A reader that asks and then never reads: its socket buffers fill up.
    let mut stalled = TcpStream::connect(origin.egress).unwrap();
    stalled
        .write_all(b"GET /live/slow/chunk-stream0-00001.m4s HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let url = origin.egress_url("/live/slow/chunk-stream0-00001.m4s");
    let live_reader = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .get(&url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .len()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 16 MiB through the upload: far more than the stalled reader's socket buffers.
    let payload = vec![0x5au8; 64 * 1024];
    let started = Instant::now();
    for _ in 0..256 {
        uploader.write_all(&chunk(&payload)).unwrap();
    }
    uploader.write_all(b"0\r\n\r\n").unwrap();
    let mut status = [0u8; 12];
    uploader.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 201", "upload completed");
    let got = tokio::time::timeout(Duration::from_secs(20), live_reader)
        .await
        .expect("the other reader finished")
        .unwrap();
    assert_eq!(got, 12 + 256 * 64 * 1024);
    assert!(started.elapsed() < Duration::from_secs(20));
    drop(stalled);
}
