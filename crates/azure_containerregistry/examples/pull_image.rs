//! Pulls an image into an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/…`), as `skopeo copy docker://… oci:…` would.
//!
//! `cargo run --example pull_image -- <reference> <layout-dir> [--all-platforms]`, such as
//! `pull_image myregistry.azurecr.io/hello-world:latest ./hello`. Without arguments it pulls
//! `hello-world:latest` into a temporary directory. A reference without a registry goes to
//! `CONTAINER_REGISTRY_ENDPOINT`, or, when that is unset, to an in-process emulator seeded
//! with a demo image.

mod common;

use azure_containerregistry::{pull_image, ImageReference, PullImageOptions};

#[tokio::main]
async fn main() {
    common::exit_on_error(run().await)
}

async fn run() -> Result<(), common::Error> {
    let (positional, all_platforms) = common::image_args();
    let (reference, dir, temporary) = match positional.as_slice() {
        [] => (
            "hello-world:latest".to_string(),
            std::env::temp_dir().join(format!("acr-pull-image-{}", std::process::id())),
            true,
        ),
        [reference, dir] => (reference.to_string(), dir.into(), false),
        _ => return Err("usage: pull_image <reference> <layout-dir> [--all-platforms]".into()),
    };
    let reference: ImageReference = reference.parse().map_err(|e| format!("{reference}: {e}"))?;
    let (client, _target) = common::image_client(&reference, true).await?;
    let options = PullImageOptions {
        all_platforms,
        ..Default::default()
    };
    let result = pull_image(&client, reference.tag_or_digest(), &dir, Some(options)).await?;
    println!(
        "pulled {reference} ({}, {}) into {}: {} manifests, {} blobs downloaded ({} bytes), {} already there",
        result.digest,
        result.media_type,
        dir.display(),
        result.manifests,
        result.blobs_downloaded,
        result.bytes_downloaded,
        result.blobs_present,
    );
    if temporary {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
