//! Shared helpers of the VOD integration tests (`#[path]`-included by `tests/vod_*.rs`).
//!
//! - [`fixtures`]: ffmpeg-made inputs of every kind the issue lists, generated once per
//!   test binary into a temp dir (nothing big is committed).
//! - [`Fetcher`]: where playlists and segments come from. Today the `Vod` service called
//!   in-process; once the server is merged, `Fetcher::Http("http://127.0.0.1:PORT/i/")`
//!   is the one-line switch.
//! - [`dump_variant`]: writes a media playlist and its segments into a folder so ffmpeg
//!   and ffprobe read them as plain files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use casterpak::vod::{Vod, VodError};

/// Runs a command, returns (success, stdout, stderr).
pub fn run(cmd: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ffmpeg(args: &[&str]) {
    let mut all = vec!["-nostdin", "-v", "error", "-y"];
    all.extend_from_slice(args);
    let (ok, _, err) = run("ffmpeg", &all);
    assert!(ok, "ffmpeg {args:?}: {err}");
}

/// The supported fixtures (file name, has video, has audio).
pub const SUPPORTED: &[(&str, bool, bool)] = &[
    ("faststart.mp4", true, true),
    ("moov_end.mp4", true, true),
    ("gop_odd.mp4", true, true),
    ("ntsc.mp4", true, true),
    ("hevc_hvc1.mp4", true, true),
    ("hevc_hev1.mp4", true, true),
    ("audio_only.mp4", false, true),
    ("video_only.mp4", true, false),
    ("two_audio.mp4", true, true),
    ("subtitled.mp4", true, true),
    ("co64.mp4", true, true),
    ("fragmented.mp4", true, true),
    ("fragmented_cmaf.mp4", true, true),
    ("cut.mp4", true, true),
    ("sync.mp4", true, true),
    ("sync_cut.mp4", true, true),
];

/// Inputs that must be refused with a clear error (file name, expected error text).
pub const UNSUPPORTED: &[(&str, &str)] = &[
    ("encrypted.mp4", "encrypted"),
    ("mpeg4_part2.mp4", "codec"),
    ("truncated_faststart.mp4", "beyond file size"),
    ("truncated_moov_end.mp4", "moov"),
];

fn lavfi_av(size: &str, rate: &str, secs: &str) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={size}:rate={rate}:duration={secs}"),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("sine=frequency=440:beep_factor=4:sample_rate=48000:duration={secs}"),
    ]
}

fn make(dir: &Path, name: &str, pre: Vec<String>, args: &[&str]) {
    let mut all: Vec<String> = pre;
    all.extend(args.iter().map(|s| s.to_string()));
    all.push(dir.join(name).to_string_lossy().into_owned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    ffmpeg(&refs);
}

const X264: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-bf",
    "2",
    "-g",
    "50",
    "-keyint_min",
    "50",
    "-sc_threshold",
    "0",
    "-pix_fmt",
    "yuv420p",
];

/// Bump when a fixture recipe changes (the cached set is then made again).
const FIXTURES_VERSION: u32 = 5;

/// All fixtures: made once into `CARGO_TARGET_TMPDIR/vod-fixtures-v<N>` (a temp folder
/// renamed into place when complete, so an interrupted run never leaves a partial set) and
/// reused by every test binary and later runs.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp_root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let done = tmp_root.join(format!("vod-fixtures-v{FIXTURES_VERSION}"));
        if done.join("complete").exists() {
            return done;
        }
        std::fs::create_dir_all(tmp_root).unwrap();
        let dir = tempfile::tempdir_in(tmp_root).unwrap();
        let d = dir.path();
        let av = || lavfi_av("320x180", "25", "10");
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            let mut v: Vec<&str> = X264.to_vec();
            v.extend_from_slice(&["-c:a", "aac", "-b:a", "64k"]);
            v.extend_from_slice(extra);
            v
        };
        make(
            d,
            "faststart.mp4",
            av(),
            &with(&["-movflags", "+faststart"]),
        );
        make(d, "moov_end.mp4", av(), &with(&[]));
        make(
            d,
            "gop_odd.mp4",
            lavfi_av("320x180", "25", "13"),
            &[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-bf",
                "3",
                "-g",
                "70",
                "-keyint_min",
                "70",
                "-sc_threshold",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
            ],
        );
        make(
            d,
            "ntsc.mp4",
            vec![
                "-f".into(),
                "lavfi".into(),
                "-i".into(),
                "testsrc2=size=320x180:rate=30000/1001:duration=9".into(),
                "-f".into(),
                "lavfi".into(),
                "-i".into(),
                "sine=frequency=300:sample_rate=44100:duration=9".into(),
            ],
            &[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-bf",
                "2",
                "-g",
                "60",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-movflags",
                "+faststart",
            ],
        );
        let x265 = [
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=50:min-keyint=50:bframes=2:log-level=error",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ];
        let mut hvc1 = x265.to_vec();
        hvc1.extend_from_slice(&["-tag:v", "hvc1"]);
        make(d, "hevc_hvc1.mp4", lavfi_av("320x180", "25", "8"), &hvc1);
        make(d, "hevc_hev1.mp4", lavfi_av("320x180", "25", "8"), &x265);
        make(
            d,
            "audio_only.mp4",
            av(),
            &["-vn", "-c:a", "aac", "-map", "1:a"],
        );
        make(d, "video_only.mp4", av(), &with(&["-an", "-map", "0:v"]));
        let mut two = av();
        two.extend(
            [
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=880:sample_rate=48000:duration=10",
            ]
            .map(String::from),
        );
        make(
            d,
            "two_audio.mp4",
            two,
            &with(&[
                "-map",
                "0:v",
                "-map",
                "1:a",
                "-map",
                "2:a",
                "-metadata:s:a:0",
                "language=eng",
                "-metadata:s:a:0",
                "handler_name=English",
                "-metadata:s:a:1",
                "language=fra",
                "-metadata:s:a:1",
                "handler_name=Français",
            ]),
        );
        // A mov_text (tx3g) subtitle track beside the video and audio (mdhd `deu`).
        let srt = d.join("subtitled.srt");
        std::fs::write(
            &srt,
            "1\n00:00:00,500 --> 00:00:01,500\nFirst line\n\n2\n00:00:05,000 --> 00:00:07,000\nSecond line\n",
        )
        .unwrap();
        let mut subtitled = av();
        subtitled.extend(["-i".to_string(), srt.to_string_lossy().into_owned()]);
        make(
            d,
            "subtitled.mp4",
            subtitled,
            &with(&[
                "-map",
                "0:v",
                "-map",
                "1:a",
                "-map",
                "2:s",
                "-c:s",
                "mov_text",
                "-metadata:s:s:0",
                "language=deu",
            ]),
        );
        std::fs::remove_file(&srt).unwrap();
        make_co64(&d.join("moov_end.mp4"), &d.join("co64.mp4"));
        // Fragmented: ffmpeg's frag_keyframe (explicit base offsets, one moof for both
        // tracks) and a CMAF-style file (default-base-is-moof, a moof per track).
        make(
            d,
            "fragmented.mp4",
            av(),
            &with(&["-movflags", "frag_keyframe+empty_moov"]),
        );
        make(
            d,
            "fragmented_cmaf.mp4",
            av(),
            &with(&[
                "-movflags",
                "frag_keyframe+empty_moov+default_base_moof+separate_moof",
            ]),
        );
        // Edit lists: `-ss X -c copy` starts at the keyframe before X and writes an edit
        // list (media_time) so the presentation starts at X, on every track.
        ffmpeg(&[
            "-ss",
            "3.3",
            "-i",
            &d.join("faststart.mp4").to_string_lossy(),
            "-c",
            "copy",
            &d.join("cut.mp4").to_string_lossy(),
        ]);
        // The sync fixture: a white frame and a 1 kHz beep at every even second (0, 2, 4,
        // ...) of a black, silent 12 s clip; B-frames, 2 s GOPs, AAC with its priming
        // in the edit list. sync_cut.mp4 is it cut at 3.3 s with -c copy.
        make(
            d,
            "sync.mp4",
            vec![
                "-f".into(),
                "lavfi".into(),
                "-i".into(),
                "color=c=black:s=320x180:r=25:d=12,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t,2),0.04)'".into(),
                "-f".into(),
                "lavfi".into(),
                "-i".into(),
                "aevalsrc='if(lt(mod(t,2),0.04),sin(2*PI*1000*t),0)':s=48000:d=12".into(),
            ],
            &with(&["-movflags", "+faststart"]),
        );
        ffmpeg(&[
            "-ss",
            "3.3",
            "-i",
            &d.join("sync.mp4").to_string_lossy(),
            "-c",
            "copy",
            &d.join("sync_cut.mp4").to_string_lossy(),
        ]);
        // Unsupported inputs.
        make(
            d,
            "encrypted.mp4",
            av(),
            &with(&[
                "-encryption_scheme",
                "cenc-aes-ctr",
                "-encryption_key",
                "76a6c65c5ea762046bd749a2e632ccbb",
                "-encryption_kid",
                "a7e61c373e219033c21091fa607bf3b8",
            ]),
        );
        make(
            d,
            "mpeg4_part2.mp4",
            av(),
            &["-c:v", "mpeg4", "-c:a", "aac"],
        );
        truncate_copy(
            &d.join("faststart.mp4"),
            &d.join("truncated_faststart.mp4"),
            0.6,
        );
        truncate_copy(
            &d.join("moov_end.mp4"),
            &d.join("truncated_moov_end.mp4"),
            0.97,
        );
        std::fs::write(d.join("complete"), b"").unwrap();
        let made = dir.keep();
        if std::fs::rename(&made, &done).is_err() {
            // Another test binary finished first; use its set.
            let _ = std::fs::remove_dir_all(&made);
        }
        done
    })
    .as_path()
}

fn truncate_copy(src: &Path, dst: &Path, keep: f64) {
    let data = std::fs::read(src).unwrap();
    let n = (data.len() as f64 * keep) as usize;
    std::fs::write(dst, &data[..n]).unwrap();
}

/// Rewrites a moov-at-end file with `co64` chunk offsets and a 64-bit `mdat` size (the
/// 8-byte `free` placeholder ffmpeg writes before `mdat` becomes the largesize field), so
/// no sample moves.
fn make_co64(src: &Path, dst: &Path) {
    use mp4_atom::{Co64, Decode, Encode, Moov};
    let data = std::fs::read(src).unwrap();
    // Top-level boxes.
    let mut pos = 0usize;
    let mut boxes = Vec::new();
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
        boxes.push((kind, pos, size));
        pos += size;
    }
    let (_, moov_pos, moov_size) = *boxes.iter().find(|b| &b.0 == b"moov").unwrap();
    let mut moov = Moov::decode(&mut &data[moov_pos..moov_pos + moov_size]).unwrap();
    for trak in &mut moov.trak {
        let stbl = &mut trak.mdia.minf.stbl;
        let stco = stbl.stco.take().expect("stco");
        stbl.co64 = Some(Co64 {
            entries: stco.entries.iter().map(|&o| u64::from(o)).collect(),
        });
    }
    let mut out = data[..moov_pos].to_vec();
    // free(8) + mdat(size32) -> mdat(size=1, largesize).
    let free = boxes.iter().position(|b| &b.0 == b"free" && b.2 == 8);
    if let Some(i) = free {
        let (_, fpos, _) = boxes[i];
        let (kind, mpos, msize) = boxes[i + 1];
        assert_eq!(&kind, b"mdat");
        assert_eq!(mpos, fpos + 8);
        let large = (msize + 8) as u64;
        out[fpos..fpos + 4].copy_from_slice(&1u32.to_be_bytes());
        out[fpos + 4..fpos + 8].copy_from_slice(b"mdat");
        out[fpos + 8..fpos + 16].copy_from_slice(&large.to_be_bytes());
    }
    moov.encode(&mut out).unwrap();
    std::fs::write(dst, out).unwrap();
}

/// Where `/i/` answers come from.
pub enum Fetcher<'a> {
    /// The service, called in-process.
    Service(&'a Vod),
    /// A running server: base URL ending in `/i/`.
    Http(String),
}

impl Fetcher<'_> {
    /// GETs `path` (after `/i/`, with an optional `?query`).
    pub async fn get(&self, path: &str) -> Result<bytes::Bytes, String> {
        match self {
            Fetcher::Service(vod) => {
                let (p, q) = match path.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (path, None),
                };
                vod.respond(p, q)
                    .await
                    .map(|r| r.body)
                    .map_err(|e: VodError| e.to_string())
            }
            Fetcher::Http(base) => {
                let resp = reqwest::get(format!("{base}{path}"))
                    .await
                    .map_err(|e| e.to_string())?;
                if !resp.status().is_success() {
                    return Err(resp.status().to_string());
                }
                resp.bytes().await.map_err(|e| e.to_string())
            }
        }
    }
}

/// A Vod over `root` with segment duration `d` seconds.
/// The `TYPE=SUBTITLES` renditions of a multivariant playlist, in order; panics (showing
/// the text) when `master` is not one.
pub fn subtitle_media(master: &[u8]) -> Vec<m3u8_rs::AlternativeMedia> {
    match m3u8_rs::parse_playlist_res(master) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m
            .alternatives
            .into_iter()
            .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
            .collect(),
        other => panic!("{other:?}\n{}", String::from_utf8_lossy(master)),
    }
}

pub fn vod(root: &Path, d: f64) -> Vod {
    let cfg = casterpak::vod::config::VodConfig {
        media_root: root.to_string_lossy().into_owned(),
        segment_duration_secs: d,
        ..Default::default()
    };
    Vod::new(&cfg).unwrap()
}

/// Fetches `<asset>/<playlist>` and every segment it lists into `out` (same names).
/// Returns the segment file names in order.
pub async fn dump_variant(f: &Fetcher<'_>, asset: &str, playlist: &str, out: &Path) -> Vec<String> {
    std::fs::create_dir_all(out).unwrap();
    let text = f.get(&format!("{asset}/{playlist}")).await.unwrap();
    let local_name = playlist.split('?').next().unwrap();
    std::fs::write(out.join(local_name), &text).unwrap();
    let pl = m3u8_rs::parse_media_playlist_res(&text).unwrap();
    let mut names = Vec::new();
    let mut rewritten = String::new();
    for line in String::from_utf8_lossy(&text).lines() {
        if line.starts_with('#') || line.is_empty() {
            rewritten.push_str(line);
        } else {
            let name = line.split('?').next().unwrap().to_string();
            let body = f.get(&format!("{asset}/{line}")).await.unwrap();
            std::fs::write(out.join(&name), body).unwrap();
            rewritten.push_str(&name);
            names.push(name);
        }
        rewritten.push('\n');
    }
    std::fs::write(out.join(local_name), rewritten).unwrap();
    assert_eq!(names.len(), pl.segments.len());
    names
}

/// Concatenates segment files into one TS file.
pub fn concat(dir: &Path, names: &[String], out: &Path) {
    let mut all = Vec::new();
    for n in names {
        all.extend(std::fs::read(dir.join(n)).unwrap());
    }
    std::fs::write(out, all).unwrap();
}

/// ffprobe packets of one stream type ("v" or "a"): (pts, dts, duration) in the stream's
/// time base (90 kHz for TS), in file order.
pub fn packets(file: &Path, sel: &str) -> Vec<(i64, i64, i64)> {
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            sel,
            "-show_entries",
            "packet=pts,dts,duration",
            "-of",
            "csv=p=0",
            &file.to_string_lossy(),
        ],
    );
    assert!(ok, "{err}");
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Vec<i64> = l
                .split(',')
                .map(|x| x.trim().parse::<i64>().unwrap_or(i64::MIN))
                .collect();
            (v[0], v[1], *v.get(2).unwrap_or(&0))
        })
        .collect()
}

/// How many samples a stream of an MP4 has (`nb_frames`: the ones its edit list skips
/// too, which ffprobe does not list as packets).
pub fn sample_count(file: &Path, sel: &str) -> usize {
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            sel,
            "-show_entries",
            "stream=nb_frames",
            "-of",
            "csv=p=0",
            &file.to_string_lossy(),
        ],
    );
    assert!(ok, "{err}");
    // Fragmented files have no sample count in the moov: their listed packets.
    out.trim()
        .parse()
        .unwrap_or_else(|_| packets(file, sel).len())
}

/// Source duration of a stream in seconds (ffprobe, container view).
pub fn probe_duration(file: &Path, sel: &str) -> f64 {
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            sel,
            "-show_entries",
            "stream=duration",
            "-of",
            "csv=p=0",
            &file.to_string_lossy(),
        ],
    );
    assert!(ok, "{err}");
    out.trim()
        .lines()
        .next()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0.0)
}

/// Decodes `input` fully with ffmpeg at `-v warning` (the bar: not even a warning);
/// returns what it printed (empty when clean).
pub fn decode_errors(input: &Path) -> String {
    decode_at(input, "warning")
}

/// Decodes every video and audio stream of `input` fully with ffmpeg at log level `level`
/// (`error`, `warning`); returns what it printed (empty when clean). Subtitle streams are
/// not decoded (`-f null` has no subtitle encoder). A local MPD may name `.vtt` files, which
/// ffmpeg's DASH demuxer opens from the file protocol only with `-allowed_extensions ALL`
/// (its default list is for media files; over HTTP it does not apply).
pub fn decode_at(input: &Path, level: &str) -> String {
    let input = input.to_string_lossy();
    let mut args = vec!["-nostdin", "-v", level];
    if input.ends_with(".mpd") {
        args.extend(["-allowed_extensions", "ALL"]);
    }
    args.extend([
        "-i", &input, "-map", "0:v?", "-map", "0:a?", "-f", "null", "-",
    ]);
    let (ok, _, err) = run("ffmpeg", &args);
    if !ok && err.is_empty() {
        return "ffmpeg failed".into();
    }
    err
}

/// The repository's `samples/` folder.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}
