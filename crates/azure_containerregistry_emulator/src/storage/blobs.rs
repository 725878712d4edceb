//! Content-addressed blob bytes (memory or `blobs/sha256/<hex>` files) and upload buffers.

use crate::names::digest_hex;
use axum::body::Body;
use bytes::Bytes;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Where blob bytes live.
#[derive(Debug)]
pub(crate) enum BlobStore {
    /// In a map, with the bytes held in memory (stored and being uploaded) counted.
    Memory(RwLock<HashMap<String, Bytes>>, MemoryBudget),
    /// Files under a data directory.
    Dir(PathBuf),
}

/// Bytes held in memory against a maximum.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    used: AtomicU64,
    max: u64,
}

impl MemoryBudget {
    /// Takes `n` bytes of the budget; `false` (nothing taken) when that would pass the maximum.
    pub(crate) fn reserve(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.max)
            })
            .is_ok()
    }

    /// Gives `n` bytes back.
    pub(crate) fn release(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }
}

/// Bytes received so far for one upload session.
#[derive(Debug)]
pub(crate) enum UploadData {
    /// In memory.
    Memory(Vec<u8>),
    /// A temporary file under `uploads/`, opened only while a request writes to it.
    File {
        /// Path of the file.
        path: PathBuf,
    },
}

/// Where one request writes its chunks: the session's buffer, or its file opened for this request.
#[derive(Debug)]
pub(crate) enum UploadWriter<'a> {
    /// The in-memory buffer.
    Memory(&'a mut Vec<u8>),
    /// The upload file, positioned at the session's offset.
    File(tokio::fs::File),
}

impl UploadData {
    /// Opens the data for appending at `offset` (the file is closed when the writer drops).
    pub(crate) async fn writer(&mut self, offset: u64) -> io::Result<UploadWriter<'_>> {
        match self {
            UploadData::Memory(v) => Ok(UploadWriter::Memory(v)),
            UploadData::File { path } => {
                let mut file = tokio::fs::OpenOptions::new().write(true).open(path).await?;
                file.seek(io::SeekFrom::Start(offset)).await?;
                Ok(UploadWriter::File(file))
            }
        }
    }

    /// Cuts the data back to `len` bytes (after a failed chunk).
    pub(crate) async fn truncate(&mut self, len: u64) -> io::Result<()> {
        match self {
            UploadData::Memory(v) => {
                v.truncate(usize::try_from(len).unwrap_or(usize::MAX));
                Ok(())
            }
            UploadData::File { path } => {
                let file = tokio::fs::OpenOptions::new().write(true).open(path).await?;
                file.set_len(len).await
            }
        }
    }
}

impl UploadWriter<'_> {
    /// Appends a chunk.
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        match self {
            UploadWriter::Memory(v) => {
                v.extend_from_slice(chunk);
                Ok(())
            }
            UploadWriter::File(file) => file.write_all(chunk).await,
        }
    }

    /// Flushes what was written (files).
    pub(crate) async fn finish(self) -> io::Result<()> {
        match self {
            UploadWriter::Memory(_) => Ok(()),
            UploadWriter::File(mut file) => file.flush().await,
        }
    }
}

fn lock_err() -> io::Error {
    io::Error::other("blob store lock poisoned")
}

impl BlobStore {
    /// Opens the store; in directory mode creates `blobs/sha256` and empties `uploads/`.
    pub(crate) async fn open(dir: Option<&Path>, memory_budget: u64) -> io::Result<Self> {
        match dir {
            None => Ok(BlobStore::Memory(
                RwLock::new(HashMap::new()),
                MemoryBudget {
                    used: AtomicU64::new(0),
                    max: memory_budget,
                },
            )),
            Some(dir) => {
                tokio::fs::create_dir_all(dir.join("blobs").join("sha256")).await?;
                let uploads = dir.join("uploads");
                if tokio::fs::try_exists(&uploads).await.unwrap_or(false) {
                    tokio::fs::remove_dir_all(&uploads).await?;
                }
                tokio::fs::create_dir_all(&uploads).await?;
                Ok(BlobStore::Dir(dir.to_path_buf()))
            }
        }
    }

    fn blob_path(dir: &Path, digest: &str) -> PathBuf {
        dir.join("blobs").join("sha256").join(digest_hex(digest))
    }

    /// Size of a stored blob.
    pub(crate) async fn size(&self, digest: &str) -> Option<u64> {
        match self {
            BlobStore::Memory(m, _) => m.read().ok()?.get(digest).map(|b| b.len() as u64),
            BlobStore::Dir(dir) => tokio::fs::metadata(Self::blob_path(dir, digest))
                .await
                .ok()
                .map(|m| m.len()),
        }
    }

    /// Whole blob, if it exists and is at most `limit` bytes.
    pub(crate) async fn read_all(&self, digest: &str, limit: u64) -> Option<Bytes> {
        match self {
            BlobStore::Memory(m, _) => m
                .read()
                .ok()?
                .get(digest)
                .filter(|b| b.len() as u64 <= limit)
                .cloned(),
            BlobStore::Dir(dir) => {
                let path = Self::blob_path(dir, digest);
                let meta = tokio::fs::metadata(&path).await.ok()?;
                if meta.len() > limit {
                    return None;
                }
                tokio::fs::read(path).await.ok().map(Bytes::from)
            }
        }
    }

    /// A body streaming bytes `start..=end` of a blob.
    pub(crate) async fn range_body(&self, digest: &str, start: u64, end: u64) -> io::Result<Body> {
        match self {
            BlobStore::Memory(m, _) => {
                let guard = m.read().map_err(|_| lock_err())?;
                let blob = guard
                    .get(digest)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
                let (s, e) = (start as usize, (end as usize + 1).min(blob.len()));
                Ok(Body::from(blob.slice(s.min(e)..e)))
            }
            BlobStore::Dir(dir) => {
                let mut file = tokio::fs::File::open(Self::blob_path(dir, digest)).await?;
                file.seek(io::SeekFrom::Start(start)).await?;
                let reader = file.take(end + 1 - start);
                Ok(Body::from_stream(
                    tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024),
                ))
            }
        }
    }

    /// The memory budget (memory mode).
    pub(crate) fn budget(&self) -> Option<&MemoryBudget> {
        match self {
            BlobStore::Memory(_, budget) => Some(budget),
            BlobStore::Dir(_) => None,
        }
    }

    /// Stores small content (manifests) under its digest.
    pub(crate) async fn put_bytes(&self, digest: &str, data: Bytes) -> io::Result<()> {
        match self {
            BlobStore::Memory(m, budget) => {
                let mut map = m.write().map_err(|_| lock_err())?;
                if map.contains_key(digest) {
                    return Ok(());
                }
                if !budget.reserve(data.len() as u64) {
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        "memory budget exhausted",
                    ));
                }
                map.insert(digest.to_owned(), data);
                Ok(())
            }
            BlobStore::Dir(dir) => {
                let path = Self::blob_path(dir, digest);
                if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                    return Ok(());
                }
                let tmp = dir
                    .join("uploads")
                    .join(format!("put-{}", uuid::Uuid::new_v4()));
                tokio::fs::write(&tmp, &data).await?;
                tokio::fs::rename(&tmp, &path).await
            }
        }
    }

    /// A fresh buffer for an upload session.
    pub(crate) async fn new_upload(&self, id: &str) -> io::Result<UploadData> {
        match self {
            BlobStore::Memory(..) => Ok(UploadData::Memory(Vec::new())),
            BlobStore::Dir(dir) => {
                let path = dir.join("uploads").join(id);
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .write(true)
                    .open(&path)
                    .await?;
                Ok(UploadData::File { path })
            }
        }
    }

    /// Makes a verified upload visible under `digest`.
    pub(crate) async fn commit_upload(&self, data: UploadData, digest: &str) -> io::Result<()> {
        match (self, data) {
            (BlobStore::Memory(m, budget), UploadData::Memory(v)) => {
                let mut map = m.write().map_err(|_| lock_err())?;
                if map.contains_key(digest) {
                    // Already stored: the upload's bytes are not kept twice.
                    budget.release(v.len() as u64);
                } else {
                    map.insert(digest.to_owned(), Bytes::from(v));
                }
                Ok(())
            }
            (BlobStore::Dir(dir), UploadData::File { path }) => {
                let file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .await?;
                file.sync_all().await?;
                drop(file);
                tokio::fs::rename(&path, Self::blob_path(dir, digest)).await
            }
            _ => Err(io::Error::other("upload buffer does not match the store")),
        }
    }

    /// Throws an upload's bytes away.
    pub(crate) async fn discard_upload(&self, data: UploadData) {
        match data {
            UploadData::File { path } => {
                let _ = tokio::fs::remove_file(path).await;
            }
            UploadData::Memory(v) => {
                if let Some(budget) = self.budget() {
                    budget.release(v.len() as u64);
                }
            }
        }
    }
}
