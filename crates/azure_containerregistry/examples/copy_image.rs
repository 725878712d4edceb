//! Copies an image between repositories or registries, digests preserved: blobs the target has
//! are skipped, blobs in the same registry are mounted, others are streamed (never to disk).
//!
//! `cargo run --example copy_image -- <source-ref> <target-ref> [--all-platforms]`, such as
//! `copy_image myregistry.azurecr.io/hello-world:latest other.azurecr.io/hello-world:latest`.
//! Without arguments it copies `hello-world:latest` to `hello-world-copy:latest`. References
//! without a registry go to `CONTAINER_REGISTRY_ENDPOINT`, or, when that is unset, to one
//! in-process emulator seeded with a demo image.

mod common;

use azure_containerregistry::{copy_image, CopyImageOptions, ImageReference};

#[tokio::main]
async fn main() {
    common::exit_on_error(run().await)
}

async fn run() -> Result<(), common::Error> {
    let (positional, all_platforms) = common::image_args();
    let (source, target) = match positional.as_slice() {
        [] => (
            "hello-world:latest".to_string(),
            "hello-world-copy:latest".to_string(),
        ),
        [source, target] => (source.to_string(), target.to_string()),
        _ => return Err("usage: copy_image <source-ref> <target-ref> [--all-platforms]".into()),
    };
    let source: ImageReference = source.parse().map_err(|e| format!("{source}: {e}"))?;
    let target: ImageReference = target.parse().map_err(|e| format!("{target}: {e}"))?;
    let (source_client, emulator) = common::image_client(&source, true).await?;
    // Without a registry in the target reference, the target is where the source is (the one
    // emulator, or CONTAINER_REGISTRY_ENDPOINT).
    let (target_client, _kept) = match (&emulator, target.registry()) {
        (Some(emulator), None) => (emulator.content_client(target.repository())?, None),
        _ => common::image_client(&target, false).await?,
    };
    let options = CopyImageOptions {
        all_platforms,
        ..Default::default()
    };
    let (from, tag) = (source.tag_or_digest(), target.tag().unwrap_or("latest"));
    let result = copy_image(
        &source_client,
        from,
        &target_client,
        Some(tag),
        Some(options),
    )
    .await?;
    println!(
        "copied {source} to {target} ({}, {}): {} manifests, {} blobs copied ({} bytes), {} mounted, {} already there",
        result.digest,
        result.media_type,
        result.manifests,
        result.blobs_copied,
        result.bytes_transferred,
        result.blobs_mounted,
        result.blobs_skipped,
    );
    Ok(())
}
