//! Blob uploads: one request for small blobs, `Content-Range` chunks for large ones, resumed
//! from the registry's reported `Range` when a chunk fails.
//!
//! Protocol (wire facts §10): `POST /v2/<name>/blobs/uploads/` opens a session (202 +
//! `Location`, relative and opaque); each `PATCH <latest Location>` carries
//! `Content-Range: <first>-<last>` (inclusive, no `bytes ` prefix) and answers with a new
//! `Location` and `Range: 0-<last received>`; `PUT <latest Location>&digest=<digest>` commits.
//! Every `Location` is followed verbatim.
//!
//! Memory: the chunk being sent is held in memory (so a failed chunk is re-sent from the
//! registry's `Range` without reading the source again or hashing twice), plus at most one
//! chunk read ahead: never more than two chunks.

use std::io::SeekFrom;
use std::path::Path;
use std::time::Duration;

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

use super::progress::{report, ProgressCallback};
use super::{header, ContainerRegistryContentClient, Hasher};
use crate::error::{
    digest_mismatch, invalid_argument, response_error, rest_error, transport_error,
};

/// The default chunk size of uploads (4 MiB). Blobs up to this size are sent in one request.
/// While one chunk is on the wire the next is read, so about two chunks are in memory.
pub const DEFAULT_CHUNK_SIZE: usize = 4 * 1024 * 1024;

/// Blobs smaller than this (64 KiB) are sent without an existence check: the check would cost
/// a round trip, as much as sending them, and the registry keeps one copy anyway.
pub const EXISTENCE_CHECK_MIN_SIZE: u64 = 64 * 1024;

/// Options of the `upload_blob*` methods.
#[derive(Clone, Debug)]
pub struct UploadBlobOptions {
    /// Bytes per `PATCH` request (default [`DEFAULT_CHUNK_SIZE`]); blobs no larger than this go
    /// in a single request. Two chunks at most are held in memory. Must not be 0.
    pub chunk_size: Option<usize>,
    /// Skip the transfer when the repository already has the blob (default `true`). Files and
    /// byte buffers are hashed first and checked with a `HEAD`; a stream is checked only when
    /// it fits in one chunk (its digest is known only after reading it all). Blobs smaller than
    /// [`EXISTENCE_CHECK_MIN_SIZE`] are always sent.
    pub skip_existing: bool,
    /// How many times a failed chunk (or the whole upload, when the registry lost the session
    /// and the source can be read again) is retried (default 3).
    pub max_retries: u32,
    /// Called with `(bytes uploaded, total if known)` after each chunk.
    pub progress: Option<ProgressCallback>,
}

impl Default for UploadBlobOptions {
    fn default() -> Self {
        Self {
            chunk_size: None,
            skip_existing: true,
            max_retries: 3,
            progress: None,
        }
    }
}

/// The result of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadBlobResult {
    /// The blob's digest (`sha256:…`), as computed while sending and confirmed by the registry.
    pub digest: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// `true` when the registry already had the blob and nothing was sent.
    pub skipped: bool,
}

/// Where the bytes come from.
enum Source<R> {
    /// Any reader: read once, cannot be rewound.
    Reader(R),
    /// A file: can be rewound.
    File(tokio::fs::File),
    /// A buffer: can be rewound.
    Bytes { data: Bytes, pos: usize },
}

impl<R: AsyncRead + Unpin> Source<R> {
    /// Reads up to `max` bytes; fewer only at the end.
    async fn read_chunk(&mut self, max: usize) -> azure_core::Result<Bytes> {
        let io = |e: std::io::Error| azure_core::Error::new(ErrorKind::Io, e);
        match self {
            Self::Bytes { data, pos } => {
                let end = (*pos + max).min(data.len());
                let chunk = data.slice(*pos..end);
                *pos = end;
                Ok(chunk)
            }
            Self::Reader(r) => fill(r, max).await.map_err(io),
            Self::File(f) => fill(f, max).await.map_err(io),
        }
    }

    /// Goes back to the start, if the source allows it.
    async fn rewind(&mut self) -> azure_core::Result<bool> {
        match self {
            Self::Bytes { pos, .. } => {
                *pos = 0;
                Ok(true)
            }
            Self::File(f) => {
                f.seek(SeekFrom::Start(0))
                    .await
                    .map_err(|e| azure_core::Error::new(ErrorKind::Io, e))?;
                Ok(true)
            }
            Self::Reader(_) => Ok(false),
        }
    }
}

async fn fill<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(max);
    let mut limited = reader.take(max as u64);
    while buf.len() < max {
        if limited.read_buf(&mut buf).await? == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

/// Why a chunked attempt failed.
enum Failure {
    /// The upload cannot go on (bad answer, retries exhausted).
    Fatal(azure_core::Error),
    /// The registry lost the session or the confirmed bytes: start again if the source allows.
    SessionLost(azure_core::Error),
}

/// An open upload session.
struct Session {
    /// The latest `Location`, verbatim.
    location: String,
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(5))
}

/// `Range: 0-<last>` → bytes received (`0-0` is read as none: distribution and ACR both send it
/// for an empty session).
fn received_from_range(value: Option<&str>) -> Option<u64> {
    let value = value?
        .trim()
        .trim_start_matches("bytes=")
        .trim_start_matches("bytes ");
    let (a, b) = value.split_once('-')?;
    let (a, b) = (a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?);
    if a != 0 {
        return None;
    }
    if b == 0 {
        Some(0)
    } else {
        b.checked_add(1)
    }
}

impl ContainerRegistryContentClient {
    /// Uploads a blob from any reader, computing its sha256 as it streams, and returns its
    /// digest and size. Small blobs go in one request, large ones in chunks of
    /// [`UploadBlobOptions::chunk_size`]. A failed chunk is re-sent from the registry's
    /// reported range (the chunk is still in memory). When the stream fits in one chunk and the
    /// registry already has the blob, nothing is sent.
    pub async fn upload_blob<R>(
        &self,
        reader: R,
        options: Option<UploadBlobOptions>,
    ) -> azure_core::Result<UploadBlobResult>
    where
        R: AsyncRead + Send + Unpin,
    {
        let options = options.unwrap_or_default();
        let chunk_size = chunk_size(&options)?;
        self.upload_source(Source::Reader(reader), None, None, chunk_size, &options)
            .await
    }

    /// Uploads a blob from a buffer. The digest is computed first, so an existing blob is
    /// skipped without sending it.
    pub async fn upload_blob_bytes(
        &self,
        data: impl Into<Bytes>,
        options: Option<UploadBlobOptions>,
    ) -> azure_core::Result<UploadBlobResult> {
        let options = options.unwrap_or_default();
        let chunk_size = chunk_size(&options)?;
        let data: Bytes = data.into();
        let size = data.len() as u64;
        let known = options
            .skip_existing
            .then(|| crate::reference::sha256_digest(&data));
        self.upload_source(
            Source::<tokio::io::Empty>::Bytes { data, pos: 0 },
            known,
            Some(size),
            chunk_size,
            &options,
        )
        .await
    }

    /// Uploads a blob from a file. With [`UploadBlobOptions::skip_existing`] (the default) the
    /// file is hashed first and not sent when the registry has it. A chunk that fails is
    /// re-sent from the registry's range; if the registry lost the session, the file is read
    /// again from the start.
    pub async fn upload_blob_from_file(
        &self,
        path: impl AsRef<Path>,
        options: Option<UploadBlobOptions>,
    ) -> azure_core::Result<UploadBlobResult> {
        let options = options.unwrap_or_default();
        let chunk_size = chunk_size(&options)?;
        let path = path.as_ref();
        let io = |e: std::io::Error| {
            azure_core::Error::with_message(ErrorKind::Io, format!("{}: {e}", path.display()))
        };
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        let known = if options.skip_existing {
            let mut hasher = Hasher::sha256();
            let mut buf = vec![0u8; 1024 * 1024];
            loop {
                let n = file.read(&mut buf).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            file.seek(SeekFrom::Start(0)).await.map_err(io)?;
            Some(hasher.finish())
        } else {
            None
        };
        self.upload_source(
            Source::<tokio::io::Empty>::File(file),
            known,
            Some(size),
            chunk_size,
            &options,
        )
        .await
    }

    async fn upload_source<R: AsyncRead + Send + Unpin>(
        &self,
        mut source: Source<R>,
        known_digest: Option<String>,
        total: Option<u64>,
        chunk_size: usize,
        options: &UploadBlobOptions,
    ) -> azure_core::Result<UploadBlobResult> {
        // A large blob whose digest is known is checked before anything is read; a small one
        // is checked in `upload_single`, alongside opening the upload session.
        let checked_up_front = matches!(total, Some(size) if size > chunk_size as u64);
        if let (Some(digest), Some(size), true) = (&known_digest, total, checked_up_front) {
            if options.skip_existing && self.blob_exists(digest).await? {
                report(&options.progress, size, Some(size));
                return Ok(UploadBlobResult {
                    digest: digest.clone(),
                    size,
                    skipped: true,
                });
            }
        }
        let first = source.read_chunk(chunk_size).await?;
        let second = if first.len() < chunk_size {
            Bytes::new()
        } else {
            source.read_chunk(chunk_size).await?
        };
        let result = if second.is_empty() {
            let worth_checking = first.len() as u64 >= EXISTENCE_CHECK_MIN_SIZE;
            self.upload_single(
                first,
                options.skip_existing && worth_checking && !checked_up_front,
                options,
            )
            .await?
        } else {
            self.upload_chunked(&mut source, first, second, total, chunk_size, options)
                .await?
        };
        if let Some(expected) = known_digest {
            if expected != result.digest {
                // The source changed between hashing and sending.
                return Err(digest_mismatch(expected, result.digest));
            }
        }
        Ok(result)
    }

    /// POST, then PUT with the whole blob as body.
    async fn upload_single(
        &self,
        data: Bytes,
        check_existing: bool,
        options: &UploadBlobOptions,
    ) -> azure_core::Result<UploadBlobResult> {
        let size = data.len() as u64;
        let digest = crate::reference::sha256_digest(&data);
        // The existence check and the session start go out together: a small upload then
        // costs two round trips (POST, PUT), like an upload without the check.
        let mut opened = if check_existing {
            let (exists, session) = tokio::join!(self.blob_exists(&digest), self.start_upload());
            if exists? {
                if let Ok(session) = session {
                    self.cancel_in_background(session);
                }
                report(&options.progress, size, Some(size));
                return Ok(UploadBlobResult {
                    digest,
                    size,
                    skipped: true,
                });
            }
            Some(session?)
        } else {
            None
        };
        let mut attempt = 0;
        loop {
            let session = match opened.take() {
                Some(session) => session,
                None => self.start_upload().await?,
            };
            match self.complete(&session, &digest, data.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    if is_digest_mismatch(&e) {
                        return Err(e);
                    }
                    // The commit may have happened even though the answer was lost.
                    if self.blob_exists(&digest).await.unwrap_or(false) {
                        break;
                    }
                    if attempt >= options.max_retries || !is_retryable(&e) {
                        return Err(e);
                    }
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        report(&options.progress, size, Some(size));
        Ok(UploadBlobResult {
            digest,
            size,
            skipped: false,
        })
    }

    async fn upload_chunked<R: AsyncRead + Send + Unpin>(
        &self,
        source: &mut Source<R>,
        first: Bytes,
        second: Bytes,
        total: Option<u64>,
        chunk_size: usize,
        options: &UploadBlobOptions,
    ) -> azure_core::Result<UploadBlobResult> {
        let mut restarts = 0;
        let mut read_ahead = Some((first, second));
        loop {
            match self
                .chunked_attempt(source, read_ahead.take(), total, chunk_size, options)
                .await
            {
                Ok(result) => return Ok(result),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::SessionLost(e)) => {
                    if restarts >= options.max_retries || !source.rewind().await? {
                        return Err(e);
                    }
                    restarts += 1;
                    tracing::debug!(error = %e, restarts, "the registry lost the upload session; starting again");
                    tokio::time::sleep(backoff(restarts)).await;
                }
            }
        }
    }

    /// One upload session from the start of the source to the commit.
    async fn chunked_attempt<R: AsyncRead + Send + Unpin>(
        &self,
        source: &mut Source<R>,
        read_ahead: Option<(Bytes, Bytes)>,
        total: Option<u64>,
        chunk_size: usize,
        options: &UploadBlobOptions,
    ) -> Result<UploadBlobResult, Failure> {
        let (mut current, mut next) = match read_ahead {
            Some((a, b)) => (a, Some(b)),
            None => (
                source
                    .read_chunk(chunk_size)
                    .await
                    .map_err(Failure::Fatal)?,
                None,
            ),
        };
        let mut session = self.start_upload().await.map_err(Failure::Fatal)?;
        let mut hasher = Hasher::sha256();
        let mut offset = 0u64;
        while !current.is_empty() {
            // While a chunk is on the wire, it is hashed on a blocking thread and the next one
            // is read: hashing and reading never hold up the network. The chunk is hashed once;
            // its hash only counts if the registry confirms the whole chunk (else the attempt
            // fails and a new one starts with a new hash).
            let to_hash = current.clone();
            let hashing = tokio::task::spawn_blocking(move || {
                hasher.update(&to_hash);
                hasher
            });
            let upcoming = next.take();
            let read_next = async {
                match upcoming {
                    Some(chunk) => Ok(chunk),
                    None => source.read_chunk(chunk_size).await,
                }
            };
            let (sent, read) = tokio::join!(
                self.send_chunk(&mut session, &current, offset, options.max_retries),
                read_next
            );
            hasher = hashing.await.map_err(|e| {
                Failure::Fatal(azure_core::Error::with_message(
                    ErrorKind::Other,
                    format!("hashing a chunk failed: {e}"),
                ))
            })?;
            sent?;
            offset += current.len() as u64;
            report(&options.progress, offset, total);
            current = read.map_err(Failure::Fatal)?;
        }
        let digest = hasher.finish();
        if let Err(e) = self.complete(&session, &digest, Bytes::new()).await {
            if is_digest_mismatch(&e) {
                return Err(Failure::Fatal(e));
            }
            if !self.blob_exists(&digest).await.unwrap_or(false) {
                return Err(
                    if is_retryable(&e) || e.http_status() == Some(StatusCode::NotFound) {
                        Failure::SessionLost(e)
                    } else {
                        Failure::Fatal(e)
                    },
                );
            }
        }
        Ok(UploadBlobResult {
            digest,
            size: offset,
            skipped: false,
        })
    }

    /// Cancels an upload session that is no longer needed, without waiting for the answer (a
    /// registry also expires abandoned sessions by itself).
    fn cancel_in_background(&self, session: Session) {
        let client = self.clone();
        tokio::spawn(async move {
            if let Err(e) = client
                .pipeline
                .rest()
                .cancel_upload(&session.location)
                .await
            {
                tracing::debug!(error = %e, "cancelling an unneeded upload session failed");
            }
        });
    }

    /// `POST /v2/<name>/blobs/uploads/`: opens a session. Its empty body can be re-sent, so a
    /// 401 challenge is answered here and the `pull,push` token is cached before any chunk.
    async fn start_upload(&self) -> azure_core::Result<Session> {
        let response = self
            .pipeline
            .rest()
            .mount_blob(&self.repository, None, None)
            .await
            .map_err(rest_error)?;
        let location = header(response.headers(), LOCATION.as_str())
            .filter(|l| !l.is_empty())
            .ok_or_else(|| missing_header("Location", "starting an upload"))?;
        Ok(Session {
            location: location.to_string(),
        })
    }

    /// `PUT <Location>&digest=…` with an optional final body; checks `Docker-Content-Digest`.
    async fn complete(
        &self,
        session: &Session,
        digest: &str,
        body: Bytes,
    ) -> azure_core::Result<()> {
        let response = self
            .pipeline
            .rest()
            .complete_upload(&session.location, digest, body)
            .await
            .map_err(rest_error)?;
        if let Some(server) = header(response.headers(), "docker-content-digest") {
            if server != digest {
                return Err(digest_mismatch(digest, server));
            }
        }
        Ok(())
    }

    /// Sends one chunk that starts at `start`; on failure asks the registry how much it has
    /// (`GET <Location>` → `Range`) and sends the rest of the chunk from there.
    async fn send_chunk(
        &self,
        session: &mut Session,
        chunk: &Bytes,
        start: u64,
        max_retries: u32,
    ) -> Result<(), Failure> {
        let len = chunk.len() as u64;
        let mut sent = 0u64; // bytes of this chunk the registry has confirmed
        let mut attempt = 0u32;
        loop {
            let body = chunk.slice(sent as usize..);
            let error = match self.patch(&session.location, body, start + sent).await {
                Ok(response) if response.status().as_u16() == 202 => {
                    let headers = response.headers();
                    let location = header(headers, LOCATION.as_str()).filter(|l| !l.is_empty());
                    let Some(location) = location else {
                        return Err(Failure::Fatal(missing_header(
                            "Location",
                            "sending a chunk",
                        )));
                    };
                    session.location = location.to_string();
                    match received_from_range(header(headers, "range")) {
                        Some(received) if received > start + len => {
                            return Err(Failure::Fatal(protocol_error(format!(
                                "the registry reports {received} bytes received, but only {} were sent",
                                start + len
                            ))));
                        }
                        Some(received) if received < start + len => {
                            // Took less than sent: send the rest.
                            azure_core::Error::with_message(
                                ErrorKind::Io,
                                format!("the registry kept {received} of {} bytes", start + len),
                            )
                        }
                        _ => return Ok(()),
                    }
                }
                Ok(response) => response_error(response).await,
                Err(e) => e,
            };
            if attempt >= max_retries {
                return Err(Failure::Fatal(error));
            }
            attempt += 1;
            tracing::debug!(error = %error, attempt, start, "chunk failed; asking the registry for the upload's progress");
            tokio::time::sleep(backoff(attempt)).await;
            let status = match self
                .pipeline
                .rest()
                .get_upload_status(&session.location)
                .await
            {
                Ok(status) => status,
                Err(e) => return Err(Failure::SessionLost(rest_error(e))),
            };
            if let Some(location) =
                header(status.headers(), LOCATION.as_str()).filter(|l| !l.is_empty())
            {
                session.location = location.to_string();
            }
            let Some(received) = received_from_range(header(status.headers(), "range")) else {
                return Err(Failure::SessionLost(missing_header(
                    "Range",
                    "reading the upload's progress",
                )));
            };
            if received < start || received > start + len {
                // Bytes confirmed earlier are gone (or more arrived than sent): this session
                // cannot be continued from the chunk in memory.
                return Err(Failure::SessionLost(protocol_error(format!(
                    "the registry reports {received} bytes received; expected between {start} and {}",
                    start + len
                ))));
            }
            sent = received - start;
            if sent == len {
                return Ok(());
            }
        }
    }

    /// `PATCH <Location>` with `Content-Range`. The generated `upload_chunk` cannot be used: the
    /// spec's PATCH has no `Content-Range` parameter and progenitor builds the whole request, so
    /// this request is built here on the verbatim `Location` and sent through the same
    /// pipeline (authentication, retries, tracing).
    async fn patch(
        &self,
        location: &str,
        body: Bytes,
        start: u64,
    ) -> azure_core::Result<reqwest::Response> {
        let url = self.pipeline.resolve(location)?;
        let end = start + body.len() as u64 - 1;
        let request = self
            .pipeline
            .http()
            .patch(url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_RANGE, format!("{start}-{end}"))
            .body(body)
            .build()
            .map_err(transport_error)?;
        self.pipeline.send(request, "upload_chunk").await
    }
}

fn chunk_size(options: &UploadBlobOptions) -> azure_core::Result<usize> {
    match options.chunk_size {
        Some(0) => Err(invalid_argument("chunk_size", "must be at least 1 byte")),
        Some(n) => Ok(n),
        None => Ok(DEFAULT_CHUNK_SIZE),
    }
}

fn is_digest_mismatch(e: &azure_core::Error) -> bool {
    e.downcast_ref::<crate::DigestMismatch>().is_some()
}

/// Transport failures and transient statuses.
fn is_retryable(e: &azure_core::Error) -> bool {
    match e.kind() {
        ErrorKind::Io | ErrorKind::Connection => true,
        ErrorKind::HttpResponse { status, .. } => {
            matches!(u16::from(*status), 408 | 429 | 500 | 502 | 503 | 504)
        }
        _ => false,
    }
}

fn missing_header(name: &str, doing: &str) -> azure_core::Error {
    protocol_error(format!("the registry sent no {name} header when {doing}"))
}

fn protocol_error(message: String) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::DataConversion, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(received_from_range(Some("0-0")), Some(0));
        assert_eq!(received_from_range(Some("0-735")), Some(736));
        assert_eq!(received_from_range(Some("bytes=0-1471")), Some(1472));
        assert_eq!(received_from_range(Some("5-9")), None);
        assert_eq!(received_from_range(None), None);
    }

    #[tokio::test]
    async fn chunks_fill_up() {
        let data: Vec<u8> = (0..10u8).collect();
        let mut s = Source::Reader(&data[..]);
        assert_eq!(s.read_chunk(4).await.unwrap().len(), 4);
        assert_eq!(s.read_chunk(4).await.unwrap().len(), 4);
        assert_eq!(s.read_chunk(4).await.unwrap().len(), 2);
        assert!(s.read_chunk(4).await.unwrap().is_empty());
        assert!(!s.rewind().await.unwrap());
    }
}
