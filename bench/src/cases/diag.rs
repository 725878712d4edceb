//! Diagnostic cases (run only when named): what bounds the chunked upload.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::limits::{accepted_location, http, raw_start_upload, with_digest};
use super::{Ctx, Measured, IO_CHUNK};

pub(super) const PATCH_CHUNK: usize = 8 << 20;

pub(super) async fn read_chunk(f: &mut tokio::fs::File) -> Result<Bytes> {
    let mut buf = bytes::BytesMut::zeroed(PATCH_CHUNK);
    let mut filled = 0;
    while filled < PATCH_CHUNK {
        let n = f.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf.freeze())
}

pub(super) async fn patch(
    c: &reqwest::Client,
    base: &str,
    loc: &str,
    chunk: Bytes,
    offset: u64,
) -> Result<String> {
    let end = offset + chunk.len() as u64 - 1;
    let req = c
        .patch(loc)
        .header(CONTENT_TYPE, "application/octet-stream")
        .header("content-range", format!("{offset}-{end}"))
        .header(CONTENT_LENGTH, chunk.len())
        .body(chunk);
    accepted_location(req, base, "PATCH").await
}

/// The closing PUT of a chunked upload: no body, the whole blob's `digest`; expects 201.
async fn finish_upload(c: &reqwest::Client, loc: &str, digest: &str) -> Result<()> {
    let r = c
        .put(with_digest(loc, digest))
        .header(CONTENT_LENGTH, 0)
        .send()
        .await?;
    ensure!(r.status().as_u16() == 201, "PUT: {}", r.status());
    Ok(())
}

pub(super) async fn diag_patch(ctx: &Ctx, repo: &str, overlap: bool) -> Result<Measured> {
    let c = http()?;
    let t0 = Instant::now();
    let mut file = tokio::fs::File::open(&ctx.blob).await?;
    let mut loc = raw_start_upload(&c, &ctx.registry, repo).await?;
    let mut h = Sha256::new();
    let mut offset = 0u64;
    let mut cur = read_chunk(&mut file).await?;
    // Bounded: one iteration per chunk of the file.
    for _ in 0..=ctx.size / PATCH_CHUNK as u64 {
        if cur.is_empty() {
            break;
        }
        let send = patch(&c, &ctx.registry, &loc, cur.clone(), offset);
        let next = if overlap {
            let (sent, next) = tokio::join!(send, async {
                h.update(&cur);
                read_chunk(&mut file).await
            });
            loc = sent?;
            next?
        } else {
            loc = send.await?;
            h.update(&cur);
            read_chunk(&mut file).await?
        };
        offset += cur.len() as u64;
        cur = next;
    }
    let digest = format!("sha256:{}", hex::encode(h.finalize()));
    finish_upload(&c, &loc, &digest).await?;
    let m = Measured::big(t0, offset);
    ensure!(
        digest == ctx.digest && offset == ctx.size,
        "uploaded {digest}, {offset} bytes"
    );
    Ok(m)
}

pub(super) async fn diag_patch_stream(ctx: &Ctx, repo: &str) -> Result<Measured> {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    // Diagnostics only: PATCHes of this many MiB instead of one (what a registry's cost per
    // request is, apart from any client).
    let segment = match std::env::var("ACR_BENCH_DIAG_SEGMENT_MIB") {
        Ok(mib) => mib.parse::<u64>().context("ACR_BENCH_DIAG_SEGMENT_MIB")? << 20,
        Err(_) => ctx.size,
    };
    let c = http()?;
    let t0 = Instant::now();
    let mut loc = raw_start_upload(&c, &ctx.registry, repo).await?;
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let mut offset = 0u64;
    // Bounded: one iteration per segment.
    for _ in 0..=ctx.size / segment.max(1) {
        if offset >= ctx.size {
            break;
        }
        let len = segment.min(ctx.size - offset);
        let mut file = tokio::fs::File::open(&ctx.blob).await?;
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        let h2 = Arc::clone(&hasher);
        let body = tokio_util::io::ReaderStream::with_capacity(file.take(len), IO_CHUNK).inspect(
            move |chunk| {
                if let (Ok(chunk), Ok(mut h)) = (chunk, h2.lock()) {
                    h.update(chunk);
                }
            },
        );
        let req = c
            .patch(&loc)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body));
        loc = accepted_location(req, &ctx.registry, "PATCH").await?;
        offset += len;
    }
    let digest = {
        let h = hasher
            .lock()
            .map_err(|_| anyhow::anyhow!("hasher lock poisoned"))?;
        format!("sha256:{}", hex::encode(h.clone().finalize()))
    };
    finish_upload(&c, &loc, &digest).await?;
    let m = Measured::big(t0, ctx.size);
    ensure!(digest == ctx.digest, "uploaded {digest}");
    Ok(m)
}
