//! The public token API: ACR refresh and access tokens for tools that talk to the registry
//! themselves (`docker login`, helm, oras).

use azure_core::credentials::Secret;
use time::OffsetDateTime;

use crate::auth::Challenge;
use crate::error::invalid_argument;
use crate::pipeline::Pipeline;

/// An ACR refresh token, from
/// [`get_acr_refresh_token`](crate::ContainerRegistryClient::get_acr_refresh_token) or
/// [`exchange_aad_access_token_for_acr_refresh_token`](crate::ContainerRegistryClient::exchange_aad_access_token_for_acr_refresh_token).
///
/// `Debug` never shows the token (a [`Secret`] prints as `Secret`).
#[derive(Clone, Debug)]
pub struct AcrRefreshToken {
    /// The refresh token (use it as the password of `docker login` with the user name
    /// `00000000-0000-0000-0000-000000000000`).
    pub refresh_token: Secret,
    /// The registry service the token is for (its login server).
    pub service: String,
    /// When the token expires, if it says.
    pub expires_on: Option<OffsetDateTime>,
}

/// An ACR access token for one or more scopes, from
/// [`get_acr_access_token`](crate::ContainerRegistryClient::get_acr_access_token) or
/// [`exchange_acr_refresh_token_for_acr_access_token`](crate::ContainerRegistryClient::exchange_acr_refresh_token_for_acr_access_token).
///
/// `Debug` never shows the token (a [`Secret`] prints as `Secret`).
#[derive(Clone, Debug)]
pub struct AcrAccessToken {
    /// The access token, sent as `Authorization: Bearer <token>`.
    pub access_token: Secret,
    /// The scope it was issued for.
    pub scope: String,
    /// The registry service the token is for.
    pub service: String,
    /// When the token expires, if it says.
    pub expires_on: Option<OffsetDateTime>,
}

fn expires_on(token: &str) -> Option<OffsetDateTime> {
    crate::auth::jwt::expiry(token).and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok())
}

impl AcrRefreshToken {
    fn new(refresh_token: Secret, service: String) -> Self {
        Self {
            expires_on: expires_on(refresh_token.secret()),
            refresh_token,
            service,
        }
    }
}

impl AcrAccessToken {
    fn new(access_token: String, scope: String, service: String) -> Self {
        Self {
            expires_on: expires_on(&access_token),
            access_token: Secret::new(access_token),
            scope,
            service,
        }
    }
}

/// The client's refresh token (cached, else exchanged).
pub(crate) async fn refresh_token(pipeline: &Pipeline) -> azure_core::Result<AcrRefreshToken> {
    let service = pipeline.login_server();
    let token = pipeline.authenticator().refresh_token(&service).await?;
    Ok(AcrRefreshToken::new(token, service))
}

/// A caller's Microsoft Entra access token exchanged for a refresh token (not cached).
pub(crate) async fn exchange_aad_access_token(
    pipeline: &Pipeline,
    aad_access_token: &str,
    tenant: Option<&str>,
) -> azure_core::Result<AcrRefreshToken> {
    if aad_access_token.is_empty() {
        return Err(invalid_argument("aad_access_token", "must not be empty"));
    }
    if tenant.is_some_and(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(invalid_argument("tenant", "must be a tenant id or domain"));
    }
    let (authenticator, service) = (pipeline.authenticator(), pipeline.login_server());
    let token = authenticator
        .exchange_aad_token(&service, aad_access_token, tenant)
        .await?;
    Ok(AcrRefreshToken::new(Secret::new(token), service))
}

/// A caller's ACR refresh token exchanged for an access token for `scope` (not cached).
pub(crate) async fn exchange_refresh_token(
    pipeline: &Pipeline,
    refresh_token: &str,
    scope: &str,
) -> azure_core::Result<AcrAccessToken> {
    if refresh_token.is_empty() {
        return Err(invalid_argument("refresh_token", "must not be empty"));
    }
    validate_scope(scope)?;
    let (authenticator, service) = (pipeline.authenticator(), pipeline.login_server());
    let token = authenticator
        .access_token_from_refresh(&service, scope, refresh_token)
        .await?;
    Ok(AcrAccessToken::new(token, scope.to_string(), service))
}

/// Checks a token scope: space-separated `type:name:actions` entries of printable ASCII.
fn validate_scope(scope: &str) -> azure_core::Result<()> {
    let fail = |m: &str| Err(invalid_argument("scope", format!("{scope:?}: {m}")));
    if scope.trim().is_empty() {
        return fail("must not be empty");
    }
    if !scope.bytes().all(|b| b.is_ascii_graphic() || b == b' ') || scope.contains('"') {
        return fail("must be printable ASCII without quotes");
    }
    for part in scope.split(' ').filter(|s| !s.is_empty()) {
        let mut pieces = part.splitn(2, ':');
        let kind = pieces.next().unwrap_or("");
        let rest = pieces.next().unwrap_or("");
        match rest.rsplit_once(':') {
            Some((name, actions))
                if !kind.is_empty() && !name.is_empty() && !actions.is_empty() => {}
            _ => {
                return fail(
                    "each scope is 'type:name:actions', e.g. 'repository:library/hello-world:pull'",
                )
            }
        }
    }
    Ok(())
}

/// An access token for `scope`, through the client's per-scope cache.
pub(crate) async fn access_token(
    pipeline: &Pipeline,
    scope: &str,
) -> azure_core::Result<AcrAccessToken> {
    validate_scope(scope)?;
    let service = pipeline.login_server();
    let realm = pipeline.resolve("/oauth2/token")?;
    // The same path as a 401 challenge from the registry: the authenticator looks in its cache
    // for the scope, else fetches (refresh token exchange, or anonymous) and caches the result.
    let challenge = Challenge {
        realm: realm.to_string(),
        service: Some(service.clone()),
        scopes: scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        error: None,
    };
    let header = pipeline.authenticator().authorize(&challenge, None).await?;
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .ok_or_else(|| {
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "the registry's token is not text",
            )
        })?;
    Ok(AcrAccessToken::new(token, challenge.scope(), service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        for good in [
            "repository:a:pull",
            "registry:catalog:*",
            "repository:a/b:pull,push repository:c:pull",
        ] {
            assert!(validate_scope(good).is_ok(), "{good}");
        }
        // Other refusals (empty, newline, quote, missing parts) are in tests/reliability_input.rs.
        for bad in [
            "\t",
            "repository:a:",
            ":a:pull",
            "repository:a:pull registry",
            "a:b:c\u{7f}",
            "r\u{e9}pository:a:pull",
        ] {
            assert!(validate_scope(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let t = AcrRefreshToken {
            refresh_token: Secret::new("very-secret"),
            service: "r.io".into(),
            expires_on: None,
        };
        assert!(!format!("{t:?}").contains("very-secret"));
        let t = AcrAccessToken {
            access_token: Secret::new("very-secret"),
            scope: "s".into(),
            service: "r.io".into(),
            expires_on: None,
        };
        assert!(!format!("{t:?}").contains("very-secret"));
        assert_eq!(t.access_token.secret(), "very-secret");
    }
}
