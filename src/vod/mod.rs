//! On-demand packaging of MP4 renditions into HLS MPEG-TS for Akamai-style `/i/` URLs.
//!
//! ```text
//! respond(path, query)
//!   -> csmil::parse            typed Route (set of files, rendition, segment number)
//!   -> source::Source::open    local folder (no escape) or HTTP base URL (Range reads)
//!   -> index (moka cache)      MovieIndex per (path, identity), built on a blocking thread
//!   -> segment::plan           boundaries on one global timeline
//!   -> hls / segment::mux      playlists or a TS segment
//!   -> output caches           memory (single-flight) and optional disk, keyed by the ETag
//! ```
//!
//! The service spawns no long-lived task and never prints; the server calls
//! [`Vod::sweep`] every [`Vod::sweep_interval`].
//!
//! Wiring in the egress (the whole contract):
//!
//! ```text
//! let vod = Arc::new(Vod::new(&cfg.vod)?);                 // at start-up
//! spawn: loop { sleep(vod.sweep_interval()); vod.sweep().await }   // with the shutdown token
//! GET/HEAD /i/<rest>?<query>:
//!     match vod.respond(rest_still_percent_encoded, query).await {
//!         Ok(r)  => 200 (or 206 / 304) with r.body, Content-Type r.content_type, ETag r.etag,
//!                   Last-Modified r.last_modified, Cache-Control r.cache_control
//!         Err(e) => status_for(e.kind()), log e (it names asset, track, box, offset, sample)
//!     }
//! ```

#![warn(missing_docs)]

pub mod cache;
pub mod codec;
pub mod config;
pub mod csmil;
pub mod dash;
pub mod fmp4;
pub mod index;
pub mod keys;
pub mod pool;
pub mod segment;
pub mod source;
pub mod ts;
pub mod webvtt;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::error::ErrorKind;
use crate::hls::{
    AlternativeMedia, IFrameStream, MediaPlaylist, MediaSegment, MultivariantPlaylist,
    PlaylistType, VariantStream,
};
use cache::{digest, DiskCache};
use csmil::{AssetSet, Format, Options, Route, RouteError, Variant};
use fmp4::Media;
use index::{IndexError, MovieIndex, Track, MAX_MOOV_BYTES};
use segment::{Clip, Plan, PlanError, SampleData, SegmentPlan};
use source::{Source, SourceError, SourceFile};

/// Bumped whenever the produced bytes change for the same input; part of every ETag.
pub const FORMAT_VERSION: u32 = 5;
/// Content type of playlists (RFC 8216bis section 4).
pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// Content type of TS segments.
pub const SEGMENT_TYPE: &str = "video/mp2t";
/// Content type of MPDs (ISO/IEC 23009-1 Annex C).
pub const MPD_TYPE: &str = "application/dash+xml";
/// Content type of AES-128 keys.
pub const KEY_TYPE: &str = "application/octet-stream";
/// Content type of WebVTT subtitles (W3C WebVTT, IANA `text/vtt`).
pub const VTT_TYPE: &str = "text/vtt; charset=utf-8";
/// Cache-Control of AES-128 keys: never kept by a shared cache.
pub const KEY_CACHE_CONTROL: &str = "private, no-store";
/// Content type of CMAF headers and fragments of a video track.
pub const VIDEO_MP4_TYPE: &str = "video/mp4";
/// Content type of CMAF headers and fragments of an audio track.
pub const AUDIO_MP4_TYPE: &str = "audio/mp4";
/// Cache-Control of VOD playlists (they change only when the source does; the ETag tracks it).
pub const PLAYLIST_CACHE_CONTROL: &str = "public, max-age=86400";
/// Cache-Control of VOD segments.
pub const SEGMENT_CACHE_CONTROL: &str = "public, max-age=604800";
/// Largest gap between sample byte ranges read with one request, in bytes.
const READ_GAP: u64 = 256 * 1024;
/// A read buffer is kept between segments up to this capacity, in bytes.
const SCRATCH_KEEP: usize = 64 << 20;
/// Most read buffers kept between segments.
const SCRATCH_COUNT: usize = 16;

/// Read buffers for local sources, reused so a segment request does not fault in fresh
/// pages for its sample data. A stack: a read takes the buffer returned last, the one most
/// likely still in the CPU caches (a buffer per blocking thread left most of them cold).
static SCRATCH: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// One answer of [`Vod::respond`].
#[derive(Debug, Clone)]
pub struct VodReply {
    /// The whole playlist or TS segment.
    pub body: Bytes,
    /// [`PLAYLIST_TYPE`] or [`SEGMENT_TYPE`].
    pub content_type: &'static str,
    /// Strong ETag, quoted: digest of the route, the source identities (path + size + mtime,
    /// or remote size + ETag + Last-Modified), the segment duration and [`FORMAT_VERSION`].
    pub etag: String,
    /// Latest modification time of the source files involved.
    pub last_modified: SystemTime,
    /// [`PLAYLIST_CACHE_CONTROL`] or [`SEGMENT_CACHE_CONTROL`].
    pub cache_control: &'static str,
}

/// Why a request failed; [`VodError::kind`] says which HTTP class it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VodError {
    /// The URL is not a valid `/i/` route or query.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A source file could not be opened or read.
    #[error("asset {asset}: {source}")]
    Source {
        /// Relative path of the asset under the media root.
        asset: String,
        /// What went wrong.
        source: SourceError,
    },
    /// The MP4 could not be indexed (corrupt, unsupported, fragmented).
    #[error("asset {asset}: {source}")]
    Index {
        /// Relative path of the asset under the media root.
        asset: String,
        /// What went wrong (shared: one failed build answers every waiter).
        source: Arc<IndexError>,
    },
    /// The file has no usable top-level `moov` box.
    #[error("asset {asset}: moov: {reason} (offset {offset})")]
    NoMoov {
        /// Relative path of the asset under the media root.
        asset: String,
        /// File offset of the top-level box where the search stopped.
        offset: u64,
        /// What was found instead.
        reason: String,
    },
    /// The variant has nothing to play (no audio for `_a`, empty clip window).
    #[error("asset {asset}: {source}")]
    Plan {
        /// Relative path of the asset under the media root.
        asset: String,
        /// Why there is nothing to plan.
        source: PlanError,
    },
    /// The segment number is past the end.
    #[error("asset {asset}: segment {number} of {count}")]
    NoSegment {
        /// Relative path of the asset under the media root.
        asset: String,
        /// The requested segment number (1-based).
        number: u32,
        /// How many segments the variant has.
        count: usize,
    },
    /// None of the renditions of a set exists (or passes `b=`).
    #[error("no rendition of {0} exists")]
    NoRendition(String),
    /// A sample could not be muxed.
    #[error("asset {asset}: {source}")]
    Mux {
        /// Relative path of the asset under the media root.
        asset: String,
        /// The sample at fault (track id, sample index, file offset).
        source: segment::MuxError,
    },
    /// A subtitle file or track could not be read as WebVTT / timed text.
    #[error("asset {asset}: subtitles: {source}")]
    Subtitle {
        /// Relative path of the sidecar or the MP4.
        asset: String,
        /// What was wrong.
        source: webvtt::VttError,
    },
    /// The configuration cannot be used.
    #[error("vod config: {0}")]
    Config(String),
    /// A background task failed (panic or cancellation).
    #[error("vod internal: {0}")]
    Internal(String),
}

impl VodError {
    /// The error class (the server maps it to an HTTP status).
    pub fn kind(&self) -> ErrorKind {
        match self {
            VodError::Route(RouteError::NotFound(_)) => ErrorKind::NotFound,
            VodError::Route(RouteError::Forbidden(_)) => ErrorKind::Forbidden,
            VodError::Route(_) => ErrorKind::BadRequest,
            VodError::Source { source, .. } => match source {
                SourceError::NotFound(_) => ErrorKind::NotFound,
                SourceError::Forbidden(_) => ErrorKind::Forbidden,
                SourceError::Io { .. } => ErrorKind::Internal,
                SourceError::Upstream { .. } | SourceError::Changed { .. } => ErrorKind::Upstream,
            },
            VodError::Index { source, .. } => match **source {
                IndexError::Unsupported { .. } | IndexError::Fragmented => ErrorKind::Unsupported,
                IndexError::NoTracks => ErrorKind::Unsupported,
                _ => ErrorKind::Corrupt,
            },
            VodError::NoMoov { .. } | VodError::Mux { .. } | VodError::Subtitle { .. } => {
                ErrorKind::Corrupt
            }
            VodError::Plan { .. } | VodError::NoSegment { .. } | VodError::NoRendition(_) => {
                ErrorKind::NotFound
            }
            VodError::Config(_) | VodError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// A cached index with its no-clip plans (computed with it, off the async threads).
#[derive(Debug)]
struct Asset {
    index: MovieIndex,
    av: Result<Arc<Plan>, PlanError>,
    audio: Result<Arc<Plan>, PlanError>,
}

type IndexResult = Result<Arc<Asset>, VodError>;

/// The VOD packaging service (see the module docs).
pub struct Vod {
    source: Arc<Source>,
    segment_duration: i64,
    indexes: moka::future::Cache<String, Arc<Asset>>,
    outputs: moka::future::Cache<String, Bytes>,
    disk: Option<Arc<DiskCache>>,
    input: Option<Arc<DiskCache>>,
    sweep_interval: Duration,
    produced: std::sync::atomic::AtomicU64,
    /// AES-128 keys of the HLS outputs, when `hls_encryption = "aes-128"`, with their
    /// fingerprint (for cache keys and ETags; computed once).
    keys: Option<keys::KeySource>,
    key_fingerprint: String,
    /// Segments packaging at once on the blocking threads: [`PACKAGERS_PER_CORE`] per core;
    /// the others wait their turn, in order.
    packagers: Arc<tokio::sync::Semaphore>,
}

/// Segments packaged at once per core. A few MB of sample and output buffers each: more at
/// once only time-slice the cores and push each other's buffers out of the CPU caches
/// (measured: about +20% cold TS segments/s with 1 instead of the blocking pool's 8 on 2
/// cores; BENCHMARKS.md). It also bounds the overlap of local disk reads.
const PACKAGERS_PER_CORE: usize = 1;

/// Counters of a [`Vod`] (for logs, metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VodStats {
    /// Playlists and segments packaged (memory and disk cache misses).
    pub produced: u64,
    /// Sample indexes currently cached in memory.
    pub indexes: u64,
}

impl std::fmt::Debug for Vod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vod")
            .field("source", &self.source)
            .field("segment_duration", &self.segment_duration)
            .finish_non_exhaustive()
    }
}

impl Vod {
    /// Builds the service from its config (no I/O beyond checking the media root); cheap.
    ///
    /// Errors: [`VodError::Config`] when the local media root is not a folder or a value
    /// is out of range.
    pub fn new(cfg: &config::VodConfig) -> Result<Vod, VodError> {
        cfg.validate()
            .map_err(|e| VodError::Config(e.to_string()))?;
        let input = cfg.input_cache_dir.as_ref().map(|d| {
            Arc::new(DiskCache::new(
                d.clone(),
                Duration::from_secs(cfg.input_cache_ttl_secs),
                cfg.input_cache_max_bytes,
            ))
        });
        let source = if cfg.is_remote() {
            Source::http(
                &cfg.media_root,
                input.clone(),
                Duration::from_secs(cfg.remote_revalidate_secs.max(1)),
                cfg.remote_sidecar_languages.clone(),
            )
        } else {
            Source::local(std::path::Path::new(&cfg.media_root))
                .map_err(|e| VodError::Config(format!("media root {}: {e}", cfg.media_root)))?
        };
        let disk = cfg.cache_dir.as_ref().map(|d| {
            Arc::new(DiskCache::new(
                d.clone(),
                Duration::from_secs(cfg.cache_ttl_secs),
                cfg.cache_max_bytes,
            ))
        });
        let keys = cfg.key_source().map_err(VodError::Config)?;
        Ok(Vod {
            key_fingerprint: keys.as_ref().map(|k| k.fingerprint()).unwrap_or_default(),
            keys,
            source: Arc::new(source),
            segment_duration: (cfg.segment_duration_secs * 90_000.0).round() as i64,
            indexes: moka::future::Cache::builder()
                .max_capacity(cfg.index_cache_entries)
                .build(),
            outputs: moka::future::Cache::builder()
                .max_capacity(cfg.memory_cache_bytes)
                .weigher(|k: &String, v: &Bytes| {
                    u32::try_from(k.len() + v.len()).unwrap_or(u32::MAX)
                })
                .build(),
            disk,
            input,
            sweep_interval: Duration::from_secs(cfg.sweep_interval_secs),
            produced: Default::default(),
            packagers: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map_or(2, usize::from)
                    .saturating_mul(PACKAGERS_PER_CORE)
                    .max(1),
            )),
        })
    }

    /// Current counters.
    pub fn stats(&self) -> VodStats {
        VodStats {
            produced: self.produced.load(std::sync::atomic::Ordering::Relaxed),
            indexes: self.indexes.entry_count(),
        }
    }

    /// How often the server should call [`Vod::sweep`].
    pub fn sweep_interval(&self) -> Duration {
        self.sweep_interval
    }

    /// One pass of the cache sweeper over the output and input cache folders (TTL since
    /// last access, then oldest first past the size limit).
    pub async fn sweep(&self) {
        for (name, c) in [("output", &self.disk), ("input", &self.input)] {
            if let Some(c) = c.clone() {
                match tokio::task::spawn_blocking(move || c.sweep_blocking()).await {
                    Ok(s) => tracing::debug!(
                        cache = name,
                        expired = s.expired,
                        evicted = s.evicted,
                        bytes = s.bytes,
                        "vod cache swept"
                    ),
                    Err(e) => tracing::warn!(cache = name, error = %e, "vod cache sweep failed"),
                }
            }
        }
        self.indexes.run_pending_tasks().await;
        self.outputs.run_pending_tasks().await;
    }

    /// Answers one GET/HEAD under `/i/` (HLS with TS segments): see [`Vod::respond_as`].
    pub async fn respond(&self, path: &str, query: Option<&str>) -> Result<VodReply, VodError> {
        self.respond_as(Format::Ts, path, query).await
    }

    /// Answers one GET/HEAD. `path` is the request path after the leading `/i/`, `/cmaf/`
    /// or `/dash/` (`format` says which), still percent-encoded; `query` is the raw query
    /// string (`start=`, `end=`, `b=`).
    ///
    /// The CMAF headers and fragments of `/cmaf/` and `/dash/` are the same bytes under
    /// the same cache key (it names the file, the track and the segment, not the URL).
    ///
    /// Errors: see [`VodError`] and [`VodError::kind`].
    pub async fn respond_as(
        &self,
        format: Format,
        path: &str,
        query: Option<&str>,
    ) -> Result<VodReply, VodError> {
        let route = csmil::parse_as(path, format)?;
        let opts = Options::parse(query)?;
        // Open the files this route reads (a master reads all of them).
        let set = route.set();
        let files: Vec<Option<SourceFile>> = match &route {
            Route::Master { .. } | Route::Manifest { .. } => {
                let mut v = Vec::with_capacity(set.files.len());
                for rel in &set.files {
                    match self.source.open(rel).await {
                        Ok(f) => v.push(Some(f)),
                        Err(SourceError::NotFound(_)) => v.push(None),
                        Err(source) => {
                            return Err(VodError::Source {
                                asset: rel.clone(),
                                source,
                            })
                        }
                    }
                }
                if v.iter().all(Option::is_none) {
                    return Err(VodError::NoRendition(set.files.join(",")));
                }
                v
            }
            Route::Media { index, .. }
            | Route::Segment { index, .. }
            | Route::Key { index, .. }
            | Route::IFrames { index, .. }
            | Route::IFrame { index, .. }
            | Route::TrackMedia { index, .. }
            | Route::Init { index, .. }
            | Route::Subtitles { index, .. }
            | Route::SubtitleSegment { index, .. }
            | Route::SubtitleFile { index, .. }
            | Route::TsTrackMedia { index, .. }
            | Route::TsTrackSegment { index, .. }
            | Route::Fragment { index, .. } => {
                let rel = &set.files[*index];
                let f = self
                    .source
                    .open(rel)
                    .await
                    .map_err(|source| VodError::Source {
                        asset: rel.clone(),
                        source,
                    })?;
                vec![Some(f)]
            }
        };
        if let Route::Key { .. } = &route {
            return self.key_reply(files.first().and_then(Option::as_ref));
        }
        let encrypted = self.keys.is_some() && format != Format::Dash;
        let (content_type, is_segment) = match &route {
            Route::Segment { .. } | Route::TsTrackSegment { .. } => (SEGMENT_TYPE, true),
            Route::IFrame { .. } if format == Format::Ts => (SEGMENT_TYPE, true),
            Route::IFrame { .. } => (VIDEO_MP4_TYPE, true),
            Route::SubtitleSegment { .. } | Route::SubtitleFile { .. } => (VTT_TYPE, true),
            Route::Init { media, .. } | Route::Fragment { media, .. } => (
                if media.is_audio() {
                    AUDIO_MP4_TYPE
                } else {
                    VIDEO_MP4_TYPE
                },
                true,
            ),
            Route::Manifest { .. } => (MPD_TYPE, false),
            _ => (PLAYLIST_TYPE, false),
        };
        let mut id_parts: Vec<Vec<u8>> = match &route {
            // The same bytes for /cmaf/ and /dash/ and for any URL naming the file.
            Route::Init { media, .. } => {
                vec![format!("v{FORMAT_VERSION}|init|{}", media.suffix()).into_bytes()]
            }
            Route::Fragment { media, number, .. } => vec![
                format!(
                    "v{FORMAT_VERSION}|d{}|fragment|{}|{number}",
                    self.segment_duration,
                    media.suffix()
                )
                .into_bytes(),
                opts.clip_query().into_bytes(),
            ],
            _ => vec![
                format!(
                    "v{FORMAT_VERSION}|d{}|{}",
                    self.segment_duration,
                    format.prefix()
                )
                .into_bytes(),
                path.as_bytes().to_vec(),
                opts.clip_query().into_bytes(),
                format!("{:?}", opts.bitrate).into_bytes(),
            ],
        };
        if encrypted {
            // Encrypted HLS output: its own entries (DASH fragments stay shared and clear).
            id_parts.push(format!("aes-128|{}", self.key_fingerprint).into_bytes());
        }
        for f in files.iter().flatten() {
            id_parts.push(f.rel.as_bytes().to_vec());
            id_parts.push(f.identity.as_bytes().to_vec());
        }
        if matches!(
            route,
            Route::Master { .. }
                | Route::Manifest { .. }
                | Route::Subtitles { .. }
                | Route::SubtitleSegment { .. }
                | Route::SubtitleFile { .. }
        ) {
            // Adding, changing or removing a sidecar changes these outputs.
            for f in files.iter().flatten() {
                for (_, rel) in self.source.sidecars(&f.rel).await {
                    if let Ok(sf) = self.source.open(&rel).await {
                        id_parts.push(sf.rel.into_bytes());
                        id_parts.push(sf.identity.into_bytes());
                    }
                }
            }
        }
        let parts: Vec<&[u8]> = id_parts.iter().map(|p| p.as_slice()).collect();
        let key = digest(&parts);
        let last_modified = files
            .iter()
            .flatten()
            .map(|f| f.mtime)
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let body = self
            .outputs
            .try_get_with(key.clone(), async {
                if let Some(disk) = &self.disk {
                    if let Some(b) = disk.get(&key).await {
                        return Ok(b);
                    }
                }
                self.produced
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let body = self.produce(format, &route, &opts, &files).await?;
                if let Some(disk) = &self.disk {
                    disk.put(&key, body.clone()).await;
                }
                Ok::<_, VodError>(body)
            })
            .await
            .map_err(|e: Arc<VodError>| Arc::try_unwrap(e).unwrap_or_else(|e| clone_error(&e)))?;
        Ok(VodReply {
            body,
            content_type,
            etag: format!("\"{key}\""),
            last_modified,
            cache_control: if is_segment {
                SEGMENT_CACHE_CONTROL
            } else {
                PLAYLIST_CACHE_CONTROL
            },
        })
    }

    /// The AES-128 key of `f` (16 bytes), never stored by a shared cache.
    fn key_reply(&self, f: Option<&SourceFile>) -> Result<VodReply, VodError> {
        let (Some(keys), Some(f)) = (&self.keys, f) else {
            return Err(VodError::Route(RouteError::NotFound(
                "no key: hls_encryption is none".into(),
            )));
        };
        let key = keys.key_for(&f.rel);
        Ok(VodReply {
            body: Bytes::copy_from_slice(&key),
            content_type: KEY_TYPE,
            etag: format!(
                "\"{}\"",
                digest(&[self.key_fingerprint.as_bytes(), f.rel.as_bytes()])
            ),
            last_modified: f.mtime,
            cache_control: KEY_CACHE_CONTROL,
        })
    }

    /// `EXT-X-KEY` of segment `number` of the file `rel` (`None` when output is clear).
    fn key_line(
        &self,
        format: Format,
        index: usize,
        number: u32,
        suffix: &str,
    ) -> Option<(String, u128)> {
        (self.keys.is_some() && format != Format::Dash)
            .then(|| (format!("key_{index}.key{suffix}"), u128::from(number)))
    }

    /// The key and IV that encrypt segment `number` of `f`, when HLS output is encrypted.
    fn cipher(&self, format: Format, f: &SourceFile, number: u32) -> Option<([u8; 16], [u8; 16])> {
        let keys = self.keys.as_ref().filter(|_| format != Format::Dash)?;
        Some((keys.key_for(&f.rel), keys::iv_for(number)))
    }

    async fn produce(
        &self,
        format: Format,
        route: &Route,
        opts: &Options,
        files: &[Option<SourceFile>],
    ) -> Result<Bytes, VodError> {
        let clip = Clip {
            start: opts.start,
            end: opts.end,
        };
        let suffix = if opts.has_clip() {
            format!("?{}", opts.clip_query())
        } else {
            String::new()
        };
        if matches!(route, Route::IFrames { .. } | Route::IFrame { .. }) && self.keys.is_some() {
            return Err(VodError::Route(RouteError::NotFound(
                "no I-frame playlists of encrypted output".into(),
            )));
        }
        match route {
            Route::Master { set } if format == Format::Cmaf => {
                self.cmaf_master(set, files, opts, clip, &suffix).await
            }
            Route::Master { set } => self.master(set, files, opts, clip, &suffix).await,
            Route::Manifest { set } => self.dash_manifest(set, files, opts, clip, &suffix).await,
            Route::Key { .. } => Err(VodError::Internal("keys are not cached".into())),
            Route::IFrames { index, .. } => {
                let f = first_file(files)?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, Variant::Av, clip, f).await?;
                track_of(&asset.index, Media::Video, f)?;
                let fmp4 = format == Format::Cmaf;
                let pl = MediaPlaylist {
                    version: if fmp4 { 7 } else { 4 },
                    playlist_type: Some(PlaylistType::Vod),
                    media_sequence: 1,
                    independent_segments: true,
                    iframes_only: true,
                    map_uri: fmp4.then(|| format!("init_{index}_v.mp4{suffix}")),
                    segments: iframes(&asset.index, &plan, fmp4)
                        .into_iter()
                        .map(|f| MediaSegment {
                            duration_ms: f.ms,
                            uri: format!(
                                "iframe{}_{index}_{}.{}{suffix}",
                                f.number,
                                f.k,
                                if fmp4 { "m4s" } else { "ts" }
                            ),
                            ..Default::default()
                        })
                        .collect(),
                    end_list: true,
                    ..Default::default()
                };
                Ok(Bytes::from(pl.to_string()))
            }
            Route::IFrame { number, k, .. } => {
                let f = first_file(files)?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, Variant::Av, clip, f).await?;
                let v = track_of(&asset.index, Media::Video, f)?;
                let seg = plan_segment(&plan, f, *number)?;
                let keyframes = seg.video.clone().filter(|&i| v.samples[i].sync);
                let i = keyframes.clone().nth(*k).ok_or_else(|| {
                    VodError::Route(RouteError::NotFound(format!(
                        "keyframe {k} of segment {number} of {} ({} in it)",
                        f.rel,
                        keyframes.count()
                    )))
                })?;
                // Only the keyframe's bytes are read.
                let mut read = seg.clone();
                read.video = i..i + 1;
                read.audio = 0..0;
                read.alternates.clear();
                let (number, origin) = (*number, plan.origin);
                if format == Format::Cmaf {
                    let est = fmp4::fragment_len(v, &read.video) as usize;
                    self.package(f, &asset, read, est, None, move |index, data, out| {
                        let t = mux_track(index, Media::Video)?;
                        fmp4::fragment_into(t, i..i + 1, number, origin, data, out)
                    })
                    .await
                } else {
                    let est = segment::keyframe_bytes(&asset.index, i) as usize;
                    let (plan2, alone) = (plan.clone(), read.clone());
                    self.package(f, &asset, read, est, None, move |index, data, out| {
                        segment::mux_track_into(
                            index,
                            &plan2,
                            number,
                            Media::Video,
                            &alone,
                            data,
                            out,
                        )
                    })
                    .await
                }
            }
            Route::TsTrackMedia { index, media, .. } => {
                let f = first_file(files)?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, Variant::Av, clip, f).await?;
                let t = track_of(&asset.index, *media, f)?;
                Ok(self.track_playlist(format, *index, *media, t, &plan, &suffix))
            }
            Route::TsTrackSegment { number, media, .. } => {
                let f = first_file(files)?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, Variant::Av, clip, f).await?;
                track_of(&asset.index, *media, f)?;
                let seg = plan_segment(&plan, f, *number)?;
                // Only this track's bytes are read.
                let mut read = seg.clone();
                if *media != Media::Video {
                    read.video = 0..0;
                }
                read.audio = 0..0;
                for (k, r) in read.alternates.iter_mut().enumerate() {
                    if *media != Media::AltAudio(k as u8 + 1) {
                        *r = 0..0;
                    }
                }
                if read.video.is_empty() && read.alternates.iter().all(|r| r.is_empty()) {
                    return Err(VodError::NoSegment {
                        asset: f.rel.clone(),
                        number: *number,
                        count: plan.segments.len(),
                    });
                }
                let (number, media) = (*number, *media);
                let est = seg.est_bytes as usize;
                let cipher = self.cipher(format, f, number);
                let plan2 = plan.clone();
                self.package(f, &asset, read, est, cipher, move |index, data, out| {
                    let seg = &plan2.segments[number as usize - 1];
                    segment::mux_track_into(index, &plan2, number, media, seg, data, out)
                })
                .await
            }
            Route::Subtitles { index, track, .. } => {
                let f = first_file(files)?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, Variant::Av, clip, f).await?;
                self.subtitle_track(f, &asset.index, *track).await?;
                let pl = MediaPlaylist {
                    version: 3,
                    playlist_type: Some(PlaylistType::Vod),
                    media_sequence: 1,
                    segments: plan
                        .durations_ms()
                        .enumerate()
                        .map(|(n, d)| MediaSegment {
                            duration_ms: d,
                            uri: format!("subs{}_{index}_{track}.vtt{suffix}", n + 1),
                            ..Default::default()
                        })
                        .collect(),
                    end_list: true,
                    ..Default::default()
                };
                Ok(Bytes::from(pl.to_string()))
            }
            Route::SubtitleSegment { track, number, .. } => {
                let f = first_file(files)?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, Variant::Av, clip, f).await?;
                let n = *number as usize;
                let seg = plan_segment(&plan, f, *number)?;
                let cues = self.cues(f, &asset.index, *track, plan.origin).await?;
                // Segment N covers media segment N; the first and the last reach out so that
                // no cue is lost at either end.
                let origin = plan.origin;
                let from = if n == 1 {
                    i64::MIN
                } else {
                    (seg.start - origin).div_euclid(90)
                };
                let to = if n == plan.segments.len() {
                    i64::MAX
                } else {
                    (seg.start + seg.duration - origin).div_euclid(90)
                };
                let offset = u64::try_from(segment::GLOBAL_OFFSET).unwrap_or(0);
                Ok(Bytes::from(webvtt::segment(&cues, from, to, offset)))
            }
            Route::SubtitleFile { track, .. } => {
                let f = first_file(files)?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, Variant::Av, clip, f).await?;
                let cues = self.cues(f, &asset.index, *track, plan.origin).await?;
                Ok(Bytes::from(webvtt::whole(&cues)))
            }
            Route::TrackMedia { index, media, .. } => {
                let f = first_file(files)?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, Variant::Av, clip, f).await?;
                let t = track_of(&asset.index, *media, f)?;
                Ok(self.track_playlist(format, *index, *media, t, &plan, &suffix))
            }
            Route::Init { media, .. } => {
                let f = first_file(files)?;
                let asset = self.asset(f).await?;
                let t = track_of(&asset.index, *media, f)?;
                fmp4::init_segment(t)
                    .map(Bytes::from)
                    .map_err(|reason| VodError::Mux {
                        asset: f.rel.clone(),
                        source: segment::MuxError {
                            track_id: t.track_id,
                            sample: 0,
                            offset: 0,
                            reason,
                        },
                    })
            }
            Route::Fragment { number, media, .. } => {
                let f = first_file(files)?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, Variant::Av, clip, f).await?;
                track_of(&asset.index, *media, f)?;
                let j = *number as usize - 1;
                let samples = fmp4::segment_samples(&plan, *media, j);
                if samples.is_empty() {
                    return Err(VodError::NoSegment {
                        asset: f.rel.clone(),
                        number: *number,
                        count: plan.segments.len(),
                    });
                }
                // Only this track's bytes are read.
                let mut seg = plan.segments[j].clone();
                if *media != Media::Video {
                    seg.video = 0..0;
                }
                if *media != Media::Audio {
                    seg.audio = 0..0;
                }
                for (k, r) in seg.alternates.iter_mut().enumerate() {
                    if *media != Media::AltAudio(k as u8 + 1) {
                        *r = 0..0;
                    }
                }
                let (media, number, origin) = (*media, *number, plan.origin);
                let est = fmp4::fragment_len(track_of(&asset.index, media, f)?, &samples);
                let cipher = self.cipher(format, f, number);
                self.package(
                    f,
                    &asset,
                    seg,
                    est as usize,
                    cipher,
                    move |index, data, out| {
                        let t = mux_track(index, media)?;
                        fmp4::fragment_into(t, samples, number, origin, data, out)
                    },
                )
                .await
            }
            Route::Media { index, variant, .. } => {
                let f = files[0]
                    .as_ref()
                    .ok_or_else(|| VodError::Internal("no file".into()))?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, *variant, clip, f).await?;
                let pl = MediaPlaylist {
                    version: 3,
                    playlist_type: Some(PlaylistType::Vod),
                    media_sequence: 1,
                    independent_segments: true,
                    segments: plan
                        .durations_ms()
                        .enumerate()
                        .map(|(n, d)| MediaSegment {
                            duration_ms: d,
                            uri: format!(
                                "segment{}_{index}_{}.ts{suffix}",
                                n + 1,
                                variant.suffix()
                            ),
                            key: self.key_line(format, *index, n as u32 + 1, &suffix),
                            ..Default::default()
                        })
                        .collect(),
                    end_list: true,
                    ..Default::default()
                };
                Ok(Bytes::from(pl.to_string()))
            }
            Route::Segment {
                number, variant, ..
            } => {
                let f = files[0]
                    .as_ref()
                    .ok_or_else(|| VodError::Internal("no file".into()))?;
                let asset = self.asset(f).await?;
                let plan = self.plan(&asset, *variant, clip, f).await?;
                let seg = plan_segment(&plan, f, *number)?;
                let plan2 = plan.clone();
                let number = *number;
                let est = seg.est_bytes as usize;
                let cipher = self.cipher(format, f, number);
                let mut read = seg.clone();
                read.alternates.clear(); // TS carries the first audio track only
                self.package(f, &asset, read, est, cipher, move |index, data, out| {
                    let seg = &plan2.segments[number as usize - 1];
                    segment::mux_into(index, &plan2, number, seg, data, out)
                })
                .await
            }
        }
    }

    /// Reads the sample bytes `seg` names (local: into this blocking thread's scratch
    /// buffer; remote: ranged reads) and runs `mux` on a blocking thread into a recycled
    /// buffer of about `est` bytes; with `cipher` (key, IV) the result is then encrypted
    /// whole with AES-128-CBC ([`keys::encrypt`]).
    async fn package<F>(
        &self,
        f: &SourceFile,
        asset: &Arc<Asset>,
        seg: SegmentPlan,
        est: usize,
        cipher: Option<([u8; 16], [u8; 16])>,
        mux: F,
    ) -> Result<Bytes, VodError>
    where
        F: FnOnce(&MovieIndex, &SampleData<'_>, &mut Vec<u8>) -> Result<(), segment::MuxError>
            + Send
            + 'static,
    {
        let asset2 = asset.clone();
        let mux_err = |source| VodError::Mux {
            asset: f.rel.clone(),
            source,
        };
        let join_err = |e: tokio::task::JoinError| VodError::Internal(e.to_string());
        // At most PACKAGERS_PER_CORE segments per core package at once.
        let packagers = Arc::clone(&self.packagers);
        let out = if self.source.local_path(f).is_some() {
            let permit = Arc::clone(&packagers)
                .acquire_owned()
                .await
                .map_err(|e| VodError::Internal(e.to_string()))?;
            let file = f.clone();
            let rel = f.rel.clone();
            tokio::task::spawn_blocking(move || {
                // Held by the blocking task, so a dropped request does not free it early.
                let _permit = permit;
                let mut buf = SCRATCH
                    .lock()
                    .ok()
                    .and_then(|mut v| v.pop())
                    .unwrap_or_default();
                buf.clear();
                let ranges = segment::byte_ranges(&asset2.index, &seg, READ_GAP);
                let out = match source::read_ranges_blocking(&file, &ranges, &mut buf) {
                    Ok(spans) => {
                        let data = SampleData {
                            chunks: spans.iter().map(|(o, r)| (*o, &buf[r.clone()])).collect(),
                        };
                        let mut out = pool::take(est);
                        Ok(mux(&asset2.index, &data, &mut out).map(|()| seal(out, cipher)))
                    }
                    Err(source) => Err(VodError::Source { asset: rel, source }),
                };
                if buf.capacity() <= SCRATCH_KEEP {
                    if let Ok(mut kept) = SCRATCH.lock() {
                        if kept.len() < SCRATCH_COUNT {
                            kept.push(buf);
                        }
                    }
                }
                out
            })
            .await
            .map_err(join_err)??
            .map_err(mux_err)?
        } else {
            let chunks = self.read_samples(f, &asset.index, &seg).await?;
            let permit = Arc::clone(&packagers)
                .acquire_owned()
                .await
                .map_err(|e| VodError::Internal(e.to_string()))?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let data = SampleData {
                    chunks: chunks.iter().map(|(o, b)| (*o, &b[..])).collect(),
                };
                let mut out = pool::take(est);
                mux(&asset2.index, &data, &mut out).map(|()| seal(out, cipher))
            })
            .await
            .map_err(join_err)?
            .map_err(mux_err)?
        };
        Ok(out)
    }

    async fn master(
        &self,
        set: &AssetSet,
        files: &[Option<SourceFile>],
        opts: &Options,
        clip: Clip,
        suffix: &str,
    ) -> Result<Bytes, VodError> {
        let mut variants = Vec::new();
        let mut iframe_streams = Vec::new();
        // (average bps, rendition, plan) of the cheapest rendition with audio.
        let mut audio_pick: Option<(u64, usize, Arc<Plan>, String)> = None;
        // Its audio tracks (NAME, LANGUAGE): the first, muxed in the variants, then the
        // others, offered as audio-only TS renditions.
        let mut audio_tracks: Vec<(String, Option<String>)> = Vec::new();
        let mut any_video = false;
        for (i, f) in files.iter().enumerate() {
            let Some(f) = f else {
                tracing::debug!(asset = %set.files[i], "rendition missing, skipped");
                continue;
            };
            let asset = self.asset(f).await?;
            let plan = self.plan(&asset, Variant::Av, clip, f).await?;
            let idx = &asset.index;
            let mut codecs = Vec::new();
            if let Some(v) = &idx.video {
                codecs.push(v.codec_string.clone());
                any_video = true;
            }
            if let Some(a) = &idx.audio {
                codecs.push(a.codec_string.clone());
                let ap = self.plan(&asset, Variant::Audio, clip, f).await?;
                let avg = ap.average_bps();
                if audio_pick.as_ref().is_none_or(|p| avg < p.0) {
                    audio_pick = Some((avg, i, ap, a.codec_string.clone()));
                    audio_tracks = std::iter::once(a)
                        .chain(idx.alternates.iter())
                        .map(|t| (track_label(t), track_language(t)))
                        .collect();
                }
            }
            let avg = plan.average_bps();
            if !opts.accepts_bitrate(avg) {
                continue;
            }
            if let (Some(v), false) = (&idx.video, self.keys.is_some()) {
                iframe_streams.push(IFrameStream {
                    bandwidth: iframe_peak_bps(&iframes(idx, &plan, false)),
                    codecs: vec![v.codec_string.clone()],
                    resolution: Some((u32::from(v.width), u32::from(v.height))),
                    uri: format!("iframes_{i}.m3u8{suffix}"),
                });
            }
            variants.push(VariantStream {
                bandwidth: plan.peak_bps(),
                average_bandwidth: Some(avg),
                codecs,
                resolution: idx
                    .video
                    .as_ref()
                    .map(|v| (u32::from(v.width), u32::from(v.height))),
                frame_rate: idx
                    .video
                    .as_ref()
                    .map(|v| v.frame_rate)
                    .filter(|r| *r > 0.0),
                audio_group: None,
                subtitles_group: None,
                uri: format!("index_{i}_av.m3u8{suffix}"),
            });
        }
        if variants.is_empty() {
            return Err(VodError::NoRendition(set.files.join(",")));
        }
        variants.sort_by_key(|v| v.bandwidth);
        let audio_rendition = audio_pick.as_ref().map(|p| p.1);
        if any_video {
            if let Some((avg, i, ap, codec)) = audio_pick {
                variants.push(VariantStream {
                    bandwidth: ap.peak_bps(),
                    average_bandwidth: Some(avg),
                    codecs: vec![codec],
                    resolution: None,
                    frame_rate: None,
                    audio_group: None,
                    subtitles_group: None,
                    uri: format!("index_{i}_a.m3u8{suffix}"),
                });
            }
        }
        let mut media = Vec::new();
        if let (Some(i), true) = (audio_rendition, audio_tracks.len() > 1 && any_video) {
            // Several audio tracks: demuxed variants (video-only TS, `_v`) and an AUDIO group
            // of audio-only TS renditions, the first track the default (RFC 8216bis
            // §4.4.6.1.1). hls.js reports buffer-append errors when a muxed variant's audio
            // is replaced by another rendition's.
            let names = unique_names(audio_tracks.iter().map(|(n, _)| n.clone()));
            for (k, ((_, language), name)) in audio_tracks.iter().zip(names).enumerate() {
                media.push(AlternativeMedia {
                    media_type: "AUDIO",
                    group_id: "aac".into(),
                    name,
                    language: language.clone(),
                    default: k == 0,
                    uri: Some(if k == 0 {
                        format!("index_{i}_a.m3u8{suffix}")
                    } else {
                        format!("index_{i}_a{k}.m3u8{suffix}")
                    }),
                });
            }
            for v in variants.iter_mut().filter(|v| v.resolution.is_some()) {
                v.audio_group = Some("aac".into());
                v.uri = v.uri.replacen("_av.m3u8", "_v.m3u8", 1);
            }
        }
        let subtitles = self.subtitle_media(files, suffix).await?;
        if !subtitles.is_empty() {
            for v in &mut variants {
                v.subtitles_group = Some("subs".into());
            }
        }
        media.extend(subtitles);
        let pl = MultivariantPlaylist {
            version: 4,
            independent_segments: true,
            media,
            variants,
            iframe_streams,
        };
        Ok(Bytes::from(pl.to_string()))
    }

    /// Every rendition of a set that exists, with its index and its audio + video plan,
    /// for the fMP4 manifests; and the one whose audio track is offered (the cheapest
    /// audio, as in the TS master).
    async fn fmp4_renditions(
        &self,
        set: &AssetSet,
        files: &[Option<SourceFile>],
        clip: Clip,
    ) -> Result<Fmp4Set, VodError> {
        let mut renditions = Vec::new();
        let mut audio: Option<(u64, usize)> = None;
        for (i, f) in files.iter().enumerate() {
            let Some(f) = f else {
                tracing::debug!(asset = %set.files[i], "rendition missing, skipped");
                continue;
            };
            let asset = self.asset(f).await?;
            let plan = self.plan(&asset, Variant::Av, clip, f).await?;
            let video = asset
                .index
                .video
                .as_ref()
                .map(|v| fmp4::timeline(v, &plan, Media::Video));
            let a = asset
                .index
                .audio
                .as_ref()
                .map(|a| (fmp4::timeline(a, &plan, Media::Audio), a.timescale));
            if let Some((tl, ts)) = &a {
                let avg = rates(tl, *ts).1;
                if !tl.is_empty() && audio.is_none_or(|(best, _)| avg < best) {
                    audio = Some((avg, renditions.len()));
                }
            }
            let alternates = asset
                .index
                .alternates
                .iter()
                .enumerate()
                .map(|(k, t)| fmp4::timeline(t, &plan, Media::AltAudio(k as u8 + 1)))
                .collect();
            renditions.push(Fmp4Rendition {
                i,
                asset,
                plan,
                video,
                audio: a.map(|x| x.0),
                alternates,
            });
        }
        if renditions.is_empty() {
            return Err(VodError::NoRendition(set.files.join(",")));
        }
        Ok(Fmp4Set {
            audio: audio.map(|(_, k)| k),
            renditions,
        })
    }

    /// The CMAF HLS multivariant playlist: one variant per rendition with video (its video
    /// track), the audio of one rendition in an `EXT-X-MEDIA` group (RFC 8216bis §4.4.6.1).
    async fn cmaf_master(
        &self,
        set: &AssetSet,
        files: &[Option<SourceFile>],
        opts: &Options,
        clip: Clip,
        suffix: &str,
    ) -> Result<Bytes, VodError> {
        let fs = self.fmp4_renditions(set, files, clip).await?;
        let offered = fs.offered_audio();
        // BANDWIDTH covers the most demanding audio of the group (RFC 8216bis §4.4.6.2).
        let audio_info = offered.first().map(|a| {
            let peak = offered.iter().map(|o| o.peak).max().unwrap_or(0);
            (a.i, a.track, peak, a.avg)
        });
        let mut media = Vec::new();
        let names = unique_names(offered.iter().map(|a| track_label(a.track)));
        for (k, (a, name)) in offered.iter().zip(names).enumerate() {
            media.push(AlternativeMedia {
                media_type: "AUDIO",
                group_id: "audio".into(),
                name,
                language: track_language(a.track),
                default: k == 0,
                uri: Some(format!("index_{}_{}.m3u8{suffix}", a.i, a.media.suffix())),
            });
        }
        let mut variants = Vec::new();
        let mut iframe_streams = Vec::new();
        for r in &fs.renditions {
            let (Some(v), Some(tl)) = (r.asset.index.video.as_ref(), r.video.as_ref()) else {
                continue;
            };
            let (mut peak, mut avg) = rates(tl, v.timescale);
            let mut codecs = vec![v.codec_string.clone()];
            if let Some((_, t, ap, aa)) = &audio_info {
                peak += ap;
                avg += aa;
                codecs.push(t.codec_string.clone());
            }
            if !opts.accepts_bitrate(avg) {
                continue;
            }
            if self.keys.is_none() {
                iframe_streams.push(IFrameStream {
                    bandwidth: iframe_peak_bps(&iframes(&r.asset.index, &r.plan, true)),
                    codecs: vec![v.codec_string.clone()],
                    resolution: Some((u32::from(v.width), u32::from(v.height))),
                    uri: format!("iframes_{}.m3u8{suffix}", r.i),
                });
            }
            variants.push(VariantStream {
                bandwidth: peak,
                average_bandwidth: Some(avg),
                codecs,
                resolution: Some((u32::from(v.width), u32::from(v.height))),
                frame_rate: Some(v.frame_rate).filter(|r| *r > 0.0),
                audio_group: audio_info.as_ref().map(|_| "audio".to_string()),
                subtitles_group: None,
                uri: format!("index_{}_v.m3u8{suffix}", r.i),
            });
        }
        let any_video = fs.renditions.iter().any(|r| r.video.is_some());
        if !any_video {
            // Audio only: the audio playlist is the variant.
            media.clear();
            if let Some((i, t, peak, avg)) = audio_info {
                variants.push(VariantStream {
                    bandwidth: peak,
                    average_bandwidth: Some(avg),
                    codecs: vec![t.codec_string.clone()],
                    resolution: None,
                    frame_rate: None,
                    audio_group: None,
                    subtitles_group: None,
                    uri: format!("index_{i}_a.m3u8{suffix}"),
                });
            }
        }
        if variants.is_empty() {
            return Err(VodError::NoRendition(set.files.join(",")));
        }
        variants.sort_by_key(|v| v.bandwidth);
        let subtitles = self.subtitle_media(files, suffix).await?;
        if !subtitles.is_empty() {
            for v in &mut variants {
                v.subtitles_group = Some("subs".into());
            }
        }
        media.extend(subtitles);
        let pl = MultivariantPlaylist {
            version: 7,
            independent_segments: true,
            media,
            variants,
            iframe_streams,
        };
        Ok(Bytes::from(pl.to_string()))
    }

    /// The static MPD: one video AdaptationSet with every rendition's video track, one audio
    /// AdaptationSet with the offered audio track ([`dash::write_mpd`]).
    async fn dash_manifest(
        &self,
        set: &AssetSet,
        files: &[Option<SourceFile>],
        opts: &Options,
        clip: Clip,
        suffix: &str,
    ) -> Result<Bytes, VodError> {
        let fs = self.fmp4_renditions(set, files, clip).await?;
        let audio_avg = fs.offered_audio().first().map_or(0, |a| a.avg);
        let mut sets = Vec::new();
        let mut video_reps = Vec::new();
        for r in &fs.renditions {
            let (Some(v), Some(tl)) = (r.asset.index.video.as_ref(), r.video.as_ref()) else {
                continue;
            };
            let (peak, avg) = rates(tl, v.timescale);
            if !opts.accepts_bitrate(avg + audio_avg) {
                continue;
            }
            video_reps.push(dash::DashRepresentation {
                id: format!("v{}", r.i),
                bandwidth: peak,
                codecs: v.codec_string.clone(),
                size: Some((u32::from(v.width), u32::from(v.height))),
                frame_rate: dash::frame_rate(v.frame_rate),
                audio: None,
                timescale: v.timescale,
                presentation_time_offset: 0,
                initialization: format!("init_{}_v.mp4{suffix}", r.i),
                media: format!("segment$Number$_{}_v.m4s{suffix}", r.i),
                timeline: tl.clone(),
            });
        }
        let any_video = fs.renditions.iter().any(|r| r.video.is_some());
        if any_video && video_reps.is_empty() {
            return Err(VodError::NoRendition(set.files.join(",")));
        }
        video_reps.sort_by_key(|r| r.bandwidth);
        if !video_reps.is_empty() {
            sets.push(dash::DashAdaptationSet {
                content_type: "video",
                lang: None,
                label: None,
                main: true,
                representations: video_reps,
            });
        }
        for (k, a) in fs.offered_audio().iter().enumerate() {
            let t = a.track;
            let channels = match t.codec {
                codec::Codec::Aac { channels, .. } => channels,
                _ => 2,
            };
            let m = a.media.suffix();
            sets.push(dash::DashAdaptationSet {
                content_type: "audio",
                lang: track_language(t),
                label: Some(track_label(t)),
                main: k == 0,
                representations: vec![dash::DashRepresentation {
                    id: format!("{m}{}", a.i),
                    bandwidth: a.peak,
                    codecs: t.codec_string.clone(),
                    size: None,
                    frame_rate: None,
                    audio: Some((t.timescale, channels)),
                    timescale: t.timescale,
                    presentation_time_offset: 0,
                    initialization: format!("init_{}_{m}.mp4{suffix}", a.i),
                    media: format!("segment$Number$_{}_{m}.m4s{suffix}", a.i),
                    timeline: a.timeline.to_vec(),
                }],
            });
        }
        if sets.is_empty() {
            return Err(VodError::NoRendition(set.files.join(",")));
        }
        // The Period starts at the earliest media of any representation (a file without
        // an edit list may start its video a B-frame delay after 0): one instant, each
        // representation's presentationTimeOffset in its own timescale.
        let start_90k = sets
            .iter()
            .flat_map(|s| &s.representations)
            .filter_map(|r| {
                let t0 = r.timeline.first()?.start;
                Some(segment::to_90k(t0, r.timescale))
            })
            .min();
        if let Some(start_90k) = start_90k {
            for r in sets.iter_mut().flat_map(|s| &mut s.representations) {
                r.presentation_time_offset = fmp4::origin_ticks(start_90k, r.timescale)
                    .min(r.timeline.first().map_or(i64::MAX, |e| e.start));
            }
        }
        let duration_ms = fs
            .renditions
            .iter()
            .map(|r| r.plan.durations_ms().sum::<u64>())
            .max()
            .unwrap_or(0);
        let texts: Vec<dash::DashTextSet> = self
            .subtitle_media(files, suffix)
            .await?
            .into_iter()
            .filter_map(|m| {
                Some(dash::DashTextSet {
                    lang: m.language,
                    label: m.name,
                    url: m.uri?.replacen(".m3u8", ".vtt", 1),
                })
            })
            .collect();
        Ok(Bytes::from(dash::write_mpd(duration_ms, &sets, &texts)))
    }

    /// The plan of a variant: cached without a clip window, else computed on a blocking
    /// thread (a linear scan of the reference track).
    async fn plan(
        &self,
        asset: &Arc<Asset>,
        variant: Variant,
        clip: Clip,
        f: &SourceFile,
    ) -> Result<Arc<Plan>, VodError> {
        let wrap = |source| VodError::Plan {
            asset: f.rel.clone(),
            source,
        };
        if clip == Clip::default() {
            return match variant {
                Variant::Av => asset.av.clone(),
                Variant::Audio => asset.audio.clone(),
            }
            .map_err(wrap);
        }
        let a = asset.clone();
        let d = self.segment_duration;
        tokio::task::spawn_blocking(move || segment::plan(&a.index, variant, d, clip))
            .await
            .map_err(|e| VodError::Internal(e.to_string()))?
            .map(Arc::new)
            .map_err(wrap)
    }

    /// The cached index of `f`, built once per (path, identity) even under concurrency.
    async fn asset(&self, f: &SourceFile) -> IndexResult {
        let key = format!("{}\n{}", f.rel, f.identity);
        self.indexes
            .try_get_with(key, self.build_asset(f))
            .await
            .map_err(|e| clone_error(&e))
    }

    async fn build_asset(&self, f: &SourceFile) -> IndexResult {
        let moov = self.read_moov(f).await?;
        // A fragmented file's samples are in its moof boxes: read them only then.
        let fragmented = index::has_mvex(&moov);
        let moofs = if fragmented {
            self.read_moofs(f).await?
        } else {
            Vec::new()
        };
        let size = f.size;
        let d = self.segment_duration;
        let asset = tokio::task::spawn_blocking(move || {
            let index = if fragmented {
                index::index_fragmented(&moov, &moofs, size)?
            } else {
                index::index_moov(&moov, size)?
            };
            let av = segment::plan(&index, Variant::Av, d, Clip::default()).map(Arc::new);
            let audio = segment::plan(&index, Variant::Audio, d, Clip::default()).map(Arc::new);
            Ok::<_, IndexError>(Asset { index, av, audio })
        })
        .await
        .map_err(|e| VodError::Internal(e.to_string()))?
        .map_err(|source| {
            tracing::warn!(asset = %f.rel, error = %source, "cannot index");
            VodError::Index {
                asset: f.rel.clone(),
                source: Arc::new(source),
            }
        })?;
        Ok(Arc::new(asset))
    }

    /// Every top-level `moof` of a fragmented file, in file order (each at most
    /// [`crate::cmaf::scan::MAX_MOOF_BYTES`], all together at most [`MAX_MOOV_BYTES`]).
    async fn read_moofs(&self, f: &SourceFile) -> Result<Vec<index::MoofBox>, VodError> {
        let bad = |offset: u64, reason: String| VodError::NoMoov {
            asset: f.rel.clone(),
            offset,
            reason,
        };
        let src_err = |source| VodError::Source {
            asset: f.rel.clone(),
            source,
        };
        let mut out = Vec::new();
        let mut total: u64 = 0;
        let mut pos: u64 = 0;
        while pos + 8 <= f.size {
            let end = (pos + 16).min(f.size);
            let hdr = self.source.read(f, pos..end).await.map_err(src_err)?;
            let (kind, hlen, size) =
                index::box_header(&hdr).ok_or_else(|| bad(pos, "truncated box header".into()))?;
            let size = size.unwrap_or(f.size - pos);
            if size < hlen || pos.checked_add(size).is_none_or(|e| e > f.size) {
                // A cut-off last box (an interrupted recording): index what is whole.
                tracing::debug!(asset = %f.rel, offset = pos, "box overruns the file; fragments end here");
                break;
            }
            if &kind == b"moof" {
                if size > crate::cmaf::scan::MAX_MOOF_BYTES {
                    return Err(bad(pos, format!("moof of {size} bytes is too large")));
                }
                total += size;
                if total > MAX_MOOV_BYTES {
                    return Err(bad(
                        pos,
                        format!("fragment headers over {MAX_MOOV_BYTES} bytes"),
                    ));
                }
                let moof = self
                    .source
                    .read(f, pos..pos + size)
                    .await
                    .map_err(src_err)?;
                out.push((pos, moof));
            }
            pos += size;
        }
        Ok(out)
    }

    /// Finds the top-level `moov` wherever it is (faststart or at the end) and reads it.
    async fn read_moov(&self, f: &SourceFile) -> Result<Bytes, VodError> {
        let no_moov = |offset: u64, reason: String| VodError::NoMoov {
            asset: f.rel.clone(),
            offset,
            reason,
        };
        let src_err = |source| VodError::Source {
            asset: f.rel.clone(),
            source,
        };
        let head_len = f.size.min(64 * 1024);
        let head = self.source.read(f, 0..head_len).await.map_err(src_err)?;
        let mut pos: u64 = 0;
        for _ in 0..100_000 {
            if pos >= f.size {
                break;
            }
            let in_head = pos + 16 <= head_len || (pos < head_len && head_len == f.size);
            let hdr_bytes = if in_head {
                head.slice(pos as usize..head_len as usize)
            } else {
                let end = (pos + 16).min(f.size);
                self.source.read(f, pos..end).await.map_err(src_err)?
            };
            let (kind, hlen, size) = index::box_header(&hdr_bytes)
                .ok_or_else(|| no_moov(pos, "truncated box header".into()))?;
            let size = size.unwrap_or(f.size - pos);
            if size < hlen || pos.checked_add(size).is_none_or(|e| e > f.size) {
                return Err(no_moov(
                    pos,
                    format!(
                        "box {} of {size} bytes overruns the file of {}",
                        String::from_utf8_lossy(&kind),
                        f.size
                    ),
                ));
            }
            match &kind {
                b"moov" => {
                    if size > MAX_MOOV_BYTES {
                        return Err(no_moov(pos, format!("moov of {size} bytes is too large")));
                    }
                    if pos + size <= head_len {
                        return Ok(head.slice(pos as usize..(pos + size) as usize));
                    }
                    return self.source.read(f, pos..pos + size).await.map_err(src_err);
                }
                b"moof" => {
                    return Err(VodError::Index {
                        asset: f.rel.clone(),
                        source: Arc::new(IndexError::Fragmented),
                    })
                }
                _ => pos += size,
            }
        }
        Err(no_moov(pos, "no moov box".into()))
    }

    /// The media playlist of one track of rendition `index` alone, on the audio + video
    /// `plan`'s segment boundaries with the track's own durations: CMAF fragments
    /// (`EXT-X-MAP` to `init_<i>_<m>.mp4`) for `/cmaf/`, MPEG-TS (`segment<N>_<i>_<m>.ts`)
    /// for `/i/`.
    fn track_playlist(
        &self,
        format: Format,
        index: usize,
        media: Media,
        t: &Track,
        plan: &Plan,
        suffix: &str,
    ) -> Bytes {
        let m = media.suffix();
        let fmp4 = format != Format::Ts;
        let tl = fmp4::timeline(t, plan, media);
        let ms = fmp4::durations_ms(&tl, t.timescale);
        let ext = if fmp4 { "m4s" } else { "ts" };
        let pl = MediaPlaylist {
            version: if fmp4 { 7 } else { 3 },
            playlist_type: Some(PlaylistType::Vod),
            media_sequence: 1,
            independent_segments: true,
            map_uri: fmp4.then(|| format!("init_{index}_{m}.mp4{suffix}")),
            segments: tl
                .iter()
                .zip(ms)
                .map(|(e, duration_ms)| MediaSegment {
                    duration_ms,
                    uri: format!("segment{}_{index}_{m}.{ext}{suffix}", e.number),
                    key: self.key_line(format, index, e.number, suffix),
                    ..Default::default()
                })
                .collect(),
            end_list: true,
            ..Default::default()
        };
        Bytes::from(pl.to_string())
    }

    /// `EXT-X-MEDIA:TYPE=SUBTITLES` entries of group `subs` (RFC 8216bis §4.4.6.1) for the
    /// subtitle tracks of the first file of the set that exists, and that file's index.
    async fn subtitle_media(
        &self,
        files: &[Option<SourceFile>],
        suffix: &str,
    ) -> Result<Vec<AlternativeMedia>, VodError> {
        let Some((i, f)) = files
            .iter()
            .enumerate()
            .find_map(|(i, f)| Some((i, f.as_ref()?)))
        else {
            return Ok(Vec::new());
        };
        let asset = self.asset(f).await?;
        let tracks = self.subtitle_tracks(f, &asset.index).await;
        let names = unique_names(tracks.iter().map(|t| t.name.clone()));
        Ok(tracks
            .into_iter()
            .zip(names)
            .enumerate()
            .map(|(k, (t, name))| AlternativeMedia {
                media_type: "SUBTITLES",
                group_id: "subs".into(),
                name,
                language: t.language,
                default: false,
                uri: Some(format!("subs_{i}_{k}.m3u8{suffix}")),
            })
            .collect())
    }

    /// The subtitle tracks of `f`: its WebVTT sidecars by language, then its `tx3g`
    /// tracks in file order (the `k` of `subs_<i>_<k>`).
    async fn subtitle_tracks(&self, f: &SourceFile, index: &MovieIndex) -> Vec<SubtitleTrack> {
        let mut tracks: Vec<SubtitleTrack> = self
            .source
            .sidecars(&f.rel)
            .await
            .into_iter()
            .map(|(language, rel)| SubtitleTrack {
                name: language.clone(),
                language: Some(language),
                source: SubtitleSource::Sidecar(rel),
            })
            .collect();
        for (k, t) in index.texts.iter().enumerate() {
            let language = text_language(&t.language);
            let n = t.name.trim();
            let generic = n.is_empty() || n.ends_with("Handler") || n.contains('"') || n.len() > 64;
            tracks.push(SubtitleTrack {
                name: if generic {
                    language
                        .clone()
                        .unwrap_or_else(|| format!("subtitles {}", k + 1))
                } else {
                    n.to_string()
                },
                language,
                source: SubtitleSource::Text(k),
            });
        }
        tracks
    }

    /// Subtitle track `k` of `f`, or a 404 naming how many there are.
    async fn subtitle_track(
        &self,
        f: &SourceFile,
        index: &MovieIndex,
        k: usize,
    ) -> Result<SubtitleTrack, VodError> {
        let mut tracks = self.subtitle_tracks(f, index).await;
        if k >= tracks.len() {
            return Err(VodError::Route(RouteError::NotFound(format!(
                "subtitle track {k} of {} ({} offered)",
                f.rel,
                tracks.len()
            ))));
        }
        Ok(tracks.swap_remove(k))
    }

    /// The cues of subtitle track `k` of `f`, in milliseconds from `origin_90k` (the plan's
    /// origin, 90 kHz presentation time: 0, or the clip start), sorted by start.
    ///
    /// Errors: a missing track (404), an unreadable sidecar or timed text track, a sidecar
    /// over [`webvtt::MAX_VTT_BYTES`] or not WebVTT ([`VodError::Subtitle`]).
    async fn cues(
        &self,
        f: &SourceFile,
        index: &MovieIndex,
        k: usize,
        origin_90k: i64,
    ) -> Result<Vec<webvtt::Cue>, VodError> {
        let track = self.subtitle_track(f, index, k).await?;
        let mut cues = match &track.source {
            SubtitleSource::Sidecar(rel) => {
                let source_err = |source| VodError::Source {
                    asset: rel.clone(),
                    source,
                };
                let sf = self.source.open(rel).await.map_err(source_err)?;
                if sf.size > webvtt::MAX_VTT_BYTES as u64 {
                    return Err(VodError::Subtitle {
                        asset: rel.clone(),
                        source: webvtt::VttError::TooLarge {
                            bytes: usize::try_from(sf.size).unwrap_or(usize::MAX),
                        },
                    });
                }
                let bytes = self
                    .source
                    .read(&sf, 0..sf.size)
                    .await
                    .map_err(source_err)?;
                webvtt::parse(&bytes).map_err(|source| VodError::Subtitle {
                    asset: rel.clone(),
                    source,
                })?
            }
            SubtitleSource::Text(t) => {
                let t = index
                    .texts
                    .get(*t)
                    .ok_or_else(|| VodError::Internal("text track index".into()))?;
                if t.samples.len() > webvtt::MAX_CUES {
                    return Err(VodError::Subtitle {
                        asset: f.rel.clone(),
                        source: webvtt::VttError::TooManyCues,
                    });
                }
                let ms =
                    |ticks: i64| (i128::from(ticks) * 1000 / i128::from(t.timescale.max(1))) as i64;
                let mut cues = Vec::new();
                for (i, s) in t.samples.iter().enumerate() {
                    let Some((start, end)) = t.span(i) else {
                        continue;
                    };
                    if s.size < 2 {
                        continue;
                    }
                    let data = self
                        .source
                        .read(f, s.offset..s.offset + u64::from(s.size))
                        .await
                        .map_err(|source| VodError::Source {
                            asset: f.rel.clone(),
                            source,
                        })?;
                    cues.extend(webvtt::tx3g_cue(&data, ms(start), ms(end)));
                }
                cues
            }
        };
        let origin_ms = origin_90k.div_euclid(90);
        for c in &mut cues {
            c.start_ms = c.start_ms.saturating_sub(origin_ms);
            c.end_ms = c.end_ms.saturating_sub(origin_ms);
        }
        Ok(cues)
    }

    async fn read_samples(
        &self,
        f: &SourceFile,
        index: &MovieIndex,
        seg: &segment::SegmentPlan,
    ) -> Result<Vec<(u64, Bytes)>, VodError> {
        let ranges = segment::byte_ranges(index, seg, READ_GAP);
        let mut chunks = Vec::with_capacity(ranges.len());
        for r in ranges {
            let start = r.start;
            match self.source.read(f, r).await {
                Ok(bytes) => chunks.push((start, bytes)),
                Err(source) => {
                    if matches!(source, SourceError::Changed { .. }) {
                        tracing::warn!(asset = %f.rel, error = %source, "source changed");
                        self.source.invalidate(&f.rel).await;
                    }
                    return Err(VodError::Source {
                        asset: f.rel.clone(),
                        source,
                    });
                }
            }
        }
        Ok(chunks)
    }
}

/// A packaged segment as served: encrypted when `cipher` is set (the clear buffer goes
/// back to the pool).
fn seal(out: Vec<u8>, cipher: Option<([u8; 16], [u8; 16])>) -> Bytes {
    match cipher {
        Some((key, iv)) => {
            let sealed = keys::encrypt(&key, &iv, &out);
            drop(pool::into_bytes(out));
            Bytes::from(sealed)
        }
        None => pool::into_bytes(out),
    }
}

/// One I-frame of an I-frame playlist (RFC 8216bis §4.4.3.6): keyframe `k` (0-based) of
/// segment `number` (1-based), shown for `ms` milliseconds (until the next keyframe's
/// presentation time, the last until the video's end), served as a resource of `bytes`
/// bytes (TS: an estimate that is never short; fMP4: exact).
struct IFrame {
    number: u32,
    k: usize,
    ms: u64,
    bytes: u64,
}

/// Every keyframe of a rendition's video under `plan`, in order, as the
/// [`Route::IFrame`] resources of its I-frame playlist (`fmp4`: CMAF fragments, else TS).
/// Keyframes presented at or after the plan's end are left out; the first is shown from
/// the first segment's start, like the media playlists (a cut's pre-roll keyframe is
/// presented before it). Durations are whole milliseconds between the keyframes'
/// presentation times, rounded like the media playlists' EXTINF, so both sum alike.
fn iframes(index: &MovieIndex, plan: &Plan, fmp4: bool) -> Vec<IFrame> {
    let Some(v) = index.video.as_ref() else {
        return Vec::new();
    };
    let (Some(first), Some(last)) = (plan.segments.first(), plan.segments.last()) else {
        return Vec::new();
    };
    // Milliseconds from the first segment's start (where the media playlists start) of a
    // presentation time in 90 kHz ticks, rounded on the absolute timeline as
    // `Plan::durations_ms` rounds, so the I-frames and the segments end together.
    let round = |t: i64| i128::from(t.saturating_mul(10).saturating_add(450).div_euclid(900));
    let ms = |pt_90k: i64| (round(pt_90k) - round(first.start)).max(0);
    let end = ms(last.start.saturating_add(last.duration));
    let mut frames: Vec<(IFrame, i128)> = Vec::new();
    for (j, seg) in plan.segments.iter().enumerate() {
        let keyframes = seg.video.clone().filter(|&i| v.samples[i].sync);
        for (k, i) in keyframes.enumerate() {
            // The first I-frame is shown from the start.
            let at = if frames.is_empty() {
                0
            } else {
                ms(segment::to_90k(v.pt(i), v.timescale))
            };
            if at >= end || frames.last().is_some_and(|(_, prev)| at <= *prev) {
                continue;
            }
            let bytes = if fmp4 {
                fmp4::fragment_len(v, &(i..i + 1))
            } else {
                segment::keyframe_bytes(index, i)
            };
            let number = j as u32 + 1;
            frames.push((
                IFrame {
                    number,
                    k,
                    ms: 0,
                    bytes,
                },
                at,
            ));
        }
    }
    let starts: Vec<i128> = frames.iter().map(|(_, at)| *at).collect();
    frames
        .into_iter()
        .enumerate()
        .map(|(n, (mut f, at))| {
            let next = starts.get(n + 1).copied().unwrap_or(end);
            f.ms = u64::try_from(next - at).unwrap_or(0).max(1);
            f
        })
        .collect()
}

/// Peak bit rate of an I-frame playlist: an I-frame's bytes over the time it is shown.
fn iframe_peak_bps(frames: &[IFrame]) -> u64 {
    frames
        .iter()
        .map(|f| f.bytes.saturating_mul(8000) / f.ms.max(100))
        .max()
        .unwrap_or(0)
}

/// The renditions of a set for the fMP4 manifests (see `Vod::fmp4_renditions`).
struct Fmp4Set {
    renditions: Vec<Fmp4Rendition>,
    /// Position in `renditions` of the one whose audio is offered.
    audio: Option<usize>,
}

struct Fmp4Rendition {
    /// Position in the URL's comma list.
    i: usize,
    asset: Arc<Asset>,
    plan: Arc<Plan>,
    video: Option<Vec<fmp4::TimelineEntry>>,
    audio: Option<Vec<fmp4::TimelineEntry>>,
    /// Timelines of `asset.index.alternates`, in order.
    alternates: Vec<Vec<fmp4::TimelineEntry>>,
}

/// An audio track the fMP4 manifests offer.
struct OfferedAudio<'a> {
    /// Position of its rendition in the URL's comma list.
    i: usize,
    media: Media,
    track: &'a Track,
    timeline: &'a [fmp4::TimelineEntry],
    peak: u64,
    avg: u64,
}

impl Fmp4Set {
    /// The audio tracks offered: every audio track (first, then the others in file order)
    /// of the rendition picked for audio; each with samples in the window.
    fn offered_audio(&self) -> Vec<OfferedAudio<'_>> {
        let Some(r) = self.audio.map(|k| &self.renditions[k]) else {
            return Vec::new();
        };
        let idx = &r.asset.index;
        let main = idx
            .audio
            .as_ref()
            .zip(r.audio.as_deref())
            .map(|(t, tl)| (Media::Audio, t, tl));
        let others = idx
            .alternates
            .iter()
            .zip(&r.alternates)
            .enumerate()
            .map(|(k, (t, tl))| (Media::AltAudio(k as u8 + 1), t, tl.as_slice()));
        main.into_iter()
            .chain(others)
            .filter(|(_, _, tl)| !tl.is_empty())
            .map(|(media, track, timeline)| {
                let (peak, avg) = rates(timeline, track.timescale);
                OfferedAudio {
                    i: r.i,
                    media,
                    track,
                    timeline,
                    peak,
                    avg,
                }
            })
            .collect()
    }
}

/// (peak, average) bit rate in bit/s of a timeline whose times are in `timescale` ticks;
/// a segment counts at least 0.1 s.
fn rates(tl: &[fmp4::TimelineEntry], timescale: u32) -> (u64, u64) {
    let ts = u128::from(timescale.max(1));
    let bps = |bytes: u64, ticks: i64| -> u64 {
        let ticks = (ticks.max(0) as u128).max(ts / 10).max(1);
        (u128::from(bytes) * 8 * ts / ticks).min(u128::from(u64::MAX)) as u64
    };
    let peak = tl
        .iter()
        .map(|e| bps(e.bytes, e.duration))
        .max()
        .unwrap_or(0);
    let bytes = tl.iter().fold(0u64, |a, e| a.saturating_add(e.bytes));
    let ticks = tl.iter().fold(0i64, |a, e| a.saturating_add(e.duration));
    (peak, bps(bytes, ticks))
}

/// The only file a non-master route reads.
fn first_file(files: &[Option<SourceFile>]) -> Result<&SourceFile, VodError> {
    files
        .first()
        .and_then(Option::as_ref)
        .ok_or_else(|| VodError::Internal("no file".into()))
}

/// The video or audio track of an index, or [`VodError::Plan`] naming the missing one.
fn track_of<'a>(
    index: &'a MovieIndex,
    media: Media,
    f: &SourceFile,
) -> Result<&'a Track, VodError> {
    let name = if media.is_audio() { "audio" } else { "video" };
    index_track(index, media).ok_or_else(|| VodError::Plan {
        asset: f.rel.clone(),
        source: PlanError::MissingTrack(name),
    })
}

/// The track `media` names in `index`, if the file has it.
fn index_track(index: &MovieIndex, media: Media) -> Option<&Track> {
    match media {
        Media::Video => index.video.as_ref(),
        Media::Audio => index.audio.as_ref(),
        Media::AltAudio(k) => index.alternates.get(usize::from(k).checked_sub(1)?),
    }
}

/// Segment `number` (1-based) of `plan` for file `f`.
///
/// Errors: [`VodError::NoSegment`] (404) past the plan's last segment or for 0.
fn plan_segment<'p>(
    plan: &'p Plan,
    f: &SourceFile,
    number: u32,
) -> Result<&'p SegmentPlan, VodError> {
    (number as usize)
        .checked_sub(1)
        .and_then(|j| plan.segments.get(j))
        .ok_or_else(|| VodError::NoSegment {
            asset: f.rel.clone(),
            number,
            count: plan.segments.len(),
        })
}

/// [`index_track`] for a muxer: a missing track is a [`segment::MuxError`] naming it.
fn mux_track(index: &MovieIndex, media: Media) -> Result<&Track, segment::MuxError> {
    index_track(index, media).ok_or_else(|| segment::MuxError {
        track_id: 0,
        sample: 0,
        offset: 0,
        reason: format!("no {media:?} track"),
    })
}

/// NAMEs unique within an `EXT-X-MEDIA` group (RFC 8216bis §4.4.6.1: NAME must differ
/// within a group): a name already taken gets its 1-based position appended.
fn unique_names(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (k, name) in names.into_iter().enumerate() {
        let name = if out.contains(&name) {
            format!("{name} {}", k + 1)
        } else {
            name
        };
        out.push(name);
    }
    out
}

/// One subtitle track offered for a file.
#[derive(Debug, Clone)]
struct SubtitleTrack {
    /// LANGUAGE / `@lang`: the sidecar's tag as named, or the `mdhd` code.
    language: Option<String>,
    /// NAME / `Label`.
    name: String,
    /// Where the cues come from.
    source: SubtitleSource,
}

/// Where a subtitle track's cues come from.
#[derive(Debug, Clone)]
enum SubtitleSource {
    /// A WebVTT sidecar (relative path under the media root).
    Sidecar(String),
    /// `MovieIndex::texts[k]`.
    Text(usize),
}

/// An `mdhd` language (ISO 639-2/T, ISO/IEC 14496-12 §8.4.2.3) as an RFC 5646 tag, for
/// LANGUAGE (RFC 8216bis §4.4.6.1) and `@lang`: the ISO 639-1 code where one exists
/// (`eng` -> `en`, `fra` -> `fr`), else the three letters (`haw`); `None` when unset (`und`)
/// or not letters.
fn text_language(code: &str) -> Option<String> {
    let l = code.trim();
    if l.is_empty() || l == "und" || !l.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let l = l.to_ascii_lowercase();
    Some(
        isolang::Language::from_639_3(&l)
            .and_then(|lang| lang.to_639_1())
            .map_or(l, str::to_string),
    )
}

/// The `mdhd` language of a track as an RFC 5646 tag ([`text_language`]).
fn track_language(t: &Track) -> Option<String> {
    text_language(&t.language)
}

/// A human name for a track: its `hdlr` name unless it is a muxer's default, else the
/// language, else `audio`.
fn track_label(t: &Track) -> String {
    let n = t.name.trim();
    let generic = n.is_empty() || n.ends_with("Handler") || n.starts_with("Core Media");
    if !generic && !n.contains('"') && n.len() <= 64 {
        return n.to_string();
    }
    track_language(t).unwrap_or_else(|| "audio".into())
}

/// Errors shared through the caches are behind an `Arc`; rebuild an owned one that keeps
/// the message and the kind.
fn clone_error(e: &VodError) -> VodError {
    match e {
        VodError::Route(r) => VodError::Route(r.clone()),
        VodError::Index { asset, source } => VodError::Index {
            asset: asset.clone(),
            source: source.clone(),
        },
        VodError::Source { asset, source } => VodError::Source {
            asset: asset.clone(),
            source: match source {
                SourceError::NotFound(p) => SourceError::NotFound(p.clone()),
                SourceError::Forbidden(p) => SourceError::Forbidden(p.clone()),
                SourceError::Io { path, source } => SourceError::Io {
                    path: path.clone(),
                    source: std::io::Error::new(source.kind(), source.to_string()),
                },
                SourceError::Upstream { url, reason } => SourceError::Upstream {
                    url: url.clone(),
                    reason: reason.clone(),
                },
                SourceError::Changed { url, reason } => SourceError::Changed {
                    url: url.clone(),
                    reason: reason.clone(),
                },
            },
        },
        VodError::NoMoov {
            asset,
            offset,
            reason,
        } => VodError::NoMoov {
            asset: asset.clone(),
            offset: *offset,
            reason: reason.clone(),
        },
        VodError::Plan { asset, source } => VodError::Plan {
            asset: asset.clone(),
            source: source.clone(),
        },
        VodError::NoSegment {
            asset,
            number,
            count,
        } => VodError::NoSegment {
            asset: asset.clone(),
            number: *number,
            count: *count,
        },
        VodError::NoRendition(s) => VodError::NoRendition(s.clone()),
        VodError::Mux { asset, source } => VodError::Mux {
            asset: asset.clone(),
            source: source.clone(),
        },
        VodError::Subtitle { asset, source } => VodError::Subtitle {
            asset: asset.clone(),
            source: source.clone(),
        },
        VodError::Config(s) => VodError::Config(s.clone()),
        VodError::Internal(s) => VodError::Internal(s.clone()),
    }
}
