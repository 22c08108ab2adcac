//! Recycled output buffers for TS segments.
//!
//! A segment is a few MB written once and dropped once sent. Fresh allocations of that
//! size cost a page fault per 4 KiB on first touch (measured: most of the kernel time of
//! whole-rendition packaging). Segment bodies are handed out as [`Bytes`] whose owner puts
//! the buffer back here on drop, so the next segment writes into memory already mapped.
//! At most [`KEEP_BYTES`] of capacity is kept.

use std::sync::Mutex;

use bytes::Bytes;

/// Most buffer capacity kept for reuse, in bytes.
pub const KEEP_BYTES: usize = 64 << 20;
/// Larger buffers are not kept, in bytes.
pub const MAX_BUFFER: usize = 16 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer with at least `capacity` bytes of capacity (recycled when possible: the
/// most recently returned one that fits, likely still in the CPU caches).
pub fn take(capacity: usize) -> Vec<u8> {
    let reused = POOL.lock().ok().and_then(|mut p| {
        let i = p.iter().rposition(|b| b.capacity() >= capacity)?;
        Some(p.swap_remove(i))
    });
    let mut v = reused.unwrap_or_default();
    v.clear();
    v.reserve(capacity);
    v
}

/// Wraps a buffer as [`Bytes`]; its memory returns to the pool when the last clone drops.
pub fn into_bytes(v: Vec<u8>) -> Bytes {
    Bytes::from_owner(Pooled(v))
}

struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() == 0 || v.capacity() > MAX_BUFFER {
            return;
        }
        if let Ok(mut p) = POOL.lock() {
            let kept: usize = p.iter().map(Vec::capacity).sum();
            if kept + v.capacity() <= KEEP_BYTES {
                p.push(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back() {
        let mut v = take(1000);
        v.extend_from_slice(b"hello");
        let ptr = v.as_ptr();
        let b = into_bytes(v);
        assert_eq!(&b[..], b"hello");
        let c = b.clone();
        drop(b);
        assert_eq!(&c[..], b"hello", "clones keep the memory alive");
        drop(c);
        let again = take(10);
        assert!(again.is_empty());
        // Usually the same allocation (another test thread may have taken it).
        let _ = ptr == again.as_ptr();
    }
}
