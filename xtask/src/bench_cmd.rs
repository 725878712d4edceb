//! `cargo xtask bench [--size 1GiB] [--reps 5] [--json out.json] [--quick] […]`: installs
//! `docker-registry` when missing (apt-get, as root), then runs the `acr_bench` package in
//! release mode: limits, this client and oci-client side by side in one interleaved run.
//! Results: `target/bench/results.json` and `target/bench/results.md` (`--help` for all options).
//! With `--readme`, the Markdown results also replace the section of README.md between
//! `<!-- bench:start -->` and `<!-- bench:end -->`.

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
    let update_readme = args.iter().any(|a| a == "--readme");
    let args: Vec<String> = args.iter().filter(|a| *a != "--readme").cloned().collect();
    if update_readme && args.iter().any(|a| a == "--out-dir") {
        bail!("--readme reads the results from the default directory: drop --out-dir");
    }
    let help = args.iter().any(|a| a == "-h" || a == "--help");
    if !help {
        ensure_docker_registry()?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["run", "--release", "-p", "acr_bench", "--"])
        .args(&args);
    let status = run_bounded(&mut cmd, BENCH_TIMEOUT, "the benchmark")?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    if update_readme && !help {
        let results = std::fs::read_to_string(root.join("target/bench/results.md"))
            .context("reading target/bench/results.md")?;
        let readme_path = root.join("README.md");
        let readme = std::fs::read_to_string(&readme_path).context("reading README.md")?;
        std::fs::write(&readme_path, replace_section(&readme, &results)?)
            .context("writing README.md")?;
        println!("==> README.md: performance section updated");
    }
    Ok(())
}

const START: &str = "<!-- bench:start -->";
const END: &str = "<!-- bench:end -->";

/// `readme` with the text between the bench markers replaced by `results`.
fn replace_section(readme: &str, results: &str) -> Result<String> {
    let (Some(a), Some(b)) = (readme.find(START), readme.find(END)) else {
        bail!("README.md has no {START} … {END} section");
    };
    if b < a {
        bail!("README.md: {END} comes before {START}");
    }
    Ok(format!(
        "{}{START}\n{}\n{}",
        &readme[..a],
        results.trim_end(),
        &readme[b..]
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_marked_section_changes() {
        let readme = format!("intro\n{START}\nold table\n{END}\nafter\n");
        let out = replace_section(&readme, "new table\n").unwrap();
        assert_eq!(out, format!("intro\n{START}\nnew table\n{END}\nafter\n"));
        assert!(replace_section("no markers", "x").is_err());
        assert!(replace_section(&format!("{END}{START}"), "x").is_err());
    }
}
