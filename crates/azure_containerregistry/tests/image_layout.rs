//! OCI image layouts: `pull_image` writes one (read back by `push_image` and by skopeo),
//! `push_image` sends one (also one skopeo wrote), every digest kept.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use azure_containerregistry_emulator::Emulator;

use azure_containerregistry::{
    media_types, pull_image, push_image, ContainerRegistryContentClient, InvalidArgument,
    OciDescriptor, Platform, PullImageOptions, PullImageResult, REF_NAME_ANNOTATION,
};

/// An open emulator with two images (linux/amd64, linux/arm64) and an index of them pushed as
/// `v1` to `repository`: the emulator, the repository's client, the index digest and the
/// children's digests.
async fn index_in(
    repository: &str,
) -> (
    Emulator,
    ContainerRegistryContentClient,
    String,
    Vec<String>,
) {
    let emu = open_emulator().await;
    let content = client(&emu.endpoint(), repository);
    let (index, children) =
        common::push_index(&content, "v1", &["linux/amd64", "linux/arm64"], false).await;
    let children = children.into_iter().map(|c| c.digest).collect();
    (emu, content, index, children)
}

/// The entries of the layout's `index.json`.
fn layout_entries(dir: &Path) -> Vec<OciDescriptor> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
            .expect("json");
    serde_json::from_value(index["manifests"].clone()).expect("descriptors")
}

/// Every file under `blobs/sha256` hashes to its name.
fn assert_blobs_verified(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir.join("blobs/sha256")).expect("blobs") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(
            sha256_digest(&std::fs::read(&path).unwrap()),
            format!("sha256:{name}")
        );
        n += 1;
    }
    n
}

#[tokio::test]
async fn a_pulled_index_is_a_layout_that_pushes_back_with_the_same_digests() {
    let (_source_emu, source, index_digest, children) = index_in("layout/source").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pulled = pull_image(
        &source,
        "v1",
        dir.path(),
        Some(PullImageOptions {
            all_platforms: true,
            concurrency: Some(2),
            ..Default::default()
        }),
    )
    .await
    .expect("pull");
    assert_eq!(pulled.digest, index_digest);
    assert_eq!((pulled.manifests, pulled.blobs_downloaded), (3, 4));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let entries = layout_entries(dir.path());
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].digest, index_digest);
    assert_eq!(entries[0].media_type, media_types::OCI_INDEX);
    assert_eq!(
        entries[0].annotations.as_ref().unwrap()[REF_NAME_ANNOTATION],
        "v1"
    );
    assert_eq!(assert_blobs_verified(dir.path()), 7, "3 manifests, 4 blobs");

    // Again: nothing is downloaded; the entry is replaced, not added.
    let again = pull_all(&source, dir.path()).await;
    assert_eq!((again.blobs_downloaded, again.blobs_present), (0, 4));
    assert_eq!(layout_entries(dir.path()).len(), 1);

    // A corrupted blob file is fetched again.
    let layer = dir.path().join("blobs/sha256").join(&children[0][7..]);
    assert!(layer.exists());
    let manifest = source.get_manifest(&children[0], None).await.unwrap();
    let layer_digest = manifest
        .manifest::<azure_containerregistry::OciImageManifest>()
        .unwrap()
        .layers[0]
        .digest
        .clone();
    let layer_path = dir.path().join("blobs/sha256").join(&layer_digest[7..]);
    std::fs::write(&layer_path, b"corrupt").unwrap();
    let repaired = pull_all(&source, dir.path()).await;
    assert_eq!(repaired.blobs_downloaded, 1);
    assert_blobs_verified(dir.path());

    let target_emu = open_emulator().await;
    let target = client(&target_emu.endpoint(), "layout/target");
    let pushed = push_image(&target, dir.path(), "v1", None)
        .await
        .expect("push");
    assert_eq!(pushed.digest, index_digest);
    assert_eq!((pushed.manifests, pushed.blobs_uploaded), (3, 4));
    assert_eq!(
        target.get_manifest("v1", None).await.unwrap().digest,
        index_digest
    );
    assert_manifests(&target, &children).await;
    let again = push_image(&target, dir.path(), "v1", None)
        .await
        .expect("push again");
    assert_eq!((again.blobs_uploaded, again.blobs_skipped), (0, 4));
}

#[tokio::test]
async fn one_platform_is_pulled_by_default_and_images_are_chosen_by_ref_name() {
    let (emu, source, _, children) = index_in("layout/one").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let arm = pull_platform(&source, dir.path(), "linux/arm64", "arm")
        .await
        .expect("pull arm64");
    assert_eq!(arm.digest, children[1]);
    assert_eq!((arm.manifests, arm.blobs_downloaded), (1, 2));
    let amd = pull_platform(&source, dir.path(), "linux/amd64", "amd")
        .await
        .expect("pull amd64");
    assert_eq!(amd.digest, children[0]);
    assert_eq!(layout_entries(dir.path()).len(), 2);

    let target = client(&emu.endpoint(), "layout/chosen");
    let pushed = push_image(&target, dir.path(), "arm", None)
        .await
        .expect("push arm");
    assert_eq!(pushed.digest, children[1]);
    let error = push_image(&target, dir.path(), "missing", None)
        .await
        .expect_err("no such image");
    assert_eq!(
        error.downcast_ref::<InvalidArgument>().map(|a| a.argument),
        Some("tag"),
        "{error}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(push_image(&target, empty.path(), "v1", None).await.is_err());
}

/// Runs `skopeo copy --preserve-digests` with `args` (off the async threads); panics with its
/// output when it fails.
async fn skopeo_copy(args: &[&str]) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/skopeo")
            .args(["--insecure-policy", "copy", "--preserve-digests"])
            .args(&args)
            .output()
            .map(|output| (output, args))
    })
    .await
    .expect("skopeo task")
    .expect("skopeo runs");
    let (output, args) = output;
    assert!(
        output.status.success(),
        "skopeo {args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn skopeo_reads_what_pull_image_writes_and_push_image_reads_what_skopeo_writes() {
    if !Path::new("/usr/bin/skopeo").exists() {
        acr_test_support::skip_or_fail("skopeo interop", "skopeo is not installed");
        return;
    }
    let (emu, source, index_digest, children) = index_in("skopeo/source").await;
    let host = emu.endpoint().trim_start_matches("http://").to_string();

    // pull_image → skopeo oci: → registry.
    let written = tempfile::tempdir().expect("tempdir");
    pull_all(&source, written.path()).await;
    let dir = written.path().to_string_lossy().to_string();
    let from = format!("oci:{dir}:v1");
    let to = format!("docker://{host}/skopeo/from-layout:v1");
    skopeo_copy(&["--all", "--dest-tls-verify=false", &from, &to]).await;
    let copied = client(&emu.endpoint(), "skopeo/from-layout");
    assert_eq!(
        copied.get_manifest("v1", None).await.unwrap().digest,
        index_digest
    );
    assert_manifests(&copied, &children).await;

    // registry → skopeo oci: → push_image.
    let skopeo_dir = tempfile::tempdir().expect("tempdir");
    let to = format!("oci:{}:v1", skopeo_dir.path().display());
    let from = format!("docker://{host}/skopeo/source:v1");
    skopeo_copy(&["--all", "--src-tls-verify=false", &from, &to]).await;
    let target = client(&emu.endpoint(), "skopeo/pushed");
    let pushed = push_image(&target, skopeo_dir.path(), "v1", None)
        .await
        .expect("push what skopeo wrote");
    assert_eq!(pushed.digest, index_digest);
    assert_manifests(&target, &children).await;
}

/// The issue's acceptance: a two-platform index pushed with skopeo is copied by the
/// `copy_image --all-platforms` example to a second registry with identical digests, and
/// `pull_image` of one platform writes a layout that skopeo copies back byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushed_index_is_copied_whole_and_one_platform_round_trips_through_skopeo() {
    if !Path::new("/usr/bin/skopeo").exists() {
        acr_test_support::skip_or_fail("skopeo acceptance", "skopeo is not installed");
        return;
    }
    // A two-platform index in a layout (written by pull_image from a scratch repository),
    // pushed to the first registry by skopeo.
    let (first, scratch, index_digest, children) = index_in("scratch/index").await;
    let second = open_emulator().await;
    let host = |e: &Emulator| e.endpoint().trim_start_matches("http://").to_string();
    let layout = tempfile::tempdir().expect("tempdir");
    pull_all(&scratch, layout.path()).await;
    let (from, to) = (
        format!("oci:{}:v1", layout.path().display()),
        format!("docker://{}/multi/app:v1", host(&first)),
    );
    skopeo_copy(&["--all", "--dest-tls-verify=false", &from, &to]).await;

    // copy_image --all-platforms to the second registry: identical digests at every level.
    let (source_ref, target_ref) = (
        format!("{}/multi/app:v1", host(&first)),
        format!("{}/copied/app:v1", host(&second)),
    );
    let run = tokio::task::spawn_blocking(move || {
        acr_test_support::run_example(
            "copy_image",
            &[&source_ref, &target_ref, "--all-platforms"],
            std::time::Duration::from_secs(120),
        )
    })
    .await
    .expect("example task");
    run.assert_success("copy_image --all-platforms");
    let copied = client(&second.endpoint(), "copied/app");
    assert_eq!(
        copied.get_manifest("v1", None).await.unwrap().digest,
        index_digest
    );
    let source = client(&first.endpoint(), "multi/app");
    for child in &children {
        let there = copied.get_manifest(child, None).await.unwrap();
        assert_eq!(there.digest, *child);
        let manifest: azure_containerregistry::OciImageManifest = there.manifest().unwrap();
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            assert_eq!(
                download_all(&copied, &blob.digest).await,
                download_all(&source, &blob.digest).await
            );
        }
    }

    // pull_image of one platform → skopeo copies the layout back, byte for byte.
    let one = tempfile::tempdir().expect("tempdir");
    let arm64: Platform = "linux/arm64".parse().unwrap();
    let pulled = pull_image(
        &copied,
        "v1",
        one.path(),
        Some(PullImageOptions {
            platform: Some(arm64),
            ..Default::default()
        }),
    )
    .await
    .expect("pull one platform");
    assert_eq!(pulled.digest, children[1], "the arm64 child");
    let (from, to) = (
        format!("oci:{}:v1", one.path().display()),
        format!("docker://{}/back/app:v1", host(&first)),
    );
    skopeo_copy(&["--dest-tls-verify=false", &from, &to]).await;
    let back = client(&first.endpoint(), "back/app");
    let manifest = back.get_manifest("v1", None).await.unwrap();
    assert_eq!(manifest.digest, children[1]);
    assert_eq!(
        manifest.content,
        source
            .get_manifest(&children[1], None)
            .await
            .unwrap()
            .content
    );
}

/// Pulls every platform of `v1` into `dir`.
async fn pull_all(content: &ContainerRegistryContentClient, dir: &Path) -> PullImageResult {
    let all = PullImageOptions {
        all_platforms: true,
        ..Default::default()
    };
    pull_image(content, "v1", dir, Some(all))
        .await
        .expect("pull")
}

/// Pulls the manifest of `v1` for `platform` into `dir`, named `ref_name` in `index.json`.
async fn pull_platform(
    content: &ContainerRegistryContentClient,
    dir: &Path,
    platform: &str,
    ref_name: &str,
) -> azure_core::Result<PullImageResult> {
    let options = PullImageOptions {
        platform: Some(platform.parse().expect("platform")),
        ref_name: Some(ref_name.into()),
        ..Default::default()
    };
    pull_image(content, "v1", dir, Some(options)).await
}

/// Asserts that `content` has each manifest of `digests`, under that digest.
async fn assert_manifests(content: &ContainerRegistryContentClient, digests: &[String]) {
    for digest in digests {
        let got = content.get_manifest(digest, None).await.expect("manifest");
        assert_eq!(got.digest, *digest);
    }
}

/// The `(done, total)` reports a progress callback received.
type Reports = std::sync::Arc<std::sync::Mutex<Vec<(u64, Option<u64>)>>>;

/// A progress callback and the reports it receives.
fn recorder() -> (azure_containerregistry::ProgressCallback, Reports) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let callback = azure_containerregistry::ProgressCallback::new({
        let seen = seen.clone();
        move |done, total| seen.lock().unwrap().push((done, total))
    });
    (callback, seen)
}

#[tokio::test]
async fn a_push_mounts_from_named_repositories_and_both_directions_report_whole_image_progress() {
    use azure_containerregistry::PushImageOptions;
    let (emu, base, index_digest, _) = index_in("team/base").await;

    let layout = tempfile::tempdir().expect("tempdir");
    let (progress, pulled_reports) = recorder();
    let pulled = pull_image(
        &base,
        "v1",
        layout.path(),
        Some(PullImageOptions {
            all_platforms: true,
            progress: Some(progress),
            ..Default::default()
        }),
    )
    .await
    .expect("pull");
    let reports = pulled_reports.lock().unwrap().clone();
    let total = reports.last().and_then(|r| r.1).expect("a total");
    assert_eq!(reports.last().map(|r| r.0), Some(total), "{reports:?}");
    assert_eq!(total, pulled.bytes_downloaded);
    assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0), "{reports:?}");

    emu.clear_request_log();
    let app = client(&emu.endpoint(), "team/app");
    let (progress, pushed_reports) = recorder();
    let pushed = push_image(
        &app,
        layout.path(),
        "v1",
        Some(PushImageOptions {
            mount_from: vec!["team/other".into(), "team/base".into()],
            progress: Some(progress),
            ..Default::default()
        }),
    )
    .await
    .expect("push");
    assert_eq!(pushed.digest, index_digest);
    assert_eq!((pushed.blobs_uploaded, pushed.blobs_mounted), (0, 4));
    let log = emu.request_log();
    assert!(
        !log.iter().any(|r| r.method == "PATCH"),
        "no blob bytes were uploaded: {log:?}"
    );
    assert_eq!(
        pushed_reports.lock().unwrap().last().copied(),
        Some((total, Some(total)))
    );
    let error = push_image(
        &app,
        layout.path(),
        "v1",
        Some(PushImageOptions {
            mount_from: vec!["Not A Repository".into()],
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    assert!(invalid_argument(&error).is_some(), "{error}");
}

#[tokio::test]
async fn a_lone_large_layer_is_pulled_as_parallel_ranges_and_still_verified() {
    let emu = open_emulator().await;
    let proxy = acr_test_support::FaultProxy::start(&emu.endpoint())
        .await
        .expect("proxy");
    let content = client(&proxy.endpoint(), "layout/large");
    let data: Vec<u8> = (0..20 * 1024 * 1024 + 5).map(|i| (i % 251) as u8).collect();
    let layer = content
        .upload_blob_bytes(data.clone(), None)
        .await
        .expect("layer");
    let config = content
        .upload_blob_bytes(&b"{}"[..], None)
        .await
        .expect("config");
    content
        .set_manifest(&oci_manifest(&config, &[&layer]), tagged("v1"))
        .await
        .expect("manifest");
    proxy.clear_requests();

    let dir = tempfile::tempdir().expect("tempdir");
    let pulled = pull_image(&content, "v1", dir.path(), None)
        .await
        .expect("pull");
    assert_eq!(
        (pulled.blobs_downloaded, pulled.bytes_downloaded),
        (2, data.len() as u64 + 2)
    );
    let hex = layer.digest.trim_start_matches("sha256:");
    assert_eq!(
        std::fs::read(dir.path().join("blobs/sha256").join(hex)).unwrap(),
        data
    );
    assert_eq!(assert_blobs_verified(dir.path()), 3);

    let ranges_of = |digest: &str| {
        let mut ranges: Vec<Option<String>> = proxy
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path_and_query.ends_with(digest))
            .map(|r| r.header("range").map(str::to_string))
            .collect();
        ranges.sort();
        ranges
    };
    // The layer (20 MiB + 5 bytes) in its three 8 MiB ranges; the small config in one plain GET.
    assert_eq!(
        ranges_of(&layer.digest),
        [
            Some("bytes=0-8388607".to_string()),
            Some("bytes=16777216-20971524".to_string()),
            Some("bytes=8388608-16777215".to_string()),
        ]
    );
    assert_eq!(ranges_of(&config.digest), [None]);
}
