//! Uploads an image: a config blob, a layer (streamed from a file, in chunks), and an OCI
//! manifest tagged `v1` — the "upload images" sample of the other Azure SDKs.
//!
//! `cargo run --example upload_image` runs against an in-process emulator; set
//! `CONTAINER_REGISTRY_ENDPOINT` to use a real registry (with `DeveloperToolsCredential`).

mod common;

use azure_containerregistry::{ProgressCallback, SetManifestOptions, UploadBlobOptions};

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let target = common::target(&[]).await?;
    let content = target.content_client("hello-world")?;

    let config = content
        .upload_blob_bytes(&br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#[..], None)
        .await?;
    println!("config {} ({} bytes)", config.digest, config.size);

    // A 3 MiB layer file, uploaded in 1 MiB chunks with progress.
    let dir = std::env::temp_dir().join(format!("acr-upload-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let layer_path = dir.join("layer.tar");
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&layer_path, &data)?;
    let options = UploadBlobOptions {
        chunk_size: Some(1024 * 1024),
        progress: Some(ProgressCallback::new(|done, total| {
            println!("  layer: {done} of {total:?} bytes")
        })),
        ..Default::default()
    };
    let layer = content
        .upload_blob_from_file(&layer_path, Some(options))
        .await?;
    println!(
        "layer  {} ({} bytes{})",
        layer.digest,
        layer.size,
        if layer.skipped { ", already there" } else { "" }
    );
    std::fs::remove_dir_all(&dir)?;

    // An OCI image manifest naming the config and the layer.
    let manifest = common::image_manifest(&config, &layer);
    let set = content
        .set_manifest(
            &manifest,
            Some(SetManifestOptions {
                tag: Some("v1".into()),
                ..Default::default()
            }),
        )
        .await?;
    println!("manifest hello-world:v1 -> {}", set.digest);
    Ok(())
}
