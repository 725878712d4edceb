//! Grammar of repository names, tags and digests (OCI distribution).

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    /// A tag such as `latest`.
    Tag(String),
    /// A `sha256:` digest.
    Digest(String),
}

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-+".
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `name` is a valid repository name (components separated by `/`).
pub(crate) fn valid_repo_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(valid_component)
}

/// Whether `tag` matches `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Parses `sha256:<64 lowercase hex>` (also with the colon percent-encoded).
pub(crate) fn parse_digest(s: &str) -> Option<String> {
    let s = match (s.get(..9), s.get(9..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case("sha256%3a") => {
            format!("sha256:{rest}")
        }
        _ => s.to_owned(),
    };
    let hex = s.strip_prefix("sha256:")?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        Some(s)
    } else {
        None
    }
}

/// Parses a manifest reference: a digest when it contains a colon, else a tag.
pub(crate) fn parse_reference(s: &str) -> Option<Reference> {
    if s.contains(':') || s.to_ascii_lowercase().contains("%3a") {
        parse_digest(s).map(Reference::Digest)
    } else if valid_tag(s) {
        Some(Reference::Tag(s.to_owned()))
    } else {
        None
    }
}

/// The 64-hex part of a `sha256:` digest.
pub(crate) fn digest_hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// `sha256:<hex>` of `data`.
pub(crate) fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        for ok in [
            "alpine",
            "library/hello-world",
            "a/b/c",
            "a__b",
            "a--b",
            "a.b_c",
            "0",
        ] {
            assert!(valid_repo_name(ok), "{ok}");
        }
        for bad in [
            "", "Alpine", "a//b", "/a", "a/", "a___b", "a..b", "-a", "a-", "_tags", "a b",
        ] {
            assert!(!valid_repo_name(bad), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(valid_tag("latest"));
        assert!(valid_tag("3.17.1"));
        assert!(valid_tag("_x"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("a/b"));
        assert!(!valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(parse_digest(&d), Some(d.clone()));
        assert_eq!(
            parse_digest(&format!("sha256%3A{}", "a".repeat(64))),
            Some(d.clone())
        );
        assert_eq!(parse_digest(&format!("sha256:{}", "A".repeat(64))), None);
        assert_eq!(parse_digest("sha256:00000000"), None);
        assert_eq!(parse_reference("wrong digest"), None);
        assert_eq!(parse_digest("sha256%3\u{e9}xyz"), None);
        assert_eq!(parse_reference("ab\u{e9}:x"), None);
        assert_eq!(parse_reference("v1"), Some(Reference::Tag("v1".into())));
        assert_eq!(parse_reference(&d), Some(Reference::Digest(d)));
    }

    #[test]
    fn hashes() {
        assert_eq!(
            sha256_digest(b"{}"),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
