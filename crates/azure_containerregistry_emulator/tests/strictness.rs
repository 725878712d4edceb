//! The emulator checks what ACR checks: manifest references and content types, read locks on
//! blobs, token services, challenge parameters, chunk ranges and write locks at commit time.

mod common;

use common::*;
use serde_json::{json, Value};

fn image_manifest(config: &str, layer: &str) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": config, "size": 2 },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5 }],
    })
}

#[tokio::test]
async fn manifest_with_unpushed_blobs_is_refused() {
    let (_emu, c, base) = fixture().await;
    let put_v1 = |manifest: &Value| put_manifest(&c, &base, "app", "v1", OCI_MANIFEST, manifest);
    let config = push_blob(&c, &base, "app", b"{}").await;
    let missing = sha(b"never pushed");
    let unknown = image_manifest(&config, &missing);
    expect_code(put_v1(&unknown), 400, "MANIFEST_BLOB_UNKNOWN").await;
    // A blob pushed to another repository is not enough either.
    let elsewhere = push_blob(&c, &base, "other", b"layer").await;
    let manifest = image_manifest(&config, &elsewhere);
    expect(put_v1(&manifest), 400).await;
    // Nothing was stored or tagged.
    expect(c.get(format!("{base}/v2/app/manifests/v1")), 404).await;
    // With the layer pushed here, the same manifest is accepted.
    push_blob(&c, &base, "app", b"layer").await;
    expect(put_v1(&manifest), 201).await;
    // An index naming a child manifest the repository lacks is refused the same way.
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": OCI_MANIFEST, "digest": sha(b"no such child"), "size": 1 }],
    });
    let put = put_manifest(&c, &base, "app", "multi", OCI_INDEX, &index);
    expect_code(put, 400, "MANIFEST_BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn content_type_must_match_the_body_media_type() {
    let (_emu, c, base) = fixture().await;
    let config = push_blob(&c, &base, "app", b"{}").await;
    let layer = push_blob(&c, &base, "app", b"layer").await;
    let manifest = image_manifest(&config, &layer);
    let put = put_manifest(&c, &base, "app", "v1", DOCKER_MANIFEST, &manifest);
    expect_code(put, 400, "MANIFEST_INVALID").await;
    let resp = send(c.get(format!("{base}/v2/app/manifests/v1"))).await;
    assert_eq!(resp.status(), 404, "nothing stored under the wrong type");
    expect(
        put_manifest(&c, &base, "app", "v1", OCI_MANIFEST, &manifest),
        201,
    )
    .await;
}

#[tokio::test]
async fn read_lock_refuses_blob_reads_too() {
    let (_emu, c, base) = fixture().await;
    push_image(&c, &base, "locked", "v1", "amd64").await;
    let layer = sha(b"layer for locked:v1:amd64");
    let lock = patch_attrs(
        &c,
        &format!("{base}/acr/v1/locked"),
        r#"{"readEnabled":false}"#,
    );
    expect(lock, 200).await;
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let url = format!("{base}/v2/locked/blobs/{layer}");
        let resp = send(c.request(method.clone(), url)).await;
        assert_eq!(
            resp.status(),
            405,
            "{method} of a blob in a read-locked repository"
        );
    }
}

#[tokio::test]
async fn tokens_for_another_service_are_refused() {
    let (emu, c, base) = fixture_with(token_auth(true, &["aad"])).await;
    let exchange_url = format!("{base}/oauth2/exchange");
    let token_url = format!("{base}/oauth2/token");
    let other = "other.azurecr.io";
    expect(exchange(&c, &exchange_url, other, "aad"), 401).await;
    let service = emu.service();
    let exchanged = exchange(&c, &exchange_url, &service, "aad");
    let refresh = string_field(exchanged, 200, "refresh_token").await;
    let scope = "repository:a:pull";
    expect(token(&c, &token_url, other, scope, &refresh), 401).await;
    expect(token(&c, &token_url, &service, scope, &refresh), 200).await;
    let resp = send(c.get(format!(
        "{token_url}?service=other.azurecr.io&scope=repository:a:pull"
    )))
    .await;
    assert_eq!(resp.status(), 401, "anonymous GET for another service");
}

#[tokio::test]
async fn mount_from_never_reaches_the_challenge_unvalidated() {
    let (_emu, c, base) = fixture_with(token_auth(false, &[])).await;
    let digest = sha(b"x");
    for from in [
        "a%22,realm=%22https://evil",
        "a%0d%0aX-Evil:%201",
        "valid/source",
    ] {
        let url = format!("{base}/v2/target/blobs/uploads/?mount={digest}&from={from}");
        let resp = send(c.post(url)).await;
        assert_eq!(resp.status(), 401, "{from}");
        let challenge = header(&resp, "www-authenticate");
        assert_eq!(challenge.matches("realm=").count(), 1, "{challenge}");
        assert!(
            challenge.contains("repository:target:pull,push"),
            "{challenge}"
        );
        assert!(resp.headers().get("x-evil").is_none());
        assert_eq!(
            challenge.contains("repository:valid/source:pull"),
            from == "valid/source",
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn content_range_end_is_checked() {
    let (_emu, c, base) = fixture().await;
    let location = format!("{base}{}", upload_location(&c, &base, "ranges").await);
    let chunk = |range: &str| {
        c.patch(&location)
            .header("content-range", range)
            .body("0123456789")
    };
    for range in ["0--1", "0-junk", "0-99", "0-3", "5-4"] {
        let resp = send(chunk(range)).await;
        assert_eq!(resp.status(), 416, "Content-Range {range}");
    }
    let resp = expect(chunk("0-9"), 202).await;
    assert_eq!(
        header(&resp, "range"),
        "0-9",
        "the refused chunks left nothing behind"
    );
}

#[tokio::test]
async fn commit_is_refused_after_the_repository_is_write_locked() {
    let (_emu, c, base) = fixture().await;
    push_blob(&c, &base, "frozen", b"first").await;
    let location = upload_location(&c, &base, "frozen").await;
    let resp = expect(c.patch(format!("{base}{location}")).body("late bytes"), 202).await;
    let location = header(&resp, "location");
    let lock = patch_attrs(
        &c,
        &format!("{base}/acr/v1/frozen"),
        r#"{"writeEnabled":false}"#,
    );
    expect(lock, 200).await;
    let digest = sha(b"late bytes");
    expect(c.put(format!("{base}{location}&digest={digest}")), 405).await;
    let resp = send(c.head(format!("{base}/v2/frozen/blobs/{digest}"))).await;
    assert_eq!(
        resp.status(),
        404,
        "the blob was not linked into the locked repository"
    );
}
