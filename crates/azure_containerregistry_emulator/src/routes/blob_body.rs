//! Blob bytes as an HTTP answer, honouring `Range`: shared by `/v2/<name>/blobs/<digest>` and
//! the storage listener's signed URLs.

use super::{build, header_str};
use crate::errors::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

/// A parsed `Range` request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// No (usable) range: the whole blob.
    Full,
    /// Inclusive byte range.
    Partial(u64, u64),
    /// Outside the blob.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` against a blob of `size` bytes.
pub(crate) fn parse_range(value: Option<&str>, size: u64) -> RangeSpec {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    match (a.trim(), b.trim()) {
        ("", n) => match n.parse::<u64>() {
            Ok(0) => RangeSpec::Unsatisfiable,
            Ok(_) if size == 0 => RangeSpec::Unsatisfiable,
            Ok(n) => RangeSpec::Partial(size - n.min(size), size - 1),
            Err(_) => RangeSpec::Full,
        },
        (a, "") => match a.parse::<u64>() {
            Ok(a) if a < size => RangeSpec::Partial(a, size - 1),
            Ok(_) => RangeSpec::Unsatisfiable,
            Err(_) => RangeSpec::Full,
        },
        (a, b) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) if a > b => RangeSpec::Full,
            (Ok(a), Ok(_)) if a >= size => RangeSpec::Unsatisfiable,
            (Ok(a), Ok(b)) => RangeSpec::Partial(a, b.min(size - 1)),
            _ => RangeSpec::Full,
        },
    }
}

/// Serves a stored blob honouring `Range` (200, 206 or 416).
pub(crate) async fn serve_blob(
    state: &AppState,
    digest: &str,
    size: u64,
    headers: &HeaderMap,
    extra: &[(&str, String)],
) -> ApiResult {
    let mut common: Vec<(&str, String)> = vec![
        ("content-type", "application/octet-stream".into()),
        ("docker-content-digest", digest.to_owned()),
        ("accept-ranges", "bytes".into()),
    ];
    common.extend(extra.iter().cloned());
    match parse_range(header_str(headers, &header::RANGE), size) {
        RangeSpec::Full => {
            let body = if size == 0 {
                Body::empty()
            } else {
                state.store.blobs.range_body(digest, 0, size - 1).await?
            };
            common.push(("content-length", size.to_string()));
            build(StatusCode::OK, &common, body)
        }
        RangeSpec::Partial(a, b) => {
            let body = state.store.blobs.range_body(digest, a, b).await?;
            common.push(("content-length", (b - a + 1).to_string()));
            common.push(("content-range", format!("bytes {a}-{b}/{size}")));
            build(StatusCode::PARTIAL_CONTENT, &common, body)
        }
        RangeSpec::Unsatisfiable => {
            let mut resp: Response =
                axum::response::IntoResponse::into_response(ApiError::range_invalid());
            if let Ok(v) = format!("bytes */{size}").parse() {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            Ok(resp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), RangeSpec::Partial(0, 3));
        assert_eq!(parse_range(Some("bytes=5-"), 10), RangeSpec::Partial(5, 9));
        assert_eq!(
            parse_range(Some("bytes=5-100"), 10),
            RangeSpec::Partial(5, 9)
        );
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeSpec::Partial(7, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), RangeSpec::Unsatisfiable);
    }
}
