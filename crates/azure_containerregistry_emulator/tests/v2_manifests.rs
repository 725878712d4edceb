//! `/v2` manifests, content negotiation, referrers, tag list and catalog.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn put_get_head_and_errors() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let d = push_image(&c, &base, "hello-world", "v1", "amd64").await;

    let resp = c
        .get(format!("{base}/v2/hello-world/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), OCI_MANIFEST);
    assert_eq!(header(&resp, "docker-content-digest"), d);
    assert_eq!(header(&resp, "etag"), format!("\"{d}\""));
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(sha(&bytes), d);

    let resp = c
        .head(format!("{base}/v2/hello-world/manifests/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-length"), bytes.len().to_string());

    // Re-PUT of the same bytes under a new tag: Location names the digest.
    let resp = c
        .put(format!("{base}/v2/hello-world/manifests/test"))
        .header("content-type", OCI_MANIFEST)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        header(&resp, "location"),
        format!("/v2/hello-world/manifests/{d}")
    );
    assert_eq!(header(&resp, "docker-content-digest"), d);
    assert_eq!(header(&resp, "content-length"), "0");

    let wrong = sha(b"other");
    let resp = c
        .put(format!("{base}/v2/hello-world/manifests/{wrong}"))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(json_body(resp).await["errors"][0]["code"], "DIGEST_INVALID");

    let resp = c
        .put(format!("{base}/v2/hello-world/manifests/bad"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        json_body(resp).await["errors"][0]["code"],
        "MANIFEST_INVALID"
    );

    let resp = c
        .put(format!("{base}/v2/hello-world/manifests/big"))
        .body(vec![b' '; 5 * 1024 * 1024])
        .send()
        .await;
    if let Ok(resp) = resp {
        assert!(
            resp.status() == 413 || resp.status() == 400,
            "{}",
            resp.status()
        );
    }

    let resp = c
        .get(format!("{base}/v2/hello-world/manifests/wrong-tag"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest tagged by \"wrong-tag\" is not found","detail":{"Tag":"wrong-tag"}}]}"#
    );
}

#[tokio::test]
async fn delete_by_tag_is_405_and_by_digest_removes_tags() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let d = push_image(&c, &base, "alpine", "latest", "amd64").await;
    let resp = c
        .delete(format!("{base}/v2/alpine/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"code":"UNSUPPORTED","message":"A manifest can only be deleted by digest."}]}"#
    );
    let resp = c
        .delete(format!("{base}/v2/alpine/manifests/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let resp = c
        .get(format!("{base}/v2/alpine/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = c
        .get(format!("{base}/v2/alpine/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(resp).await["tags"], json!([]));
}

#[tokio::test]
async fn accept_negotiation_returns_the_amd64_child() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let arm = push_image(&c, &base, "multi", "arm", "arm64").await;
    let amd = push_image(&c, &base, "multi", "amd", "amd64").await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            { "mediaType": OCI_MANIFEST, "digest": arm, "size": 1, "platform": { "architecture": "arm64", "os": "linux" } },
            { "mediaType": OCI_MANIFEST, "digest": amd, "size": 1, "platform": { "architecture": "amd64", "os": "linux" } },
        ],
    });
    let index_digest = push_manifest(&c, &base, "multi", "latest", OCI_INDEX, &index).await;

    let resp = c
        .get(format!("{base}/v2/multi/manifests/latest"))
        .header("accept", "application/json")
        .header("accept", format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "docker-content-digest"), amd);
    assert_eq!(header(&resp, "content-type"), OCI_MANIFEST);

    let resp = c
        .get(format!("{base}/v2/multi/manifests/latest"))
        .header("accept", format!("*/*,{OCI_MANIFEST},{OCI_INDEX}"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "docker-content-digest"), index_digest);
    assert_eq!(header(&resp, "content-type"), OCI_INDEX);
}

#[tokio::test]
async fn referrers_with_and_without_filter() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let subject = push_image(&c, &base, "app", "v1", "amd64").await;
    let empty = push_blob(&c, &base, "app", b"{}").await;
    let artifact = |t: &str| {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": t,
            "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2 },
            "layers": [],
            "subject": { "mediaType": OCI_MANIFEST, "digest": subject, "size": 1 },
            "annotations": { "kind": t },
        })
    };
    let sig_body = serde_json::to_vec(&artifact("application/vnd.example.signature")).unwrap();
    let sig = sha(&sig_body);
    let resp = c
        .put(format!("{base}/v2/app/manifests/{sig}"))
        .header("content-type", OCI_MANIFEST)
        .body(sig_body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(header(&resp, "oci-subject"), subject);
    let sbom_body = artifact("application/vnd.example.sbom");
    push_manifest(
        &c,
        &base,
        "app",
        &sha(&serde_json::to_vec(&sbom_body).unwrap()),
        OCI_MANIFEST,
        &sbom_body,
    )
    .await;

    let resp = c
        .get(format!("{base}/v2/app/referrers/{subject}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), OCI_INDEX);
    assert!(resp.headers().get("oci-filters-applied").is_none());
    let body = json_body(resp).await;
    assert_eq!(body["manifests"].as_array().unwrap().len(), 2);

    let resp = c
        .get(format!(
            "{base}/v2/app/referrers/{subject}?artifactType=application%2Fvnd.example.signature"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "oci-filters-applied"), "artifactType");
    let body = json_body(resp).await;
    let items = body["manifests"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["digest"], sig);
    assert_eq!(
        items[0]["artifactType"],
        "application/vnd.example.signature"
    );
    assert_eq!(
        items[0]["annotations"]["kind"],
        "application/vnd.example.signature"
    );
    assert_eq!(items[0]["mediaType"], OCI_MANIFEST);
}

#[tokio::test]
async fn tag_list_and_catalog_paging() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    for (repo, tag) in [("a", "t1"), ("a", "t2"), ("b/c", "x"), ("d", "y")] {
        push_image(&c, &base, repo, tag, "amd64").await;
    }
    let resp = c
        .get(format!("{base}/v2/_catalog?n=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&resp, "link"),
        "</v2/_catalog?last=a&n=1>; rel=\"next\""
    );
    assert_eq!(json_body(resp).await["repositories"], json!(["a"]));
    let resp = c
        .get(format!("{base}/v2/_catalog?n=2&last=a"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("link").is_none());
    assert_eq!(json_body(resp).await["repositories"], json!(["b/c", "d"]));

    let resp = c
        .get(format!("{base}/v2/a/tags/list?n=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&resp, "link"),
        "</v2/a/tags/list?last=t1&n=1>; rel=\"next\""
    );
    assert_eq!(
        json_body(resp).await,
        json!({ "name": "a", "tags": ["t1"] })
    );
    let resp = c
        .get(format!("{base}/v2/nope/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(json_body(resp).await["errors"][0]["code"], "NAME_UNKNOWN");
}
