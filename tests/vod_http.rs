//! On-demand packaging through the real binary's egress listener: ffmpeg plays the csmil
//! master of the bundled samples over HTTP; conditional GETs, Range and refusals.

#[path = "vod_common.rs"]
mod common;
#[path = "common/mod.rs"]
mod live_common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_plays_the_csmil_master_over_http() {
    let samples = common::samples_dir();
    let origin = live_common::Origin::start(&["--media-root", samples.to_str().unwrap()]);
    let port = origin.egress.port();
    let base = format!("http://127.0.0.1:{port}/i/");
    let master = format!("{base}clip_,360,540,720,p.mp4.csmil/master.m3u8");
    // Every variant of the master, over HTTP (relative URIs resolved by ffmpeg).
    let url = master.clone();
    let (ok, _, err) = tokio::task::spawn_blocking(move || {
        common::run(
            "ffmpeg",
            &[
                "-nostdin", "-v", "error", "-i", &url, "-map", "0", "-f", "null", "-",
            ],
        )
    })
    .await
    .unwrap();
    assert!(ok && err.is_empty(), "{err}");

    // The same checks as on files, through the HTTP fetcher (the one-line switch).
    let f = common::Fetcher::Http(base.clone());
    let out = tempfile::tempdir().unwrap();
    let names = common::dump_variant(
        &f,
        "clip_,360,540,720,p.mp4.csmil",
        "index_1_av.m3u8",
        out.path(),
    )
    .await;
    assert_eq!(names.len(), 2);
    let err = common::decode_errors(&out.path().join("index_1_av.m3u8"));
    assert!(err.is_empty(), "{err}");

    // Headers, conditional GET, errors.
    let client = reqwest::Client::new();
    let seg = client
        .get(format!("{base}clip_360p.mp4/segment1_0_av.ts"))
        .send()
        .await
        .unwrap();
    assert_eq!(seg.status(), 200);
    assert_eq!(seg.headers()["content-type"], "video/mp2t");
    let etag = seg.headers()["etag"].clone();
    let again = client
        .get(format!("{base}clip_360p.mp4/segment1_0_av.ts"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let ranged = client
        .get(format!("{base}clip_360p.mp4/segment1_0_av.ts"))
        .header("range", "bytes=188-375")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.bytes().await.unwrap()[0],
        0x47,
        "a TS packet boundary"
    );
    let master_resp = client.get(&master).send().await.unwrap();
    assert_eq!(master_resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        master_resp.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    // Dot segments are sent raw (URL libraries would resolve them before sending).
    for path in [
        "../secret.mp4/master.m3u8",
        "%2e%2e/secret.mp4/master.m3u8",
        "a/..%2f..%2fx.mp4/master.m3u8",
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let req = format!("GET /i/{path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        sock.read_to_string(&mut resp).await.unwrap();
        assert!(
            resp.starts_with("HTTP/1.1 403"),
            "{path}: {}",
            resp.lines().next().unwrap_or("")
        );
    }
    for (path, want) in [
        ("missing.mp4/master.m3u8", 404),
        ("clip_360p.mp4/segment99_0_av.ts", 404),
        ("clip_360p.mp4/index_0_av.m3u8?start=abc", 400),
    ] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), want, "{path}");
    }
}
