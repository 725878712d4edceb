//! [`ContainerRepository`]: one repository's properties, manifests and deletion.

use std::sync::Arc;

use azure_core::http::pager::PagerOptions;
use azure_core::http::{NoFormat, Pager, Response};
use url::Url;

use crate::models::{
    ArtifactManifestOrder, ManifestPropertiesPage, RepositoryProperties,
    RepositoryWriteableProperties, TagPropertiesPage,
};
use crate::operation::traced;
use crate::paging::{link_listing, listing_page_size};
use crate::pipeline::Pipeline;
use crate::reference::validate_repository_name;
use crate::response::{delete_result, model_result};
use crate::{DeleteRepositoryOptions, ListTagPropertiesOptions, RegistryArtifact};

crate::operation::context_options! {
    /// Options for [`ContainerRepository::get_properties`].
    GetRepositoryPropertiesOptions;
    /// Options for [`ContainerRepository::update_properties`].
    UpdateRepositoryPropertiesOptions;
}

/// Options for [`ContainerRepository::list_manifest_properties`].
#[derive(Clone, Debug, Default)]
pub struct ListManifestPropertiesOptions<'a> {
    /// The order of the manifests (default: the registry's, by digest).
    pub order_by: Option<ArtifactManifestOrder>,
    /// Manifests per page (`n`); overrides
    /// [`ContainerRegistryClientOptions::page_size`](crate::ContainerRegistryClientOptions::page_size).
    pub page_size: Option<u32>,
    /// The context of the requests, and the continuation to resume a listing from.
    pub method_options: PagerOptions<'a>,
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
    /// The generated REST client, behind the registry's pipeline.
    fn rest(&self) -> &azure_containerregistry_rest::Client {
        self.pipeline.rest()
    }

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

    /// The repository's properties (`GET /acr/v1/{name}`); `into_model()` reads them. An
    /// unknown repository fails with 404 `NAME_UNKNOWN`.
    pub async fn get_properties(
        &self,
        options: Option<GetRepositoryPropertiesOptions<'_>>,
    ) -> azure_core::Result<Response<RepositoryProperties>> {
        traced!(
            "ContainerRepository.get_properties",
            &self.name,
            &options,
            async {
                validate_repository_name(&self.name)?;
                model_result(self.rest().get_properties(&self.name).await)
            }
        )
        .await
    }

    /// Changes the repository's attributes that are `Some` in `value`
    /// (`PATCH /acr/v1/{name}`); the response holds the properties after the change.
    pub async fn update_properties(
        &self,
        value: RepositoryWriteableProperties,
        options: Option<UpdateRepositoryPropertiesOptions<'_>>,
    ) -> azure_core::Result<Response<RepositoryProperties>> {
        traced!(
            "ContainerRepository.update_properties",
            &self.name,
            &options,
            async {
                validate_repository_name(&self.name)?;
                let body = value.to_wire();
                model_result(self.rest().update_properties(&self.name, &body).await)
            }
        )
        .await
    }

    /// Deletes the repository with all its manifests and tags (`DELETE /acr/v1/{name}`). A
    /// repository that does not exist is not an error (the response is the registry's 404). A
    /// locked repository (or one holding a locked tag or manifest) fails with the registry's
    /// error, e.g. 405 `REGISTRY_DISALLOWED_OPERATION`.
    pub async fn delete(
        &self,
        options: Option<DeleteRepositoryOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        traced!("ContainerRepository.delete", &self.name, &options, async {
            validate_repository_name(&self.name)?;
            delete_result(self.rest().delete_repository(&self.name).await)
        })
        .await
    }

    /// The properties of the repository's manifests, page by page
    /// (`GET /acr/v1/{name}/_manifests`, then each `Link` as given). A listing resumes where
    /// another stopped from that pager's continuation, in
    /// [`method_options`](ListManifestPropertiesOptions::method_options).
    pub fn list_manifest_properties(
        &self,
        options: Option<ListManifestPropertiesOptions<'_>>,
    ) -> azure_core::Result<Pager<ManifestPropertiesPage>> {
        let options = options.unwrap_or_default();
        validate_repository_name(&self.name)?;
        let n = listing_page_size(&self.pipeline, options.page_size)?;
        let order = options.order_by.unwrap_or_default().to_wire();
        Ok(link_listing!(
            "ContainerRepository.list_manifest_properties",
            self.pipeline,
            "get_manifests",
            self.name,
            options.method_options,
            |rest, name| rest.get_manifests(&name, None, n, order)
        ))
    }

    /// The properties of every tag of the repository, page by page
    /// (`GET /acr/v1/{name}/_tags`, then each `Link` as given), ordered by
    /// [`order_by`](ListTagPropertiesOptions::order_by) (default: the registry's, by name). For
    /// the tags of one manifest only, see
    /// [`RegistryArtifact::list_tag_properties`](crate::RegistryArtifact::list_tag_properties).
    /// A listing resumes where another stopped from that pager's continuation, in
    /// [`method_options`](ListTagPropertiesOptions::method_options).
    ///
    /// ```no_run
    /// # async fn demo() -> azure_core::Result<()> {
    /// use azure_containerregistry::{ArtifactTagOrder, ContainerRegistryClient, ListTagPropertiesOptions};
    /// use futures::TryStreamExt;
    /// let client = ContainerRegistryClient::new("https://myregistry.azurecr.io", None, None)?;
    /// let options = ListTagPropertiesOptions {
    ///     order_by: Some(ArtifactTagOrder::LastUpdatedOnDescending),
    ///     ..Default::default()
    /// };
    /// let mut tags = client.repository("library/hello-world").list_tag_properties(Some(options))?;
    /// while let Some(tag) = tags.try_next().await? {
    ///     println!("{} -> {}", tag.name, tag.digest);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list_tag_properties(
        &self,
        options: Option<ListTagPropertiesOptions<'_>>,
    ) -> azure_core::Result<Pager<TagPropertiesPage>> {
        let options = options.unwrap_or_default();
        validate_repository_name(&self.name)?;
        let n = listing_page_size(&self.pipeline, options.page_size)?;
        let order = options.order_by.unwrap_or_default().to_wire();
        Ok(link_listing!(
            "ContainerRepository.list_tag_properties",
            self.pipeline,
            "get_tags",
            self.name,
            options.method_options,
            |rest, name| rest.get_tags(&name, None, None, n, order)
        ))
    }
}
