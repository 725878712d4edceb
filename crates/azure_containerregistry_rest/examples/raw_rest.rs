//! The raw REST crate on its own: push a blob and a manifest, read them back, list the
//! catalog. No authentication layer: it runs against the in-process emulator (open access),
//! or against `CONTAINER_REGISTRY_ENDPOINT` if that registry allows anonymous push.
//!
//! `cargo run -p azure_containerregistry_rest --example raw_rest`

use azure_containerregistry_rest::{hooks::ClientState, http_client, Client};
use futures::TryStreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_emulator, endpoint) = match std::env::var("CONTAINER_REGISTRY_ENDPOINT") {
        Ok(endpoint) => (None, endpoint),
        Err(_) => {
            let emulator =
                azure_containerregistry_emulator::Emulator::start(Default::default()).await?;
            let endpoint = emulator.endpoint();
            (Some(emulator), endpoint)
        }
    };
    println!("registry: {endpoint}");
    let client = Client::new_with_client(&endpoint, http_client()?, ClientState::new());
    client.check_docker_v2_support().await?;

    // Push a blob: start an upload, then complete it with the body at the Location given.
    let blob = b"hello from the raw REST crate".to_vec();
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&blob))
    );
    let started = client.mount_blob("samples/raw", None, None).await?;
    let location = started.headers()["location"].to_str()?.to_string();
    client
        .complete_upload(&location, &digest, blob.clone())
        .await?;
    println!("pushed blob {digest}");

    // Push a manifest that refers to it, by tag.
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.text",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": digest, "size": blob.len()}]
    });
    let empty = b"{}".to_vec();
    let started = client.mount_blob("samples/raw", None, None).await?;
    let location = started.headers()["location"].to_str()?.to_string();
    client
        .complete_upload(
            &location,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            empty,
        )
        .await?;
    let put = client
        .create_manifest(
            "samples/raw",
            "v1",
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::to_vec(&manifest)?,
        )
        .await?;
    println!(
        "pushed manifest {}",
        put.headers()["docker-content-digest"].to_str()?
    );

    // Read the blob back as a stream.
    let got = client.get_blob("samples/raw", &digest, None).await?;
    let bytes: Vec<u8> = got
        .into_inner()
        .into_inner()
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await?;
    println!("blob content: {}", String::from_utf8_lossy(&bytes));

    // The catalog, typed.
    let catalog = client.get_oci_catalog(None, None).await?.into_inner();
    println!("repositories: {:?}", catalog.repositories);
    Ok(())
}
