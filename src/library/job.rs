//! One transcode attempt: the ladder's ffmpeg (niced, progress on stdout, the last lines of
//! its log kept), a stall watchdog, the poster and sprite, then the rename that publishes.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::ladder::{self, EncodeOptions, Rung, RungSpec};
use super::probe::SourceInfo;
use super::progress::ProgressParser;
use super::{db, lock, now_ms, percent, Library, LibraryError};

/// Lines of ffmpeg's log kept on a failed asset.
const LOG_LINES: usize = 30;
/// Attempts of a job whose failures are not the input's fault.
const ATTEMPTS: i64 = 2;

/// ffmpeg messages that mean the input itself is bad: no retry.
const INPUT_ERRORS: &[&str] = &[
    "Invalid data found when processing input",
    "moov atom not found",
    "could not find codec parameters",
    "Invalid NAL unit size",
    "partial file",
    "does not contain any stream",
];

enum Outcome {
    Done,
    Cancelled,
    Failed {
        input: bool,
        message: String,
        log: String,
    },
}

/// Runs attempt `attempt + 1` of the asset's job and records the result.
pub(super) async fn run(lib: &Arc<Library>, id: &str, attempt: i64, cancel: &CancellationToken) {
    let attempt = attempt + 1;
    let outcome = match attempt_once(lib, id, attempt, cancel).await {
        Ok(o) => o,
        Err(e) => Outcome::Failed {
            input: false,
            message: e.to_string(),
            log: String::new(),
        },
    };
    let _ = tokio::fs::remove_dir_all(lib.tmp_dir.join(id)).await;
    let idc = id.to_owned();
    let result = match outcome {
        Outcome::Done => Ok(()),
        Outcome::Cancelled => lib
            .blocking(move |l| {
                l.with_db(|c| {
                    let now = now_ms();
                    if db::get_asset(c, &idc)?.is_some() {
                        db::queue_job(c, &idc, attempt - 1, now)?;
                        c.execute(
                            "UPDATE assets SET status='queued', phase='queue', eta_secs=NULL, updated_ms=?2 WHERE id=?1",
                            rusqlite::params![idc, now],
                        )?;
                    }
                    Ok(())
                })
            })
            .await,
        Outcome::Failed {
            input,
            message,
            log,
        } => {
            if !input && attempt < ATTEMPTS {
                tracing::warn!(asset = id, attempt, message, "library: transcode failed; retrying once");
                let r = lib
                    .blocking(move |l| l.with_db(|c| db::queue_job(c, &idc, attempt, now_ms())))
                    .await;
                lib.wake.notify_one();
                r
            } else {
                let code = if input { "invalid_input" } else { "transcode_failed" };
                let (idc, lib2) = (id.to_owned(), Arc::clone(lib));
                let log = (!log.is_empty()).then_some(log);
                lib2.blocking(move |l| l.fail(&idc, code, &message, log.as_deref()))
                    .await
            }
        }
    };
    if let Err(e) = result {
        tracing::error!(asset = id, error = %e, "library: job state not saved");
    }
}

async fn attempt_once(
    lib: &Arc<Library>,
    id: &str,
    attempt: i64,
    cancel: &CancellationToken,
) -> Result<Outcome, LibraryError> {
    let idc = id.to_owned();
    let Some(asset) = lib
        .blocking(move |l| l.with_db(|c| db::get_asset(c, &idc)))
        .await?
    else {
        return Ok(Outcome::Cancelled);
    };
    let src: SourceInfo = asset
        .source
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| LibraryError::Db(format!("asset {id} has no probed source")))?;
    let spec: Vec<RungSpec> = asset
        .ladder
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| lib.cfg.ladder.clone());
    let rungs = ladder::rungs_for(&spec, &src);
    let tmp = lib.tmp_dir.join(id);
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    tokio::fs::create_dir_all(&tmp).await?;
    lib.set_status(id, "processing", "transcode", percent::TRANSCODE)?;
    lib.announce("asset.updated", id);
    let opts = EncodeOptions {
        preset: lib.cfg.preset.clone(),
        threads: lib.cfg.threads_per_job,
        gop_secs: 2,
    };
    let source = lib.source_path(id);
    let args = ladder::ffmpeg_args(
        &source.to_string_lossy(),
        &src,
        &rungs,
        &opts,
        &tmp.to_string_lossy(),
        &format!("{id}_"),
    );
    let started = Instant::now();
    let (status, log) =
        match ffmpeg(lib, id, attempt, args, cancel, src.duration_secs, true).await? {
            Run::Cancelled => return Ok(Outcome::Cancelled),
            Run::Exited { ok, log, stalled } => {
                if stalled {
                    return Ok(Outcome::Failed {
                        input: false,
                        message: format!("ffmpeg made no progress for {} s", lib.cfg.stall_secs),
                        log,
                    });
                }
                (ok, log)
            }
        };
    if !status {
        let input = INPUT_ERRORS.iter().any(|m| log.contains(m));
        return Ok(Outcome::Failed {
            input,
            message: "ffmpeg failed to transcode the source".into(),
            log,
        });
    }
    tracing::info!(
        asset = id,
        rungs = rungs.len(),
        secs = started.elapsed().as_secs_f64(),
        media_secs = src.duration_secs,
        "library: ladder encoded"
    );
    // Thumbnails from the encoded rungs: the poster from the top one, the sprite from the
    // lowest (the cheapest decode).
    lib.set_status(id, "processing", "thumbnails", percent::THUMBNAILS)?;
    let rung_path = |r: &Rung| tmp.join(format!("{id}_{}.mp4", r.name));
    let (Some(low), Some(top)) = (rungs.first(), rungs.last()) else {
        return Err(LibraryError::Db("an empty ladder".into()));
    };
    let plan = ladder::sprite_plan(
        src.duration_secs,
        f64::from(top.width) / f64::from(top.height.max(1)),
    );
    for args in [
        ladder::poster_args(
            &rung_path(top).to_string_lossy(),
            src.duration_secs,
            &tmp.join("poster.jpg").to_string_lossy(),
        ),
        ladder::sprite_args(
            &rung_path(low).to_string_lossy(),
            &plan,
            &tmp.join("sprite.jpg").to_string_lossy(),
        ),
    ] {
        match ffmpeg(lib, id, attempt, args, cancel, 0.0, false).await? {
            Run::Cancelled => return Ok(Outcome::Cancelled),
            Run::Exited { ok: true, .. } => {}
            Run::Exited { log, .. } => {
                return Ok(Outcome::Failed {
                    input: false,
                    message: "ffmpeg failed to make the thumbnails".into(),
                    log,
                })
            }
        }
    }
    tokio::fs::write(
        tmp.join("thumbnails.vtt"),
        ladder::thumbnails_vtt(&plan, src.duration_secs, "sprite.jpg"),
    )
    .await?;
    if cancel.is_cancelled() {
        return Ok(Outcome::Cancelled);
    }
    // Publish: the folder appears whole or not at all.
    lib.set_status(id, "processing", "publish", percent::PUBLISH)?;
    let dest = lib.asset_dir(id);
    let _ = tokio::fs::remove_dir_all(&dest).await;
    tokio::fs::rename(&tmp, &dest).await?;
    let renditions = serde_json::to_string(&rungs).unwrap_or_default();
    let idc = id.to_owned();
    lib.blocking(move |l| {
        l.with_db(|c| {
            let now = now_ms();
            c.execute(
                "UPDATE assets SET status='ready', phase='done', percent=100, eta_secs=NULL, \
                 renditions=?2, error_code=NULL, error_message=NULL, log_tail=NULL, updated_ms=?3 WHERE id=?1",
                rusqlite::params![idc, renditions, now],
            )?;
            db::set_job(c, &idc, "done", attempt, None, now)
        })
    })
    .await?;
    lib.announce("asset.ready", id);
    Ok(Outcome::Done)
}

enum Run {
    Cancelled,
    Exited {
        ok: bool,
        log: String,
        stalled: bool,
    },
}

/// Runs ffmpeg with `args` (niced), reading `-progress` blocks from stdout when
/// `progress` (and then requiring `progress=end`), keeping the last lines of stderr, and
/// killing it on `cancel` or after `stall_secs` without a block (without output when not
/// `progress`).
async fn ffmpeg(
    lib: &Arc<Library>,
    id: &str,
    attempt: i64,
    args: Vec<String>,
    cancel: &CancellationToken,
    duration_secs: f64,
    progress: bool,
) -> Result<Run, LibraryError> {
    let mut cmd = lib.ffmpeg_command();
    cmd.args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| LibraryError::Io(format!("cannot start ffmpeg: {e}")))?;
    let pid = child.id();
    let idc = id.to_owned();
    lib.blocking(move |l| l.with_db(|c| db::set_job(c, &idc, "running", attempt, pid, now_ms())))
        .await?;
    let stderr = child.stderr.take();
    let tail = Arc::new(std::sync::Mutex::new(VecDeque::<String>::new()));
    let tail2 = Arc::clone(&tail);
    let err_task = tokio::spawn(async move {
        let Some(stderr) = stderr else { return };
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut t = lock(&tail2);
            if t.len() == LOG_LINES {
                t.pop_front();
            }
            t.push_back(line.chars().take(500).collect());
        }
    });
    let mut out = child.stdout.take().map(|s| BufReader::new(s).lines());
    let mut parser = ProgressParser::default();
    let stall = Duration::from_secs(lib.cfg.stall_secs);
    let mut deadline = tokio::time::Instant::now() + stall;
    let mut saw_end = false;
    let (mut last_saved, mut last_sent) = (Instant::now(), Instant::now());
    loop {
        let reading = out.is_some();
        let line = async {
            match out.as_mut() {
                Some(o) => o.next_line().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = child.kill().await;
                err_task.abort();
                return Ok(Run::Cancelled);
            }
            _ = tokio::time::sleep_until(deadline) => {
                let _ = child.kill().await;
                break;
            }
            l = line => match l {
                Ok(Some(l)) => {
                    if let Some(p) = parser.line(&l) {
                        deadline = tokio::time::Instant::now() + stall;
                        saw_end |= p.end;
                        if progress && (last_sent.elapsed() >= Duration::from_secs(1) || p.end) {
                            last_sent = Instant::now();
                            let pct = percent::TRANSCODE
                                + (percent::THUMBNAILS - percent::TRANSCODE) * p.fraction(duration_secs);
                            let eta = p.eta_secs(duration_secs);
                            let save = last_saved.elapsed() >= Duration::from_secs(2) || p.end;
                            if save {
                                last_saved = Instant::now();
                            }
                            let idc = id.to_owned();
                            let r = lib
                                .blocking(move |l| {
                                    l.with_db(|c| {
                                        c.execute(
                                            "UPDATE assets SET percent=?2, eta_secs=?3, updated_ms=?4 WHERE id=?1",
                                            rusqlite::params![idc, (pct * 10.0).round() / 10.0, eta, now_ms()],
                                        )?;
                                        Ok(())
                                    })
                                })
                                .await;
                            if r.is_ok() {
                                lib.announce("asset.progress", id);
                            }
                        }
                    }
                }
                _ => out = None,
            },
            status = child.wait(), if !reading => {
                let _ = err_task.await;
                let log = lock(&tail).iter().cloned().collect::<Vec<_>>().join("\n");
                let log = redact(&log, lib, id);
                let ok = status.map(|s| s.success()).unwrap_or(false) && (saw_end || !progress);
                return Ok(Run::Exited { ok, log, stalled: false });
            }
        }
    }
    let _ = child.wait().await;
    let _ = err_task.await;
    let log = redact(
        &lock(&tail).iter().cloned().collect::<Vec<_>>().join("\n"),
        lib,
        id,
    );
    Ok(Run::Exited {
        ok: false,
        log,
        stalled: true,
    })
}

/// ffmpeg's log names our folders: the asset shows `source` and `output/` instead.
fn redact(log: &str, lib: &Library, id: &str) -> String {
    let src = lib.source_path(id);
    let tmp = lib.tmp_dir.join(id);
    log.replace(src.to_string_lossy().as_ref(), "source")
        .replace(tmp.to_string_lossy().as_ref(), "output")
        .replace(Path::new(&lib.tmp_dir).to_string_lossy().as_ref(), "output")
}
