//! Shared helpers for the emulator's integration tests.
#![allow(dead_code)]

use azure_containerregistry_emulator::{Emulator, EmulatorOptions};
use serde_json::{json, Value};
use sha2::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub async fn start(options: EmulatorOptions) -> Emulator {
    Emulator::start(options).await.expect("emulator starts")
}

pub async fn open() -> Emulator {
    start(EmulatorOptions::default()).await
}

/// A client that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub async fn json_body(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Monolithic `POST …/uploads/?digest=`; returns the digest.
pub async fn push_blob(c: &reqwest::Client, base: &str, repo: &str, data: &[u8]) -> String {
    let d = sha(data);
    let resp = c
        .post(format!(
            "{base}/v2/{repo}/blobs/uploads/?digest={}",
            d.replace(':', "%3A")
        ))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "push blob");
    d
}

/// `PUT /v2/<repo>/manifests/<reference>`; returns the digest.
pub async fn push_manifest(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &Value,
) -> String {
    let bytes = serde_json::to_vec(body).unwrap();
    let resp = c
        .put(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("content-type", media_type)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        201,
        "push manifest: {}",
        resp.text().await.unwrap_or_default()
    );
    sha(&bytes)
}

/// Pushes a config (with architecture/os) and one layer, then an image manifest; returns its digest.
pub async fn push_image(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    arch: &str,
) -> String {
    let config =
        serde_json::to_vec(&json!({ "architecture": arch, "os": "linux", "rootfs": {} })).unwrap();
    let layer = format!("layer for {repo}:{tag}:{arch}").into_bytes();
    let cd = push_blob(c, base, repo, &config).await;
    let ld = push_blob(c, base, repo, &layer).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": layer.len() }],
    });
    push_manifest(c, base, repo, tag, OCI_MANIFEST, &manifest).await
}
