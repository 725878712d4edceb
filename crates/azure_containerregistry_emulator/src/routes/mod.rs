//! Request routing for the registry listener: path parsing (names may contain `/`), auth, dispatch.

pub(crate) mod acr_v1;
pub(crate) mod blob_body;
pub(crate) mod blobs;
pub(crate) mod lists;
pub(crate) mod manifests;
pub(crate) mod oauth;
pub(crate) mod referrers;
pub(crate) mod storage;
pub(crate) mod uploads;

use crate::auth::{authorize, Scope};
use crate::errors::{ApiError, ApiResult};
use crate::names::{parse_digest, parse_reference, valid_repo_name, valid_tag, Reference};
use crate::paging::Query;
use crate::state::AppState;
use crate::storage::meta::{ManifestMeta, Registry, Repo};
use crate::{Listener, RequestRecord};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use std::sync::Arc;

/// A matched registry route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    TagsList(String),
    /// `/v2/<name>/manifests/<reference>`
    Manifest(String, Reference),
    /// `/v2/<name>/blobs/<digest>`
    Blob(String, String),
    /// `/v2/<name>/blobs/uploads/`
    UploadStart(String),
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload(String, String),
    /// `/v2/<name>/referrers/<digest>`
    Referrers(String, String),
    /// `/acr/v1/_catalog`
    AcrCatalog,
    /// `/acr/v1/<name>`
    AcrRepo(String),
    /// `/acr/v1/<name>/_tags`
    AcrTags(String),
    /// `/acr/v1/<name>/_tags/<tag>`
    AcrTag(String, String),
    /// `/acr/v1/<name>/_manifests`
    AcrManifests(String),
    /// `/acr/v1/<name>/_manifests/<digest>`
    AcrManifest(String, String),
    /// `/oauth2/exchange`
    Exchange,
    /// `/oauth2/token`
    Token,
}

fn repo_name(segments: &[&str]) -> Option<String> {
    let name = segments.join("/");
    valid_repo_name(&name).then_some(name)
}

/// Parses a raw (percent-encoded) request path.
pub(crate) fn parse_route(raw_path: &str) -> Option<Route> {
    let path = percent_decode_str(raw_path).decode_utf8().ok()?;
    let path = path.as_ref();
    match path {
        "/v2" | "/v2/" => return Some(Route::Base),
        "/v2/_catalog" => return Some(Route::Catalog),
        "/acr/v1/_catalog" => return Some(Route::AcrCatalog),
        "/oauth2/exchange" => return Some(Route::Exchange),
        "/oauth2/token" => return Some(Route::Token),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/v2/") {
        let segs: Vec<&str> = rest.split('/').collect();
        return match segs.as_slice() {
            [name @ .., "tags", "list"] => Some(Route::TagsList(repo_name(name)?)),
            [name @ .., "manifests", r] => {
                Some(Route::Manifest(repo_name(name)?, parse_reference(r)?))
            }
            [name @ .., "blobs", "uploads", ""] | [name @ .., "blobs", "uploads"] => {
                Some(Route::UploadStart(repo_name(name)?))
            }
            [name @ .., "blobs", "uploads", id] => {
                let valid =
                    !id.is_empty() && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
                valid.then_some(())?;
                Some(Route::Upload(repo_name(name)?, (*id).to_owned()))
            }
            [name @ .., "blobs", d] => Some(Route::Blob(repo_name(name)?, parse_digest(d)?)),
            [name @ .., "referrers", d] => {
                Some(Route::Referrers(repo_name(name)?, parse_digest(d)?))
            }
            _ => None,
        };
    }
    if let Some(rest) = path.strip_prefix("/acr/v1/") {
        let segs: Vec<&str> = rest.split('/').collect();
        return match segs.as_slice() {
            [name @ .., "_tags"] => Some(Route::AcrTags(repo_name(name)?)),
            [name @ .., "_tags", t] if valid_tag(t) => {
                Some(Route::AcrTag(repo_name(name)?, (*t).to_owned()))
            }
            [name @ .., "_manifests"] => Some(Route::AcrManifests(repo_name(name)?)),
            [name @ .., "_manifests", d] => {
                Some(Route::AcrManifest(repo_name(name)?, parse_digest(d)?))
            }
            name => Some(Route::AcrRepo(repo_name(name)?)),
        };
    }
    None
}

/// The scopes a request needs; `None` when the route/method needs no token (or is unsupported).
fn required_scopes(route: &Route, method: &Method, query: &Query) -> Option<Vec<Scope>> {
    use Route::*;
    let m = method.as_str();
    let repo = |name: &str, actions: &[&str]| Some(vec![Scope::repo(name, actions)]);
    match (route, m) {
        (Base, "GET" | "HEAD") => Some(vec![]),
        (Catalog | AcrCatalog, "GET") => Some(vec![Scope::catalog()]),
        (TagsList(n) | Referrers(n, _), "GET") => repo(n, &["pull"]),
        (Manifest(n, _) | Blob(n, _), "GET" | "HEAD") => repo(n, &["pull"]),
        (Manifest(n, _) | Blob(n, _) | Upload(n, _), "DELETE") => repo(n, &["delete"]),
        (Manifest(n, _), "PUT") => repo(n, &["pull", "push"]),
        (Upload(n, _), "GET" | "PATCH" | "PUT") => repo(n, &["pull", "push"]),
        (UploadStart(n), "POST") => {
            let mut scopes = vec![Scope::repo(n, &["pull", "push"])];
            if let (Some(_), Some(from)) = (query.non_empty("mount"), query.non_empty("from")) {
                // Only a valid name goes into a challenge; `start` refuses an invalid one.
                if from != n && valid_repo_name(from) {
                    scopes.push(Scope::repo(from, &["pull"]));
                }
            }
            Some(scopes)
        }
        (AcrRepo(n) | AcrTags(n) | AcrTag(n, _) | AcrManifests(n) | AcrManifest(n, _), "GET") => {
            repo(n, &["metadata_read"])
        }
        (AcrRepo(n) | AcrTag(n, _) | AcrManifest(n, _), "PATCH") => repo(n, &["metadata_write"]),
        (AcrRepo(n) | AcrTag(n, _), "DELETE") => repo(n, &["delete"]),
        _ => None,
    }
}

/// The first value of a header as a string.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The repository `name`, or NAME_UNKNOWN.
pub(crate) fn known_repo<'a>(reg: &'a Registry, name: &str) -> ApiResult<&'a Repo> {
    reg.repos
        .get(name)
        .ok_or_else(|| ApiError::name_unknown(name))
}

/// The repository `name` for an update, or NAME_UNKNOWN.
pub(crate) fn known_repo_mut<'a>(reg: &'a mut Registry, name: &str) -> ApiResult<&'a mut Repo> {
    reg.repos
        .get_mut(name)
        .ok_or_else(|| ApiError::name_unknown(name))
}

/// The manifest `digest` of a repository, or MANIFEST_UNKNOWN.
pub(crate) fn known_manifest<'a>(repo: &'a Repo, digest: &str) -> ApiResult<&'a ManifestMeta> {
    repo.manifests
        .get(digest)
        .ok_or_else(|| ApiError::manifest_unknown_digest(digest))
}

/// Builds a response from a status, headers and body.
pub(crate) fn build(
    status: axum::http::StatusCode,
    headers: &[(&str, String)],
    body: Body,
) -> ApiResult<Response> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder.body(body).map_err(ApiError::internal)
}

async fn dispatch(state: &Arc<AppState>, req: Request) -> ApiResult {
    let route = parse_route(req.uri().path()).ok_or(ApiError::PageNotFound)?;
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    if let Some(scopes) = required_scopes(&route, &method, &query) {
        authorize(state, req.headers(), &scopes)?;
    }
    let head = method == Method::HEAD;
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    use Route::*;
    match (route, method.as_str()) {
        (Base, "GET" | "HEAD") => Ok(crate::errors::json_response(
            axum::http::StatusCode::OK,
            &serde_json::json!({}),
        )),
        (Catalog, "GET") => lists::catalog(state, &query).await,
        (TagsList(n), "GET") => lists::tags(state, &n, &query).await,
        (Manifest(n, r), "GET" | "HEAD") => manifests::get(state, &n, &r, headers, head).await,
        (Manifest(n, r), "PUT") => manifests::put(state, &n, &r, headers, body).await,
        (Manifest(n, r), "DELETE") => manifests::delete(state, &n, &r).await,
        (Blob(n, d), "GET" | "HEAD") => blobs::get(state, &n, &d, headers, head).await,
        (Blob(n, d), "DELETE") => blobs::delete(state, &n, &d).await,
        (UploadStart(n), "POST") => uploads::start(state, &n, &query, body).await,
        (Upload(n, id), "PATCH") => uploads::patch(state, &n, &id, headers, body).await,
        (Upload(n, id), "PUT") => uploads::put(state, &n, &id, &query, body).await,
        (Upload(n, id), "GET") => uploads::status(state, &n, &id).await,
        (Upload(n, id), "DELETE") => uploads::cancel(state, &n, &id).await,
        (Referrers(n, d), "GET") => referrers::list(state, &n, &d, &query).await,
        (AcrCatalog, "GET") => acr_v1::catalog(state, &query).await,
        (AcrRepo(n), "GET") => acr_v1::get_repo(state, &n).await,
        (AcrRepo(n), "PATCH") => acr_v1::patch_repo(state, &n, body).await,
        (AcrRepo(n), "DELETE") => acr_v1::delete_repo(state, &n).await,
        (AcrTags(n), "GET") => acr_v1::list_tags(state, &n, &query).await,
        (AcrTag(n, t), "GET") => acr_v1::get_tag(state, &n, &t).await,
        (AcrTag(n, t), "PATCH") => acr_v1::patch_tag(state, &n, &t, body).await,
        (AcrTag(n, t), "DELETE") => acr_v1::delete_tag(state, &n, &t).await,
        (AcrManifests(n), "GET") => acr_v1::list_manifests(state, &n, &query).await,
        (AcrManifest(n, d), "GET") => acr_v1::get_manifest(state, &n, &d).await,
        (AcrManifest(n, d), "PATCH") => acr_v1::patch_manifest(state, &n, &d, body).await,
        (Exchange, "POST") => oauth::exchange(state, body).await,
        (Token, "POST") => oauth::token_post(state, body).await,
        (Token, "GET") => oauth::token_get(state, &query, headers).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn set_default(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if !headers.contains_key(name) {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
}

/// What the request log keeps of a request, taken before it is handled.
pub(crate) struct Logged {
    method: Method,
    path_and_query: String,
    has_authorization: bool,
}

impl Logged {
    /// The method, path and query of `req`, and whether it carries `Authorization`.
    pub(crate) fn of(req: &Request) -> Self {
        Logged {
            method: req.method().clone(),
            path_and_query: req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            has_authorization: req.headers().contains_key(header::AUTHORIZATION),
        }
    }

    /// Appends the request, answered with `status` on `listener`, to the log.
    pub(crate) fn record(self, state: &AppState, listener: Listener, status: u16) {
        let capacity = state.limits.request_log_capacity;
        if capacity == 0 {
            return;
        }
        let mut path_and_query = self.path_and_query;
        if path_and_query.len() > LOGGED_PATH_LIMIT {
            let mut cut = LOGGED_PATH_LIMIT;
            while !path_and_query.is_char_boundary(cut) {
                cut -= 1;
            }
            path_and_query.truncate(cut);
        }
        let entry = RequestRecord {
            method: self.method.to_string(),
            path_and_query,
            status,
            has_authorization: self.has_authorization,
            listener,
        };
        let mut log = state.log.lock().unwrap_or_else(|e| e.into_inner());
        while log.len() >= capacity {
            log.pop_front();
        }
        log.push_back(entry);
    }
}

/// Longest path and query kept in a request log entry.
const LOGGED_PATH_LIMIT: usize = 4096;

/// Fallback handler of the registry listener: dispatch, common headers, request log.
pub(crate) async fn registry_handler(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let logged = Logged::of(&req);
    let http1 = req.version() < axum::http::Version::HTTP_2;
    let distribution_api = req.uri().path().starts_with("/v2/") || req.uri().path() == "/v2";
    // ACR repeats the caller's id on /v2 answers (empty when it sent none).
    let client_request_id = req
        .headers()
        .get("x-ms-client-request-id")
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(""));
    let (parts, body) = req.into_parts();
    let (body, rest) = crate::drain::share(body);
    let mut resp = dispatch(&state, Request::from_parts(parts, body))
        .await
        .unwrap_or_else(IntoResponse::into_response);
    let limits = &state.limits;
    if !rest.drain(limits.drain_limit, limits.drain_timeout).await && http1 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let h = resp.headers_mut();
    set_default(h, "docker-distribution-api-version", "registry/2.0");
    set_default(
        h,
        "x-ms-correlation-request-id",
        &uuid::Uuid::new_v4().to_string(),
    );
    set_default(h, "x-content-type-options", "nosniff");
    if distribution_api && resp.status() != axum::http::StatusCode::UNAUTHORIZED {
        let h = resp.headers_mut();
        set_default(h, "x-ms-request-id", &uuid::Uuid::new_v4().to_string());
        if !h.contains_key("x-ms-client-request-id") {
            h.insert("x-ms-client-request-id", client_request_id);
        }
    }
    let h = resp.headers_mut();
    set_default(
        h,
        "access-control-expose-headers",
        "Docker-Content-Digest, WWW-Authenticate, Link, X-Ms-Correlation-Request-Id",
    );
    logged.record(&state, Listener::Registry, resp.status().as_u16());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> String {
        format!("sha256:{}", "ab".repeat(32))
    }

    #[test]
    fn routes_with_slashes_and_encoding() {
        assert_eq!(parse_route("/v2/"), Some(Route::Base));
        assert_eq!(
            parse_route("/v2/library%2Fhello/manifests/latest"),
            Some(Route::Manifest(
                "library/hello".into(),
                Reference::Tag("latest".into())
            ))
        );
        assert_eq!(
            parse_route(&format!("/v2/a/b/blobs/{}", d().replace(':', "%3A"))),
            Some(Route::Blob("a/b".into(), d()))
        );
        assert_eq!(
            parse_route("/v2/a/b/blobs/uploads/"),
            Some(Route::UploadStart("a/b".into()))
        );
        assert_eq!(
            parse_route("/v2/a/blobs/uploads/1234-ab"),
            Some(Route::Upload("a".into(), "1234-ab".into()))
        );
        assert_eq!(
            parse_route("/v2/a/tags/list"),
            Some(Route::TagsList("a".into()))
        );
        assert_eq!(
            parse_route("/acr/v1/library%2Fhello/_tags"),
            Some(Route::AcrTags("library/hello".into()))
        );
        assert_eq!(
            parse_route("/acr/v1/library/hello"),
            Some(Route::AcrRepo("library/hello".into()))
        );
        assert_eq!(
            parse_route(&format!("/acr/v1/a/_manifests/{}", d())),
            Some(Route::AcrManifest("a".into(), d()))
        );
    }

    #[test]
    fn malformed_routes_do_not_match() {
        assert_eq!(parse_route("/v2/alpine/blobs/wrong%20digest"), None);
        assert_eq!(parse_route("/acr/v1/alpine/_manifests/wrong-digest"), None);
        assert_eq!(parse_route("/v2/alpine/manifests/sha256:0000"), None);
        assert_eq!(parse_route("/v2/Alpine/tags/list"), None);
        assert_eq!(parse_route("/nothing"), None);
    }
}
