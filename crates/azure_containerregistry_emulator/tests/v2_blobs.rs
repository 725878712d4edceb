//! `/v2` basics, blob reads, redirects to storage and the upload protocol.

mod common;

use azure_containerregistry_emulator::{EmulatorOptions, Listener};
use common::*;

#[tokio::test]
async fn base_endpoint_and_common_headers() {
    let emu = open().await;
    assert!(!emu.endpoint().ends_with('/'));
    assert_eq!(emu.service(), emu.endpoint().trim_start_matches("http://"));
    let resp = client()
        .get(format!("{}/v2/", emu.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "docker-distribution-api-version"),
        "registry/2.0"
    );
    assert_eq!(
        header(&resp, "content-type"),
        "application/json; charset=utf-8"
    );
    uuid::Uuid::parse_str(&header(&resp, "x-ms-correlation-request-id"))
        .expect("correlation id is a uuid");
    assert_eq!(resp.text().await.unwrap(), "{}");
}

#[tokio::test]
async fn malformed_digest_is_plain_404_without_challenge() {
    let emu = start(EmulatorOptions {
        auth: azure_containerregistry_emulator::AuthMode::Token {
            anonymous_pull: false,
            accepted_aad_tokens: vec![],
        },
        ..Default::default()
    })
    .await;
    for path in [
        "/v2/alpine/blobs/wrong%20digest",
        "/acr/v1/alpine/_manifests/wrong-digest",
    ] {
        let resp = client()
            .get(format!("{}{path}", emu.endpoint()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert!(resp.headers().get("www-authenticate").is_none());
        assert_eq!(header(&resp, "content-type"), "text/plain; charset=utf-8");
        assert_eq!(resp.text().await.unwrap(), "404 page not found\n");
    }
}

#[tokio::test]
async fn chunked_upload_with_inclusive_content_range() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let data: Vec<u8> = (0..1472u32).map(|i| (i % 251) as u8).collect();

    let resp = c
        .post(format!("{base}/v2/hello-world/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(header(&resp, "range"), "0-0");
    assert_eq!(header(&resp, "content-length"), "0");
    let uuid = header(&resp, "docker-upload-uuid");
    let mut location = header(&resp, "location");
    assert!(
        location.starts_with(&format!(
            "/v2/hello-world/blobs/uploads/{uuid}?_nouploadcache=false&_state="
        )),
        "{location}"
    );

    let resp = c
        .patch(format!("{base}{location}"))
        .header("content-range", "0-735")
        .body(data[..736].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(header(&resp, "range"), "0-735");
    let next = header(&resp, "location");
    assert_ne!(next, location, "_state changes on every step");
    location = next;

    // A chunk that does not start at the current offset is refused.
    let resp = c
        .patch(format!("{base}{location}"))
        .header("content-range", "0-735")
        .body(data[..736].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416);
    assert_eq!(json_body(resp).await["errors"][0]["code"], "RANGE_INVALID");

    let resp = c.get(format!("{base}{location}")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(header(&resp, "range"), "0-735");
    assert_eq!(header(&resp, "docker-upload-uuid"), uuid);
    location = header(&resp, "location");

    let resp = c
        .patch(format!("{base}{location}"))
        .header("content-range", "736-1471")
        .body(data[736..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(header(&resp, "range"), "0-1471");
    location = header(&resp, "location");

    let digest = sha(&data);
    let resp = c
        .put(format!(
            "{base}{location}&digest={}",
            digest.replace(':', "%3A")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    assert_eq!(
        header(&resp, "location"),
        format!("/v2/hello-world/blobs/{digest}")
    );

    let resp = c
        .head(format!("{base}/v2/hello-world/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-length"), "1472");
    assert_eq!(header(&resp, "content-type"), "application/octet-stream");
    assert_eq!(header(&resp, "docker-content-digest"), digest);

    // The finished session is gone.
    let resp = c.get(format!("{base}{location}")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        json_body(resp).await["errors"][0]["code"],
        "BLOB_UPLOAD_UNKNOWN"
    );
}

#[tokio::test]
async fn digest_mismatch_discards_the_upload() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let resp = c
        .post(format!("{base}/v2/repo/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&resp, "location");
    let resp = c
        .patch(format!("{base}{location}"))
        .body("hello world")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "range"), "0-10");
    let location = header(&resp, "location");
    let resp = c
        .put(format!("{base}{location}&digest=sha256%3A00000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = json_body(resp).await;
    assert_eq!(body["errors"][0]["code"], "DIGEST_INVALID");
    assert_eq!(
        body["errors"][0]["message"],
        "provided digest did not match uploaded content"
    );
    assert!(body["errors"][0]["detail"].is_string());
    // Nothing became visible, and the session is gone.
    let resp = c
        .head(format!("{base}/v2/repo/blobs/{}", sha(b"hello world")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = c
        .patch(format!("{base}{location}"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn monolithic_put_cancel_and_delete() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let resp = c
        .post(format!("{base}/v2/library%2Fhello/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&resp, "location");
    assert!(
        location.starts_with("/v2/library/hello/blobs/uploads/"),
        "Location is unencoded: {location}"
    );
    let d = sha(b"{}");
    let resp = c
        .put(format!("{base}{location}&digest={d}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        d,
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );

    let resp = c
        .post(format!("{base}/v2/library/hello/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&resp, "location");
    let resp = c.delete(format!("{base}{location}")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let resp = c.get(format!("{base}{location}")).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    let resp = c
        .delete(format!(
            "{base}/v2/library%2Fhello/blobs/{}",
            d.replace(':', "%3A")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let resp = c
        .delete(format!("{base}/v2/library/hello/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#
    );
}

#[tokio::test]
async fn cross_repo_mount() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let d = push_blob(&c, &base, "alpine", b"shared layer").await;
    let resp = c
        .post(format!(
            "{base}/v2/hello-world/blobs/uploads/?from=alpine&mount={d}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(header(&resp, "docker-content-digest"), d);
    assert_eq!(
        header(&resp, "location"),
        format!("/v2/hello-world/blobs/{d}")
    );
    let resp = c
        .head(format!("{base}/v2/hello-world/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let missing = sha(b"not there");
    let resp = c
        .post(format!(
            "{base}/v2/other/blobs/uploads/?from=alpine&mount={missing}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(header(&resp, "range"), "0-0");
    // A blob pushed to one repository is not readable through another.
    let resp = c
        .head(format!("{base}/v2/other/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn blob_get_redirects_to_storage_which_refuses_authorization() {
    let emu = open().await;
    let (c, base) = (client(), emu.endpoint());
    let data: Vec<u8> = (0..1024u32).map(|i| (i % 256) as u8).collect();
    let d = push_blob(&c, &base, "oci-artifact", &data).await;
    emu.clear_request_log();

    let resp = c
        .get(format!(
            "{base}/v2/oci-artifact/blobs/{}",
            d.replace(':', "%3A")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 307);
    assert_eq!(header(&resp, "docker-content-digest"), d);
    let location = header(&resp, "location");
    let prefix = format!(
        "{}/blobs/sha256/{}/data?se=",
        emu.storage_endpoint(),
        &d[7..]
    );
    assert!(location.starts_with(&prefix), "{location}");
    assert!(location.contains("&sig="));

    let resp = c
        .get(&location)
        .header("range", "bytes=768-1023")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(header(&resp, "content-range"), "bytes 768-1023/1024");
    assert_eq!(header(&resp, "accept-ranges"), "bytes");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[768..]);

    let resp = c.get(&location).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[..]);

    let resp = c
        .get(&location)
        .header("authorization", "Bearer abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let tampered = location.replace("&sig=", "&sig=0");
    assert_eq!(c.get(&tampered).send().await.unwrap().status(), 403);
    let resp = c
        .get(&location)
        .header("range", "bytes=2000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416);

    let log = emu.request_log();
    assert_eq!(log[0].listener, Listener::Registry);
    assert_eq!(log[0].status, 307);
    let storage: Vec<_> = log
        .iter()
        .filter(|r| r.listener == Listener::Storage)
        .collect();
    assert_eq!(storage.len(), 5);
    assert!(!storage[0].has_authorization);
    assert!(storage[2].has_authorization);
    assert_eq!(storage[2].status, 403);
}

#[tokio::test]
async fn direct_blob_get_with_ranges_when_redirect_is_off() {
    let emu = start(EmulatorOptions {
        redirect_blobs: false,
        ..Default::default()
    })
    .await;
    let (c, base) = (client(), emu.endpoint());
    let d = push_blob(&c, &base, "a", b"0123456789").await;
    let resp = c
        .get(format!("{base}/v2/a/blobs/{d}"))
        .header("range", "bytes=2-5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(header(&resp, "content-range"), "bytes 2-5/10");
    assert_eq!(resp.text().await.unwrap(), "2345");
    let resp = c
        .get(format!("{base}/v2/a/blobs/{d}"))
        .header("range", "bytes=7-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "789");
    let resp = c
        .get(format!("{base}/v2/a/blobs/{d}"))
        .header("range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416);
    let resp = c
        .get(format!("{base}/v2/a/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "0123456789");
}
