//! The `Vod` service behind a minimal HTTP/1.1 wrapper on 127.0.0.1, the way the egress
//! listener will wire it (`/i/` prefix stripped, query passed raw, `VodReply` fields as
//! headers, `kind()` mapped to a status): ffmpeg plays the csmil master over HTTP.
//! The wrapper here stands in for `server::egress` until it is merged.

#[path = "vod_common.rs"]
mod common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use casterpak::error::ErrorKind;
use casterpak::vod::Vod;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Corrupt => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn handle(
    vod: Arc<Vod>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(path) = req.uri().path().strip_prefix("/i/") else {
        return Ok(Response::builder()
            .status(404)
            .body(Full::new(Bytes::new()))
            .unwrap());
    };
    Ok(match vod.respond(path, req.uri().query()).await {
        Ok(r) => {
            let not_modified = req
                .headers()
                .get(hyper::header::IF_NONE_MATCH)
                .is_some_and(|v| v.as_bytes() == r.etag.as_bytes());
            let b = Response::builder()
                .header("content-type", r.content_type)
                .header("etag", &r.etag)
                .header("cache-control", r.cache_control)
                .header("last-modified", httpdate::fmt_http_date(r.last_modified));
            if not_modified {
                b.status(304).body(Full::new(Bytes::new())).unwrap()
            } else {
                b.body(Full::new(r.body)).unwrap()
            }
        }
        Err(e) => Response::builder()
            .status(status(e.kind()))
            .body(Full::new(Bytes::from(e.to_string())))
            .unwrap(),
    })
}

async fn start(vod: Vod) -> u16 {
    let vod = Arc::new(vod);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let vod = vod.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(vod.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_plays_the_csmil_master_over_http() {
    let port = start(common::vod(&common::samples_dir(), 6.0)).await;
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
