//! Deletes all but the three most recently updated images of every repository.
//!
//! `CONTAINER_REGISTRY_ENDPOINT=https://myregistry.azurecr.io cargo run --example delete_images`
//! deletes for real (set `DRY_RUN=1` to only print what would go). Without the variable it runs
//! against a local emulator seeded with a few images.

mod common;

use azure_containerregistry::{ArtifactManifestOrder, ListManifestPropertiesOptions};
use futures::TryStreamExt;

/// How many images to keep per repository.
const KEEP: usize = 3;

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let target = common::target(&[
        ("samples/app", &["v1"]),
        ("samples/app", &["v2"]),
        ("samples/app", &["v3"]),
        ("samples/app", &["v4"]),
        ("samples/app", &["v5", "latest"]),
        ("samples/tool", &["1.0"]),
        ("samples/tool", &["1.1"]),
    ])
    .await?;
    let dry_run = std::env::var_os("DRY_RUN").is_some();
    let client = target.registry_client()?;

    let mut names = client.list_repository_names(None)?;
    while let Some(name) = names.try_next().await? {
        let repository = client.repository(&name);
        let mut manifests =
            repository.list_manifest_properties(Some(ListManifestPropertiesOptions {
                order_by: Some(ArtifactManifestOrder::LastUpdatedOnDescending),
                ..Default::default()
            }))?;
        let mut seen = 0;
        while let Some(manifest) = manifests.try_next().await? {
            seen += 1;
            if seen <= KEEP {
                println!("keep   {name}@{} {:?}", manifest.digest, manifest.tags);
                continue;
            }
            if manifest.can_delete == Some(false) {
                println!("locked {name}@{} {:?}", manifest.digest, manifest.tags);
                continue;
            }
            println!("delete {name}@{} {:?}", manifest.digest, manifest.tags);
            if !dry_run {
                repository.artifact(&manifest.digest).delete(None).await?;
            }
        }
    }

    // What is left, newest first.
    let mut names = client.list_repository_names(None)?;
    while let Some(name) = names.try_next().await? {
        let mut manifests = client.repository(&name).list_manifest_properties(Some(
            ListManifestPropertiesOptions {
                order_by: Some(ArtifactManifestOrder::LastUpdatedOnDescending),
                ..Default::default()
            },
        ))?;
        let mut tags = Vec::new();
        while let Some(manifest) = manifests.try_next().await? {
            tags.push(manifest.tags.join(","));
        }
        println!("left   {name}: {} [{}]", tags.len(), tags.join(" "));
    }
    Ok(())
}
