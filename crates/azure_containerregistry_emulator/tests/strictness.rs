//! The emulator checks what ACR checks: manifest references and content types, read locks on
//! blobs, token services, challenge parameters, chunk ranges and write locks at commit time.

mod common;

use azure_containerregistry_emulator::{AuthMode, EmulatorOptions};
use common::*;
use serde_json::json;

fn image_manifest(config: &str, layer: &str) -> serde_json::Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2 },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5 }],
    })
}

async fn put_manifest(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    content_type: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    c.put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", content_type)
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn manifest_with_unpushed_blobs_is_refused() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let config = push_blob(&c, &base, "app", b"{}").await;
    let missing = sha(b"never pushed");
    let resp = put_manifest(
        &c,
        &base,
        "app",
        "v1",
        OCI_MANIFEST,
        &image_manifest(&config, &missing),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body = json_body(resp).await;
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN", "{body}");
    // A blob pushed to another repository is not enough either.
    let elsewhere = push_blob(&c, &base, "other", b"layer").await;
    let resp = put_manifest(
        &c,
        &base,
        "app",
        "v1",
        OCI_MANIFEST,
        &image_manifest(&config, &elsewhere),
    )
    .await;
    assert_eq!(resp.status(), 400);
    // Nothing was stored or tagged.
    let resp = c
        .get(format!("{base}/v2/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // With the layer pushed here, the same manifest is accepted.
    push_blob(&c, &base, "app", b"layer").await;
    let resp = put_manifest(
        &c,
        &base,
        "app",
        "v1",
        OCI_MANIFEST,
        &image_manifest(&config, &elsewhere),
    )
    .await;
    assert_eq!(resp.status(), 201);
    // An index naming a child manifest the repository lacks is refused the same way.
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": OCI_MANIFEST, "digest": sha(b"no such child"), "size": 1 }],
    });
    let resp = put_manifest(&c, &base, "app", "multi", OCI_INDEX, &index).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        json_body(resp).await["errors"][0]["code"],
        "MANIFEST_BLOB_UNKNOWN"
    );
}

#[tokio::test]
async fn content_type_must_match_the_body_media_type() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let config = push_blob(&c, &base, "app", b"{}").await;
    let layer = push_blob(&c, &base, "app", b"layer").await;
    let manifest = image_manifest(&config, &layer);
    let resp = put_manifest(&c, &base, "app", "v1", DOCKER_MANIFEST, &manifest).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        json_body(resp).await["errors"][0]["code"],
        "MANIFEST_INVALID"
    );
    let resp = c
        .get(format!("{base}/v2/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404, "nothing stored under the wrong type");
    let resp = put_manifest(&c, &base, "app", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn read_lock_refuses_blob_reads_too() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    push_image(&c, &base, "locked", "v1", "amd64").await;
    let layer = sha(b"layer for locked:v1:amd64");
    let resp = c
        .patch(format!("{base}/acr/v1/locked"))
        .body(r#"{"readEnabled":false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let resp = c
            .request(method.clone(), format!("{base}/v2/locked/blobs/{layer}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            405,
            "{method} of a blob in a read-locked repository"
        );
    }
}

#[tokio::test]
async fn tokens_for_another_service_are_refused() {
    let emu = start(EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull: true,
            accepted_aad_tokens: vec!["aad".into()],
        },
        ..Default::default()
    })
    .await;
    let (c, base) = (client(), emu.endpoint());
    let exchange = |service: String| {
        c.post(format!("{base}/oauth2/exchange"))
            .form(&[
                ("grant_type", "access_token"),
                ("service", &service),
                ("access_token", "aad"),
            ])
            .send()
    };
    assert_eq!(
        exchange("other.azurecr.io".into()).await.unwrap().status(),
        401
    );
    let resp = exchange(emu.service()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let refresh = json_body(resp).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = |service: String| {
        c.post(format!("{base}/oauth2/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("service", &service),
                ("scope", "repository:a:pull"),
                ("refresh_token", &refresh),
            ])
            .send()
    };
    assert_eq!(
        token("other.azurecr.io".into()).await.unwrap().status(),
        401
    );
    assert_eq!(token(emu.service()).await.unwrap().status(), 200);
    let resp = c
        .get(format!(
            "{base}/oauth2/token?service=other.azurecr.io&scope=repository:a:pull"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "anonymous GET for another service");
}

#[tokio::test]
async fn mount_from_never_reaches_the_challenge_unvalidated() {
    let emu = start(EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull: false,
            accepted_aad_tokens: vec![],
        },
        ..Default::default()
    })
    .await;
    let (c, base) = (client(), emu.endpoint());
    let digest = sha(b"x");
    for from in [
        "a%22,realm=%22https://evil",
        "a%0d%0aX-Evil:%201",
        "valid/source",
    ] {
        let resp = c
            .post(format!(
                "{base}/v2/target/blobs/uploads/?mount={digest}&from={from}"
            ))
            .send()
            .await
            .unwrap();
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

async fn open_session(c: &reqwest::Client, base: &str, repo: &str) -> String {
    let resp = c
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    header(&resp, "location")
}

#[tokio::test]
async fn content_range_end_is_checked() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let location = open_session(&c, &base, "ranges").await;
    for range in ["0--1", "0-junk", "0-99", "0-3", "5-4"] {
        let resp = c
            .patch(format!("{base}{location}"))
            .header("content-range", range)
            .body("0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 416, "Content-Range {range}");
    }
    let resp = c
        .patch(format!("{base}{location}"))
        .header("content-range", "0-9")
        .body("0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(
        header(&resp, "range"),
        "0-9",
        "the refused chunks left nothing behind"
    );
}

#[tokio::test]
async fn commit_is_refused_after_the_repository_is_write_locked() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    push_blob(&c, &base, "frozen", b"first").await;
    let location = open_session(&c, &base, "frozen").await;
    let resp = c
        .patch(format!("{base}{location}"))
        .body("late bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let location = header(&resp, "location");
    let resp = c
        .patch(format!("{base}/acr/v1/frozen"))
        .body(r#"{"writeEnabled":false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let digest = sha(b"late bytes");
    let resp = c
        .put(format!("{base}{location}&digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let resp = c
        .head(format!("{base}/v2/frozen/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        404,
        "the blob was not linked into the locked repository"
    );
}
