//! The measured cases. Each runs in its own process (`acr_bench --case NAME CTX`), so peak RSS
//! and CPU time belong to that case alone; the process prints one result line.
//!
//! The shared definitions live here; the cases themselves by kind: [`limits`] (hashing and
//! plain reqwest), [`ours`] (this project), [`oci`] (the peer crate), [`diag`] (diagnostics),
//! and the list of them in [`table`].

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefix of the line a case process prints with its [`CaseResult`].
pub const RESULT_PREFIX: &str = "ACR_BENCH_RESULT ";
/// Repository holding the big blob for every download case.
pub const DOWNLOAD_REPO: &str = "bench/dl";
/// Repository and tag of the small manifest for the manifest-GET cases.
pub const TINY_REPO: &str = "bench/tiny";
/// Repository of the whole-image cases: one image per blob size (see [`image_tag`]).
pub const IMAGE_REPO: &str = "bench/image";
/// Layers of that image: the big blob cut in this many slices.
pub const IMAGE_LAYERS: u64 = 5;
/// Media type of that manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Size of the "tiny" blobs.
const TINY_SIZE: usize = 1024;
/// Read size for files and raw bodies.
const IO_CHUNK: usize = 1 << 20;
/// oci-client sends one PATCH per stream item, so it gets exact 4 MiB items (as in BASELINE.md).
const OCI_CHUNK: usize = 4 << 20;
/// The tag of the whole-image case's image made from the big blob of `size` bytes.
pub fn image_tag(size: u64) -> String {
    format!("size-{size}")
}

/// Ranges in flight for the parallel download case.
pub const PARALLEL_CONCURRENCY: usize = 4;

/// A network profile: which path the bytes take between the client and the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Straight to the registry on 127.0.0.1.
    Loopback,
    /// Through the shaping proxy: a fixed delay each way and a bandwidth cap per connection.
    Wan,
}

impl Profile {
    /// Its name in the report and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Loopback => "loopback",
            Profile::Wan => "wan",
        }
    }
}

/// The interpreters of the peers that are not Rust, when available.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tools {
    /// A Python whose environment has `azure-containerregistry`.
    pub python: Option<PathBuf>,
    /// `node`.
    pub node: Option<PathBuf>,
    /// A directory whose `node_modules` has `@azure/container-registry`.
    pub js_modules: Option<PathBuf>,
    /// `skopeo`.
    pub skopeo: Option<PathBuf>,
}

/// Everything a case process needs, passed as JSON on its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ctx {
    /// The profile this case runs under.
    pub profile: Profile,
    /// docker-registry base URL (the shaping proxy's under [`Profile::Wan`]).
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
    /// Peer interpreters.
    pub tools: Tools,
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

/// The operation a case performs, to compare this project with the best peer doing the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Upload of the big blob.
    Upload,
    /// Verified download of the big blob.
    Download,
    /// Uploads of 1 KiB blobs.
    TinyUpload,
    /// Manifest GETs.
    ManifestGet,
    /// Pull of the whole image (its layers cut from the big blob) into an OCI layout.
    Image,
}

/// What runs the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    /// This binary alone.
    Rust,
    /// The Python peer script (needs [`Tools::python`]).
    Python,
    /// The JS peer script (needs [`Tools::node`] and [`Tools::js_modules`]).
    Node,
    /// `skopeo` (needs [`Tools::skopeo`]).
    Skopeo,
}

/// A target: the ratio to a base case must be at least (`MibPerS`) or at most (`MsPerOp`)
/// this; optionally a peak RSS bound and a lead over the best peer of the same [`Kind`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Target {
    /// The ratio bound.
    pub ratio: f64,
    /// The case divided by; `None` is the row's limit.
    pub against: Option<&'static str>,
    /// Also require peak RSS at most this many MiB.
    pub max_rss_mib: Option<f64>,
    /// Also require at least this speed-up over the best peer of the same kind.
    pub peer_speedup: Option<f64>,
}

impl Target {
    /// `ratio` × the limit, with an optional RSS bound.
    pub const fn new(ratio: f64, max_rss_mib: Option<f64>) -> Self {
        Target {
            ratio,
            against: None,
            max_rss_mib,
            peer_speedup: None,
        }
    }

    /// The ratio is to this case instead of the limit.
    pub const fn against(mut self, case: &'static str) -> Self {
        self.against = Some(case);
        self
    }

    /// Also at least `speedup` × the best peer.
    pub const fn vs_peers(mut self, speedup: f64) -> Self {
        self.peer_speedup = Some(speedup);
        self
    }
}

/// One case of the table.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CaseDef {
    /// Name used with `--case` and in the results.
    pub name: &'static str,
    /// `limit`, `ours`, `peer` or `diag`.
    pub group: &'static str,
    /// What exactly is measured.
    pub what: &'static str,
    /// Unit of the value.
    pub unit: Unit,
    /// The limit case this one is divided by.
    pub limit: &'static str,
    /// The limit under [`Profile::Wan`], when it differs (empty: the same).
    pub wan_limit: &'static str,
    /// Repository whose link to the big blob is deleted before the case (uploads).
    pub unlink_repo: Option<&'static str>,
    /// The server involved.
    pub server: Server,
    /// Runs under [`Profile::Loopback`].
    pub loopback: bool,
    /// Runs under [`Profile::Wan`].
    pub wan: bool,
    /// The operation, for the comparison with the peers.
    pub kind: Option<Kind>,
    /// What runs it.
    pub tool: Tool,
    /// The goal on loopback, if any.
    pub target: Option<Target>,
    /// The goal under WAN, if any.
    pub wan_target: Option<Target>,
    /// What costs the case time that its limit does not pay, said beside a missed target
    /// (empty: nothing to add to the figures).
    pub miss_hint: &'static str,
}

impl CaseDef {
    /// Whether it runs under `profile`.
    pub fn runs_in(&self, profile: Profile) -> bool {
        match profile {
            Profile::Loopback => self.loopback,
            Profile::Wan => self.wan,
        }
    }

    /// Its limit case under `profile`.
    pub fn limit_in(&self, profile: Profile) -> &'static str {
        match profile {
            Profile::Wan if !self.wan_limit.is_empty() => self.wan_limit,
            _ => self.limit,
        }
    }

    /// Its target under `profile`.
    pub fn target_in(&self, profile: Profile) -> Option<Target> {
        match profile {
            Profile::Loopback => self.target,
            Profile::Wan => self.wan_target,
        }
    }
}

mod diag;
mod image;
mod limits;
mod oci;
mod ours;
mod sdk;
mod table;

pub use table::{CASES, DIAG_CASES};

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
    /// Peak RSS of the process in KiB (for the SDK peers: of their interpreter process).
    pub hwm_kib: u64,
    /// User CPU seconds of the process (whole life; SDK peers: the interpreter's).
    pub user_s: f64,
    /// System CPU seconds of the process (whole life).
    pub sys_s: f64,
}

struct Measured {
    op_s: f64,
    ops: usize,
    bytes: u64,
    lat_ms: Vec<f64>,
    /// Set when another process did the work (the SDK peers): its peak RSS and CPU.
    external: Option<External>,
}

/// Peak RSS and CPU time of this process's waited-for children (`RUSAGE_CHILDREN`).
#[derive(Debug, Clone, Copy)]
struct External {
    hwm_kib: u64,
    user_s: f64,
    sys_s: f64,
}

impl External {
    fn of_children() -> Self {
        let (user_s, sys_s, hwm_kib) = crate::sys::children_usage();
        External {
            hwm_kib,
            user_s,
            sys_s,
        }
    }
}

impl Measured {
    fn big(t0: Instant, bytes: u64) -> Self {
        Measured {
            op_s: t0.elapsed().as_secs_f64(),
            ops: 1,
            bytes,
            lat_ms: Vec::new(),
            external: None,
        }
    }

    /// One full listing that started at `t0`, checked to have found all `ctx.repos`
    /// repositories (`names`).
    fn full_listing(t0: Instant, names: usize, ctx: &Ctx) -> Result<Self> {
        let m = Measured::big(t0, 0);
        ensure!(
            names == ctx.repos,
            "listed {names} repositories, expected {}",
            ctx.repos
        );
        Ok(m)
    }

    fn external(op_s: f64, bytes: u64, external: External) -> Self {
        Measured {
            op_s,
            ops: 1,
            bytes,
            lat_ms: Vec::new(),
            external: Some(external),
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
    let (user_s, sys_s, hwm_kib) = match m.external {
        Some(e) => (e.user_s, e.sys_s, e.hwm_kib),
        None => {
            let (u, s) = crate::sys::cpu_self();
            (u, s, crate::sys::vm_hwm_kib().unwrap_or(0))
        }
    };
    let mut lat = m.lat_ms;
    lat.sort_by(f64::total_cmp);
    let result = CaseResult {
        op_s: m.op_s,
        ops: m.ops,
        bytes: m.bytes,
        p50_ms: (!lat.is_empty()).then(|| lat[lat.len() / 2]),
        hwm_kib,
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
        "sha256" => limits::sha256_file(ctx),
        "raw_upload" => limits::raw_upload(ctx, up_repo).await,
        "raw_get_sha256" => limits::raw_get_sha256(ctx).await,
        "raw_tiny_upload" => limits::raw_tiny_upload(ctx).await,
        "raw_manifest_get" => limits::raw_manifest_get(ctx).await,
        "raw_list" => limits::raw_list(ctx).await,
        "upload_blob" => ours::ours_upload(ctx, up_repo, false).await,
        "upload_blob_from_file" => ours::ours_upload(ctx, up_repo, true).await,
        "download_blob" => ours::ours_download(ctx, 1).await,
        "download_blob_parallel" => ours::ours_download(ctx, PARALLEL_CONCURRENCY).await,
        "download_blob_to_file" => ours::ours_download_to_file(ctx).await,
        "tiny_upload" => ours::ours_tiny_upload(ctx).await,
        "manifest_get" => ours::ours_manifest_get(ctx).await,
        "list_repository_names" => ours::ours_list(ctx).await,
        "oci_push_blob_stream_chunked" => oci::oci_upload(ctx, up_repo).await,
        "oci_pull_blob" => oci::oci_download(ctx).await,
        "oci_tiny_push_blob" => oci::oci_tiny_upload(ctx).await,
        "oci_pull_manifest_raw" => oci::oci_manifest_get(ctx).await,
        "diag_patch_serial" => diag::diag_patch(ctx, up_repo, false).await,
        "diag_patch_overlap" => diag::diag_patch(ctx, up_repo, true).await,
        "diag_patch_stream" => diag::diag_patch_stream(ctx, up_repo).await,
        "raw_get_sha256_to_file" => limits::raw_get_sha256_to_file(ctx).await,
        "raw_get_parallel" => limits::raw_get_parallel(ctx, PARALLEL_CONCURRENCY).await,
        "py_upload_blob" => sdk::sdk_upload(ctx, sdk::Sdk::Python, up_repo),
        "py_download_blob" => sdk::sdk_download(ctx, sdk::Sdk::Python),
        "js_upload_blob" => sdk::sdk_upload(ctx, sdk::Sdk::Js, up_repo),
        "js_download_blob" => sdk::sdk_download(ctx, sdk::Sdk::Js),
        "pull_image" => image::ours_pull_image(ctx).await,
        "skopeo_copy" => image::skopeo_copy(ctx),
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
        external: None,
    })
}
