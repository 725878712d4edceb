//! Test data: the seeded random blobs, the registry's and the emulator's repositories, and
//! the unlink that makes each upload transfer every byte.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use futures::{StreamExt, TryStreamExt};
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::cases::{image_tag, DOWNLOAD_REPO, IMAGE_LAYERS, IMAGE_REPO, OCI_MANIFEST, TINY_REPO};

/// Parallel requests while seeding the emulator's repositories.
const SEED_CONCURRENCY: usize = 16;

/// Seeded random blob of `size` bytes at `path`; returns its digest.
pub fn make_blob(path: &Path, size: u64) -> Result<String> {
    use std::io::Write;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xacb0_5eed ^ size);
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut h = Sha256::new();
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64))?;
        rng.fill_bytes(&mut buf[..n]);
        h.update(&buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

fn sha256_hex(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Sends `req` and checks that the answer's status is `expected`; errors name the request
/// as `what`, then the status received.
async fn send_expecting(
    req: reqwest::RequestBuilder,
    expected: u16,
    what: &str,
) -> Result<reqwest::Response> {
    let r = req.send().await?;
    ensure!(r.status().as_u16() == expected, "{what}: {}", r.status());
    Ok(r)
}

/// POST + PUT (monolithic) of `body` with a known digest.
async fn put_blob(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    digest: &str,
    body: reqwest::Body,
    len: u64,
) -> Result<()> {
    let post = c
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .header("content-length", 0);
    let r = send_expecting(post, 202, &format!("POST upload to {repo}")).await?;
    let loc = r
        .headers()
        .get("location")
        .context("no Location")?
        .to_str()?
        .to_string();
    let loc = if loc.starts_with("http") {
        loc
    } else {
        format!("{base}{loc}")
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let put = c
        .put(format!("{loc}{sep}digest={digest}"))
        .header("content-length", len)
        .header("content-type", "application/octet-stream")
        .body(body);
    send_expecting(put, 201, &format!("PUT upload to {repo}")).await?;
    Ok(())
}

/// [`put_blob`] of `data` held in memory, whose digest is `digest`.
async fn put_bytes(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    digest: &str,
    data: &[u8],
) -> Result<()> {
    let len = data.len() as u64;
    put_blob(c, base, repo, digest, data.to_vec().into(), len).await
}

/// PUT of `manifest` (an OCI manifest) at `url` (`…/v2/<repo>/manifests/<tag>`).
async fn put_manifest(c: &reqwest::Client, url: String, manifest: &[u8]) -> Result<()> {
    let what = format!("PUT {url}");
    let put = c
        .put(url)
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_vec());
    send_expecting(put, 201, &what).await?;
    Ok(())
}

fn manifest_json(config_digest: &str, config_size: usize, layers: &[(String, usize)]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}))
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers,
    })
    .to_string()
    .into_bytes()
}

/// A body of `len` bytes of `path` from `offset` on, read 1 MiB at a time.
async fn file_body(path: &Path, offset: u64, len: u64) -> Result<reqwest::Body> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 1 << 20);
    Ok(reqwest::Body::wrap_stream(stream))
}

/// The sha256 digest of `len` bytes of `path` from `offset` on.
fn slice_digest(path: &Path, offset: u64, len: u64) -> Result<String> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let (mut h, mut left, mut buf) = (Sha256::new(), len, vec![0u8; 1 << 20]);
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64))?;
        file.read_exact(&mut buf[..n])?;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// The whole-image cases' image for the big blob `blob`: [`IMAGE_LAYERS`] layers (the blob cut
/// in equal slices, the last one taking the rest), a config, and the manifest tagged
/// [`image_tag`] in [`IMAGE_REPO`].
async fn seed_image(c: &reqwest::Client, base: &str, blob: &Path, size: u64) -> Result<()> {
    let slice = size / IMAGE_LAYERS;
    let mut layers = Vec::new();
    for i in 0..IMAGE_LAYERS {
        let offset = i * slice;
        let len = if i + 1 == IMAGE_LAYERS {
            size - offset
        } else {
            slice
        };
        let digest = slice_digest(blob, offset, len)?;
        let body = file_body(blob, offset, len).await?;
        put_blob(c, base, IMAGE_REPO, &digest, body, len).await?;
        layers.push((digest, usize::try_from(len)?));
    }
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[]}},"comment":"{size}"}}"#
    );
    let cd = sha256_hex(config.as_bytes());
    put_bytes(c, base, IMAGE_REPO, &cd, config.as_bytes()).await?;
    let manifest = manifest_json(&cd, config.len(), &layers);
    put_manifest(
        c,
        format!("{base}/v2/{IMAGE_REPO}/manifests/{}", image_tag(size)),
        &manifest,
    )
    .await
}

/// The download repository gets the big blobs, and [`IMAGE_REPO`] an image made of each;
/// `bench/tiny:latest` gets a small manifest.
pub async fn seed_registry(base: &str, blobs: &[(&Path, &str, u64)]) -> Result<()> {
    let c = reqwest::Client::new();
    for &(blob, digest, size) in blobs {
        let body = file_body(blob, 0, size).await?;
        put_blob(&c, base, DOWNLOAD_REPO, digest, body, size).await?;
        seed_image(&c, base, blob, size).await?;
    }
    let layer: Vec<u8> = (0..1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let (ld, cd) = (sha256_hex(&layer), sha256_hex(config));
    put_bytes(&c, base, TINY_REPO, &ld, &layer).await?;
    put_bytes(&c, base, TINY_REPO, &cd, config).await?;
    put_manifest(
        &c,
        format!("{base}/v2/{TINY_REPO}/manifests/latest"),
        &manifest_json(&cd, config.len(), &[(ld, layer.len())]),
    )
    .await
}

/// `repos` repositories in the emulator, each with one tiny manifest: the config blob is
/// uploaded once and mounted into the others.
pub async fn seed_emulator(base: &str, repos: usize) -> Result<()> {
    let c = reqwest::Client::new();
    let config = b"{}";
    let cd = sha256_hex(config);
    let manifest = manifest_json(&cd, config.len(), &[]);
    let name = |i: usize| format!("bench/r{i:05}");
    let first = name(0);
    put_bytes(&c, base, &first, &cd, config).await?;
    put_manifest(&c, format!("{base}/v2/{first}/manifests/latest"), &manifest).await?;
    futures::stream::iter(1..repos)
        .map(|i| {
            let (c, cd, manifest, first) = (&c, &cd, &manifest, &first);
            async move {
                let repo = name(i);
                let mount = c
                    .post(format!(
                        "{base}/v2/{repo}/blobs/uploads/?mount={cd}&from={first}"
                    ))
                    .header("content-length", 0);
                send_expecting(mount, 201, &format!("mount into {repo}")).await?;
                put_manifest(c, format!("{base}/v2/{repo}/manifests/latest"), manifest).await
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Deletes the repository's link to the blob so that the next upload transfers every byte.
pub fn unlink(rt: &tokio::runtime::Runtime, base: &str, repo: &str, digest: &str) -> Result<()> {
    rt.block_on(async {
        let r = reqwest::Client::new()
            .delete(format!("{base}/v2/{repo}/blobs/{digest}"))
            .send()
            .await?;
        let s = r.status().as_u16();
        ensure!(s == 202 || s == 404, "DELETE blob link in {repo}: {s}");
        Ok(())
    })
}
