//! `/v2/<name>/blobs/<digest>`: HEAD, GET (with Range, or 307 to the storage listener) and DELETE.

use super::{build, header_str, storage::signed_blob_url};
use crate::errors::{empty_response, ApiError, ApiResult};
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

/// Size of a blob linked into `name`, or BLOB_UNKNOWN.
async fn linked_size(state: &AppState, name: &str, digest: &str) -> ApiResult<u64> {
    {
        let reg = state.store.meta.read().await;
        let repo = reg.repos.get(name).ok_or_else(ApiError::blob_unknown)?;
        if !repo.has_blob(digest) {
            return Err(ApiError::blob_unknown());
        }
        if !repo.attrs.read_enabled {
            // A read-locked repository refuses pulls as a whole: blobs as well as manifests.
            return Err(ApiError::disallowed());
        }
    }
    state
        .store
        .blobs
        .size(digest)
        .await
        .ok_or_else(ApiError::blob_unknown)
}

/// `GET`/`HEAD /v2/<name>/blobs/<digest>`.
pub(crate) async fn get(
    state: &AppState,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let size = linked_size(state, name, digest).await?;
    if head {
        return build(
            StatusCode::OK,
            &[
                ("content-type", "application/octet-stream".into()),
                ("docker-content-digest", digest.to_owned()),
                ("content-length", size.to_string()),
            ],
            Body::empty(),
        );
    }
    if state.redirect_blobs {
        let location = signed_blob_url(state, digest);
        let body = format!(
            "<a href=\"{}\">Temporary Redirect</a>.\n\n",
            location.replace('&', "&amp;")
        );
        return build(
            StatusCode::TEMPORARY_REDIRECT,
            &[
                ("content-type", "text/html; charset=utf-8".into()),
                ("docker-content-digest", digest.to_owned()),
                ("location", location),
            ],
            Body::from(body),
        );
    }
    serve_blob(state, digest, size, headers, &[]).await
}

/// `DELETE /v2/<name>/blobs/<digest>`: unlinks the blob from the repository.
pub(crate) async fn delete(state: &AppState, name: &str, digest: &str) -> ApiResult {
    let mut reg = state.store.meta.write().await;
    let repo = reg.repos.get_mut(name).ok_or_else(ApiError::blob_unknown)?;
    if !repo.blobs.contains(digest) {
        return Err(ApiError::blob_unknown());
    }
    if !repo.attrs.can_delete() {
        return Err(ApiError::disallowed());
    }
    repo.blobs.remove(digest);
    state.store.persist(&reg).await?;
    Ok(empty_response(StatusCode::ACCEPTED))
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
