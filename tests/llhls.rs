//! LL-HLS made by the origin from a real ffmpeg LL-DASH push (2 video renditions + audio),
//! read over HTTP with blocking reloads and held part requests while LL-DASH readers read
//! the same stream; then the end of the stream (EXT-X-ENDLIST, segments served from disk),
//! and the 503 of a reload that waits too long.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use casterpak::cmaf::{BoxScanner, ScanEvent};
use common::*;

fn media(text: &str) -> m3u8_rs::MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        other => panic!("not a media playlist: {other:?}\n{text}"),
    }
}

/// (MSN, part) of the PRELOAD-HINT.
fn hint(text: &str) -> (String, u64, u64) {
    let line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
        .unwrap_or_else(|| panic!("no hint in\n{text}"));
    let uri = line.split("URI=\"").nth(1).unwrap().trim_end_matches('"');
    let stem = uri.strip_suffix(".m4s").unwrap();
    let mut it = stem.rsplitn(3, '_');
    let part = it.next().unwrap().parse().unwrap();
    let msn = it.next().unwrap().parse().unwrap();
    (uri.to_owned(), msn, part)
}

fn part_target(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PART-INF:PART-TARGET="))
        .unwrap_or_else(|| panic!("no PART-INF in\n{text}"))
        .to_owned()
}

/// Every EXT-X-PART DURATION is at most PART-TARGET, and at least 85 % of it unless the
/// part is INDEPENDENT or the last of its segment.
fn check_part_durations(text: &str) {
    let target: f64 = part_target(text).parse().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.strip_prefix("#EXT-X-PART:DURATION=") else {
            continue;
        };
        let dur: f64 = rest.split(',').next().unwrap().parse().unwrap();
        assert!(dur <= target, "{l} over PART-TARGET {target}");
        let last_of_segment = lines
            .get(i + 1)
            .is_some_and(|n| n.starts_with("#EXTINF") || n.starts_with("#EXT-X-PRELOAD"));
        if !l.contains("INDEPENDENT=YES") && !last_of_segment {
            assert!(dur >= 0.85 * target, "{l} under 85 % of {target}");
        }
    }
}

fn chunks_in(bytes: &[u8]) -> usize {
    let mut scanner = BoxScanner::new();
    let mut events = Vec::new();
    scanner.feed(bytes, &mut events).unwrap();
    scanner.finish(&mut events).unwrap();
    events
        .iter()
        .filter(|e| matches!(e, ScanEvent::Chunk(_)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llhls_from_an_ldash_push_blocks_holds_parts_and_ends_as_vod() {
    let origin = Origin::start(&[
        "--stream-idle-secs",
        "4",
        "--memory-window-secs",
        "2",
        "--llhls-hold-plain-reload",
        "true",
    ]);
    let mut ffmpeg = ffmpeg_ldash_push(&origin, "l", 24, &[]);
    let client = reqwest::Client::new();
    let base = origin.egress_url("/live/l");
    assert!(
        wait_for_200(
            &client,
            &format!("{base}/llhls.m3u8"),
            Duration::from_secs(20)
        )
        .await,
        "no multivariant playlist; log:\n{}",
        origin.log()
    );

    // Multivariant: 2 variants with the audio group, CODECS from the MPD.
    let text = get_text(&client, format!("{base}/llhls.m3u8")).await;
    let mv = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => p,
        other => panic!("{other:?}\n{text}"),
    };
    assert_eq!(mv.variants.len(), 2, "{text}");
    assert_eq!(
        mv.variants[0].codecs.as_deref(),
        Some("avc1.64001e,mp4a.40.2")
    );
    assert_eq!(
        mv.variants[0].resolution.map(|r| (r.width, r.height)),
        Some((640, 360))
    );
    assert_eq!(mv.alternatives.len(), 1);
    assert_eq!(mv.alternatives[0].uri.as_deref(), Some("llhls_2.m3u8"));

    // Media playlist headers: gzip when accepted, Vary, short cache, CORS exposes Age/Date.
    let r = client
        .get(format!("{base}/llhls_0.m3u8"))
        .header("accept-encoding", "gzip")
        .header("origin", "http://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["vary"], "Accept-Encoding");
    assert_eq!(r.headers()["cache-control"], "public, max-age=1");
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        exposed.contains("age") && exposed.contains("date"),
        "{exposed}"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.bytes().await.unwrap()[..])
        .read_to_string(&mut text)
        .unwrap();
    let p = media(&text);
    assert_eq!(p.target_duration, 2);
    let first_part_target = part_target(&text);
    assert_eq!(
        first_part_target, "0.512",
        "ffmpeg's AAC chunks are 0.512 s"
    );
    assert!(text.contains("CAN-BLOCK-RELOAD=YES"));
    assert!(text.contains("#EXT-X-MAP:URI=\"init-stream0.m4s\""));
    assert!(text.contains("INDEPENDENT=YES"));
    assert!(text.contains("#EXT-X-RENDITION-REPORT:URI=\"llhls_1.m3u8\""));
    assert!(text.contains("#EXT-X-RENDITION-REPORT:URI=\"llhls_2.m3u8\""));
    let pdts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .collect();
    assert!(!pdts.is_empty());
    assert!(
        pdts.iter().all(|t| t.len() == 24 && t.ends_with('Z')),
        "{pdts:?}"
    );
    assert!(
        pdts.iter().any(|t| !t.ends_with(".000Z")),
        "PDT from the MPD's availabilityStartTime keeps milliseconds: {pdts:?}"
    );
    check_part_durations(&text);

    // With --llhls-hold-plain-reload, a plain reload (no _HLS_msn) is held until the next
    // part is complete, at most 1.5 x PART-TARGET: two in a row hint parts one apart (a
    // part later than that, on a loaded machine, gives the same hint: 2 of 3 pairs must
    // differ).
    let mut apart = 0;
    for _ in 0..3 {
        let a = hint(&get_text(&client, format!("{base}/llhls_0.m3u8")).await);
        let t = Instant::now();
        let b = hint(&get_text(&client, format!("{base}/llhls_0.m3u8")).await);
        apart += usize::from((a.1, a.2) != (b.1, b.2));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    assert!(
        apart >= 2,
        "plain reloads not held: {apart} of 3 pairs apart"
    );

    // LL-HLS readers on every rendition while the LL-DASH side is read below.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for i in 0..24 {
        let client = client.clone();
        let base = base.clone();
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let rep = i % 3;
            let mut count = 0u32;
            let mut url = format!("{base}/llhls_{rep}.m3u8");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client.get(&url).send().await.unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                if text.contains("#EXT-X-ENDLIST") {
                    break;
                }
                assert_eq!(status, 200, "{url}: {text}");
                let (_, msn, part) = hint(&text);
                url = format!("{base}/llhls_{rep}.m3u8?_HLS_msn={msn}&_HLS_part={part}");
                count += 1;
            }
            count
        }));
    }

    // Blocking reload for the hinted part and the hinted part itself, asked together
    // before the part exists: both held, both answered once the chunk is complete.
    let mut part_targets = std::collections::BTreeSet::from([first_part_target]);
    let mut held = Vec::new();
    for _ in 0..6 {
        let text = get_text(&client, format!("{base}/llhls_0.m3u8")).await;
        let (uri, msn, part) = hint(&text);
        let asked = Instant::now();
        let playlist = client
            .get(format!(
                "{base}/llhls_0.m3u8?_HLS_msn={msn}&_HLS_part={part}"
            ))
            .send();
        let part_req = client.get(format!("{base}/{uri}")).send();
        let (playlist, part_resp) = tokio::join!(playlist, part_req);
        let playlist = playlist.unwrap();
        assert_eq!(playlist.status(), 200);
        let text = playlist.text().await.unwrap();
        assert!(
            text.contains(&format!("URI=\"{uri}\"")),
            "the answered playlist lists the awaited part {uri}:\n{text}"
        );
        check_part_durations(&text);
        part_targets.insert(part_target(&text));
        let part_resp = part_resp.unwrap();
        assert_eq!(part_resp.status(), 200);
        assert_eq!(part_resp.headers()["content-type"], "video/mp4");
        assert!(part_resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age"));
        let bytes = part_resp.bytes().await.unwrap();
        assert_eq!(
            chunks_in(&bytes),
            1,
            "a part is exactly one complete CMAF chunk"
        );
        held.push(asked.elapsed());
        if held.len() == 3 {
            // The LL-DASH side meanwhile: the next segment is streamed chunk by chunk
            // and equals the concatenation of its LL-HLS parts.
            let seg = format!("{base}/chunk-stream0-{:05}.m4s", msn + 1);
            let t = Instant::now();
            let dash = client.get(&seg).send().await.unwrap();
            assert_eq!(dash.status(), 200);
            let dash_bytes = dash.bytes().await.unwrap();
            assert!(t.elapsed() > Duration::from_millis(1000), "streamed live");
            assert_eq!(chunks_in(&dash_bytes), 4);
            let mut joined = Vec::new();
            for i in 0..4 {
                let r = client
                    .get(format!("{base}/llhls-part_0_{}_{i}.m4s", msn + 1))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                joined.extend_from_slice(&r.bytes().await.unwrap());
            }
            assert!(joined == dash_bytes[..], "parts tile the segment");
        }
    }
    assert!(
        held.iter().all(|d| *d < Duration::from_millis(1500)),
        "held requests answered within a part: {held:?}"
    );
    assert_eq!(
        part_targets.len(),
        1,
        "PART-TARGET changed: {part_targets:?}"
    );

    // Directives: 400 at once for bad ones, 404 for unknown names.
    let text = get_text(&client, format!("{base}/llhls_0.m3u8")).await;
    let (_, msn, _) = hint(&text);
    for (q, status) in [
        ("_HLS_part=0".to_owned(), 400),
        (format!("_HLS_msn={}", msn + 3), 400),
        (format!("_HLS_msn={msn}&_HLS_part=20"), 400),
        ("_HLS_msn=x".to_owned(), 400),
    ] {
        let t = Instant::now();
        let r = client
            .get(format!("{base}/llhls_0.m3u8?{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{q}");
        assert!(t.elapsed() < Duration::from_millis(300), "{q} was held");
    }
    for path in [
        "llhls_9.m3u8",
        "llhls-part_9_1_0.m4s",
        "llhls-part_0_1_9.m4s",
    ] {
        let r = client.get(format!("{base}/{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = client
        .get(origin.egress_url("/live/none/llhls.m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Delta update once the playlist is longer than CAN-SKIP-UNTIL (12 s) + a segment:
    // skipped segments, the rest covers CAN-SKIP-UNTIL.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = get_text(&client, format!("{base}/llhls_0.m3u8")).await;
        if media(&text).segments.len() >= 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "playlist never reached 8 segments"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let delta = get_text(&client, format!("{base}/llhls_0.m3u8?_HLS_skip=YES")).await;
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{delta}");
    assert!(delta.contains("CAN-SKIP-UNTIL=12.000"));

    // The end: ffmpeg exits, the stream idles out, playlists get ENDLIST and every listed
    // segment is served (from the data dir after the 2 s memory window).
    let _ = ffmpeg.0.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reloads = 0;
    for r in readers {
        reloads += r.await.unwrap();
    }
    assert!(reloads > 100, "LL-HLS readers made only {reloads} reloads");
    let deadline = Instant::now() + Duration::from_secs(15);
    let ended = loop {
        let text = get_text(&client, format!("{base}/llhls_1.m3u8")).await;
        if text.contains("#EXT-X-ENDLIST") {
            break text;
        }
        assert!(Instant::now() < deadline, "no ENDLIST:\n{text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!ended.contains("#EXT-X-PART:"));
    assert!(!ended.contains("PRELOAD-HINT"));
    // An ended playlist ignores directives.
    let t = Instant::now();
    let r = client
        .get(format!("{base}/llhls_1.m3u8?_HLS_msn=999&_HLS_part=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() < Duration::from_millis(300));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = media(&ended);
    assert!(p.segments.len() >= 6, "{ended}");
    for s in &p.segments {
        let r = client
            .get(format!("{base}/{}", s.uri))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", s.uri);
        assert_eq!(chunks_in(&r.bytes().await.unwrap()), 4, "{}", s.uri);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_blocked_for_three_target_durations_gets_503() {
    let origin = Origin::start(&[
        "--stream-idle-secs",
        "60",
        "--llhls-hold-plain-reload",
        "false",
    ]);
    let mut ffmpeg = ffmpeg_ldash_push(&origin, "s", 30, &[]);
    let client = reqwest::Client::new();
    let base = origin.egress_url("/live/s");
    assert!(
        wait_for_200(
            &client,
            &format!("{base}/llhls_2.m3u8"),
            Duration::from_secs(20)
        )
        .await
    );
    // Must-fail of the held plain reload: with it off (the default, said here), two plain
    // reloads in a row are answered at once and (but for a part completing between them)
    // hint the same part.
    let mut same = 0;
    for _ in 0..3 {
        let a = hint(&get_text(&client, format!("{base}/llhls_2.m3u8")).await);
        let b = hint(&get_text(&client, format!("{base}/llhls_2.m3u8")).await);
        same += usize::from((a.1, a.2) == (b.1, b.2));
    }
    assert!(same > 0, "plain reloads held with the setting off");
    // The encoder dies (no final static MPD): the stream stalls without ending.
    let _ = ffmpeg.0.kill();
    let _ = ffmpeg.0.wait();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = get_text(&client, format!("{base}/llhls_2.m3u8")).await;
    assert!(!text.contains("ENDLIST"));
    let (uri, msn, part) = hint(&text);
    let t = Instant::now();
    let (playlist, part_resp) = tokio::join!(
        client
            .get(format!(
                "{base}/llhls_2.m3u8?_HLS_msn={msn}&_HLS_part={part}"
            ))
            .send(),
        client.get(format!("{base}/{uri}")).send()
    );
    let waited = t.elapsed();
    assert_eq!(playlist.unwrap().status(), 503);
    assert_eq!(part_resp.unwrap().status(), 404, "a part that never came");
    assert!(
        waited >= Duration::from_secs(6) && waited < Duration::from_secs(8),
        "503 after 3 x TARGETDURATION (6 s), got {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_stream_is_llhls_vod_after_a_restart() {
    let mut origin = Origin::start(&["--stream-idle-secs", "2"]);
    let mut ffmpeg = ffmpeg_ldash_push(&origin, "r", 9, &[]);
    let client = reqwest::Client::new();
    let base = origin.egress_url("/live/r");
    assert!(
        wait_for_200(
            &client,
            &format!("{base}/llhls_0.m3u8"),
            Duration::from_secs(20)
        )
        .await
    );
    let _ = ffmpeg.0.wait();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = get_text(&client, format!("{base}/llhls_0.m3u8")).await;
    assert!(before.contains("#EXT-X-ENDLIST"), "{before}");
    origin.restart();
    let after = get_text(&client, format!("{base}/llhls_0.m3u8")).await;
    assert_eq!(
        media(&after).segments.len(),
        media(&before).segments.len(),
        "before:\n{before}\nafter:\n{after}"
    );
    assert!(after.contains("#EXT-X-ENDLIST"));
    assert!(after.contains("#EXT-X-PART-INF:PART-TARGET=0.512"));
    let mv = client
        .get(format!("{base}/llhls.m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(mv.status(), 200);
    for s in media(&after).segments {
        let r = client
            .get(format!("{base}/{}", s.uri))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", s.uri);
    }
}
