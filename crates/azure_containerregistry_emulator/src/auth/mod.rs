//! Authorization: scopes, checking bearer tokens against the scope a request needs, and 401 challenges.

pub(crate) mod tokens;

use crate::errors::{json_response, ApiError};
use crate::state::AppState;
use crate::AuthMode;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::json;
use tokens::{AccessEntry, TokenError};

/// A scope: `type:name:action1,action2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    /// `repository` or `registry`.
    pub typ: String,
    /// Repository name or `catalog`.
    pub name: String,
    /// Actions.
    pub actions: Vec<String>,
}

impl Scope {
    /// `repository:<name>:<actions>`.
    pub(crate) fn repo(name: &str, actions: &[&str]) -> Self {
        Scope {
            typ: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    /// `registry:catalog:*`.
    pub(crate) fn catalog() -> Self {
        Scope {
            typ: "registry".into(),
            name: "catalog".into(),
            actions: vec!["*".into()],
        }
    }

    /// Parses one scope; the name may itself contain `:` (e.g. a host:port prefix).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (typ, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if typ.is_empty() || name.is_empty() {
            return None;
        }
        let actions = actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        Some(Scope {
            typ: typ.into(),
            name: name.into(),
            actions,
        })
    }

    /// `type:name:a,b`.
    pub(crate) fn format(&self) -> String {
        format!("{}:{}:{}", self.typ, self.name, self.actions.join(","))
    }
}

/// Parses space-separated scopes; malformed ones are skipped.
pub(crate) fn parse_scopes(s: &str) -> Vec<Scope> {
    s.split_whitespace().filter_map(Scope::parse).collect()
}

/// Space-joined scopes.
pub(crate) fn format_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::format)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `access` grants every action of every required scope.
pub(crate) fn granted(access: &[AccessEntry], required: &[Scope]) -> bool {
    required.iter().all(|scope| {
        scope.actions.iter().all(|action| {
            access.iter().any(|entry| {
                entry.typ == scope.typ
                    && (entry.name == scope.name || entry.name == "*")
                    && entry.actions.iter().any(|a| a == action || a == "*")
            })
        })
    })
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Checks that the request carries a token granting `required` (always true in open mode).
/// An empty `required` means "any valid token" (`GET /v2/`).
pub(crate) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    required: &[Scope],
) -> Result<(), ApiError> {
    if matches!(state.auth, AuthMode::Open) {
        return Ok(());
    }
    let Some(token) = bearer(headers) else {
        return Err(challenge(state, required, None));
    };
    let claims = match state.keys.verify(token, &state.issuer, &state.service) {
        Ok(c) if c.version == "2.0" => c,
        Ok(_) | Err(TokenError::Expired) | Err(TokenError::Invalid(_)) => {
            return Err(challenge(state, required, Some("invalid_token")))
        }
    };
    if granted(&claims.access, required) {
        Ok(())
    } else {
        Err(challenge(state, required, Some("insufficient_scope")))
    }
}

/// A 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…[,error=…]` and ACR's JSON body.
pub(crate) fn challenge(state: &AppState, required: &[Scope], error: Option<&str>) -> ApiError {
    let mut value = format!(
        "Bearer realm=\"{}/oauth2/token\",service=\"{}\"",
        state.endpoint, state.service
    );
    if !required.is_empty() {
        value.push_str(&format!(",scope=\"{}\"", format_scopes(required)));
    }
    if let Some(error) = error {
        value.push_str(&format!(",error=\"{error}\""));
    }
    let detail: Vec<_> = required
        .iter()
        .flat_map(|s| {
            s.actions
                .iter()
                .map(move |a| json!({ "Type": s.typ, "Name": s.name, "Action": a }))
        })
        .collect();
    let body = json!({ "errors": [{
        "code": "UNAUTHORIZED",
        "message": "authentication required, visit https://aka.ms/acr/authorization for more information.",
        "detail": detail,
    }]});
    let mut resp = json_response(StatusCode::UNAUTHORIZED, &body);
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    ApiError::Raw(Box::new(resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip() {
        let s = parse_scopes("repository:hello-world:pull,push repository:alpine:pull");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].actions, ["pull", "push"]);
        assert_eq!(
            format_scopes(&s),
            "repository:hello-world:pull,push repository:alpine:pull"
        );
        let p = Scope::parse("repository:localhost:5000/a/b:pull").unwrap();
        assert_eq!(p.name, "localhost:5000/a/b");
        assert_eq!(Scope::parse("registry:catalog:*"), Some(Scope::catalog()));
        assert_eq!(Scope::parse("nonsense"), None);
    }

    #[test]
    fn grants() {
        let access = vec![AccessEntry {
            typ: "repository".into(),
            name: "a".into(),
            actions: vec!["pull".into()],
        }];
        assert!(granted(&access, &[Scope::repo("a", &["pull"])]));
        assert!(!granted(&access, &[Scope::repo("a", &["pull", "push"])]));
        assert!(!granted(&access, &[Scope::repo("b", &["pull"])]));
        assert!(!granted(&access, &[Scope::catalog()]));
        assert!(granted(&access, &[]));
    }
}
