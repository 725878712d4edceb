//! JWT `exp` reader (the token cache's clock): never panics on any token text, and for a
//! payload that is JSON it returns exactly the integer `exp` claim.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        // Any text as a token.
        let _ = azure_containerregistry::fuzzing::token_expiry(&String::from_utf8_lossy(rest));
        return;
    }
    // The bytes as the payload of a JWT.
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rest);
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln");
    let expected = serde_json::from_slice::<serde_json::Value>(rest)
        .ok()
        .and_then(|claims| claims.get("exp").and_then(serde_json::Value::as_i64));
    assert_eq!(
        azure_containerregistry::fuzzing::token_expiry(&token),
        expected
    );
});
