//! `/v2` basics, blob reads, redirects to storage and the upload protocol.

mod common;

use azure_containerregistry_emulator::{EmulatorOptions, Listener};
use common::*;

#[tokio::test]
async fn base_endpoint_and_common_headers() {
    let (emu, c, base) = fixture().await;
    assert!(!base.ends_with('/'));
    assert_eq!(emu.service(), base.trim_start_matches("http://"));
    let resp = expect(c.get(format!("{base}/v2/")), 200).await;
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
    uuid::Uuid::parse_str(&header(&resp, "x-ms-request-id")).expect("request id is a uuid");
    assert_eq!(header(&resp, "x-ms-client-request-id"), "");
    assert_eq!(resp.text().await.unwrap(), "{}");
    // The caller's id comes back on /v2 answers; /acr/v1 answers carry no request id.
    let resp = expect(
        c.get(format!("{base}/v2/"))
            .header("x-ms-client-request-id", "abc-123"),
        200,
    )
    .await;
    assert_eq!(header(&resp, "x-ms-client-request-id"), "abc-123");
    let resp = expect(c.get(format!("{base}/acr/v1/_catalog")), 200).await;
    assert!(resp.headers().get("x-ms-request-id").is_none());
}

#[tokio::test]
async fn malformed_digest_is_plain_404_without_challenge() {
    let (_emu, c, base) = fixture_with(token_auth(false, &[])).await;
    for path in [
        "/v2/alpine/blobs/wrong%20digest",
        "/acr/v1/alpine/_manifests/wrong-digest",
    ] {
        let resp = expect(c.get(format!("{base}{path}")), 404).await;
        assert!(resp.headers().get("www-authenticate").is_none(), "{path}");
        assert_eq!(
            header(&resp, "content-type"),
            "text/plain; charset=utf-8",
            "{path}"
        );
        assert_eq!(resp.text().await.unwrap(), "404 page not found\n", "{path}");
    }
}

/// `PATCH <location>` of one chunk with its `Content-Range`.
fn chunk(c: &reqwest::Client, url: &str, range: &str, data: &[u8]) -> reqwest::RequestBuilder {
    c.patch(url)
        .header("content-range", range)
        .body(data.to_vec())
}

#[tokio::test]
async fn chunked_upload_with_inclusive_content_range() {
    let (_emu, c, base) = fixture().await;
    let data: Vec<u8> = (0..1472u32).map(|i| (i % 251) as u8).collect();

    let resp = expect(c.post(format!("{base}/v2/hello-world/blobs/uploads/")), 202).await;
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

    let first = format!("{base}{location}");
    let resp = expect(chunk(&c, &first, "0-735", &data[..736]), 202).await;
    assert_eq!(header(&resp, "range"), "0-735");
    let next = header(&resp, "location");
    assert_ne!(next, location, "_state changes on every step");
    location = next;

    // A chunk that does not start at the current offset is refused.
    let again = format!("{base}{location}");
    expect_code(
        chunk(&c, &again, "0-735", &data[..736]),
        416,
        "RANGE_INVALID",
    )
    .await;

    let resp = expect(c.get(format!("{base}{location}")), 204).await;
    assert_eq!(header(&resp, "range"), "0-735");
    assert_eq!(header(&resp, "docker-upload-uuid"), uuid);
    location = header(&resp, "location");

    let second = format!("{base}{location}");
    let resp = expect(chunk(&c, &second, "736-1471", &data[736..]), 202).await;
    assert_eq!(header(&resp, "range"), "0-1471");
    location = header(&resp, "location");

    let digest = sha(&data);
    let commit = c.put(format!("{base}{location}&digest={}", enc(&digest)));
    let resp = expect(commit, 201).await;
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    assert_eq!(
        header(&resp, "location"),
        format!("/v2/hello-world/blobs/{digest}")
    );

    let resp = expect(c.head(format!("{base}/v2/hello-world/blobs/{digest}")), 200).await;
    assert_eq!(header(&resp, "content-length"), "1472");
    assert_eq!(header(&resp, "content-type"), "application/octet-stream");
    assert_eq!(header(&resp, "docker-content-digest"), digest);

    // The finished session is gone.
    expect_code(
        c.get(format!("{base}{location}")),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn digest_mismatch_discards_the_upload() {
    let (_emu, c, base) = fixture().await;
    let location = upload_location(&c, &base, "repo").await;
    let resp = send(c.patch(format!("{base}{location}")).body("hello world")).await;
    assert_eq!(header(&resp, "range"), "0-10");
    let location = header(&resp, "location");
    let commit = c.put(format!("{base}{location}&digest=sha256%3A00000000"));
    let err = expect_code(commit, 400, "DIGEST_INVALID").await;
    assert_eq!(
        err["message"],
        "provided digest did not match uploaded content"
    );
    assert!(err["detail"].is_string());
    // Nothing became visible, and the session is gone.
    let blob = format!("{base}/v2/repo/blobs/{}", sha(b"hello world"));
    expect(c.head(blob), 404).await;
    expect(c.patch(format!("{base}{location}")).body("x"), 404).await;
}

#[tokio::test]
async fn monolithic_put_cancel_and_delete() {
    let (_emu, c, base) = fixture().await;
    let location = upload_location(&c, &base, "library%2Fhello").await;
    assert!(
        location.starts_with("/v2/library/hello/blobs/uploads/"),
        "Location is unencoded: {location}"
    );
    let d = sha(b"{}");
    expect(
        c.put(format!("{base}{location}&digest={d}")).body("{}"),
        201,
    )
    .await;
    assert_eq!(
        d,
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );

    let location = upload_location(&c, &base, "library/hello").await;
    expect(c.delete(format!("{base}{location}")), 204).await;
    expect(c.get(format!("{base}{location}")), 404).await;

    expect(
        c.delete(format!("{base}/v2/library%2Fhello/blobs/{}", enc(&d))),
        202,
    )
    .await;
    expect_text(
        c.delete(format!("{base}/v2/library/hello/blobs/{d}")),
        404,
        r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
    )
    .await;
}

#[tokio::test]
async fn cross_repo_mount() {
    let (_emu, c, base) = fixture().await;
    let d = push_blob(&c, &base, "alpine", b"shared layer").await;
    let mount = format!("{base}/v2/hello-world/blobs/uploads/?from=alpine&mount={d}");
    let resp = expect(c.post(mount), 201).await;
    assert_eq!(header(&resp, "docker-content-digest"), d);
    assert_eq!(
        header(&resp, "location"),
        format!("/v2/hello-world/blobs/{d}")
    );
    expect(c.head(format!("{base}/v2/hello-world/blobs/{d}")), 200).await;

    let missing = sha(b"not there");
    let mount = format!("{base}/v2/other/blobs/uploads/?from=alpine&mount={missing}");
    let resp = expect(c.post(mount), 202).await;
    assert_eq!(header(&resp, "range"), "0-0");
    // A blob pushed to one repository is not readable through another.
    expect(c.head(format!("{base}/v2/other/blobs/{d}")), 404).await;
}

#[tokio::test]
async fn blob_get_redirects_to_storage_which_refuses_authorization() {
    let (emu, c, base) = fixture().await;
    let data: Vec<u8> = (0..1024u32).map(|i| (i % 256) as u8).collect();
    let d = push_blob(&c, &base, "oci-artifact", &data).await;
    emu.clear_request_log();

    let resp = expect(
        c.get(format!("{base}/v2/oci-artifact/blobs/{}", enc(&d))),
        307,
    )
    .await;
    assert_eq!(header(&resp, "docker-content-digest"), d);
    let location = header(&resp, "location");
    let prefix = format!(
        "{}/blobs/sha256/{}/data?se=",
        emu.storage_endpoint(),
        &d[7..]
    );
    assert!(location.starts_with(&prefix), "{location}");
    assert!(location.contains("&sig="));

    let resp = expect(c.get(&location).header("range", "bytes=768-1023"), 206).await;
    assert_eq!(header(&resp, "content-range"), "bytes 768-1023/1024");
    assert_eq!(header(&resp, "accept-ranges"), "bytes");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[768..]);

    let resp = expect(c.get(&location), 200).await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[..]);

    expect(c.get(&location).header("authorization", "Bearer abc"), 403).await;
    let tampered = location.replace("&sig=", "&sig=0");
    expect(c.get(&tampered), 403).await;
    expect(c.get(&location).header("range", "bytes=2000-"), 416).await;

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
    let (_emu, c, base) = fixture_with(EmulatorOptions {
        redirect_blobs: false,
        ..Default::default()
    })
    .await;
    let d = push_blob(&c, &base, "a", b"0123456789").await;
    let url = format!("{base}/v2/a/blobs/{d}");
    // (Range, status, Content-Range, body)
    let cases = [
        (Some("bytes=2-5"), 206, Some("bytes 2-5/10"), Some("2345")),
        (Some("bytes=7-"), 206, None, Some("789")),
        (Some("bytes=10-"), 416, None, None),
        (None, 200, None, Some("0123456789")),
    ];
    for (range, status, content_range, body) in cases {
        let req = match range {
            Some(r) => c.get(&url).header("range", r),
            None => c.get(&url),
        };
        let resp = send(req).await;
        assert_eq!(resp.status(), status, "{range:?}");
        if let Some(content_range) = content_range {
            assert_eq!(header(&resp, "content-range"), content_range, "{range:?}");
        }
        if let Some(body) = body {
            assert_eq!(resp.text().await.unwrap(), body, "{range:?}");
        }
    }
}
