//! Concurrency: 200 concurrent operations on one cold client make exactly one
//! `/oauth2/exchange` and one `/oauth2/token` per scope; tokens that expire while requests are
//! running are refreshed without a single failed request; both clients (and the futures of
//! their operations) are `Send + Sync + Clone`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_containerregistry::{
    ContainerRegistryClient, ContainerRegistryContentClient, ContainerRepository, RegistryArtifact,
};
use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions, RequestRecord};
use common::*;
use futures::TryStreamExt;

fn count(log: &[RequestRecord], prefix: &str) -> usize {
    log.iter()
        .filter(|r| r.path_and_query.starts_with(prefix))
        .count()
}

/// Pushes a tagged manifest to `repository` with a separate client.
async fn seed(endpoint: &str, repository: &str) -> String {
    let content = content_client(endpoint, repository, Some(credential()), fast_options(2));
    set_config_only_manifest(&content, "v1").await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_operations_share_one_token_fetch_per_scope() {
    let emulator = token_emulator(false, None).await;
    bounded(120, async {
        let digest = seed(&emulator.endpoint(), "conc/app").await;
        emulator.clear_request_log();

        // The registry client: two scopes (repository metadata_read and registry catalog).
        let client = registry_client(&emulator.endpoint(), Some(credential()), fast_options(2));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let client = client.clone();
            tasks.spawn(async move {
                match i % 4 {
                    0 => client
                        .repository("conc/app")
                        .get_properties(None)
                        .await
                        .map(|_| ()),
                    1 => client
                        .artifact("conc/app", "v1")
                        .get_tag_properties("v1", None)
                        .await
                        .map(|_| ()),
                    2 => client
                        .list_repository_names(None)
                        .unwrap()
                        .try_collect::<Vec<_>>()
                        .await
                        .map(|_| ()),
                    _ => client
                        .repository("conc/app")
                        .list_manifest_properties(None)
                        .unwrap()
                        .try_collect::<Vec<_>>()
                        .await
                        .map(|_| ()),
                }
            });
        }
        let mut failures = Vec::new();
        while let Some(result) = tasks.join_next().await {
            if let Err(e) = result.expect("no task panicked") {
                failures.push(e.to_string());
            }
        }
        assert!(
            failures.is_empty(),
            "{} failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        let log = emulator.request_log();
        assert_eq!(count(&log, "/oauth2/exchange"), 1, "one AAD exchange");
        assert_eq!(
            count(&log, "/oauth2/token"),
            2,
            "one access token per scope (metadata_read, catalog)"
        );

        // The content client: one scope (pull); a separate client, a separate cold cache.
        emulator.clear_request_log();
        let content = content_client(
            &emulator.endpoint(),
            "conc/app",
            Some(credential()),
            fast_options(2),
        );
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let content = content.clone();
            let digest = digest.clone();
            tasks.spawn(async move {
                if i % 2 == 0 {
                    content.get_manifest("v1", None).await.map(|m| m.digest)
                } else {
                    content.blob_exists(&digest).await.map(|_| digest)
                }
            });
        }
        while let Some(result) = tasks.join_next().await {
            result
                .expect("no task panicked")
                .expect("every operation succeeds");
        }
        let log = emulator.request_log();
        assert_eq!(count(&log, "/oauth2/exchange"), 1, "one AAD exchange");
        assert_eq!(
            count(&log, "/oauth2/token"),
            1,
            "one access token for the pull scope"
        );
        let v2: Vec<_> = log
            .iter()
            .filter(|r| r.path_and_query.starts_with("/v2/"))
            .collect();
        assert!(
            v2.iter().filter(|r| r.status == 200).count() >= 200,
            "all 200 answered"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_expiring_mid_run_are_refreshed_without_failures() {
    // Access tokens live 2 s and refresh tokens 4 s, so both expire several times during the
    // 7-second run while requests are in flight.
    let emulator = Emulator::start(EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull: false,
            accepted_aad_tokens: vec![AAD_TOKEN.to_string()],
        },
        access_token_lifetime: Duration::from_secs(2),
        refresh_token_lifetime: Duration::from_secs(4),
        ..Default::default()
    })
    .await
    .expect("emulator");
    bounded(90, async {
        seed(&emulator.endpoint(), "expiring").await;
        emulator.clear_request_log();
        let client = registry_client(&emulator.endpoint(), Some(credential()), fast_options(2));
        let content = content_client(
            &emulator.endpoint(),
            "expiring",
            Some(credential()),
            fast_options(2),
        );
        let failures = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(7) {
            let mut batch = tokio::task::JoinSet::new();
            for i in 0..10 {
                let (client, content, failures, done) = (
                    client.clone(),
                    content.clone(),
                    failures.clone(),
                    done.clone(),
                );
                batch.spawn(async move {
                    let result = if i % 2 == 0 {
                        client
                            .repository("expiring")
                            .get_properties(None)
                            .await
                            .map(|_| ())
                    } else {
                        content.get_manifest("v1", None).await.map(|_| ())
                    };
                    match result {
                        Ok(()) => done.fetch_add(1, Ordering::SeqCst),
                        Err(e) => {
                            eprintln!("failed: {e}");
                            failures.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                });
            }
            while batch.join_next().await.is_some() {}
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let log = emulator.request_log();
        assert_eq!(failures.load(Ordering::SeqCst), 0, "no request failed");
        assert!(
            done.load(Ordering::SeqCst) >= 200,
            "{} operations",
            done.load(Ordering::SeqCst)
        );
        // Each client fetched new tokens as the old ones expired.
        assert!(
            count(&log, "/oauth2/token") >= 6,
            "access tokens were refreshed: {}",
            count(&log, "/oauth2/token")
        );
        assert!(
            count(&log, "/oauth2/exchange") >= 3,
            "refresh tokens were renewed: {}",
            count(&log, "/oauth2/exchange")
        );
    })
    .await;
}

#[test]
fn clients_and_their_futures_are_send_sync_clone() {
    fn clone_send_sync<T: Clone + Send + Sync + 'static>() {}
    clone_send_sync::<ContainerRegistryClient>();
    clone_send_sync::<ContainerRegistryContentClient>();
    clone_send_sync::<ContainerRepository>();
    clone_send_sync::<RegistryArtifact>();
    fn send<F: std::future::Future + Send>(_: F) {}
    let client = ContainerRegistryClient::new("https://r.example", None, None).expect("client");
    let content = ContainerRegistryContentClient::new("https://r.example", "repo", None, None)
        .expect("client");
    // Futures are only built, never polled: no request is sent.
    send(client.repository("repo").get_properties(None));
    send(content.get_manifest("v1", None));
    send(content.upload_blob(&b"x"[..], None));
    send(content.download_blob("sha256:0", None));
}
