//! The MP4 sample index against an independent demuxer (`shiguredo_mp4`) on every fixture,
//! and against hostile (mutated, truncated) `moov` boxes.

#[path = "vod_common.rs"]
mod common;

use std::path::Path;

use casterpak::vod::csmil::Variant;
use casterpak::vod::index::{
    box_header, has_mvex, index_fragmented, index_moov, IndexError, MovieIndex, Track,
};
use casterpak::vod::segment::{mux, plan, Clip, SampleData};
use shiguredo_mp4::demux::{Input, Mp4FileDemuxer};

/// The `moov` box bytes of a file (top-level walk).
fn moov_of(data: &[u8]) -> &[u8] {
    let mut pos = 0usize;
    while pos < data.len() {
        let (kind, _, size) = box_header(&data[pos..]).expect("box header");
        let size = size.unwrap_or((data.len() - pos) as u64) as usize;
        if &kind == b"moov" {
            return &data[pos..pos + size];
        }
        pos += size;
    }
    panic!("no moov");
}

/// Every top-level `moof` with its offset.
fn moofs_of(data: &[u8]) -> Vec<(u64, bytes::Bytes)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let (kind, _, size) = box_header(&data[pos..]).expect("box header");
        let size = size.unwrap_or((data.len() - pos) as u64) as usize;
        if &kind == b"moof" {
            out.push((
                pos as u64,
                bytes::Bytes::copy_from_slice(&data[pos..pos + size]),
            ));
        }
        pos += size;
    }
    out
}

fn index_file(path: &Path) -> (Vec<u8>, MovieIndex) {
    let data = std::fs::read(path).unwrap();
    let moov = moov_of(&data);
    let idx = if has_mvex(moov) {
        assert!(matches!(
            index_moov(moov, data.len() as u64),
            Err(IndexError::Fragmented)
        ));
        index_fragmented(moov, &moofs_of(&data), data.len() as u64).unwrap()
    } else {
        index_moov(moov, data.len() as u64).unwrap()
    };
    (data, idx)
}

/// One sample as (offset, size, dts, cto, keyframe).
type OracleSample = (u64, u32, u64, i64, bool);

/// Samples per track id, from shiguredo_mp4.
fn oracle(data: &[u8]) -> std::collections::HashMap<u32, Vec<OracleSample>> {
    let mut demuxer = Mp4FileDemuxer::new();
    demuxer.handle_input(Input { position: 0, data });
    let mut out: std::collections::HashMap<u32, Vec<_>> = Default::default();
    while let Some(s) = demuxer.next_sample().unwrap() {
        out.entry(s.track.track_id).or_default().push((
            s.data_offset,
            s.data_size as u32,
            s.timestamp,
            s.composition_time_offset.unwrap_or(0),
            s.keyframe,
        ));
    }
    out
}

/// Samples per track id from ffprobe's packets (for fragmented files, which
/// `shiguredo_mp4`'s file demuxer does not read): pos, size, dts, pts - dts, K flag.
fn oracle_ffprobe(path: &Path) -> std::collections::HashMap<u32, Vec<OracleSample>> {
    let p = path.to_string_lossy();
    let (ok, ids, err) = common::run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=index,id",
            "-of",
            "csv=p=0",
            &p,
        ],
    );
    assert!(ok, "{err}");
    let ids: std::collections::HashMap<u32, u32> = ids
        .lines()
        .filter_map(|l| {
            let (i, id) = l.split_once(',')?;
            Some((
                i.parse().ok()?,
                u32::from_str_radix(id.trim_start_matches("0x"), 16).ok()?,
            ))
        })
        .collect();
    let (ok, out, err) = common::run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,pos,size,dts,pts,flags",
            "-of",
            "csv=p=0",
            &p,
        ],
    );
    assert!(ok, "{err}");
    let mut map: std::collections::HashMap<u32, Vec<OracleSample>> = Default::default();
    for l in out.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split(',').collect();
        let (stream, pts, dts, size, pos): (u32, i64, i64, u32, u64) = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
        );
        map.entry(ids[&stream]).or_default().push((
            pos,
            size,
            dts as u64,
            pts - dts,
            f[5].starts_with('K'),
        ));
    }
    map
}

fn compare(name: &str, t: &Track, want: &[OracleSample]) {
    assert_eq!(t.samples.len(), want.len(), "{name} track {}", t.track_id);
    for (i, (s, w)) in t.samples.iter().zip(want).enumerate() {
        let got = (s.offset, s.size, s.dts, i64::from(s.cto), s.sync);
        assert_eq!(got, *w, "{name} track {} sample {i}", t.track_id);
    }
}

#[test]
fn index_matches_shiguredo_mp4_on_every_fixture() {
    let fx = common::fixtures();
    let mut files: Vec<std::path::PathBuf> = common::SUPPORTED
        .iter()
        .map(|(n, _, _)| fx.join(n))
        .collect();
    for r in ["clip_360p.mp4", "clip_540p.mp4", "clip_720p.mp4"] {
        files.push(common::samples_dir().join(r));
    }
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (data, idx) = index_file(&path);
        let want = if has_mvex(moov_of(&data)) {
            oracle_ffprobe(&path)
        } else {
            oracle(&data)
        };
        let mut seen = 0;
        for t in idx.tracks() {
            compare(&name, t, &want[&t.track_id]);
            seen += 1;
        }
        assert!(seen >= 1, "{name}");
    }
}

#[test]
fn index_facts_of_the_fixtures() {
    let fx = common::fixtures();
    let (_, idx) = index_file(&fx.join("faststart.mp4"));
    let v = idx.video.as_ref().unwrap();
    assert_eq!((v.width, v.height), (320, 180));
    assert!(v.codec_string.starts_with("avc1."), "{}", v.codec_string);
    assert!((v.frame_rate - 25.0).abs() < 1e-9);
    // B-frames: the edit list moves the first displayed frame to presentation time 0.
    assert_eq!(v.pt(0), 0);
    let a = idx.audio.as_ref().unwrap();
    assert_eq!(a.codec_string, "mp4a.40.2");
    // AAC priming: the first frame presents before 0.
    assert!(a.pt(0) < 0);
    let (_, idx) = index_file(&fx.join("hevc_hvc1.mp4"));
    assert!(idx
        .video
        .as_ref()
        .unwrap()
        .codec_string
        .starts_with("hvc1.1.6.L"));
    let (_, idx) = index_file(&fx.join("hevc_hev1.mp4"));
    assert!(idx
        .video
        .as_ref()
        .unwrap()
        .codec_string
        .starts_with("hev1."));
    let (_, idx) = index_file(&fx.join("two_audio.mp4"));
    assert_eq!(
        idx.audio.as_ref().unwrap().track_id,
        2,
        "first audio track by default"
    );
    let (_, idx) = index_file(&fx.join("audio_only.mp4"));
    assert!(idx.video.is_none());
}

#[test]
fn truncated_file_is_corrupt_not_a_panic() {
    let data = std::fs::read(common::samples_dir().join("clip_360p.mp4")).unwrap();
    let moov = moov_of(&data);
    // The file is cut after the moov: samples point past its end.
    let err = index_moov(moov, (data.len() / 2) as u64).unwrap_err();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("sample"), "{err}");
    // A moov cut anywhere never panics.
    for cut in (0..moov.len()).step_by(7) {
        let _ = index_moov(&moov[..cut], data.len() as u64);
    }
}

/// Deterministic mutation fuzzing of a real moov: random bytes and big counts must give
/// errors or a bounded index, never a panic or a huge allocation.
#[test]
fn mutated_moov_never_panics() {
    let data = std::fs::read(common::samples_dir().join("clip_360p.mp4")).unwrap();
    let moov = moov_of(&data).to_vec();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut ok = 0;
    for _ in 0..3000 {
        let mut m = moov.clone();
        for _ in 0..(1 + next() % 4) {
            let pos = (next() as usize) % m.len();
            m[pos] = match next() % 3 {
                0 => 0xFF,
                1 => 0x00,
                _ => next() as u8,
            };
        }
        if let Ok(idx) = index_moov(&m, data.len() as u64) {
            ok += 1;
            for t in idx.tracks() {
                assert!(t.samples.len() as u64 <= casterpak::vod::index::MAX_SAMPLES);
                for s in &t.samples {
                    assert!(s.offset + u64::from(s.size) <= data.len() as u64);
                }
            }
            // Planning and muxing whatever index came out must not panic either (tests run
            // with overflow checks).
            let whole = SampleData {
                chunks: vec![(0, &data[..])],
            };
            for v in [Variant::Av, Variant::Audio] {
                for clip in [
                    Clip::default(),
                    Clip {
                        start: Some(3.0),
                        end: Some(9.0),
                    },
                ] {
                    if let Ok(p) = plan(&idx, v, 540_000, clip) {
                        for (k, seg) in p.segments.iter().enumerate().take(3) {
                            let _ = mux(&idx, &p, k as u32 + 1, seg, &whole);
                        }
                    }
                }
            }
        }
    }
    assert!(ok > 0, "some mutations are harmless");
}

/// The size estimate behind BANDWIDTH equals the real segment size (ffmpeg-made inputs have
/// 4-byte NAL lengths and no in-band AUD), so BANDWIDTH is the true peak.
#[tokio::test]
async fn segment_size_estimate_is_exact() {
    let fx = common::fixtures();
    let mut cases: Vec<(std::path::PathBuf, String)> = common::SUPPORTED
        .iter()
        .map(|(n, _, _)| (fx.to_owned(), n.to_string()))
        .collect();
    for r in ["clip_360p.mp4", "clip_720p.mp4"] {
        cases.push((common::samples_dir(), r.to_string()));
    }
    for (root, name) in cases {
        let vod = common::vod(&root, 4.0);
        let (_, idx) = index_file(&root.join(&name));
        for (variant, suffix) in [(Variant::Av, "av"), (Variant::Audio, "a")] {
            let Ok(p) = plan(&idx, variant, 360_000, Clip::default()) else {
                continue;
            };
            for (k, s) in p.segments.iter().enumerate() {
                let r = vod
                    .respond(&format!("{name}/segment{}_0_{suffix}.ts", k + 1), None)
                    .await
                    .unwrap();
                assert_eq!(
                    r.body.len() as u64,
                    s.est_bytes,
                    "{name} {suffix} segment {}",
                    k + 1
                );
            }
        }
    }
}

/// Extreme but well-formed tables (huge edit offsets and durations, maximal deltas and
/// composition offsets, timescale 1): index, plan and mux answer or refuse, never panic.
#[test]
fn extreme_timing_tables_never_panic() {
    use mp4_atom::{Decode, Edts, Elst, ElstEntry, Encode, Moov};
    let data = std::fs::read(common::samples_dir().join("clip_360p.mp4")).unwrap();
    let base = Moov::decode(&mut moov_of(&data)).unwrap();
    let whole = SampleData {
        chunks: vec![(0, &data[..])],
    };
    let edits: [Vec<ElstEntry>; 4] = [
        vec![ElstEntry {
            segment_duration: u64::MAX,
            media_time: Some(u64::MAX / 2),
            media_rate: 1i16.into(),
        }],
        vec![
            ElstEntry {
                segment_duration: u64::MAX,
                media_time: None,
                media_rate: 1i16.into(),
            },
            ElstEntry {
                segment_duration: 0,
                media_time: Some(0),
                media_rate: 1i16.into(),
            },
        ],
        vec![ElstEntry {
            segment_duration: 1,
            media_time: Some(i64::MAX as u64),
            media_rate: 0i16.into(),
        }],
        vec![],
    ];
    let mut indexed = 0;
    for (k, edit) in edits.iter().enumerate() {
        for variant in 0..3 {
            let mut moov = base.clone();
            for trak in &mut moov.trak {
                trak.edts = Some(Edts {
                    elst: Some(Elst {
                        entries: edit.clone(),
                    }),
                });
                let stbl = &mut trak.mdia.minf.stbl;
                match variant {
                    0 => {
                        for e in &mut stbl.stts.entries {
                            e.sample_delta = u32::MAX;
                        }
                    }
                    1 => {
                        if let Some(c) = &mut stbl.ctts {
                            for (i, e) in c.entries.iter_mut().enumerate() {
                                e.sample_offset = if i % 2 == 0 {
                                    i64::from(i32::MAX)
                                } else {
                                    i64::from(i32::MIN)
                                };
                            }
                        }
                        trak.mdia.mdhd.timescale = 1;
                    }
                    _ => moov.mvhd.timescale = 1,
                }
            }
            let mut buf = Vec::new();
            moov.encode(&mut buf).unwrap();
            let idx = match index_moov(&buf, data.len() as u64) {
                Ok(idx) => idx,
                Err(e) => {
                    eprintln!("edit {k} variant {variant}: {e}");
                    continue;
                }
            };
            indexed += 1;
            for v in [Variant::Av, Variant::Audio] {
                for clip in [
                    Clip::default(),
                    Clip {
                        start: Some(1.0),
                        end: Some(5.0),
                    },
                ] {
                    if let Ok(p) = plan(&idx, v, 540_000, clip) {
                        let _ = p.peak_bps();
                        let _ = p.average_bps();
                        let _: Vec<u64> = p.durations_ms().collect();
                        for (n, seg) in p.segments.iter().enumerate().take(2) {
                            let _ = mux(&idx, &p, n as u32 + 1, seg, &whole);
                        }
                        // The fMP4 output of the same plan: headers, timelines, fragments.
                        use casterpak::vod::fmp4::{self, Media};
                        for (media, t) in [(Media::Video, &idx.video), (Media::Audio, &idx.audio)] {
                            let Some(t) = t else { continue };
                            let _ = fmp4::init_segment(t);
                            let tl = fmp4::timeline(t, &p, media);
                            let _ = fmp4::durations_ms(&tl, t.timescale);
                            for n in 0..p.segments.len().min(2) {
                                let samples = fmp4::segment_samples(&p, media, n);
                                if samples.is_empty() {
                                    continue;
                                }
                                let _ = fmp4::fragment_len(t, &samples);
                                let mut out = Vec::new();
                                let _ = fmp4::fragment_into(
                                    t,
                                    samples,
                                    n as u32 + 1,
                                    p.origin,
                                    &whole,
                                    &mut out,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(indexed >= 6, "most extreme tables still index ({indexed})");
}
