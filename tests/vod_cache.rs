//! Output caches: single-flight for concurrent cold requests, the disk cache across
//! restarts, and the sweeper.

#[path = "vod_common.rs"]
mod common;

use std::time::Duration;

use casterpak::vod::config::VodConfig;
use casterpak::vod::Vod;

fn with_cache(dir: &std::path::Path, ttl: u64, memory: u64) -> Vod {
    Vod::new(&VodConfig {
        media_root: common::samples_dir().to_string_lossy().into_owned(),
        cache_dir: Some(dir.to_owned()),
        cache_ttl_secs: ttl,
        memory_cache_bytes: memory,
        sweep_interval_secs: 7,
        ..Default::default()
    })
    .unwrap()
}

fn files_in(dir: &std::path::Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_requests_package_once() {
    let dir = tempfile::tempdir().unwrap();
    let vod = std::sync::Arc::new(with_cache(dir.path(), 3600, 64 << 20));
    assert_eq!(vod.sweep_interval(), Duration::from_secs(7));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let v = vod.clone();
        tasks.push(tokio::spawn(async move {
            v.respond("clip_,360,540,720,p.mp4.csmil/segment2_1_av.ts", None)
                .await
                .unwrap()
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        bodies.push(t.await.unwrap());
    }
    assert!(bodies
        .windows(2)
        .all(|w| w[0].body == w[1].body && w[0].etag == w[1].etag));
    assert_eq!(vod.stats().produced, 1, "single-flight");
    assert_eq!(files_in(dir.path()), 1, "one cached file");

    // A restarted service (empty memory) serves it from the disk cache.
    let vod2 = with_cache(dir.path(), 3600, 64 << 20);
    let again = vod2
        .respond("clip_,360,540,720,p.mp4.csmil/segment2_1_av.ts", None)
        .await
        .unwrap();
    assert_eq!(again.body, bodies[0].body);
    assert_eq!(again.etag, bodies[0].etag);
    assert_eq!(vod2.stats().produced, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeper_deletes_expired_entries() {
    let dir = tempfile::tempdir().unwrap();
    let vod = with_cache(dir.path(), 1, 0);
    vod.respond("clip_360p.mp4/index_0_av.m3u8", None)
        .await
        .unwrap();
    vod.respond("clip_360p.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    assert_eq!(files_in(dir.path()), 2);
    vod.sweep().await;
    assert_eq!(files_in(dir.path()), 2, "fresh entries stay");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    vod.sweep().await;
    assert_eq!(files_in(dir.path()), 0, "expired entries are deleted");
    // Still answers (packages again).
    let before = vod.stats().produced;
    vod.respond("clip_360p.mp4/segment1_0_av.ts", None)
        .await
        .unwrap();
    assert_eq!(vod.stats().produced, before + 1);
}
