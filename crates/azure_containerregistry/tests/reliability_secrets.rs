//! Secrets: the `Debug` output of clients, options, errors and token results, and everything
//! the clients log through `tracing` at TRACE level, contain none of the tokens of a session:
//! the Microsoft Entra token, the ACR refresh token, and each ACR access token the client used
//! (read back through the client's public token API, which shares the client's cache).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use azure_containerregistry::ContainerRegistryClient;
use common::*;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// The secret and, for JWTs, its signature segment (unique to the token) so that a partial
/// leak is caught too.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string()];
    if let Some(signature) = secret
        .rsplit('.')
        .next()
        .filter(|s| s.len() >= 16 && *s != secret)
    {
        out.push(signature.to_string());
    }
    out
}

#[test]
fn no_token_in_debug_output_or_traces() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,azure_containerregistry_emulator=off,axum=off,tower=off,tower_http=off",
        ))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber of this test binary");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let emulator = token_emulator(false, None).await;
        bounded(60, async {
            let endpoint = emulator.endpoint();
            let options = fast_options(1);
            let registry = registry_client(&endpoint, Some(credential()), options.clone());
            let content = content_client(
                &endpoint,
                "secrets/app",
                Some(credential()),
                options.clone(),
            );
            let mut shown = Vec::new();

            // A session touching every token path: push, pull, metadata, catalog, deletes.
            let config = content
                .upload_blob_bytes(&b"{}"[..], None)
                .await
                .expect("upload");
            let layer = content
                .upload_blob(&vec![9u8; 300_000][..], None)
                .await
                .expect("upload");
            let manifest = oci_manifest(&config, &[&layer]);
            let set = content
                .set_manifest(&manifest, tagged("v1"))
                .await
                .expect("set");
            let got = content.get_manifest("v1", None).await.expect("get");
            let stream = content
                .download_blob(&layer.digest, None)
                .await
                .expect("download");
            shown.push(format!("{stream:?}"));
            stream.collect_bytes().await.expect("verified");
            let properties = registry
                .repository("secrets/app")
                .get_properties(None)
                .await
                .expect("properties")
                .into_model()
                .unwrap();
            let names: Vec<String> = items(registry.list_repository_names(None)).await;
            let tag = registry
                .artifact("secrets/app", "v1")
                .get_tag_properties("v1", None)
                .await
                .expect("tag")
                .into_model()
                .unwrap();
            shown.extend([
                format!("{got:?}"),
                format!("{properties:?}"),
                format!("{names:?}"),
                format!("{tag:?}"),
                format!("{set:?}"),
            ]);

            // Errors: not found, unauthorized (a rejected credential), bad input.
            let errors = [
                content
                    .get_manifest("missing", None)
                    .await
                    .expect_err("404"),
                registry
                    .repository("nope")
                    .get_properties(None)
                    .await
                    .expect_err("404"),
                ContainerRegistryClient::new(
                    &endpoint,
                    // A token the emulator does not accept.
                    Some(Arc::new(TestCredential::new(
                        "rejected-aad-token-never-logged",
                    ))),
                    Some(options.clone()),
                )
                .expect("client")
                .repository("secrets/app")
                .get_properties(None)
                .await
                .expect_err("401"),
                content
                    .get_manifest("Bad Tag", None)
                    .await
                    .expect_err("invalid"),
            ];
            for e in &errors {
                shown.push(format!("{e:?}"));
                shown.push(format!("{e}"));
                shown.push(format!("{e:#}"));
            }

            // The tokens: refresh, and the access token of each scope the session used.
            let refresh = registry
                .get_acr_refresh_token(None)
                .await
                .expect("refresh token");
            let mut secrets = vec![
                AAD_TOKEN.to_string(),
                "rejected-aad-token-never-logged".to_string(),
                refresh.refresh_token.secret().to_string(),
            ];
            shown.push(format!("{refresh:?}"));
            for scope in [
                "repository:secrets/app:pull,push",
                "repository:secrets/app:pull",
                "repository:secrets/app:metadata_read",
                "repository:nope:metadata_read",
                "registry:catalog:*",
            ] {
                let access = registry
                    .get_acr_access_token(scope, None)
                    .await
                    .expect("access token");
                shown.push(format!("{access:?}"));
                secrets.push(access.access_token.secret().to_string());
            }
            shown.extend([
                format!("{registry:?}"),
                format!("{content:?}"),
                format!("{:?}", registry.repository("secrets/app")),
                format!("{:?}", registry.artifact("secrets/app", "v1")),
                format!("{options:?}"),
            ]);
            // Clients after use (warm caches) are Debug-printed too.
            shown.push(format!("{:#?}", content.clone()));

            let traces = buffer.text();
            assert!(
                traces.contains("acr.request") || traces.contains("acr.operation"),
                "the subscriber captured the clients' traces"
            );
            for secret in &secrets {
                for form in forms(secret) {
                    for text in &shown {
                        assert!(
                            !text.contains(&form),
                            "a token appears in Debug/Display output: {text}"
                        );
                    }
                    assert!(!traces.contains(&form), "a token appears in the traces");
                }
            }
            eprintln!(
                "{} bytes of traces checked against {} secrets",
                traces.len(),
                secrets.len()
            );
        })
        .await;
    });
}
