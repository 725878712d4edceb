//! The hand-written part of the REST crate: progenitor's [`ClientHooks`] for [`Client`].
//!
//! The hooks do what the spec cannot say (see `specs/PATCHES.md`):
//! - `api-version=2021-07-01` is appended to `/acr/` and `/oauth2/` requests, and progenitor's
//!   `api-version` header is removed (patch 6);
//! - the upload-link operations use the upload `Location` verbatim instead of progenitor's
//!   percent-encoded single path segment (patch 7);
//! - error responses whose body is empty or not an ACR error body are given one, so status and
//!   headers survive into [`Error::ErrorResponse`] (patch 8);
//! - JSON bodies are read with a size bound, so an endless body cannot exhaust memory;
//! - an optional [`RequestPolicy`] (authentication, retries, tracing) sends each request.
//!
//! [`Error::ErrorResponse`]: crate::Error::ErrorResponse

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::StreamExt;
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};

use crate::Client;

/// The API version appended to `/acr/` and `/oauth2/` requests.
pub const API_VERSION: &str = "2021-07-01";

/// The largest JSON body (success or error) the client reads, in bytes.
pub const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// The largest error body kept when an error response is rewritten, in bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Every operation id of the generated [`Client`], as its hooks see it in
/// [`OperationInfo::operation_id`]. A test keeps the list equal to the generated code, so code
/// that matches on an operation name can check that the name still exists.
pub const OPERATION_IDS: &[&str] = &[
    "cancel_upload",
    "check_blob_exists",
    "check_docker_v2_support",
    "complete_upload",
    "create_manifest",
    "delete_blob",
    "delete_manifest",
    "delete_repository",
    "delete_tag",
    "exchange_aad_access_token_for_acr_refresh_token",
    "exchange_acr_refresh_token_for_acr_access_token",
    "get_acr_access_token_from_login",
    "get_blob",
    "get_manifest",
    "get_manifest_properties",
    "get_manifests",
    "get_oci_catalog",
    "get_oci_tags",
    "get_properties",
    "get_referrers",
    "get_repositories",
    "get_tag_properties",
    "get_tags",
    "get_upload_status",
    "mount_blob",
    "update_manifest_properties",
    "update_properties",
    "update_tag_attributes",
    "upload_chunk",
];

/// Operations whose path is an upload `Location` rather than a templated path.
const UPLOAD_LINK_OPERATIONS: &[&str] = &[
    "get_upload_status",
    "upload_chunk",
    "complete_upload",
    "cancel_upload",
];

/// Operations whose success body is a byte stream the caller consumes (not bounded here).
const STREAMING_OPERATIONS: &[&str] = &["get_blob", "get_manifest"];

/// Sends a prepared request: the place for authentication, retries and tracing.
///
/// The default (no policy) is `client.execute(request)`.
pub trait RequestPolicy: Send + Sync + fmt::Debug {
    /// Sends `request` with `client`, returning the final response.
    fn send<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        info: &'a OperationInfo,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>>;
}

/// The inner state of the generated [`Client`]: an optional [`RequestPolicy`].
#[derive(Clone, Default)]
pub struct ClientState {
    policy: Option<Arc<dyn RequestPolicy>>,
}

impl ClientState {
    /// A state that sends requests as they are.
    pub fn new() -> Self {
        Self::default()
    }

    /// A state that sends every request through `policy`.
    pub fn with_policy(policy: Arc<dyn RequestPolicy>) -> Self {
        Self {
            policy: Some(policy),
        }
    }

    /// The policy, if any.
    pub fn policy(&self) -> Option<&Arc<dyn RequestPolicy>> {
        self.policy.as_ref()
    }
}

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientState")
            .field("policy", &self.policy)
            .finish()
    }
}

impl ClientHooks<ClientState> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        prepare_request(self.baseurl(), request, info.operation_id)
            .map_err(progenitor_client::Error::InvalidRequest)
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let response = match self.inner().policy() {
            Some(policy) => policy.send(self.client(), request, info).await?,
            None => self.client().execute(request).await?,
        };
        Ok(finish_response(response, info.operation_id).await)
    }
}

/// Applies patches 6 and 7 to a request built by the generated code.
pub fn prepare_request(
    baseurl: &str,
    request: &mut reqwest::Request,
    operation_id: &str,
) -> Result<(), String> {
    request.headers_mut().remove("api-version");
    if UPLOAD_LINK_OPERATIONS.contains(&operation_id) {
        let url = upload_link_url(baseurl, request.url())?;
        *request.url_mut() = url;
    }
    let path = request.url().path();
    if (path.starts_with("/acr/") || path.starts_with("/oauth2/"))
        && !request.url().query_pairs().any(|(k, _)| k == "api-version")
    {
        request
            .url_mut()
            .query_pairs_mut()
            .append_pair("api-version", API_VERSION);
    }
    Ok(())
}

/// Rebuilds an upload-link URL: progenitor encoded the whole `Location` into the first path
/// segment; decode it and resolve it against the base URL, keeping it byte for byte, then add
/// the query parameters of the operation (such as `digest`).
pub fn upload_link_url(baseurl: &str, generated: &reqwest::Url) -> Result<reqwest::Url, String> {
    let base =
        reqwest::Url::parse(baseurl).map_err(|e| format!("invalid base URL {baseurl:?}: {e}"))?;
    let base_path = base.path().trim_end_matches('/');
    let encoded = generated
        .path()
        .strip_prefix(base_path)
        .and_then(|p| p.strip_prefix('/'))
        .ok_or_else(|| format!("unexpected upload link URL {generated}"))?;
    let location = percent_decode(encoded)?;
    if location.is_empty() {
        return Err("the upload link is empty".into());
    }
    let mut url = base
        .join(&location)
        .map_err(|e| format!("invalid upload link {location:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the upload link {location:?} is not an http(s) URL"
        ));
    }
    let extra: Vec<(String, String)> = generated
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !extra.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in &extra {
            pairs.append_pair(k, v);
        }
    }
    Ok(url)
}

/// Decodes `%XX` escapes once (the inverse of progenitor's `encode_path`).
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in upload link {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("upload link {s:?} is not UTF-8"))
}

/// Applies patch 8 and the JSON size bound to a response.
async fn finish_response(response: reqwest::Response, operation_id: &str) -> reqwest::Response {
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        return normalize_error(response).await;
    }
    if STREAMING_OPERATIONS.contains(&operation_id) {
        return response;
    }
    bound_body(response, MAX_JSON_BODY)
}

/// Wraps the body so that reading more than `limit` bytes fails instead of growing memory.
fn bound_body(response: reqwest::Response, limit: usize) -> reqwest::Response {
    let http: http::Response<reqwest::Body> = response.into();
    let (parts, body) = http.into_parts();
    let mut seen = 0usize;
    let stream = http_body_util::BodyDataStream::new(body).map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len();
        if seen > limit {
            return Err(BodyTooLarge(limit).into());
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(chunk)
    });
    reqwest::Response::from(http::Response::from_parts(
        parts,
        reqwest::Body::wrap_stream(stream),
    ))
}

/// The error of a body longer than the client reads.
#[derive(Debug)]
pub struct BodyTooLarge(pub usize);

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the response body is larger than {} bytes", self.0)
    }
}

impl std::error::Error for BodyTooLarge {}

/// Reads an error body (bounded) and makes sure it is an ACR error body, keeping status and
/// headers. A non-JSON body becomes the message of one error without a code.
async fn normalize_error(response: reqwest::Response) -> reqwest::Response {
    let http: http::Response<reqwest::Body> = response.into();
    let (mut parts, body) = http.into_parts();
    let mut stream = http_body_util::BodyDataStream::new(body);
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                let room = MAX_ERROR_BODY.saturating_sub(bytes.len());
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if bytes.len() >= MAX_ERROR_BODY {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let body = error_body(&bytes);
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    reqwest::Response::from(http::Response::from_parts(parts, reqwest::Body::from(body)))
}

/// The ACR error body for raw error bytes: kept when it already is one, else built.
pub fn error_body(bytes: &[u8]) -> Vec<u8> {
    // Kept only when the typed error model reads it, so the generated code cannot fail on it
    // and lose the status.
    if serde_json::from_slice::<crate::types::AcrErrors>(bytes).is_ok()
        && serde_json::from_slice::<serde_json::Value>(bytes)
            .is_ok_and(|v| v.get("errors").is_some_and(serde_json::Value::is_array))
    {
        return bytes.to_vec();
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let value = if text.is_empty() {
        serde_json::json!({ "errors": [] })
    } else {
        let message: String = text.chars().take(1024).collect();
        serde_json::json!({ "errors": [{ "message": message }] })
    };
    serde_json::to_vec(&value).unwrap_or_else(|_| b"{\"errors\":[]}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_match_the_generated_client() {
        let generated = include_str!("generated.rs");
        let mut found: Vec<&str> = generated
            .split("operation_id: \"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        found.sort_unstable();
        found.dedup();
        assert_eq!(
            found, OPERATION_IDS,
            "OPERATION_IDS must list the generated operations"
        );
        for name in UPLOAD_LINK_OPERATIONS.iter().chain(STREAMING_OPERATIONS) {
            assert!(
                OPERATION_IDS.contains(name),
                "the hooks match on `{name}`, which the generated client no longer has"
            );
        }
    }

    fn request(url: &str) -> reqwest::Request {
        reqwest::Request::new(reqwest::Method::GET, reqwest::Url::parse(url).unwrap())
    }

    #[test]
    fn upload_link_is_used_verbatim() {
        // progenitor's encode_path of "/v2/a/b/blobs/uploads/u1?_state=x%3D%3D&_nouploadcache=false"
        let generated = reqwest::Url::parse(
            "http://r.io/%2Fv2%2Fa%2Fb%2Fblobs%2Fuploads%2Fu1%3F_state%3Dx%253D%253D%26_nouploadcache%3Dfalse?digest=sha256%3Aab",
        )
        .unwrap();
        let url = upload_link_url("http://r.io", &generated).unwrap();
        assert_eq!(
            url.as_str(),
            "http://r.io/v2/a/b/blobs/uploads/u1?_state=x%3D%3D&_nouploadcache=false&digest=sha256%3Aab"
        );
    }

    #[test]
    fn absolute_upload_link_keeps_its_host() {
        let generated =
            reqwest::Url::parse("http://r.io/https%3A%2F%2Fother.io%2Fup%2F1%3Fs%3D1").unwrap();
        let url = upload_link_url("http://r.io", &generated).unwrap();
        assert_eq!(url.as_str(), "https://other.io/up/1?s=1");
    }

    #[test]
    fn bad_upload_links_are_errors() {
        for bad in [
            "http://r.io/%ZZ",
            "http://r.io/",
            "http://r.io/ftp%3A%2F%2Fx",
        ] {
            let generated = reqwest::Url::parse(bad).unwrap();
            assert!(upload_link_url("http://r.io", &generated).is_err(), "{bad}");
        }
    }

    #[test]
    fn api_version_only_on_acr_and_oauth2() {
        let mut r = request("http://r.io/acr/v1/_catalog?n=2");
        r.headers_mut()
            .insert("api-version", "2021-07-01".parse().unwrap());
        prepare_request("http://r.io", &mut r, "get_repositories").unwrap();
        assert_eq!(
            r.url().as_str(),
            "http://r.io/acr/v1/_catalog?n=2&api-version=2021-07-01"
        );
        assert!(r.headers().get("api-version").is_none());

        let mut r = request("http://r.io/v2/a/manifests/latest");
        prepare_request("http://r.io", &mut r, "get_manifest").unwrap();
        assert_eq!(r.url().query(), None);
    }

    #[test]
    fn error_bodies_are_normalized() {
        let acr = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"m"}]}"#;
        assert_eq!(error_body(acr), acr.to_vec());
        let text: serde_json::Value =
            serde_json::from_slice(&error_body(b"404 page not found\n")).unwrap();
        assert_eq!(text["errors"][0]["message"], "404 page not found");
        let empty: serde_json::Value = serde_json::from_slice(&error_body(b"")).unwrap();
        assert_eq!(empty, serde_json::json!({"errors": []}));
        let other: serde_json::Value = serde_json::from_slice(&error_body(br#"{"x":1}"#)).unwrap();
        assert_eq!(other["errors"][0]["message"], r#"{"x":1}"#);
        for odd in [&br#"{"errors":[{"code":5}]}"#[..], br#"{"errors":[7]}"#] {
            let fixed = error_body(odd);
            assert!(
                serde_json::from_slice::<crate::types::AcrErrors>(&fixed).is_ok(),
                "{fixed:?}"
            );
        }
    }
}
