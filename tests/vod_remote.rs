//! The HTTP(S) media root: Range reads of the moov and samples from a tiny HTTP/1.1 file
//! server on 127.0.0.1, the input cache, and refusal of truncated or changed remote files.

#[path = "vod_common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use casterpak::error::ErrorKind;
use casterpak::vod::config::VodConfig;
use casterpak::vod::Vod;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A file server: GET with `Range: bytes=a-b`, ETag and Last-Modified from size + mtime.
struct Server {
    port: u16,
    /// Range requests other than the 1-byte probe.
    data_requests: Arc<AtomicUsize>,
    /// When set, bodies stop half way (a cut connection).
    cut_bodies: Arc<AtomicBool>,
    /// Requests for `.vtt` paths, probes included.
    vtt_requests: Arc<AtomicUsize>,
}

async fn serve_one(
    mut sock: tokio::net::TcpStream,
    root: PathBuf,
    data: Arc<AtomicUsize>,
    cut: Arc<AtomicBool>,
    vtt: Arc<AtomicUsize>,
) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = percent_encoding::percent_decode_str(&path)
        .decode_utf8_lossy()
        .into_owned();
    let range = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("range: bytes=")
            .map(str::to_string)
    });
    if path.ends_with(".vtt") {
        vtt.fetch_add(1, Ordering::SeqCst);
    }
    if path.contains(".e500.") {
        let _ = sock
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
    let file = root.join(path.trim_start_matches('/'));
    let Ok(bytes) = std::fs::read(&file) else {
        let _ = sock
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    };
    let meta = std::fs::metadata(&file).unwrap();
    let mtime = meta.modified().unwrap();
    let etag = format!(
        "\"{}-{}\"",
        bytes.len(),
        mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let lm = httpdate::fmt_http_date(mtime);
    let total = bytes.len() as u64;
    let (s, e) = match range.as_deref().and_then(|r| r.trim().split_once('-')) {
        Some((a, b)) => (
            a.parse::<u64>().unwrap(),
            b.parse::<u64>().unwrap().min(total - 1),
        ),
        None => (0, total - 1),
    };
    if !(s == 0 && e == 0) {
        data.fetch_add(1, Ordering::SeqCst);
    }
    let body = &bytes[s as usize..=e as usize];
    let hdr = format!(
        "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {s}-{e}/{total}\r\netag: {etag}\r\nlast-modified: {lm}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(hdr.as_bytes()).await;
    let send = if cut.load(Ordering::SeqCst) && body.len() > 2 {
        &body[..body.len() / 2]
    } else {
        body
    };
    let _ = sock.write_all(send).await;
    let _ = sock.shutdown().await;
}

async fn start(root: &Path) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = Arc::new(AtomicUsize::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    let vtt = Arc::new(AtomicUsize::new(0));
    let (root, d2, c2, v2) = (root.to_owned(), data.clone(), cut.clone(), vtt.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_one(
                sock,
                root.clone(),
                d2.clone(),
                c2.clone(),
                v2.clone(),
            ));
        }
    });
    Server {
        port,
        data_requests: data,
        cut_bodies: cut,
        vtt_requests: vtt,
    }
}

fn remote_vod(port: u16, input_cache: Option<&Path>) -> Vod {
    Vod::new(&VodConfig {
        media_root: format!("http://127.0.0.1:{port}/media"),
        input_cache_dir: input_cache.map(Path::to_owned),
        remote_revalidate_secs: 1,
        ..Default::default()
    })
    .unwrap()
}

fn remote_vod_with(port: u16, revalidate_secs: u64, sidecar_languages: &[&str]) -> Vod {
    Vod::new(&VodConfig {
        media_root: format!("http://127.0.0.1:{port}/media"),
        remote_revalidate_secs: revalidate_secs,
        remote_sidecar_languages: sidecar_languages.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    })
    .unwrap()
}

const EN: &str = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n";
const FR: &str = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nBonjour\n";

/// The SUBTITLES languages of a master playlist, in order.
fn subtitle_languages(master: &[u8]) -> Vec<String> {
    common::subtitle_media(master)
        .into_iter()
        .map(|a| a.language.unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_sidecars_of_the_configured_languages_are_found() {
    let root = tempfile::tempdir().unwrap();
    let media = root.path().join("media");
    std::fs::create_dir_all(media.join("d")).unwrap();
    std::fs::copy(
        common::fixtures().join("faststart.mp4"),
        media.join("d/a.mp4"),
    )
    .unwrap();
    std::fs::write(media.join("d/a.en.vtt"), EN).unwrap();
    let server = start(root.path()).await;
    let local = common::vod(&media, 6.0);
    // Probe answers are kept 3 s: the first requests below take well under that.
    let remote = remote_vod_with(server.port, 3, &["fr", "en", "de"]);
    // The remote's English sidecar is found like the local one: same master, playlist, cues.
    for p in ["master.m3u8", "subs_0_0.m3u8", "subs1_0_0.vtt"] {
        let path = format!("d/a.mp4/{p}");
        let a = local.respond(&path, None).await.unwrap();
        let b = remote.respond(&path, None).await.unwrap();
        assert_eq!(a.body, b.body, "{path}");
    }
    let master = remote.respond("d/a.mp4/master.m3u8", None).await.unwrap();
    assert_eq!(subtitle_languages(&master.body), ["en"]);
    let cues = remote.respond("d/a.mp4/subs1_0_0.vtt", None).await.unwrap();
    assert!(String::from_utf8_lossy(&cues.body).contains("Hello"));
    // The absent tags' 404s are kept: another master probes nothing while they are fresh.
    let before = server.vtt_requests.load(Ordering::SeqCst);
    remote.respond("d/a.mp4/master.m3u8", None).await.unwrap();
    assert_eq!(server.vtt_requests.load(Ordering::SeqCst), before);
    // A sidecar added on the remote shows once the 404 is older than the revalidate time.
    std::fs::write(media.join("d/a.fr.vtt"), FR).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let master = remote.respond("d/a.mp4/master.m3u8", None).await.unwrap();
    assert_eq!(subtitle_languages(&master.body), ["en", "fr"]);
    // A probe the remote answers with a 500: the track is offered and fails alone.
    let failing = remote_vod_with(server.port, 3, &["en", "e500"]);
    let master = failing.respond("d/a.mp4/master.m3u8", None).await.unwrap();
    assert_eq!(subtitle_languages(&master.body), ["e500", "en"]);
    let err = failing
        .respond("d/a.mp4/subs1_0_0.vtt", None)
        .await
        .map(|r| r.body.len())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Upstream, "{err}");
    let cues = failing
        .respond("d/a.mp4/subs1_0_1.vtt", None)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&cues.body).contains("Hello"));
    // Must-fail: without configured tags an HTTP root offers no sidecar.
    let plain = remote_vod(server.port, None);
    let master = plain.respond("d/a.mp4/master.m3u8", None).await.unwrap();
    assert!(subtitle_languages(&master.body).is_empty());
    assert_eq!(
        plain
            .respond("d/a.mp4/subs_0_0.m3u8", None)
            .await
            .map(|r| r.body.len())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_output_equals_local_and_input_cache_is_used() {
    let root = tempfile::tempdir().unwrap();
    let media = root.path().join("media");
    std::fs::create_dir(&media).unwrap();
    let fx = common::fixtures();
    for f in ["moov_end.mp4", "faststart.mp4"] {
        std::fs::copy(fx.join(f), media.join(f)).unwrap();
    }
    let server = start(root.path()).await;
    let cache = tempfile::tempdir().unwrap();
    let local = common::vod(&media, 6.0);
    let remote = remote_vod(server.port, Some(cache.path()));
    for f in ["moov_end.mp4", "faststart.mp4"] {
        for p in [
            "master.m3u8",
            "index_0_av.m3u8",
            "segment1_0_av.ts",
            "segment2_0_av.ts",
            "segment1_0_a.ts",
        ] {
            let path = format!("{f}/{p}");
            let a = local.respond(&path, None).await.unwrap();
            let b = remote.respond(&path, None).await.unwrap();
            assert_eq!(a.body, b.body, "{path}");
        }
    }
    // A fresh service (empty memory) reads sample data from the input cache only.
    let before = server.data_requests.load(Ordering::SeqCst);
    let remote2 = remote_vod(server.port, Some(cache.path()));
    let b = remote2
        .respond("moov_end.mp4/segment2_0_av.ts", None)
        .await
        .unwrap();
    assert!(!b.body.is_empty());
    assert_eq!(
        server.data_requests.load(Ordering::SeqCst),
        before,
        "served from the input cache"
    );
    // The sweeper keeps the fresh blocks.
    remote2.sweep().await;
    assert!(std::fs::read_dir(cache.path()).unwrap().count() > 0);
    // Missing remote file.
    let err = remote
        .respond("nope.mp4/master.m3u8", None)
        .await
        .map(|r| r.body.len())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_download_is_never_cached_or_served() {
    let root = tempfile::tempdir().unwrap();
    let media = root.path().join("media");
    std::fs::create_dir(&media).unwrap();
    std::fs::copy(
        common::fixtures().join("faststart.mp4"),
        media.join("a.mp4"),
    )
    .unwrap();
    let server = start(root.path()).await;
    let cache = tempfile::tempdir().unwrap();
    let good = common::vod(&media, 6.0)
        .respond("a.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    let remote = remote_vod(server.port, Some(cache.path()));
    server.cut_bodies.store(true, Ordering::SeqCst);
    let err = remote
        .respond("a.mp4/segment1_0_av.ts", None)
        .await
        .map(|r| r.body.len())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Upstream, "{err}");
    server.cut_bodies.store(false, Ordering::SeqCst);
    let again = remote
        .respond("a.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    assert_eq!(again.body, good.body, "no short data was kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_remote_file_is_detected() {
    let root = tempfile::tempdir().unwrap();
    let media = root.path().join("media");
    std::fs::create_dir(&media).unwrap();
    let fx = common::fixtures();
    std::fs::copy(fx.join("moov_end.mp4"), media.join("a.mp4")).unwrap();
    let server = start(root.path()).await;
    let cache = tempfile::tempdir().unwrap();
    let remote = remote_vod(server.port, Some(cache.path()));
    remote
        .respond("a.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    // Replace the file with a shorter one (truncated upload on the origin side).
    let data = std::fs::read(fx.join("moov_end.mp4")).unwrap();
    std::fs::write(media.join("a.mp4"), &data[..data.len() / 2]).unwrap();
    // Within the revalidation window the old identity is still trusted: the answer is the
    // complete old segment (from the input cache) or an error when a range reaches the
    // server and sees the size change; never a mix or short data.
    let old2 = common::vod(fx, 6.0)
        .respond("moov_end.mp4/segment2_0_av.ts", None)
        .await
        .unwrap();
    match remote.respond("a.mp4/segment2_0_av.ts", None).await {
        Ok(r) => assert!(r.body == old2.body, "stale but complete"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Upstream, "{e}"),
    }
    // Without an input cache the range reaches the server and sees the change.
    let uncached = remote_vod(server.port, None);
    std::fs::copy(fx.join("moov_end.mp4"), media.join("b.mp4")).unwrap();
    uncached
        .respond("b.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    std::fs::write(media.join("b.mp4"), &data[..data.len() / 2]).unwrap();
    let err = uncached
        .respond("b.mp4/segment2_0_av.ts", None)
        .await
        .map(|r| r.body.len())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Upstream, "{err}");
    // After the window the new identity is probed: the truncated file has no moov.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let err = remote
        .respond("a.mp4/segment1_0_av.ts", None)
        .await
        .map(|r| r.body.len())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    // Put a different complete file there: served, not the old bytes.
    std::fs::copy(fx.join("faststart.mp4"), media.join("a.mp4")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = remote
        .respond("a.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    let want = common::vod(&media, 6.0)
        .respond("a.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    assert_eq!(fresh.body, want.body);
}
