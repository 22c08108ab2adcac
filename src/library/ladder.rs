//! The ABR ladder of an upload and the one ffmpeg command that encodes it: one decode,
//! `split` to every rung, one faststart MP4 per rung (what the `.csmil` packager serves).
//!
//! Pure: facts in, argv and text out. The default rungs follow Apple's HLS authoring
//! specification table (416x234 145k ... 1920x1080 6000k) with the MediaCMS/PeerTube rules:
//! no rung above the source (the lowest always kept), each bitrate capped at 1.3 x the
//! source's, 2-second closed GOPs aligned across rungs (`-force_key_frames` on the same
//! timestamps, no scene-cut IDRs), capped VBR (`-maxrate 1.1 x B -bufsize 2 x B`), AAC-LC
//! 128 kb/s 48 kHz stereo.

use serde::{Deserialize, Serialize};

use super::probe::SourceInfo;

/// One rung of a ladder as configured: `{ name = "360p", height = 360, bitrate = 730000 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungSpec {
    /// The rung's name (`360p`); also the variant in the `.csmil` URL, so it must be
    /// `[0-9a-z]+` and end in `p` for the file names `<id>_<height>p.mp4`.
    pub name: String,
    /// The short side of the picture in pixels (the height of a landscape picture), even.
    pub height: u32,
    /// Target video bitrate, bits per second.
    pub bitrate: u64,
}

/// The default ladder (bits per second): 240p 300k, 360p 730k, 540p 2000k, 720p 3000k,
/// 1080p 6000k.
pub fn default_ladder() -> Vec<RungSpec> {
    [
        (240, 300_000),
        (360, 730_000),
        (540, 2_000_000),
        (720, 3_000_000),
        (1080, 6_000_000),
    ]
    .into_iter()
    .map(|(height, bitrate)| RungSpec {
        name: format!("{height}p"),
        height,
        bitrate,
    })
    .collect()
}

/// Why a ladder given in a request or the config is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ladder: {0}")]
pub struct LadderError(pub String);

/// Checks a ladder: 1 to 8 rungs, heights even in 16..=4320, bitrates 50 kb/s..=100 Mb/s,
/// distinct heights.
///
/// Errors: [`LadderError`] naming the first bad rung.
pub fn check_ladder(rungs: &[RungSpec]) -> Result<(), LadderError> {
    if rungs.is_empty() || rungs.len() > 8 {
        return Err(LadderError("a ladder has 1 to 8 rungs".into()));
    }
    for (i, r) in rungs.iter().enumerate() {
        if !(16..=4320).contains(&r.height) || r.height % 2 != 0 {
            return Err(LadderError(format!(
                "rung {i}: height {} is not an even number in 16..=4320",
                r.height
            )));
        }
        if !(50_000..=100_000_000).contains(&r.bitrate) {
            return Err(LadderError(format!(
                "rung {i}: bitrate {} b/s is outside 50000..=100000000",
                r.bitrate
            )));
        }
        if rungs[..i].iter().any(|o| o.height == r.height) {
            return Err(LadderError(format!(
                "rung {i}: height {} appears twice",
                r.height
            )));
        }
    }
    Ok(())
}

/// A rung chosen for one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rung {
    /// `<height>p`: the file is `<asset id>_<height>p.mp4`, the `.csmil` variant `<height>`.
    pub name: String,
    /// Output picture size in pixels (the width keeps the source's aspect, even).
    pub width: u32,
    pub height: u32,
    /// Target video bitrate, bits per second (after the 1.3 x source cap).
    pub bitrate: u64,
}

/// The rungs for `src`: those whose short side is at most the source's (the lowest rung
/// always, even above a tiny source), sorted by height, each bitrate capped at 1.3 x the
/// source's video bitrate (when known).
pub fn rungs_for(spec: &[RungSpec], src: &SourceInfo) -> Vec<Rung> {
    let mut spec: Vec<&RungSpec> = spec.iter().collect();
    spec.sort_by_key(|r| r.height);
    let short = src.width.min(src.height).max(2);
    let long = src.width.max(src.height).max(2);
    let portrait = src.height > src.width;
    let cap = src.video_bitrate.map(|b| b.saturating_mul(13) / 10);
    let mut out = Vec::new();
    for (i, r) in spec.iter().enumerate() {
        if i > 0 && r.height > short {
            break;
        }
        // The long side from the aspect, to the nearest even number (ffmpeg's `scale=-2:H`).
        let den = 2 * u64::from(short);
        let other = ((u64::from(long) * u64::from(r.height) + den / 2) / den * 2) as u32;
        let (width, height) = if portrait {
            (r.height, other)
        } else {
            (other, r.height)
        };
        let bitrate = match cap {
            Some(c) if c >= 50_000 => r.bitrate.min(c),
            _ => r.bitrate,
        };
        out.push(Rung {
            name: format!("{}p", r.height),
            width,
            height,
            bitrate,
        });
    }
    out
}

/// Encoder settings that are not per rung.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// x264 preset (`veryfast`).
    pub preset: String,
    /// Threads per encoder and for the decoder (`-threads`).
    pub threads: u32,
    /// GOP length in seconds (closed, aligned across rungs).
    pub gop_secs: u32,
}

/// The output frame rate: the source's (rounded to 1/1000), at most 60, 30 when unknown.
pub fn output_fps(src: &SourceInfo) -> f64 {
    match src.fps {
        Some(f) if f.is_finite() && f > 0.0 => ((f.min(60.0)) * 1000.0).round() / 1000.0,
        _ => 30.0,
    }
}

/// `-filter_complex` of one decode split to every rung: `[v0]`, `[v1]`, ... scaled.
fn split_filter(fps: f64, rungs: &[Rung]) -> String {
    let mut filter = format!("[0:v:0]fps={fps},format=yuv420p,split={}", rungs.len());
    for i in 0..rungs.len() {
        filter.push_str(&format!("[s{i}]"));
    }
    for (i, r) in rungs.iter().enumerate() {
        filter.push_str(&format!(
            ";[s{i}]scale={}:{}:flags=bicubic,setsar=1[v{i}]",
            r.width, r.height
        ));
    }
    filter
}

/// The input half of the argv: one input, one decode split to every rung.
fn input_args(input: &str, src: &SourceInfo, rungs: &[Rung], opts: &EncodeOptions) -> Vec<String> {
    let filter = split_filter(output_fps(src), rungs);
    [
        "-hide_banner",
        "-nostdin",
        "-y",
        "-threads",
        &opts.threads.to_string(),
        "-i",
        input,
        "-filter_complex",
        &filter,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The encoder options of rung `i` (its `[v<i>]` output and the first audio stream): x264
/// High with closed GOPs of `gop_secs` forced on the same timestamps in every rung, capped
/// VBR, AAC-LC 128 kb/s 48 kHz stereo.
fn rung_args(i: usize, r: &Rung, src: &SourceInfo, opts: &EncodeOptions) -> Vec<String> {
    let gop_frames = ((output_fps(src) * f64::from(opts.gop_secs)).round() as u64).max(1);
    let b = r.bitrate;
    vec![
        "-map".to_owned(),
        format!("[v{i}]"),
        "-map".into(),
        "0:a:0?".into(),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        opts.preset.clone(),
        "-profile:v".into(),
        "high".into(),
        "-threads".into(),
        opts.threads.to_string(),
        "-g".into(),
        gop_frames.to_string(),
        "-keyint_min".into(),
        gop_frames.to_string(),
        "-sc_threshold".into(),
        "0".into(),
        "-force_key_frames".into(),
        format!("expr:gte(t,n_forced*{})", opts.gop_secs),
        "-x264-params".into(),
        "open_gop=0".into(),
        "-b:v".into(),
        b.to_string(),
        "-maxrate".into(),
        (b * 11 / 10).to_string(),
        "-bufsize".into(),
        (b * 2).to_string(),
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        "128k".into(),
        "-ac".into(),
        "2".into(),
        "-ar".into(),
        "48000".into(),
        "-map_metadata".into(),
        "-1".into(),
    ]
}

/// The argv (without the program) of the one ffmpeg that encodes every rung of `rungs`
/// from `input` into `out_dir/<prefix><rung name>.mp4`, printing `-progress` blocks on
/// stdout. Every value comes from the server (paths it made, numbers it chose): nothing a
/// client sent, so nothing to escape, and no shell.
pub fn ffmpeg_args(
    input: &str,
    src: &SourceInfo,
    rungs: &[Rung],
    opts: &EncodeOptions,
    out_dir: &str,
    prefix: &str,
) -> Vec<String> {
    let mut a = input_args(input, src, rungs, opts);
    for (i, r) in rungs.iter().enumerate() {
        a.extend(rung_args(i, r, src, opts));
        a.extend([
            "-movflags".to_owned(),
            "+faststart".into(),
            format!("{out_dir}/{prefix}{}.mp4", r.name),
        ]);
    }
    a.extend(
        ["-progress", "pipe:1", "-nostats", "-stats_period", "1"]
            .iter()
            .map(|s| s.to_string()),
    );
    a
}

/// The argv of the ffmpeg that encodes one recorded segment (the NUS app's uploads) into
/// one MPEG-TS file per rung (`outputs[i]` for `rungs[i]`), its timestamps shifted by
/// [`SEGMENT_TS_BASE_SECS`] + `start_secs` (the sum of the earlier segments' durations) so
/// the segments of every rung follow each other on one timeline (ISO/IEC 13818-1 PTS,
/// 90 kHz).
/// Where the timeline of recorded segments starts, seconds: AAC's priming puts each
/// segment's first audio frame about 23 ms before its video, and below zero ffmpeg would
/// shift the first segment's timestamps (and only that one's) to make them positive.
pub const SEGMENT_TS_BASE_SECS: f64 = 1.0;

pub fn segment_ts_args(
    input: &str,
    src: &SourceInfo,
    rungs: &[Rung],
    opts: &EncodeOptions,
    start_secs: f64,
    outputs: &[String],
) -> Vec<String> {
    let mut a = input_args(input, src, rungs, opts);
    for (i, (r, out)) in rungs.iter().zip(outputs).enumerate() {
        a.extend(rung_args(i, r, src, opts));
        // No B-frames: with them the first DTS of a segment is one frame before its PTS,
        // into the previous segment's last frame, and the joined timeline goes backwards.
        a.extend([
            "-bf".to_owned(),
            "0".into(),
            "-output_ts_offset".into(),
            format!("{:.6}", SEGMENT_TS_BASE_SECS + start_secs),
            "-muxdelay".into(),
            "0".into(),
            "-muxpreload".into(),
            "0".into(),
            "-f".into(),
            "mpegts".into(),
            out.clone(),
        ]);
    }
    a
}

/// The thumbnail sprite of a video `duration_secs` long: one tile every `interval_secs`,
/// `columns` x `rows` tiles of `tile_width` x `tile_height` pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpritePlan {
    pub interval_secs: f64,
    pub count: u32,
    pub columns: u32,
    pub rows: u32,
    pub tile_width: u32,
    pub tile_height: u32,
}

/// Tiles 160 pixels wide (height from `aspect` = width / height), at most 121 of them
/// (11 x 11, like PeerTube's storyboards), one every 2 s or more.
pub fn sprite_plan(duration_secs: f64, aspect: f64) -> SpritePlan {
    let d = duration_secs.max(0.1);
    let interval = (d / 121.0).ceil().max(2.0);
    let count = ((d / interval).ceil() as u32).clamp(1, 121);
    let columns = count.min(11);
    let rows = count.div_ceil(columns);
    let tile_width = 160;
    let aspect = if aspect.is_finite() && aspect > 0.1 {
        aspect
    } else {
        16.0 / 9.0
    };
    let tile_height = (((f64::from(tile_width) / aspect).round() as u32) + 1) & !1;
    SpritePlan {
        interval_secs: interval,
        count,
        columns,
        rows,
        tile_width,
        tile_height: tile_height.max(2),
    }
}

/// The argv of the ffmpeg that makes the sprite JPEG from `input` (the lowest rung: the
/// cheapest decode).
pub fn sprite_args(input: &str, plan: &SpritePlan, out: &str) -> Vec<String> {
    let vf = format!(
        "fps=1/{},scale={}:{}:flags=bicubic,setsar=1,tile={}x{}",
        plan.interval_secs, plan.tile_width, plan.tile_height, plan.columns, plan.rows
    );
    [
        "-hide_banner",
        "-nostdin",
        "-y",
        "-threads",
        "1",
        "-i",
        input,
        "-an",
        "-vf",
        &vf,
        "-frames:v",
        "1",
        "-q:v",
        "4",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The argv of the ffmpeg that makes the poster JPEG: the most representative frame
/// (`thumbnail` filter) near the middle of `input`.
pub fn poster_args(input: &str, duration_secs: f64, out: &str) -> Vec<String> {
    let at = format!("{:.3}", (duration_secs / 2.0).max(0.0));
    [
        "-hide_banner",
        "-nostdin",
        "-y",
        "-threads",
        "1",
        "-ss",
        &at,
        "-i",
        input,
        "-an",
        "-vf",
        "thumbnail=50",
        "-frames:v",
        "1",
        "-q:v",
        "3",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The WebVTT thumbnails track of a sprite (the de-facto `#xywh=` media fragment format
/// players read for seek-bar previews): one cue per tile, times in seconds from the start.
pub fn thumbnails_vtt(plan: &SpritePlan, duration_secs: f64, sprite_uri: &str) -> String {
    let mut out = String::from("WEBVTT\n");
    for i in 0..plan.count {
        let start = f64::from(i) * plan.interval_secs;
        if i > 0 && start >= duration_secs {
            break;
        }
        let end = (start + plan.interval_secs).min(duration_secs.max(start + 0.001));
        let x = (i % plan.columns) * plan.tile_width;
        let y = (i / plan.columns) * plan.tile_height;
        out.push_str(&format!(
            "\n{} --> {}\n{sprite_uri}#xywh={x},{y},{},{}\n",
            vtt_time(start),
            vtt_time(end),
            plan.tile_width,
            plan.tile_height
        ));
    }
    out
}

/// `HH:MM:SS.mmm` (WebVTT cue timing).
fn vtt_time(secs: f64) -> String {
    let ms = (secs * 1000.0).round().max(0.0) as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(w: u32, h: u32, bitrate: Option<u64>) -> SourceInfo {
        SourceInfo {
            format: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            duration_secs: 10.0,
            video_codec: "h264".into(),
            width: w,
            height: h,
            fps: Some(25.0),
            video_bitrate: bitrate,
            audio_codec: Some("aac".into()),
            bitrate: None,
        }
    }

    #[test]
    fn no_rung_above_the_source_and_the_lowest_always() {
        let l = default_ladder();
        let names = |r: Vec<Rung>| r.into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(
            names(rungs_for(&l, &src(1280, 720, None))),
            ["240p", "360p", "540p", "720p"]
        );
        assert_eq!(names(rungs_for(&l, &src(256, 144, None))), ["240p"]);
        let r = rungs_for(&l, &src(1920, 1080, None));
        assert_eq!(r.len(), 5);
        assert_eq!((r[0].width, r[0].height), (426, 240), "16:9, even width");
        let p = rungs_for(&l, &src(720, 1280, None));
        assert_eq!(
            (p[1].width, p[1].height),
            (360, 640),
            "portrait: the short side"
        );
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn bitrates_are_capped_at_1_3_x_the_source() {
        let r = rungs_for(&default_ladder(), &src(1280, 720, Some(1_000_000)));
        let b: Vec<u64> = r.iter().map(|r| r.bitrate).collect();
        assert_eq!(b, [300_000, 730_000, 1_300_000, 1_300_000]);
    }

    #[test]
    fn one_decode_split_to_every_rung_with_aligned_gops() {
        let s = src(1280, 720, None);
        let rungs = rungs_for(&default_ladder(), &s);
        let opts = EncodeOptions {
            preset: "veryfast".into(),
            threads: 2,
            gop_secs: 2,
        };
        let a = ffmpeg_args("/in/src", &s, &rungs, &opts, "/out", "id_");
        assert_eq!(a.iter().filter(|x| *x == "-i").count(), 1, "one input");
        let filter = &a[a.iter().position(|x| x == "-filter_complex").unwrap() + 1];
        assert!(filter.starts_with("[0:v:0]fps=25,format=yuv420p,split=4[s0][s1][s2][s3];"));
        assert_eq!(
            a.iter().filter(|x| *x == "50").count(),
            8,
            "-g and -keyint_min"
        );
        assert_eq!(
            a.iter().filter(|x| *x == "expr:gte(t,n_forced*2)").count(),
            4
        );
        assert!(a.contains(&"/out/id_720p.mp4".to_owned()));
        assert!(a.ends_with(&["-stats_period".to_owned(), "1".to_owned()]));
    }

    #[test]
    fn ladders_are_checked() {
        assert!(check_ladder(&default_ladder()).is_ok());
        assert!(check_ladder(&[]).is_err());
        let odd = RungSpec {
            name: "x".into(),
            height: 241,
            bitrate: 300_000,
        };
        assert!(check_ladder(&[odd]).is_err());
    }

    #[test]
    fn thumbnails_point_into_the_sprite() {
        let p = sprite_plan(8.0, 16.0 / 9.0);
        assert_eq!((p.count, p.columns, p.rows), (4, 4, 1));
        assert_eq!((p.tile_width, p.tile_height), (160, 90));
        let vtt = thumbnails_vtt(&p, 8.0, "sprite.jpg");
        assert!(vtt
            .starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nsprite.jpg#xywh=0,0,160,90\n"));
        assert!(vtt.contains("00:00:06.000 --> 00:00:08.000\nsprite.jpg#xywh=480,0,160,90"));
        let long = sprite_plan(3600.0, 16.0 / 9.0);
        assert!(long.count <= 121 && long.columns * long.rows >= long.count);
        assert_eq!(long.interval_secs, 30.0);
    }
}
