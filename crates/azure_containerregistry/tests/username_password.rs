//! Username and password logins: HTTP Basic on the registry's own requests (a real
//! `docker-registry` with htpasswd), Basic to the registry's own token endpoint, and never to
//! another host, in `Debug` or in logs.

mod common;

use std::sync::{Arc, Mutex};

use acr_test_support::{DockerRegistry, DockerRegistryOptions, HtpasswdAuth};
use azure_containerregistry::{ContainerRegistryContentClient, UsernamePasswordCredential};
use common::*;

const USER: &str = "ci-user";
const PASSWORD: &str = "s3cret-pass";
/// bcrypt of [`PASSWORD`] (cost 5), as `htpasswd -B` writes it.
const PASSWORD_BCRYPT: &str = "$2b$05$caU4q/ubUw5nlz59fFZ0fuDurm411AOIfnMXqpsTpTcTmYqwtapYG";
/// `base64("ci-user:s3cret-pass")`, what must never be seen where the password must not go.
const BASIC: &str = "Y2ktdXNlcjpzM2NyZXQtcGFzcw==";

fn login(password: &str) -> UsernamePasswordCredential {
    UsernamePasswordCredential::new(USER, password.to_string())
}

fn htpasswd_registry(test: &str) -> Option<DockerRegistry> {
    match DockerRegistry::start_with(DockerRegistryOptions {
        htpasswd: Some(HtpasswdAuth {
            realm: "acr-test".into(),
            users: vec![(USER.into(), PASSWORD_BCRYPT.into())],
        }),
        ..Default::default()
    }) {
        Ok(registry) => Some(registry),
        Err(e) => {
            acr_test_support::skip_or_fail(test, &format!("docker-registry ({e:#})"));
            None
        }
    }
}

#[tokio::test]
async fn a_registry_with_htpasswd_takes_the_username_and_password() {
    let Some(registry) =
        htpasswd_registry("a_registry_with_htpasswd_takes_the_username_and_password")
    else {
        return;
    };
    bounded(60, async {
        let endpoint = registry.endpoint();
        let content = ContainerRegistryContentClient::with_username_password(
            &endpoint,
            "ci/app",
            login(PASSWORD),
            Some(fast_options(1)),
        )
        .unwrap();
        let config = content
            .upload_blob_bytes(&br#"{"architecture":"amd64","os":"linux"}"#[..], None)
            .await
            .unwrap();
        let layer_bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        // A streamed upload in chunks: its bodies go around the pipeline with the same login.
        let layer = content
            .upload_blob(&layer_bytes[..], chunked(100_000))
            .await
            .unwrap();
        let manifest = oci_manifest(&config, &[&layer]);
        let set = content.set_manifest(&manifest, tagged("v1")).await.unwrap();
        let got = content.get_manifest("v1", None).await.unwrap();
        assert_eq!(got.digest, set.digest);
        assert_eq!(
            &download_all(&content, &layer.digest).await[..],
            &layer_bytes[..]
        );

        // Without the login, and with a wrong password, the registry refuses.
        let anonymous = content_client(&endpoint, "ci/app", None, fast_options(0));
        let error = anonymous.get_manifest("v1", None).await.unwrap_err();
        assert_eq!(error.http_status().map(u16::from), Some(401), "{error}");
        let wrong = ContainerRegistryContentClient::with_username_password(
            &endpoint,
            "ci/app",
            login("wrong-password"),
            Some(fast_options(0)),
        )
        .unwrap();
        let error = wrong.get_manifest("v1", None).await.unwrap_err();
        assert_eq!(error.http_status().map(u16::from), Some(401), "{error}");
    })
    .await;
}

#[tokio::test]
async fn the_password_goes_to_the_registrys_own_token_endpoint_only() {
    bounded(30, async {
        // A realm on another host: it must never see the password.
        let seen_elsewhere = Arc::new(Mutex::new(Vec::<Received>::new()));
        let elsewhere = HostileServer::start("127.0.0.1", {
            let seen = seen_elsewhere.clone();
            move |request| {
                seen.lock().unwrap().push(request.clone());
                Reply::json(200, serde_json::json!({"access_token": "stolen"}))
            }
        })
        .await;
        let other_realm = format!("{}/token", elsewhere.endpoint());
        // The registry: its own realm for `own/app`, the other host's for `foreign/app`; its
        // token endpoint takes the username and password with Basic.
        let own = Arc::new(Mutex::new(String::new()));
        let registry = HostileServer::start("127.0.0.1", {
            let own = own.clone();
            move |request| {
                // The client sends the repository name's `/` as `%2F` in the path.
                let path = request.path_and_query.split('?').next().unwrap_or_default().replace("%2F", "/");
                let authorization = request.header("authorization").unwrap_or_default();
                match path.as_str() {
                    "/oauth2/token" if authorization == format!("Basic {BASIC}") => {
                        assert!(request.path_and_query.contains("scope=repository%3Aown%2Fapp%3Apull"));
                        Reply::json(200, serde_json::json!({"access_token": "own-token"}))
                    }
                    "/oauth2/token" => Reply::json(401, serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "bad login"}]})),
                    "/v2/own/app/manifests/v1" if authorization == "Bearer own-token" => Reply::new(200)
                        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                        .header("Docker-Content-Digest", &sha256_digest(b"{}"))
                        .body(&b"{}"[..]),
                    "/v2/own/app/manifests/v1" => {
                        let realm = format!("{}/oauth2/token", own.lock().unwrap());
                        Reply::new(401).challenge(&realm, "hostile", "repository:own/app:pull")
                    }
                    _ => Reply::new(401).challenge(&other_realm, "hostile", "repository:foreign/app:pull"),
                }
            }
        })
        .await;
        *own.lock().unwrap() = registry.endpoint();

        let client = |repository: &str, password: &str| {
            ContainerRegistryContentClient::with_username_password(
                &registry.endpoint(),
                repository,
                login(password),
                Some(fast_options(0)),
            )
            .unwrap()
        };
        let manifest = client("own/app", PASSWORD).get_manifest("v1", None).await.unwrap();
        assert_eq!(manifest.content.as_ref(), b"{}");
        let error = client("foreign/app", PASSWORD)
            .get_manifest("v1", None)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("not the registry's own host"), "{error}");
        assert!(
            seen_elsewhere.lock().unwrap().iter().all(|r| !r.contains(BASIC) && !r.contains(PASSWORD)),
            "the other host saw the login"
        );
        // A wrong password is the registry's 401, with its code.
        let error = client("own/app", "wrong").get_manifest("v1", None).await.unwrap_err();
        assert_eq!(error.http_status().map(u16::from), Some(401), "{error}");
        assert_eq!(azure_containerregistry::error_code(&error), Some("UNAUTHORIZED"));
        // Neither the client's Debug nor its error show the password.
        let shown = format!("{:?} {error} {error:?}", client("own/app", PASSWORD));
        assert!(!shown.contains(PASSWORD) && !shown.contains(BASIC), "{shown}");
    })
    .await;
}

#[test]
fn bad_logins_fail_at_construction() {
    for (user, password) in [
        ("", "p"),
        ("a:b", "p"),
        ("user", ""),
        ("user", "line\nbreak"),
    ] {
        let error = ContainerRegistryContentClient::with_username_password(
            "https://r.example",
            "app",
            UsernamePasswordCredential::new(user, password.to_string()),
            None,
        )
        .unwrap_err();
        assert!(invalid_argument(&error).is_some(), "{user:?}: {error}");
    }
    // Over plain http only to loopback, as any credential.
    let error = ContainerRegistryContentClient::with_username_password(
        "http://r.example",
        "app",
        login(PASSWORD),
        None,
    )
    .unwrap_err();
    assert!(error.to_string().contains("https"), "{error}");
}

/// The token-auth emulator with an admin user, a repository-scoped token that may only pull
/// `app`, and a disabled user.
async fn emulator_with_users() -> azure_containerregistry_emulator::Emulator {
    use azure_containerregistry_emulator::{EmulatorOptions, EmulatorUser, RepositoryGrant};
    start(EmulatorOptions {
        auth: token_mode(false),
        users: vec![
            EmulatorUser::admin("admin", "admin-pass"),
            EmulatorUser::scoped(
                "ci-pull",
                "pull-pass",
                vec![RepositoryGrant::new(
                    "app",
                    ["content/read", "metadata/read"],
                )],
            ),
            EmulatorUser::admin("gone", "gone-pass").with_enabled(false),
        ],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn acr_admin_users_and_repository_scoped_tokens_sign_in() {
    use azure_containerregistry::ContainerRegistryClient;
    use futures::TryStreamExt;
    bounded(60, async {
        let emu = emulator_with_users().await;
        let endpoint = emu.endpoint();
        let as_user = |user: &str, password: &str| {
            ContainerRegistryClient::with_username_password(
                &endpoint,
                UsernamePasswordCredential::new(user, password.to_string()),
                Some(fast_options(0)),
            )
            .unwrap()
        };
        // The admin user pushes, lists the catalog and reads metadata.
        let admin = as_user("admin", "admin-pass");
        let content = admin.content_client("app").unwrap();
        let config = content.upload_blob_bytes(&b"{}"[..], None).await.unwrap();
        let manifest = oci_manifest(&config, &[]);
        let set = content.set_manifest(&manifest, tagged("v1")).await.unwrap();
        let names: Vec<String> = admin
            .list_repository_names(None)
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(names, ["app"]);
        let tag = model(admin.artifact("app", "v1").get_tag_properties("v1", None)).await;
        assert_eq!(tag.digest, set.digest);

        // The scoped token pulls `app`, and nothing more.
        let ci = as_user("ci-pull", "pull-pass");
        let pulled = ci
            .content_client("app")
            .unwrap()
            .get_manifest("v1", None)
            .await
            .unwrap();
        assert_eq!(pulled.digest, set.digest);
        let error = ci
            .content_client("app")
            .unwrap()
            .upload_blob_bytes(&b"not allowed"[..], None)
            .await
            .unwrap_err();
        assert_eq!(error.http_status().map(u16::from), Some(401), "{error}");
        let error = collect(ci.list_repository_names(None).unwrap())
            .await
            .unwrap_err();
        assert_eq!(error.http_status().map(u16::from), Some(401), "{error}");

        // Wrong passwords, unknown and disabled users: the registry's 401 UNAUTHORIZED.
        for (user, password) in [
            ("admin", "wrong"),
            ("nobody", "admin-pass"),
            ("gone", "gone-pass"),
        ] {
            let error = as_user(user, password)
                .content_client("app")
                .unwrap()
                .get_manifest("v1", None)
                .await
                .unwrap_err();
            assert_eq!(
                error.http_status().map(u16::from),
                Some(401),
                "{user}: {error}"
            );
            assert_eq!(
                azure_containerregistry::error_code(&error),
                Some("UNAUTHORIZED"),
                "{user}: {error}"
            );
        }
    })
    .await;
}
