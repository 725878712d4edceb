//! Small helpers shared by tests.

use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding port 0 and closing the listener, so another process can take it
/// before the caller binds it; callers that start servers should retry on "address in use".
/// Returns 0 if the loopback interface cannot be bound at all (the following bind then fails
/// with a clear error, or binds an ephemeral port).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// `n` pseudo-random bytes from a fixed seed: the same `n` always gives the same bytes, so test
/// data (and its digest) is reproducible. Not cryptographic.
pub fn random_bytes(n: usize) -> Vec<u8> {
    random_bytes_seeded(n, 0x5EED_ACE5_0000_0001)
}

/// Like [`random_bytes`] with a caller-chosen seed (different seeds give different data).
pub fn random_bytes_seeded(n: usize, seed: u64) -> Vec<u8> {
    // splitmix64: tiny, fast and good enough for test payloads.
    let mut state = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// The first value of header `name` (any case) in a list of `(name, value)` pairs.
pub(crate) fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The 64 lowercase hex digits of the SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The OCI digest of `data`: `sha256:` followed by 64 lowercase hex digits.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// Runs `body` with a time limit of `seconds`, so that a hang fails the test instead of
/// blocking the run.
///
/// # Panics
/// When `body` takes longer.
pub async fn bounded<F: Future>(seconds: u64, body: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(seconds), body)
        .await
        .unwrap_or_else(|_| panic!("the test took longer than {seconds} s"))
}

/// True when `ACR_TEST_REQUIRE_REAL` is set to something other than empty or `0`: tests that
/// need external tools (docker-registry, skopeo, the Python SDK) must then fail instead of
/// skipping. `cargo xtask test` sets it.
pub fn require_real() -> bool {
    std::env::var("ACR_TEST_REQUIRE_REAL").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The Python interpreter of the venv that has `azure-containerregistry` installed, from
/// `ACR_TEST_PYTHON` (set by `cargo xtask test`), if that variable names an existing file.
pub fn python() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("ACR_TEST_PYTHON")?);
    p.is_file().then_some(p)
}

/// Reports that a test cannot run because `missing` is not available: prints a skip message,
/// or panics when [`require_real`] is true. Call it and `return` from the test.
///
/// # Panics
/// When `ACR_TEST_REQUIRE_REAL` is set, so that CI never silently skips.
pub fn skip_or_fail(test: &str, missing: &str) {
    let hint = "run `cargo xtask test`, which installs it";
    if require_real() {
        panic!("{test}: {missing} is not available and ACR_TEST_REQUIRE_REAL is set ({hint})");
    }
    eprintln!("SKIPPED {test}: {missing} is not available ({hint})");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_is_deterministic() {
        let a = random_bytes(1000);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, random_bytes(1000));
        assert_eq!(&random_bytes(1003)[..1000], &a[..]);
        assert_ne!(random_bytes_seeded(64, 1), random_bytes_seeded(64, 2));
        // Not degenerate.
        assert!(a.iter().filter(|&&b| b == a[0]).count() < 50);
    }

    #[test]
    fn digest_of_empty() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha256_digest(b"x"), format!("sha256:{}", sha256_hex(b"x")));
    }

    #[tokio::test]
    async fn bounded_returns_the_output() {
        assert_eq!(bounded(5, async { 7 }).await, 7);
    }

    #[tokio::test]
    #[should_panic(expected = "longer than 0 s")]
    async fn bounded_panics_on_a_hang() {
        bounded(0, std::future::pending::<()>()).await;
    }

    #[test]
    fn free_port_is_bindable() {
        let p = free_port();
        assert_ne!(p, 0);
        assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok());
    }
}
