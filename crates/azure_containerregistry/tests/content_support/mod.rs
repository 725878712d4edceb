//! Shared helpers of the `content_*` tests: registries to run against and a fixed AAD credential.
#![allow(dead_code)]

use std::sync::Arc;

use acr_test_support::DockerRegistry;
use azure_containerregistry::{
    ContainerRegistryClientOptions, ContainerRegistryContentClient, RetryOptions,
};
use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions};
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

/// The AAD token the emulator accepts in token mode.
pub const AAD_TOKEN: &str = "test-aad-token";

/// A credential that always returns [`AAD_TOKEN`].
#[derive(Debug)]
pub struct FixedCredential;

#[async_trait::async_trait]
impl TokenCredential for FixedCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            AAD_TOKEN.to_string(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

/// A registry under test, kept alive while the test runs.
pub enum Backend {
    /// Debian's docker-registry (CNCF distribution 2.8).
    Distribution(DockerRegistry),
    /// The in-process ACR emulator.
    Emulator(Emulator),
}

impl Backend {
    pub fn endpoint(&self) -> String {
        match self {
            Self::Distribution(r) => r.endpoint(),
            Self::Emulator(e) => e.endpoint(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Distribution(_) => "docker-registry",
            Self::Emulator(_) => "emulator",
        }
    }

    pub fn emulator(&self) -> Option<&Emulator> {
        match self {
            Self::Emulator(e) => Some(e),
            Self::Distribution(_) => None,
        }
    }
}

/// docker-registry, or `None` (test skipped, or failed under ACR_TEST_REQUIRE_REAL) when it
/// cannot start.
pub fn distribution(test: &str) -> Option<Backend> {
    match DockerRegistry::start() {
        Ok(r) => Some(Backend::Distribution(r)),
        Err(e) => {
            acr_test_support::skip_or_fail(test, &format!("docker-registry ({e:#})"));
            None
        }
    }
}

/// The emulator, open (no auth), redirecting blob GETs to its storage listener.
pub async fn emulator() -> Backend {
    Backend::Emulator(
        Emulator::start(EmulatorOptions::default())
            .await
            .expect("emulator starts"),
    )
}

/// The emulator in ACR token mode, accepting [`AAD_TOKEN`].
pub async fn emulator_with_tokens() -> Emulator {
    Emulator::start(EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull: false,
            accepted_aad_tokens: vec![AAD_TOKEN.to_string()],
        },
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

/// Both backends (docker-registry only when available).
pub async fn backends(test: &str) -> Vec<Backend> {
    let mut out = Vec::new();
    if let Some(d) = distribution(test) {
        out.push(d);
    }
    out.push(emulator().await);
    out
}

/// Quick retries, so fault tests stay fast.
pub fn options() -> ContainerRegistryClientOptions {
    ContainerRegistryClientOptions {
        retry: RetryOptions {
            max_retries: 2,
            initial_delay: std::time::Duration::from_millis(20),
            max_delay: std::time::Duration::from_millis(200),
        },
        ..Default::default()
    }
}

/// An anonymous content client.
pub fn client(endpoint: &str, repository: &str) -> ContainerRegistryContentClient {
    ContainerRegistryContentClient::new(endpoint, repository, None, Some(options()))
        .expect("client")
}

/// A content client with [`FixedCredential`].
pub fn client_with_credential(endpoint: &str, repository: &str) -> ContainerRegistryContentClient {
    let credential: Arc<dyn TokenCredential> = Arc::new(FixedCredential);
    ContainerRegistryContentClient::new(endpoint, repository, Some(credential), Some(options()))
        .expect("client")
}

/// Runs a future with a time limit, so a hung test fails instead of blocking CI.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(60), f)
        .await
        .expect("test timed out")
}

/// The downcast digest mismatch of an error, if it is one.
pub fn mismatch(e: &azure_core::Error) -> Option<&azure_containerregistry::DigestMismatch> {
    e.downcast_ref::<azure_containerregistry::DigestMismatch>()
}

/// The whole blob, downloaded (sequentially) and verified; panics on any error.
#[allow(dead_code)] // not every test file downloads
pub async fn download_all(content: &ContainerRegistryContentClient, digest: &str) -> bytes::Bytes {
    content
        .download_blob(digest, None)
        .await
        .expect("download starts")
        .collect_bytes()
        .await
        .expect("download completes")
}
