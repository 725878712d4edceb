//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (session, monolithic, mount), PATCH, PUT, GET, DELETE.

use super::{build, header_str};
use crate::errors::{empty_response, ApiError, ApiResult};
use crate::names::{parse_digest, valid_repo_name};
use crate::paging::{encode_query_value, Query};
use crate::state::{AppState, UploadSession};
use crate::storage::meta::Repo;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use base64::Engine;
use futures::StreamExt;
use sha2::Digest;
use std::sync::Arc;

/// `_state`: opaque, different after every step.
fn state_token(id: &str, s: &UploadSession) -> String {
    let json = serde_json::json!({
        "Name": s.repo, "UUID": id, "Offset": s.offset, "StartedAt": s.started.rfc3339(), "Step": s.step,
    });
    base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
}

/// Relative upload URL with a fresh `_state`.
fn location(id: &str, s: &UploadSession) -> String {
    format!(
        "/v2/{}/blobs/uploads/{id}?_nouploadcache=false&_state={}",
        s.repo,
        encode_query_value(&state_token(id, s))
    )
}

/// `0-<last byte>`, or `0-0` when empty.
fn range_value(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

/// 202/204 answer describing an open session (and bumping its step).
fn session_response(status: StatusCode, id: &str, s: &mut UploadSession) -> ApiResult {
    s.step += 1;
    let mut headers = vec![
        ("location", location(id, s)),
        ("range", range_value(s.offset)),
        ("docker-upload-uuid", id.to_owned()),
    ];
    if status != StatusCode::NO_CONTENT {
        headers.push(("content-length", "0".to_owned()));
    }
    build(status, &headers, Body::empty())
}

/// Refuses pushes into a write-locked repository.
async fn check_writable(state: &AppState, name: &str) -> ApiResult<()> {
    let reg = state.store.meta.read().await;
    match reg.repos.get(name) {
        Some(repo) if !repo.attrs.write_enabled => Err(ApiError::disallowed()),
        _ => Ok(()),
    }
}

async fn new_session(state: &AppState, name: &str, id: &str) -> ApiResult<UploadSession> {
    Ok(UploadSession {
        repo: name.to_owned(),
        offset: 0,
        hasher: sha2::Sha256::new(),
        data: Some(state.store.blobs.new_upload(id).await?),
        started: state.store.clock.now(),
        step: 0,
    })
}

/// Streams a request body into the session; on failure the session is rolled back to where it was.
async fn append_body(session: &mut UploadSession, body: Body) -> ApiResult<()> {
    let (start, saved) = (session.offset, session.hasher.clone());
    let mut stream = body.into_data_stream();
    let mut failure: Option<ApiError> = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                failure = Some(ApiError::bad_request(format!("reading request body: {e}")));
                break;
            }
        };
        let Some(data) = session.data.as_mut() else {
            return Err(ApiError::blob_upload_unknown());
        };
        if let Err(e) = data.write(&chunk).await {
            failure = Some(e.into());
            break;
        }
        session.hasher.update(&chunk);
        session.offset += chunk.len() as u64;
    }
    match failure {
        None => Ok(()),
        Some(err) => {
            session.offset = start;
            session.hasher = saved;
            if let Some(data) = session.data.as_mut() {
                data.truncate(start).await?;
            }
            Err(err)
        }
    }
}

/// Links a committed blob into a repository (creating it) and persists the metadata.
async fn link_blob(state: &AppState, name: &str, digest: &str) -> ApiResult<()> {
    let mut reg = state.store.meta.write().await;
    let now = state.store.clock.now();
    let repo = reg
        .repos
        .entry(name.to_owned())
        .or_insert_with(|| Repo::new(now));
    repo.blobs.insert(digest.to_owned());
    repo.updated = now;
    state.store.persist(&reg).await?;
    Ok(())
}

/// Verifies the digest and commits, or discards everything on mismatch.
async fn finish(
    state: &AppState,
    session: &mut UploadSession,
    expected: Option<&str>,
) -> ApiResult {
    let data = session
        .data
        .take()
        .ok_or_else(ApiError::blob_upload_unknown)?;
    let actual = format!("sha256:{}", hex::encode(session.hasher.clone().finalize()));
    let expected = expected.and_then(parse_digest);
    if expected.as_deref() != Some(actual.as_str()) {
        state.store.blobs.discard_upload(data).await;
        return Err(ApiError::digest_invalid("digest parsing failed"));
    }
    state.store.blobs.commit_upload(data, &actual).await?;
    link_blob(state, &session.repo, &actual).await?;
    build(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{}/blobs/{actual}", session.repo)),
            ("docker-content-digest", actual.clone()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    )
}

/// `POST /v2/<name>/blobs/uploads/[?digest=…|?mount=…&from=…]`.
pub(crate) async fn start(state: &AppState, name: &str, query: &Query, body: Body) -> ApiResult {
    check_writable(state, name).await?;
    if let (Some(mount), Some(from)) = (query.non_empty("mount"), query.non_empty("from")) {
        if !valid_repo_name(from) {
            return Err(ApiError::name_invalid(from));
        }
        let digest =
            parse_digest(mount).ok_or_else(|| ApiError::digest_invalid("digest parsing failed"))?;
        let available = {
            let reg = state.store.meta.read().await;
            reg.repos
                .get(from)
                .is_some_and(|r| r.attrs.read_enabled && r.has_blob(&digest))
        };
        if available && state.store.blobs.size(&digest).await.is_some() {
            link_blob(state, name, &digest).await?;
            return build(
                StatusCode::CREATED,
                &[
                    ("location", format!("/v2/{name}/blobs/{digest}")),
                    ("docker-content-digest", digest.clone()),
                    ("content-length", "0".into()),
                ],
                Body::empty(),
            );
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut session = new_session(state, name, &id).await?;
    if let Some(digest) = query.non_empty("digest") {
        // Monolithic upload in one POST.
        if let Err(e) = append_body(&mut session, body).await {
            if let Some(data) = session.data.take() {
                state.store.blobs.discard_upload(data).await;
            }
            return Err(e);
        }
        return finish(state, &mut session, Some(digest)).await;
    }
    let resp = session_response(StatusCode::ACCEPTED, &id, &mut session);
    let mut uploads = state.uploads.lock().unwrap_or_else(|e| e.into_inner());
    uploads.insert(id, Arc::new(tokio::sync::Mutex::new(session)));
    resp
}

fn lookup(state: &AppState, id: &str) -> ApiResult<Arc<tokio::sync::Mutex<UploadSession>>> {
    let uploads = state.uploads.lock().unwrap_or_else(|e| e.into_inner());
    uploads
        .get(id)
        .cloned()
        .ok_or_else(ApiError::blob_upload_unknown)
}

fn remove(state: &AppState, id: &str) {
    state
        .uploads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(id);
}

/// Parses `Content-Range: a-b` (a `bytes ` prefix is tolerated).
fn content_range_start(headers: &HeaderMap) -> Option<Option<u64>> {
    let value = header_str(headers, &HeaderName::from_static("content-range"))?;
    let value = value
        .trim()
        .trim_start_matches("bytes ")
        .trim_start_matches("bytes=");
    let start = value
        .split_once('-')
        .and_then(|(a, _)| a.trim().parse::<u64>().ok());
    Some(start)
}

/// `PATCH <upload>`: appends a chunk.
pub(crate) async fn patch(
    state: &AppState,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let session = lookup(state, id)?;
    let mut s = session.lock().await;
    if s.repo != name || s.data.is_none() {
        return Err(ApiError::blob_upload_unknown());
    }
    match content_range_start(headers) {
        Some(Some(start)) if start != s.offset => return Err(ApiError::range_invalid()),
        Some(None) => return Err(ApiError::range_invalid()),
        _ => {}
    }
    append_body(&mut s, body).await?;
    session_response(StatusCode::ACCEPTED, id, &mut s)
}

/// `PUT <upload>&digest=…`: final (optional) chunk and commit.
pub(crate) async fn put(
    state: &AppState,
    name: &str,
    id: &str,
    query: &Query,
    body: Body,
) -> ApiResult {
    let session = lookup(state, id)?;
    let mut s = session.lock().await;
    if s.repo != name || s.data.is_none() {
        return Err(ApiError::blob_upload_unknown());
    }
    let result = match append_body(&mut s, body).await {
        Ok(()) => finish(state, &mut s, query.non_empty("digest")).await,
        Err(e) => {
            if let Some(data) = s.data.take() {
                state.store.blobs.discard_upload(data).await;
            }
            Err(e)
        }
    };
    remove(state, id);
    result
}

/// `GET <upload>`: 204 with the current range.
pub(crate) async fn status(state: &AppState, name: &str, id: &str) -> ApiResult {
    let session = lookup(state, id)?;
    let mut s = session.lock().await;
    if s.repo != name || s.data.is_none() {
        return Err(ApiError::blob_upload_unknown());
    }
    session_response(StatusCode::NO_CONTENT, id, &mut s)
}

/// `DELETE <upload>`: cancels and discards.
pub(crate) async fn cancel(state: &AppState, name: &str, id: &str) -> ApiResult {
    let session = lookup(state, id)?;
    let mut s = session.lock().await;
    if s.repo != name {
        return Err(ApiError::blob_upload_unknown());
    }
    let data = s.data.take().ok_or_else(ApiError::blob_upload_unknown)?;
    state.store.blobs.discard_upload(data).await;
    remove(state, id);
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header_values() {
        assert_eq!(range_value(0), "0-0");
        assert_eq!(range_value(736), "0-735");
    }

    #[test]
    fn content_range_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(content_range_start(&h), None);
        h.insert("content-range", "736-1471".parse().unwrap());
        assert_eq!(content_range_start(&h), Some(Some(736)));
        h.insert("content-range", "junk".parse().unwrap());
        assert_eq!(content_range_start(&h), Some(None));
    }
}
