//! Storage: metadata (`metadata.json`, written atomically) and blob bytes.

pub(crate) mod blobs;
pub(crate) mod meta;

use crate::time::Clock;
use blobs::BlobStore;
use meta::Registry;
use std::io;
use std::path::{Path, PathBuf};
use tokio::sync::RwLock;

/// File holding the metadata in directory mode.
const METADATA_FILE: &str = "metadata.json";

/// All persistent state of the emulator.
#[derive(Debug)]
pub(crate) struct Store {
    /// Repositories, tags and manifests.
    pub meta: RwLock<Registry>,
    /// Blob bytes.
    pub blobs: BlobStore,
    /// Data directory (directory mode).
    pub dir: Option<PathBuf>,
    /// Strictly increasing timestamps.
    pub clock: Clock,
}

impl Store {
    /// Opens (and in directory mode loads) the store.
    pub(crate) async fn open(dir: Option<&Path>, memory_budget: u64) -> io::Result<Self> {
        let blobs = BlobStore::open(dir, memory_budget).await?;
        let registry = match dir {
            Some(dir) => match tokio::fs::read(dir.join(METADATA_FILE)).await {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{METADATA_FILE}: {e}"))
                })?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => Registry::default(),
                Err(e) => return Err(e),
            },
            None => Registry::default(),
        };
        let clock = Clock::starting_after(registry.max_timestamp());
        Ok(Store {
            meta: RwLock::new(registry),
            blobs,
            dir: dir.map(Path::to_path_buf),
            clock,
        })
    }

    /// Writes the metadata (temp file + rename) in directory mode; call with the write lock held.
    pub(crate) async fn persist(&self, registry: &Registry) -> io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let bytes = serde_json::to_vec(registry).map_err(io::Error::other)?;
        let tmp = dir.join(format!("{METADATA_FILE}.{}.tmp", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, dir.join(METADATA_FILE)).await
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
            store.persist(&reg).await.unwrap();
        }
        let store = Store::open(Some(dir.path()), u64::MAX).await.unwrap();
        let reg = store.meta.read().await;
        assert!(reg.repos.contains_key("a/b"));
        // The clock continues after the stored timestamps.
        assert!(store.clock.now() > reg.repos["a/b"].updated);
    }
}
