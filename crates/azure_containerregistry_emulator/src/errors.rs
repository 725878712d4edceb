//! Registry error bodies (`{"errors":[…]}`), the plain-text 404 and helpers for JSON responses.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Content type of every JSON body the registry writes.
pub(crate) const JSON_CT: &str = "application/json; charset=utf-8";

/// Message used by ACR for disallowed operations on locked items.
const DISALLOWED_MESSAGE: &str =
    "The operation is disallowed on this registry, repository or image.";

/// An error answer of the registry listener.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// A JSON `{"errors":[…]}` answer.
    Registry {
        /// HTTP status.
        status: StatusCode,
        /// Error code, e.g. `NAME_UNKNOWN`.
        code: &'static str,
        /// Human readable message.
        message: String,
        /// Optional `detail` (object, string or array).
        detail: Option<Value>,
    },
    /// `404 page not found\n` as text/plain: the route did not match.
    PageNotFound,
    /// A bare status with an empty body (`Content-Length: 0`).
    Empty(StatusCode),
    /// A ready-made response (e.g. a 401 challenge).
    Raw(Box<Response>),
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Registry {
            status,
            code,
            message: message.into(),
            detail: None,
        }
    }

    fn with_detail(mut self, value: Value) -> Self {
        if let ApiError::Registry { detail, .. } = &mut self {
            *detail = Some(value);
        }
        self
    }

    /// `GET` of an unknown repository.
    pub(crate) fn name_unknown(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository \"{name}\" is not found"),
        )
    }

    /// `DELETE` of an unknown repository.
    pub(crate) fn name_unknown_delete(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        )
        .with_detail(json!({ "name": name }))
    }

    /// Unknown manifest tag on `/v2`.
    pub(crate) fn manifest_unknown_tag(tag: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest tagged by \"{tag}\" is not found"),
        )
        .with_detail(json!({ "Tag": tag }))
    }

    /// Unknown manifest digest.
    pub(crate) fn manifest_unknown_digest(digest: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest {digest} is not found"),
        )
    }

    /// Unknown tag on `/acr/v1`.
    pub(crate) fn tag_unknown() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "TAG_UNKNOWN",
            "the specified tag does not exist",
        )
    }

    /// Unknown blob.
    pub(crate) fn blob_unknown() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
        )
    }

    /// Unknown upload session.
    pub(crate) fn blob_upload_unknown() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
        )
    }

    /// Digest does not match the content, or is malformed.
    pub(crate) fn digest_invalid(detail: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        )
        .with_detail(Value::String(detail.to_owned()))
    }

    /// Manifest delete by tag.
    pub(crate) fn delete_by_tag() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "A manifest can only be deleted by digest.",
        )
    }

    /// Method not supported on this route.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "The operation is unsupported.",
        )
    }

    /// A manifest references a blob (or child manifest) the repository does not hold.
    pub(crate) fn manifest_blob_unknown(digest: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_BLOB_UNKNOWN",
            "blob unknown to registry",
        )
        .with_detail(Value::String(digest.to_owned()))
    }

    /// Too many requests of a kind (e.g. open upload sessions).
    pub(crate) fn too_many(message: &str) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", message)
    }

    /// Invalid manifest body.
    pub(crate) fn manifest_invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "manifest invalid",
        )
        .with_detail(Value::String(message.into()))
    }

    /// Invalid repository name (e.g. in a `from=` query).
    pub(crate) fn name_invalid(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name",
        )
        .with_detail(json!({ "name": name }))
    }

    /// Body too large.
    pub(crate) fn size_invalid(message: &str) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", message)
    }

    /// Chunk does not start at the current offset / unsatisfiable range.
    pub(crate) fn range_invalid() -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "RANGE_INVALID",
            "invalid content range",
        )
    }

    /// Operation blocked by a changeable attribute.
    pub(crate) fn disallowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "REGISTRY_DISALLOWED_OPERATION",
            DISALLOWED_MESSAGE,
        )
        .with_detail(json!({}))
    }

    /// A username/password login refused at the token endpoint (wrong password, unknown or
    /// disabled user, malformed Basic credential).
    pub(crate) fn login_failed() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required, visit https://aka.ms/acr/authorization for more information.",
        )
    }

    /// A malformed request body or query.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", message)
    }

    /// A server-side failure (I/O).
    pub(crate) fn internal(err: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            format!("internal error: {err}"),
        )
    }
}

impl From<std::io::Error> for ApiError {
    fn from(err: std::io::Error) -> Self {
        ApiError::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Registry {
                status,
                code,
                message,
                detail,
            } => {
                let mut item = json!({ "code": code, "message": message });
                if let (Some(detail), Some(obj)) = (detail, item.as_object_mut()) {
                    obj.insert("detail".into(), detail);
                }
                json_response(status, &json!({ "errors": [item] }))
            }
            ApiError::PageNotFound => {
                let mut resp = Response::new(Body::from("404 page not found\n"));
                *resp.status_mut() = StatusCode::NOT_FOUND;
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                resp
            }
            ApiError::Empty(status) => empty_response(status),
            ApiError::Raw(resp) => *resp,
        }
    }
}

/// A JSON response with the registry's content type and an exact Content-Length.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = value.to_string();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CT));
    resp
}

/// A response with an empty body and `Content-Length: 0`.
pub(crate) fn empty_response(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

/// Convenience alias for handler results.
pub(crate) type ApiResult<T = Response> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(resp: Response) -> (StatusCode, String) {
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The body of an error's answer, once its status is checked.
    async fn answer(err: ApiError, status: u16) -> String {
        let (actual, body) = body_of(err.into_response()).await;
        assert_eq!(actual.as_u16(), status, "{body}");
        body
    }

    #[tokio::test]
    async fn manifest_unknown_has_tag_detail() {
        let body = answer(ApiError::manifest_unknown_tag("wrong-tag"), 404).await;
        assert_eq!(
            body,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest tagged by \"wrong-tag\" is not found","detail":{"Tag":"wrong-tag"}}]}"#
        );
    }

    #[tokio::test]
    async fn digest_invalid_detail_is_a_string() {
        let body = answer(ApiError::digest_invalid("digest parsing failed"), 400).await;
        assert!(
            body.contains(r#""detail":"digest parsing failed""#),
            "{body}"
        );
    }

    #[tokio::test]
    async fn page_not_found_is_plain_text() {
        let resp = ApiError::PageNotFound.into_response();
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        let (status, body) = body_of(resp).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, "404 page not found\n");
    }
}
