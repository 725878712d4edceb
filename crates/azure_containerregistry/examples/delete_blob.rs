//! Deletes the layers of an image — the "delete blob" sample of the other Azure SDKs.
//!
//! `cargo run --example delete_blob` runs against an in-process emulator seeded with an image;
//! set `CONTAINER_REGISTRY_ENDPOINT` to use a real registry (it deletes the layers of
//! `hello-world:latest` there).

mod common;

use azure_containerregistry::OciImageManifest;

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let target = common::target(&[("hello-world", &["latest"])]).await?;
    let content = target.content_client("hello-world")?;

    let manifest: OciImageManifest = content.get_manifest("latest", None).await?.manifest()?;
    for layer in &manifest.layers {
        println!(
            "layer {} exists: {}",
            layer.digest,
            content.blob_exists(&layer.digest).await?
        );
        content.delete_blob(&layer.digest, None).await?;
        println!(
            "deleted {}; exists: {}",
            layer.digest,
            content.blob_exists(&layer.digest).await?
        );
    }
    Ok(())
}
