//! Reading the expiry of registry tokens (JWTs). Only `exp` is relied on: the other claims
//! differ between ACR versions. Signatures are the registry's business, not the client's.

use base64::Engine as _;

/// The `exp` claim (seconds since the Unix epoch) of a JWT, if it has one.
pub fn expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"RS256"}"#),
            e.encode(claims)
        )
    }

    #[test]
    fn reads_exp() {
        assert_eq!(
            expiry(&token(r#"{"exp":1700000000,"access":[]}"#)),
            Some(1_700_000_000)
        );
        assert_eq!(expiry(&token(r#"{"iat":1}"#)), None);
        assert_eq!(expiry("not a jwt"), None);
        assert_eq!(expiry("a.!!!.c"), None);
    }
}
