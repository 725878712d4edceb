//! Running external commands with a time limit, shared by the xtask subcommands.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The longest `apt-get update` may take.
const APT_UPDATE_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest one `apt-get install` may take.
const APT_INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// The workspace's target directory (`CARGO_TARGET_DIR` when set, relative to `root`).
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root.join(d),
        None => root.join("target"),
    }
}

/// apt-get, with `update` run at most once per invocation.
#[derive(Default)]
pub struct Apt {
    updated: bool,
}

impl Apt {
    /// Installs `packages` (as root; otherwise an error naming the command to run).
    pub fn install(&mut self, packages: &[&str]) -> Result<()> {
        if !is_root() {
            bail!(
                "missing prerequisites; install them with: sudo apt-get install -y {}",
                packages.join(" ")
            );
        }
        if !self.updated {
            println!("    apt-get update");
            let status = run_bounded(
                Command::new("apt-get").args(["update", "-q"]),
                APT_UPDATE_TIMEOUT,
                "apt-get update",
            )?;
            if !status.success() {
                bail!("apt-get update failed ({status})");
            }
            self.updated = true;
        }
        println!("    apt-get install -y {}", packages.join(" "));
        let status = run_bounded(
            Command::new("apt-get")
                .args(["install", "-y", "-q"])
                .args(packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            APT_INSTALL_TIMEOUT,
            "apt-get install",
        )?;
        if !status.success() {
            bail!(
                "apt-get install -y {} failed ({status})",
                packages.join(" ")
            );
        }
        Ok(())
    }
}

/// Runs `cmd` (inheriting stdout and stderr, no stdin), killing it after `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration, what: &str) -> Result<ExitStatus> {
    let mut child = cmd
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let start = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for {what}"))?
        {
            return Ok(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {timeout:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether this process runs as root (uid 0), from `/proc/self/status`.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
