//! Azure Container Registry client library for Rust.
//!
//! - [`ContainerRegistryClient`], [`ContainerRepository`] and [`RegistryArtifact`]: repositories,
//!   tags and manifest metadata (`/acr/v1`).
//! - [`ContainerRegistryContentClient`]: blobs and manifests (`/v2`), digest-verified.
//! - Whole images: [`ImageReference`] (`registry/repository:tag@digest`), the manifest of a
//!   platform in a multi-architecture index ([`choose_platform`],
//!   [`ContainerRegistryContentClient::get_manifest_for_platform`]), [`copy_image`] between
//!   repositories and registries, and OCI image layouts ([`pull_image`], [`push_image`]).
//!
//! Authentication follows ACR's token exchange on top of any `azure_core`
//! [`TokenCredential`](azure_core::credentials::TokenCredential) (for example from
//! `azure_identity`), or anonymous access when the credential is `None`. Access tokens are
//! cached per scope and attached up front, so a warm client makes no 401 round trips.

#![deny(missing_docs)]

/// The crate's README: its example compiles as a doctest (the repository README shows the same
/// snippet; an xtask test keeps the two equal).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod audience;
mod auth;
mod content;
mod credential;
pub mod error;
mod http_body;
mod image;
mod operation;
mod options;
mod paging;
mod pipeline;
mod policies;
mod reference;
mod response;
mod retry;
mod transport;

pub use audience::ContainerRegistryAudience;
pub use credential::UsernamePasswordCredential;
pub use error::{
    error_code, DigestMismatch, InvalidArgument, NoMatchingPlatform, PagingLoop, UnconfirmedDigest,
};
pub use image::{
    choose_platform, copy_image, pull_image, push_image, CopyImageOptions, CopyImageResult,
    ImageReference, PullImageOptions, PullImageResult, PushImageOptions, PushImageResult,
    DEFAULT_COPY_CONCURRENCY, DEFAULT_PULL_CONCURRENCY, REF_NAME_ANNOTATION,
};
pub use options::{
    ContainerRegistryClientOptions, DEFAULT_API_VERSION, DEFAULT_BODY_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RETRY_AFTER, DEFAULT_READ_TIMEOUT, DEFAULT_RESUME_DELAY,
    DEFAULT_TIMEOUT,
};
pub use retry::DEFAULT_MAX_RETRIES;
mod artifact;
pub mod models;
mod registry_client;
mod repository;
mod token_api;

pub use artifact::{
    DeleteArtifactOptions, DeleteTagOptions, GetManifestPropertiesOptions, GetTagPropertiesOptions,
    ListTagPropertiesOptions, RegistryArtifact, UpdateManifestPropertiesOptions,
    UpdateTagPropertiesOptions,
};
pub use content::{
    media_types, BlobUpload, CancelUploadOptions, CompleteUploadOptions,
    ContainerRegistryContentClient, DeleteBlobOptions, DeleteManifestOptions, DockerManifestList,
    DockerManifestV2, DownloadBlobOptions, DownloadBlobResult, DownloadBlobStream, ExtraFields,
    GetManifestOptions, GetManifestResult, GetUploadStatusOptions, ListReferrersOptions, Manifest,
    ManifestKind, OciDescriptor, OciImageIndex, OciImageManifest, Platform, ProgressCallback,
    ReferrersPage, SetManifestOptions, SetManifestResult, StartUploadOptions, UploadBlobOptions,
    UploadBlobResult, UploadChunkOptions, UploadChunkResult, UploadStatus, DEFAULT_CHUNK_SIZE,
    EXISTENCE_CHECK_MIN_SIZE, MAX_MANIFEST_SIZE, PREHASH_OVERLAP_MIN_SIZE, SINGLE_REQUEST_MAX_SIZE,
};
pub use models::{
    ArtifactArchitecture, ArtifactManifestOrder, ArtifactManifestPlatform,
    ArtifactManifestProperties, ArtifactOperatingSystem, ArtifactTagOrder, ArtifactTagProperties,
    ManifestPropertiesPage, ManifestWriteableProperties, RepositoryNamesPage, RepositoryProperties,
    RepositoryWriteableProperties, TagPropertiesPage, TagWriteableProperties,
};
pub use registry_client::{
    ContainerRegistryClient, DeleteRepositoryOptions,
    ExchangeAadAccessTokenForAcrRefreshTokenOptions,
    ExchangeAcrRefreshTokenForAcrAccessTokenOptions, GetAcrAccessTokenOptions,
    GetAcrRefreshTokenOptions, ListRepositoryNamesOptions,
};
pub use repository::{
    ContainerRepository, GetRepositoryPropertiesOptions, ListManifestPropertiesOptions,
    UpdateRepositoryPropertiesOptions,
};
pub use token_api::{AcrAccessToken, AcrRefreshToken};

/// Entry points for the fuzz targets in `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::auth::scope::{canonical, predict_scope};
    pub use crate::auth::Challenge;
    pub use crate::reference::{
        is_loopback, parse_endpoint, sha256_digest, validate_digest, validate_repository_name,
        validate_tag, Reference, MAX_REPOSITORY_NAME,
    };

    /// Parses a `Link` header value, as the pagers do.
    pub fn next_link(value: &[u8]) -> Result<Option<String>, String> {
        let mut headers = reqwest::header::HeaderMap::new();
        match reqwest::header::HeaderValue::from_bytes(value) {
            Ok(v) => {
                headers.insert(reqwest::header::LINK, v);
                crate::paging::next_link(&headers).map_err(|e| e.to_string())
            }
            Err(_) => Ok(None),
        }
    }

    /// Reads an error body as the client does: the first error code and the error built from it.
    pub fn error_body(status: u16, body: &[u8]) -> (Option<String>, String) {
        let code = crate::error::first_error_code(body);
        let error = crate::error::http_error(status, &reqwest::header::HeaderMap::new(), body);
        (code, error.to_string())
    }

    /// Reads the `exp` claim of a token, as the token cache does.
    pub fn token_expiry(token: &str) -> Option<i64> {
        crate::auth::jwt::expiry(token)
    }
}
