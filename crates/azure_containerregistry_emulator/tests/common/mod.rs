//! Shared helpers for the emulator's integration tests.
#![allow(dead_code)]

use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{json, Value};
use sha2::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

pub async fn start(options: EmulatorOptions) -> Emulator {
    Emulator::start(options).await.expect("emulator starts")
}

pub async fn open() -> Emulator {
    start(EmulatorOptions::default()).await
}

/// A started emulator with its options, a client and the registry endpoint.
pub async fn fixture_with(options: EmulatorOptions) -> (Emulator, Client, String) {
    let emu = start(options).await;
    let base = emu.endpoint();
    (emu, client(), base)
}

/// A default (open, in-memory) emulator, a client and the registry endpoint.
pub async fn fixture() -> (Emulator, Client, String) {
    fixture_with(EmulatorOptions::default()).await
}

/// Options with token auth: anonymous pull as given, these AAD tokens accepted.
pub fn token_auth(anonymous_pull: bool, aad_tokens: &[&str]) -> EmulatorOptions {
    EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull,
            accepted_aad_tokens: aad_tokens.iter().map(|t| (*t).to_owned()).collect(),
        },
        ..Default::default()
    }
}

/// A client that does not follow redirects.
pub fn client() -> Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A digest as it stands in a query value (`:` encoded).
pub fn enc(digest: &str) -> String {
    digest.replace(':', "%3A")
}

pub fn header(resp: &Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub async fn json_body(resp: Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Sends a request; a transport error fails the test.
pub async fn send(req: RequestBuilder) -> Response {
    req.send().await.expect("request sent")
}

/// Sends a request and checks the answer's status.
pub async fn expect(req: RequestBuilder, status: u16) -> Response {
    let resp = send(req).await;
    assert_eq!(resp.status(), status, "{}", resp.url());
    resp
}

/// Sends a request; checks the status; reads the JSON answer.
pub async fn expect_json(req: RequestBuilder, status: u16) -> Value {
    json_body(expect(req, status).await).await
}

/// Sends a request; checks the status and the first error's `code`; returns that error.
pub async fn expect_code(req: RequestBuilder, status: u16, code: &str) -> Value {
    let body = json_body(expect(req, status).await).await;
    assert_eq!(body["errors"][0]["code"], code, "{body}");
    body["errors"][0].clone()
}

/// Sends a request; checks the status and the whole body, to the letter.
pub async fn expect_text(req: RequestBuilder, status: u16, text: &str) {
    let resp = expect(req, status).await;
    assert_eq!(resp.text().await.unwrap(), text);
}

/// Sends a request and reads its JSON answer (whatever the status).
pub async fn get_json(req: RequestBuilder) -> Value {
    json_body(send(req).await).await
}

/// The bytes of an answer (whatever the status).
pub async fn body_bytes(req: RequestBuilder) -> bytes::Bytes {
    send(req).await.bytes().await.unwrap()
}

/// `PATCH` of changeable attributes (or any body) to `url`.
pub fn patch_attrs(c: &Client, url: &str, attrs: &'static str) -> RequestBuilder {
    c.patch(url).body(attrs)
}

/// The path of a `Link` header (`</path?…>; rel="next"`).
pub fn link_target(link: &str) -> &str {
    link.trim_start_matches('<').split('>').next().unwrap()
}

/// Opens an upload session (202); returns its `Location`.
pub async fn upload_location(c: &Client, base: &str, repo: &str) -> String {
    let resp = expect(c.post(format!("{base}/v2/{repo}/blobs/uploads/")), 202).await;
    header(&resp, "location")
}

/// Monolithic `POST …/uploads/?digest=`; returns the digest.
pub async fn push_blob(c: &Client, base: &str, repo: &str, data: &[u8]) -> String {
    let d = sha(data);
    let url = format!("{base}/v2/{repo}/blobs/uploads/?digest={}", enc(&d));
    let resp = send(c.post(url).body(data.to_vec())).await;
    assert_eq!(resp.status(), 201, "push blob");
    d
}

/// `PUT /v2/<repo>/manifests/<reference>` with these bytes and `Content-Type`.
pub fn put_manifest_bytes(
    c: &Client,
    base: &str,
    repo: &str,
    reference: &str,
    content_type: &str,
    bytes: impl Into<reqwest::Body>,
) -> RequestBuilder {
    c.put(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("content-type", content_type)
        .body(bytes)
}

/// `PUT /v2/<repo>/manifests/<reference>` of a JSON body (not sent yet).
pub fn put_manifest(
    c: &Client,
    base: &str,
    repo: &str,
    reference: &str,
    content_type: &str,
    body: &Value,
) -> RequestBuilder {
    let bytes = serde_json::to_vec(body).unwrap();
    put_manifest_bytes(c, base, repo, reference, content_type, bytes)
}

/// `PUT /v2/<repo>/manifests/<reference>`; returns the digest.
pub async fn push_manifest(
    c: &Client,
    base: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &Value,
) -> String {
    let resp = send(put_manifest(c, base, repo, reference, media_type, body)).await;
    assert_eq!(
        resp.status(),
        201,
        "push manifest: {}",
        resp.text().await.unwrap_or_default()
    );
    sha(&serde_json::to_vec(body).unwrap())
}

/// The bytes of `GET /v2/<repo>/manifests/<reference>`.
pub async fn manifest_bytes(c: &Client, base: &str, repo: &str, reference: &str) -> bytes::Bytes {
    body_bytes(c.get(format!("{base}/v2/{repo}/manifests/{reference}"))).await
}

/// Pushes a config (with architecture/os) and one layer, then an image manifest; returns its digest.
pub async fn push_image(c: &Client, base: &str, repo: &str, tag: &str, arch: &str) -> String {
    let config =
        serde_json::to_vec(&json!({ "architecture": arch, "os": "linux", "rootfs": {} })).unwrap();
    let layer = format!("layer for {repo}:{tag}:{arch}").into_bytes();
    let cd = push_blob(c, base, repo, &config).await;
    let ld = push_blob(c, base, repo, &layer).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": cd, "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": layer.len() }],
    });
    push_manifest(c, base, repo, tag, OCI_MANIFEST, &manifest).await
}

/// Pushes an OCI index of linux children, given as `(digest, architecture)`; returns its digest.
pub async fn push_index(
    c: &Client,
    base: &str,
    repo: &str,
    tag: &str,
    children: &[(&str, &str)],
) -> String {
    let manifests: Vec<Value> = children
        .iter()
        .map(|(digest, arch)| {
            json!({ "mediaType": OCI_MANIFEST, "digest": digest, "size": 1, "platform": { "architecture": arch, "os": "linux" } })
        })
        .collect();
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    push_manifest(c, base, repo, tag, OCI_INDEX, &index).await
}

/// `POST <url>` (`/oauth2/exchange`) of an AAD token for a refresh token (not sent yet).
pub fn exchange(c: &Client, url: &str, service: &str, aad: &str) -> RequestBuilder {
    c.post(url).form(&[
        ("grant_type", "access_token"),
        ("service", service),
        ("access_token", aad),
    ])
}

/// `POST <url>` (`/oauth2/token`) of a refresh token for an access token (not sent yet).
pub fn token(c: &Client, url: &str, service: &str, scope: &str, refresh: &str) -> RequestBuilder {
    c.post(url).form(&[
        ("grant_type", "refresh_token"),
        ("service", service),
        ("scope", scope),
        ("refresh_token", refresh),
    ])
}

/// A string field of a JSON answer with the given status.
pub async fn string_field(req: RequestBuilder, status: u16, field: &str) -> String {
    let body = json_body(expect(req, status).await).await;
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field}: {body}"))
        .to_owned()
}
