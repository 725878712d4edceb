//! Directory storage (restart survival, atomic uploads) and TLS.

mod common;

use azure_containerregistry_emulator::{EmulatorOptions, StorageMode, TlsConfig};
use common::*;

fn dir_options(dir: &std::path::Path) -> EmulatorOptions {
    EmulatorOptions {
        storage: StorageMode::Directory(dir.to_path_buf()),
        redirect_blobs: false,
        ..Default::default()
    }
}

#[tokio::test]
async fn directory_mode_survives_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let c = client();
    let (digest, bytes, cert) = {
        let emu = start(dir_options(tmp.path())).await;
        let base = emu.endpoint();
        let d = push_image(&c, &base, "library/hello", "v1", "amd64").await;
        let tag = format!("{base}/acr/v1/library%2Fhello/_tags/v1");
        send(patch_attrs(&c, &tag, r#"{"deleteEnabled":false}"#)).await;
        let bytes = manifest_bytes(&c, &base, "library/hello", "v1").await;
        let cert = emu.token_signing_cert_pem();
        emu.shutdown().await;
        (d, bytes, cert)
    };
    assert!(tmp.path().join("blobs/sha256").join(&digest[7..]).is_file());
    let emu = start(dir_options(tmp.path())).await;
    let base = emu.endpoint();
    let resp = expect(c.get(format!("{base}/v2/library/hello/manifests/v1")), 200).await;
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    assert_eq!(resp.bytes().await.unwrap(), bytes);
    let tag = get_json(c.get(format!("{base}/acr/v1/library%2Fhello/_tags/v1"))).await;
    assert_eq!(tag["tag"]["changeableAttributes"]["deleteEnabled"], false);
    assert_eq!(
        emu.token_signing_cert_pem(),
        cert,
        "signing key persists with the data dir"
    );
    // New writes still get later timestamps than the restored ones.
    let repo = format!("{base}/acr/v1/library%2Fhello");
    let before = get_json(c.get(&repo)).await;
    push_image(&c, &base, "library/hello", "v2", "amd64").await;
    let after = get_json(c.get(&repo)).await;
    assert!(after["lastUpdateTime"].as_str().unwrap() > before["lastUpdateTime"].as_str().unwrap());
}

#[tokio::test]
async fn streamed_upload_to_disk_and_failed_upload_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (_emu, c, base) = fixture_with(dir_options(tmp.path())).await;
    // 8 MiB streamed in 64 KiB chunks.
    let chunk: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut whole = Vec::new();
    for _ in 0..128 {
        whole.extend_from_slice(&chunk);
    }
    let digest = sha(&whole);
    let location = upload_location(&c, &base, "big").await;
    let stream =
        futures::stream::iter((0..128).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let patch = c
        .patch(format!("{base}{location}"))
        .body(reqwest::Body::wrap_stream(stream));
    let resp = expect(patch, 202).await;
    assert_eq!(header(&resp, "range"), format!("0-{}", whole.len() - 1));
    let location = header(&resp, "location");
    expect(c.put(format!("{base}{location}&digest={digest}")), 201).await;
    let on_disk = std::fs::read(tmp.path().join("blobs/sha256").join(&digest[7..])).unwrap();
    assert_eq!(on_disk.len(), whole.len());
    let tail = c
        .get(format!("{base}/v2/big/blobs/{digest}"))
        .header("range", "bytes=8388600-");
    let resp = expect(tail, 206).await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &whole[8_388_600..]);

    let location = upload_location(&c, &base, "big").await;
    let mismatch = c
        .put(format!("{base}{location}&digest={}", sha(b"other")))
        .body("payload");
    expect(mismatch, 400).await;
    assert_eq!(
        std::fs::read_dir(tmp.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );
    assert!(!tmp
        .path()
        .join("blobs/sha256")
        .join(&sha(b"payload")[7..])
        .exists());
}

#[tokio::test]
async fn self_signed_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let emu = start(EmulatorOptions {
        tls: Some(TlsConfig::SelfSigned {
            dir: tmp.path().to_path_buf(),
        }),
        ..Default::default()
    })
    .await;
    assert!(emu.endpoint().starts_with("https://127.0.0.1:"));
    assert!(emu.storage_endpoint().starts_with("https://"));
    let ca = reqwest::Certificate::from_pem(emu.tls_ca_cert_pem().unwrap().as_bytes()).unwrap();
    let c = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let d = push_blob(&c, &emu.endpoint(), "secure", b"over tls").await;
    // The redirect to the (TLS) storage listener is followed by reqwest.
    let resp = expect(
        c.get(format!("{}/v2/secure/blobs/{d}", emu.endpoint())),
        200,
    )
    .await;
    assert_eq!(resp.text().await.unwrap(), "over tls");
    // An untrusting client fails the handshake.
    assert!(reqwest::Client::new()
        .get(format!("{}/v2/", emu.endpoint()))
        .send()
        .await
        .is_err());
}
