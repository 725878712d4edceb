//! The client generated from the imported upstream hand-written spec
//! (`stable-2021-07-01-handwritten`, by `cargo xtask generate`) compiles and sends requests.

#[allow(
    missing_docs,
    clippy::all,
    unused_imports,
    dead_code,
    mismatched_lifetime_syntaxes,
    unused_mut
)]
#[rustfmt::skip]
#[path = "imported/handwritten_generated.rs"]
mod generated;

mod hooks {
    pub use azure_containerregistry_rest::hooks::ClientState;
}

impl progenitor_client::ClientHooks<hooks::ClientState> for generated::Client {}

#[tokio::test]
async fn imported_client_compiles_and_talks_http() {
    // A closed loopback port: the call must fail with a communication error, proving the
    // generated method built and sent a request.
    let port = acr_test_support::free_port();
    let client = generated::Client::new_with_client(
        &format!("http://127.0.0.1:{port}"),
        reqwest::Client::new(),
        hooks::ClientState::new(),
    );
    let err = client.check_docker_v2_support().await.unwrap_err();
    assert!(
        matches!(err, progenitor_client::Error::CommunicationError(_)),
        "{err:?}"
    );
    // Every operation is there (a sample of each group).
    drop(client.get_repositories(None, None));
    drop(client.get_manifest("a", "b", None));
    drop(client.get_referrers("a", "sha256:00", None));
}
