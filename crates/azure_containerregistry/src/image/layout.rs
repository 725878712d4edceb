//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/<algorithm>/<hex>`):
//! [`pull_image`] writes one from a registry, [`push_image`] sends one to a registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use azure_core::error::ErrorKind;
use azure_core::http::ClientMethodOptions;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::copy::{plan, DEFAULT_COPY_CONCURRENCY, DEFAULT_PULL_CONCURRENCY};
use crate::content::{
    media_types, ContainerRegistryContentClient, DownloadBlobOptions, GetManifestOptions,
    OciDescriptor, Platform, SetManifestOptions, UploadBlobOptions, DEFAULT_RANGE_SIZE,
};
use crate::error::{digest_mismatch, invalid_argument, nonzero};
use crate::reference::{validate_digest, validate_tag, Reference};
use crate::ProgressCallback;

/// The annotation of `index.json` that names an image of the layout (its tag).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The content of the `oci-layout` file.
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Options of [`pull_image`].
#[derive(Clone, Debug, Default)]
pub struct PullImageOptions<'a> {
    /// Pull an index (or manifest list) whole: the index, every manifest it lists and all their
    /// blobs (default `false`: only the manifest for [`platform`](Self::platform), which
    /// `index.json` then names). A single-image manifest is pulled as it is either way.
    pub all_platforms: bool,
    /// The platform pulled out of an index without [`all_platforms`](Self::all_platforms)
    /// (default [`Platform::host`]).
    pub platform: Option<Platform>,
    /// Connections downloaded over at once (default [`DEFAULT_PULL_CONCURRENCY`]); must not
    /// be 0. Blobs are fetched this many at a time, one connection each; when the image has
    /// fewer large blobs (over 8 MiB) than this, the connections are shared out among them and
    /// each large blob is fetched as parallel 8 MiB ranges, still hashed in order (up to
    /// `concurrency × 8 MiB` in memory).
    pub concurrency: Option<usize>,
    /// The name given to the image in `index.json` (`org.opencontainers.image.ref.name`);
    /// default: the tag it was pulled by (none when pulled by digest).
    pub ref_name: Option<String>,
    /// Called with `(bytes done, total)` across all the image's blobs as each one is in the
    /// layout (downloaded or found there).
    pub progress: Option<ProgressCallback>,
    /// The context of the requests.
    pub method_options: ClientMethodOptions<'a>,
}

crate::operation::call_options!(PullImageOptions);

/// What [`pull_image`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullImageResult {
    /// The digest of the manifest `index.json` names (the index's with
    /// [`PullImageOptions::all_platforms`], else the platform's manifest).
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Manifests written (children and index).
    pub manifests: usize,
    /// Blobs downloaded.
    pub blobs_downloaded: usize,
    /// Blobs the layout already had (with the right digest), not fetched again.
    pub blobs_present: usize,
    /// Bytes of blobs downloaded.
    pub bytes_downloaded: u64,
}

/// The connections each large blob (over one range) of a pull gets: `concurrency` shared out
/// among the large blobs, at least one each. Small blobs take one connection for a moment.
fn ranges_per_blob(blobs: &[OciDescriptor], concurrency: usize) -> usize {
    let large = blobs
        .iter()
        .filter(|b| b.size > DEFAULT_RANGE_SIZE as u64)
        .count();
    (concurrency / large.max(1)).max(1)
}

/// Options of [`push_image`].
#[derive(Clone, Debug, Default)]
pub struct PushImageOptions<'a> {
    /// Blobs uploaded at once (default [`DEFAULT_COPY_CONCURRENCY`]); must not be 0.
    pub concurrency: Option<usize>,
    /// Repositories of the same registry that may hold the image's blobs (a base image, an
    /// earlier version): a blob the target lacks is mounted from the first of them that has
    /// it instead of uploaded.
    pub mount_from: Vec<String>,
    /// Called with `(bytes done, total)` across all the image's blobs as each one is in the
    /// registry (uploaded, mounted or found there).
    pub progress: Option<ProgressCallback>,
    /// The context of the requests.
    pub method_options: ClientMethodOptions<'a>,
}

crate::operation::call_options!(PushImageOptions);

/// What [`push_image`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushImageResult {
    /// The digest of the manifest stored under the tag.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Manifests stored (children and index).
    pub manifests: usize,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs mounted from a repository of [`PushImageOptions::mount_from`].
    pub blobs_mounted: usize,
    /// Blobs the registry already had.
    pub blobs_skipped: usize,
    /// Bytes of blobs uploaded.
    pub bytes_uploaded: u64,
}

/// `index.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LayoutIndex {
    #[serde(rename = "schemaVersion", default = "two")]
    schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
    #[serde(flatten)]
    extra: crate::ExtraFields,
}

/// Whole-image progress: the bytes of the blobs that are done, of the total of all of them.
struct WholeImageProgress<'a> {
    callback: &'a Option<ProgressCallback>,
    total: u64,
    done: AtomicU64,
}

impl<'a> WholeImageProgress<'a> {
    fn new(callback: &'a Option<ProgressCallback>, blobs: &[OciDescriptor]) -> Self {
        let total = blobs.iter().map(|b| b.size).sum();
        crate::content::progress::report(callback, 0, Some(total));
        Self {
            callback,
            total,
            done: AtomicU64::new(0),
        }
    }

    fn advance(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        crate::content::progress::report(self.callback, done, Some(self.total));
    }
}

fn two() -> u32 {
    2
}

fn io_error(e: std::io::Error, path: &Path) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::Io, format!("{}: {e}", path.display()))
}

fn spawn_error(e: tokio::task::JoinError) -> azure_core::Error {
    azure_core::Error::new(ErrorKind::Io, e)
}

/// The path of a blob in the layout: `blobs/<algorithm>/<hex>` (the digest is checked first,
/// so it names no other place).
fn blob_path(dir: &Path, digest: &str) -> azure_core::Result<PathBuf> {
    validate_digest(digest)?;
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| invalid_argument("digest", digest.to_string()))?;
    Ok(dir.join("blobs").join(algorithm).join(hex))
}

/// Whether the file at `path` exists with the content of `digest` (hashed on a blocking
/// thread).
async fn has_blob(path: &Path, digest: &str) -> azure_core::Result<bool> {
    let path = path.to_path_buf();
    let digest = digest.to_string();
    tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let mut hasher = crate::content::Hasher::for_digest(&digest);
        let mut buffer = vec![0u8; 1024 * 1024];
        loop {
            let n = std::io::Read::read(&mut file, &mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        Ok(hasher.finish() == digest)
    })
    .await
    .map_err(spawn_error)?
    .map_err(|e| azure_core::Error::with_message(ErrorKind::Io, e.to_string()))
}

/// Writes `data` to `path` through a temporary file in the same directory, renamed into place.
async fn write_atomic(path: &Path, data: Bytes) -> azure_core::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut temp = tempfile::Builder::new()
            .prefix(".layout.")
            .suffix(".partial")
            .tempfile_in(dir)?;
        std::io::Write::write_all(&mut temp, &data)?;
        temp.as_file().sync_all()?;
        temp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    })
    .await
    .map_err(spawn_error)?
    .map_err(|e| azure_core::Error::with_message(ErrorKind::Io, e.to_string()))
}

/// Pulls the image `reference` (a tag or digest of `client`'s repository) into the OCI image
/// layout at `dir` (created if needed): `oci-layout`, `blobs/sha256/<hex>` for every manifest
/// and blob, and an entry in `index.json` (kept with its other entries; an entry of the same
/// `org.opencontainers.image.ref.name` is replaced) naming the image by its tag.
///
/// Blobs are downloaded [`PullImageOptions::concurrency`] at once, each verified and written
/// to a temporary file renamed into place; a blob the layout already has (its file hashes to
/// its digest) is not fetched again. Manifests are written with their exact bytes.
pub async fn pull_image(
    client: &ContainerRegistryContentClient,
    reference: &str,
    dir: impl AsRef<Path>,
    options: Option<PullImageOptions<'_>>,
) -> azure_core::Result<PullImageResult> {
    let dir = dir.as_ref();
    crate::operation::traced!(
        "pull_image",
        client.repository_name(),
        &options,
        async move {
            let options = options.unwrap_or_default();
            let concurrency =
                nonzero("concurrency", options.concurrency, DEFAULT_PULL_CONCURRENCY)?;
            let ref_name = match (&options.ref_name, Reference::parse(reference)?) {
                (Some(name), _) => Some(name.clone()),
                (None, Reference::Tag(tag)) => Some(tag),
                (None, Reference::Digest(_)) => None,
            };
            let platform = options.platform.clone().unwrap_or_else(Platform::host);
            let get = || GetManifestOptions {
                method_options: options.method_options.clone(),
                ..Default::default()
            };
            let plan = plan(client, reference, options.all_platforms, &platform, get).await?;
            tokio::fs::create_dir_all(dir.join("blobs"))
                .await
                .map_err(|e| io_error(e, dir))?;

            let downloaded = AtomicUsize::new(0);
            let present = AtomicUsize::new(0);
            let bytes = AtomicU64::new(0);
            let done = WholeImageProgress::new(&options.progress, &plan.blobs);
            let per_blob = ranges_per_blob(&plan.blobs, concurrency);
            let jobs: Vec<_> = plan
                .blobs
                .iter()
                .map(|blob| async {
                    let path = blob_path(dir, &blob.digest)?;
                    if has_blob(&path, &blob.digest).await? {
                        present.fetch_add(1, Ordering::Relaxed);
                        done.advance(blob.size);
                        return Ok(());
                    }
                    if let Some(parent) = path.parent() {
                        tokio::fs::create_dir_all(parent)
                            .await
                            .map_err(|e| io_error(e, parent))?;
                    }
                    let result = client
                        .download_blob_to_file(
                            &blob.digest,
                            &path,
                            Some(DownloadBlobOptions {
                                concurrency: (blob.size > DEFAULT_RANGE_SIZE as u64)
                                    .then_some(per_blob),
                                method_options: options.method_options.clone(),
                                ..Default::default()
                            }),
                        )
                        .await?;
                    downloaded.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(result.size, Ordering::Relaxed);
                    done.advance(blob.size);
                    Ok::<(), azure_core::Error>(())
                })
                .collect();
            futures::stream::iter(jobs)
                .buffer_unordered(concurrency)
                .try_collect::<Vec<()>>()
                .await?;

            for manifest in &plan.manifests {
                let path = blob_path(dir, &manifest.digest)?;
                if !has_blob(&path, &manifest.digest).await? {
                    write_atomic(&path, manifest.content.clone()).await?;
                }
            }
            let top = plan
                .manifests
                .last()
                .ok_or_else(|| invalid_argument("reference", "no manifest to pull"))?;

            // index.json: the other images stay, one of the same name is replaced.
            let index_path = dir.join("index.json");
            let mut index = match tokio::fs::read(&index_path).await {
                Ok(data) => serde_json::from_slice::<LayoutIndex>(&data).map_err(|e| {
                    azure_core::Error::with_message(
                        ErrorKind::DataConversion,
                        format!("{}: not an OCI index: {e}", index_path.display()),
                    )
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => LayoutIndex::default(),
                Err(e) => return Err(io_error(e, &index_path)),
            };
            index.schema_version = 2;
            index.media_type = Some(media_types::OCI_INDEX.to_string());
            let mut entry =
                OciDescriptor::new(&top.media_type, &top.digest, top.content.len() as u64);
            if let Some(name) = &ref_name {
                entry.annotations = Some(BTreeMap::from([(
                    REF_NAME_ANNOTATION.to_string(),
                    name.clone(),
                )]));
                index
                    .manifests
                    .retain(|m| ref_name_of(m) != Some(name.as_str()));
            } else {
                index
                    .manifests
                    .retain(|m| !(m.digest == top.digest && ref_name_of(m).is_none()));
            }
            index.manifests.push(entry);
            let json = serde_json::to_vec(&index).map_err(|e| {
                azure_core::Error::with_message(ErrorKind::DataConversion, e.to_string())
            })?;
            write_atomic(
                &dir.join("oci-layout"),
                Bytes::from_static(OCI_LAYOUT.as_bytes()),
            )
            .await?;
            write_atomic(&index_path, Bytes::from(json)).await?;
            Ok(PullImageResult {
                digest: top.digest.clone(),
                media_type: top.media_type.clone(),
                manifests: plan.manifests.len(),
                blobs_downloaded: downloaded.into_inner(),
                blobs_present: present.into_inner(),
                bytes_downloaded: bytes.into_inner(),
            })
        }
    )
    .await
}

fn ref_name_of(descriptor: &OciDescriptor) -> Option<&str> {
    descriptor
        .annotations
        .as_ref()
        .and_then(|a| a.get(REF_NAME_ANNOTATION))
        .map(String::as_str)
}

/// A manifest read from the layout.
struct LayoutManifest {
    digest: String,
    media_type: String,
    content: Bytes,
}

/// Reads the manifest of `descriptor` from the layout, checked against its digest.
async fn read_manifest(
    dir: &Path,
    descriptor: &OciDescriptor,
) -> azure_core::Result<LayoutManifest> {
    let path = blob_path(dir, &descriptor.digest)?;
    let content = Bytes::from(
        tokio::fs::read(&path)
            .await
            .map_err(|e| io_error(e, &path))?,
    );
    if content.len() > crate::MAX_MANIFEST_SIZE {
        return Err(invalid_argument(
            "manifest",
            format!(
                "{}: larger than {} bytes",
                path.display(),
                crate::MAX_MANIFEST_SIZE
            ),
        ));
    }
    let actual = crate::content::digest_like(&descriptor.digest, &content);
    if actual != descriptor.digest {
        return Err(digest_mismatch(descriptor.digest.clone(), actual));
    }
    let json = super::manifest_json(&content)?;
    let media_type = Some(descriptor.media_type.as_str())
        .filter(|m| !m.is_empty())
        .or_else(|| json.get("mediaType").and_then(|m| m.as_str()))
        .unwrap_or(media_types::OCI_MANIFEST)
        .to_string();
    Ok(LayoutManifest {
        digest: descriptor.digest.clone(),
        media_type,
        content,
    })
}

/// Pushes an image of the OCI image layout at `dir` to `client`'s repository under `tag`: the
/// layout's only image, or the one whose `org.opencontainers.image.ref.name` is `tag`.
///
/// Blobs go first, [`PushImageOptions::concurrency`] at once, from their files (a blob the
/// registry has is skipped); then the manifests, children before the index, with their exact
/// bytes, so the digests are the layout's. Every manifest is checked against its digest before
/// it is sent; the blobs are checked by the registry.
pub async fn push_image(
    client: &ContainerRegistryContentClient,
    dir: impl AsRef<Path>,
    tag: &str,
    options: Option<PushImageOptions<'_>>,
) -> azure_core::Result<PushImageResult> {
    let dir = dir.as_ref();
    crate::operation::traced!(
        "push_image",
        client.repository_name(),
        &options,
        async move {
            validate_tag(tag)?;
            let options = options.unwrap_or_default();
            let concurrency = nonzero("concurrency", options.concurrency, DEFAULT_COPY_CONCURRENCY)?;
            let layout_path = dir.join("oci-layout");
            let layout = tokio::fs::read(&layout_path)
                .await
                .map_err(|e| io_error(e, &layout_path))?;
            let version = serde_json::from_slice::<serde_json::Value>(&layout)
                .ok()
                .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_string));
            if version.as_deref() != Some("1.0.0") {
                return Err(invalid_argument(
                    "dir",
                    format!("{}: not an OCI image layout 1.0.0", layout_path.display()),
                ));
            }
            let index_path = dir.join("index.json");
            let data = tokio::fs::read(&index_path)
                .await
                .map_err(|e| io_error(e, &index_path))?;
            let index: LayoutIndex = serde_json::from_slice(&data).map_err(|e| {
                azure_core::Error::with_message(
                    ErrorKind::DataConversion,
                    format!("{}: not an OCI index: {e}", index_path.display()),
                )
            })?;
            let entry = match index.manifests.as_slice() {
                [only] => only.clone(),
                many => many
                    .iter()
                    .find(|m| ref_name_of(m) == Some(tag))
                    .cloned()
                    .ok_or_else(|| {
                        invalid_argument(
                            "tag",
                            format!(
                                "the layout has {} images and none is named {tag:?} ({REF_NAME_ANNOTATION})",
                                many.len()
                            ),
                        )
                    })?,
            };

            // Manifests breadth first, stored in reverse: children before what lists them.
            let mut manifests: Vec<LayoutManifest> = Vec::new();
            let mut blobs: Vec<OciDescriptor> = Vec::new();
            let mut level = vec![entry];
            let mut depth = 0;
            while !level.is_empty() {
                depth += 1;
                if depth > 4 {
                    return Err(invalid_argument("dir", "indexes are nested more than 4 deep"));
                }
                let mut next = Vec::new();
                for descriptor in level {
                    if manifests.iter().any(|m| m.digest == descriptor.digest) {
                        continue;
                    }
                    let manifest = read_manifest(dir, &descriptor).await?;
                    let json = super::manifest_json(&manifest.content)?;
                    if super::is_index(&manifest.media_type, &json) {
                        next.extend(super::descriptors(&json, "manifests")?);
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
            let mut seen = std::collections::HashSet::new();
            manifests.retain(|m| seen.insert(m.digest.clone()));

            for repository in &options.mount_from {
                crate::reference::validate_repository_name(repository)?;
            }
            let uploaded = AtomicUsize::new(0);
            let skipped = AtomicUsize::new(0);
            let mounted = AtomicUsize::new(0);
            let bytes = AtomicU64::new(0);
            let done = WholeImageProgress::new(&options.progress, &blobs);
            let jobs: Vec<_> = blobs.iter()
                .map(|blob| async {
                    if client.blob_exists(&blob.digest).await? {
                        skipped.fetch_add(1, Ordering::Relaxed);
                        done.advance(blob.size);
                        return Ok(());
                    }
                    for repository in &options.mount_from {
                        if client.mount_blob(&blob.digest, repository).await? {
                            mounted.fetch_add(1, Ordering::Relaxed);
                            done.advance(blob.size);
                            return Ok(());
                        }
                    }
                    let path = blob_path(dir, &blob.digest)?;
                    let result = client
                        .upload_blob_from_file(
                            &path,
                            Some(UploadBlobOptions {
                                skip_existing: false,
                                method_options: options.method_options.clone(),
                                ..Default::default()
                            }),
                        )
                        .await?;
                    if result.digest != blob.digest {
                        return Err(digest_mismatch(blob.digest.clone(), result.digest));
                    }
                    uploaded.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(result.size, Ordering::Relaxed);
                    done.advance(blob.size);
                    Ok::<(), azure_core::Error>(())
                })
                .collect();
            futures::stream::iter(jobs)
                .buffer_unordered(concurrency)
                .try_collect::<Vec<()>>()
                .await?;

            let last = manifests.len().saturating_sub(1);
            for (i, manifest) in manifests.iter().enumerate() {
                let set = client
                    .set_manifest_bytes(
                        manifest.content.clone(),
                        &manifest.media_type,
                        Some(SetManifestOptions {
                            tag: (i == last).then(|| tag.to_string()),
                            method_options: options.method_options.clone(),
                        }),
                    )
                    .await?;
                if set.digest != manifest.digest {
                    return Err(digest_mismatch(manifest.digest.clone(), set.digest));
                }
            }
            let top = manifests
                .last()
                .ok_or_else(|| invalid_argument("dir", "the layout names no manifest"))?;
            Ok(PushImageResult {
                digest: top.digest.clone(),
                media_type: top.media_type.clone(),
                manifests: manifests.len(),
                blobs_uploaded: uploaded.into_inner(),
                blobs_mounted: mounted.into_inner(),
                blobs_skipped: skipped.into_inner(),
                bytes_uploaded: bytes.into_inner(),
            })
        }
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(sizes: &[u64]) -> Vec<OciDescriptor> {
        sizes
            .iter()
            .map(|&size| OciDescriptor::new(media_types::OCI_LAYER_TAR, "sha256:00", size))
            .collect()
    }

    #[test]
    fn connections_are_shared_out_among_the_large_blobs_only() {
        let big = DEFAULT_RANGE_SIZE as u64 + 1;
        // One large layer beside a small config: it gets every connection.
        assert_eq!(ranges_per_blob(&blobs(&[100, big]), 6), 6);
        assert_eq!(ranges_per_blob(&blobs(&[100, big, big]), 6), 3);
        // More large blobs than connections: one each, as a plain download.
        assert_eq!(ranges_per_blob(&blobs(&[big; 7]), 6), 1);
        // Exactly one range is not large; nothing large at all leaves the count as it is.
        assert_eq!(ranges_per_blob(&blobs(&[DEFAULT_RANGE_SIZE as u64]), 4), 4);
        assert_eq!(ranges_per_blob(&[], 1), 1);
    }
}
