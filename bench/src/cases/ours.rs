//! This project's clients.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use azure_containerregistry::{
    ContainerRegistryClient, ContainerRegistryClientOptions, ContainerRegistryContentClient,
    DownloadBlobOptions, ListRepositoryNamesOptions, UploadBlobOptions,
};
use futures::{StreamExt, TryStreamExt};

use super::{timed_ops, tiny_blobs, Ctx, Measured, DOWNLOAD_REPO, TINY_REPO};

pub(super) fn content_client(ctx: &Ctx, repo: &str) -> Result<ContainerRegistryContentClient> {
    Ok(ContainerRegistryContentClient::new(
        &ctx.registry,
        repo,
        None,
        None,
    )?)
}

pub(super) async fn ours_upload(ctx: &Ctx, repo: &str, from_file: bool) -> Result<Measured> {
    let client = content_client(ctx, repo)?;
    // Diagnostics only (not used by the reported runs): another PATCH size.
    let options = match std::env::var("ACR_BENCH_UPLOAD_CHUNK_MIB") {
        Ok(mib) => Some(UploadBlobOptions {
            chunk_size: Some(mib.parse::<usize>().context("ACR_BENCH_UPLOAD_CHUNK_MIB")? << 20),
            ..Default::default()
        }),
        Err(_) => None,
    };
    let t0 = Instant::now();
    let r = if from_file {
        client.upload_blob_from_file(&ctx.blob, options).await?
    } else {
        let file = tokio::fs::File::open(&ctx.blob).await?;
        client.upload_blob(file, options).await?
    };
    let m = Measured::big(t0, ctx.size);
    ensure!(
        r.digest == ctx.digest && r.size == ctx.size && !r.skipped,
        "upload result {r:?}"
    );
    Ok(m)
}

pub(super) async fn ours_download(ctx: &Ctx, concurrency: usize) -> Result<Measured> {
    let client = content_client(ctx, DOWNLOAD_REPO)?;
    let options = DownloadBlobOptions {
        concurrency: Some(concurrency),
        ..Default::default()
    };
    let t0 = Instant::now();
    let mut stream = client.download_blob(&ctx.digest, Some(options)).await?;
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        n += chunk?.len() as u64;
    }
    let m = Measured::big(t0, n);
    ensure!(n == ctx.size, "downloaded {n} bytes");
    Ok(m)
}

pub(super) async fn ours_download_to_file(ctx: &Ctx) -> Result<Measured> {
    let client = content_client(ctx, DOWNLOAD_REPO)?;
    let out = ctx
        .work
        .join(format!("download-{}.bin", std::process::id()));
    let t0 = Instant::now();
    let r = client.download_blob_to_file(&ctx.digest, &out, None).await;
    let m = Measured::big(t0, ctx.size);
    let removed = std::fs::remove_file(&out);
    let r = r?;
    removed.with_context(|| format!("removing {}", out.display()))?;
    ensure!(r.size == ctx.size, "downloaded {} bytes", r.size);
    Ok(m)
}

pub(super) async fn ours_tiny_upload(ctx: &Ctx) -> Result<Measured> {
    let blobs = tiny_blobs("tiny_upload", ctx);
    let client = content_client(ctx, "bench/ours-tiny")?;
    timed_ops(blobs, |(b, d)| {
        let client = &client;
        async move {
            let r = client.upload_blob_bytes(b, None).await?;
            ensure!(r.digest == d && !r.skipped, "tiny upload {r:?}");
            Ok(())
        }
    })
    .await
}

pub(super) async fn ours_manifest_get(ctx: &Ctx) -> Result<Measured> {
    let client = content_client(ctx, TINY_REPO)?;
    let get = || async {
        let r = client.get_manifest("latest", None).await?;
        ensure!(!r.content.is_empty() && r.digest.starts_with("sha256:"));
        Ok(())
    };
    get().await?; // warm: connection and any token cached
    timed_ops(vec![(); ctx.tiny_n], |()| get()).await
}

pub(super) async fn ours_list(ctx: &Ctx) -> Result<Measured> {
    let client = ContainerRegistryClient::new(
        &ctx.emulator,
        None,
        Some(ContainerRegistryClientOptions::default()),
    )?;
    let t0 = Instant::now();
    let mut pager = client.list_repository_names(Some(ListRepositoryNamesOptions {
        page_size: Some(ctx.page_size),
        ..Default::default()
    }))?;
    let mut names = 0usize;
    while let Some(_name) = pager.try_next().await? {
        names += 1;
        ensure!(
            names <= ctx.repos,
            "pager returned more than {} names",
            ctx.repos
        );
    }
    Measured::full_listing(t0, names, ctx)
}
