//! Lists the repositories of a registry with their tag and manifest counts.
//!
//! `CONTAINER_REGISTRY_ENDPOINT=https://myregistry.azurecr.io cargo run --example list_repositories`
//! (signed in with `az login` or `azd auth login`), or without the variable against a local
//! emulator seeded with a few images.

mod common;

use azure_containerregistry::ListRepositoryNamesOptions;
use futures::TryStreamExt;

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let target = common::target(&[
        ("library/hello-world", &["latest", "v1"]),
        ("library/busybox", &["1.36", "latest"]),
        ("samples/nginx", &["v1"]),
    ])
    .await?;
    let client = target.registry_client()?;

    println!("repositories of {}:", client.endpoint());
    let mut names = client.list_repository_names(Some(ListRepositoryNamesOptions {
        page_size: Some(100),
        ..Default::default()
    }))?;
    while let Some(name) = names.try_next().await? {
        let properties = client
            .repository(&name)
            .get_properties(None)
            .await?
            .into_model()?;
        println!(
            "  {name}: {} tags, {} manifests, last updated {}",
            properties.tag_count, properties.manifest_count, properties.last_updated_on
        );
    }
    Ok(())
}
