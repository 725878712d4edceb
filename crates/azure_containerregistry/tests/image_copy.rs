//! Whole images: a platform's manifest out of an index, and copies of images (one platform or
//! a whole index) between repositories and registries, digests preserved.

mod common;
use common::*;

use azure_containerregistry::{
    copy_image, media_types, ContainerRegistryContentClient, CopyImageOptions, NoMatchingPlatform,
    ProgressCallback,
};
use azure_containerregistry_emulator::Emulator;

/// The index the copy tests start from (arm64 with its variant, as buildx names it).
const COPY_PLATFORMS: &[&str] = &["linux/amd64", "linux/arm64/v8"];

/// A client for `image/source` of `emu`, where an index of [`COPY_PLATFORMS`] (with a shared
/// layer) is pushed as `v1`: the client, the index digest and the children.
async fn source_index(emu: &Emulator) -> (ContainerRegistryContentClient, String, Vec<Child>) {
    let source = client(&emu.endpoint(), "image/source");
    let (index_digest, children) = push_index(&source, "v1", COPY_PLATFORMS, true).await;
    (source, index_digest, children)
}

#[tokio::test]
async fn manifest_for_platform_from_a_two_platform_index() {
    let emu = open_emulator().await;
    let content = client(&emu.endpoint(), "image/platforms");
    let (index_digest, children) = push_index(&content, "multi", COPY_PLATFORMS, true).await;
    for child in &children {
        let got = content
            .get_manifest_for_platform("multi", &child.platform, None)
            .await
            .expect("platform manifest");
        assert_eq!(got.digest, child.digest, "{}", child.platform);
        assert_eq!(got.media_type, media_types::OCI_MANIFEST);
    }
    // arm64 without a variant is v8; aarch64 is arm64.
    let got = content
        .get_manifest_for_platform("multi", &"linux/aarch64".parse().unwrap(), None)
        .await
        .expect("aarch64");
    assert_eq!(got.digest, children[1].digest);
    // By the index's digest too; a single-image manifest comes back as it is.
    let got = content
        .get_manifest_for_platform(&index_digest, &children[0].platform, None)
        .await
        .expect("by digest");
    assert_eq!(got.digest, children[0].digest);
    let got = content
        .get_manifest_for_platform(&children[1].digest, &children[0].platform, None)
        .await
        .expect("single image");
    assert_eq!(got.digest, children[1].digest);
    let error = content
        .get_manifest_for_platform("multi", &"linux/s390x".parse().unwrap(), None)
        .await
        .expect_err("no s390x");
    let none = error
        .downcast_ref::<NoMatchingPlatform>()
        .expect("NoMatchingPlatform");
    assert_eq!(none.wanted, "linux/s390x");
    assert_eq!(none.available, ["linux/amd64", "linux/arm64/v8"]);
}

/// Asserts that `target` holds the index `index_digest` and every child and blob of it.
async fn assert_whole_index(
    target: &ContainerRegistryContentClient,
    tag: &str,
    index_digest: &str,
    children: &[Child],
) {
    let index = target.get_manifest(tag, None).await.expect("index");
    assert_eq!(index.digest, index_digest);
    for child in children {
        let got = target
            .get_manifest(&child.digest, None)
            .await
            .expect("child");
        assert_eq!(got.digest, child.digest);
        for blob in &child.blobs {
            assert_eq!(sha256_digest(&download_all(target, blob).await), *blob);
        }
    }
}

#[tokio::test]
async fn a_multi_arch_index_copied_between_registries_keeps_every_digest() {
    let (source_emu, target_emu) = (open_emulator().await, open_emulator().await);
    let (source, index_digest, children) = source_index(&source_emu).await;
    let target = client(&target_emu.endpoint(), "image/target");
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reports.clone();
    let result = copy_image(
        &source,
        "v1",
        &target,
        Some("copied"),
        Some(CopyImageOptions {
            all_platforms: true,
            concurrency: Some(2),
            progress: Some(ProgressCallback::new(move |done, total| {
                seen.lock().unwrap().push((done, total))
            })),
            ..Default::default()
        }),
    )
    .await
    .expect("copy");
    assert_eq!(result.digest, index_digest);
    assert_eq!(result.media_type, media_types::OCI_INDEX);
    assert_eq!(result.manifests, 3, "two children and the index");
    assert_eq!(
        result.blobs_copied, 5,
        "two configs, one shared layer, two own layers"
    );
    assert_eq!(result.blobs_mounted, 0);
    assert_eq!(result.blobs_skipped, 0);
    assert_eq!(
        target_emu
            .request_log()
            .iter()
            .filter(|r| r.method == "POST" && r.path_and_query.contains("mount="))
            .count(),
        0
    );
    assert_whole_index(&target, "copied", &index_digest, &children).await;
    let reports = reports.lock().unwrap().clone();
    let (done, total) = *reports.last().expect("progress");
    assert_eq!(Some(done), total);
    assert_eq!(done, result.bytes_transferred);
    assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0));

    // Again: everything is there, nothing is transferred.
    let again = copy_all(&source, &target, Some("copied"))
        .await
        .expect("copy again");
    assert_eq!((again.blobs_copied, again.blobs_skipped), (0, 5));
    assert_eq!(again.bytes_transferred, 0);
}

#[tokio::test]
async fn one_platform_is_copied_out_of_an_index_by_default() {
    let (source_emu, target_emu) = (open_emulator().await, open_emulator().await);
    let (source, _, children) = source_index(&source_emu).await;
    let target = client(&target_emu.endpoint(), "image/one");
    let result = copy_platform(&source, &target, &children[1].platform)
        .await
        .expect("copy");
    assert_eq!(result.digest, children[1].digest);
    assert_eq!((result.manifests, result.blobs_copied), (1, 3));
    let got = target.get_manifest("v1", None).await.expect("tagged v1");
    assert_eq!(got.digest, children[1].digest);
    assert!(target
        .get_manifest(&children[0].digest, None)
        .await
        .is_err());
}

#[tokio::test]
async fn a_copy_inside_one_registry_mounts_and_uploads_no_layer_bytes() {
    let emu = open_emulator().await;
    let source = client(&emu.endpoint(), "image/here");
    let target = client(&emu.endpoint(), "image/there");
    let (index_digest, children) = push_index(&source, "v1", COPY_PLATFORMS, true).await;
    let before = emu.request_log().len();
    let result = copy_all(&source, &target, Some("v1")).await.expect("copy");
    assert_eq!(result.digest, index_digest);
    assert_eq!((result.blobs_mounted, result.blobs_copied), (5, 0));
    assert_eq!(result.bytes_transferred, 0);
    let log = emu.request_log()[before..].to_vec();
    let uploads: Vec<_> = log
        .iter()
        .filter(|r| r.path_and_query.contains("/blobs/uploads"))
        .collect();
    assert!(
        uploads
            .iter()
            .all(|r| r.method == "POST" && r.path_and_query.contains("mount=")),
        "only mounts: {uploads:?}"
    );
    assert_eq!(uploads.len(), 5, "{uploads:?}");
    assert!(
        !log.iter()
            .any(|r| r.method == "PATCH"
                || (r.method == "PUT" && r.path_and_query.contains("/blobs/"))),
        "{log:?}"
    );
    assert!(!log
        .iter()
        .any(|r| r.method == "GET" && r.path_and_query.contains("/blobs/sha256")));
    assert_whole_index(&target, "v1", &index_digest, &children).await;
}

#[tokio::test]
async fn a_multi_arch_index_copied_into_docker_registry() {
    let Some(registry) = distribution("a_multi_arch_index_copied_into_docker_registry") else {
        return;
    };
    let emu = open_emulator().await;
    let (source, index_digest, children) = source_index(&emu).await;
    let target = client(&registry.endpoint(), "image/target");
    let result = copy_all(&source, &target, None).await.expect("copy");
    assert_eq!(result.digest, index_digest);
    assert_whole_index(&target, "v1", &index_digest, &children).await;
    // And back, into the emulator under another name, from docker-registry.
    let back = client(&emu.endpoint(), "image/back");
    let result = copy_all(&target, &back, Some("returned"))
        .await
        .expect("copy back");
    assert_eq!(result.digest, index_digest);
    assert_whole_index(&back, "returned", &index_digest, &children).await;
}

#[tokio::test]
async fn a_corrupted_source_blob_fails_the_copy_and_stores_no_manifest() {
    use acr_test_support::{Fault, Match, Rule};
    let (source_emu, target_emu) = (open_emulator().await, open_emulator().await);
    let (_, _, children) = source_index(&source_emu).await;
    let proxy = acr_test_support::FaultProxy::start(&source_emu.endpoint())
        .await
        .expect("proxy");
    // Every blob download has a flipped byte (all retries included).
    proxy.add_rule(Rule::new(
        Match::any().method("GET").path_contains("/blobs/sha256"),
        Fault::FlipByte(10),
    ));
    let source = client(&proxy.endpoint(), "image/source");
    let target = client(&target_emu.endpoint(), "image/target");
    let error = copy_platform(&source, &target, &children[0].platform)
        .await
        .expect_err("corrupt content is not copied");
    assert!(
        error.to_string().contains("digest mismatch") || mismatch(&error).is_some(),
        "{error}"
    );
    assert!(is_not_found(
        &target
            .get_manifest("v1", None)
            .await
            .expect_err("no manifest")
    ));
    assert!(target
        .get_manifest(&children[0].digest, None)
        .await
        .is_err());
}

/// Copies every platform of the source's `v1` into `target` (under `tag`, or `v1`).
async fn copy_all(
    source: &ContainerRegistryContentClient,
    target: &ContainerRegistryContentClient,
    tag: Option<&str>,
) -> azure_core::Result<azure_containerregistry::CopyImageResult> {
    let all = CopyImageOptions {
        all_platforms: true,
        ..Default::default()
    };
    copy_image(source, "v1", target, tag, Some(all)).await
}

/// Copies the manifest of `v1` for `platform` into `target`, tagged `v1` there too.
async fn copy_platform(
    source: &ContainerRegistryContentClient,
    target: &ContainerRegistryContentClient,
    platform: &azure_containerregistry::Platform,
) -> azure_core::Result<azure_containerregistry::CopyImageResult> {
    let options = CopyImageOptions {
        platform: Some(platform.clone()),
        ..Default::default()
    };
    copy_image(source, "v1", target, None, Some(options)).await
}
