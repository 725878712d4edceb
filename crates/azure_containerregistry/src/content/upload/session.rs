//! The registry's side of an upload: opening a session, sending a small blob in one request,
//! streaming a large one request by request, resuming from the registry's reported `Range`
//! after a failure, and committing.

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use bytes::Bytes;
use reqwest::header::LOCATION;
use tokio::io::AsyncRead;

use super::body::RequestSpan;
use super::source::{hash_error, hash_through, io_error, piece_len, seek_to};
use super::{skipped, Transfer, UploadBlobResult};
use crate::content::{header, ContainerRegistryContentClient, Hasher};
use crate::error::{digest_mismatch, protocol_error, response_error, rest_error};
use crate::retry::is_retryable;

/// Why a streamed attempt failed.
pub(super) enum Failure {
    /// The upload cannot go on (bad answer, retries exhausted, the source failed).
    Fatal(azure_core::Error),
    /// The registry lost the session or the confirmed bytes: start again if the source allows.
    SessionLost(azure_core::Error),
}

/// An open upload session.
pub(super) struct Session {
    /// The latest `Location`, verbatim.
    pub(super) location: String,
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
    /// POST, then PUT with the whole blob as body.
    pub(super) async fn upload_single<R>(
        &self,
        data: Bytes,
        check_existing: bool,
        t: &mut Transfer<'_, R>,
    ) -> azure_core::Result<UploadBlobResult> {
        let size = data.len() as u64;
        let digest = crate::reference::sha256_digest(&data);
        // The existence check and the session start go out together: a small upload then
        // costs two round trips (POST, PUT), like an upload without the check.
        let mut opened = if check_existing {
            let (exists, session) =
                tokio::join!(self.probably_exists(&digest), self.open_session());
            if exists {
                if let Ok(session) = session {
                    self.cancel_in_background(session);
                }
                t.progress.at(size);
                return Ok(skipped(digest, size));
            }
            Some(session?)
        } else {
            None
        };
        let mut attempt = 0;
        let mut request_id = None;
        loop {
            let session = match opened.take() {
                Some(session) => session,
                None => self.open_session().await?,
            };
            match self.commit(&session, &digest, data.clone()).await {
                Ok(id) => {
                    request_id = id;
                    break;
                }
                Err(e) => {
                    if is_digest_mismatch(&e) {
                        return Err(e);
                    }
                    // The commit may have happened even though the answer was lost.
                    if self.blob_exists(&digest).await.unwrap_or(false) {
                        break;
                    }
                    if attempt >= t.max_retries || !is_retryable(&e) {
                        return Err(e);
                    }
                    tokio::time::sleep(self.retry_delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
        t.progress.at(size);
        Ok(UploadBlobResult {
            digest,
            size,
            skipped: false,
            request_id,
        })
    }

    /// Streamed upload sessions until one commits; a lost session starts again from the first
    /// byte when the source still has it. With `expected`, the digest comes from there instead
    /// of hashing the bytes sent (the registry checks them against it). Each session's first
    /// `Location` is noted in `opened` (so that an upload stopped from outside can be
    /// cancelled).
    pub(super) async fn upload_streamed<R: AsyncRead + Send + Unpin>(
        &self,
        t: &mut Transfer<'_, R>,
    ) -> azure_core::Result<UploadBlobResult> {
        let mut restarts = 0;
        loop {
            match self.streamed_attempt(t).await {
                Ok(result) => return Ok(result),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::SessionLost(e)) => {
                    if restarts >= t.max_retries || !t.source.seek(0).await.map_err(io_error)? {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, restarts = restarts + 1, "the registry lost the upload session; starting again");
                    tokio::time::sleep(self.retry_delay(restarts)).await;
                    restarts += 1;
                }
            }
        }
    }

    /// One upload session from the first byte to the commit.
    async fn streamed_attempt<R: AsyncRead + Send + Unpin>(
        &self,
        t: &mut Transfer<'_, R>,
    ) -> Result<UploadBlobResult, Failure> {
        let fatal_io = |e: std::io::Error| Failure::Fatal(io_error(e));
        let total = t.source.len();
        let chunk_size = t.chunk_size;
        let mut session = self.open_session().await.map_err(Failure::Fatal)?;
        if let Some(Ok(mut opened)) = t.opened.map(|o| o.lock()) {
            *opened = Some(session.location.clone());
        }
        // No hashing here when the digest comes from elsewhere.
        let mut hasher = t.expected.is_none().then(Hasher::sha256);
        // Bytes the registry has confirmed; the source is there at the start of each request.
        let mut offset = 0u64;
        let mut failures = 0u32;
        // The first piece of the next request, read while waiting for the answer to this one.
        let mut ahead: Option<Bytes> = None;
        loop {
            t.source.forget_before(offset);
            let at_start = hasher.clone();
            let len = match total {
                Some(total) => chunk_size.min(total - offset),
                None => chunk_size,
            };
            let first = match ahead.take() {
                Some(piece) => piece,
                None => t
                    .source
                    .read_piece(piece_len(len))
                    .await
                    .map_err(fatal_io)?,
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
                    t,
                    &session.location,
                    first,
                    RequestSpan {
                        start: offset,
                        len,
                        exact: total.is_some(),
                        next_len,
                    },
                    hasher.as_mut(),
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
                                seek_to(&mut t.source, offset).await?;
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
                    if failures >= t.max_retries {
                        return Err(Failure::Fatal(error));
                    }
                    tracing::debug!(error = %error, attempt = failures + 1, offset, "upload request failed; asking the registry for the upload's progress");
                    tokio::time::sleep(self.retry_delay(failures)).await;
                    failures += 1;
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
                    seek_to(&mut t.source, offset).await?;
                    hash_through(&mut t.source, hasher, received - offset).await?;
                }
                // Nothing to hash: just go there.
                None => seek_to(&mut t.source, received).await?,
            }
            offset = received;
        }
        if total.is_some_and(|t| t != offset) {
            return Err(Failure::Fatal(io_error(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the source ended before its size",
            ))));
        }
        let digest = match (hasher, &t.expected) {
            (Some(hasher), _) => hasher.finish(),
            (None, Some(expected)) => expected
                .clone()
                .await
                .map_err(|e| Failure::Fatal(hash_error(e)))?,
            (None, None) => return Err(Failure::Fatal(protocol_error("no digest for the upload"))),
        };
        let request_id = match self.commit(&session, &digest, Bytes::new()).await {
            Ok(id) => id,
            Err(e) => {
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
                None
            }
        };
        t.progress.at(offset);
        Ok(UploadBlobResult {
            digest,
            size: offset,
            skipped: false,
            request_id,
        })
    }

    /// `GET <Location>`: how many bytes the registry has (its `Range`).
    async fn upload_progress(&self, session: &mut Session) -> Result<u64, Failure> {
        let status = match self.rest().get_upload_status(&session.location).await {
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

    /// Cancels an upload session that is no longer needed, without waiting for the answer (a
    /// registry also expires abandoned sessions by itself).
    pub(super) fn cancel_in_background(&self, session: Session) {
        let client = self.clone();
        tokio::spawn(async move {
            if let Err(e) = client.rest().cancel_upload(&session.location).await {
                tracing::debug!(error = %e, "cancelling an unneeded upload session failed");
            }
        });
    }

    /// `POST /v2/<name>/blobs/uploads/`: opens a session. Its empty body can be re-sent, so a
    /// 401 challenge is answered here and the `pull,push` token is cached before any chunk.
    pub(super) async fn open_session(&self) -> azure_core::Result<Session> {
        let response = self
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
    /// Returns the registry's request id.
    pub(super) async fn commit(
        &self,
        session: &Session,
        digest: &str,
        body: Bytes,
    ) -> azure_core::Result<Option<String>> {
        let response = self
            .rest()
            .complete_upload(&session.location, digest, body)
            .await
            .map_err(rest_error)?;
        if let Some(server) = header(response.headers(), "docker-content-digest") {
            if server != digest {
                return Err(digest_mismatch(digest, server));
            }
        }
        Ok(header(response.headers(), "x-ms-request-id").map(str::to_string))
    }
}

fn is_digest_mismatch(e: &azure_core::Error) -> bool {
    e.downcast_ref::<crate::DigestMismatch>().is_some()
}

pub(super) fn missing_header(name: &str, doing: &str) -> azure_core::Error {
    protocol_error(format!("the registry sent no {name} header when {doing}"))
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
}
