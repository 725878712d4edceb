//! The client's challenge flow against a real registry's challenges: Debian's
//! `docker-registry` with token auth whose realm is the emulator's `/oauth2/token`
//! (distribution validates the emulator's JWTs through `rootcertbundle`).

use std::sync::Arc;

use acr_test_support::{
    random_bytes, sha256_digest, DockerRegistry, DockerRegistryOptions, TokenAuth,
};
use azure_containerregistry::ContainerRegistryContentClient;
use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use futures::TryStreamExt;

const AAD_TOKEN: &str = "aad-token-for-the-token-registry-test";
const REPO: &str = "tokenauth/app";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Debug)]
struct FixedCredential;

#[async_trait::async_trait]
impl TokenCredential for FixedCredential {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            Secret::new(AAD_TOKEN),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

async fn start() -> Option<(Emulator, DockerRegistry)> {
    let emu = Emulator::start(EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull: true,
            accepted_aad_tokens: vec![AAD_TOKEN.into()],
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let registry = match DockerRegistry::start_with(DockerRegistryOptions {
        token_auth: Some(TokenAuth {
            realm: format!("{}/oauth2/token", emu.endpoint()),
            service: emu.service(),
            issuer: emu.issuer(),
            root_cert_bundle_pem: emu.token_signing_cert_pem(),
        }),
        ..Default::default()
    }) {
        Ok(r) => r,
        Err(e) if !acr_test_support::require_real() => {
            eprintln!("skipping: {e}");
            return None;
        }
        Err(e) => panic!("{e}"),
    };
    Some((emu, registry))
}

/// A push token for `REPO` from the emulator (exchange, then token), used to seed the registry.
async fn push_token(http: &reqwest::Client, emu: &Emulator) -> String {
    let refresh: serde_json::Value = http
        .post(format!("{}/oauth2/exchange", emu.endpoint()))
        .form(&[
            ("grant_type", "access_token"),
            ("service", &emu.service()),
            ("access_token", AAD_TOKEN),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access: serde_json::Value = http
        .post(format!("{}/oauth2/token", emu.endpoint()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", emu.service().as_str()),
            ("scope", &format!("repository:{REPO}:pull,push")),
            ("refresh_token", refresh["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    access["access_token"].as_str().unwrap().to_string()
}

async fn push_blob(http: &reqwest::Client, base: &str, token: &str, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let started = http
        .post(format!("{base}/v2/{REPO}/blobs/uploads/"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202, "{}", started.text().await.unwrap());
    let location = started.headers()["location"].to_str().unwrap().to_string();
    let sep = if location.contains('?') { '&' } else { '?' };
    let done = http
        .put(format!(
            "{base}{location}{sep}digest={}",
            digest.replace(':', "%3A")
        ))
        .bearer_auth(token)
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 201);
    digest
}

#[tokio::test]
async fn anonymous_client_pulls_through_a_real_registrys_challenges() {
    let Some((emu, registry)) = start().await else {
        return;
    };
    let http = reqwest::Client::new();
    let token = push_token(&http, &emu).await;
    let base = registry.endpoint();
    let layer = random_bytes(200_000);
    let layer_digest = push_blob(&http, &base, &token, &layer).await;
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let config_digest = push_blob(&http, &base, &token, &config).await;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]
    }))
    .unwrap();
    let put = http
        .put(format!("{base}/v2/{REPO}/manifests/v1"))
        .bearer_auth(&token)
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);

    emu.clear_request_log();
    let client = ContainerRegistryContentClient::new(&base, REPO, None, None).unwrap();
    let got = client.get_manifest("v1", None).await.unwrap();
    assert_eq!(got.content.as_ref(), manifest.as_slice());
    assert_eq!(got.digest, sha256_digest(&manifest));
    let blob: Vec<u8> = client
        .download_blob(&layer_digest, None)
        .await
        .unwrap()
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .unwrap();
    assert_eq!(blob, layer);
    // One anonymous token for the pull scope, from the realm (another origin: no secret sent).
    let token_requests: Vec<_> = emu
        .request_log()
        .into_iter()
        .filter(|r| r.path_and_query.starts_with("/oauth2/"))
        .collect();
    assert_eq!(token_requests.len(), 1, "{token_requests:#?}");
    assert_eq!(token_requests[0].method, "POST");
    assert!(!token_requests[0].has_authorization);

    // Anonymous push is refused by the registry with its own 401.
    let err = client
        .upload_blob(std::io::Cursor::new(b"no push rights".to_vec()), None)
        .await
        .unwrap_err();
    assert_eq!(err.http_status().map(u16::from), Some(401), "{err}");
}

#[tokio::test]
async fn credential_is_not_sent_to_a_realm_on_another_origin() {
    let Some((emu, registry)) = start().await else {
        return;
    };
    emu.clear_request_log();
    let credential: Arc<dyn TokenCredential> = Arc::new(FixedCredential);
    let client =
        ContainerRegistryContentClient::new(&registry.endpoint(), REPO, Some(credential), None)
            .unwrap();
    let err = client.get_manifest("v1", None).await.unwrap_err();
    assert!(
        err.to_string().contains("not the registry's own host"),
        "{err}"
    );
    // The emulator (the foreign realm) never saw a token request, so never the AAD token.
    assert!(
        emu.request_log()
            .iter()
            .all(|r| !r.path_and_query.starts_with("/oauth2/")),
        "{:#?}",
        emu.request_log()
    );
}
