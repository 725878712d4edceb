//! Client options shared by the registry and content clients.

use std::time::Duration;

use azure_core::http::ClientOptions;

use crate::ContainerRegistryAudience;

/// Options for [`ContainerRegistryClient`](crate::ContainerRegistryClient) and
/// [`ContainerRegistryContentClient`](crate::ContainerRegistryContentClient).
///
/// Retries, the user agent's application id, logging, extra per-call and per-try policies and
/// a custom transport come from [`client_options`](Self::client_options), as in every
/// `azure_core` client. The rest are the registry's own knobs.
///
/// Every wait is bounded by default ([`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_TIMEOUT`],
/// [`DEFAULT_READ_TIMEOUT`], [`DEFAULT_BODY_TIMEOUT`], [`DEFAULT_MAX_RETRY_AFTER`]); a `None`
/// set by the caller removes that bound.
#[derive(Clone, Debug)]
pub struct ContainerRegistryClientOptions {
    /// The `azure_core` options: retry, user agent, logging, policies, transport. Without a
    /// transport the client sends with its own `reqwest` client (built with the timeouts below).
    pub client_options: ClientOptions,
    /// The Microsoft Entra audience of the registry (default: Azure public cloud).
    pub audience: ContainerRegistryAudience,
    /// The `api-version` sent to the registry's `/acr/v1` and `/oauth2` endpoints (default
    /// [`DEFAULT_API_VERSION`]).
    pub api_version: String,
    /// Timeout of one request attempt up to its response headers (default 60 s); a timed-out
    /// attempt is retried like a 408. An upload's streamed request is bounded per step
    /// instead: each wait for the connection to take more of the body, then the wait for the
    /// answer. Token requests run under it too.
    pub timeout: Option<Duration>,
    /// Connect timeout (default 30 s). Ignored with a custom transport.
    pub connect_timeout: Option<Duration>,
    /// The longest wait for the next byte of any response body (default 60 s): a body that
    /// stalls longer is an error (downloads resume from where they were, within their retry
    /// budget). Ignored with a custom transport.
    pub read_timeout: Option<Duration>,
    /// The longest time to read an answer that is read whole — JSON, manifests, tokens, error
    /// bodies — after its headers (default 60 s), so a body trickling a byte at a time ends.
    /// Blob bodies are streamed and bounded by [`read_timeout`](Self::read_timeout) instead.
    pub body_timeout: Option<Duration>,
    /// The longest wait a registry's `Retry-After` can ask for before a retry (default 60 s);
    /// a longer one is shortened to this.
    pub max_retry_after: Duration,
    /// The wait before an upload or download resumes after a failure (default 800 ms); it
    /// doubles with each resume, with jitter, up to 60 s.
    pub resume_delay: Duration,
    /// The page size that list operations ask for (`n`); `None` lets the registry choose.
    pub page_size: Option<u32>,
}

/// The default [`ContainerRegistryClientOptions::api_version`].
pub const DEFAULT_API_VERSION: &str = "2021-07-01";
/// The default [`ContainerRegistryClientOptions::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default [`ContainerRegistryClientOptions::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The default [`ContainerRegistryClientOptions::read_timeout`].
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The default [`ContainerRegistryClientOptions::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// The default [`ContainerRegistryClientOptions::max_retry_after`].
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The default [`ContainerRegistryClientOptions::resume_delay`].
pub const DEFAULT_RESUME_DELAY: Duration = Duration::from_millis(800);

impl Default for ContainerRegistryClientOptions {
    fn default() -> Self {
        Self {
            client_options: ClientOptions::default(),
            audience: ContainerRegistryAudience::default(),
            api_version: DEFAULT_API_VERSION.to_string(),
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            read_timeout: Some(DEFAULT_READ_TIMEOUT),
            body_timeout: Some(DEFAULT_BODY_TIMEOUT),
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            resume_delay: DEFAULT_RESUME_DELAY,
            page_size: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bound_every_wait() {
        let options = ContainerRegistryClientOptions::default();
        assert!(options.connect_timeout.is_some());
        assert!(options.read_timeout.is_some());
        assert!(options.body_timeout.is_some());
        assert!(options.timeout.is_some());
        assert!(options.max_retry_after <= Duration::from_secs(60));
        assert_eq!(options.api_version, "2021-07-01");
    }
}
