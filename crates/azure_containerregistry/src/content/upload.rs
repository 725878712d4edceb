//! Blob uploads: one request for small blobs; larger ones streamed in `PATCH` requests and
//! resumed from the registry's reported `Range` when a request fails.
//!
//! Protocol (docs/wire-facts.md#blob-uploads): `POST /v2/<name>/blobs/uploads/` opens a session (202 +
//! `Location`, relative and opaque); each `PATCH <latest Location>` appends bytes and answers
//! with a new `Location` and `Range: 0-<last received>`; `PUT <latest Location>&digest=<digest>`
//! commits. Every `Location` is followed verbatim.
//!
//! A `PATCH` body is streamed piece by piece while the source is read and hashed, so reading,
//! hashing and sending overlap and no request waits for a buffer to fill. When the length of a
//! request is known up front (files and buffers) it carries `Content-Range: <first>-<last>`
//! (inclusive, no `bytes ` prefix) and `Content-Length`; a stream of unknown length is sent
//! with chunked transfer encoding and no `Content-Range`, as `docker push` does.
//!
//! Resuming: the hash state at the start of each request is kept. After a failure the
//! registry's `Range` says how much it has; the source goes back to the request's start, the
//! bytes the registry has are hashed again, and the upload goes on from there. Files and
//! buffers are read again; a stream keeps the bytes of the current request in memory (at most
//! [`UploadBlobOptions::chunk_size`]) until the registry confirms them.

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

use super::progress::ProgressCallback;
use super::{header, ContainerRegistryContentClient, Hasher};
use crate::error::{
    digest_mismatch, invalid_argument, response_error, rest_error, transport_error,
};

/// The default most bytes per `PATCH` request of a stream (16 MiB). A stream cannot be read
/// again, so the bytes of the request in flight are kept in memory until the registry confirms
/// them. Files and buffers are sent in one `PATCH` by default (they can be read again).
pub const DEFAULT_CHUNK_SIZE: usize = 16 * 1024 * 1024;

/// Blobs up to this size (4 MiB), or up to the chunk size if that is smaller, are sent in a
/// single request (`POST`, then `PUT` with the body).
pub const SINGLE_REQUEST_MAX_SIZE: usize = 4 * 1024 * 1024;

/// Blobs smaller than this (64 KiB) are sent without an existence check: the check would cost
/// a round trip, as much as sending them, and the registry keeps one copy anyway.
pub const EXISTENCE_CHECK_MIN_SIZE: u64 = 64 * 1024;

/// Files and buffers at least this large (64 MiB) start uploading while they are hashed for the
/// existence check; smaller ones are hashed first (it takes a few milliseconds).
pub const PREHASH_OVERLAP_MIN_SIZE: u64 = 64 * 1024 * 1024;

/// Bytes read, hashed and handed to the connection at a time.
const PIECE_SIZE: usize = 1024 * 1024;

/// The most piece buffers a stream keeps for reuse.
const MAX_SPARE_BUFFERS: usize = 64;

/// Options of the `upload_blob*` methods.
#[derive(Clone, Debug)]
pub struct UploadBlobOptions {
    /// The most bytes per `PATCH` request; must not be 0. By default a file or buffer goes in
    /// one request and a stream in requests of [`DEFAULT_CHUNK_SIZE`]. A stream holds the bytes
    /// of one request in memory (to resend them after a failure); files and buffers are read
    /// again instead. Blobs up to [`SINGLE_REQUEST_MAX_SIZE`] (or this size, if smaller) go
    /// in a single request.
    pub chunk_size: Option<usize>,
    /// Skip the transfer when the repository already has the blob (default `true`). Files and
    /// byte buffers are hashed on a blocking thread and checked with a `HEAD` (from
    /// [`PREHASH_OVERLAP_MIN_SIZE`] on, while the upload starts: it stops once the registry
    /// turns out to have the blob); a stream is checked only when it fits in a single request
    /// (its digest is known only after reading it all). Blobs smaller than
    /// [`EXISTENCE_CHECK_MIN_SIZE`] are always sent, and a check that fails (any answer but
    /// 200 or 404) does not stop the upload: the blob is sent.
    pub skip_existing: bool,
    /// How many times a failed request is resumed without progress in between (and how many
    /// times the whole upload starts again when the registry lost the session and the source
    /// can be read again); default 3.
    pub max_retries: u32,
    /// Called with `(bytes uploaded, total if known)` as the upload goes on.
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
    /// The blob's digest (`sha256:…`), computed from the source (while sending it, or before
    /// for files and buffers with [`UploadBlobOptions::skip_existing`]) and confirmed by the
    /// registry, which checks the bytes it received against it.
    pub digest: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// `true` when the registry already had the blob and nothing was sent.
    pub skipped: bool,
}

/// Where the bytes come from, with a position that can go back to any byte not yet confirmed.
enum Source<R> {
    /// Any reader: read once. The bytes from `kept_start` on are kept so that they can be read
    /// again; [`Source::forget_before`] drops what the registry has confirmed.
    Reader {
        reader: R,
        kept: VecDeque<Bytes>,
        kept_start: u64,
        pos: u64,
        eof: bool,
        /// Buffers of confirmed pieces, reused for the next reads (fresh allocations would be
        /// returned to the system and faulted in again for every request).
        spare: Vec<BytesMut>,
    },
    /// A file of known size: read again by seeking.
    File {
        file: tokio::fs::File,
        size: u64,
        pos: u64,
    },
    /// A buffer.
    Bytes { data: Bytes, pos: u64 },
}

impl<R: AsyncRead + Unpin> Source<R> {
    fn reader(reader: R) -> Self {
        Self::Reader {
            reader,
            kept: VecDeque::new(),
            kept_start: 0,
            pos: 0,
            eof: false,
            spare: Vec::new(),
        }
    }

    /// The total size, when known before reading.
    fn len(&self) -> Option<u64> {
        match self {
            Self::Reader { .. } => None,
            Self::File { size, .. } => Some(*size),
            Self::Bytes { data, .. } => Some(data.len() as u64),
        }
    }

    /// Reads up to `max` bytes (at least 1); an empty piece only at the end.
    async fn read_piece(&mut self, max: usize) -> std::io::Result<Bytes> {
        match self {
            Self::Bytes { data, pos } => {
                let start = (*pos as usize).min(data.len());
                let end = start.saturating_add(max).min(data.len());
                *pos = end as u64;
                Ok(data.slice(start..end))
            }
            Self::File { file, size, pos } => {
                let want = (*size - *pos).min(max as u64) as usize;
                if want == 0 {
                    return Ok(Bytes::new());
                }
                let piece = fill(file, BytesMut::new(), want).await?;
                if piece.len() < want {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file became shorter while it was uploaded",
                    ));
                }
                *pos += piece.len() as u64;
                Ok(piece)
            }
            Self::Reader {
                reader,
                kept,
                kept_start,
                pos,
                eof,
                spare,
            } => {
                // Bytes kept from an earlier read come first.
                let mut start = *kept_start;
                for piece in kept.iter() {
                    let end = start + piece.len() as u64;
                    if *pos < end {
                        let from = (*pos - start) as usize;
                        let to = piece.len().min(from.saturating_add(max));
                        *pos += (to - from) as u64;
                        return Ok(piece.slice(from..to));
                    }
                    start = end;
                }
                if *eof {
                    return Ok(Bytes::new());
                }
                let buffer = spare.pop().unwrap_or_default();
                let piece = fill(reader, buffer, max).await?;
                if piece.len() < max {
                    *eof = true;
                }
                if !piece.is_empty() {
                    *pos += piece.len() as u64;
                    kept.push_back(piece.clone());
                }
                Ok(piece)
            }
        }
    }

    /// Goes to byte `to`; `false` when a stream no longer has that byte.
    async fn seek(&mut self, to: u64) -> std::io::Result<bool> {
        match self {
            Self::Bytes { data, pos } => {
                *pos = to.min(data.len() as u64);
                Ok(to <= data.len() as u64)
            }
            Self::File { file, size, pos } => {
                if to > *size {
                    return Ok(false);
                }
                file.seek(SeekFrom::Start(to)).await?;
                *pos = to;
                Ok(true)
            }
            Self::Reader {
                kept,
                kept_start,
                pos,
                ..
            } => {
                let kept_end = *kept_start + kept.iter().map(|p| p.len() as u64).sum::<u64>();
                if to < *kept_start || to > kept_end {
                    return Ok(false);
                }
                *pos = to;
                Ok(true)
            }
        }
    }

    /// Drops kept stream bytes before `at` (the registry has them).
    fn forget_before(&mut self, at: u64) {
        if let Self::Reader {
            kept,
            kept_start,
            spare,
            ..
        } = self
        {
            while let Some(front) = kept.front() {
                let end = *kept_start + front.len() as u64;
                if end > at {
                    break;
                }
                *kept_start = end;
                if let Some(Ok(mut buffer)) = kept.pop_front().map(Bytes::try_into_mut) {
                    if spare.len() < MAX_SPARE_BUFFERS {
                        buffer.clear();
                        spare.push(buffer);
                    }
                }
            }
        }
    }
}

/// Reads up to `max` bytes into `buf` (emptied first); fewer only at the end.
async fn fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut buf: BytesMut,
    max: usize,
) -> std::io::Result<Bytes> {
    buf.clear();
    buf.reserve(max);
    let mut limited = reader.take(max as u64);
    while buf.len() < max {
        if limited.read_buf(&mut buf).await? == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

fn io_error(e: std::io::Error) -> azure_core::Error {
    azure_core::Error::new(ErrorKind::Io, e)
}

/// Why a streamed attempt failed.
enum Failure {
    /// The upload cannot go on (bad answer, retries exhausted, the source failed).
    Fatal(azure_core::Error),
    /// The registry lost the session or the confirmed bytes: start again if the source allows.
    SessionLost(azure_core::Error),
}

/// Progress reports that never go backwards (bytes resent after a failure are not counted
/// twice).
struct Progress<'a> {
    callback: &'a Option<ProgressCallback>,
    total: Option<u64>,
    reported: Option<u64>,
}

impl<'a> Progress<'a> {
    fn new(callback: &'a Option<ProgressCallback>, total: Option<u64>) -> Self {
        Self {
            callback,
            total,
            reported: None,
        }
    }

    fn at(&mut self, done: u64) {
        if let Some(callback) = self.callback {
            if self.reported.is_none_or(|r| done > r) {
                self.reported = Some(done);
                callback.report(done, self.total);
            }
        }
    }
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
    /// digest and size. Small blobs go in one request; larger ones are streamed in `PATCH`
    /// requests of at most [`UploadBlobOptions::chunk_size`], each kept in memory until the
    /// registry confirms it, so a failed request is resumed from the registry's reported range.
    /// When the stream fits in a single request and the registry already has the blob, nothing
    /// is sent.
    pub async fn upload_blob<R>(
        &self,
        reader: R,
        options: Option<UploadBlobOptions>,
    ) -> azure_core::Result<UploadBlobResult>
    where
        R: AsyncRead + Send + Unpin,
    {
        let options = options.unwrap_or_default();
        let chunk_size = chunk_size(&options, DEFAULT_CHUNK_SIZE as u64)?;
        self.upload_source(Source::reader(reader), None, chunk_size, &options)
            .await
    }

    /// Uploads a blob from a buffer. With [`UploadBlobOptions::skip_existing`] (the default)
    /// the digest is computed first (for a large buffer on a blocking thread, while the upload
    /// starts) and an existing blob is not sent, or no further.
    pub async fn upload_blob_bytes(
        &self,
        data: impl Into<Bytes>,
        options: Option<UploadBlobOptions>,
    ) -> azure_core::Result<UploadBlobResult> {
        let options = options.unwrap_or_default();
        let chunk_size = chunk_size(&options, u64::MAX)?;
        let data: Bytes = data.into();
        let prehash = options.skip_existing.then(|| PreHash::Bytes(data.clone()));
        self.upload_source(
            Source::<tokio::io::Empty>::Bytes { data, pos: 0 },
            prehash,
            chunk_size,
            &options,
        )
        .await
    }

    /// Uploads a blob from a file. With [`UploadBlobOptions::skip_existing`] (the default) the
    /// file is hashed on a blocking thread and the registry asked whether it has the blob; an
    /// existing blob is not sent (a file of [`PREHASH_OVERLAP_MIN_SIZE`] or more starts
    /// uploading while it is hashed, and stops when the registry turns out to have it). A
    /// request that fails is resumed from the registry's range by reading the file again from
    /// there; if the registry lost the session, the file is sent again from the start.
    pub async fn upload_blob_from_file(
        &self,
        path: impl AsRef<Path>,
        options: Option<UploadBlobOptions>,
    ) -> azure_core::Result<UploadBlobResult> {
        let options = options.unwrap_or_default();
        let chunk_size = chunk_size(&options, u64::MAX)?;
        let path = path.as_ref();
        let io = |e: std::io::Error| {
            azure_core::Error::with_message(ErrorKind::Io, format!("{}: {e}", path.display()))
        };
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        let prehash = options
            .skip_existing
            .then(|| PreHash::File(path.to_path_buf()));
        self.upload_source(
            Source::<tokio::io::Empty>::File { file, size, pos: 0 },
            prehash,
            chunk_size,
            &options,
        )
        .await
    }

    async fn upload_source<R: AsyncRead + Send + Unpin>(
        &self,
        mut source: Source<R>,
        prehash: Option<PreHash>,
        chunk_size: u64,
        options: &UploadBlobOptions,
    ) -> azure_core::Result<UploadBlobResult> {
        let single_max = chunk_size.min(SINGLE_REQUEST_MAX_SIZE as u64);
        let total = source.len();
        let mut progress = Progress::new(&options.progress, total);
        let fits_one_request = matches!(total, Some(size) if size <= single_max);
        let whole = if fits_one_request || total.is_none() {
            read_whole_if_at_most(&mut source, single_max).await?
        } else {
            None
        };
        if let Some(data) = whole {
            // A small blob is hashed here and checked alongside opening the session.
            let worth_checking = data.len() as u64 >= EXISTENCE_CHECK_MIN_SIZE;
            let check = options.skip_existing && worth_checking;
            return self
                .upload_single(data, check, options.max_retries, &mut progress)
                .await;
        }
        let (Some(prehash), Some(size)) = (prehash, total) else {
            return self
                .upload_streamed(&mut source, chunk_size, options, &mut progress, None, None)
                .await;
        };
        let digest = prehash.spawn();
        if size < PREHASH_OVERLAP_MIN_SIZE {
            // Hashing first costs little next to sending. Below the threshold the check is not
            // worth its round trip: the blob is sent.
            let known = digest.clone().await.map_err(hash_error)?;
            if size >= EXISTENCE_CHECK_MIN_SIZE && self.probably_exists(&known).await {
                progress.at(size);
                return Ok(skipped(known, size));
            }
            return self
                .upload_streamed(
                    &mut source,
                    chunk_size,
                    options,
                    &mut progress,
                    Some(&digest),
                    None,
                )
                .await;
        }
        // Large: the upload starts while the blob is hashed; once the digest is known the
        // registry is asked whether it has the blob, and if it does the upload stops.
        let session = std::sync::Mutex::new(None::<String>);
        let check = async {
            let known = digest.clone().await.map_err(hash_error)?;
            match self.blob_exists(&known).await {
                Ok(true) => Ok(known),
                Ok(false) => std::future::pending().await,
                Err(e) => {
                    // Only an optimisation: the upload goes on.
                    tracing::debug!(error = %e, "checking whether the registry has the blob failed");
                    std::future::pending().await
                }
            }
        };
        let outcome: azure_core::Result<String> = {
            let upload = self.upload_streamed(
                &mut source,
                chunk_size,
                options,
                &mut progress,
                Some(&digest),
                Some(&session),
            );
            tokio::select! {
                result = upload => return result,
                exists = check => exists,
            }
        };
        let known = outcome?;
        let opened = session.lock().map(|mut s| s.take()).unwrap_or(None);
        if let Some(location) = opened {
            self.cancel_in_background(Session { location });
        }
        progress.at(size);
        Ok(skipped(known, size))
    }

    /// The optional existence check: whether the registry answered that it has the blob. Any
    /// failure of the check (an answer but 200/404, a broken connection) counts as "not
    /// there": the upload goes ahead.
    async fn probably_exists(&self, digest: &str) -> bool {
        match self.blob_exists(digest).await {
            Ok(exists) => exists,
            Err(e) => {
                tracing::debug!(error = %e, "checking whether the registry has the blob failed; uploading it");
                false
            }
        }
    }

    /// POST, then PUT with the whole blob as body.
    async fn upload_single(
        &self,
        data: Bytes,
        check_existing: bool,
        max_retries: u32,
        progress: &mut Progress<'_>,
    ) -> azure_core::Result<UploadBlobResult> {
        let size = data.len() as u64;
        let digest = crate::reference::sha256_digest(&data);
        // The existence check and the session start go out together: a small upload then
        // costs two round trips (POST, PUT), like an upload without the check.
        let mut opened = if check_existing {
            let (exists, session) =
                tokio::join!(self.probably_exists(&digest), self.start_upload());
            if exists {
                if let Ok(session) = session {
                    self.cancel_in_background(session);
                }
                progress.at(size);
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
                    if attempt >= max_retries || !is_retryable(&e) {
                        return Err(e);
                    }
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        progress.at(size);
        Ok(UploadBlobResult {
            digest,
            size,
            skipped: false,
        })
    }

    /// Streamed upload sessions until one commits; a lost session starts again from the first
    /// byte when the source still has it. With `expected`, the digest comes from there instead
    /// of hashing the bytes sent (the registry checks them against it). Each session's first
    /// `Location` is noted in `opened` (so that an upload stopped from outside can be
    /// cancelled).
    async fn upload_streamed<R: AsyncRead + Send + Unpin>(
        &self,
        source: &mut Source<R>,
        chunk_size: u64,
        options: &UploadBlobOptions,
        progress: &mut Progress<'_>,
        expected: Option<&SharedDigest>,
        opened: Option<&std::sync::Mutex<Option<String>>>,
    ) -> azure_core::Result<UploadBlobResult> {
        let mut restarts = 0;
        loop {
            match self
                .streamed_attempt(
                    source,
                    chunk_size,
                    options.max_retries,
                    progress,
                    expected,
                    opened,
                )
                .await
            {
                Ok(result) => return Ok(result),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::SessionLost(e)) => {
                    if restarts >= options.max_retries || !source.seek(0).await.map_err(io_error)? {
                        return Err(e);
                    }
                    restarts += 1;
                    tracing::debug!(error = %e, restarts, "the registry lost the upload session; starting again");
                    tokio::time::sleep(backoff(restarts)).await;
                }
            }
        }
    }

    /// One upload session from the first byte to the commit.
    async fn streamed_attempt<R: AsyncRead + Send + Unpin>(
        &self,
        source: &mut Source<R>,
        chunk_size: u64,
        max_retries: u32,
        progress: &mut Progress<'_>,
        expected: Option<&SharedDigest>,
        opened: Option<&std::sync::Mutex<Option<String>>>,
    ) -> Result<UploadBlobResult, Failure> {
        let fatal_io = |e: std::io::Error| Failure::Fatal(io_error(e));
        let total = source.len();
        let mut session = self.start_upload().await.map_err(Failure::Fatal)?;
        if let Some(Ok(mut opened)) = opened.map(|o| o.lock()) {
            *opened = Some(session.location.clone());
        }
        // No hashing here when the digest comes from elsewhere.
        let mut hasher = expected.is_none().then(Hasher::sha256);
        // Bytes the registry has confirmed; the source is there at the start of each request.
        let mut offset = 0u64;
        let mut failures = 0u32;
        // The first piece of the next request, read while waiting for the answer to this one.
        let mut ahead: Option<Bytes> = None;
        loop {
            source.forget_before(offset);
            let at_start = hasher.clone();
            let len = match total {
                Some(total) => chunk_size.min(total - offset),
                None => chunk_size,
            };
            let first = match ahead.take() {
                Some(piece) => piece,
                None => source.read_piece(piece_len(len)).await.map_err(fatal_io)?,
            };
            if first.is_empty() {
                break;
            }
            let next_len = match total {
                Some(total) => chunk_size.min(total - offset - len),
                None => chunk_size,
            };
            let (sent, read_ahead, answer) = self
                .send_request_body(
                    &session.location,
                    first,
                    RequestSpan {
                        start: offset,
                        len,
                        exact: total.is_some(),
                        next_len,
                    },
                    source,
                    hasher.as_mut(),
                    progress,
                )
                .await?;
            // How much of the blob the registry has now, when this request did not go through.
            let outcome = match answer {
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
                        Some(received) if received > offset + sent => {
                            return Err(Failure::Fatal(protocol_error(format!(
                                "the registry reports {received} bytes received, but only {} were sent",
                                offset + sent
                            ))));
                        }
                        // Took part of it: send the rest.
                        Some(received) if received > offset && received < offset + sent => {
                            Ok(received)
                        }
                        Some(received) if received < offset + sent => {
                            Err(azure_core::Error::with_message(
                                ErrorKind::Io,
                                format!("the registry kept {received} of {} bytes", offset + sent),
                            ))
                        }
                        _ => {
                            offset += sent;
                            failures = 0;
                            ahead = read_ahead;
                            if ahead.is_none() {
                                // The request ended early: back to where the registry is.
                                seek_to(source, offset).await?;
                            }
                            continue;
                        }
                    }
                }
                Ok(response) => Err(response_error(response).await),
                Err(e) => Err(e),
            };
            let received = match outcome {
                Ok(received) => received,
                Err(error) => {
                    if failures >= max_retries {
                        return Err(Failure::Fatal(error));
                    }
                    failures += 1;
                    tracing::debug!(error = %error, attempt = failures, offset, "upload request failed; asking the registry for the upload's progress");
                    tokio::time::sleep(backoff(failures)).await;
                    self.upload_progress(&mut session).await?
                }
            };
            if received < offset || received > offset + sent {
                // Bytes confirmed earlier are gone (or more arrived than sent): this session
                // cannot be continued.
                return Err(Failure::SessionLost(protocol_error(format!(
                    "the registry reports {received} bytes received; expected between {offset} and {}",
                    offset + sent
                ))));
            }
            if received > offset {
                // Progress: only failures in a row without any count against the retries.
                failures = 0;
            }
            hasher = at_start;
            match hasher.as_mut() {
                // Back to the request's start, and hash again what the registry has.
                Some(hasher) => {
                    seek_to(source, offset).await?;
                    hash_through(source, hasher, received - offset).await?;
                }
                // Nothing to hash: just go there.
                None => seek_to(source, received).await?,
            }
            offset = received;
        }
        if total.is_some_and(|t| t != offset) {
            return Err(Failure::Fatal(io_error(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the source ended before its size",
            ))));
        }
        let digest = match (hasher, expected) {
            (Some(hasher), _) => hasher.finish(),
            (None, Some(expected)) => expected
                .clone()
                .await
                .map_err(|e| Failure::Fatal(hash_error(e)))?,
            (None, None) => {
                return Err(Failure::Fatal(protocol_error(
                    "no digest for the upload".into(),
                )))
            }
        };
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
        progress.at(offset);
        Ok(UploadBlobResult {
            digest,
            size: offset,
            skipped: false,
        })
    }

    /// `GET <Location>`: how many bytes the registry has (its `Range`).
    async fn upload_progress(&self, session: &mut Session) -> Result<u64, Failure> {
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
        received_from_range(header(status.headers(), "range")).ok_or_else(|| {
            Failure::SessionLost(missing_header("Range", "reading the upload's progress"))
        })
    }

    /// One `PATCH <Location>` whose body is read from `source` (starting with `first`) and
    /// hashed as it goes out (when a hasher is given): the bytes of `span`. While the answer is awaited, the first piece of the next request (of
    /// `next_len` bytes at most) is read. Returns how many bytes were handed to the connection,
    /// that next piece and the answer.
    ///
    /// The generated `upload_chunk` cannot be used: the spec's PATCH has no `Content-Range`
    /// parameter and takes a whole body, so this request is built here on the verbatim
    /// `Location` and sent through the same pipeline (authentication, tracing). A streamed
    /// body is sent once: failures are handled by the caller, which resumes from the
    /// registry's range.
    async fn send_request_body<R: AsyncRead + Unpin>(
        &self,
        location: &str,
        first: Bytes,
        span: RequestSpan,
        source: &mut Source<R>,
        mut hasher: Option<&mut Hasher>,
        progress: &mut Progress<'_>,
    ) -> Result<(u64, Option<Bytes>, azure_core::Result<reqwest::Response>), Failure> {
        let url = self.pipeline.resolve(location).map_err(Failure::Fatal)?;
        let (mut pieces, body) = futures::channel::mpsc::channel::<std::io::Result<Bytes>>(1);
        let mut request = self
            .pipeline
            .http()
            .patch(url)
            .header(CONTENT_TYPE, "application/octet-stream");
        let RequestSpan {
            start,
            len,
            exact,
            next_len,
        } = span;
        if exact {
            request = request
                .header(CONTENT_RANGE, format!("{start}-{}", start + len - 1))
                .header(CONTENT_LENGTH, len);
        }
        let request = request
            .body(reqwest::Body::wrap_stream(body))
            .build()
            .map_err(|e| Failure::Fatal(transport_error(e)))?;
        // Streamed bodies are not bounded by the pipeline's timeout (a large one takes as long
        // as it takes); here the timeout bounds each wait for the connection to take a piece,
        // and the wait for the answer once the body is out.
        let limit = self.pipeline.options().timeout;
        let send = self.pipeline.send(request, "upload_chunk");
        // Bytes the connection has taken (read after the request, however it ended).
        let handed = AtomicU64::new(0);
        let produce = async {
            let mut piece = first;
            loop {
                let n = piece.len() as u64;
                let taken = pieces.send(Ok(piece.clone()));
                let taken = match limit {
                    Some(limit) => tokio::time::timeout(limit, taken)
                        .await
                        .map_err(|_| Produce::Stalled(limit))?,
                    None => taken.await,
                };
                if taken.is_err() {
                    // The request ended early (its answer says why).
                    return Ok(None);
                }
                if let Some(hasher) = hasher.as_mut() {
                    hasher.update(&piece);
                }
                let done = handed.fetch_add(n, Ordering::Relaxed) + n;
                progress.at(start + done);
                if done >= len {
                    break;
                }
                piece = source
                    .read_piece(piece_len(len - done))
                    .await
                    .map_err(Produce::Source)?;
                if piece.is_empty() {
                    if exact {
                        return Err(Produce::Source(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the source ended before its size",
                        )));
                    }
                    return Ok(None);
                }
            }
            // The body is complete; the registry answers while the next piece is read.
            drop(pieces);
            if next_len == 0 {
                return Ok(None);
            }
            let ahead = source
                .read_piece(piece_len(next_len))
                .await
                .map_err(Produce::Source)?;
            Ok(Some(ahead))
        };
        let mut send = std::pin::pin!(send);
        let mut produce = std::pin::pin!(produce);
        let mut body_out = false;
        let mut body_out_at = None;
        let mut ahead = None;
        let answer = loop {
            let answer_overdue = async {
                match (body_out, limit) {
                    (true, Some(limit)) => tokio::time::sleep(limit).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                answer = &mut send => break answer,
                produced = &mut produce, if !body_out => match produced {
                    Ok(next) => {
                        ahead = next;
                        body_out = true;
                        body_out_at = Some(std::time::Instant::now());
                    }
                    // Returning drops the request: its connection is closed.
                    Err(Produce::Source(e)) => return Err(Failure::Fatal(io_error(e))),
                    Err(Produce::Stalled(limit)) => break Err(stalled(limit, "took no data")),
                },
                () = answer_overdue => break Err(stalled(limit.unwrap_or_default(), "sent no answer")),
            }
        };
        tracing::trace!(
            start,
            handed = handed.load(Ordering::Relaxed),
            answer_after_body_us = body_out_at.map(|t| t.elapsed().as_micros() as u64),
            "upload request answered"
        );
        Ok((handed.load(Ordering::Relaxed), ahead, answer))
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
}

/// An open upload session.
struct Session {
    /// The latest `Location`, verbatim.
    location: String,
}

/// Why the body of a request stopped.
enum Produce {
    /// Reading the source failed.
    Source(std::io::Error),
    /// The connection took no data for this long.
    Stalled(Duration),
}

/// The error of a request that made no progress within the client's timeout.
fn stalled(limit: Duration, what: &str) -> azure_core::Error {
    azure_core::Error::with_message(
        ErrorKind::Io,
        format!(
            "the registry {what} for {} ms (the client's timeout)",
            limit.as_millis()
        ),
    )
}

/// The bytes one `PATCH` carries.
struct RequestSpan {
    /// The offset of its first byte in the blob.
    start: u64,
    /// How many bytes it carries (at most, unless `exact`).
    len: u64,
    /// Whether the source is known to have `len` bytes there (then `Content-Range` and
    /// `Content-Length` are sent).
    exact: bool,
    /// The size of the request after it, for reading its first piece ahead.
    next_len: u64,
}

/// What to hash before (or while) sending, to ask the registry whether it has the blob.
enum PreHash {
    /// A file, read again on a blocking thread.
    File(std::path::PathBuf),
    /// A buffer.
    Bytes(Bytes),
}

/// A digest being computed on a blocking thread, awaited by both the existence check and the
/// commit.
type SharedDigest =
    futures::future::Shared<futures::future::BoxFuture<'static, Result<String, String>>>;

impl PreHash {
    /// Starts hashing on a blocking thread.
    fn spawn(self) -> SharedDigest {
        use futures::FutureExt as _;
        let task = tokio::task::spawn_blocking(move || match self {
            Self::Bytes(data) => Ok(crate::reference::sha256_digest(&data)),
            Self::File(path) => hash_file(&path).map_err(|e| format!("{}: {e}", path.display())),
        });
        async move { task.await.map_err(|e| format!("hashing failed: {e}"))? }
            .boxed()
            .shared()
    }
}

/// The sha256 digest of a file's content.
fn hash_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Hasher::sha256();
    let mut buf = vec![0u8; PIECE_SIZE];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

fn hash_error(message: String) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::Io, message)
}

fn skipped(digest: String, size: u64) -> UploadBlobResult {
    UploadBlobResult {
        digest,
        size,
        skipped: true,
    }
}

/// Moves the source to byte `at`; a stream always still has the bytes from the registry's
/// offset on.
async fn seek_to<R: AsyncRead + Unpin>(source: &mut Source<R>, at: u64) -> Result<(), Failure> {
    if source
        .seek(at)
        .await
        .map_err(|e| Failure::Fatal(io_error(e)))?
    {
        Ok(())
    } else {
        Err(Failure::Fatal(protocol_error(format!(
            "the stream no longer has byte {at}"
        ))))
    }
}

/// Reads the next `len` bytes of the source into `hasher` (bytes the registry already has).
async fn hash_through<R: AsyncRead + Unpin>(
    source: &mut Source<R>,
    hasher: &mut Hasher,
    len: u64,
) -> Result<(), Failure> {
    let mut remaining = len;
    while remaining > 0 {
        let piece = source
            .read_piece(piece_len(remaining))
            .await
            .map_err(|e| Failure::Fatal(io_error(e)))?;
        if piece.is_empty() {
            return Err(Failure::Fatal(io_error(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the source ended early when read again",
            ))));
        }
        hasher.update(&piece);
        remaining -= piece.len() as u64;
    }
    Ok(())
}

/// The size of the next piece when `remaining` bytes are wanted.
fn piece_len(remaining: u64) -> usize {
    remaining.min(PIECE_SIZE as u64) as usize
}

/// Reads the source to its end if it has at most `max` bytes and returns them; otherwise goes
/// back to the first byte and returns `None`.
async fn read_whole_if_at_most<R: AsyncRead + Unpin>(
    source: &mut Source<R>,
    max: u64,
) -> azure_core::Result<Option<Bytes>> {
    if let Source::Bytes { data, .. } = source {
        return Ok((data.len() as u64 <= max).then(|| data.clone()));
    }
    let mut pieces = Vec::new();
    let mut read = 0u64;
    loop {
        // One byte more than `max` tells whether there is more.
        let piece = source
            .read_piece(piece_len(max + 1 - read))
            .await
            .map_err(io_error)?;
        if piece.is_empty() {
            break;
        }
        read += piece.len() as u64;
        pieces.push(piece);
        if read > max {
            if !source.seek(0).await.map_err(io_error)? {
                return Err(protocol_error(
                    "the stream cannot go back to its start".into(),
                ));
            }
            return Ok(None);
        }
    }
    Ok(Some(match pieces.len() {
        0 => Bytes::new(),
        1 => pieces.remove(0),
        _ => {
            let mut whole = BytesMut::with_capacity(read as usize);
            for piece in pieces {
                whole.extend_from_slice(&piece);
            }
            whole.freeze()
        }
    }))
}

/// The chunk size asked for, or `default`.
fn chunk_size(options: &UploadBlobOptions, default: u64) -> azure_core::Result<u64> {
    match options.chunk_size {
        Some(0) => Err(invalid_argument("chunk_size", "must be at least 1 byte")),
        Some(n) => Ok(n as u64),
        None => Ok(default),
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
    async fn a_stream_keeps_what_is_not_confirmed() {
        let data: Vec<u8> = (0..10u8).collect();
        let mut s = Source::reader(&data[..]);
        assert_eq!(s.len(), None);
        assert_eq!(&s.read_piece(4).await.unwrap()[..], &[0, 1, 2, 3]);
        assert_eq!(&s.read_piece(4).await.unwrap()[..], &[4, 5, 6, 7]);
        // Back into the kept bytes, across pieces.
        assert!(s.seek(2).await.unwrap());
        assert_eq!(&s.read_piece(4).await.unwrap()[..], &[2, 3]);
        assert_eq!(&s.read_piece(1).await.unwrap()[..], &[4]);
        assert_eq!(&s.read_piece(8).await.unwrap()[..], &[5, 6, 7]);
        assert_eq!(&s.read_piece(4).await.unwrap()[..], &[8, 9]);
        assert!(s.read_piece(4).await.unwrap().is_empty());
        // Confirmed bytes are dropped; only whole pieces go.
        s.forget_before(5);
        assert!(!s.seek(3).await.unwrap());
        assert!(s.seek(4).await.unwrap());
        assert_eq!(&s.read_piece(2).await.unwrap()[..], &[4, 5]);
        assert!(!s.seek(11).await.unwrap());
    }

    #[tokio::test]
    async fn a_buffer_reads_again_from_anywhere() {
        let mut s = Source::<tokio::io::Empty>::Bytes {
            data: Bytes::from_static(b"abcdef"),
            pos: 0,
        };
        assert_eq!(s.len(), Some(6));
        assert_eq!(&s.read_piece(4).await.unwrap()[..], b"abcd");
        assert!(s.seek(1).await.unwrap());
        assert_eq!(&s.read_piece(9).await.unwrap()[..], b"bcdef");
        assert!(s.read_piece(9).await.unwrap().is_empty());
        assert!(!s.seek(7).await.unwrap());
    }

    #[tokio::test]
    async fn a_file_that_shrinks_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123").unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        // Its size was taken as 6 bytes, but it has 4.
        let mut s = Source::<tokio::io::Empty>::File {
            file,
            size: 6,
            pos: 0,
        };
        let e = s.read_piece(6).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn whole_only_when_small() {
        let data: Vec<u8> = (0..10u8).collect();
        let mut s = Source::reader(&data[..]);
        assert!(read_whole_if_at_most(&mut s, 9).await.unwrap().is_none());
        // Back at the start, nothing lost.
        assert_eq!(&s.read_piece(10).await.unwrap()[..], &data[..]);
        let mut s = Source::reader(&data[..]);
        assert_eq!(
            read_whole_if_at_most(&mut s, 10).await.unwrap().as_deref(),
            Some(&data[..])
        );
    }

    #[test]
    fn progress_never_goes_back() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let callback = Some(ProgressCallback::new(move |done, total| {
            seen2.lock().unwrap().push((done, total))
        }));
        let mut p = Progress::new(&callback, Some(9));
        for done in [0, 4, 2, 4, 9] {
            p.at(done);
        }
        assert_eq!(
            *seen.lock().unwrap(),
            [(0, Some(9)), (4, Some(9)), (9, Some(9))]
        );
    }
}
