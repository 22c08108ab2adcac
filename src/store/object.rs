//! One stored object: the frames of an upload as they arrive, its state, and wake-ups for
//! its readers.
//!
//! Ingest appends each HTTP body frame (`Bytes`, never copied) and bumps a `watch` counter;
//! every reader holds its own position and clones the `Bytes` handles it has not sent yet, so
//! fan-out costs one reference count per frame per reader and a slow reader holds nothing up:
//! the frames are shared, not queued per reader. Once the upload completes the frames are
//! joined into one body and dropped (they pin the HTTP read buffers they were cut from), and
//! readers continue from their byte position in that body.

use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use super::key::ObjectKey;
use crate::cmaf::{CmafChunk, InitInfo};

/// Where an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    /// Frames are still arriving.
    Uploading,
    /// The body ended with its terminating chunk.
    Complete,
    /// The upload was cut or refused; the bytes must never be served as complete.
    Aborted,
}

/// What a reader gets next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStep {
    /// The next frame.
    Data(Bytes),
    /// The object is complete and the reader has had every frame.
    End,
    /// The upload was aborted: the reader must abort its response.
    Aborted,
}

#[derive(Debug)]
struct Inner {
    frames: Vec<Bytes>,
    len: u64,
    state: ObjectState,
    /// The whole body in one buffer, made once when the upload completes.
    body: Option<Bytes>,
    chunks: Vec<CmafChunk>,
    init: Option<Arc<InitInfo>>,
    finished_at: Option<SystemTime>,
    finished_instant: Option<Instant>,
    persisted: bool,
    deleted_at: Option<Instant>,
}

/// A stored object. Shared as `Arc<Object>` between the map, the uploader and readers.
#[derive(Debug)]
pub struct Object {
    key: ObjectKey,
    id: u64,
    inner: RwLock<Inner>,
    /// Counts appends and state changes; readers wait on it.
    version: watch::Sender<u64>,
}

/// A finished object's body and validators.
#[derive(Debug, Clone)]
pub struct CompleteBody {
    /// The whole body.
    pub bytes: Bytes,
    /// When the upload ended (also the persisted file's mtime).
    pub finished_at: SystemTime,
}

impl Object {
    /// A new, empty object in state [`ObjectState::Uploading`]. `id` must be unique in the
    /// process (the store hands them out).
    pub fn new(key: ObjectKey, id: u64) -> Object {
        let (version, _) = watch::channel(0);
        Object {
            key,
            id,
            inner: RwLock::new(Inner {
                frames: Vec::new(),
                len: 0,
                state: ObjectState::Uploading,
                body: None,
                chunks: Vec::new(),
                init: None,
                finished_at: None,
                finished_instant: None,
                persisted: false,
                deleted_at: None,
            }),
            version,
        }
    }

    /// The object's key.
    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// Process-unique ID of this upload (a re-PUT gets a new one).
    pub fn id(&self) -> u64 {
        self.id
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Current state.
    pub fn state(&self) -> ObjectState {
        self.read().state
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.read().len
    }

    /// Whether no byte has arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one body frame and wakes every reader. Ignored unless uploading.
    pub fn append(&self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        {
            let mut inner = self.write();
            if inner.state != ObjectState::Uploading {
                return;
            }
            inner.len += frame.len() as u64;
            inner.frames.push(frame);
        }
        self.bump();
    }

    /// Records a complete CMAF chunk found by the scanner.
    pub fn push_chunk(&self, chunk: CmafChunk) {
        self.write().chunks.push(chunk);
        self.bump();
    }

    /// Records that this object is an init segment with these tracks.
    pub fn set_init(&self, init: InitInfo) {
        self.write().init = Some(Arc::new(init));
    }

    /// The CMAF chunks found so far (offsets in bytes, times in timescale ticks).
    pub fn chunks(&self) -> Vec<CmafChunk> {
        self.read().chunks.clone()
    }

    /// Bytes `[start, end)` of what has arrived so far (one copy unless they lie in one
    /// frame or the object is complete); `None` when they have not all arrived or the
    /// upload was aborted.
    pub fn slice(&self, start: u64, end: u64) -> Option<Bytes> {
        let inner = self.read();
        if start > end || end > inner.len || inner.state == ObjectState::Aborted {
            return None;
        }
        if let Some(body) = &inner.body {
            return Some(body.slice(start as usize..end as usize));
        }
        let mut out = BytesMut::with_capacity((end - start) as usize);
        let mut pos = 0u64;
        for f in &inner.frames {
            let f_end = pos + f.len() as u64;
            if f_end > start && pos < end {
                let a = start.saturating_sub(pos) as usize;
                let b = (end.min(f_end) - pos) as usize;
                if out.is_empty() && a == 0 && b == f.len() && end == f_end {
                    return Some(f.clone());
                }
                if out.is_empty() && pos <= start && end <= f_end {
                    return Some(f.slice(a..b));
                }
                out.extend_from_slice(&f[a..b]);
            }
            if f_end >= end {
                break;
            }
            pos = f_end;
        }
        Some(out.freeze())
    }

    /// The tracks, when this object is an init segment.
    pub fn init(&self) -> Option<Arc<InitInfo>> {
        self.read().init.clone()
    }

    /// Marks the upload complete: joins the frames into one body and drops them (one copy per object, so
    /// ranges and repeated GETs are a slice) and wakes readers. Returns the body, or `None`
    /// when the object was not uploading.
    pub fn complete(&self) -> Option<CompleteBody> {
        let done = {
            let mut inner = self.write();
            if inner.state != ObjectState::Uploading {
                return None;
            }
            // Copied even for one frame: a frame is a slice of a larger HTTP read buffer.
            let mut buf = BytesMut::with_capacity(inner.len as usize);
            for f in &inner.frames {
                buf.extend_from_slice(f);
            }
            let body = buf.freeze();
            let now = SystemTime::now();
            inner.state = ObjectState::Complete;
            inner.body = Some(body.clone());
            // The joined body replaces the frames: each frame is a slice of an HTTP read
            // buffer and would keep that whole buffer alive for the object's life.
            inner.frames = Vec::new();
            inner.finished_at = Some(now);
            inner.finished_instant = Some(Instant::now());
            CompleteBody {
                bytes: body,
                finished_at: now,
            }
        };
        self.bump();
        Some(done)
    }

    /// Marks the upload aborted and wakes readers, who then abort their responses.
    pub fn abort(&self) {
        {
            let mut inner = self.write();
            if inner.state != ObjectState::Uploading {
                return;
            }
            inner.state = ObjectState::Aborted;
            inner.frames.clear();
        }
        self.bump();
    }

    /// The whole body when complete.
    pub fn complete_body(&self) -> Option<CompleteBody> {
        let inner = self.read();
        match (&inner.body, inner.finished_at) {
            (Some(bytes), Some(finished_at)) if inner.state == ObjectState::Complete => {
                Some(CompleteBody {
                    bytes: bytes.clone(),
                    finished_at,
                })
            }
            _ => None,
        }
    }

    /// How long ago the upload completed.
    pub fn completed_for(&self) -> Option<std::time::Duration> {
        self.read().finished_instant.map(|t| t.elapsed())
    }

    /// Records that the body is safely on disk.
    pub fn set_persisted(&self) {
        self.write().persisted = true;
    }

    /// Whether the body is on disk.
    pub fn is_persisted(&self) -> bool {
        self.read().persisted
    }

    /// Records an (advisory) DELETE.
    pub fn mark_deleted(&self) {
        let mut inner = self.write();
        if inner.deleted_at.is_none() {
            inner.deleted_at = Some(Instant::now());
        }
    }

    /// When a DELETE arrived, if one did.
    pub fn deleted_at(&self) -> Option<Instant> {
        self.read().deleted_at
    }

    /// A reader positioned at the first byte.
    pub fn reader(self: &Arc<Self>) -> ObjectReader {
        ObjectReader {
            object: Arc::clone(self),
            next_frame: 0,
            pos: 0,
            version: self.version.subscribe(),
        }
    }
}

/// A reader of one object that follows it while it grows.
#[derive(Debug)]
pub struct ObjectReader {
    object: Arc<Object>,
    /// Index of the next frame while the upload is in progress.
    next_frame: usize,
    /// Bytes handed out so far (where to continue in the body once the frames are joined).
    pos: u64,
    version: watch::Receiver<u64>,
}

impl ObjectReader {
    /// Waits for and returns the next step: a frame, the end, or the abort.
    pub async fn next(&mut self) -> ReadStep {
        loop {
            self.version.borrow_and_update();
            if let Some(step) = self.try_next() {
                return step;
            }
            if self.version.changed().await.is_err() {
                // The object (and its sender) is gone: only possible after completion.
                return self.try_next().unwrap_or(ReadStep::Aborted);
            }
        }
    }

    /// The next step if one is ready now.
    pub fn try_next(&mut self) -> Option<ReadStep> {
        let inner = self.object.read();
        match inner.state {
            ObjectState::Aborted => Some(ReadStep::Aborted),
            ObjectState::Uploading => {
                let frame = inner.frames.get(self.next_frame)?;
                self.next_frame += 1;
                self.pos += frame.len() as u64;
                Some(ReadStep::Data(frame.clone()))
            }
            ObjectState::Complete => {
                let body = inner.body.as_ref()?;
                let len = body.len() as u64;
                if self.pos < len {
                    let rest = body.slice(self.pos as usize..);
                    self.pos = len;
                    Some(ReadStep::Data(rest))
                } else {
                    Some(ReadStep::End)
                }
            }
        }
    }

    /// The object read.
    pub fn object(&self) -> &Arc<Object> {
        &self.object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj() -> Arc<Object> {
        Arc::new(Object::new(ObjectKey::from_decoded("a/b.m4s").unwrap(), 1))
    }

    #[tokio::test]
    async fn readers_get_every_frame_in_order_and_the_end() {
        let o = obj();
        let mut early = o.reader();
        o.append(Bytes::from_static(b"ab"));
        let mut late_joiner = o.reader();
        o.append(Bytes::from_static(b"cd"));
        assert_eq!(
            early.next().await,
            ReadStep::Data(Bytes::from_static(b"ab"))
        );
        assert_eq!(
            late_joiner.next().await,
            ReadStep::Data(Bytes::from_static(b"ab"))
        );
        let o2 = Arc::clone(&o);
        let waiter = tokio::spawn(async move {
            let mut r = o2.reader();
            let mut got = Vec::new();
            loop {
                match r.next().await {
                    ReadStep::Data(b) => got.extend_from_slice(&b),
                    other => return (got, other),
                }
            }
        });
        tokio::task::yield_now().await;
        o.append(Bytes::from_static(b"ef"));
        let body = o.complete().unwrap();
        assert_eq!(&body.bytes[..], b"abcdef");
        let (got, end) = waiter.await.unwrap();
        assert_eq!(got, b"abcdef");
        assert_eq!(end, ReadStep::End);
        // A reader behind at completion gets the rest of the joined body in one piece: the
        // frames themselves are gone.
        assert_eq!(
            early.next().await,
            ReadStep::Data(Bytes::from_static(b"cdef"))
        );
        assert_eq!(early.next().await, ReadStep::End);
        assert!(o.read().frames.is_empty(), "frames dropped at completion");
    }

    #[test]
    fn slices_of_an_upload_in_progress_and_complete() {
        let o = obj();
        for f in [&b"ab"[..], b"cd", b"ef"] {
            o.append(Bytes::copy_from_slice(f));
        }
        assert_eq!(o.slice(0, 2).as_deref(), Some(&b"ab"[..]));
        assert_eq!(o.slice(2, 3).as_deref(), Some(&b"c"[..]));
        assert_eq!(o.slice(1, 5).as_deref(), Some(&b"bcde"[..]));
        assert_eq!(o.slice(0, 6).as_deref(), Some(&b"abcdef"[..]));
        assert_eq!(o.slice(3, 3).as_deref(), Some(&b""[..]));
        assert_eq!(o.slice(4, 7), None, "not arrived yet");
        assert_eq!(o.slice(5, 4), None);
        o.complete();
        assert_eq!(o.slice(1, 5).as_deref(), Some(&b"bcde"[..]));
        let cut = obj();
        cut.append(Bytes::from_static(b"xy"));
        cut.abort();
        assert_eq!(cut.slice(0, 1), None, "never from an aborted upload");
    }

    #[tokio::test]
    async fn fan_out_shares_frames() {
        let o = obj();
        let frame = Bytes::from(vec![7u8; 4096]);
        let mut readers: Vec<_> = (0..100).map(|_| o.reader()).collect();
        o.append(frame.clone());
        for r in &mut readers {
            match r.next().await {
                ReadStep::Data(b) => assert_eq!(b.as_ptr(), frame.as_ptr(), "not copied"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn abort_reaches_waiting_and_future_readers() {
        let o = obj();
        o.append(Bytes::from_static(b"xx"));
        let o2 = Arc::clone(&o);
        let waiter = tokio::spawn(async move {
            let mut r = o2.reader();
            let _ = r.next().await;
            r.next().await
        });
        tokio::task::yield_now().await;
        o.abort();
        assert_eq!(waiter.await.unwrap(), ReadStep::Aborted);
        assert_eq!(o.reader().next().await, ReadStep::Aborted);
        assert!(o.complete().is_none(), "an aborted upload never completes");
        assert!(o.complete_body().is_none());
        o.append(Bytes::from_static(b"late"));
        assert_eq!(o.len(), 2);
    }
}
