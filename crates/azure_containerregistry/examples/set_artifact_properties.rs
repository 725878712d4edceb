//! Locks an image against deletion and overwriting, shows the result, then unlocks it again.
//!
//! `CONTAINER_REGISTRY_ENDPOINT=https://myregistry.azurecr.io cargo run --example set_artifact_properties`
//! (the image is `CONTAINER_REGISTRY_REPOSITORY:latest`, default `library/hello-world:latest`),
//! or without the variable against a local emulator.

mod common;

use azure_containerregistry::{
    ArtifactManifestProperties, ArtifactTagProperties, ManifestWriteableProperties,
    RegistryArtifact, TagWriteableProperties,
};

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let target = common::target(&[("library/hello-world", &["v1", "latest"])]).await?;
    let repository = std::env::var("CONTAINER_REGISTRY_REPOSITORY")
        .unwrap_or_else(|_| "library/hello-world".into());
    let client = target.registry_client()?;
    let artifact = client.artifact(&repository, "latest");

    // Lock the manifest and its tag: PATCH bodies carry only the fields that are set.
    let (manifest, tag) = set_locked(&artifact, true).await?;
    println!(
        "{} ({}): can_delete={:?} can_write={:?}",
        artifact.fully_qualified_reference(),
        manifest.digest,
        manifest.can_delete,
        manifest.can_write
    );
    println!(
        "tag {}: can_delete={:?} can_write={:?}",
        tag.name, tag.can_delete, tag.can_write
    );

    match artifact.delete_tag("latest", None).await {
        Err(e) => println!("deleting the locked tag fails as expected: {e}"),
        Ok(_) => println!("the registry deleted a locked tag?"),
    }

    // Unlock, leaving the image as it was.
    let (manifest, tag) = set_locked(&artifact, false).await?;
    println!(
        "unlocked: manifest can_delete={:?}, tag can_delete={:?}",
        manifest.can_delete, tag.can_delete
    );
    Ok(())
}

/// Locks (or unlocks) the manifest and its `latest` tag against deletion and overwriting.
async fn set_locked(
    artifact: &RegistryArtifact,
    locked: bool,
) -> azure_core::Result<(ArtifactManifestProperties, ArtifactTagProperties)> {
    let allowed = Some(!locked);
    let manifest = ManifestWriteableProperties {
        can_delete: allowed,
        can_write: allowed,
        ..Default::default()
    };
    let manifest = artifact
        .update_manifest_properties(manifest, None)
        .await?
        .into_model()?;
    let tag = TagWriteableProperties {
        can_delete: allowed,
        can_write: allowed,
        ..Default::default()
    };
    let tag = artifact
        .update_tag_properties("latest", tag, None)
        .await?
        .into_model()?;
    Ok((manifest, tag))
}
