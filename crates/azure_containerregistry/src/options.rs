//! Client options shared by the registry and content clients.

use std::time::Duration;

use crate::{ContainerRegistryAudience, RetryOptions};

/// Options for [`ContainerRegistryClient`](crate::ContainerRegistryClient) and
/// [`ContainerRegistryContentClient`](crate::ContainerRegistryContentClient).
///
/// Every wait is bounded by default ([`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_TIMEOUT`],
/// [`DEFAULT_READ_TIMEOUT`], [`DEFAULT_BODY_TIMEOUT`]); a `None` set by the caller removes that
/// bound. With the defaults, a registry that never answers fails a call within
/// [`worst_case_silent_wait`](Self::worst_case_silent_wait), retries included.
#[derive(Clone, Debug)]
pub struct ContainerRegistryClientOptions {
    /// The Microsoft Entra audience of the registry (default: Azure public cloud).
    pub audience: ContainerRegistryAudience,
    /// Retry behaviour for transient failures.
    pub retry: RetryOptions,
    /// Timeout of one request attempt up to its response headers (default 60 s); a timed-out
    /// attempt is retried like a 408. An upload's streamed request is bounded per step
    /// instead: each wait for the connection to take more of the body, then the wait for the
    /// answer. Token requests run under it too.
    pub timeout: Option<Duration>,
    /// Connect timeout (default 30 s). Ignored with [`http_client`](Self::http_client).
    pub connect_timeout: Option<Duration>,
    /// The longest wait for the next byte of any response body (default 60 s): a body that
    /// stalls longer is an error (downloads resume from where they were, within the retry
    /// budget). Ignored with [`http_client`](Self::http_client).
    pub read_timeout: Option<Duration>,
    /// The longest time to read an answer that is read whole — JSON, manifests, tokens, error
    /// bodies — after its headers (default 60 s), so a body trickling a byte at a time ends.
    /// Blob bodies are streamed and bounded by [`read_timeout`](Self::read_timeout) instead.
    pub body_timeout: Option<Duration>,
    /// The page size that list operations ask for (`n`); `None` lets the registry choose.
    pub page_size: Option<u32>,
    /// A `reqwest::Client` to send requests with, instead of one the client builds.
    pub http_client: Option<reqwest::Client>,
}

/// The default [`ContainerRegistryClientOptions::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default [`ContainerRegistryClientOptions::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The default [`ContainerRegistryClientOptions::read_timeout`].
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The default [`ContainerRegistryClientOptions::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for ContainerRegistryClientOptions {
    fn default() -> Self {
        Self {
            audience: ContainerRegistryAudience::default(),
            retry: RetryOptions::default(),
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            read_timeout: Some(DEFAULT_READ_TIMEOUT),
            body_timeout: Some(DEFAULT_BODY_TIMEOUT),
            page_size: None,
            http_client: None,
        }
    }
}

impl ContainerRegistryClientOptions {
    /// The longest a request waits on a registry that accepts connections and never answers,
    /// retries and their delays included; `None` when a timeout or the retry delay is
    /// unbounded.
    pub fn worst_case_silent_wait(&self) -> Option<Duration> {
        let attempt = self.timeout?;
        let attempts = self.retry.max_retries.saturating_add(1);
        let mut total = attempt.saturating_mul(attempts);
        for n in 0..self.retry.max_retries {
            total = total.saturating_add(self.retry.longest_delay(n));
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bound_every_wait_within_five_minutes() {
        let options = ContainerRegistryClientOptions::default();
        assert!(options.connect_timeout.is_some());
        assert!(options.read_timeout.is_some());
        assert!(options.body_timeout.is_some());
        let silent = options
            .worst_case_silent_wait()
            .expect("bounded by default");
        assert!(silent <= Duration::from_secs(300), "{silent:?}");
        let unbounded = ContainerRegistryClientOptions {
            timeout: None,
            ..Default::default()
        };
        assert_eq!(unbounded.worst_case_silent_wait(), None);
    }
}
