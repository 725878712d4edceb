//! Small helpers for reading response bodies safely.

use futures::StreamExt;

/// Reads at most `limit` bytes of a body; more is an error (never unbounded memory).
pub(crate) async fn read_bounded(
    response: reqwest::Response,
    limit: usize,
) -> azure_core::Result<bytes::Bytes> {
    if let Some(len) = response.content_length() {
        if len > limit as u64 {
            return Err(too_large(limit));
        }
    }
    let mut stream = response.bytes_stream();
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(crate::error::transport_error)?;
        if out.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

fn too_large(limit: usize) -> azure_core::Error {
    azure_core::Error::with_message(
        azure_core::error::ErrorKind::DataConversion,
        format!("the registry's answer is larger than the {limit}-byte limit"),
    )
}
