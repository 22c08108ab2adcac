//! Transcode speed of the library's ladder (issue 8 benchmark): one ffmpeg with one decode
//! split to every rung (what the library runs) against the same rungs as one ffmpeg per
//! rung run one after another (the NUS/PeerTube way), on the same source, back to back,
//! alternating which goes first. Prints every run and the medians as Markdown.
//!
//! ```sh
//! cargo run --release --example transcode_bench -- SOURCE.mp4 [--runs 3] [--threads 2] [--preset veryfast]
//! ```
//!
//! Speed is seconds of media per second of wall time; the ratio is split / per-rung.

use std::process::{Command, Stdio};
use std::time::Instant;

use casterpak::library::ladder::{self, EncodeOptions};
use casterpak::library::probe;

fn run(args: &[String]) -> f64 {
    let t = Instant::now();
    let st = Command::new("ffmpeg")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("ffmpeg");
    assert!(st.success(), "ffmpeg {args:?}");
    t.elapsed().as_secs_f64()
}

fn main() {
    let mut it = std::env::args().skip(1);
    let source = it.next().expect("SOURCE");
    let (mut runs, mut threads, mut preset) = (3usize, 2u32, "veryfast".to_owned());
    while let Some(f) = it.next() {
        let v = it.next().unwrap_or_default();
        match f.as_str() {
            "--runs" => runs = v.parse().unwrap(),
            "--threads" => threads = v.parse().unwrap(),
            "--preset" => preset = v,
            other => panic!("unknown flag {other}"),
        }
    }
    let out = Command::new("ffprobe")
        .args(probe::ffprobe_args(&source))
        .output()
        .expect("ffprobe");
    let src = probe::parse(&out.stdout, 0).expect("a video");
    let rungs = ladder::rungs_for(&ladder::default_ladder(), &src);
    let opts = EncodeOptions {
        preset,
        threads,
        gop_secs: 2,
    };
    let dir =
        std::env::temp_dir().join(format!("casterpak-transcode-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_string_lossy().into_owned();
    // The library's command without its progress output.
    let strip = |mut a: Vec<String>| {
        let n = a.len() - 5;
        a.truncate(n);
        a
    };
    let split = strip(ladder::ffmpeg_args(
        &source, &src, &rungs, &opts, &d, "split_",
    ));
    let per_rung: Vec<Vec<String>> = (0..rungs.len())
        .map(|i| {
            strip(ladder::ffmpeg_args(
                &source,
                &src,
                &rungs[i..=i],
                &opts,
                &d,
                "one_",
            ))
        })
        .collect();
    println!(
        "source {}x{} {:.1} s, rungs {}, -threads {threads}, preset {}, {} cores",
        src.width,
        src.height,
        src.duration_secs,
        rungs
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        opts.preset,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| run | split s | per-rung s | split speed x | per-rung speed x | split / per-rung |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for r in 1..=runs {
        let (ts, tp) = if r % 2 == 1 {
            let ts = run(&split);
            (ts, per_rung.iter().map(|c| run(c)).sum::<f64>())
        } else {
            let tp = per_rung.iter().map(|c| run(c)).sum::<f64>();
            (run(&split), tp)
        };
        let dur = src.duration_secs;
        println!(
            "| {r} | {ts:.2} | {tp:.2} | {:.2} | {:.2} | {:.2} |",
            dur / ts,
            dur / tp,
            tp / ts
        );
        a.push(ts);
        b.push(tp);
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (ms, mp) = (a[a.len() / 2], b[b.len() / 2]);
    println!(
        "| median | {ms:.2} | {mp:.2} | {:.2} | {:.2} | {:.2} |",
        src.duration_secs / ms,
        src.duration_secs / mp,
        mp / ms
    );
    let _ = std::fs::remove_dir_all(&dir);
}
