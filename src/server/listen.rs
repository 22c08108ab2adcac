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

/// A connection's byte stream: plain TCP or TLS over it.
pub type Io = Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>;

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

    fn refuse(&self, reason: &'static str) {
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

    /// Waits for the first byte (plain) or the whole handshake (TLS), within the
    /// first-byte deadline; `None` (counted) when the client is too slow or the handshake
    /// fails.
    pub async fn open(&self, stream: TcpStream) -> Option<Io> {
        let deadline = self.first_byte;
        match &self.tls {
            None => {
                let mut b = [0u8; 1];
                match tokio::time::timeout(deadline, stream.peek(&mut b)).await {
                    Ok(Ok(n)) if n > 0 => Some(Either::Left(stream)),
                    Ok(_) => None,
                    Err(_) => {
                        self.refuse("timeout");
                        None
                    }
                }
            }
            Some(acceptor) => match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Some(Either::Right(tls)),
                Ok(Err(e)) => {
                    tracing::debug!(listener = self.name, error = %e, "TLS handshake failed");
                    self.refuse("tls");
                    None
                }
                Err(_) => {
                    self.refuse("timeout");
                    None
                }
            },
        }
    }
}
