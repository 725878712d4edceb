//! Blob upload and download against docker-registry (CNCF distribution 2.8) and the emulator.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use acr_test_support::{random_bytes_seeded, sha256_digest};
use azure_containerregistry::{
    DownloadBlobOptions, InvalidArgument, ProgressCallback, UploadBlobOptions,
    PREHASH_OVERLAP_MIN_SIZE,
};
use common::*;
use futures::StreamExt;

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn small_blob_round_trip() {
    for backend in backends("small_blob_round_trip").await {
        bounded(60, async {
            let content = client(&backend.endpoint(), "blobs-small");
            let data = random_bytes_seeded(1000, 1);
            let result = content.upload_blob(&data[..], None).await.unwrap();
            assert_eq!(result.digest, sha256_digest(&data), "{}", backend.name());
            assert_eq!(result.size, 1000);
            assert!(!result.skipped);
            assert!(content.blob_exists(&result.digest).await.unwrap());

            let stream = content.download_blob(&result.digest, None).await.unwrap();
            assert_eq!(stream.size(), Some(1000));
            assert_eq!(stream.collect_bytes().await.unwrap(), data);

            // An empty blob works too.
            let empty = content.upload_blob(&b""[..], None).await.unwrap();
            assert_eq!(empty.digest, sha256_digest(b""));
            assert!(download_all(&content, &empty.digest).await.is_empty());
        })
        .await;
    }
}

#[tokio::test]
async fn large_blob_goes_in_content_range_chunks() {
    let backends = backends("large_blob_goes_in_content_range_chunks").await;
    on_each_backend(backends, "blobs-large", async |backend, proxy, content| {
        let data = random_bytes_seeded(5 * MIB + 123, 2);
        let seen = Arc::new(AtomicU64::new(0));
        let seen2 = seen.clone();
        let options = UploadBlobOptions {
            chunk_size: Some(MIB),
            progress: Some(ProgressCallback::new(move |done, _| {
                seen2.store(done, Ordering::SeqCst)
            })),
            skip_existing: false,
            ..Default::default()
        };
        // A buffer's length is known: each PATCH says which bytes it carries.
        let result = content
            .upload_blob_bytes(data.clone(), Some(options.clone()))
            .await
            .unwrap();
        assert_eq!(result.digest, sha256_digest(&data), "{}", backend.name());
        assert_eq!(seen.load(Ordering::SeqCst), data.len() as u64);

        let requests = proxy.requests();
        let patches: Vec<_> = requests.iter().filter(|r| r.method == "PATCH").collect();
        assert_eq!(patches.len(), 6, "{}: {requests:#?}", backend.name());
        for (i, p) in patches.iter().enumerate() {
            let start = i * MIB;
            let end = ((i + 1) * MIB).min(data.len()) - 1;
            assert_eq!(
                p.header("content-range"),
                Some(format!("{start}-{end}").as_str())
            );
            assert_eq!(
                p.header("content-length"),
                Some((end + 1 - start).to_string().as_str())
            );
        }
        // Each request follows the Location of the answer before it (a new _state each time).
        let paths: Vec<_> = patches.iter().map(|p| p.path_and_query.clone()).collect();
        let unique: std::collections::HashSet<_> = paths.iter().collect();
        assert_eq!(
            unique.len(),
            paths.len(),
            "{}: stale Location reused: {paths:?}",
            backend.name()
        );
        let put = requests.iter().find(|r| r.method == "PUT").unwrap();
        assert!(
            put.path_and_query.contains("digest=sha256%3A"),
            "{}",
            put.path_and_query
        );

        let back = download_all(&content, &result.digest).await;
        assert!(back == data);

        // A stream's length is unknown: chunked requests of at most chunk_size, no
        // Content-Range, the same blob.
        content.delete_blob(&result.digest, None).await.unwrap();
        proxy.clear_requests();
        seen.store(0, Ordering::SeqCst);
        let streamed = content
            .upload_blob(&data[..], Some(options.clone()))
            .await
            .unwrap();
        assert_eq!(
            (&streamed.digest, streamed.size, streamed.skipped),
            (&result.digest, result.size, result.skipped)
        );
        assert_eq!(seen.load(Ordering::SeqCst), data.len() as u64);
        let requests = proxy.requests();
        let patches: Vec<_> = requests.iter().filter(|r| r.method == "PATCH").collect();
        assert_eq!(patches.len(), 6, "{}: {requests:#?}", backend.name());
        for p in &patches {
            assert_eq!(p.header("content-range"), None);
            assert_eq!(p.header("transfer-encoding"), Some("chunked"));
        }

        // By default a buffer goes in one PATCH, whatever its size.
        content.delete_blob(&result.digest, None).await.unwrap();
        proxy.clear_requests();
        let whole = content.upload_blob_bytes(data.clone(), None).await.unwrap();
        assert_eq!((&whole.digest, whole.size), (&result.digest, result.size));
        let patches: Vec<_> = proxy
            .requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .collect();
        assert_eq!(patches.len(), 1);
        assert_eq!(
            patches[0].header("content-range"),
            Some(format!("0-{}", data.len() - 1).as_str())
        );
    })
    .await;
}

#[tokio::test]
async fn upload_from_file_and_skip_existing() {
    let backends = backends("upload_from_file_and_skip_existing").await;
    on_each_backend(backends, "blobs-file", async |backend, proxy, content| {
        let data = random_bytes_seeded(3 * MIB, 3);
        let (_dir, path) = temp_file("layer.bin", &data);
        let options = UploadBlobOptions {
            chunk_size: Some(MIB),
            ..Default::default()
        };
        let first = content
            .upload_blob_from_file(&path, Some(options.clone()))
            .await
            .unwrap();
        assert_eq!(first.digest, sha256_digest(&data));
        assert!(!first.skipped);

        proxy.clear_requests();
        let second = content
            .upload_blob_from_file(&path, Some(options.clone()))
            .await
            .unwrap();
        assert_eq!(second.digest, first.digest);
        assert!(second.skipped, "{}", backend.name());
        let methods: Vec<_> = proxy.requests().iter().map(|r| r.method.clone()).collect();
        assert_eq!(
            methods,
            ["HEAD"],
            "{}: an existing blob is not sent again",
            backend.name()
        );

        // A small stream is checked too (its digest is known once the first chunk is read).
        // The check goes out alongside the session start (so a small upload costs two round
        // trips either way); when the blob exists the session is cancelled and no byte of
        // the blob is sent.
        proxy.clear_requests();
        let small = random_bytes_seeded(100 * 1024, 4);
        content.upload_blob(&small[..], None).await.unwrap();
        proxy.clear_requests();
        let again = content.upload_blob(&small[..], None).await.unwrap();
        assert!(again.skipped);
        let methods: Vec<_> = proxy.requests().iter().map(|r| r.method.clone()).collect();
        assert!(methods.contains(&"HEAD".to_string()), "{methods:?}");
        assert!(
            methods
                .iter()
                .all(|m| m == "HEAD" || m == "POST" || m == "DELETE"),
            "no blob bytes are sent: {methods:?}"
        );

        // Bytes: hashed first, skipped.
        let bytes = content
            .upload_blob_bytes(small.clone(), None)
            .await
            .unwrap();
        assert!(bytes.skipped);

        // A tiny blob is sent without a check (two requests: POST, PUT).
        let tiny = random_bytes_seeded(1024, 6);
        content.upload_blob_bytes(tiny.clone(), None).await.unwrap();
        proxy.clear_requests();
        let tiny_again = content.upload_blob_bytes(tiny, None).await.unwrap();
        assert!(!tiny_again.skipped);
        let methods: Vec<_> = proxy.requests().iter().map(|r| r.method.clone()).collect();
        assert_eq!(methods, ["POST", "PUT"], "{}", backend.name());
    })
    .await;
}

#[tokio::test]
async fn a_large_file_uploads_while_it_is_hashed() {
    let backends = backends("a_large_file_uploads_while_it_is_hashed").await;
    on_each_backend(
        backends,
        "blobs-overlap",
        async |backend, proxy, content| {
            let data = random_bytes_seeded(PREHASH_OVERLAP_MIN_SIZE as usize + 5, 7);
            let (_dir, path) = temp_file("layer.bin", &data);

            // Not in the registry: sent in one request, committed with the digest of the
            // hashing pass that ran alongside, and checked by the registry against the bytes.
            let first = content.upload_blob_from_file(&path, None).await.unwrap();
            assert_eq!(first.digest, sha256_digest(&data), "{}", backend.name());
            assert!(!first.skipped);
            let requests = proxy.requests();
            let methods: Vec<_> = requests.iter().map(|r| r.method.as_str()).collect();
            assert!(methods.contains(&"HEAD"), "{methods:?}");
            assert_eq!(
                methods.iter().filter(|m| **m == "PATCH").count(),
                1,
                "{methods:?}"
            );
            let back = download_all(&content, &first.digest).await;
            assert!(back == data);

            // In the registry: skipped once the digest is known; a session the upload had
            // opened by then is cancelled.
            proxy.clear_requests();
            let second = content.upload_blob_from_file(&path, None).await.unwrap();
            assert!(second.skipped, "{}", backend.name());
            assert_eq!(second.digest, first.digest);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let methods: Vec<_> = proxy.requests().iter().map(|r| r.method.clone()).collect();
                assert!(!methods.contains(&"PUT".to_string()), "{methods:?}");
                let opened = methods.iter().any(|m| m == "POST");
                let cancelled = methods.iter().any(|m| m == "DELETE");
                if !opened || cancelled {
                    eprintln!("{}: second upload: {methods:?}", backend.name());
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{}: the session was not cancelled: {methods:?}",
                    backend.name()
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            content.delete_blob(&first.digest, None).await.unwrap();
        },
    )
    .await;
}

#[tokio::test]
async fn download_to_file_and_parallel_equals_sequential() {
    let backends = backends("download_to_file_and_parallel_equals_sequential").await;
    on_each_backend(
        backends,
        "blobs-download",
        async |backend, proxy, content| {
            let data = random_bytes_seeded(4 * MIB + 7, 5);
            let blob = content.upload_blob_bytes(data.clone(), None).await.unwrap();

            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("out.bin");
            let r = content
                .download_blob_to_file(&blob.digest, &path, None)
                .await
                .unwrap();
            assert_eq!(r.size, data.len() as u64);
            assert!(std::fs::read(&path).unwrap() == data);
            // Only the target file is left (no temporary files).
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

            let sequential = download_all(&content, &blob.digest).await;
            let progress = Arc::new(AtomicU64::new(0));
            let p2 = progress.clone();
            let options = DownloadBlobOptions {
                concurrency: Some(4),
                range_size: Some(MIB / 2),
                progress: Some(ProgressCallback::new(move |done, total| {
                    assert_eq!(total, Some((4 * MIB + 7) as u64));
                    p2.store(done, Ordering::SeqCst);
                })),
                ..Default::default()
            };
            proxy.clear_requests();
            let mut stream = content
                .download_blob(&blob.digest, Some(options.clone()))
                .await
                .unwrap();
            let mut parallel = Vec::new();
            while let Some(chunk) = stream.next().await {
                parallel.extend_from_slice(&chunk.unwrap());
            }
            assert!(parallel == sequential && sequential == data);
            // Nine ranges of 512 KiB (the last one 7 bytes), each asked for once.
            let mut ranges: Vec<String> = proxy
                .requests()
                .iter()
                .filter(|r| r.method == "GET")
                .filter_map(|r| r.header("range").map(String::from))
                .collect();
            ranges.sort_by_key(|r| {
                r["bytes=".len()..]
                    .split('-')
                    .next()
                    .and_then(|a| a.parse::<u64>().ok())
            });
            let expected: Vec<String> = (0..9u64)
                .map(|i| {
                    let a = i * (MIB as u64 / 2);
                    let b = ((i + 1) * (MIB as u64 / 2)).min(data.len() as u64) - 1;
                    format!("bytes={a}-{b}")
                })
                .collect();
            assert_eq!(ranges, expected, "{}: ranged download", backend.name());
            assert_eq!(progress.load(Ordering::SeqCst), data.len() as u64);

            let path2 = dir.path().join("parallel.bin");
            content
                .download_blob_to_file(&blob.digest, &path2, Some(options))
                .await
                .unwrap();
            assert!(std::fs::read(&path2).unwrap() == data);
        },
    )
    .await;
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    // Port 9 (discard) on loopback: nothing is listening, any request would fail differently.
    let content = client("http://127.0.0.1:9", "blobs-input");
    let zero = UploadBlobOptions {
        chunk_size: Some(0),
        ..Default::default()
    };
    let e = content
        .upload_blob(&b"x"[..], Some(zero))
        .await
        .unwrap_err();
    assert_eq!(
        e.downcast_ref::<InvalidArgument>().map(|a| a.argument),
        Some("chunk_size")
    );
    for bad in [
        "sha256:abc",
        "latest",
        "SHA256:0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let e = content.download_blob(bad, None).await.unwrap_err();
        assert_eq!(
            e.downcast_ref::<InvalidArgument>().map(|a| a.argument),
            Some("digest"),
            "{bad}"
        );
        assert!(content
            .delete_blob(bad, None)
            .await
            .unwrap_err()
            .downcast_ref::<InvalidArgument>()
            .is_some());
        assert!(content
            .blob_exists(bad)
            .await
            .unwrap_err()
            .downcast_ref::<InvalidArgument>()
            .is_some());
    }
    let good = sha256_digest(b"x");
    let zero = DownloadBlobOptions {
        concurrency: Some(0),
        ..Default::default()
    };
    let e = content.download_blob(&good, Some(zero)).await.unwrap_err();
    assert_eq!(
        e.downcast_ref::<InvalidArgument>().map(|a| a.argument),
        Some("concurrency")
    );
    assert!(
        azure_containerregistry::ContainerRegistryContentClient::new(
            "http://127.0.0.1:9",
            "Bad Name",
            None,
            None
        )
        .is_err()
    );
}

#[tokio::test]
async fn delete_and_mount() {
    for backend in backends("delete_and_mount").await {
        bounded(60, async {
            let source = client(&backend.endpoint(), "blobs-mount-source");
            let target = client(&backend.endpoint(), "blobs-mount-target");
            let data = random_bytes_seeded(2048, 6);
            let blob = source.upload_blob_bytes(data.clone(), None).await.unwrap();
            assert!(!target.blob_exists(&blob.digest).await.unwrap());
            assert!(
                target
                    .mount_blob(&blob.digest, "blobs-mount-source")
                    .await
                    .unwrap(),
                "{}",
                backend.name()
            );
            assert!(target.blob_exists(&blob.digest).await.unwrap());
            assert!(download_all(&target, &blob.digest).await == data);

            target.delete_blob(&blob.digest, None).await.unwrap();
            assert!(
                !target.blob_exists(&blob.digest).await.unwrap(),
                "{}",
                backend.name()
            );
            // Deleting again (now missing) succeeds.
            target.delete_blob(&blob.digest, None).await.unwrap();
            target
                .delete_blob(&sha256_digest(b"never uploaded"), None)
                .await
                .unwrap();
            // A missing blob is a 404 on download.
            let e = target.download_blob(&blob.digest, None).await.unwrap_err();
            assert!(is_not_found(&e), "{e}");
        })
        .await;
    }
}

#[tokio::test]
async fn client_and_futures_are_send_and_sync() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let backend = common::emulator_backend().await;
    let content = client(&backend.endpoint(), "blobs-send");
    assert_send_sync_clone(&content);
    let data = random_bytes_seeded(10, 7);
    let upload = content.upload_blob(&data[..], None);
    assert_send(&upload);
    drop(upload);
    // Work on other tasks, with clones.
    let c2 = content.clone();
    let blob =
        tokio::spawn(async move { c2.upload_blob_bytes(random_bytes_seeded(10, 7), None).await })
            .await
            .unwrap()
            .unwrap();
    let c3 = content.clone();
    let digest = blob.digest.clone();
    let back = tokio::spawn(async move {
        let stream = c3.download_blob(&digest, None).await?;
        stream.collect_bytes().await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(back, data);
}
