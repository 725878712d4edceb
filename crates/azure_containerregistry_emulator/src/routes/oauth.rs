//! `/oauth2/exchange` (AAD token → refresh token) and `/oauth2/token` (→ access token).

use crate::auth::tokens::{AccessEntry, Claims};
use crate::auth::{parse_scopes, Scope};
use crate::errors::{empty_response, json_response, ApiError, ApiResult};
use crate::paging::Query;
use crate::state::AppState;
use crate::AuthMode;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// Largest form body accepted.
const FORM_LIMIT: usize = 256 * 1024;
/// Subject of anonymous tokens (as ACR).
const ANONYMOUS_SUB: &str = "acr_anon_pull";
/// Actions an anonymous token may carry on a repository.
const ANONYMOUS_ACTIONS: [&str; 2] = ["pull", "metadata_read"];

fn unauthorized() -> ApiError {
    ApiError::Empty(StatusCode::UNAUTHORIZED)
}

async fn read_form(body: Body) -> ApiResult<HashMap<String, String>> {
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| ApiError::bad_request("form body too large"))?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut map = HashMap::new();
    for (k, v) in pairs {
        map.entry(k).or_insert(v);
    }
    Ok(map)
}

fn claims(
    state: &AppState,
    sub: &str,
    version: &str,
    grant: &str,
    lifetime: Duration,
    access: Vec<AccessEntry>,
) -> Claims {
    let now = chrono::Utc::now().timestamp();
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 4);
    Claims {
        jti: uuid::Uuid::new_v4().to_string(),
        sub: sub.to_owned(),
        nbf: now,
        exp: now.saturating_add(lifetime),
        iat: now,
        iss: state.issuer.clone(),
        aud: state.service.clone(),
        version: version.to_owned(),
        grant_type: grant.to_owned(),
        access,
    }
}

/// Signs a refresh token for `sub`.
fn refresh_token(state: &AppState, sub: &str) -> ApiResult<String> {
    let c = claims(
        state,
        sub,
        "1.0",
        "refresh_token",
        state.refresh_lifetime,
        Vec::new(),
    );
    Ok(state.keys.sign(&c)?)
}

/// Signs an access token granting `scopes` (filtered for anonymous callers).
fn access_token(
    state: &AppState,
    sub: &str,
    scopes: &[Scope],
    anonymous: bool,
) -> ApiResult<String> {
    let access = scopes
        .iter()
        .filter_map(|s| {
            let actions: Vec<String> = if !anonymous {
                s.actions.clone()
            } else if s.typ == "registry" && s.name == "catalog" {
                s.actions.iter().filter(|a| *a == "*").cloned().collect()
            } else if s.typ == "repository" {
                s.actions
                    .iter()
                    .filter(|a| ANONYMOUS_ACTIONS.contains(&a.as_str()))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            (!actions.is_empty()).then(|| AccessEntry {
                typ: s.typ.clone(),
                name: s.name.clone(),
                actions,
            })
        })
        .collect();
    sign_access(state, sub, access)
}

/// Signs an access token for `sub` with this `access` claim.
fn sign_access(state: &AppState, sub: &str, access: Vec<AccessEntry>) -> ApiResult<String> {
    let c = claims(
        state,
        sub,
        "2.0",
        "access_token",
        state.access_lifetime,
        access,
    );
    Ok(state.keys.sign(&c)?)
}

/// The subject of a valid refresh token.
fn verify_refresh(state: &AppState, token: &str) -> Option<String> {
    let c = state
        .keys
        .verify(token, &state.issuer, &state.service)
        .ok()?;
    (c.version == "1.0").then_some(c.sub)
}

fn anonymous_allowed(state: &AppState) -> bool {
    match &state.auth {
        AuthMode::Open => true,
        AuthMode::Token { anonymous_pull, .. } => *anonymous_pull,
    }
}

fn access_response(token: String) -> ApiResult {
    Ok(json_response(
        StatusCode::OK,
        &json!({ "access_token": token }),
    ))
}

/// Issues an access token for `scope`, authenticated by a refresh token or anonymous.
fn issue(state: &AppState, scope: &str, refresh: Option<&str>) -> ApiResult {
    let scopes = parse_scopes(scope);
    match refresh.filter(|r| !r.is_empty()) {
        Some(r) => match verify_refresh(state, r) {
            Some(sub) => access_response(access_token(state, &sub, &scopes, false)?),
            None => Err(unauthorized()),
        },
        None if matches!(state.auth, AuthMode::Open) => {
            access_response(access_token(state, "anonymous", &scopes, false)?)
        }
        None if anonymous_allowed(state) => {
            access_response(access_token(state, ANONYMOUS_SUB, &scopes, true)?)
        }
        None => Err(unauthorized()),
    }
}

/// Refuses a request naming another `service` than this registry's (tokens are per service).
fn check_service(state: &AppState, service: Option<&str>) -> ApiResult<()> {
    match service {
        Some(s) if s != state.service => Err(unauthorized()),
        _ => Ok(()),
    }
}

/// `POST /oauth2/exchange`.
pub(crate) async fn exchange(state: &AppState, body: Body) -> ApiResult {
    let form = read_form(body).await.map_err(|_| unauthorized())?;
    check_service(state, form.get("service").map(String::as_str))?;
    if form.get("grant_type").map(String::as_str) != Some("access_token") {
        return Ok(empty_response(StatusCode::UNAUTHORIZED));
    }
    let token = form.get("access_token").map(String::as_str).unwrap_or("");
    let accepted = match &state.auth {
        AuthMode::Open => !token.is_empty(),
        AuthMode::Token {
            accepted_aad_tokens,
            ..
        } => accepted_aad_tokens.iter().any(|t| t == token),
    };
    if !accepted {
        return Ok(empty_response(StatusCode::UNAUTHORIZED));
    }
    let rt = refresh_token(state, "aad-user")?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "refresh_token": rt }),
    ))
}

/// `POST /oauth2/token` (grant_type `refresh_token` or `password`).
pub(crate) async fn token_post(state: &AppState, body: Body) -> ApiResult {
    let form = read_form(body).await.map_err(|_| unauthorized())?;
    let get = |k: &str| form.get(k).map(String::as_str);
    check_service(state, get("service"))?;
    let scope = get("scope").unwrap_or("");
    match get("grant_type") {
        Some("refresh_token") => match get("refresh_token").filter(|r| !r.is_empty()) {
            Some(r) => issue(state, scope, Some(r)),
            None => Err(unauthorized()),
        },
        Some("password") => {
            // A refresh token may come as `refresh_token` or as `password` (docker's OAuth flow).
            let credential = get("refresh_token")
                .filter(|r| !r.is_empty())
                .or(get("password"));
            match credential.filter(|c| !c.is_empty()) {
                Some(c) if verify_refresh(state, c).is_some() => issue(state, scope, Some(c)),
                _ => issue(state, scope, None),
            }
        }
        _ => Err(unauthorized()),
    }
}

/// `GET /oauth2/token?service=…&scope=…` with optional HTTP Basic.
///
/// Basic with a configured user's name logs that user in (its password must match and it must be
/// enabled); otherwise the password is taken as a refresh token (the Docker CLI's login form).
/// Without Basic the caller is anonymous.
pub(crate) async fn token_get(state: &AppState, query: &Query, headers: &HeaderMap) -> ApiResult {
    check_service(state, query.get("service"))?;
    // Several `scope` parameters are allowed (docker sends one per scope).
    let scope = query.all("scope").join(" ");
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, cred)| cred.trim());
    let Some(cred) = basic else {
        return issue(state, &scope, None);
    };
    let (username, password) = decode_basic(cred).ok_or_else(ApiError::login_failed)?;
    if let Some(user) = state.users.iter().find(|u| u.username == username) {
        // Check the password even for a disabled user, so both answers take the same time.
        let matches = user.password_matches(&password);
        if !(matches && user.enabled) {
            return Err(ApiError::login_failed());
        }
        let access = user.access_for(&parse_scopes(&scope));
        return access_response(sign_access(state, &user.username, access)?);
    }
    if !password.is_empty() && verify_refresh(state, &password).is_some() {
        return issue(state, &scope, Some(&password));
    }
    Err(ApiError::login_failed())
}

/// The username and password of a Basic credential (`base64(username:password)`).
fn decode_basic(cred: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(cred)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}
