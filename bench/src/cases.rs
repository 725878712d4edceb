//! The measured cases. Each runs in its own process (`acr_bench --case NAME CTX`), so peak RSS
//! and CPU time belong to that case alone; the process prints one result line.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use azure_containerregistry::{
    ContainerRegistryClient, ContainerRegistryClientOptions, ContainerRegistryContentClient,
    DownloadBlobOptions, ListRepositoryNamesOptions, UploadBlobOptions,
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use rand::{RngCore, SeedableRng};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LINK, LOCATION};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

/// Prefix of the line a case process prints with its [`CaseResult`].
pub const RESULT_PREFIX: &str = "ACR_BENCH_RESULT ";
/// Repository holding the big blob for every download case.
pub const DOWNLOAD_REPO: &str = "bench/dl";
/// Repository and tag of the small manifest for the manifest-GET cases.
pub const TINY_REPO: &str = "bench/tiny";
/// Media type of that manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Size of the "tiny" blobs.
const TINY_SIZE: usize = 1024;
/// Read size for files and raw bodies.
const IO_CHUNK: usize = 1 << 20;
/// oci-client sends one PATCH per stream item, so it gets exact 4 MiB items (as in BASELINE.md).
const OCI_CHUNK: usize = 4 << 20;
/// Ranges in flight for the parallel download case.
pub const PARALLEL_CONCURRENCY: usize = 4;

/// Everything a case process needs, passed as JSON on its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ctx {
    /// docker-registry base URL.
    pub registry: String,
    /// Emulator base URL.
    pub emulator: String,
    /// The big blob on tmpfs.
    pub blob: PathBuf,
    /// Its digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Scratch directory on tmpfs.
    pub work: PathBuf,
    /// Repetition number (seeds the tiny blobs).
    pub rep: u32,
    /// Operations per tiny case.
    pub tiny_n: usize,
    /// Page size of the listing cases.
    pub page_size: u32,
    /// Repositories the emulator holds.
    pub repos: usize,
}

/// What a case measures and what it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// MiB/s over the big blob (higher is better).
    MibPerS,
    /// Milliseconds per operation (lower is better).
    MsPerOp,
}

/// Which server a case talks to (for the server CPU column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Server {
    /// No server (local hashing).
    None,
    /// The docker-registry.
    Registry,
    /// The emulator.
    Emulator,
}

/// A target: the ratio to the limit must be at least (`MibPerS`) or at most (`MsPerOp`) this.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Target {
    /// The ratio bound.
    pub ratio: f64,
    /// Also require peak RSS at most this many MiB.
    pub max_rss_mib: Option<f64>,
}

/// One case of the table.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CaseDef {
    /// Name used with `--case` and in the results.
    pub name: &'static str,
    /// `limit`, `ours` or `peer`.
    pub group: &'static str,
    /// What exactly is measured.
    pub what: &'static str,
    /// Unit of the value.
    pub unit: Unit,
    /// The limit case this one is divided by.
    pub limit: &'static str,
    /// Repository whose link to the big blob is deleted before the case (uploads).
    pub unlink_repo: Option<&'static str>,
    /// The server involved.
    pub server: Server,
    /// The goal, if any.
    pub target: Option<Target>,
}

const fn case(
    name: &'static str,
    group: &'static str,
    what: &'static str,
    unit: Unit,
    limit: &'static str,
    server: Server,
) -> CaseDef {
    CaseDef {
        name,
        group,
        what,
        unit,
        limit,
        unlink_repo: None,
        server,
        target: None,
    }
}

const fn unlink(mut c: CaseDef, repo: &'static str) -> CaseDef {
    c.unlink_repo = Some(repo);
    c
}

const fn target(mut c: CaseDef, ratio: f64, max_rss_mib: Option<f64>) -> CaseDef {
    c.target = Some(Target { ratio, max_rss_mib });
    c
}

use Server::{Emulator as Emu, None as Local, Registry as Reg};
use Unit::{MibPerS, MsPerOp};

/// All cases, in the order each repetition runs them.
pub const CASES: &[CaseDef] = &[
    case(
        "sha256",
        "limit",
        "sha2 over the tmpfs file, 1 MiB reads",
        MibPerS,
        "sha256",
        Local,
    ),
    unlink(
        case(
            "raw_upload",
            "limit",
            "reqwest POST + PUT, streamed body, digest known, no hashing",
            MibPerS,
            "raw_upload",
            Reg,
        ),
        "bench/raw-up",
    ),
    case(
        "raw_get_sha256",
        "limit",
        "reqwest GET + sha256 of the stream",
        MibPerS,
        "raw_get_sha256",
        Reg,
    ),
    case(
        "raw_get_sha256_to_file",
        "limit",
        "reqwest GET + sha256, chunks written to a tmpfs file by a separate thread, fsync",
        MibPerS,
        "raw_get_sha256_to_file",
        Reg,
    ),
    case(
        "raw_tiny_upload",
        "limit",
        "reqwest 1 KiB POST + PUT, one connection",
        MsPerOp,
        "raw_tiny_upload",
        Reg,
    ),
    case(
        "raw_manifest_get",
        "limit",
        "reqwest manifest GET + sha256 check, warm connection",
        MsPerOp,
        "raw_manifest_get",
        Reg,
    ),
    case(
        "raw_list",
        "limit",
        "reqwest GET /acr/v1/_catalog pages following Link (emulator), ms per full listing",
        MsPerOp,
        "raw_list",
        Emu,
    ),
    target(
        unlink(
            case(
                "upload_blob",
                "ours",
                "ContainerRegistryContentClient::upload_blob(tokio File)",
                MibPerS,
                "raw_upload",
                Reg,
            ),
            "bench/ours-up",
        ),
        0.95,
        Some(32.0),
    ),
    target(
        unlink(
            case(
                "upload_blob_from_file",
                "ours",
                "upload_blob_from_file (sends while a thread hashes the file; HEAD once hashed)",
                MibPerS,
                "raw_upload",
                Reg,
            ),
            "bench/ours-up-file",
        ),
        0.95,
        Some(32.0),
    ),
    target(
        case(
            "download_blob",
            "ours",
            "download_blob stream, sequential, verified",
            MibPerS,
            "raw_get_sha256",
            Reg,
        ),
        0.90,
        Some(32.0),
    ),
    target(
        case(
            "download_blob_parallel",
            "ours",
            "download_blob stream, 4 ranges of 8 MiB in flight, verified",
            MibPerS,
            "raw_get_sha256",
            Reg,
        ),
        0.90,
        None,
    ),
    target(
        case(
            "download_blob_to_file",
            "ours",
            "download_blob_to_file onto tmpfs (write + fsync + rename)",
            MibPerS,
            "raw_get_sha256_to_file",
            Reg,
        ),
        0.90,
        Some(32.0),
    ),
    target(
        case(
            "tiny_upload",
            "ours",
            "upload_blob_bytes of fresh 1 KiB blobs",
            MsPerOp,
            "raw_tiny_upload",
            Reg,
        ),
        1.2,
        None,
    ),
    target(
        case(
            "manifest_get",
            "ours",
            "get_manifest(tag), warm client",
            MsPerOp,
            "raw_manifest_get",
            Reg,
        ),
        1.2,
        None,
    ),
    target(
        case(
            "list_repository_names",
            "ours",
            "ContainerRegistryClient::list_repository_names pager (emulator), ms per full listing",
            MsPerOp,
            "raw_list",
            Emu,
        ),
        1.5,
        None,
    ),
    unlink(
        case(
            "oci_push_blob_stream_chunked",
            "peer",
            "oci-client 0.18 push_blob_stream_chunked, 4 MiB items",
            MibPerS,
            "raw_upload",
            Reg,
        ),
        "bench/oci-up",
    ),
    case(
        "oci_pull_blob",
        "peer",
        "oci-client 0.18 pull_blob into a sink (verifies)",
        MibPerS,
        "raw_get_sha256",
        Reg,
    ),
    case(
        "oci_tiny_push_blob",
        "peer",
        "oci-client 0.18 push_blob of fresh 1 KiB blobs",
        MsPerOp,
        "raw_tiny_upload",
        Reg,
    ),
    case(
        "oci_pull_manifest_raw",
        "peer",
        "oci-client 0.18 pull_manifest_raw, Anonymous",
        MsPerOp,
        "raw_manifest_get",
        Reg,
    ),
];

/// Diagnostic cases, run only when named with `--cases`: the same chunked upload protocol as
/// `upload_blob` (POST, 8 MiB PATCHes, PUT) with plain reqwest, once with reading and hashing
/// serialized after each PATCH and once overlapped with it, to show what bounds the upload.
pub const DIAG_CASES: &[CaseDef] = &[
    unlink(
        case(
            "diag_patch_serial",
            "diag",
            "reqwest POST + 8 MiB PATCHes + PUT; read and hash after each PATCH returns",
            MibPerS,
            "raw_upload",
            Reg,
        ),
        "bench/diag-serial",
    ),
    unlink(
        case(
            "diag_patch_overlap",
            "diag",
            "reqwest POST + 8 MiB PATCHes + PUT; read and hash while each PATCH is in flight",
            MibPerS,
            "raw_upload",
            Reg,
        ),
        "bench/diag-overlap",
    ),
    unlink(
        case(
            "diag_patch_stream",
            "diag",
            "reqwest POST + one PATCH streaming the file (hashed as it is sent) + PUT",
            MibPerS,
            "raw_upload",
            Reg,
        ),
        "bench/diag-stream",
    ),
];

/// What a case process reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    /// Seconds inside the measured operation(s).
    pub op_s: f64,
    /// Operations (1 for the big-blob cases and for one full listing).
    pub ops: usize,
    /// Bytes moved (big-blob cases).
    pub bytes: u64,
    /// Median latency of one operation in ms (tiny cases).
    pub p50_ms: Option<f64>,
    /// Peak RSS of the process in KiB.
    pub hwm_kib: u64,
    /// User CPU seconds of the process (whole life).
    pub user_s: f64,
    /// System CPU seconds of the process (whole life).
    pub sys_s: f64,
}

struct Measured {
    op_s: f64,
    ops: usize,
    bytes: u64,
    lat_ms: Vec<f64>,
}

impl Measured {
    fn big(t0: Instant, bytes: u64) -> Self {
        Measured {
            op_s: t0.elapsed().as_secs_f64(),
            ops: 1,
            bytes,
            lat_ms: Vec::new(),
        }
    }
}

/// Entry point of `acr_bench --case NAME CTX_JSON`.
pub fn child_main(args: &[String]) -> Result<()> {
    let [name, ctx] = args else {
        bail!("usage: acr_bench --case NAME CTX_JSON");
    };
    let ctx: Ctx = serde_json::from_str(ctx).context("parsing the case context")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let m = rt.block_on(run_case(name, &ctx))?;
    drop(rt);
    let (user_s, sys_s) = crate::sys::cpu_self();
    let mut lat = m.lat_ms;
    lat.sort_by(f64::total_cmp);
    let result = CaseResult {
        op_s: m.op_s,
        ops: m.ops,
        bytes: m.bytes,
        p50_ms: (!lat.is_empty()).then(|| lat[lat.len() / 2]),
        hwm_kib: crate::sys::vm_hwm_kib().unwrap_or(0),
        user_s,
        sys_s,
    };
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&result)?);
    Ok(())
}

async fn run_case(name: &str, ctx: &Ctx) -> Result<Measured> {
    let def = CASES
        .iter()
        .chain(DIAG_CASES)
        .find(|c| c.name == name)
        .with_context(|| format!("unknown case {name:?}"))?;
    let up_repo = def.unlink_repo.unwrap_or("bench/unused");
    match name {
        "sha256" => sha256_file(ctx),
        "raw_upload" => raw_upload(ctx, up_repo).await,
        "raw_get_sha256" => raw_get_sha256(ctx).await,
        "raw_tiny_upload" => raw_tiny_upload(ctx).await,
        "raw_manifest_get" => raw_manifest_get(ctx).await,
        "raw_list" => raw_list(ctx).await,
        "upload_blob" => ours_upload(ctx, up_repo, false).await,
        "upload_blob_from_file" => ours_upload(ctx, up_repo, true).await,
        "download_blob" => ours_download(ctx, 1).await,
        "download_blob_parallel" => ours_download(ctx, PARALLEL_CONCURRENCY).await,
        "download_blob_to_file" => ours_download_to_file(ctx).await,
        "tiny_upload" => ours_tiny_upload(ctx).await,
        "manifest_get" => ours_manifest_get(ctx).await,
        "list_repository_names" => ours_list(ctx).await,
        "oci_push_blob_stream_chunked" => oci_upload(ctx, up_repo).await,
        "oci_pull_blob" => oci_download(ctx).await,
        "oci_tiny_push_blob" => oci_tiny_upload(ctx).await,
        "oci_pull_manifest_raw" => oci_manifest_get(ctx).await,
        "diag_patch_serial" => diag_patch(ctx, up_repo, false).await,
        "diag_patch_overlap" => diag_patch(ctx, up_repo, true).await,
        "diag_patch_stream" => diag_patch_stream(ctx, up_repo).await,
        "raw_get_sha256_to_file" => raw_get_sha256_to_file(ctx).await,
        other => bail!("case {other:?} has no implementation"),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Fresh, seeded 1 KiB blobs: different per case and repetition, identical across runs.
fn tiny_blobs(case: &str, ctx: &Ctx) -> Vec<(Vec<u8>, String)> {
    let seed = case.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) ^ u64::from(ctx.rep);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..ctx.tiny_n)
        .map(|_| {
            let mut b = vec![0u8; TINY_SIZE];
            rng.fill_bytes(&mut b);
            let d = sha256_hex(&b);
            (b, d)
        })
        .collect()
}

fn host_of(endpoint: &str) -> &str {
    endpoint
        .split_once("://")
        .map_or(endpoint, |(_, h)| h)
        .trim_end_matches('/')
}

// ---------------------------------------------------------------------------------------------
// Limits

fn sha256_file(ctx: &Ctx) -> Result<Measured> {
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

fn http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().build()?)
}

/// `POST /v2/<repo>/blobs/uploads/` → absolute upload URL.
async fn raw_start_upload(c: &reqwest::Client, base: &str, repo: &str) -> Result<String> {
    let r = c
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .header(CONTENT_LENGTH, 0)
        .send()
        .await?;
    ensure!(r.status().as_u16() == 202, "POST upload: {}", r.status());
    let loc = r
        .headers()
        .get(LOCATION)
        .context("POST upload: no Location")?
        .to_str()?;
    Ok(absolute(base, loc))
}

fn absolute(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        loc.to_string()
    } else {
        format!("{base}{loc}")
    }
}

fn with_digest(loc: &str, digest: &str) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={digest}")
}

/// Monolithic upload with a known digest: POST, then PUT with the body.
async fn raw_put(
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

async fn raw_upload(ctx: &Ctx, repo: &str) -> Result<Measured> {
    let c = http()?;
    let t0 = Instant::now();
    let file = tokio::fs::File::open(&ctx.blob).await?;
    let body =
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, IO_CHUNK));
    raw_put(&c, &ctx.registry, repo, &ctx.digest, ctx.size, body).await?;
    Ok(Measured::big(t0, ctx.size))
}

async fn raw_get_sha256(ctx: &Ctx) -> Result<Measured> {
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
async fn raw_get_hashed(
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

async fn raw_tiny_upload(ctx: &Ctx) -> Result<Measured> {
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

async fn raw_manifest_get(ctx: &Ctx) -> Result<Measured> {
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

async fn raw_list(ctx: &Ctx) -> Result<Measured> {
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
    let m = Measured::big(t0, 0);
    ensure!(
        names == ctx.repos,
        "listed {names} repositories, expected {}",
        ctx.repos
    );
    Ok(m)
}

/// Runs `op` on each item in sequence; total time and per-operation latencies.
async fn timed_ops<T, F, Fut>(items: Vec<T>, mut op: F) -> Result<Measured>
where
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let ops = items.len();
    let mut lat_ms = Vec::with_capacity(ops);
    let t0 = Instant::now();
    for item in items {
        let t1 = Instant::now();
        op(item).await?;
        lat_ms.push(t1.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Measured {
        op_s: t0.elapsed().as_secs_f64(),
        ops,
        bytes: 0,
        lat_ms,
    })
}

// ---------------------------------------------------------------------------------------------
// This project

fn content_client(ctx: &Ctx, repo: &str) -> Result<ContainerRegistryContentClient> {
    Ok(ContainerRegistryContentClient::new(
        &ctx.registry,
        repo,
        None,
        None,
    )?)
}

async fn ours_upload(ctx: &Ctx, repo: &str, from_file: bool) -> Result<Measured> {
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

async fn ours_download(ctx: &Ctx, concurrency: usize) -> Result<Measured> {
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

async fn ours_download_to_file(ctx: &Ctx) -> Result<Measured> {
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

async fn ours_tiny_upload(ctx: &Ctx) -> Result<Measured> {
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

async fn ours_manifest_get(ctx: &Ctx) -> Result<Measured> {
    let client = content_client(ctx, TINY_REPO)?;
    let get = || async {
        let r = client.get_manifest("latest", None).await?;
        ensure!(!r.content.is_empty() && r.digest.starts_with("sha256:"));
        Ok(())
    };
    get().await?; // warm: connection and any token cached
    timed_ops(vec![(); ctx.tiny_n], |()| get()).await
}

async fn ours_list(ctx: &Ctx) -> Result<Measured> {
    let client = ContainerRegistryClient::new(
        &ctx.emulator,
        None,
        Some(ContainerRegistryClientOptions::default()),
    )?;
    let t0 = Instant::now();
    let mut pager = client.list_repository_names(Some(ListRepositoryNamesOptions {
        page_size: Some(ctx.page_size),
    }));
    let mut names = 0usize;
    while let Some(_name) = pager.try_next().await? {
        names += 1;
        ensure!(
            names <= ctx.repos,
            "pager returned more than {} names",
            ctx.repos
        );
    }
    let m = Measured::big(t0, 0);
    ensure!(
        names == ctx.repos,
        "listed {names} repositories, expected {}",
        ctx.repos
    );
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Peer: oci-client

fn oci_client() -> oci_client::Client {
    oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    })
}

fn oci_ref(ctx: &Ctx, repo: &str) -> Result<oci_client::Reference> {
    Ok(format!("{}/{repo}:latest", host_of(&ctx.registry)).parse()?)
}

async fn oci_upload(ctx: &Ctx, repo: &str) -> Result<Measured> {
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

async fn oci_download(ctx: &Ctx) -> Result<Measured> {
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

async fn oci_tiny_upload(ctx: &Ctx) -> Result<Measured> {
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

async fn oci_manifest_get(ctx: &Ctx) -> Result<Measured> {
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

// ---------------------------------------------------------------------------------------------
// Diagnostics

const PATCH_CHUNK: usize = 8 << 20;

async fn read_chunk(f: &mut tokio::fs::File) -> Result<Bytes> {
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

async fn patch(
    c: &reqwest::Client,
    base: &str,
    loc: &str,
    chunk: Bytes,
    offset: u64,
) -> Result<String> {
    let end = offset + chunk.len() as u64 - 1;
    let r = c
        .patch(loc)
        .header(CONTENT_TYPE, "application/octet-stream")
        .header("content-range", format!("{offset}-{end}"))
        .header(CONTENT_LENGTH, chunk.len())
        .body(chunk)
        .send()
        .await?;
    ensure!(r.status().as_u16() == 202, "PATCH: {}", r.status());
    let loc = r
        .headers()
        .get(LOCATION)
        .context("PATCH: no Location")?
        .to_str()?;
    Ok(absolute(base, loc))
}

async fn diag_patch(ctx: &Ctx, repo: &str, overlap: bool) -> Result<Measured> {
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
    let r = c
        .put(with_digest(&loc, &digest))
        .header(CONTENT_LENGTH, 0)
        .send()
        .await?;
    ensure!(r.status().as_u16() == 201, "PUT: {}", r.status());
    let m = Measured::big(t0, offset);
    ensure!(
        digest == ctx.digest && offset == ctx.size,
        "uploaded {digest}, {offset} bytes"
    );
    Ok(m)
}

async fn diag_patch_stream(ctx: &Ctx, repo: &str) -> Result<Measured> {
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
        let r = c
            .patch(&loc)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await?;
        ensure!(r.status().as_u16() == 202, "PATCH: {}", r.status());
        loc = absolute(
            &ctx.registry,
            r.headers()
                .get(LOCATION)
                .context("PATCH: no Location")?
                .to_str()?,
        );
        offset += len;
    }
    let digest = {
        let h = hasher
            .lock()
            .map_err(|_| anyhow::anyhow!("hasher lock poisoned"))?;
        format!("sha256:{}", hex::encode(h.clone().finalize()))
    };
    let r = c
        .put(with_digest(&loc, &digest))
        .header(CONTENT_LENGTH, 0)
        .send()
        .await?;
    ensure!(r.status().as_u16() == 201, "PUT: {}", r.status());
    let m = Measured::big(t0, ctx.size);
    ensure!(digest == ctx.digest, "uploaded {digest}");
    Ok(m)
}

async fn raw_get_sha256_to_file(ctx: &Ctx) -> Result<Measured> {
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
