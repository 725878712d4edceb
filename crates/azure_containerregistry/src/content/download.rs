//! Blob downloads: a verified stream of bytes, resumed with `Range` after a broken connection,
//! optionally fetched as parallel ranges; and downloads to a file that appears only once
//! verified.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use azure_core::error::ErrorKind;
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};

use super::file_writer::FileWriter;
use super::progress::{report, ProgressCallback};
use super::{header, ContainerRegistryContentClient, Hasher};
use crate::error::{digest_mismatch, invalid_argument, rest_error, transport_error};
use crate::reference::validate_digest;

/// Bytes per write of a download to a file (4 MiB; two such buffers are in memory).
const FILE_WRITE_SIZE: usize = 4 * 1024 * 1024;

/// The default size of each range of a parallel download (8 MiB).
const DEFAULT_RANGE_SIZE: usize = 8 * 1024 * 1024;

/// Options of [`ContainerRegistryContentClient::download_blob`] and
/// [`download_blob_to_file`](ContainerRegistryContentClient::download_blob_to_file).
#[derive(Clone, Debug)]
pub struct DownloadBlobOptions {
    /// Ranges fetched at once (default 1: one sequential request). Above 1, a blob larger than
    /// [`range_size`](Self::range_size) is fetched as ranges, up to this many in flight, and
    /// still hashed in order. Holds up to `concurrency × range_size` bytes in memory. Must not
    /// be 0.
    pub concurrency: Option<usize>,
    /// The size of each range of a parallel download (default 8 MiB). Must not be 0.
    pub range_size: Option<usize>,
    /// How many times a broken download (or range) is resumed with `Range` (default 3).
    pub max_resume_attempts: u32,
    /// Called with `(bytes received, total if known)` as data arrives.
    pub progress: Option<ProgressCallback>,
}

impl Default for DownloadBlobOptions {
    fn default() -> Self {
        Self {
            concurrency: None,
            range_size: None,
            max_resume_attempts: 3,
            progress: None,
        }
    }
}

/// The result of [`download_blob_to_file`](ContainerRegistryContentClient::download_blob_to_file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadBlobResult {
    /// The verified digest.
    pub digest: String,
    /// Bytes written.
    pub size: u64,
}

/// The bytes of a blob, checked against its digest as they arrive.
///
/// The stream holds back the last chunk until the whole blob has been hashed: when the content
/// does not match the digest, the stream ends with an error carrying a
/// [`DigestMismatch`](crate::DigestMismatch) instead of that chunk, so a consumer that stops at
/// the first error never accepts wrong content as complete.
pub struct DownloadBlobStream {
    inner: BoxStream<'static, azure_core::Result<Bytes>>,
    size: Option<u64>,
    digest: String,
}

impl std::fmt::Debug for DownloadBlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadBlobStream")
            .field("digest", &self.digest)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl DownloadBlobStream {
    /// The blob's size, when the registry said.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// The digest the content is checked against.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Reads the whole blob into memory (verified). Only for blobs known to be small.
    pub async fn collect_bytes(mut self) -> azure_core::Result<Bytes> {
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = self.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.freeze())
    }
}

impl Stream for DownloadBlobStream {
    type Item = azure_core::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

type RawBody = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send + Sync>>;

/// An open `GET` of a blob from some offset.
struct Opened {
    body: RawBody,
    /// Bytes at the start of the body to drop (a registry that ignored `Range`).
    skip: u64,
    total: Option<u64>,
}

/// `Content-Range: bytes a-b/total` → (a, b, total).
fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total))
}

impl ContainerRegistryContentClient {
    /// Downloads a blob as a stream of [`Bytes`], verified against `digest`: a mismatch ends
    /// the stream with a [`DigestMismatch`](crate::DigestMismatch) error in place of the final
    /// chunk. A broken connection is resumed with `Range` from the bytes already received (at
    /// most [`DownloadBlobOptions::max_resume_attempts`] times). Registry redirects to storage
    /// are followed without the `Authorization` header.
    ///
    /// The first request is made before this returns, so a missing blob is an error here.
    pub async fn download_blob(
        &self,
        digest: &str,
        options: Option<DownloadBlobOptions>,
    ) -> azure_core::Result<DownloadBlobStream> {
        validate_digest(digest)?;
        let options = options.unwrap_or_default();
        let concurrency = match options.concurrency {
            Some(0) => return Err(invalid_argument("concurrency", "must be at least 1")),
            Some(n) => n,
            None => 1,
        };
        let range_size = match options.range_size {
            Some(0) => return Err(invalid_argument("range_size", "must be at least 1 byte")),
            Some(n) => n as u64,
            None => DEFAULT_RANGE_SIZE as u64,
        };
        if concurrency > 1 {
            let size = self.blob_size(digest).await?;
            if let Some(size) = size.filter(|&s| s > range_size) {
                return Ok(self.parallel(digest, size, concurrency, range_size, &options));
            }
        }
        self.sequential(digest, &options).await
    }

    /// Downloads a blob into `path`. The bytes go to a temporary file in the same directory,
    /// which is renamed to `path` only after the digest has been verified; on any failure
    /// (including a digest mismatch) the temporary file is removed and `path` is left as it was.
    pub async fn download_blob_to_file(
        &self,
        digest: &str,
        path: impl AsRef<Path>,
        options: Option<DownloadBlobOptions>,
    ) -> azure_core::Result<DownloadBlobResult> {
        let path = path.as_ref();
        let io = |e: std::io::Error, p: &Path| {
            azure_core::Error::with_message(ErrorKind::Io, format!("{}: {e}", p.display()))
        };
        let file_name = path.file_name().ok_or_else(|| {
            invalid_argument("path", format!("{}: not a file path", path.display()))
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut stream = self.download_blob(digest, options).await?;
        let suffix: u64 = rand::random();
        let temp = dir.join(format!(
            ".{}.{suffix:016x}.partial",
            file_name.to_string_lossy()
        ));
        let mut guard = TempFile {
            path: Some(temp.clone()),
        };
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await
            .map_err(|e| io(e, &temp))?
            .into_std()
            .await;
        let mut writer = FileWriter::new(file, FILE_WRITE_SIZE);
        let mut size = 0u64;
        let written: azure_core::Result<()> = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                writer.write(&chunk).await.map_err(|e| io(e, &temp))?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = written {
            // Closed before the guard removes it.
            writer.abandon().await;
            return Err(e);
        }
        writer.finish().await.map_err(|e| io(e, &temp))?;
        tokio::fs::rename(&temp, path)
            .await
            .map_err(|e| io(e, path))?;
        guard.path = None;
        Ok(DownloadBlobResult {
            digest: digest.to_string(),
            size,
        })
    }

    /// The blob's size from a `HEAD` (`None` when the registry does not say).
    async fn blob_size(&self, digest: &str) -> azure_core::Result<Option<u64>> {
        let response = self
            .pipeline
            .rest()
            .check_blob_exists(&self.repository, digest, None)
            .await
            .map_err(rest_error)?;
        Ok(response.content_length())
    }

    /// `GET` the blob from `offset` (with `Range: bytes=<offset>-` when not 0).
    async fn open_from(&self, digest: &str, offset: u64) -> azure_core::Result<Opened> {
        let range = (offset > 0).then(|| format!("bytes={offset}-"));
        let response = self
            .pipeline
            .rest()
            .get_blob(&self.repository, digest, range.as_deref())
            .await
            .map_err(rest_error)?;
        let headers = response.headers().clone();
        let status = response.status().as_u16();
        let content_length = response.content_length();
        let body = response.into_inner_stream();
        if status == 206 {
            let (a, _, total) = header(&headers, "content-range")
                .and_then(parse_content_range)
                .ok_or_else(|| {
                    protocol_error("a 206 answer without a valid Content-Range".into())
                })?;
            if a != offset {
                return Err(protocol_error(format!(
                    "asked for bytes from {offset}, the registry sent from {a}"
                )));
            }
            Ok(Opened {
                body,
                skip: 0,
                total,
            })
        } else {
            // 200: the whole blob (a registry may ignore `Range`).
            Ok(Opened {
                body,
                skip: offset,
                total: content_length,
            })
        }
    }

    async fn sequential(
        &self,
        digest: &str,
        options: &DownloadBlobOptions,
    ) -> azure_core::Result<DownloadBlobStream> {
        let first = self.open_from(digest, 0).await?;
        let total = first.total;
        struct State {
            client: ContainerRegistryContentClient,
            digest: String,
            opened: Option<Opened>,
            offset: u64,
            total: Option<u64>,
            attempts: u32,
            max_attempts: u32,
        }
        let state = State {
            client: self.clone(),
            digest: digest.to_string(),
            opened: Some(first),
            offset: 0,
            total,
            attempts: 0,
            max_attempts: options.max_resume_attempts,
        };
        // Raw bytes in order, resuming after transport errors; verification wraps it.
        let raw = futures::stream::unfold(Some(state), |state| async move {
            let mut st = state?;
            loop {
                if st.opened.is_none() {
                    match st.client.open_from(&st.digest, st.offset).await {
                        Ok(o) => {
                            if st.total.is_none() {
                                st.total = o.total;
                            }
                            st.opened = Some(o);
                        }
                        Err(e) => {
                            if st.attempts < st.max_attempts && is_transport(&e) {
                                st.attempts += 1;
                                tokio::time::sleep(resume_delay(st.attempts)).await;
                                continue;
                            }
                            return Some((Err(e), None));
                        }
                    }
                }
                let Some(opened) = st.opened.as_mut() else {
                    continue;
                };
                match opened.body.next().await {
                    Some(Ok(mut chunk)) => {
                        if opened.skip > 0 {
                            let drop_n = opened.skip.min(chunk.len() as u64);
                            opened.skip -= drop_n;
                            chunk = chunk.slice(drop_n as usize..);
                        }
                        if chunk.is_empty() {
                            continue;
                        }
                        st.offset += chunk.len() as u64;
                        return Some((Ok(chunk), Some(st)));
                    }
                    Some(Err(e)) => {
                        st.opened = None;
                        if st.attempts < st.max_attempts {
                            st.attempts += 1;
                            tracing::debug!(error = %e, offset = st.offset, attempt = st.attempts, "blob download broke; resuming with Range");
                            tokio::time::sleep(resume_delay(st.attempts)).await;
                            continue;
                        }
                        return Some((Err(transport_error(e)), None));
                    }
                    None => {
                        st.opened = None;
                        if st.total.is_some_and(|t| st.offset < t) {
                            // Ended early without an error: resume too.
                            if st.attempts < st.max_attempts {
                                st.attempts += 1;
                                continue;
                            }
                            return Some((
                                Err(azure_core::Error::with_message(
                                    ErrorKind::Io,
                                    format!(
                                        "the blob ended after {} of {:?} bytes",
                                        st.offset, st.total
                                    ),
                                )),
                                None,
                            ));
                        }
                        return None;
                    }
                }
            }
        });
        Ok(verified(
            raw.boxed(),
            digest,
            total,
            options.progress.clone(),
        ))
    }

    /// Ranges fetched by up to `concurrency` tasks at once; the first range in order streams
    /// straight through as its bytes arrive, the ones after it gather theirs meanwhile.
    fn parallel(
        &self,
        digest: &str,
        size: u64,
        concurrency: usize,
        range_size: u64,
        options: &DownloadBlobOptions,
    ) -> DownloadBlobStream {
        type Chunks = tokio::sync::mpsc::UnboundedReceiver<azure_core::Result<Bytes>>;
        struct State {
            client: ContainerRegistryContentClient,
            digest: String,
            /// Ranges not started yet.
            waiting: std::collections::VecDeque<(u64, u64)>,
            /// Ranges started, in blob order.
            running: std::collections::VecDeque<Chunks>,
            concurrency: usize,
            max_attempts: u32,
        }
        let state = State {
            client: self.clone(),
            digest: digest.to_string(),
            waiting: (0..size.div_ceil(range_size))
                .map(|i| (i * range_size, ((i + 1) * range_size).min(size) - 1))
                .collect(),
            running: std::collections::VecDeque::new(),
            concurrency,
            max_attempts: options.max_resume_attempts,
        };
        let raw = futures::stream::unfold(Some(state), |state| async move {
            let mut st = state?;
            loop {
                while st.running.len() < st.concurrency {
                    let Some((a, b)) = st.waiting.pop_front() else {
                        break;
                    };
                    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                    let client = st.client.clone();
                    let digest = st.digest.clone();
                    let max_attempts = st.max_attempts;
                    // Ends by itself when the stream is dropped (its sends fail).
                    tokio::spawn(async move {
                        client.fetch_range(&digest, a, b, max_attempts, &tx).await;
                    });
                    st.running.push_back(rx);
                }
                let current = st.running.front_mut()?;
                match current.recv().await {
                    Some(Ok(chunk)) => return Some((Ok(chunk), Some(st))),
                    Some(Err(e)) => return Some((Err(e), None)),
                    None => {
                        st.running.pop_front();
                    }
                }
            }
        });
        verified(raw.boxed(), digest, Some(size), options.progress.clone())
    }

    /// Sends bytes `a..=b` of the blob to `out` as they arrive, resuming within the range after
    /// a broken connection; ends with an error item when the range cannot be had.
    async fn fetch_range(
        &self,
        digest: &str,
        a: u64,
        b: u64,
        max_attempts: u32,
        out: &tokio::sync::mpsc::UnboundedSender<azure_core::Result<Bytes>>,
    ) {
        let want = b - a + 1;
        let mut received = 0u64;
        let mut attempts = 0;
        loop {
            let from = a + received;
            let range = format!("bytes={from}-{b}");
            let result = async {
                let response = self
                    .pipeline
                    .rest()
                    .get_blob(&self.repository, digest, Some(&range))
                    .await
                    .map_err(rest_error)?;
                if response.status().as_u16() != 206 {
                    return Err(protocol_error(format!(
                        "asked for {range}, the registry answered {} instead of 206",
                        response.status().as_u16()
                    )));
                }
                match header(response.headers(), "content-range").and_then(parse_content_range) {
                    Some((start, _, _)) if start == from => {}
                    _ => {
                        return Err(protocol_error(format!(
                            "asked for {range}, the registry sent another range"
                        )))
                    }
                }
                let mut body = response.into_inner_stream();
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(transport_error)?;
                    if received + chunk.len() as u64 > want {
                        return Err(protocol_error(format!(
                            "asked for {range}, the registry sent more"
                        )));
                    }
                    received += chunk.len() as u64;
                    if out.send(Ok(chunk)).is_err() {
                        // Nobody reads any more.
                        return Ok(());
                    }
                }
                Ok(())
            }
            .await;
            if out.is_closed() {
                return;
            }
            match result {
                Ok(()) if received == want => return,
                Ok(()) => {}
                Err(e) if !is_transport(&e) => {
                    let _ = out.send(Err(e));
                    return;
                }
                Err(_) => {}
            }
            if attempts >= max_attempts {
                let _ = out.send(Err(azure_core::Error::with_message(
                    ErrorKind::Io,
                    format!(
                        "bytes {a}-{b}: received {received} of {want} bytes after {attempts} resumes"
                    ),
                )));
                return;
            }
            attempts += 1;
            tokio::time::sleep(resume_delay(attempts)).await;
        }
    }
}

fn resume_delay(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(100u64 << attempt.min(6))
}

fn is_transport(e: &azure_core::Error) -> bool {
    match e.kind() {
        ErrorKind::Io | ErrorKind::Connection => true,
        ErrorKind::HttpResponse { status, .. } => {
            matches!(u16::from(*status), 408 | 429 | 500 | 502 | 503 | 504)
        }
        _ => false,
    }
}

fn protocol_error(message: String) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::DataConversion, message)
}

/// Hashes a raw byte stream in order, holds back the last chunk (the one that completes a blob
/// of known size, else the latest each time), and at the end yields it only if the digest (and
/// size, when known) match; else a `DigestMismatch` error.
fn verified(
    raw: BoxStream<'static, azure_core::Result<Bytes>>,
    digest: &str,
    size: Option<u64>,
    progress: Option<ProgressCallback>,
) -> DownloadBlobStream {
    struct V {
        raw: BoxStream<'static, azure_core::Result<Bytes>>,
        hasher: Option<Hasher>,
        held: Option<Bytes>,
        received: u64,
        digest: String,
        size: Option<u64>,
        progress: Option<ProgressCallback>,
    }
    let state = V {
        raw,
        hasher: Some(Hasher::for_digest(digest)),
        held: None,
        received: 0,
        digest: digest.to_string(),
        size,
        progress,
    };
    let inner = futures::stream::unfold(Some(state), |state| async move {
        let mut st = state?;
        loop {
            match st.raw.next().await {
                Some(Ok(chunk)) => {
                    if let Some(h) = st.hasher.as_mut() {
                        h.update(&chunk);
                    }
                    st.received += chunk.len() as u64;
                    report(&st.progress, st.received, st.size);
                    match st.size {
                        Some(size) if st.held.is_some() || st.received > size => {
                            let e = protocol_error(format!(
                                "the registry sent more than the blob's {size} bytes"
                            ));
                            return Some((Err(e), None));
                        }
                        // Not the last chunk of a blob of known size: out at once (holding
                        // each chunk back would keep the connection from reusing its buffer).
                        Some(size) if st.received < size => return Some((Ok(chunk), Some(st))),
                        Some(_) => st.held = Some(chunk),
                        None => {
                            if let Some(previous) = st.held.replace(chunk) {
                                return Some((Ok(previous), Some(st)));
                            }
                        }
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                None => {
                    let actual = st.hasher.take().map(Hasher::finish).unwrap_or_default();
                    if actual != st.digest {
                        return Some((Err(digest_mismatch(st.digest.clone(), actual)), None));
                    }
                    if let Some(size) = st.size {
                        if size != st.received {
                            return Some((
                                Err(protocol_error(format!(
                                    "expected {size} bytes, received {}",
                                    st.received
                                ))),
                                None,
                            ));
                        }
                    }
                    return st.held.take().map(|last| (Ok(last), None));
                }
            }
        }
    });
    DownloadBlobStream {
        inner: inner.boxed(),
        size,
        digest: digest.to_string(),
    }
}

/// Removes a temporary file when dropped, unless disarmed (`path = None`).
struct TempFile {
    path: Option<PathBuf>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 768-1023/1024"),
            Some((768, 1023, Some(1024)))
        );
        assert_eq!(parse_content_range("bytes 0-1/*"), Some((0, 1, None)));
        assert_eq!(parse_content_range("0-1"), None);
    }

    #[tokio::test]
    async fn mismatch_replaces_the_last_chunk() {
        let chunks: Vec<azure_core::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"hel")),
            Ok(Bytes::from_static(b"lo")),
        ];
        let good = crate::reference::sha256_digest(b"hello");
        let s = verified(futures::stream::iter(chunks).boxed(), &good, Some(5), None);
        assert_eq!(
            s.collect_bytes().await.unwrap(),
            Bytes::from_static(b"hello")
        );

        let chunks: Vec<azure_core::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"hel")),
            Ok(Bytes::from_static(b"lp")),
        ];
        let mut s = verified(futures::stream::iter(chunks).boxed(), &good, None, None);
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"hel"));
        let err = s.next().await.unwrap().unwrap_err();
        let mismatch = err.downcast_ref::<crate::DigestMismatch>().unwrap();
        assert_eq!(mismatch.expected, good);
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn with_a_known_size_only_the_last_chunk_waits() {
        let good = crate::reference::sha256_digest(b"hello");
        let chunks = |tail: &'static [u8]| -> Vec<azure_core::Result<Bytes>> {
            vec![
                Ok(Bytes::from_static(b"he")),
                Ok(Bytes::from_static(b"l")),
                Ok(Bytes::from_static(tail)),
            ]
        };
        // Wrong last bytes: everything before comes out, the last chunk never does.
        let mut s = verified(
            futures::stream::iter(chunks(b"lp")).boxed(),
            &good,
            Some(5),
            None,
        );
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"he"));
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"l"));
        let err = s.next().await.unwrap().unwrap_err();
        assert!(err.downcast_ref::<crate::DigestMismatch>().is_some());
        assert!(s.next().await.is_none());
        // More than the size: an error, and the chunk that completed the size is not given.
        let mut more = chunks(b"lo");
        more.push(Ok(Bytes::from_static(b"!")));
        let mut s = verified(futures::stream::iter(more).boxed(), &good, Some(5), None);
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"he"));
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"l"));
        let err = s.next().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        assert!(s.next().await.is_none());
        // Right: all of it.
        let s = verified(
            futures::stream::iter(chunks(b"lo")).boxed(),
            &good,
            Some(5),
            None,
        );
        assert_eq!(
            s.collect_bytes().await.unwrap(),
            Bytes::from_static(b"hello")
        );
    }
}
