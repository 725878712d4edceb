//! Shared example code: where the examples connect, and seeding the local emulator with a few
//! images over plain HTTP (OCI distribution API, no SDK involved).
//!
//! With `CONTAINER_REGISTRY_ENDPOINT` set, the examples talk to that registry with
//! `azure_identity::DeveloperToolsCredential` (Azure CLI / Azure Developer CLI login). Without
//! it they start the in-process emulator, push a few images and use a fixed test credential.
//! The integration tests include this file too.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions};
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use sha2::Digest as _;

/// The Microsoft Entra token the emulator accepts in the examples.
pub const EXAMPLE_AAD_TOKEN: &str = "example-aad-token";

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A credential that always returns the same token (for the emulator).
#[derive(Debug, Clone)]
pub struct FixedCredential(pub String);

#[async_trait::async_trait]
impl TokenCredential for FixedCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

/// Where an example runs.
pub struct Target {
    /// The registry endpoint.
    pub endpoint: String,
    /// The credential for it.
    pub credential: Arc<dyn TokenCredential>,
    /// The emulator, when no endpoint was given (kept alive for the example's duration).
    pub emulator: Option<Emulator>,
}

/// `CONTAINER_REGISTRY_ENDPOINT` with `DeveloperToolsCredential`, or a fresh emulator (token
/// auth with anonymous pull) seeded with `images` as `(repository, tags)`; each entry pushes
/// one image tagged with all its tags, in order.
pub async fn target(images: &[(&str, &[&str])]) -> Result<Target, SeedError> {
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
    let seeder = Seeder::new(&emulator.endpoint(), Some(EXAMPLE_AAD_TOKEN));
    for (i, (repository, tags)) in images.iter().enumerate() {
        let image = seeder
            .push_image(repository, &format!("example-{i}"), "amd64", "linux")
            .await?;
        for tag in *tags {
            seeder
                .put_manifest(repository, tag, &image.manifest)
                .await?;
        }
    }
    println!(
        "(no CONTAINER_REGISTRY_ENDPOINT: using a local emulator at {})",
        emulator.endpoint()
    );
    Ok(Target {
        endpoint: emulator.endpoint(),
        credential: Arc::new(FixedCredential(EXAMPLE_AAD_TOKEN.to_string())),
        emulator: Some(emulator),
    })
}

/// Error type of the seeder.
pub type SeedError = Box<dyn std::error::Error + Send + Sync>;

/// A pushed image.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// The manifest digest.
    pub digest: String,
    /// The manifest bytes (PUT them under more tags to add tags).
    pub manifest: Vec<u8>,
}

/// Pushes content with plain HTTP, answering 401 challenges itself: an AAD token exchanged for
/// a refresh token, or an anonymous token.
pub struct Seeder {
    http: reqwest::Client,
    endpoint: String,
    aad_token: Option<String>,
}

/// `sha256:<hex>` of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn challenge_params(header: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let rest = header
        .trim_start_matches("Bearer ")
        .trim_start_matches("bearer ");
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'"').is_none() {
            break;
        }
        let value: String = chars.by_ref().take_while(|c| *c != '"').collect();
        out.insert(key.trim_matches([',', ' ']).to_string(), value);
        let _ = chars.next_if_eq(&',');
    }
    out
}

impl Seeder {
    /// A seeder for `endpoint`; `aad_token` is exchanged at `/oauth2/exchange` when the
    /// registry asks for a token (none: anonymous tokens).
    pub fn new(endpoint: &str, aad_token: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            aad_token: aad_token.map(String::from),
        }
    }

    async fn token(&self, challenge: &str) -> Result<String, SeedError> {
        let params = challenge_params(challenge);
        let service = params.get("service").cloned().unwrap_or_default();
        let scope = params.get("scope").cloned().unwrap_or_default();
        let token_url = format!("{}/oauth2/token", self.endpoint);
        let form: Vec<(&str, String)> = match &self.aad_token {
            Some(aad) => {
                let answer: serde_json::Value = self
                    .http
                    .post(format!("{}/oauth2/exchange", self.endpoint))
                    .form(&[
                        ("grant_type", "access_token"),
                        ("service", &service),
                        ("access_token", aad),
                    ])
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let refresh = answer["refresh_token"]
                    .as_str()
                    .ok_or("no refresh_token")?
                    .to_string();
                vec![
                    ("grant_type", "refresh_token".into()),
                    ("service", service),
                    ("scope", scope),
                    ("refresh_token", refresh),
                ]
            }
            None => vec![
                ("grant_type", "password".into()),
                ("service", service),
                ("scope", scope),
            ],
        };
        let answer: serde_json::Value = self
            .http
            .post(token_url)
            .form(&form)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(answer["access_token"]
            .as_str()
            .ok_or("no access_token")?
            .to_string())
    }

    /// Sends a request, answering one 401 challenge; fails on an error status.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SeedError> {
        let response = build().send().await?;
        let response = if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .ok_or("401 without a challenge")?
                .to_string();
            let token = self.token(&challenge).await?;
            build().bearer_auth(token).send().await?
        } else {
            response
        };
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("{status}: {body}").into());
        }
        Ok(response)
    }

    /// Uploads a blob (POST, then PUT with the content) and returns its digest.
    pub async fn push_blob(&self, repository: &str, content: &[u8]) -> Result<String, SeedError> {
        let digest = sha256(content);
        let start = self
            .send(|| {
                self.http
                    .post(format!("{}/v2/{repository}/blobs/uploads/", self.endpoint))
                    .header(reqwest::header::CONTENT_LENGTH, "0")
            })
            .await?;
        let location = start
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or("upload answer without Location")?
            .to_string();
        let mut url = reqwest::Url::parse(&self.endpoint)?.join(&location)?;
        url.query_pairs_mut().append_pair("digest", &digest);
        let body = content.to_vec();
        self.send(|| {
            self.http
                .put(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body.clone())
        })
        .await?;
        Ok(digest)
    }

    /// PUTs manifest bytes under a tag or digest.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &[u8],
    ) -> Result<(), SeedError> {
        let body = manifest.to_vec();
        self.send(|| {
            self.http
                .put(format!(
                    "{}/v2/{repository}/manifests/{reference}",
                    self.endpoint
                ))
                .header(reqwest::header::CONTENT_TYPE, OCI_MANIFEST)
                .body(body.clone())
        })
        .await?;
        Ok(())
    }

    /// Pushes a small image (config + one layer, both derived from `seed`) without a tag and
    /// returns its manifest; `seed` makes the digest unique.
    pub async fn push_image(
        &self,
        repository: &str,
        seed: &str,
        architecture: &str,
        os: &str,
    ) -> Result<PushedImage, SeedError> {
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": architecture,
            "os": os,
            "config": {"Labels": {"seed": seed}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }))?;
        let layer = format!("layer of {seed}").into_bytes();
        let config_digest = self.push_blob(repository, &config).await?;
        let layer_digest = self.push_blob(repository, &layer).await?;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        }))?;
        let digest = sha256(&manifest);
        self.put_manifest(repository, &digest, &manifest).await?;
        Ok(PushedImage { digest, manifest })
    }
}
