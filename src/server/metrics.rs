//! Prometheus metrics of the origin, served by the API listener at `/metrics`.
//!
//! Encoded by the `prometheus-client` crate (OpenMetrics 1.0 text, which Prometheus
//! negotiates; `promtool check metrics` reads it). Labels are bounded: stream names (the
//! pushed folders), representation ids, listener, request kind, status class, result. No
//! label carries a client address, a session, a token or a segment number (label
//! cardinality is what overwhelms a Prometheus: ossrs/srs#3141).
//!
//! Times are seconds (Prometheus base units), sizes bytes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use dashmap::DashMap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// `{stream}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    /// The stream's folder (`live/cam1`).
    pub stream: String,
}

/// `{stream, result}` of ingested bytes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestBytesLabels {
    /// The stream's folder (see [`Metrics::stream_label`]).
    pub stream: String,
    /// `ok`, `truncated` or `rejected`.
    pub result: &'static str,
}

/// Distinct `stream` label values kept; later streams are counted as `_other`.
pub const MAX_STREAM_LABELS: usize = 1000;

/// `{stream, representation}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepLabels {
    /// The stream's folder.
    pub stream: String,
    /// The DASH Representation id.
    pub representation: String,
}

/// `{stream, kind, result}` of an ingested object.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabels {
    /// The stream's folder.
    pub stream: String,
    /// `init`, `segment`, `manifest` or `other`.
    pub kind: &'static str,
    /// `ok`, `truncated` (cut before its end) or `rejected` (refused).
    pub result: &'static str,
}

/// `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why.
    pub reason: &'static str,
}

/// `{listener, kind, code_class}` of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `ingest`, `egress` or `api`.
    pub listener: &'static str,
    /// See [`RequestKind`].
    pub kind: &'static str,
    /// `2xx`, `3xx`, `4xx`, `5xx`.
    pub code_class: &'static str,
}

/// `{listener, kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `ingest`, `egress` or `api`.
    pub listener: &'static str,
    /// See [`RequestKind`].
    pub kind: &'static str,
}

/// `{listener}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// `ingest`, `egress` or `api`.
    pub listener: &'static str,
}

/// `{listener, reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// `ingest`, `egress` or `api`.
    pub listener: &'static str,
    /// `max_connections`, `max_connections_per_ip`, `timeout` (no first byte or TLS
    /// handshake in time), `tls`.
    pub reason: &'static str,
}

/// `{result}` of a blocking reload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ready`, `timeout` (503 after the block limit), `bad_request`, `over_cap`,
    /// `draining`.
    pub result: &'static str,
}

/// `{kind}` of a held request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeldLabels {
    /// `reload` (blocking playlist reload or held part) or `edge` (next live segment).
    pub kind: &'static str,
}

fn ttfb_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn wait_histogram() -> Histogram {
    // 10 ms .. ~20 s.
    Histogram::new(exponential_buckets(0.01, 2.0, 12))
}

/// Every metric family of the origin.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Body bytes received by ingest.
    pub ingest_bytes: Family<IngestBytesLabels, Counter>,
    /// The stream label values given out so far.
    stream_labels: dashmap::DashSet<String>,
    /// Objects ended at ingest.
    pub ingest_objects: Family<IngestLabels, Counter>,
    /// Refused ingest credentials.
    pub ingest_auth_failures: Family<ReasonLabels, Counter>,
    /// Refused playback requests.
    pub playback_auth_failures: Family<ReasonLabels, Counter>,
    /// Requests answered.
    pub http_requests: Family<RequestLabels, Counter>,
    /// Response body bytes sent.
    pub http_response_bytes: Family<KindLabels, Counter>,
    /// Time from the request head to the response head, seconds.
    pub http_ttfb: Family<KindLabels, Histogram, fn() -> Histogram>,
    /// How long blocking reloads and held parts waited, seconds.
    pub blocking_wait: Histogram,
    /// How blocking reloads ended.
    pub blocking_outcome: Family<OutcomeLabels, Counter>,
    /// Requests waiting now.
    pub held: Family<HeldLabels, Gauge>,
    /// Open connections.
    pub connections: Family<ListenerLabels, Gauge>,
    /// Connections closed at accept.
    pub connections_refused: Family<RefusalLabels, Counter>,
    /// Persistence writes not finished yet.
    pub persist_queue: Gauge,
    /// Failed persistence writes.
    pub persist_errors: Counter,
    /// Start instants of the writes in flight (id -> start), for the lag.
    persist_started: DashMap<u64, Instant>,
    persist_next: AtomicU64,
    /// When each representation's last segment completed.
    edges: DashMap<(String, String), SystemTime>,
    /// Values read at scrape time (stream state, archive, disk).
    scraped: Mutex<Scraped>,
}

/// Values the `/metrics` handler reads from the rooms before encoding.
#[derive(Debug, Default, Clone)]
pub struct Scraped {
    /// Streams and whether each is live.
    pub streams: Vec<(String, bool)>,
    /// Archive bytes on disk, if the archive is on.
    pub archive_bytes: Option<u64>,
    /// Free bytes in the data dir's file system.
    pub disk_free_bytes: Option<u64>,
    /// Whether the origin is draining.
    pub draining: bool,
    /// Transcode jobs (queued, running), when the media library is on.
    pub library_jobs: Option<(u64, u64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("casterpak");
        let m = Metrics {
            registry: Registry::default(),
            ingest_bytes: Family::default(),
            stream_labels: dashmap::DashSet::new(),
            ingest_objects: Family::default(),
            ingest_auth_failures: Family::default(),
            playback_auth_failures: Family::default(),
            http_requests: Family::default(),
            http_response_bytes: Family::default(),
            http_ttfb: Family::new_with_constructor(ttfb_histogram as fn() -> Histogram),
            blocking_wait: wait_histogram(),
            blocking_outcome: Family::default(),
            held: Family::default(),
            connections: Family::default(),
            connections_refused: Family::default(),
            persist_queue: Gauge::default(),
            persist_errors: Counter::default(),
            persist_started: DashMap::new(),
            persist_next: AtomicU64::new(0),
            edges: DashMap::new(),
            scraped: Mutex::new(Scraped::default()),
        };
        registry.register(
            "ingest_bytes",
            "Body bytes received by ingest, by stream and result (ok, truncated, rejected)",
            m.ingest_bytes.clone(),
        );
        registry.register(
            "ingest_objects",
            "Uploads ended at ingest, by stream, object kind and result (ok, truncated, rejected)",
            m.ingest_objects.clone(),
        );
        registry.register(
            "ingest_auth_failures",
            "Pushes refused by ingest authentication, by reason",
            m.ingest_auth_failures.clone(),
        );
        registry.register(
            "playback_auth_failures",
            "Egress requests refused by playback authorization, by reason",
            m.playback_auth_failures.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by listener, kind and status class",
            m.http_requests.clone(),
        );
        registry.register(
            "http_response_bytes",
            "HTTP response body bytes sent, by listener and kind",
            m.http_response_bytes.clone(),
        );
        registry.register(
            "http_ttfb_seconds",
            "Seconds from a request head to its response head, by listener and kind",
            m.http_ttfb.clone(),
        );
        registry.register(
            "blocking_wait_seconds",
            "Seconds LL-HLS blocking reloads and held parts waited",
            m.blocking_wait.clone(),
        );
        registry.register(
            "blocking_outcome",
            "How LL-HLS blocking reloads and held parts ended",
            m.blocking_outcome.clone(),
        );
        registry.register(
            "held_requests",
            "Requests waiting now: blocking reloads and held parts (reload), requests for the next live segment (edge)",
            m.held.clone(),
        );
        registry.register(
            "connections",
            "Open connections, by listener",
            m.connections.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at accept, by listener and reason",
            m.connections_refused.clone(),
        );
        registry.register(
            "persist_queue",
            "Finished objects waiting to be written to the data dir",
            m.persist_queue.clone(),
        );
        registry.register(
            "persist_errors",
            "Failed writes to the data dir",
            m.persist_errors.clone(),
        );
        let mut m = m;
        m.registry = registry;
        m
    }

    /// The `stream` label of a stream folder: the folder itself for the first
    /// [`MAX_STREAM_LABELS`] streams seen, then `_other`, so that pushes to ever-new names
    /// cannot grow the series without bound.
    pub fn stream_label(&self, dir: &str) -> String {
        if self.stream_labels.contains(dir) {
            return dir.to_owned();
        }
        if self.stream_labels.len() < MAX_STREAM_LABELS {
            self.stream_labels.insert(dir.to_owned());
            return dir.to_owned();
        }
        "_other".to_owned()
    }

    /// Notes that a persistence write started; the returned id ends it.
    pub fn persist_begin(&self) -> u64 {
        let id = self.persist_next.fetch_add(1, Ordering::Relaxed);
        self.persist_started.insert(id, Instant::now());
        self.persist_queue.inc();
        id
    }

    /// Notes that the persistence write `id` ended.
    pub fn persist_end(&self, id: u64, ok: bool) {
        if self.persist_started.remove(&id).is_some() {
            self.persist_queue.dec();
        }
        if !ok {
            self.persist_errors.inc();
        }
    }

    /// Age of the oldest persistence write in flight (zero when none).
    pub fn persist_lag(&self) -> Duration {
        self.persist_started
            .iter()
            .map(|e| e.value().elapsed())
            .max()
            .unwrap_or_default()
    }

    /// Notes that a segment of `representation` in `stream` completed now.
    pub fn edge_advanced(&self, stream: &str, representation: &str) {
        self.edges.insert(
            (stream.to_owned(), representation.to_owned()),
            SystemTime::now(),
        );
    }

    /// Renders the classic Prometheus text format (0.0.4), which `promtool check metrics`
    /// reads: the OpenMetrics text with counter families named by their `_total` samples
    /// and no `# EOF`.
    pub fn render_classic(&self, scraped: Scraped) -> String {
        let om = self.render(scraped);
        let mut counters = std::collections::HashSet::new();
        for line in om.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                if let Some(name) = rest.strip_suffix(" counter") {
                    counters.insert(name.to_owned());
                }
            }
        }
        let mut out = String::with_capacity(om.len() + 1024);
        for line in om.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
                let rest = line.strip_prefix(prefix)?;
                let (name, tail) = rest.split_once(' ')?;
                counters
                    .contains(name)
                    .then(|| format!("{prefix}{name}_total {tail}"))
            });
            match renamed {
                Some(l) => out.push_str(&l),
                None => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }

    /// Renders the OpenMetrics text, after storing what the caller read from the rooms.
    pub fn render(&self, scraped: Scraped) -> String {
        // Edge ages of streams that ended are dropped (they would read as stalled).
        let live: std::collections::HashSet<&str> = scraped
            .streams
            .iter()
            .filter(|(_, live)| *live)
            .map(|(s, _)| s.as_str())
            .collect();
        self.edges.retain(|(s, _), _| live.contains(s.as_str()));
        if let Ok(mut s) = self.scraped.lock() {
            *s = scraped;
        }
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode_registry(&mut out, &self.registry).is_ok() {
            let mut rest = String::new();
            let mut reg = Registry::with_prefix("casterpak");
            // Collected per scrape; no state kept between scrapes.
            reg.register_collector(Box::new(self.snapshot()));
            let _ = prometheus_client::encoding::text::encode_registry(&mut rest, &reg);
            out.push_str(&rest);
            let mut proc = String::new();
            let mut preg = Registry::default();
            preg.register_collector(Box::new(Process));
            let _ = prometheus_client::encoding::text::encode_registry(&mut proc, &preg);
            out.push_str(&proc);
        }
        out.push_str("# EOF\n");
        out
    }
}

/// A snapshot of the values read at scrape time, owned so it can be a [`Collector`].
#[derive(Debug)]
struct DynamicOwned {
    scraped: Scraped,
    edges: Vec<(String, String, f64)>,
    persist_lag: f64,
}

impl Metrics {
    /// The values read at scrape time, owned so they can be a [`Collector`].
    fn snapshot(&self) -> DynamicOwned {
        let now = SystemTime::now();
        let mut edges: Vec<(String, String, f64)> = self
            .edges
            .iter()
            .map(|e| {
                let (s, r) = e.key();
                let age = now.duration_since(*e.value()).unwrap_or_default();
                (s.clone(), r.clone(), age.as_secs_f64())
            })
            .collect();
        edges.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        DynamicOwned {
            scraped: self.scraped.lock().map(|s| s.clone()).unwrap_or_default(),
            edges,
            persist_lag: self.persist_lag().as_secs_f64(),
        }
    }
}

impl Collector for DynamicOwned {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        {
            let g = ConstGauge::new(0i64);
            let mut fam = enc.encode_descriptor(
                "stream_live",
                "1 while a stream receives uploads, 0 once it ended (by stream)",
                None,
                g.metric_type(),
            )?;
            for (name, live) in &self.scraped.streams {
                let labels = StreamLabels {
                    stream: name.clone(),
                };
                ConstGauge::new(i64::from(*live)).encode(fam.encode_family(&labels)?)?;
            }
        }
        {
            let g = ConstGauge::new(0.0f64);
            let mut fam = enc.encode_descriptor(
                "live_edge_age_seconds",
                "Seconds since the last segment of a representation completed (alert on a stalled stream)",
                None,
                g.metric_type(),
            )?;
            for (stream, rep, age) in &self.edges {
                let labels = RepLabels {
                    stream: stream.clone(),
                    representation: rep.clone(),
                };
                ConstGauge::new(*age).encode(fam.encode_family(&labels)?)?;
            }
        }
        let g = ConstGauge::new(self.persist_lag);
        g.encode(enc.encode_descriptor(
            "persist_lag_seconds",
            "Age of the oldest write to the data dir not finished yet",
            None,
            g.metric_type(),
        )?)?;
        if let Some(b) = self.scraped.archive_bytes {
            let g = ConstGauge::new(b as i64);
            g.encode(enc.encode_descriptor(
                "archive_bytes",
                "Bytes of archived segments on disk",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Some(b) = self.scraped.disk_free_bytes {
            let g = ConstGauge::new(b as i64);
            g.encode(enc.encode_descriptor(
                "disk_free_bytes",
                "Free bytes in the data dir's file system",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Some((queued, running)) = self.scraped.library_jobs {
            let g = ConstGauge::new(0i64);
            let mut fam = enc.encode_descriptor(
                "library_jobs",
                "Transcode jobs of the media library by state (queued, running)",
                None,
                g.metric_type(),
            )?;
            for (state, n) in [("queued", queued), ("running", running)] {
                ConstGauge::new(n as i64).encode(fam.encode_family(&[("state", state)])?)?;
            }
        }
        let g = ConstGauge::new(i64::from(!self.scraped.draining));
        g.encode(enc.encode_descriptor(
            "ready",
            "1 while the origin takes new work, 0 while it drains",
            None,
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(1i64);
        let mut fam = enc.encode_descriptor(
            "build_info",
            "The running version and git commit",
            None,
            g.metric_type(),
        )?;
        g.encode(fam.encode_family(&[
            ("version", env!("CARGO_PKG_VERSION")),
            (
                "commit",
                option_env!("CASTERPAK_COMMIT").unwrap_or("unknown"),
            ),
        ])?)?;
        Ok(())
    }
}

/// `process_*` from `/proc/self` (Linux); nothing elsewhere.
#[derive(Debug)]
struct Process;

impl Collector for Process {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = read_proc() else {
            return Ok(());
        };
        let c = ConstCounter::new(p.cpu_secs);
        c.encode(enc.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, seconds",
            None,
            c.metric_type(),
        )?)?;
        let g = ConstGauge::new(p.rss_bytes as i64);
        g.encode(enc.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size, bytes",
            None,
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(p.open_fds as i64);
        g.encode(enc.encode_descriptor(
            "process_open_fds",
            "Open file descriptors",
            None,
            g.metric_type(),
        )?)?;
        Ok(())
    }
}

struct ProcStats {
    cpu_secs: f64,
    rss_bytes: u64,
    open_fds: u64,
}

fn read_proc() -> Option<ProcStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of proc(5), 11 and 12 here; rss is 24 (21).
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let rss_pages: u64 = f.get(21)?.parse().ok()?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(ProcStats {
        cpu_secs: (utime + stime) / ticks,
        rss_bytes: rss_pages * rustix::param::page_size() as u64,
        open_fds,
    })
}

/// The kind of an HTTP request, for metric labels and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// An MPD.
    Mpd,
    /// An HLS playlist.
    Playlist,
    /// An LL-HLS blocking playlist reload (`_HLS_msn`).
    BlockingPlaylist,
    /// An LL-HLS part.
    Part,
    /// A media segment.
    Segment,
    /// An init segment.
    Init,
    /// On-demand packaging (`/i/`).
    Vod,
    /// A management API call.
    Api,
    /// An upload (ingest).
    Upload,
    /// Anything else (`/time`, the player page, listings).
    Other,
}

impl RequestKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Mpd => "mpd",
            RequestKind::Playlist => "playlist",
            RequestKind::BlockingPlaylist => "blocking_playlist",
            RequestKind::Part => "part",
            RequestKind::Segment => "segment",
            RequestKind::Init => "init",
            RequestKind::Vod => "vod",
            RequestKind::Api => "api",
            RequestKind::Upload => "upload",
            RequestKind::Other => "other",
        }
    }

    /// The kind of an egress request from its path and query.
    pub fn of_egress(path: &str, query: Option<&str>) -> RequestKind {
        if path.starts_with("/i/") || path.starts_with("/cmaf/") || path.starts_with("/dash/") {
            return RequestKind::Vod;
        }
        let name = path.rsplit('/').next().unwrap_or("");
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        match ext {
            "mpd" => RequestKind::Mpd,
            "m3u8" if query.is_some_and(|q| q.contains("_HLS_msn=")) => {
                RequestKind::BlockingPlaylist
            }
            "m3u8" => RequestKind::Playlist,
            _ if name.starts_with("llhls-part_") => RequestKind::Part,
            "m4s" | "mp4" | "ts" | "cmfv" | "cmfa" | "m4a" | "m4v" | "aac"
                if name.contains("init") =>
            {
                RequestKind::Init
            }
            "m4s" | "mp4" | "ts" | "cmfv" | "cmfa" | "m4a" | "m4v" | "aac" => RequestKind::Segment,
            _ => RequestKind::Other,
        }
    }
}

/// The label of a status code's class.
pub fn code_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics() {
        let m = Metrics::new();
        m.ingest_bytes
            .get_or_create(&IngestBytesLabels {
                stream: "live/a".into(),
                result: "ok",
            })
            .inc_by(10);
        m.edge_advanced("live/a", "0");
        let text = m.render(Scraped {
            streams: vec![("live/a".into(), true)],
            archive_bytes: Some(5),
            disk_free_bytes: Some(7),
            draining: false,
            library_jobs: Some((3, 1)),
        });
        assert!(
            text.contains("casterpak_library_jobs{state=\"queued\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("casterpak_ingest_bytes_total{stream=\"live/a\",result=\"ok\"} 10"),
            "{text}"
        );
        assert!(
            text.contains("casterpak_stream_live{stream=\"live/a\"} 1"),
            "{text}"
        );
        assert!(text
            .contains("casterpak_live_edge_age_seconds{stream=\"live/a\",representation=\"0\"}"));
        assert!(text.contains("process_resident_memory_bytes"));
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    }

    #[test]
    fn kinds() {
        use RequestKind as K;
        assert_eq!(K::of_egress("/live/a/stream.mpd", None), K::Mpd);
        assert_eq!(
            K::of_egress("/live/a/llhls_0.m3u8", Some("_HLS_msn=3")),
            K::BlockingPlaylist
        );
        assert_eq!(K::of_egress("/live/a/llhls-part_0_3_1.m4s", None), K::Part);
        assert_eq!(K::of_egress("/live/a/init-stream0.m4s", None), K::Init);
        assert_eq!(
            K::of_egress("/live/a/chunk-stream0-00001.m4s", None),
            K::Segment
        );
        assert_eq!(K::of_egress("/i/a.mp4/master.m3u8", None), K::Vod);
        assert_eq!(K::of_egress("/time", None), K::Other);
    }
}
