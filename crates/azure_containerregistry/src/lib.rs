//! Azure Container Registry client library for Rust.
//!
//! - [`ContainerRegistryClient`], [`ContainerRepository`] and [`RegistryArtifact`]: repositories,
//!   tags and manifest metadata (`/acr/v1`).
//! - [`ContainerRegistryContentClient`]: blobs and manifests (`/v2`), digest-verified.
//!
//! Authentication follows ACR's token exchange on top of any `azure_core`
//! [`TokenCredential`](azure_core::credentials::TokenCredential) (for example from
//! `azure_identity`), or anonymous access when the credential is `None`. Access tokens are
//! cached per scope and attached up front, so a warm client makes no 401 round trips.

#![deny(missing_docs)]

mod audience;
pub mod auth;
pub mod error;
mod http_body;
mod options;
mod paging;
mod pipeline;
pub mod reference;

pub use audience::ContainerRegistryAudience;
pub use error::{error_code, DigestMismatch, InvalidArgument};
pub use options::{ContainerRegistryClientOptions, RetryOptions};
