//! `cargo xtask bench [--profile both|loopback|wan] [--size 1GiB] [--reps 5] [--quick] […]`:
//! installs `docker-registry` when missing (apt-get, as root), prepares the peers that are not
//! Rust (the Python SDK in the venv `cargo xtask test` uses, `<target>/pyvenv`; the JS SDK with
//! npm into `<target>/bench-js`), then runs the `acr_bench` package in release mode: limits,
//! this client and the peers side by side in one interleaved run, on loopback and through an
//! emulated WAN link. A peer that cannot be prepared is reported as not run.
//! Results: `target/bench/results.json` and `target/bench/results.md` (`--help` for all options).
//! `cargo xtask bench --cases emulator_load [--seconds 60] [--clients 200]` runs only the
//! emulator load benchmark (release `acr-emulator`, memory and `--data-dir` modes).
//! With `--readme`, the Markdown results also replace the section of README.md between
//! `<!-- bench:start -->` and `<!-- bench:end -->`.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::{run_bounded, target_dir, Apt};
use anyhow::{bail, Context, Result};

/// Where Debian installs `docker-registry` (the path `acr_test_support` runs).
const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";
/// The release build plus the default run (both profiles) stay well below this.
const BENCH_TIMEOUT: Duration = Duration::from_secs(3600);
const NPM_TIMEOUT: Duration = Duration::from_secs(600);
/// npm packages of the JS peer (major versions pinned).
const NPM_PACKAGES: &[&str] = &["@azure/container-registry@1", "@azure/core-auth@1"];

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
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut env = Vec::new();
    if is_emulator_load(&args) {
        // The load case needs neither docker-registry nor the peers, only the release emulator.
        println!("==> release build of acr-emulator");
        let status = run_bounded(
            Command::new(&cargo).current_dir(&root).args([
                "build",
                "--release",
                "-p",
                "azure_containerregistry_emulator",
                "--bin",
                "acr-emulator",
            ]),
            BENCH_TIMEOUT,
            "building acr-emulator",
        )?;
        if !status.success() {
            bail!("building acr-emulator failed ({status})");
        }
        let bin = target_dir(&root).join("release/acr-emulator");
        env.push(("ACR_EMULATOR_BIN", bin.into_os_string()));
    } else if !help {
        ensure_docker_registry()?;
        env = prepare_peers(&root);
    }
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["run", "--release", "-p", "acr_bench", "--"])
        .args(&args)
        .envs(env);
    let status = run_bounded(&mut cmd, BENCH_TIMEOUT, "the benchmark")?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    if update_readme && !help {
        // Where the bench binary writes by default: the target directory, which
        // `CARGO_TARGET_DIR` may move out of the checkout.
        let path = target_dir(&root).join("bench/results.md");
        let results = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let readme_path = root.join("README.md");
        let readme = std::fs::read_to_string(&readme_path).context("reading README.md")?;
        std::fs::write(&readme_path, replace_section(&readme, &results)?)
            .context("writing README.md")?;
        println!("==> README.md: performance section updated");
    }
    Ok(())
}

/// Whether the arguments select the `emulator_load` case (run on its own).
fn is_emulator_load(args: &[String]) -> bool {
    args.windows(2)
        .any(|w| w[0] == "--cases" && w[1].split(',').any(|c| c == "emulator_load"))
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

/// Prepares the Python and JS peers; the environment that tells the bench where they are.
/// Failures are printed and leave that peer out (the bench reports it as not run).
fn prepare_peers(root: &Path) -> Vec<(&'static str, OsString)> {
    let mut env = Vec::new();
    println!("==> Python peer: the venv of `cargo xtask test`");
    match crate::test_cmd::python_venv() {
        Ok(python) => env.push(("ACR_BENCH_PYTHON", python.into_os_string())),
        Err(e) => println!("    the Python peer will not run: {e:#}"),
    }
    let js = target_dir(root).join("bench-js");
    match ensure_js_sdk(&js) {
        Ok(()) => env.push(("ACR_BENCH_JS_MODULES", js.into_os_string())),
        Err(e) => println!("    the JS peer will not run: {e:#}"),
    }
    env
}

/// `npm install` of the JS SDK into `dir` unless it is there.
fn ensure_js_sdk(dir: &Path) -> Result<()> {
    println!("==> JS peer: {}", NPM_PACKAGES.join(" "));
    if dir
        .join("node_modules/@azure/container-registry/package.json")
        .is_file()
    {
        println!("    already installed in {}", dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let manifest = dir.join("package.json");
    if !manifest.is_file() {
        std::fs::write(
            &manifest,
            "{\"name\": \"acr-bench-js\", \"private\": true}\n",
        )
        .with_context(|| format!("writing {}", manifest.display()))?;
    }
    println!("    npm install into {}", dir.display());
    let status = run_bounded(
        Command::new("npm")
            .current_dir(dir)
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .args(NPM_PACKAGES),
        NPM_TIMEOUT,
        "npm install",
    )?;
    if !status.success() {
        bail!("npm install failed ({status})");
    }
    Ok(())
}

fn ensure_docker_registry() -> Result<()> {
    if Path::new(DOCKER_REGISTRY).is_file() {
        return Ok(());
    }
    // Apt names the command to run when this is not root.
    println!("==> {DOCKER_REGISTRY} is missing: installing docker-registry (apt-get)");
    Apt::default().install(&["docker-registry"])?;
    if !Path::new(DOCKER_REGISTRY).is_file() {
        bail!("apt-get install docker-registry did not install {DOCKER_REGISTRY}");
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
