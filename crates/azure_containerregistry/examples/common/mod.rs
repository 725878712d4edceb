//! Shared example code: where the examples connect, and the demo images they start with.
//!
//! With `CONTAINER_REGISTRY_ENDPOINT` set, the examples talk to that registry with
//! `azure_identity::DeveloperToolsCredential` (Azure CLI / Azure Developer CLI login). Without
//! it they start the in-process emulator, push a few demo images to it with this crate's own
//! `ContainerRegistryContentClient`, and sign in with a fixed test token the emulator accepts.
#![allow(dead_code)]

use std::sync::Arc;

use acr_test_support::TestCredential;
use azure_containerregistry::{
    media_types, ContainerRegistryClient, ContainerRegistryContentClient, OciDescriptor,
    OciImageManifest, SetManifestOptions, UploadBlobResult,
};
use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions};
use azure_core::credentials::TokenCredential;

/// The Microsoft Entra token the emulator accepts in the examples.
pub const EXAMPLE_AAD_TOKEN: &str = "example-aad-token";

/// Error type of the examples.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where an example runs.
pub struct Target {
    /// The registry endpoint.
    pub endpoint: String,
    /// The credential for it.
    pub credential: Arc<dyn TokenCredential>,
    /// The emulator, when no endpoint was given (kept alive for the example's duration).
    pub emulator: Option<Emulator>,
}

impl Target {
    /// A content client for `repository` with the target's credential.
    pub fn content_client(
        &self,
        repository: &str,
    ) -> azure_core::Result<ContainerRegistryContentClient> {
        ContainerRegistryContentClient::new(
            &self.endpoint,
            repository,
            Some(self.credential.clone()),
            None,
        )
    }

    /// A registry client with the target's credential.
    pub fn registry_client(&self) -> azure_core::Result<ContainerRegistryClient> {
        ContainerRegistryClient::new(&self.endpoint, Some(self.credential.clone()), None)
    }
}

/// `CONTAINER_REGISTRY_ENDPOINT` with `DeveloperToolsCredential`, or a fresh emulator (token
/// auth with anonymous pull) seeded with `images` as `(repository, tags)`; each entry pushes
/// one image tagged with all its tags, in order.
pub async fn target(images: &[(&str, &[&str])]) -> Result<Target, Error> {
    if let Ok(endpoint) = std::env::var("CONTAINER_REGISTRY_ENDPOINT") {
        let credential: Arc<dyn TokenCredential> =
            azure_identity::DeveloperToolsCredential::new(None)?;
        return Ok(Target {
            endpoint,
            credential,
            emulator: None,
        });
    }
    let emulator = Emulator::start(EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull: true,
            accepted_aad_tokens: vec![EXAMPLE_AAD_TOKEN.to_string()],
        },
        port: 0,
        ..Default::default()
    })
    .await?;
    let credential = TestCredential::shared(EXAMPLE_AAD_TOKEN);
    for (i, (repository, tags)) in images.iter().enumerate() {
        let content = ContainerRegistryContentClient::new(
            &emulator.endpoint(),
            repository,
            Some(credential.clone()),
            None,
        )?;
        push_demo_image(&content, &format!("example-{i}"), tags).await?;
    }
    println!(
        "(no CONTAINER_REGISTRY_ENDPOINT: using a local emulator at {})",
        emulator.endpoint()
    );
    Ok(Target {
        endpoint: emulator.endpoint(),
        credential,
        emulator: Some(emulator),
    })
}

/// An OCI image manifest naming an uploaded config and one uploaded (uncompressed tar) layer.
pub fn image_manifest(config: &UploadBlobResult, layer: &UploadBlobResult) -> OciImageManifest {
    OciImageManifest {
        config: OciDescriptor::new(media_types::OCI_CONFIG, &config.digest, config.size),
        layers: vec![OciDescriptor::new(
            media_types::OCI_LAYER_TAR,
            &layer.digest,
            layer.size,
        )],
        ..Default::default()
    }
}

/// Pushes a small image (a config and one layer, both derived from `seed` so that every seed
/// gives another digest) and sets its manifest under each of `tags`, in order.
pub async fn push_demo_image(
    content: &ContainerRegistryContentClient,
    seed: &str,
    tags: &[&str],
) -> Result<(), Error> {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"seed": seed}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))?;
    let config = content.upload_blob_bytes(config, None).await?;
    let layer = content
        .upload_blob_bytes(format!("layer of {seed}").into_bytes(), None)
        .await?;
    let manifest = image_manifest(&config, &layer);
    for tag in tags {
        let tag = Some(tag.to_string());
        content
            .set_manifest(
                &manifest,
                Some(SetManifestOptions {
                    tag,
                    ..Default::default()
                }),
            )
            .await?;
    }
    Ok(())
}

/// Where an image example connects for `reference`: the registry the reference names (anonymous
/// for a loopback registry, else `DeveloperToolsCredential`); else `CONTAINER_REGISTRY_ENDPOINT`;
/// else a fresh emulator, seeded with a demo image at the reference's repository and tag when
/// `seed` is set. Returns the content client, and the target to keep alive.
pub async fn image_client(
    reference: &azure_containerregistry::ImageReference,
    seed: bool,
) -> Result<(ContainerRegistryContentClient, Option<Target>), Error> {
    if let Some(endpoint) = reference.endpoint() {
        let client = if endpoint.starts_with("http://") {
            ContainerRegistryContentClient::new(&endpoint, reference.repository(), None, None)?
        } else {
            let credential: Arc<dyn TokenCredential> =
                azure_identity::DeveloperToolsCredential::new(None)?;
            ContainerRegistryContentClient::new(
                &endpoint,
                reference.repository(),
                Some(credential),
                None,
            )?
        };
        return Ok((client, None));
    }
    let tag = reference.tag().unwrap_or("latest");
    let tags: &[&str] = &[tag];
    let images: Vec<(&str, &[&str])> = if seed {
        vec![(reference.repository(), tags)]
    } else {
        Vec::new()
    };
    let target = target(&images).await?;
    let client = target.content_client(reference.repository())?;
    Ok((client, Some(target)))
}

/// The command line of an image example: its positional arguments, and whether
/// `--all-platforms` was given.
pub fn image_args() -> (Vec<String>, bool) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all_platforms = args.iter().any(|a| a == "--all-platforms");
    let positional = args.into_iter().filter(|a| !a.starts_with("--")).collect();
    (positional, all_platforms)
}

/// Exits with status 1 and `message` on standard error when `result` is an error.
pub fn exit_on_error<T>(result: Result<T, Error>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
