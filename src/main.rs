//! `casterpak`: command line only. Parses flags, sets up logging, runs the server.

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use casterpak::config::{Config, ServeArgs};
use casterpak::server::Server;

/// jemalloc, not glibc malloc: with each finished segment joined into one buffer and the
/// upload's read buffers freed, glibc's heap kept growing slowly over an hour of the soak
/// (`bench/soak.sh`, BENCHMARKS.md) while the live heap stayed flat.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A streaming origin: LL-DASH/CMAF push ingest, chunked egress, on-demand HLS packaging.
#[derive(Debug, Parser)]
#[command(name = "casterpak", version, about, long_about = None)]
struct Cli {
    /// Log as JSON lines instead of text (filter with RUST_LOG, default "info").
    #[arg(long, global = true, env = "CASTERPAK_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the origin: the ingest listener (PUT/POST/DELETE from encoders) and the egress
    /// listener (GET/HEAD for players and CDNs).
    Serve(ServeArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if cli.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args).context("configuration")?;
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let data_dir = cfg.data_dir.clone();
        let server = Server::bind(cfg).await?;
        tracing::info!(
            ingest = %server.ingest_addr(),
            egress = %server.egress_addr(),
            api = %server.api_addr(),
            data_dir = %data_dir.display(),
            "casterpak listening"
        );
        tracing::info!(
            "player: http://{}/player/  push: ffmpeg ... -f dash -method PUT http://{}/live/NAME/stream.mpd",
            server.egress_addr(),
            server.ingest_addr()
        );
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            // The first signal drains; a second one exits at once.
            signal.cancel();
            wait_for_signal().await;
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        });
        server.run(shutdown).await;
        anyhow::Ok(())
    })
}

/// Raises the soft limit of open files to the hard limit: every connection is a file, and
/// the default soft limit (often 1024) is below the connection caps.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        let raised = rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "could not raise the open-files limit");
        }
    }
    let now = getrlimit(Resource::Nofile);
    tracing::info!(open_files_limit = ?now.current, "open-files limit");
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
