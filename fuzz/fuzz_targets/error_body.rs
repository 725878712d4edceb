//! Error-body parser: any status and any body (JSON of any shape, text, binary) gives an error
//! whose message names the status and the ACR error code when there is one. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    // Error statuses mostly, but any u16 must be survivable.
    let raw = u16::from_le_bytes([data[0], data[1]]);
    let status = if raw & 0x8000 == 0 {
        400 + raw % 200
    } else {
        raw
    };
    let body = &data[2..];
    let (code, message) = azure_containerregistry::fuzzing::error_body(status, body);
    assert!(
        message.contains(&status.to_string()),
        "{message:?} does not name {status}"
    );
    if let Some(code) = code {
        assert!(
            message.contains(&code),
            "{message:?} does not name the code {code:?}"
        );
    }
});
