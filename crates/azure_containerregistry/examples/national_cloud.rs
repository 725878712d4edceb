//! Connects to a registry in a national cloud: Azure operated by 21Vianet (`*.azurecr.cn`) or
//! Azure US Government (`*.azurecr.us`). Their registries take Microsoft Entra tokens for
//! their own audience, which the client options name.
//!
//! `CONTAINER_REGISTRY_ENDPOINT=https://myregistry.azurecr.cn cargo run --example national_cloud`
//! (signed in with `az cloud set --name AzureChinaCloud && az login`). The audience follows the
//! endpoint's domain (`.azurecr.cn` → China, `.azurecr.us` → US Government); without the
//! variable it runs against a local emulator as if it were in Azure China.

mod common;

use azure_containerregistry::{
    ContainerRegistryAudience, ContainerRegistryClient, ContainerRegistryClientOptions,
};
use futures::TryStreamExt;

/// The audience of the cloud a registry endpoint belongs to.
fn audience_of(endpoint: &str) -> ContainerRegistryAudience {
    if endpoint.contains(".azurecr.us") {
        ContainerRegistryAudience::AzureGovernment
    } else if endpoint.contains(".azurecr.io") {
        ContainerRegistryAudience::AzurePublicCloud
    } else {
        ContainerRegistryAudience::AzureChina
    }
}

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let target = common::target(&[("samples/hello", &["v1"])]).await?;
    let audience = audience_of(&target.endpoint);
    println!("audience         {audience}");
    println!("token scope      {}", audience.default_scope());
    let options = ContainerRegistryClientOptions {
        audience,
        ..Default::default()
    };
    let client = ContainerRegistryClient::new(
        &target.endpoint,
        Some(target.credential.clone()),
        Some(options),
    )?;
    let names: Vec<String> = client.list_repository_names(None)?.try_collect().await?;
    println!("repositories     {names:?}");
    Ok(())
}
