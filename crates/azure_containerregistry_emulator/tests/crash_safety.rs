//! Crash safety of `--data-dir`: the binary is SIGKILLed at random moments while pushes, tags
//! and deletes run; after each restart every acknowledged write is there and nothing
//! half-written is visible.

mod common;

use common::{enc, sha, OCI_CONFIG, OCI_MANIFEST};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REPOS: usize = 3;
const WORKERS: usize = 8;
const ROUNDS: usize = 5;

/// What the test knows of a tag.
#[derive(Clone, Debug, PartialEq)]
enum Known {
    /// Pushed (201): must resolve to these manifest bytes.
    Pushed(Vec<u8>),
    /// A delete was sent but not acknowledged: may or may not be there.
    Deleting(Vec<u8>),
    /// Deleted (202): must be gone.
    Deleted,
}

type Ledger = Arc<Mutex<BTreeMap<(String, String), Known>>>;

fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_acr-emulator"))
        .args(["--port", "0", "--no-redirect-blobs", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (child, line.trim().to_owned())
}

/// A cheap random number (no extra dependency).
fn random(bound: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (nanos.wrapping_mul(6364136223846793005) >> 17) % bound
}

/// Pushes config + layer + tagged manifest, and now and then deletes an older tag, until a
/// request fails (the emulator was killed).
async fn worker(c: reqwest::Client, base: String, round: usize, w: usize, ledger: Ledger) {
    for i in 0.. {
        let repo = format!("crash/r{}", (w + i) % REPOS);
        let tag = format!("r{round}-w{w}-{i}");
        let config =
            serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux", "t": tag})).unwrap();
        let layer = format!("layer {tag}").repeat(50).into_bytes();
        let mut descs = Vec::new();
        for blob in [&config, &layer] {
            let d = sha(blob);
            let url = format!("{base}/v2/{repo}/blobs/uploads/?digest={}", enc(&d));
            match c.post(url).body(blob.clone()).send().await {
                Ok(r) if r.status() == 201 => descs.push((d, blob.len())),
                _ => return,
            }
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": descs[0].0, "size": descs[0].1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": descs[1].0, "size": descs[1].1}],
        }))
        .unwrap();
        let url = format!("{base}/v2/{repo}/manifests/{tag}");
        match c
            .put(url)
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone())
            .send()
            .await
        {
            Ok(r) if r.status() == 201 => {
                ledger
                    .lock()
                    .unwrap()
                    .insert((repo.clone(), tag.clone()), Known::Pushed(manifest));
            }
            _ => return,
        }
        if i % 4 == 3 {
            // Delete an earlier tag of this worker in this repository.
            let old = format!("r{round}-w{w}-{}", i - REPOS);
            let key = (repo.clone(), old.clone());
            let bytes = match ledger.lock().unwrap().get(&key) {
                Some(Known::Pushed(b)) => b.clone(),
                _ => continue,
            };
            ledger
                .lock()
                .unwrap()
                .insert(key.clone(), Known::Deleting(bytes));
            let url = format!("{base}/acr/v1/{}/_tags/{old}", repo.replace('/', "%2F"));
            match c.delete(url).send().await {
                Ok(r) if r.status() == 202 => {
                    ledger.lock().unwrap().insert(key, Known::Deleted);
                }
                _ => return,
            }
        }
    }
}

/// `GET /v2/{repo}/manifests/{tag}` (OCI manifests accepted).
async fn get_manifest(c: &reqwest::Client, base: &str, repo: &str, tag: &str) -> reqwest::Response {
    c.get(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap()
}

/// Everything acknowledged is there; every tag resolves to intact bytes with its blobs.
async fn check(c: &reqwest::Client, base: &str, ledger: &Ledger) {
    let known = ledger.lock().unwrap().clone();
    for ((repo, tag), state) in &known {
        let resp = get_manifest(c, base, repo, tag).await;
        match state {
            Known::Pushed(bytes) => {
                assert_eq!(resp.status(), 200, "{repo}:{tag} was acknowledged");
                assert_eq!(&resp.bytes().await.unwrap()[..], &bytes[..], "{repo}:{tag}");
            }
            Known::Deleted => assert_eq!(resp.status(), 404, "{repo}:{tag} was deleted"),
            Known::Deleting(bytes) => {
                if resp.status() == 200 {
                    assert_eq!(&resp.bytes().await.unwrap()[..], &bytes[..], "{repo}:{tag}");
                }
            }
        }
    }
    // Whatever is visible (also unacknowledged pushes) is whole.
    for r in 0..REPOS {
        let repo = format!("crash/r{r}");
        let resp = c
            .get(format!("{base}/v2/{repo}/tags/list?n=100000"))
            .send()
            .await
            .unwrap();
        if resp.status() == 404 {
            continue;
        }
        let list: serde_json::Value = resp.json().await.unwrap();
        for tag in list["tags"].as_array().into_iter().flatten() {
            let tag = tag.as_str().unwrap();
            let resp = get_manifest(c, base, &repo, tag).await;
            assert_eq!(resp.status(), 200, "{repo}:{tag} listed");
            let digest = resp.headers()["docker-content-digest"]
                .to_str()
                .unwrap()
                .to_owned();
            let bytes = resp.bytes().await.unwrap();
            assert_eq!(sha(&bytes), digest, "{repo}:{tag} bytes match the digest");
            let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_owned()];
            for l in m["layers"].as_array().unwrap() {
                blobs.push(l["digest"].as_str().unwrap().to_owned());
            }
            for b in blobs {
                let resp = c
                    .head(format!("{base}/v2/{repo}/blobs/{b}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "{repo}:{tag} blob {b}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_pushes_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let ledger: Ledger = Arc::default();
    for round in 0..ROUNDS {
        let (mut child, base) = start(tmp.path());
        check(&c, &base, &ledger).await;
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| tokio::spawn(worker(c.clone(), base.clone(), round, w, ledger.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(200 + random(1800))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        for w in workers {
            w.await.unwrap();
        }
    }
    let (mut child, base) = start(tmp.path());
    check(&c, &base, &ledger).await;
    let acknowledged = ledger
        .lock()
        .unwrap()
        .values()
        .filter(|k| matches!(k, Known::Pushed(_)))
        .count();
    let deleted = ledger
        .lock()
        .unwrap()
        .values()
        .filter(|k| matches!(k, Known::Deleted))
        .count();
    eprintln!("{ROUNDS} kills: {acknowledged} acknowledged pushes, {deleted} acknowledged deletes");
    assert!(acknowledged > 0, "some pushes completed");
    child.kill().unwrap();
    child.wait().unwrap();
}
