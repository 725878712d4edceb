//! Helpers shared by every integration test of this crate: emulators and docker-registry to
//! run against, clients with fast retries, seeding, request-log queries and error checks.
//! What is not specific to this client (the seeder, the test credential, the hostile server,
//! the bounded wait, digests) lives in `acr_test_support`.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use acr_test_support::{DockerRegistry, Seeder};
use azure_containerregistry::{
    media_types, ContainerRegistryClient, ContainerRegistryClientOptions,
    ContainerRegistryContentClient, InvalidArgument, ManifestWriteableProperties, OciDescriptor,
    OciImageIndex, OciImageManifest, Platform, RepositoryWriteableProperties, SetManifestOptions,
    TagWriteableProperties, UploadBlobResult,
};
use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions, RequestRecord};
use azure_core::credentials::TokenCredential;
use azure_core::http::pager::Page;
use azure_core::http::{DeserializeWith, Format, Pager, Response};
use futures::TryStreamExt;

#[allow(unused_imports)] // not every test file uses each of them
pub use acr_test_support::{
    bounded, jwt, sha256_digest, token_flow, HostileServer, PushedImage, Received, Reply,
    TestCredential, AAD_TOKEN,
};

// ---------------------------------------------------------------------------------------------
// Registries.

/// Token auth with or without anonymous pull; [`AAD_TOKEN`] is accepted.
pub fn token_mode(anonymous_pull: bool) -> AuthMode {
    AuthMode::Token {
        anonymous_pull,
        accepted_aad_tokens: vec![AAD_TOKEN.to_string()],
    }
}

/// Starts an emulator on a free loopback port.
pub async fn emulator(auth: AuthMode) -> Emulator {
    start(EmulatorOptions {
        auth,
        ..Default::default()
    })
    .await
}

/// Starts an emulator with these options.
pub async fn start(options: EmulatorOptions) -> Emulator {
    Emulator::start(options).await.expect("emulator starts")
}

/// The emulator in ACR token mode, accepting [`AAD_TOKEN`].
pub async fn token_emulator(
    anonymous_pull: bool,
    access_token_lifetime: Option<Duration>,
) -> Emulator {
    let mut options = EmulatorOptions {
        auth: token_mode(anonymous_pull),
        ..Default::default()
    };
    if let Some(lifetime) = access_token_lifetime {
        options.access_token_lifetime = lifetime;
    }
    start(options).await
}

/// The open emulator (no auth) without blob redirects (so blob GETs go through a proxy).
pub async fn open_emulator() -> Emulator {
    start(EmulatorOptions {
        redirect_blobs: false,
        ..Default::default()
    })
    .await
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
pub async fn emulator_backend() -> Backend {
    Backend::Emulator(emulator(AuthMode::Open).await)
}

/// docker-registry (when available) and the emulator; `redirects: false` starts the emulator
/// without storage redirects (so blob GETs go through a proxy in front of it).
pub async fn backends_with(test: &str, redirects: bool) -> Vec<Backend> {
    let mut out: Vec<Backend> = distribution(test).into_iter().collect();
    out.push(match redirects {
        true => emulator_backend().await,
        false => Backend::Emulator(open_emulator().await),
    });
    out
}

/// Both backends (docker-registry only when available).
pub async fn backends(test: &str) -> Vec<Backend> {
    backends_with(test, true).await
}

// ---------------------------------------------------------------------------------------------
// Clients.

/// The test credential ([`AAD_TOKEN`]) as the clients take it.
pub fn credential() -> Arc<dyn TokenCredential> {
    Arc::new(TestCredential::default())
}

/// `azure_core` client options retrying `max_retries` times, first after `initial_ms`
/// milliseconds (azure_core adds up to 255 ms of jitter and waits at most a second between
/// tries when the delay is this short).
pub fn quick_retries(max_retries: u32, initial_ms: i64) -> azure_core::http::ClientOptions {
    use azure_core::http::{ExponentialRetryOptions, RetryOptions};
    azure_core::http::ClientOptions {
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            max_retries,
            initial_delay: azure_core::time::Duration::milliseconds(initial_ms),
            max_delay: azure_core::time::Duration::seconds(1),
            max_total_elapsed: azure_core::time::Duration::seconds(60),
        }),
        ..Default::default()
    }
}

/// Options with small retry delays, so that retry tests stay fast, and a 20 s timeout.
pub fn fast_options(max_retries: u32) -> ContainerRegistryClientOptions {
    ContainerRegistryClientOptions {
        client_options: quick_retries(max_retries, 20),
        resume_delay: Duration::from_millis(20),
        timeout: Some(Duration::from_secs(20)),
        ..Default::default()
    }
}

/// Quick retries (two) and resumes, so content fault tests stay fast.
pub fn options() -> ContainerRegistryClientOptions {
    ContainerRegistryClientOptions {
        client_options: quick_retries(2, 20),
        resume_delay: Duration::from_millis(20),
        ..Default::default()
    }
}

/// A content client for `repository` at `endpoint`.
pub fn content_client(
    endpoint: &str,
    repository: &str,
    credential: Option<Arc<dyn TokenCredential>>,
    options: ContainerRegistryClientOptions,
) -> ContainerRegistryContentClient {
    ContainerRegistryContentClient::new(endpoint, repository, credential, Some(options))
        .expect("client")
}

/// A registry client for `endpoint`.
pub fn registry_client(
    endpoint: &str,
    credential: Option<Arc<dyn TokenCredential>>,
    options: ContainerRegistryClientOptions,
) -> ContainerRegistryClient {
    ContainerRegistryClient::new(endpoint, credential, Some(options)).expect("client")
}

/// An anonymous registry client with [`fast_options`].
pub fn anonymous(emu: &Emulator) -> ContainerRegistryClient {
    registry_client(&emu.endpoint(), None, fast_options(3))
}

/// A registry client with the test credential and [`fast_options`].
pub fn authenticated(emu: &Emulator) -> ContainerRegistryClient {
    registry_client(&emu.endpoint(), Some(credential()), fast_options(3))
}

/// An anonymous content client with [`options`].
pub fn client(endpoint: &str, repository: &str) -> ContainerRegistryContentClient {
    content_client(endpoint, repository, None, options())
}

/// A fault proxy in front of `backend`, and an anonymous content client for `repository`
/// that goes through it.
pub async fn behind_proxy(
    backend: &Backend,
    repository: &str,
) -> (acr_test_support::FaultProxy, ContainerRegistryContentClient) {
    let proxy = acr_test_support::FaultProxy::start(&backend.endpoint())
        .await
        .expect("fault proxy");
    let content = client(&proxy.endpoint(), repository);
    (proxy, content)
}

/// Runs `body` on each of `backends` in turn, each within 60 s, with the backend, a fresh
/// fault proxy in front of it and a content client for `repository` through the proxy.
pub async fn on_each_backend(
    backends: Vec<Backend>,
    repository: &str,
    body: impl AsyncFn(&Backend, acr_test_support::FaultProxy, ContainerRegistryContentClient),
) {
    for backend in backends {
        bounded(60, async {
            let (proxy, content) = behind_proxy(&backend, repository).await;
            body(&backend, proxy, content).await
        })
        .await;
    }
}

/// An open emulator (no authentication) and a seeder for it.
pub async fn open_seeded() -> (Emulator, Seeder) {
    let emu = emulator(AuthMode::Open).await;
    let seeder = seeder(&emu);
    (emu, seeder)
}

/// Upload options that send the blob in chunks of `chunk_size` bytes.
pub fn chunked(chunk_size: usize) -> Option<azure_containerregistry::UploadBlobOptions<'static>> {
    Some(azure_containerregistry::UploadBlobOptions {
        chunk_size: Some(chunk_size),
        ..Default::default()
    })
}

/// A file `name` holding `data` in a new temporary folder (removed with the returned guard).
pub fn temp_file(name: &str, data: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, data).expect("write");
    (dir, path)
}

/// A content client with the test credential and [`options`].
pub fn client_with_credential(endpoint: &str, repository: &str) -> ContainerRegistryContentClient {
    content_client(endpoint, repository, Some(credential()), options())
}

// ---------------------------------------------------------------------------------------------
// Seeding.

/// A seeder that can push in every auth mode.
pub fn seeder(emu: &Emulator) -> Seeder {
    Seeder::new(&emu.endpoint(), Some(AAD_TOKEN))
}

/// Pushes an image to `repository` tagged with each of `tags`, in order.
pub async fn push(seeder: &Seeder, repository: &str, seed: &str, tags: &[&str]) -> PushedImage {
    seeder.push(repository, seed, tags).await
}

/// Manifest options that set `tag`.
pub fn tagged(tag: &str) -> Option<SetManifestOptions<'static>> {
    Some(SetManifestOptions {
        tag: Some(tag.into()),
        ..Default::default()
    })
}

/// An OCI image manifest naming the uploaded `config` and `layers` (uncompressed tar).
pub fn oci_manifest(config: &UploadBlobResult, layers: &[&UploadBlobResult]) -> OciImageManifest {
    let descriptor = |media_type: &str, blob: &UploadBlobResult| {
        OciDescriptor::new(media_type, blob.digest.clone(), blob.size)
    };
    OciImageManifest {
        config: descriptor(media_types::OCI_CONFIG, config),
        layers: layers
            .iter()
            .map(|l| descriptor(media_types::OCI_LAYER_TAR, l))
            .collect(),
        ..Default::default()
    }
}

/// Uploads a `{}` config and sets an OCI manifest naming only it under `tag`; returns the
/// manifest and its digest.
pub async fn set_config_only_manifest(
    content: &ContainerRegistryContentClient,
    tag: &str,
) -> (OciImageManifest, String) {
    let config = content
        .upload_blob_bytes(&b"{}"[..], None)
        .await
        .expect("config upload");
    let manifest = oci_manifest(&config, &[]);
    let set = content
        .set_manifest(&manifest, tagged(tag))
        .await
        .expect("set manifest");
    (manifest, set.digest)
}

// ---------------------------------------------------------------------------------------------
// Results.

/// Collects every item of a pager.
pub async fn collect<P>(pager: Pager<P>) -> azure_core::Result<Vec<P::Item>>
where
    P: Page + serde::de::DeserializeOwned + Send + 'static,
    P::Item: Send + 'static,
    P::IntoIter: Send + 'static,
{
    pager.try_collect().await
}

/// Every item of a listing that must start and finish without error; panics otherwise.
pub async fn items<P>(pager: azure_core::Result<Pager<P>>) -> Vec<P::Item>
where
    P: Page + serde::de::DeserializeOwned + Send + 'static,
    P::Item: Send + 'static,
    P::IntoIter: Send + 'static,
{
    collect(pager.expect("listing starts"))
        .await
        .expect("listing completes")
}

/// The model of a call that must succeed (`call.await?.into_model()?`); panics otherwise.
pub async fn model<T, F>(call: impl Future<Output = azure_core::Result<Response<T, F>>>) -> T
where
    T: DeserializeWith<F>,
    F: Format,
{
    call.await
        .expect("request succeeds")
        .into_model()
        .expect("model reads")
}

/// The error of a call that must fail; panics if it succeeds.
pub async fn error<T, E>(call: impl Future<Output = Result<T, E>>) -> E {
    match call.await {
        Ok(_) => panic!("the call succeeded"),
        Err(e) => e,
    }
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
    invalid_argument(error) == Some(argument)
}

/// The argument an [`InvalidArgument`] error names, if it is one.
pub fn invalid_argument(error: &azure_core::Error) -> Option<&'static str> {
    error.downcast_ref::<InvalidArgument>().map(|a| a.argument)
}

/// Asserts an HTTP error with this status and ACR code.
#[track_caller]
pub fn assert_http_error(error: &azure_core::Error, status: u16, code: Option<&str>) {
    assert_eq!(error.http_status().map(u16::from), Some(status), "{error}");
    assert_eq!(azure_containerregistry::error_code(error), code, "{error}");
}

/// Whether the error is a 404.
pub fn is_not_found(error: &azure_core::Error) -> bool {
    error.http_status() == Some(azure_core::http::StatusCode::NotFound)
}

/// The downcast digest mismatch of an error, if it is one.
pub fn mismatch(e: &azure_core::Error) -> Option<&azure_containerregistry::DigestMismatch> {
    e.downcast_ref::<azure_containerregistry::DigestMismatch>()
}

/// The whole blob, downloaded (sequentially) and verified; panics on any error.
pub async fn download_all(content: &ContainerRegistryContentClient, digest: &str) -> bytes::Bytes {
    content
        .download_blob(digest, None)
        .await
        .expect("download starts")
        .collect_bytes()
        .await
        .expect("download completes")
}

// ---------------------------------------------------------------------------------------------
// Writeable properties: one flag set, the others left alone.

/// One of the four flags of the writeable properties of repositories, manifests and tags.
#[derive(Debug, Clone, Copy)]
pub enum Flag {
    Delete,
    Write,
    Read,
    List,
}

macro_rules! with_flag {
    ($name:ident, $ty:ty) => {
        /// Properties with only `flag` set, to `value`.
        pub fn $name(flag: Flag, value: bool) -> $ty {
            let mut p = <$ty>::default();
            *match flag {
                Flag::Delete => &mut p.can_delete,
                Flag::Write => &mut p.can_write,
                Flag::Read => &mut p.can_read,
                Flag::List => &mut p.can_list,
            } = Some(value);
            p
        }
    };
}

with_flag!(repo_flag, RepositoryWriteableProperties);
with_flag!(manifest_flag, ManifestWriteableProperties);
with_flag!(tag_flag, TagWriteableProperties);

/// All four flags set to `value`.
pub fn all_flags(value: bool) -> RepositoryWriteableProperties {
    RepositoryWriteableProperties {
        can_delete: Some(value),
        can_write: Some(value),
        can_read: Some(value),
        can_list: Some(value),
    }
}

// ---------------------------------------------------------------------------------------------
// Multi-platform images.

/// One image of an index pushed by [`push_index`].
pub struct Child {
    /// Its platform.
    pub platform: Platform,
    /// Its manifest's digest.
    pub digest: String,
    /// Its blobs: the config, then the layers.
    pub blobs: Vec<String>,
}

/// Pushes an image per platform (a config, the layer they all share when `shared_layer`, and
/// a layer of its own) and an OCI index of them under `tag`; with `shared_layer` the index
/// ends with an attestation entry as buildx adds (never chosen for a platform). Returns the
/// index digest and the children.
pub async fn push_index(
    content: &ContainerRegistryContentClient,
    tag: &str,
    platforms: &[&str],
    shared_layer: bool,
) -> (String, Vec<Child>) {
    let shared = match shared_layer {
        true => Some(upload(content, vec![7u8; 100_000]).await),
        false => None,
    };
    let mut children = Vec::new();
    let mut index = OciImageIndex::default();
    for platform in platforms {
        let platform: Platform = platform.parse().expect("platform");
        let config = format!(
            r#"{{"architecture":"{}","os":"{}","rootfs":{{"type":"layers","diff_ids":[]}}}}"#,
            platform.architecture, platform.os
        );
        let config = upload(content, config.into_bytes()).await;
        let own = upload(
            content,
            format!("layer {platform}").repeat(20_000).into_bytes(),
        )
        .await;
        let layers: Vec<&UploadBlobResult> = shared.iter().chain([&own]).collect();
        let manifest = oci_manifest(&config, &layers);
        let size = serde_json::to_vec(&manifest).expect("json").len() as u64;
        let set = content.set_manifest(&manifest, None).await.expect("child");
        index.manifests.push(OciDescriptor {
            platform: Some(platform.clone()),
            ..OciDescriptor::new(media_types::OCI_MANIFEST, set.digest.clone(), size)
        });
        let blobs = std::iter::once(&config).chain(layers.iter().copied());
        children.push(Child {
            platform,
            digest: set.digest,
            blobs: blobs.map(|b| b.digest.clone()).collect(),
        });
    }
    if shared_layer {
        let annotation = ("vnd.docker.reference.type", "attestation-manifest");
        index.manifests.push(OciDescriptor {
            platform: Some(Platform::new("unknown", "unknown")),
            annotations: Some(
                [annotation]
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            ..index.manifests[0].clone()
        });
    }
    let set = content
        .set_manifest(&index, tagged(tag))
        .await
        .expect("index");
    (set.digest, children)
}

/// Uploads `data` as a blob.
async fn upload(content: &ContainerRegistryContentClient, data: Vec<u8>) -> UploadBlobResult {
    content.upload_blob_bytes(data, None).await.expect("blob")
}
