//! [`copy_image`]: an image (one platform or a whole index) from one repository to another, in
//! the same registry or across registries, with every digest preserved.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use azure_core::http::ClientMethodOptions;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::content::{
    ContainerRegistryContentClient, GetManifestOptions, GetManifestResult, OciDescriptor, Platform,
    ProgressCallback, SetManifestOptions, UploadBlobOptions,
};
use crate::error::{digest_mismatch, invalid_argument, nonzero};
use crate::reference::{validate_tag, Reference};

/// Blobs transferred at once by [`copy_image`] (and by the OCI layout pull and push) unless
/// the options say otherwise.
pub const DEFAULT_COPY_CONCURRENCY: usize = 4;

/// Connections [`pull_image`](crate::pull_image) downloads over at once unless the options say
/// otherwise: six, the default of containers/image (skopeo, podman), so that an image of up to
/// six layers has every layer in flight from the start.
pub const DEFAULT_PULL_CONCURRENCY: usize = 6;

/// Manifests nested deeper than this (an index of indexes of …) are refused.
const MAX_DEPTH: usize = 4;

/// Options of [`copy_image`].
#[derive(Clone, Debug, Default)]
pub struct CopyImageOptions<'a> {
    /// Copy an index (or manifest list) whole: every manifest it lists, then the index itself
    /// with its exact bytes (default `false`: only the manifest for
    /// [`platform`](Self::platform) is copied, and tagged, as `docker pull` followed by
    /// `docker push` would). A single-image manifest is copied as it is either way.
    pub all_platforms: bool,
    /// The platform copied out of an index without [`all_platforms`](Self::all_platforms)
    /// (default [`Platform::host`]).
    pub platform: Option<Platform>,
    /// Blobs transferred at once (default [`DEFAULT_COPY_CONCURRENCY`]); must not be 0. Each
    /// blob streamed across registries holds up to one upload request
    /// ([`DEFAULT_CHUNK_SIZE`](crate::DEFAULT_CHUNK_SIZE)) in memory.
    pub concurrency: Option<usize>,
    /// Called with `(bytes done, total bytes of all blobs)` as blobs are copied; blobs the
    /// target already has or that are mounted count as done at once.
    pub progress: Option<ProgressCallback>,
    /// The context of the requests.
    pub method_options: ClientMethodOptions<'a>,
}

crate::operation::call_options!(CopyImageOptions);

/// What [`copy_image`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyImageResult {
    /// The digest of the manifest stored in the target under the tag (the index's with
    /// [`CopyImageOptions::all_platforms`], else the platform's manifest): the source's.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Manifests stored in the target (children and index).
    pub manifests: usize,
    /// Blobs streamed from the source into the target.
    pub blobs_copied: usize,
    /// Blobs the registry mounted from the source repository (same registry), without transfer.
    pub blobs_mounted: usize,
    /// Blobs the target already had.
    pub blobs_skipped: usize,
    /// Bytes of blobs streamed from source to target.
    pub bytes_transferred: u64,
}

/// Copies the image `source_reference` (a tag or digest in `source`'s repository) into
/// `target`'s repository, under `target_tag` (`None`: the source's tag when
/// `source_reference` is a tag, else stored by digest only).
///
/// A free function, since it works on two clients that may be of different registries (and
/// credentials). Blobs go first (config and layers, [`CopyImageOptions::concurrency`] at
/// once): a blob the target has is skipped; in the same registry (the same endpoint) it is
/// mounted from the source repository; across registries it is streamed from the verified
/// download straight into the upload, never to disk. Then the manifests, children before the
/// index, with their exact bytes and media types, so every digest is the source's. An index is
/// copied whole with [`CopyImageOptions::all_platforms`]; otherwise only its manifest for
/// [`CopyImageOptions::platform`] (default: the host's) is.
pub async fn copy_image(
    source: &ContainerRegistryContentClient,
    source_reference: &str,
    target: &ContainerRegistryContentClient,
    target_tag: Option<&str>,
    options: Option<CopyImageOptions<'_>>,
) -> azure_core::Result<CopyImageResult> {
    crate::operation::traced!(
        "copy_image",
        target.repository_name(),
        &options,
        async move {
            let options = options.unwrap_or_default();
            let concurrency =
                nonzero("concurrency", options.concurrency, DEFAULT_COPY_CONCURRENCY)?;
            let reference = Reference::parse(source_reference)?;
            let tag = match (target_tag, &reference) {
                (Some(tag), _) => Some(tag.to_string()),
                (None, Reference::Tag(tag)) => Some(tag.clone()),
                (None, Reference::Digest(_)) => None,
            };
            if let Some(tag) = &tag {
                validate_tag(tag)?;
            }
            let platform = options.platform.clone().unwrap_or_else(Platform::host);
            let get = || GetManifestOptions {
                method_options: options.method_options.clone(),
                ..Default::default()
            };
            let plan = plan(
                source,
                source_reference,
                options.all_platforms,
                &platform,
                get,
            )
            .await?;

            let total: u64 = plan.blobs.iter().map(|b| b.size).sum();
            let counters = Counters::default();
            let progress = options.progress.clone();
            crate::content::progress::report(&progress, 0, Some(total));
            let same_registry = source.endpoint() == target.endpoint()
                && source.repository_name() != target.repository_name();
            // Built first (futures do nothing until polled) so that the stream holds no
            // closure over borrowed descriptors.
            let copies: Vec<_> = plan
                .blobs
                .iter()
                .map(|blob| {
                    copy_blob(
                        source,
                        target,
                        blob,
                        same_registry,
                        &counters,
                        &progress,
                        total,
                        &options.method_options,
                    )
                })
                .collect();
            futures::stream::iter(copies)
                .buffer_unordered(concurrency)
                .try_collect::<Vec<()>>()
                .await?;

            let mut stored = 0;
            let last = plan.manifests.len().saturating_sub(1);
            for (i, manifest) in plan.manifests.iter().enumerate() {
                let set = target
                    .set_manifest_bytes(
                        manifest.content.clone(),
                        &manifest.media_type,
                        Some(SetManifestOptions {
                            tag: if i == last { tag.clone() } else { None },
                            method_options: options.method_options.clone(),
                        }),
                    )
                    .await?;
                if set.digest != manifest.digest {
                    return Err(digest_mismatch(manifest.digest.clone(), set.digest));
                }
                stored += 1;
            }
            let top = plan
                .manifests
                .last()
                .ok_or_else(|| invalid_argument("source_reference", "no manifest to copy"))?;
            Ok(CopyImageResult {
                digest: top.digest.clone(),
                media_type: top.media_type.clone(),
                manifests: stored,
                blobs_copied: counters.copied.load(Ordering::Relaxed),
                blobs_mounted: counters.mounted.load(Ordering::Relaxed),
                blobs_skipped: counters.skipped.load(Ordering::Relaxed),
                bytes_transferred: counters.transferred.load(Ordering::Relaxed),
            })
        }
    )
    .await
}

/// The manifests of an image, children before the manifests that list them (the image's own
/// last), and the blobs they name, each once.
pub(crate) struct Plan {
    /// Manifests in the order they are stored.
    pub(crate) manifests: Vec<GetManifestResult>,
    /// Config and layer blobs.
    pub(crate) blobs: Vec<OciDescriptor>,
}

/// Reads the image `reference` from `source`: with `all_platforms`, an index and everything
/// under it; otherwise the manifest for `platform`.
pub(crate) async fn plan<'a>(
    source: &ContainerRegistryContentClient,
    reference: &str,
    all_platforms: bool,
    platform: &Platform,
    get: impl Fn() -> GetManifestOptions<'a>,
) -> azure_core::Result<Plan> {
    let top = if all_platforms {
        source.get_manifest(reference, Some(get())).await?
    } else {
        source
            .get_manifest_for_platform(reference, platform, Some(get()))
            .await?
    };
    // Breadth first: every manifest comes after the one that lists it; reversed, children
    // come first.
    let mut manifests: Vec<GetManifestResult> = Vec::new();
    let mut blobs: Vec<OciDescriptor> = Vec::new();
    let mut level = vec![top];
    let mut depth = 0;
    while !level.is_empty() {
        depth += 1;
        if depth > MAX_DEPTH {
            return Err(invalid_argument(
                "source_reference",
                format!("indexes are nested more than {MAX_DEPTH} deep"),
            ));
        }
        let mut next = Vec::new();
        for manifest in level {
            if manifests.iter().any(|m| m.digest == manifest.digest) {
                continue;
            }
            let json = super::manifest_json(&manifest.content)?;
            if super::is_index(&manifest.media_type, &json) {
                for child in super::descriptors(&json, "manifests")? {
                    crate::reference::validate_digest(&child.digest)?;
                    next.push(source.get_manifest(&child.digest, Some(get())).await?);
                }
            } else {
                for blob in super::manifest_blobs(&json)? {
                    if !blobs.iter().any(|b| b.digest == blob.digest) {
                        blobs.push(blob);
                    }
                }
            }
            manifests.push(manifest);
        }
        level = next;
    }
    manifests.reverse();
    // A manifest listed twice (at two depths) is stored once, at its first place.
    let mut seen = std::collections::HashSet::new();
    manifests.retain(|m| seen.insert(m.digest.clone()));
    Ok(Plan { manifests, blobs })
}

#[derive(Default)]
struct Counters {
    copied: AtomicUsize,
    mounted: AtomicUsize,
    skipped: AtomicUsize,
    transferred: AtomicU64,
    done: AtomicU64,
}

impl Counters {
    fn advance(&self, bytes: u64, progress: &Option<ProgressCallback>, total: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        crate::content::progress::report(progress, done, Some(total));
    }
}

/// Copies one blob: skipped when the target has it, mounted in the same registry, else
/// streamed.
#[allow(clippy::too_many_arguments)]
async fn copy_blob(
    source: &ContainerRegistryContentClient,
    target: &ContainerRegistryContentClient,
    blob: &OciDescriptor,
    same_registry: bool,
    counters: &Counters,
    progress: &Option<ProgressCallback>,
    total: u64,
    method_options: &ClientMethodOptions<'_>,
) -> azure_core::Result<()> {
    if target.blob_exists(&blob.digest).await? {
        counters.skipped.fetch_add(1, Ordering::Relaxed);
        counters.advance(blob.size, progress, total);
        return Ok(());
    }
    if same_registry
        && target
            .mount_blob(&blob.digest, source.repository_name())
            .await?
    {
        counters.mounted.fetch_add(1, Ordering::Relaxed);
        counters.advance(blob.size, progress, total);
        return Ok(());
    }
    let stream = source
        .download_blob(
            &blob.digest,
            Some(crate::DownloadBlobOptions {
                method_options: method_options.clone(),
                ..Default::default()
            }),
        )
        .await?;
    let sent = Arc::new(AtomicU64::new(0));
    let counted = sent.clone();
    let stream = stream
        .inspect_ok(|chunk: &Bytes| {
            let n = chunk.len() as u64;
            counted.fetch_add(n, Ordering::Relaxed);
            counters.advance(n, progress, total);
        })
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let uploaded = target
        .upload_blob(
            reader,
            Some(UploadBlobOptions {
                skip_existing: false,
                method_options: method_options.clone(),
                ..Default::default()
            }),
        )
        .await?;
    if uploaded.digest != blob.digest {
        return Err(digest_mismatch(blob.digest.clone(), uploaded.digest));
    }
    counters.copied.fetch_add(1, Ordering::Relaxed);
    counters
        .transferred
        .fetch_add(sent.load(Ordering::Relaxed), Ordering::Relaxed);
    Ok(())
}
