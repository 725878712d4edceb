//! The orchestrator: servers, data, the interleaved repetitions under each profile, one
//! process per case.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::args::{parse_args, Args, ProfileArgs};
use crate::cases::{CaseDef, CaseResult, Ctx, Profile, Server, CASES, DIAG_CASES, RESULT_PREFIX};
use crate::report::{self, Config, ProfileConfig, RepResult, Row};
use crate::servers::ServerProcess;

/// Prefix of the per-run scratch directories on tmpfs.
const SHM_PREFIX: &str = "acr-bench-";
/// Time limit of one case process.
const CASE_TIMEOUT: Duration = Duration::from_secs(600);

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
                .arg(Path::new(&dir).join(format!(
                    "{}-{}.{}.data",
                    ctx.profile.name(),
                    def.name,
                    std::process::id()
                )))
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

/// One profile's blob and endpoint.
struct ProfileSetup {
    args: ProfileArgs,
    blob: PathBuf,
    digest: String,
    /// The shaping proxy (WAN).
    shaper: Option<ServerProcess>,
}

impl ProfileSetup {
    fn registry_endpoint(&self, direct: &str) -> String {
        self.shaper
            .as_ref()
            .map_or_else(|| direct.to_string(), |s| s.endpoint().to_string())
    }
}

/// The cases of `profile` the command line selects (diagnostic cases only when named).
fn selected(args: &Args, profile: Profile) -> Vec<&'static CaseDef> {
    CASES
        .iter()
        .chain(DIAG_CASES)
        .filter(|c| c.runs_in(profile))
        .filter(|c| match &args.cases {
            Some(names) => names.iter().any(|n| n == c.name),
            None => c.group != "diag",
        })
        .collect()
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
    let found = crate::tools::find();
    for v in &found.versions {
        eprintln!("==> peer: {v}");
    }
    for why in [
        &found.python_missing,
        &found.node_missing,
        &found.skopeo_missing,
    ]
    .into_iter()
    .flatten()
    {
        eprintln!("==> peer not run: {why}");
    }

    // One blob per distinct size.
    let mut blobs: Vec<(u64, PathBuf, String)> = Vec::new();
    for p in &args.profiles {
        if blobs.iter().any(|(s, _, _)| *s == p.size) {
            continue;
        }
        eprintln!(
            "==> blob: {} of seeded random bytes on tmpfs",
            report::size_label(p.size)
        );
        let path = work.0.join(format!("blob-{}.bin", p.size));
        let digest = crate::seed::make_blob(&path, p.size)?;
        blobs.push((p.size, path, digest));
    }

    eprintln!("==> starting docker-registry (tmpfs storage) and the emulator (own process)");
    let registry =
        acr_test_support::DockerRegistry::start_with(acr_test_support::DockerRegistryOptions {
            data_dir: Some(work.0.join("registry")),
            ..Default::default()
        })?;
    let emulator = ServerProcess::emulator()?;
    let t = Instant::now();
    let seed: Vec<(&Path, &str, u64)> = blobs
        .iter()
        .map(|(s, p, d)| (p.as_path(), d.as_str(), *s))
        .collect();
    rt.block_on(crate::seed::seed_registry(&registry.endpoint(), &seed))?;
    rt.block_on(crate::seed::seed_emulator(emulator.endpoint(), args.repos))?;
    eprintln!(
        "    seeded in {:.1} s: registry {}, emulator {} ({} repositories)",
        t.elapsed().as_secs_f64(),
        registry.endpoint(),
        emulator.endpoint(),
        args.repos
    );
    let mut setups = Vec::new();
    for p in &args.profiles {
        let (_, blob, digest) = blobs
            .iter()
            .find(|(s, _, _)| *s == p.size)
            .context("blob of the profile's size")?;
        let shaper = match p.profile {
            Profile::Loopback => None,
            Profile::Wan => {
                let s = ServerProcess::shaper(
                    &registry.endpoint(),
                    args.link.rtt,
                    args.link.bytes_per_sec,
                )?;
                eprintln!(
                    "==> WAN: shaping proxy {} → registry ({:.0} ms RTT, {:.0} MiB/s per connection)",
                    s.endpoint(),
                    args.link.rtt.as_secs_f64() * 1000.0,
                    args.link.bytes_per_sec as f64 / (1u64 << 20) as f64
                );
                Some(s)
            }
        };
        setups.push(ProfileSetup {
            args: p.clone(),
            blob: blob.clone(),
            digest: digest.clone(),
            shaper,
        });
    }

    // Rows: per profile, the selected cases; peers without their interpreter are not run.
    let mut rows: Vec<Row<'static>> = Vec::new();
    for s in &setups {
        for def in selected(&args, s.args.profile) {
            rows.push(Row {
                profile: s.args.profile,
                def,
                reps: Vec::new(),
                not_run: found.missing(def.tool),
            });
        }
    }
    let max_reps = setups.iter().map(|s| s.args.reps).max().unwrap_or(0);
    for rep in 1..=max_reps {
        for s in &setups {
            if rep > s.args.reps {
                continue;
            }
            ensure!(!stop_requested(), "stopped by a signal");
            eprintln!(
                "==> {} repetition {rep}/{}",
                s.args.profile.name(),
                s.args.reps
            );
            let ctx = Ctx {
                profile: s.args.profile,
                registry: s.registry_endpoint(&registry.endpoint()),
                emulator: emulator.endpoint().to_string(),
                blob: s.blob.clone(),
                digest: s.digest.clone(),
                size: s.args.size,
                work: work.0.clone(),
                rep,
                tiny_n: s.args.tiny_n,
                page_size: args.page_size,
                repos: args.repos,
                tools: found.tools.clone(),
            };
            for row in rows
                .iter_mut()
                .filter(|r| r.profile == s.args.profile && r.not_run.is_none())
            {
                let def = row.def;
                let r = (|| {
                    if let Some(repo) = def.unlink_repo {
                        crate::seed::unlink(&rt, &registry.endpoint(), repo, &s.digest)?;
                    }
                    let server_pid = match def.server {
                        Server::Registry => Some(registry.pid()),
                        Server::Emulator => Some(emulator.pid()),
                        Server::None => None,
                    };
                    let shaper_pid = s.shaper.as_ref().map(ServerProcess::pid);
                    let before = server_pid.and_then(crate::sys::cpu_of);
                    let shaper_before = shaper_pid.and_then(crate::sys::cpu_of);
                    let r = run_case_process(def, &ctx, &work.0)?;
                    let after = server_pid.and_then(crate::sys::cpu_of);
                    let shaper_after = shaper_pid.and_then(crate::sys::cpu_of);
                    let server_cpu_s = before.zip(after).map(|(a, b)| b - a);
                    let shaper_cpu_s = shaper_before.zip(shaper_after).map(|(a, b)| b - a);
                    Ok::<_, anyhow::Error>((r, server_cpu_s, shaper_cpu_s))
                })();
                let rr = match r {
                    Ok((r, server_cpu_s, shaper_cpu_s)) => {
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
                            shaper_cpu_s,
                            error: None,
                        }
                    }
                    Err(e) => {
                        eprintln!("    {:<30} FAILED: {e:#}", def.name);
                        RepResult {
                            result: None,
                            server_cpu_s: None,
                            shaper_cpu_s: None,
                            error: Some(format!("{e:#}")),
                        }
                    }
                };
                row.reps.push(rr);
                ensure!(!stop_requested(), "stopped by a signal");
            }
        }
    }
    drop(rt);
    let mut peer_versions = found.versions.clone();
    peer_versions.extend(
        [&found.python_missing, &found.node_missing]
            .into_iter()
            .flatten()
            .map(|why| format!("not run: {why}")),
    );
    let config = Config {
        command_line: args.command_line.clone(),
        profiles: setups
            .iter()
            .map(|s| ProfileConfig {
                profile: s.args.profile,
                size: s.args.size,
                reps: s.args.reps,
                tiny_n: s.args.tiny_n,
                rtt_ms: s
                    .shaper
                    .as_ref()
                    .map(|_| args.link.rtt.as_secs_f64() * 1000.0),
                mib_per_s: s
                    .shaper
                    .as_ref()
                    .map(|_| args.link.bytes_per_sec as f64 / (1u64 << 20) as f64),
            })
            .collect(),
        repos: args.repos,
        page_size: args.page_size,
        parallel_concurrency: crate::cases::PARALLEL_CONCURRENCY,
        registry_version: registry_version(),
        peer_versions,
        wall_s: started.elapsed().as_secs_f64(),
    };
    let summary = report::summarize(&config, &rows);
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
    // Stop the servers before the scratch directory goes (proxies, emulator, registry, work).
    drop(setups);
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
