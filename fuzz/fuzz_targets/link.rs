//! `Link` header parser (the pagers' next-page URL): never panics; a next link is non-empty and
//! is exactly what the header had between `<` and `>`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match azure_containerregistry::fuzzing::next_link(data) {
        Ok(Some(url)) => {
            assert!(!url.is_empty());
            let text = String::from_utf8_lossy(data);
            assert!(
                text.contains(&format!("<{url}>")),
                "{url:?} is not verbatim in {text:?}"
            );
        }
        Ok(None) => {}
        Err(message) => assert!(!message.is_empty()),
    }
});
