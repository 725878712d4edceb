//! Seeding a registry with images over plain HTTP (the OCI distribution push API, no SDK
//! involved): blob uploads (POST, then PUT with the content) and manifest PUTs.
//!
//! The [`Seeder`] answers `401` challenges itself: with an AAD token it exchanges it at the
//! realm's `/oauth2/exchange` for a refresh token and that for an access token (the ACR flow);
//! without one it asks the realm for an anonymous token.

use std::collections::HashMap;

use reqwest::{StatusCode, Url};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer media type.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Error type of the seeder.
pub type SeedError = Box<dyn std::error::Error + Send + Sync>;

/// A pushed image.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// The manifest digest.
    pub digest: String,
    /// The manifest bytes (PUT them under more tags to add tags).
    pub manifest: Vec<u8>,
    /// The config blob's digest.
    pub config_digest: String,
    /// The layer blobs' digests, in order.
    pub layer_digests: Vec<String>,
}

/// The JSON of a small image config for `architecture`/`os`, labelled with `seed` (so that
/// every seed gives another digest).
pub fn image_config(seed: &str, architecture: &str, os: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": architecture,
        "os": os,
        "config": {"Labels": {"seed": seed}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .expect("JSON serializes")
}

/// The bytes of an OCI image manifest naming a config and layers (uncompressed tar).
pub fn image_manifest(config: (&str, usize), layers: &[(&str, usize)]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(digest, size)| {
            serde_json::json!({"mediaType": OCI_LAYER_TAR, "digest": digest, "size": size})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.0, "size": config.1},
        "layers": layers,
    }))
    .expect("JSON serializes")
}

/// The `key="value"` parameters of a `WWW-Authenticate: Bearer …` challenge.
pub fn challenge_params(header: &str) -> HashMap<String, String> {
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

/// The value of header `name` of `response`, or an error naming it.
fn header(
    response: &reqwest::Response,
    name: reqwest::header::HeaderName,
) -> Result<String, SeedError> {
    Ok(response
        .headers()
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("{} answered without {name}", response.status()))?
        .to_string())
}

/// Pushes content with plain HTTP, answering 401 challenges itself.
pub struct Seeder {
    http: reqwest::Client,
    endpoint: String,
    aad_token: Option<String>,
}

impl Seeder {
    /// A seeder for `endpoint`; `aad_token` is exchanged at the realm's `/oauth2/exchange`
    /// when the registry asks for a token (none: anonymous tokens).
    pub fn new(endpoint: &str, aad_token: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            aad_token: aad_token.map(String::from),
        }
    }

    /// An access token for the challenge's realm, service and scope.
    async fn token(&self, challenge: &str) -> Result<String, SeedError> {
        let params = challenge_params(challenge);
        let service = params.get("service").cloned().unwrap_or_default();
        let scope = params.get("scope").cloned().unwrap_or_default();
        let realm = params
            .get("realm")
            .cloned()
            .unwrap_or_else(|| format!("{}/oauth2/token", self.endpoint));
        let form: Vec<(&str, String)> = match &self.aad_token {
            Some(aad) => {
                let exchange = realm.replace("/oauth2/token", "/oauth2/exchange");
                let answer: serde_json::Value = self
                    .http
                    .post(exchange)
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
            .post(realm)
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

    /// Sends a request, answering one 401 challenge; fails unless the answer is `expected`.
    async fn send(
        &self,
        expected: StatusCode,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SeedError> {
        let response = build().send().await?;
        let response = if response.status() == StatusCode::UNAUTHORIZED {
            let challenge = header(&response, reqwest::header::WWW_AUTHENTICATE)?;
            let token = self.token(&challenge).await?;
            build().bearer_auth(token).send().await?
        } else {
            response
        };
        if response.status() != expected {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("{status} (expected {expected}): {body}").into());
        }
        Ok(response)
    }

    /// Uploads a blob (POST, answered 202; then PUT with the content, answered 201) and returns
    /// its digest.
    pub async fn push_blob(&self, repository: &str, content: &[u8]) -> Result<String, SeedError> {
        let digest = crate::sha256_digest(content);
        let start = self
            .send(StatusCode::ACCEPTED, || {
                self.http
                    .post(format!("{}/v2/{repository}/blobs/uploads/", self.endpoint))
                    .header(reqwest::header::CONTENT_LENGTH, "0")
            })
            .await?;
        let location = header(&start, reqwest::header::LOCATION)?;
        let mut url = Url::parse(&self.endpoint)?.join(&location)?;
        url.query_pairs_mut().append_pair("digest", &digest);
        self.send(StatusCode::CREATED, || {
            self.http
                .put(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(content.to_vec())
        })
        .await?;
        Ok(digest)
    }

    /// PUTs OCI manifest bytes under a tag or digest (answered 201).
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &[u8],
    ) -> Result<(), SeedError> {
        self.send(StatusCode::CREATED, || {
            self.http
                .put(format!(
                    "{}/v2/{repository}/manifests/{reference}",
                    self.endpoint
                ))
                .header(reqwest::header::CONTENT_TYPE, OCI_MANIFEST)
                .body(manifest.to_vec())
        })
        .await?;
        Ok(())
    }

    /// Pushes `config` and `layers` as blobs and an OCI manifest naming them, by digest
    /// (untagged).
    pub async fn push_image_with(
        &self,
        repository: &str,
        config: &[u8],
        layers: &[&[u8]],
    ) -> Result<PushedImage, SeedError> {
        let config_digest = self.push_blob(repository, config).await?;
        let mut layer_digests = Vec::new();
        for layer in layers {
            layer_digests.push(self.push_blob(repository, layer).await?);
        }
        let sized: Vec<_> = layer_digests
            .iter()
            .zip(layers)
            .map(|(d, l)| (d.as_str(), l.len()))
            .collect();
        let manifest = image_manifest((&config_digest, config.len()), &sized);
        let digest = crate::sha256_digest(&manifest);
        self.put_manifest(repository, &digest, &manifest).await?;
        Ok(PushedImage {
            digest,
            manifest,
            config_digest,
            layer_digests,
        })
    }

    /// Pushes a small image (config + one layer, both derived from `seed`) without a tag and
    /// returns it; `seed` makes the digest unique.
    pub async fn push_image(
        &self,
        repository: &str,
        seed: &str,
        architecture: &str,
        os: &str,
    ) -> Result<PushedImage, SeedError> {
        let config = image_config(seed, architecture, os);
        let layer = format!("layer of {seed}").into_bytes();
        self.push_image_with(repository, &config, &[&layer]).await
    }

    /// Pushes a linux/amd64 image derived from `seed` to `repository`, tagged with each of
    /// `tags` in order.
    ///
    /// # Panics
    /// When a push fails.
    pub async fn push(&self, repository: &str, seed: &str, tags: &[&str]) -> PushedImage {
        let image = self
            .push_image(repository, seed, "amd64", "linux")
            .await
            .unwrap_or_else(|e| panic!("push image {repository} ({seed}): {e}"));
        for tag in tags {
            self.put_manifest(repository, tag, &image.manifest)
                .await
                .unwrap_or_else(|e| panic!("tag {repository}:{tag}: {e}"));
        }
        image
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters() {
        let p = challenge_params(
            r#"Bearer realm="https://r.example/oauth2/token",service="r.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p["realm"], "https://r.example/oauth2/token");
        assert_eq!(p["service"], "r.example");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
    }

    #[test]
    fn manifest_names_its_blobs() {
        let m: serde_json::Value =
            serde_json::from_slice(&image_manifest(("sha256:c", 2), &[("sha256:l", 3)])).unwrap();
        assert_eq!(m["config"]["digest"], "sha256:c");
        assert_eq!(m["layers"][0]["size"], 3);
        assert_eq!(m["mediaType"], OCI_MANIFEST);
    }
}
