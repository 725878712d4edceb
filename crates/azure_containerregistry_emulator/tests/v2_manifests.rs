//! `/v2` manifests, content negotiation, referrers, tag list and catalog.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn put_get_head_and_errors() {
    let (_emu, c, base) = fixture().await;
    let d = push_image(&c, &base, "hello-world", "v1", "amd64").await;
    let manifests = format!("{base}/v2/hello-world/manifests");

    let resp = expect(
        c.get(format!("{manifests}/v1"))
            .header("accept", OCI_MANIFEST),
        200,
    )
    .await;
    assert_eq!(header(&resp, "content-type"), OCI_MANIFEST);
    assert_eq!(header(&resp, "docker-content-digest"), d);
    assert_eq!(header(&resp, "etag"), format!("\"{d}\""));
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(sha(&bytes), d);

    let resp = expect(c.head(format!("{manifests}/{d}")), 200).await;
    assert_eq!(header(&resp, "content-length"), bytes.len().to_string());

    // Re-PUT of the same bytes under a new tag: Location names the digest.
    let put = put_manifest_bytes(
        &c,
        &base,
        "hello-world",
        "test",
        OCI_MANIFEST,
        bytes.clone(),
    );
    let resp = expect(put, 201).await;
    assert_eq!(
        header(&resp, "location"),
        format!("/v2/hello-world/manifests/{d}")
    );
    assert_eq!(header(&resp, "docker-content-digest"), d);
    assert_eq!(header(&resp, "content-length"), "0");

    let wrong = sha(b"other");
    let put = c.put(format!("{manifests}/{wrong}")).body(bytes.clone());
    expect_code(put, 400, "DIGEST_INVALID").await;
    let put = c.put(format!("{manifests}/bad")).body("not json");
    expect_code(put, 400, "MANIFEST_INVALID").await;

    let resp = c
        .put(format!("{manifests}/big"))
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

    expect_text(
        c.get(format!("{manifests}/wrong-tag")),
        404,
        r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest tagged by \"wrong-tag\" is not found","detail":{"Tag":"wrong-tag"}}]}"#,
    )
    .await;
}

#[tokio::test]
async fn delete_by_tag_is_405_and_by_digest_removes_tags() {
    let (_emu, c, base) = fixture().await;
    let d = push_image(&c, &base, "alpine", "latest", "amd64").await;
    let manifests = format!("{base}/v2/alpine/manifests");
    expect_text(
        c.delete(format!("{manifests}/latest")),
        405,
        r#"{"errors":[{"code":"UNSUPPORTED","message":"A manifest can only be deleted by digest."}]}"#,
    )
    .await;
    expect(c.delete(format!("{manifests}/{d}")), 202).await;
    expect(c.get(format!("{manifests}/latest")), 404).await;
    let body = get_json(c.get(format!("{base}/v2/alpine/tags/list"))).await;
    assert_eq!(body["tags"], json!([]));
}

#[tokio::test]
async fn accept_negotiation_returns_the_amd64_child() {
    let (_emu, c, base) = fixture().await;
    let arm = push_image(&c, &base, "multi", "arm", "arm64").await;
    let amd = push_image(&c, &base, "multi", "amd", "amd64").await;
    let children = [(arm.as_str(), "arm64"), (amd.as_str(), "amd64")];
    let index_digest = push_index(&c, &base, "multi", "latest", &children).await;
    let latest = format!("{base}/v2/multi/manifests/latest");

    // (Accept headers, expected digest, expected Content-Type)
    let cases = [
        (
            vec![
                "application/json".to_owned(),
                format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}"),
            ],
            &amd,
            OCI_MANIFEST,
        ),
        (
            vec![format!("*/*,{OCI_MANIFEST},{OCI_INDEX}")],
            &index_digest,
            OCI_INDEX,
        ),
    ];
    for (accept, digest, content_type) in cases {
        let req = accept
            .iter()
            .fold(c.get(&latest), |req, a| req.header("accept", a));
        let resp = send(req).await;
        assert_eq!(
            header(&resp, "docker-content-digest"),
            *digest,
            "{accept:?}"
        );
        assert_eq!(header(&resp, "content-type"), content_type, "{accept:?}");
    }
}

#[tokio::test]
async fn referrers_with_and_without_filter() {
    let (_emu, c, base) = fixture().await;
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
    let sig_body = artifact("application/vnd.example.signature");
    let sig = sha(&serde_json::to_vec(&sig_body).unwrap());
    let resp = expect(
        put_manifest(&c, &base, "app", &sig, OCI_MANIFEST, &sig_body),
        201,
    )
    .await;
    assert_eq!(header(&resp, "oci-subject"), subject);
    let sbom_body = artifact("application/vnd.example.sbom");
    let sbom = sha(&serde_json::to_vec(&sbom_body).unwrap());
    push_manifest(&c, &base, "app", &sbom, OCI_MANIFEST, &sbom_body).await;

    let referrers = format!("{base}/v2/app/referrers/{subject}");
    let resp = expect(c.get(&referrers), 200).await;
    assert_eq!(header(&resp, "content-type"), OCI_INDEX);
    assert!(resp.headers().get("oci-filters-applied").is_none());
    let body = json_body(resp).await;
    assert_eq!(body["manifests"].as_array().unwrap().len(), 2);

    let filtered = format!("{referrers}?artifactType=application%2Fvnd.example.signature");
    let resp = send(c.get(filtered)).await;
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
    let (_emu, c, base) = fixture().await;
    for (repo, tag) in [("a", "t1"), ("a", "t2"), ("b/c", "x"), ("d", "y")] {
        push_image(&c, &base, repo, tag, "amd64").await;
    }
    // (path and query, expected Link or None for none, expected body)
    let cases = [
        (
            "/v2/_catalog?n=1",
            Some("</v2/_catalog?last=a&n=1>; rel=\"next\""),
            json!({ "repositories": ["a"] }),
        ),
        (
            "/v2/_catalog?n=2&last=a",
            None,
            json!({ "repositories": ["b/c", "d"] }),
        ),
        (
            "/v2/a/tags/list?n=1",
            Some("</v2/a/tags/list?last=t1&n=1>; rel=\"next\""),
            json!({ "name": "a", "tags": ["t1"] }),
        ),
    ];
    for (path, link, body) in cases {
        let resp = send(c.get(format!("{base}{path}"))).await;
        match link {
            Some(link) => assert_eq!(header(&resp, "link"), link, "{path}"),
            None => assert!(resp.headers().get("link").is_none(), "{path}"),
        }
        assert_eq!(json_body(resp).await, body, "{path}");
    }
    expect_code(
        c.get(format!("{base}/v2/nope/tags/list")),
        404,
        "NAME_UNKNOWN",
    )
    .await;
}
