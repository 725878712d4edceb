//! `cargo xtask test`: install the test prerequisites, then run the whole test suite.
//!
//! 1. `docker-registry` (Debian's CNCF distribution 2.8) and `skopeo` must exist; when missing
//!    and running as root they are installed with apt-get, otherwise the command fails naming
//!    what to install.
//! 2. A Python venv at `<target>/pyvenv` gets `azure-containerregistry` and `azure-core`
//!    (skipped when they already import); its interpreter is passed to the tests as
//!    `ACR_TEST_PYTHON`.
//! 3. `cargo test --workspace --locked [ARGS…]` runs with `ACR_TEST_REQUIRE_REAL=1`, so tests
//!    fail instead of skipping when an external tool is missing.
//!
//! 4. The checks against the upstream Swagger files (`crate::upstream`) run when
//!    `ACR_UPSTREAM_SPECS` names their directory; otherwise each is named as not run.
//!
//! Every external command has a time limit (`XTASK_TEST_TIMEOUT_SECS` overrides the one for
//! `cargo test`, default 3600 s).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{run_bounded, target_dir, Apt};
use anyhow::{bail, Context, Result};

const VENV_TIMEOUT: Duration = Duration::from_secs(120);
const PIP_TIMEOUT: Duration = Duration::from_secs(600);
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// Where Debian installs `docker-registry` (the path `acr_test_support` runs).
const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";
/// Python packages the conformance tests need in the venv.
const PIP_PACKAGES: &[&str] = &["azure-containerregistry", "azure-core"];
/// Python import that proves the packages are there.
const PY_IMPORT_CHECK: &str = "import azure.containerregistry, azure.core";

/// Runs `cargo xtask test [ARGS…]`; `args` are passed on to `cargo test`.
pub fn run(args: &[String]) -> Result<()> {
    let root = repo_root()?;
    let mut apt = Apt::default();

    step(1, "checking docker-registry and skopeo");
    ensure_system_tools(&mut apt)?;

    step(2, "preparing the Python venv with the Azure SDK");
    let python = ensure_python_venv(&root, &mut apt)?;
    println!("    ACR_TEST_PYTHON={}", python.display());

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let timeout = std::env::var("XTASK_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(DEFAULT_TEST_TIMEOUT, Duration::from_secs);
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .args(["test", "--workspace", "--locked"])
        .args(args)
        .env("ACR_TEST_REQUIRE_REAL", "1")
        .env("ACR_TEST_PYTHON", &python);
    step(
        3,
        &format!(
            "ACR_TEST_REQUIRE_REAL=1 cargo test --workspace --locked{}{}",
            if args.is_empty() { "" } else { " " },
            args.join(" ")
        ),
    );
    let status = run_bounded(&mut cmd, timeout, "cargo test")?;
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    step(4, "checks against the upstream Swagger files");
    match crate::upstream::Upstream::locate(None)? {
        Some(up) => crate::upstream::run_all(&up)?,
        None => crate::upstream::report_skipped(),
    }
    println!("==> all tests passed");
    Ok(())
}

fn step(n: u32, what: &str) {
    println!("==> [{n}/4] {what}");
}

fn repo_root() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

fn ensure_system_tools(apt: &mut Apt) -> Result<()> {
    let mut missing = Vec::new();
    if !Path::new(DOCKER_REGISTRY).is_file() {
        missing.push("docker-registry");
    }
    if find_in_path("skopeo").is_none() {
        missing.push("skopeo");
    }
    if missing.is_empty() {
        println!("    found {DOCKER_REGISTRY} and skopeo");
        return Ok(());
    }
    println!("    missing: {}", missing.join(", "));
    apt.install(&["docker-registry", "skopeo"])?;
    if !Path::new(DOCKER_REGISTRY).is_file() || find_in_path("skopeo").is_none() {
        bail!("docker-registry or skopeo still missing after apt-get install");
    }
    Ok(())
}

fn ensure_python_venv(root: &Path, apt: &mut Apt) -> Result<PathBuf> {
    let venv = target_dir(root).join("pyvenv");
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        let system_python = match find_in_path("python3") {
            Some(p) => p,
            None => {
                apt.install(&["python3", "python3-venv"])?;
                find_in_path("python3").context("python3 still missing after apt-get install")?
            }
        };
        println!("    {} -m venv {}", system_python.display(), venv.display());
        let mut created = create_venv(&system_python, &venv)?;
        if !created {
            // Debian's python3 needs python3-venv for ensurepip.
            let _ = std::fs::remove_dir_all(&venv);
            apt.install(&["python3-venv"])?;
            created = create_venv(&system_python, &venv)?;
        }
        if !created || !python.is_file() {
            bail!(
                "could not create a Python venv at {} (install python3-venv)",
                venv.display()
            );
        }
    }
    if probe_ok(Command::new(&python).args(["-c", PY_IMPORT_CHECK]))? {
        println!("    {} already installed", PIP_PACKAGES.join(", "));
    } else {
        println!("    pip install {}", PIP_PACKAGES.join(" "));
        let status = run_bounded(
            Command::new(&python)
                .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
                .args(PIP_PACKAGES),
            PIP_TIMEOUT,
            "pip install",
        )?;
        if !status.success() {
            bail!("pip install {} failed ({status})", PIP_PACKAGES.join(" "));
        }
        if !probe_ok(Command::new(&python).args(["-c", PY_IMPORT_CHECK]))? {
            bail!(
                "the venv at {} cannot import the Azure SDK after pip install",
                venv.display()
            );
        }
    }
    Ok(python)
}

/// The venv of step 2 (created or completed when needed), for the Python peer of
/// `cargo xtask bench`.
pub(crate) fn python_venv() -> Result<PathBuf> {
    ensure_python_venv(&repo_root()?, &mut Apt::default())
}

fn create_venv(python: &Path, venv: &Path) -> Result<bool> {
    Ok(run_bounded(
        Command::new(python).arg("-m").arg("venv").arg(venv),
        VENV_TIMEOUT,
        "python3 -m venv",
    )?
    .success())
}

fn find_in_path(name: impl AsRef<OsStr>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name.as_ref()))
        .find(|p| p.is_file())
}

/// Whether `cmd` exits successfully (output discarded), within [`PROBE_TIMEOUT`].
fn probe_ok(cmd: &mut Command) -> Result<bool> {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    Ok(run_bounded(cmd, PROBE_TIMEOUT, "probe")?.success())
}
