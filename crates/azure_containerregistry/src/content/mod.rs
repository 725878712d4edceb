//! [`ContainerRegistryContentClient`]: blobs and manifests of one repository (`/v2`), with every
//! byte checked against its digest.

mod download;
mod file_writer;
mod manifest_models;
mod manifests;
pub(crate) mod progress;
mod referrers;
mod upload;
mod verified_stream;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::{NoFormat, Response, StatusCode};

use crate::auth::Login;
use crate::error::{invalid_argument, rest_error};
use crate::operation::traced;
use crate::pipeline::Pipeline;
use crate::reference::{validate_digest, validate_repository_name};
use crate::response::delete_result;
use crate::ContainerRegistryClientOptions;

pub(crate) use download::DEFAULT_RANGE_SIZE;
pub use download::{DownloadBlobOptions, DownloadBlobResult};
pub use manifest_models::{
    media_types, DockerManifestList, DockerManifestV2, ExtraFields, Manifest, ManifestKind,
    OciDescriptor, OciImageIndex, OciImageManifest, Platform,
};
pub use manifests::{
    GetManifestOptions, GetManifestResult, SetManifestOptions, SetManifestResult, MAX_MANIFEST_SIZE,
};
pub use progress::ProgressCallback;
pub use referrers::{ListReferrersOptions, ReferrersPage};
pub use upload::{
    BlobUpload, CancelUploadOptions, CompleteUploadOptions, GetUploadStatusOptions,
    StartUploadOptions, UploadBlobOptions, UploadBlobResult, UploadChunkOptions, UploadChunkResult,
    UploadStatus, DEFAULT_CHUNK_SIZE, EXISTENCE_CHECK_MIN_SIZE, PREHASH_OVERLAP_MIN_SIZE,
    SINGLE_REQUEST_MAX_SIZE,
};
pub use verified_stream::DownloadBlobStream;

/// Reads and writes the content of one repository: blobs (layers, configs) and manifests.
///
/// Uploads compute the sha256 while streaming and check the registry's answer; downloads are
/// verified against the digest asked for; manifests are checked against their digest. Cheap to
/// clone; clones share the connection pool and token cache.
///
/// ```no_run
/// # async fn demo() -> azure_core::Result<()> {
/// use azure_containerregistry::ContainerRegistryContentClient;
/// let content = ContainerRegistryContentClient::new("http://127.0.0.1:5000", "hello-world", None, None)?;
/// let blob = content.upload_blob(&b"hello"[..], None).await?;
/// assert!(content.blob_exists(&blob.digest).await?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ContainerRegistryContentClient {
    pipeline: Arc<Pipeline>,
    repository: Arc<str>,
}

crate::operation::context_options! {
    /// Options of [`ContainerRegistryContentClient::delete_blob`].
    DeleteBlobOptions;
    /// Options of [`ContainerRegistryContentClient::delete_manifest`].
    DeleteManifestOptions;
}

impl ContainerRegistryContentClient {
    /// The generated REST client, behind the registry's pipeline.
    fn rest(&self) -> &azure_containerregistry_rest::Client {
        self.pipeline.rest()
    }

    /// A client for `repository_name` in the registry at `endpoint` (`https://myregistry.azurecr.io`,
    /// or `http://127.0.0.1:port` for loopback registries). `credential: None` is anonymous.
    pub fn new(
        endpoint: &str,
        repository_name: &str,
        credential: Option<Arc<dyn TokenCredential>>,
        options: Option<ContainerRegistryClientOptions>,
    ) -> azure_core::Result<Self> {
        validate_repository_name(repository_name)?;
        let login = credential.map_or(Login::Anonymous, Login::Entra);
        let pipeline = Pipeline::new(endpoint, login, options)?;
        Ok(Self {
            pipeline,
            repository: Arc::from(repository_name),
        })
    }

    /// A client for `repository_name` that signs in with a username and password (an ACR
    /// admin user or repository-scoped token, or another registry's login, such as a
    /// `docker-registry` with htpasswd). The password goes only to the registry's own host.
    ///
    /// ```no_run
    /// # async fn demo() -> azure_core::Result<()> {
    /// use azure_containerregistry::{ContainerRegistryContentClient, UsernamePasswordCredential};
    /// let login = UsernamePasswordCredential::new("ci-token", std::env::var("ACR_TOKEN_PASSWORD").unwrap_or_default());
    /// let content = ContainerRegistryContentClient::with_username_password(
    ///     "https://myregistry.azurecr.io", "app", login, None)?;
    /// let manifest = content.get_manifest("latest", None).await?;
    /// # let _ = manifest; Ok(()) }
    /// ```
    pub fn with_username_password(
        endpoint: &str,
        repository_name: &str,
        credential: crate::UsernamePasswordCredential,
        options: Option<ContainerRegistryClientOptions>,
    ) -> azure_core::Result<Self> {
        validate_repository_name(repository_name)?;
        let pipeline = Pipeline::new(endpoint, Login::UsernamePassword(credential), options)?;
        Ok(Self {
            pipeline,
            repository: Arc::from(repository_name),
        })
    }

    /// A client for `repository_name` on an existing pipeline (shared connections and tokens).
    pub(crate) fn from_pipeline(
        pipeline: Arc<Pipeline>,
        repository_name: &str,
    ) -> azure_core::Result<Self> {
        validate_repository_name(repository_name)?;
        Ok(Self {
            pipeline,
            repository: Arc::from(repository_name),
        })
    }

    /// The registry endpoint.
    pub fn endpoint(&self) -> &url::Url {
        self.pipeline.endpoint()
    }

    /// The repository this client reads and writes.
    pub fn repository_name(&self) -> &str {
        &self.repository
    }

    /// Whether the repository has the blob (`HEAD`).
    pub async fn blob_exists(&self, digest: &str) -> azure_core::Result<bool> {
        validate_digest(digest)?;
        match self
            .rest()
            .check_blob_exists(&self.repository, digest, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = rest_error(e);
                if e.http_status() == Some(StatusCode::NotFound) {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Deletes a blob. Deleting a blob that does not exist succeeds (as in the JS SDK).
    pub async fn delete_blob(
        &self,
        digest: &str,
        options: Option<DeleteBlobOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        traced!(
            "ContainerRegistryContentClient.delete_blob",
            &self.repository,
            &options,
            async {
                validate_digest(digest)?;
                delete_result(self.rest().delete_blob(&self.repository, digest).await)
            }
        )
        .await
    }

    /// Deletes a manifest by digest (registries refuse deletion by tag: delete the tag with
    /// `ContainerRepository` instead). Deleting a manifest that does not exist succeeds.
    pub async fn delete_manifest(
        &self,
        digest: &str,
        options: Option<DeleteManifestOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        if !digest.contains(':') {
            return Err(invalid_argument(
                "digest",
                format!("{digest:?}: manifests are deleted by digest, not by tag"),
            ));
        }
        validate_digest(digest)?;
        traced!(
            "ContainerRegistryContentClient.delete_manifest",
            &self.repository,
            &options,
            async { delete_result(self.rest().delete_manifest(&self.repository, digest).await) }
        )
        .await
    }

    /// Links a blob that exists in repository `from_repository` of the same registry into this
    /// repository without transferring it. Returns `true` when the registry mounted it, `false`
    /// when it declined (ACR may; the upload session it opened instead is cancelled) — upload
    /// the blob then.
    pub async fn mount_blob(
        &self,
        digest: &str,
        from_repository: &str,
    ) -> azure_core::Result<bool> {
        validate_digest(digest)?;
        validate_repository_name(from_repository)?;
        let response = self
            .rest()
            .mount_blob(&self.repository, Some(from_repository), Some(digest))
            .await
            .map_err(rest_error)?;
        if response.status().as_u16() == 201 {
            return Ok(true);
        }
        if let Some(location) = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
        {
            // Best effort: the session would expire anyway.
            let _ = self.rest().cancel_upload(location).await;
        }
        Ok(false)
    }
}

impl ContainerRegistryContentClient {
    /// The wait before resume `n` (0-based) of an upload or download, from the client's
    /// [`resume_delay`](crate::ContainerRegistryClientOptions::resume_delay).
    pub(crate) fn retry_delay(&self, n: u32) -> std::time::Duration {
        crate::retry::Backoff {
            initial_delay: self.pipeline.options().resume_delay,
            max_delay: crate::retry::MAX_RESUME_DELAY,
        }
        .delay(n)
    }
}

/// The value of a response header as text.
pub(crate) fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// An incremental hash for a digest's algorithm (sha256 or sha512).
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// The hash of `digest`'s algorithm (sha256 unless it says sha512).
    pub(crate) fn for_digest(digest: &str) -> Self {
        use sha2::Digest as _;
        if digest.starts_with("sha512:") {
            Self::Sha512(sha2::Sha512::new())
        } else {
            Self::Sha256(sha2::Sha256::new())
        }
    }

    /// A sha256 hash.
    pub(crate) fn sha256() -> Self {
        use sha2::Digest as _;
        Self::Sha256(sha2::Sha256::new())
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        use sha2::Digest as _;
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    /// The digest, as `<algorithm>:<hex>`.
    pub(crate) fn finish(self) -> String {
        use sha2::Digest as _;
        match self {
            Self::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Self::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// The digest of `data` in `digest`'s algorithm.
pub(crate) fn digest_like(digest: &str, data: &[u8]) -> String {
    let mut h = Hasher::for_digest(digest);
    h.update(data);
    h.finish()
}
