//! The registry's own policies in the `azure_core` pipeline, run on every try: ACR
//! authentication (challenge and token exchange), the cap on `Retry-After`, and the timeout of
//! one attempt.

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::headers::{
    HeaderName, Headers, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{AsyncRawResponse, Context, Request, StatusCode};
use reqwest::header::HeaderValue;
use url::Url;

use crate::auth::{scope::predict_scope, Authenticator, Challenge};

/// Attaches the cached token for the request's predicted scope and answers the registry's
/// `401` challenge once: the token it asks for is fetched and the request sent again.
#[derive(Debug)]
pub(crate) struct AcrAuthenticationPolicy {
    endpoint: Url,
    auth: Arc<Authenticator>,
}

impl AcrAuthenticationPolicy {
    pub(crate) fn new(endpoint: Url, auth: Arc<Authenticator>) -> Self {
        Self { endpoint, auth }
    }
}

#[async_trait::async_trait]
impl Policy for AcrAuthenticationPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let same_origin = request.url().origin() == self.endpoint.origin();
        if !same_origin {
            return next[0].send(ctx, request, &next[1..]).await;
        }
        let method = reqwest::Method::from_bytes(request.method().as_ref().as_bytes()).ok();
        let predicted = method.and_then(|m| predict_scope(&m, request.url()));
        let authorization = match &predicted {
            Some(scope) => self.auth.cached_authorization(scope).await,
            None => None,
        };
        if let Some(value) = &authorization {
            set_authorization(request, value);
        }
        let response = next[0].send(ctx, request, &next[1..]).await?;
        if response.status() != StatusCode::Unauthorized {
            return Ok(response);
        }
        let www_authenticate = response.headers().get_optional_str(&WWW_AUTHENTICATE);
        let Some(challenge) = www_authenticate.and_then(Challenge::parse) else {
            // A registry that asks for HTTP Basic itself (htpasswd): the username and password
            // go on the request, to this same origin only.
            if www_authenticate.is_some_and(is_basic_challenge) {
                if let Some(value) = self.auth.answer_basic_challenge(authorization.as_ref()) {
                    set_authorization(request, &value);
                    return next[0].send(ctx, request, &next[1..]).await;
                }
            }
            return Ok(response);
        };
        match self
            .auth
            .authorize(&challenge, authorization.as_ref())
            .await
        {
            Ok(value) => {
                if let Some(scope) = &predicted {
                    if crate::auth::scope::canonical(scope)
                        != crate::auth::scope::canonical(&challenge.scope())
                    {
                        self.auth.alias(scope, &value);
                    }
                }
                set_authorization(request, &value);
                next[0].send(ctx, request, &next[1..]).await
            }
            Err(error) => {
                tracing::debug!(error = %error, "token request failed");
                Ok(auth_failure_response(response.headers(), &error))
            }
        }
    }
}

/// Whether a `WWW-Authenticate` value asks for HTTP Basic.
fn is_basic_challenge(value: &str) -> bool {
    value
        .trim_start()
        .get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic "))
}

fn set_authorization(request: &mut Request, value: &HeaderValue) {
    if let Ok(text) = value.to_str() {
        request.insert_header(AUTHORIZATION, text.to_string());
    }
}

/// Caps the waits a registry asks for (`Retry-After`, `retry-after-ms`, `x-ms-retry-after-ms`)
/// at `max`, so a throttled call ends in bounded time.
#[derive(Debug)]
pub(crate) struct RetryAfterCapPolicy {
    max: Duration,
}

impl RetryAfterCapPolicy {
    pub(crate) fn new(max: Duration) -> Self {
        Self { max }
    }
}

const RETRY_AFTER_MS: HeaderName = HeaderName::from_static("retry-after-ms");
const X_MS_RETRY_AFTER_MS: HeaderName = HeaderName::from_static("x-ms-retry-after-ms");

#[async_trait::async_trait]
impl Policy for RetryAfterCapPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let response = next[0].send(ctx, request, &next[1..]).await?;
        let asks = [&RETRY_AFTER, &RETRY_AFTER_MS, &X_MS_RETRY_AFTER_MS]
            .into_iter()
            .any(|name| response.headers().get_optional_str(name).is_some());
        if !asks {
            return Ok(response);
        }
        let (status, headers, body) = response.deconstruct();
        let mut capped = Headers::new();
        for (name, value) in headers.iter() {
            let value = value.as_str();
            let kept = if *name == RETRY_AFTER {
                cap_retry_after(value, self.max)
            } else if *name == RETRY_AFTER_MS || *name == X_MS_RETRY_AFTER_MS {
                cap_millis(value, self.max)
            } else {
                value.to_string()
            };
            capped.insert(name.clone(), kept);
        }
        Ok(AsyncRawResponse::new(status, capped, Box::pin(body)))
    }
}

/// A `Retry-After` (seconds or an HTTP date) no longer than `max`, in whole seconds.
fn cap_retry_after(value: &str, max: Duration) -> String {
    let asked = crate::retry::parse_retry_after(value);
    match asked {
        Some(asked) if asked <= max => value.to_string(),
        _ => max.as_secs().to_string(),
    }
}

fn cap_millis(value: &str, max: Duration) -> String {
    match value.trim().parse::<u64>() {
        Ok(ms) if u128::from(ms) <= max.as_millis() => value.to_string(),
        _ => max.as_millis().to_string(),
    }
}

/// Bounds one attempt up to its response headers; a timed-out attempt reads as a `408` (which
/// the retry policy sends again). Streamed bodies are bounded by their reader instead.
#[derive(Debug)]
pub(crate) struct AttemptTimeoutPolicy {
    limit: Duration,
}

impl AttemptTimeoutPolicy {
    pub(crate) fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

#[async_trait::async_trait]
impl Policy for AttemptTimeoutPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        match tokio::time::timeout(self.limit, next[0].send(ctx, request, &next[1..])).await {
            Ok(result) => result,
            Err(_) => Ok(synthetic(
                StatusCode::RequestTimeout,
                "TIMEOUT",
                &format!(
                    "no answer from the registry within {} ms",
                    self.limit.as_millis()
                ),
            )),
        }
    }
}

/// A response made by the client itself (timeouts, failed token requests), with an ACR error
/// body so it reads like any registry error.
pub(crate) fn synthetic(status: StatusCode, code: &str, message: &str) -> AsyncRawResponse {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    let mut headers = Headers::new();
    headers.insert("content-type", "application/json");
    AsyncRawResponse::from_bytes(status, headers, body.to_string())
}

/// [`synthetic`] as a `reqwest` response.
pub(crate) fn synthetic_response(
    status: StatusCode,
    code: &str,
    message: &str,
) -> reqwest::Response {
    crate::transport::to_reqwest_response(synthetic(status, code, message))
}

/// The 401 answer to return when no token could be had: the registry's challenge, with the
/// reason in the body.
fn auth_failure_response(original: &Headers, error: &azure_core::Error) -> AsyncRawResponse {
    let message = format!("authentication failed: {error}");
    let (status, mut headers, body) =
        synthetic(StatusCode::Unauthorized, "UNAUTHORIZED", &message).deconstruct();
    if let Some(challenge) = original.get_optional_str(&WWW_AUTHENTICATE) {
        headers.insert(WWW_AUTHENTICATE, challenge.to_string());
    }
    AsyncRawResponse::new(status, headers, Box::pin(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_challenges() {
        assert!(is_basic_challenge(r#"Basic realm="Registry Realm""#));
        assert!(is_basic_challenge(r#"basic realm="x""#));
        assert!(!is_basic_challenge(r#"Bearer realm="x""#));
        assert!(!is_basic_challenge("Basi"));
    }

    #[test]
    fn long_waits_are_capped() {
        let max = Duration::from_secs(5);
        assert_eq!(cap_retry_after("3", max), "3");
        assert_eq!(cap_retry_after("3600", max), "5");
        assert_eq!(cap_retry_after("soon", max), "5");
        assert_eq!(cap_millis("200", max), "200");
        assert_eq!(cap_millis("99999999", max), "5000");
    }
}
