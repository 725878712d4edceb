//! Client options shared by the registry and content clients.

use std::time::Duration;

use crate::ContainerRegistryAudience;

/// Options for [`ContainerRegistryClient`](crate::ContainerRegistryClient) and
/// [`ContainerRegistryContentClient`](crate::ContainerRegistryContentClient).
#[derive(Clone, Debug, Default)]
pub struct ContainerRegistryClientOptions {
    /// The Microsoft Entra audience of the registry (default: Azure public cloud).
    pub audience: ContainerRegistryAudience,
    /// Retry behaviour for transient failures.
    pub retry: RetryOptions,
    /// Timeout of one request attempt up to its response headers; bodies stream without a
    /// total timeout. An upload's streamed request is bounded per step instead: each wait for
    /// the connection to take more of the body, then the wait for the answer. `None`: no
    /// timeout.
    pub timeout: Option<Duration>,
    /// Connect timeout (default 30 s). Ignored with [`http_client`](Self::http_client).
    pub connect_timeout: Option<Duration>,
    /// The page size that list operations ask for (`n`); `None` lets the registry choose.
    pub page_size: Option<u32>,
    /// A `reqwest::Client` to send requests with, instead of one the client builds.
    pub http_client: Option<reqwest::Client>,
}

/// How transient failures (408, 429, 500, 502, 503, 504, connection errors) are retried.
#[derive(Clone, Debug)]
pub struct RetryOptions {
    /// Retries after the first attempt (default 3; 0 turns retries off).
    pub max_retries: u32,
    /// Delay before the first retry (default 800 ms); it doubles each time, with jitter.
    pub initial_delay: Duration,
    /// The longest delay between attempts, including a `Retry-After` (default 60 s).
    pub max_delay: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(60),
        }
    }
}
