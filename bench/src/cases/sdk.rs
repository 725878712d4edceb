//! Peers: the official Python and JS SDKs, each in its own interpreter process
//! (`bench/peers/peer_python.py`, `bench/peers/peer_js.mjs`). The case process runs the script
//! and reports the script's own time inside the SDK call and the interpreter's peak RSS and
//! CPU time (`getrusage(RUSAGE_CHILDREN)`), so the row compares like with like.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

use super::{Ctx, External, Measured, DOWNLOAD_REPO};

/// Time limit of one SDK process (the orchestrator's limit per case is longer).
const SDK_TIMEOUT: Duration = Duration::from_secs(540);

/// Which SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sdk {
    /// `azure-containerregistry` under the venv's Python.
    Python,
    /// `@azure/container-registry` under Node.
    Js,
}

/// The directory of the peer scripts (in the source tree).
fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// The line the scripts print.
#[derive(Deserialize)]
struct ScriptResult {
    op_s: f64,
    bytes: u64,
}

fn command(sdk: Sdk, ctx: &Ctx, repo: &str) -> Result<Command> {
    let tools = &ctx.tools;
    let mut cmd = match sdk {
        Sdk::Python => {
            let python = tools.python.as_ref().context("no Python with the SDK")?;
            let mut c = Command::new(python);
            c.arg(peers_dir().join("peer_python.py"));
            c
        }
        Sdk::Js => {
            let node = tools.node.as_ref().context("no Node")?;
            let modules = tools.js_modules.as_ref().context("no JS SDK installed")?;
            let mut c = Command::new(node);
            c.arg(peers_dir().join("peer_js.mjs")).arg(modules);
            c
        }
    };
    cmd.arg(&ctx.registry).arg(repo);
    Ok(cmd)
}

/// Runs `cmd` to completion (bounded by [`SDK_TIMEOUT`]): its standard output, its peak RSS
/// and CPU time, and its wall time in seconds (from spawn to exit). Its output goes through
/// files in the scratch directory, so a chatty process cannot block; a failure carries the
/// end of its standard error.
pub(super) fn run_child(ctx: &Ctx, mut cmd: Command) -> Result<(String, External, f64)> {
    let base = ctx.work.join(format!("peer-{}", std::process::id()));
    let (out_path, err_path) = (base.with_extension("out"), base.with_extension("err"));
    let t0 = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    // Bounded by the timeout.
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if t0.elapsed() > SDK_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} timed out after {SDK_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall_s = t0.elapsed().as_secs_f64();
    let external = External::of_children();
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{cmd:?} failed ({status}): {}", tail.join("\n"));
    }
    Ok((stdout, external, wall_s))
}

/// Runs the script with [`run_child`] and reads its result line.
fn run(ctx: &Ctx, cmd: Command) -> Result<(ScriptResult, External)> {
    let (stdout, external, _) = run_child(ctx, cmd)?;
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("the peer script printed no result")?;
    Ok((serde_json::from_str(line)?, external))
}

/// `upload_blob` / `uploadBlob` of the big blob file.
pub(super) fn sdk_upload(ctx: &Ctx, sdk: Sdk, repo: &str) -> Result<Measured> {
    let mut cmd = command(sdk, ctx, repo)?;
    cmd.arg("up").arg(&ctx.blob).arg(&ctx.digest);
    let (r, external) = run(ctx, cmd)?;
    ensure!(r.bytes == ctx.size, "uploaded {} bytes", r.bytes);
    Ok(Measured::external(r.op_s, r.bytes, external))
}

/// `download_blob` / `downloadBlob` of the big blob into a sink (the SDKs verify the digest).
pub(super) fn sdk_download(ctx: &Ctx, sdk: Sdk) -> Result<Measured> {
    let mut cmd = command(sdk, ctx, DOWNLOAD_REPO)?;
    cmd.arg("down").arg(&ctx.digest).arg(ctx.size.to_string());
    let (r, external) = run(ctx, cmd)?;
    ensure!(r.bytes == ctx.size, "downloaded {} bytes", r.bytes);
    Ok(Measured::external(r.op_s, r.bytes, external))
}
