//! `/acr/v1`: catalog, repository/tag/manifest properties, changeable attributes, deletes.

use super::lists::{listed_repos, page, with_link};
use super::{known_manifest, known_repo, known_repo_mut};
use crate::errors::{empty_response, json_response, ApiError, ApiResult};
use crate::paging::{acr_page, encode_query_value, link_header, Keyed, OrderBy, Query};
use crate::state::AppState;
use crate::storage::meta::{AttrsPatch, ManifestMeta, Registry, Repo, TagMeta};
use axum::body::Body;
use axum::http::StatusCode;
use serde_json::{json, Value};

/// Largest PATCH body accepted.
const PATCH_LIMIT: usize = 64 * 1024;

fn repo_json(state: &AppState, name: &str, repo: &Repo) -> Value {
    json!({
        "registry": state.service,
        "imageName": name,
        "createdTime": repo.created.rfc3339(),
        "lastUpdateTime": repo.updated.rfc3339(),
        "manifestCount": repo.manifests.len(),
        "tagCount": repo.tags.len(),
        "changeableAttributes": repo.attrs.to_json(),
    })
}

fn tag_json(name: &str, tag: &TagMeta) -> Value {
    json!({
        "name": name,
        "digest": tag.digest,
        "createdTime": tag.created.rfc3339(),
        "lastUpdateTime": tag.updated.rfc3339(),
        "signed": false,
        "changeableAttributes": tag.attrs.to_json(),
    })
}

fn manifest_json(repo: &Repo, digest: &str, m: &ManifestMeta, with_references: bool) -> Value {
    let mut v = serde_json::Map::new();
    v.insert("digest".into(), json!(digest));
    v.insert("imageSize".into(), json!(m.image_size));
    v.insert("createdTime".into(), json!(m.created.rfc3339()));
    v.insert("lastUpdateTime".into(), json!(m.updated.rfc3339()));
    if !m.is_index {
        if let Some(a) = &m.architecture {
            v.insert("architecture".into(), json!(a));
        }
        if let Some(o) = &m.os {
            v.insert("os".into(), json!(o));
        }
    }
    v.insert("mediaType".into(), json!(m.media_type));
    if let Some(c) = &m.config_media_type {
        v.insert("configMediaType".into(), json!(c));
    }
    let tags = repo.tags_of(digest);
    if !tags.is_empty() {
        v.insert("tags".into(), json!(tags));
    }
    v.insert("changeableAttributes".into(), m.attrs.to_json());
    if with_references && m.is_index {
        let refs: Vec<Value> = m
            .references
            .iter()
            .map(|r| json!({ "digest": r.digest, "architecture": r.architecture, "os": r.os }))
            .collect();
        v.insert("references".into(), json!(refs));
    }
    Value::Object(v)
}

/// A list item with its paging key.
struct Item {
    key: String,
    ticks: i64,
    json: Value,
}

impl Keyed for Item {
    fn key(&self) -> &str {
        &self.key
    }
    fn ticks(&self) -> i64 {
        self.ticks
    }
}

fn ok_json(value: &Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, value))
}

/// `{ "registry", "imageName", <key>: value }`, the envelope of the single-item answers.
fn envelope(state: &AppState, name: &str, key: &str, value: Value) -> Value {
    json!({ "registry": state.service, "imageName": name, key: value })
}

/// Applies a PATCH body under the write lock: `apply` updates the registry and returns the
/// answer, which is sent once the metadata is persisted.
async fn patch_with(
    state: &AppState,
    name: &str,
    body: Body,
    apply: impl FnOnce(&mut Registry, &AttrsPatch) -> ApiResult<Value>,
) -> ApiResult {
    let patch = read_patch(body).await?;
    let mut reg = state.store.meta.write().await;
    let out = apply(&mut reg, &patch)?;
    state.store.persist_repo(reg, name).await?;
    ok_json(&out)
}

async fn read_patch(body: Body) -> ApiResult<AttrsPatch> {
    let bytes = axum::body::to_bytes(body, PATCH_LIMIT)
        .await
        .map_err(|_| ApiError::bad_request("request body too large"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(AttrsPatch::default());
    }
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let value = match value.get("changeableAttributes") {
        Some(inner) if inner.is_object() => inner.clone(),
        _ => value,
    };
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `GET /acr/v1/_catalog`.
pub(crate) async fn catalog(state: &AppState, query: &Query) -> ApiResult {
    let names = listed_repos(state).await;
    let (page, link) = page(names, query, "/acr/v1/_catalog", Some(""));
    Ok(with_link(
        json_response(StatusCode::OK, &json!({ "repositories": page })),
        link,
    ))
}

/// `GET /acr/v1/<name>`.
pub(crate) async fn get_repo(state: &AppState, name: &str) -> ApiResult {
    let reg = state.store.meta.read().await;
    ok_json(&repo_json(state, name, known_repo(&reg, name)?))
}

/// `PATCH /acr/v1/<name>`.
pub(crate) async fn patch_repo(state: &AppState, name: &str, body: Body) -> ApiResult {
    patch_with(state, name, body, |reg, patch| {
        let repo = known_repo_mut(reg, name)?;
        repo.attrs.apply(patch);
        Ok(repo_json(state, name, repo))
    })
    .await
}

/// `DELETE /acr/v1/<name>`.
pub(crate) async fn delete_repo(state: &AppState, name: &str) -> ApiResult {
    let mut reg = state.store.meta.write().await;
    let repo = reg
        .repos
        .get(name)
        .ok_or_else(|| ApiError::name_unknown_delete(name))?;
    let locked = !repo.attrs.can_delete()
        || repo.tags.values().any(|t| !t.attrs.can_delete())
        || repo.manifests.values().any(|m| !m.attrs.can_delete());
    if locked {
        return Err(ApiError::disallowed());
    }
    let Some(repo) = reg.repos.remove(name) else {
        return Err(ApiError::name_unknown_delete(name));
    };
    state.store.persist_repo(reg, name).await?;
    let body = json!({
        "manifestsDeleted": repo.manifests.keys().collect::<Vec<_>>(),
        "tagsDeleted": repo.tags.keys().collect::<Vec<_>>(),
    });
    Ok(json_response(StatusCode::ACCEPTED, &body))
}

/// Answers a list endpoint (`kind` is `_tags` or `_manifests`): the items of `name` that
/// `items` collects, ordered and paged as the query asks, under the key `kind` without `_`.
async fn list(
    state: &AppState,
    name: &str,
    query: &Query,
    kind: &str,
    items: impl FnOnce(&Repo) -> Vec<Item>,
) -> ApiResult {
    let order = OrderBy::parse(query.get("orderby"));
    let items = {
        let reg = state.store.meta.read().await;
        items(known_repo(&reg, name)?)
    };
    let n = query.page_size();
    let (page, cursor) = acr_page(items, order, query.non_empty("last"), n);
    let page: Vec<Value> = page.into_iter().map(|i| i.json).collect();
    let body = envelope(state, name, kind.trim_start_matches('_'), json!(page));
    let link = cursor.zip(n).map(|(c, n)| {
        let path = format!("/acr/v1/{}/{kind}", encode_query_value(name));
        link_header(&path, &c, n, Some(order.as_str()))
    });
    Ok(with_link(json_response(StatusCode::OK, &body), link))
}

/// `GET /acr/v1/<name>/_tags`.
pub(crate) async fn list_tags(state: &AppState, name: &str, query: &Query) -> ApiResult {
    let filter = query.non_empty("digest");
    list(state, name, query, "_tags", |repo| {
        repo.tags
            .iter()
            .filter(|(_, t)| t.attrs.list_enabled)
            .filter(|(_, t)| filter.is_none_or(|d| t.digest == d))
            .map(|(n, t)| Item {
                key: n.clone(),
                ticks: t.updated.dotnet_ticks(),
                json: tag_json(n, t),
            })
            .collect()
    })
    .await
}

/// `GET /acr/v1/<name>/_tags/<tag>`.
pub(crate) async fn get_tag(state: &AppState, name: &str, tag: &str) -> ApiResult {
    let reg = state.store.meta.read().await;
    let repo = known_repo(&reg, name)?;
    let t = repo.tags.get(tag).ok_or_else(ApiError::tag_unknown)?;
    ok_json(&envelope(state, name, "tag", tag_json(tag, t)))
}

/// `PATCH /acr/v1/<name>/_tags/<tag>`.
pub(crate) async fn patch_tag(state: &AppState, name: &str, tag: &str, body: Body) -> ApiResult {
    patch_with(state, name, body, |reg, patch| {
        let repo = known_repo_mut(reg, name)?;
        let t = repo.tags.get_mut(tag).ok_or_else(ApiError::tag_unknown)?;
        t.attrs.apply(patch);
        Ok(envelope(state, name, "tag", tag_json(tag, t)))
    })
    .await
}

/// `DELETE /acr/v1/<name>/_tags/<tag>`.
pub(crate) async fn delete_tag(state: &AppState, name: &str, tag: &str) -> ApiResult {
    let mut reg = state.store.meta.write().await;
    let repo = known_repo_mut(&mut reg, name)?;
    let t = repo.tags.get(tag).ok_or_else(ApiError::tag_unknown)?;
    if !repo.attrs.can_delete() || !t.attrs.can_delete() {
        return Err(ApiError::disallowed());
    }
    repo.tags.remove(tag);
    state.store.persist_repo(reg, name).await?;
    Ok(empty_response(StatusCode::ACCEPTED))
}

/// `GET /acr/v1/<name>/_manifests`.
pub(crate) async fn list_manifests(state: &AppState, name: &str, query: &Query) -> ApiResult {
    list(state, name, query, "_manifests", |repo| {
        repo.manifests
            .iter()
            .filter(|(_, m)| m.attrs.list_enabled)
            .map(|(d, m)| Item {
                key: d.clone(),
                ticks: m.updated.dotnet_ticks(),
                json: manifest_json(repo, d, m, false),
            })
            .collect()
    })
    .await
}

/// `GET /acr/v1/<name>/_manifests/<digest>`.
pub(crate) async fn get_manifest(state: &AppState, name: &str, digest: &str) -> ApiResult {
    let reg = state.store.meta.read().await;
    let repo = known_repo(&reg, name)?;
    let m = known_manifest(repo, digest)?;
    let manifest = manifest_json(repo, digest, m, true);
    ok_json(&envelope(state, name, "manifest", manifest))
}

/// `PATCH /acr/v1/<name>/_manifests/<digest>`.
pub(crate) async fn patch_manifest(
    state: &AppState,
    name: &str,
    digest: &str,
    body: Body,
) -> ApiResult {
    patch_with(state, name, body, |reg, patch| {
        let repo = known_repo_mut(reg, name)?;
        let m = repo
            .manifests
            .get_mut(digest)
            .ok_or_else(|| ApiError::manifest_unknown_digest(digest))?;
        m.attrs.apply(patch);
        let m = m.clone();
        let manifest = manifest_json(repo, digest, &m, true);
        Ok(envelope(state, name, "manifest", manifest))
    })
    .await
}
