//! [`RegistryArtifact`]: one artifact (manifest) of a repository, by tag or digest: its
//! properties, its tags and deletion.

use std::sync::{Arc, OnceLock};

use azure_core::error::ErrorKind;
use azure_core::http::pager::{PagerOptions, PagerState};
use azure_core::http::{NoFormat, Pager, Response, StatusCode};

use crate::error::rest_error;
use crate::models::{
    ArtifactManifestProperties, ArtifactTagOrder, ArtifactTagProperties,
    ManifestWriteableProperties, TagPropertiesPage, TagWriteableProperties,
};
use crate::operation::traced;
use crate::paging::{fetch, listing_page_size, next_link, page_result, raw_page};
use crate::pipeline::Pipeline;
use crate::reference::{validate_repository_name, validate_tag, Reference};
use crate::response::{delete_result, error_response, model_result};

crate::operation::context_options! {
    /// Options for [`RegistryArtifact::get_manifest_properties`].
    GetManifestPropertiesOptions;
    /// Options for [`RegistryArtifact::update_manifest_properties`].
    UpdateManifestPropertiesOptions;
    /// Options for [`RegistryArtifact::get_tag_properties`].
    GetTagPropertiesOptions;
    /// Options for [`RegistryArtifact::update_tag_properties`].
    UpdateTagPropertiesOptions;
    /// Options for [`RegistryArtifact::delete_tag`].
    DeleteTagOptions;
    /// Options for [`RegistryArtifact::delete`].
    DeleteArtifactOptions;
}

/// Options for [`RegistryArtifact::list_tag_properties`] and
/// [`ContainerRepository::list_tag_properties`](crate::ContainerRepository::list_tag_properties).
#[derive(Clone, Debug, Default)]
pub struct ListTagPropertiesOptions<'a> {
    /// The order of the tags (default: the registry's, by name).
    pub order_by: Option<ArtifactTagOrder>,
    /// Tags per page (`n`); overrides
    /// [`ContainerRegistryClientOptions::page_size`](crate::ContainerRegistryClientOptions::page_size).
    pub page_size: Option<u32>,
    /// The context of the requests, and the continuation to resume a listing from.
    pub method_options: PagerOptions<'a>,
}

/// A client for one artifact (manifest) of a repository, named by tag or digest, from
/// [`ContainerRegistryClient::artifact`](crate::ContainerRegistryClient::artifact) or
/// [`ContainerRepository::artifact`](crate::ContainerRepository::artifact).
///
/// Operations on the manifest need its digest: for an artifact named by tag they first read
/// the tag (`GET /acr/v1/{name}/_tags/{tag}`) to find it, each time (tags move). The name and
/// reference are checked by each operation, before any request.
#[derive(Clone, Debug)]
pub struct RegistryArtifact {
    pipeline: Arc<Pipeline>,
    repository: String,
    reference: String,
}

impl RegistryArtifact {
    /// The generated REST client, behind the registry's pipeline.
    fn rest(&self) -> &azure_containerregistry_rest::Client {
        self.pipeline.rest()
    }

    pub(crate) fn new(pipeline: Arc<Pipeline>, repository: &str, reference: &str) -> Self {
        Self {
            pipeline,
            repository: repository.to_string(),
            reference: reference.to_string(),
        }
    }

    /// The repository name.
    pub fn repository_name(&self) -> &str {
        &self.repository
    }

    /// The registry endpoint.
    pub fn registry_endpoint(&self) -> &url::Url {
        self.pipeline.endpoint()
    }

    /// The tag or digest the artifact was named by.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// `<login server>/<repository>:<tag>` or `<login server>/<repository>@<digest>`, e.g.
    /// `myregistry.azurecr.io/library/hello-world:latest`.
    pub fn fully_qualified_reference(&self) -> String {
        let separator = if self.reference.contains(':') {
            '@'
        } else {
            ':'
        };
        format!(
            "{}/{}{separator}{}",
            self.pipeline.login_server(),
            self.repository,
            self.reference
        )
    }

    fn check(&self) -> azure_core::Result<Reference> {
        validate_repository_name(&self.repository)?;
        Reference::parse(&self.reference)
    }

    /// Checks the repository name and `tag`, before a request about the tag.
    fn check_tag(&self, tag: &str) -> azure_core::Result<()> {
        validate_repository_name(&self.repository)?;
        validate_tag(tag)
    }

    /// The artifact's digest: the reference itself, or what its tag points at.
    async fn digest(&self) -> azure_core::Result<String> {
        match self.check()? {
            Reference::Digest(digest) => Ok(digest),
            Reference::Tag(tag) => {
                let response = self
                    .rest()
                    .get_tag_properties(&self.repository, &tag)
                    .await
                    .map_err(rest_error)?;
                Ok(response.into_inner().tag.digest)
            }
        }
    }

    /// The manifest's properties (`GET /acr/v1/{name}/_manifests/{digest}`); `into_model()`
    /// reads them. An unknown digest fails with 404 `MANIFEST_UNKNOWN`, an unknown tag with 404
    /// `TAG_UNKNOWN`.
    pub async fn get_manifest_properties(
        &self,
        options: Option<GetManifestPropertiesOptions<'_>>,
    ) -> azure_core::Result<Response<ArtifactManifestProperties>> {
        traced!(
            "RegistryArtifact.get_manifest_properties",
            &self.repository,
            &options,
            async {
                let digest = self.digest().await?;
                model_result(
                    self.rest()
                        .get_manifest_properties(&self.repository, &digest)
                        .await,
                )
            }
        )
        .await
    }

    /// Changes the manifest's attributes that are `Some` in `value`
    /// (`PATCH /acr/v1/{name}/_manifests/{digest}`); the response holds its properties after
    /// the change.
    pub async fn update_manifest_properties(
        &self,
        value: ManifestWriteableProperties,
        options: Option<UpdateManifestPropertiesOptions<'_>>,
    ) -> azure_core::Result<Response<ArtifactManifestProperties>> {
        traced!(
            "RegistryArtifact.update_manifest_properties",
            &self.repository,
            &options,
            async {
                let digest = self.digest().await?;
                let body = value.to_wire();
                model_result(
                    self.rest()
                        .update_manifest_properties(&self.repository, &digest, &body)
                        .await,
                )
            }
        )
        .await
    }

    /// The properties of one tag of the repository (`GET /acr/v1/{name}/_tags/{tag}`). An
    /// unknown tag fails with 404 `TAG_UNKNOWN`.
    pub async fn get_tag_properties(
        &self,
        tag: &str,
        options: Option<GetTagPropertiesOptions<'_>>,
    ) -> azure_core::Result<Response<ArtifactTagProperties>> {
        traced!(
            "RegistryArtifact.get_tag_properties",
            &self.repository,
            &options,
            async {
                self.check_tag(tag)?;
                model_result(self.rest().get_tag_properties(&self.repository, tag).await)
            }
        )
        .await
    }

    /// Changes a tag's attributes that are `Some` in `value`
    /// (`PATCH /acr/v1/{name}/_tags/{tag}`); the response holds its properties after the
    /// change.
    pub async fn update_tag_properties(
        &self,
        tag: &str,
        value: TagWriteableProperties,
        options: Option<UpdateTagPropertiesOptions<'_>>,
    ) -> azure_core::Result<Response<ArtifactTagProperties>> {
        traced!(
            "RegistryArtifact.update_tag_properties",
            &self.repository,
            &options,
            async {
                self.check_tag(tag)?;
                let body = value.to_wire();
                model_result(
                    self.rest()
                        .update_tag_attributes(&self.repository, tag, &body)
                        .await,
                )
            }
        )
        .await
    }

    /// Deletes a tag (`DELETE /acr/v1/{name}/_tags/{tag}`); the manifest stays. A tag that does
    /// not exist is not an error. A locked tag fails with the registry's error.
    pub async fn delete_tag(
        &self,
        tag: &str,
        options: Option<DeleteTagOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        traced!(
            "RegistryArtifact.delete_tag",
            &self.repository,
            &options,
            async {
                self.check_tag(tag)?;
                delete_result(self.rest().delete_tag(&self.repository, tag).await)
            }
        )
        .await
    }

    /// Deletes the manifest and every tag pointing at it
    /// (`DELETE /v2/{name}/manifests/{digest}`, after resolving a tag). An artifact that is
    /// already gone (unknown digest, tag or repository) is not an error.
    pub async fn delete(
        &self,
        options: Option<DeleteArtifactOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        traced!(
            "RegistryArtifact.delete",
            &self.repository,
            &options,
            async {
                self.check()?;
                let digest = match self.digest().await {
                    Ok(digest) => digest,
                    Err(error) if error.http_status() == Some(StatusCode::NotFound) => {
                        tracing::debug!(
                            code = crate::error_code(&error),
                            "the tag is gone; nothing to delete"
                        );
                        return Ok(error_response(&error));
                    }
                    Err(error) => return Err(error),
                };
                delete_result(self.rest().delete_manifest(&self.repository, &digest).await)
            }
        )
        .await
    }

    /// The properties of the tags pointing at this artifact's manifest, page by page
    /// (`GET /acr/v1/{name}/_tags?digest=…`, then each `Link` as given).
    ///
    /// ACR's `Link` does not carry the `digest` filter (docs/wire-facts.md#paging), so a follow-up page may
    /// hold tags of other manifests: those are dropped here, and a page may come out empty.
    ///
    /// A listing resumes where another stopped from that pager's continuation, in
    /// [`method_options`](ListTagPropertiesOptions::method_options).
    pub fn list_tag_properties(
        &self,
        options: Option<ListTagPropertiesOptions<'_>>,
    ) -> azure_core::Result<Pager<TagPropertiesPage>> {
        let options = options.unwrap_or_default();
        self.check()?;
        let n = listing_page_size(&self.pipeline, options.page_size)?;
        let order = options.order_by.unwrap_or_default().to_wire();
        let artifact = self.clone();
        // The digest the first page resolved, for filtering the pages after it.
        let resolved: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
        Ok(Pager::new(
            move |state: PagerState, options: PagerOptions<'static>| {
                let artifact = artifact.clone();
                let resolved = resolved.clone();
                Box::pin(async move {
                    let context = options.context;
                    let (page, digest) = match state {
                        PagerState::Initial => {
                            traced!(
                                "RegistryArtifact.list_tag_properties",
                                &artifact.repository,
                                &context,
                                async {
                                    let digest = artifact.digest().await?;
                                    let response = artifact
                                        .rest()
                                        .get_tags(
                                            &artifact.repository,
                                            Some(&digest),
                                            None,
                                            n,
                                            order,
                                        )
                                        .await
                                        .map_err(rest_error)?;
                                    let _ = resolved.set(digest.clone());
                                    Ok((raw_page(response)?, digest))
                                }
                            )
                            .await?
                        }
                        PagerState::More(continuation) => {
                            // The Link is followed as given (its `last` cursor is opaque). A
                            // listing resumed from a continuation resolves the digest first.
                            let digest = match resolved.get() {
                                Some(digest) => digest.clone(),
                                None => {
                                    let digest = crate::operation::run(
                                        tracing::Span::none(),
                                        &context,
                                        artifact.digest(),
                                    )
                                    .await?;
                                    resolved.get_or_init(|| digest).clone()
                                }
                            };
                            let url = artifact.pipeline.resolve(continuation.as_ref())?;
                            let page = fetch(&artifact.pipeline, url, "get_tags", &context).await?;
                            (page, digest)
                        }
                    };
                    let next = next_link(&page.headers)?;
                    let body = only_tags_of(&page.body, &digest)?;
                    Ok(page_result::<TagPropertiesPage>(body, &page.headers, next))
                })
            },
            Some(crate::paging::owned(options.method_options)),
        ))
    }
}

/// A tag page's body with only the tags of `digest`.
fn only_tags_of(body: &[u8], digest: &str) -> azure_core::Result<Vec<u8>> {
    let conversion = |e: serde_json::Error| {
        azure_core::Error::with_message(
            ErrorKind::DataConversion,
            format!("the registry's tag page could not be read: {e}"),
        )
    };
    let mut page: azure_containerregistry_rest::types::TagList =
        serde_json::from_slice(body).map_err(conversion)?;
    page.tags.retain(|t| t.digest == digest);
    serde_json::to_vec(&page).map_err(conversion)
}
