//! `/v2/_catalog` and `/v2/<name>/tags/list` (lexical, `n`/`last`, `Link`).

use super::known_repo;
use crate::errors::{json_response, ApiResult};
use crate::paging::{link_header, take_page, Query};
use crate::state::AppState;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

/// Adds a `Link` header.
pub(crate) fn with_link(mut resp: Response, link: Option<String>) -> Response {
    if let Some(v) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert("link", v);
    }
    resp
}

/// Names after `last`, cut to a page; returns the page and the `Link` (with `orderby`, when
/// given, as `/acr/v1/_catalog` writes it).
pub(crate) fn page(
    names: Vec<String>,
    query: &Query,
    path: &str,
    orderby: Option<&str>,
) -> (Vec<String>, Option<String>) {
    let names: Vec<String> = match query.non_empty("last") {
        Some(last) => names.into_iter().filter(|n| n.as_str() > last).collect(),
        None => names,
    };
    let n = query.page_size();
    let (page, more) = take_page(names, n);
    let link = match (more, page.last(), n) {
        (true, Some(last), Some(n)) => Some(link_header(path, last, n, orderby)),
        _ => None,
    };
    (page, link)
}

/// The names of the repositories shown in listings, sorted.
pub(crate) async fn listed_repos(state: &AppState) -> Vec<String> {
    let reg = state.store.meta.read().await;
    reg.repos
        .iter()
        .filter(|(_, r)| r.attrs.list_enabled)
        .map(|(n, _)| n.clone())
        .collect()
}

/// `GET /v2/_catalog`.
pub(crate) async fn catalog(state: &AppState, query: &Query) -> ApiResult {
    let names = listed_repos(state).await;
    let (page, link) = page(names, query, "/v2/_catalog", None);
    Ok(with_link(
        json_response(StatusCode::OK, &json!({ "repositories": page })),
        link,
    ))
}

/// `GET /v2/<name>/tags/list`.
pub(crate) async fn tags(state: &AppState, name: &str, query: &Query) -> ApiResult {
    let tags: Vec<String> = {
        let reg = state.store.meta.read().await;
        known_repo(&reg, name)?
            .tags
            .iter()
            .filter(|(_, t)| t.attrs.list_enabled)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let (page, link) = page(tags, query, &format!("/v2/{name}/tags/list"), None);
    Ok(with_link(
        json_response(StatusCode::OK, &json!({ "name": name, "tags": page })),
        link,
    ))
}
