//! Request bodies shared between a handler and the connection: whatever the handler leaves
//! unread (it answered 401 or 416 without needing the body) is read and discarded afterwards, so
//! a client that writes its whole body before reading gets the answer and keeps its connection.

use axum::body::{Body, BodyDataStream};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

/// The part of a request body that its handler did not read.
#[derive(Debug)]
pub(crate) struct Remainder(Arc<Mutex<Option<BodyDataStream>>>);

/// Splits `body` into a body for the handler and a [`Remainder`] to drain after it answers.
pub(crate) fn share(body: Body) -> (Body, Remainder) {
    let inner = Arc::new(Mutex::new(Some(body.into_data_stream())));
    let for_handler = inner.clone();
    let stream = futures::stream::poll_fn(move |cx| {
        let mut guard = for_handler.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(s) => s.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    });
    (Body::from_stream(stream), Remainder(inner))
}

impl Remainder {
    /// Reads the rest of the body, discarding it; `true` when it ended within `limit` bytes and
    /// `timeout`, `false` when the connection should be closed instead.
    pub(crate) async fn drain(self, limit: u64, timeout: Duration) -> bool {
        let taken = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut stream) = taken else {
            return true;
        };
        let work = async {
            let mut read = 0u64;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        read += bytes.len() as u64;
                        if read > limit {
                            return false;
                        }
                    }
                    Err(_) => return false,
                }
            }
            true
        };
        tokio::time::timeout(timeout, work).await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unread_rest_is_drained_within_the_limit() {
        let chunks = futures::stream::iter(
            (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 100]))),
        );
        let (body, rest) = share(Body::from_stream(chunks));
        drop(body);
        assert!(rest.drain(400, Duration::from_secs(1)).await);
        let chunks = futures::stream::iter(
            (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 100]))),
        );
        let (_body, rest) = share(Body::from_stream(chunks));
        assert!(!rest.drain(399, Duration::from_secs(1)).await);
    }
}
