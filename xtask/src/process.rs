//! Running external commands with a time limit, shared by the xtask subcommands.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

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
