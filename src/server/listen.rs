//! Accepting connections: per-listener and per-address caps, the first-byte and TLS
//! handshake deadline, and TLS itself (rustls, ALPN `h2` and `http/1.1`).
//!
//! Everything here happens before HTTP: a connection over a cap is closed at once (a
//! refusal counted in `casterpak_connections_refused_total`), a client that sends nothing,
//! or does not finish its TLS handshake, within the header-read timeout is closed (hyper's
//! own header timer only starts once HTTP parsing does; hyper-util's `auto` builder has
//! none while it reads the HTTP/2 preface).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

use super::metrics::{ListenerLabels, Metrics, RefusalLabels};
use crate::config::TlsFiles;

/// A connection's byte stream: plain TCP or TLS over it, under the opening deadline.
pub type Io = Opening<Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>>;

/// Bytes a client must send before the opening deadline: the HTTP/2 connection preface
/// (RFC 9113 section 3.4), longer than any HTTP/1.1 request line's start.
const OPENING_BYTES: usize = 24;

/// A stream whose reads fail with `TimedOut` when the client has not sent
/// [`OPENING_BYTES`] bytes (or been answered) by the deadline. hyper's header-read timer
/// covers HTTP/1.1 heads once parsing starts, but nothing covers hyper-util's protocol
/// detection (a partial HTTP/2 preface would hold the connection forever). Disarmed by the
/// first write (a request was read) or the 24th byte.
pub struct Opening<T> {
    inner: T,
    read: usize,
    deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    gate: Option<Gate>,
}

impl<T> Opening<T> {
    fn new(inner: T, deadline: tokio::time::Instant, gate: Gate) -> Opening<T> {
        Opening {
            inner,
            read: 0,
            deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
            gate: Some(gate),
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Opening<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let before = buf.filled().len();
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read += buf.filled().len() - before;
                if this.read >= OPENING_BYTES {
                    this.deadline = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let expired = match this.deadline.as_mut() {
                    Some(d) => std::future::Future::poll(d.as_mut(), cx).is_ready(),
                    None => false,
                };
                if !expired {
                    return Poll::Pending;
                }
                if let Some(g) = this.gate.take() {
                    g.refuse("timeout");
                }
                Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()))
            }
        }
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Opening<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.deadline = None;
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.deadline = None;
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Why TLS could not be set up at start.
#[derive(Debug, thiserror::Error)]
#[error("TLS for the {listener} listener: {reason}")]
pub struct TlsSetupError {
    /// Which listener.
    pub listener: &'static str,
    /// What failed (file, PEM, key/certificate mismatch).
    pub reason: String,
}

/// Loads a PEM certificate chain and key into an acceptor offering `alpn` (in order of
/// preference).
///
/// Errors: [`TlsSetupError`] when a file cannot be read or parsed, or the key does not
/// fit the certificate.
pub fn tls_acceptor(
    listener: &'static str,
    files: &TlsFiles,
    alpn: &[&[u8]],
) -> Result<TlsAcceptor, TlsSetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let err = |reason: String| TlsSetupError { listener, reason };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| err(format!("{}: {e}", files.cert.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("{}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(err(format!("{}: no certificate", files.cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| err(format!("{}: {e}", files.key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err(e.to_string()))?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// The door of one listener: its caps and TLS.
#[derive(Clone)]
pub struct Gate {
    /// `ingest`, `egress` or `api` (metric label, logs).
    pub name: &'static str,
    slots: Arc<Semaphore>,
    per_ip: Arc<DashMap<IpAddr, usize>>,
    per_ip_max: usize,
    /// The first-byte / handshake deadline.
    pub first_byte: Duration,
    tls: Option<TlsAcceptor>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("name", &self.name)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// An admitted connection's place under the caps; released on drop.
#[derive(Debug)]
pub struct Admitted {
    _slot: OwnedSemaphorePermit,
    ip: IpAddr,
    gate: Gate,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.gate.per_ip_max > 0 {
            let gone = match self.gate.per_ip.get_mut(&self.ip) {
                Some(mut n) => {
                    *n = n.saturating_sub(1);
                    *n == 0
                }
                None => false,
            };
            if gone {
                self.gate.per_ip.remove_if(&self.ip, |_, n| *n == 0);
            }
        }
        self.gate
            .metrics
            .connections
            .get_or_create(&ListenerLabels {
                listener: self.gate.name,
            })
            .dec();
    }
}

impl Gate {
    /// A gate with `max` connections in all, `per_ip_max` per client address (0: no cap).
    pub fn new(
        name: &'static str,
        max: usize,
        per_ip_max: usize,
        first_byte: Duration,
        tls: Option<TlsAcceptor>,
        metrics: Arc<Metrics>,
    ) -> Gate {
        Gate {
            name,
            slots: Arc::new(Semaphore::new(max)),
            per_ip: Arc::new(DashMap::new()),
            per_ip_max,
            first_byte,
            tls,
            metrics,
        }
    }

    /// Whether this listener speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub(crate) fn refuse(&self, reason: &'static str) {
        self.metrics
            .connections_refused
            .get_or_create(&RefusalLabels {
                listener: self.name,
                reason,
            })
            .inc();
    }

    /// Takes a place for a connection from `peer`, or `None` (counted) when a cap is full.
    pub fn admit(&self, peer: SocketAddr) -> Option<Admitted> {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            self.refuse("max_connections");
            return None;
        };
        let ip = peer.ip();
        if self.per_ip_max > 0 {
            let mut n = self.per_ip.entry(ip).or_insert(0);
            if *n >= self.per_ip_max {
                drop(n);
                self.refuse("max_connections_per_ip");
                return None;
            }
            *n += 1;
        }
        self.metrics
            .connections
            .get_or_create(&ListenerLabels {
                listener: self.name,
            })
            .inc();
        Some(Admitted {
            _slot: slot,
            ip,
            gate: self.clone(),
        })
    }

    /// Finishes the TLS handshake (when TLS is on) and arms the opening deadline: the
    /// handshake and the first [`OPENING_BYTES`] bytes must come within the first-byte
    /// deadline; `None` (counted) when the handshake is too slow or fails.
    pub async fn open(&self, stream: TcpStream) -> Option<Io> {
        let deadline = tokio::time::Instant::now() + self.first_byte;
        let io = match &self.tls {
            None => Either::Left(stream),
            Some(acceptor) => {
                match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => Either::Right(tls),
                    Ok(Err(e)) => {
                        tracing::debug!(listener = self.name, error = %e, "TLS handshake failed");
                        self.refuse("tls");
                        return None;
                    }
                    Err(_) => {
                        self.refuse("timeout");
                        return None;
                    }
                }
            }
        };
        Some(Opening::new(io, deadline, self.clone()))
    }
}
