//! Authentication and transport security with real clients (issue 9): ffmpeg pushing with
//! and without credentials, playback tokens made by Akamai's own `akamai-edgeauth`
//! package, API tokens, TLS with HTTP/2 checked by curl.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{config_file, edgeauth_acl_token, edgeauth_url_token, Origin};

const KEY: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn ffmpeg_dash(url: &str, seconds: u32, extra: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "warning", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=320x180:rate=25:duration={seconds}"),
        ])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args([
            "-keyint_min",
            "25",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-f",
            "dash",
            "-ldash",
            "1",
            "-streaming",
            "1",
            "-seg_duration",
            "1",
        ])
        .args(["-frag_type", "duration", "-frag_duration", "0.5"])
        .args(["-use_timeline", "0", "-use_template", "1"])
        .args(["-method", "PUT", "-http_persistent", "1"])
        .args(["-format_options", "movflags=cmaf"])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null());
    common::run(&mut cmd)
}

fn ffmpeg_hls(url: &str, seconds: u32) -> (bool, String) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "warning", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=320x180:rate=25:duration={seconds}"),
        ])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args([
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-method",
            "PUT",
            "-http_persistent",
            "1",
        ])
        .arg(url)
        .stdin(Stdio::null());
    common::run(&mut cmd)
}

/// One request with curl: (status, body, response head).
fn http(method: &str, url: &str, headers: &[&str], body: Option<&str>) -> (u16, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-X", method, "-D"])
        .arg(&head)
        .args(["-w", "\n%{http_code}"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some(b) = body {
        cmd.args(["--data-binary", b]);
    }
    let out = cmd.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        body.to_owned(),
        std::fs::read_to_string(head).unwrap_or_default(),
    )
}

fn ingest_config(dir: &Path) -> [String; 2] {
    config_file(
        dir,
        r#"
[[auth.ingest]]
user = "cam1"
password = "secret"
stream_key = "k3y-cam1"
paths = ["live/cam1/*"]

[[auth.ingest]]
user = "cam9"
password_sha256 = "2d4589473fb3f4581d7452cd25182159d68d2a50056a0cce35a529b010e32f2b"
paths = ["live/cam9/*"]
"#,
    )
}

fn start_with(cfg: &[String; 2], extra: &[&str]) -> Origin {
    let mut args: Vec<&str> = vec![cfg[0].as_str(), cfg[1].as_str()];
    args.extend_from_slice(extra);
    Origin::start(&args)
}

fn stored(origin: &Origin, dir: &str) -> Vec<String> {
    common::files_under(&origin.data_dir.join(dir))
}

#[test]
fn ingest_credentials_with_real_ffmpeg() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = ingest_config(tmp.path());
    let o = start_with(&cfg, &[]);
    let host = o.ingest;

    // Right credentials in the URL: ffmpeg's Expect request gets 401, it retries with Basic.
    let (ok, err) = ffmpeg_dash(
        &format!("http://cam1:secret@{host}/live/cam1/a/stream.mpd"),
        3,
        &[],
    );
    assert!(ok, "ffmpeg with credentials failed: {err}");
    assert!(stored(&o, "live/cam1/a")
        .iter()
        .any(|f| f.ends_with(".m4s")));
    // Basic on every request with Expect (the readable-error recipe).
    let (ok, err) = ffmpeg_dash(
        &format!("http://cam1:secret@{host}/live/cam1/b/stream.mpd"),
        3,
        &["-http_opts", "auth_type=basic:send_expect_100=1"],
    );
    assert!(ok, "ffmpeg with send_expect_100 failed: {err}");
    assert!(stored(&o, "live/cam1/b").iter().any(|f| f == "stream.mpd"));
    // A hashed password, with -f hls.
    let (ok, err) = ffmpeg_hls(
        &format!("http://cam9:pass9@{host}/live/cam9/h/index.m3u8"),
        3,
    );
    assert!(ok, "ffmpeg -f hls with credentials failed: {err}");
    assert!(stored(&o, "live/cam9/h").iter().any(|f| f.ends_with(".ts")));

    // Wrong password: ffmpeg ends with an error and nothing is stored or served.
    let (ok, err) = ffmpeg_dash(
        &format!("http://cam1:nope@{host}/live/cam1/w/stream.mpd"),
        2,
        &[],
    );
    assert!(!ok, "a wrong password must stop ffmpeg");
    assert!(!err.is_empty());
    assert!(stored(&o, "live/cam1/w").is_empty());
    // With send_expect_100 the 403 is what ffmpeg prints.
    let (ok, err) = ffmpeg_dash(
        &format!("http://cam1:nope@{host}/live/cam1/w/stream.mpd"),
        2,
        &["-http_opts", "auth_type=basic:send_expect_100=1"],
    );
    assert!(!ok);
    assert!(err.contains("403"), "ffmpeg should print the 403: {err}");
    assert!(stored(&o, "live/cam1/w").is_empty());
    // Right credentials, a path they do not cover.
    let (ok, _) = ffmpeg_dash(
        &format!("http://cam1:secret@{host}/live/cam2/stream.mpd"),
        2,
        &[],
    );
    assert!(!ok);
    assert!(stored(&o, "live/cam2").is_empty());
    // No credentials at all (-f hls, no Expect): 403 and closed. ffmpeg's HLS muxer
    // reports the failed uploads but may still exit 0; what matters is that nothing of
    // them is stored.
    let (_, err) = ffmpeg_hls(&format!("http://{host}/live/cam1/n/index.m3u8"), 2);
    assert!(!err.is_empty(), "ffmpeg should report the refused uploads");
    assert!(stored(&o, "live/cam1/n").is_empty());

    // Bearer and stream key, with curl.
    let put = |url: String, extra: &[&str]| -> String {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "PUT",
                "--data-binary",
                "abc",
            ])
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        put(
            format!("http://{host}/live/cam1/t/x.bin"),
            &["-H", "Authorization: Bearer secret"]
        ),
        "201"
    );
    assert_eq!(
        put(
            format!("http://{host}/live/cam1/t/y.bin"),
            &["-H", "Authorization: Bearer wrong"]
        ),
        "403"
    );
    assert_eq!(
        put(format!("http://{host}/key/k3y-cam1/live/cam1/t/k.bin"), &[]),
        "201"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !o.data_dir.join("live/cam1/t/k.bin").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        o.data_dir.join("live/cam1/t/k.bin").exists(),
        "stream key stripped from the stored path"
    );
    assert_eq!(
        put(format!("http://{host}/key/other/live/cam1/t/z.bin"), &[]),
        "403"
    );
    assert_eq!(
        put(format!("http://{host}/key/k3y-cam1/live/cam2/z.bin"), &[]),
        "403"
    );
    assert!(!o.data_dir.join("live/cam1/t/y.bin").exists());

    // The answer comes before any body byte: 401 (no 100 Continue) on Expect ...
    let raw = common::raw_exchange(
        host,
        b"PUT /live/cam1/r.m4s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    assert!(!raw.contains("100 Continue"));
    assert!(
        raw.to_ascii_lowercase()
            .contains("www-authenticate: basic realm=\"casterpak-ingest\""),
        "{raw}"
    );
    // ... and 403 + close without it; the connection is closed though the body never ended.
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"PUT /live/cam1/r.m4s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        .unwrap();
    let mut got = Vec::new();
    let closed = s.read_to_end(&mut got).is_ok();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(closed, "the connection must be closed after a refusal");
    assert!(!o.data_dir.join("live/cam1/r.m4s").exists());
    assert_eq!(
        http("GET", &o.egress_url("/live/cam1/w/stream.mpd"), &[], None).0,
        404
    );

    let metrics = http("GET", &o.api_url("/metrics"), &[], None).1;
    assert!(
        metrics.contains("casterpak_ingest_auth_failures_total{reason=\"wrong_credentials\"}"),
        "{metrics}"
    );
    let log = o.log();
    assert!(log.contains("ingest authentication on"));
    for secret in ["secret", "k3y-cam1", "Y2FtMTpzZWNyZXQ=", "pass9"] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}

#[test]
fn open_ingest_says_so() {
    let o = Origin::start(&[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !o.log().contains("ingest is open") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(o.log().contains("ingest is open"), "{}", o.log());
    assert!(o.log().contains("API open without tokens (loopback only)"));
}

#[test]
fn api_beyond_loopback_needs_tokens() {
    let port = common::free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_casterpak"))
        .args(["serve", "--api-addr", &format!("0.0.0.0:{port}")])
        .args([
            "--ingest-addr",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .args([
            "--egress-addr",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .args([
            "--data-dir",
            tempfile::tempdir().unwrap().path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback only"), "{err}");
}

#[test]
fn api_tokens_and_roles() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_file(
        tmp.path(),
        "[[auth.api]]\ntoken = \"reader-token-1\"\nrole = \"read\"\n\n[[auth.api]]\ntoken = \"admin-token-1\"\nrole = \"admin\"\n",
    );
    let o = start_with(&cfg, &[]);
    let get = |path: &str, token: Option<&str>| {
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let headers: Vec<&str> = auth.iter().map(String::as_str).collect();
        http("GET", &o.api_url(path), &headers, None)
    };
    let (st, _, head) = get("/api/v1/streams", None);
    assert_eq!(st, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    assert_eq!(get("/api/v1/streams", Some("wrong-token")).0, 401);
    assert_eq!(get("/api/v1/streams", Some("reader-token-1")).0, 200);
    assert_eq!(get("/metrics", None).0, 401);
    assert_eq!(get("/metrics", Some("reader-token-1")).0, 200);
    assert_eq!(get("/livez", None).0, 200);
    assert_eq!(get("/readyz", None).0, 200);
    let body = r#"{"stream":"live/x"}"#;
    let post = |token: &str| {
        let auth = format!("Authorization: Bearer {token}");
        http(
            "POST",
            &o.api_url("/api/v1/recordings"),
            &[auth.as_str(), "content-type: application/json"],
            Some(body),
        )
    };
    let (st, text, _) = post("reader-token-1");
    assert_eq!(st, 403);
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(j["error"]["code"], "forbidden");
    assert_eq!(post("admin-token-1").0, 201);
    assert!(
        !o.log().contains("admin-token-1"),
        "a token reached the log"
    );
}

/// Playback tokens made by `akamai-edgeauth`, on live DASH, LL-HLS, views and VOD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_file(
        tmp.path(),
        &format!(
            "[auth.playback]\nkey = \"{KEY}\"\ncdn_header = \"x-cdn-secret\"\ncdn_secret = \"cdn-shared-1\"\n"
        ),
    );
    let o = start_with(&cfg, &["--log-json"]);
    let _push = common::ffmpeg_ldash_push(&o, "tok", 14, &[]);
    let c = reqwest::Client::new();
    let good = edgeauth_acl_token(KEY, "/live/tok/*", None, 300);
    let q = format!("hdnts={good}");
    let mv = o.egress_url(&format!("/live/tok/llhls.m3u8?{q}"));
    assert!(
        common::wait_for_200(&c, &mv, Duration::from_secs(15)).await,
        "{}",
        o.log()
    );

    // Without a token, or with a bad one: 403.
    let status = |url: String| {
        let c = c.clone();
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(o.egress_url("/live/tok/llhls.m3u8")).await, 403);
    assert_eq!(status(o.egress_url("/live/tok/stream.mpd")).await, 403);
    let expired = edgeauth_acl_token(KEY, "/live/tok/*", Some(1_000_000_000), 60);
    let wrong_acl = edgeauth_acl_token(KEY, "/live/other/*", None, 300);
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let other_key =
        edgeauth_acl_token("00112233445566778899aabbccddeeff", "/live/tok/*", None, 300);
    for bad in [&expired, &wrong_acl, &tampered, &other_key] {
        assert_eq!(
            status(o.egress_url(&format!("/live/tok/llhls.m3u8?hdnts={bad}"))).await,
            403,
            "{bad}"
        );
    }

    // Every URI of the multivariant playlist carries the token; follow them.
    let text = common::get_text(&c, &mv).await;
    let uris: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert!(!uris.is_empty());
    for line in text.lines() {
        if !line.starts_with('#') && !line.is_empty() || line.contains("URI=\"") {
            assert_eq!(line.matches("hdnts=").count(), 1, "{line}");
        }
    }
    let media_url = o.egress_url(&format!("/live/tok/{}", uris[0]));
    let media = common::get_text(&c, &media_url).await;
    assert!(media.contains("#EXT-X-MAP"), "{media}");
    let mut followed = 0;
    for line in media.lines() {
        let uri = if line.starts_with('#') {
            match line.split_once("URI=\"") {
                Some((_, rest)) => rest.split('"').next().unwrap_or(""),
                None => continue,
            }
        } else {
            line
        };
        if uri.is_empty() {
            continue;
        }
        assert_eq!(uri.matches("hdnts=").count(), 1, "{line}");
        if line.starts_with("#EXT-X-PRELOAD-HINT") || line.starts_with("#EXT-X-RENDITION-REPORT") {
            continue;
        }
        if followed < 6 {
            let u = o.egress_url(&format!("/live/tok/{uri}"));
            assert_eq!(status(u.clone()).await, 200, "{u}");
            followed += 1;
        }
    }
    assert!(followed >= 3);

    // The MPD's templates carry it too.
    let mpd = common::get_text(&c, o.egress_url(&format!("/live/tok/stream.mpd?{q}"))).await;
    assert!(mpd.contains("hdnts="), "{mpd}");
    let init = mpd
        .split("initialization=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("$RepresentationID$", "0")
        .replace("&amp;", "&");
    assert!(init.contains("hdnts="));
    assert_eq!(
        status(o.egress_url(&format!("/live/tok/{init}"))).await,
        200
    );

    // Cookie, header and Bearer carry a token too (no rewriting needed).
    let r = c
        .get(o.egress_url("/live/tok/stream.mpd"))
        .header("cookie", format!("other=1; hdnts={good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.text().await.unwrap().contains("hdnts="));
    let r = c
        .get(o.egress_url("/live/tok/stream.mpd"))
        .header("hdnts", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(o.egress_url("/live/tok/stream.mpd"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Authorized answers are per viewer: never `public` to a shared cache.
    let r = c
        .get(o.egress_url("/live/tok/stream.mpd"))
        .header("cookie", format!("hdnts={good}"))
        .send()
        .await
        .unwrap();
    let cc = r.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cc.contains("private") && !cc.contains("public"), "{cc}");
    // HEAD of a tokenized manifest has the length of its GET.
    let get_len = c
        .get(&mv)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let head = c.head(&mv).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        get_len.to_string()
    );
    // A stale token in the query does not hide a valid cookie.
    let r = c
        .get(o.egress_url(&format!("/live/tok/stream.mpd?hdnts={expired}")))
        .header("cookie", format!("hdnts={good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The CDN trust header skips the check and the rewriting; a wrong secret does not.
    let r = c
        .get(o.egress_url("/live/tok/llhls.m3u8"))
        .header("x-cdn-secret", "cdn-shared-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.text().await.unwrap().contains("hdnts"));
    let r = c
        .get(o.egress_url("/live/tok/llhls.m3u8"))
        .header("x-cdn-secret", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A time-range view carries its own query and the token, each once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ranges: serde_json::Value = serde_json::from_str(
        &common::get_text(&c, o.api_url("/api/v1/streams/live%2Ftok/ranges")).await,
    )
    .unwrap();
    let start = ranges["ranges"][0]["start"].as_str().unwrap().to_owned();
    let view = common::get_text(
        &c,
        o.egress_url(&format!("/live/tok/llhls.m3u8?start={start}&{q}")),
    )
    .await;
    assert!(view.contains("#EXT-X-STREAM-INF"), "{view}");
    for line in view
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert_eq!(line.matches("hdnts=").count(), 1, "{view}");
        assert_eq!(line.matches("start=").count(), 1, "{view}");
    }

    // A recording's replay: its manifests and the archived segments they point at.
    let created = c
        .post(o.api_url("/api/v1/recordings"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"stream":"live/tok","start":"{start}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let rec: serde_json::Value = serde_json::from_str(&created.text().await.unwrap()).unwrap();
    let id = rec["id"].as_str().unwrap().to_owned();
    let rtok = edgeauth_acl_token(KEY, &format!("/recordings/{id}/*!/archive/*"), None, 300);
    assert_eq!(
        status(o.egress_url(&format!("/recordings/{id}/master.m3u8"))).await,
        403
    );
    let rmaster = common::get_text(
        &c,
        o.egress_url(&format!("/recordings/{id}/master.m3u8?hdnts={rtok}")),
    )
    .await;
    let rmedia_uri = rmaster
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap_or_else(|| panic!("{rmaster}"));
    let rmedia =
        common::get_text(&c, o.egress_url(&format!("/recordings/{id}/{rmedia_uri}"))).await;
    let rseg = rmedia
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap_or_else(|| panic!("{rmedia}"));
    assert!(rseg.contains("hdnts="), "{rmedia}");
    let rseg_url = if rseg.starts_with('/') {
        o.egress_url(rseg)
    } else {
        o.egress_url(&format!("/recordings/{id}/{rseg}"))
    };
    assert_eq!(status(rseg_url).await, 200);

    // VOD: an ACL token for /i/* and a URL token for one exact path.
    let vod = "/i/clip_,360,540,p.mp4.csmil/master.m3u8";
    assert_eq!(status(o.egress_url(vod)).await, 403);
    let vtok = edgeauth_acl_token(KEY, "/i/*", None, 300);
    let master = common::get_text(&c, o.egress_url(&format!("{vod}?hdnts={vtok}"))).await;
    let variant = master
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    assert!(variant.contains("hdnts="), "{master}");
    let base = "/i/clip_,360,540,p.mp4.csmil/";
    let playlist = common::get_text(&c, o.egress_url(&format!("{base}{variant}"))).await;
    let seg = playlist
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    assert!(seg.contains("hdnts="));
    assert_eq!(status(o.egress_url(&format!("{base}{seg}"))).await, 200);
    let utok = edgeauth_url_token(KEY, vod, 300);
    assert_eq!(
        status(o.egress_url(&format!("{vod}?hdnts={utok}"))).await,
        200
    );
    assert_eq!(
        status(o.egress_url(&format!(
            "/i/clip_,360,540,p.mp4.csmil/index_0_av.m3u8?hdnts={utok}"
        )))
        .await,
        403,
        "a URL token covers its one path only"
    );
    // /time and the player page stay open.
    assert_eq!(status(o.egress_url("/time")).await, 200);
    let log = o.log();
    assert!(!log.contains(&good), "a token reached the log");
    // One JSON line per request, the token redacted.
    let line = log
        .lines()
        .find(|l| l.contains("\"casterpak::access\"") && l.contains("hdnts=REDACTED"))
        .expect("an access line with the token redacted");
    let j: serde_json::Value = serde_json::from_str(line).unwrap();
    for field in [
        "listener", "method", "path", "status", "bytes", "ttfb_ms", "total_ms", "kind",
    ] {
        assert!(!j["fields"][field].is_null(), "{field} missing: {line}");
    }
}

/// The HTTP authorization callback, with its decisions cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_callback() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 8192];
            let mut got = Vec::new();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let t = String::from_utf8_lossy(&got);
                if t.contains("\r\n\r\n") && t.trim_end().ends_with('}') {
                    break;
                }
            }
            let body = String::from_utf8_lossy(&got);
            let allow = body.contains("\"token\":\"letmein\"");
            let status = if allow { "200 OK" } else { "403 Forbidden" };
            let _ = s.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_file(
        tmp.path(),
        &format!("[auth.playback]\nkey = \"{KEY}\"\ncallback_url = \"http://{addr}/auth\"\ncallback_cache_secs = 30\n"),
    );
    let o = start_with(&cfg, &[]);
    let c = reqwest::Client::new();
    let url = o.egress_url("/i/clip_360p.mp4/master.m3u8?hdnts=letmein");
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    let body = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("hdnts=letmein"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the second decision comes from the cache"
    );
    let denied = o.egress_url("/i/clip_360p.mp4/master.m3u8?hdnts=nope");
    assert_eq!(c.get(&denied).send().await.unwrap().status(), 403);
    assert_eq!(
        c.get(o.egress_url("/i/clip_360p.mp4/master.m3u8"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

/// Makes a test CA and a certificate for 127.0.0.1 signed by it; returns (ca, cert, key).
fn test_ca(dir: &Path) -> (String, String, String) {
    let p = |n: &str| dir.join(n).display().to_string();
    let sh = format!(
        "set -e; cd {d}; \
         openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=casterpak-test-ca 2>/dev/null; \
         openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null; \
         printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext.cnf; \
         openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf 2>/dev/null",
        d = dir.display()
    );
    let ok = Command::new("sh")
        .args(["-c", &sh])
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl");
    (p("ca.pem"), p("srv.pem"), p("srv.key"))
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-S"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn tls_and_http2() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(tmp.path());
    let o = Origin::start(&[
        "--egress-tls-cert",
        &cert,
        "--egress-tls-key",
        &key,
        "--api-tls-cert",
        &cert,
        "--api-tls-key",
        &key,
    ]);
    let e = format!("https://{}", o.egress);
    let a = format!("https://{}", o.api);
    let w = "%{http_code} %{http_version}";
    assert_eq!(
        curl(&[
            "--cacert",
            &ca,
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            w,
            &format!("{e}/time")
        ]),
        "200 2"
    );
    assert_eq!(
        curl(&[
            "--cacert",
            &ca,
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            w,
            &format!("{e}/i/clip_360p.mp4/master.m3u8")
        ]),
        "200 2"
    );
    assert_eq!(
        curl(&[
            "--cacert",
            &ca,
            "--http1.1",
            "-o",
            "/dev/null",
            "-w",
            w,
            &format!("{e}/time")
        ]),
        "200 1.1"
    );
    assert_eq!(
        curl(&[
            "--cacert",
            &ca,
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            w,
            &format!("{a}/livez")
        ]),
        "200 2"
    );
    // Without the CA the certificate is refused; plain HTTP on the TLS port gets nothing.
    assert!(!curl(&["-o", "/dev/null", "-w", w, &format!("{e}/time")]).starts_with("200"));
    assert!(!curl(&[
        "-o",
        "/dev/null",
        "-w",
        w,
        "--max-time",
        "3",
        &format!("http://{}/time", o.egress)
    ])
    .starts_with("200"));
    // Recording URLs given by the API name https.
    let r = curl(&[
        "--cacert",
        &ca,
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        "{\"stream\":\"live/x\"}",
        &format!("{a}/api/v1/recordings"),
    ]);
    assert!(r.contains("https://"), "{r}");
}
