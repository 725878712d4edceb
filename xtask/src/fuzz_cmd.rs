//! `cargo xtask fuzz [--seconds 60] [--sanitizer none] [target…]`: run the fuzz targets of
//! `fuzz/` (a cargo-fuzz project outside the workspace), each for a bounded time, and report
//! executions and crashes. Not part of `cargo test`.
//!
//! - Installs `cargo-fuzz` with `cargo install cargo-fuzz --locked` when `cargo fuzz` is missing.
//! - Targets (default: every target of `fuzz/Cargo.toml`): `challenge` (WWW-Authenticate),
//!   `link` (Link header), `error_body`, `reference` (repository names, tags, digests,
//!   references, endpoints, scope prediction), `manifest` (typed manifest models: parse,
//!   serialize, round trip), `token_expiry` (JWT `exp`).
//! - Seeds from the ACR wire facts are written to `fuzz/corpus/<target>/` (gitignored) when
//!   missing; crashes land in `fuzz/artifacts/<target>/` and make the command fail, naming the
//!   files (reproduce with `cargo fuzz run --sanitizer none <target> <file>` in `fuzz/`).
//!
//! ## Stable toolchain
//!
//! Only a stable toolchain (1.95) exists here and no nightly can be fetched. cargo-fuzz's
//! default sanitizer (AddressSanitizer) needs `-Zsanitizer=address`, a nightly flag. With
//! `--sanitizer none` cargo-fuzz passes only flags that stable rustc accepts
//! (`-Cpasses=sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`, `--cfg fuzzing`,
//! `-Cdebug-assertions`, `-Coverflow_checks`), and libfuzzer-sys builds libFuzzer with the C++
//! compiler (`g++`): fuzzing works on stable, with coverage guidance, debug assertions and
//! overflow checks, without `RUSTC_BOOTSTRAP`. That is this command's default. The code under
//! test is safe Rust, so ASan would add little. `--sanitizer address` (or another) sets
//! `RUSTC_BOOTSTRAP=1` to let stable rustc accept `-Z` flags; that path was not verified here.
//! Changing `RUSTC_BOOTSTRAP` between runs rebuilds every dependency (cargo fingerprints it).
//!
//! The time per target is enforced by libFuzzer (`-max_total_time`), plus a hard limit on the
//! process (build time excluded: the targets are built once, first).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--sanitizer none|address|…] [target…]";

/// Per-target outcome.
struct Outcome {
    target: String,
    runs: Option<u64>,
    crashes: Vec<PathBuf>,
    ok: bool,
    elapsed: Duration,
}

/// Entry point of `cargo xtask fuzz`.
pub fn run(args: &[String]) -> Result<()> {
    let mut seconds: u64 = 60;
    let mut sanitizer = "none".to_string();
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = it.next().context(USAGE)?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--seconds {value:?}: not a number"))?;
            }
            "--sanitizer" => sanitizer = it.next().context(USAGE)?.clone(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other if other.starts_with('-') => bail!("unknown option {other:?}\n{USAGE}"),
            target => targets.push(target.to_string()),
        }
    }
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    let fuzz_dir = crate::generate::workspace_root().join("fuzz");
    ensure_cargo_fuzz()?;
    let known = list_targets(&fuzz_dir)?;
    if targets.is_empty() {
        targets = known.clone();
    }
    for t in &targets {
        if !known.contains(t) {
            bail!("unknown fuzz target {t:?}; targets: {}", known.join(", "));
        }
    }

    eprintln!(
        "building {} fuzz target(s) (sanitizer {sanitizer})…",
        targets.len()
    );
    let mut build = cargo_fuzz(&fuzz_dir, &sanitizer);
    build.args(["build", "--sanitizer", &sanitizer]);
    let status = build.status().context("running cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build failed ({status})");
    }

    let mut outcomes = Vec::new();
    for target in &targets {
        write_seeds(&fuzz_dir, target)?;
        outcomes.push(run_target(&fuzz_dir, &sanitizer, target, seconds)?);
    }

    println!(
        "\n{:<14} {:>14} {:>8} {:>9}  result",
        "target", "executions", "crashes", "seconds"
    );
    for o in &outcomes {
        let runs = o.runs.map_or_else(|| "?".to_string(), |r| r.to_string());
        let result = if o.ok { "ok" } else { "FAILED" };
        println!(
            "{:<14} {:>14} {:>8} {:>9.1}  {result}",
            o.target,
            runs,
            o.crashes.len(),
            o.elapsed.as_secs_f64()
        );
        for c in &o.crashes {
            println!("    crash input: {}", c.display());
        }
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| o.target.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {}; reproduce in fuzz/ with `cargo fuzz run --sanitizer {sanitizer} <target> <crash file>`",
            failed.join(", ")
        );
    }
    Ok(())
}

/// `cargo fuzz …` in `fuzz/`, with `RUSTC_BOOTSTRAP=1` only when a sanitizer needs `-Z` flags.
fn cargo_fuzz(fuzz_dir: &Path, sanitizer: &str) -> Command {
    let mut command = Command::new(cargo());
    command.arg("fuzz").current_dir(fuzz_dir);
    if sanitizer != "none" {
        command.env("RUSTC_BOOTSTRAP", "1");
    }
    command
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Installs cargo-fuzz when `cargo fuzz` is not available.
fn ensure_cargo_fuzz() -> Result<()> {
    let present = Command::new(cargo())
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("cargo-fuzz is missing: cargo install cargo-fuzz --locked");
    let status = Command::new(cargo())
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz --locked failed ({status})");
    }
    Ok(())
}

/// The `[[bin]]` names of `fuzz/Cargo.toml`.
fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let manifest = fuzz_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin {
            if let Some(name) = line
                .strip_prefix("name")
                .map(str::trim)
                .and_then(|l| l.strip_prefix('='))
            {
                targets.push(name.trim().trim_matches('"').to_string());
            }
        }
    }
    if targets.is_empty() {
        bail!("no [[bin]] targets in {}", manifest.display());
    }
    Ok(targets)
}

/// Runs one target for `seconds`, parsing libFuzzer's final stats.
fn run_target(fuzz_dir: &Path, sanitizer: &str, target: &str, seconds: u64) -> Result<Outcome> {
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let before = files(&artifacts);
    eprintln!("fuzzing {target} for {seconds} s…");
    let started = Instant::now();
    let mut command = cargo_fuzz(fuzz_dir, sanitizer);
    command
        .args(["run", "--sanitizer", sanitizer, target, "--"])
        .arg(format!("-max_total_time={seconds}"))
        .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command
        .spawn()
        .with_context(|| format!("starting cargo fuzz run {target}"))?;
    // libFuzzer stops itself after max_total_time; the hard limit only catches a wedged
    // process (the build is already done, so a generous margin suffices).
    let output = wait_with_limit(child, Duration::from_secs(seconds * 2 + 300))?;
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let runs = stderr
        .lines()
        .rev()
        .filter_map(|l| l.trim().strip_prefix("stat::number_of_executed_units:"))
        .find_map(|v| v.trim().parse().ok())
        .or_else(|| {
            stderr
                .lines()
                .rev()
                .filter_map(|l| {
                    l.strip_prefix("Done ")
                        .and_then(|r| r.split_whitespace().next())
                })
                .find_map(|v| v.parse().ok())
        });
    let crashes: Vec<PathBuf> = files(&artifacts)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    let ok = output.status.success() && crashes.is_empty();
    if !ok {
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        eprintln!("{target} failed ({}):", output.status);
        for line in tail.into_iter().rev() {
            eprintln!("  {line}");
        }
    }
    Ok(Outcome {
        target: target.to_string(),
        runs,
        crashes,
        ok,
        elapsed,
    })
}

/// Waits for a child, killing it (by its own id) after `limit`.
fn wait_with_limit(
    mut child: std::process::Child,
    limit: Duration,
) -> Result<std::process::Output> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = read(stdout.map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let err = read(stderr.map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for cargo fuzz")? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("cargo fuzz did not finish within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// Writes the seed inputs of `target` into `fuzz/corpus/<target>/` (existing files are kept).
fn write_seeds(fuzz_dir: &Path, target: &str) -> Result<()> {
    let dir = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (i, seed) in seeds(target).iter().enumerate() {
        let path = dir.join(format!("seed-{i}"));
        if !path.exists() {
            std::fs::write(&path, seed).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Seeds from the ACR wire facts (`docs/wire-facts.md`).
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let text = |items: &[&str]| items.iter().map(|s| s.as_bytes().to_vec()).collect();
    let hex = "042a816809aac8d0f7d7cacac7965782ee2ecac3f21bcf9f24b1de1a7387b769";
    match target {
        "challenge" => text(&[
            r#"Bearer realm="https://azacrlivetest.azurecr.io/oauth2/token",service="azacrlivetest.azurecr.io",scope="registry:catalog:*""#,
            r#"Bearer realm="https://r.azurecr.io/oauth2/token",service="r.azurecr.io",scope="repository:hello-world:pull,push repository:alpine:pull""#,
            r#"Bearer realm="https://r/oauth2/token",service="r",scope="repository:alpine:metadata_write",error="insufficient_scope""#,
            r#"Basic realm="x", Bearer realm="http://b/t",scope="repository:library/hello-world:pull""#,
            r#"bearer  REALM="http://a/\"t\"" , service=a:5000"#,
        ]),
        "link" => text(&[
            r#"</acr/v1/_catalog?last=alpine&n=1&orderby=>; rel="next""#,
            r#"</acr/v1/library%2Fhello-world/_tags?last=639039224611470601%26v2&n=2&orderby=timeasc>; rel="next""#,
            r#"<https://x/p?a=1,2>; rel="prev", </n>; rel=next"#,
        ]),
        "error_body" => vec![
            [&[0x94, 0x01][..], br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Name":"alpine","Action":"pull"}]}]}"#].concat(),
            [&[0x94, 0x01][..], br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#].concat(),
            [&[0x90, 0x01][..], br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content","detail":"digest parsing failed"}]}"#].concat(),
            [&[0x94, 0x01][..], b"404 page not found\n"].concat(),
        ],
        "reference" => {
            let mut s: Vec<Vec<u8>> = text(&[
                "library/hello-world",
                "a.b_c__d--e/f0",
                "v1.2.3",
                "_x",
                "https://myregistry.azurecr.io",
                "http://127.0.0.1:5000",
                "http://[::1]:5000",
                "localhost:5000",
            ]);
            s.push(format!("sha256:{hex}").into_bytes());
            s.push(format!("sha512:{hex}{hex}").into_bytes());
            s
        }
        "manifest" => vec![
            [&[0u8][..], format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x.demo","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:{hex}","size":2,"data":"e30="}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{hex}","size":3370628,"annotations":{{"a":"b"}}}}],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{hex}","size":2}},"x-unknown":{{"n":[1,2.5,null]}}}}"#).as_bytes()].concat(),
            [&[1u8][..], format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{hex}","size":528,"platform":{{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1","variant":"v8"}}}}]}}"#).as_bytes()].concat(),
            [&[2u8][..], format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":1472,"digest":"sha256:{hex}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3370628,"digest":"sha256:{hex}"}}]}}"#).as_bytes()].concat(),
            [&[3u8][..], format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,"digest":"sha256:{hex}","platform":{{"architecture":"arm","os":"linux","variant":"v7","features":["sse4"]}}}}]}}"#).as_bytes()].concat(),
        ],
        "token_expiry" => vec![
            [&[1u8][..], br#"{"exp":1700000000,"access":[{"type":"repository","name":"a","actions":["pull"]}]}"#].concat(),
            b"\x00eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln".to_vec(),
        ],
        _ => Vec::new(),
    }
}
