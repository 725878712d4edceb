//! Input validators: repository names, tags, digests, manifest references and endpoints agree
//! with independent implementations of the OCI distribution grammar; accepted endpoints parse
//! again to themselves; scope prediction on any URL of an accepted endpoint never panics.
#![no_main]

use azure_containerregistry::fuzzing::{
    canonical, is_loopback, parse_endpoint, predict_scope, validate_digest,
    validate_repository_name, validate_tag, Reference,
};
use azure_containerregistry::InvalidArgument;
use libfuzzer_sys::fuzz_target;

fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, as a tokenizer: alternating runs of alphanumerics and
/// separators, starting and ending with alphanumerics.
fn oracle_component(c: &str) -> bool {
    let mut runs: Vec<(bool, &str)> = Vec::new();
    let bytes = c.as_bytes();
    let mut start = 0;
    for i in 1..=bytes.len() {
        if i == bytes.len() || lower_alnum(bytes[i]) != lower_alnum(bytes[start]) {
            runs.push((lower_alnum(bytes[start]), &c[start..i]));
            start = i;
        }
    }
    if runs.is_empty() || !runs[0].0 || !runs[runs.len() - 1].0 {
        return false;
    }
    runs.iter().filter(|(alnum, _)| !alnum).all(|(_, sep)| {
        *sep == "."
            || *sep == "_"
            || *sep == "__"
            || (!sep.is_empty() && sep.bytes().all(|b| b == b'-'))
    })
}

fn oracle_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(oracle_component)
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn oracle_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    tag.chars().count() <= 128
        && (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// `sha256:[0-9a-f]{64}` or `sha512:[0-9a-f]{128}`.
fn oracle_digest(digest: &str) -> bool {
    let hex_of =
        |s: &str, n: usize| s.len() == n && s.chars().all(|c| "0123456789abcdef".contains(c));
    match digest.strip_prefix("sha256:") {
        Some(hex) => hex_of(hex, 64),
        None => digest
            .strip_prefix("sha512:")
            .is_some_and(|hex| hex_of(hex, 128)),
    }
}

fn invalid(result: azure_core::Result<()>) -> Option<&'static str> {
    result.err().map(|e| {
        e.downcast_ref::<InvalidArgument>()
            .map(|a| a.argument)
            .unwrap_or_else(|| panic!("a refused input must be an InvalidArgument: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    let name = invalid(validate_repository_name(text));
    assert_eq!(
        name.is_none(),
        oracle_repository(text),
        "repository name {text:?}"
    );
    assert!(name.is_none_or(|a| a == "repository_name"));

    let tag = invalid(validate_tag(text));
    assert_eq!(tag.is_none(), oracle_tag(text), "tag {text:?}");
    assert!(tag.is_none_or(|a| a == "tag"));

    let digest = invalid(validate_digest(text));
    assert_eq!(digest.is_none(), oracle_digest(text), "digest {text:?}");
    assert!(digest.is_none_or(|a| a == "digest"));

    match Reference::parse(text) {
        Ok(Reference::Tag(t)) => assert!(oracle_tag(text) && t == text, "{text:?}"),
        Ok(Reference::Digest(d)) => assert!(oracle_digest(text) && d == text, "{text:?}"),
        Err(e) => {
            assert!(
                !oracle_tag(text) && !oracle_digest(text),
                "{text:?} refused: {e}"
            );
            assert!(e.downcast_ref::<InvalidArgument>().is_some(), "{e}");
        }
    }

    match parse_endpoint(text) {
        Ok(url) => {
            assert!(
                matches!(url.scheme(), "http" | "https"),
                "{text:?} -> {url}"
            );
            assert!(
                url.host_str().is_some_and(|h| !h.is_empty()),
                "{text:?} -> {url}"
            );
            assert!(url.query().is_none() && url.fragment().is_none() && url.username().is_empty());
            assert_eq!(url.path(), "/", "{text:?} -> {url}");
            let again =
                parse_endpoint(url.as_str()).unwrap_or_else(|e| panic!("{text:?} -> {url} -> {e}"));
            assert_eq!(again, url, "{text:?}");
            let _ = is_loopback(&url);
            // Any path the registry may link to, with any method: scope prediction survives.
            for path in ["/v2/", "/acr/v1/", "/v2/a/blobs/uploads/?from="] {
                if let Ok(target) = url.join(&format!("{path}{text}")) {
                    for method in [
                        http::Method::GET,
                        http::Method::POST,
                        http::Method::DELETE,
                        http::Method::PATCH,
                    ] {
                        if let Some(scope) = predict_scope(&method, &target) {
                            assert_eq!(canonical(&canonical(&scope)), canonical(&scope));
                        }
                    }
                }
            }
        }
        Err(e) => assert!(
            e.downcast_ref::<InvalidArgument>()
                .is_some_and(|a| a.argument == "endpoint"),
            "{e}"
        ),
    }
});
