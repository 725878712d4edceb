//! The orchestrator: servers, data, the interleaved repetitions, one process per case.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures::{StreamExt, TryStreamExt};
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::cases::{
    CaseDef, CaseResult, Ctx, Server, CASES, DIAG_CASES, DOWNLOAD_REPO, OCI_MANIFEST,
    RESULT_PREFIX, TINY_REPO,
};
use crate::report::{self, Config, RepResult};

/// Prefix of the per-run scratch directories on tmpfs.
const SHM_PREFIX: &str = "acr-bench-";
/// Time limit of one case process.
const CASE_TIMEOUT: Duration = Duration::from_secs(600);
/// Time limit for the emulator to print its endpoint.
const EMULATOR_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Parallel requests while seeding the emulator's repositories.
const SEED_CONCURRENCY: usize = 16;

const USAGE: &str = "\
usage: acr_bench [--size 1GiB] [--reps 5] [--json out.json] [--quick] [--cases a,b,…]
                 [--tiny-n 200] [--repos 10000] [--page-size 100] [--out-dir DIR]
  --quick      64 MiB blob, 2 repetitions (unless --size / --reps are given)
  --cases      only these cases (comma-separated names; ratios need their limit case too);
               also the diagnostic cases diag_patch_serial, diag_patch_overlap, diag_patch_stream
               (ACR_BENCH_DIAG_SEGMENT_MIB=n: PATCHes of n MiB)
Results: DIR/results.json and DIR/results.md (DIR defaults to <target>/bench).";

/// Parsed command line.
struct Args {
    size: u64,
    reps: u32,
    json: Option<PathBuf>,
    cases: Option<Vec<String>>,
    tiny_n: usize,
    repos: usize,
    page_size: u32,
    out_dir: PathBuf,
    command_line: String,
}

fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: u64 = num.parse().with_context(|| format!("bad size {s:?}"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => bail!("bad size unit in {s:?} (use KiB, MiB or GiB)"),
    };
    let size = num.checked_mul(mult).context("size overflows")?;
    ensure!(size > 0, "size must be positive");
    Ok(size)
}

fn default_out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
            bench.parent().unwrap_or(bench).join("target")
        });
    target.join("bench")
}

fn parse_args(args: &[String]) -> Result<Option<Args>> {
    let (mut size, mut reps, mut json, mut quick, mut cases) = (None, None, None, false, None);
    let (mut tiny_n, mut repos, mut page_size, mut out_dir) = (200, 10_000, 100, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--size" => size = Some(parse_size(value()?)?),
            "--reps" => reps = Some(value()?.parse().context("--reps")?),
            "--json" => json = Some(PathBuf::from(value()?)),
            "--quick" => quick = true,
            "--cases" => cases = Some(value()?.split(',').map(str::to_string).collect::<Vec<_>>()),
            "--tiny-n" => tiny_n = value()?.parse().context("--tiny-n")?,
            "--repos" => repos = value()?.parse().context("--repos")?,
            "--page-size" => page_size = value()?.parse().context("--page-size")?,
            "--out-dir" => out_dir = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if let Some(names) = &cases {
        for n in names {
            ensure!(
                CASES.iter().chain(DIAG_CASES).any(|c| c.name == n),
                "unknown case {n:?}; cases: {}",
                CASES
                    .iter()
                    .chain(DIAG_CASES)
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let reps = reps.unwrap_or(if quick { 2 } else { 5 });
    ensure!((1..=100).contains(&reps), "--reps must be 1..=100");
    ensure!(
        tiny_n >= 1 && repos >= 1 && page_size >= 1,
        "--tiny-n, --repos and --page-size must be positive"
    );
    Ok(Some(Args {
        size: size.unwrap_or(if quick { 64 << 20 } else { 1 << 30 }),
        reps,
        json,
        cases,
        tiny_n,
        repos,
        page_size,
        out_dir: out_dir.unwrap_or_else(default_out_dir),
        command_line: std::iter::once("acr_bench".to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
    }))
}

/// The tmpfs scratch directory of this run; removed on drop (also on errors).
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("warning: could not remove {}: {e}", self.0.display());
            }
        }
    }
}

/// Removes scratch directories of earlier runs whose process is gone (killed runs).
fn remove_stale_work_dirs() {
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(SHM_PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("removing stale {}", e.path().display());
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The emulator in a child process (this binary with `--serve-emulator`): its CPU is not the
/// client's. Killed on drop; it also exits when our end of its stdin closes.
struct EmulatorProcess {
    child: Child,
    endpoint: String,
}

impl EmulatorProcess {
    fn start() -> Result<Self> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let mut child = Command::new(exe)
            .arg("--serve-emulator")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning the emulator process")?;
        let stdout = child.stdout.take().context("emulator stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let r = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(r);
        });
        let mut emu = EmulatorProcess {
            child,
            endpoint: String::new(),
        };
        let line = rx
            .recv_timeout(EMULATOR_START_TIMEOUT)
            .context("the emulator did not print its endpoint in time")?
            .context("reading the emulator endpoint")?;
        let endpoint = line.trim().to_string();
        ensure!(
            endpoint.starts_with("http://"),
            "emulator printed {endpoint:?}"
        );
        emu.endpoint = endpoint;
        Ok(emu)
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `acr_bench --serve-emulator`: an in-memory emulator on a free port; prints the endpoint and
/// serves until stdin closes.
pub fn serve_emulator() -> Result<()> {
    use azure_containerregistry_emulator::{Emulator, EmulatorOptions};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let emu = Emulator::start(EmulatorOptions {
            port: 0,
            ..EmulatorOptions::default()
        })
        .await?;
        println!("{}", emu.endpoint());
        // Serve until the parent closes our stdin (or dies).
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await?;
        emu.shutdown().await;
        Ok(())
    })
}

/// Seeded random blob of `size` bytes at `path`; returns its digest.
fn make_blob(path: &Path, size: u64) -> Result<String> {
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

/// POST + PUT (monolithic) of `body` with a known digest.
async fn put_blob(
    c: &reqwest::Client,
    base: &str,
    repo: &str,
    digest: &str,
    body: reqwest::Body,
    len: u64,
) -> Result<()> {
    let r = c
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .header("content-length", 0)
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 202,
        "POST upload to {repo}: {}",
        r.status()
    );
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
    let r = c
        .put(format!("{loc}{sep}digest={digest}"))
        .header("content-length", len)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 201,
        "PUT upload to {repo}: {}",
        r.status()
    );
    Ok(())
}

async fn put_manifest(c: &reqwest::Client, base: &str, repo: &str, manifest: &[u8]) -> Result<()> {
    let r = c
        .put(format!("{base}/v2/{repo}/manifests/latest"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_vec())
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 201,
        "PUT manifest {repo}: {}",
        r.status()
    );
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

/// The download repository gets the big blob; `bench/tiny:latest` gets a small manifest.
async fn seed_registry(base: &str, blob: &Path, digest: &str, size: u64) -> Result<()> {
    let c = reqwest::Client::new();
    let file = tokio::fs::File::open(blob).await?;
    let body =
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    put_blob(&c, base, DOWNLOAD_REPO, digest, body, size).await?;
    let layer: Vec<u8> = (0..1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let (ld, cd) = (sha256_hex(&layer), sha256_hex(config));
    put_blob(
        &c,
        base,
        TINY_REPO,
        &ld,
        layer.clone().into(),
        layer.len() as u64,
    )
    .await?;
    put_blob(
        &c,
        base,
        TINY_REPO,
        &cd,
        config.to_vec().into(),
        config.len() as u64,
    )
    .await?;
    put_manifest(
        &c,
        base,
        TINY_REPO,
        &manifest_json(&cd, config.len(), &[(ld, layer.len())]),
    )
    .await
}

/// `repos` repositories in the emulator, each with one tiny manifest: the config blob is
/// uploaded once and mounted into the others.
async fn seed_emulator(base: &str, repos: usize) -> Result<()> {
    let c = reqwest::Client::new();
    let config = b"{}";
    let cd = sha256_hex(config);
    let manifest = manifest_json(&cd, config.len(), &[]);
    let name = |i: usize| format!("bench/r{i:05}");
    let first = name(0);
    put_blob(
        &c,
        base,
        &first,
        &cd,
        config.to_vec().into(),
        config.len() as u64,
    )
    .await?;
    put_manifest(&c, base, &first, &manifest).await?;
    futures::stream::iter(1..repos)
        .map(|i| {
            let (c, cd, manifest, first) = (&c, &cd, &manifest, &first);
            async move {
                let repo = name(i);
                let r = c
                    .post(format!(
                        "{base}/v2/{repo}/blobs/uploads/?mount={cd}&from={first}"
                    ))
                    .header("content-length", 0)
                    .send()
                    .await?;
                ensure!(
                    r.status().as_u16() == 201,
                    "mount into {repo}: {}",
                    r.status()
                );
                put_manifest(c, base, &repo, manifest).await
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Deletes the repository's link to the blob so that the next upload transfers every byte.
fn unlink(rt: &tokio::runtime::Runtime, base: &str, repo: &str, digest: &str) -> Result<()> {
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

/// Set by SIGINT / SIGTERM: the run stops at the next check and cleans up (servers, tmpfs).
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::Relaxed)
}

/// Turns SIGINT and SIGTERM into [`STOP`] instead of dying with the servers still running.
fn watch_signals(rt: &tokio::runtime::Runtime) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let _guard = rt.enter();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    rt.spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("signal received: stopping and cleaning up");
        STOP.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    Ok(())
}

/// Runs one case in a fresh process of this binary; bounded by [`CASE_TIMEOUT`].
fn run_case_process(def: &CaseDef, ctx: &Ctx, work: &Path) -> Result<CaseResult> {
    let exe = std::env::current_exe()?;
    let out_path = work.join(format!("{}.out", def.name));
    let out = std::fs::File::create(&out_path)?;
    // Profiling (diagnostics only): ACR_BENCH_PERF_DIR=<dir> records each case process with
    // `perf record -g` into <dir>/<case>.<pid>.data; its CPU time then includes perf's.
    let mut command = match std::env::var_os("ACR_BENCH_PERF_DIR") {
        Some(dir) => {
            let mut perf = Command::new("perf");
            perf.arg("record")
                .arg("-F")
                .arg("999")
                .arg("-g")
                .arg("-q")
                .arg("-o")
                .arg(Path::new(&dir).join(format!("{}.{}.data", def.name, std::process::id())))
                .arg("--")
                .arg(exe);
            perf
        }
        None => Command::new(exe),
    };
    let mut child = command
        .arg("--case")
        .arg(def.name)
        .arg(serde_json::to_string(ctx)?)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawning the case process")?;
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if stop_requested() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("stopped by a signal");
        }
        if t0.elapsed() > CASE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {CASE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let text = std::fs::read_to_string(&out_path)?;
    let _ = std::fs::remove_file(&out_path);
    ensure!(
        status.success(),
        "case process failed ({status}); output: {text}"
    );
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .context("the case process printed no result")?;
    Ok(serde_json::from_str(line)?)
}

/// Entry point of the orchestrator.
pub fn main(args: &[String]) -> Result<()> {
    let Some(args) = parse_args(args)? else {
        return Ok(());
    };
    let started = Instant::now();
    remove_stale_work_dirs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    watch_signals(&rt)?;
    let work = WorkDir(PathBuf::from(format!(
        "/dev/shm/{SHM_PREFIX}{}",
        std::process::id()
    )));
    std::fs::create_dir_all(&work.0).with_context(|| format!("creating {}", work.0.display()))?;
    // Diagnostic cases run only when named.
    let selected: Vec<&CaseDef> = CASES
        .iter()
        .chain(DIAG_CASES)
        .filter(|c| match &args.cases {
            Some(names) => names.iter().any(|n| n == c.name),
            None => c.group != "diag",
        })
        .collect();

    eprintln!(
        "==> blob: {} MiB of seeded random bytes on tmpfs",
        args.size >> 20
    );
    let blob = work.0.join("blob.bin");
    let digest = make_blob(&blob, args.size)?;

    eprintln!("==> starting docker-registry (tmpfs storage) and the emulator (own process)");
    let registry =
        acr_test_support::DockerRegistry::start_with(acr_test_support::DockerRegistryOptions {
            data_dir: Some(work.0.join("registry")),
            ..Default::default()
        })?;
    let emulator = EmulatorProcess::start()?;
    let t = Instant::now();
    rt.block_on(seed_registry(
        &registry.endpoint(),
        &blob,
        &digest,
        args.size,
    ))?;
    rt.block_on(seed_emulator(&emulator.endpoint, args.repos))?;
    eprintln!(
        "    seeded in {:.1} s: registry {}, emulator {} ({} repositories)",
        t.elapsed().as_secs_f64(),
        registry.endpoint(),
        emulator.endpoint,
        args.repos
    );

    let ctx0 = Ctx {
        registry: registry.endpoint(),
        emulator: emulator.endpoint.clone(),
        blob: blob.clone(),
        digest: digest.clone(),
        size: args.size,
        work: work.0.clone(),
        rep: 0,
        tiny_n: args.tiny_n,
        page_size: args.page_size,
        repos: args.repos,
    };
    let mut results: Vec<Vec<RepResult>> = vec![Vec::new(); selected.len()];
    for rep in 1..=args.reps {
        ensure!(!stop_requested(), "stopped by a signal");
        eprintln!("==> repetition {rep}/{}", args.reps);
        for (i, def) in selected.iter().enumerate() {
            let ctx = Ctx {
                rep,
                ..ctx0.clone()
            };
            let r = (|| {
                if let Some(repo) = def.unlink_repo {
                    unlink(&rt, &registry.endpoint(), repo, &digest)?;
                }
                let server_pid = match def.server {
                    Server::Registry => Some(registry.pid()),
                    Server::Emulator => Some(emulator.child.id()),
                    Server::None => None,
                };
                let before = server_pid.and_then(crate::sys::cpu_of);
                let r = run_case_process(def, &ctx, &work.0)?;
                let after = server_pid.and_then(crate::sys::cpu_of);
                let server_cpu_s = before.zip(after).map(|(a, b)| b - a);
                Ok::<_, anyhow::Error>((r, server_cpu_s))
            })();
            let rr = match r {
                Ok((r, server_cpu_s)) => {
                    let v = report::value(def, &r);
                    eprintln!(
                        "    {:<30} {:>9.2} {:<6} rss {:>5.1} MiB  cpu {:>5.2} s",
                        def.name,
                        v,
                        report::unit_label(def.unit),
                        r.hwm_kib as f64 / 1024.0,
                        r.user_s + r.sys_s
                    );
                    RepResult {
                        result: Some(r),
                        server_cpu_s,
                        error: None,
                    }
                }
                Err(e) => {
                    eprintln!("    {:<30} FAILED: {e:#}", def.name);
                    RepResult {
                        result: None,
                        server_cpu_s: None,
                        error: Some(format!("{e:#}")),
                    }
                }
            };
            results[i].push(rr);
            ensure!(!stop_requested(), "stopped by a signal");
        }
    }
    drop(rt);
    let config = Config {
        command_line: args.command_line.clone(),
        size: args.size,
        reps: args.reps,
        tiny_n: args.tiny_n,
        repos: args.repos,
        page_size: args.page_size,
        parallel_concurrency: crate::cases::PARALLEL_CONCURRENCY,
        registry_version: registry_version(),
        wall_s: started.elapsed().as_secs_f64(),
    };
    let summary = report::summarize(&config, &selected, &results);
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let json = serde_json::to_string_pretty(&summary)?;
    let json_path = args.out_dir.join("results.json");
    std::fs::write(&json_path, &json)
        .with_context(|| format!("writing {}", json_path.display()))?;
    if let Some(p) = &args.json {
        std::fs::write(p, &json).with_context(|| format!("writing {}", p.display()))?;
    }
    let md = report::markdown(&summary);
    let md_path = args.out_dir.join("results.md");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    println!("{md}");
    eprintln!(
        "==> wrote {} and {} ({:.0} s)",
        json_path.display(),
        md_path.display(),
        started.elapsed().as_secs_f64()
    );
    // Stop the servers before the scratch directory goes (drop order: emulator, registry, work).
    drop(emulator);
    drop(registry);
    drop(work);
    let failed = summary
        .cases
        .iter()
        .filter(|c| !c.errors.is_empty())
        .count();
    ensure!(failed == 0, "{failed} case(s) had failures (see above)");
    Ok(())
}

fn registry_version() -> String {
    Command::new(acr_test_support::DOCKER_REGISTRY_BIN)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
