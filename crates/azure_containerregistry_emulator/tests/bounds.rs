//! A hostile client on loopback cannot grow the emulator without a configured bound, and a
//! client that writes its whole body before reading still gets a readable answer.

mod common;

use azure_containerregistry_emulator::{EmulatorOptions, Limits, StorageMode, TlsConfig};
use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn token_options(limits: Limits) -> EmulatorOptions {
    EmulatorOptions {
        limits,
        ..token_auth(false, &[])
    }
}

/// Reads one HTTP/1.1 response (headers and a `Content-Length` body): status and headers text.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        assert!(Instant::now() < deadline, "no response head");
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("read");
        assert!(
            n > 0,
            "connection closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "body cut");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, head)
}

#[tokio::test]
async fn unauthenticated_4_mib_patch_gets_a_readable_challenge_over_http1() {
    let emu = start(token_options(Limits::default())).await;
    let addr = emu.endpoint().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let body = vec![7u8; 4 * 1024 * 1024];
    for round in 0..3 {
        let head = format!(
            "PATCH /v2/big/blobs/uploads/abc-{round} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        // The whole body is written before anything is read, as the Python SDK does.
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
            .write_all(&body)
            .await
            .expect("the server reads the body");
        let (status, headers) = read_response(&mut stream).await;
        assert_eq!(status, 401, "{headers}");
        assert!(
            headers.contains("www-authenticate: bearer realm="),
            "{headers}"
        );
        assert!(!headers.contains("connection: close"), "{headers}");
    }
    // The same connection still serves the next request.
    stream
        .write_all(format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.0, 401);
}

#[tokio::test]
async fn unauthenticated_4_mib_patch_gets_a_challenge_over_http2() {
    let emu = start(token_options(Limits::default())).await;
    let c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for round in 0..3 {
        let resp = c
            .patch(format!(
                "{}/v2/big/blobs/uploads/abc-{round}",
                emu.endpoint()
            ))
            .body(vec![7u8; 4 * 1024 * 1024])
            .send()
            .await
            .expect("an answer, not a reset stream");
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_eq!(resp.status(), 401);
        assert!(header(&resp, "www-authenticate").starts_with("Bearer realm="));
    }
}

#[tokio::test]
async fn early_answer_past_the_drain_limit_says_connection_close() {
    let emu = start(token_options(Limits {
        drain_limit: 1024,
        ..Limits::default()
    }))
    .await;
    let addr = emu.endpoint().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PATCH /v2/big/blobs/uploads/abc HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 65536\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(&[1u8; 65536]).await;
    let (status, headers) = read_response(&mut stream).await;
    assert_eq!(status, 401);
    assert!(headers.contains("connection: close"), "{headers}");
}

#[tokio::test]
async fn early_416_keeps_the_connection_usable() {
    let (_emu, c, base) = fixture().await;
    let addr = base.trim_start_matches("http://").to_owned();
    let location = upload_location(&c, &base, "r").await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    for _ in 0..20 {
        let head = format!(
            "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nContent-Range: 100-199\r\nContent-Length: 100\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&[0u8; 100]).await.unwrap();
        let (status, headers) = read_response(&mut stream).await;
        assert_eq!(status, 416, "{headers}");
    }
}

#[tokio::test]
async fn blob_size_and_memory_budget_are_bounded() {
    let (_emu, c, base) = fixture_with(EmulatorOptions {
        limits: Limits {
            memory_budget: 1024 * 1024,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let endless =
        futures::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![0u8; 64 * 1024])));
    let location = upload_location(&c, &base, "r").await;
    let patch = c
        .patch(format!("{base}{location}"))
        .body(reqwest::Body::wrap_stream(endless));
    expect_code(patch, 413, "SIZE_INVALID").await;
    // The refused bytes went back to the budget: a 512 KiB blob still fits.
    push_blob(&c, &base, "r", &vec![1u8; 512 * 1024]).await;

    let tmp = tempfile::tempdir().unwrap();
    let emu = start(EmulatorOptions {
        storage: StorageMode::Directory(tmp.path().to_path_buf()),
        limits: Limits {
            max_blob_size: 1000,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let base = emu.endpoint();
    let too_big = c
        .post(format!(
            "{base}/v2/r/blobs/uploads/?digest={}",
            sha(&[0u8; 1001])
        ))
        .body(vec![0u8; 1001]);
    expect(too_big, 413).await;
    push_blob(&c, &base, "r", &[0u8; 1000]).await;
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn idle_sessions_expire_hold_no_descriptor_and_are_limited() {
    let tmp = tempfile::tempdir().unwrap();
    let emu = start(EmulatorOptions {
        storage: StorageMode::Directory(tmp.path().to_path_buf()),
        limits: Limits {
            max_upload_sessions: 100,
            upload_idle_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let (c, base) = (client(), emu.endpoint());
    let uploads = format!("{base}/v2/r/blobs/uploads/");
    let before = open_descriptors();
    let mut refused = 0;
    for _ in 0..200 {
        let resp = send(c.post(&uploads)).await;
        match resp.status().as_u16() {
            202 => {}
            429 => refused += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(emu.open_upload_sessions(), 100);
    assert_eq!(refused, 100, "sessions past the limit are refused");
    assert!(
        open_descriptors() < before + 20,
        "idle sessions hold descriptors: {before} -> {}",
        open_descriptors()
    );
    // A sweep forgets the sessions first and removes their files after: wait for both.
    let upload_files = || {
        std::fs::read_dir(tmp.path().join("uploads"))
            .map(|d| d.count())
            .unwrap_or(usize::MAX)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while emu.open_upload_sessions() > 0 || upload_files() > 0 {
        assert!(
            Instant::now() < deadline,
            "idle sessions never expired: {} open, {} files",
            emu.open_upload_sessions(),
            upload_files()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = send(c.post(&uploads)).await;
    assert_eq!(resp.status(), 202, "room again once the idle ones expired");
}

#[tokio::test]
async fn request_log_is_bounded() {
    let emu = start(EmulatorOptions {
        limits: Limits {
            request_log_capacity: 5,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let c = client();
    let long = "x".repeat(60_000);
    for i in 0..20 {
        send(c.get(format!("{}/v2/?i={i}&pad={long}", emu.endpoint()))).await;
    }
    let log = emu.request_log();
    assert_eq!(log.len(), 5);
    assert!(log[4].path_and_query.starts_with("/v2/?i=19&"));
    assert!(log.iter().all(|r| r.path_and_query.len() <= 4096));
}

#[tokio::test]
async fn slow_header_clients_are_cut_and_cannot_starve_new_ones() {
    let emu = start(EmulatorOptions {
        limits: Limits {
            header_read_timeout: Duration::from_millis(300),
            max_connections: 10,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let addr = emu.endpoint().trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..30 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /v2/ HTTP/1.1\r\nX-Slow: 1\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // A slow client is disconnected after the header timeout.
    let mut first = slow.remove(0);
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match first.read(&mut buf).await {
                Ok(0) | Err(_) => return 0,
                Ok(_) => continue,
            }
        }
    })
    .await
    .expect("a slow client is cut off within the header timeout");
    assert_eq!(n, 0);
    // A new client is served while the slow ones hold (then lose) their slots.
    let started = Instant::now();
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        client().get(format!("{}/v2/", emu.endpoint())).send(),
    )
    .await
    .expect("served in time")
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[cfg(unix)]
#[tokio::test]
async fn private_keys_are_owner_only_and_ca_subjects_unique() {
    use std::os::unix::fs::PermissionsExt;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut subjects = Vec::new();
    for dir in [a.path(), b.path()] {
        let emu = start(EmulatorOptions {
            storage: StorageMode::Directory(dir.to_path_buf()),
            tls: Some(TlsConfig::SelfSigned {
                dir: dir.to_path_buf(),
            }),
            ..Default::default()
        })
        .await;
        for key in ["token-signing-key.pem", "tls-key.pem"] {
            let mode = std::fs::metadata(dir.join(key))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
        subjects.push(ca_common_name(&emu.tls_ca_cert_pem().unwrap()));
    }
    assert!(
        subjects[0].starts_with("ACR emulator CA"),
        "{}",
        subjects[0]
    );
    assert_ne!(
        subjects[0], subjects[1],
        "each generated CA has its own subject"
    );
}

/// The CA's common name, found in the certificate's DER after the emulator's prefix.
fn ca_common_name(pem: &str) -> String {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let prefix = b"ACR emulator CA";
    let at = der
        .windows(prefix.len())
        .position(|w| w == prefix)
        .expect("CA common name");
    // The length byte of the UTF8String comes just before the value.
    let len = usize::from(der[at - 1]);
    String::from_utf8_lossy(&der[at..at + len]).into_owned()
}
