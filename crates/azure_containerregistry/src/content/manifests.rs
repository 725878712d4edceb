//! Manifest content: `GET` and `PUT /v2/<name>/manifests/<reference>`, digest-checked and
//! size-bounded.

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::de::DeserializeOwned;

use super::manifest_models::{
    media_types, Manifest, ManifestKind, OciDescriptor, OciImageIndex, DEFAULT_ACCEPT,
};
use super::{digest_like, header, ContainerRegistryContentClient};
use crate::error::{digest_mismatch, invalid_argument, rest_error, transport_error};
use crate::reference::{validate_digest, validate_tag, Reference};
use azure_core::http::ClientMethodOptions;

/// The largest manifest ACR stores (4 MiB); larger ones are refused on get and set.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// Options of [`ContainerRegistryContentClient::get_manifest`].
#[derive(Clone, Debug, Default)]
pub struct GetManifestOptions<'a> {
    /// The media types accepted (`Accept`). Default: OCI manifest, OCI index, Docker v2
    /// manifest and Docker manifest list. Asking only for single-image types may make a
    /// registry resolve an index to one platform's manifest.
    pub accept: Option<Vec<String>>,
    /// Return a manifest fetched by tag even when the registry sends no
    /// `Docker-Content-Digest` to check it against (default `false`). By default such a
    /// manifest is an [`UnconfirmedDigest`](crate::UnconfirmedDigest) error, so nothing
    /// unverified comes back silently; with this set it comes back with
    /// [`GetManifestResult::digest_confirmed`] `false` and the digest computed here. By digest
    /// the bytes are always checked against the digest asked for.
    pub accept_unconfirmed_digest: bool,
    /// The context of the requests.
    pub method_options: ClientMethodOptions<'a>,
}

/// A manifest as fetched: its exact bytes, verified against its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetManifestResult {
    /// The manifest's digest: the sha256 of `content`, computed here.
    pub digest: String,
    /// Whether the digest was confirmed: the one asked for, or the registry's
    /// `Docker-Content-Digest` for a tag. `false` only with
    /// [`GetManifestOptions::accept_unconfirmed_digest`].
    pub digest_confirmed: bool,
    /// The media type (`Content-Type`, or the manifest's `mediaType` field).
    pub media_type: String,
    /// The exact bytes.
    pub content: Bytes,
    /// The registry's id of the request (`x-ms-request-id`), if it sent one.
    pub request_id: Option<String>,
}

impl GetManifestResult {
    /// Parses the content into a model: [`OciImageManifest`](crate::OciImageManifest),
    /// [`OciImageIndex`], [`DockerManifestV2`](crate::DockerManifestV2),
    /// [`DockerManifestList`](crate::DockerManifestList), or any deserializable type.
    pub fn manifest<T: DeserializeOwned>(&self) -> azure_core::Result<T> {
        serde_json::from_slice(&self.content).map_err(|e| {
            azure_core::Error::with_message(
                ErrorKind::DataConversion,
                format!(
                    "the manifest ({}) does not parse as the requested model: {e}",
                    self.media_type
                ),
            )
        })
    }

    /// Parses the content according to its media type.
    pub fn parsed(&self) -> azure_core::Result<ManifestKind> {
        Ok(match self.media_type.as_str() {
            media_types::OCI_MANIFEST => ManifestKind::OciImage(self.manifest()?),
            media_types::OCI_INDEX => ManifestKind::OciIndex(self.manifest()?),
            media_types::DOCKER_MANIFEST_V2 => ManifestKind::DockerV2(self.manifest()?),
            media_types::DOCKER_MANIFEST_LIST => ManifestKind::DockerList(self.manifest()?),
            _ => ManifestKind::Other(self.manifest()?),
        })
    }
}

/// Options of [`ContainerRegistryContentClient::set_manifest`] and
/// [`set_manifest_bytes`](ContainerRegistryContentClient::set_manifest_bytes).
#[derive(Clone, Debug, Default)]
pub struct SetManifestOptions<'a> {
    /// Store the manifest under this tag (default: by digest only, untagged).
    pub tag: Option<String>,
    /// The context of the requests.
    pub method_options: ClientMethodOptions<'a>,
}

/// The result of setting a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetManifestResult {
    /// The manifest's digest: the sha256 of the bytes sent, confirmed by the registry.
    pub digest: String,
    /// The registry's id of the request (`x-ms-request-id`), if it sent one.
    pub request_id: Option<String>,
}

crate::operation::call_options!(GetManifestOptions, SetManifestOptions);

impl ContainerRegistryContentClient {
    /// Reads a manifest by tag or digest. By digest, the bytes are checked against it; by tag,
    /// against the registry's `Docker-Content-Digest` (a registry that sends none gets an
    /// [`UnconfirmedDigest`](crate::UnconfirmedDigest) error unless
    /// [`GetManifestOptions::accept_unconfirmed_digest`] is set). At most 4 MiB are read.
    pub async fn get_manifest(
        &self,
        tag_or_digest: &str,
        options: Option<GetManifestOptions<'_>>,
    ) -> azure_core::Result<GetManifestResult> {
        crate::operation::traced!("ContainerRegistryContentClient.get_manifest", &self.repository, &options, async move {
                let reference = Reference::parse(tag_or_digest)?;
                let options = options.unwrap_or_default();
                let accept = match &options.accept {
                    Some(types) if !types.is_empty() => types.join(", "),
                    _ => DEFAULT_ACCEPT.to_string(),
                };
                let response = self.rest()
                    .get_manifest(&self.repository, reference.as_str(), Some(&accept))
                    .await
                    .map_err(rest_error)?;
                let headers = response.headers().clone();
                if response
                    .content_length()
                    .is_some_and(|n| n > MAX_MANIFEST_SIZE as u64)
                {
                    return Err(too_large(
                        response.content_length().unwrap_or_default() as usize
                    ));
                }
                let mut body = response.into_inner_stream();
                let mut content = BytesMut::new();
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(transport_error)?;
                    if content.len() + chunk.len() > MAX_MANIFEST_SIZE {
                        return Err(too_large(content.len() + chunk.len()));
                    }
                    content.extend_from_slice(&chunk);
                }
                let content = content.freeze();
                let announced = header(&headers, "docker-content-digest").map(str::to_string);
                let mut confirmed = true;
                let digest = match &reference {
                    Reference::Digest(expected) => {
                        let actual = digest_like(expected, &content);
                        if &actual != expected {
                            return Err(digest_mismatch(expected.clone(), actual));
                        }
                        expected.clone()
                    }
                    Reference::Tag(_) => match announced {
                        Some(expected) => {
                            validate_digest(&expected).map_err(|_| {
                                azure_core::Error::with_message(
                                    ErrorKind::DataConversion,
                                    format!("the registry announced an invalid Docker-Content-Digest {expected:?}"),
                                )
                            })?;
                            let actual = digest_like(&expected, &content);
                            if actual != expected {
                                return Err(digest_mismatch(expected, actual));
                            }
                            expected
                        }
                        None => {
                            let computed = crate::reference::sha256_digest(&content);
                            if !options.accept_unconfirmed_digest {
                                return Err(crate::error::unconfirmed_digest(
                                    reference.as_str(),
                                    &computed,
                                ));
                            }
                            confirmed = false;
                            computed
                        }
                    },
                };
                let media_type = header(&headers, "content-type")
                    .and_then(|v| v.split(';').next())
                    .map(str::trim)
                    .filter(|v| {
                        !v.is_empty() && *v != "application/json" && *v != "application/octet-stream"
                    })
                    .map(str::to_string)
                    .or_else(|| {
                        serde_json::from_slice::<serde_json::Value>(&content)
                            .ok()
                            .and_then(|v| {
                                v.get("mediaType")
                                    .and_then(|m| m.as_str())
                                    .map(str::to_string)
                            })
                    })
                    .unwrap_or_else(|| "application/json".to_string());
                Ok(GetManifestResult {
                    digest,
                    digest_confirmed: confirmed,
                    media_type,
                    content,
                    request_id: header(&headers, "x-ms-request-id").map(str::to_string),
                })
            }
        )
        .await
    }

    /// Uploads a typed manifest (serialized to JSON, `Content-Type` from its media type), by
    /// digest or under [`SetManifestOptions::tag`]. The blobs it references should be uploaded
    /// first.
    pub async fn set_manifest<M: Manifest>(
        &self,
        manifest: &M,
        options: Option<SetManifestOptions<'_>>,
    ) -> azure_core::Result<SetManifestResult> {
        let bytes = serde_json::to_vec(manifest).map_err(|e| {
            azure_core::Error::with_message(
                ErrorKind::DataConversion,
                format!("the manifest does not serialize: {e}"),
            )
        })?;
        self.set_manifest_bytes(bytes, manifest.media_type(), options)
            .await
    }

    /// Uploads manifest bytes of any media type, exactly as given. The result's digest is the
    /// sha256 of those bytes, checked against the registry's `Docker-Content-Digest`.
    ///
    /// A manifest with a `subject` on a registry without the OCI 1.1 referrers API (no
    /// `OCI-Subject` in the answer) is also added to the referrers tag `sha256-<subject hex>`
    /// (the OCI tag-schema fallback), so [`list_referrers`](Self::list_referrers) finds it.
    pub async fn set_manifest_bytes(
        &self,
        manifest: impl Into<Bytes>,
        media_type: &str,
        options: Option<SetManifestOptions<'_>>,
    ) -> azure_core::Result<SetManifestResult> {
        crate::operation::traced!(
            "ContainerRegistryContentClient.set_manifest",
            &self.repository,
            &options,
            self.set_manifest_bytes_once(manifest.into(), media_type, options)
        )
        .await
    }

    async fn set_manifest_bytes_once(
        &self,
        manifest: impl Into<Bytes>,
        media_type: &str,
        options: Option<SetManifestOptions<'_>>,
    ) -> azure_core::Result<SetManifestResult> {
        let manifest: Bytes = manifest.into();
        let options = options.unwrap_or_default();
        if let Some(tag) = &options.tag {
            validate_tag(tag)?;
        }
        if media_type.is_empty() || reqwest::header::HeaderValue::from_str(media_type).is_err() {
            return Err(invalid_argument(
                "media_type",
                format!("{media_type:?} is not a media type"),
            ));
        }
        if manifest.len() > MAX_MANIFEST_SIZE {
            return Err(invalid_argument(
                "manifest",
                format!(
                    "{} bytes is over the registry's {MAX_MANIFEST_SIZE}-byte manifest limit",
                    manifest.len()
                ),
            ));
        }
        let digest = crate::reference::sha256_digest(&manifest);
        let reference = options.tag.clone().unwrap_or_else(|| digest.clone());
        let response = self
            .rest()
            .create_manifest(&self.repository, &reference, media_type, manifest.clone())
            .await
            .map_err(rest_error)?;
        if let Some(server) = header(response.headers(), "docker-content-digest") {
            if server != digest {
                return Err(digest_mismatch(digest, server));
            }
        }
        let subject_supported = header(response.headers(), "oci-subject").is_some();
        if !subject_supported {
            if let Some(subject) = subject_of(&manifest) {
                let descriptor = descriptor_for(&manifest, media_type, &digest);
                self.add_to_referrers_tag(&subject, descriptor).await?;
            }
        }
        let request_id = header(response.headers(), "x-ms-request-id").map(str::to_string);
        Ok(SetManifestResult { digest, request_id })
    }

    /// Adds a referrer to the fallback tag `<alg>-<hex>` of its subject (creating the index).
    async fn add_to_referrers_tag(
        &self,
        subject: &str,
        descriptor: OciDescriptor,
    ) -> azure_core::Result<()> {
        let tag = referrers_tag(subject)?;
        let mut index = match self
            .get_manifest(
                &tag,
                Some(GetManifestOptions {
                    accept: Some(vec![media_types::OCI_INDEX.to_string()]),
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(existing) => existing.manifest::<OciImageIndex>()?,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => OciImageIndex::default(),
            Err(e) => return Err(e),
        };
        if index
            .manifests
            .iter()
            .any(|m| m.digest == descriptor.digest)
        {
            return Ok(());
        }
        index.manifests.push(descriptor);
        index.media_type = Some(media_types::OCI_INDEX.to_string());
        let bytes = serde_json::to_vec(&index).map_err(|e| {
            azure_core::Error::with_message(ErrorKind::DataConversion, e.to_string())
        })?;
        self.set_referrers_index(Bytes::from(bytes), tag).await?;
        Ok(())
    }

    /// Stores the fallback index (boxed: storing a manifest may store an index).
    fn set_referrers_index(
        &self,
        index: Bytes,
        tag: String,
    ) -> futures::future::BoxFuture<'_, azure_core::Result<SetManifestResult>> {
        Box::pin(self.set_manifest_bytes_once(
            index,
            media_types::OCI_INDEX,
            Some(SetManifestOptions {
                tag: Some(tag),
                ..Default::default()
            }),
        ))
    }
}

/// The tag of the referrers fallback for `digest`: `<alg>-<hex>`, at most 128 characters.
pub(crate) fn referrers_tag(digest: &str) -> azure_core::Result<String> {
    validate_digest(digest)?;
    let tag = digest.replacen(':', "-", 1);
    Ok(tag.chars().take(128).collect())
}

/// The `subject.digest` of a manifest, if it has one.
fn subject_of(manifest: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(manifest).ok()?;
    let digest = value.get("subject")?.get("digest")?.as_str()?;
    validate_digest(digest).ok()?;
    Some(digest.to_string())
}

/// The descriptor of a referrer as listed in a referrers index: media type, digest, size,
/// artifact type (the `artifactType` field, else the config's media type) and annotations.
pub(crate) fn descriptor_for(manifest: &[u8], media_type: &str, digest: &str) -> OciDescriptor {
    let value: serde_json::Value = serde_json::from_slice(manifest).unwrap_or_default();
    let artifact_type = value
        .get("artifactType")
        .and_then(|v| v.as_str())
        .or_else(|| {
            value
                .get("config")
                .and_then(|c| c.get("mediaType"))
                .and_then(|v| v.as_str())
        })
        .map(str::to_string);
    let annotations = value
        .get("annotations")
        .and_then(|a| serde_json::from_value(a.clone()).ok());
    OciDescriptor {
        media_type: media_type.to_string(),
        digest: digest.to_string(),
        size: manifest.len() as u64,
        artifact_type,
        annotations,
        ..Default::default()
    }
}

fn too_large(size: usize) -> azure_core::Error {
    azure_core::Error::with_message(
        ErrorKind::DataConversion,
        format!(
            "the manifest is larger than the {MAX_MANIFEST_SIZE}-byte limit ({size} bytes or more)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_tags() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            referrers_tag(&d).unwrap(),
            format!("sha256-{}", "a".repeat(64))
        );
        let d = format!("sha512:{}", "b".repeat(128));
        assert_eq!(referrers_tag(&d).unwrap().len(), 128);
        assert!(referrers_tag("latest").is_err());
    }
}
