//! `cargo xtask bench [--size 1GiB] [--reps 5] [--json out.json] [--quick] […]`: installs
//! `docker-registry` when missing (apt-get, as root), then runs the `acr_bench` package in
//! release mode: limits, this client and oci-client side by side in one interleaved run.
//! Results: `target/bench/results.json` and `target/bench/results.md` (`--help` for all options).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::{is_root, run_bounded};
use anyhow::{bail, Context, Result};

/// Where Debian installs `docker-registry` (the path `acr_test_support` runs).
const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";
const APT_UPDATE_TIMEOUT: Duration = Duration::from_secs(300);
const APT_INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
/// The release build plus the default run (1 GiB, 5 repetitions) stay well below this.
const BENCH_TIMEOUT: Duration = Duration::from_secs(3600);

/// Runs `cargo xtask bench ARGS…`; `args` go to the bench binary.
pub fn run(args: &[String]) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")?;
    let help = args.iter().any(|a| a == "-h" || a == "--help");
    if !help {
        ensure_docker_registry()?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["run", "--release", "-p", "acr_bench", "--"])
        .args(args);
    let status = run_bounded(&mut cmd, BENCH_TIMEOUT, "the benchmark")?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

fn ensure_docker_registry() -> Result<()> {
    if Path::new(DOCKER_REGISTRY).is_file() {
        return Ok(());
    }
    if !is_root() {
        bail!("{DOCKER_REGISTRY} is missing; install it with: sudo apt-get install -y docker-registry");
    }
    println!("==> installing docker-registry (apt-get)");
    let status = run_bounded(
        Command::new("apt-get").args(["update", "-q"]),
        APT_UPDATE_TIMEOUT,
        "apt-get update",
    )?;
    if !status.success() {
        bail!("apt-get update failed ({status})");
    }
    let status = run_bounded(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "docker-registry"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        APT_INSTALL_TIMEOUT,
        "apt-get install docker-registry",
    )?;
    if !status.success() || !Path::new(DOCKER_REGISTRY).is_file() {
        bail!("apt-get install docker-registry failed ({status})");
    }
    Ok(())
}
