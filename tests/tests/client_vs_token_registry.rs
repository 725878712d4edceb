//! The client's challenge flow against a real registry's challenges: Debian's
//! `docker-registry` with token auth whose realm is the emulator's `/oauth2/token`
//! (distribution validates the emulator's JWTs through `rootcertbundle`).

use std::sync::Arc;

use acr_test_support::{
    random_bytes, sha256_digest, DockerRegistry, DockerRegistryOptions, Seeder, TestCredential,
    TokenAuth, AAD_TOKEN,
};
use azure_containerregistry::ContainerRegistryContentClient;
use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions};
use azure_core::credentials::TokenCredential;
use futures::TryStreamExt;

const REPO: &str = "tokenauth/app";

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

#[tokio::test]
async fn anonymous_client_pulls_through_a_real_registrys_challenges() {
    let Some((emu, registry)) = start().await else {
        return;
    };
    let base = registry.endpoint();
    // Seeded over plain HTTP: the seeder answers the registry's challenges at the emulator.
    let seeder = Seeder::new(&base, Some(AAD_TOKEN));
    let layer = random_bytes(200_000);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let image = seeder
        .push_image_with(REPO, &config, &[&layer])
        .await
        .unwrap();
    seeder
        .put_manifest(REPO, "v1", &image.manifest)
        .await
        .unwrap();
    let (manifest, layer_digest) = (image.manifest, &image.layer_digests[0]);

    emu.clear_request_log();
    let client = ContainerRegistryContentClient::new(&base, REPO, None, None).unwrap();
    let got = client.get_manifest("v1", None).await.unwrap();
    assert_eq!(got.content.as_ref(), manifest.as_slice());
    assert_eq!(got.digest, sha256_digest(&manifest));
    let blob: Vec<u8> = client
        .download_blob(layer_digest, None)
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
    let credential: Arc<dyn TokenCredential> = Arc::new(TestCredential::default());
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
