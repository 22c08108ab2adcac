//! Subtitles of the on-demand packager: WebVTT sidecars (`<name>.<lang>.vtt`) and `tx3g`
//! (`mov_text`) tracks inside the MP4, served as segmented WebVTT for HLS (`/i/` and
//! `/cmaf/`: `EXT-X-MEDIA:TYPE=SUBTITLES`, `X-TIMESTAMP-MAP`) and as a whole WebVTT file in a
//! DASH text AdaptationSet (`/dash/`).
//!
//! Oracles: the sidecar's own cues, ffmpeg's WebVTT export of the `tx3g` track, m3u8-rs and
//! dash-mpd-core for the manifests. Must-fail: a broken sidecar is an error for its own
//! track only; a sidecar that is a symlink out of the media root is refused.

#[path = "vod_common.rs"]
mod common;

use std::path::Path;

use casterpak::error::ErrorKind;
use casterpak::vod::csmil::Format;
use casterpak::vod::webvtt::{self, Cue};
use casterpak::vod::{Vod, VodError, VodReply};
use common::*;

const D: f64 = 4.0;

const EN: &str = "WEBVTT\n\nNOTE made for the test\n\n00:00:01.000 --> 00:00:02.000\nHello\n\n\
00:00:03.500 --> 00:00:04.500 line:80%\nAcross the first boundary\n\n\
00:00:08.000 --> 00:00:09.250\nThe end\n";
const FR: &str = "WEBVTT\n\n00:01.000 --> 00:02.000\nBonjour\n";

async fn get(vod: &Vod, format: Format, path: &str) -> Result<VodReply, VodError> {
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    vod.respond_as(format, p, q).await
}

async fn text(vod: &Vod, format: Format, path: &str) -> String {
    let r = get(vod, format, path)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    String::from_utf8(r.body.to_vec()).unwrap()
}

/// A 10 s clip (25 fps, AAC) with an English `mov_text` track, and two sidecars.
fn make_asset(dir: &Path) {
    let srt = dir.join("in.srt");
    std::fs::write(
        &srt,
        "1\n00:00:00,500 --> 00:00:01,500\nFirst line\n\n2\n00:00:05,000 --> 00:00:07,000\nTwo <i>words</i> & more\n",
    )
    .unwrap();
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
            "testsrc2=size=320x180:rate=25:duration=10",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000:duration=10",
            "-i",
            srt.to_str().unwrap(),
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:s",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-c:s",
            "mov_text",
            "-metadata:s:s:0",
            "language=deu",
            dir.join("sub.mp4").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    std::fs::write(dir.join("sub.en.vtt"), EN).unwrap();
    std::fs::write(dir.join("sub.fr.vtt"), FR).unwrap();
}

/// The cues of every segment of a subtitle playlist, in order, duplicates (a cue repeated
/// in the segments it spans) removed; each segment's header is checked.
async fn segmented_cues(
    vod: &Vod,
    format: Format,
    base: &str,
    playlist: &str,
) -> (Vec<Cue>, usize) {
    let pl = text(vod, format, &format!("{base}/{playlist}")).await;
    let p =
        m3u8_rs::parse_media_playlist_res(pl.as_bytes()).unwrap_or_else(|e| panic!("{e:?}\n{pl}"));
    assert!(p.end_list);
    let mut all: Vec<Cue> = Vec::new();
    for s in &p.segments {
        let r = get(vod, format, &format!("{base}/{}", s.uri))
            .await
            .unwrap();
        assert!(r.content_type.starts_with("text/vtt"), "{}", r.content_type);
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(
            body.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n"),
            "{}: {body}",
            s.uri
        );
        for c in webvtt::parse(body.as_bytes()).unwrap() {
            if !all.contains(&c) {
                all.push(c);
            }
        }
    }
    (all, p.segments.len())
}

/// Cues as a viewer sees them: times, settings and the text without markup or entities.
/// (ffmpeg's export writes the tx3g `styl` italics back as `<i>`; the origin carries the
/// text without its styling.)
fn shown(cues: &[Cue]) -> Vec<Cue> {
    cues.iter()
        .map(|c| {
            let mut text = String::new();
            let mut in_tag = false;
            for ch in c.text.chars() {
                match ch {
                    '<' => in_tag = true,
                    '>' if in_tag => in_tag = false,
                    _ if !in_tag => text.push(ch),
                    _ => {}
                }
            }
            let text = text
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            Cue { text, ..c.clone() }
        })
        .collect()
}

fn cue(start_ms: i64, end_ms: i64, settings: &str, text: &str) -> Cue {
    Cue {
        start_ms,
        end_ms,
        settings: settings.into(),
        text: text.into(),
    }
}

#[tokio::test]
async fn sidecars_and_tx3g_tracks_are_segmented_webvtt_and_a_dash_text_set() {
    let dir = tempfile::tempdir().unwrap();
    make_asset(dir.path());
    let vod = vod(dir.path(), D);
    let en = webvtt::parse(EN.as_bytes()).unwrap();
    let fr = webvtt::parse(FR.as_bytes()).unwrap();
    // ffmpeg's own WebVTT export of the mov_text track is the oracle for the tx3g cues.
    let out = dir.path().join("ffmpeg.vtt");
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            dir.path().join("sub.mp4").to_str().unwrap(),
            "-map",
            "0:s",
            "-f",
            "webvtt",
            out.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let tx3g = webvtt::parse(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(tx3g.len(), 2, "{tx3g:?}");

    for format in [Format::Ts, Format::Cmaf] {
        let master = text(&vod, format, "sub.mp4/master.m3u8").await;
        let m = match m3u8_rs::parse_playlist_res(master.as_bytes()) {
            Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m,
            other => panic!("{other:?}\n{master}"),
        };
        let subs = common::subtitle_media(master.as_bytes());
        let langs: Vec<_> = subs
            .iter()
            .map(|a| a.language.clone().unwrap_or_default())
            .collect();
        assert_eq!(langs, ["en", "fr", "de"], "{master}");
        assert!(subs
            .iter()
            .all(|a| a.group_id == "subs" && !a.default && a.autoselect));
        assert!(
            m.variants
                .iter()
                .filter(|v| !v.is_i_frame)
                .all(|v| v.subtitles.as_deref() == Some("subs")),
            "{master}"
        );

        // Same segment boundaries as the media playlist.
        let media = if format == Format::Ts {
            "index_0_av.m3u8"
        } else {
            "index_0_v.m3u8"
        };
        let mp = text(&vod, format, &format!("sub.mp4/{media}")).await;
        let mp = m3u8_rs::parse_media_playlist_res(mp.as_bytes()).unwrap();
        for (k, want) in [(0usize, &en), (1, &fr), (2, &tx3g)] {
            let sp = text(&vod, format, &format!("sub.mp4/subs_0_{k}.m3u8")).await;
            let sp = m3u8_rs::parse_media_playlist_res(sp.as_bytes()).unwrap();
            let durations = |p: &m3u8_rs::MediaPlaylist| -> Vec<f32> {
                p.segments.iter().map(|s| s.duration).collect()
            };
            assert_eq!(durations(&sp), durations(&mp), "track {k}");
            let (cues, n) =
                segmented_cues(&vod, format, "sub.mp4", &format!("subs_0_{k}.m3u8")).await;
            assert_eq!(n, mp.segments.len());
            assert_eq!(shown(&cues), shown(want), "track {k} ({format:?})");
        }
        // The cue across the 4 s boundary is in both segments.
        let s1 = text(&vod, format, "sub.mp4/subs1_0_0.vtt").await;
        let s2 = text(&vod, format, "sub.mp4/subs2_0_0.vtt").await;
        assert!(
            s1.contains("Across the first boundary") && s2.contains("Across the first boundary")
        );
        assert!(!s2.contains("Hello") && !s1.contains("The end"));
    }

    // DASH: one text AdaptationSet per track, each a whole WebVTT file.
    let mpd = text(&vod, Format::Dash, "sub.mp4/manifest.mpd").await;
    let parsed = dash_mpd_core::parse(&mpd).unwrap_or_else(|e| panic!("{e}\n{mpd}"));
    let texts: Vec<_> = parsed.periods[0]
        .adaptations
        .iter()
        .filter(|a| a.contentType.as_deref() == Some("text"))
        .collect();
    assert_eq!(texts.len(), 3, "{mpd}");
    for (k, (set, want)) in texts.iter().zip([&en, &fr, &tx3g]).enumerate() {
        assert_eq!(set.mimeType.as_deref(), Some("text/vtt"));
        let url = &set.representations[0].BaseURL[0].base;
        assert_eq!(url, &format!("subs_0_{k}.vtt"));
        let whole = text(&vod, Format::Dash, &format!("sub.mp4/{url}")).await;
        assert_eq!(
            shown(&webvtt::parse(whole.as_bytes()).unwrap()),
            shown(want)
        );
    }
    assert_eq!(texts[0].lang.as_deref(), Some("en"));
    assert_eq!(texts[2].lang.as_deref(), Some("de"), "mdhd deu as RFC 5646");
}

#[tokio::test]
async fn a_clip_shifts_the_cues_to_its_start() {
    let dir = tempfile::tempdir().unwrap();
    make_asset(dir.path());
    let vod = vod(dir.path(), D);
    // start=3.5: the clip's first keyframe is at 3 s (25-frame GOPs at 25 fps), presentation
    // time 0 of the output; the cue at 3.5 s starts 0.5 s in, the one at 1 s is gone.
    let (cues, _) = segmented_cues(&vod, Format::Ts, "sub.mp4", "subs_0_0.m3u8?start=3.5").await;
    let origin = 3500 - cues[0].start_ms;
    assert!((3000..=3500).contains(&origin), "{cues:?}");
    assert_eq!(
        cues,
        vec![
            cue(
                3500 - origin,
                4500 - origin,
                "line:80%",
                "Across the first boundary"
            ),
            cue(8000 - origin, 9250 - origin, "", "The end"),
        ]
    );
    let whole = text(&vod, Format::Dash, "sub.mp4/subs_0_0.vtt?start=3.5").await;
    assert_eq!(webvtt::parse(whole.as_bytes()).unwrap(), cues);
}

#[tokio::test]
async fn a_broken_sidecar_fails_alone_and_an_escaping_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    make_asset(dir.path());
    std::fs::write(dir.path().join("sub.de.vtt"), "NOT A WEBVTT FILE\n").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.vtt"), FR).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.vtt"),
        dir.path().join("sub.zz.vtt"),
    )
    .unwrap();
    let vod = vod(dir.path(), D);
    let master = text(&vod, Format::Ts, "sub.mp4/master.m3u8").await;
    // Listed: de, en, fr, zz (sidecars by language), then the tx3g track.
    assert_eq!(master.matches("TYPE=SUBTITLES").count(), 5, "{master}");
    let e = get(&vod, Format::Ts, "sub.mp4/subs1_0_0.vtt")
        .await
        .unwrap_err();
    assert!(matches!(e, VodError::Subtitle { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    let e = get(&vod, Format::Ts, "sub.mp4/subs1_0_3.vtt")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
    // The other tracks and the media are not disturbed.
    assert!(text(&vod, Format::Ts, "sub.mp4/subs1_0_1.vtt")
        .await
        .contains("Hello"));
    assert!(get(&vod, Format::Ts, "sub.mp4/segment1_0_av.ts")
        .await
        .is_ok());
    // A track past the last is a 404.
    let e = get(&vod, Format::Ts, "sub.mp4/subs_0_9.m3u8")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}
