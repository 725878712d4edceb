//! OCI 1.1 referrers: `GET /v2/<name>/referrers/<digest>`, with the tag-schema fallback
//! (`<alg>-<hex>` tag holding an image index) for registries that answer 404.

use azure_core::http::pager::{Page, PagerOptions, PagerState};
use azure_core::http::{Pager, StatusCode};
use serde::{Deserialize, Serialize};

use super::manifest_models::{media_types, OciDescriptor, OciImageIndex};
use super::manifests::{referrers_tag, GetManifestOptions};
use super::ContainerRegistryContentClient;
use crate::error::rest_error;
use crate::paging::{fetch, next_link, page_result};

/// Options of [`ContainerRegistryContentClient::list_referrers`].
#[derive(Clone, Debug, Default)]
pub struct ListReferrersOptions<'a> {
    /// Only referrers of this artifact type (filtered by the registry when it can, and by the
    /// client in any case).
    pub artifact_type: Option<String>,
    /// The context of the requests, and the continuation to resume a listing from.
    pub method_options: PagerOptions<'a>,
}

/// One page of referrers: descriptors of the manifests whose `subject` is the digest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferrersPage {
    /// The referrers' descriptors (media type, digest, size, artifact type, annotations).
    #[serde(default)]
    pub manifests: Vec<OciDescriptor>,
}

#[async_trait::async_trait]
impl Page for ReferrersPage {
    type Item = OciDescriptor;
    type IntoIter = std::vec::IntoIter<OciDescriptor>;

    async fn into_items(self) -> azure_core::Result<Self::IntoIter> {
        Ok(self.manifests.into_iter())
    }
}

impl ContainerRegistryContentClient {
    /// Lists the manifests that refer to `digest` (signatures, SBOMs, attestations, …) with
    /// the OCI 1.1 referrers API. When the registry answers 404 there (no referrers API, e.g.
    /// distribution 2.8), the tag-schema fallback is read instead: the image index tagged
    /// `sha256-<hex>`. Use it like any Azure pager (`while let Some(d) = pager.try_next().await?`);
    /// a listing resumes where another stopped from that pager's continuation, in
    /// [`method_options`](ListReferrersOptions::method_options).
    pub fn list_referrers(
        &self,
        digest: &str,
        options: Option<ListReferrersOptions<'_>>,
    ) -> azure_core::Result<Pager<ReferrersPage>> {
        crate::reference::validate_digest(digest)?;
        let client = self.clone();
        let digest = digest.to_string();
        let options = options.unwrap_or_default();
        let artifact_type = options.artifact_type;
        Ok(Pager::new(
            move |state: PagerState, options: PagerOptions<'static>| {
                let client = client.clone();
                let digest = digest.clone();
                let artifact_type = artifact_type.clone();
                Box::pin(async move {
                    let context = options.context;
                    let (mut page, next) = match state {
                        PagerState::Initial => {
                            crate::operation::traced!(
                                "ContainerRegistryContentClient.list_referrers",
                                &client.repository,
                                &context,
                                client.first_referrers_page(&digest, artifact_type.as_deref())
                            )
                            .await?
                        }
                        PagerState::More(continuation) => {
                            let link = String::from(continuation);
                            let url = client.pipeline.resolve(&link)?;
                            let raw =
                                fetch(&client.pipeline, url, "get_referrers", &context).await?;
                            let index: OciImageIndex = parse(&raw.body)?;
                            (
                                ReferrersPage {
                                    manifests: index.manifests,
                                },
                                next_link(&raw.headers)?,
                            )
                        }
                    };
                    if let Some(t) = &artifact_type {
                        page.manifests
                            .retain(|m| m.artifact_type.as_deref() == Some(t.as_str()));
                    }
                    let body = serde_json::to_vec(&page).map_err(|e| {
                        azure_core::Error::with_message(
                            azure_core::error::ErrorKind::DataConversion,
                            e.to_string(),
                        )
                    })?;
                    Ok(page_result::<ReferrersPage>(
                        body,
                        &Default::default(),
                        next,
                    ))
                })
            },
            Some(crate::paging::owned(options.method_options)),
        ))
    }

    async fn first_referrers_page(
        &self,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> azure_core::Result<(ReferrersPage, Option<String>)> {
        crate::reference::validate_digest(digest)?;
        match self
            .rest()
            .get_referrers(&self.repository, digest, artifact_type)
            .await
        {
            Ok(response) => {
                let next = next_link(response.headers())?;
                let index = response.into_inner();
                let manifests = index
                    .manifests
                    .into_iter()
                    .map(|d| OciDescriptor {
                        media_type: d.media_type,
                        digest: d.digest,
                        size: u64::try_from(d.size).unwrap_or_default(),
                        annotations: (!d.annotations.is_empty())
                            .then(|| d.annotations.into_iter().collect()),
                        artifact_type: d.artifact_type,
                        ..Default::default()
                    })
                    .collect();
                Ok((ReferrersPage { manifests }, next))
            }
            Err(e) => {
                let e = rest_error(e);
                if e.http_status() != Some(StatusCode::NotFound) {
                    return Err(e);
                }
                // No referrers API: the tag-schema fallback.
                let tag = referrers_tag(digest)?;
                let accept = Some(GetManifestOptions {
                    accept: Some(vec![media_types::OCI_INDEX.to_string()]),
                    ..Default::default()
                });
                match self.get_manifest(&tag, accept).await {
                    Ok(m) => {
                        let index: OciImageIndex = m.manifest()?;
                        Ok((
                            ReferrersPage {
                                manifests: index.manifests,
                            },
                            None,
                        ))
                    }
                    Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
                        Ok((ReferrersPage::default(), None))
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> azure_core::Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        azure_core::Error::with_message(
            azure_core::error::ErrorKind::DataConversion,
            format!("the registry's referrers answer does not parse: {e}"),
        )
    })
}
