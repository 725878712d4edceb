//! Lists the tags of an image without signing in (the registry must allow anonymous pull:
//! `az acr update --name myregistry --anonymous-pull-enabled`).
//!
//! `CONTAINER_REGISTRY_ENDPOINT=https://myregistry.azurecr.io cargo run --example list_tags_anonymous`
//! (the repository is `CONTAINER_REGISTRY_REPOSITORY`, default `library/hello-world`), or
//! without the variable against a local emulator that allows anonymous pull.

mod common;

use azure_containerregistry::{
    ArtifactTagOrder, ContainerRegistryClient, ListTagPropertiesOptions,
};
use futures::TryStreamExt;

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let target = common::target(&[("library/hello-world", &["v1", "v2", "latest"])]).await?;
    let repository = std::env::var("CONTAINER_REGISTRY_REPOSITORY")
        .unwrap_or_else(|_| "library/hello-world".into());

    // No credential: anonymous tokens, pull and metadata read only.
    let client = ContainerRegistryClient::new(&target.endpoint, None, None)?;
    let artifact = client.artifact(&repository, "latest");
    println!(
        "tags of {} (newest first):",
        artifact.fully_qualified_reference()
    );
    let mut tags = artifact.list_tag_properties(Some(ListTagPropertiesOptions {
        order_by: Some(ArtifactTagOrder::LastUpdatedOnDescending),
        ..Default::default()
    }))?;
    while let Some(tag) = tags.try_next().await? {
        println!(
            "  {}:{} -> {} (updated {})",
            tag.repository_name, tag.name, tag.digest, tag.last_updated_on
        );
    }
    Ok(())
}
