//! The token scope a request needs, predicted from its method and path, so a cached token can
//! be attached before the registry asks for it.

use percent_encoding::percent_decode_str;

/// The scope a request will be challenged for, or `None` when it cannot be told.
pub fn predict_scope(method: &reqwest::Method, url: &url::Url) -> Option<String> {
    let path = url.path();
    if path == "/acr/v1/_catalog" || path == "/v2/_catalog" {
        return Some("registry:catalog:*".to_string());
    }
    if let Some(rest) = path.strip_prefix("/acr/v1/") {
        let name = match ["/_tags", "/_manifests"]
            .iter()
            .filter_map(|k| rest.rfind(k))
            .max()
        {
            Some(i) => &rest[..i],
            None => rest,
        };
        let name = decode(name)?;
        let action = match *method {
            reqwest::Method::GET | reqwest::Method::HEAD => "metadata_read",
            reqwest::Method::PATCH => "metadata_write",
            reqwest::Method::DELETE => "delete",
            _ => return None,
        };
        return Some(format!("repository:{name}:{action}"));
    }
    if let Some(rest) = path.strip_prefix("/v2/") {
        let i = ["/blobs/", "/manifests/", "/tags/", "/referrers/"]
            .iter()
            .filter_map(|k| rest.rfind(k))
            .max()?;
        let name = decode(&rest[..i])?;
        let mut scope = match *method {
            reqwest::Method::GET | reqwest::Method::HEAD => format!("repository:{name}:pull"),
            reqwest::Method::DELETE => format!("repository:{name}:delete"),
            reqwest::Method::PUT | reqwest::Method::POST | reqwest::Method::PATCH => {
                format!("repository:{name}:pull,push")
            }
            _ => return None,
        };
        if *method == reqwest::Method::POST {
            if let Some((_, from)) = url.query_pairs().find(|(k, _)| k == "from") {
                scope.push_str(&format!(" repository:{from}:pull"));
            }
        }
        return Some(scope);
    }
    None
}

fn decode(name: &str) -> Option<String> {
    let name = percent_decode_str(name).decode_utf8().ok()?.into_owned();
    (!name.is_empty()).then_some(name)
}

/// A scope string in a canonical form for cache keys: scopes sorted, actions sorted.
pub fn canonical(scope: &str) -> String {
    let mut scopes: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| match s.rsplit_once(':') {
            Some((resource, actions)) => {
                let mut a: Vec<&str> = actions.split(',').collect();
                a.sort_unstable();
                a.dedup();
                format!("{resource}:{}", a.join(","))
            }
            None => s.to_string(),
        })
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes.join(" ")
}

/// Whether a token granted for `granted` also serves `wanted`: every wanted resource is
/// granted with at least the wanted actions (`repository:a:pull,push` serves
/// `repository:a:pull`).
pub fn covers(granted: &str, wanted: &str) -> bool {
    let parse = |s: &str| -> Vec<(String, Vec<String>)> {
        s.split(' ')
            .filter(|x| !x.is_empty())
            .map(|x| match x.rsplit_once(':') {
                Some((resource, actions)) => (
                    resource.to_string(),
                    actions.split(',').map(String::from).collect(),
                ),
                None => (x.to_string(), Vec::new()),
            })
            .collect()
    };
    let granted = parse(granted);
    let wanted = parse(wanted);
    !wanted.is_empty()
        && wanted.iter().all(|(resource, actions)| {
            granted
                .iter()
                .any(|(r, a)| r == resource && actions.iter().all(|w| a.contains(w)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;

    fn p(method: Method, url: &str) -> Option<String> {
        predict_scope(&method, &url::Url::parse(url).unwrap())
    }

    #[test]
    fn predictions_match_acr_challenges() {
        let cases = [
            (
                Method::GET,
                "https://r/acr/v1/_catalog?n=1",
                Some("registry:catalog:*"),
            ),
            (
                Method::GET,
                "https://r/acr/v1/library%2Fhello/_tags?n=1",
                Some("repository:library/hello:metadata_read"),
            ),
            (
                Method::PATCH,
                "https://r/acr/v1/a/_tags/v1",
                Some("repository:a:metadata_write"),
            ),
            (
                Method::DELETE,
                "https://r/acr/v1/a",
                Some("repository:a:delete"),
            ),
            (
                Method::GET,
                "https://r/acr/v1/a/_manifests/sha256:00",
                Some("repository:a:metadata_read"),
            ),
            (
                Method::HEAD,
                "https://r/v2/a/b/blobs/sha256:00",
                Some("repository:a/b:pull"),
            ),
            (
                Method::PUT,
                "https://r/v2/a/manifests/v1",
                Some("repository:a:pull,push"),
            ),
            (
                Method::DELETE,
                "https://r/v2/a/blobs/uploads/u?_state=x",
                Some("repository:a:delete"),
            ),
            (
                Method::POST,
                "https://r/v2/hello-world/blobs/uploads/?from=alpine&mount=sha256%3A00",
                Some("repository:hello-world:pull,push repository:alpine:pull"),
            ),
            (
                Method::GET,
                "https://r/v2/x/manifests/y/blobs/sha256:0",
                Some("repository:x/manifests/y:pull"),
            ),
            (Method::GET, "https://r/v2/", None),
            (Method::GET, "https://r/oauth2/token", None),
        ];
        for (method, url, want) in cases {
            assert_eq!(p(method.clone(), url).as_deref(), want, "{method} {url}");
        }
    }

    #[test]
    fn wider_scopes_cover_narrower_ones() {
        assert!(covers("repository:a:pull,push", "repository:a:pull"));
        assert!(covers(
            "repository:a:pull,push repository:b:pull",
            "repository:b:pull"
        ));
        assert!(!covers("repository:a:pull", "repository:a:pull,push"));
        assert!(!covers("repository:a:pull", "repository:b:pull"));
        assert!(!covers("repository:a:pull", "repository:a/b:pull"));
        assert!(!covers("repository:a:pull", ""));
    }

    #[test]
    fn canonical_scopes() {
        assert_eq!(
            canonical("repository:a:push,pull"),
            "repository:a:pull,push"
        );
        assert_eq!(
            canonical("repository:b:pull repository:a:push,pull"),
            "repository:a:pull,push repository:b:pull"
        );
        assert_eq!(canonical("registry:catalog:*"), "registry:catalog:*");
    }
}
