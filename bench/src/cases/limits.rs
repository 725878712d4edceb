//! The physical limits: hashing and plain reqwest against the same servers.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LINK, LOCATION, RANGE};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    sha256_hex, timed_ops, tiny_blobs, Ctx, Measured, DOWNLOAD_REPO, IO_CHUNK, OCI_MANIFEST,
    TINY_REPO,
};

pub(super) fn sha256_file(ctx: &Ctx) -> Result<Measured> {
    use std::io::Read;
    let t0 = Instant::now();
    let mut f = std::fs::File::open(&ctx.blob)?;
    let mut buf = vec![0u8; IO_CHUNK];
    let mut h = Sha256::new();
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    let d = format!("sha256:{}", hex::encode(h.finalize()));
    let m = Measured::big(t0, n);
    ensure!(d == ctx.digest, "sha256 {d} != {}", ctx.digest);
    Ok(m)
}

pub(super) fn http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().build()?)
}

/// `POST /v2/<repo>/blobs/uploads/` → absolute upload URL.
pub(super) async fn raw_start_upload(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
) -> Result<String> {
    let post = c
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .header(CONTENT_LENGTH, 0);
    accepted_location(post, base, "POST upload").await
}

/// Sends `req`, expects 202 Accepted and returns its `Location` made absolute against `base`;
/// `what` names the request in errors.
pub(super) async fn accepted_location(
    req: reqwest::RequestBuilder,
    base: &str,
    what: &str,
) -> Result<String> {
    let r = req.send().await?;
    ensure!(r.status().as_u16() == 202, "{what}: {}", r.status());
    let loc = r
        .headers()
        .get(LOCATION)
        .with_context(|| format!("{what}: no Location"))?
        .to_str()?;
    Ok(absolute(base, loc))
}

pub(super) fn absolute(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        loc.to_string()
    } else {
        format!("{base}{loc}")
    }
}

pub(super) fn with_digest(loc: &str, digest: &str) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={digest}")
}

/// Monolithic upload with a known digest: POST, then PUT with the body.
pub(super) async fn raw_put(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    digest: &str,
    len: u64,
    body: reqwest::Body,
) -> Result<()> {
    let loc = raw_start_upload(c, base, repo).await?;
    let r = c
        .put(with_digest(&loc, digest))
        .header(CONTENT_LENGTH, len)
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await?;
    ensure!(r.status().as_u16() == 201, "PUT upload: {}", r.status());
    Ok(())
}

pub(super) async fn raw_upload(ctx: &Ctx, repo: &str) -> Result<Measured> {
    let c = http()?;
    let t0 = Instant::now();
    let file = tokio::fs::File::open(&ctx.blob).await?;
    let body =
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, IO_CHUNK));
    raw_put(&c, &ctx.registry, repo, &ctx.digest, ctx.size, body).await?;
    Ok(Measured::big(t0, ctx.size))
}

pub(super) async fn raw_get_sha256(ctx: &Ctx) -> Result<Measured> {
    let c = http()?;
    let t0 = Instant::now();
    let (d, n) = raw_get_hashed(&c, ctx, |_| Ok(())).await?;
    let m = Measured::big(t0, n);
    ensure!(
        d == ctx.digest && n == ctx.size,
        "GET blob: got {d}, {n} bytes"
    );
    Ok(m)
}

/// reqwest GET of the big blob, sha256 of the stream, each chunk handed to `each`:
/// (digest, bytes received).
pub(super) async fn raw_get_hashed(
    c: &reqwest::Client,
    ctx: &Ctx,
    mut each: impl FnMut(Bytes) -> Result<()>,
) -> Result<(String, u64)> {
    let r = c
        .get(format!(
            "{}/v2/{DOWNLOAD_REPO}/blobs/{}",
            ctx.registry, ctx.digest
        ))
        .send()
        .await?;
    ensure!(r.status().is_success(), "GET blob: {}", r.status());
    let mut stream = r.bytes_stream();
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        h.update(&chunk);
        n += chunk.len() as u64;
        each(chunk)?;
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), n))
}

pub(super) async fn raw_tiny_upload(ctx: &Ctx) -> Result<Measured> {
    let blobs = tiny_blobs("raw_tiny_upload", ctx);
    let c = http()?;
    timed_ops(blobs, |(b, d)| {
        let c = &c;
        async move {
            let len = b.len() as u64;
            raw_put(c, &ctx.registry, "bench/raw-tiny", &d, len, b.into()).await
        }
    })
    .await
}

pub(super) async fn raw_manifest_get(ctx: &Ctx) -> Result<Measured> {
    let c = http()?;
    let url = format!("{}/v2/{TINY_REPO}/manifests/latest", ctx.registry);
    let get = || async {
        let r = c.get(&url).header(ACCEPT, OCI_MANIFEST).send().await?;
        ensure!(r.status().is_success(), "GET manifest: {}", r.status());
        let server = r
            .headers()
            .get("docker-content-digest")
            .context("no Docker-Content-Digest")?
            .to_str()?
            .to_string();
        let body = r.bytes().await?;
        ensure!(sha256_hex(&body) == server, "manifest digest mismatch");
        Ok(())
    };
    get().await?; // warm the connection, like the warm clients below
    timed_ops(vec![(); ctx.tiny_n], |()| get()).await
}

pub(super) async fn raw_list(ctx: &Ctx) -> Result<Measured> {
    #[derive(Deserialize)]
    struct Page {
        repositories: Vec<String>,
    }
    let c = http()?;
    let t0 = Instant::now();
    let mut url = format!("{}/acr/v1/_catalog?n={}", ctx.emulator, ctx.page_size);
    let mut names = 0usize;
    // Bounded: one page per request, at most repos/page_size + 2 pages.
    for _ in 0..ctx.repos / ctx.page_size.max(1) as usize + 2 {
        let r = c.get(&url).send().await?;
        ensure!(r.status().is_success(), "GET catalog: {}", r.status());
        let next = r
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.split_once('<'))
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(u, _)| absolute(&ctx.emulator, u));
        let page: Page = serde_json::from_slice(&r.bytes().await?)?;
        names += page.repositories.len();
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    Measured::full_listing(t0, names, ctx)
}

pub(super) async fn raw_get_sha256_to_file(ctx: &Ctx) -> Result<Measured> {
    use std::io::Write;
    let c = http()?;
    let out = ctx.work.join(format!("raw-{}.bin", std::process::id()));
    let t0 = Instant::now();
    let mut file = std::fs::File::create(&out)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(64);
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for chunk in rx {
            file.write_all(&chunk)?;
        }
        file.sync_all()
    });
    let (d, n) = raw_get_hashed(&c, ctx, |chunk| Ok(tx.send(chunk)?)).await?;
    drop(tx);
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    let m = Measured::big(t0, n);
    std::fs::remove_file(&out)?;
    ensure!(
        d == ctx.digest && n == ctx.size,
        "GET blob: got {d}, {n} bytes"
    );
    Ok(m)
}

/// `n` ranged GETs of the big blob at once (so `n` connections), bytes counted, not hashed:
/// what the link carries with `n` connections.
pub(super) async fn raw_get_parallel(ctx: &Ctx, n: usize) -> Result<Measured> {
    let c = http()?;
    let url = format!("{}/v2/{DOWNLOAD_REPO}/blobs/{}", ctx.registry, ctx.digest);
    let n = n.max(1) as u64;
    let t0 = Instant::now();
    let parts = (0..n).map(|i| {
        let (start, end) = (ctx.size * i / n, ctx.size * (i + 1) / n);
        let (c, url) = (&c, &url);
        async move {
            if start == end {
                return Ok(0);
            }
            let r = c
                .get(url)
                .header(RANGE, format!("bytes={start}-{}", end - 1))
                .send()
                .await?;
            ensure!(r.status().as_u16() == 206, "GET range: {}", r.status());
            let mut stream = r.bytes_stream();
            let mut got = 0u64;
            while let Some(chunk) = stream.next().await {
                got += chunk?.len() as u64;
            }
            ensure!(got == end - start, "range {start}-{end}: got {got} bytes");
            Ok::<u64, anyhow::Error>(got)
        }
    });
    let total: u64 = futures::future::try_join_all(parts)
        .await?
        .into_iter()
        .sum();
    let m = Measured::big(t0, total);
    ensure!(total == ctx.size, "got {total} bytes");
    Ok(m)
}
