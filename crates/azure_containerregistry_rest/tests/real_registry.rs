//! The generated client against a real registry: Debian's `docker-registry` (CNCF
//! distribution 2.8), started on 127.0.0.1 by the test-support harness.

use acr_test_support::{random_bytes, sha256_digest, DockerRegistry};
use azure_containerregistry_rest::{hooks::ClientState, http_client, Client};
use futures::TryStreamExt;

const REPO: &str = "rest-tests/nested/repo";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn client(registry: &DockerRegistry) -> Client {
    Client::new_with_client(
        &registry.endpoint(),
        http_client().unwrap(),
        ClientState::new(),
    )
}

fn header(rv_headers: &reqwest::header::HeaderMap, name: &str) -> String {
    rv_headers
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .unwrap()
        .to_string()
}

async fn collect(stream: azure_containerregistry_rest::ByteStream) -> Vec<u8> {
    stream
        .into_inner()
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .unwrap()
}

/// Uploads `data` monolithically: POST, then PUT with the body. Returns the digest.
async fn upload_monolithic(c: &Client, data: &[u8]) -> String {
    let start = c.mount_blob(REPO, None, None).await.unwrap();
    assert_eq!(start.status(), 202);
    let location = header(start.headers(), "location");
    assert!(
        location.starts_with("/v2/rest-tests/nested/repo/blobs/uploads/"),
        "relative Location: {location}"
    );
    let digest = sha256_digest(data);
    let done = c
        .complete_upload(&location, &digest, data.to_vec())
        .await
        .unwrap();
    assert_eq!(done.status(), 201);
    assert_eq!(header(done.headers(), "docker-content-digest"), digest);
    digest
}

#[tokio::test]
async fn v2_check_uploads_blobs_manifests_tags_and_catalog() {
    let registry = DockerRegistry::start()
        .expect("docker-registry (run `cargo xtask test`, which installs it)");
    let c = client(&registry);

    // /v2/ check
    assert_eq!(c.check_docker_v2_support().await.unwrap().status(), 200);

    // Monolithic upload, HEAD, GET, ranged GET.
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let config_digest = upload_monolithic(&c, &config).await;
    let head = c
        .check_blob_exists(REPO, &config_digest, None)
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        header(head.headers(), "content-length"),
        config.len().to_string()
    );
    let got = c.get_blob(REPO, &config_digest, None).await.unwrap();
    assert_eq!(collect(got.into_inner()).await, config);
    let ranged = c
        .get_blob(REPO, &config_digest, Some("bytes=2-9"))
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(collect(ranged.into_inner()).await, config[2..=9].to_vec());

    // Chunked upload: PATCH twice following the newest Location, then PUT ?digest=.
    let layer = random_bytes(300_000);
    let layer_digest = sha256_digest(&layer);
    let start = c.mount_blob(REPO, None, None).await.unwrap();
    let mut location = header(start.headers(), "location");
    for chunk in layer.chunks(200_000) {
        let patched = c.upload_chunk(&location, chunk.to_vec()).await.unwrap();
        assert_eq!(patched.status(), 202);
        location = header(patched.headers(), "location");
    }
    let status = c.get_upload_status(&location).await.unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(
        header(status.headers(), "range"),
        format!("0-{}", layer.len() - 1)
    );
    let done = c
        .complete_upload(&location, &layer_digest, Vec::new())
        .await
        .unwrap();
    assert_eq!(
        header(done.headers(), "docker-content-digest"),
        layer_digest
    );
    assert_eq!(
        collect(
            c.get_blob(REPO, &layer_digest, None)
                .await
                .unwrap()
                .into_inner()
        )
        .await,
        layer
    );

    // Manifest PUT/GET by tag and digest with an OCI media type.
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]
    }))
    .unwrap();
    let manifest_digest = sha256_digest(&manifest);
    let put = c
        .create_manifest(REPO, "v1", OCI_MANIFEST, manifest.clone())
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    assert_eq!(
        header(put.headers(), "docker-content-digest"),
        manifest_digest
    );
    let got = c
        .get_manifest(REPO, "v1", Some(OCI_MANIFEST))
        .await
        .unwrap();
    assert_eq!(header(got.headers(), "content-type"), OCI_MANIFEST);
    assert_eq!(
        header(got.headers(), "docker-content-digest"),
        manifest_digest
    );
    assert_eq!(collect(got.into_inner()).await, manifest);
    let by_digest = c
        .get_manifest(REPO, &manifest_digest, Some(OCI_MANIFEST))
        .await
        .unwrap();
    assert_eq!(collect(by_digest.into_inner()).await, manifest);

    // Tags list and catalog.
    c.create_manifest(REPO, "v2", OCI_MANIFEST, manifest.clone())
        .await
        .unwrap();
    let tags = c.get_oci_tags(REPO, None, None).await.unwrap().into_inner();
    assert_eq!(tags.name.as_deref(), Some(REPO));
    assert_eq!(tags.tags, ["v1", "v2"]);
    // distribution 2.8 pages the catalog (not the tag list) with `n`, `last` and `Link`.
    // Cross-repository mount of both blobs (201: mounted, no upload session).
    for digest in [&config_digest, &layer_digest] {
        let mounted = c
            .mount_blob("rest-tests/other", Some(REPO), Some(digest))
            .await
            .unwrap();
        assert_eq!(mounted.status(), 201);
        assert_eq!(&header(mounted.headers(), "docker-content-digest"), digest);
    }
    c.create_manifest("rest-tests/other", "v1", OCI_MANIFEST, manifest.clone())
        .await
        .unwrap();
    let catalog = c.get_oci_catalog(None, None).await.unwrap().into_inner();
    assert_eq!(
        catalog.repositories,
        ["rest-tests/nested/repo", "rest-tests/other"]
    );
    let first = c.get_oci_catalog(None, Some(1)).await.unwrap();
    assert!(header(first.headers(), "link").contains("rel=\"next\""));
    assert_eq!(first.into_inner().repositories, [REPO]);
    let second = c
        .get_oci_catalog(Some(REPO), Some(1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.repositories, ["rest-tests/other"]);

    // Deletes: manifest by digest, blob; then both are gone with typed errors.
    assert_eq!(
        c.delete_manifest(REPO, &manifest_digest)
            .await
            .unwrap()
            .status(),
        202
    );
    let Err(gone) = c
        .get_manifest(REPO, &manifest_digest, Some(OCI_MANIFEST))
        .await
    else {
        panic!("a deleted manifest was found");
    };
    assert_eq!(gone.status().map(|s| s.as_u16()), Some(404));
    match gone {
        azure_containerregistry_rest::Error::ErrorResponse(rv) => {
            assert_eq!(rv.errors[0].code.as_deref(), Some("MANIFEST_UNKNOWN"));
        }
        other => panic!("expected a typed error response, got {other:?}"),
    }
    assert_eq!(
        c.delete_blob(REPO, &layer_digest).await.unwrap().status(),
        202
    );
    let missing = c
        .check_blob_exists(REPO, &layer_digest, None)
        .await
        .unwrap_err();
    // HEAD 404 has no body: the hook gives it one, so status and headers survive.
    assert_eq!(missing.status().map(|s| s.as_u16()), Some(404));
    assert!(
        matches!(
            missing,
            azure_containerregistry_rest::Error::ErrorResponse(_)
        ),
        "{missing:?}"
    );
}

#[tokio::test]
async fn cancelled_upload_and_wrong_digest() {
    let registry = DockerRegistry::start().expect("docker-registry");
    let c = client(&registry);
    let start = c.mount_blob(REPO, None, None).await.unwrap();
    let location = header(start.headers(), "location");
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = c
        .complete_upload(&location, &wrong, b"hello".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    match err {
        azure_containerregistry_rest::Error::ErrorResponse(rv) => {
            assert_eq!(rv.errors[0].code.as_deref(), Some("DIGEST_INVALID"))
        }
        other => panic!("{other:?}"),
    }
    let start = c.mount_blob(REPO, None, None).await.unwrap();
    let location = header(start.headers(), "location");
    assert_eq!(c.cancel_upload(&location).await.unwrap().status(), 204);
    let err = c.get_upload_status(&location).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
}
