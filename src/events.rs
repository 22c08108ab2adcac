//! What ingest tells the rooms beside it (archive, recordings, and later metrics and
//! webhooks): a [`tokio::sync::broadcast`] of small events, published once by the ingest
//! side and never waited on. A subscriber that falls behind loses the oldest events
//! (`RecvError::Lagged`) and says so in the log; ingest is never held up by it.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::cmaf::{CmafChunk, InitInfo};
use crate::store::ObjectKey;

/// Events kept for a slow subscriber before it starts losing the oldest.
pub const CAPACITY: usize = 4096;

/// A finished upload.
#[derive(Debug)]
pub struct CompletedObject {
    /// Where it was pushed.
    pub key: ObjectKey,
    /// The whole body (shared, not copied).
    pub bytes: Bytes,
    /// Its CMAF chunks (empty for non-ISO-BMFF bodies and init segments).
    pub chunks: Vec<CmafChunk>,
    /// Its track facts, when it is an init segment (`ftyp moov`).
    pub init: Option<Arc<InitInfo>>,
    /// When the upload ended (Unix time).
    pub finished_at: SystemTime,
    /// Whether the same bytes are in the data dir at `key` (written before this event).
    pub persisted: bool,
}

/// One thing that happened at ingest.
#[derive(Debug, Clone)]
pub enum IngestEvent {
    /// An upload completed (and was persisted, when persistence is on).
    ObjectComplete(Arc<CompletedObject>),
    /// The encoder sent DELETE for a key.
    Deleted(ObjectKey),
}

/// The sending side, cloned into ingest; rooms call [`EventBus::subscribe`].
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<IngestEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    /// A bus holding up to [`CAPACITY`] events per subscriber.
    pub fn new() -> EventBus {
        EventBus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    /// Publishes an event; with no subscriber it is dropped.
    pub fn publish(&self, event: IngestEvent) {
        let _ = self.tx.send(event);
    }

    /// A new receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<IngestEvent> {
        self.tx.subscribe()
    }
}
