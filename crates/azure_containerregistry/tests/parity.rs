//! Operations the other ACR SDKs offer: repository-wide tag listing, the token API with
//! caller-supplied tokens, the audiences of the clouds, and the small accessors.

mod common;

use std::sync::Arc;

use azure_containerregistry::{
    ArtifactTagOrder, ContainerRegistryAudience, ContainerRegistryClient,
    ContainerRegistryClientOptions, ExchangeAadAccessTokenForAcrRefreshTokenOptions,
    ListTagPropertiesOptions,
};
use common::*;
use futures::TryStreamExt;

#[tokio::test]
async fn a_repository_lists_the_tags_of_all_its_manifests() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        let first = push(&seeder, "many", "first", &["b", "a"]).await;
        let second = push(&seeder, "many", "second", &["c"]).await;
        let client = anonymous(&emu);
        let repo = client.repository("many");
        for page_size in [None, Some(1)] {
            let tags: Vec<_> = repo
                .list_tag_properties(Some(ListTagPropertiesOptions {
                    page_size,
                    ..Default::default()
                }))
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let names: Vec<_> = tags.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, ["a", "b", "c"], "page size {page_size:?}");
            let digests: Vec<_> = tags.iter().map(|t| t.digest.as_str()).collect();
            assert_eq!(
                digests,
                [&first.digest, &first.digest, &second.digest].map(String::as_str)
            );
            assert!(tags.iter().all(|t| t.repository_name == "many"));
        }
        // Ordered by time, both ways: the one order is the other reversed.
        let by = |order_by| {
            let pager = repo.list_tag_properties(Some(ListTagPropertiesOptions {
                order_by: Some(order_by),
                page_size: Some(2),
                ..Default::default()
            }));
            async move {
                let tags: Vec<_> = pager.unwrap().try_collect().await.unwrap();
                tags.into_iter().map(|t| t.name).collect::<Vec<_>>()
            }
        };
        let newest_first = by(ArtifactTagOrder::LastUpdatedOnDescending).await;
        let mut oldest_first = by(ArtifactTagOrder::LastUpdatedOnAscending).await;
        oldest_first.reverse();
        assert_eq!(newest_first.len(), 3);
        assert_eq!(newest_first, oldest_first);
        // An unknown repository is the registry's error; a bad name fails at once.
        let error = error(collect(
            client
                .repository("absent")
                .list_tag_properties(None)
                .unwrap(),
        ))
        .await;
        assert_http_error(&error, 404, Some("NAME_UNKNOWN"));
        let error = client
            .repository("Bad Name")
            .list_tag_properties(None)
            .unwrap_err();
        assert!(is_invalid_argument(&error, "repository_name"), "{error}");
    })
    .await;
}

/// `GET /v2/<repository>/manifests/<tag>` with `Bearer <token>`: the status.
async fn pull_with(endpoint: &str, repository: &str, tag: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{endpoint}/v2/{repository}/manifests/{tag}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn caller_supplied_tokens_are_exchanged() {
    bounded(60, async {
        let emu = token_emulator(false, None).await;
        push(&seeder(&emu), "private", "private", &["v1"]).await;
        let endpoint = emu.endpoint();
        let scope = "repository:private:pull";
        // An anonymous client exchanges tokens it is handed; nothing is cached or reused.
        let anonymous = ContainerRegistryClient::new(&endpoint, None, None).unwrap();

        // A Microsoft Entra token the caller got itself → refresh token → access token.
        let refresh = anonymous
            .exchange_aad_access_token_for_acr_refresh_token(
                AAD_TOKEN,
                Some(ExchangeAadAccessTokenForAcrRefreshTokenOptions {
                    tenant: Some("00000000-0000-0000-0000-000000000001".into()),
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        assert_eq!(refresh.service, emu.service());
        let access = anonymous
            .exchange_acr_refresh_token_for_acr_access_token(
                refresh.refresh_token.secret(),
                scope,
                None,
            )
            .await
            .unwrap();
        assert_eq!(access.scope, scope);
        assert_eq!(
            pull_with(&endpoint, "private", "v1", access.access_token.secret()).await,
            200
        );
        // A refresh token from another client (as `docker login` would hold) works the same.
        let other = authenticated(&emu)
            .get_acr_refresh_token(None)
            .await
            .unwrap();
        let access = anonymous
            .exchange_acr_refresh_token_for_acr_access_token(
                other.refresh_token.secret(),
                scope,
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            pull_with(&endpoint, "private", "v1", access.access_token.secret()).await,
            200
        );
        // The registry's refusals keep their status; bad input fails before any request.
        let refused = error(
            anonymous.exchange_aad_access_token_for_acr_refresh_token("not-an-entra-token", None),
        )
        .await;
        assert_eq!(refused.http_status().map(u16::from), Some(401), "{refused}");
        let unknown = error(anonymous.exchange_acr_refresh_token_for_acr_access_token(
            "not-a-refresh-token",
            scope,
            None,
        ))
        .await;
        assert!(unknown.http_status().is_some(), "{unknown}");
        for (e, argument) in [
            (
                error(anonymous.exchange_aad_access_token_for_acr_refresh_token("", None)).await,
                "aad_access_token",
            ),
            (
                error(anonymous.exchange_acr_refresh_token_for_acr_access_token("", scope, None))
                    .await,
                "refresh_token",
            ),
            (
                error(
                    anonymous
                        .exchange_acr_refresh_token_for_acr_access_token("token", "pull", None),
                )
                .await,
                "scope",
            ),
        ] {
            assert!(is_invalid_argument(&e, argument), "{argument}: {e}");
        }
    })
    .await;
}

#[tokio::test]
async fn the_credential_is_asked_for_the_audience_of_the_cloud() {
    bounded(60, async {
        let emu = token_emulator(false, None).await;
        for (audience, scope) in [
            (
                ContainerRegistryAudience::AzurePublicCloud,
                "https://containerregistry.azure.net/.default",
            ),
            (
                ContainerRegistryAudience::AzureChina,
                "https://containerregistry.azure.cn/.default",
            ),
            (
                ContainerRegistryAudience::AzureGovernment,
                "https://containerregistry.azure.us/.default",
            ),
            (
                ContainerRegistryAudience::Custom("https://acr.sovereign.example/".into()),
                "https://acr.sovereign.example/.default",
            ),
        ] {
            let credential = Arc::new(TestCredential::default());
            let client = ContainerRegistryClient::new(
                &emu.endpoint(),
                Some(credential.clone()),
                Some(ContainerRegistryClientOptions {
                    audience,
                    ..Default::default()
                }),
            )
            .unwrap();
            client.get_acr_refresh_token(None).await.unwrap();
            assert_eq!(credential.scopes(), [scope]);
        }
    })
    .await;
}

#[tokio::test]
async fn artifacts_name_their_registry() {
    let client = ContainerRegistryClient::new("https://myregistry.azurecr.io", None, None).unwrap();
    let artifact = client.artifact("library/hello-world", "latest");
    assert_eq!(
        artifact.registry_endpoint().as_str(),
        "https://myregistry.azurecr.io/"
    );
    assert_eq!(artifact.registry_endpoint(), client.endpoint());
}
