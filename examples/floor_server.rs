//! The floor of the pass-through benchmark (issue 9): the least server that can pass the
//! benchmark's upload through to its readers, so `bench/passthrough.sh` can state the origin's
//! delay as a ratio to what this machine does at all.
//!
//! ```text
//! floor_server --ingest-addr 127.0.0.1:5000 --egress-addr 127.0.0.1:5001
//! ```
//!
//! What it does, and nothing more:
//! - ingest: reads a request head up to the blank line and takes the path from the request
//!   line. A `Content-Length` body (the benchmark's init segment) is read and dropped, then
//!   `201`. A chunked body is an upload: its path is registered for readers, and ONE task
//!   reads the socket and writes every received buffer as it is (the upload's own HTTP chunk
//!   framing, already valid for a chunked response) to every reader socket, all writes
//!   polled together (`join_all`), no copy per reader, no queue. It tracks only the chunk
//!   sizes, to find the terminating `0\r\n\r\n` (then it answers `201` and closes the
//!   readers' connections) and to send a buffer holding only framing (a size line, a closing
//!   CRLF) with the next data rather than on its own: one write per reader per piece of data.
//! - egress: reads a request head, takes the path, hands the socket to the upload task of
//!   that path (`404` when there is none), which writes `200` + `Transfer-Encoding: chunked`
//!   and the bytes received so far, then the rest as it arrives.
//!
//! No store, no CMAF scan, no MPD, no persistence, no hyper. Sockets are `TCP_NODELAY` like
//! the origin's, and the runtime is tokio's default multi-thread runtime like the origin's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Upload path -> where that upload's task takes new readers.
type Uploads = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<TcpStream>>>>;

const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
const CREATED: &[u8] = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn main() {
    let mut ingest: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let mut egress: SocketAddr = "127.0.0.1:5001".parse().unwrap();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--ingest-addr" => ingest = v.parse().expect("--ingest-addr"),
            "--egress-addr" => egress = v.parse().expect("--egress-addr"),
            other => panic!("unknown flag {other}"),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let uploads: Uploads = Arc::default();
        let ingest = TcpListener::bind(ingest).await.unwrap();
        let egress = TcpListener::bind(egress).await.unwrap();
        let u = Arc::clone(&uploads);
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = ingest.accept().await else {
                    continue;
                };
                let _ = sock.set_nodelay(true);
                tokio::spawn(ingest_conn(sock, Arc::clone(&u)));
            }
        });
        loop {
            let Ok((sock, _)) = egress.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(egress_conn(sock, Arc::clone(&uploads)));
        }
    });
}

/// Reads up to the end of a request head. Returns (path, chunked, content length, bytes read
/// past the head), or None when the connection ended.
async fn read_head(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(String, bool, usize, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let raw = String::from_utf8_lossy(&buf[..end]);
            let path = raw.split(' ').nth(1).unwrap_or("/").to_owned();
            let head = raw.to_ascii_lowercase();
            let chunked = head.contains("transfer-encoding: chunked");
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let rest = buf.split_off(end + 4);
            buf.clear();
            return Some((path, chunked, length, rest));
        }
        let mut tmp = [0u8; 4096];
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

async fn egress_conn(mut sock: TcpStream, uploads: Uploads) {
    let mut buf = Vec::new();
    let Some((path, ..)) = read_head(&mut sock, &mut buf).await else {
        return;
    };
    let upload = uploads.lock().unwrap().get(&path).cloned();
    match upload {
        Some(tx) => {
            let _ = tx.send(sock);
        }
        None => {
            let _ = sock.write_all(NOT_FOUND).await;
        }
    }
}

async fn ingest_conn(mut sock: TcpStream, uploads: Uploads) {
    let mut buf = Vec::new();
    while let Some((path, chunked, length, rest)) = read_head(&mut sock, &mut buf).await {
        if !chunked {
            // A whole body (the init segment): read it, drop it, answer.
            let mut left = length.saturating_sub(rest.len());
            let mut tmp = vec![0u8; 64 * 1024];
            while left > 0 {
                match sock.read(&mut tmp).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
            if sock.write_all(CREATED).await.is_err() {
                return;
            }
            continue;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        uploads.lock().unwrap().insert(path.clone(), tx);
        let ok = fan_out(&mut sock, rest, rx).await;
        uploads.lock().unwrap().remove(&path);
        if !ok || sock.write_all(CREATED).await.is_err() {
            return;
        }
    }
}

/// Where the chunked-body parser is: only sizes are read, data is skipped in bulk.
enum Framing {
    /// Reading the hex size line (value so far).
    Size(u64),
    /// After the size line's `\r`.
    SizeLf(u64),
    /// Data bytes left in the current chunk.
    Data(u64),
    /// The `\r\n` after a chunk's data (bytes of it left).
    DataEnd(u8),
    /// The `\r\n` after the last chunk's size line (bytes of it left).
    Last(u8),
    Done,
}

impl Framing {
    /// Advances over `bytes`; returns how many belong to the body (all, unless it ends here)
    /// and whether any of them is chunk data (not only size lines and CRLFs).
    fn advance(&mut self, bytes: &[u8]) -> (usize, bool) {
        let mut i = 0;
        let mut data = false;
        while i < bytes.len() {
            match *self {
                Framing::Size(v) => {
                    let b = bytes[i];
                    *self = match b {
                        b'\r' => Framing::SizeLf(v),
                        _ => Framing::Size(v * 16 + (b as char).to_digit(16).unwrap_or(0) as u64),
                    };
                    i += 1;
                }
                Framing::SizeLf(v) => {
                    *self = if v == 0 {
                        Framing::Last(2)
                    } else {
                        Framing::Data(v)
                    };
                    i += 1;
                }
                Framing::Data(left) => {
                    data = true;
                    let n = left.min((bytes.len() - i) as u64);
                    i += n as usize;
                    *self = if n == left {
                        Framing::DataEnd(2)
                    } else {
                        Framing::Data(left - n)
                    };
                }
                Framing::DataEnd(left) => {
                    i += 1;
                    *self = if left == 1 {
                        Framing::Size(0)
                    } else {
                        Framing::DataEnd(left - 1)
                    };
                }
                Framing::Last(left) => {
                    i += 1;
                    if left == 1 {
                        *self = Framing::Done;
                        return (i, data);
                    }
                    *self = Framing::Last(left - 1);
                }
                Framing::Done => return (i, data),
            }
        }
        (i, data)
    }
}

/// The one fan-out task of an upload: every buffer read from the publisher goes to every
/// reader as it is. Returns whether the body ended cleanly.
async fn fan_out(
    up: &mut TcpStream,
    first: Vec<u8>,
    mut new_readers: mpsc::UnboundedReceiver<TcpStream>,
) -> bool {
    let mut framing = Framing::Size(0);
    // What late joiners get first (the benchmark's readers join after the styp).
    let mut so_far = Vec::new();
    let mut readers: Vec<TcpStream> = Vec::new();
    let mut buf = vec![0u8; first.len().max(64 * 1024)];
    // Framing bytes read without data (a size line, a chunk's closing CRLF): sent with the
    // next data, so each reader gets one write per received piece of data, as hyper's
    // vectored writes give the origin's readers.
    let mut held: Vec<u8> = Vec::new();
    let mut n = first.len();
    buf[..n].copy_from_slice(&first);
    loop {
        if n > 0 {
            let (body, has_data) = framing.advance(&buf[..n]);
            let send = has_data || matches!(framing, Framing::Done);
            if !held.is_empty() || !send {
                held.extend_from_slice(&buf[..body]);
            }
            if send {
                let data: &[u8] = if held.is_empty() { &buf[..body] } else { &held };
                so_far.extend_from_slice(data);
                let results =
                    futures_util::future::join_all(readers.iter_mut().map(|r| r.write_all(data)))
                        .await;
                let mut ok = results.iter().map(Result::is_ok);
                readers.retain(|_| ok.next().unwrap_or(false));
                held.clear();
            }
        }
        if matches!(framing, Framing::Done) {
            // Dropping the readers closes their connections after the last chunk.
            return true;
        }
        tokio::select! {
            read = up.read(&mut buf) => match read {
                Ok(0) | Err(_) => return false,
                Ok(read) => n = read,
            },
            Some(mut r) = new_readers.recv() => {
                n = 0;
                if r.write_all(RESPONSE_HEAD).await.is_ok() && r.write_all(&so_far).await.is_ok() {
                    readers.push(r);
                }
            }
        }
    }
}
