//! The registry clients against an emulator with ACR token authentication: anonymous pull,
//! a `TokenCredential`, token reuse, and the public token-exchange API.

mod common;

use std::sync::Arc;

use azure_containerregistry::{
    ArtifactManifestOrder, ArtifactTagOrder, ContainerRegistryClient,
    ListManifestPropertiesOptions, ListRepositoryNamesOptions, ListTagPropertiesOptions,
};
use azure_core::error::ErrorKind;
use common::*;

#[tokio::test]
async fn anonymous_pull_reads_but_cannot_write() {
    bounded(60, async {
        let emu = emulator(token_mode(true)).await;
        let seeder = seeder(&emu);
        let image = push(&seeder, "library/hello-world", "anon", &["latest", "v1"]).await;
        push(&seeder, "public/other", "anon-2", &["latest"]).await;
        let client = anonymous(&emu);
        emu.clear_request_log();

        let names = items(
            client.list_repository_names(Some(ListRepositoryNamesOptions {
                page_size: Some(1),
                ..Default::default()
            })),
        )
        .await;
        assert_eq!(names, ["library/hello-world", "public/other"]);
        let repo = client.repository("library/hello-world");
        assert_eq!(model(repo.get_properties(None)).await.tag_count, 2);
        let manifests = items(repo.list_manifest_properties(None)).await;
        assert_eq!(manifests.len(), 1);
        let artifact = client.artifact("library/hello-world", "latest");
        assert_eq!(
            model(artifact.get_manifest_properties(None)).await.digest,
            image.digest
        );
        let tags = items(artifact.list_tag_properties(None)).await;
        assert_eq!(
            tags.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["latest", "v1"]
        );
        assert_eq!(
            model(artifact.get_tag_properties("v1", None)).await.digest,
            image.digest
        );

        // Anonymous tokens came from /oauth2/token with no exchange.
        let log = emu.request_log();
        assert!(requests_to(&log, "/oauth2/exchange").is_empty(), "{log:#?}");
        assert!(!requests_to(&log, "/oauth2/token").is_empty());

        // Writes: the anonymous token lacks the scope; one retry, then the registry's 401.
        let e = error(repo.update_properties(repo_flag(Flag::Write, false), None)).await;
        assert_http_error(&e, 401, Some("UNAUTHORIZED"));
        let e = error(artifact.delete_tag("v1", None)).await;
        assert_http_error(&e, 401, Some("UNAUTHORIZED"));
        let e = error(artifact.delete(None)).await;
        assert_http_error(&e, 401, Some("UNAUTHORIZED"));
        let e = error(client.delete_repository("library/hello-world", None)).await;
        assert_http_error(&e, 401, Some("UNAUTHORIZED"));
        // Nothing was changed.
        assert_eq!(model(repo.get_properties(None)).await.can_write, Some(true));
    })
    .await;
}

#[tokio::test]
async fn without_anonymous_pull_an_anonymous_client_is_refused() {
    bounded(60, async {
        let emu = emulator(token_mode(false)).await;
        push(&seeder(&emu), "private", "private", &["v1"]).await;
        let client = anonymous(&emu);
        let e = error(collect(client.list_repository_names(None).unwrap())).await;
        assert_http_error(&e, 401, Some("UNAUTHORIZED"));
        let e = error(client.repository("private").get_properties(None)).await;
        assert_http_error(&e, 401, Some("UNAUTHORIZED"));
    })
    .await;
}

#[tokio::test]
async fn a_credential_can_do_everything() {
    bounded(60, async {
        let emu = emulator(token_mode(false)).await;
        let seeder = seeder(&emu);
        let first = push(&seeder, "app/web", "cred-1", &["v1"]).await;
        let second = push(&seeder, "app/web", "cred-2", &["v2", "latest"]).await;
        push(&seeder, "app/db", "cred-3", &["v1"]).await;
        let client = authenticated(&emu);
        emu.clear_request_log();

        assert_eq!(
            items(client.list_repository_names(None)).await,
            ["app/db", "app/web"]
        );
        let repo = client.repository("app/web");
        let props = model(repo.get_properties(None)).await;
        assert_eq!((props.manifest_count, props.tag_count), (2, 3));
        let props = model(repo.update_properties(repo_flag(Flag::List, false), None)).await;
        assert_eq!(props.can_list, Some(false));
        model(repo.update_properties(repo_flag(Flag::List, true), None)).await;

        let asc = items(
            repo.list_manifest_properties(Some(ListManifestPropertiesOptions {
                order_by: Some(ArtifactManifestOrder::LastUpdatedOnAscending),
                page_size: Some(1),
                ..Default::default()
            })),
        )
        .await;
        assert_eq!(
            asc.iter().map(|m| m.digest.clone()).collect::<Vec<_>>(),
            [first.digest.clone(), second.digest.clone()]
        );

        let artifact = repo.artifact("latest");
        let tags = items(artifact.list_tag_properties(Some(ListTagPropertiesOptions {
            order_by: Some(ArtifactTagOrder::LastUpdatedOnDescending),
            page_size: Some(1),
            ..Default::default()
        })))
        .await;
        assert_eq!(
            tags.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["latest", "v2"]
        );
        let m = model(artifact.update_manifest_properties(manifest_flag(Flag::Read, false), None))
            .await;
        assert_eq!(m.can_read, Some(false));
        let m =
            model(artifact.update_manifest_properties(manifest_flag(Flag::Read, true), None)).await;
        assert_eq!(m.can_read, Some(true));
        let t =
            model(artifact.update_tag_properties("v2", tag_flag(Flag::Delete, false), None)).await;
        assert_eq!(t.can_delete, Some(false));
        assert_eq!(
            model(artifact.get_tag_properties("v2", None))
                .await
                .can_delete,
            Some(false)
        );
        model(artifact.update_tag_properties("v2", tag_flag(Flag::Delete, true), None)).await;
        artifact.delete_tag("v2", None).await.unwrap();
        artifact.delete(None).await.unwrap();
        let e = error(
            client
                .artifact("app/web", &second.digest)
                .get_manifest_properties(None),
        )
        .await;
        assert_http_error(&e, 404, Some("MANIFEST_UNKNOWN"));
        client.delete_repository("app/web", None).await.unwrap();
        assert_eq!(items(client.list_repository_names(None)).await, ["app/db"]);

        // One AAD exchange for the whole session: the refresh token is reused for every scope.
        let log = emu.request_log();
        assert_eq!(requests_to(&log, "/oauth2/exchange").len(), 1, "{log:#?}");
    })
    .await;
}

#[tokio::test]
async fn a_rejected_credential_is_an_error() {
    bounded(60, async {
        let emu = emulator(token_mode(true)).await;
        push(&seeder(&emu), "x", "x", &["v1"]).await;
        let wrong: Arc<dyn azure_core::credentials::TokenCredential> =
            Arc::new(TestCredential::new("not-accepted"));
        let client =
            ContainerRegistryClient::new(&emu.endpoint(), Some(wrong), Some(fast_options(3)))
                .unwrap();
        let e = error(client.repository("x").get_properties(None)).await;
        assert_http_error(&e, 401, Some("UNAUTHORIZED"));
        let e = error(client.get_acr_refresh_token(None)).await;
        assert!(
            e.http_status().map(u16::from) == Some(401)
                || matches!(e.kind(), ErrorKind::Credential),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_warm_client_sends_no_token_requests_and_gets_no_401() {
    bounded(60, async {
        let emu = emulator(token_mode(true)).await;
        push(&seeder(&emu), "warm", "warm", &["v1"]).await;
        for (label, client) in [
            ("credential", authenticated(&emu)),
            ("anonymous", anonymous(&emu)),
        ] {
            let repo = client.repository("warm");
            let artifact = client.artifact("warm", "v1");
            model(repo.get_properties(None)).await;
            model(artifact.get_tag_properties("v1", None)).await;
            items(client.list_repository_names(None)).await;

            emu.clear_request_log();
            model(repo.get_properties(None)).await;
            model(artifact.get_tag_properties("v1", None)).await;
            items(client.list_repository_names(None)).await;
            let log = emu.request_log();
            assert_eq!(log.len(), 3, "{label}: {log:#?}");
            assert!(
                log.iter().all(|r| r.status == 200 && r.has_authorization),
                "{label}: {log:#?}"
            );
            assert!(requests_to(&log, "/oauth2").is_empty(), "{label}: {log:#?}");
        }
    })
    .await;
}

#[tokio::test]
async fn token_api_exchanges_and_caches() {
    bounded(60, async {
        let emu = emulator(token_mode(true)).await;
        push(&seeder(&emu), "library/hello-world", "token-api", &["v1"]).await;
        let client = authenticated(&emu);
        emu.clear_request_log();

        let refresh = client.get_acr_refresh_token(None).await.unwrap();
        assert!(!refresh.refresh_token.secret().is_empty());
        assert_eq!(refresh.service, emu.service());
        assert!(refresh
            .expires_on
            .is_some_and(|t| t > time::OffsetDateTime::now_utc()));
        let debug = format!("{refresh:?}");
        assert!(!debug.contains(refresh.refresh_token.secret()), "{debug}");
        let again = client.get_acr_refresh_token(None).await.unwrap();
        assert_eq!(again.refresh_token.secret(), refresh.refresh_token.secret());
        assert_eq!(requests_to(&emu.request_log(), "/oauth2/exchange").len(), 1);

        let scope = "repository:library/hello-world:pull";
        let access = client.get_acr_access_token(scope, None).await.unwrap();
        assert_eq!(access.scope, scope);
        let debug = format!("{access:?}");
        assert!(!debug.contains(access.access_token.secret()), "{debug}");
        emu.clear_request_log();
        let cached = client.get_acr_access_token(scope, None).await.unwrap();
        assert_eq!(cached.access_token.secret(), access.access_token.secret());
        assert_eq!(emu.request_log(), vec![], "same scope, no request");

        // The token works for a tool speaking the distribution API itself (docker, oras, helm).
        let url = format!("{}/v2/library/hello-world/manifests/v1", emu.endpoint());
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(access.access_token.secret())
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);

        // The client's own requests reuse a token fetched through the API.
        let metadata = client
            .get_acr_access_token("repository:library/hello-world:metadata_read", None)
            .await
            .unwrap();
        assert!(!metadata.access_token.secret().is_empty());
        emu.clear_request_log();
        model(
            client
                .repository("library/hello-world")
                .get_properties(None),
        )
        .await;
        let log = emu.request_log();
        assert_eq!(log.len(), 1, "{log:#?}");

        // Anonymous: access tokens yes (anonymous pull), refresh tokens no, and nothing is sent.
        let anon = anonymous(&emu);
        let token = anon.get_acr_access_token(scope, None).await.unwrap();
        assert!(!token.access_token.secret().is_empty());
        emu.clear_request_log();
        let e = error(anon.get_acr_refresh_token(None)).await;
        assert!(matches!(e.kind(), ErrorKind::Credential), "{e}");
        assert_eq!(emu.request_log(), vec![]);
    })
    .await;
}
