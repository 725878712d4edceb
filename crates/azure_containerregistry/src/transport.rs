//! The default HTTP transport of the `azure_core` pipeline (the project's `reqwest` client) and
//! the conversions between `reqwest` and `azure_core` requests and responses.

use azure_core::error::ErrorKind;
use azure_core::http::headers::Headers;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{AsyncRawResponse, Body, Context, Request, StatusCode};
use futures::TryStreamExt;

/// Sends each request with the project's `reqwest` client; the last policy of the pipeline
/// unless `ClientOptions::transport` names another.
#[derive(Debug)]
pub(crate) struct ReqwestTransport {
    http: reqwest::Client,
    /// Whether a request that may have reached the registry can be sent again whatever its
    /// method (token requests change nothing on the registry).
    any_method_is_idempotent: bool,
}

impl ReqwestTransport {
    pub(crate) fn new(http: reqwest::Client, any_method_is_idempotent: bool) -> Self {
        Self {
            http,
            any_method_is_idempotent,
        }
    }
}

#[async_trait::async_trait]
impl Policy for ReqwestTransport {
    async fn send(
        &self,
        _ctx: &Context,
        request: &mut Request,
        _next: &[std::sync::Arc<dyn Policy>],
    ) -> PolicyResult {
        let idempotent = self.any_method_is_idempotent
            || matches!(
                request.method().as_ref(),
                "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS"
            );
        let outgoing = to_reqwest(&self.http, request)?;
        match self.http.execute(outgoing).await {
            Ok(response) => Ok(from_reqwest(response)),
            Err(error) => {
                // The retry policy sends again only Io and Connection errors: a request that
                // may have changed the registry (a POST that reached it) is not sent twice.
                let kind = if error.is_connect() {
                    ErrorKind::Connection
                } else if idempotent && (error.is_timeout() || error.is_request()) {
                    ErrorKind::Io
                } else {
                    ErrorKind::Other
                };
                Err(azure_core::Error::new(kind, error))
            }
        }
    }
}

/// An `azure_core` request as a `reqwest` request (a buffered body only).
pub(crate) fn to_reqwest(
    http: &reqwest::Client,
    request: &Request,
) -> azure_core::Result<reqwest::Request> {
    let method = reqwest::Method::from_bytes(request.method().as_ref().as_bytes())
        .map_err(|e| azure_core::Error::new(ErrorKind::Other, e))?;
    let mut builder = http.request(method, request.url().clone());
    for (name, value) in request.headers().iter() {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let builder = match request.body() {
        Body::Bytes(bytes) if bytes.is_empty() => builder,
        Body::Bytes(bytes) => builder.body(bytes.clone()),
        Body::SeekableStream(_) => {
            return Err(azure_core::Error::with_message(
                ErrorKind::Other,
                "streamed request bodies are sent outside the pipeline",
            ))
        }
    };
    builder
        .build()
        .map_err(|e| azure_core::Error::new(ErrorKind::Other, e))
}

/// A `reqwest` request as an `azure_core` one. `None` when its body is a stream, which cannot
/// be sent twice and so goes around the pipeline.
pub(crate) fn from_reqwest_request(request: &reqwest::Request) -> Option<Request> {
    let method = request.method().as_str().parse().ok()?;
    let mut out = Request::new(request.url().clone(), method);
    for (name, value) in join_headers(request.headers()) {
        out.insert_header(name, value);
    }
    match request.body() {
        None => {}
        Some(body) => out.set_body(bytes::Bytes::copy_from_slice(body.as_bytes()?)),
    }
    Some(out)
}

/// Header values by name, repeated headers joined with `, ` (an `azure_core` header map holds
/// one value a name; the registry repeats `Link`).
fn join_headers(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for name in headers.keys() {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if !values.is_empty() {
            out.push((name.as_str().to_string(), values.join(", ")));
        }
    }
    out
}

/// A `reqwest` response as an `azure_core` streamed response.
pub(crate) fn from_reqwest(response: reqwest::Response) -> AsyncRawResponse {
    let status = StatusCode::from(response.status().as_u16());
    let mut headers = Headers::new();
    for (name, value) in join_headers(response.headers()) {
        headers.insert(name, value);
    }
    let body = response
        .bytes_stream()
        .map_err(crate::error::transport_error);
    AsyncRawResponse::new(status, headers, Box::pin(body))
}

/// An `azure_core` streamed response as a `reqwest` response (what the generated client reads).
pub(crate) fn to_reqwest_response(response: AsyncRawResponse) -> reqwest::Response {
    let (status, headers, body) = response.deconstruct();
    let mut builder = http::Response::builder().status(u16::from(status));
    for (name, value) in headers.iter() {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = reqwest::Body::wrap_stream(body);
    match builder.body(body) {
        Ok(response) => reqwest::Response::from(response),
        // Headers that are not valid (a caller's transport made them): an empty 502.
        Err(_) => {
            let mut response = http::Response::new(reqwest::Body::from(""));
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            reqwest::Response::from(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_are_joined() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.append("link", "</a>; rel=\"next\"".parse().unwrap());
        headers.append("link", "</b>; rel=\"prev\"".parse().unwrap());
        headers.insert("x-one", "1".parse().unwrap());
        let joined = join_headers(&headers);
        assert!(joined.contains(&(
            "link".to_string(),
            "</a>; rel=\"next\", </b>; rel=\"prev\"".to_string()
        )));
        assert!(joined.contains(&("x-one".to_string(), "1".to_string())));
    }

    #[test]
    fn a_streamed_body_stays_outside_the_pipeline() {
        let http = reqwest::Client::new();
        let buffered = http
            .put("http://127.0.0.1:1/x")
            .body("abc")
            .build()
            .unwrap();
        let converted = from_reqwest_request(&buffered).expect("a buffered body converts");
        assert!(matches!(converted.body(), Body::Bytes(b) if &b[..] == b"abc"));
        let back = to_reqwest(&http, &converted).unwrap();
        assert_eq!(back.body().and_then(|b| b.as_bytes()), Some(&b"abc"[..]));
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from("x"))]);
        let streamed = http
            .put("http://127.0.0.1:1/x")
            .body(reqwest::Body::wrap_stream(stream))
            .build()
            .unwrap();
        assert!(from_reqwest_request(&streamed).is_none());
    }
}
