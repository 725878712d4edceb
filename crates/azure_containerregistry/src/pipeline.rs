//! The request pipeline under both clients: authentication, retries and tracing, plugged into
//! the generated REST client as its [`RequestPolicy`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_containerregistry_rest::hooks::{ClientState, RequestPolicy};
use azure_core::credentials::TokenCredential;
use futures::future::BoxFuture;
use progenitor_client::OperationInfo;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use url::Url;

use crate::auth::{scope::predict_scope, Authenticator, Challenge};
use crate::error::invalid_argument;
use crate::reference::{is_loopback, parse_endpoint};
use crate::{ContainerRegistryClientOptions, RetryOptions};

/// Generated operations whose successful answer streams for as long as it takes (bounded by
/// the read timeout, not the body timeout).
const STREAMED_OPERATIONS: &[&str] = &["get_blob"];

/// Everything a client needs to talk to one registry. Cheap to share (`Arc`).
#[derive(Debug)]
pub(crate) struct Pipeline {
    endpoint: Url,
    rest: azure_containerregistry_rest::Client,
    policy: Arc<Policy>,
    auth: Arc<Authenticator>,
    http: reqwest::Client,
    options: ContainerRegistryClientOptions,
}

impl Pipeline {
    /// Checks the endpoint and builds the pipeline. A credential is refused over plain http
    /// unless the host is loopback.
    pub(crate) fn new(
        endpoint: &str,
        credential: Option<Arc<dyn TokenCredential>>,
        options: Option<ContainerRegistryClientOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let endpoint = parse_endpoint(endpoint)?;
        if credential.is_some() && endpoint.scheme() == "http" && !is_loopback(&endpoint) {
            return Err(invalid_argument(
                "endpoint",
                format!("{endpoint}: credentials are only sent over https (plain http is allowed for loopback hosts only)"),
            ));
        }
        if options.page_size == Some(0) {
            return Err(invalid_argument("page_size", "must be at least 1"));
        }
        let http = match &options.http_client {
            Some(client) => client.clone(),
            None => {
                let mut builder = reqwest::Client::builder();
                if let Some(limit) = options.connect_timeout {
                    builder = builder.connect_timeout(limit);
                }
                if let Some(limit) = options.read_timeout {
                    builder = builder.read_timeout(limit);
                }
                builder.build().map_err(crate::error::transport_error)?
            }
        };
        // Token requests go through the same retries and timeouts, without authentication.
        let token_policy = Arc::new(Policy::new(&endpoint, None, &options));
        let auth = Arc::new(Authenticator::new(
            endpoint.clone(),
            credential,
            options.audience.clone(),
            http.clone(),
            token_policy,
        ));
        let policy = Arc::new(Policy::new(&endpoint, Some(auth.clone()), &options));
        let base = endpoint.as_str().trim_end_matches('/').to_string();
        let rest = azure_containerregistry_rest::Client::new_with_client(
            &base,
            http.clone(),
            ClientState::with_policy(policy.clone()),
        );
        Ok(Arc::new(Self {
            endpoint,
            rest,
            policy,
            auth,
            http,
            options,
        }))
    }

    /// The generated REST client, sending through this pipeline.
    pub(crate) fn rest(&self) -> &azure_containerregistry_rest::Client {
        &self.rest
    }

    /// The registry endpoint.
    pub(crate) fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The registry's host (and port), as in fully qualified references.
    pub(crate) fn login_server(&self) -> String {
        crate::auth::default_service(&self.endpoint)
    }

    /// The options the client was built with.
    pub(crate) fn options(&self) -> &ContainerRegistryClientOptions {
        &self.options
    }

    /// The token machinery (for the public token-exchange API).
    pub(crate) fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// The HTTP client.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends a request that no generated operation can express (a `Link` or `Location` URL
    /// used verbatim) through the same authentication, retry and tracing.
    pub(crate) async fn send(
        &self,
        request: reqwest::Request,
        operation: &'static str,
    ) -> azure_core::Result<reqwest::Response> {
        let info = OperationInfo {
            operation_id: operation,
        };
        self.policy
            .send_request(&self.http, request, &info)
            .await
            .map_err(crate::error::transport_error)
    }

    /// Resolves a registry-relative URL (a `Link` or `Location` value) against the endpoint.
    pub(crate) fn resolve(&self, reference: &str) -> azure_core::Result<Url> {
        let url = self.endpoint.join(reference).map_err(|e| {
            invalid_argument(
                "url",
                format!("{reference:?} from the registry is not a URL: {e}"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid_argument(
                "url",
                format!("{reference:?} from the registry is not http(s)"),
            ));
        }
        Ok(url)
    }
}

/// Authentication (unless `auth` is `None`, as for token requests), retries, timeouts and
/// tracing for each request.
#[derive(Debug)]
pub(crate) struct Policy {
    endpoint: Url,
    auth: Option<Arc<Authenticator>>,
    retry: RetryOptions,
    timeout: Option<Duration>,
    body_timeout: Option<Duration>,
}

impl RequestPolicy for Policy {
    fn send<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        info: &'a OperationInfo,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>> {
        Box::pin(self.send_request(client, request, info))
    }
}

impl Policy {
    pub(crate) fn new(
        endpoint: &Url,
        auth: Option<Arc<Authenticator>>,
        options: &ContainerRegistryClientOptions,
    ) -> Self {
        Self {
            endpoint: endpoint.clone(),
            auth,
            retry: options.retry.clone(),
            timeout: options.timeout,
            body_timeout: options.body_timeout,
        }
    }

    /// Sends `request` (for requests that no generated operation expresses, such as a token
    /// realm on another host).
    /// Boxed: token requests are sent from inside another request's authentication.
    pub(crate) fn send_raw<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        operation: &'static str,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>> {
        Box::pin(async move {
            let info = OperationInfo {
                operation_id: operation,
            };
            self.send_request(client, request, &info).await
        })
    }

    async fn send_request(
        &self,
        client: &reqwest::Client,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let response = self.send_attempts(client, request, info).await?;
        // Blob bodies stream for as long as they take (bounded by the read timeout); any other
        // answer is read whole and must be read within the body timeout.
        let streamed =
            STREAMED_OPERATIONS.contains(&info.operation_id) && response.status().is_success();
        Ok(match self.body_timeout {
            Some(limit) if !streamed => crate::http_body::with_body_deadline(response, limit),
            _ => response,
        })
    }

    async fn send_attempts(
        &self,
        client: &reqwest::Client,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let started = Instant::now();
        let span = tracing::debug_span!(
            "acr.request",
            operation = info.operation_id,
            method = %request.method(),
            path = request.url().path(),
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let _enter = span.enter();
        let same_origin = request.url().origin() == self.endpoint.origin();
        let auth = self.auth.as_ref();
        let predicted = if same_origin && auth.is_some() {
            predict_scope(request.method(), request.url())
        } else {
            None
        };
        let mut authorization = match (&predicted, auth) {
            (Some(scope), Some(auth)) => auth.cached_authorization(scope).await,
            _ => None,
        };
        if request.try_clone().is_none() {
            // A streaming body can be sent once only: no challenge round trip, no retry. Callers
            // make a small request of the same scope first so that the token is cached. Sending
            // the body takes as long as it takes: the caller bounds its stalls, not this timeout.
            let mut request = request;
            if let Some(value) = &authorization {
                request.headers_mut().insert(AUTHORIZATION, value.clone());
            }
            let result = client.execute(request).await;
            if let Ok(response) = &result {
                span.record("status", response.status().as_u16());
            }
            span.record("attempts", 1);
            return result;
        }
        let mut retries = 0u32;
        let mut authenticated_after_challenge = false;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let Some(mut attempt) = request.try_clone() else {
                return self.execute(client, request).await;
            };
            if let Some(value) = &authorization {
                attempt.headers_mut().insert(AUTHORIZATION, value.clone());
            }
            // Token requests change nothing on the registry: any of them may be sent again.
            let method_is_idempotent = self.auth.is_none()
                || matches!(
                    *attempt.method(),
                    reqwest::Method::GET
                        | reqwest::Method::HEAD
                        | reqwest::Method::PUT
                        | reqwest::Method::DELETE
                        | reqwest::Method::OPTIONS
                );
            let result = self.execute(client, attempt).await;
            let response = match result {
                Ok(response) => response,
                Err(error) => {
                    let retryable = error.is_connect()
                        || (method_is_idempotent && (error.is_timeout() || error.is_request()));
                    if retryable && retries < self.retry.max_retries {
                        let delay = self.retry.delay(retries, None);
                        tracing::debug!(error = %error, delay_ms = delay.as_millis() as u64, "retrying after a connection error");
                        retries += 1;
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    span.record("attempts", attempts);
                    return Err(error);
                }
            };
            let status = response.status();
            if let (true, Some(auth)) = (
                status == StatusCode::UNAUTHORIZED && same_origin && !authenticated_after_challenge,
                auth,
            ) {
                if let Some(challenge) = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Challenge::parse)
                {
                    authenticated_after_challenge = true;
                    match auth.authorize(&challenge, authorization.as_ref()).await {
                        Ok(value) => {
                            if let Some(scope) = &predicted {
                                if crate::auth::scope::canonical(scope)
                                    != crate::auth::scope::canonical(&challenge.scope())
                                {
                                    auth.alias(scope, &value);
                                }
                            }
                            authorization = Some(value);
                            continue;
                        }
                        Err(error) => {
                            tracing::debug!(error = %error, "token request failed");
                            span.record("status", status.as_u16());
                            return Ok(auth_failure_response(response, &error));
                        }
                    }
                }
            }
            if crate::retry::is_transient_status(status.as_u16())
                && retries < self.retry.max_retries
            {
                let delay = self
                    .retry
                    .delay(retries, response.headers().get(RETRY_AFTER));
                tracing::debug!(
                    status = status.as_u16(),
                    delay_ms = delay.as_millis() as u64,
                    "retrying a transient failure"
                );
                retries += 1;
                drop(response);
                tokio::time::sleep(delay).await;
                continue;
            }
            span.record("status", status.as_u16());
            span.record("attempts", attempts);
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request done"
            );
            return Ok(response);
        }
    }

    /// Sends one attempt; the optional timeout covers the wait for response headers only.
    async fn execute(
        &self,
        client: &reqwest::Client,
        request: reqwest::Request,
    ) -> reqwest::Result<reqwest::Response> {
        match self.timeout {
            None => client.execute(request).await,
            Some(limit) => match tokio::time::timeout(limit, client.execute(request)).await {
                Ok(result) => result,
                Err(_) => Ok(synthetic_response(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "no answer from the registry within {} ms",
                        limit.as_millis()
                    ),
                )),
            },
        }
    }
}

/// A response made by the client itself (timeouts, failed token requests), with an ACR error
/// body so it reads like any registry error.
fn synthetic_response(status: StatusCode, message: &str) -> reqwest::Response {
    let body = serde_json::json!({"errors": [{"code": if status == StatusCode::UNAUTHORIZED { "UNAUTHORIZED" } else { "TIMEOUT" }, "message": message}]});
    let response = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(reqwest::Body::from(body.to_string()));
    match response {
        Ok(r) => reqwest::Response::from(r),
        Err(_) => reqwest::Response::from(http::Response::new(reqwest::Body::from(""))),
    }
}

/// The 401 answer to return when no token could be had: the registry's challenge headers,
/// with the reason in the body.
fn auth_failure_response(
    original: reqwest::Response,
    error: &azure_core::Error,
) -> reqwest::Response {
    let mut response = synthetic_response(
        StatusCode::UNAUTHORIZED,
        &format!("authentication failed: {error}"),
    );
    for (name, value) in original.headers() {
        if name == WWW_AUTHENTICATE {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matched_operation_names_exist_in_the_generated_client() {
        for name in STREAMED_OPERATIONS {
            assert!(
                azure_containerregistry_rest::hooks::OPERATION_IDS.contains(name),
                "the pipeline matches on `{name}`, which the generated client no longer has"
            );
        }
    }
}
