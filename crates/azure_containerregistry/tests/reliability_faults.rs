//! Transient failures injected by a fault proxy in front of the emulator: throttling (429 with
//! `Retry-After`) and 5xx bursts are retried with backoff, `Retry-After` is honoured (and
//! capped by `max_delay`), attempts are bounded and the final error carries the status and the
//! registry's code; non-transient errors are not retried; truncated bodies are errors, never a
//! partially parsed manifest or page.
//!
//! (Upload cut mid-chunk, download cut, corrupted bytes and lying digests through the proxy are
//! covered by `content_faults.rs`.)

mod common;

use std::time::{Duration, Instant};

use acr_test_support::{Fault, FaultProxy, Match, ProxyRequestRecord, Rule};
use azure_containerregistry::{
    error_code, ContainerRegistryClientOptions, ContainerRegistryContentClient,
};
use azure_containerregistry_emulator::Emulator;
use common::*;
use futures::TryStreamExt;

const THROTTLED: &str = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests"}]}"#;
const UNAVAILABLE: &str = r#"{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}"#;

fn manifest_get() -> Match {
    Match::any().method("GET").path_contains("/manifests/")
}

fn status(status: u16, retry_after: Option<&str>, body: &str) -> Fault {
    Fault::Status {
        status,
        retry_after: retry_after.map(String::from),
        body: Some(body.to_string()),
    }
}

fn manifest_gets(requests: &[ProxyRequestRecord]) -> usize {
    requests
        .iter()
        .filter(|r| r.method == "GET" && r.path_and_query.contains("/manifests/"))
        .count()
}

/// The open emulator behind a fault proxy, and an anonymous content client for `repository`
/// through the proxy.
async fn proxied(
    repository: &str,
    options: ContainerRegistryClientOptions,
) -> (Emulator, FaultProxy, ContainerRegistryContentClient) {
    let emulator = open_emulator().await;
    let proxy = FaultProxy::start(&emulator.endpoint())
        .await
        .expect("proxy");
    let content = content_client(&proxy.endpoint(), repository, None, options);
    (emulator, proxy, content)
}

/// A repository with one tagged manifest, behind a proxy. Returns the digest.
async fn seeded(content: &ContainerRegistryContentClient) -> String {
    set_config_only_manifest(content, "v1").await.1
}

#[tokio::test]
async fn throttling_honours_retry_after_then_succeeds() {
    let (_emulator, proxy, content) = proxied("faults/throttle", fast_options(3)).await;
    bounded(60, async {
        let digest = seeded(&content).await;
        proxy.clear_requests();
        // Two 429s advertising 1 s each: the client waits at least 2 s in total (an initial
        // delay of 20 ms would have been far shorter), then gets the manifest.
        proxy.add_rule(Rule::new(manifest_get(), status(429, Some("1"), THROTTLED)).times(2));
        let started = Instant::now();
        let manifest = content
            .get_manifest("v1", None)
            .await
            .expect("succeeds after throttling");
        let elapsed = started.elapsed();
        assert_eq!(manifest.digest, digest);
        assert!(
            elapsed >= Duration::from_secs(2),
            "Retry-After: 1 was honoured twice, waited only {elapsed:?}"
        );
        let requests = proxy.requests();
        assert_eq!(manifest_gets(&requests), 3, "{requests:#?}");
        assert_eq!(requests.iter().filter(|r| r.status == Some(429)).count(), 2);
    })
    .await;
}

#[tokio::test]
async fn server_error_bursts_are_retried_with_backoff() {
    let (_emulator, proxy, content) = proxied("faults/burst", fast_options(3)).await;
    bounded(60, async {
        let digest = seeded(&content).await;

        // 503, 500, 502 (one each), then the registry: backoff 20 ms, 40 ms, 80 ms (±20%).
        proxy.clear_requests();
        for code in [503, 500, 502] {
            proxy.add_rule(Rule::new(manifest_get(), status(code, None, UNAVAILABLE)).times(1));
        }
        let started = Instant::now();
        let manifest = content
            .get_manifest(&digest, None)
            .await
            .expect("succeeds after the burst");
        let elapsed = started.elapsed();
        assert_eq!(manifest.digest, digest);
        assert!(
            elapsed >= Duration::from_millis(110),
            "exponential backoff, waited only {elapsed:?}"
        );
        assert_eq!(manifest_gets(&proxy.requests()), 4);

        // A 503 burst longer than the retries: 1 + 3 attempts, then the registry's error.
        proxy.clear();
        proxy.add_rule(Rule::new(manifest_get(), status(503, None, UNAVAILABLE)));
        let error = content
            .get_manifest(&digest, None)
            .await
            .expect_err("503 forever");
        assert_eq!(error.http_status().map(u16::from), Some(503), "{error}");
        assert_eq!(error_code(&error), Some("UNAVAILABLE"), "{error}");
        assert!(
            error.to_string().contains("503"),
            "the message names the status: {error}"
        );
        assert_eq!(manifest_gets(&proxy.requests()), 4, "bounded attempts");

        // Throttled forever: the error is the 429 with its code, after max_retries + 1 attempts.
        proxy.clear();
        proxy.add_rule(Rule::new(manifest_get(), status(429, Some("0"), THROTTLED)));
        let error = content
            .get_manifest(&digest, None)
            .await
            .expect_err("429 forever");
        assert_eq!(error.http_status().map(u16::from), Some(429), "{error}");
        assert_eq!(error_code(&error), Some("TOOMANYREQUESTS"), "{error}");
        assert_eq!(manifest_gets(&proxy.requests()), 4);

        // max_retries = 0: one attempt only.
        let once = content_client(&proxy.endpoint(), "faults/burst", None, fast_options(0));
        proxy.clear_requests();
        let error = once
            .get_manifest(&digest, None)
            .await
            .expect_err("no retries");
        assert_eq!(error.http_status().map(u16::from), Some(429));
        assert_eq!(manifest_gets(&proxy.requests()), 1);
    })
    .await;
}

#[tokio::test]
async fn retry_after_is_capped_and_client_errors_are_not_retried() {
    let mut options = fast_options(2);
    options.max_retry_after = Duration::from_secs(1);
    let (_emulator, proxy, content) = proxied("faults/cap", options).await;
    bounded(60, async {
        let digest = seeded(&content).await;

        // An hour-long Retry-After is capped by max_retry_after (1 s): the test does not hang.
        proxy.clear_requests();
        proxy.add_rule(Rule::new(manifest_get(), status(429, Some("3600"), THROTTLED)).times(1));
        let started = Instant::now();
        content
            .get_manifest(&digest, None)
            .await
            .expect("succeeds on the second attempt");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );

        // Garbage Retry-After values fall back to the backoff (no panic, no hang).
        for value in [
            "soon",
            "-5",
            "1e400",
            "NaN",
            "Wed, 99 Foo 2015 07:28:00 GMT",
            "",
        ] {
            proxy.clear();
            proxy.add_rule(
                Rule::new(manifest_get(), status(503, Some(value), UNAVAILABLE)).times(1),
            );
            content
                .get_manifest(&digest, None)
                .await
                .unwrap_or_else(|e| panic!("Retry-After {value:?}: {e}"));
            assert_eq!(manifest_gets(&proxy.requests()), 2, "{value:?}");
        }

        // 400, 403 and 404 are answers, not transient failures: exactly one attempt each.
        for code in [400, 403, 404] {
            proxy.clear();
            let body = format!(r#"{{"errors":[{{"code":"E{code}","message":"no"}}]}}"#);
            proxy.add_rule(Rule::new(manifest_get(), status(code, None, &body)));
            let error = content
                .get_manifest(&digest, None)
                .await
                .expect_err("an error answer");
            assert_eq!(error.http_status().map(u16::from), Some(code), "{error}");
            assert_eq!(error_code(&error), Some(format!("E{code}").as_str()));
            assert_eq!(manifest_gets(&proxy.requests()), 1, "{code} is not retried");
        }
    })
    .await;
}

#[tokio::test]
async fn truncated_bodies_are_errors_not_partial_parses() {
    let (_emulator, proxy, content) = proxied("faults/truncate", fast_options(1)).await;
    bounded(60, async {
        let digest = seeded(&content).await;
        let full = content
            .get_manifest(&digest, None)
            .await
            .expect("manifest")
            .content;
        assert!(full.len() > 40);

        for (label, fault) in [
            ("truncated", Fault::TruncateBody(40)),
            ("cut", Fault::CutResponseAfter(40)),
        ] {
            for reference in ["v1", digest.as_str()] {
                proxy.clear();
                proxy.add_rule(Rule::new(manifest_get(), fault.clone()));
                match content.get_manifest(reference, None).await {
                    Err(_) => {}
                    Ok(partial) => panic!(
                        "{label} manifest {reference} accepted: {} of {} bytes",
                        partial.content.len(),
                        full.len()
                    ),
                }
            }
        }

        // The catalog: a truncated page is an error, not a shorter list.
        let registry = registry_client(&proxy.endpoint(), None, fast_options(1));
        proxy.clear();
        let names: Vec<String> = items(registry.list_repository_names(None)).await;
        assert_eq!(names, ["faults/truncate"]);
        for fault in [Fault::TruncateBody(12), Fault::CutResponseAfter(12)] {
            proxy.clear();
            proxy.add_rule(Rule::new(
                Match::any().method("GET").path_contains("/_catalog"),
                fault.clone(),
            ));
            let result: azure_core::Result<Vec<String>> = registry
                .list_repository_names(None)
                .unwrap()
                .try_collect()
                .await;
            assert!(
                result.is_err(),
                "{fault:?}: a truncated page was accepted: {result:?}"
            );
        }
    })
    .await;
}
