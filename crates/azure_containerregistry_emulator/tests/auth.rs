//! Token auth: challenges, exchange → token → request, anonymous, insufficient scope, expiry,
//! username/password logins (admin users, repository-scoped tokens).

mod common;

use azure_containerregistry_emulator::{
    Emulator, EmulatorOptions, EmulatorUser, RepositoryGrant, UserAccess,
};
use base64::Engine;
use common::*;
use reqwest::{Method, Response};
use serde_json::Value;
use std::time::Duration;

const AAD: &str = "aad-token-1";

async fn token_emulator(anonymous_pull: bool) -> Emulator {
    start(token_auth(anonymous_pull, &[AAD])).await
}

async fn refresh_token(c: &reqwest::Client, emu: &Emulator) -> String {
    let url = format!("{}/oauth2/exchange?api-version=2021-07-01", emu.endpoint());
    let body = expect_json(exchange(c, &url, &emu.service(), AAD), 200).await;
    assert_eq!(body.as_object().unwrap().len(), 1);
    body["refresh_token"].as_str().unwrap().to_owned()
}

async fn access_token(c: &reqwest::Client, emu: &Emulator, refresh: &str, scope: &str) -> String {
    let url = format!("{}/oauth2/token?api-version=2021-07-01", emu.endpoint());
    let req = token(c, &url, &emu.service(), scope, refresh);
    string_field(req, 200, "access_token").await
}

fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// Sends an unauthenticated request; checks that it is a 401 whose challenge is `realm` with
/// exactly `scope`.
async fn challenged(
    c: &reqwest::Client,
    realm: &str,
    method: Method,
    url: &str,
    scope: &str,
) -> Response {
    let resp = expect(c.request(method.clone(), url), 401).await;
    assert_eq!(
        header(&resp, "www-authenticate"),
        format!("{realm},scope=\"{scope}\""),
        "{method} {url}"
    );
    resp
}

#[tokio::test]
async fn challenges_have_acr_shape() {
    let emu = token_emulator(false).await;
    let (c, base) = (client(), emu.endpoint());
    let realm = format!(
        "Bearer realm=\"{base}/oauth2/token\",service=\"{}\"",
        emu.service()
    );

    let catalog = format!("{base}/acr/v1/_catalog");
    let resp = challenged(&c, &realm, Method::GET, &catalog, "registry:catalog:*").await;
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required, visit https://aka.ms/acr/authorization for more information.","detail":[{"Type":"registry","Name":"catalog","Action":"*"}]}]}"#
    );

    let mount = format!(
        "{base}/v2/hello-world/blobs/uploads/?from=alpine&mount={}",
        sha(b"x")
    );
    let scope = "repository:hello-world:pull,push repository:alpine:pull";
    let resp = challenged(&c, &realm, Method::POST, &mount, scope).await;
    let detail = json_body(resp).await["errors"][0]["detail"].clone();
    assert_eq!(detail.as_array().unwrap().len(), 3);

    // (method, path, scope)
    let cases = [
        (
            Method::GET,
            "/acr/v1/library%2Fhello-world/_tags".to_owned(),
            "repository:library/hello-world:metadata_read",
        ),
        (
            Method::PATCH,
            "/acr/v1/alpine".to_owned(),
            "repository:alpine:metadata_write",
        ),
        (
            Method::DELETE,
            format!("/v2/alpine/blobs/{}", sha(b"x")),
            "repository:alpine:delete",
        ),
    ];
    for (method, path, scope) in cases {
        challenged(&c, &realm, method, &format!("{base}{path}"), scope).await;
    }

    let head = format!("{base}/v2/alpine/manifests/latest");
    let resp = challenged(&c, &realm, Method::HEAD, &head, "repository:alpine:pull").await;
    assert_eq!(
        header(&resp, "content-type"),
        "application/json; charset=utf-8"
    );
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn exchange_token_request_flow() {
    let emu = token_emulator(false).await;
    let (c, base) = (client(), emu.endpoint());
    let refresh = refresh_token(&c, &emu).await;
    let claims = jwt_part(&refresh, 1);
    assert_eq!(claims["aud"], emu.service());
    assert_eq!(claims["iss"], emu.issuer());

    let token = access_token(&c, &emu, &refresh, "repository:hello:pull,push").await;
    let header_json = jwt_part(&token, 0);
    assert_eq!(header_json["alg"], "ES256");
    assert_eq!(header_json["kid"].as_str().unwrap().split(':').count(), 12);
    assert_eq!(header_json["x5c"].as_array().unwrap().len(), 1);
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["access"][0]["type"], "repository");
    assert_eq!(claims["access"][0]["name"], "hello");
    assert_eq!(
        claims["access"][0]["actions"],
        serde_json::json!(["pull", "push"])
    );
    for k in ["sub", "exp", "nbf", "iat", "jti"] {
        assert!(claims.get(k).is_some(), "{k}");
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        4500
    );

    let d = sha(b"data");
    let push = c.post(format!("{base}/v2/hello/blobs/uploads/?digest={d}"));
    expect(push.bearer_auth(&token).body("data"), 201).await;

    // The same token cannot delete: insufficient_scope.
    let blob = format!("{base}/v2/hello/blobs/{d}");
    let resp = expect(c.delete(&blob).bearer_auth(&token), 401).await;
    assert!(header(&resp, "www-authenticate")
        .ends_with(",scope=\"repository:hello:delete\",error=\"insufficient_scope\""));

    // The refresh token can be reused for another scope; several scopes at once work.
    let scopes = "repository:hello:delete registry:catalog:*";
    let token = access_token(&c, &emu, &refresh, scopes).await;
    expect(c.delete(&blob).bearer_auth(&token), 202).await;
    let catalog = c.get(format!("{base}/acr/v1/_catalog"));
    expect(catalog.bearer_auth(&token), 200).await;

    // docker-login style: GET with Basic, password = refresh token.
    let login = c
        .get(format!(
            "{base}/oauth2/token?service={}&scope=repository:hello:pull",
            emu.service()
        ))
        .basic_auth("00000000-0000-0000-0000-000000000000", Some(&refresh));
    assert!(expect_json(login, 200).await["access_token"].is_string());
}

#[tokio::test]
async fn failures_are_empty_401s() {
    let emu = token_emulator(false).await;
    let (c, base) = (client(), emu.endpoint());
    let wrong_aad = c.post(format!("{base}/oauth2/exchange")).form(&[
        ("grant_type", "access_token"),
        ("service", &emu.service()),
        ("access_token", "wrong"),
        ("tenant", "wrong tenant"),
    ]);
    let resp = expect(wrong_aad, 401).await;
    assert!(resp.headers().get("www-authenticate").is_none());
    assert_eq!(header(&resp, "content-length"), "0");

    let token_url = format!("{base}/oauth2/token");
    let garbage = token(&c, &token_url, "x", "registry:catalog:*", "garbage");
    let resp = expect(garbage, 401).await;
    assert_eq!(header(&resp, "content-length"), "0");

    // No anonymous access configured.
    let anonymous = c.post(&token_url).form(&[
        ("grant_type", "password"),
        ("refresh_token", ""),
        ("scope", "registry:catalog:*"),
        ("service", "x"),
    ]);
    expect(anonymous, 401).await;

    // A garbage bearer token: invalid_token.
    let tags = c.get(format!("{base}/v2/a/tags/list"));
    let resp = expect(tags.bearer_auth("abc.def.ghi"), 401).await;
    assert!(header(&resp, "www-authenticate").ends_with("error=\"invalid_token\""));
}

#[tokio::test]
async fn anonymous_pull_only() {
    let emu = token_emulator(true).await;
    let (c, base) = (client(), emu.endpoint());
    let anon = |scope: &'static str, with_empty_field: bool| {
        let mut form = vec![
            ("grant_type", "password".to_owned()),
            ("scope", scope.to_owned()),
            ("service", emu.service()),
        ];
        if with_empty_field {
            form.push(("refresh_token", String::new()));
        }
        string_field(
            c.post(format!("{base}/oauth2/token")).form(&form),
            200,
            "access_token",
        )
    };
    let t = anon("registry:catalog:*", true).await;
    assert_eq!(jwt_part(&t, 1)["sub"], "acr_anon_pull");
    expect(
        c.get(format!("{base}/acr/v1/_catalog")).bearer_auth(&t),
        200,
    )
    .await;

    let t = anon("repository:alpine:pull,push", false).await;
    assert_eq!(
        jwt_part(&t, 1)["access"][0]["actions"],
        serde_json::json!(["pull"])
    );
    let push = c.post(format!("{base}/v2/alpine/blobs/uploads/"));
    let resp = expect(push.bearer_auth(&t), 401).await;
    assert!(header(&resp, "www-authenticate").ends_with("error=\"insufficient_scope\""));
    let resp = send(c.get(format!("{base}/v2/alpine/tags/list")).bearer_auth(&t)).await;
    assert_eq!(
        resp.status(),
        404,
        "authorized, but the repository does not exist"
    );

    // GET without credentials gives an anonymous token too.
    let get = c.get(format!(
        "{base}/oauth2/token?service={}&scope=repository:alpine:pull",
        emu.service()
    ));
    expect(get, 200).await;
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let emu = start(EmulatorOptions {
        access_token_lifetime: Duration::ZERO,
        ..token_auth(false, &[AAD])
    })
    .await;
    let c = client();
    let catalog = format!("{}/acr/v1/_catalog", emu.endpoint());
    let refresh = refresh_token(&c, &emu).await;
    let token = access_token(&c, &emu, &refresh, "registry:catalog:*").await;
    let resp = expect(c.get(&catalog).bearer_auth(&token), 401).await;
    assert!(header(&resp, "www-authenticate").ends_with("error=\"invalid_token\""));

    // A token signed by another emulator is rejected as well.
    let other = token_emulator(false).await;
    let rt = refresh_token(&c, &other).await;
    let foreign = access_token(&c, &other, &rt, "registry:catalog:*").await;
    expect(c.get(&catalog).bearer_auth(&foreign), 401).await;
}

const ADMIN: (&str, &str) = ("registry-admin", "admin-Pa55:word");
const CI: (&str, &str) = ("ci-token", "ci-Pa55word");
const GONE: (&str, &str) = ("gone-token", "gone-Pa55word");

fn user_options() -> EmulatorOptions {
    EmulatorOptions {
        users: vec![
            EmulatorUser::admin(ADMIN.0, ADMIN.1),
            EmulatorUser::scoped(CI.0, CI.1, vec![RepositoryGrant::new("app", ["pull"])]),
            EmulatorUser::admin(GONE.0, GONE.1).with_enabled(false),
        ],
        ..token_auth(false, &[AAD])
    }
}

/// `GET /oauth2/token?service=…&scope=…&scope=…` with Basic `user:password` (not sent yet).
fn login(
    c: &reqwest::Client,
    emu: &Emulator,
    (user, password): (&str, &str),
    scopes: &[&str],
) -> reqwest::RequestBuilder {
    let mut query = vec![("service", emu.service())];
    query.extend(scopes.iter().map(|s| ("scope", (*s).to_owned())));
    c.get(format!("{}/oauth2/token", emu.endpoint()))
        .query(&query)
        .basic_auth(user, Some(password))
}

/// The access token of a successful login.
async fn login_token(
    c: &reqwest::Client,
    emu: &Emulator,
    user: (&str, &str),
    scopes: &[&str],
) -> String {
    let body = expect_json(login(c, emu, user, scopes), 200).await;
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// `(type, name, actions)` of each entry of a token's `access` claim.
fn access_of(token: &str) -> Vec<(String, String, Vec<String>)> {
    let claims = jwt_part(token, 1);
    let entries = claims["access"].as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .map(|e| {
            let actions = e["actions"].as_array().unwrap();
            (
                e["type"].as_str().unwrap().to_owned(),
                e["name"].as_str().unwrap().to_owned(),
                actions
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// A client that sends this bearer token with every request.
fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}").parse().unwrap();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

#[tokio::test]
async fn admin_user_pulls_pushes_and_lists_the_catalog() {
    let emu = start(user_options()).await;
    let (c, base) = (client(), emu.endpoint());

    // The challenge a client starts from.
    let resp = expect(c.get(format!("{base}/v2/app/manifests/v1")), 401).await;
    assert!(header(&resp, "www-authenticate").contains("scope=\"repository:app:pull\""));

    // Two `scope` parameters, the second holding two space-separated scopes.
    let scopes = [
        "repository:app:pull,push",
        "registry:catalog:* repository:lib/x:pull",
    ];
    let token = login_token(&c, &emu, ADMIN, &scopes).await;
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["sub"], ADMIN.0);
    assert_eq!(claims["aud"], emu.service());
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        access_of(&token),
        [
            ("repository".into(), "app".into(), s(&["pull", "push"])),
            ("registry".into(), "catalog".into(), s(&["*"])),
            ("repository".into(), "lib/x".into(), s(&["pull"])),
        ]
    );

    let admin = bearer_client(&token);
    let digest = push_image(&admin, &base, "app", "v1", "amd64").await;
    let resp = expect(admin.get(format!("{base}/v2/app/manifests/v1")), 200).await;
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    let catalog = expect_json(admin.get(format!("{base}/acr/v1/_catalog")), 200).await;
    assert_eq!(catalog["repositories"], serde_json::json!(["app"]));

    // Without Basic, GET keeps its behaviour: no anonymous pull here.
    let anonymous = c.get(format!("{base}/oauth2/token")).query(&[
        ("service", emu.service()),
        ("scope", "repository:app:pull".to_owned()),
    ]);
    expect(anonymous, 401).await;
    // A refresh token as the Basic password still works alongside users.
    let refresh = refresh_token(&c, &emu).await;
    let by_refresh = login(
        &c,
        &emu,
        ("00000000-0000-0000-0000-000000000000", &refresh),
        &["repository:app:pull"],
    );
    expect(by_refresh, 200).await;
}

#[tokio::test]
async fn scoped_token_gets_only_its_scope_map() {
    let emu = start(user_options()).await;
    let (c, base) = (client(), emu.endpoint());
    let admin = bearer_client(&login_token(&c, &emu, ADMIN, &["repository:app:pull,push"]).await);
    let digest = push_image(&admin, &base, "app", "v1", "amd64").await;

    let pull = bearer_client(&login_token(&c, &emu, CI, &["repository:app:pull"]).await);
    let resp = expect(pull.get(format!("{base}/v2/app/manifests/v1")), 200).await;
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    expect(pull.get(format!("{base}/v2/app/tags/list")), 200).await;

    // Asking for push is no error at the token endpoint; the token just lacks it.
    let token = login_token(&c, &emu, CI, &["repository:app:pull,push"]).await;
    assert_eq!(jwt_part(&token, 1)["sub"], CI.0);
    assert_eq!(
        access_of(&token),
        [("repository".into(), "app".into(), vec!["pull".to_owned()])]
    );
    let push = bearer_client(&token);
    let resp = expect(push.post(format!("{base}/v2/app/blobs/uploads/")), 401).await;
    assert!(header(&resp, "www-authenticate")
        .ends_with(",scope=\"repository:app:pull,push\",error=\"insufficient_scope\""));
    let manifest = manifest_bytes(&admin, &base, "app", "v1").await;
    let put = put_manifest_bytes(&push, &base, "app", "v2", OCI_MANIFEST, manifest);
    expect_code(put, 401, "UNAUTHORIZED").await;

    // Another repository and the catalog: nothing granted.
    let token = login_token(
        &c,
        &emu,
        CI,
        &["repository:other:pull", "registry:catalog:*"],
    )
    .await;
    assert!(access_of(&token).is_empty(), "{:?}", jwt_part(&token, 1));
    let other = bearer_client(&token);
    let resp = expect(other.get(format!("{base}/v2/other/tags/list")), 401).await;
    assert!(header(&resp, "www-authenticate").ends_with("error=\"insufficient_scope\""));
    expect(other.get(format!("{base}/acr/v1/_catalog")), 401).await;
}

#[tokio::test]
async fn bad_logins_are_unauthorized_and_secrets_stay_out_of_the_log() {
    let emu = start(user_options()).await;
    let c = client();
    let scope = ["repository:app:pull"];
    let cases = [
        (ADMIN.0, "wrong"),
        (ADMIN.0, ""),
        (ADMIN.0, &ADMIN.1[..ADMIN.1.len() - 1]),
        ("nobody", ADMIN.1),
        (GONE.0, GONE.1),
        (GONE.0, "wrong"),
        (CI.0, ADMIN.1),
    ];
    for (user, password) in cases {
        let resp = expect(login(&c, &emu, (user, password), &scope), 401).await;
        assert_eq!(
            header(&resp, "content-type"),
            "application/json; charset=utf-8"
        );
        let body = json_body(resp).await;
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{user}: {body}");
        assert!(body["errors"][0]["message"].is_string(), "{body}");
    }
    // Not base64, and no `:` in the decoded credential.
    let url = format!("{}/oauth2/token?service={}", emu.endpoint(), emu.service());
    for cred in ["!!!", "bm9jb2xvbg=="] {
        let req = c.get(&url).header("authorization", format!("Basic {cred}"));
        expect_code(req, 401, "UNAUTHORIZED").await;
    }
    login_token(&c, &emu, ADMIN, &scope).await;
    login_token(&c, &emu, CI, &scope).await;

    let log = emu.request_log();
    let logins = log
        .iter()
        .filter(|r| r.path_and_query.starts_with("/oauth2/token"))
        .collect::<Vec<_>>();
    assert_eq!(logins.len(), cases.len() + 4);
    assert!(logins.iter().all(|r| r.has_authorization));
    let shown = format!("{log:?}");
    let b64 =
        |(u, p): (&str, &str)| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
    for secret in [ADMIN.1, CI.1, GONE.1, &b64(ADMIN), &b64(CI), &b64(GONE)] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[test]
fn debug_hides_passwords() {
    let options = user_options();
    let shown = format!("{options:?}");
    for (user, password) in [ADMIN, CI, GONE] {
        assert!(shown.contains(user), "{shown}");
        assert!(!shown.contains(password), "{shown}");
    }
    assert!(matches!(options.users[1].access, UserAccess::Scoped(ref g) if g.len() == 1));
    assert!(!options.users[2].enabled);
}

#[tokio::test]
async fn invalid_users_are_refused_at_start() {
    let twice = EmulatorOptions {
        users: vec![EmulatorUser::admin("a", "p"), EmulatorUser::admin("a", "q")],
        ..token_auth(false, &[])
    };
    let err = Emulator::start(twice).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let unknown_action = EmulatorOptions {
        users: vec![EmulatorUser::scoped(
            "a",
            "p",
            vec![RepositoryGrant::new("app", ["write"])],
        )],
        ..token_auth(false, &[])
    };
    let err = Emulator::start(unknown_action).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
