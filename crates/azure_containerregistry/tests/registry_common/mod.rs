//! Shared helpers of the `registry_*` tests: emulator start-up, seeding (plain HTTP, via the
//! examples' seeder), request-log queries and bounded test bodies.
#![allow(dead_code)]

#[path = "../../examples/common/mod.rs"]
pub mod seed;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use azure_containerregistry::{
    ContainerRegistryClient, ContainerRegistryClientOptions, InvalidArgument,
};
use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions, RequestRecord};
use azure_core::credentials::TokenCredential;
use azure_core::http::pager::Page;
use azure_core::http::Pager;
use futures::TryStreamExt;

pub use seed::{FixedCredential, PushedImage, Seeder};

/// The AAD token the emulator accepts in the tests.
pub const AAD_TOKEN: &str = "test-aad-token";

/// Runs a test body with a time limit.
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(60), body)
        .await
        .expect("the test took longer than 60 s");
}

/// Token auth with or without anonymous pull; [`AAD_TOKEN`] is accepted.
pub fn token_mode(anonymous_pull: bool) -> AuthMode {
    AuthMode::Token {
        anonymous_pull,
        accepted_aad_tokens: vec![AAD_TOKEN.to_string()],
    }
}

/// Starts an emulator on a free loopback port.
pub async fn emulator(auth: AuthMode) -> Emulator {
    Emulator::start(EmulatorOptions {
        auth,
        port: 0,
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

/// A seeder that can push in every auth mode.
pub fn seeder(emu: &Emulator) -> Seeder {
    Seeder::new(&emu.endpoint(), Some(AAD_TOKEN))
}

/// The test credential.
pub fn credential() -> Arc<dyn TokenCredential> {
    Arc::new(FixedCredential(AAD_TOKEN.to_string()))
}

/// An anonymous client.
pub fn anonymous(emu: &Emulator) -> ContainerRegistryClient {
    ContainerRegistryClient::new(&emu.endpoint(), None, Some(fast_options())).expect("client")
}

/// A client with the test credential.
pub fn authenticated(emu: &Emulator) -> ContainerRegistryClient {
    ContainerRegistryClient::new(&emu.endpoint(), Some(credential()), Some(fast_options()))
        .expect("client")
}

/// Options with short retry delays.
pub fn fast_options() -> ContainerRegistryClientOptions {
    let mut options = ContainerRegistryClientOptions::default();
    options.retry.initial_delay = Duration::from_millis(10);
    options.retry.max_delay = Duration::from_millis(50);
    options.timeout = Some(Duration::from_secs(20));
    options
}

/// Collects every item of a pager.
pub async fn collect<P>(pager: Pager<P>) -> azure_core::Result<Vec<P::Item>>
where
    P: Page + serde::de::DeserializeOwned + Send + 'static,
    P::Item: Send + 'static,
    P::IntoIter: Send + 'static,
{
    pager.try_collect().await
}

/// Requests of the log whose path starts with `prefix`.
pub fn requests_to(log: &[RequestRecord], prefix: &str) -> Vec<RequestRecord> {
    log.iter()
        .filter(|r| r.path_and_query.starts_with(prefix))
        .cloned()
        .collect()
}

/// Whether the error is an [`InvalidArgument`] for `argument`.
pub fn is_invalid_argument(error: &azure_core::Error, argument: &str) -> bool {
    error
        .downcast_ref::<InvalidArgument>()
        .is_some_and(|e| e.argument == argument)
}

/// Asserts an HTTP error with this status and ACR code.
#[track_caller]
pub fn assert_http_error(error: &azure_core::Error, status: u16, code: Option<&str>) {
    assert_eq!(error.http_status().map(u16::from), Some(status), "{error}");
    assert_eq!(azure_containerregistry::error_code(error), code, "{error}");
}

/// Pushes an image to `repository` tagged with each of `tags`, in order.
pub async fn push(seeder: &Seeder, repository: &str, seed: &str, tags: &[&str]) -> PushedImage {
    let image = seeder
        .push_image(repository, seed, "amd64", "linux")
        .await
        .expect("push image");
    for tag in tags {
        seeder
            .put_manifest(repository, tag, &image.manifest)
            .await
            .expect("tag image");
    }
    image
}
