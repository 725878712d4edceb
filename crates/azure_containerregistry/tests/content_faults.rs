//! Faults injected by a proxy in front of docker-registry and the emulator: corrupted content
//! and lying digests are caught (and leave no file behind), and connections cut mid-upload or
//! mid-download are recovered.

mod common;

use acr_test_support::{random_bytes_seeded, sha256_digest, Fault, FaultProxy, Match, Rule};
use azure_containerregistry::{DownloadBlobOptions, UploadBlobOptions};
use common::*;
use futures::StreamExt;

const MIB: usize = 1024 * 1024;

fn blob_get() -> Match {
    Match::any().method("GET").path_contains("/blobs/sha256")
}

#[tokio::test]
async fn corrupted_blob_is_caught_and_leaves_no_file() {
    let backends = backends_with("corrupted_blob_is_caught_and_leaves_no_file", false).await;
    on_each_backend(backends, "faults-flip", async |backend, proxy, content| {
        let data = random_bytes_seeded(MIB + 11, 40);
        let blob = content.upload_blob_bytes(data.clone(), None).await.unwrap();
        proxy.add_rule(Rule::new(blob_get(), Fault::FlipByte(12345)));

        // The stream: every chunk but the last, then the mismatch instead of the last one.
        let mut stream = content.download_blob(&blob.digest, None).await.unwrap();
        let mut received = 0usize;
        let error = loop {
            match stream.next().await {
                Some(Ok(chunk)) => received += chunk.len(),
                Some(Err(e)) => break e,
                None => panic!("{}: corrupted content accepted", backend.name()),
            }
        };
        assert!(received < data.len());
        let m = mismatch(&error).unwrap_or_else(|| panic!("{}: {error}", backend.name()));
        assert_eq!(m.expected, blob.digest);
        let mut flipped = data.clone();
        flipped[12345] ^= 0xFF;
        assert_eq!(m.actual, sha256_digest(&flipped));
        assert!(stream.next().await.is_none());

        // Parallel ranges: the flipped byte is in the first range.
        let options = DownloadBlobOptions {
            concurrency: Some(2),
            range_size: Some(MIB / 4),
            ..Default::default()
        };
        let e = content
            .download_blob(&blob.digest, Some(options.clone()))
            .await
            .unwrap()
            .collect_bytes()
            .await
            .unwrap_err();
        assert!(mismatch(&e).is_some(), "{e}");

        // To a file: the error, no file, and an existing file at the path is left alone.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.bin");
        let e = content
            .download_blob_to_file(&blob.digest, &path, None)
            .await
            .unwrap_err();
        assert!(mismatch(&e).is_some());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left behind"
        );
        std::fs::write(&path, b"previous").unwrap();
        let e = content
            .download_blob_to_file(&blob.digest, &path, Some(options))
            .await
            .unwrap_err();
        assert!(mismatch(&e).is_some());
        assert_eq!(std::fs::read(&path).unwrap(), b"previous");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    })
    .await;
}

#[tokio::test]
async fn lying_digests_are_caught() {
    let backends = backends_with("lying_digests_are_caught", false).await;
    on_each_backend(
        backends,
        "faults-digest",
        async |backend, proxy, content| {
            let (manifest, set_digest) = set_config_only_manifest(&content, "t").await;
            let wrong = sha256_digest(b"something else");

            // Each case: the one fault in place, then the error it must cause.
            let only = |on: Match, fault: Fault| {
                proxy.clear_rules();
                proxy.add_rule(Rule::new(on, fault));
            };
            let claims_wrong =
                || Fault::ReplaceHeader("Docker-Content-Digest".into(), wrong.clone());
            let caught = |e: azure_core::Error| {
                let m = mismatch(&e).unwrap_or_else(|| panic!("{}: {e}", backend.name()));
                (m.expected.clone(), m.actual.clone())
            };

            // Manifest by tag: the announced digest does not match the bytes.
            only(
                Match::any().method("GET").path_contains("/manifests/t"),
                claims_wrong(),
            );
            let e = content.get_manifest("t", None).await.unwrap_err();
            assert_eq!(caught(e), (wrong.clone(), set_digest.clone()));

            // Manifest by digest: corrupted bytes.
            only(
                Match::any()
                    .method("GET")
                    .path_contains("/manifests/sha256"),
                Fault::FlipByte(3),
            );
            let e = content.get_manifest(&set_digest, None).await.unwrap_err();
            assert_eq!(caught(e).0, set_digest);

            // Manifest PUT: the registry claims another digest.
            only(
                Match::any().method("PUT").path_contains("/manifests/"),
                claims_wrong(),
            );
            let e = content.set_manifest(&manifest, None).await.unwrap_err();
            assert_eq!(caught(e).1, wrong);

            // Blob upload completion: the registry claims another digest.
            only(
                Match::any().method("PUT").path_contains("/blobs/uploads/"),
                claims_wrong(),
            );
            let data = random_bytes_seeded(5000, 41);
            let e = content.upload_blob(&data[..], None).await.unwrap_err();
            assert_eq!(caught(e), (sha256_digest(&data), wrong.clone()));
        },
    )
    .await;
}

#[tokio::test]
async fn connection_cut_mid_upload_recovers() {
    let backends = backends_with("connection_cut_mid_upload_recovers", false).await;
    on_each_backend(
        backends,
        "faults-upload",
        async |backend, proxy, content| {
            let patch = || {
                Match::any()
                    .method("PATCH")
                    .path_contains("/blobs/uploads/")
            };
            let data = random_bytes_seeded(5 * MIB, 42);
            let options = UploadBlobOptions {
                chunk_size: Some(MIB),
                ..Default::default()
            };
            for (label, upload) in [("stream", 0), ("file", 1)] {
                proxy.clear();
                // The first chunk gets through; the second is cut after 300 kB.
                proxy.add_rule(Rule::new(patch(), Fault::Passthrough).times(1));
                proxy.add_rule(Rule::new(patch(), Fault::CutRequestAfter(300_000)).times(1));
                let result = if upload == 0 {
                    content.upload_blob(&data[..], Some(options.clone())).await
                } else {
                    let (_dir, path) = temp_file("f", &data);
                    let o = UploadBlobOptions {
                        skip_existing: false,
                        ..options.clone()
                    };
                    content.upload_blob_from_file(&path, Some(o)).await
                };
                let requests = proxy.requests();
                if upload == 0 && backend.emulator().is_none() {
                    // distribution 2.8 keeps the partial bytes of a cut PATCH, so the session's
                    // state no longer matches and it is invalidated (404 BLOB_UPLOAD_INVALID on
                    // the status GET). A one-shot stream cannot be read again: the error is
                    // the registry's. (A file or buffer starts a new session: below.)
                    let e = result.expect_err("a lost session cannot be replayed from a stream");
                    assert_eq!(
                        azure_containerregistry::error_code(&e),
                        Some("BLOB_UPLOAD_INVALID"),
                        "{e}"
                    );
                    continue;
                }
                let result = result
                    .unwrap_or_else(|e| panic!("{} {label}: {e}\n{requests:#?}", backend.name()));
                assert_eq!(result.digest, sha256_digest(&data));
                assert!(
                    requests
                        .iter()
                        .any(|r| r.fault == Some(Fault::CutRequestAfter(300_000))),
                    "the cut happened"
                );
                // Confirmed bytes (the first chunk) are not sent again when the session survives.
                let status_asked = requests
                    .iter()
                    .any(|r| r.method == "GET" && r.path_and_query.contains("/blobs/uploads/"));
                assert!(
                    status_asked,
                    "{}: the upload's progress is read from the registry",
                    backend.name()
                );
                let first_chunk_sends = requests
                    .iter()
                    .filter(|r| {
                        r.method == "PATCH"
                            && r.header("content-range") == Some(&format!("0-{}", MIB - 1))
                    })
                    .count();
                let restarted = requests.iter().filter(|r| r.method == "POST").count() > 1;
                eprintln!(
                    "{} {label}: restarted={restarted}, first chunk sent {first_chunk_sends}x",
                    backend.name()
                );
                if backend.emulator().is_some() {
                    // The emulator rolls a broken chunk back and keeps the session: the upload
                    // goes on from its Range, the first chunk is never sent again.
                    assert!(!restarted);
                    let patches = requests.iter().filter(|r| r.method == "PATCH").count();
                    // Five chunks and the cut one.
                    assert_eq!(patches, 6, "{label}: {requests:#?}");
                    if upload == 1 {
                        // A file's requests say which bytes they carry.
                        assert_eq!(first_chunk_sends, 1);
                    }
                } else {
                    // distribution lost the session: the file was read again in a new one.
                    assert!(restarted);
                }
                let back = download_all(&content, &result.digest).await;
                assert!(back == data);
                content.delete_blob(&result.digest, None).await.unwrap();
            }
        },
    )
    .await;
}

#[tokio::test]
async fn connection_cut_mid_download_resumes() {
    let backends = backends_with("connection_cut_mid_download_resumes", false).await;
    on_each_backend(
        backends,
        "faults-download",
        async |backend, proxy, content| {
            let data = random_bytes_seeded(3 * MIB, 43);
            let blob = content.upload_blob_bytes(data.clone(), None).await.unwrap();

            proxy.clear_requests();
            proxy.add_rule(Rule::new(blob_get(), Fault::CutResponseAfter(1_000_000)).times(1));
            let back = content
                .download_blob(&blob.digest, None)
                .await
                .unwrap()
                .collect_bytes()
                .await;
            let requests = proxy.requests();
            let back = back.unwrap_or_else(|e| panic!("{}: {e}\n{requests:#?}", backend.name()));
            assert!(back == data);
            let gets: Vec<_> = requests.iter().filter(|r| r.method == "GET").collect();
            assert_eq!(gets.len(), 2, "{requests:#?}");
            let range = gets[1].header("range").unwrap_or_default();
            assert!(
                range.starts_with("bytes=") && range.ends_with('-'),
                "{range}"
            );
            let from: u64 = range["bytes=".len()..range.len() - 1].parse().unwrap();
            assert!(
                from > 0 && from <= 1_000_000,
                "resumed from the bytes received: {range}"
            );

            // Parallel: a cut range is fetched again from where it broke.
            proxy.clear_requests();
            proxy.add_rule(Rule::new(blob_get(), Fault::CutResponseAfter(100_000)).times(1));
            let options = DownloadBlobOptions {
                concurrency: Some(3),
                range_size: Some(MIB / 2),
                ..Default::default()
            };
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("resumed.bin");
            content
                .download_blob_to_file(&blob.digest, &path, Some(options))
                .await
                .unwrap();
            assert!(std::fs::read(&path).unwrap() == data);

            // Cut every time: the bounded resumes give up, and no file is left.
            proxy.add_rule(Rule::new(blob_get(), Fault::CutResponseAfter(1000)));
            let options = DownloadBlobOptions {
                max_retries: 2,
                ..Default::default()
            };
            let path = dir.path().join("never.bin");
            assert!(content
                .download_blob_to_file(&blob.digest, &path, Some(options))
                .await
                .is_err());
            assert!(!path.exists());
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        },
    )
    .await;
}

/// With a client timeout, a streamed upload request that stops moving (the proxy holds it
/// far longer than the test may run) is given up after the timeout and resumed from the
/// registry's range, instead of hanging; a large body that keeps moving is not cut by it.
#[tokio::test]
async fn a_stalled_upload_request_is_given_up_and_resumed() {
    for backend in backends_with("a_stalled_upload_request_is_given_up_and_resumed", false).await {
        // Well under the time the proxy holds the request (and under a hidden 30 s limit of
        // the connection stack): only giving up after the client's timeout gets through.
        tokio::time::timeout(std::time::Duration::from_secs(15), async {
            let proxy = FaultProxy::start(&backend.endpoint()).await.unwrap();
            let options = azure_containerregistry::ContainerRegistryClientOptions {
                timeout: Some(std::time::Duration::from_millis(300)),
                ..common::options()
            };
            let content = azure_containerregistry::ContainerRegistryContentClient::new(
                &proxy.endpoint(),
                "faults-stall",
                None,
                Some(options),
            )
            .unwrap();
            let data = random_bytes_seeded(24 * MIB, 44);
            let upload = UploadBlobOptions {
                chunk_size: Some(8 * MIB),
                skip_existing: false,
                ..Default::default()
            };
            let patch = Match::any()
                .method("PATCH")
                .path_contains("/blobs/uploads/");
            // The second request is held for two minutes (the test's bound is one).
            proxy.add_rule(Rule::new(patch.clone(), Fault::Passthrough).times(1));
            proxy.add_rule(
                Rule::new(patch, Fault::Delay(std::time::Duration::from_secs(120))).times(1),
            );
            let result = content
                .upload_blob_bytes(data.clone(), Some(upload.clone()))
                .await;
            let requests = proxy.requests();
            let result =
                result.unwrap_or_else(|e| panic!("{}: {e}\n{requests:#?}", backend.name()));
            assert_eq!(result.digest, sha256_digest(&data));
            assert!(
                requests
                    .iter()
                    .any(|r| r.fault == Some(Fault::Delay(std::time::Duration::from_secs(120)))),
                "the stall happened"
            );
            assert!(
                requests
                    .iter()
                    .any(|r| r.method == "GET" && r.path_and_query.contains("/blobs/uploads/")),
                "{}: the upload's progress is read from the registry",
                backend.name()
            );
            assert!(download_all(&content, &result.digest).await == data);

            // The whole buffer in one request takes longer than the timeout on a slow machine
            // but never stops moving: no cut.
            content.delete_blob(&result.digest, None).await.unwrap();
            proxy.clear();
            let whole = UploadBlobOptions {
                skip_existing: false,
                ..Default::default()
            };
            let result = content
                .upload_blob_bytes(data.clone(), Some(whole))
                .await
                .unwrap();
            assert_eq!(result.digest, sha256_digest(&data));
            let patches = proxy
                .requests()
                .iter()
                .filter(|r| r.method == "PATCH")
                .count();
            assert_eq!(patches, 1, "{}", backend.name());
        })
        .await
        .expect("the stalled request was given up in time");
    }
}
