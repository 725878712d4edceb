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
//!
//! The module is split by concept: [`source`] (what is read and hashed), [`session`] (the
//! registry's upload session, its resume and commit), [`body`] (the streamed body of one
//! request) and [`handle`] (sessions under the caller's control: [`BlobUpload`]).

mod body;
mod handle;
mod session;
mod source;

use std::path::Path;

use azure_core::error::ErrorKind;
use bytes::Bytes;
use tokio::io::AsyncRead;

use self::session::Session;
use self::source::{hash_error, read_whole_if_at_most, PreHash, SharedDigest, Source};
use super::progress::{Progress, ProgressCallback};
use super::ContainerRegistryContentClient;
use crate::error::nonzero_bytes;

pub use handle::{
    BlobUpload, CancelUploadOptions, CompleteUploadOptions, GetUploadStatusOptions,
    StartUploadOptions, UploadChunkOptions, UploadChunkResult, UploadStatus,
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

/// Options of the `upload_blob*` methods.
#[derive(Clone, Debug)]
pub struct UploadBlobOptions<'a> {
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
    /// The context of the requests.
    pub method_options: azure_core::http::ClientMethodOptions<'a>,
}

impl Default for UploadBlobOptions<'_> {
    fn default() -> Self {
        Self {
            chunk_size: None,
            skip_existing: true,
            max_retries: crate::retry::DEFAULT_MAX_RETRIES,
            progress: None,
            method_options: Default::default(),
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
    /// The registry's id (`x-ms-request-id`) of the request that committed the blob; `None`
    /// when nothing was sent or the registry sent none.
    pub request_id: Option<String>,
}

/// What one upload carries from request to request: the source, its limits, where progress is
/// reported, the digest when it is computed elsewhere, and where the session is noted.
struct Transfer<'a, R> {
    /// The bytes to send.
    source: Source<R>,
    /// The most bytes per `PATCH`.
    chunk_size: u64,
    /// How many failures in a row are retried (see [`UploadBlobOptions::max_retries`]).
    max_retries: u32,
    /// Progress reports.
    progress: Progress<'a>,
    /// The digest being computed on a blocking thread, when the bytes sent are not hashed.
    expected: Option<SharedDigest>,
    /// Where each session's first `Location` is noted, so that an upload stopped from outside
    /// can be cancelled.
    opened: Option<&'a std::sync::Mutex<Option<String>>>,
}

crate::operation::call_options!(UploadBlobOptions);

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
        options: Option<UploadBlobOptions<'_>>,
    ) -> azure_core::Result<UploadBlobResult>
    where
        R: AsyncRead + Send + Unpin,
    {
        crate::operation::traced!(
            "ContainerRegistryContentClient.upload_blob",
            &self.repository,
            &options,
            async move {
                let (options, chunk_size) = prepare(options, DEFAULT_CHUNK_SIZE as u64)?;
                self.upload_source(Source::reader(reader), None, chunk_size, &options)
                    .await
            }
        )
        .await
    }

    /// Uploads a blob from a buffer. With [`UploadBlobOptions::skip_existing`] (the default)
    /// the digest is computed first (for a large buffer on a blocking thread, while the upload
    /// starts) and an existing blob is not sent, or no further.
    pub async fn upload_blob_bytes(
        &self,
        data: impl Into<Bytes>,
        options: Option<UploadBlobOptions<'_>>,
    ) -> azure_core::Result<UploadBlobResult> {
        let context = crate::operation::context_of(&options);
        let data: Bytes = data.into();
        crate::operation::traced!(
            "ContainerRegistryContentClient.upload_blob_bytes",
            &self.repository,
            &context,
            async move {
                let (options, chunk_size) = prepare(options, u64::MAX)?;
                let prehash = PreHash::Bytes(data.clone());
                let source = Source::<tokio::io::Empty>::Bytes { data, pos: 0 };
                self.upload_source(source, Some(prehash), chunk_size, &options)
                    .await
            }
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
        options: Option<UploadBlobOptions<'_>>,
    ) -> azure_core::Result<UploadBlobResult> {
        let context = crate::operation::context_of(&options);
        let path: &Path = path.as_ref();
        crate::operation::traced!(
            "ContainerRegistryContentClient.upload_blob_from_file",
            &self.repository,
            &context,
            async move {
                let (options, chunk_size) = prepare(options, u64::MAX)?;
                let io = |e: std::io::Error| {
                    azure_core::Error::with_message(
                        ErrorKind::Io,
                        format!("{}: {e}", path.display()),
                    )
                };
                let file = tokio::fs::File::open(path).await.map_err(io)?;
                let size = file.metadata().await.map_err(io)?.len();
                let source = Source::<tokio::io::Empty>::File { file, size, pos: 0 };
                let prehash = PreHash::File(path.to_path_buf());
                self.upload_source(source, Some(prehash), chunk_size, &options)
                    .await
            }
        )
        .await
    }

    async fn upload_source<R: AsyncRead + Send + Unpin>(
        &self,
        source: Source<R>,
        prehash: Option<PreHash>,
        chunk_size: u64,
        options: &UploadBlobOptions<'_>,
    ) -> azure_core::Result<UploadBlobResult> {
        // Where a large upload notes its session (see below).
        let session = std::sync::Mutex::new(None::<String>);
        let single_max = chunk_size.min(SINGLE_REQUEST_MAX_SIZE as u64);
        let total = source.len();
        let mut t = Transfer {
            source,
            chunk_size,
            max_retries: options.max_retries,
            progress: Progress::new(&options.progress, total),
            expected: None,
            opened: None,
        };
        let fits_one_request = matches!(total, Some(size) if size <= single_max);
        let whole = if fits_one_request || total.is_none() {
            read_whole_if_at_most(&mut t.source, single_max).await?
        } else {
            None
        };
        if let Some(data) = whole {
            // A small blob is hashed here and checked alongside opening the session.
            let worth_checking = data.len() as u64 >= EXISTENCE_CHECK_MIN_SIZE;
            let check = options.skip_existing && worth_checking;
            return self.upload_single(data, check, &mut t).await;
        }
        // Hashed ahead only for the existence check.
        let prehash = prehash.filter(|_| options.skip_existing);
        let (Some(prehash), Some(size)) = (prehash, total) else {
            return self.upload_streamed(&mut t).await;
        };
        let digest = prehash.spawn();
        t.expected = Some(digest.clone());
        if size < PREHASH_OVERLAP_MIN_SIZE {
            // Hashing first costs little next to sending. Below the threshold the check is not
            // worth its round trip: the blob is sent.
            let known = digest.await.map_err(hash_error)?;
            if size >= EXISTENCE_CHECK_MIN_SIZE && self.probably_exists(&known).await {
                t.progress.at(size);
                return Ok(skipped(known, size));
            }
            return self.upload_streamed(&mut t).await;
        }
        // Large: the upload starts while the blob is hashed; once the digest is known the
        // registry is asked whether it has the blob, and if it does the upload stops.
        t.opened = Some(&session);
        let check = async {
            let known = digest.await.map_err(hash_error)?;
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
            let upload = self.upload_streamed(&mut t);
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
        t.progress.at(size);
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
}

fn skipped(digest: String, size: u64) -> UploadBlobResult {
    UploadBlobResult {
        digest,
        size,
        skipped: true,
        request_id: None,
    }
}

/// The options (defaults when `None`) and the chunk size asked for, or `default`.
fn prepare(
    options: Option<UploadBlobOptions<'_>>,
    default: u64,
) -> azure_core::Result<(UploadBlobOptions<'_>, u64)> {
    let options = options.unwrap_or_default();
    let chunk_size = nonzero_bytes("chunk_size", options.chunk_size.map(|n| n as u64), default)?;
    Ok((options, chunk_size))
}
