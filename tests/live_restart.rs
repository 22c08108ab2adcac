//! The origin crashes mid-stream (SIGKILL) and comes back on the same ports and data dir;
//! ffmpeg (`-ignore_io_errors 1`) keeps pushing, never re-sends the init segments, and the
//! stream stays playable because they were persisted.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_stream_keeps_the_stream_playable() {
    let mut origin = Origin::start(&[]);
    let _ffmpeg = ffmpeg_ldash_push(&origin, "r", 24, &["-ignore_io_errors", "1"]);
    let client = reqwest::Client::new();
    let mpd = origin.egress_url("/live/r/stream.mpd");
    assert!(wait_for_200(&client, &mpd, Duration::from_secs(15)).await);
    let seg3 = origin.egress_url("/live/r/chunk-stream0-00003.m4s");
    assert!(wait_for_200(&client, &seg3, Duration::from_secs(10)).await);
    // Let segment 3 finish and persist, then crash.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let init_on_disk = origin.data_dir.join("live/r/init-stream0.m4s");
    assert!(
        init_on_disk.exists(),
        "init segment persisted before the crash"
    );
    origin.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    origin.restart();

    // The inits come from disk; new segments keep arriving after the restart.
    for rep in 0..3 {
        let r = client
            .get(origin.egress_url(&format!("/live/r/init-stream{rep}.m4s")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "init-stream{rep} after restart");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut newest = 0;
    while Instant::now() < deadline {
        let log = origin.log();
        let after_restart = log.rsplit("casterpak listening").next().unwrap_or("");
        newest = after_restart
            .lines()
            .filter(|l| l.contains("upload complete") && l.contains("chunk-stream0-"))
            .count();
        if newest >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        newest >= 2,
        "ffmpeg did not resume pushing after the restart"
    );

    // A client that joins now plays the stream: init from disk, segments from the new run.
    let (ok, err) = run(Command::new("ffmpeg").args([
        "-hide_banner",
        "-v",
        "error",
        "-i",
        &mpd,
        "-t",
        "3",
        "-f",
        "null",
        "-",
    ]));
    assert!(ok, "stream not playable after restart: {err}");
}
