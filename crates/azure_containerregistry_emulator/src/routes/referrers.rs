//! OCI 1.1 `GET /v2/<name>/referrers/<digest>[?artifactType=…]`.

use super::manifests::OCI_INDEX;
use crate::errors::ApiResult;
use crate::paging::Query;
use crate::state::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

/// Lists the manifests of `name` whose `subject` is `digest`.
pub(crate) async fn list(state: &AppState, name: &str, digest: &str, query: &Query) -> ApiResult {
    let filter = query.non_empty("artifactType");
    let manifests: Vec<Value> = {
        let reg = state.store.meta.read().await;
        reg.repos
            .get(name)
            .map(|repo| {
                repo.manifests
                    .iter()
                    .filter(|(_, m)| m.subject.as_deref() == Some(digest))
                    .filter(|(_, m)| filter.is_none() || m.artifact_type.as_deref() == filter)
                    .map(|(d, m)| {
                        let mut desc =
                            json!({ "mediaType": m.media_type, "digest": d, "size": m.size });
                        if let Some(obj) = desc.as_object_mut() {
                            if let Some(t) = &m.artifact_type {
                                obj.insert("artifactType".into(), json!(t));
                            }
                            if let Some(a) = &m.annotations {
                                obj.insert("annotations".into(), a.clone());
                            }
                        }
                        desc
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let body = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut resp = axum::response::Response::new(axum::body::Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if filter.is_some() {
        resp.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}
