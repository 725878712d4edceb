//! `/acr/v1`: catalog, properties, ordering and opaque cursors, changeable attributes.

mod common;

use common::*;
use serde_json::{json, Value};

fn is_acr_timestamp(s: &str) -> bool {
    // 2024-01-24T06:16:12.6787894Z
    s.len() == 28 && s.ends_with('Z') && s.as_bytes()[19] == b'.'
}

#[tokio::test]
async fn catalog_paging_follows_link_verbatim() {
    let (_emu, c, base) = fixture().await;
    for repo in [
        "library/alpine",
        "library/busybox",
        "library/hello-world",
        "zeta",
    ] {
        push_image(&c, &base, repo, "latest", "amd64").await;
    }
    let mut url = format!("{base}/acr/v1/_catalog?api-version=2021-07-01&n=2");
    let mut pages = Vec::new();
    for _ in 0..10 {
        let resp = expect(c.get(&url), 200).await;
        let link = header(&resp, "link");
        pages.push(json_body(resp).await["repositories"].clone());
        if link.is_empty() {
            break;
        }
        if pages.len() == 1 {
            assert_eq!(
                link,
                "</acr/v1/_catalog?last=library%2Fbusybox&n=2&orderby=>; rel=\"next\""
            );
        }
        url = format!("{base}{}", link_target(&link));
    }
    assert_eq!(
        pages,
        vec![
            json!(["library/alpine", "library/busybox"]),
            json!(["library/hello-world", "zeta"])
        ]
    );
}

#[tokio::test]
async fn repository_properties_patch_and_delete() {
    let (emu, c, base) = fixture().await;
    let d = push_image(&c, &base, "library/hello-world", "v1", "amd64").await;
    let repo = format!("{base}/acr/v1/library%2Fhello-world");
    let body = expect_json(c.get(format!("{repo}?api-version=2021-07-01")), 200).await;
    assert_eq!(body["registry"], emu.service());
    assert_eq!(body["imageName"], "library/hello-world");
    assert_eq!(body["manifestCount"], 1);
    assert_eq!(body["tagCount"], 1);
    assert!(
        is_acr_timestamp(body["createdTime"].as_str().unwrap()),
        "{}",
        body["createdTime"]
    );
    assert_eq!(
        body["changeableAttributes"],
        json!({"deleteEnabled":true,"writeEnabled":true,"readEnabled":true,"listEnabled":true})
    );

    let lock = patch_attrs(&c, &repo, r#"{"writeEnabled": false}"#)
        .header("content-type", "application/json");
    let body = expect_json(lock, 200).await;
    assert_eq!(body["changeableAttributes"]["writeEnabled"], false);
    assert_eq!(body["changeableAttributes"]["deleteEnabled"], true);
    // Write-locked repository: pushes fail with 405.
    let push = c.post(format!("{base}/v2/library/hello-world/blobs/uploads/"));
    expect_code(push, 405, "REGISTRY_DISALLOWED_OPERATION").await;
    send(patch_attrs(&c, &repo, r#"{"writeEnabled": true}"#)).await;

    assert_eq!(
        expect_json(c.delete(&repo), 202).await,
        json!({ "manifestsDeleted": [d], "tagsDeleted": ["v1"] })
    );

    expect_text(
        c.get(format!("{base}/acr/v1/wrong-name")),
        404,
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository \"wrong-name\" is not found"}]}"#,
    )
    .await;
    expect_text(
        c.delete(format!("{base}/acr/v1/does_not_exist")),
        404,
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"does_not_exist"}}]}"#,
    )
    .await;
}

async fn tag_names(c: &reqwest::Client, url: &str) -> (Vec<String>, String, Value) {
    let resp = expect(c.get(url), 200).await;
    let link = header(&resp, "link");
    let body = json_body(resp).await;
    let names = body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    (names, link, body)
}

#[tokio::test]
async fn tag_ordering_and_opaque_cursor() {
    let (_emu, c, base) = fixture().await;
    let d = push_image(&c, &base, "library/hello-world", "v2", "amd64").await;
    let bytes = manifest_bytes(&c, &base, "library/hello-world", "v2").await;
    for tag in ["latest", "v1", "v3"] {
        let put = put_manifest_bytes(
            &c,
            &base,
            "library/hello-world",
            tag,
            OCI_MANIFEST,
            bytes.clone(),
        );
        expect(put, 201).await;
    }
    let repo = format!("{base}/acr/v1/library%2Fhello-world/_tags");
    let (lexical, _, body) = tag_names(&c, &repo).await;
    assert_eq!(lexical, ["latest", "v1", "v2", "v3"]);
    assert_eq!(body["imageName"], "library/hello-world");
    let tag = &body["tags"][0];
    assert_eq!(tag["digest"], d);
    assert_eq!(tag["signed"], false);
    assert!(is_acr_timestamp(tag["lastUpdateTime"].as_str().unwrap()));

    let (asc, _, _) = tag_names(&c, &format!("{repo}?orderby=timeasc")).await;
    let (mut desc, _, _) = tag_names(&c, &format!("{repo}?orderby=timedesc")).await;
    assert_eq!(asc, ["v2", "latest", "v1", "v3"]);
    desc.reverse();
    assert_eq!(asc, desc);

    // Paged with orderby: the cursor is <ticks>&<name>, percent-encoded.
    let paged = format!("{repo}?n=2&orderby=timeasc&digest={}", enc(&d));
    let (page1, link, _) = tag_names(&c, &paged).await;
    assert_eq!(page1, ["v2", "latest"]);
    assert!(
        link.starts_with("</acr/v1/library%2Fhello-world/_tags?last="),
        "{link}"
    );
    assert!(
        link.ends_with("%26latest&n=2&orderby=timeasc>; rel=\"next\""),
        "{link}"
    );
    let ticks: &str = link
        .split("last=")
        .nth(1)
        .unwrap()
        .split("%26")
        .next()
        .unwrap();
    assert!(
        ticks.parse::<i64>().unwrap() > 630_000_000_000_000_000,
        "{ticks}"
    );
    let (page2, link2, _) = tag_names(&c, &format!("{base}{}", link_target(&link))).await;
    assert_eq!(page2, ["v1", "v3"]);
    assert!(link2.is_empty());

    let body = get_json(c.get(format!("{repo}/v1"))).await;
    assert_eq!(body["tag"]["name"], "v1");
    expect_text(
        c.get(format!("{repo}/wrong-tag")),
        404,
        r#"{"errors":[{"code":"TAG_UNKNOWN","message":"the specified tag does not exist"}]}"#,
    )
    .await;
    expect(c.delete(format!("{repo}/v1")), 202).await;
    let (after, _, _) = tag_names(&c, &repo).await;
    assert_eq!(after, ["latest", "v2", "v3"]);
}

#[tokio::test]
async fn manifest_properties_and_ordering() {
    let (_emu, c, base) = fixture().await;
    let arm = push_image(&c, &base, "multi", "arm", "arm").await;
    let amd = push_image(&c, &base, "multi", "amd", "amd64").await;
    let children = [(amd.as_str(), "amd64"), (arm.as_str(), "arm")];
    let idx = push_index(&c, &base, "multi", "latest", &children).await;
    let manifests = format!("{base}/acr/v1/multi/_manifests");
    let manifest = |digest: &str| {
        let req = c.get(format!("{manifests}/{digest}"));
        async move { get_json(req).await["manifest"].clone() }
    };

    let m = manifest(&amd).await;
    assert_eq!(m["architecture"], "amd64");
    assert_eq!(m["os"], "linux");
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert_eq!(m["configMediaType"], OCI_CONFIG);
    assert_eq!(m["tags"], json!(["amd"]));
    let amd_size = m["imageSize"].as_u64().unwrap();
    assert!(amd_size > 0);

    let m = manifest(&idx).await;
    assert!(m.get("architecture").is_none());
    assert_eq!(
        m["references"],
        json!([
            { "digest": amd, "architecture": "amd64", "os": "linux" },
            { "digest": arm, "architecture": "arm", "os": "linux" },
        ])
    );
    let arm_size = manifest(&arm).await["imageSize"].as_u64().unwrap();
    assert_eq!(m["imageSize"].as_u64().unwrap(), amd_size + arm_size);

    let list = |q: &str| {
        let req = c.get(format!("{manifests}{q}"));
        async move {
            let resp = send(req).await;
            let link = header(&resp, "link");
            let body = json_body(resp).await;
            let digests: Vec<String> = body["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["digest"].as_str().unwrap().to_owned())
                .collect();
            (digests, link)
        }
    };
    let (desc, _) = list("?orderby=timedesc").await;
    assert_eq!(desc, [idx.clone(), amd.clone(), arm.clone()]);
    let (first, link) = list("?n=1").await;
    let mut sorted = [idx.clone(), amd.clone(), arm.clone()];
    sorted.sort();
    assert_eq!(first, [sorted[0].clone()]);
    assert_eq!(
        link,
        format!(
            "</acr/v1/multi/_manifests?last={}&n=1&orderby=>; rel=\"next\"",
            enc(&sorted[0])
        )
    );
    let (_, link) = list("?n=1&orderby=timeasc").await;
    assert!(
        link.contains(&format!("%26{}&n=1&orderby=timeasc>", enc(&arm))),
        "{link}"
    );

    expect(c.get(format!("{manifests}/{}", sha(b"nope"))), 404).await;
}

#[tokio::test]
async fn changeable_attributes_are_enforced() {
    let (_emu, c, base) = fixture().await;
    let d = push_image(&c, &base, "alpine", "locked", "amd64").await;
    let bytes = manifest_bytes(&c, &base, "alpine", "locked").await;
    let tag = format!("{base}/acr/v1/alpine/_tags/locked");

    let resp = send(patch_attrs(&c, &tag, r#"{"writeEnabled":false}"#)).await;
    assert_eq!(
        json_body(resp).await["tag"]["changeableAttributes"]["writeEnabled"],
        false
    );
    let put = put_manifest_bytes(&c, &base, "alpine", "locked", OCI_MANIFEST, bytes);
    let err = expect_code(put, 405, "REGISTRY_DISALLOWED_OPERATION").await;
    assert!(err["message"]
        .as_str()
        .unwrap()
        .starts_with("The operation is disallowed on this registry, repository or image."));
    assert_eq!(err["detail"], json!({}));
    let resp = send(c.delete(&tag)).await;
    assert_eq!(resp.status(), 405, "a write lock also blocks deletes");

    let unlock = r#"{"writeEnabled":true,"deleteEnabled":false}"#;
    send(patch_attrs(&c, &tag, unlock)).await;
    expect(c.delete(&tag), 405).await;
    let resp = send(c.delete(format!("{base}/v2/alpine/manifests/{d}"))).await;
    assert_eq!(
        resp.status(),
        405,
        "a delete-locked tag protects its manifest"
    );

    let hide = r#"{"readEnabled":false,"listEnabled":false}"#;
    let body = expect_json(
        patch_attrs(&c, &format!("{base}/acr/v1/alpine/_manifests/{d}"), hide),
        200,
    )
    .await;
    assert_eq!(
        body["manifest"]["changeableAttributes"]["readEnabled"],
        false
    );
    expect(c.get(format!("{base}/v2/alpine/manifests/{d}")), 405).await;
    let body = get_json(c.get(format!("{base}/acr/v1/alpine/_manifests"))).await;
    assert_eq!(body["manifests"], json!([]));

    let unlisted = r#"{"listEnabled":false}"#;
    send(patch_attrs(&c, &format!("{base}/acr/v1/alpine"), unlisted)).await;
    let body = get_json(c.get(format!("{base}/acr/v1/_catalog"))).await;
    assert_eq!(body["repositories"], json!([]));
}
