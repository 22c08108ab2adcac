//! VOD packaging benchmark: casterpak against `ffmpeg -c copy -f hls` in the same run.
//!
//! ```text
//! cargo bench --bench vod_bench            # 5 runs per case (VOD_BENCH_RUNS to change)
//! ```
//!
//! Inputs are generated with ffmpeg at bench time into `$VOD_BENCH_DIR` (default
//! `<target dir>/vod-bench`), never committed: a 60 s 720p H.264 + AAC file (~3 Mbit/s),
//! a 10 min file (the 60 s one looped with `-c copy`) and a 2 h file (same, 120 loops).
//!
//! Cases:
//! 1. Whole-rendition packaging (media playlist + every 6 s segment), a fresh process per
//!    run (cold index, no output cache): casterpak writing every file to a folder, casterpak
//!    keeping the bytes in memory (what the origin does before the socket), and
//!    `ffmpeg -v error -i IN -c copy -f hls -hls_time 6` writing the same folder layout.
//!    Outputs go to `/dev/shm` when present (`VOD_BENCH_OUT` to change). Medians of wall
//!    time and CPU time, max peak RSS, all from `/usr/bin/time`.
//! 2. The 2 h file: time to the first complete segment in a fresh process (index built
//!    from cold), then index-warm cold segments (no output cache) spread over the file:
//!    median / max latency, segments/s and MB/s in-process (no HTTP), peak RSS.
//!
//! `vod_bench child dump <media root> <asset> <out dir>` writes a master, its media
//! playlists and segments as plain files (for players and ffprobe without a server).
//!
//! Each measured run is a child process of this binary (`vod_bench child ...`), measured
//! exactly like ffmpeg, so process start-up is counted for both.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use casterpak::vod::config::VodConfig;
use casterpak::vod::Vod;

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<String> = raw.iter().filter(|a| *a != "--bench").cloned().collect();
    if args.first().map(String::as_str) == Some("child") {
        child(&args[1..]);
        return;
    }
    if !raw.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs bench targets without `--bench`: do not generate
        // gigabytes of inputs there.
        println!("vod_bench: run it with `cargo bench --bench vod_bench`");
        return;
    }
    let runs: usize = std::env::var("VOD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let f60 = dir.join("bench_60s_720p.mp4");
    let f10m = dir.join("bench_10min_720p.mp4");
    let f2h = dir.join("bench_2h_720p.mp4");
    make_inputs(&f60, &f10m, &f2h);

    let out_root = output_root();
    for (format, ff_name, child_mode) in [
        ("HLS with MPEG-TS", "ffmpeg -c copy -f hls", "package"),
        (
            "fMP4 (DASH / CMAF HLS)",
            "ffmpeg -c copy -f dash",
            "package-fmp4",
        ),
    ] {
        println!("## Whole-rendition packaging, {format}, 6 s segments ({runs} runs per case, medians)\n");
        println!(
            "Outputs are written to `{}`. Wall = whole process, spawn to exit (monotonic clock); CPU = user + sys from /usr/bin/time (10 ms resolution).\n",
            out_root.display()
        );
        println!("| input | tool | wall | CPU (user + sys) | peak RSS | ffmpeg wall / this wall |");
        println!("|---|---|---|---|---|---|");
        for f in [&f60, &f10m] {
            let size = std::fs::metadata(f).unwrap().len();
            let label = format!(
                "{} ({:.1} MB)",
                f.file_name().unwrap().to_string_lossy(),
                size as f64 / 1e6
            );
            let ff_row = format!("{ff_name} (files)");
            let mut rows: Vec<(&str, Vec<Timed>)> = vec![
                (ff_row.as_str(), Vec::new()),
                ("casterpak (files)", Vec::new()),
                ("casterpak (in memory)", Vec::new()),
            ];
            for _ in 0..runs {
                let out_dir = tempfile::tempdir_in(&out_root).unwrap();
                rows[0].1.push(if child_mode == "package" {
                    timed_ffmpeg(f, out_dir.path())
                } else {
                    timed_ffmpeg_dash(f, out_dir.path())
                });
                let out_dir = tempfile::tempdir_in(&out_root).unwrap();
                rows[1].1.push(timed_child(&[
                    child_mode,
                    &f.to_string_lossy(),
                    &out_dir.path().to_string_lossy(),
                ]));
                rows[2]
                    .1
                    .push(timed_child(&[child_mode, &f.to_string_lossy(), "-"]));
            }
            let ff_wall = median(&mut rows[0].1.iter().map(|t| t.wall_ms).collect::<Vec<_>>());
            for (name, ts) in &rows {
                let wall = median(&mut ts.iter().map(|t| t.wall_ms).collect::<Vec<_>>());
                let cpu = median(&mut ts.iter().map(|t| t.cpu_ms).collect::<Vec<_>>());
                let rss = ts.iter().map(|t| t.rss_kib).max().unwrap_or(0);
                println!(
                    "| {label} | {name} | {wall:.1} ms | {cpu:.0} ms | {:.1} MB | {:.1}x |",
                    rss as f64 / 1024.0,
                    ff_wall / wall
                );
            }
        }
        println!();
    }
    println!();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child", "segments", &f2h.to_string_lossy()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

fn bench_dir() -> PathBuf {
    if let Ok(d) = std::env::var("VOD_BENCH_DIR") {
        return PathBuf::from(d);
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    Path::new(&target).join("vod-bench")
}

fn ffmpeg(args: &[&str]) {
    let mut all = vec!["-nostdin", "-v", "error", "-y"];
    all.extend_from_slice(args);
    let st = Command::new("ffmpeg").args(&all).status().unwrap();
    assert!(st.success(), "ffmpeg {args:?}");
}

fn make_inputs(f60: &Path, f10m: &Path, f2h: &Path) {
    if !f60.exists() {
        eprintln!("generating {} ...", f60.display());
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=60",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=60",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-b:v",
            "3000k",
            "-maxrate",
            "3000k",
            "-bufsize",
            "6000k",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-bf",
            "2",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+faststart",
            &f60.to_string_lossy(),
        ]);
    }
    for (f, loops) in [(f10m, "9"), (f2h, "119")] {
        if !f.exists() {
            eprintln!("generating {} ...", f.display());
            ffmpeg(&[
                "-stream_loop",
                loops,
                "-i",
                &f60.to_string_lossy(),
                "-c",
                "copy",
                "-movflags",
                "+faststart",
                &f.to_string_lossy(),
            ]);
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// One measured process run.
struct Timed {
    wall_ms: f64,
    cpu_ms: f64,
    rss_kib: u64,
}

/// Runs a command under `/usr/bin/time -f "%e %U %S %M"` (the last stderr line); wall time
/// is taken here with a monotonic clock (time's `%e` has 10 ms resolution).
fn timed(cmd: &mut Command) -> Timed {
    let t0 = Instant::now();
    let out = cmd.output().unwrap();
    let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let last = err.lines().last().unwrap_or("");
    let v: Vec<f64> = last
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(v.len(), 4, "time output: {last}");
    Timed {
        wall_ms,
        cpu_ms: (v[1] + v[2]) * 1000.0,
        rss_kib: v[3] as u64,
    }
}

/// `vod_bench child <args>` in its own process.
fn timed_child(args: &[&str]) -> Timed {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%e %U %S %M"])
        .arg(std::env::current_exe().unwrap())
        .arg("child")
        .args(args);
    timed(&mut cmd)
}

/// `ffmpeg -c copy -f hls` of one file into `out_dir`.
fn timed_ffmpeg(f: &Path, out_dir: &Path) -> Timed {
    let seg = out_dir.join("s%d.ts");
    let pl = out_dir.join("p.m3u8");
    timed_ffmpeg_with(
        f,
        &[
            "-c",
            "copy",
            "-f",
            "hls",
            "-hls_time",
            "6",
            "-hls_playlist_type",
            "vod",
            "-hls_segment_filename",
            &seg.to_string_lossy(),
            &pl.to_string_lossy(),
        ],
    )
}

/// `ffmpeg -c copy -f dash` of one file into `out_dir` (6 s segments, a template with a
/// timeline, as the origin's MPD).
fn timed_ffmpeg_dash(f: &Path, out_dir: &Path) -> Timed {
    let mpd = out_dir.join("manifest.mpd");
    timed_ffmpeg_with(
        f,
        &[
            "-map",
            "0",
            "-c",
            "copy",
            "-f",
            "dash",
            "-seg_duration",
            "6",
            "-use_template",
            "1",
            "-use_timeline",
            "1",
            &mpd.to_string_lossy(),
        ],
    )
}

/// `ffmpeg -nostdin -v error -i <f> <args>` under `/usr/bin/time`.
fn timed_ffmpeg_with(f: &Path, args: &[&str]) -> Timed {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args([
        "-f",
        "%e %U %S %M",
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-i",
    ])
    .arg(f)
    .args(args);
    timed(&mut cmd)
}

/// Where outputs go: `$VOD_BENCH_OUT`, else `/dev/shm` when present (no disk writeback
/// noise for either tool), else the temp dir.
fn output_root() -> PathBuf {
    if let Ok(d) = std::env::var("VOD_BENCH_OUT") {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn service(file: &Path) -> Vod {
    Vod::new(&VodConfig {
        media_root: file.parent().unwrap().to_string_lossy().into_owned(),
        memory_cache_bytes: 0,
        ..Default::default()
    })
    .unwrap()
}

fn child(args: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let file = std::fs::canonicalize(&args[1]).unwrap_or_default();
    let name = file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    match args[0].as_str() {
        "package" => rt.block_on(async {
            // args[2]: output folder, or "-" to keep the bytes in memory only.
            let out = (args[2] != "-").then(|| PathBuf::from(&args[2]));
            let vod = service(&file);
            let pl = vod.respond(&format!("{name}/index_0_av.m3u8"), None).await.unwrap();
            if let Some(o) = &out {
                std::fs::write(o.join("index_0_av.m3u8"), &pl.body).unwrap();
            }
            let mut total = 0usize;
            for line in String::from_utf8_lossy(&pl.body).lines().filter(|l| !l.starts_with('#')) {
                let seg = vod.respond(&format!("{name}/{line}"), None).await.unwrap();
                total += seg.body.len();
                if let Some(o) = &out {
                    std::fs::write(o.join(line), &seg.body).unwrap();
                }
            }
            assert!(total > 0);
        }),
        "package-fmp4" => rt.block_on(async {
            // The DASH manifest, then every CMAF header and fragment of the video and audio
            // tracks (the bytes /dash/ and /cmaf/ share), named as in the CMAF playlists.
            use casterpak::vod::csmil::Format;
            let out = (args[2] != "-").then(|| PathBuf::from(&args[2]));
            let vod = service(&file);
            let get = |p: String| {
                let vod = &vod;
                async move { vod.respond_as(Format::Cmaf, &p, None).await.unwrap().body }
            };
            let mpd = vod
                .respond_as(Format::Dash, &format!("{name}/manifest.mpd"), None)
                .await
                .unwrap();
            if let Some(o) = &out {
                std::fs::write(o.join("manifest.mpd"), &mpd.body).unwrap();
            }
            let mut total = 0usize;
            for m in ["v", "a"] {
                let pl = get(format!("{name}/index_0_{m}.m3u8")).await;
                let init = get(format!("{name}/init_0_{m}.mp4")).await;
                if let Some(o) = &out {
                    std::fs::write(o.join(format!("init_0_{m}.mp4")), &init).unwrap();
                }
                for line in String::from_utf8_lossy(&pl).lines().filter(|l| !l.starts_with('#')) {
                    let seg = get(format!("{name}/{line}")).await;
                    total += seg.len();
                    if let Some(o) = &out {
                        std::fs::write(o.join(line), &seg).unwrap();
                    }
                }
            }
            assert!(total > 0);
        }),
        "segments" => rt.block_on(async {
            let vod = service(&file);
            let size = std::fs::metadata(&file).unwrap().len();
            // Cold: nothing cached, the index is built on this request.
            let t0 = Instant::now();
            let first = vod.respond(&format!("{name}/segment600_0_av.ts"), None).await.unwrap();
            let cold_ms = t0.elapsed().as_secs_f64() * 1000.0;
            let t1 = Instant::now();
            let pl = vod.respond(&format!("{name}/index_0_av.m3u8"), None).await.unwrap();
            let pl_ms = t1.elapsed().as_secs_f64() * 1000.0;
            let n = String::from_utf8_lossy(&pl.body).lines().filter(|l| !l.starts_with('#')).count();
            // Index warm, segment cold (no output cache): 200 segments spread over the file.
            let mut lat = Vec::new();
            let mut bytes = 0usize;
            let t2 = Instant::now();
            for k in 0..200usize {
                let num = 1 + (k * 7919) % n;
                let t = Instant::now();
                let r = vod.respond(&format!("{name}/segment{num}_0_av.ts"), None).await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                bytes += r.body.len();
            }
            let total = t2.elapsed().as_secs_f64();
            let max = lat.iter().cloned().fold(0.0, f64::max);
            let med = median(&mut lat);
            println!("## 2-hour file ({name}, {:.2} GB, {n} segments)\n", size as f64 / 1e9);
            println!("| measure | value |\n|---|---|");
            println!("| cold segment 600 (index built on the request), whole body | {cold_ms:.1} ms ({} KB) |", first.body.len() / 1000);
            println!("| media playlist after that (index cached) | {pl_ms:.2} ms |");
            println!("| cold segment, index cached: median / max of 200 | {med:.2} ms / {max:.2} ms |");
            println!("| in-process throughput, index cached, one request at a time | {:.0} segments/s, {:.0} MB/s |", 200.0 / total, bytes as f64 / 1e6 / total);
            println!("| peak RSS of this process | {:.1} MB |", peak_rss_kib() as f64 / 1024.0);
        }),
        "dump" => rt.block_on(async {
            // child dump <media root> <asset path under /i/> <out dir>: writes the master,
            // every media playlist and every segment as plain files (for players/ffprobe).
            let vod = Vod::new(&VodConfig {
                media_root: args[1].clone(),
                ..Default::default()
            })
            .unwrap();
            let asset = &args[2];
            let out = PathBuf::from(&args[3]);
            std::fs::create_dir_all(&out).unwrap();
            let master = vod.respond(&format!("{asset}/master.m3u8"), None).await.unwrap();
            std::fs::write(out.join("master.m3u8"), &master.body).unwrap();
            for pl in String::from_utf8_lossy(&master.body).lines().filter(|l| !l.starts_with('#')) {
                let media = vod.respond(&format!("{asset}/{pl}"), None).await.unwrap();
                std::fs::write(out.join(pl), &media.body).unwrap();
                for seg in String::from_utf8_lossy(&media.body).lines().filter(|l| !l.starts_with('#')) {
                    let s = vod.respond(&format!("{asset}/{seg}"), None).await.unwrap();
                    std::fs::write(out.join(seg), &s.body).unwrap();
                }
            }
            println!("0 0");
        }),
        "index" => {
            // child index <file>: time of the index build steps for one file.
            use casterpak::vod::csmil::Variant;
            use casterpak::vod::index::{box_header, index_moov};
            use casterpak::vod::segment::{plan, Clip};
            let data = std::fs::read(&file).unwrap();
            let mut pos = 0usize;
            let moov = loop {
                let (kind, _, size) = box_header(&data[pos..]).unwrap();
                let size = size.unwrap() as usize;
                if &kind == b"moov" {
                    break &data[pos..pos + size];
                }
                pos += size;
            };
            let td = Instant::now();
            {
                use mp4_atom::Decode;
                let _ = mp4_atom::Moov::decode(&mut &moov[..]).unwrap();
            }
            println!("mp4-atom moov decode alone {:.1} ms", td.elapsed().as_secs_f64() * 1e3);
            let t0 = Instant::now();
            let idx = index_moov(moov, data.len() as u64).unwrap();
            let t1 = Instant::now();
            let p = plan(&idx, Variant::Av, 540_000, Clip::default()).unwrap();
            let t2 = Instant::now();
            let _ = plan(&idx, Variant::Audio, 540_000, Clip::default()).unwrap();
            let t3 = Instant::now();
            let n: usize = idx.tracks().map(|t| t.samples.len()).sum();
            println!(
                "moov {} KB, {n} samples: index {:.1} ms, av plan {:.1} ms ({} segments), audio plan {:.1} ms",
                moov.len() / 1000,
                (t1 - t0).as_secs_f64() * 1e3,
                (t2 - t1).as_secs_f64() * 1e3,
                p.segments.len(),
                (t3 - t2).as_secs_f64() * 1e3
            );
        }
        other => panic!("unknown child command {other}"),
    }
}
