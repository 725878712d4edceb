//! Running a crate's example binaries from its integration tests.
//!
//! `cargo test -p <crate>` builds the crate's examples (as plain binaries in
//! `target/<profile>/examples/`) before it runs any test, so a test finds them beside its own
//! executable (`target/<profile>/deps/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Environment variables that point an example at a real registry; removed so the example runs
/// against its in-process emulator.
const REGISTRY_ENV: &[&str] = &[
    "CONTAINER_REGISTRY_ENDPOINT",
    "CONTAINER_REGISTRY_REPOSITORY",
    "DRY_RUN",
];

/// What an example printed and how it ended.
#[derive(Debug)]
pub struct ExampleRun {
    /// Its exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl ExampleRun {
    /// Panics with both outputs unless the example exited with 0.
    pub fn assert_success(&self, name: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "example {name} failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The stdout lines that start with `prefix`.
    pub fn lines_starting(&self, prefix: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }
}

/// The path of example `name`, beside the running test executable.
///
/// `cargo test -p <crate>` builds the crate's examples as plain binaries there; with a target
/// selection (`--tests --examples`) cargo builds them as test harnesses only, so when the plain
/// binary is missing, the crate's examples are built once with `cargo build --examples` into
/// the same target directory.
///
/// # Panics
/// When the binary is missing and cannot be built, naming the command that builds it.
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        build_examples(profile_dir);
    }
    assert!(
        path.is_file(),
        "example binary {} is missing: `cargo test -p <crate>` builds a crate's examples (a \
         `--test` filter alone does not; run `cargo build --examples` first)",
        path.display()
    );
    path
}

/// Builds the examples of the crate under test (once per test process) into `profile_dir`'s
/// target directory; a failure is reported, and left to the caller's check of the binary.
fn build_examples(profile_dir: &Path) {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
            return;
        };
        let (Some(target_dir), Some(profile)) = (
            profile_dir.parent(),
            profile_dir.file_name().and_then(|p| p.to_str()),
        ) else {
            return;
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .arg("--examples")
            .arg("--manifest-path")
            .arg(Path::new(&manifest_dir).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .stdin(Stdio::null());
        if profile != "debug" {
            cmd.args(["--profile", profile]);
        }
        match cmd.status() {
            Ok(status) if status.success() => {}
            other => eprintln!("cargo build --examples: {other:?}"),
        }
    });
}

/// Runs example `name` with `args`, without the variables that would point it at a real
/// registry, and kills it after `timeout`.
///
/// # Panics
/// When it cannot be started, or runs past `timeout`.
pub fn run_example(name: &str, args: &[&str], timeout: Duration) -> ExampleRun {
    let mut cmd = Command::new(example_path(name));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in REGISTRY_ENV {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting example {name}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || read_all(&mut stdout));
    let err = std::thread::spawn(move || read_all(&mut stderr));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("example {name} still ran after {timeout:?}; killed");
            }
            Err(e) => panic!("waiting for example {name}: {e}"),
        }
    };
    ExampleRun {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn read_all(r: &mut impl std::io::Read) -> String {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
