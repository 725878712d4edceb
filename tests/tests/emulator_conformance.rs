//! The emulator driven by real, independent clients:
//! - `skopeo` (containers/image, Go) copies an OCI image layout in and out, inspects, lists
//!   tags and deletes;
//! - Microsoft's Python SDK (`azure-containerregistry`, from the venv in `ACR_TEST_PYTHON`)
//!   runs `tests/python/conformance.py` over https and over http;
//! - Debian's `docker-registry` with `auth.token` trusts tokens the emulator issues.
//!
//! The skopeo and Python checks also run against docker-registry (the reference registry), so
//! a failure there points at the test, not the emulator.
//!
//! Without `ACR_TEST_REQUIRE_REAL=1` a missing skopeo/python/docker-registry skips a test
//! (with a message); with it (as `cargo xtask test` runs) it fails.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use acr_test_support::{
    python, random_bytes, sha256_digest, skip_or_fail, DockerRegistry, DockerRegistryOptions,
    FaultProxy, TokenAuth, DOCKER_REGISTRY_BIN,
};
use azure_containerregistry_emulator::{AuthMode, Emulator, EmulatorOptions, TlsConfig};
use serde_json::{json, Value};

const SKOPEO_TIMEOUT: Duration = Duration::from_secs(120);
const PYTHON_TIMEOUT: Duration = Duration::from_secs(300);

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn skopeo(test: &str) -> Option<PathBuf> {
    let p = find_in_path("skopeo");
    if p.is_none() {
        skip_or_fail(test, "skopeo");
    }
    p
}

fn have_docker_registry(test: &str) -> bool {
    let ok = Path::new(DOCKER_REGISTRY_BIN).is_file();
    if !ok {
        skip_or_fail(test, "docker-registry");
    }
    ok
}

fn sdk_python(test: &str) -> Option<PathBuf> {
    let p = python();
    if p.is_none() {
        skip_or_fail(
            test,
            "a Python with azure-containerregistry (ACR_TEST_PYTHON)",
        );
    }
    p
}

/// Runs a command with a time limit (killed on timeout), loopback traffic bypassing proxies.
async fn run(program: &Path, args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Output {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(envs.iter().copied())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let shown = format!("{} {}", program.display(), args.join(" "));
    match tokio::time::timeout(limit, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("could not run {shown}: {e}"),
        Err(_) => panic!("{shown} did not finish within {limit:?} (killed)"),
    }
}

fn text(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn run_ok(program: &Path, args: &[&str]) -> Vec<u8> {
    let out = run(program, args, &[], SKOPEO_TIMEOUT).await;
    assert!(
        out.status.success(),
        "{} {} failed\n{}",
        program.display(),
        args.join(" "),
        text(&out)
    );
    out.stdout
}

// ---------------------------------------------------------------------------------------------
// A small OCI image layout written by hand.

/// What [`write_oci_layout`] wrote.
struct Image {
    manifest: Vec<u8>,
    manifest_digest: String,
    config_digest: String,
    layer_digest: String,
}

/// A one-file ustar archive (uncompressed), so the layer is a real tar.
fn tar_with_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], off: usize, s: &[u8]| h[off..off + s.len()].copy_from_slice(s);
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, b"0000644\0");
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{:011o}\0", content.len()).as_bytes());
    put(&mut h, 136, b"00000000000\0");
    put(&mut h, 148, b"        ");
    h[156] = b'0';
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn write_blob(dir: &Path, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let hex = digest.trim_start_matches("sha256:");
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(hex), data).unwrap();
    digest
}

fn write_oci_layout(dir: &Path, tag: &str) -> Image {
    let layer = tar_with_one_file("hello.bin", &random_bytes(300_000));
    let layer_digest = write_blob(dir, &layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap();
    let config_digest = write_blob(dir, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))
    .unwrap();
    let manifest_digest = write_blob(dir, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Image {
        manifest,
        manifest_digest,
        config_digest,
        layer_digest,
    }
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs")
        .join("sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// skopeo copy in, inspect (raw and parsed), list-tags, copy out, compare, delete.
/// `host` is `127.0.0.1:PORT`.
async fn skopeo_round_trip(skopeo: &Path, host: &str) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let back = work.path().join("back");
    let img = write_oci_layout(&src, "v1");
    let remote = format!("docker://{host}/conformance/img:v1");
    let src_ref = format!("oci:{}:v1", src.display());
    let back_ref = format!("oci:{}:v1", back.display());

    run_ok(
        skopeo,
        &[
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-no-creds",
            &src_ref,
            &remote,
        ],
    )
    .await;

    let inspect_raw = [
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--no-creds",
        &remote,
    ];
    let raw = run_ok(skopeo, &inspect_raw).await;
    assert_eq!(
        raw,
        img.manifest,
        "manifest bytes changed: {}",
        String::from_utf8_lossy(&raw)
    );

    let inspected: Value = serde_json::from_slice(
        &run_ok(
            skopeo,
            &["inspect", "--tls-verify=false", "--no-creds", &remote],
        )
        .await,
    )
    .unwrap();
    assert_eq!(
        inspected["Digest"],
        img.manifest_digest.as_str(),
        "{inspected}"
    );
    assert_eq!(inspected["Architecture"], "amd64", "{inspected}");
    assert_eq!(
        inspected["Layers"],
        json!([img.layer_digest]),
        "{inspected}"
    );

    let config = run_ok(
        skopeo,
        &[
            "inspect",
            "--config",
            "--raw",
            "--tls-verify=false",
            "--no-creds",
            &remote,
        ],
    )
    .await;
    assert_eq!(sha256_digest(&config), img.config_digest);

    let tags: Value = serde_json::from_slice(
        &run_ok(
            skopeo,
            &[
                "list-tags",
                "--tls-verify=false",
                "--no-creds",
                &format!("docker://{host}/conformance/img"),
            ],
        )
        .await,
    )
    .unwrap();
    assert_eq!(tags["Tags"], json!(["v1"]), "{tags}");

    run_ok(
        skopeo,
        &[
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-no-creds",
            &remote,
            &back_ref,
        ],
    )
    .await;
    let index: Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"],
        img.manifest_digest.as_str(),
        "{index}"
    );
    for d in [&img.manifest_digest, &img.config_digest, &img.layer_digest] {
        let a = std::fs::read(blob_path(&src, d)).unwrap();
        let b = std::fs::read(blob_path(&back, d))
            .unwrap_or_else(|e| panic!("blob {d} missing after copy back: {e}"));
        assert!(a == b, "blob {d} differs after the round trip");
    }

    run_ok(
        skopeo,
        &["delete", "--tls-verify=false", "--no-creds", &remote],
    )
    .await;
    let out = run(skopeo, &inspect_raw, &[], SKOPEO_TIMEOUT).await;
    assert!(
        !out.status.success(),
        "inspect after delete succeeded\n{}",
        text(&out)
    );
}

fn host_of(endpoint: &str) -> &str {
    endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_round_trip_emulator() {
    let Some(skopeo) = skopeo("skopeo_round_trip_emulator") else {
        return;
    };
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    skopeo_round_trip(&skopeo, host_of(&emu.endpoint())).await;
    // The blob GETs went through the 307 to the storage listener.
    let log = emu.request_log();
    assert!(
        log.iter()
            .any(|r| r.method == "GET" && r.path_and_query.contains("/blobs/") && r.status == 307),
        "expected redirected blob GETs: {log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_round_trip_docker_registry_reference() {
    let Some(skopeo) = skopeo("skopeo_round_trip_docker_registry_reference") else {
        return;
    };
    if !have_docker_registry("skopeo_round_trip_docker_registry_reference") {
        return;
    }
    let reg = DockerRegistry::start().unwrap();
    skopeo_round_trip(&skopeo, host_of(&reg.endpoint())).await;
}

/// The same round trip through a pass-through [`FaultProxy`]: proves the proxy carries real
/// registry traffic (relative upload `Location`s keep the client on the proxy).
#[tokio::test(flavor = "multi_thread")]
async fn skopeo_round_trip_through_fault_proxy() {
    let Some(skopeo) = skopeo("skopeo_round_trip_through_fault_proxy") else {
        return;
    };
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let proxy = FaultProxy::start(&emu.endpoint()).await.unwrap();
    skopeo_round_trip(&skopeo, host_of(&proxy.endpoint())).await;
    let seen = proxy.requests();
    assert!(
        seen.iter()
            .any(|r| r.method == "PUT" && r.path_and_query.contains("/blobs/uploads/")),
        "upload completion did not go through the proxy: {seen:#?}"
    );
    assert!(
        seen.iter().all(|r| r.status.is_some()),
        "unanswered requests: {seen:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Python SDK.

fn conformance_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join("conformance.py")
}

async fn run_python(python: &Path, endpoint: &str, mode: &str, ca_bundle: Option<&Path>) {
    run_python_with(python, endpoint, mode, ca_bundle, None).await;
}

async fn run_python_with(
    python: &Path,
    endpoint: &str,
    mode: &str,
    ca_bundle: Option<&Path>,
    aad_token: Option<&str>,
) {
    let script = conformance_script();
    let mut envs = vec![("PYTHONUNBUFFERED", "1")];
    if let Some(token) = aad_token {
        envs.push(("ACR_TEST_AAD_TOKEN", token));
    }
    let ca = ca_bundle.map(|p| p.to_string_lossy().into_owned());
    if let Some(ca) = &ca {
        envs.push(("REQUESTS_CA_BUNDLE", ca));
    }
    let out = run(
        python,
        &[&script.to_string_lossy(), endpoint, mode],
        &envs,
        PYTHON_TIMEOUT,
    )
    .await;
    let shown = text(&out);
    eprintln!("{shown}");
    assert!(
        out.status.success(),
        "conformance.py {endpoint} {mode} failed\n{shown}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("all checks passed"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_against_emulator_https() {
    let Some(python) = sdk_python("python_sdk_against_emulator_https") else {
        return;
    };
    let tls_dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(EmulatorOptions {
        tls: Some(TlsConfig::SelfSigned {
            dir: tls_dir.path().to_path_buf(),
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(emu.endpoint().starts_with("https://"), "{}", emu.endpoint());
    let ca = tls_dir.path().join("sdk-ca.pem");
    std::fs::write(
        &ca,
        emu.tls_ca_cert_pem().expect("self-signed mode has a CA"),
    )
    .unwrap();
    run_python(&python, &emu.endpoint(), "full", Some(&ca)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_against_emulator_http() {
    let Some(python) = sdk_python("python_sdk_against_emulator_http") else {
        return;
    };
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    run_python(&python, &emu.endpoint(), "full", None).await;
}

/// With `--auth` the SDK sends each request without a token first and writes its whole body
/// (4 MiB upload chunks) before reading the 401: the emulator must answer readably.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_against_emulator_with_auth() {
    let Some(python) = sdk_python("python_sdk_against_emulator_with_auth") else {
        return;
    };
    let emu = Emulator::start(EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull: false,
            accepted_aad_tokens: vec!["conformance-aad-token".into()],
        },
        ..Default::default()
    })
    .await
    .unwrap();
    run_python_with(
        &python,
        &emu.endpoint(),
        "full",
        None,
        Some("conformance-aad-token"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_content_against_docker_registry_reference() {
    let test = "python_sdk_content_against_docker_registry_reference";
    let Some(python) = sdk_python(test) else {
        return;
    };
    if !have_docker_registry(test) {
        return;
    }
    let reg = DockerRegistry::start().unwrap();
    run_python(&python, &reg.endpoint(), "content-only", None).await;
}

// ---------------------------------------------------------------------------------------------
// docker-registry trusting the emulator's tokens.

async fn anonymous_token(http: &reqwest::Client, emu: &Emulator, scope: &str) -> Option<String> {
    let resp = http
        .post(format!("{}/oauth2/token", emu.endpoint()))
        .form(&[
            ("grant_type", "password"),
            ("service", &emu.service()),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    if !resp.status().is_success() {
        return None;
    }
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_registry_accepts_emulator_tokens() {
    if !have_docker_registry("docker_registry_accepts_emulator_tokens") {
        return;
    }
    let emu = Emulator::start(EmulatorOptions {
        auth: AuthMode::Token {
            anonymous_pull: true,
            accepted_aad_tokens: vec![],
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let realm = format!("{}/oauth2/token", emu.endpoint());
    let reg = DockerRegistry::start_with(DockerRegistryOptions {
        token_auth: Some(TokenAuth {
            realm: realm.clone(),
            service: emu.service(),
            issuer: emu.issuer(),
            root_cert_bundle_pem: emu.token_signing_cert_pem(),
        }),
        ..Default::default()
    })
    .unwrap();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = reg.endpoint();

    // 1. Challenge names the emulator as realm.
    let resp = http.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(&format!(r#"realm="{realm}""#))
            && challenge.contains(&format!(r#"service="{}""#, emu.service())),
        "{challenge}"
    );

    // 2. An anonymous pull token from the emulator is accepted for pull.
    let token = anonymous_token(&http, &emu, "repository:x:pull")
        .await
        .expect("anonymous pull token");
    let resp = http
        .get(format!("{base}/v2/x/tags/list"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(
        status,
        404,
        "docker-registry rejected the emulator's token: {body}\nregistry log:\n{}",
        reg.log()
    );
    assert!(body.contains("NAME_UNKNOWN"), "{body}");

    // 3. Push is refused: without a token, with the pull token, and with whatever the
    //    emulator gives an anonymous caller asking for push.
    let push = |tok: Option<String>| {
        let mut req = http.post(format!("{base}/v2/x/blobs/uploads/"));
        if let Some(t) = tok {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let resp = push(None).await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("push"), "{challenge}");
    let resp = push(Some(token.clone())).await.unwrap();
    assert_eq!(resp.status(), 401, "push with a pull token");
    let push_token = anonymous_token(&http, &emu, "repository:x:pull,push").await;
    if let Some(t) = push_token {
        let resp = push(Some(t)).await.unwrap();
        assert!(
            resp.status() == 401 || resp.status() == 403,
            "anonymous push was accepted: {}",
            resp.status()
        );
    }
}
