//! VOD packaging end to end on ffmpeg-made inputs of every kind: the produced playlists and
//! segments are written to a temp dir and checked with ffmpeg/ffprobe.

#[path = "vod_common.rs"]
mod common;

use std::path::Path;

use casterpak::error::ErrorKind;
use common::*;

const D: f64 = 4.0;

#[tokio::test]
async fn samples_master_lists_renditions_and_audio_variant() {
    let vod = vod(&samples_dir(), 6.0);
    let f = Fetcher::Service(&vod);
    let master = f
        .get("clip_,360,540,720,p.mp4.csmil/master.m3u8")
        .await
        .unwrap();
    let mut pl = m3u8_rs::parse_master_playlist_res(&master).unwrap();
    // The I-frame playlists (one per rendition) are listed too; tests/vod_fmp4.rs reads them.
    assert_eq!(pl.variants.iter().filter(|v| v.is_i_frame).count(), 3);
    pl.variants.retain(|v| !v.is_i_frame);
    assert_eq!(pl.variants.len(), 4, "{}", String::from_utf8_lossy(&master));
    let uris: Vec<&str> = pl.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "index_0_av.m3u8",
            "index_1_av.m3u8",
            "index_2_av.m3u8",
            "index_0_a.m3u8"
        ]
    );
    for v in &pl.variants[..3] {
        assert!(v.codecs.as_deref().unwrap().starts_with("avc1.64"), "{v:?}");
        assert!(v.codecs.as_deref().unwrap().ends_with(",mp4a.40.2"));
        assert!(v.resolution.is_some());
        assert!(v.frame_rate.is_some());
        assert!(v.average_bandwidth.unwrap() <= v.bandwidth);
    }
    assert_eq!(pl.variants[2].resolution.unwrap().height, 720);
    assert_eq!(pl.variants[3].codecs.as_deref(), Some("mp4a.40.2"));
    // manifest.m3u8 is the same document.
    let manifest = f
        .get("clip_,360,540,720,p.mp4.csmil/manifest.m3u8")
        .await
        .unwrap();
    assert_eq!(master, manifest);

    let out = tempfile::tempdir().unwrap();
    for (i, pl) in [
        "index_0_av.m3u8",
        "index_1_av.m3u8",
        "index_2_av.m3u8",
        "index_0_a.m3u8",
    ]
    .iter()
    .enumerate()
    {
        let dir = out.path().join(i.to_string());
        let names = dump_variant(&f, "clip_,360,540,720,p.mp4.csmil", pl, &dir).await;
        assert_eq!(names.len(), 2, "12 s at D = 6 s");
        let err = decode_errors(&dir.join(pl));
        assert!(err.is_empty(), "{pl}: {err}");
    }
}

#[tokio::test]
async fn every_supported_fixture_decodes_with_the_right_duration() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let f = Fetcher::Service(&vod);
    let out = tempfile::tempdir().unwrap();
    for &(name, has_video, has_audio) in SUPPORTED {
        let dir = out.path().join(name);
        let names = dump_variant(&f, name, "index_0_av.m3u8", &dir).await;
        let err = decode_errors(&dir.join("index_0_av.m3u8"));
        assert!(err.is_empty(), "{name}: {err}");
        let text = std::fs::read(dir.join("index_0_av.m3u8")).unwrap();
        let pl = m3u8_rs::parse_media_playlist_res(&text).unwrap();
        let total: f64 = pl.segments.iter().map(|s| f64::from(s.duration)).sum();
        let src = fx.join(name);
        let (sel, frame) = if has_video {
            ("v:0", 1.0 / 25.0)
        } else {
            ("a:0", 1024.0 / 48000.0)
        };
        let frame = if name == "ntsc.mp4" {
            1001.0 / 30000.0
        } else {
            frame
        };
        let want = probe_duration(&src, sel);
        assert!(
            (total - want).abs() <= frame + 0.0015,
            "{name}: playlist {total} s, source {want} s"
        );
        // Same number of packets as the source, per stream.
        let ts = dir.join("all.ts");
        concat(&dir, &names, &ts);
        if has_video {
            assert_eq!(
                packets(&ts, "v:0").len(),
                sample_count(&src, "v:0"),
                "{name} video"
            );
        }
        if has_audio {
            assert_eq!(
                packets(&ts, "a:0").len(),
                sample_count(&src, "a:0"),
                "{name} audio"
            );
            let dir_a = out.path().join(format!("{name}_a"));
            dump_variant(&f, name, "index_0_a.m3u8", &dir_a).await;
            let err = decode_errors(&dir_a.join("index_0_a.m3u8"));
            assert!(err.is_empty(), "{name} audio-only: {err}");
            // The audio-only playlist lasts the audio track's presentation duration, within
            // one AAC frame.
            let text = std::fs::read(dir_a.join("index_0_a.m3u8")).unwrap();
            let pl = m3u8_rs::parse_media_playlist_res(&text).unwrap();
            let total: f64 = pl.segments.iter().map(|s| f64::from(s.duration)).sum();
            let want = probe_duration(&src, "a:0");
            let aac = if name == "ntsc.mp4" {
                1024.0 / 44100.0
            } else {
                1024.0 / 48000.0
            };
            assert!(
                (total - want).abs() <= aac + 0.0015,
                "{name} audio-only: playlist {total} s, source audio {want} s"
            );
        } else {
            assert!(f.get(&format!("{name}/index_0_a.m3u8")).await.is_err());
        }
    }
}

/// Timestamps run on across segment boundaries: every DTS step equals the frame duration.
#[tokio::test]
async fn timestamps_are_continuous_across_segments() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let f = Fetcher::Service(&vod);
    let out = tempfile::tempdir().unwrap();
    for &(name, has_video, has_audio) in SUPPORTED {
        let dir = out.path().join(name);
        let names = dump_variant(&f, name, "index_0_av.m3u8", &dir).await;
        assert!(names.len() >= 2, "{name}");
        let ts = dir.join("all.ts");
        concat(&dir, &names, &ts);
        let (ok, _, err) = run(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-i",
                &ts.to_string_lossy(),
                "-map",
                "0",
                "-f",
                "null",
                "-",
            ],
        );
        assert!(ok && err.is_empty(), "{name} concatenated: {err}");
        for (sel, present) in [("v:0", has_video), ("a:0", has_audio)] {
            if !present {
                continue;
            }
            // The source's own decode times must be regular for this check to apply:
            // ffmpeg's fragmented output starts its audio with a gap (the priming frame
            // at 0, the next one 3840 ticks later), which every output keeps.
            let src = packets(&fx.join(name), sel);
            let src_steps: Vec<i64> = src.windows(2).map(|w| w[1].1 - w[0].1).collect();
            let regular = src_steps.iter().max().unwrap() - src_steps.iter().min().unwrap() <= 1;
            if !regular {
                eprintln!("{name} {sel}: the source's DTS steps are irregular; skipped");
                continue;
            }
            let p = packets(&ts, sel);
            let steps: Vec<i64> = p.windows(2).map(|w| w[1].1 - w[0].1).collect();
            let min = *steps.iter().min().unwrap();
            let max = *steps.iter().max().unwrap();
            assert!(min > 0, "{name} {sel}: DTS not increasing");
            // Exact 90 kHz maths gives steps that differ by at most 1 tick; ffmpeg's own
            // interpolation of the frames inside a multi-frame audio PES adds at most one.
            let slack = if sel == "a:0" { 2 } else { 1 };
            assert!(
                max - min <= slack,
                "{name} {sel}: DTS steps {min}..{max} (a gap or overlap)"
            );
        }
    }
}

/// First video and audio PTS of every segment equal what `ffmpeg -c copy -f hls` gives
/// (relative to each output's first video PTS), so A/V sync matches ffmpeg's.
#[tokio::test]
async fn segment_start_pts_match_ffmpeg_hls() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let f = Fetcher::Service(&vod);
    let out = tempfile::tempdir().unwrap();
    for &(name, has_video, has_audio) in SUPPORTED {
        // A cut with an edit-list pre-roll is not comparable: ffmpeg counts its segments
        // from the pre-roll's keyframe and drops the audio frames the edit list discards;
        // we count from presentation time 0 and carry them. Its A/V sync is checked by
        // the sync fixture in tests/vod_fmp4.rs instead.
        if !(has_video && has_audio) || name.contains("cut") {
            continue;
        }
        let dir = out.path().join(name);
        let ours = dump_variant(&f, name, "index_0_av.m3u8", &dir).await;
        let ff = out.path().join(format!("{name}_ffmpeg"));
        std::fs::create_dir_all(&ff).unwrap();
        let (ok, _, err) = run(
            "ffmpeg",
            &[
                "-nostdin",
                "-v",
                "error",
                "-i",
                &fx.join(name).to_string_lossy(),
                "-map",
                "0:v:0",
                "-map",
                "0:a:0",
                "-c",
                "copy",
                "-f",
                "hls",
                "-hls_time",
                &D.to_string(),
                "-hls_playlist_type",
                "vod",
                "-hls_segment_filename",
                &ff.join("s%d.ts").to_string_lossy(),
                &ff.join("p.m3u8").to_string_lossy(),
            ],
        );
        assert!(ok, "{err}");
        let count = std::fs::read_dir(&ff)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".ts")
            })
            .count();
        let theirs: Vec<String> = (0..count).map(|i| format!("s{i}.ts")).collect();
        let firsts = |dir: &Path, names: &[String]| -> Vec<(i64, i64)> {
            names
                .iter()
                .filter(|n| dir.join(n).exists())
                .map(|n| {
                    let v = packets(&dir.join(n), "v:0");
                    let a = packets(&dir.join(n), "a:0");
                    (
                        v.iter().map(|p| p.0).min().unwrap(),
                        a.first().map(|p| p.0).unwrap_or(0),
                    )
                })
                .collect()
        };
        let a = firsts(&dir, &ours);
        let b = firsts(&ff, &theirs);
        assert_eq!(
            a.len(),
            b.len(),
            "{name}: segment count ours {} ffmpeg {}",
            a.len(),
            b.len()
        );
        for (k, (x, y)) in a.iter().zip(&b).enumerate() {
            let (rx, ry) = ((x.0 - a[0].0, x.1 - a[0].0), (y.0 - b[0].0, y.1 - b[0].0));
            assert!(
                (rx.0 - ry.0).abs() <= 2 && (rx.1 - ry.1).abs() <= 2,
                "{name} segment {}: ours (video {}, audio {}), ffmpeg (video {}, audio {})",
                k + 1,
                rx.0,
                rx.1,
                ry.0,
                ry.1
            );
        }
    }
}

#[tokio::test]
async fn unsupported_inputs_give_clear_errors() {
    let fx = fixtures();
    let vod = vod(fx, D);
    for &(name, want) in UNSUPPORTED {
        for p in ["master.m3u8", "index_0_av.m3u8", "segment1_0_av.ts"] {
            let err = vod.respond(&format!("{name}/{p}"), None).await.unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(want), "{name}/{p}: {msg}");
            assert!(
                msg.contains(name),
                "{name}/{p}: error names the asset: {msg}"
            );
            assert!(
                matches!(err.kind(), ErrorKind::Unsupported | ErrorKind::Corrupt),
                "{name}: {:?}",
                err.kind()
            );
        }
    }
}

#[tokio::test]
async fn paths_outside_the_root_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let media = root.path().join("media");
    std::fs::create_dir(&media).unwrap();
    std::fs::copy(
        samples_dir().join("clip_360p.mp4"),
        root.path().join("secret.mp4"),
    )
    .unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.mp4"), media.join("link.mp4")).unwrap();
    let vod = vod(&media, 6.0);
    for p in [
        "../secret.mp4/master.m3u8",
        "%2e%2e/secret.mp4/master.m3u8",
        "a/..%2f..%2fsecret.mp4/master.m3u8",
        "link.mp4/master.m3u8",
        "link.mp4/segment1_0_av.ts",
        ",..,/secret.mp4.csmil/master.m3u8",
    ] {
        let err = vod.respond(p, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Forbidden, "{p}: {err}");
    }
    let err = vod
        .respond("nothing.mp4/master.m3u8", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn missing_renditions_are_skipped_and_bitrate_filter() {
    let vod = vod(&samples_dir(), 6.0);
    let r = vod
        .respond("clip_,360,999,720,p.mp4.csmil/master.m3u8", None)
        .await
        .unwrap();
    let pl = m3u8_rs::parse_master_playlist_res(&r.body).unwrap();
    let uris: Vec<&str> = pl.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "index_0_av.m3u8",
            "index_2_av.m3u8",
            "index_0_a.m3u8",
            "iframes_0.m3u8",
            "iframes_2.m3u8"
        ]
    );
    let err = vod
        .respond("clip_,1,2,p.mp4.csmil/master.m3u8", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // b= keeps renditions by average bit rate (kbit/s).
    let r = vod
        .respond("clip_,360,540,720,p.mp4.csmil/master.m3u8", Some("b=900-"))
        .await
        .unwrap();
    let pl = m3u8_rs::parse_master_playlist_res(&r.body).unwrap();
    assert_eq!(
        pl.variants[0].uri,
        "index_2_av.m3u8",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // Segment past the end.
    let err = vod
        .respond("clip_360p.mp4/segment9_0_av.ts", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn clip_window_start_end() {
    let fx = fixtures();
    let vod = vod(fx, 2.0);
    let f = Fetcher::Service(&vod);
    let master = f
        .get("faststart.mp4/master.m3u8?start=2.5&end=7")
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&master);
    assert!(text.contains("index_0_av.m3u8?start=2.5&end=7"), "{text}");
    let out = tempfile::tempdir().unwrap();
    let names = dump_variant(
        &f,
        "faststart.mp4",
        "index_0_av.m3u8?start=2.5&end=7",
        out.path(),
    )
    .await;
    let err = decode_errors(&out.path().join("index_0_av.m3u8"));
    assert!(err.is_empty(), "{err}");
    let pl = m3u8_rs::parse_media_playlist_res(
        &std::fs::read(out.path().join("index_0_av.m3u8")).unwrap(),
    )
    .unwrap();
    let total: f64 = pl.segments.iter().map(|s| f64::from(s.duration)).sum();
    // GOPs are 2 s: the clip starts at the keyframe at 2 s and ends at the one at 8 s.
    assert!((total - 6.0).abs() < 0.01, "{total}");
    assert_eq!(names.len(), 3);
    let ts = out.path().join("all.ts");
    concat(out.path(), &names, &ts);
    let v = packets(&ts, "v:0");
    assert_eq!(v.len(), 150);
    assert!(f
        .get("faststart.mp4/master.m3u8?start=5&end=4")
        .await
        .is_err());
    assert!(f
        .get("faststart.mp4/index_0_av.m3u8?start=50")
        .await
        .is_err());
}

#[tokio::test]
async fn reply_headers_and_etag() {
    let vod = vod(&samples_dir(), 6.0);
    let a = vod
        .respond("clip_360p.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    assert_eq!(a.content_type, "video/mp2t");
    assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
    assert_eq!(a.body.len() % 188, 0);
    let b = vod
        .respond("clip_360p.mp4/segment2_0_av.ts", None)
        .await
        .unwrap();
    assert_ne!(a.etag, b.etag);
    let p = vod
        .respond("clip_360p.mp4/index_0_av.m3u8", None)
        .await
        .unwrap();
    assert_eq!(p.content_type, "application/vnd.apple.mpegurl");
    let text = String::from_utf8_lossy(&p.body);
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
    assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS"));
    assert!(text.contains("#EXT-X-ENDLIST"));
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:1"));
    // A second service gives the same ETag (stable across restarts).
    let vod2 = common::vod(&samples_dir(), 6.0);
    let c = vod2
        .respond("clip_360p.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    assert_eq!(a.etag, c.etag);
    assert_eq!(a.body, c.body);
    // Another segment duration changes the ETag.
    let vod3 = common::vod(&samples_dir(), 4.0);
    let d = vod3
        .respond("clip_360p.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    assert_ne!(a.etag, d.etag);
}

/// Real segments re-read with `mpeg2ts` (a TS reader we did not write): PAT then PMT first,
/// a PCR before the first PES and never after a PES's DTS, continuity counters continuous
/// across all segments of the rendition for every PID, keyframe first.
#[tokio::test]
async fn real_segments_reparse_with_mpeg2ts() {
    let vod = vod(&samples_dir(), 6.0);
    let f = Fetcher::Service(&vod);
    let mut last_cc = std::collections::HashMap::new();
    for n in 1..=2 {
        let seg = f
            .get(&format!("clip_,360,540,720,p.mp4.csmil/segment{n}_2_av.ts"))
            .await
            .unwrap();
        let pes = reparse_ts(&seg, &format!("segment {n}"), 0x100, &mut last_cc);
        assert!(pes > 100);
    }
}

/// Reads TS segment `seg` packet by packet with the `mpeg2ts` crate and checks: PAT then
/// PMT first, continuity counters running on from `last_cc` per PID (updated, so that a
/// caller can check across segments), a PCR at or before each PES's DTS, the first PES on
/// `first_pid` and a random access point. Returns the number of PES starts.
fn reparse_ts(
    seg: &[u8],
    label: &str,
    first_pid: u16,
    last_cc: &mut std::collections::HashMap<u16, u8>,
) -> usize {
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};
    assert_eq!(seg.len() % 188, 0, "{label}: whole packets");
    let mut r = TsPacketReader::new(seg);
    let (mut i, mut pes) = (0, 0);
    let mut pcr: Option<u64> = None;
    while let Some(p) = r
        .read_ts_packet()
        .unwrap_or_else(|e| panic!("{label}: packet {i}: {e}"))
    {
        let pid = p.header.pid.as_u16();
        if i == 0 {
            assert!(
                matches!(p.payload, Some(TsPayload::Pat(_))),
                "{label}: PAT first"
            );
        }
        if i == 1 {
            assert!(
                matches!(p.payload, Some(TsPayload::Pmt(_))),
                "{label}: PMT second"
            );
        }
        let cc = p.header.continuity_counter.as_u8();
        if let Some(prev) = last_cc.insert(pid, cc) {
            assert_eq!((prev + 1) & 15, cc, "{label}: pid {pid:#x} continuity");
        }
        if let Some(v) = p.adaptation_field.as_ref().and_then(|a| a.pcr) {
            pcr = Some(v.as_u64() / 300);
        }
        if let Some(TsPayload::PesStart(st)) = &p.payload {
            let dts = st.header.dts.or(st.header.pts).unwrap().as_u64();
            let pcr = pcr.unwrap_or_else(|| panic!("{label}: PCR before the first PES"));
            assert!(pcr <= dts, "{label}: PCR {pcr} after DTS {dts}");
            if pes == 0 {
                assert_eq!(pid, first_pid, "{label}: first PES");
                let rai = p
                    .adaptation_field
                    .as_ref()
                    .is_some_and(|a| a.random_access_indicator);
                assert!(rai, "{label}: first PES is a random access point");
            }
            pes += 1;
        }
        i += 1;
    }
    pes
}

/// Every TS playlist of every supported fixture (`_av`, `_a`; for two audio tracks also the
/// video-only `_v` and the other track's `_a1`) read packet by packet with the `mpeg2ts`
/// crate: PAT then PMT opening each segment, continuity counters running on per PID across
/// segments, a PCR at or before each PES's DTS, each segment's first PES a random access
/// point (the keyframe, or the first audio PES of an audio-only stream), and as many PES
/// starts per segment as an independent reader finds.
#[tokio::test]
async fn every_fixture_ts_reparses_with_mpeg2ts() {
    let fx = fixtures();
    let vod = vod(fx, D);
    let f = Fetcher::Service(&vod);
    let out = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for &(name, has_video, has_audio) in SUPPORTED {
        let mut lists = Vec::new();
        if has_video {
            lists.push(("index_0_av.m3u8", true));
        }
        if has_audio {
            lists.push(("index_0_a.m3u8", false));
        }
        if name == "two_audio.mp4" {
            lists.push(("index_0_v.m3u8", true));
            lists.push(("index_0_a1.m3u8", false));
        }
        for (list, video_first) in lists {
            let dir = out.path().join(name).join(list);
            let names = dump_variant(&f, name, list, &dir).await;
            let mut last_cc = std::collections::HashMap::new();
            for seg_name in &names {
                let label = format!("{name} {list} {seg_name}");
                let seg = std::fs::read(dir.join(seg_name)).unwrap();
                let first_pid = if video_first { 0x100 } else { 0x101 };
                let pes = reparse_ts(&seg, &label, first_pid, &mut last_cc);
                assert!(pes > 0, "{label}: no PES");
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "only {checked} segments read");
}

/// Golden digests of produced bytes, deliberately brittle: when the muxer or the playlist
/// writer changes its output, this fails; bump `casterpak::vod::FORMAT_VERSION` (it feeds
/// every ETag, so CDNs and players never mix old and new bytes) and update the digests.
#[tokio::test]
async fn golden_output_is_tied_to_format_version() {
    use casterpak::vod::cache::digest;
    let vod = vod(&samples_dir(), 6.0);
    let mut got = Vec::new();
    for p in [
        "clip_360p.mp4/index_0_av.m3u8",
        "clip_360p.mp4/segment1_0_av.ts",
        "clip_360p.mp4/segment2_0_a.ts",
        "clip_,360,540,720,p.mp4.csmil/master.m3u8",
    ] {
        let r = vod.respond(p, None).await.unwrap();
        got.push(format!("{p} {}", digest(&[&r.body])));
    }
    let want = GOLDEN.trim().lines().map(str::trim).collect::<Vec<_>>();
    assert_eq!(casterpak::vod::FORMAT_VERSION, 5);
    assert_eq!(
        got, want,
        "output changed: bump FORMAT_VERSION and update GOLDEN"
    );
}

/// Inputs are the committed `samples/` files (re-running `samples/make-samples.sh` with
/// another ffmpeg changes them, and these digests too).
const GOLDEN: &str = "
    clip_360p.mp4/index_0_av.m3u8 eaf8a0850f41b9acdf9669ce06b555c5
    clip_360p.mp4/segment1_0_av.ts 9160476aa674153e12505b9b25dbf07c
    clip_360p.mp4/segment2_0_a.ts bdc884575d823af5573d0cb4f1cc88e4
    clip_,360,540,720,p.mp4.csmil/master.m3u8 45a9906efae6b8a49b483d7e73efdafe
";
