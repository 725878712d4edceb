//! Validation of repository names, tags, digests and endpoints, before any request is sent.

use crate::error::invalid_argument;

/// The longest repository name accepted (the OCI distribution limit).
pub const MAX_REPOSITORY_NAME: usize = 255;

/// Checks a repository name against the OCI distribution grammar: lowercase path components
/// of `[a-z0-9]` separated by `.`, `_`, `__` or runs of `-`, joined by `/`.
pub fn validate_repository_name(name: &str) -> azure_core::Result<()> {
    let fail = |m: &str| {
        Err(invalid_argument(
            "repository_name",
            format!("{name:?}: {m}"),
        ))
    };
    if name.is_empty() {
        return fail("must not be empty");
    }
    if name.len() > MAX_REPOSITORY_NAME {
        return fail("is longer than 255 characters");
    }
    for component in name.split('/') {
        if !valid_component(component) {
            return fail(
                "each '/'-separated part must be lowercase letters and digits, joined by '.', '_', '__' or '-'",
            );
        }
    }
    Ok(())
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or '-'+, always between alphanumerics.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if start == 0 || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> azure_core::Result<()> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid_argument(
            "tag",
            format!(
                "{tag:?}: a tag is 1 to 128 of [A-Za-z0-9_.-] and does not start with '.' or '-'"
            ),
        ))
    }
}

/// Checks a digest: `sha256:` and 64 lowercase hex digits, or `sha512:` and 128.
pub fn validate_digest(digest: &str) -> azure_core::Result<()> {
    let fail = |m: &str| Err(invalid_argument("digest", format!("{digest:?}: {m}")));
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return fail("a digest is '<algorithm>:<hex>'");
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return fail("the algorithm must be sha256 or sha512"),
    };
    if hex.len() != len {
        return fail(&format!("{algorithm} needs {len} hex digits"));
    }
    if !hex
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return fail("hex digits must be lowercase 0-9a-f");
    }
    Ok(())
}

/// A tag or a digest, as a manifest reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag such as `latest`.
    Tag(String),
    /// A digest such as `sha256:…`.
    Digest(String),
}

impl Reference {
    /// Parses and checks a tag or digest (anything with a `:` is taken as a digest).
    pub fn parse(reference: &str) -> azure_core::Result<Self> {
        if reference.contains(':') {
            validate_digest(reference)?;
            Ok(Self::Digest(reference.to_string()))
        } else {
            validate_tag(reference)?;
            Ok(Self::Tag(reference.to_string()))
        }
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Tag(s) | Self::Digest(s) => s,
        }
    }
}

/// The sha256 digest of bytes, as `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Checks a registry endpoint and returns it as a URL: http or https, a host, no query or
/// fragment. A bare host name (`myregistry.azurecr.io`) means https.
pub fn parse_endpoint(endpoint: &str) -> azure_core::Result<url::Url> {
    let fail = |m: &str| Err(invalid_argument("endpoint", format!("{endpoint:?}: {m}")));
    let text = if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("https://{endpoint}")
    };
    let Ok(url) = url::Url::parse(&text) else {
        return fail("is not a URL");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return fail("the scheme must be http or https");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return fail("has no host");
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return fail("must not carry a query, fragment or user info");
    }
    if url.path() != "/" && !url.path().is_empty() {
        return fail("must not have a path");
    }
    Ok(url)
}

/// Whether a URL's host is a loopback address (`localhost`, 127.0.0.0/8, `[::1]`).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for good in [
            "a",
            "library/hello-world",
            "a.b_c__d--e/f0",
            "x/y/z",
            "ubuntu",
        ] {
            assert!(validate_repository_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "Upper",
            "a//b",
            "/a",
            "a/",
            "-a",
            "a-",
            "a___b",
            "a..b",
            "a b",
            "a:b",
            long.as_str(),
            "a/./b",
        ] {
            assert!(validate_repository_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tags() {
        let max = "a".repeat(128);
        for good in ["latest", "v1.2.3", "_x", "A-b_c.d", max.as_str()] {
            assert!(validate_tag(good).is_ok(), "{good}");
        }
        let long = "a".repeat(129);
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", long.as_str()] {
            assert!(validate_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        assert!(validate_digest(&format!("sha256:{hex}")).is_ok());
        assert!(validate_digest(&format!("sha512:{}", "0".repeat(128))).is_ok());
        for bad in [
            format!("md5:{hex}"),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}g", "a".repeat(63)),
            hex.clone(),
            String::new(),
        ] {
            assert!(validate_digest(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            sha256_digest(b"hello world"),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn references() {
        assert_eq!(
            Reference::parse("latest").unwrap(),
            Reference::Tag("latest".into())
        );
        let d = format!("sha256:{}", "b".repeat(64));
        assert_eq!(Reference::parse(&d).unwrap(), Reference::Digest(d.clone()));
        assert!(Reference::parse("sha256:zz").is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("myregistry.azurecr.io").unwrap().as_str(),
            "https://myregistry.azurecr.io/"
        );
        assert_eq!(
            parse_endpoint("http://127.0.0.1:5000").unwrap().port(),
            Some(5000)
        );
        for bad in [
            "",
            "ftp://x",
            "http://",
            "https://x/path",
            "https://x?q=1",
            "https://u:p@x",
            "not a url",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad:?}");
        }
        assert!(is_loopback(&parse_endpoint("http://127.0.0.2:1").unwrap()));
        assert!(is_loopback(&parse_endpoint("http://localhost:1").unwrap()));
        assert!(is_loopback(&parse_endpoint("http://[::1]:1").unwrap()));
        assert!(!is_loopback(&parse_endpoint("http://10.0.0.1").unwrap()));
    }
}
