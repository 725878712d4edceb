//! Manifests and referrers against docker-registry (CNCF distribution 2.8) and the emulator.

mod common;

use acr_test_support::{
    random_bytes_seeded, sha256_digest, Fault, Match, ProxyRequestRecord, Rule,
};
use azure_containerregistry::{
    media_types, ContainerRegistryContentClient, DockerManifestV2, GetManifestOptions,
    InvalidArgument, ListReferrersOptions, ManifestKind, OciDescriptor, OciImageIndex,
    OciImageManifest, MAX_MANIFEST_SIZE,
};
use common::*;
use futures::TryStreamExt;

/// Uploads a config and a layer and returns an OCI manifest naming them.
async fn image(content: &ContainerRegistryContentClient, seed: u64) -> OciImageManifest {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let config = content.upload_blob_bytes(config, None).await.unwrap();
    let layer = content
        .upload_blob_bytes(random_bytes_seeded(4096, seed), None)
        .await
        .unwrap();
    OciImageManifest {
        config: OciDescriptor::new(media_types::OCI_CONFIG, config.digest, config.size),
        layers: vec![OciDescriptor::new(
            media_types::OCI_LAYER_TAR_GZIP,
            layer.digest,
            layer.size,
        )],
        annotations: Some(
            [(
                "org.opencontainers.image.title".to_string(),
                "demo".to_string(),
            )]
            .into(),
        ),
        ..Default::default()
    }
}

#[tokio::test]
async fn set_and_get_by_tag_and_digest() {
    for backend in backends("set_and_get_by_tag_and_digest").await {
        bounded(60, async {
            let content = client(&backend.endpoint(), "manifests-basic");
            let mut manifest = image(&content, 10).await;
            manifest.extra.insert(
                "x-vendor-field".into(),
                serde_json::json!({"kept": [1, 2, 3]}),
            );
            let set = content.set_manifest(&manifest, tagged("v1")).await.unwrap();
            let sent = serde_json::to_vec(&manifest).unwrap();
            assert_eq!(set.digest, sha256_digest(&sent), "{}", backend.name());

            let by_tag = content.get_manifest("v1", None).await.unwrap();
            assert_eq!(by_tag.digest, set.digest);
            assert_eq!(
                by_tag.media_type,
                media_types::OCI_MANIFEST,
                "{}",
                backend.name()
            );
            assert_eq!(by_tag.content, sent, "the exact bytes come back");
            let typed: OciImageManifest = by_tag.manifest().unwrap();
            assert_eq!(typed, manifest, "typed round trip keeps unknown fields");
            assert_eq!(typed.extra["x-vendor-field"]["kept"][2], 3);
            assert!(matches!(
                by_tag.parsed().unwrap(),
                ManifestKind::OciImage(_)
            ));

            let by_digest = content.get_manifest(&set.digest, None).await.unwrap();
            assert_eq!(by_digest.content, sent);

            // An index of that manifest, by digest only (untagged).
            let index = OciImageIndex {
                manifests: vec![OciDescriptor::new(
                    media_types::OCI_MANIFEST,
                    set.digest.clone(),
                    sent.len() as u64,
                )],
                ..Default::default()
            };
            let index_set = content.set_manifest(&index, None).await.unwrap();
            let got = content.get_manifest(&index_set.digest, None).await.unwrap();
            assert_eq!(got.media_type, media_types::OCI_INDEX);
            assert_eq!(got.manifest::<OciImageIndex>().unwrap(), index);

            // Raw bytes of another media type (Docker v2).
            let docker = DockerManifestV2 {
                config: OciDescriptor::new(
                    media_types::DOCKER_CONFIG,
                    manifest.config.digest.clone(),
                    manifest.config.size,
                ),
                layers: vec![OciDescriptor::new(
                    media_types::DOCKER_LAYER_TAR_GZIP,
                    manifest.layers[0].digest.clone(),
                    manifest.layers[0].size,
                )],
                ..Default::default()
            };
            let bytes = serde_json::to_vec_pretty(&docker).unwrap();
            let d = content
                .set_manifest_bytes(
                    bytes.clone(),
                    media_types::DOCKER_MANIFEST_V2,
                    tagged("docker"),
                )
                .await
                .unwrap();
            assert_eq!(d.digest, sha256_digest(&bytes));
            let got = content.get_manifest("docker", None).await.unwrap();
            assert_eq!(got.media_type, media_types::DOCKER_MANIFEST_V2);
            assert_eq!(got.manifest::<DockerManifestV2>().unwrap(), docker);

            // Delete by digest; missing is fine; by tag is refused before any request.
            content.delete_manifest(&d.digest, None).await.unwrap();
            let e = content.get_manifest(&d.digest, None).await.unwrap_err();
            assert_eq!(
                e.http_status(),
                Some(azure_core::http::StatusCode::NotFound),
                "{}",
                backend.name()
            );
            content.delete_manifest(&d.digest, None).await.unwrap();
            let e = content.delete_manifest("v1", None).await.unwrap_err();
            assert!(e.downcast_ref::<InvalidArgument>().is_some());
            let e = content.get_manifest("no-such-tag", None).await.unwrap_err();
            assert!(is_not_found(&e), "{e}");
        })
        .await;
    }
}

#[tokio::test]
async fn manifests_over_4_mib_are_refused() {
    let backend = emulator_backend().await;
    let (proxy, content) = behind_proxy(&backend, "manifests-big").await;
    let big = vec![b' '; MAX_MANIFEST_SIZE + 1];
    let e = content
        .set_manifest_bytes(big, media_types::OCI_MANIFEST, None)
        .await
        .unwrap_err();
    assert_eq!(
        e.downcast_ref::<InvalidArgument>().map(|a| a.argument),
        Some("manifest")
    );
    assert!(proxy.requests().is_empty(), "refused before any request");

    // A registry that answers with more than 4 MiB: the read stops at the limit.
    let body = format!(
        "{{\"schemaVersion\":2,\"pad\":\"{}\"}}",
        "a".repeat(MAX_MANIFEST_SIZE)
    );
    proxy.add_rule(Rule::new(
        Match::any().method("GET").path_contains("/manifests/"),
        Fault::Status {
            status: 200,
            retry_after: None,
            body: Some(body),
        },
    ));
    let e = content.get_manifest("big", None).await.unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
}

#[tokio::test]
async fn bad_references_are_refused() {
    let content = client("http://127.0.0.1:9", "manifests-input");
    for bad in ["", "-tag", "a/b", "sha256:zz", &"t".repeat(129)] {
        let e = content.get_manifest(bad, None).await.unwrap_err();
        assert!(e.downcast_ref::<InvalidArgument>().is_some(), "{bad:?}");
    }
    let e = content
        .set_manifest_bytes(&b"{}"[..], media_types::OCI_MANIFEST, tagged("bad tag"))
        .await
        .unwrap_err();
    assert!(e.downcast_ref::<InvalidArgument>().is_some());
    let accept = GetManifestOptions {
        accept: Some(vec![media_types::OCI_MANIFEST.into()]),
        ..Default::default()
    };
    assert!(content.get_manifest("", Some(accept)).await.is_err());
}

/// Pushes a subject image and two referrers (a signature and an SBOM) and lists them.
async fn referrers_scenario(content: &ContainerRegistryContentClient, name: &str) {
    let subject_manifest = image(content, 20).await;
    let subject_bytes = serde_json::to_vec(&subject_manifest).unwrap();
    let subject = content
        .set_manifest(&subject_manifest, tagged("subject"))
        .await
        .unwrap();
    let empty = content.upload_blob_bytes(&b"{}"[..], None).await.unwrap();
    let mut referrers = Vec::new();
    for (artifact_type, seed) in [
        ("application/vnd.example.signature", 21),
        ("application/vnd.example.sbom+json", 22),
    ] {
        let payload = content
            .upload_blob_bytes(random_bytes_seeded(100, seed), None)
            .await
            .unwrap();
        let referrer = OciImageManifest {
            artifact_type: Some(artifact_type.into()),
            config: OciDescriptor::new(media_types::OCI_EMPTY, empty.digest.clone(), empty.size),
            layers: vec![OciDescriptor::new(
                "application/octet-stream",
                payload.digest,
                payload.size,
            )],
            subject: Some(OciDescriptor::new(
                media_types::OCI_MANIFEST,
                subject.digest.clone(),
                subject_bytes.len() as u64,
            )),
            annotations: Some([("kind".to_string(), artifact_type.to_string())].into()),
            ..Default::default()
        };
        let r = content.set_manifest(&referrer, None).await.unwrap();
        referrers.push((artifact_type, r.digest));
    }

    let all: Vec<OciDescriptor> = content
        .list_referrers(&subject.digest, None)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut digests: Vec<_> = all.iter().map(|d| d.digest.clone()).collect();
    digests.sort();
    let mut expected: Vec<_> = referrers.iter().map(|(_, d)| d.clone()).collect();
    expected.sort();
    assert_eq!(digests, expected, "{name}");
    for d in &all {
        assert_eq!(d.media_type, media_types::OCI_MANIFEST);
        assert!(d.artifact_type.is_some(), "{name}: {d:?}");
        assert_eq!(
            d.annotations.as_ref().and_then(|a| a.get("kind")),
            d.artifact_type.as_ref(),
            "{name}"
        );
    }

    let sboms: Vec<OciDescriptor> = content
        .list_referrers(
            &subject.digest,
            Some(ListReferrersOptions {
                artifact_type: Some("application/vnd.example.sbom+json".into()),
                ..Default::default()
            }),
        )
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(sboms.len(), 1, "{name}");
    assert_eq!(sboms[0].digest, referrers[1].1);

    // A manifest nothing refers to.
    let none: Vec<OciDescriptor> = content
        .list_referrers(&referrers[0].1, None)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(none.is_empty());
}

/// Runs [`referrers_scenario`] against `backend` through a proxy; returns what it sent.
async fn referrers_through_proxy(backend: &Backend, repository: &str) -> Vec<ProxyRequestRecord> {
    let (proxy, content) = behind_proxy(backend, repository).await;
    bounded(60, referrers_scenario(&content, backend.name())).await;
    proxy.requests()
}

#[tokio::test]
async fn referrers_api_on_the_emulator() {
    let backend = emulator_backend().await;
    let requests = referrers_through_proxy(&backend, "referrers-api").await;
    assert!(requests
        .iter()
        .any(|r| r.path_and_query.contains("/referrers/") && r.status == Some(200)));
    // The emulator answers OCI-Subject: no fallback tag is written or read.
    assert!(
        !requests
            .iter()
            .any(|r| r.path_and_query.contains("/manifests/sha256-")),
        "{requests:#?}"
    );
}

#[tokio::test]
async fn referrers_tag_schema_fallback_on_distribution() {
    let Some(backend) = distribution("referrers_tag_schema_fallback_on_distribution") else {
        return;
    };
    let requests = referrers_through_proxy(&backend, "referrers-fallback").await;
    assert!(requests
        .iter()
        .any(|r| r.path_and_query.contains("/referrers/") && r.status == Some(404)));
    assert!(requests
        .iter()
        .any(|r| r.method == "PUT" && r.path_and_query.contains("/manifests/sha256-")));
}
