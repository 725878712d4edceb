//! Storage: metadata (an embedded `redb` database in directory mode, one row per repository)
//! and blob bytes (files addressed by digest).
//!
//! The in-memory [`Registry`] is the read model: reads never touch the database. A change to a
//! repository is applied to the model under the write lock, the repository's new JSON is
//! queued to the writer thread (in lock order) and the lock is released; the handler answers
//! once the writer has committed the row. The writer groups whatever is queued into one
//! transaction, so a write costs O(size of the changed repository).

pub(crate) mod blobs;
pub(crate) mod meta;

use crate::time::Clock;
use blobs::BlobStore;
use meta::{Registry, Repo};
use redb::{Database, ReadableTable, TableDefinition};
use std::io;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use tokio::sync::{oneshot, RwLock, RwLockWriteGuard};

/// The pre-database metadata file of directory mode; migrated into the database once.
const METADATA_FILE: &str = "metadata.json";
/// What a migrated `metadata.json` is renamed to.
const MIGRATED_FILE: &str = "metadata.json.migrated";
/// The database file in directory mode.
const DB_FILE: &str = "metadata.redb";
/// Repository name → that repository's JSON.
const REPOS: TableDefinition<&str, &[u8]> = TableDefinition::new("repos");
/// At most this many queued changes go into one transaction.
const MAX_BATCH: usize = 256;

/// One queued change: a repository's new JSON (`None`: deleted) and who waits for the commit.
struct Change {
    /// Repository name.
    name: String,
    /// New JSON, or `None` to delete the row.
    value: Option<Vec<u8>>,
    /// Told once the change is committed.
    done: oneshot::Sender<io::Result<()>>,
}

/// The writer thread of directory mode.
struct Writer {
    /// Queue to the thread; `None` once closed.
    tx: Mutex<Option<mpsc::Sender<Change>>>,
    /// The thread, joined on drop so that the database file is closed afterwards.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut thread) = self.thread.lock() {
            if let Some(handle) = thread.take() {
                let _ = handle.join();
            }
        }
    }
}

/// All persistent state of the emulator.
#[derive(Debug)]
pub(crate) struct Store {
    /// Repositories, tags and manifests.
    pub meta: RwLock<Registry>,
    /// Blob bytes.
    pub blobs: BlobStore,
    /// Strictly increasing timestamps.
    pub clock: Clock,
    /// The database writer (directory mode).
    writer: Option<Writer>,
}

/// A database error as an I/O error.
fn db_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{DB_FILE}: {e}"))
}

/// Opens the database, migrates a `metadata.json` into it and loads every repository.
fn open_db(dir: &Path) -> io::Result<(Database, Registry)> {
    let db = Database::create(dir.join(DB_FILE)).map_err(db_err)?;
    let legacy = dir.join(METADATA_FILE);
    match std::fs::read(&legacy) {
        Ok(bytes) => {
            let old: Registry = serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{METADATA_FILE}: {e}"))
            })?;
            let txn = db.begin_write().map_err(db_err)?;
            {
                let mut table = txn.open_table(REPOS).map_err(db_err)?;
                for (name, repo) in &old.repos {
                    let value = serde_json::to_vec(repo).map_err(io::Error::other)?;
                    table
                        .insert(name.as_str(), value.as_slice())
                        .map_err(db_err)?;
                }
            }
            txn.commit().map_err(db_err)?;
            std::fs::rename(&legacy, dir.join(MIGRATED_FILE))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Make sure the table exists, then read it.
    let txn = db.begin_write().map_err(db_err)?;
    txn.open_table(REPOS).map_err(db_err)?;
    txn.commit().map_err(db_err)?;
    let mut registry = Registry::default();
    let txn = db.begin_read().map_err(db_err)?;
    let table = txn.open_table(REPOS).map_err(db_err)?;
    for row in table.iter().map_err(db_err)? {
        let (key, value) = row.map_err(db_err)?;
        let repo: Repo = serde_json::from_slice(value.value()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{DB_FILE}: repository {}: {e}", key.value()),
            )
        })?;
        registry.repos.insert(key.value().to_owned(), repo);
    }
    drop(table);
    drop(txn);
    Ok((db, registry))
}

/// Commits one batch of changes.
fn commit(db: &Database, batch: &[Change]) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut table = txn.open_table(REPOS).map_err(|e| e.to_string())?;
        for change in batch {
            match &change.value {
                Some(v) => table.insert(change.name.as_str(), v.as_slice()).map(|_| ()),
                None => table.remove(change.name.as_str()).map(|_| ()),
            }
            .map_err(|e| e.to_string())?;
        }
    }
    txn.commit().map_err(|e| e.to_string())
}

/// The writer thread: commits queued changes in order, grouping what is already queued.
fn writer_loop(db: Database, rx: mpsc::Receiver<Change>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let result = commit(&db, &batch);
        for change in batch {
            let _ = change.done.send(result.clone().map_err(db_err));
        }
    }
}

impl Store {
    /// Opens (and in directory mode loads) the store.
    pub(crate) async fn open(dir: Option<&Path>, memory_budget: u64) -> io::Result<Self> {
        let blobs = BlobStore::open(dir, memory_budget).await?;
        let (registry, writer) = match dir {
            Some(dir) => {
                let path = dir.to_path_buf();
                let (db, registry) = tokio::task::spawn_blocking(move || open_db(&path))
                    .await
                    .map_err(io::Error::other)??;
                let (tx, rx) = mpsc::channel();
                let thread = std::thread::Builder::new()
                    .name("acr-emulator-db".into())
                    .spawn(move || writer_loop(db, rx))?;
                let writer = Writer {
                    tx: Mutex::new(Some(tx)),
                    thread: Mutex::new(Some(thread)),
                };
                (registry, Some(writer))
            }
            None => (Registry::default(), None),
        };
        let clock = Clock::starting_after(registry.max_timestamp());
        Ok(Store {
            meta: RwLock::new(registry),
            blobs,
            clock,
            writer,
        })
    }

    /// Persists repository `name` as it is in `reg` (or its removal) in directory mode, then
    /// releases the write lock and waits for the commit. In memory mode it only releases the
    /// lock.
    pub(crate) async fn persist_repo(
        &self,
        reg: RwLockWriteGuard<'_, Registry>,
        name: &str,
    ) -> io::Result<()> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let value = match reg.repos.get(name) {
            Some(repo) => Some(serde_json::to_vec(repo).map_err(io::Error::other)?),
            None => None,
        };
        let (done, wait) = oneshot::channel();
        let change = Change {
            name: name.to_owned(),
            value,
            done,
        };
        {
            // Queued while the write lock is held: the queue has the lock's order.
            let tx = writer
                .tx
                .lock()
                .map_err(|_| db_err("writer lock poisoned"))?;
            tx.as_ref()
                .ok_or_else(|| db_err("closed"))?
                .send(change)
                .map_err(|_| db_err("writer stopped"))?;
        }
        drop(reg);
        wait.await.map_err(|_| db_err("writer stopped"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meta::Repo;

    #[tokio::test]
    async fn directory_metadata_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(Some(dir.path()), u64::MAX).await.unwrap();
            let mut reg = store.meta.write().await;
            let now = store.clock.now();
            reg.repos.insert("a/b".into(), Repo::new(now));
            store.persist_repo(reg, "a/b").await.unwrap();
            let mut reg = store.meta.write().await;
            reg.repos.insert("c".into(), Repo::new(store.clock.now()));
            store.persist_repo(reg, "c").await.unwrap();
            let mut reg = store.meta.write().await;
            reg.repos.remove("c");
            store.persist_repo(reg, "c").await.unwrap();
        }
        let store = Store::open(Some(dir.path()), u64::MAX).await.unwrap();
        let reg = store.meta.read().await;
        assert!(reg.repos.contains_key("a/b"));
        assert!(!reg.repos.contains_key("c"));
        // The clock continues after the stored timestamps.
        assert!(store.clock.now() > reg.repos["a/b"].updated);
    }

    #[tokio::test]
    async fn metadata_json_is_migrated_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = Registry::default();
        old.repos
            .insert("old/repo".into(), Repo::new(crate::time::Timestamp(5)));
        std::fs::write(
            dir.path().join(METADATA_FILE),
            serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
        {
            let store = Store::open(Some(dir.path()), u64::MAX).await.unwrap();
            assert!(store.meta.read().await.repos.contains_key("old/repo"));
        }
        assert!(!dir.path().join(METADATA_FILE).exists());
        assert!(dir.path().join(MIGRATED_FILE).exists());
        let store = Store::open(Some(dir.path()), u64::MAX).await.unwrap();
        assert!(store.meta.read().await.repos.contains_key("old/repo"));
    }

    #[tokio::test]
    async fn memory_mode_keeps_no_database() {
        let store = Store::open(None, u64::MAX).await.unwrap();
        assert!(store.writer.is_none());
    }
}
