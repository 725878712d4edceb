//! Small helpers for reading response bodies safely.

use std::future::Future;

use futures::StreamExt;

/// Why a body could not be read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body is larger than the limit (the limit in bytes).
    TooLarge(usize),
    /// The connection failed while the body was read.
    Transport(reqwest::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge(limit) => write!(
                f,
                "the registry's answer is larger than the {limit}-byte limit"
            ),
            Self::Transport(e) => write!(f, "reading the registry's answer failed: {e}"),
        }
    }
}

/// Reads at most `limit` bytes of a body; more is an error (never unbounded memory).
pub(crate) async fn read_bounded(
    response: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, BodyError> {
    if let Some(len) = response.content_length() {
        if len > limit as u64 {
            return Err(BodyError::TooLarge(limit));
        }
    }
    let mut stream = response.bytes_stream();
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Transport)?;
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// A response body that fails once `deadline` has passed (the time to read an answer that is
/// read whole). Frames and the size hint are passed through unchanged.
struct DeadlineBody {
    inner: reqwest::Body,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    limit: std::time::Duration,
}

impl ::http_body::Body for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<::http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the registry's answer was not read within {} ms (body_timeout)",
                    self.limit.as_millis()
                ),
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> ::http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `response` with a body that must be read within `limit` of now.
pub(crate) fn with_body_deadline(
    response: reqwest::Response,
    limit: std::time::Duration,
) -> reqwest::Response {
    let response: http::Response<reqwest::Body> = response.into();
    let response = response.map(|inner| {
        reqwest::Body::wrap(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        })
    });
    reqwest::Response::from(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn trickling_response() -> reqwest::Response {
        let stream = futures::stream::unfold(0u32, |n| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            (n < 1000).then(|| {
                (
                    Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"x")),
                    n + 1,
                )
            })
        });
        let response = http::Response::builder()
            .status(200)
            .header("content-length", "1000")
            .body(reqwest::Body::wrap_stream(stream))
            .expect("a response");
        reqwest::Response::from(response)
    }

    #[tokio::test]
    async fn a_trickling_body_ends_at_its_deadline() {
        let response = with_body_deadline(trickling_response(), Duration::from_millis(300));
        let started = std::time::Instant::now();
        let error = read_bounded(response, 1 << 20)
            .await
            .expect_err("the deadline ends the read");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(format!("{error:?}").contains("body_timeout"), "{error:?}");
    }

    #[tokio::test]
    async fn a_prompt_body_is_unchanged() {
        let response = http::Response::builder()
            .status(200)
            .body(reqwest::Body::from("hello"))
            .expect("a response");
        let response =
            with_body_deadline(reqwest::Response::from(response), Duration::from_secs(5));
        assert_eq!(response.content_length(), Some(5));
        assert_eq!(&read_bounded(response, 10).await.unwrap()[..], b"hello");
    }
}
