//! Safe by default: listings whose links loop end with a typed error, silent servers, bodies
//! that trickle and token realms that never answer end within the configured bounds, and one
//! registry's tokens serve every client of it (one exchange for two repositories and a
//! push-then-pull).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_containerregistry::{
    ContainerRegistryClient, ContainerRegistryClientOptions, ContainerRegistryContentClient,
    PagingLoop,
};
use common::*;
use futures::TryStreamExt;

/// Short bounds, so that each hostile case ends in about a second.
fn short_options(max_retries: u32) -> ContainerRegistryClientOptions {
    ContainerRegistryClientOptions {
        client_options: quick_retries(max_retries, 20),
        resume_delay: Duration::from_millis(20),
        timeout: Some(Duration::from_millis(400)),
        read_timeout: Some(Duration::from_millis(400)),
        body_timeout: Some(Duration::from_millis(800)),
        ..Default::default()
    }
}

fn path(request: &common::Received) -> &str {
    request.path_and_query.split('?').next().unwrap_or_default()
}

#[tokio::test]
async fn reliability_a_repeating_link_ends_the_listing_with_a_typed_error() {
    bounded(30, async {
        let server = HostileServer::start("127.0.0.1", |_| {
            Reply::json(200, serde_json::json!({"repositories": ["a"]}))
                .header("Link", r#"</acr/v1/_catalog?last=a&n=100>; rel="next""#)
        })
        .await;
        // Links that alternate (a → b → a) are a loop too.
        let flip = Arc::new(AtomicU64::new(0));
        let alternating = HostileServer::start("127.0.0.1", move |_| {
            let n = flip.fetch_add(1, Ordering::SeqCst);
            let last = if n.is_multiple_of(2) { "a" } else { "b" };
            Reply::json(200, serde_json::json!({"repositories": [last]})).header(
                "Link",
                &format!(r#"</acr/v1/_catalog?last={last}>; rel="next""#),
            )
        })
        .await;
        // Repeating: the first page, the linked page once; its link again is the loop.
        // Alternating: the first page, then ?last=a and ?last=b; ?last=a again is the loop.
        for (server, pages, looped_to) in [
            (&server, 2, "/acr/v1/_catalog?last=a&n=100"),
            (&alternating, 3, "/acr/v1/_catalog?last=a"),
        ] {
            let client = registry_client(&server.endpoint(), None, short_options(0));
            let error = client
                .list_repository_names(None)
                .unwrap()
                .try_collect::<Vec<String>>()
                .await
                .expect_err("a loop is an error");
            let repeated = error
                .downcast_ref::<PagingLoop>()
                .unwrap_or_else(|| panic!("a PagingLoop: {error:?}"));
            assert!(repeated.url.ends_with(looped_to), "{repeated:?}");
            assert_eq!(server.received().len(), pages, "{:#?}", server.received());
        }
    })
    .await;
}

#[tokio::test]
async fn reliability_a_silent_server_is_a_timeout_after_the_retries() {
    bounded(30, async {
        let server = HostileServer::start("127.0.0.1", |_| {
            Reply::new(200).after(Duration::from_secs(3600))
        })
        .await;
        let header_timeout = ContainerRegistryClientOptions {
            read_timeout: Some(Duration::from_secs(5)),
            ..short_options(2)
        };
        let no_header_timeout = ContainerRegistryClientOptions {
            timeout: None,
            ..short_options(1)
        };
        // The header timeout answers first (the idle-read timeout is longer here): a 408 after
        // the first attempt and two retries. Without it, the idle-read timeout ends each of the
        // two attempts.
        for (options, attempts) in [(header_timeout, 3), (no_header_timeout, 2)] {
            server.clear();
            let has_header_timeout = options.timeout.is_some();
            let content = content_client(&server.endpoint(), "silent", None, options);
            let started = Instant::now();
            let error = content
                .get_manifest("latest", None)
                .await
                .expect_err("no answer is an error");
            if has_header_timeout {
                assert_eq!(error.http_status().map(u16::from), Some(408), "{error:?}");
            } else {
                assert!(format!("{error:?}").contains("TimedOut"), "{error:?}");
            }
            assert!(started.elapsed() < Duration::from_secs(10));
            assert_eq!(server.received().len(), attempts);
        }
    })
    .await;
}

#[tokio::test]
async fn reliability_a_trickling_body_ends_at_the_body_timeout() {
    bounded(30, async {
        let page = serde_json::json!({"repositories": ["a", "b"]}).to_string();
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
        let server = HostileServer::start("127.0.0.1", move |request| {
            let every = Duration::from_millis(100);
            if path(request) == "/acr/v1/_catalog" {
                Reply::new(200)
                    .header("Content-Type", "application/json")
                    .trickle(page.clone(), every)
            } else {
                Reply::new(200)
                    .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    .trickle(manifest.clone(), every)
            }
        })
        .await;
        let client =
            registry_client(&server.endpoint(), None, short_options(0));
        let started = Instant::now();
        let error = client
            .list_repository_names(None).unwrap()
            .try_collect::<Vec<String>>()
            .await
            .expect_err("a page that trickles is an error");
        assert!(format!("{error:?}").contains("body_timeout"), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(5));

        let content = content_client(&server.endpoint(), "trickle", None, short_options(0));
        let started = Instant::now();
        let error = content
            .get_manifest("latest", None)
            .await
            .expect_err("a manifest that trickles is an error");
        assert!(format!("{error:?}").contains("body_timeout"), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    })
    .await;
}

#[tokio::test]
async fn reliability_a_silent_token_endpoint_is_bounded_and_retried() {
    bounded(30, async {
        let own = Arc::new(std::sync::Mutex::new(String::new()));
        let server = HostileServer::start("127.0.0.1", {
            let own = own.clone();
            move |request| {
                if path(request).starts_with("/oauth2/") {
                    return Reply::new(200).after(Duration::from_secs(3600));
                }
                let realm = format!("{}/oauth2/token", own.lock().expect("lock"));
                Reply::unauthorized("no").challenge(&realm, "silent", "repository:silent:pull")
            }
        })
        .await;
        *own.lock().expect("lock") = server.endpoint();
        // With a credential: the exchange never answers.
        let content = content_client(
            &server.endpoint(),
            "silent",
            Some(credential()),
            short_options(1),
        );
        let started = Instant::now();
        let error = content
            .get_manifest("latest", None)
            .await
            .expect_err("no token is an error");
        assert!(started.elapsed() < Duration::from_secs(10), "{error:?}");
        let exchanges = server
            .received()
            .iter()
            .filter(|r| path(r) == "/oauth2/exchange")
            .count();
        assert_eq!(exchanges, 2, "the exchange is retried once, as any request");

        // Anonymous, with the realm on another host: its token request is bounded too.
        let realm = HostileServer::start("127.0.0.2", |_| {
            Reply::new(200).after(Duration::from_secs(3600))
        })
        .await;
        let realm_url = format!("{}/token", realm.endpoint());
        let foreign = HostileServer::start("127.0.0.1", move |_| {
            Reply::unauthorized("no").challenge(&realm_url, "foreign", "repository:silent:pull")
        })
        .await;
        let content = content_client(&foreign.endpoint(), "silent", None, short_options(1));
        let started = Instant::now();
        content
            .get_manifest("latest", None)
            .await
            .expect_err("no token is an error");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(
            realm.received().len(),
            2,
            "the realm request is retried once"
        );
    })
    .await;
}

#[tokio::test]
async fn reliability_one_exchange_serves_every_repository_and_a_push_then_pull() {
    bounded(60, async {
        let emu = token_emulator(false, None).await;
        let credential = credential();
        let options = || Some(short_options(1));
        let registry =
            ContainerRegistryClient::new(&emu.endpoint(), Some(credential.clone()), options())
                .expect("client");
        emu.clear_request_log();

        // Push to two repositories through content clients of one registry client.
        let a = registry.content_client("team/a").expect("client");
        let b = registry.content_client("team/b").expect("client");
        let blob_a = a
            .upload_blob_bytes(&b"layer of a"[..], None)
            .await
            .expect("push a");
        b.upload_blob_bytes(&b"layer of b"[..], None)
            .await
            .expect("push b");
        // A client made separately with the same endpoint and credential shares the tokens.
        let c = ContainerRegistryContentClient::new(
            &emu.endpoint(),
            "team/c",
            Some(credential.clone()),
            options(),
        )
        .expect("client");
        c.upload_blob_bytes(&b"layer of c"[..], None)
            .await
            .expect("push c");

        let log = emu.request_log();
        let count = |prefix: &str| {
            log.iter()
                .filter(|r| r.path_and_query.starts_with(prefix))
                .count()
        };
        assert_eq!(count("/oauth2/exchange"), 1, "{log:#?}");
        assert_eq!(count("/oauth2/token"), 3, "one access token per repository");

        // Pull after push: the pull,push token serves the pull, with no 401 round trip.
        emu.clear_request_log();
        let stream = a.download_blob(&blob_a.digest, None).await.expect("pull");
        let body: Vec<u8> = stream
            .map_ok(|chunk| chunk.to_vec())
            .try_concat()
            .await
            .expect("body");
        assert_eq!(body, b"layer of a");
        let log = emu.request_log();
        assert!(log.iter().all(|r| r.status != 401), "{log:#?}");
        assert!(
            log.iter()
                .all(|r| !r.path_and_query.starts_with("/oauth2/")),
            "{log:#?}"
        );
    })
    .await;
}

/// The emulator behind a fault proxy, and a content client for `repository` through the proxy.
async fn proxied(
    repository: &str,
) -> (
    azure_containerregistry_emulator::Emulator,
    acr_test_support::FaultProxy,
    ContainerRegistryContentClient,
) {
    let emu = common::open_emulator().await;
    let proxy = acr_test_support::FaultProxy::start(&emu.endpoint())
        .await
        .expect("proxy");
    let content = content_client(&proxy.endpoint(), repository, None, short_options(1));
    (emu, proxy, content)
}

#[tokio::test]
async fn reliability_the_existence_check_follows_its_threshold_and_stays_optional() {
    use acr_test_support::{Fault, Match, Rule};
    use azure_containerregistry::{UploadBlobOptions, EXISTENCE_CHECK_MIN_SIZE};
    bounded(60, async {
        let (_emu, proxy, content) = proxied("checks").await;
        let heads = |proxy: &acr_test_support::FaultProxy| {
            proxy
                .requests()
                .iter()
                .filter(|r| r.method == "HEAD")
                .count()
        };
        // A small blob sent in two chunks: no HEAD.
        let small = acr_test_support::random_bytes(1472);
        let uploaded = content
            .upload_blob_bytes(
                small.clone(),
                Some(UploadBlobOptions {
                    chunk_size: Some(736),
                    ..Default::default()
                }),
            )
            .await
            .expect("upload");
        assert_eq!(uploaded.digest, common::sha256_digest(&small));
        assert_eq!(heads(&proxy), 0, "{:#?}", proxy.requests());

        // A check that fails (500) does not stop the upload, in one request or in chunks.
        proxy.add_rule(Rule::new(
            Match::any().method("HEAD"),
            Fault::Status {
                status: 500,
                retry_after: None,
                body: None,
            },
        ));
        let size = EXISTENCE_CHECK_MIN_SIZE as usize * 2;
        for chunk_size in [None, Some(size / 3)] {
            let data = acr_test_support::random_bytes(size);
            let uploaded = content
                .upload_blob_bytes(
                    data.clone(),
                    Some(UploadBlobOptions {
                        chunk_size,
                        ..Default::default()
                    }),
                )
                .await
                .unwrap_or_else(|e| panic!("upload with chunk size {chunk_size:?}: {e:?}"));
            assert!(!uploaded.skipped);
            assert_eq!(uploaded.digest, common::sha256_digest(&data));
        }
        assert!(heads(&proxy) >= 2, "the checks were made");
        proxy.clear_rules();
        for digest in proxy
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .filter_map(|r| r.path_and_query.split("digest=").nth(1).map(str::to_string))
        {
            let digest = digest.replace("%3A", ":");
            assert!(
                content.blob_exists(&digest).await.expect("exists"),
                "{digest}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn reliability_a_manifest_without_a_registry_digest_is_not_returned_silently() {
    use acr_test_support::{Fault, Match, Rule};
    use azure_containerregistry::{GetManifestOptions, UnconfirmedDigest};
    bounded(60, async {
        let (_emu, proxy, content) = proxied("unconfirmed").await;
        let config = content
            .upload_blob_bytes(&b"{}"[..], None)
            .await
            .expect("config");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": 2},
            "layers": []
        })
        .to_string();
        let set = content
            .set_manifest_bytes(
                manifest.clone(),
                "application/vnd.oci.image.manifest.v1+json",
                Some(azure_containerregistry::SetManifestOptions {
                    tag: Some("v1".into()),
                    ..Default::default()
                }),
            )
            .await
            .expect("set");
        let confirmed = content.get_manifest("v1", None).await.expect("get");
        assert!(confirmed.digest_confirmed);

        proxy.add_rule(Rule::new(
            Match::any().method("GET").path_contains("/manifests/"),
            Fault::RemoveHeader("docker-content-digest".into()),
        ));
        let error = content
            .get_manifest("v1", None)
            .await
            .expect_err("unconfirmed by default");
        let unconfirmed = error
            .downcast_ref::<UnconfirmedDigest>()
            .unwrap_or_else(|| panic!("UnconfirmedDigest: {error:?}"));
        assert_eq!(unconfirmed.computed, set.digest);
        let accepted = content
            .get_manifest(
                "v1",
                Some(GetManifestOptions {
                    accept_unconfirmed_digest: true,
                    ..Default::default()
                }),
            )
            .await
            .expect("accepted");
        assert!(!accepted.digest_confirmed);
        assert_eq!(accepted.digest, set.digest);
        assert_eq!(accepted.content, manifest.as_bytes());
        // By digest the bytes are checked against the digest asked for.
        let by_digest = content.get_manifest(&set.digest, None).await.expect("get");
        assert!(by_digest.digest_confirmed);
    })
    .await;
}

#[tokio::test]
async fn reliability_a_stalled_blob_download_resumes_from_where_it_was() {
    bounded(30, async {
        let blob = acr_test_support::random_bytes(64 * 1024);
        let digest = common::sha256_digest(&blob);
        let server = HostileServer::start("127.0.0.1", {
            let blob = blob.clone();
            move |request| {
                let range = request.header("range").map(str::to_string);
                match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
                    // The first request stalls halfway; a resumed request gets the rest.
                    None => Reply::new(200).stall_after(blob.clone(), blob.len() / 2),
                    Some(spec) => {
                        let start: usize = spec
                            .split('-')
                            .next()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        Reply::new(206)
                            .header(
                                "Content-Range",
                                &format!("bytes {start}-{}/{}", blob.len() - 1, blob.len()),
                            )
                            .body(blob[start..].to_vec())
                    }
                }
            }
        })
        .await;
        let content = content_client(&server.endpoint(), "stall", None, short_options(1));
        let stream = content
            .download_blob(&digest, None)
            .await
            .expect("download");
        let body: Vec<u8> = stream
            .map_ok(|chunk| chunk.to_vec())
            .try_concat()
            .await
            .expect("resumed after the idle-read timeout");
        assert_eq!(body, blob);
        let received = server.received();
        assert_eq!(received.len(), 2, "{received:#?}");
        assert_eq!(
            received[1].header("range"),
            Some(format!("bytes={}-", blob.len() / 2).as_str())
        );
    })
    .await;
}
