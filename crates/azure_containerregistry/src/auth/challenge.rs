//! Parsing of `WWW-Authenticate: Bearer realm="…",service="…",scope="…",error="…"`.

/// A Bearer challenge from a 401 answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    /// Where tokens are issued (`realm`).
    pub realm: String,
    /// The registry's service name (`service`), sent back in token requests.
    pub service: Option<String>,
    /// The scopes the request needs, one entry per space-separated scope.
    pub scopes: Vec<String>,
    /// `insufficient_scope`, `invalid_token`, … when a token was presented.
    pub error: Option<String>,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` value; `None` unless it holds a Bearer challenge with a realm.
    pub fn parse(header: &str) -> Option<Self> {
        let mut rest = header.trim_start();
        // Several challenges may share one header; find the Bearer one.
        loop {
            let (scheme, after) = split_token(rest);
            if scheme.eq_ignore_ascii_case("bearer") {
                rest = after;
                break;
            }
            // Skip to the next scheme: past this challenge's parameters.
            let (_, after_params) = parse_params(after);
            if after_params.len() == rest.len() || after_params.is_empty() {
                return None;
            }
            rest = after_params.trim_start_matches([',', ' ']);
            if rest.is_empty() {
                return None;
            }
        }
        let (params, _) = parse_params(rest);
        let mut challenge = Challenge::default();
        for (name, value) in params {
            match name.to_ascii_lowercase().as_str() {
                "realm" => challenge.realm = value,
                "service" => challenge.service = Some(value),
                "scope" => challenge
                    .scopes
                    .extend(value.split(' ').filter(|s| !s.is_empty()).map(String::from)),
                "error" => challenge.error = Some(value),
                _ => {}
            }
        }
        (!challenge.realm.is_empty()).then_some(challenge)
    }

    /// The scopes joined with spaces, as the token request's `scope` field.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

/// Splits a leading token (up to whitespace) off.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(|c: char| c.is_whitespace()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Parses `name=value` or `name="quoted value"` pairs separated by commas. Stops at the first
/// thing that is not a pair (the next challenge's scheme) and returns what is left.
fn parse_params(s: &str) -> (Vec<(String, String)>, &str) {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t', ',']);
        let Some(eq) = trimmed.find('=') else {
            return (out, trimmed);
        };
        let name = trimmed[..eq].trim();
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',' || c == '"') {
            return (out, trimmed);
        }
        let after = trimmed[eq + 1..].trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            match end {
                Some(end) => (value, &quoted[end..]),
                None => (value, ""), // unterminated: take the rest
            }
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((name.to_string(), value));
        rest = remaining;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_challenges() {
        let c = Challenge::parse(r#"Bearer realm="https://r.azurecr.io/oauth2/token",service="r.azurecr.io",scope="repository:library/hello-world:metadata_read""#).unwrap();
        assert_eq!(c.realm, "https://r.azurecr.io/oauth2/token");
        assert_eq!(c.service.as_deref(), Some("r.azurecr.io"));
        assert_eq!(c.scopes, ["repository:library/hello-world:metadata_read"]);
        assert_eq!(c.error, None);

        let mount = Challenge::parse(r#"Bearer realm="https://r/oauth2/token",service="r",scope="repository:hello-world:pull,push repository:alpine:pull""#).unwrap();
        assert_eq!(
            mount.scopes,
            ["repository:hello-world:pull,push", "repository:alpine:pull"]
        );
        assert_eq!(
            mount.scope(),
            "repository:hello-world:pull,push repository:alpine:pull"
        );

        let insufficient = Challenge::parse(r#"Bearer realm="https://r/oauth2/token",service="r",scope="repository:alpine:metadata_write",error="insufficient_scope""#).unwrap();
        assert_eq!(insufficient.error.as_deref(), Some("insufficient_scope"));
    }

    #[test]
    fn tolerant_forms() {
        let c =
            Challenge::parse(r#"bearer  REALM="http://a/t" , service=a:5000 ,scope="x:y:pull""#)
                .unwrap();
        assert_eq!(c.realm, "http://a/t");
        assert_eq!(c.service.as_deref(), Some("a:5000"));
        let escaped = Challenge::parse(r#"Bearer realm="http://a/\"t\"""#).unwrap();
        assert_eq!(escaped.realm, r#"http://a/"t""#);
        let second = Challenge::parse(r#"Basic realm="x", Bearer realm="http://b/t""#).unwrap();
        assert_eq!(second.realm, "http://b/t");
        let comma_in_quotes =
            Challenge::parse(r#"Bearer realm="http://a/t",scope="repository:a:pull,push""#)
                .unwrap();
        assert_eq!(comma_in_quotes.scopes, ["repository:a:pull,push"]);
    }

    #[test]
    fn malformed_challenges_are_none() {
        for bad in [
            "",
            "Bearer",
            "Basic realm=\"x\"",
            "Bearer service=\"x\"",
            "Bearer realm=",
            "garbage ,,, ==",
            "Bearer realm=\"unterminated",
        ] {
            let parsed = Challenge::parse(bad);
            assert!(
                parsed.is_none() || bad.contains("unterminated"),
                "{bad:?} -> {parsed:?}"
            );
        }
        assert_eq!(
            Challenge::parse("Bearer realm=\"unterminated").map(|c| c.realm),
            Some("unterminated".into())
        );
    }
}
