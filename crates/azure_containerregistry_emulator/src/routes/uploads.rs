//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (session, monolithic, mount), PATCH, PUT, GET, DELETE.

use super::{build, header_str};
use crate::errors::{empty_response, ApiError, ApiResult};
use crate::names::{parse_digest, valid_repo_name};
use crate::paging::{encode_query_value, Query};
use crate::sessions::{SharedSession, UploadSession};
use crate::state::AppState;
use crate::storage::blobs::UploadData;
use crate::storage::meta::Repo;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use base64::Engine;
use futures::StreamExt;
use sha2::Digest;
use tokio::sync::OwnedMutexGuard;

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
    if !state.uploads.has_room() {
        return Err(ApiError::too_many("too many upload sessions are open"));
    }
    Ok(UploadSession {
        repo: name.to_owned(),
        offset: 0,
        hasher: sha2::Sha256::new(),
        data: Some(state.store.blobs.new_upload(id).await?),
        started: state.store.clock.now(),
        step: 0,
        last_active: std::time::Instant::now(),
    })
}

/// Where a session was before a request, to go back to when the request fails.
struct Mark {
    offset: u64,
    hasher: sha2::Sha256,
}

fn mark(session: &UploadSession) -> Mark {
    Mark {
        offset: session.offset,
        hasher: session.hasher.clone(),
    }
}

/// Puts a session back where it was at `mark` (bytes, hash and memory budget).
async fn rollback(state: &AppState, session: &mut UploadSession, mark: Mark) -> ApiResult<()> {
    let dropped = session.offset.saturating_sub(mark.offset);
    session.offset = mark.offset;
    session.hasher = mark.hasher;
    if let Some(data) = session.data.as_mut() {
        data.truncate(mark.offset).await?;
        if matches!(data, UploadData::Memory(_)) {
            if let Some(budget) = state.store.blobs.budget() {
                budget.release(dropped);
            }
        }
    }
    Ok(())
}

/// Streams a request body into the session; on failure the session is rolled back to where it
/// was. A blob past the maximum size, or memory past the budget, is refused with 413.
async fn append_body(state: &AppState, session: &mut UploadSession, body: Body) -> ApiResult<()> {
    let start = mark(session);
    session.last_active = std::time::Instant::now();
    let result = write_body(state, session, body).await;
    session.last_active = std::time::Instant::now();
    match result {
        Ok(()) => Ok(()),
        Err(err) => {
            rollback(state, session, start).await?;
            Err(err)
        }
    }
}

async fn write_body(state: &AppState, session: &mut UploadSession, body: Body) -> ApiResult<()> {
    let max = state.limits.max_blob_size;
    let budget = state.store.blobs.budget();
    let offset = session.offset;
    let Some(data) = session.data.as_mut() else {
        return Err(ApiError::blob_upload_unknown());
    };
    let mut writer = data.writer(offset).await?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        let n = chunk.len() as u64;
        if offset + written + n > max {
            return Err(ApiError::size_invalid(&format!(
                "blob exceeds the maximum blob size of {max} bytes"
            )));
        }
        if let Some(budget) = budget {
            if !budget.reserve(n) {
                return Err(ApiError::size_invalid(
                    "the emulator's memory budget for blobs is exhausted",
                ));
            }
        }
        writer.write(&chunk).await?;
        session.hasher.update(&chunk);
        written += n;
        session.offset = offset + written;
    }
    writer.finish().await?;
    Ok(())
}

/// Links a committed blob into a repository (creating it) and persists the metadata; refused
/// while the repository is write-locked.
async fn link_blob(state: &AppState, name: &str, digest: &str) -> ApiResult<()> {
    let mut reg = state.store.meta.write().await;
    let now = state.store.clock.now();
    if reg.repos.get(name).is_some_and(|r| !r.attrs.write_enabled) {
        return Err(ApiError::disallowed());
    }
    let repo = reg
        .repos
        .entry(name.to_owned())
        .or_insert_with(|| Repo::new(now));
    repo.blobs.insert(digest.to_owned());
    repo.updated = now;
    state.store.persist_repo(reg, name).await?;
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
    // A session opened before the repository was write-locked does not commit into it.
    if let Err(e) = check_writable(state, &session.repo).await {
        state.store.blobs.discard_upload(data).await;
        return Err(e);
    }
    state.store.blobs.commit_upload(data, &actual).await?;
    link_blob(state, &session.repo, &actual).await?;
    blob_created(&session.repo, &actual)
}

/// 201 for a blob now linked into `name`.
fn blob_created(name: &str, digest: &str) -> ApiResult {
    build(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/blobs/{digest}")),
            ("docker-content-digest", digest.to_owned()),
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
            return blob_created(name, &digest);
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut session = new_session(state, name, &id).await?;
    if let Some(digest) = query.non_empty("digest") {
        // Monolithic upload in one POST.
        if let Err(e) = append_body(state, &mut session, body).await {
            discard(state, &mut session).await;
            return Err(e);
        }
        return finish(state, &mut session, Some(digest)).await;
    }
    let resp = session_response(StatusCode::ACCEPTED, &id, &mut session);
    if let Err(mut session) = state.uploads.insert(id, session) {
        discard(state, &mut session).await;
        return Err(ApiError::too_many("too many upload sessions are open"));
    }
    resp
}

fn lookup(state: &AppState, id: &str) -> ApiResult<SharedSession> {
    state
        .uploads
        .get(id)
        .ok_or_else(ApiError::blob_upload_unknown)
}

/// The open session `id` of repository `name`, locked; BLOB_UPLOAD_UNKNOWN when there is none,
/// it belongs to another repository, is already finished or has expired.
async fn open_session(
    state: &AppState,
    name: &str,
    id: &str,
) -> ApiResult<OwnedMutexGuard<UploadSession>> {
    let s = lookup(state, id)?.lock_owned().await;
    if s.repo != name || s.data.is_none() || state.uploads.expired(&s) {
        return Err(ApiError::blob_upload_unknown());
    }
    Ok(s)
}

/// Throws away what a session has received so far.
async fn discard(state: &AppState, session: &mut UploadSession) {
    if let Some(data) = session.data.take() {
        state.store.blobs.discard_upload(data).await;
    }
}

fn remove(state: &AppState, id: &str) {
    state.uploads.remove(id);
}

/// A `Content-Range: <start>-<end>` request header (inclusive; a `bytes ` prefix is tolerated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkRange {
    start: u64,
    end: u64,
}

/// Parses `Content-Range`: `None` when absent, `Some(None)` when malformed (both ends must be
/// decimal numbers with `end >= start`).
fn content_range(headers: &HeaderMap) -> Option<Option<ChunkRange>> {
    let value = header_str(headers, &HeaderName::from_static("content-range"))?;
    let value = value
        .trim()
        .trim_start_matches("bytes ")
        .trim_start_matches("bytes=");
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let parsed = value.split_once('-').and_then(|(a, b)| {
        let (start, end) = (number(a)?, number(b)?);
        (end >= start).then_some(ChunkRange { start, end })
    });
    Some(parsed)
}

/// The request's `Content-Length`, if it has a valid one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, &axum::http::header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok())
}

/// `PATCH <upload>`: appends a chunk.
pub(crate) async fn patch(
    state: &AppState,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let mut s = open_session(state, name, id).await?;
    let range = match content_range(headers) {
        Some(None) => return Err(ApiError::range_invalid()),
        Some(Some(r)) if r.start != s.offset => return Err(ApiError::range_invalid()),
        Some(Some(r)) => Some(r),
        None => None,
    };
    let length = content_length(headers);
    let declared = range.map(|r| r.end - r.start + 1);
    // An empty chunk may carry any range that starts at the offset.
    if let (Some(declared), Some(length)) = (declared, length) {
        if length != 0 && length != declared {
            return Err(ApiError::range_invalid());
        }
    }
    let before = mark(&s);
    append_body(state, &mut s, body).await?;
    if let Some(declared) = declared {
        let received = s.offset - before.offset;
        if received != 0 && received != declared {
            rollback(state, &mut s, before).await?;
            return Err(ApiError::range_invalid());
        }
    }
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
    let mut s = open_session(state, name, id).await?;
    let result = match append_body(state, &mut s, body).await {
        Ok(()) => finish(state, &mut s, query.non_empty("digest")).await,
        Err(e) => {
            discard(state, &mut s).await;
            Err(e)
        }
    };
    remove(state, id);
    result
}

/// `GET <upload>`: 204 with the current range.
pub(crate) async fn status(state: &AppState, name: &str, id: &str) -> ApiResult {
    let mut s = open_session(state, name, id).await?;
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
        assert_eq!(content_range(&h), None);
        h.insert("content-range", "736-1471".parse().unwrap());
        assert_eq!(
            content_range(&h),
            Some(Some(ChunkRange {
                start: 736,
                end: 1471
            }))
        );
        for bad in ["junk", "0--1", "0-junk", "5-4", "-3", "0-", "+1-2"] {
            h.insert("content-range", bad.parse().unwrap());
            assert_eq!(content_range(&h), Some(None), "{bad}");
        }
    }
}
