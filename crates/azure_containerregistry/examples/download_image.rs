//! Downloads an image: the manifest by tag, then its config and layers into a directory, each
//! verified against its digest — the "download images" sample of the other Azure SDKs.
//!
//! `cargo run --example download_image` runs against an in-process emulator seeded with an
//! image; set `CONTAINER_REGISTRY_ENDPOINT` to use a real registry (the repository
//! `hello-world` with tag `latest` must exist there).

mod common;

use azure_containerregistry::ManifestKind;

#[tokio::main]
async fn main() -> Result<(), common::Error> {
    let target = common::target(&[("hello-world", &["latest"])]).await?;
    let content = target.content_client("hello-world")?;

    let manifest = content.get_manifest("latest", None).await?;
    println!(
        "manifest {} ({}, {} bytes)",
        manifest.digest,
        manifest.media_type,
        manifest.content.len()
    );
    let blobs = match manifest.parsed()? {
        ManifestKind::OciImage(m) => std::iter::once(m.config)
            .chain(m.layers)
            .collect::<Vec<_>>(),
        ManifestKind::DockerV2(m) => std::iter::once(m.config).chain(m.layers).collect(),
        other => return Err(format!("not a single image: {other:?}").into()),
    };

    let dir = std::env::temp_dir().join(format!("acr-download-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("manifest.json"), &manifest.content)?;
    for blob in blobs {
        let file = dir.join(blob.digest.replace(':', "-"));
        // Written to a temporary file and renamed only once the digest matched.
        let result = content
            .download_blob_to_file(&blob.digest, &file, None)
            .await?;
        println!(
            "{} -> {} ({} bytes)",
            blob.digest,
            file.display(),
            result.size
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
