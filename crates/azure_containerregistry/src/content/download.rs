//! Blob downloads: a verified stream of bytes, resumed with `Range` after a broken connection,
//! optionally fetched as parallel ranges; and downloads to a file that appears only once
//! verified.

use std::path::{Path, PathBuf};

use azure_core::error::ErrorKind;
use bytes::Bytes;
use futures::stream::{Stream, StreamExt};

use super::file_writer::FileWriter;
use super::progress::ProgressCallback;
use super::verified_stream::{verified, DownloadBlobStream};
use super::{header, ContainerRegistryContentClient};
use crate::error::{
    invalid_argument, nonzero, nonzero_bytes, protocol_error, rest_error, transport_error,
};
use crate::reference::validate_digest;
use crate::retry::is_retryable;

/// Bytes per write of a download to a file (4 MiB; two such buffers are in memory).
const FILE_WRITE_SIZE: usize = 4 * 1024 * 1024;

/// The default size of each range of a parallel download (8 MiB).
pub(crate) const DEFAULT_RANGE_SIZE: usize = 8 * 1024 * 1024;

/// Options of [`ContainerRegistryContentClient::download_blob`] and
/// [`download_blob_to_file`](ContainerRegistryContentClient::download_blob_to_file).
#[derive(Clone, Debug)]
pub struct DownloadBlobOptions<'a> {
    /// Ranges fetched at once (default 1: one sequential request). Above 1, a blob larger than
    /// [`range_size`](Self::range_size) is fetched as ranges, up to this many in flight, and
    /// still hashed in order. Holds up to `concurrency × range_size` bytes in memory. Must not
    /// be 0.
    pub concurrency: Option<usize>,
    /// The size of each range of a parallel download (default 8 MiB). Must not be 0.
    pub range_size: Option<usize>,
    /// How many times a broken download (or range) is resumed with `Range` (default 3), each
    /// after the client's [`resume_delay`](crate::ContainerRegistryClientOptions::resume_delay).
    pub max_retries: u32,
    /// Called with `(bytes received, total if known)` as data arrives.
    pub progress: Option<ProgressCallback>,
    /// The context of the requests.
    pub method_options: azure_core::http::ClientMethodOptions<'a>,
}

impl Default for DownloadBlobOptions<'_> {
    fn default() -> Self {
        Self {
            concurrency: None,
            range_size: None,
            max_retries: crate::retry::DEFAULT_MAX_RETRIES,
            progress: None,
            method_options: Default::default(),
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

type RawBody = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send + Sync>>;

/// An open `GET` of a blob from some offset.
struct Opened {
    body: RawBody,
    /// Bytes at the start of the body to drop (a registry that ignored `Range`).
    skip: u64,
    total: Option<u64>,
    /// The registry's `x-ms-request-id`.
    request_id: Option<String>,
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

crate::operation::call_options!(DownloadBlobOptions);

impl ContainerRegistryContentClient {
    /// Downloads a blob as a stream of [`Bytes`], verified against `digest`: a mismatch ends
    /// the stream with a [`DigestMismatch`](crate::DigestMismatch) error in place of the final
    /// chunk. A broken connection is resumed with `Range` from the bytes already received (at
    /// most [`DownloadBlobOptions::max_retries`] times). Registry redirects to storage
    /// are followed without the `Authorization` header.
    ///
    /// The first request is made before this returns, so a missing blob is an error here.
    pub async fn download_blob(
        &self,
        digest: &str,
        options: Option<DownloadBlobOptions<'_>>,
    ) -> azure_core::Result<DownloadBlobStream> {
        crate::operation::traced!(
            "ContainerRegistryContentClient.download_blob",
            &self.repository,
            &options,
            async move {
                validate_digest(digest)?;
                let options = options.unwrap_or_default();
                let concurrency = nonzero("concurrency", options.concurrency, 1)?;
                let range_size = nonzero_bytes(
                    "range_size",
                    options.range_size.map(|n| n as u64),
                    DEFAULT_RANGE_SIZE as u64,
                )?;
                if concurrency > 1 {
                    let size = self.blob_size(digest).await?;
                    if let Some(size) = size.filter(|&s| s > range_size) {
                        return Ok(self.parallel(digest, size, concurrency, range_size, &options));
                    }
                }
                self.sequential(digest, &options).await
            }
        )
        .await
    }

    /// Downloads a blob into `path`. The bytes go to a temporary file in the same directory,
    /// which is renamed to `path` only after the digest has been verified; on any failure
    /// (including a digest mismatch) the temporary file is removed and `path` is left as it was.
    pub async fn download_blob_to_file(
        &self,
        digest: &str,
        path: impl AsRef<Path>,
        options: Option<DownloadBlobOptions<'_>>,
    ) -> azure_core::Result<DownloadBlobResult> {
        let context = crate::operation::context_of(&options);
        let path: &Path = path.as_ref();
        crate::operation::traced!(
            "ContainerRegistryContentClient.download_blob_to_file",
            &self.repository,
            &context,
            async move {
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
                // Removed when dropped, so nothing is left behind on any failure.
                let temp = {
                    let in_dir = dir.clone();
                    let prefix = format!(".{}.", file_name.to_string_lossy());
                    tokio::task::spawn_blocking(move || {
                        let mut builder = tempfile::Builder::new();
                        builder.prefix(&prefix).suffix(".partial");
                        #[cfg(unix)]
                        {
                            use std::os::unix::fs::PermissionsExt as _;
                            // As a plainly created file (the process's umask applies), not 0600.
                            builder.permissions(std::fs::Permissions::from_mode(0o666));
                        }
                        builder.tempfile_in(&in_dir)
                    })
                    .await
                    .map_err(|e| azure_core::Error::new(ErrorKind::Io, e))?
                    .map_err(|e| io(e, &dir))?
                };
                let file = temp.as_file().try_clone().map_err(|e| io(e, temp.path()))?;
                let mut writer = FileWriter::new(file, FILE_WRITE_SIZE);
                let mut size = 0u64;
                let written: azure_core::Result<()> = async {
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk?;
                        size += chunk.len() as u64;
                        writer.write(&chunk).await.map_err(|e| io(e, temp.path()))?;
                    }
                    Ok(())
                }
                .await;
                if let Err(e) = written {
                    // Closed before the temporary file is removed.
                    writer.abandon().await;
                    return Err(e);
                }
                writer.finish().await.map_err(|e| io(e, temp.path()))?;
                let target = path.to_path_buf();
                tokio::task::spawn_blocking(move || temp.persist(&target))
                    .await
                    .map_err(|e| azure_core::Error::new(ErrorKind::Io, e))?
                    .map_err(|e| io(e.error, path))?;
                Ok(DownloadBlobResult {
                    digest: digest.to_string(),
                    size,
                })
            }
        )
        .await
    }

    /// The blob's size from a `HEAD` (`None` when the registry does not say).
    async fn blob_size(&self, digest: &str) -> azure_core::Result<Option<u64>> {
        let response = self
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
                .ok_or_else(|| protocol_error("a 206 answer without a valid Content-Range"))?;
            if a != offset {
                return Err(protocol_error(format!(
                    "asked for bytes from {offset}, the registry sent from {a}"
                )));
            }
            Ok(Opened {
                body,
                skip: 0,
                total,
                request_id: header(&headers, "x-ms-request-id").map(str::to_string),
            })
        } else {
            // 200: the whole blob (a registry may ignore `Range`).
            Ok(Opened {
                body,
                skip: offset,
                total: content_length,
                request_id: header(&headers, "x-ms-request-id").map(str::to_string),
            })
        }
    }

    async fn sequential(
        &self,
        digest: &str,
        options: &DownloadBlobOptions<'_>,
    ) -> azure_core::Result<DownloadBlobStream> {
        let first = self.open_from(digest, 0).await?;
        let total = first.total;
        let request_id = first.request_id.clone();
        struct State {
            client: ContainerRegistryContentClient,
            digest: String,
            opened: Option<Opened>,
            offset: u64,
            total: Option<u64>,
            attempts: u32,
            max_retries: u32,
        }
        let state = State {
            client: self.clone(),
            digest: digest.to_string(),
            opened: Some(first),
            offset: 0,
            total,
            attempts: 0,
            max_retries: options.max_retries,
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
                            if st.attempts < st.max_retries && is_retryable(&e) {
                                tokio::time::sleep(st.client.retry_delay(st.attempts)).await;
                                st.attempts += 1;
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
                        if st.attempts < st.max_retries {
                            tracing::debug!(error = %e, offset = st.offset, attempt = st.attempts + 1, "blob download broke; resuming with Range");
                            tokio::time::sleep(st.client.retry_delay(st.attempts)).await;
                            st.attempts += 1;
                            continue;
                        }
                        return Some((Err(transport_error(e)), None));
                    }
                    None => {
                        st.opened = None;
                        if st.total.is_some_and(|t| st.offset < t) {
                            // Ended early without an error: resume too.
                            if st.attempts < st.max_retries {
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
        Ok(
            verified(raw.boxed(), digest, total, options.progress.clone())
                .with_request_id(request_id),
        )
    }

    /// Ranges fetched by up to `concurrency` tasks at once; the first range in order streams
    /// straight through as its bytes arrive, the ones after it gather theirs meanwhile.
    fn parallel(
        &self,
        digest: &str,
        size: u64,
        concurrency: usize,
        range_size: u64,
        options: &DownloadBlobOptions<'_>,
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
            max_retries: u32,
        }
        let state = State {
            client: self.clone(),
            digest: digest.to_string(),
            waiting: (0..size.div_ceil(range_size))
                .map(|i| (i * range_size, ((i + 1) * range_size).min(size) - 1))
                .collect(),
            running: std::collections::VecDeque::new(),
            concurrency,
            max_retries: options.max_retries,
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
                    let max_retries = st.max_retries;
                    // Ends by itself when the stream is dropped (its sends fail).
                    tokio::spawn(async move {
                        client.fetch_range(&digest, a, b, max_retries, &tx).await;
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
        max_retries: u32,
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
                Err(e) if !is_retryable(&e) => {
                    let _ = out.send(Err(e));
                    return;
                }
                Err(_) => {}
            }
            if attempts >= max_retries {
                let _ = out.send(Err(azure_core::Error::with_message(
                    ErrorKind::Io,
                    format!(
                        "bytes {a}-{b}: received {received} of {want} bytes after {attempts} resumes"
                    ),
                )));
                return;
            }
            tokio::time::sleep(self.retry_delay(attempts)).await;
            attempts += 1;
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
}
