//! The thin server around the core: two listeners, the background sweeper, shutdown.
//!
//! - ingest (`ingest.rs`): HTTP/1.1 only, persistent connections never closed by us, no
//!   header timeout (ffmpeg's MPD connection idles a whole segment between uploads);
//! - egress (`egress.rs`): HTTP/1.1 and h2c on one port, a header-read timeout against
//!   slow-loris, CORS on every response (tower-http), one tracing span per connection.
//!
//! The server owns every task: connection tasks, persistence writes, delayed deletes and
//! the memory sweeper all run on one [`TaskTracker`] and stop with one [`CancellationToken`].

pub mod api;
pub mod dashboard;
pub mod egress;
pub mod http;
pub mod ingest;
pub mod library_api;
pub mod listen;
pub mod livemix;
pub mod llhls;
pub mod metrics;
pub mod notify;
pub mod nus_api;
pub mod observe;
pub mod ops;
pub mod playback;
pub mod replay;
pub mod route;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::http::header::{self, HeaderName};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{Any, CorsLayer};
use tracing::Instrument;

use crate::config::Config;
use crate::live::timeline::Timeline;
use crate::live::Registry;
use crate::store::{ObjectKey, ObjectState, PersistError, Persister, Store};

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("binding {what} listener on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The data dir could not be prepared.
    #[error(transparent)]
    DataDir(#[from] PersistError),
    /// The on-demand packager could not start (bad media root or cache dirs).
    #[error("on-demand packaging: {0}")]
    Vod(#[from] crate::vod::VodError),
    /// The archive index could not be opened.
    #[error("archive: {0}")]
    Archive(#[from] crate::archive::ArchiveError),
    /// The `[auth]` settings are wrong, or the API would listen beyond loopback without
    /// tokens.
    #[error("{0}")]
    Auth(#[from] crate::auth::AuthConfigError),
    /// A certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] listen::TlsSetupError),
    /// The media library could not be opened (its database or folders).
    #[error("media library: {0}")]
    Library(String),
}

/// State shared by every request of both listeners.
#[derive(Debug)]
pub struct AppState {
    /// The configuration.
    pub cfg: Config,
    /// In-memory objects.
    pub store: Store,
    /// Live stream facts.
    pub registry: Registry,
    /// LL-HLS timelines of live streams.
    pub llhls: Timeline,
    /// The data dir, unless persistence is off.
    pub persister: Option<Persister>,
    /// Every background task.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
    /// The bound egress address (for URLs when a request has no Host).
    pub egress_addr: SocketAddr,
    /// The on-demand packager behind `/i/`, or why it is off (the default media root does
    /// not exist: a live-only origin).
    pub vod: Result<Arc<crate::vod::Vod>, String>,
    /// What ingest tells the other rooms.
    pub events: crate::events::EventBus,
    /// The stream archive and recordings (off when persistence is off).
    pub archive: Option<Arc<crate::archive::Archive>>,
    /// Control-plane notifications (SSE, webhooks).
    pub notifier: notify::Notifier,
    /// Rendered manifests of closed recordings.
    pub replays: replay::ReplayCache,
    /// The media library (uploads, transcodes), or why it is off (no local media root).
    pub library: Result<Arc<crate::library::Library>, String>,
    /// Who may push.
    pub ingest_auth: crate::auth::IngestAuth,
    /// Who may play (signed URLs), when configured.
    pub playback: Option<crate::auth::PlaybackAuth>,
    /// Who may use the API.
    pub api_auth: crate::auth::ApiAuth,
    /// Decisions of the playback authorization callback, by SHA-256 of (token, client
    /// address, user agent, folder).
    pub auth_cache: moka::future::Cache<[u8; 32], bool>,
    /// Calls to the authorization callback in flight.
    pub callback_slots: tokio::sync::Semaphore,
    /// The HTTP client of the authorization callback.
    pub http_client: reqwest::Client,
    /// The archive's size and when it was summed (`/metrics` sums at most every 30 s).
    pub archive_bytes: std::sync::Mutex<Option<(std::time::Instant, u64)>>,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Cancelled when draining starts (SIGTERM): `/readyz` fails, held requests are
    /// answered at once.
    pub drain: CancellationToken,
    /// Blocking reloads and held parts in flight.
    pub held_reloads: std::sync::atomic::AtomicUsize,
    /// Requests held for the next live segment.
    pub held_edge: std::sync::atomic::AtomicUsize,
}

impl AppState {
    /// The archive, or [`ArchiveError::NotFound`](crate::archive::ArchiveError) when it is
    /// off (persistence disabled).
    pub fn archive_on(&self) -> Result<Arc<crate::archive::Archive>, crate::archive::ArchiveError> {
        self.archive.clone().ok_or_else(|| {
            crate::archive::ArchiveError::NotFound(
                "the archive is off (persistence is disabled)".into(),
            )
        })
    }
}

/// Runs archive work (SQLite, archive files) on a blocking thread, never on the async
/// workers ingest and egress need. A panicked task is [`ArchiveError::Db`].
///
/// [`ArchiveError::Db`]: crate::archive::ArchiveError::Db
pub async fn archive_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::archive::ArchiveError> + Send + 'static,
) -> Result<T, crate::archive::ArchiveError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::archive::ArchiveError::Db(format!("archive task failed: {e}")))?
}

/// Opens the media library under the local media root, or says why it is off (a remote
/// or missing media root: the library publishes by writing files there).
async fn open_library(
    cfg: &Config,
    vod: &Result<Arc<crate::vod::Vod>, String>,
) -> Result<Result<Arc<crate::library::Library>, String>, ServerError> {
    let root = &cfg.vod.media_root;
    if root.starts_with("http://") || root.starts_with("https://") {
        tracing::info!("media library off: the media root is remote");
        return Ok(Err("the media library needs a local media root".into()));
    }
    if let Err(e) = vod {
        return Ok(Err(format!("the media library is off: {e}")));
    }
    let (lcfg, data, media, floor) = (
        cfg.library.clone(),
        cfg.data_dir.clone(),
        PathBuf::from(root),
        cfg.limits.min_free_bytes,
    );
    let opened = tokio::task::spawn_blocking(move || {
        crate::library::Library::open(lcfg, &data, &media, floor)
    })
    .await
    .map_err(|e| ServerError::Library(e.to_string()))?
    .map_err(|e| ServerError::Library(e.to_string()))?;
    tracing::info!(jobs = opened.config().jobs(), "media library on");
    Ok(Ok(Arc::new(opened)))
}

/// Forwards asset events to the notification hub (SSE, webhooks).
async fn library_notices(
    state: Arc<AppState>,
    mut rx: tokio::sync::broadcast::Receiver<crate::library::AssetEvent>,
) {
    loop {
        let ev = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            ev = rx.recv() => match ev {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(lost = n, "asset events dropped (notifier too slow)");
                    continue;
                }
                Err(_) => return,
            },
        };
        let base = library_api::egress_base_default(&state);
        state.notifier.publish(notify::Notice {
            kind: ev.kind,
            body: serde_json::json!({
                "type": ev.kind,
                "time": crate::archive::format_ms(crate::archive::now_ms()),
                "asset_id": ev.id,
                "asset": ev.asset.as_ref().map(|a| library_api::asset_json(a, &base)),
            }),
        });
    }
}

/// A server with its three listeners bound, ready to [`Server::run`].
#[derive(Debug)]
pub struct Server {
    state: Arc<AppState>,
    ingest: TcpListener,
    egress: TcpListener,
    api: TcpListener,
    gates: [listen::Gate; 3],
}

impl Server {
    /// Binds both listeners, opens the data dir and recovers the stream registry from it.
    ///
    /// Errors: [`ServerError::Bind`], [`ServerError::DataDir`], [`ServerError::Vod`] (an
    /// explicitly configured media root that cannot be used).
    pub async fn bind(cfg: Config) -> Result<Server, ServerError> {
        async fn listen(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
            // A deep accept queue (the kernel caps it at net.core.somaxconn): a burst of
            // connections faster than the accept loop must not drop SYNs (each dropped one
            // costs its client a 1 s retransmit). std's and mio's default is 128.
            let bind = || {
                let socket = if addr.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                socket.set_reuseaddr(true)?;
                socket.bind(addr)?;
                socket.listen(4096)
            };
            bind().map_err(|source| ServerError::Bind { what, addr, source })
        }
        let ingest_auth = crate::auth::IngestAuth::new(&cfg.auth.ingest)?;
        let playback = cfg
            .auth
            .playback
            .as_ref()
            .map(crate::auth::PlaybackAuth::new)
            .transpose()?;
        let api_auth = crate::auth::ApiAuth::new(&cfg.auth.api)?;
        if !api_auth.enabled() && !cfg.api_addr.ip().is_loopback() {
            return Err(crate::auth::AuthConfigError {
                key: "api",
                reason: format!(
                    "the API would listen on {} with no [[auth.api]] token; without tokens it listens on loopback only",
                    cfg.api_addr
                ),
            }
            .into());
        }
        let metrics = Arc::new(metrics::Metrics::new());
        let l = &cfg.limits;
        let tls = |name, files: &Option<crate::config::TlsFiles>, alpn: &[&[u8]]| {
            files
                .as_ref()
                .map(|f| listen::tls_acceptor(name, f, alpn))
                .transpose()
        };
        let h2: &[&[u8]] = &[b"h2", b"http/1.1"];
        let gates = [
            listen::Gate::new(
                "ingest",
                l.ingest_max_connections,
                l.max_connections_per_ip,
                Duration::from_secs(l.ingest_header_timeout_secs),
                tls("ingest", &cfg.tls.ingest, &[b"http/1.1"])?,
                Arc::clone(&metrics),
            ),
            listen::Gate::new(
                "egress",
                l.egress_max_connections,
                l.max_connections_per_ip,
                Duration::from_secs(l.header_read_timeout_secs),
                tls("egress", &cfg.tls.egress, h2)?,
                Arc::clone(&metrics),
            ),
            listen::Gate::new(
                "api",
                l.api_max_connections,
                l.max_connections_per_ip,
                Duration::from_secs(l.header_read_timeout_secs),
                tls("api", &cfg.tls.api, h2)?,
                Arc::clone(&metrics),
            ),
        ];
        let ingest = listen("ingest", cfg.ingest_addr).await?;
        let egress = listen("egress", cfg.egress_addr).await?;
        let api = listen("api", cfg.api_addr).await?;
        let persister = if cfg.live.persist {
            Some(Persister::open(&cfg.data_dir)?)
        } else {
            None
        };
        let registry = Registry::new();
        let part_target = (cfg.live.llhls_part_target_ms > 0)
            .then(|| cfg.live.llhls_part_target_ms as f64 / 1000.0);
        let part_hold_back = (cfg.live.llhls_part_hold_back_ms > 0)
            .then(|| cfg.live.llhls_part_hold_back_ms as f64 / 1000.0);
        let llhls = Timeline::new(part_target, part_hold_back);
        if let Some(p) = &persister {
            recover(&registry, p).await;
            recover_llhls(&registry, &llhls, p).await;
        }
        let egress_addr = egress.local_addr().unwrap_or(cfg.egress_addr);
        let archive = match &persister {
            Some(p) => {
                let root = p.root().to_owned();
                let acfg = cfg.archive.clone();
                let opened =
                    tokio::task::spawn_blocking(move || crate::archive::Archive::open(&root, acfg))
                        .await
                        .map_err(|e| crate::archive::ArchiveError::Db(e.to_string()))??;
                Some(Arc::new(opened))
            }
            None => None,
        };
        let vod = match crate::vod::Vod::new(&cfg.vod) {
            Ok(vod) => Ok(Arc::new(vod)),
            // A live-only origin started away from the bundled samples still starts; a media
            // root that was configured explicitly must exist.
            Err(e) if cfg.vod.media_root == crate::vod::config::VodConfig::default().media_root => {
                tracing::warn!(error = %e, "on-demand packaging (/i/) disabled");
                Err(e.to_string())
            }
            Err(e) => return Err(e.into()),
        };
        let library = open_library(&cfg, &vod).await?;
        Ok(Server {
            state: Arc::new(AppState {
                cfg,
                store: Store::new(),
                registry,
                llhls,
                persister,
                tasks: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                egress_addr,
                vod,
                events: crate::events::EventBus::new(),
                archive,
                notifier: notify::Notifier::default(),
                replays: replay::ReplayCache::default(),
                callback_slots: tokio::sync::Semaphore::new(playback::CALLBACK_CONCURRENCY),
                http_client: reqwest::Client::new(),
                archive_bytes: std::sync::Mutex::new(None),
                auth_cache: moka::future::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(playback_cache_secs(&playback).max(1)))
                    .build(),
                library,
                ingest_auth,
                playback,
                api_auth,
                metrics,
                drain: CancellationToken::new(),
                held_reloads: Default::default(),
                held_edge: Default::default(),
            }),
            ingest,
            egress,
            api,
            gates,
        })
    }

    /// The bound ingest address.
    pub fn ingest_addr(&self) -> SocketAddr {
        self.ingest
            .local_addr()
            .unwrap_or(self.state.cfg.ingest_addr)
    }

    /// The bound egress address.
    pub fn egress_addr(&self) -> SocketAddr {
        self.state.egress_addr
    }

    /// The bound management API address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api.local_addr().unwrap_or(self.state.cfg.api_addr)
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, gives open connections
    /// and pending writes up to 5 s, and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let state = self.state;
        state.tasks.spawn(sweeper(Arc::clone(&state)));
        state.tasks.spawn(vod_sweeper(Arc::clone(&state)));
        if let Some(archive) = state.archive.clone() {
            // Subscribed before the first connection is accepted: no event is missed.
            let rx = state.events.subscribe();
            state
                .tasks
                .spawn(archive_writer(Arc::clone(&state), Arc::clone(&archive), rx));
            state
                .tasks
                .spawn(archive_sweeper(Arc::clone(&state), archive));
        }
        restore_deletes(&state).await;
        state.tasks.spawn(stream_watcher(Arc::clone(&state)));
        if let Some(archive) = state.archive.clone() {
            state
                .tasks
                .spawn(recording_notices(Arc::clone(&state), archive.transitions()));
        }
        if let Ok(library) = state.library.clone() {
            state
                .tasks
                .spawn(library_notices(Arc::clone(&state), library.subscribe()));
            state.tasks.spawn(library.run(state.shutdown.clone()));
        }
        for url in state.cfg.webhooks.urls.clone() {
            state.tasks.spawn(notify::webhook_worker(
                url,
                state.cfg.webhooks.secret.clone(),
                state.notifier.subscribe(),
                state.shutdown.clone(),
            ));
        }
        let [ingest_gate, egress_gate, api_gate] = self.gates;
        log_security(&state, &ingest_gate, &egress_gate, &api_gate);
        let ingest_graceful = Arc::new(GracefulShutdown::new());
        let egress_graceful = Arc::new(GracefulShutdown::new());
        let api_graceful = Arc::new(GracefulShutdown::new());
        // Egress and the API stop accepting once draining has been announced for
        // `drain_start_wait_ms`, then their open responses get `drain_timeout_secs` to end;
        // ingest stops once the uploads in progress have ended (or the same timeout).
        let stop_front = CancellationToken::new();
        let stop_ingest = CancellationToken::new();
        let api_router = api::router(Arc::clone(&state));
        let egress_loop = accept_loop(
            self.egress,
            egress_gate,
            stop_front.clone(),
            Arc::clone(&egress_graceful),
            {
                let state = Arc::clone(&state);
                move |io, peer, watcher| serve_egress(Arc::clone(&state), io, peer, watcher)
            },
        );
        let api_loop = accept_loop(
            self.api,
            api_gate,
            stop_front.clone(),
            Arc::clone(&api_graceful),
            {
                let state = Arc::clone(&state);
                move |io, peer, watcher| {
                    serve_api(Arc::clone(&state), api_router.clone(), io, peer, watcher)
                }
            },
        );
        let ingest_loop = accept_loop(
            self.ingest,
            ingest_gate,
            stop_ingest.clone(),
            Arc::clone(&ingest_graceful),
            {
                let state = Arc::clone(&state);
                move |io, peer, watcher| serve_ingest(Arc::clone(&state), io, peer, watcher)
            },
        );
        let drain_timeout = Duration::from_secs(state.cfg.limits.drain_timeout_secs);
        let front = async move {
            tokio::join!(egress_loop, api_loop);
            let conns = async {
                tokio::join!(finish(egress_graceful), finish(api_graceful));
            };
            if tokio::time::timeout(drain_timeout, conns).await.is_err() {
                tracing::warn!(
                    "egress or API responses still open at the drain timeout; closing them"
                );
            }
        };
        let back = async move {
            ingest_loop.await;
            if tokio::time::timeout(drain_timeout, finish(ingest_graceful))
                .await
                .is_err()
            {
                tracing::warn!("ingest requests still open at the drain timeout; closing them");
            }
        };
        let drain = async {
            shutdown.cancelled().await;
            let l = state.cfg.limits.clone();
            tracing::info!(
                drain_start_wait_ms = l.drain_start_wait_ms,
                drain_timeout_secs = l.drain_timeout_secs,
                "draining: /readyz answers 503, held requests are answered now"
            );
            state.drain.cancel();
            tokio::time::sleep(Duration::from_millis(l.drain_start_wait_ms)).await;
            stop_front.cancel();
            // Encoders finish the objects they are uploading (closing their connection would
            // kill them); then ingest stops too.
            let deadline = tokio::time::Instant::now() + drain_timeout;
            let uploading: Vec<_> = state
                .store
                .snapshot()
                .into_iter()
                .filter(|o| o.state() == ObjectState::Uploading)
                .collect();
            if !uploading.is_empty() {
                tracing::info!(
                    uploads = uploading.len(),
                    "waiting for uploads in progress to end"
                );
            }
            while tokio::time::Instant::now() < deadline
                && uploading
                    .iter()
                    .any(|o| o.state() == ObjectState::Uploading)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop_ingest.cancel();
        };
        tokio::join!(front, back, drain);
        // Background work stops; persistence writes in flight are waited for.
        state.shutdown.cancel();
        state.tasks.close();
        if tokio::time::timeout(Duration::from_secs(5), state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("background work still running after 5 s; exiting");
        }
        tracing::info!("stopped");
    }
}

fn playback_cache_secs(p: &Option<crate::auth::PlaybackAuth>) -> u64 {
    p.as_ref().map_or(10, |p| p.cfg.callback_cache_secs)
}

/// Says at start what is protected and what is open.
fn log_security(
    state: &AppState,
    ingest: &listen::Gate,
    egress: &listen::Gate,
    api: &listen::Gate,
) {
    if state.ingest_auth.enabled() {
        tracing::info!(
            credentials = state.cfg.auth.ingest.len(),
            "ingest authentication on"
        );
    } else {
        tracing::warn!(
            addr = %state.cfg.ingest_addr,
            "ingest is open: no [[auth.ingest]] credentials, anyone who reaches this address can push"
        );
    }
    match &state.playback {
        Some(p) => tracing::info!(token_name = p.cfg.token_name, "playback authorization on"),
        None => tracing::info!("playback is open (no [auth.playback])"),
    }
    if state.api_auth.enabled() {
        tracing::info!(tokens = state.cfg.auth.api.len(), "API bearer tokens on");
    } else {
        tracing::warn!(addr = %state.cfg.api_addr, "API open without tokens (loopback only)");
    }
    for g in [ingest, egress, api] {
        if g.is_tls() {
            tracing::info!(listener = g.name, "TLS on");
        }
    }
}

/// Accepts until `stop`, handing each admitted, opened connection to `serve` on its own
/// task.
async fn accept_loop<F, Fut>(
    tcp: TcpListener,
    gate: listen::Gate,
    stop: CancellationToken,
    graceful: Arc<GracefulShutdown>,
    serve: F,
) where
    F: Fn(listen::Io, SocketAddr, Watcher) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let serve = Arc::new(serve);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = tcp.accept() => a,
        };
        let Some((stream, peer)) = accepted_or_backoff(accepted).await else {
            continue;
        };
        let Some(admitted) = gate.admit(peer) else {
            // Over a cap: closed at once.
            drop(stream);
            continue;
        };
        let gate = gate.clone();
        let serve = Arc::clone(&serve);
        let watcher = graceful.watcher();
        let span = tracing::info_span!("conn", listener = gate.name, %peer);
        tokio::spawn(
            async move {
                let _admitted = admitted;
                if let Some(io) = gate.open(stream).await {
                    serve(io, peer, watcher).await;
                }
            }
            .instrument(span),
        );
    }
}

/// Signals every connection of a listener to finish (HTTP/1.1: after the response in
/// progress; HTTP/2: GOAWAY) and waits for them; the accept loop has ended, so this holds
/// the last reference.
async fn finish(graceful: Arc<GracefulShutdown>) {
    match Arc::try_unwrap(graceful) {
        Ok(g) => g.shutdown().await,
        Err(_) => tracing::warn!("a listener's connections could not be drained"),
    }
}

/// Hands a connection to the listener's graceful shutdown.
type Watcher = hyper_util::server::graceful::Watcher;

async fn serve_ingest(state: Arc<AppState>, io: listen::Io, peer: SocketAddr, watcher: Watcher) {
    let header_timeout = Duration::from_secs(state.cfg.limits.ingest_header_timeout_secs);
    let svc = service_fn(move |req| ingest::handle(Arc::clone(&state), req, peer));
    // half_close: ffmpeg's non-persistent uploads (`-f hls`) send the last chunk and close
    // their write side at once; without it hyper drops the handler on that EOF and a
    // complete upload is taken as cut.
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), svc);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "ingest connection ended");
    }
}

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            ::http::Method::GET,
            ::http::Method::HEAD,
            ::http::Method::OPTIONS,
        ])
        // Mirrored: `*` does not cover `Authorization` (Fetch standard), which a token in
        // a Bearer header needs.
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        .expose_headers([
            header::DATE,
            header::AGE,
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::ETAG,
            header::LAST_MODIFIED,
            HeaderName::from_static("x-casterpak"),
        ])
}

fn auto_builder(state: &AppState) -> auto::Builder<TokioExecutor> {
    let l = &state.cfg.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(l.header_read_timeout_secs));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(l.h2_max_concurrent_streams)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

async fn serve_egress(state: Arc<AppState>, io: listen::Io, peer: SocketAddr, watcher: Watcher) {
    let svc = tower::ServiceBuilder::new()
        .layer(cors())
        .service(tower::service_fn({
            let state = Arc::clone(&state);
            move |req| egress::handle(Arc::clone(&state), req, peer)
        }));
    let builder = auto_builder(&state);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(error = %e, "egress connection ended");
    }
}

async fn serve_api(
    state: Arc<AppState>,
    router: axum::Router,
    io: listen::Io,
    peer: SocketAddr,
    watcher: Watcher,
) {
    let svc = tower::service_fn(move |mut req: ::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ops::Peer(peer));
        let mut router = router.clone();
        async move {
            use tower::Service;
            router.call(req.map(axum::body::Body::new)).await
        }
    });
    let builder = auto_builder(&state);
    let conn =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(svc));
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(error = %e, "api connection ended");
    }
}

async fn accepted_or_backoff(
    accepted: std::io::Result<(TcpStream, SocketAddr)>,
) -> Option<(TcpStream, SocketAddr)> {
    match accepted {
        Ok((stream, peer)) => {
            // CMAF chunks are small: send them as soon as they are written.
            let _ = stream.set_nodelay(true);
            Some((stream, peer))
        }
        Err(e) => {
            // Usually EMFILE: back off instead of spinning.
            tracing::warn!(error = %e, "accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// Drops finished, persisted objects from memory once they are older than the memory
/// window, and aborted ones at once. Runs every second until shutdown.
async fn sweeper(state: Arc<AppState>) {
    let window = Duration::from_secs(state.cfg.live.memory_window_secs);
    // LL-HLS timelines keep the longest window a playlist may list, plus a minute.
    let keep_secs = state
        .cfg
        .live
        .dvr_window_secs
        .max(state.cfg.live.llhls_window_secs) as f64
        + 60.0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        state.llhls.sweep(
            Duration::from_secs(state.cfg.live.stream_idle_secs),
            keep_secs,
        );
        for object in state.store.snapshot() {
            let drop_it = match object.state() {
                ObjectState::Aborted => true,
                ObjectState::Uploading => false,
                // A DELETEd object is served from its file for the rest of its retention
                // (the delete timer removes the file): memory holds it no longer than any
                // other (it held every ffmpeg segment for the whole 10-minute retention).
                ObjectState::Complete => {
                    state.persister.is_some()
                        && object.is_persisted()
                        && object.completed_for().is_some_and(|d| d >= window)
                }
            };
            if drop_it {
                state.store.remove_if_current(&object);
            }
        }
    }
}

/// Feeds ingest events to the archive, one at a time on a blocking thread (the index has
/// one writer). A lagging receiver loses the oldest events and says how many.
async fn archive_writer(
    state: Arc<AppState>,
    archive: Arc<crate::archive::Archive>,
    mut rx: tokio::sync::broadcast::Receiver<crate::events::IngestEvent>,
) {
    use crate::events::IngestEvent;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            e = rx.recv() => e,
        };
        match event {
            Ok(IngestEvent::ObjectComplete(obj)) => {
                let (s, a) = (Arc::clone(&state), Arc::clone(&archive));
                let done =
                    tokio::task::spawn_blocking(move || a.on_complete(&s.registry, &obj)).await;
                match done {
                    Ok(Ok(Some(row))) => {
                        tracing::debug!(
                            stream = row.stream,
                            session = row.session_id,
                            rep = row.rep,
                            number = row.number,
                            "archived"
                        );
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "archiving a segment failed"),
                    Err(e) => tracing::error!(error = %e, "archive task failed"),
                }
            }
            Ok(IngestEvent::Deleted(_)) => {}
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    lost = n,
                    "archive fell behind ingest; segments not archived"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Re-arms the DELETE retention timers that were pending when the origin stopped.
async fn restore_deletes(state: &Arc<AppState>) {
    let Some(a) = state.archive.clone() else {
        return;
    };
    let pending = tokio::task::spawn_blocking(move || a.pending_deletes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if !pending.is_empty() {
        tracing::info!(deletes = pending.len(), "restored DELETE retention timers");
    }
    let now = crate::archive::now_ms();
    for (key, deleted_ms, due_ms) in pending {
        let Ok(key) = ObjectKey::from_decoded(&key) else {
            continue;
        };
        let deleted_at = std::time::UNIX_EPOCH + Duration::from_millis(deleted_ms.max(0) as u64);
        let wait = Duration::from_millis((due_ms - now).max(0) as u64);
        ingest::schedule_delete(state, key, None, deleted_at, wait);
    }
}

/// Publishes `stream.started` / `stream.ended` when a stream's listed state changes
/// (checked every second; "ended" after `stream_idle_secs` without uploads or a final
/// manifest).
async fn stream_watcher(state: Arc<AppState>) {
    let mut live: std::collections::HashSet<String> = std::collections::HashSet::new();
    let idle = Duration::from_secs(state.cfg.live.stream_idle_secs);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now: std::collections::HashSet<String> = state
            .registry
            .list(idle)
            .into_iter()
            .filter(|s| s.state == "live")
            .map(|s| s.name)
            .collect();
        for s in now.difference(&live) {
            state
                .notifier
                .publish(notify::Notice::stream("stream.started", s));
        }
        for s in live.difference(&now) {
            state
                .notifier
                .publish(notify::Notice::stream("stream.ended", s));
        }
        live = now;
    }
}

/// Turns recording state changes into notices.
async fn recording_notices(
    state: Arc<AppState>,
    mut rx: tokio::sync::broadcast::Receiver<crate::archive::Transition>,
) {
    use crate::archive::RecordingState as S;
    loop {
        let t = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            t = rx.recv() => match t {
                Ok(t) => t,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
        };
        let kind = match t.recording.state {
            S::Recording => "recording.started",
            S::Done => "recording.stopped",
            S::Failed => "recording.failed",
            S::Pending => continue,
        };
        state
            .notifier
            .publish(notify::Notice::recording(kind, &t.recording));
    }
}

/// Every second: recording states; every minute: the retention and size sweep.
async fn archive_sweeper(state: Arc<AppState>, archive: Arc<crate::archive::Archive>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let a = Arc::clone(&archive);
        let sweep = n % 60 == 0;
        n += 1;
        let result = tokio::task::spawn_blocking(move || {
            let now = crate::archive::now_ms();
            let changes = a.tick(now)?;
            let removed = if sweep { a.sweep(now)? } else { 0 };
            Ok::<_, crate::archive::ArchiveError>((changes, removed))
        })
        .await;
        match result {
            Ok(Ok((changes, removed))) => {
                for t in changes {
                    tracing::info!(
                        recording = t.recording.id,
                        stream = t.recording.stream,
                        from = t.from.as_str(),
                        to = t.recording.state.as_str(),
                        "recording state"
                    );
                }
                if removed > 0 {
                    tracing::info!(segments = removed, "archive sweep removed expired segments");
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "archive sweep failed"),
            Err(e) => tracing::error!(error = %e, "archive sweep task failed"),
        }
    }
}

/// Runs the on-demand packager's cache sweep at its interval until shutdown.
async fn vod_sweeper(state: Arc<AppState>) {
    let Ok(vod) = state.vod.clone() else { return };
    let every = vod.sweep_interval();
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => vod.sweep().await,
        }
    }
}

/// Rebuilds the LL-HLS timelines of recovered streams from their persisted segments, so
/// an ended stream stays playable as LL-HLS VOD (EXT-X-ENDLIST) after a restart. Reads
/// every persisted `.m4s` of a folder that has an MPD (bounded by the retention).
async fn recover_llhls(registry: &Registry, llhls: &Timeline, persister: &Persister) {
    let p = persister.clone();
    let keys = tokio::task::spawn_blocking(move || p.list_with_suffix(".m4s"))
        .await
        .unwrap_or_default();
    let mut placed = 0usize;
    for key in keys {
        if registry.segment_of(&key).is_none() {
            continue;
        }
        let Ok(body) = tokio::fs::read(key.to_path(persister.root())).await else {
            continue;
        };
        if llhls.recover_segment(registry, &key, &body) {
            placed += 1;
        }
    }
    llhls.end_recovered(registry);
    if placed > 0 {
        tracing::info!(
            segments = placed,
            "recovered LL-HLS timelines from the data dir"
        );
    }
}

/// Reads persisted manifests and the init segments they name back into the registry.
async fn recover(registry: &Registry, persister: &Persister) {
    let p = persister.clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut out: Vec<(ObjectKey, Vec<u8>)> = Vec::new();
        for suffix in [".mpd", ".m3u8"] {
            for key in p.list_with_suffix(suffix) {
                if let Ok(body) = std::fs::read(key.to_path(p.root())) {
                    if suffix == ".mpd" {
                        if let Ok(mpd) = crate::live::mpd::Mpd::parse(&body) {
                            for rep in mpd.representations() {
                                let Some(init) = rep.init.as_deref() else {
                                    continue;
                                };
                                let Ok(init_key) = key.sibling(init) else {
                                    continue;
                                };
                                if let Ok(b) = std::fs::read(init_key.to_path(p.root())) {
                                    out.push((init_key, b));
                                }
                            }
                        }
                    }
                    out.push((key, body));
                }
            }
        }
        out
    })
    .await
    .unwrap_or_default();
    if !found.is_empty() {
        tracing::info!(
            objects = found.len(),
            "recovered manifests and init segments from the data dir"
        );
    }
    registry.recover(found);
}
