//! Pushes an image from an OCI image layout directory to a registry, as
//! `skopeo copy oci:… docker://…` would.
//!
//! `cargo run --example push_image -- <layout-dir> <reference>`, such as
//! `push_image ./hello myregistry.azurecr.io/hello-world:v2`. Without arguments it pulls a demo
//! image into a temporary layout first and pushes it back as `hello-world-pushed:latest`. A
//! reference without a registry goes to `CONTAINER_REGISTRY_ENDPOINT`, or, when that is unset,
//! to an in-process emulator.

mod common;

use azure_containerregistry::{pull_image, push_image, ImageReference};

#[tokio::main]
async fn main() {
    common::exit_on_error(run().await)
}

async fn run() -> Result<(), common::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            // A demo: a layout pulled from the (seeded) emulator, pushed back under a new name.
            let source: ImageReference = "hello-world:latest".parse()?;
            let (source_client, target) = common::image_client(&source, true).await?;
            let dir = std::env::temp_dir().join(format!("acr-push-image-{}", std::process::id()));
            pull_image(&source_client, "latest", &dir, None).await?;
            let target = target.ok_or("the demo runs against the emulator")?;
            let client = target.content_client("hello-world-pushed")?;
            let pushed = push(&client, &dir, "latest").await;
            std::fs::remove_dir_all(&dir)?;
            pushed
        }
        [dir, reference] => {
            let reference: ImageReference =
                reference.parse().map_err(|e| format!("{reference}: {e}"))?;
            let (client, _target) = common::image_client(&reference, false).await?;
            push(
                &client,
                std::path::Path::new(dir),
                reference.tag().unwrap_or("latest"),
            )
            .await
        }
        _ => Err("usage: push_image <layout-dir> <reference>".into()),
    }
}

async fn push(
    client: &azure_containerregistry::ContainerRegistryContentClient,
    dir: &std::path::Path,
    tag: &str,
) -> Result<(), common::Error> {
    if !dir.join("oci-layout").is_file() {
        return Err(format!(
            "{}: not an OCI image layout (no oci-layout file)",
            dir.display()
        )
        .into());
    }
    let result = push_image(client, dir, tag, None).await?;
    println!(
        "pushed {} to {}/{}:{tag} ({}, {}): {} manifests, {} blobs uploaded ({} bytes), {} already there",
        dir.display(),
        client.endpoint().as_str().trim_end_matches('/'),
        client.repository_name(),
        result.digest,
        result.media_type,
        result.manifests,
        result.blobs_uploaded,
        result.bytes_uploaded,
        result.blobs_skipped,
    );
    Ok(())
}
