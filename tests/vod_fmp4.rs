//! The same MP4s as HLS with CMAF segments (`/cmaf/`) and as DASH (`/dash/`): every
//! supported fixture decodes with `ffmpeg -v warning` without a message, has the source's
//! duration and packet count, the same segment boundaries as the TS output, and the DASH
//! MPD parses with an independent MPD reader (`dash-mpd-core`).

#[path = "vod_common.rs"]
mod common;

use std::path::Path;

use casterpak::error::ErrorKind;
use casterpak::vod::csmil::Format;
use casterpak::vod::{Vod, VodReply};
use common::*;

const D: f64 = 4.0;

async fn get(vod: &Vod, format: Format, path: &str) -> Result<VodReply, casterpak::vod::VodError> {
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    vod.respond_as(format, p, q).await
}

async fn body(vod: &Vod, format: Format, path: &str) -> Vec<u8> {
    get(vod, format, path)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .body
        .to_vec()
}

/// Decodes `input` fully with ffmpeg at `-v warning`; returns what it printed.
fn decode_warnings(input: &Path) -> String {
    decode_at(input, "warning")
}

/// Fetches a CMAF media playlist, its `EXT-X-MAP` and its segments into `out` (query
/// strings dropped from the local names). Returns (init, segment names, EXTINF seconds).
async fn dump_cmaf(
    vod: &Vod,
    asset: &str,
    playlist: &str,
    out: &Path,
) -> (String, Vec<String>, Vec<f64>) {
    std::fs::create_dir_all(out).unwrap();
    let text = body(vod, Format::Cmaf, &format!("{asset}/{playlist}")).await;
    let pl = m3u8_rs::parse_media_playlist_res(&text).expect("m3u8-rs reads the playlist");
    let local = |uri: &str| uri.split('?').next().unwrap().to_string();
    let map = pl.segments[0].map.as_ref().expect("EXT-X-MAP").uri.clone();
    let init = local(&map);
    std::fs::write(
        out.join(&init),
        body(vod, Format::Cmaf, &format!("{asset}/{map}")).await,
    )
    .unwrap();
    let mut names = Vec::new();
    let mut durations = Vec::new();
    for s in &pl.segments {
        let name = local(&s.uri);
        std::fs::write(
            out.join(&name),
            body(vod, Format::Cmaf, &format!("{asset}/{}", s.uri)).await,
        )
        .unwrap();
        names.push(name);
        durations.push(f64::from(s.duration));
    }
    let rewritten: String = String::from_utf8_lossy(&text)
        .lines()
        .map(|l| {
            let l = if l.starts_with('#') {
                l.replace(&map, &init)
            } else {
                local(l)
            };
            format!("{l}\n")
        })
        .collect();
    std::fs::write(out.join(local(playlist)), rewritten).unwrap();
    (init, names, durations)
}

/// init + segments as one fragmented MP4 file (what a player's buffer holds).
fn join(dir: &Path, init: &str, names: &[String], out: &Path) {
    let mut all = std::fs::read(dir.join(init)).unwrap();
    for n in names {
        all.extend(std::fs::read(dir.join(n)).unwrap());
    }
    std::fs::write(out, all).unwrap();
}

fn frame_of(name: &str, video: bool) -> f64 {
    match (name, video) {
        ("ntsc.mp4", true) => 1001.0 / 30000.0,
        (_, true) => 1.0 / 25.0,
        ("ntsc.mp4", false) => 1024.0 / 44100.0,
        (_, false) => 1024.0 / 48000.0,
    }
}

#[tokio::test]
async fn every_supported_fixture_as_cmaf_hls() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let out = tempfile::tempdir().unwrap();
    for &(name, has_video, has_audio) in SUPPORTED {
        let master =
            String::from_utf8(body(&vod, Format::Cmaf, &format!("{name}/master.m3u8")).await)
                .unwrap();
        m3u8_rs::parse_master_playlist_res(master.as_bytes()).expect("m3u8-rs reads the master");
        let ts_text = body(&vod, Format::Ts, &format!("{name}/index_0_av.m3u8")).await;
        let ts_pl = m3u8_rs::parse_media_playlist_res(&ts_text).unwrap();
        let src = fx.join(name);
        for (media, present, sel) in [("v", has_video, "v:0"), ("a", has_audio, "a:0")] {
            let playlist = format!("index_0_{media}.m3u8");
            if !present {
                assert!(!master.contains(&playlist), "{name}: {master}");
                let e = get(&vod, Format::Cmaf, &format!("{name}/{playlist}"))
                    .await
                    .unwrap_err();
                assert_eq!(e.kind(), ErrorKind::NotFound, "{name} {media}: {e}");
                continue;
            }
            assert!(master.contains(&playlist), "{name}: {master}");
            let dir = out.path().join(format!("{name}_{media}"));
            let (init, names, durations) = dump_cmaf(&vod, name, &playlist, &dir).await;
            let warn = decode_warnings(&dir.join(&playlist));
            assert!(warn.is_empty(), "{name} {media}: {warn}");
            let total: f64 = durations.iter().sum();
            let want = probe_duration(&src, sel);
            let frame = frame_of(name, media == "v");
            assert!(
                (total - want).abs() <= frame + 0.0015,
                "{name} {media}: playlist {total} s, source {want} s"
            );
            let file = dir.join("all.mp4");
            join(&dir, &init, &names, &file);
            // Every packet of the source, the ones its edit list marks to discard included
            // (a cut's pre-roll, decoded for what follows).
            assert_eq!(
                packets(&file, sel).len(),
                sample_count(&src, sel),
                "{name} {media}: packets"
            );
            if media == "v" || !has_video {
                // The same boundaries as the TS output: the same number of segments, each
                // as long within a frame (TS counts a segment from its keyframe; fMP4 from
                // its earliest presentation time, earlier with an open GOP's leading
                // pictures, as DASH's S@t requires).
                let ts: Vec<f64> = ts_pl
                    .segments
                    .iter()
                    .map(|s| f64::from(s.duration))
                    .collect();
                assert_eq!(ts.len(), durations.len(), "{name} {media}: segment count");
                for (a, b) in ts.iter().zip(&durations) {
                    assert!(
                        (a - b).abs() <= frame + 0.0015,
                        "{name} {media}: TS {ts:?}, fMP4 {durations:?}"
                    );
                }
            }
        }
    }
}

/// The segment times of each representation of an MPD: (number, t, d) from its
/// `SegmentTimeline`.
fn timeline(st: &dash_mpd_core::SegmentTemplate) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    let mut n = st.startNumber.unwrap_or(1);
    let mut t = 0u64;
    for s in &st
        .SegmentTimeline
        .as_ref()
        .expect("SegmentTimeline")
        .segments
    {
        if let Some(st) = s.t {
            t = st;
        }
        for _ in 0..=s.r.unwrap_or(0).max(0) as u64 {
            out.push((n, t, s.d));
            t += s.d;
            n += 1;
        }
    }
    out
}

/// Fetches a DASH MPD and every init and media segment it names into `out`.
async fn dump_dash(vod: &Vod, asset: &str, query: &str, out: &Path) -> dash_mpd_core::MPD {
    std::fs::create_dir_all(out).unwrap();
    let text =
        String::from_utf8(body(vod, Format::Dash, &format!("{asset}/manifest.mpd{query}")).await)
            .unwrap();
    let mpd = dash_mpd_core::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let local = |uri: &str| uri.split('?').next().unwrap().to_string();
    let mut rewritten = text.clone();
    for period in &mpd.periods {
        for set in &period.adaptations {
            for rep in &set.representations {
                let Some(st) = rep.SegmentTemplate.as_ref() else {
                    // A text set: one whole WebVTT file at its BaseURL.
                    let base = rep.BaseURL.first().expect("SegmentTemplate or BaseURL");
                    let uri = base.base.replace("&amp;", "&");
                    std::fs::write(
                        out.join(local(&uri)),
                        body(vod, Format::Dash, &format!("{asset}/{uri}")).await,
                    )
                    .unwrap();
                    continue;
                };
                let init = st.initialization.clone().unwrap().replace("&amp;", "&");
                std::fs::write(
                    out.join(local(&init)),
                    body(vod, Format::Dash, &format!("{asset}/{init}")).await,
                )
                .unwrap();
                let media = st.media.clone().unwrap().replace("&amp;", "&");
                for (n, _, _) in timeline(st) {
                    let uri = media.replace("$Number$", &n.to_string());
                    std::fs::write(
                        out.join(local(&uri)),
                        body(vod, Format::Dash, &format!("{asset}/{uri}")).await,
                    )
                    .unwrap();
                }
            }
        }
    }
    if let Some(q) = query.strip_prefix('?') {
        rewritten = rewritten.replace(&format!("?{}", q.replace('&', "&amp;")), "");
    }
    std::fs::write(out.join("manifest.mpd"), rewritten).unwrap();
    mpd
}

fn secs_of(d: &std::time::Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::test]
async fn every_supported_fixture_as_dash() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let out = tempfile::tempdir().unwrap();
    for &(name, has_video, has_audio) in SUPPORTED {
        let dir = out.path().join(name);
        let mpd = dump_dash(&vod, name, "", &dir).await;
        // Media sets (a subtitle track's text set is checked in tests/vod_subtitles.rs).
        let sets: Vec<_> = mpd.periods[0]
            .adaptations
            .iter()
            .filter(|s| s.contentType.as_deref() != Some("text"))
            .collect();
        let mut kinds: Vec<&str> = sets
            .iter()
            .map(|s| s.contentType.as_deref().unwrap_or(""))
            .collect();
        kinds.dedup(); // two_audio.mp4 has an audio set per track
        let want_kinds: Vec<&str> = [("video", has_video), ("audio", has_audio)]
            .iter()
            .filter(|k| k.1)
            .map(|k| k.0)
            .collect();
        assert_eq!(kinds, want_kinds, "{name}");
        let warn = decode_warnings(&dir.join("manifest.mpd"));
        assert!(warn.is_empty(), "{name}: {warn}");
        let src = fx.join(name);
        let total = secs_of(mpd.mediaPresentationDuration.as_ref().unwrap());
        let (sel, frame) = if has_video {
            ("v:0", frame_of(name, true))
        } else {
            ("a:0", frame_of(name, false))
        };
        let want = probe_duration(&src, sel);
        assert!(
            (total - want).abs() <= frame + 0.0015,
            "{name}: MPD {total} s, source {want} s"
        );
        let mut starts = Vec::new();
        for set in sets {
            let rep = &set.representations[0];
            let st = rep.SegmentTemplate.as_ref().unwrap();
            let ts = st.timescale.unwrap() as f64;
            let tl = timeline(st);
            let sum: f64 = tl.iter().map(|x| x.2 as f64).sum::<f64>() / ts;
            let sel = if set.contentType.as_deref() == Some("video") {
                "v:0"
            } else {
                "a:0"
            };
            let want = probe_duration(&src, sel);
            let frame = frame_of(name, sel == "v:0");
            assert!(
                (sum - want).abs() <= frame + 0.0015,
                "{name} {sel}: timeline {sum} s, source {want} s"
            );
            // The timeline starts at or just after presentationTimeOffset (the Period
            // start: the earliest media of any track), never before.
            let pto = st.presentationTimeOffset.unwrap();
            assert!(
                tl[0].1 >= pto,
                "{name} {sel}: t {} before the period start {pto}",
                tl[0].1
            );
            starts.push((tl[0].1 - pto) as f64 / ts);
        }
        // One track starts the period (within a tick).
        let first = starts.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            first < 0.0001,
            "{name}: tracks start {starts:?} s after the period start"
        );
    }
}

#[tokio::test]
async fn dash_and_cmaf_share_the_segment_bytes() {
    let vod = vod(&samples_dir(), 6.0);
    let set = "clip_,360,540,720,p.mp4.csmil";
    let a = get(&vod, Format::Dash, &format!("{set}/segment2_1_v.m4s"))
        .await
        .unwrap();
    let b = get(&vod, Format::Cmaf, &format!("{set}/segment2_1_v.m4s"))
        .await
        .unwrap();
    let c = get(&vod, Format::Cmaf, "clip_540p.mp4/segment2_0_v.m4s")
        .await
        .unwrap();
    assert_eq!(a.body, b.body);
    assert_eq!(a.etag, b.etag, "one cache entry");
    assert_eq!(a.etag, c.etag, "the file decides, not the URL");
    assert_eq!(a.content_type, "video/mp4");
    let produced = vod.stats().produced;
    get(&vod, Format::Dash, "clip_540p.mp4/segment2_0_v.m4s")
        .await
        .unwrap();
    assert_eq!(vod.stats().produced, produced, "served from the cache");
    let i = get(&vod, Format::Dash, &format!("{set}/init_0_a.mp4"))
        .await
        .unwrap();
    assert_eq!(i.content_type, "audio/mp4");
    let m = get(&vod, Format::Dash, &format!("{set}/manifest.mpd"))
        .await
        .unwrap();
    assert_eq!(m.content_type, "application/dash+xml");
    // The playlists of the two families differ, and neither names the other's files.
    let ts_master = body(&vod, Format::Ts, &format!("{set}/master.m3u8")).await;
    let cmaf_master = body(&vod, Format::Cmaf, &format!("{set}/master.m3u8")).await;
    assert_ne!(ts_master, cmaf_master);
    let cmaf_master = String::from_utf8(cmaf_master).unwrap();
    assert!(
        cmaf_master.contains("#EXT-X-MEDIA:TYPE=AUDIO"),
        "{cmaf_master}"
    );
    assert!(cmaf_master.contains("index_2_v.m3u8"), "{cmaf_master}");
    assert!(!cmaf_master.contains(".ts"), "{cmaf_master}");
}

#[tokio::test]
async fn a_set_as_dash_lists_every_rendition_and_plays_in_ffmpeg() {
    let out = tempfile::tempdir().unwrap();
    let vod = vod(&samples_dir(), 6.0);
    let set = "clip_,360,540,720,p.mp4.csmil";
    let mpd = dump_dash(&vod, set, "", out.path()).await;
    let video = &mpd.periods[0].adaptations[0];
    assert_eq!(video.representations.len(), 3);
    let heights: Vec<u64> = video
        .representations
        .iter()
        .map(|r| r.height.unwrap())
        .collect();
    assert_eq!(heights, [360, 540, 720]);
    let warn = decode_warnings(&out.path().join("manifest.mpd"));
    assert!(warn.is_empty(), "{warn}");
    // The bitrate filter keeps only the renditions it accepts.
    let e = get(&vod, Format::Dash, &format!("{set}/manifest.mpd?b=-1"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let all =
        String::from_utf8(body(&vod, Format::Dash, &format!("{set}/manifest.mpd?b=0-")).await)
            .unwrap();
    let all = dash_mpd_core::parse(&all).unwrap();
    assert_eq!(all.periods[0].adaptations[0].representations.len(), 3);
    // b= (kbit/s) in the DASH and the CMAF HLS manifests: the 720p rendition alone.
    let hi =
        String::from_utf8(body(&vod, Format::Dash, &format!("{set}/manifest.mpd?b=900-")).await)
            .unwrap();
    let hi = dash_mpd_core::parse(&hi).unwrap();
    let heights: Vec<u64> = hi.periods[0].adaptations[0]
        .representations
        .iter()
        .map(|r| r.height.unwrap())
        .collect();
    assert_eq!(heights, [720]);
    let master = body(&vod, Format::Cmaf, &format!("{set}/master.m3u8?b=900-")).await;
    let pl = m3u8_rs::parse_master_playlist_res(&master).unwrap();
    let video: Vec<&str> = pl
        .variants
        .iter()
        .filter(|v| !v.is_i_frame)
        .map(|v| v.uri.split('?').next().unwrap())
        .collect();
    assert_eq!(
        video,
        ["index_2_v.m3u8"],
        "{}",
        String::from_utf8_lossy(&master)
    );
}

#[tokio::test]
async fn clip_window_for_dash_and_cmaf() {
    let fx = fixtures();
    let vod = vod(fx, 2.0);
    let out = tempfile::tempdir().unwrap();
    let q = "?start=2.5&end=7";
    let (_, names, durations) = dump_cmaf(
        &vod,
        "faststart.mp4",
        &format!("index_0_v.m3u8{q}"),
        out.path(),
    )
    .await;
    let total: f64 = durations.iter().sum();
    // GOPs are 2 s: the clip starts at the keyframe at 2 s and ends at the one at 8 s.
    assert!((total - 6.0).abs() < 0.01, "{total}");
    assert_eq!(names.len(), 3);
    let warn = decode_warnings(&out.path().join("index_0_v.m3u8"));
    assert!(warn.is_empty(), "{warn}");
    let dir = out.path().join("dash");
    let mpd = dump_dash(&vod, "faststart.mp4", q, &dir).await;
    let total = secs_of(mpd.mediaPresentationDuration.as_ref().unwrap());
    assert!((total - 6.0).abs() < 0.01, "{total}");
    let warn = decode_warnings(&dir.join("manifest.mpd"));
    assert!(warn.is_empty(), "{warn}");
    let master =
        String::from_utf8(body(&vod, Format::Cmaf, &format!("faststart.mp4/master.m3u8{q}")).await)
            .unwrap();
    assert!(master.contains(&format!("index_0_v.m3u8{q}")), "{master}");
}

#[tokio::test]
async fn fmp4_routes_refuse_what_they_should() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let cases: &[(Format, &str, ErrorKind)] = &[
        (
            Format::Cmaf,
            "faststart.mp4/segment99_0_v.m4s",
            ErrorKind::NotFound,
        ),
        (
            Format::Cmaf,
            "audio_only.mp4/init_0_v.mp4",
            ErrorKind::NotFound,
        ),
        (
            Format::Dash,
            "video_only.mp4/segment1_0_a.m4s",
            ErrorKind::NotFound,
        ),
        (
            Format::Dash,
            "faststart.mp4/master.m3u8",
            ErrorKind::NotFound,
        ),
        (
            Format::Cmaf,
            "faststart.mp4/manifest.mpd",
            ErrorKind::NotFound,
        ),
        (
            Format::Ts,
            "faststart.mp4/segment1_0_v.m4s",
            ErrorKind::NotFound,
        ),
        (
            Format::Dash,
            "faststart.mp4/segment0_0_v.m4s",
            ErrorKind::NotFound,
        ),
        (
            Format::Dash,
            "../faststart.mp4/manifest.mpd",
            ErrorKind::Forbidden,
        ),
        (
            Format::Cmaf,
            "x/,..,/a.mp4.csmil/master.m3u8",
            ErrorKind::Forbidden,
        ),
        (
            Format::Dash,
            "encrypted.mp4/manifest.mpd",
            ErrorKind::Unsupported,
        ),
    ];
    for (format, path, kind) in cases {
        let e = get(&vod, *format, path).await.unwrap_err();
        assert_eq!(e.kind(), *kind, "{format:?} {path}: {e}");
    }
}

/// The decode check can fail: a truncated fragment in the playlist is reported.
#[tokio::test]
async fn a_truncated_fragment_is_caught() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let out = tempfile::tempdir().unwrap();
    let (_, names, _) = dump_cmaf(&vod, "faststart.mp4", "index_0_v.m3u8", out.path()).await;
    let victim = out.path().join(&names[1]);
    let data = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &data[..data.len() * 2 / 3]).unwrap();
    let warn = decode_warnings(&out.path().join("index_0_v.m3u8"));
    assert!(
        !warn.is_empty(),
        "a truncated fragment decoded without a message"
    );
}

/// A file with two audio tracks (eng "English", fra "Français"): both are offered, each
/// with its language and name, the first by default, in CMAF HLS and in DASH.
#[tokio::test]
async fn two_audio_languages_as_cmaf_and_dash() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let master =
        String::from_utf8(body(&vod, Format::Cmaf, "two_audio.mp4/master.m3u8").await).unwrap();
    let media: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA"))
        .collect();
    assert_eq!(media.len(), 2, "{master}");
    assert!(
        media[0].contains("LANGUAGE=\"en\"") && media[0].contains("NAME=\"English\""),
        "{master}"
    );
    assert!(media[0].contains("DEFAULT=YES") && media[0].contains("URI=\"index_0_a.m3u8\""));
    assert!(
        media[1].contains("LANGUAGE=\"fr\"") && media[1].contains("NAME=\"Français\""),
        "{master}"
    );
    assert!(!media[1].contains("DEFAULT=YES") && media[1].contains("URI=\"index_0_a1.m3u8\""));
    m3u8_rs::parse_master_playlist_res(master.as_bytes()).expect("m3u8-rs reads the master");

    let out = tempfile::tempdir().unwrap();
    let src = fx.join("two_audio.mp4");
    for (playlist, sel) in [("index_0_a.m3u8", "a:0"), ("index_0_a1.m3u8", "a:1")] {
        let dir = out.path().join(playlist);
        let (init, names, durations) = dump_cmaf(&vod, "two_audio.mp4", playlist, &dir).await;
        let warn = decode_warnings(&dir.join(playlist));
        assert!(warn.is_empty(), "{playlist}: {warn}");
        let file = dir.join("all.mp4");
        join(&dir, &init, &names, &file);
        assert_eq!(
            packets(&file, "a:0").len(),
            packets(&src, sel).len(),
            "{playlist}"
        );
        let total: f64 = durations.iter().sum();
        let want = probe_duration(&src, sel);
        assert!(
            (total - want).abs() <= 1024.0 / 48000.0 + 0.0015,
            "{playlist}: {total} vs {want}"
        );
    }
    // The second track's fragments are the second track's bytes (the 880 Hz tone), not
    // the first's.
    let a = body(&vod, Format::Cmaf, "two_audio.mp4/segment1_0_a.m4s").await;
    let a1 = body(&vod, Format::Cmaf, "two_audio.mp4/segment1_0_a1.m4s").await;
    assert_ne!(a, a1);

    let dir = out.path().join("dash");
    let mpd = dump_dash(&vod, "two_audio.mp4", "", &dir).await;
    let audio: Vec<_> = mpd.periods[0]
        .adaptations
        .iter()
        .filter(|s| s.contentType.as_deref() == Some("audio"))
        .collect();
    assert_eq!(audio.len(), 2);
    assert_eq!(audio[0].lang.as_deref(), Some("en"));
    assert_eq!(audio[1].lang.as_deref(), Some("fr"));
    assert!(audio[0]
        .Role
        .iter()
        .any(|r| r.value.as_deref() == Some("main")));
    assert!(audio[1].Role.is_empty());
    let warn = decode_warnings(&dir.join("manifest.mpd"));
    assert!(warn.is_empty(), "{warn}");
    // A track the file does not have.
    let e = get(&vod, Format::Cmaf, "two_audio.mp4/index_0_a2.m3u8")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = get(&vod, Format::Cmaf, "two_audio.mp4/index_0_a0.m3u8")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

/// (first video frame time, flash times) of a decodable input, in its own timeline
/// (`-copyts`): a flash is a frame whose mean luma is above 100.
fn flashes(input: &Path) -> (f64, Vec<f64>) {
    let (ok, out, err) = run(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-copyts",
            "-i",
            &input.to_string_lossy(),
            "-an",
            "-vf",
            "signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-",
            "-f",
            "null",
            "-",
        ],
    );
    assert!(ok, "{err}");
    let mut first = None;
    let mut t = 0.0;
    let mut out_v = Vec::new();
    for l in out.lines() {
        if let Some(p) = l.split("pts_time:").nth(1) {
            t = p.trim().parse().unwrap();
            first.get_or_insert(t);
        } else if let Some(y) = l.strip_prefix("lavfi.signalstats.YAVG=") {
            if y.trim().parse::<f64>().unwrap() > 100.0 {
                out_v.push(t);
            }
        }
    }
    (first.expect("no video frame"), out_v)
}

/// Beep onsets (ends of silence) of a decodable input, in its own timeline (`-copyts`).
fn beeps(input: &Path) -> Vec<f64> {
    let (_, _, err) = run(
        "ffmpeg",
        &[
            "-nostdin",
            "-copyts",
            "-i",
            &input.to_string_lossy(),
            "-vn",
            "-af",
            "silencedetect=n=-40dB:d=0.02",
            "-f",
            "null",
            "-",
        ],
    );
    err.split("silence_end: ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Every flash after the first frame (`first`) has a beep within `tol` seconds; returns
/// the largest offset.
fn paired(first: f64, flashes: &[f64], beeps: &[f64], tol: f64, what: &str) -> f64 {
    assert!(flashes.len() >= 3, "{what}: flashes {flashes:?}");
    let mut worst: f64 = 0.0;
    for f in flashes {
        let d = beeps.iter().map(|b| (b - f).abs()).fold(f64::MAX, f64::min);
        if *f > first + 0.05 {
            // The flash at presentation 0 has no silence before its beep.
            assert!(d <= tol, "{what}: flash at {f} s, beeps {beeps:?}");
            worst = worst.max(d);
        }
    }
    worst
}

/// The sync fixture (a white frame and a beep at every even second) and its `-ss 3.3 -c
/// copy` cut (edit lists on both tracks): decoded the way a viewer sees it, every output
/// shows each flash at the source's time (relative to the first frame shown) and hears its
/// beep with it, within one frame (40 ms).
#[tokio::test]
async fn sync_fixture_flashes_and_beeps_line_up_in_every_output() {
    const FRAME: f64 = 0.04;
    let fx = fixtures();
    let vod = vod(fx, 2.0);
    let out = tempfile::tempdir().unwrap();
    for name in ["sync.mp4", "sync_cut.mp4"] {
        let src = fx.join(name);
        let (src_first, src_flashes) = flashes(&src);
        let src_rel: Vec<f64> = src_flashes.iter().map(|t| t - src_first).collect();
        paired(
            src_first,
            &src_flashes,
            &beeps(&src),
            FRAME,
            &format!("{name} source"),
        );
        // Presentation time 0 of every output is TIME_OFFSET_SECS in its own timestamps (the
        // playlist's and the MPD's timeline start there). Frames before it are the pre-roll
        // an edit list skips: decoded for the frames after them, not part of the
        // presentation (a player that shows them shows them before the timeline's start).
        let zero = casterpak::vod::fmp4::TIME_OFFSET_SECS as f64;
        let check = |what: &str, first: f64, fl: &[f64], be: &[f64]| {
            let rel: Vec<f64> = fl
                .iter()
                .map(|t| t - zero)
                .filter(|t| *t > -0.001)
                .collect();
            let pre_roll = first < zero - 0.001;
            assert_eq!(
                rel.len(),
                src_rel.len(),
                "{name} {what}: flashes {rel:?}, source {src_rel:?}"
            );
            for (a, b) in rel.iter().zip(&src_rel) {
                assert!(
                    (a - b).abs() <= FRAME + 0.001,
                    "{name} {what}: flashes {rel:?}, source {src_rel:?}"
                );
            }
            let worst = paired(zero, fl, be, FRAME + 0.001, &format!("{name} {what}"));
            eprintln!(
                "{name} {what}: flashes at {rel:?} s of presentation time, A/V within {:.0} ms{}",
                worst * 1000.0,
                if pre_roll {
                    format!(", pre-roll from {:.2} s", first - zero)
                } else {
                    String::new()
                }
            );
        };
        // HLS with TS: one muxed playlist.
        let dir = out.path().join(format!("{name}_ts"));
        let f = Fetcher::Service(&vod);
        dump_variant(&f, name, "index_0_av.m3u8", &dir).await;
        let pl = dir.join("index_0_av.m3u8");
        let (first, fl) = flashes(&pl);
        check("TS", first, &fl, &beeps(&pl));
        // CMAF HLS: the video and the audio playlists, one timeline.
        let dir = out.path().join(format!("{name}_cmaf"));
        dump_cmaf(&vod, name, "index_0_v.m3u8", &dir).await;
        dump_cmaf(&vod, name, "index_0_a.m3u8", &dir).await;
        let (first, fl) = flashes(&dir.join("index_0_v.m3u8"));
        check("CMAF", first, &fl, &beeps(&dir.join("index_0_a.m3u8")));
        // DASH.
        let dir = out.path().join(format!("{name}_dash"));
        dump_dash(&vod, name, "", &dir).await;
        let mpd = dir.join("manifest.mpd");
        let (first, fl) = flashes(&mpd);
        check("DASH", first, &fl, &beeps(&mpd));
    }
}

/// A clip (`?start=&end=`) of the edit-listed cut: every format decodes at `-v warning`
/// without a message, and in each every flash of the clip but the first (which has no
/// silence before its beep) comes with its beep within one frame.
#[tokio::test]
async fn a_clip_of_the_cut_sync_fixture_keeps_sync_in_every_format() {
    const FRAME: f64 = 0.04;
    let fx = fixtures();
    let vod = vod(fx, 2.0);
    let out = tempfile::tempdir().unwrap();
    let name = "sync_cut.mp4";
    let q = "?start=1.5&end=8";
    let check = |what: &str, pl: &Path, audio: &Path| {
        let warn = decode_warnings(pl);
        assert!(warn.is_empty(), "{what}: {warn}");
        let (first, fl) = flashes(pl);
        let worst = paired(first, &fl, &beeps(audio), FRAME + 0.001, what);
        eprintln!(
            "clip {q} of {name}, {what}: A/V within {:.0} ms",
            worst * 1000.0
        );
    };
    let dir = out.path().join("ts");
    let f = Fetcher::Service(&vod);
    dump_variant(&f, name, &format!("index_0_av.m3u8{q}"), &dir).await;
    let pl = dir.join("index_0_av.m3u8");
    check("TS", &pl, &pl);
    let dir = out.path().join("cmaf");
    dump_cmaf(&vod, name, &format!("index_0_v.m3u8{q}"), &dir).await;
    dump_cmaf(&vod, name, &format!("index_0_a.m3u8{q}"), &dir).await;
    check(
        "CMAF",
        &dir.join("index_0_v.m3u8"),
        &dir.join("index_0_a.m3u8"),
    );
    let dir = out.path().join("dash");
    dump_dash(&vod, name, q, &dir).await;
    let mpd = dir.join("manifest.mpd");
    check("DASH", &mpd, &mpd);
}

/// Video packets ffprobe flags as keyframes in `file`.
fn key_packets(file: &Path) -> usize {
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
            "-of",
            "csv=p=0",
            &file.to_string_lossy(),
        ],
    );
    assert!(ok, "{err}");
    out.lines().filter(|l| l.starts_with('K')).count()
}

/// I-frame playlists (RFC 8216bis §4.4.3.6), every keyframe: listed in both masters, read
/// by m3u8-rs; as many I-frames as the media playlist's segments hold keyframes (ffprobe's
/// count over all of them), their durations summing to the media playlist's; each I-frame
/// resource is one video frame, a keyframe, that ffmpeg decodes without a message (TS:
/// PAT + PMT + its PES; fMP4: one CMAF fragment after the video's CMAF header).
#[tokio::test]
async fn iframe_playlists_for_ts_and_cmaf() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let out = tempfile::tempdir().unwrap();
    for &(name, has_video, _) in SUPPORTED {
        for format in [Format::Ts, Format::Cmaf] {
            let master =
                String::from_utf8(body(&vod, format, &format!("{name}/master.m3u8")).await)
                    .unwrap();
            if !has_video {
                assert!(!master.contains("I-FRAME"), "{name}: {master}");
                continue;
            }
            assert!(
                master.contains("#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=")
                    && master.contains("URI=\"iframes_0.m3u8\""),
                "{name} {format:?}: {master}"
            );
            let m = m3u8_rs::parse_master_playlist_res(master.as_bytes())
                .expect("m3u8-rs reads the master");
            assert!(m.variants.iter().any(|v| v.is_i_frame), "{name} {format:?}");
            let text = body(&vod, format, &format!("{name}/iframes_0.m3u8")).await;
            let pl = m3u8_rs::parse_media_playlist_res(&text)
                .expect("m3u8-rs reads the I-frame playlist");
            assert!(pl.i_frames_only, "{name} {format:?}");
            let (media, ext) = if format == Format::Ts {
                ("index_0_av.m3u8", "ts")
            } else {
                ("index_0_v.m3u8", "mp4")
            };
            let full = m3u8_rs::parse_media_playlist_res(
                &body(&vod, format, &format!("{name}/{media}")).await,
            )
            .unwrap();
            // Every segment of the media playlist, one file: its keyframes.
            let mut all = Vec::new();
            if format == Format::Cmaf {
                all.extend(body(&vod, format, &format!("{name}/init_0_v.mp4")).await);
            }
            for s in &full.segments {
                all.extend(body(&vod, format, &format!("{name}/{}", s.uri)).await);
            }
            let whole = out.path().join(format!("{name}_all.{ext}"));
            std::fs::write(&whole, &all).unwrap();
            let keyframes = key_packets(&whole);
            assert!(
                keyframes > full.segments.len(),
                "{name}: {keyframes} keyframes"
            );
            assert_eq!(
                pl.segments.len(),
                keyframes,
                "{name} {format:?}: one I-frame per keyframe"
            );
            let total = |p: &m3u8_rs::MediaPlaylist| -> f64 {
                p.segments.iter().map(|s| f64::from(s.duration)).sum()
            };
            assert!(
                (total(&pl) - total(&full)).abs() < 0.0015,
                "{name} {format:?}: I-frames last {} s, segments {} s",
                total(&pl),
                total(&full)
            );
            let last = pl.segments.len() - 1;
            for (k, s) in pl.segments.iter().enumerate() {
                assert!(s.byte_range.is_none(), "{name}: a resource per I-frame");
                let bytes = body(&vod, format, &format!("{name}/{}", s.uri)).await;
                let mut file_bytes = Vec::new();
                if format == Format::Ts {
                    assert!(
                        bytes.len() % 188 == 0 && bytes[0] == 0x47,
                        "{name} {}",
                        s.uri
                    );
                } else {
                    assert_eq!(&bytes[4..8], b"styp", "{name} {}", s.uri);
                    assert_eq!(&bytes[28..32], b"moof", "{name} {}", s.uri);
                    file_bytes.extend(body(&vod, format, &format!("{name}/init_0_v.mp4")).await);
                }
                if !(k < 2 || k == last) {
                    continue;
                }
                file_bytes.extend(&bytes);
                let file = out.path().join(format!("{name}_{k}.{ext}"));
                std::fs::write(&file, &file_bytes).unwrap();
                assert_eq!(packets(&file, "v:0").len(), 1, "{name} {}", s.uri);
                assert_eq!(key_packets(&file), 1, "{name} {}: a keyframe", s.uri);
                let (ok, _, err) = run(
                    "ffmpeg",
                    &[
                        "-v",
                        "warning",
                        "-i",
                        &file.to_string_lossy(),
                        "-f",
                        "null",
                        "-",
                    ],
                );
                assert!(ok && err.is_empty(), "{name} {}: {err}", s.uri);
            }
        }
    }
    // A clip: the I-frames cover the clipped media playlist, and the first one decodes.
    for (format, media) in [
        (Format::Ts, "index_0_av.m3u8"),
        (Format::Cmaf, "index_0_v.m3u8"),
    ] {
        let q = "?start=1.5&end=6.5";
        let read = |b: Vec<u8>| m3u8_rs::parse_media_playlist_res(&b).unwrap();
        let pl = read(body(&vod, format, &format!("faststart.mp4/iframes_0.m3u8{q}")).await);
        let full = read(body(&vod, format, &format!("faststart.mp4/{media}{q}")).await);
        let total = |p: &m3u8_rs::MediaPlaylist| -> f64 {
            p.segments.iter().map(|s| f64::from(s.duration)).sum()
        };
        assert!(
            (total(&pl) - total(&full)).abs() < 0.0015,
            "{format:?} clip"
        );
        assert!(pl.segments[0].uri.ends_with(q), "{}", pl.segments[0].uri);
        let mut bytes = Vec::new();
        if format == Format::Cmaf {
            bytes.extend(body(&vod, format, &format!("faststart.mp4/init_0_v.mp4{q}")).await);
        }
        bytes.extend(
            body(
                &vod,
                format,
                &format!("faststart.mp4/{}", pl.segments[0].uri),
            )
            .await,
        );
        let file = out.path().join(format!("clip_{format:?}.mp4"));
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(key_packets(&file), 1, "{format:?} clip");
    }
    // Must-fail: a keyframe past the segment's last, and a segment past the last, are 404s.
    for p in [
        "faststart.mp4/iframe1_0_99.ts",
        "faststart.mp4/iframe999_0_0.ts",
    ] {
        let e = get(&vod, Format::Ts, p)
            .await
            .map(|r| r.body.len())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{p}: {e}");
    }
}

/// AAC priming and padding over 20 minutes: the audio playlists (TS `_a` of the audio
/// only file, CMAF `_a`) and the MPD sum to the track's presentation duration within one
/// AAC frame (1024 samples).
#[tokio::test]
async fn aac_priming_and_padding_over_20_minutes() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vod-aac-20min");
    let file = dir.join("aac_20min.mp4");
    if !file.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join("aac_20min.part.mp4");
        let (ok, _, err) = run(
            "ffmpeg",
            &[
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100:duration=1200",
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                &tmp.to_string_lossy(),
            ],
        );
        assert!(ok, "{err}");
        std::fs::rename(&tmp, &file).unwrap();
    }
    let frame = 1024.0 / 44100.0;
    let want = probe_duration(&file, "a:0");
    assert!((want - 1200.0).abs() < 0.1, "{want}");
    let vod = vod(&dir, 6.0);
    for (format, playlist) in [
        (Format::Ts, "index_0_a.m3u8"),
        (Format::Ts, "index_0_av.m3u8"),
        (Format::Cmaf, "index_0_a.m3u8"),
    ] {
        let text = body(&vod, format, &format!("aac_20min.mp4/{playlist}")).await;
        let pl = m3u8_rs::parse_media_playlist_res(&text).unwrap();
        let total: f64 = pl.segments.iter().map(|s| f64::from(s.duration)).sum();
        assert!(
            (total - want).abs() <= frame,
            "{format:?} {playlist}: {total} s, the track presents {want} s"
        );
    }
    let mpd =
        String::from_utf8(body(&vod, Format::Dash, "aac_20min.mp4/manifest.mpd").await).unwrap();
    let mpd = dash_mpd_core::parse(&mpd).unwrap();
    let total = secs_of(mpd.mediaPresentationDuration.as_ref().unwrap());
    assert!(
        (total - want).abs() <= frame,
        "MPD {total} s, the track presents {want} s"
    );
    // Every format decodes the 20 minutes at -v warning without a message.
    let out = tempfile::tempdir().unwrap();
    let ts = out.path().join("ts");
    dump_variant(
        &Fetcher::Service(&vod),
        "aac_20min.mp4",
        "index_0_a.m3u8",
        &ts,
    )
    .await;
    let cmaf = out.path().join("cmaf");
    dump_cmaf(&vod, "aac_20min.mp4", "index_0_a.m3u8", &cmaf).await;
    let dash = out.path().join("dash");
    dump_dash(&vod, "aac_20min.mp4", "", &dash).await;
    for (what, input) in [
        ("TS", ts.join("index_0_a.m3u8")),
        ("CMAF", cmaf.join("index_0_a.m3u8")),
        ("DASH", dash.join("manifest.mpd")),
    ] {
        let warn = decode_warnings(&input);
        assert!(warn.is_empty(), "{what}: {warn}");
    }
}

/// The other audio track in the TS output: demuxed variants (video-only TS `index_0_v.m3u8`)
/// and an `AUDIO` group of audio-only TS (`index_0_a.m3u8` the default, `index_0_a1.m3u8`).
#[tokio::test]
async fn two_audio_languages_as_ts() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let master =
        String::from_utf8(body(&vod, Format::Ts, "two_audio.mp4/master.m3u8").await).unwrap();
    let m =
        m3u8_rs::parse_master_playlist_res(master.as_bytes()).expect("m3u8-rs reads the master");
    let audio: Vec<_> = m
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio)
        .collect();
    assert_eq!(audio.len(), 2, "{master}");
    assert!(audio[0].default, "{master}");
    assert_eq!(audio[0].uri.as_deref(), Some("index_0_a.m3u8"));
    assert_eq!(audio[0].language.as_deref(), Some("en"));
    assert_eq!(audio[1].language.as_deref(), Some("fr"));
    assert_eq!(audio[1].uri.as_deref(), Some("index_0_a1.m3u8"));
    let video: Vec<_> = m
        .variants
        .iter()
        .filter(|v| !v.is_i_frame && v.resolution.is_some())
        .collect();
    assert!(
        video.iter().all(|v| v.audio.as_deref() == Some("aac")),
        "{master}"
    );
    assert!(video.iter().all(|v| v.uri == "index_0_v.m3u8"), "{master}");
    // The video-only TS: every video frame, no audio.
    let pl =
        String::from_utf8(body(&vod, Format::Ts, "two_audio.mp4/index_0_v.m3u8").await).unwrap();
    let p = m3u8_rs::parse_media_playlist_res(pl.as_bytes()).unwrap();
    let mut all = Vec::new();
    for s in &p.segments {
        all.extend(body(&vod, Format::Ts, &format!("two_audio.mp4/{}", s.uri)).await);
    }
    let vdir = tempfile::tempdir().unwrap();
    let vfile = vdir.path().join("v.ts");
    std::fs::write(&vfile, &all).unwrap();
    assert!(decode_warnings(&vfile).is_empty());
    assert_eq!(
        packets(&vfile, "v:0").len(),
        packets(&fx.join("two_audio.mp4"), "v:0").len()
    );
    assert!(packets(&vfile, "a:0").is_empty(), "video only");

    let pl =
        String::from_utf8(body(&vod, Format::Ts, "two_audio.mp4/index_0_a1.m3u8").await).unwrap();
    let p = m3u8_rs::parse_media_playlist_res(pl.as_bytes()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for s in &p.segments {
        let b = body(&vod, Format::Ts, &format!("two_audio.mp4/{}", s.uri)).await;
        assert_eq!(b.len() % 188, 0);
        all.extend(b);
    }
    let file = out.path().join("a1.ts");
    std::fs::write(&file, &all).unwrap();
    let warn = decode_warnings(&file);
    assert!(warn.is_empty(), "{warn}");
    let src = fx.join("two_audio.mp4");
    assert_eq!(packets(&file, "a:0").len(), packets(&src, "a:1").len());
    let total: f64 = p.segments.iter().map(|s| f64::from(s.duration)).sum();
    let want = probe_duration(&src, "a:1");
    assert!(
        (total - want).abs() <= 1024.0 / 48000.0 + 0.0015,
        "{total} vs {want}"
    );
    assert!(packets(&file, "v:0").is_empty(), "audio only");
    // Its bytes are the second track's (880 Hz), not the first's.
    let a = body(&vod, Format::Ts, "two_audio.mp4/segment1_0_a.ts").await;
    let a1 = body(&vod, Format::Ts, "two_audio.mp4/segment1_0_a1.ts").await;
    assert_ne!(a, a1);
    // Must fail: there is no third audio track.
    let e = get(&vod, Format::Ts, "two_audio.mp4/index_0_a2.m3u8")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}
