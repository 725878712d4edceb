//! The token cache and the token exchanges.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use azure_containerregistry_rest::hooks::ClientState;
use azure_containerregistry_rest::types::{
    ExchangeAadAccessTokenForAcrRefreshTokenBody, ExchangeAcrRefreshTokenForAcrAccessTokenBody,
};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::error::ErrorKind;
use reqwest::header::HeaderValue;
use url::Url;

use super::challenge::Challenge;
use super::{jwt, scope};
use crate::error::rest_error;
use crate::pipeline::Sender;
use crate::reference::is_loopback;
use crate::ContainerRegistryAudience;

/// A token and when to stop using it.
#[derive(Clone)]
struct CachedToken {
    token: Secret,
    /// Unix seconds after which the token is fetched anew.
    refresh_after: i64,
}

impl CachedToken {
    fn new(token: String) -> Self {
        let now = now_secs();
        let refresh_after = match jwt::expiry(&token) {
            // Stop using it a fifth of its lifetime (at most 5 minutes) before it expires.
            // Saturating: `exp` comes from the registry and may be any i64.
            Some(exp) => exp.saturating_sub((exp.saturating_sub(now) / 5).clamp(0, 300)),
            None => now + 60,
        };
        Self {
            token: Secret::new(token),
            refresh_after,
        }
    }

    fn is_fresh(&self) -> bool {
        now_secs() < self.refresh_after
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The tokens of one registry and credential: its refresh token and the access tokens per
/// scope. Shared by every client of the same endpoint, credential and audience (see
/// [`TokenCache::shared`]), so that two repositories of one registry make one exchange.
struct TokenCache {
    credential: Option<Arc<dyn TokenCredential>>,
    refresh: tokio::sync::Mutex<Option<CachedToken>>,
    /// Canonical scope → access token.
    access: Mutex<HashMap<String, CachedToken>>,
    /// Canonical scope → the lock that makes concurrent requests share one fetch.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Which cache a client uses: the registry's origin, the credential (by identity) and the
/// audience.
type CacheKey = (String, usize, String);

/// The live caches. Entries are weak: a cache lives as long as a client uses it, and it holds
/// its credential, so the credential's address cannot be reused while its entry can be found.
static CACHES: std::sync::LazyLock<Mutex<HashMap<CacheKey, std::sync::Weak<TokenCache>>>> =
    std::sync::LazyLock::new(|| Mutex::new(HashMap::new()));

/// Access tokens kept per cache before expired ones are dropped.
const PRUNE_AT: usize = 256;

impl TokenCache {
    /// The cache of this registry, credential and audience: an existing one when a client of
    /// the same three is alive, else a new one.
    fn shared(
        endpoint: &Url,
        credential: Option<Arc<dyn TokenCredential>>,
        audience: &ContainerRegistryAudience,
    ) -> Arc<Self> {
        let identity = credential
            .as_ref()
            .map_or(0, |c| Arc::as_ptr(c) as *const () as usize);
        let key = (
            endpoint.origin().ascii_serialization(),
            identity,
            audience.default_scope(),
        );
        let mut caches = CACHES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cache) = caches.get(&key).and_then(std::sync::Weak::upgrade) {
            return cache;
        }
        caches.retain(|_, weak| weak.strong_count() > 0);
        let cache = Arc::new(Self {
            credential,
            refresh: tokio::sync::Mutex::new(None),
            access: Mutex::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
        });
        caches.insert(key, Arc::downgrade(&cache));
        cache
    }

    /// A cache of one client's own, shared with no other.
    fn private() -> Arc<Self> {
        Arc::new(Self {
            credential: None,
            refresh: tokio::sync::Mutex::new(None),
            access: Mutex::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
        })
    }

    /// A fresh cached token that serves `wanted`: the one cached for exactly that scope, else
    /// one whose scope includes it (a `pull,push` token serves `pull`); never `rejected`.
    fn lookup(&self, wanted: &str, rejected: Option<&HeaderValue>) -> Option<HeaderValue> {
        let wanted = scope::canonical(wanted);
        let access = self.access.lock().unwrap_or_else(|e| e.into_inner());
        let usable = |token: &CachedToken| {
            token
                .is_fresh()
                .then(|| bearer(token.token.secret()))
                .flatten()
                .filter(|header| Some(header) != rejected)
        };
        if let Some(header) = access.get(&wanted).and_then(usable) {
            return Some(header);
        }
        access
            .iter()
            .filter(|(granted, _)| scope::covers(granted, &wanted))
            .find_map(|(_, token)| usable(token))
    }

    fn store(&self, scope: &str, token: CachedToken) {
        let mut access = self.access.lock().unwrap_or_else(|e| e.into_inner());
        if access.len() >= PRUNE_AT {
            access.retain(|_, t| t.is_fresh());
        }
        access.insert(scope::canonical(scope), token);
    }

    fn fetch_lock(&self, scope: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        if fetching.len() >= PRUNE_AT {
            fetching.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        fetching.entry(scope::canonical(scope)).or_default().clone()
    }
}

/// How a client signs in.
#[derive(Clone, Default)]
pub(crate) enum Login {
    /// No credential: anonymous tokens only.
    #[default]
    Anonymous,
    /// A Microsoft Entra credential, exchanged for registry tokens.
    Entra(Arc<dyn TokenCredential>),
    /// A username and password (HTTP Basic to the registry's own host).
    UsernamePassword(crate::UsernamePasswordCredential),
}

impl Login {
    /// Whether the login carries a secret (refused over plain http to other hosts).
    pub(crate) fn has_secret(&self) -> bool {
        !matches!(self, Self::Anonymous)
    }
}

/// Fetches and caches registry tokens for one registry.
pub(crate) struct Authenticator {
    endpoint: Url,
    audience: ContainerRegistryAudience,
    cache: Arc<TokenCache>,
    /// The username and password, for a client that signs in with them.
    basic: Option<crate::UsernamePasswordCredential>,
    /// Set once the registry asked for HTTP Basic on its own requests (htpasswd): from then on
    /// the Basic header goes with every request, without a 401 first.
    basic_on_requests: std::sync::atomic::AtomicBool,
    /// The generated client for the registry's token endpoints, sending through `token_policy`.
    token_client: azure_containerregistry_rest::Client,
    /// Retries and timeouts without authentication, for token requests.
    token_policy: Arc<Sender>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("endpoint", &self.endpoint.as_str())
            .field(
                "credential",
                &self.cache.credential.as_ref().map(|_| "<credential>"),
            )
            .field("audience", &self.audience)
            .field("basic", &self.basic)
            .finish_non_exhaustive()
    }
}

/// The registry's `service` name when no challenge named one: its host and port.
pub(crate) fn default_service(endpoint: &Url) -> String {
    match (endpoint.host_str(), endpoint.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

impl Authenticator {
    pub(crate) fn new(
        endpoint: Url,
        login: Login,
        audience: ContainerRegistryAudience,
        http: reqwest::Client,
        token_policy: Arc<Sender>,
    ) -> Self {
        let base = endpoint.as_str().trim_end_matches('/').to_string();
        let token_client = azure_containerregistry_rest::Client::new_with_client(
            &base,
            http.clone(),
            ClientState::with_policy(token_policy.clone()),
        );
        let (cache, basic) = match login {
            Login::Anonymous => (TokenCache::shared(&endpoint, None, &audience), None),
            Login::Entra(credential) => (
                TokenCache::shared(&endpoint, Some(credential), &audience),
                None,
            ),
            // Tokens of a username are that client's own: never shared with anonymous
            // clients of the same registry.
            Login::UsernamePassword(basic) => (TokenCache::private(), Some(basic)),
        };
        Self {
            endpoint,
            audience,
            cache,
            basic,
            basic_on_requests: std::sync::atomic::AtomicBool::new(false),
            token_client,
            token_policy,
            http,
        }
    }

    /// The registry's `service` name when no challenge named one: its host and port.
    pub(crate) fn default_service(&self) -> String {
        default_service(&self.endpoint)
    }

    /// A cached, fresh access token that serves `scope`, as an `Authorization` value; the
    /// Basic header instead once the registry asked for Basic on its requests.
    pub(crate) async fn cached_authorization(&self, scope: &str) -> Option<HeaderValue> {
        if self
            .basic_on_requests
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return self.basic.as_ref().and_then(|b| b.basic_header());
        }
        self.cache.lookup(scope, None)
    }

    /// The answer to a `Basic` challenge of the registry itself: the username and password on
    /// the request (and on every request after it). `None` without a username, or when they
    /// were already sent and refused.
    pub(crate) fn answer_basic_challenge(
        &self,
        rejected: Option<&HeaderValue>,
    ) -> Option<HeaderValue> {
        let header = self.basic.as_ref()?.basic_header()?;
        if rejected == Some(&header) {
            return None;
        }
        self.basic_on_requests
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Some(header)
    }

    /// Caches an access token for another name of the same scope (the predicted one).
    pub(crate) fn alias(&self, predicted: &str, authorization: &HeaderValue) {
        if let Some(token) = authorization
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            self.cache
                .store(predicted, CachedToken::new(token.to_string()));
        }
    }

    /// An access token for what `challenge` asks, as an `Authorization` value. A cached token
    /// that serves the scope is used unless it is the `rejected` one that the registry just
    /// refused.
    pub(crate) async fn authorize(
        &self,
        challenge: &Challenge,
        rejected: Option<&HeaderValue>,
    ) -> azure_core::Result<HeaderValue> {
        let scope = challenge.scope();
        let lock = self.cache.fetch_lock(&scope);
        let _fetching = lock.lock().await;
        if let Some(header) = self.cache.lookup(&scope, rejected) {
            return Ok(header);
        }
        let service = challenge
            .service
            .clone()
            .unwrap_or_else(|| self.default_service());
        let token = self.fetch_access_token(challenge, &service, &scope).await?;
        let header = bearer(&token).ok_or_else(|| {
            credential_error("the registry issued a token that is not a valid header value")
        })?;
        self.cache.store(&scope, CachedToken::new(token));
        Ok(header)
    }

    /// Access token for `scope` from the registry's token endpoint.
    async fn fetch_access_token(
        &self,
        challenge: &Challenge,
        service: &str,
        scope: &str,
    ) -> azure_core::Result<String> {
        let same_origin = Url::parse(&challenge.realm)
            .map(|realm| realm.origin() == self.endpoint.origin())
            .unwrap_or(false);
        if let Some(basic) = &self.basic {
            if !same_origin {
                return Err(credential_error(format!(
                    "the registry asked for a token from {:?}, which is not the registry's own host; \
                     the password is only sent to {}",
                    challenge.realm,
                    self.endpoint.origin().ascii_serialization()
                )));
            }
            return self
                .basic_token(basic, &challenge.realm, service, scope)
                .await;
        }
        match &self.cache.credential {
            Some(_) => {
                if !same_origin {
                    return Err(credential_error(format!(
                        "the registry asked for a token from {:?}, which is not the registry's own host; \
                         credentials are only sent to {}",
                        challenge.realm,
                        self.endpoint.origin().ascii_serialization()
                    )));
                }
                let refresh_token = self.refresh_token(service).await?;
                self.access_token_from_refresh(service, scope, refresh_token.secret())
                    .await
            }
            None if same_origin => self.anonymous_token(service, scope).await,
            None => {
                self.anonymous_token_from_realm(&challenge.realm, service, scope)
                    .await
            }
        }
    }

    /// `GET <realm>?service=…&scope=…` with the username and password (HTTP Basic), as
    /// `docker login` asks a registry's token endpoint. One `scope` parameter per scope.
    async fn basic_token(
        &self,
        basic: &crate::UsernamePasswordCredential,
        realm: &str,
        service: &str,
        scope: &str,
    ) -> azure_core::Result<String> {
        let mut url = Url::parse(realm).map_err(|_| {
            credential_error(format!("the challenge's realm {realm:?} is not a URL"))
        })?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("service", service);
            for one in scope.split(' ').filter(|s| !s.is_empty()) {
                query.append_pair("scope", one);
            }
        }
        let header = basic
            .basic_header()
            .ok_or_else(|| credential_error("the username or password is not a valid header"))?;
        let request = self
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, header);
        self.realm_token(
            request,
            "access_token_from_login",
            "getting a registry access token with the username and password",
        )
        .await
    }

    /// `POST /oauth2/token` with `grant_type=refresh_token`.
    pub(crate) async fn access_token_from_refresh(
        &self,
        service: &str,
        scope: &str,
        refresh_token: &str,
    ) -> azure_core::Result<String> {
        self.token_request(
            "refresh_token",
            service,
            scope,
            Some(refresh_token),
            "getting a registry access token",
        )
        .await
    }

    /// `POST /oauth2/token` with `grant_type=password` and no refresh token.
    async fn anonymous_token(&self, service: &str, scope: &str) -> azure_core::Result<String> {
        self.token_request(
            "password",
            service,
            scope,
            None,
            "getting an anonymous registry token",
        )
        .await
    }

    /// `POST /oauth2/token` on the registry itself; `what` names the request in errors.
    async fn token_request(
        &self,
        grant_type: &str,
        service: &str,
        scope: &str,
        refresh_token: Option<&str>,
        what: &str,
    ) -> azure_core::Result<String> {
        let body = ExchangeAcrRefreshTokenForAcrAccessTokenBody {
            grant_type: grant_type.into(),
            service: service.into(),
            scope: scope.into(),
            refresh_token: refresh_token.map(Into::into),
            access_token: None,
            tenant: None,
        };
        let response = self
            .token_client
            .exchange_acr_refresh_token_for_acr_access_token(&body)
            .await
            .map_err(|e| credential_context(rest_error(e), what))?;
        response
            .into_inner()
            .access_token
            .ok_or_else(|| credential_error("the registry's token answer has no access_token"))
    }

    /// Anonymous token from a realm on another host. No secret is sent, so this is allowed; the
    /// request goes to the realm URL as the challenge gave it (not a URL of the generated client).
    async fn anonymous_token_from_realm(
        &self,
        realm: &str,
        service: &str,
        scope: &str,
    ) -> azure_core::Result<String> {
        let url = Url::parse(realm).map_err(|_| {
            credential_error(format!("the challenge's realm {realm:?} is not a URL"))
        })?;
        if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
            return Err(credential_error(format!(
                "the challenge's realm {realm:?} is not https"
            )));
        }
        let form = [
            ("grant_type", "password"),
            ("service", service),
            ("scope", scope),
        ];
        let request = self.http.post(url).form(&form);
        self.realm_token(
            request,
            "anonymous_token_from_realm",
            "getting an anonymous token from the realm",
        )
        .await
    }

    /// Sends a token request that no generated operation expresses and reads the token of its
    /// JSON answer; `what` names it in errors.
    async fn realm_token(
        &self,
        request: reqwest::RequestBuilder,
        operation: &'static str,
        what: &str,
    ) -> azure_core::Result<String> {
        let request = request.build().map_err(crate::error::transport_error)?;
        let response = self.token_policy.send_raw(request, operation).await?;
        if !response.status().is_success() {
            return Err(credential_context(
                crate::error::response_error(response).await,
                what,
            ));
        }
        let body = crate::http_body::read_bounded(response, 1 << 20).await?;
        token_of(&body).ok_or_else(|| credential_error(format!("{what}: the answer has no token")))
    }

    /// The registry refresh token: cached, else a Microsoft Entra token exchanged at
    /// `/oauth2/exchange`.
    pub(crate) async fn refresh_token(&self, service: &str) -> azure_core::Result<Secret> {
        let mut guard = self.cache.refresh.lock().await;
        if let Some(cached) = guard.as_ref().filter(|t| t.is_fresh()) {
            return Ok(cached.token.clone());
        }
        let credential = self
            .cache
            .credential
            .as_ref()
            .ok_or_else(|| credential_error("no credential was given (anonymous client)"))?;
        let scope = self.audience.default_scope();
        let aad = credential
            .get_token(&[scope.as_str()], None)
            .await
            .map_err(|e| credential_context(e, "getting a Microsoft Entra token"))?;
        let token = self
            .exchange_aad_token(service, aad.token.secret(), None)
            .await?;
        let cached = CachedToken::new(token);
        let secret = cached.token.clone();
        *guard = Some(cached);
        Ok(secret)
    }

    /// `POST /oauth2/exchange` of a Microsoft Entra access token (with its tenant, when given)
    /// for a registry refresh token. Nothing is cached.
    pub(crate) async fn exchange_aad_token(
        &self,
        service: &str,
        aad_access_token: &str,
        tenant: Option<&str>,
    ) -> azure_core::Result<String> {
        let body = ExchangeAadAccessTokenForAcrRefreshTokenBody {
            grant_type: "access_token".into(),
            service: service.into(),
            access_token: Some(aad_access_token.to_string()),
            refresh_token: None,
            tenant: tenant.map(str::to_string),
        };
        let response = self
            .token_client
            .exchange_aad_access_token_for_acr_refresh_token(&body)
            .await
            .map_err(|e| {
                credential_context(
                    rest_error(e),
                    "exchanging the Microsoft Entra token for a registry refresh token",
                )
            })?;
        response
            .into_inner()
            .refresh_token
            .ok_or_else(|| credential_error("the registry's exchange answer has no refresh_token"))
    }
}

/// The token of a token endpoint's JSON answer: `access_token`, else `token` (the
/// distribution token spec allows either).
fn token_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        access_token: Option<String>,
        token: Option<String>,
    }
    let answer: TokenAnswer = serde_json::from_slice(body).ok()?;
    answer
        .access_token
        .or(answer.token)
        .filter(|t| !t.is_empty())
}

fn bearer(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn credential_error(message: impl Into<String>) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::Credential, message.into())
}

fn credential_context(error: azure_core::Error, what: &str) -> azure_core::Error {
    match error.kind() {
        // Keep registry answers as they are (status and code matter to callers).
        ErrorKind::HttpResponse { .. } => error.with_context(format!("{what} failed")),
        _ => azure_core::Error::with_message(
            ErrorKind::Credential,
            format!("{what} failed: {error}"),
        ),
    }
}
