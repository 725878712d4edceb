//! [`ContainerRepository`]: one repository's properties, manifests and deletion.

use std::sync::Arc;

use azure_core::http::Pager;
use url::Url;

use crate::error::rest_error;
use crate::models::{
    ArtifactManifestOrder, ManifestPropertiesPage, RepositoryProperties,
    RepositoryWriteableProperties,
};
use crate::operation::{ok_if_not_found, traced};
use crate::paging::{link_pager, raw_page, wire_page_size};
use crate::pipeline::Pipeline;
use crate::reference::validate_repository_name;
use crate::{DeleteRepositoryOptions, RegistryArtifact};

/// Options for [`ContainerRepository::get_properties`].
#[derive(Clone, Debug, Default)]
pub struct GetRepositoryPropertiesOptions {}

/// Options for [`ContainerRepository::update_properties`].
#[derive(Clone, Debug, Default)]
pub struct UpdateRepositoryPropertiesOptions {}

/// Options for [`ContainerRepository::list_manifest_properties`].
#[derive(Clone, Debug, Default)]
pub struct ListManifestPropertiesOptions {
    /// The order of the manifests (default: the registry's, by digest).
    pub order_by: Option<ArtifactManifestOrder>,
    /// Manifests per page (`n`); overrides
    /// [`ContainerRegistryClientOptions::page_size`](crate::ContainerRegistryClientOptions::page_size).
    pub page_size: Option<u32>,
}

/// A client for one repository of a registry, from
/// [`ContainerRegistryClient::repository`](crate::ContainerRegistryClient::repository).
///
/// The repository name is checked by each operation (an invalid name fails with
/// [`InvalidArgument`](crate::InvalidArgument) before any request is sent).
#[derive(Clone, Debug)]
pub struct ContainerRepository {
    pipeline: Arc<Pipeline>,
    name: String,
}

impl ContainerRepository {
    pub(crate) fn new(pipeline: Arc<Pipeline>, name: &str) -> Self {
        Self {
            pipeline,
            name: name.to_string(),
        }
    }

    /// The repository name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registry endpoint.
    pub fn registry_endpoint(&self) -> &Url {
        self.pipeline.endpoint()
    }

    /// A client for an artifact of this repository, by tag or digest.
    pub fn artifact(&self, tag_or_digest: &str) -> RegistryArtifact {
        RegistryArtifact::new(self.pipeline.clone(), &self.name, tag_or_digest)
    }

    /// The repository's properties (`GET /acr/v1/{name}`). An unknown repository fails with
    /// 404 `NAME_UNKNOWN`.
    pub async fn get_properties(
        &self,
        options: Option<GetRepositoryPropertiesOptions>,
    ) -> azure_core::Result<RepositoryProperties> {
        let _ = options;
        traced("get_repository_properties", &self.name, async {
            validate_repository_name(&self.name)?;
            let response = self
                .pipeline
                .rest()
                .get_properties(&self.name)
                .await
                .map_err(rest_error)?;
            RepositoryProperties::from_wire(response.into_inner())
        })
        .await
    }

    /// Changes the repository's attributes that are `Some` in `value`
    /// (`PATCH /acr/v1/{name}`) and returns the properties after the change.
    pub async fn update_properties(
        &self,
        value: RepositoryWriteableProperties,
        options: Option<UpdateRepositoryPropertiesOptions>,
    ) -> azure_core::Result<RepositoryProperties> {
        let _ = options;
        traced("update_repository_properties", &self.name, async {
            validate_repository_name(&self.name)?;
            let body = value.to_wire();
            let response = self
                .pipeline
                .rest()
                .update_properties(&self.name, &body)
                .await
                .map_err(rest_error)?;
            RepositoryProperties::from_wire(response.into_inner())
        })
        .await
    }

    /// Deletes the repository with all its manifests and tags (`DELETE /acr/v1/{name}`). A
    /// repository that does not exist is not an error. A locked repository (or one holding a
    /// locked tag or manifest) fails with the registry's error, e.g. 405
    /// `REGISTRY_DISALLOWED_OPERATION`.
    pub async fn delete(&self, options: Option<DeleteRepositoryOptions>) -> azure_core::Result<()> {
        let _ = options;
        traced("delete_repository", &self.name, async {
            validate_repository_name(&self.name)?;
            let result = self
                .pipeline
                .rest()
                .delete_repository(&self.name)
                .await
                .map(|_| ())
                .map_err(rest_error);
            ok_if_not_found(result)
        })
        .await
    }

    /// The properties of the repository's manifests, page by page
    /// (`GET /acr/v1/{name}/_manifests`, then each `Link` as given).
    pub fn list_manifest_properties(
        &self,
        options: Option<ListManifestPropertiesOptions>,
    ) -> Pager<ManifestPropertiesPage> {
        let options = options.unwrap_or_default();
        let page_size = options.page_size.or(self.pipeline.options().page_size);
        let order = options.order_by.unwrap_or_default().to_wire();
        let pipeline = self.pipeline.clone();
        let name = self.name.clone();
        link_pager::<ManifestPropertiesPage, _>(self.pipeline.clone(), "get_manifests", move || {
            let pipeline = pipeline.clone();
            let name = name.clone();
            Box::pin(async move {
                traced("list_manifest_properties", &name, async {
                    validate_repository_name(&name)?;
                    let n = wire_page_size(page_size)?;
                    let response = pipeline
                        .rest()
                        .get_manifests(&name, None, n, order)
                        .await
                        .map_err(rest_error)?;
                    raw_page(response)
                })
                .await
            })
        })
    }
}
