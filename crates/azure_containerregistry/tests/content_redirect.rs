//! Blob downloads redirected (307) to a storage host are followed without `Authorization`:
//! the emulator's storage listener rejects any request that carries one.

mod common;

use acr_test_support::{random_bytes_seeded, sha256_digest};
use azure_containerregistry::{DownloadBlobOptions, UploadBlobOptions};
use azure_containerregistry_emulator::Listener;
use common::*;

#[tokio::test]
async fn redirect_to_storage_drops_authorization() {
    let emulator = token_emulator(false, None).await;
    bounded(60, async {
        let content = client_with_credential(&emulator.endpoint(), "redirect/demo");
        let data = random_bytes_seeded(2 * 1024 * 1024 + 5, 30);
        // Chunked upload in token mode: the POST gets the pull,push token, the PATCHes reuse it.
        let options = UploadBlobOptions {
            chunk_size: Some(512 * 1024),
            ..Default::default()
        };
        let blob = content.upload_blob(&data[..], Some(options)).await.unwrap();
        assert_eq!(blob.digest, sha256_digest(&data));

        emulator.clear_request_log();
        let back = download_all(&content, &blob.digest).await;
        assert!(back == data);
        let parallel = DownloadBlobOptions {
            concurrency: Some(3),
            range_size: Some(700 * 1024),
            ..Default::default()
        };
        let back = content
            .download_blob(&blob.digest, Some(parallel))
            .await
            .unwrap()
            .collect_bytes()
            .await
            .unwrap();
        assert!(back == data);

        let log = emulator.request_log();
        let redirects: Vec<_> = log
            .iter()
            .filter(|r| r.listener == Listener::Registry && r.method == "GET" && r.status == 307)
            .collect();
        assert_eq!(
            redirects.len(),
            4,
            "one redirect per GET (1 sequential + 3 ranges): {log:#?}"
        );
        assert!(
            redirects.iter().all(|r| r.has_authorization),
            "the registry GET is authenticated"
        );
        let storage: Vec<_> = log
            .iter()
            .filter(|r| r.listener == Listener::Storage)
            .collect();
        assert_eq!(storage.len(), redirects.len(), "{log:#?}");
        assert!(
            storage.iter().all(|r| !r.has_authorization),
            "no Authorization to storage: {storage:#?}"
        );
        assert!(
            storage.iter().all(|r| r.status == 200 || r.status == 206),
            "{storage:#?}"
        );
        assert!(
            storage.iter().any(|r| r.status == 206),
            "ranges are forwarded to storage"
        );

        // Without a credential, this registry refuses.
        let anonymous = client(&emulator.endpoint(), "redirect/demo");
        let e = anonymous
            .download_blob(&blob.digest, None)
            .await
            .unwrap_err();
        assert_eq!(
            e.http_status(),
            Some(azure_core::http::StatusCode::Unauthorized)
        );
    })
    .await;
}
