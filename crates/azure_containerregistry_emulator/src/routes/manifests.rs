//! `/v2/<name>/manifests/<reference>`: GET/HEAD (with Accept negotiation), PUT and DELETE.

use super::{build, known_manifest, known_repo};
use crate::errors::{empty_response, ApiError, ApiResult};
use crate::names::{parse_digest, sha256_digest, Reference};
use crate::state::AppState;
use crate::storage::meta::{Attrs, ManifestMeta, PlatformRef, Registry, Repo, TagMeta};
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;

/// Largest manifest accepted.
const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;
/// Largest config blob read for architecture/os.
const CONFIG_LIMIT: u64 = 4 * 1024 * 1024;

/// OCI image index media type.
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker manifest list media type.
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Media types listed in the request's `Accept` headers (parameters dropped).
fn accepted(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether an index should be replaced by its linux/amd64 child: Accept names an image manifest
/// type but neither index nor list.
fn wants_platform_child(headers: &HeaderMap) -> bool {
    let types = accepted(headers);
    let any = |list: &[&str]| types.iter().any(|t| list.contains(&t.as_str()));
    !any(&[OCI_INDEX, DOCKER_LIST]) && any(&[OCI_MANIFEST, DOCKER_MANIFEST])
}

/// Refuses reads of a read-locked repository, tag or manifest.
fn readable(attrs: &Attrs) -> ApiResult<()> {
    if attrs.read_enabled {
        Ok(())
    } else {
        Err(ApiError::disallowed())
    }
}

/// `GET`/`HEAD /v2/<name>/manifests/<reference>`.
pub(crate) async fn get(
    state: &AppState,
    name: &str,
    reference: &Reference,
    headers: &HeaderMap,
    _head: bool,
) -> ApiResult {
    let (digest, media_type) = {
        let reg = state.store.meta.read().await;
        let repo = known_repo(&reg, name)?;
        readable(&repo.attrs)?;
        let digest = match reference {
            Reference::Tag(t) => {
                let tag = repo
                    .tags
                    .get(t)
                    .ok_or_else(|| ApiError::manifest_unknown_tag(t))?;
                readable(&tag.attrs)?;
                tag.digest.clone()
            }
            Reference::Digest(d) => d.clone(),
        };
        let meta = known_manifest(repo, &digest)?;
        readable(&meta.attrs)?;
        let mut chosen = (digest, meta.media_type.clone());
        if meta.is_index && wants_platform_child(headers) {
            let child = meta.references.iter().find(|r| {
                r.os.as_deref() == Some("linux") && r.architecture.as_deref() == Some("amd64")
            });
            if let Some(child) = child {
                if let Some(child_meta) = repo.manifests.get(&child.digest) {
                    chosen = (child.digest.clone(), child_meta.media_type.clone());
                }
            }
        }
        chosen
    };
    let bytes = state
        .store
        .blobs
        .read_all(&digest, u64::MAX)
        .await
        .ok_or_else(|| ApiError::manifest_unknown_digest(&digest))?;
    build(
        StatusCode::OK,
        &[
            ("content-type", media_type),
            ("docker-content-digest", digest.clone()),
            ("etag", format!("\"{digest}\"")),
            ("content-length", bytes.len().to_string()),
        ],
        Body::from(bytes),
    )
}

/// Facts extracted from a manifest body.
#[derive(Debug, Default)]
struct Analysis {
    is_index: bool,
    subject: Option<String>,
    artifact_type: Option<String>,
    config_media_type: Option<String>,
    annotations: Option<Value>,
    architecture: Option<String>,
    os: Option<String>,
    own_size: u64,
    references: Vec<PlatformRef>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

async fn analyze(state: &AppState, json: &Value, media_type: &str) -> Analysis {
    let mut a = Analysis {
        is_index: media_type == OCI_INDEX
            || media_type == DOCKER_LIST
            || json.get("manifests").is_some_and(Value::is_array),
        subject: str_at(json, &["subject", "digest"]).and_then(parse_digest),
        config_media_type: str_at(json, &["config", "mediaType"]).map(str::to_owned),
        annotations: json.get("annotations").filter(|v| v.is_object()).cloned(),
        ..Analysis::default()
    };
    a.artifact_type = str_at(json, &["artifactType"])
        .map(str::to_owned)
        .or_else(|| a.config_media_type.clone());
    if a.is_index {
        for m in json
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(digest) = str_at(m, &["digest"]).and_then(parse_digest) {
                a.references.push(PlatformRef {
                    digest,
                    architecture: str_at(m, &["platform", "architecture"]).map(str::to_owned),
                    os: str_at(m, &["platform", "os"]).map(str::to_owned),
                });
            }
        }
        return a;
    }
    let size_of = |v: &Value| v.get("size").and_then(Value::as_u64).unwrap_or(0);
    let layers: u64 = json
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(size_of)
        .sum();
    a.own_size = json.get("config").map(size_of).unwrap_or(0) + layers;
    if let Some(config) = str_at(json, &["config", "digest"]).and_then(parse_digest) {
        let parsed = state
            .store
            .blobs
            .read_all(&config, CONFIG_LIMIT)
            .await
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        let field = |k: &str| {
            parsed
                .as_ref()
                .and_then(|p| str_at(p, &[k]))
                .filter(|s| !s.is_empty())
        };
        a.architecture = Some(field("architecture").unwrap_or("unknown").to_owned());
        a.os = Some(field("os").unwrap_or("unknown").to_owned());
    }
    a
}

/// Layer media types whose bytes live elsewhere (`urls`), which need not be pushed.
fn is_foreign_layer(layer: &Value) -> bool {
    layer
        .get("urls")
        .and_then(Value::as_array)
        .is_some_and(|u| !u.is_empty())
}

/// The first blob (config, layer) or child manifest (index) a manifest references that the
/// repository does not hold; a registry refuses such a manifest (`MANIFEST_BLOB_UNKNOWN`).
fn missing_reference(repo: Option<&Repo>, json: &Value, is_index: bool) -> Option<String> {
    let digest_of = |v: &Value| str_at(v, &["digest"]).map(str::to_owned);
    let array = |key: &str| {
        json.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    if is_index {
        return array("manifests")
            .iter()
            .filter_map(digest_of)
            .find(|d| !repo.is_some_and(|r| r.manifests.contains_key(d)));
    }
    let config = json.get("config").and_then(digest_of);
    let layers = array("layers");
    let layers = layers
        .iter()
        .filter(|l| !is_foreign_layer(l))
        .filter_map(digest_of);
    config
        .into_iter()
        .chain(layers)
        .find(|d| !repo.is_some_and(|r| r.has_blob(d)))
}

/// `PUT /v2/<name>/manifests/<reference>`.
pub(crate) async fn put(
    state: &AppState,
    name: &str,
    reference: &Reference,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let bytes = axum::body::to_bytes(body, MANIFEST_LIMIT)
        .await
        .map_err(|_| ApiError::size_invalid("manifest payload size exceeds limit"))?;
    let json: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::manifest_invalid(e.to_string()))?;
    if !json.is_object() {
        return Err(ApiError::manifest_invalid("manifest is not a JSON object"));
    }
    let content_type = super::header_str(headers, &header::CONTENT_TYPE)
        .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|v| !v.is_empty() && v != "application/octet-stream");
    let body_type = str_at(&json, &["mediaType"]);
    if let (Some(header_type), Some(body_type)) = (&content_type, body_type) {
        if !header_type.eq_ignore_ascii_case(body_type) {
            return Err(ApiError::manifest_invalid(format!(
                "mediaType in manifest should be '{header_type}' not '{body_type}'"
            )));
        }
    }
    let media_type = content_type
        .or_else(|| body_type.map(str::to_owned))
        .unwrap_or_else(|| OCI_MANIFEST.to_owned());
    let digest = sha256_digest(&bytes);
    if let Reference::Digest(d) = reference {
        if *d != digest {
            return Err(ApiError::digest_invalid("manifest digest did not match"));
        }
    }
    let analysis = analyze(state, &json, &media_type).await;
    let size = bytes.len() as u64;
    // Checked under the read lock first, so that the manifest bytes are written outside the
    // write lock (and not at all when the push is refused); checked again under it.
    check_put(
        &*state.store.meta.read().await,
        name,
        reference,
        &json,
        analysis.is_index,
    )?;
    state.store.blobs.put_bytes(&digest, bytes).await?;
    {
        let mut reg = state.store.meta.write().await;
        let now = state.store.clock.now();
        check_put(&reg, name, reference, &json, analysis.is_index)?;
        let repo = reg
            .repos
            .entry(name.to_owned())
            .or_insert_with(|| Repo::new(now));
        let image_size = if analysis.is_index {
            analysis
                .references
                .iter()
                .filter_map(|r| repo.manifests.get(&r.digest))
                .map(|m| m.image_size)
                .sum()
        } else {
            analysis.own_size
        };
        let (created, attrs) = repo
            .manifests
            .get(&digest)
            .map(|m| (m.created, m.attrs))
            .unwrap_or((now, Attrs::default()));
        repo.manifests.insert(
            digest.clone(),
            ManifestMeta {
                media_type,
                size,
                created,
                updated: now,
                attrs,
                subject: analysis.subject.clone(),
                artifact_type: analysis.artifact_type,
                config_media_type: analysis.config_media_type,
                annotations: analysis.annotations,
                architecture: analysis.architecture,
                os: analysis.os,
                image_size,
                references: analysis.references,
                is_index: analysis.is_index,
            },
        );
        if let Reference::Tag(t) = reference {
            let (created, attrs) = repo
                .tags
                .get(t)
                .map(|t| (t.created, t.attrs))
                .unwrap_or((now, Attrs::default()));
            repo.tags.insert(
                t.clone(),
                TagMeta {
                    digest: digest.clone(),
                    created,
                    updated: now,
                    attrs,
                },
            );
        }
        repo.updated = now;
        state.store.persist_repo(reg, name).await?;
    }
    let mut out = vec![
        ("docker-content-digest", digest.clone()),
        ("location", format!("/v2/{name}/manifests/{digest}")),
        ("content-length", "0".to_owned()),
    ];
    if let Some(subject) = analysis.subject {
        out.push(("oci-subject", subject));
    }
    build(StatusCode::CREATED, &out, Body::empty())
}

/// Refuses a manifest PUT into a write-locked repository, tag or manifest, or one whose
/// references are not in the repository.
fn check_put(
    reg: &Registry,
    name: &str,
    reference: &Reference,
    json: &Value,
    is_index: bool,
) -> ApiResult<()> {
    if let Some(repo) = reg.repos.get(name) {
        let tag_locked = match reference {
            Reference::Tag(t) => repo.tags.get(t).is_some_and(|t| !t.attrs.write_enabled),
            Reference::Digest(d) => repo
                .manifests
                .get(d)
                .is_some_and(|m| !m.attrs.write_enabled),
        };
        if !repo.attrs.write_enabled || tag_locked {
            return Err(ApiError::disallowed());
        }
    }
    if let Some(missing) = missing_reference(reg.repos.get(name), json, is_index) {
        return Err(ApiError::manifest_blob_unknown(&missing));
    }
    Ok(())
}

/// `DELETE /v2/<name>/manifests/<digest>`: also removes the tags pointing at it.
pub(crate) async fn delete(state: &AppState, name: &str, reference: &Reference) -> ApiResult {
    let Reference::Digest(digest) = reference else {
        return Err(ApiError::delete_by_tag());
    };
    let mut reg = state.store.meta.write().await;
    let repo = reg
        .repos
        .get_mut(name)
        .ok_or_else(|| ApiError::manifest_unknown_digest(digest))?;
    let meta = known_manifest(repo, digest)?;
    let tag_locked = repo
        .tags
        .values()
        .any(|t| t.digest == *digest && !t.attrs.can_delete());
    if !repo.attrs.can_delete() || !meta.attrs.can_delete() || tag_locked {
        return Err(ApiError::disallowed());
    }
    repo.manifests.remove(digest);
    repo.tags.retain(|_, t| t.digest != *digest);
    state.store.persist_repo(reg, name).await?;
    Ok(empty_response(StatusCode::ACCEPTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn negotiation() {
        assert!(wants_platform_child(&accept(&[
            "application/json",
            DOCKER_MANIFEST
        ])));
        assert!(!wants_platform_child(&accept(&[&format!(
            "*/*,{OCI_MANIFEST},{OCI_INDEX}"
        )])));
        assert!(!wants_platform_child(&accept(&[])));
        assert!(!wants_platform_child(&accept(&["application/json"])));
        assert!(wants_platform_child(&accept(&[&format!(
            "{OCI_MANIFEST}; q=0.5"
        )])));
    }
}
