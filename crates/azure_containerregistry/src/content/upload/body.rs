//! The body of one `PATCH`: read from the source piece by piece, hashed and handed to the
//! connection as it goes, each wait bounded by the client's timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use azure_core::error::ErrorKind;
use bytes::Bytes;
use futures::SinkExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use tokio::io::AsyncRead;

use super::session::Failure;
use super::source::{io_error, piece_len};
use super::Transfer;
use crate::content::{ContainerRegistryContentClient, Hasher};
use crate::error::transport_error;

impl ContainerRegistryContentClient {
    /// One `PATCH <Location>` whose body is read from `source` (starting with `first`) and
    /// hashed as it goes out (when a hasher is given): the bytes of `span`. While the answer is
    /// awaited, the first piece of the next request (of
    /// `next_len` bytes at most) is read. Returns how many bytes were handed to the connection,
    /// that next piece and the answer.
    ///
    /// The generated `upload_chunk` cannot be used: the spec's PATCH has no `Content-Range`
    /// parameter and takes a whole body, so this request is built here on the verbatim
    /// `Location` and sent through the same pipeline (authentication, tracing). A streamed
    /// body is sent once: failures are handled by the caller, which resumes from the
    /// registry's range.
    pub(super) async fn send_request_body<R: AsyncRead + Unpin>(
        &self,
        t: &mut Transfer<'_, R>,
        location: &str,
        first: Bytes,
        span: RequestSpan,
        mut hasher: Option<&mut Hasher>,
    ) -> Result<(u64, Option<Bytes>, azure_core::Result<reqwest::Response>), Failure> {
        let Transfer {
            source, progress, ..
        } = t;
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
pub(super) struct RequestSpan {
    /// The offset of its first byte in the blob.
    pub(super) start: u64,
    /// How many bytes it carries (at most, unless `exact`).
    pub(super) len: u64,
    /// Whether the source is known to have `len` bytes there (then `Content-Range` and
    /// `Content-Length` are sent).
    pub(super) exact: bool,
    /// The size of the request after it, for reading its first piece ahead.
    pub(super) next_len: u64,
}
