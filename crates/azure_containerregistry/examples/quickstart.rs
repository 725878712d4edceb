//! Quickstart: push an image, look at it with the metadata API, lock its tag, pull it back
//! verified, and clean up.
//!
//! `cargo run --example quickstart` runs against an in-process emulator. With
//! `CONTAINER_REGISTRY_ENDPOINT=https://myregistry.azurecr.io` it uses that registry, signed in
//! with `azure_identity::DeveloperToolsCredential` (`az login` / `azd auth login`).

mod common;

use azure_containerregistry::{
    media_types, ContainerRegistryClient, ContainerRegistryContentClient, OciDescriptor,
    OciImageManifest, SetManifestOptions, TagWriteableProperties,
};
use futures::TryStreamExt;

const REPOSITORY: &str = "sample-oci-image";
const TAG: &str = "demo";

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let target = common::target(&[]).await?;
    let endpoint = target.endpoint.as_str();
    let credential = target.credential.clone();
    let content =
        ContainerRegistryContentClient::new(endpoint, REPOSITORY, Some(credential.clone()), None)?;
    let registry = ContainerRegistryClient::new(endpoint, Some(credential), None)?;

    // 1. Blobs: a config and a layer.
    let config_bytes = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"example": "quickstart"}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))?;
    let layer_bytes: Vec<u8> = b"Hello from the Azure Container Registry Rust SDK!\n".repeat(1000);
    let config = content
        .upload_blob_bytes(config_bytes.clone(), None)
        .await?;
    println!("uploaded config  {} ({} bytes)", config.digest, config.size);
    let layer = content.upload_blob(&layer_bytes[..], None).await?;
    println!("uploaded layer   {} ({} bytes)", layer.digest, layer.size);

    // 2. The manifest, tagged.
    let manifest = OciImageManifest {
        config: OciDescriptor::new(media_types::OCI_CONFIG, config.digest.clone(), config.size),
        layers: vec![OciDescriptor::new(
            media_types::OCI_LAYER_TAR,
            layer.digest.clone(),
            layer.size,
        )],
        annotations: Some(
            [(
                "org.opencontainers.image.title".to_string(),
                "quickstart".to_string(),
            )]
            .into(),
        ),
        ..Default::default()
    };
    let set = content
        .set_manifest(
            &manifest,
            Some(SetManifestOptions {
                tag: Some(TAG.into()),
                ..Default::default()
            }),
        )
        .await?;
    println!("set manifest     {REPOSITORY}:{TAG} -> {}", set.digest);

    // 3. What the registry holds.
    let repositories: Vec<String> = registry.list_repository_names(None)?.try_collect().await?;
    println!("repositories     {repositories:?}");
    let artifact = registry.artifact(REPOSITORY, TAG);
    let mut tags = artifact.list_tag_properties(None)?;
    while let Some(tag) = tags.try_next().await? {
        println!(
            "tag              {}:{} -> {}",
            tag.repository_name, tag.name, tag.digest
        );
    }
    let mut manifests = registry
        .repository(REPOSITORY)
        .list_manifest_properties(None)?;
    while let Some(m) = manifests.try_next().await? {
        println!(
            "manifest         {} ({:?} bytes, tags {:?})",
            m.digest, m.size_in_bytes, m.tags
        );
    }

    // 4. Lock the tag against overwrite and deletion.
    let locked = TagWriteableProperties {
        can_write: Some(false),
        can_delete: Some(false),
        ..Default::default()
    };
    let props = artifact
        .update_tag_properties(TAG, locked, None)
        .await?
        .into_model()?;
    println!(
        "locked tag       {TAG}: can_write={:?} can_delete={:?}",
        props.can_write, props.can_delete
    );

    // 5. Pull it back, every byte verified against its digest.
    let pulled = content.get_manifest(TAG, None).await?;
    let image: OciImageManifest = pulled.manifest()?;
    println!("pulled manifest  {} ({})", pulled.digest, pulled.media_type);
    for blob in std::iter::once(&image.config).chain(&image.layers) {
        let bytes = content
            .download_blob(&blob.digest, None)
            .await?
            .collect_bytes()
            .await?;
        println!(
            "pulled blob      {} ({} bytes, verified)",
            blob.digest,
            bytes.len()
        );
    }
    assert_eq!(image, manifest);

    // 6. Clean up: unlock, delete the manifest (and with it the tag), then the blobs.
    let unlocked = TagWriteableProperties {
        can_write: Some(true),
        can_delete: Some(true),
        ..Default::default()
    };
    artifact.update_tag_properties(TAG, unlocked, None).await?;
    content.delete_manifest(&set.digest, None).await?;
    println!("deleted manifest {}", set.digest);
    for digest in [&config.digest, &layer.digest] {
        content.delete_blob(digest, None).await?;
        println!("deleted blob     {digest}");
    }
    if let Some(emulator) = target.emulator {
        emulator.shutdown().await;
    }
    println!("done");
    Ok(())
}
