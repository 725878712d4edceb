//! The verifying stream under every blob download: bytes are hashed in order and the chunk
//! that completes the blob comes out only once its digest (and size) are confirmed.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};

use super::progress::{report, ProgressCallback};
use super::Hasher;
use crate::error::{digest_mismatch, protocol_error};

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
    request_id: Option<String>,
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

    /// The registry's id (`x-ms-request-id`) of the first request of the download, if it
    /// sent one (a parallel download makes many requests and reports none).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    pub(crate) fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
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

/// Hashes a raw byte stream in order, holds back the last chunk (the one that completes a blob
/// of known size, else the latest each time), and at the end yields it only if the digest (and
/// size, when known) match; else a `DigestMismatch` error.
pub(crate) fn verified(
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
        request_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

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
