//! `WWW-Authenticate` challenge parser: never panics; a parsed challenge has a realm and
//! well-formed scopes; writing it back as a header and parsing again gives the same challenge;
//! scope canonicalization is idempotent.
#![no_main]

use azure_containerregistry::fuzzing::{canonical, Challenge};
use libfuzzer_sys::fuzz_target;

fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let _ = canonical(header);
    assert_eq!(
        canonical(&canonical(header)),
        canonical(header),
        "canonical is idempotent"
    );

    let Some(challenge) = Challenge::parse(header) else {
        return;
    };
    assert!(
        !challenge.realm.is_empty(),
        "a challenge without realm was accepted: {header:?}"
    );
    for scope in &challenge.scopes {
        assert!(
            !scope.is_empty() && !scope.contains(' '),
            "scope entry {scope:?} from {header:?}"
        );
    }
    assert_eq!(challenge.scope(), challenge.scopes.join(" "));

    // Round trip: the parsed challenge, written as a canonical header, parses to itself.
    let mut written = format!("Bearer realm={}", quote(&challenge.realm));
    if let Some(service) = &challenge.service {
        written.push_str(&format!(",service={}", quote(service)));
    }
    if !challenge.scopes.is_empty() {
        written.push_str(&format!(",scope={}", quote(&challenge.scope())));
    }
    if let Some(error) = &challenge.error {
        written.push_str(&format!(",error={}", quote(error)));
    }
    let again = Challenge::parse(&written);
    assert_eq!(
        again.as_ref(),
        Some(&challenge),
        "{header:?} -> {written:?}"
    );
});
