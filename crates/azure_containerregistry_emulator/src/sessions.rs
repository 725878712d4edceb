//! Open blob upload sessions: at most a configured number at once, each discarded after a
//! configured idle time; a session holds no file descriptor between requests.

use crate::storage::blobs::{BlobStore, UploadData};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An open blob upload.
#[derive(Debug)]
pub(crate) struct UploadSession {
    /// Repository it belongs to.
    pub repo: String,
    /// Bytes received.
    pub offset: u64,
    /// Running sha256 of the bytes received.
    pub hasher: sha2::Sha256,
    /// The bytes (None once committed or discarded).
    pub data: Option<UploadData>,
    /// Start time.
    pub started: Timestamp,
    /// Incremented on every step so `_state` changes.
    pub step: u64,
    /// Last time a request used the session.
    pub last_active: Instant,
}

/// A session shared by the requests that use it.
pub(crate) type SharedSession = Arc<tokio::sync::Mutex<UploadSession>>;

/// The open sessions by id.
#[derive(Debug)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, SharedSession>>,
    max: usize,
    idle: Duration,
}

impl Sessions {
    /// No sessions; at most `max` at once, each expiring after `idle` unused.
    pub(crate) fn new(max: usize, idle: Duration) -> Self {
        Sessions {
            map: Mutex::default(),
            max,
            idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SharedSession>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether another session may open now.
    pub(crate) fn has_room(&self) -> bool {
        self.lock().len() < self.max
    }

    /// Adds a session; gives it back when `max` are open.
    pub(crate) fn insert(
        &self,
        id: String,
        session: UploadSession,
    ) -> Result<(), Box<UploadSession>> {
        let mut map = self.lock();
        if map.len() >= self.max {
            return Err(Box::new(session));
        }
        map.insert(id, Arc::new(tokio::sync::Mutex::new(session)));
        Ok(())
    }

    /// The session with this id, if open.
    pub(crate) fn get(&self, id: &str) -> Option<SharedSession> {
        self.lock().get(id).cloned()
    }

    /// Forgets a session.
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Number of open sessions.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether a session has been idle too long (callers hold its lock).
    pub(crate) fn expired(&self, session: &UploadSession) -> bool {
        session.last_active.elapsed() > self.idle
    }

    /// Discards every session idle for longer than the idle time (those in use are skipped).
    pub(crate) async fn sweep(&self, blobs: &BlobStore) {
        let mut stale = Vec::new();
        {
            let mut map = self.lock();
            map.retain(|_, s| {
                let Ok(mut guard) = s.try_lock() else {
                    return true;
                };
                if guard.last_active.elapsed() <= self.idle {
                    return true;
                }
                if let Some(data) = guard.data.take() {
                    stale.push(data);
                }
                false
            });
        }
        for data in stale {
            blobs.discard_upload(data).await;
        }
    }

    /// How often [`Sessions::sweep`] should run.
    pub(crate) fn sweep_interval(&self) -> Duration {
        (self.idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(30))
    }
}
