//! Deletes all but the three most recently updated images of every repository. Locked images
//! (`can_delete` false) are kept, unless `--unlock` is given: then they are unlocked first and
//! deleted too, as the Python SDK's sample does.
//!
//! `CONTAINER_REGISTRY_ENDPOINT=https://myregistry.azurecr.io cargo run --example delete_images`
//! deletes for real (set `DRY_RUN=1` to only print what would go; add `-- --unlock` to delete
//! locked images too). Without the variable it runs against a local emulator seeded with a few
//! images, the oldest of which is locked.

mod common;

use azure_containerregistry::{
    ArtifactManifestOrder, ListManifestPropertiesOptions, ManifestWriteableProperties,
};
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
    let unlock = std::env::args().any(|a| a == "--unlock");
    let client = target.registry_client()?;
    if target.emulator.is_some() {
        // The demo registry's oldest image is locked, as a release image might be.
        let locked = ManifestWriteableProperties {
            can_delete: Some(false),
            can_write: Some(false),
            ..Default::default()
        };
        let artifact = client.artifact("samples/app", "v1");
        artifact.update_manifest_properties(locked, None).await?;
    }

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
            let artifact = repository.artifact(&manifest.digest);
            let locked = manifest.can_delete == Some(false) || manifest.can_write == Some(false);
            if locked && !unlock {
                println!("locked {name}@{} {:?}", manifest.digest, manifest.tags);
                continue;
            }
            if locked && !dry_run {
                let unlocked = ManifestWriteableProperties {
                    can_delete: Some(true),
                    can_write: Some(true),
                    ..Default::default()
                };
                artifact.update_manifest_properties(unlocked, None).await?;
                println!("unlock {name}@{} {:?}", manifest.digest, manifest.tags);
            }
            println!("delete {name}@{} {:?}", manifest.digest, manifest.tags);
            if !dry_run {
                artifact.delete(None).await?;
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
