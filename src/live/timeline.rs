//! The per-stream LL-HLS timeline the server maintains from ingest events, and the
//! render-once playlist cache every waiting request is answered from.
//!
//! Ingest calls [`Timeline::on_chunk`] for every complete CMAF chunk of an upload (after the
//! bytes are in the store), [`Timeline::on_complete`] when an upload ends,
//! [`Timeline::on_gone`] when one is cut or removed; the sweeper calls [`Timeline::sweep`].
//! Each change bumps the stream's `watch` version: blocked playlist reloads and held part
//! requests wait on it (no polling), and the first of them to see a new version renders the
//! playlist once ([`StreamTimeline::media`]); every other waiter gets the same `Bytes`.
//!
//! Synchronous code with std locks that are never held across an `.await`; no tasks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::watch;

use super::llhls::{
    self, Directives, LlHlsError, MediaOptions, Part, Reload, Rendition, Segment, Skip, Timing,
    VariantInfo, VariantKind,
};
use super::Registry;
use crate::cmaf::{CmafChunk, TrackKind};
use crate::store::ObjectKey;

/// Largest number of chunks kept while a stream's MPD or init segments are still unknown.
const MAX_PENDING: usize = 256;

/// Largest number of complete uploads remembered per stream while their MPD or init segment
/// is still unknown (their bytes stay in the store; only the key is kept).
const MAX_UNPLACED: usize = 100_000;

/// How long a static MPD's stream waits for the segments it announces before its VOD
/// playlist is served with what has arrived.
const STATIC_GRACE: Duration = Duration::from_secs(5);

/// Settings of the LL-HLS playlists.
#[derive(Debug, Clone, Copy)]
pub struct LlHlsSettings {
    /// PART-TARGET in seconds; `None` derives it from the ingested chunks.
    pub part_target: Option<f64>,
    /// Seconds of segments a live media playlist lists.
    pub window_secs: f64,
}

/// One playlist rendering, shared by every request answered from it.
#[derive(Debug)]
pub struct Rendered {
    /// The stream version it was made from.
    pub version: u64,
    /// Playlist text.
    pub plain: Bytes,
    /// The same, gzip-compressed.
    pub gzip: Bytes,
}

impl Rendered {
    /// A rendering of `text` (and its gzip form) for stream version `version`.
    pub fn new(version: u64, text: String) -> Rendered {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(text.len() / 3),
            flate2::Compression::fast(),
        );
        let gzip = match enc.write_all(text.as_bytes()).and_then(|()| enc.finish()) {
            Ok(v) => Bytes::from(v),
            Err(_) => Bytes::new(),
        };
        Rendered {
            version,
            plain: Bytes::from(text),
            gzip,
        }
    }
}

#[derive(Debug)]
struct StreamState {
    renditions: BTreeMap<String, Rendition>,
    /// Segment file name -> (RepresentationID, MSN).
    files: HashMap<String, (String, u64)>,
    /// Chunks of uploads not yet placed (no MPD or init yet).
    pending: Vec<(ObjectKey, CmafChunk)>,
    /// Uploads with chunks that did not fit in `pending`.
    overflowed: BTreeSet<ObjectKey>,
    /// Complete uploads whose chunks could not be placed when they ended (a package pushed
    /// in any order: segments before the MPD or init). [`Timeline::placeable`] hands them
    /// back once they can be placed.
    unplaced: BTreeSet<ObjectKey>,
    /// The stream's MPD is static: a finished package, or a live push the encoder ended.
    static_mpd: bool,
    /// What a static MPD announces: per representation (id, startNumber, SegmentTimeline
    /// segment count), and `@mediaPresentationDuration` in seconds.
    announced: Vec<(String, u64, Option<u64>)>,
    announced_secs: Option<f64>,
    timing: Option<Timing>,
    ended: bool,
    last_event: Instant,
    /// Wall clock of media time 0 (MPD availabilityStartTime) in Unix ms.
    epoch_ms: Option<i64>,
}

/// The LL-HLS state of one stream (an MPD folder).
#[derive(Debug)]
pub struct StreamTimeline {
    dir: String,
    state: Mutex<StreamState>,
    version: watch::Sender<u64>,
    cache: Mutex<HashMap<(String, Skip, u64), Arc<Rendered>>>,
    multivariant: Mutex<Option<Arc<Rendered>>>,
}

/// A snapshot answer of [`StreamTimeline::reload`].
#[derive(Debug)]
pub enum ReloadAnswer {
    /// Answer with this rendering.
    Ready(Arc<Rendered>),
    /// Wait for the next version.
    Wait,
}

/// Where the bytes of one part are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLocation {
    /// The segment upload.
    pub key: ObjectKey,
    /// Byte offset and size within it.
    pub offset: u64,
    pub size: u64,
}

/// An answer of [`StreamTimeline::part`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartAnswer {
    /// The part is complete here.
    Ready(PartLocation),
    /// The part may still come (it is hinted or within the advance limit): wait.
    Wait,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StreamTimeline {
    fn new(dir: &str) -> StreamTimeline {
        StreamTimeline {
            dir: dir.to_owned(),
            state: Mutex::new(StreamState {
                renditions: BTreeMap::new(),
                files: HashMap::new(),
                pending: Vec::new(),
                overflowed: BTreeSet::new(),
                unplaced: BTreeSet::new(),
                static_mpd: false,
                announced: Vec::new(),
                announced_secs: None,
                timing: None,
                ended: false,
                last_event: Instant::now(),
                epoch_ms: None,
            }),
            version: watch::channel(0).0,
            cache: Mutex::new(HashMap::new()),
            multivariant: Mutex::new(None),
        }
    }

    /// A receiver of the stream's version, bumped on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The fixed timing, once derived.
    pub fn timing(&self) -> Option<Timing> {
        lock(&self.state).timing
    }

    /// The blocking-reload directives (RFC 8216bis §6.2.5.2) that wait for the next part
    /// of `rep`: `_HLS_msn=M&_HLS_part=P+1` after its last part P of segment M (a part
    /// index past the end of M means part 0 of M+1), else part 0 of the segment after its
    /// last complete one. `None` once the stream has ended, for a finished package, before
    /// the timing is fixed or when `rep` has nothing yet.
    pub fn next_part(&self, rep: &str) -> Option<Directives> {
        let s = lock(&self.state);
        if s.ended || s.static_mpd || s.timing.is_none() {
            return None;
        }
        let (msn, part) = match llhls::report_of(s.renditions.get(rep)?)? {
            (m, Some(p)) => (m, p.checked_add(1)?),
            (m, None) => (m.checked_add(1)?, 0),
        };
        Some(Directives {
            msn: Some(msn),
            part: Some(part),
            ..Directives::default()
        })
    }

    /// Whether the stream has ended (final static MPD or idleness).
    pub fn ended(&self) -> bool {
        lock(&self.state).ended
    }

    /// A copy of one rendition's timeline.
    pub fn rendition(&self, rep: &str) -> Option<Rendition> {
        lock(&self.state).renditions.get(rep).cloned()
    }

    /// The blocking-reload decision for `rep` and, when ready, the playlist rendering.
    ///
    /// Errors: [`LlHlsError::NotFound`] for an unknown rendition once the timing is fixed,
    /// [`LlHlsError::TooFarAhead`] (§6.2.5.2).
    pub fn reload(
        &self,
        rep: &str,
        d: &Directives,
        settings: &LlHlsSettings,
    ) -> Result<ReloadAnswer, LlHlsError> {
        {
            let s = lock(&self.state);
            let Some(timing) = s.timing else {
                return Ok(ReloadAnswer::Wait);
            };
            if s.static_mpd && !static_ready(&s) {
                return Ok(ReloadAnswer::Wait);
            }
            let Some(r) = s.renditions.get(rep) else {
                return Err(LlHlsError::NotFound(format!(
                    "no rendition {rep} in {}",
                    self.dir
                )));
            };
            if llhls::check_reload(r, d, &timing, s.ended)? == Reload::Wait {
                return Ok(ReloadAnswer::Wait);
            }
        }
        Ok(ReloadAnswer::Ready(self.media(rep, d.skip, settings)))
    }

    /// The media playlist of `rep` for the current version, rendered at most once per
    /// version and skip mode.
    fn media(&self, rep: &str, skip: Skip, settings: &LlHlsSettings) -> Arc<Rendered> {
        let mut cache = lock(&self.cache);
        let current = *self.version.borrow();
        let key = (rep.to_owned(), skip, (settings.window_secs * 1000.0) as u64);
        if let Some(r) = cache.get(&key) {
            if r.version == current {
                return Arc::clone(r);
            }
        }
        let (version, text) = {
            let s = lock(&self.state);
            let version = *self.version.borrow();
            let text = match (s.renditions.get(rep), s.timing) {
                (Some(r), Some(timing)) => {
                    let reports: Vec<(String, u64, Option<u64>)> = s
                        .renditions
                        .values()
                        .filter(|o| o.id != rep)
                        .filter_map(|o| llhls::report_of(o).map(|(m, p)| (o.id.clone(), m, p)))
                        .collect();
                    llhls::media_playlist(
                        r,
                        &MediaOptions {
                            timing,
                            epoch_ms: s.epoch_ms,
                            ended: s.ended,
                            vod: s.static_mpd,
                            first_msn: s
                                .renditions
                                .values()
                                .filter_map(|o| {
                                    llhls::window_first_msn(o, &timing, settings.window_secs)
                                })
                                .max(),
                            window_secs: settings.window_secs,
                            skip,
                            reports: &reports,
                        },
                    )
                }
                _ => String::from("#EXTM3U\n"),
            };
            (version, text)
        };
        let rendered = Arc::new(Rendered::new(version, text));
        if cache.len() > 64 {
            // Many distinct ?dvr= windows: keep the cache small.
            cache.clear();
        }
        cache.insert(key, Arc::clone(&rendered));
        rendered
    }

    /// The multivariant playlist, once the timing is fixed (`None` before).
    pub fn multivariant(&self, registry: &Registry) -> Option<Arc<Rendered>> {
        let mut cache = lock(&self.multivariant);
        let current = *self.version.borrow();
        if let Some(r) = cache.as_ref() {
            if r.version == current {
                return Some(Arc::clone(r));
            }
        }
        let mpd = registry.mpd(&self.dir)?;
        let (version, ids) = {
            let s = lock(&self.state);
            s.timing?;
            let ids: Vec<String> = s.renditions.keys().cloned().collect();
            (*self.version.borrow(), ids)
        };
        let variants: Vec<VariantInfo> = mpd
            .representations()
            .into_iter()
            .filter(|rep| ids.contains(&rep.id))
            .filter_map(|rep| {
                let kind = match rep.content_type.as_str() {
                    "video" => VariantKind::Video,
                    "audio" => VariantKind::Audio,
                    _ => return None,
                };
                let init = rep
                    .init
                    .as_deref()
                    .and_then(|f| registry.init_of(&self.dir, f));
                let from_init = init
                    .as_ref()
                    .and_then(|i| i.tracks.first())
                    .filter(|t| t.width > 0 && t.height > 0)
                    .map(|t| (u32::from(t.width), u32::from(t.height)));
                Some(VariantInfo {
                    id: rep.id.clone(),
                    kind,
                    codecs: rep.codecs.clone(),
                    bandwidth: rep.bandwidth,
                    resolution: from_init.or(rep.width.zip(rep.height)),
                    frame_rate: rep.frame_rate.as_deref().and_then(llhls::parse_frame_rate),
                })
            })
            .collect();
        let rendered = Arc::new(Rendered::new(
            version,
            llhls::multivariant_playlist(&variants),
        ));
        *cache = Some(Arc::clone(&rendered));
        Some(rendered)
    }

    /// Where part `index` of segment `msn` of `rep` is, or whether to wait for it.
    ///
    /// Errors: [`LlHlsError::NotFound`] for parts that do not exist and will not come.
    pub fn part(&self, rep: &str, msn: u64, index: u64) -> Result<PartAnswer, LlHlsError> {
        let s = lock(&self.state);
        let not_found = || LlHlsError::NotFound(format!("no part {msn}.{index} of {rep}"));
        let Some(r) = s.renditions.get(rep) else {
            return if s.timing.is_none() {
                Ok(PartAnswer::Wait)
            } else {
                Err(not_found())
            };
        };
        if let Some(seg) = r.segment(msn) {
            if let Some(p) = seg.parts.get(index as usize) {
                let key = ObjectKey::from_decoded(&format!("{}/{}", self.dir, seg.uri))
                    .map_err(|_| not_found())?;
                return Ok(PartAnswer::Ready(PartLocation {
                    key,
                    offset: p.offset,
                    size: p.size,
                }));
            }
        }
        match s.timing {
            Some(t) if llhls::part_may_come(r, msn, index, &t, s.ended) => Ok(PartAnswer::Wait),
            None => Ok(PartAnswer::Wait),
            Some(_) => Err(not_found()),
        }
    }
}

/// Every stream's LL-HLS timeline.
#[derive(Debug)]
pub struct Timeline {
    streams: DashMap<String, Arc<StreamTimeline>>,
    part_target: Option<f64>,
    part_hold_back: Option<f64>,
}

impl Timeline {
    /// An empty set; `part_target` overrides the derived PART-TARGET and `part_hold_back`
    /// the PART-HOLD-BACK of 3 x PART-TARGET (both in seconds; see
    /// [`Timing::with_part_hold_back`] for its floor).
    pub fn new(part_target: Option<f64>, part_hold_back: Option<f64>) -> Timeline {
        Timeline {
            streams: DashMap::new(),
            part_target,
            part_hold_back,
        }
    }

    /// The timeline of the stream in folder `dir`.
    pub fn stream(&self, dir: &str) -> Option<Arc<StreamTimeline>> {
        self.streams.get(dir).map(|s| Arc::clone(s.value()))
    }

    fn stream_or_new(&self, dir: &str) -> Arc<StreamTimeline> {
        Arc::clone(
            self.streams
                .entry(dir.to_owned())
                .or_insert_with(|| Arc::new(StreamTimeline::new(dir)))
                .value(),
        )
    }

    /// A complete CMAF chunk of the upload at `key` (its bytes already in the store).
    pub fn on_chunk(&self, registry: &Registry, key: &ObjectKey, chunk: CmafChunk) {
        let stream = self.stream_or_new(key.dir());
        {
            let mut s = lock(&stream.state);
            s.last_event = Instant::now();
            // Data after an idle end revives the stream; after a final static MPD it does
            // not (ffmpeg's last chunks of other representations may trail it).
            if registry.mpd(key.dir()).is_none_or(|m| m.is_dynamic()) {
                s.ended = false;
            }
            if !place(&mut s, registry, key, chunk) {
                if s.pending.len() < MAX_PENDING {
                    s.pending.push((key.clone(), chunk));
                } else if s.overflowed.len() < MAX_UNPLACED {
                    s.overflowed.insert(key.clone());
                }
            }
            flush_pending(&mut s, registry);
        }
        stream.bump();
    }

    /// An upload at `key` ended cleanly: segments become complete, a static MPD ends the
    /// stream, a new MPD or init segment lets pending chunks be placed, and the timing is
    /// fixed once every representation of the MPD has a complete segment.
    pub fn on_complete(&self, registry: &Registry, key: &ObjectKey) {
        let is_mpd = key.extension().as_deref() == Some("mpd");
        let Some(stream) = (if is_mpd {
            Some(self.stream_or_new(key.dir()))
        } else {
            self.stream(key.dir())
        }) else {
            return;
        };
        {
            let mut s = lock(&stream.state);
            s.last_event = Instant::now();
            if is_mpd {
                if let Some(mpd) = registry.mpd(key.dir()) {
                    let epoch = mpd
                        .availability_start_time
                        .as_deref()
                        .and_then(parse_epoch_ms);
                    let moved = s
                        .epoch_ms
                        .zip(epoch)
                        .is_some_and(|(old, new)| (old - new).abs() > 1000);
                    if moved {
                        // A new encoder session into the same folder (a new
                        // availabilityStartTime): its MSNs and timing start over.
                        tracing::info!(stream = %stream.dir, "new MPD session; LL-HLS timeline reset");
                        s.renditions.clear();
                        s.files.clear();
                        s.timing = None;
                    }
                    s.ended = !mpd.is_dynamic();
                    s.static_mpd = !mpd.is_dynamic();
                    s.announced = mpd
                        .representations()
                        .into_iter()
                        .filter(|r| matches!(r.content_type.as_str(), "video" | "audio"))
                        .map(|r| (r.id, r.start_number, r.timeline_segments))
                        .collect();
                    s.announced_secs = mpd.presentation_duration_secs();
                    s.epoch_ms = epoch;
                }
            }
            flush_pending(&mut s, registry);
            mark_complete(&mut s, key.file_name());
            let had_chunks = s.overflowed.remove(key) | s.pending.iter().any(|(k, _)| k == key);
            if had_chunks && !s.files.contains_key(key.file_name()) {
                // Ended before its MPD or init segment came: kept by key, placed from the
                // store later ([`Timeline::placeable`]).
                s.pending.retain(|(k, _)| k != key);
                if s.unplaced.len() < MAX_UNPLACED {
                    s.unplaced.insert(key.clone());
                }
            }
            self.try_fix_timing(&mut s, registry, key.dir(), false);
        }
        stream.bump();
    }

    /// Fixes the stream's timing once every representation of the MPD has a complete
    /// segment, or once any rendition has three (a representation that never sends CMAF
    /// chunks, say a text track, must not keep the stream from LL-HLS), or at once when
    /// `force` (after recovery, with everything placed).
    fn try_fix_timing(&self, s: &mut StreamState, registry: &Registry, dir: &str, force: bool) {
        if s.timing.is_some() {
            return;
        }
        let mpd = registry.mpd(dir);
        let reps = mpd.as_ref().map_or(0, |m| m.representations().len());
        let all = s.renditions.len() >= reps
            && s.renditions
                .values()
                .all(|r| r.last_complete_msn().is_some());
        let waited = s
            .renditions
            .values()
            .any(|r| r.segments.iter().filter(|x| x.complete).count() >= 3);
        let package = s.static_mpd && static_ready(s);
        if all || waited || force || package {
            let nominal = mpd.as_ref().and_then(|m| {
                m.representations()
                    .iter()
                    .filter_map(|r| r.segment_duration_secs)
                    .reduce(f64::max)
            });
            s.timing = Timing::derive(s.renditions.values(), nominal, self.part_target)
                .map(|t| t.with_part_hold_back(self.part_hold_back));
            let part_target = s.timing.map(|t| t.part_target);
            for seg in s
                .renditions
                .values_mut()
                .flat_map(|r| r.segments.iter_mut())
            {
                seg.regroup(part_target);
            }
        }
    }

    /// Complete uploads of the stream in `dir` that ended before their MPD or init segment
    /// was known and can be placed now; they are handed out once. The caller reads each
    /// from the store and passes it to [`Timeline::place_late`].
    pub fn placeable(&self, registry: &Registry, dir: &str) -> Vec<ObjectKey> {
        let Some(stream) = self.stream(dir) else {
            return Vec::new();
        };
        let mut s = lock(&stream.state);
        if s.unplaced.is_empty() {
            return Vec::new();
        }
        let ready: Vec<ObjectKey> = s
            .unplaced
            .iter()
            .filter(|k| {
                registry.segment_of(k).is_some_and(|(rep, _)| {
                    rep.init
                        .as_deref()
                        .is_some_and(|i| registry.init_of(dir, i).is_some())
                })
            })
            .cloned()
            .collect();
        for k in &ready {
            s.unplaced.remove(k);
        }
        ready
    }

    /// Places a complete segment upload (its whole bytes) handed out by
    /// [`Timeline::placeable`], as if it had just ended; `false` when it cannot be placed.
    pub fn place_late(&self, registry: &Registry, key: &ObjectKey, body: &[u8]) -> bool {
        let placed = self.recover_segment(registry, key, body);
        if let Some(stream) = self.stream(key.dir()) {
            {
                let mut s = lock(&stream.state);
                self.try_fix_timing(&mut s, registry, key.dir(), false);
            }
            stream.bump();
        }
        placed
    }

    /// The upload at `key` was cut or the object removed: its segment leaves the playlists.
    pub fn on_gone(&self, key: &ObjectKey) {
        let Some(stream) = self.stream(key.dir()) else {
            return;
        };
        {
            let mut s = lock(&stream.state);
            s.pending.retain(|(k, _)| k != key);
            let Some((rep, msn)) = s.files.remove(key.file_name()) else {
                return;
            };
            if let Some(r) = s.renditions.get_mut(&rep) {
                r.segments.retain(|x| x.msn != msn);
            }
        }
        stream.bump();
    }

    /// After a restart: places the CMAF chunks of a persisted, complete segment (whole
    /// file bytes) as if it had just been uploaded. Returns whether it was placed (the
    /// stream's MPD and init segment must have been recovered first). Call
    /// [`Timeline::end_recovered`] once every file is in.
    pub fn recover_segment(&self, registry: &Registry, key: &ObjectKey, body: &[u8]) -> bool {
        if registry.segment_of(key).is_none() || !crate::cmaf::looks_like_isobmff(body) {
            return false;
        }
        let mut scanner = crate::cmaf::BoxScanner::new();
        let mut events = Vec::new();
        if scanner.feed(body, &mut events).is_err() || scanner.finish(&mut events).is_err() {
            return false;
        }
        let stream = self.stream_or_new(key.dir());
        let mut s = lock(&stream.state);
        let mut placed = false;
        for e in events {
            if let crate::cmaf::ScanEvent::Chunk(chunk) = e {
                placed |= place(&mut s, registry, key, chunk);
            }
        }
        mark_complete(&mut s, key.file_name());
        placed
    }

    /// Ends every recovered stream (recovered streams are not live until an upload
    /// arrives) and fixes its timing from all its recovered segments.
    pub fn end_recovered(&self, registry: &Registry) {
        let streams: Vec<Arc<StreamTimeline>> =
            self.streams.iter().map(|e| Arc::clone(e.value())).collect();
        for stream in streams {
            {
                let mut s = lock(&stream.state);
                s.ended = true;
                s.epoch_ms = registry
                    .mpd(&stream.dir)
                    .and_then(|m| m.availability_start_time.clone())
                    .as_deref()
                    .and_then(parse_epoch_ms);
                self.try_fix_timing(&mut s, registry, &stream.dir, true);
            }
            stream.bump();
        }
    }

    /// Marks streams without ingest events for `idle` as ended (EXT-X-ENDLIST), and drops
    /// complete segments that end more than `keep_secs` before their rendition's last one
    /// (segments the encoder DELETEd stay listed for the DVR window: the archive serves
    /// them).
    pub fn sweep(&self, idle: Duration, keep_secs: f64) {
        let streams: Vec<Arc<StreamTimeline>> =
            self.streams.iter().map(|e| Arc::clone(e.value())).collect();
        for stream in streams {
            let changed = {
                let mut s = lock(&stream.state);
                let mut dropped: Vec<String> = Vec::new();
                let live = !s.ended;
                for r in s.renditions.values_mut().filter(|_| live) {
                    let end = r
                        .segments
                        .last()
                        .map_or(0.0, |x| x.start_secs + x.duration_secs());
                    let old = r
                        .segments
                        .iter()
                        .take_while(|x| {
                            x.complete && x.start_secs + x.duration_secs() < end - keep_secs
                        })
                        .count();
                    dropped.extend(r.segments.drain(..old).map(|x| x.uri));
                }
                for uri in &dropped {
                    s.files.remove(uri);
                }
                if !s.ended && s.last_event.elapsed() >= idle && !s.renditions.is_empty() {
                    s.ended = true;
                    tracing::info!(stream = %stream.dir, "LL-HLS stream idle; playlists ended");
                    true
                } else {
                    !dropped.is_empty()
                }
            };
            if changed {
                stream.bump();
            }
        }
    }
}

/// Places a chunk in its rendition; `false` when the MPD or init facts are not known yet.
fn place(s: &mut StreamState, registry: &Registry, key: &ObjectKey, chunk: CmafChunk) -> bool {
    let Some((rep, msn)) = registry.segment_of(key) else {
        return false;
    };
    let Some(init_uri) = rep.init.clone() else {
        return false;
    };
    let Some(init) = registry.init_of(key.dir(), &init_uri) else {
        return false;
    };
    let Some(track) = init
        .track(chunk.track_id)
        .or_else(|| init.tracks.first())
        .cloned()
    else {
        return false;
    };
    let timescale = f64::from(track.timescale.max(1));
    let ticks = chunk.duration.saturating_add(
        u64::from(chunk.samples_without_duration) * u64::from(track.default_sample_duration),
    );
    let independent = chunk
        .starts_with_sync
        .unwrap_or(track.kind == TrackKind::Audio || track.default_sample_flags & 0x0001_0000 == 0);
    let part = Part {
        offset: chunk.offset,
        size: chunk.size,
        duration_secs: ticks as f64 / timescale,
        independent,
    };
    let part_target = s.timing.map(|t| t.part_target);
    let r = s
        .renditions
        .entry(rep.id.clone())
        .or_insert_with(|| Rendition {
            id: rep.id.clone(),
            init_uri: init_uri.clone(),
            segments: Vec::new(),
        });
    let i = match r.segments.binary_search_by_key(&msn, |x| x.msn) {
        Ok(i) => i,
        Err(i) => {
            r.segments.insert(
                i,
                Segment {
                    msn,
                    uri: key.file_name().to_owned(),
                    start_secs: chunk.decode_time as f64 / timescale,
                    chunks: Vec::new(),
                    parts: Vec::new(),
                    complete: false,
                },
            );
            i
        }
    };
    let seg = &mut r.segments[i];
    if chunk.offset == 0 || seg.complete {
        // A new upload of the same segment (re-PUT): start over.
        seg.chunks.clear();
        seg.complete = false;
        seg.start_secs = chunk.decode_time as f64 / timescale;
    }
    seg.chunks.push(part);
    seg.regroup(part_target);
    s.files
        .insert(key.file_name().to_owned(), (rep.id.clone(), msn));
    true
}

/// Whether a static MPD's stream has every segment the MPD announces, complete: each
/// announced representation has every MSN of its SegmentTimeline (from startNumber), or,
/// without a timeline, complete segments lasting `@mediaPresentationDuration` (less 0.25 s).
/// After [`STATIC_GRACE`] without an upload, what has arrived is served.
fn static_ready(s: &StreamState) -> bool {
    if s.last_event.elapsed() >= STATIC_GRACE {
        return true;
    }
    s.announced.iter().all(|(id, start, count)| {
        let Some(r) = s.renditions.get(id) else {
            return false;
        };
        match (count, s.announced_secs) {
            (Some(n), _) => (*start..start.saturating_add(*n))
                .all(|msn| r.segment(msn).is_some_and(|x| x.complete)),
            (None, Some(total)) => {
                let have: f64 = r
                    .segments
                    .iter()
                    .filter(|x| x.complete)
                    .map(Segment::duration_secs)
                    .sum();
                have >= total - 0.25
            }
            (None, None) => true,
        }
    })
}

/// The upload named `file_name` ended cleanly: its segment is complete and its last chunks
/// make its last part.
fn mark_complete(s: &mut StreamState, file_name: &str) {
    let Some((rep, msn)) = s.files.get(file_name).cloned() else {
        return;
    };
    let part_target = s.timing.map(|t| t.part_target);
    if let Some(seg) = s
        .renditions
        .get_mut(&rep)
        .and_then(|r| r.segments.iter_mut().find(|x| x.msn == msn))
    {
        seg.complete = true;
        seg.regroup(part_target);
    }
}

fn flush_pending(s: &mut StreamState, registry: &Registry) {
    let Some((first, _)) = s.pending.first() else {
        return;
    };
    if registry.mpd(first.dir()).is_none() {
        // An HLS push or a stream whose MPD has not come yet: nothing can be placed.
        return;
    }
    let pending = std::mem::take(&mut s.pending);
    for (key, chunk) in pending {
        if !place(s, registry, &key, chunk) {
            s.pending.push((key, chunk));
        }
    }
}

/// `2026-11-20T21:46:20.332Z` -> Unix milliseconds.
fn parse_epoch_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmaf::{InitInfo, TrackInfo};

    const MPD: &[u8] = include_bytes!("../../tests/fixtures/mpd/ffmpeg_ldash_2rend_steady.mpd");

    fn key(s: &str) -> ObjectKey {
        ObjectKey::from_decoded(s).unwrap()
    }

    fn init(kind: TrackKind, timescale: u32) -> Arc<InitInfo> {
        Arc::new(InitInfo {
            tracks: vec![TrackInfo {
                track_id: 1,
                kind,
                timescale,
                width: 640,
                height: 360,
                default_sample_duration: 0,
                default_sample_flags: 0,
            }],
        })
    }

    fn chunk(offset: u64, decode_time: u64, duration: u64, sync: bool) -> CmafChunk {
        CmafChunk {
            offset,
            size: 1000,
            track_id: 1,
            decode_time,
            duration,
            sample_count: 15,
            samples_without_duration: 0,
            starts_with_sync: Some(sync),
        }
    }

    /// Drives a whole 2-rendition + audio stream through the timeline like the ingest does
    /// (ffmpeg's 0.5 s video chunks, 0.512 s AAC chunks, 2 s segments) and checks every
    /// playlist rendered on the way.
    #[test]
    fn part_target_is_stable_over_a_whole_stream_and_renderings_are_shared() {
        let reg = Registry::new();
        let tl = Timeline::new(None, None);
        let dir = "live/x";
        reg.learn(
            &key("live/x/init-stream0.m4s"),
            b"",
            Some(init(TrackKind::Video, 15360)),
        );
        reg.learn(
            &key("live/x/init-stream1.m4s"),
            b"",
            Some(init(TrackKind::Video, 15360)),
        );
        reg.learn(
            &key("live/x/init-stream2.m4s"),
            b"",
            Some(init(TrackKind::Audio, 48000)),
        );
        // Chunks arrive before the MPD: they wait as pending, then are placed.
        tl.on_chunk(
            &reg,
            &key("live/x/chunk-stream0-00001.m4s"),
            chunk(0, 0, 7680, true),
        );
        reg.learn(&key("live/x/stream.mpd"), MPD, None);
        tl.on_complete(&reg, &key("live/x/stream.mpd"));
        let stream = tl.stream(dir).unwrap();
        let settings = LlHlsSettings {
            part_target: None,
            window_secs: 60.0,
        };
        let mut part_targets = std::collections::BTreeSet::new();
        let mut audio_t = 0u64;
        let mut first_ready = None;
        for seg in 1..=20u64 {
            let name = |rep: u32| key(&format!("live/x/chunk-stream{rep}-{seg:05}.m4s"));
            for c in 0..4u64 {
                if !(seg == 1 && c == 0) {
                    let t = ((seg - 1) * 4 + c) * 7680;
                    tl.on_chunk(&reg, &name(0), chunk(c * 1000, t, 7680, c % 2 == 0));
                }
                let t = ((seg - 1) * 4 + c) * 7680;
                tl.on_chunk(&reg, &name(1), chunk(c * 1000, t, 7680, c % 2 == 0));
                // Audio: 0.512 s chunks until the segment's end time is reached.
                let mut i = 0;
                while audio_t < seg * 96000 && (c == 3 || audio_t < ((seg - 1) * 4 + c + 1) * 24000)
                {
                    tl.on_chunk(&reg, &name(2), chunk(i * 1000, audio_t, 24576, true));
                    audio_t += 24576;
                    i += 1;
                }
                for rep in ["0", "1", "2"] {
                    let d = Directives::default();
                    match stream.reload(rep, &d, &settings).unwrap() {
                        ReloadAnswer::Wait => assert!(first_ready.is_none()),
                        ReloadAnswer::Ready(r) => {
                            first_ready.get_or_insert(seg);
                            let again = stream.reload(rep, &d, &settings).unwrap();
                            let ReloadAnswer::Ready(again) = again else {
                                panic!()
                            };
                            assert!(Arc::ptr_eq(&r, &again), "one rendering per version");
                            let text = std::str::from_utf8(&r.plain).unwrap();
                            let pt = text
                                .lines()
                                .find_map(|l| l.strip_prefix("#EXT-X-PART-INF:PART-TARGET="))
                                .unwrap()
                                .to_owned();
                            let target: f64 = pt.parse().unwrap();
                            for l in text
                                .lines()
                                .filter_map(|l| l.strip_prefix("#EXT-X-PART:DURATION="))
                            {
                                let dur: f64 = l.split(',').next().unwrap().parse().unwrap();
                                assert!(dur <= target, "{l} > {target}");
                            }
                            assert!(text.contains("#EXT-X-TARGETDURATION:2\n"));
                            part_targets.insert(pt);
                        }
                    }
                }
            }
            for rep in 0..3 {
                tl.on_complete(&reg, &name(rep));
            }
        }
        assert_eq!(
            first_ready,
            Some(2),
            "timing fixed once every rendition had a segment"
        );
        assert_eq!(part_targets.into_iter().collect::<Vec<_>>(), ["0.512"]);
        assert!(!stream.ended());
        // The final static MPD ends the stream.
        let ended = std::str::from_utf8(MPD)
            .unwrap()
            .replace("type=\"dynamic\"", "type=\"static\"");
        reg.learn(&key("live/x/stream.mpd"), ended.as_bytes(), None);
        tl.on_complete(&reg, &key("live/x/stream.mpd"));
        assert!(stream.ended());
        let ReloadAnswer::Ready(r) = stream
            .reload("0", &Directives::default(), &settings)
            .unwrap()
        else {
            panic!()
        };
        assert!(std::str::from_utf8(&r.plain)
            .unwrap()
            .ends_with("#EXT-X-ENDLIST\n"));
        // A cut segment leaves the playlist.
        tl.on_gone(&key("live/x/chunk-stream0-00020.m4s"));
        assert!(stream.rendition("0").unwrap().segment(20).is_none());
        assert!(matches!(stream.part("0", 19, 0), Ok(PartAnswer::Ready(_))));
        assert!(
            stream.part("0", 21, 0).is_err(),
            "ended: nothing more comes"
        );
        assert!(stream.multivariant(&reg).is_some());
    }

    #[test]
    fn a_new_mpd_session_resets_the_timeline() {
        let reg = Registry::new();
        let tl = Timeline::new(None, None);
        reg.learn(
            &key("live/x/init-stream0.m4s"),
            b"",
            Some(init(TrackKind::Video, 15360)),
        );
        reg.learn(&key("live/x/stream.mpd"), MPD, None);
        tl.on_complete(&reg, &key("live/x/stream.mpd"));
        let seg = key("live/x/chunk-stream0-00001.m4s");
        tl.on_chunk(&reg, &seg, chunk(0, 0, 7680, true));
        let stream = tl.stream("live/x").unwrap();
        assert!(stream.rendition("0").is_some());
        // The same session re-PUTs its MPD: nothing changes.
        tl.on_complete(&reg, &key("live/x/stream.mpd"));
        assert!(stream.rendition("0").is_some());
        let later = std::str::from_utf8(MPD)
            .unwrap()
            .replace("2026-11-20T21:46:20.332Z", "2026-11-20T22:00:00.000Z");
        reg.learn(&key("live/x/stream.mpd"), later.as_bytes(), None);
        tl.on_complete(&reg, &key("live/x/stream.mpd"));
        assert!(stream.rendition("0").is_none(), "new session starts over");
    }

    #[test]
    fn epoch_from_ast() {
        assert_eq!(
            parse_epoch_ms("2026-11-20T21:46:20.332Z").map(llhls::format_pdt),
            Some("2026-11-20T21:46:20.332Z".to_owned())
        );
        assert_eq!(parse_epoch_ms("yesterday"), None);
    }
}
