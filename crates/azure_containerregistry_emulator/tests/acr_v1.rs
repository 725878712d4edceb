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
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
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
        let resp = c.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
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
        let target = link.trim_start_matches('<').split('>').next().unwrap();
        url = format!("{base}{target}");
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
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let d = push_image(&c, &base, "library/hello-world", "v1", "amd64").await;
    let resp = c
        .get(format!(
            "{base}/acr/v1/library%2Fhello-world?api-version=2021-07-01"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
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

    let resp = c
        .patch(format!("{base}/acr/v1/library%2Fhello-world"))
        .header("content-type", "application/json")
        .body(r#"{"writeEnabled": false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
    assert_eq!(body["changeableAttributes"]["writeEnabled"], false);
    assert_eq!(body["changeableAttributes"]["deleteEnabled"], true);
    // Write-locked repository: pushes fail with 405.
    let resp = c
        .post(format!("{base}/v2/library/hello-world/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(
        json_body(resp).await["errors"][0]["code"],
        "REGISTRY_DISALLOWED_OPERATION"
    );
    c.patch(format!("{base}/acr/v1/library%2Fhello-world"))
        .body(r#"{"writeEnabled": true}"#)
        .send()
        .await
        .unwrap();

    let resp = c
        .delete(format!("{base}/acr/v1/library%2Fhello-world"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(
        json_body(resp).await,
        json!({ "manifestsDeleted": [d], "tagsDeleted": ["v1"] })
    );

    let resp = c
        .get(format!("{base}/acr/v1/wrong-name"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository \"wrong-name\" is not found"}]}"#
    );
    let resp = c
        .delete(format!("{base}/acr/v1/does_not_exist"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"does_not_exist"}}]}"#
    );
}

async fn tag_names(c: &reqwest::Client, url: &str) -> (Vec<String>, String, Value) {
    let resp = c.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
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
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let d = push_image(&c, &base, "library/hello-world", "v2", "amd64").await;
    let bytes = c
        .get(format!("{base}/v2/library/hello-world/manifests/v2"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    for tag in ["latest", "v1", "v3"] {
        let resp = c
            .put(format!("{base}/v2/library/hello-world/manifests/{tag}"))
            .header("content-type", OCI_MANIFEST)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
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
    let (page1, link, _) = tag_names(
        &c,
        &format!(
            "{repo}?n=2&orderby=timeasc&digest={}",
            d.replace(':', "%3A")
        ),
    )
    .await;
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
    let target = link.trim_start_matches('<').split('>').next().unwrap();
    let (page2, link2, _) = tag_names(&c, &format!("{base}{target}")).await;
    assert_eq!(page2, ["v1", "v3"]);
    assert!(link2.is_empty());

    let resp = c
        .get(format!("{base}/acr/v1/library%2Fhello-world/_tags/v1"))
        .send()
        .await
        .unwrap();
    let body = json_body(resp).await;
    assert_eq!(body["tag"]["name"], "v1");
    let resp = c
        .get(format!(
            "{base}/acr/v1/library%2Fhello-world/_tags/wrong-tag"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"code":"TAG_UNKNOWN","message":"the specified tag does not exist"}]}"#
    );
    let resp = c
        .delete(format!("{base}/acr/v1/library%2Fhello-world/_tags/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let (after, _, _) = tag_names(&c, &repo).await;
    assert_eq!(after, ["latest", "v2", "v3"]);
}

#[tokio::test]
async fn manifest_properties_and_ordering() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let arm = push_image(&c, &base, "multi", "arm", "arm").await;
    let amd = push_image(&c, &base, "multi", "amd", "amd64").await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            { "mediaType": OCI_MANIFEST, "digest": amd, "size": 1, "platform": { "architecture": "amd64", "os": "linux" } },
            { "mediaType": OCI_MANIFEST, "digest": arm, "size": 1, "platform": { "architecture": "arm", "os": "linux" } },
        ],
    });
    let idx = push_manifest(&c, &base, "multi", "latest", OCI_INDEX, &index).await;

    let resp = c
        .get(format!("{base}/acr/v1/multi/_manifests/{amd}"))
        .send()
        .await
        .unwrap();
    let m = json_body(resp).await["manifest"].clone();
    assert_eq!(m["architecture"], "amd64");
    assert_eq!(m["os"], "linux");
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert_eq!(
        m["configMediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(m["tags"], json!(["amd"]));
    let amd_size = m["imageSize"].as_u64().unwrap();
    assert!(amd_size > 0);

    let resp = c
        .get(format!("{base}/acr/v1/multi/_manifests/{idx}"))
        .send()
        .await
        .unwrap();
    let m = json_body(resp).await["manifest"].clone();
    assert!(m.get("architecture").is_none());
    assert_eq!(
        m["references"],
        json!([
            { "digest": amd, "architecture": "amd64", "os": "linux" },
            { "digest": arm, "architecture": "arm", "os": "linux" },
        ])
    );
    let arm_resp = c
        .get(format!("{base}/acr/v1/multi/_manifests/{arm}"))
        .send()
        .await
        .unwrap();
    let arm_size = json_body(arm_resp).await["manifest"]["imageSize"]
        .as_u64()
        .unwrap();
    assert_eq!(m["imageSize"].as_u64().unwrap(), amd_size + arm_size);

    let list = |q: &str| {
        let c = c.clone();
        let url = format!("{base}/acr/v1/multi/_manifests{q}");
        async move {
            let resp = c.get(url).send().await.unwrap();
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
            sorted[0].replace(':', "%3A")
        )
    );
    let (_, link) = list("?n=1&orderby=timeasc").await;
    assert!(
        link.contains(&format!(
            "%26{}&n=1&orderby=timeasc>",
            arm.replace(':', "%3A")
        )),
        "{link}"
    );

    let resp = c
        .get(format!("{base}/acr/v1/multi/_manifests/{}", sha(b"nope")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn changeable_attributes_are_enforced() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let d = push_image(&c, &base, "alpine", "locked", "amd64").await;
    let bytes = c
        .get(format!("{base}/v2/alpine/manifests/locked"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    let resp = c
        .patch(format!("{base}/acr/v1/alpine/_tags/locked"))
        .body(r#"{"writeEnabled":false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_body(resp).await["tag"]["changeableAttributes"]["writeEnabled"],
        false
    );
    let resp = c
        .put(format!("{base}/v2/alpine/manifests/locked"))
        .header("content-type", OCI_MANIFEST)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let err = json_body(resp).await["errors"][0].clone();
    assert_eq!(err["code"], "REGISTRY_DISALLOWED_OPERATION");
    assert!(err["message"]
        .as_str()
        .unwrap()
        .starts_with("The operation is disallowed on this registry, repository or image."));
    assert_eq!(err["detail"], json!({}));
    let resp = c
        .delete(format!("{base}/acr/v1/alpine/_tags/locked"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405, "a write lock also blocks deletes");

    c.patch(format!("{base}/acr/v1/alpine/_tags/locked"))
        .body(r#"{"writeEnabled":true,"deleteEnabled":false}"#)
        .send()
        .await
        .unwrap();
    let resp = c
        .delete(format!("{base}/acr/v1/alpine/_tags/locked"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let resp = c
        .delete(format!("{base}/v2/alpine/manifests/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        405,
        "a delete-locked tag protects its manifest"
    );

    let resp = c
        .patch(format!("{base}/acr/v1/alpine/_manifests/{d}"))
        .body(r#"{"readEnabled":false,"listEnabled":false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json_body(resp).await["manifest"]["changeableAttributes"]["readEnabled"],
        false
    );
    let resp = c
        .get(format!("{base}/v2/alpine/manifests/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let resp = c
        .get(format!("{base}/acr/v1/alpine/_manifests"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(resp).await["manifests"], json!([]));

    c.patch(format!("{base}/acr/v1/alpine"))
        .body(r#"{"listEnabled":false}"#)
        .send()
        .await
        .unwrap();
    let resp = c
        .get(format!("{base}/acr/v1/_catalog"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(resp).await["repositories"], json!([]));
}
