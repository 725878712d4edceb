//! The request pipeline under both clients: an `azure_core` pipeline (client request id, user
//! agent, retries, logging, the caller's policies and transport) with the registry's policies
//! in it (ACR authentication, `Retry-After` cap, attempt timeout), plugged into the generated
//! REST client as its [`RequestPolicy`].

use std::sync::Arc;
use std::time::Duration;

use azure_containerregistry_rest::hooks::{ClientState, RequestPolicy};
use azure_core::http::headers::{HeaderName, USER_AGENT};
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{
    AsyncRawResponse, ClientOptions, Context, PipelineStreamOptions, Request, RetryOptions,
    StatusCode, Transport,
};
use futures::future::BoxFuture;
use progenitor_client::OperationInfo;
use reqwest::header::AUTHORIZATION;
use url::Url;

use crate::auth::{scope::predict_scope, Authenticator, Login};
use crate::error::invalid_argument;
use crate::policies::{AcrAuthenticationPolicy, AttemptTimeoutPolicy, RetryAfterCapPolicy};
use crate::reference::{is_loopback, parse_endpoint};
use crate::transport::{from_reqwest_request, to_reqwest_response, ReqwestTransport};
use crate::ContainerRegistryClientOptions;

/// Generated operations whose successful answer streams for as long as it takes (bounded by
/// the read timeout, not the body timeout).
const STREAMED_OPERATIONS: &[&str] = &["get_blob"];

/// The crate's name and version, as the user agent names them.
const CRATE_NAME: &str = env!("CARGO_PKG_NAME");
const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");

const API_VERSION: HeaderName = HeaderName::from_static("api-version");

/// Everything a client needs to talk to one registry. Cheap to share (`Arc`).
#[derive(Debug)]
pub(crate) struct Pipeline {
    endpoint: Url,
    rest: azure_containerregistry_rest::Client,
    sender: Arc<Sender>,
    auth: Arc<Authenticator>,
    http: reqwest::Client,
    options: ContainerRegistryClientOptions,
}

impl Pipeline {
    /// Checks the endpoint and builds the pipeline. A credential is refused over plain http
    /// unless the host is loopback.
    pub(crate) fn new(
        endpoint: &str,
        login: Login,
        options: Option<ContainerRegistryClientOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let endpoint = parse_endpoint(endpoint)?;
        if let Login::UsernamePassword(basic) = &login {
            basic.validate()?;
        }
        if login.has_secret() && endpoint.scheme() == "http" && !is_loopback(&endpoint) {
            return Err(invalid_argument(
                "endpoint",
                format!("{endpoint}: credentials are only sent over https (plain http is allowed for loopback hosts only)"),
            ));
        }
        if options.page_size == Some(0) {
            return Err(invalid_argument("page_size", "must be at least 1"));
        }
        if options.api_version.is_empty()
            || !options
                .api_version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(invalid_argument(
                "api_version",
                format!("{:?} is not an API version", options.api_version),
            ));
        }
        let mut builder = reqwest::Client::builder();
        if let Some(limit) = options.connect_timeout {
            builder = builder.connect_timeout(limit);
        }
        if let Some(limit) = options.read_timeout {
            builder = builder.read_timeout(limit);
        }
        let http = builder.build().map_err(crate::error::transport_error)?;
        // Token requests go through the same retries and timeouts, without authentication.
        let token_sender = Arc::new(Sender::new(&endpoint, &options, &http, None));
        let auth = Arc::new(Authenticator::new(
            endpoint.clone(),
            login,
            options.audience.clone(),
            http.clone(),
            token_sender,
        ));
        let sender = Arc::new(Sender::new(&endpoint, &options, &http, Some(auth.clone())));
        let base = endpoint.as_str().trim_end_matches('/').to_string();
        let rest = azure_containerregistry_rest::Client::new_with_client(
            &base,
            http.clone(),
            ClientState::with_policy(sender.clone()),
        );
        Ok(Arc::new(Self {
            endpoint,
            rest,
            sender,
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

    /// The HTTP client (to build requests with).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends a request that no generated operation can express (a `Link` or `Location` URL
    /// used verbatim) through the same pipeline.
    pub(crate) async fn send(
        &self,
        request: reqwest::Request,
        operation: &'static str,
    ) -> azure_core::Result<reqwest::Response> {
        self.sender.send(request, operation).await
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

/// Sends requests through the `azure_core` pipeline (or, for a streamed body that cannot be
/// sent twice, straight to the registry with the same telemetry headers and cached token).
#[derive(Debug)]
pub(crate) struct Sender {
    core: azure_core::http::Pipeline,
    api_version: String,
    body_timeout: Option<Duration>,
    endpoint: Url,
    http: reqwest::Client,
    auth: Option<Arc<Authenticator>>,
    /// Builds the `User-Agent` value exactly as the pipeline does, for streamed requests.
    user_agent_probe: azure_core::http::Pipeline,
    user_agent: tokio::sync::OnceCell<String>,
}

impl Sender {
    fn new(
        endpoint: &Url,
        options: &ContainerRegistryClientOptions,
        http: &reqwest::Client,
        auth: Option<Arc<Authenticator>>,
    ) -> Self {
        let mut client_options = options.client_options.clone();
        if client_options.transport.is_none() {
            client_options.transport = Some(Transport::with_policy(Arc::new(
                ReqwestTransport::new(http.clone(), auth.is_none()),
            )));
        }
        let mut per_try: Vec<Arc<dyn Policy>> = Vec::new();
        if let Some(auth) = &auth {
            per_try.push(Arc::new(AcrAuthenticationPolicy::new(
                endpoint.clone(),
                auth.clone(),
            )));
        }
        per_try.push(Arc::new(RetryAfterCapPolicy::new(options.max_retry_after)));
        if let Some(limit) = options.timeout {
            per_try.push(Arc::new(AttemptTimeoutPolicy::new(limit)));
        }
        let core = azure_core::http::Pipeline::new(
            Some(CRATE_NAME),
            Some(CRATE_VERSION),
            client_options,
            Vec::new(),
            per_try,
            None,
        );
        let probe_options = ClientOptions {
            user_agent: options.client_options.user_agent.clone(),
            retry: RetryOptions::none(),
            transport: Some(Transport::with_policy(Arc::new(EchoUserAgent))),
            ..Default::default()
        };
        let user_agent_probe = azure_core::http::Pipeline::new(
            Some(CRATE_NAME),
            Some(CRATE_VERSION),
            probe_options,
            Vec::new(),
            Vec::new(),
            None,
        );
        Self {
            core,
            api_version: options.api_version.clone(),
            body_timeout: options.body_timeout,
            endpoint: endpoint.clone(),
            http: http.clone(),
            auth,
            user_agent_probe,
            user_agent: tokio::sync::OnceCell::new(),
        }
    }

    /// Sends `request` (for requests that no generated operation expresses, such as a token
    /// realm on another host).
    /// Boxed: token requests are sent from inside another request's authentication.
    pub(crate) fn send_raw<'a>(
        &'a self,
        request: reqwest::Request,
        operation: &'static str,
    ) -> BoxFuture<'a, azure_core::Result<reqwest::Response>> {
        Box::pin(self.send(request, operation))
    }

    async fn send(
        &self,
        request: reqwest::Request,
        operation: &'static str,
    ) -> azure_core::Result<reqwest::Response> {
        let span = tracing::debug_span!(
            "acr.request",
            operation,
            method = %request.method(),
            path = request.url().path(),
            status = tracing::field::Empty,
        );
        let _enter = span.enter();
        let Some(mut outgoing) = from_reqwest_request(&request) else {
            return self.send_streamed(request).await;
        };
        if outgoing.headers().get_optional_str(&API_VERSION).is_some() {
            outgoing.insert_header(API_VERSION, self.api_version.clone());
        }
        let context = crate::operation::current_context();
        let options = PipelineStreamOptions {
            skip_checks: true,
            ..Default::default()
        };
        let response = self
            .core
            .stream(&context, &mut outgoing, Some(options))
            .await?;
        span.record("status", u16::from(response.status()));
        let streamed = STREAMED_OPERATIONS.contains(&operation) && response.status().is_success();
        let response = to_reqwest_response(response);
        // Blob bodies stream for as long as they take (bounded by the read timeout); any other
        // answer is read whole and must be read within the body timeout.
        Ok(match self.body_timeout {
            Some(limit) if !streamed => crate::http_body::with_body_deadline(response, limit),
            _ => response,
        })
    }

    /// A streaming body can be sent once only: no challenge round trip, no retry, no caller
    /// policies. Callers make a small request of the same scope first so that the token is
    /// cached. Sending the body takes as long as it takes: the caller bounds its stalls.
    async fn send_streamed(
        &self,
        mut request: reqwest::Request,
    ) -> azure_core::Result<reqwest::Response> {
        let user_agent = self
            .user_agent
            .get_or_try_init(|| self.probe_user_agent())
            .await?;
        let headers = request.headers_mut();
        if let Ok(value) = user_agent.parse() {
            headers.insert(reqwest::header::USER_AGENT, value);
        }
        if let Ok(value) = azure_core::Uuid::new_v4().to_string().parse() {
            headers.insert(
                reqwest::header::HeaderName::from_static("x-ms-client-request-id"),
                value,
            );
        }
        if let (true, Some(auth)) = (
            request.url().origin() == self.endpoint.origin(),
            self.auth.as_ref(),
        ) {
            if let Some(scope) = predict_scope(request.method(), request.url()) {
                if let Some(value) = auth.cached_authorization(&scope).await {
                    request.headers_mut().insert(AUTHORIZATION, value);
                }
            }
        }
        self.http
            .execute(request)
            .await
            .map_err(crate::error::transport_error)
    }

    /// The `User-Agent` the pipeline sends, read off a request sent to [`EchoUserAgent`].
    async fn probe_user_agent(&self) -> azure_core::Result<String> {
        let mut probe = Request::new(self.endpoint.clone(), azure_core::http::Method::Get);
        let response = self
            .user_agent_probe
            .send(&Context::new(), &mut probe, None)
            .await?;
        Ok(response
            .headers()
            .get_optional_str(&USER_AGENT)
            .unwrap_or_default()
            .to_string())
    }
}

impl RequestPolicy for Sender {
    fn send<'a>(
        &'a self,
        _client: &'a reqwest::Client,
        request: reqwest::Request,
        info: &'a OperationInfo,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>> {
        Box::pin(async move {
            match Sender::send(self, request, info.operation_id).await {
                Ok(response) => Ok(response),
                Err(error) => match reqwest_error(error) {
                    Ok(error) => Err(error),
                    // The generated client carries only reqwest errors: the operation gets
                    // this one back; the generated client reads a stand-in answer.
                    Err(error) => {
                        let message = error.to_string();
                        let _ = crate::operation::keep_error(error);
                        Ok(crate::policies::synthetic_response(
                            StatusCode::BadGateway,
                            "PIPELINE",
                            &message,
                        ))
                    }
                },
            }
        })
    }
}

/// The `reqwest` error inside `error` (the transport's), if that is what it is.
fn reqwest_error(mut error: azure_core::Error) -> Result<reqwest::Error, azure_core::Error> {
    loop {
        error = match error.into_downcast::<reqwest::Error>() {
            Ok(inner) => return Ok(inner),
            Err(error) => error.into_downcast::<azure_core::Error>()?,
        };
    }
}

/// The transport of the user-agent probe: answers with the request's `User-Agent`.
#[derive(Debug)]
struct EchoUserAgent;

#[async_trait::async_trait]
impl Policy for EchoUserAgent {
    async fn send(
        &self,
        _ctx: &Context,
        request: &mut Request,
        _next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let mut headers = azure_core::http::headers::Headers::new();
        if let Some(value) = request.headers().get_optional_str(&USER_AGENT) {
            headers.insert(USER_AGENT, value.to_string());
        }
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::Ok,
            headers,
            Vec::new(),
        ))
    }
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

    #[tokio::test]
    async fn the_user_agent_names_the_crate_after_the_application_id() {
        let mut options = ContainerRegistryClientOptions::default();
        options.client_options.user_agent.application_id = Some("my-app".into());
        let endpoint = Url::parse("http://127.0.0.1:1").unwrap();
        let sender = Sender::new(&endpoint, &options, &reqwest::Client::new(), None);
        let agent = sender.probe_user_agent().await.unwrap();
        // azure_core drops the `azure_` prefix of the crate name.
        assert!(
            agent.starts_with(&format!(
                "my-app azsdk-rust-containerregistry/{CRATE_VERSION} ("
            )),
            "{agent}"
        );
    }
}
