//! Deletes an image by the digest of its manifest (found from its tag) — the "delete
//! manifest" sample of the other Azure SDKs. Registries delete manifests by digest only.
//!
//! `cargo run --example delete_manifest` runs against an in-process emulator seeded with an
//! image; set `CONTAINER_REGISTRY_ENDPOINT` to use a real registry (it deletes
//! `hello-world:latest` there).

mod common;

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let target = common::target(&[("hello-world", &["latest"])]).await?;
    let content = target.content_client("hello-world")?;

    let manifest = content.get_manifest("latest", None).await?;
    println!("hello-world:latest is {}", manifest.digest);
    content.delete_manifest(&manifest.digest, None).await?;
    println!("deleted {}", manifest.digest);
    match content.get_manifest(&manifest.digest, None).await {
        Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {
            println!("it is gone")
        }
        other => println!("unexpected: {other:?}"),
    }
    // Deleting again succeeds: the manifest is already gone.
    content.delete_manifest(&manifest.digest, None).await?;
    Ok(())
}
