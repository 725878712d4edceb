//! `/v2/<name>/blobs/<digest>`: HEAD, GET (with Range, or 307 to the storage listener) and DELETE.

use super::blob_body::serve_blob;
use super::{build, storage::signed_blob_url};
use crate::errors::{empty_response, ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};

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
    state.store.persist_repo(reg, name).await?;
    Ok(empty_response(StatusCode::ACCEPTED))
}
