//! Token auth: challenges, exchange → token → request, anonymous, insufficient scope, expiry.

mod common;

use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions};
use base64::Engine;
use common::*;
use serde_json::Value;
use std::time::Duration;

const AAD: &str = "aad-token-1";

async fn token_emulator(anonymous_pull: bool) -> Emulator {
    start(EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull,
            accepted_aad_tokens: vec![AAD.into()],
        },
        ..Default::default()
    })
    .await
}

async fn refresh_token(c: &reqwest::Client, emu: &Emulator) -> String {
    let resp = c
        .post(format!(
            "{}/oauth2/exchange?api-version=2021-07-01",
            emu.endpoint()
        ))
        .form(&[
            ("grant_type", "access_token"),
            ("service", &emu.service()),
            ("access_token", AAD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
    assert_eq!(body.as_object().unwrap().len(), 1);
    body["refresh_token"].as_str().unwrap().to_owned()
}

async fn access_token(c: &reqwest::Client, emu: &Emulator, refresh: &str, scope: &str) -> String {
    let resp = c
        .post(format!(
            "{}/oauth2/token?api-version=2021-07-01",
            emu.endpoint()
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", &emu.service()),
            ("scope", scope),
            ("refresh_token", refresh),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    json_body(resp).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
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

#[tokio::test]
async fn challenges_have_acr_shape() {
    let emu = token_emulator(false).await;
    let (c, base) = (client(), emu.endpoint());
    let realm = format!(
        "Bearer realm=\"{base}/oauth2/token\",service=\"{}\"",
        emu.service()
    );

    let resp = c
        .get(format!("{base}/acr/v1/_catalog"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        header(&resp, "www-authenticate"),
        format!("{realm},scope=\"registry:catalog:*\"")
    );
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required, visit https://aka.ms/acr/authorization for more information.","detail":[{"Type":"registry","Name":"catalog","Action":"*"}]}]}"#
    );

    let resp = c
        .post(format!(
            "{base}/v2/hello-world/blobs/uploads/?from=alpine&mount={}",
            sha(b"x")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&resp, "www-authenticate"),
        format!("{realm},scope=\"repository:hello-world:pull,push repository:alpine:pull\"")
    );
    let detail = json_body(resp).await["errors"][0]["detail"].clone();
    assert_eq!(detail.as_array().unwrap().len(), 3);

    let resp = c
        .get(format!("{base}/acr/v1/library%2Fhello-world/_tags"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&resp, "www-authenticate"),
        format!("{realm},scope=\"repository:library/hello-world:metadata_read\"")
    );
    let resp = c
        .patch(format!("{base}/acr/v1/alpine"))
        .send()
        .await
        .unwrap();
    assert!(
        header(&resp, "www-authenticate").ends_with("scope=\"repository:alpine:metadata_write\"")
    );
    let resp = c
        .delete(format!("{base}/v2/alpine/blobs/{}", sha(b"x")))
        .send()
        .await
        .unwrap();
    assert!(header(&resp, "www-authenticate").ends_with("scope=\"repository:alpine:delete\""));

    let resp = c
        .head(format!("{base}/v2/alpine/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate").ends_with("scope=\"repository:alpine:pull\""));
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
    let resp = c
        .post(format!("{base}/v2/hello/blobs/uploads/?digest={d}"))
        .bearer_auth(&token)
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    // The same token cannot delete: insufficient_scope.
    let resp = c
        .delete(format!("{base}/v2/hello/blobs/{d}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate")
        .ends_with(",scope=\"repository:hello:delete\",error=\"insufficient_scope\""));

    // The refresh token can be reused for another scope; several scopes at once work.
    let token = access_token(
        &c,
        &emu,
        &refresh,
        "repository:hello:delete registry:catalog:*",
    )
    .await;
    let resp = c
        .delete(format!("{base}/v2/hello/blobs/{d}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let resp = c
        .get(format!("{base}/acr/v1/_catalog"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // docker-login style: GET with Basic, password = refresh token.
    let resp = c
        .get(format!(
            "{base}/oauth2/token?service={}&scope=repository:hello:pull",
            emu.service()
        ))
        .basic_auth("00000000-0000-0000-0000-000000000000", Some(&refresh))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(json_body(resp).await["access_token"].is_string());
}

#[tokio::test]
async fn failures_are_empty_401s() {
    let emu = token_emulator(false).await;
    let (c, base) = (client(), emu.endpoint());
    let resp = c
        .post(format!("{base}/oauth2/exchange"))
        .form(&[
            ("grant_type", "access_token"),
            ("service", &emu.service()),
            ("access_token", "wrong"),
            ("tenant", "wrong tenant"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_none());
    assert_eq!(header(&resp, "content-length"), "0");

    let resp = c
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", "x"),
            ("scope", "registry:catalog:*"),
            ("refresh_token", "garbage"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(header(&resp, "content-length"), "0");

    // No anonymous access configured.
    let resp = c
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("refresh_token", ""),
            ("scope", "registry:catalog:*"),
            ("service", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // A garbage bearer token: invalid_token.
    let resp = c
        .get(format!("{base}/v2/a/tags/list"))
        .bearer_auth("abc.def.ghi")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate").ends_with("error=\"invalid_token\""));
}

#[tokio::test]
async fn anonymous_pull_only() {
    let emu = token_emulator(true).await;
    let (c, base) = (client(), emu.endpoint());
    let anon = |scope: &'static str, with_empty_field: bool| {
        let c = c.clone();
        let url = format!("{base}/oauth2/token");
        let service = emu.service();
        async move {
            let mut form = vec![
                ("grant_type", "password".to_owned()),
                ("scope", scope.to_owned()),
                ("service", service),
            ];
            if with_empty_field {
                form.push(("refresh_token", String::new()));
            }
            let resp = c.post(url).form(&form).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            json_body(resp).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let t = anon("registry:catalog:*", true).await;
    assert_eq!(jwt_part(&t, 1)["sub"], "acr_anon_pull");
    let resp = c
        .get(format!("{base}/acr/v1/_catalog"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let t = anon("repository:alpine:pull,push", false).await;
    assert_eq!(
        jwt_part(&t, 1)["access"][0]["actions"],
        serde_json::json!(["pull"])
    );
    let resp = c
        .post(format!("{base}/v2/alpine/blobs/uploads/"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate").ends_with("error=\"insufficient_scope\""));
    let resp = c
        .get(format!("{base}/v2/alpine/tags/list"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        404,
        "authorized, but the repository does not exist"
    );

    // GET without credentials gives an anonymous token too.
    let resp = c
        .get(format!(
            "{base}/oauth2/token?service={}&scope=repository:alpine:pull",
            emu.service()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let emu = start(EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull: false,
            accepted_aad_tokens: vec![AAD.into()],
        },
        access_token_lifetime: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let c = client();
    let refresh = refresh_token(&c, &emu).await;
    let token = access_token(&c, &emu, &refresh, "registry:catalog:*").await;
    let resp = c
        .get(format!("{}/acr/v1/_catalog", emu.endpoint()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate").ends_with("error=\"invalid_token\""));

    // A token signed by another emulator is rejected as well.
    let other = token_emulator(false).await;
    let rt = refresh_token(&c, &other).await;
    let foreign = access_token(&c, &other, &rt, "registry:catalog:*").await;
    let resp = c
        .get(format!("{}/acr/v1/_catalog", emu.endpoint()))
        .bearer_auth(&foreign)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
