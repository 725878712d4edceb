//! `emulator_load` (`cargo xtask bench --cases emulator_load [--seconds 60] [--clients 200]`):
//! the release emulator binary under many concurrent raw-HTTP clients mixing pushes (blob
//! POST + PUT, tagged manifest PUT) and pulls (manifest GET by tag, blob GET), in memory mode
//! and in `--data-dir` mode. Per mode: ops/s, p50/p99 per operation, errors and the
//! emulator's peak RSS (`VmHWM`). Results: `target/bench/emulator_load.md`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};

/// Repositories the clients spread over.
const REPOS: usize = 50;
/// Distinct images a client cycles through (bounds the metadata size).
const IMAGES_PER_CLIENT: usize = 20;
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Operation kinds, in report order.
const OPS: [&str; 5] = [
    "blob POST",
    "blob PUT",
    "manifest PUT",
    "manifest GET",
    "blob GET",
];

/// Options of the load case.
struct LoadArgs {
    seconds: u64,
    clients: usize,
}

fn parse(args: &[String]) -> Result<LoadArgs> {
    let mut out = LoadArgs {
        seconds: 60,
        clients: 200,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => out.seconds = it.next().context("--seconds N")?.parse()?,
            "--clients" => out.clients = it.next().context("--clients N")?.parse()?,
            "--cases" => {
                it.next();
            }
            other => bail!("emulator_load: unknown option {other:?} (--seconds N, --clients N)"),
        }
    }
    ensure!(
        out.seconds > 0 && out.clients > 0,
        "--seconds and --clients must be > 0"
    );
    Ok(out)
}

/// Whether the arguments ask for the load case.
pub fn requested(args: &[String]) -> bool {
    args.windows(2)
        .any(|w| w[0] == "--cases" && w[1].split(',').any(|c| c == "emulator_load"))
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The emulator binary: `ACR_EMULATOR_BIN`, or `acr-emulator` next to this binary.
fn emulator_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ACR_EMULATOR_BIN") {
        return Ok(p.into());
    }
    let exe = std::env::current_exe()?;
    let p = exe.with_file_name("acr-emulator");
    ensure!(
        p.is_file(),
        "{} is missing: cargo build --release -p azure_containerregistry_emulator",
        p.display()
    );
    Ok(p)
}

/// The emulator process; killed on drop.
struct Emulator {
    child: Child,
    endpoint: String,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    fn start(dir: Option<&Path>) -> Result<Self> {
        let mut cmd = Command::new(emulator_bin()?);
        cmd.args(["--port", "0", "--no-redirect-blobs"]);
        if let Some(d) = dir {
            cmd.arg("--data-dir").arg(d);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting acr-emulator")?;
        let stdout = child.stdout.take().context("emulator stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let endpoint = line.trim().to_owned();
        ensure!(
            endpoint.starts_with("http"),
            "emulator printed {endpoint:?}"
        );
        Ok(Emulator { child, endpoint })
    }

    /// Peak resident set (`VmHWM`) in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

/// Latencies (µs) per operation and error count of one client.
#[derive(Default)]
struct Stats {
    lat: BTreeMap<&'static str, Vec<u64>>,
    errors: u64,
    first_error: Option<String>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        for (k, v) in other.lat {
            self.lat.entry(k).or_default().extend(v);
        }
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// One timed request (until its whole body is read): its latency is recorded, a status other
/// than `want` counts as an error. Returns the answer's headers.
async fn timed(
    stats: &mut Stats,
    op: &'static str,
    want: u16,
    req: reqwest::RequestBuilder,
) -> Option<reqwest::header::HeaderMap> {
    let t = Instant::now();
    let result = match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            match r.bytes().await {
                Ok(_) if status == want => Ok(headers),
                Ok(body) => Err(format!("{op}: {status} {}", String::from_utf8_lossy(&body))),
                Err(e) => Err(format!("{op}: {e}")),
            }
        }
        Err(e) => Err(format!("{op}: {e}")),
    };
    stats
        .lat
        .entry(op)
        .or_default()
        .push(t.elapsed().as_micros() as u64);
    match result {
        Ok(h) => Some(h),
        Err(e) => {
            stats.errors += 1;
            stats.first_error.get_or_insert(e);
            None
        }
    }
}

/// The config blob every image of a repository shares (pushed once before the run).
fn config_bytes(repo: usize) -> Vec<u8> {
    format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"repo\":{repo}}}").into_bytes()
}

fn layer_bytes(client: usize, image: usize) -> Vec<u8> {
    format!("layer of client {client} image {image} ")
        .repeat(32)
        .into_bytes()
}

fn manifest_bytes(repo: usize, layer: &[u8]) -> Vec<u8> {
    let config = config_bytes(repo);
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": LAYER, "digest": sha(layer), "size": layer.len()}],
    }))
    .unwrap_or_default()
}

/// Pushes one image (blob POST + PUT, tagged manifest PUT).
async fn push(c: &reqwest::Client, base: &str, client: usize, image: usize, s: &mut Stats) -> bool {
    let repo = client % REPOS;
    let layer = layer_bytes(client, image);
    let digest = sha(&layer);
    let Some(r) = timed(
        s,
        "blob POST",
        202,
        c.post(format!("{base}/v2/load/r{repo}/blobs/uploads/")),
    )
    .await
    else {
        return false;
    };
    let Some(location) = r
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
    else {
        s.errors += 1;
        return false;
    };
    let url = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}digest={}", digest.replace(':', "%3A"));
    if timed(s, "blob PUT", 201, c.put(url).body(layer.clone()))
        .await
        .is_none()
    {
        return false;
    }
    let manifest = manifest_bytes(repo, &layer);
    timed(
        s,
        "manifest PUT",
        201,
        c.put(format!(
            "{base}/v2/load/r{repo}/manifests/c{client}-{image}"
        ))
        .header("content-type", MANIFEST)
        .body(manifest),
    )
    .await
    .is_some()
}

/// Pulls one image this client pushed (manifest GET by tag, blob GET).
async fn pull(c: &reqwest::Client, base: &str, client: usize, image: usize, s: &mut Stats) {
    let repo = client % REPOS;
    let layer = layer_bytes(client, image);
    if timed(
        s,
        "manifest GET",
        200,
        c.get(format!(
            "{base}/v2/load/r{repo}/manifests/c{client}-{image}"
        ))
        .header("accept", MANIFEST),
    )
    .await
    .is_none()
    {
        return;
    }
    timed(
        s,
        "blob GET",
        200,
        c.get(format!("{base}/v2/load/r{repo}/blobs/{}", sha(&layer))),
    )
    .await;
}

/// One client: push and pull alternately until `deadline`.
async fn client_loop(
    c: reqwest::Client,
    base: Arc<str>,
    client: usize,
    deadline: Instant,
) -> Stats {
    let mut s = Stats::default();
    let (mut pushes, mut pulls) = (0usize, 0usize);
    let mut i = 0usize;
    while Instant::now() < deadline {
        if i.is_multiple_of(2) || pushes == 0 {
            if push(&c, &base, client, pushes % IMAGES_PER_CLIENT, &mut s).await {
                pushes += 1;
            }
        } else {
            let image = pulls % pushes.min(IMAGES_PER_CLIENT);
            pull(&c, &base, client, image, &mut s).await;
            pulls += 1;
        }
        i += 1;
    }
    s
}

/// Pushes each repository's shared config blob.
async fn seed(c: &reqwest::Client, base: &str) -> Result<()> {
    for repo in 0..REPOS {
        let config = config_bytes(repo);
        let url = format!(
            "{base}/v2/load/r{repo}/blobs/uploads/?digest={}",
            sha(&config).replace(':', "%3A")
        );
        let r = c.post(url).body(config).send().await?;
        ensure!(r.status() == 201, "seeding config: {}", r.status());
    }
    Ok(())
}

/// The figures of one mode.
struct ModeResult {
    mode: &'static str,
    ops_per_s: f64,
    errors: u64,
    first_error: Option<String>,
    peak_rss_kib: Option<u64>,
    lat: BTreeMap<&'static str, (usize, u64, u64)>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run_mode(mode: &'static str, dir: Option<&Path>, a: &LoadArgs) -> Result<ModeResult> {
    let emu = Emulator::start(dir)?;
    let base: Arc<str> = emu.endpoint.clone().into();
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(a.clients)
        .timeout(Duration::from_secs(30))
        .build()?;
    seed(&c, &base).await?;
    println!(
        "==> emulator_load {mode}: {} clients for {} s",
        a.clients, a.seconds
    );
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds);
    let tasks: Vec<_> = (0..a.clients)
        .map(|k| tokio::spawn(client_loop(c.clone(), base.clone(), k, deadline)))
        .collect();
    let mut all = Stats::default();
    for t in tasks {
        all.merge(t.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let peak_rss_kib = emu.peak_rss_kib();
    drop(emu);
    let total: usize = all.lat.values().map(Vec::len).sum();
    let mut lat = BTreeMap::new();
    for (k, mut v) in all.lat {
        v.sort_unstable();
        lat.insert(k, (v.len(), percentile(&v, 0.5), percentile(&v, 0.99)));
    }
    Ok(ModeResult {
        mode,
        ops_per_s: total as f64 / elapsed,
        errors: all.errors,
        first_error: all.first_error,
        peak_rss_kib,
        lat,
    })
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn markdown(results: &[ModeResult], a: &LoadArgs) -> String {
    let mut out = format!(
        "{} concurrent raw-HTTP clients for {} s, half pushes (blob POST + PUT, tagged manifest PUT), half pulls (manifest GET by tag, blob GET); release build.\n\n",
        a.clients, a.seconds
    );
    out.push_str("| mode | ops/s | errors | peak RSS |");
    for op in OPS {
        out.push_str(&format!(" {op} p50 / p99 |"));
    }
    out.push_str("\n|---|---:|---:|---:|");
    for _ in OPS {
        out.push_str("---:|");
    }
    out.push('\n');
    for r in results {
        let rss = r
            .peak_rss_kib
            .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
            .unwrap_or_else(|| "?".into());
        out.push_str(&format!(
            "| {} | {:.0} | {} | {rss} |",
            r.mode, r.ops_per_s, r.errors
        ));
        for op in OPS {
            match r.lat.get(op) {
                Some((_, p50, p99)) => out.push_str(&format!(" {} / {} |", ms(*p50), ms(*p99))),
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out
}

/// Runs the load case (both modes) and writes `target/bench/emulator_load.md`.
pub fn main(args: &[String]) -> Result<()> {
    let a = parse(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench has no parent directory")?
        .to_path_buf();
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let data = out_dir.join(format!("load-data-{}", std::process::id()));
    let results = rt.block_on(async {
        let memory = run_mode("memory", None, &a).await?;
        std::fs::create_dir_all(&data)?;
        let dir = run_mode("--data-dir", Some(&data), &a).await;
        let _ = std::fs::remove_dir_all(&data);
        anyhow::Ok(vec![memory, dir?])
    })?;
    for r in &results {
        if let Some(e) = &r.first_error {
            println!("{}: first error: {e}", r.mode);
        }
    }
    let md = markdown(&results, &a);
    println!("{md}");
    std::fs::write(out_dir.join("emulator_load.md"), &md)?;
    Ok(())
}
