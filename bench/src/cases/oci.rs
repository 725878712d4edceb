//! Peer: the `oci-client` crate, in the same kind of process.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{
    host_of, timed_ops, tiny_blobs, Ctx, Measured, DOWNLOAD_REPO, OCI_CHUNK, OCI_MANIFEST,
    TINY_REPO,
};

pub(super) fn oci_client() -> oci_client::Client {
    oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    })
}

pub(super) fn oci_ref(ctx: &Ctx, repo: &str) -> Result<oci_client::Reference> {
    Ok(format!("{}/{repo}:latest", host_of(&ctx.registry)).parse()?)
}

pub(super) async fn oci_upload(ctx: &Ctx, repo: &str) -> Result<Measured> {
    let client = oci_client();
    let reference = oci_ref(ctx, repo)?;
    let t0 = Instant::now();
    let file = tokio::fs::File::open(&ctx.blob).await?;
    let stream = futures::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; OCI_CHUNK];
        let mut filled = 0;
        while filled < OCI_CHUNK {
            match f.read(&mut buf[filled..]).await {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => {
                    return Some((Err(oci_client::errors::OciDistributionError::IoError(e)), f))
                }
            }
        }
        if filled == 0 {
            return None;
        }
        buf.truncate(filled);
        Some((Ok(Bytes::from(buf)), f))
    });
    let r = client
        .push_blob_stream_chunked(&reference, stream)
        .await
        .context("push_blob_stream_chunked")?;
    let m = Measured::big(t0, ctx.size);
    ensure!(r.blob_digest == ctx.digest, "oci digest {}", r.blob_digest);
    Ok(m)
}

pub(super) async fn oci_download(ctx: &Ctx) -> Result<Measured> {
    let client = oci_client();
    let reference = oci_ref(ctx, DOWNLOAD_REPO)?;
    let desc = oci_client::manifest::OciDescriptor {
        digest: ctx.digest.clone(),
        size: i64::try_from(ctx.size)?,
        ..Default::default()
    };
    let t0 = Instant::now();
    client
        .pull_blob(&reference, &desc, tokio::io::sink())
        .await
        .context("pull_blob")?;
    Ok(Measured::big(t0, ctx.size))
}

pub(super) async fn oci_tiny_upload(ctx: &Ctx) -> Result<Measured> {
    let blobs = tiny_blobs("oci_tiny_push_blob", ctx);
    let client = oci_client();
    let reference = oci_ref(ctx, "bench/oci-tiny")?;
    timed_ops(blobs, |(b, d)| {
        let (client, reference) = (&client, &reference);
        async move {
            client
                .push_blob(reference, b, &d)
                .await
                .context("push_blob")?;
            Ok(())
        }
    })
    .await
}

pub(super) async fn oci_manifest_get(ctx: &Ctx) -> Result<Measured> {
    let client = oci_client();
    let reference = oci_ref(ctx, TINY_REPO)?;
    let auth = oci_client::secrets::RegistryAuth::Anonymous;
    let get = || async {
        let (body, digest) = client
            .pull_manifest_raw(&reference, &auth, &[OCI_MANIFEST])
            .await
            .context("pull_manifest_raw")?;
        ensure!(!body.is_empty() && digest.starts_with("sha256:"));
        Ok(())
    };
    get().await?;
    timed_ops(vec![(); ctx.tiny_n], |()| get()).await
}
