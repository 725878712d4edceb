//! An upload session under the caller's control ([`BlobUpload`]): the caller picks the chunks,
//! may store the session's `Location` and resume it from another process, and completes it with
//! a digest it computed. The counterpart of the Go SDK's `BlobClient` `StartUpload`,
//! `UploadChunk`, `GetUploadStatus`, `CompleteUpload` and `CancelUpload`.
//!
//! Protocol (docs/wire-facts.md#blob-uploads): every answer carries a new `Location`, which
//! the next request must use verbatim; `Range: 0-<last byte>` says how much the registry has,
//! and `0-0` stands both for an empty session and for one holding a single byte.

use azure_core::http::{NoFormat, Response, StatusCode};
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, LOCATION};

use super::session::{missing_header, Session};
use super::UploadBlobResult;
use crate::content::{header, ContainerRegistryContentClient};
use crate::error::{invalid_argument, protocol_error, response_error, rest_error, transport_error};
use crate::operation::traced;
use crate::reference::validate_digest;
use crate::response::delete_result;

crate::operation::context_options! {
    /// Options of [`ContainerRegistryContentClient::start_upload`].
    StartUploadOptions;
    /// Options of [`BlobUpload::upload_chunk`].
    UploadChunkOptions;
    /// Options of [`BlobUpload::status`].
    GetUploadStatusOptions;
    /// Options of [`BlobUpload::complete`].
    CompleteUploadOptions;
    /// Options of [`BlobUpload::cancel`].
    CancelUploadOptions;
}

/// The registry's answer to one chunk of a [`BlobUpload`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadChunkResult {
    /// How many bytes of the blob the registry has now (the end of its `Range`, plus one).
    pub size: u64,
    /// The registry's id (`x-ms-request-id`) of the request that confirmed the chunk, if it
    /// sent one.
    pub request_id: Option<String>,
}

/// The state of a [`BlobUpload`] on the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadStatus {
    /// How many bytes of the blob the registry has (from its `Range: 0-<last byte>`). A
    /// registry answers `0-0` both for an empty session and for one holding a single byte: it
    /// reads as 1 when this handle saw the registry confirm one byte, and as 0 otherwise.
    pub size: u64,
    /// The registry's id of the session (`Docker-Upload-Uuid`), if it sent one.
    pub upload_id: Option<String>,
    /// The registry's id (`x-ms-request-id`) of the request, if it sent one.
    pub request_id: Option<String>,
}

/// An open blob upload session whose chunks the caller chooses, from
/// [`ContainerRegistryContentClient::start_upload`] or
/// [`resume_upload`](ContainerRegistryContentClient::resume_upload).
///
/// The registry answers every request with a new upload location, which the handle follows:
/// [`location`](Self::location) is always the latest, the one to store to resume the upload
/// later (in this process or another). The handle keeps count of the bytes the registry has
/// confirmed, so each [`upload_chunk`](Self::upload_chunk) declares where its bytes go.
///
/// Chunk bodies are buffered ([`Bytes`]), so they go through the client's pipeline like any
/// other request, with its retries. [`complete`](Self::complete) names the digest of the whole
/// blob, which the registry checks against the bytes it received; nothing is hashed here. An
/// abandoned session expires on the registry; [`cancel`](Self::cancel) ends it at once.
#[derive(Debug)]
pub struct BlobUpload {
    client: ContainerRegistryContentClient,
    /// The latest `Location`, verbatim.
    location: String,
    /// Bytes the registry has confirmed; `None` after a resume until the registry is asked.
    received: Option<u64>,
}

impl ContainerRegistryContentClient {
    /// Opens a blob upload session (`POST /v2/<name>/blobs/uploads/`) whose chunks the caller
    /// sends with [`BlobUpload::upload_chunk`] and completes with [`BlobUpload::complete`]. For
    /// uploads where the client picks the chunks and computes the digest, use
    /// [`upload_blob`](Self::upload_blob) and its siblings instead.
    ///
    /// ```no_run
    /// # async fn demo() -> azure_core::Result<()> {
    /// use azure_containerregistry::ContainerRegistryContentClient;
    /// let content = ContainerRegistryContentClient::new("http://127.0.0.1:5000", "hello-world", None, None)?;
    /// let mut upload = content.start_upload(None).await?;
    /// upload.upload_chunk(&b"hello, "[..], None).await?;
    /// // The location resumes the upload later, from this process or another one.
    /// let location = upload.location().to_string();
    /// let mut upload = content.resume_upload(&location)?;
    /// let chunk = upload.upload_chunk(&b"world"[..], None).await?;
    /// assert_eq!(chunk.size, 12);
    /// // The digest of the whole blob, computed by the caller.
    /// let digest = "sha256:09ca7e4eaa6e8ae9c7d261167129184883644d07dfba7cbfbc4c8a2e08360d5b";
    /// let blob = upload.complete(digest, None).await?;
    /// assert!(content.blob_exists(&blob.digest).await?);
    /// # Ok(()) }
    /// ```
    pub async fn start_upload(
        &self,
        options: Option<StartUploadOptions<'_>>,
    ) -> azure_core::Result<BlobUpload> {
        traced!(
            "ContainerRegistryContentClient.start_upload",
            &self.repository,
            &options,
            async {
                let session = self.open_session().await?;
                Ok(BlobUpload {
                    client: self.clone(),
                    location: session.location,
                    received: Some(0),
                })
            }
        )
        .await
    }

    /// Reopens an upload session from a location stored earlier ([`BlobUpload::location`]),
    /// for instance by another process. No request is sent: the location must resolve to a URL
    /// of this client's registry and name an upload of its repository
    /// (`/v2/<name>/blobs/uploads/…`), or the call fails with an
    /// [`InvalidArgument`](crate::InvalidArgument). The first
    /// [`upload_chunk`](BlobUpload::upload_chunk) (or [`complete`](BlobUpload::complete)) of
    /// the handle asks the registry how many bytes it has first; call
    /// [`status`](BlobUpload::status) to learn where the next chunk starts.
    pub fn resume_upload(&self, location: &str) -> azure_core::Result<BlobUpload> {
        let refuse = |why: &str| invalid_argument("location", format!("{location:?} {why}"));
        if location.trim().is_empty() {
            return Err(invalid_argument("location", "must not be empty"));
        }
        if location.trim() != location || location.chars().any(char::is_control) {
            return Err(refuse("has spaces or control characters around or in it"));
        }
        let url = self
            .pipeline
            .resolve(location)
            .map_err(|_| refuse("is not an http(s) URL"))?;
        let endpoint = self.endpoint();
        if url.origin() != endpoint.origin() {
            return Err(refuse(&format!("is not a URL of the registry {endpoint}")));
        }
        let base = endpoint.path().trim_end_matches('/');
        let uploads = format!("{base}/v2/{}/blobs/uploads/", self.repository);
        let path = percent_encoding::percent_decode_str(url.path()).decode_utf8_lossy();
        match path.strip_prefix(uploads.as_str()) {
            Some(id) if !id.is_empty() => {}
            _ => {
                return Err(refuse(&format!(
                    "is not an upload session of the repository {:?}",
                    self.repository
                )))
            }
        }
        Ok(BlobUpload {
            client: self.clone(),
            location: location.to_string(),
            received: None,
        })
    }
}

impl BlobUpload {
    /// The session's latest location, as the registry sent it: store it to resume the upload
    /// with [`ContainerRegistryContentClient::resume_upload`]. It changes with every chunk.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Sends the next chunk of the blob (`PATCH <location>` with
    /// `Content-Range: <first>-<last>`, where `<first>` is the number of bytes the registry
    /// has) and returns how many bytes the registry has now. An empty chunk is an
    /// [`InvalidArgument`](crate::InvalidArgument). After
    /// [`resume_upload`](ContainerRegistryContentClient::resume_upload) the registry is asked
    /// for its progress first (one `GET`).
    ///
    /// The chunk is buffered, so the request goes through the client's retries. A retried
    /// `PATCH` whose first attempt reached the registry may be refused with 416 (the registry
    /// moved on): then the registry is asked for its progress, and when it already has this
    /// chunk the call succeeds; otherwise it fails with the 416 and the handle takes the
    /// registry's count (see [`status`](Self::status)). A registry that keeps only part of the
    /// chunk is an error too.
    pub async fn upload_chunk(
        &mut self,
        data: impl Into<Bytes>,
        options: Option<UploadChunkOptions<'_>>,
    ) -> azure_core::Result<UploadChunkResult> {
        let data: Bytes = data.into();
        let repository = self.client.repository.clone();
        traced!(
            "BlobUpload.upload_chunk",
            &repository,
            &options,
            async move {
                if data.is_empty() {
                    return Err(invalid_argument(
                        "data",
                        "an upload chunk must hold at least one byte",
                    ));
                }
                let start = match self.received {
                    Some(received) => received,
                    None => {
                        let (status, location) = self.ask_status().await?;
                        self.follow(location);
                        self.received = Some(status.size);
                        status.size
                    }
                };
                self.send_chunk(start, data).await
            }
        )
        .await
    }

    /// Asks the registry how many bytes of the blob it has (`GET <location>`). Changes nothing
    /// on the handle.
    pub async fn status(
        &self,
        options: Option<GetUploadStatusOptions<'_>>,
    ) -> azure_core::Result<UploadStatus> {
        traced!(
            "BlobUpload.status",
            &self.client.repository,
            &options,
            async { Ok(self.ask_status().await?.0) }
        )
        .await
    }

    /// Completes the upload (`PUT <location>&digest=<digest>`, no body): the registry checks
    /// the bytes it received against `digest` and stores the blob. A malformed digest is an
    /// [`InvalidArgument`](crate::InvalidArgument) before any request; a digest that does not
    /// match the bytes is the registry's error (400 `DIGEST_INVALID`, read with
    /// [`error_code`](crate::error_code)); a registry that confirms another digest
    /// (`Docker-Content-Digest`) gives a [`DigestMismatch`](crate::DigestMismatch). After
    /// [`resume_upload`](ContainerRegistryContentClient::resume_upload) without any chunk, the
    /// registry is asked for the blob's size first. The handle is consumed: to try again after
    /// a failure (the request itself is retried by the client's pipeline), keep its
    /// [`location`](Self::location) first and reopen it with
    /// [`resume_upload`](ContainerRegistryContentClient::resume_upload).
    pub async fn complete(
        self,
        digest: &str,
        options: Option<CompleteUploadOptions<'_>>,
    ) -> azure_core::Result<UploadBlobResult> {
        let repository = self.client.repository.clone();
        traced!("BlobUpload.complete", &repository, &options, async move {
            validate_digest(digest)?;
            let mut upload = self;
            let size = match upload.received {
                Some(received) => received,
                None => {
                    let (status, location) = upload.ask_status().await?;
                    upload.follow(location);
                    status.size
                }
            };
            let session = Session {
                location: upload.location,
            };
            let request_id = upload.client.commit(&session, digest, Bytes::new()).await?;
            Ok(UploadBlobResult {
                digest: digest.to_string(),
                size,
                skipped: false,
                request_id,
            })
        })
        .await
    }

    /// Cancels the upload (`DELETE <location>`): the registry drops the bytes it received and
    /// forgets the session (a later [`status`](Self::status) of its location is a 404
    /// `BLOB_UPLOAD_UNKNOWN`). As with deletes, a session the registry no longer knows counts
    /// as cancelled, and the 404 answer is the response. ACR asks for a token with the
    /// `delete` action for it.
    pub async fn cancel(
        self,
        options: Option<CancelUploadOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        let repository = self.client.repository.clone();
        traced!("BlobUpload.cancel", &repository, &options, async move {
            delete_result(self.client.rest().cancel_upload(&self.location).await)
        })
        .await
    }

    /// `GET <location>`: the registry's progress and the fresh location it answered with.
    async fn ask_status(&self) -> azure_core::Result<(UploadStatus, Option<String>)> {
        let response = self
            .client
            .rest()
            .get_upload_status(&self.location)
            .await
            .map_err(rest_error)?;
        let headers = response.headers();
        let end = range_end(header(headers, "range"))
            .ok_or_else(|| missing_header("Range", "reading the upload's progress"))?;
        let status = UploadStatus {
            size: size_from_range_end(end, self.received),
            upload_id: header(headers, "docker-upload-uuid").map(str::to_string),
            request_id: header(headers, "x-ms-request-id").map(str::to_string),
        };
        let location = header(headers, LOCATION.as_str())
            .filter(|l| !l.is_empty())
            .map(str::to_string);
        Ok((status, location))
    }

    /// Takes the registry's newest location, when it sent one.
    fn follow(&mut self, location: Option<String>) {
        if let Some(location) = location {
            self.location = location;
        }
    }

    /// `PATCH <location>` with the chunk's `Content-Range`. Not a generated operation: the
    /// spec's PATCH has no `Content-Range`; the request goes through the same pipeline.
    async fn send_chunk(
        &mut self,
        start: u64,
        data: Bytes,
    ) -> azure_core::Result<UploadChunkResult> {
        let len = data.len() as u64;
        let end = start + len - 1;
        let pipeline = &self.client.pipeline;
        let url = pipeline.resolve(&self.location)?;
        let request = pipeline
            .http()
            .patch(url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_RANGE, format!("{start}-{end}"))
            .body(data)
            .build()
            .map_err(transport_error)?;
        let response = pipeline.send(request, "upload_chunk").await?;
        let status = response.status().as_u16();
        if status == u16::from(StatusCode::RequestedRangeNotSatisfiable) {
            let refused = response_error(response).await;
            return self.after_refusal(start, len, refused).await;
        }
        if !response.status().is_success() {
            return Err(response_error(response).await);
        }
        let headers = response.headers();
        let location = header(headers, LOCATION.as_str())
            .filter(|l| !l.is_empty())
            .ok_or_else(|| missing_header("Location", "sending a chunk"))?
            .to_string();
        let request_id = header(headers, "x-ms-request-id").map(str::to_string);
        let range = header(headers, "range");
        self.location = location;
        let expected = start + len;
        let received = match range {
            // A 202 without a range: the registry took the chunk.
            None => expected,
            Some(value) => match range_end(Some(value)) {
                Some(last) => size_from_range_end(last, Some(expected)),
                None => {
                    return Err(protocol_error(format!(
                        "the registry answered a chunk with Range {value:?}, which is not 0-<last byte>"
                    )))
                }
            },
        };
        if received != expected {
            self.received = Some(received);
            return Err(if received > expected {
                protocol_error(format!(
                    "the registry reports {received} bytes received, but only {expected} were sent"
                ))
            } else {
                azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Io,
                    format!(
                        "the registry kept {received} of {expected} bytes; the next chunk starts at byte {received}"
                    ),
                )
            });
        }
        self.received = Some(received);
        Ok(UploadChunkResult {
            size: received,
            request_id,
        })
    }

    /// A chunk refused with 416: success when the registry already has it (an earlier attempt
    /// of the same request got through), else the refusal.
    async fn after_refusal(
        &mut self,
        start: u64,
        len: u64,
        refused: azure_core::Error,
    ) -> azure_core::Result<UploadChunkResult> {
        let expected = start + len;
        let (status, location) = match self.ask_status().await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(error = %e, "asking for the upload's progress after a 416 failed");
                return Err(refused);
            }
        };
        self.follow(location);
        // `Range: 0-0` reads as one byte when one byte was sent from the start.
        let size = match status.size {
            0 if expected == 1 => 1,
            size => size,
        };
        self.received = Some(size);
        if size == expected {
            tracing::debug!(
                start,
                len,
                "a 416 for a chunk the registry already has (a retried request); done"
            );
            return Ok(UploadChunkResult {
                size,
                request_id: status.request_id,
            });
        }
        Err(refused)
    }
}

/// The last byte of `Range: 0-<last>` (a `bytes=` prefix is tolerated); `None` when the value
/// is missing or not of that form.
fn range_end(value: Option<&str>) -> Option<u64> {
    let value = value?
        .trim()
        .trim_start_matches("bytes=")
        .trim_start_matches("bytes ");
    let (first, last) = value.split_once('-')?;
    if first.trim() != "0" {
        return None;
    }
    let last = last.trim();
    if last.is_empty() || !last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    last.parse().ok()
}

/// The bytes a range ending at `last` stands for: `0-0` is 0 bytes, or 1 when 1 is what the
/// registry is known to have (`known`).
fn size_from_range_end(last: u64, known: Option<u64>) -> u64 {
    match last {
        0 if known == Some(1) => 1,
        0 => 0,
        last => last.saturating_add(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_ends() {
        assert_eq!(range_end(Some("0-0")), Some(0));
        assert_eq!(range_end(Some("0-735")), Some(735));
        assert_eq!(range_end(Some(" bytes=0-1471 ")), Some(1471));
        for bad in ["5-9", "0-", "0--1", "0-x", "junk", ""] {
            assert_eq!(range_end(Some(bad)), None, "{bad}");
        }
        assert_eq!(range_end(None), None);
    }

    #[test]
    fn a_zero_range_is_empty_unless_one_byte_is_known() {
        assert_eq!(size_from_range_end(0, None), 0);
        assert_eq!(size_from_range_end(0, Some(0)), 0);
        assert_eq!(size_from_range_end(0, Some(1)), 1);
        assert_eq!(size_from_range_end(0, Some(7)), 0);
        assert_eq!(size_from_range_end(735, Some(1)), 736);
    }

    fn client() -> ContainerRegistryContentClient {
        ContainerRegistryContentClient::new("https://r.example.io", "team/app", None, None)
            .expect("client")
    }

    #[test]
    fn resume_accepts_only_uploads_of_this_repository_and_registry() {
        let content = client();
        for good in [
            "/v2/team/app/blobs/uploads/u1?_state=abc%3D%3D",
            "https://r.example.io/v2/team/app/blobs/uploads/u1",
            "/v2/team%2Fapp/blobs/uploads/u1",
        ] {
            let upload = content.resume_upload(good).expect(good);
            assert_eq!(upload.location(), good);
            assert_eq!(upload.received, None);
        }
        for bad in [
            "",
            " /v2/team/app/blobs/uploads/u1",
            "https://other.example.io/v2/team/app/blobs/uploads/u1",
            "http://r.example.io/v2/team/app/blobs/uploads/u1",
            "ftp://r.example.io/v2/team/app/blobs/uploads/u1",
            "/v2/other/blobs/uploads/u1",
            "/v2/team/app/blobs/uploads/",
            "/v2/team/app/manifests/latest",
        ] {
            let error = content.resume_upload(bad).expect_err(bad);
            assert_eq!(
                error
                    .downcast_ref::<crate::InvalidArgument>()
                    .map(|a| a.argument),
                Some("location"),
                "{bad}: {error}"
            );
        }
    }
}
