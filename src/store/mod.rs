//! The live store: a concurrent map from [`ObjectKey`] to the current [`Object`] at that key,
//! plus wake-ups for requests waiting for a key that does not exist yet.
//!
//! Rules (see `dashmap` notes in `rust-stack.md`): an `Arc<Object>` is cloned out of the map
//! and the guard dropped before any `.await`; nothing here awaits while holding a guard.

pub mod key;
pub mod object;
pub mod persist;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Notify;

pub use key::{KeyError, ObjectKey};
pub use object::{CompleteBody, Object, ObjectReader, ObjectState, ReadStep};
pub use persist::{PersistError, Persister};

use crate::error::ErrorKind;

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The request path is not a valid key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Nothing is stored at the key.
    #[error("no object at {0}")]
    NotFound(String),
    /// The upload exceeded the configured size limit.
    #[error("object {key} exceeds the {limit}-byte limit")]
    TooLarge { key: String, limit: u64 },
    /// Reading or writing the data dir failed.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

impl StoreError {
    /// The error class for the one HTTP mapping in `server::http`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Key(e) => e.kind(),
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::TooLarge { .. } => ErrorKind::TooLarge,
            StoreError::Persist(e) => e.kind(),
        }
    }
}

/// The shared map of objects.
#[derive(Debug, Default)]
pub struct Store {
    objects: DashMap<ObjectKey, Arc<Object>>,
    waiters: DashMap<ObjectKey, Arc<Notify>>,
    /// Per-key persistence order: the highest object ID written so far, held while writing.
    persist_locks: DashMap<ObjectKey, Arc<tokio::sync::Mutex<u64>>>,
    next_id: AtomicU64,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    /// Starts a new upload at `key`: the new object replaces the old one for every reader
    /// that arrives from now on (readers of the old one keep it). Wakes waiters for `key`.
    pub fn begin(&self, key: ObjectKey) -> (Arc<Object>, Option<Arc<Object>>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let object = Arc::new(Object::new(key.clone(), id));
        let old = self.objects.insert(key.clone(), Arc::clone(&object));
        if let Some((_, notify)) = self.waiters.remove(&key) {
            notify.notify_waiters();
        }
        (object, old)
    }

    /// The current object at `key`, whatever its state.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<Object>> {
        self.objects.get(key).map(|r| Arc::clone(r.value()))
    }

    /// Whether an object is in memory at `key`.
    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.objects.contains_key(key)
    }

    /// Removes `key` only if it still maps to this very object (a re-PUT may have replaced
    /// it meanwhile). Returns whether it was removed.
    pub fn remove_if_current(&self, object: &Arc<Object>) -> bool {
        self.objects
            .remove_if(object.key(), |_, current| Arc::ptr_eq(current, object))
            .is_some()
    }

    /// After a failed upload: puts `previous` back at the key if `failed` is still the
    /// current object there, or removes the key when there is nothing to put back.
    pub fn replace_failed(&self, failed: &Arc<Object>, previous: Option<Arc<Object>>) {
        match previous {
            Some(previous) => {
                if let Some(mut current) = self.objects.get_mut(failed.key()) {
                    if Arc::ptr_eq(current.value(), failed) {
                        *current.value_mut() = previous;
                    }
                }
            }
            None => {
                self.remove_if_current(failed);
            }
        }
    }

    /// The persistence lock of `key` (see [`Store::release_persist_lock`]).
    pub fn persist_lock(&self, key: &ObjectKey) -> Arc<tokio::sync::Mutex<u64>> {
        Arc::clone(self.persist_locks.entry(key.clone()).or_default().value())
    }

    /// Drops the lock entry of `key` when no other writer holds it.
    pub fn release_persist_lock(&self, key: &ObjectKey, lock: Arc<tokio::sync::Mutex<u64>>) {
        self.persist_locks.remove_if(key, |_, l| {
            Arc::ptr_eq(l, &lock) && Arc::strong_count(l) <= 2
        });
    }

    /// Every object in memory (a snapshot; for sweeping and listings).
    pub fn snapshot(&self) -> Vec<Arc<Object>> {
        self.objects.iter().map(|r| Arc::clone(r.value())).collect()
    }

    /// Number of objects in memory.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Waits until an object exists at `key` or `timeout` passes; returns it if it came.
    /// Costs nothing while waiting (no polling).
    pub async fn wait_for(&self, key: &ObjectKey, timeout: Duration) -> Option<Arc<Object>> {
        let notify = Arc::clone(
            self.waiters
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Notify::new()))
                .value(),
        );
        let notified = notify.notified();
        tokio::pin!(notified);
        // Register before checking, so an insert between the check and the await is not lost.
        notified.as_mut().enable();
        if let Some(found) = self.get(key) {
            return Some(found);
        }
        let _ = tokio::time::timeout(timeout, notified).await;
        let found = self.get(key);
        // Drop the waiter entry when nobody else holds it (map + this one).
        self.waiters.remove_if(key, |_, n| {
            Arc::ptr_eq(n, &notify) && Arc::strong_count(n) <= 2
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key(s: &str) -> ObjectKey {
        ObjectKey::from_decoded(s).unwrap()
    }

    #[tokio::test]
    async fn re_put_replaces_for_new_readers_only() {
        let store = Store::new();
        let (first, _) = store.begin(key("a/x.m4s"));
        first.append(Bytes::from_static(b"old"));
        let mut old_reader = first.reader();
        let (second, replaced) = store.begin(key("a/x.m4s"));
        assert!(Arc::ptr_eq(&replaced.unwrap(), &first));
        second.append(Bytes::from_static(b"new"));
        first.complete();
        assert_eq!(
            old_reader.next().await,
            ReadStep::Data(Bytes::from_static(b"old"))
        );
        let current = store.get(&key("a/x.m4s")).unwrap();
        assert!(Arc::ptr_eq(&current, &second));
        assert!(!store.remove_if_current(&first));
    }

    #[tokio::test]
    async fn waiters_wake_when_the_object_appears() {
        let store = Arc::new(Store::new());
        let s2 = Arc::clone(&store);
        let w =
            tokio::spawn(async move { s2.wait_for(&key("a/7.m4s"), Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (o, _) = store.begin(key("a/7.m4s"));
        let got = w.await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&got, &o));
        assert!(store.waiters.is_empty(), "waiter entry cleaned up");
    }

    #[tokio::test]
    async fn waiting_times_out_empty() {
        let store = Store::new();
        let t = std::time::Instant::now();
        assert!(store
            .wait_for(&key("a/8.m4s"), Duration::from_millis(50))
            .await
            .is_none());
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert!(store.waiters.is_empty());
    }
}
