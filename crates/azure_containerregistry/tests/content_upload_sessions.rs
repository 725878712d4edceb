//! Upload sessions under the caller's control (`start_upload`, `BlobUpload`, `resume_upload`)
//! against docker-registry (CNCF distribution 2.8) and the emulator.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use acr_test_support::random_bytes_seeded;
use azure_containerregistry::ContainerRegistryContentClient;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{AsyncRawResponse, Context, Request, StatusCode};
use common::*;

/// The blob of a test, cut into three chunks of different sizes.
fn blob_in_three(seed: u64) -> (Vec<u8>, [std::ops::Range<usize>; 3]) {
    let data = random_bytes_seeded(70_001, seed);
    (data, [0..1, 1..40_000, 40_000..70_001])
}

#[tokio::test]
async fn chunks_picked_by_the_caller_make_the_blob() {
    for backend in backends("chunks_picked_by_the_caller_make_the_blob").await {
        let name = backend.name();
        bounded(60, async {
            let content = client(&backend.endpoint(), "sessions/round-trip");
            let (data, chunks) = blob_in_three(1);
            let digest = sha256_digest(&data);
            let mut upload = content.start_upload(None).await.expect("start");
            let status = upload.status(None).await.expect("status of a new session");
            assert_eq!(status.size, 0, "{name}");

            let mut locations = vec![upload.location().to_string()];
            for (i, range) in chunks.iter().enumerate() {
                let chunk = upload
                    .upload_chunk(data[range.clone()].to_vec(), None)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: chunk {i}: {e}"));
                assert_eq!(chunk.size, range.end as u64, "{name}: chunk {i}");
                // The registry hands out a new location with every answer; the handle follows it.
                assert!(
                    !locations.contains(&upload.location().to_string()),
                    "{name}: chunk {i} kept an old location"
                );
                locations.push(upload.location().to_string());
                let status = upload.status(None).await.expect("status");
                // One byte reads as one byte, though the registry says `0-0` for it.
                assert_eq!(status.size, range.end as u64, "{name}: after chunk {i}");
            }
            assert!(!content.blob_exists(&digest).await.unwrap(), "{name}");

            let blob = upload.complete(&digest, None).await.expect("complete");
            assert_eq!(blob.digest, digest, "{name}");
            assert_eq!(blob.size, data.len() as u64, "{name}");
            assert!(!blob.skipped);
            if backend.emulator().is_some() {
                assert!(
                    blob.request_id.is_some(),
                    "the emulator sends x-ms-request-id"
                );
            }
            assert!(content.blob_exists(&digest).await.unwrap(), "{name}");
            assert_eq!(download_all(&content, &digest).await, data, "{name}");
        })
        .await;
    }
}

#[tokio::test]
async fn a_stored_location_resumes_the_upload_in_a_new_client() {
    for backend in backends("a_stored_location_resumes_the_upload_in_a_new_client").await {
        let name = backend.name();
        bounded(60, async {
            let repository = "sessions/resume";
            let (data, [first, second, last]) = blob_in_three(2);
            let digest = sha256_digest(&data);
            let stored = {
                let content = client(&backend.endpoint(), repository);
                let mut upload = content.start_upload(None).await.expect("start");
                upload
                    .upload_chunk(data[first].to_vec(), None)
                    .await
                    .unwrap();
                upload
                    .upload_chunk(data[second.clone()].to_vec(), None)
                    .await
                    .unwrap();
                upload.location().to_string()
            };

            // Another client, as another process would have.
            let content = content_client(&backend.endpoint(), repository, None, options());
            let peek = content.resume_upload(&stored).expect("resume");
            let status = peek.status(None).await.expect("status");
            assert_eq!(status.size, second.end as u64, "{name}");

            // The first chunk after reopening learns the offset from the registry itself.
            let mut upload = content.resume_upload(&stored).expect("resume");
            let chunk = upload
                .upload_chunk(data[last].to_vec(), None)
                .await
                .unwrap_or_else(|e| panic!("{name}: last chunk: {e}"));
            assert_eq!(chunk.size, data.len() as u64, "{name}");
            let blob = upload.complete(&digest, None).await.expect("complete");
            assert_eq!(blob.size, data.len() as u64, "{name}");
            assert_eq!(download_all(&content, &digest).await, data, "{name}");
        })
        .await;
    }
}

#[tokio::test]
async fn completing_a_resumed_upload_without_chunks_learns_its_size() {
    let backend = emulator_backend().await;
    bounded(30, async {
        let content = client(&backend.endpoint(), "sessions/resume-complete");
        let data = random_bytes_seeded(5000, 3);
        let mut upload = content.start_upload(None).await.unwrap();
        upload.upload_chunk(data.clone(), None).await.unwrap();
        let stored = upload.location().to_string();
        let blob = content
            .resume_upload(&stored)
            .unwrap()
            .complete(&sha256_digest(&data), None)
            .await
            .expect("complete");
        assert_eq!(blob.size, 5000);
        assert_eq!(download_all(&content, &blob.digest).await, data);
    })
    .await;
}

#[tokio::test]
async fn a_wrong_digest_is_the_registrys_digest_invalid() {
    for backend in backends("a_wrong_digest_is_the_registrys_digest_invalid").await {
        let name = backend.name();
        bounded(60, async {
            let content = client(&backend.endpoint(), "sessions/wrong-digest");
            let data = random_bytes_seeded(3000, 4);
            let wrong = sha256_digest(b"other bytes");
            let mut upload = content.start_upload(None).await.unwrap();
            upload.upload_chunk(data.clone(), None).await.unwrap();
            let error = upload
                .complete(&wrong, None)
                .await
                .expect_err("the registry checks the digest");
            // Both ACR (recorded) and distribution 2.8 answer 400 DIGEST_INVALID.
            assert_http_error(&error, 400, Some("DIGEST_INVALID"));
            assert!(mismatch(&error).is_none(), "{name}: {error}");
            assert!(!content.blob_exists(&wrong).await.unwrap(), "{name}");
            assert!(
                !content.blob_exists(&sha256_digest(&data)).await.unwrap(),
                "{name}"
            );
        })
        .await;
    }
}

#[tokio::test]
async fn a_cancelled_session_is_gone() {
    let mut all = backends("a_cancelled_session_is_gone").await;
    // ACR asks for a `delete` token to cancel: the token emulator checks the scope.
    all.push(Backend::Emulator(token_emulator(false, None).await));
    for backend in all {
        let name = backend.name();
        bounded(60, async {
            let content = client_with_credential(&backend.endpoint(), "sessions/cancel");
            let mut upload = content.start_upload(None).await.expect("start");
            upload
                .upload_chunk(random_bytes_seeded(2000, 5), None)
                .await
                .expect("chunk");
            let stored = upload.location().to_string();
            let response = upload.cancel(None).await.expect("cancel");
            assert_eq!(response.status(), StatusCode::NoContent, "{name}");

            let error = content
                .resume_upload(&stored)
                .unwrap()
                .status(None)
                .await
                .expect_err("the session is gone");
            assert_http_error(&error, 404, Some("BLOB_UPLOAD_UNKNOWN"));

            // A chunk for it fails the same way, and cancelling again counts as done.
            let mut reopened = content.resume_upload(&stored).unwrap();
            let error = reopened
                .upload_chunk(&b"more"[..], None)
                .await
                .expect_err("no session to append to");
            assert_http_error(&error, 404, Some("BLOB_UPLOAD_UNKNOWN"));
            let again = content
                .resume_upload(&stored)
                .unwrap()
                .cancel(None)
                .await
                .expect("already cancelled");
            assert_eq!(again.status(), StatusCode::NotFound, "{name}");
        })
        .await;
    }
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    let backend = emulator_backend().await;
    let emulator = backend.emulator().expect("emulator");
    bounded(30, async {
        let content = client(&backend.endpoint(), "sessions/bad-input");
        let mut upload = content.start_upload(None).await.unwrap();
        let stored = upload.location().to_string();
        let sent = emulator.request_log().len();

        let error = upload.upload_chunk(Vec::new(), None).await.unwrap_err();
        assert!(is_invalid_argument(&error, "data"), "{error}");
        // Also on a reopened handle, which would ask for the status first.
        let mut reopened = content.resume_upload(&stored).unwrap();
        let error = reopened.upload_chunk(Vec::new(), None).await.unwrap_err();
        assert!(is_invalid_argument(&error, "data"), "{error}");

        let upper = format!("sha256:{}", "A".repeat(64));
        for bad in ["sha256:xyz", "sha256", "md5:abc", upper.as_str()] {
            let reopened = content.resume_upload(&stored).unwrap();
            let error = reopened.complete(bad, None).await.unwrap_err();
            assert!(is_invalid_argument(&error, "digest"), "{bad}: {error}");
        }

        let path = stored
            .split_once("/v2/")
            .map(|(_, p)| format!("/v2/{p}"))
            .expect("a /v2 location");
        for bad in [
            format!("http://other.example:5000{path}"),
            format!("https://{}{path}", content.endpoint().authority()),
            "/v2/another/repository/blobs/uploads/x".to_string(),
            "/v2/sessions/bad-input/manifests/latest".to_string(),
            String::new(),
        ] {
            let error = content.resume_upload(&bad).unwrap_err();
            assert!(is_invalid_argument(&error, "location"), "{bad}: {error}");
        }
        assert_eq!(
            emulator.request_log().len(),
            sent,
            "no request for refused input"
        );

        // The session itself is untouched and still works.
        upload.upload_chunk(&b"x"[..], None).await.unwrap();
        let blob = upload.complete(&sha256_digest(b"x"), None).await.unwrap();
        assert_eq!(blob.size, 1);
    })
    .await;
}

/// Sends the first `PATCH` on to the registry, then answers it with a 503 as if the answer had
/// been lost: the retry policy sends the same chunk again.
#[derive(Debug, Default)]
struct LoseFirstChunkAnswer {
    patches: AtomicU32,
}

#[async_trait::async_trait]
impl Policy for LoseFirstChunkAnswer {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let response = next[0].send(ctx, request, &next[1..]).await?;
        let is_patch = request.method() == azure_core::http::Method::Patch;
        if is_patch && self.patches.fetch_add(1, Ordering::SeqCst) == 0 {
            return Ok(AsyncRawResponse::from_bytes(
                StatusCode::ServiceUnavailable,
                azure_core::http::headers::Headers::new(),
                Vec::new(),
            ));
        }
        Ok(response)
    }
}

#[tokio::test]
async fn a_retried_chunk_the_registry_already_has_succeeds() {
    let backend = emulator_backend().await;
    let emulator = backend.emulator().expect("emulator");
    bounded(30, async {
        let policy = Arc::new(LoseFirstChunkAnswer::default());
        let mut opts = options();
        opts.client_options.per_try_policies.push(policy.clone());
        let content = content_client(&backend.endpoint(), "sessions/retried", None, opts);
        let data = random_bytes_seeded(9000, 6);
        let mut upload = content.start_upload(None).await.unwrap();
        let chunk = upload
            .upload_chunk(data[..4000].to_vec(), None)
            .await
            .expect("the registry has the chunk");
        assert_eq!(chunk.size, 4000);
        assert_eq!(
            policy.patches.load(Ordering::SeqCst),
            2,
            "the chunk was sent twice"
        );
        let refused: Vec<_> = requests_to(
            &emulator.request_log(),
            "/v2/sessions/retried/blobs/uploads/",
        )
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.status)
        .collect();
        assert_eq!(
            refused,
            [202, 416],
            "the retry was refused, then the status asked"
        );

        // The handle went on from the registry's answer: the next chunk lands after it.
        upload
            .upload_chunk(data[4000..].to_vec(), None)
            .await
            .unwrap();
        let blob = upload.complete(&sha256_digest(&data), None).await.unwrap();
        assert_eq!(download_all(&content, &blob.digest).await, data);
    })
    .await;
}

#[tokio::test]
async fn a_chunk_that_does_not_follow_the_registrys_bytes_fails() {
    let backend = emulator_backend().await;
    bounded(30, async {
        let content = client(&backend.endpoint(), "sessions/diverged");
        let mut upload = content.start_upload(None).await.unwrap();
        upload.upload_chunk(vec![1u8; 100], None).await.unwrap();
        let stored = upload.location().to_string();
        // Another handle on the same session appends behind this one's back.
        let mut other = content.resume_upload(&stored).unwrap();
        other.upload_chunk(vec![2u8; 50], None).await.unwrap();
        // This handle's next chunk declares 100-…, but the registry has 150 bytes.
        let error = upload
            .upload_chunk(vec![3u8; 10], None)
            .await
            .expect_err("the range does not follow");
        assert_http_error(&error, 416, Some("RANGE_INVALID"));
        // The handle took the registry's count: the next chunk follows the 150 bytes.
        let chunk = upload.upload_chunk(vec![3u8; 10], None).await.unwrap();
        assert_eq!(chunk.size, 160);
    })
    .await;
}

/// Names of the spans opened while it is the thread's subscriber.
#[derive(Clone, Default)]
struct SpanNames(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanNames {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Ok(mut names) = self.0.lock() {
            names.push(attrs.metadata().name().to_string());
        }
    }
}

/// Runs every session operation once.
async fn every_session_operation(content: &ContainerRegistryContentClient) {
    let mut upload = content.start_upload(None).await.unwrap();
    upload.upload_chunk(&b"abc"[..], None).await.unwrap();
    upload.status(None).await.unwrap();
    upload.complete(&sha256_digest(b"abc"), None).await.unwrap();
    let mut other = content.start_upload(None).await.unwrap();
    other.upload_chunk(&b"d"[..], None).await.unwrap();
    other.cancel(None).await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn each_session_operation_has_its_span() {
    use tracing_subscriber::layer::SubscriberExt;
    const EXPECTED: [&str; 5] = [
        "ContainerRegistryContentClient.start_upload",
        "BlobUpload.upload_chunk",
        "BlobUpload.status",
        "BlobUpload.complete",
        "BlobUpload.cancel",
    ];
    let backend = emulator_backend().await;
    let content = client(&backend.endpoint(), "sessions/spans");
    let names = SpanNames::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(names.clone()));
    // The other tests of this binary hit the same callsites on other threads, and `tracing`
    // may cache a "never" interest for a callsite registered there while this thread's
    // subscriber is set. Each callsite registers once: once every one is registered, a rebuild
    // of the interests holds, so a missing span is looked for again (at most twice).
    let mut seen = Vec::new();
    for _ in 0..3 {
        tracing::callsite::rebuild_interest_cache();
        names.0.lock().unwrap().clear();
        bounded(30, every_session_operation(&content)).await;
        seen = names.0.lock().unwrap().clone();
        if EXPECTED.iter().all(|e| seen.iter().any(|n| n == e)) {
            break;
        }
    }
    for expected in EXPECTED {
        assert!(
            seen.iter().any(|n| n == expected),
            "no {expected} span in {seen:?}"
        );
    }
}
