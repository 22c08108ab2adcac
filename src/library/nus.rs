//! Videos recorded segment by segment (the NUS CS5248 server's API and Android app): a
//! phone uploads short MP4 segments while it records; each is transcoded on arrival into
//! one MPEG-TS file per rung on one timeline, the HLS playlists list the contiguous prefix
//! of transcoded segments with their measured durations and grow while the phone records,
//! and the video becomes VOD (`EXT-X-ENDLIST`) at `video_end` once every segment is in.
//!
//! Files: `<data_dir>/.library/nus/<video id>/src/<segment id>.<ext>` (the uploads; the
//! extension is checked, `mp4` otherwise) and `.../<rung>/<segment id>.ts` (served at
//! `/video_files/<video id>/<rung>/<segment id>.ts`). A segment's transcode waits until
//! every earlier segment has arrived (its start time is the sum of their durations), so
//! segments may arrive in any order; a re-upload of a segment id is idempotent.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::ladder::{self, EncodeOptions, Rung, RungSpec};
use super::{lock, now_ms, probe, Library, LibraryError};

/// Largest segment id accepted (a phone records 3 s segments: about 83 hours).
pub const MAX_SEGMENT_ID: i64 = 99_999;
/// Largest segment upload, bytes.
pub const MAX_SEGMENT_BYTES: u64 = 512 << 20;

/// A recorded video.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NusVideo {
    pub video_id: i64,
    pub title: String,
    /// Unix ms.
    pub created_ms: i64,
    /// -1 until `video_end`, then the last segment id + 1.
    pub segment_count: i64,
    pub ended: bool,
    /// The rungs, decided from the first transcoded segment.
    pub rungs: Vec<Rung>,
    /// Segments by status.
    pub segments_ok: i64,
    pub segments_error: i64,
    pub segments_total: i64,
}

impl NusVideo {
    /// The seed's `status`: `EMPTY` (no segment yet), `UPLOADING`, `OK` (ended and every
    /// segment transcoded) or `ERROR` (ended with a segment that failed or never came).
    pub fn status(&self) -> &'static str {
        if self.segments_total == 0 && !self.ended {
            "EMPTY"
        } else if !self.ended {
            "UPLOADING"
        } else if self.segments_ok == self.segment_count && self.segments_error == 0 {
            "OK"
        } else if self.segments_error > 0 || self.segments_total >= self.segment_count {
            "ERROR"
        } else {
            "UPLOADING"
        }
    }
}

/// One uploaded segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NusSegment {
    pub video_id: i64,
    pub segment_id: i64,
    /// The checked extension of the upload (`mp4`, `3gp`, ...).
    pub ext: String,
    /// `NIL` (waiting for its transcode), `PROCESSING`, `OK`, `ERROR` (the seed's values).
    pub status: String,
    /// Measured duration, seconds (ffprobe), once probed.
    pub duration_secs: Option<f64>,
    pub error: Option<String>,
}

/// The rungs of the seed's ladder (LOW 200 kb/s, MEDIUM 768 kb/s, HIGH 3 Mb/s at 160, 320
/// and 480 lines), named `LOW`, `MEDIUM`, `HIGH` like the seed's folders.
fn nus_ladder() -> Vec<RungSpec> {
    [(160, 200_000), (320, 768_000), (480, 3_000_000)]
        .into_iter()
        .map(|(height, bitrate)| RungSpec {
            name: format!("{height}p"),
            height,
            bitrate,
        })
        .collect()
}

fn nus_rungs(src: &probe::SourceInfo) -> Vec<Rung> {
    let mut rungs = ladder::rungs_for(&nus_ladder(), src);
    for (r, name) in rungs.iter_mut().zip(["LOW", "MEDIUM", "HIGH"]) {
        r.name = name.into();
    }
    rungs
}

/// An upload's extension as we store it: 1 to 8 ASCII letters or digits, lowercased;
/// anything else becomes `mp4` (the name on disk is ours either way).
pub fn clean_ext(ext: &str) -> String {
    let e = ext.trim().trim_start_matches('.').to_ascii_lowercase();
    if (1..=8).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_alphanumeric()) {
        e
    } else {
        "mp4".into()
    }
}

fn seg_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NusSegment> {
    Ok(NusSegment {
        video_id: r.get(0)?,
        segment_id: r.get(1)?,
        ext: r.get(2)?,
        status: r.get(3)?,
        duration_secs: r.get(4)?,
        error: r.get(5)?,
    })
}

const SEG_COLUMNS: &str = "video_id, segment_id, ext, status, duration_secs, error";

impl Library {
    fn nus_dir(&self, video_id: i64) -> PathBuf {
        self.sources_dir
            .parent()
            .unwrap_or(&self.sources_dir)
            .join("nus")
            .join(video_id.to_string())
    }

    /// The file of a transcoded segment, if `rung` and `file` name one (`<segment id>.ts`).
    pub fn nus_file(&self, video_id: i64, rung: &str, file: &str) -> Option<PathBuf> {
        let seg = file.strip_suffix(".ts")?;
        if seg.is_empty() || seg.len() > 5 || !seg.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !matches!(rung, "LOW" | "MEDIUM" | "HIGH") {
            return None;
        }
        Some(self.nus_dir(video_id).join(rung).join(file))
    }

    /// A new video (`POST /videos`).
    pub fn nus_create(&self, title: &str) -> Result<NusVideo, LibraryError> {
        let title: String = title.trim().chars().take(255).collect();
        let title = if title.is_empty() {
            "Untitled".to_owned()
        } else {
            title
        };
        let id = self.with_db(|c| {
            c.execute(
                "INSERT INTO nus_videos(title, created_ms) VALUES(?1, ?2)",
                params![title, now_ms()],
            )?;
            Ok(c.last_insert_rowid())
        })?;
        self.nus_video(id)
    }

    /// One video.
    ///
    /// Errors: [`LibraryError::NotFound`].
    pub fn nus_video(&self, id: i64) -> Result<NusVideo, LibraryError> {
        self.with_db(|c| {
            let row = c
                .query_row(
                    "SELECT video_id, title, created_ms, segment_count, ended, rungs FROM nus_videos WHERE video_id=?1",
                    [id],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, Option<String>>(5)?,
                        ))
                    },
                )
                .optional()?
                .ok_or_else(|| LibraryError::NotFound(format!("no video {id}")))?;
            let (ok, err, total): (i64, i64, i64) = c.query_row(
                "SELECT count(*) FILTER (WHERE status='OK'), count(*) FILTER (WHERE status='ERROR'), count(*) \
                 FROM nus_segments WHERE video_id=?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            Ok(NusVideo {
                video_id: row.0,
                title: row.1,
                created_ms: row.2,
                segment_count: row.3,
                ended: row.4 != 0,
                rungs: row
                    .5
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok())
                    .unwrap_or_default(),
                segments_ok: ok,
                segments_error: err,
                segments_total: total,
            })
        })
    }

    /// Every video, newest first; only those still recording when `live`.
    pub fn nus_videos(&self, live: bool) -> Result<Vec<NusVideo>, LibraryError> {
        let ids: Vec<i64> = self.with_db(|c| {
            let sql = if live {
                "SELECT video_id FROM nus_videos WHERE ended=0 ORDER BY video_id DESC LIMIT 1000"
            } else {
                "SELECT video_id FROM nus_videos ORDER BY video_id DESC LIMIT 1000"
            };
            let mut st = c.prepare_cached(sql)?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        ids.into_iter().map(|id| self.nus_video(id)).collect()
    }

    /// Renames a video.
    pub fn nus_rename(&self, id: i64, title: &str) -> Result<NusVideo, LibraryError> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 255 {
            return Err(LibraryError::BadRequest(
                "title must be 1 to 255 characters".into(),
            ));
        }
        let n = self.with_db(|c| {
            Ok(c.execute(
                "UPDATE nus_videos SET title=?2 WHERE video_id=?1",
                params![id, title],
            )?)
        })?;
        if n == 0 {
            return Err(LibraryError::NotFound(format!("no video {id}")));
        }
        self.nus_video(id)
    }

    /// Deletes a video, its segments and every file (the seed kept the files).
    pub fn nus_delete(&self, id: i64) -> Result<(), LibraryError> {
        let n = self.with_db(|c| {
            c.execute("DELETE FROM nus_segments WHERE video_id=?1", [id])?;
            Ok(c.execute("DELETE FROM nus_videos WHERE video_id=?1", [id])?)
        })?;
        if n == 0 {
            return Err(LibraryError::NotFound(format!("no video {id}")));
        }
        let _ = std::fs::remove_dir_all(self.nus_dir(id));
        Ok(())
    }

    /// The segments of a video, by id.
    pub fn nus_segments(&self, id: i64) -> Result<Vec<NusSegment>, LibraryError> {
        self.nus_video(id)?;
        self.with_db(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {SEG_COLUMNS} FROM nus_segments WHERE video_id=?1 ORDER BY segment_id"
            ))?;
            let rows = st.query_map([id], seg_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// One segment.
    pub fn nus_segment(&self, id: i64, seg: i64) -> Result<NusSegment, LibraryError> {
        self.with_db(|c| {
            c.query_row(
                &format!(
                    "SELECT {SEG_COLUMNS} FROM nus_segments WHERE video_id=?1 AND segment_id=?2"
                ),
                [id, seg],
                seg_from_row,
            )
            .optional()?
            .ok_or_else(|| LibraryError::NotFound(format!("no segment {seg} of video {id}")))
        })
    }

    /// Stores an uploaded segment (`POST /video_segment/<id>`): streamed to disk (at most
    /// [`MAX_SEGMENT_BYTES`]), probed, and queued for its transcode. A segment id already
    /// stored (and not failed) is kept as it is and answered again: re-uploads are
    /// idempotent.
    ///
    /// Errors: [`LibraryError::NotFound`] (no video), [`LibraryError::BadRequest`] (a
    /// segment id outside 0..=[`MAX_SEGMENT_ID`], or past the end the video was given),
    /// [`LibraryError::TooLarge`].
    pub async fn nus_upload<S, E>(
        self: &Arc<Self>,
        id: i64,
        seg: i64,
        ext: &str,
        body: S,
    ) -> Result<NusSegment, LibraryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if !(0..=MAX_SEGMENT_ID).contains(&seg) {
            return Err(LibraryError::BadRequest(format!(
                "segment_id must be 0..={MAX_SEGMENT_ID}"
            )));
        }
        let v = self.blocking(move |l| l.nus_video(id)).await?;
        if v.ended && seg >= v.segment_count {
            return Err(LibraryError::BadRequest(format!(
                "the video ended with {} segments",
                v.segment_count
            )));
        }
        if let Ok(existing) = self.blocking(move |l| l.nus_segment(id, seg)).await {
            if existing.status != "ERROR" {
                drain(body).await;
                return Ok(existing);
            }
        }
        let ext = clean_ext(ext);
        let dir = self.nus_dir(id).join("src");
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(format!("{seg}.{ext}"));
        let part = dir.join(format!(".{seg}.part"));
        write_capped(&part, body, MAX_SEGMENT_BYTES).await?;
        tokio::fs::rename(&part, &path).await?;
        let (status, duration, error) = match self.probe(&path).await {
            Ok(info) => ("NIL", Some(info.duration_secs), None),
            Err(e) => ("ERROR", None, Some(e.to_string())),
        };
        let ext2 = ext.clone();
        self.blocking(move |l| {
            l.with_db(|c| {
                c.execute(
                    "INSERT INTO nus_segments(video_id, segment_id, ext, status, duration_secs, error, created_ms) \
                     VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(video_id, segment_id) DO UPDATE SET \
                     ext=?3, status=?4, duration_secs=?5, error=?6",
                    params![id, seg, ext2, status, duration, error, now_ms()],
                )?;
                Ok(())
            })
        })
        .await?;
        self.nus_pump(id);
        self.blocking(move |l| l.nus_segment(id, seg)).await
    }

    /// Ends the recording (`POST /video_end/<id>`): the video has `last + 1` segments.
    pub fn nus_end(&self, id: i64, last: i64) -> Result<NusVideo, LibraryError> {
        if !(0..=MAX_SEGMENT_ID).contains(&last) {
            return Err(LibraryError::BadRequest(format!(
                "last_segment_id must be 0..={MAX_SEGMENT_ID}"
            )));
        }
        self.nus_video(id)?;
        self.with_db(|c| {
            c.execute(
                "UPDATE nus_videos SET ended=1, segment_count=?2 WHERE video_id=?1",
                params![id, last + 1],
            )?;
            Ok(())
        })?;
        self.nus_video(id)
    }

    /// The contiguous transcoded prefix: segments 0, 1, ... while each is `OK`, with their
    /// start times (seconds on the video's timeline) and durations.
    pub fn nus_playable(&self, id: i64) -> Result<Vec<(i64, f64, f64)>, LibraryError> {
        let segs = self.nus_segments(id)?;
        let mut out = Vec::new();
        let mut t = 0.0;
        for (i, s) in segs.iter().enumerate() {
            if s.segment_id != i as i64 || s.status != "OK" {
                break;
            }
            let d = s.duration_secs.unwrap_or(0.0);
            out.push((s.segment_id, t, d));
            t += d;
        }
        Ok(out)
    }

    /// Starts the transcoder of a video unless it runs already.
    pub(super) fn nus_pump(self: &Arc<Self>, id: i64) {
        if !lock(&self.nus_busy).insert(id) {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match me.nus_next(id).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(video = id, error = %e, "nus: transcode failed"),
                }
                lock(&me.nus_busy).remove(&id);
                // A segment that arrived after the last look starts a new round.
                match me.blocking(move |l| l.nus_candidate(id)).await {
                    Ok(Some(_)) if lock(&me.nus_busy).insert(id) => continue,
                    _ => return,
                }
            }
        });
    }

    /// The next segment to transcode: the lowest `NIL` one whose earlier segments have all
    /// arrived and been probed, with its start time in seconds.
    fn nus_candidate(&self, id: i64) -> Result<Option<(NusSegment, f64)>, LibraryError> {
        let segs = match self.nus_segments(id) {
            Ok(s) => s,
            Err(LibraryError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut t = 0.0;
        for (i, s) in segs.iter().enumerate() {
            if s.segment_id != i as i64 {
                return Ok(None);
            }
            let Some(d) = s.duration_secs else {
                return Ok(None);
            };
            if s.status == "NIL" {
                return Ok(Some((s.clone(), t)));
            }
            t += d;
        }
        Ok(None)
    }

    /// Transcodes one candidate segment; `false` when there was none.
    async fn nus_next(self: &Arc<Self>, id: i64) -> Result<bool, LibraryError> {
        let Some((seg, start)) = self.blocking(move |l| l.nus_candidate(id)).await? else {
            return Ok(false);
        };
        let _permit = self
            .segment_slots
            .acquire()
            .await
            .map_err(|_| LibraryError::Unavailable("shutting down".into()))?;
        let sid = seg.segment_id;
        let set = |status: &'static str, error: Option<String>| {
            let me = Arc::clone(self);
            async move {
                me.blocking(move |l| {
                    l.with_db(|c| {
                        c.execute(
                            "UPDATE nus_segments SET status=?3, error=?4 WHERE video_id=?1 AND segment_id=?2",
                            params![id, sid, status, error],
                        )?;
                        Ok(())
                    })
                })
                .await
            }
        };
        set("PROCESSING", None).await?;
        let src_path = self
            .nus_dir(id)
            .join("src")
            .join(format!("{sid}.{}", seg.ext));
        let info = match self.probe(&src_path).await {
            Ok(i) => i,
            Err(e) => {
                set("ERROR", Some(e.to_string())).await?;
                return Ok(true);
            }
        };
        let v = self.blocking(move |l| l.nus_video(id)).await?;
        let rungs = if v.rungs.is_empty() {
            let rungs = nus_rungs(&info);
            let json = serde_json::to_string(&rungs).unwrap_or_default();
            self.blocking(move |l| {
                l.with_db(|c| {
                    c.execute(
                        "UPDATE nus_videos SET rungs=?2 WHERE video_id=?1 AND rungs IS NULL",
                        params![id, json],
                    )?;
                    Ok(())
                })
            })
            .await?;
            self.blocking(move |l| l.nus_video(id)).await?.rungs
        } else {
            v.rungs
        };
        let tmp = self.nus_dir(id).join(".tmp");
        tokio::fs::create_dir_all(&tmp).await?;
        let outs: Vec<String> = rungs
            .iter()
            .map(|r| {
                tmp.join(format!("{}-{sid}.ts", r.name))
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let opts = EncodeOptions {
            preset: self.cfg.preset.clone(),
            threads: self.cfg.threads_per_job,
            gop_secs: 2,
        };
        let args = ladder::segment_ts_args(
            &src_path.to_string_lossy(),
            &info,
            &rungs,
            &opts,
            start,
            &outs,
        );
        let run = self
            .ffmpeg_command()
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output();
        let limit = Duration::from_secs(self.cfg.stall_secs.max(30) * 4);
        let ok = match tokio::time::timeout(limit, run).await {
            Ok(Ok(o)) if o.status.success() => true,
            Ok(Ok(o)) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let tail: Vec<&str> = err.lines().rev().take(5).collect();
                set(
                    "ERROR",
                    Some(format!("ffmpeg failed: {}", tail.join(" | "))),
                )
                .await?;
                false
            }
            Ok(Err(e)) => {
                set("ERROR", Some(format!("ffmpeg did not run: {e}"))).await?;
                false
            }
            Err(_) => {
                set("ERROR", Some("ffmpeg took too long".into())).await?;
                false
            }
        };
        if ok {
            for (r, out) in rungs.iter().zip(&outs) {
                let dir = self.nus_dir(id).join(&r.name);
                tokio::fs::create_dir_all(&dir).await?;
                tokio::fs::rename(out, dir.join(format!("{sid}.ts"))).await?;
            }
            set("OK", None).await?;
        } else {
            for out in &outs {
                let _ = tokio::fs::remove_file(out).await;
            }
        }
        Ok(true)
    }
}

/// Reads and drops a body (a re-upload already stored).
async fn drain<S, E>(mut body: S)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    while let Some(Ok(_)) = body.next().await {}
}

/// Streams `body` into `path` (created), at most `max` bytes.
async fn write_capped<S, E>(
    path: &std::path::Path,
    mut body: S,
    max: u64,
) -> Result<(), LibraryError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut f = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
    let mut n = 0u64;
    while let Some(frame) = body.next().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                let _ = tokio::fs::remove_file(path).await;
                return Err(LibraryError::BadRequest(format!("upload broke off: {e}")));
            }
        };
        n += frame.len() as u64;
        if n > max {
            let _ = tokio::fs::remove_file(path).await;
            return Err(LibraryError::TooLarge(format!(
                "a segment is at most {max} bytes"
            )));
        }
        f.write_all(&frame).await?;
    }
    f.flush().await?;
    f.get_ref().sync_data().await?;
    Ok(())
}

/// The multivariant playlist of a video: one `EXT-X-STREAM-INF` per rung (RFC 8216bis
/// section 4.4.6.2; `BANDWIDTH` = video + 128 kb/s audio, in bits per second), URIs
/// `<rung>/stream.m3u8`.
pub fn master_playlist(rungs: &[Rung]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in rungs.iter().rev() {
        out.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"avc1.640028,mp4a.40.2\"\n{}/stream.m3u8\n",
            r.bitrate * 11 / 10 + 128_000,
            r.width,
            r.height,
            r.name
        ));
    }
    out
}

/// The media playlist of one rung: the playable prefix (`(segment id, start s, duration
/// s)`), `EXTINF` the measured durations (RFC 8216bis section 4.4.4.1), `EVENT` while the
/// phone records and `VOD` + `EXT-X-ENDLIST` once `complete`. URIs are
/// `/video_files/<video id>/<rung>/<segment id>.ts`.
pub fn media_playlist(
    video_id: i64,
    rung: &str,
    segs: &[(i64, f64, f64)],
    complete: bool,
) -> String {
    let max = segs.iter().map(|s| s.2).fold(0.0f64, f64::max);
    let target = (max.ceil() as u64).max(4);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{}\n",
        if complete { "VOD" } else { "EVENT" }
    );
    for (id, _, d) in segs {
        out.push_str(&format!(
            "#EXTINF:{d:.3},\n/video_files/{video_id}/{rung}/{id}.ts\n"
        ));
    }
    if complete {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// The MPD of a video over the same MPEG-TS segments (ISO/IEC 23009-1 MPEG-2 TS simple
/// profile, `SegmentList` with the measured durations in milliseconds): `static` with the
/// whole duration once `complete`, else `dynamic`, re-read every 3 s. Durations in a
/// `SegmentTimeline` (ticks of 1 ms).
pub fn mpd(
    video_id: i64,
    rungs: &[Rung],
    segs: &[(i64, f64, f64)],
    complete: bool,
    created_ms: i64,
) -> String {
    let total: f64 = segs.iter().map(|s| s.2).sum();
    // The TS timestamps start at the base (ladder::SEGMENT_TS_BASE_SECS).
    let base_ms = (ladder::SEGMENT_TS_BASE_SECS * 1000.0).round() as u64;
    let kind = if complete {
        format!("type=\"static\" mediaPresentationDuration=\"PT{total:.3}S\"")
    } else {
        let ast = crate::archive::format_ms(created_ms);
        format!("type=\"dynamic\" availabilityStartTime=\"{ast}\" minimumUpdatePeriod=\"PT3S\" timeShiftBufferDepth=\"PT86400S\"")
    };
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
         profiles=\"urn:mpeg:dash:profile:mp2t-simple:2011\" {kind} minBufferTime=\"PT2S\">\n\
         <Period id=\"0\" start=\"PT0S\">\n<AdaptationSet mimeType=\"video/mp2t\" segmentAlignment=\"true\">\n"
    );
    for r in rungs {
        out.push_str(&format!(
            "<Representation id=\"{}\" bandwidth=\"{}\" width=\"{}\" height=\"{}\" codecs=\"avc1.640028,mp4a.40.2\">\n<SegmentList timescale=\"1000\" presentationTimeOffset=\"{}\">\n",
            r.name,
            r.bitrate * 11 / 10 + 128_000,
            r.width,
            r.height,
            base_ms
        ));
        out.push_str("<SegmentTimeline>\n");
        for (_, start, d) in segs {
            out.push_str(&format!(
                "<S t=\"{}\" d=\"{}\"/>\n",
                base_ms + (start * 1000.0).round() as u64,
                (d * 1000.0).round() as u64
            ));
        }
        out.push_str("</SegmentTimeline>\n");
        for (id, _, _) in segs {
            out.push_str(&format!(
                "<SegmentURL media=\"/video_files/{video_id}/{}/{id}.ts\"/>\n",
                r.name
            ));
        }
        out.push_str("</SegmentList>\n</Representation>\n");
    }
    out.push_str("</AdaptationSet>\n</Period>\n</MPD>\n");
    out
}

/// Which videos are transcoding a segment now.
pub(super) type Busy = std::sync::Mutex<HashSet<i64>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_ours() {
        assert_eq!(clean_ext("MP4"), "mp4");
        assert_eq!(clean_ext(".3gp"), "3gp");
        assert_eq!(clean_ext("mp4; rm -rf /"), "mp4");
        assert_eq!(clean_ext("../../x"), "mp4");
        assert_eq!(clean_ext(""), "mp4");
    }

    #[test]
    fn playlists_grow_then_end() {
        let segs = [(0, 0.0, 3.2), (1, 3.2, 2.9)];
        let live = media_playlist(7, "LOW", &segs, false);
        assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT"));
        assert!(!live.contains("ENDLIST"));
        assert!(live.contains(
            "#EXTINF:3.200,\n/video_files/7/LOW/0.ts\n#EXTINF:2.900,\n/video_files/7/LOW/1.ts\n"
        ));
        assert!(live.contains("#EXT-X-TARGETDURATION:4\n"));
        let vod = media_playlist(7, "LOW", &segs, true);
        assert!(vod.ends_with("#EXT-X-ENDLIST\n"));
        assert!(vod.contains("PLAYLIST-TYPE:VOD"));
    }
}
