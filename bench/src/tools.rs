//! Finding the peers' interpreters (Python with the Azure SDK, Node with the JS SDK) and their
//! versions. A missing one makes its cases "not run", never failed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::args::target_dir;
use crate::cases::{Tool, Tools};

/// Time limit of a probe (`python -c …`, `node --version`).
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// What was found, and why the rest was not.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The interpreters, for the case contexts.
    pub tools: Tools,
    /// Versions for the report (`azure-containerregistry 1.2.0 (Python 3.11.7)`, …).
    pub versions: Vec<String>,
    /// Why the Python peer cannot run.
    pub python_missing: Option<String>,
    /// Why the JS peer cannot run.
    pub node_missing: Option<String>,
    /// Why the skopeo peer cannot run.
    pub skopeo_missing: Option<String>,
}

impl Found {
    /// Why a case run by `tool` cannot run, if it cannot.
    pub fn missing(&self, tool: Tool) -> Option<String> {
        match tool {
            Tool::Rust => None,
            Tool::Python => self.python_missing.clone(),
            Tool::Node => self.node_missing.clone(),
            Tool::Skopeo => self.skopeo_missing.clone(),
        }
    }
}

/// Runs `cmd` with a time limit; its trimmed stdout when it succeeds.
fn probe(cmd: &mut Command) -> Option<String> {
    let out_path = std::env::temp_dir().join(format!("acr-bench-probe-{}", std::process::id()));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).ok()?)
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let t0 = Instant::now();
    // Bounded by the timeout.
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if t0.elapsed() < PROBE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(&out_path);
                return None;
            }
        }
    };
    let out = std::fs::read_to_string(&out_path).ok();
    let _ = std::fs::remove_file(&out_path);
    status
        .success()
        .then(|| out.unwrap_or_default().trim().to_string())
}

fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

const PY_VERSION: &str = "import sys, azure.containerregistry as m, azure.core as c; \
    print(f'azure-containerregistry {m.__version__} (azure-core {c.__version__}, Python {sys.version.split()[0]})')";

fn js_sdk_version(modules: &Path) -> Option<String> {
    let text = std::fs::read_to_string(
        modules.join("node_modules/@azure/container-registry/package.json"),
    )
    .ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(v.get("version")?.as_str()?.to_string())
}

/// Looks for the interpreters: `ACR_BENCH_PYTHON` or `<target>/pyvenv/bin/python`; `node` on
/// `PATH` with `ACR_BENCH_JS_MODULES` or `<target>/bench-js`; `skopeo` on `PATH`.
pub fn find() -> Found {
    let mut found = Found::default();
    let python = std::env::var_os("ACR_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("pyvenv/bin/python"));
    match probe(Command::new(&python).args(["-c", PY_VERSION])) {
        Some(v) => {
            found.versions.push(v);
            found.tools.python = Some(python);
        }
        None => {
            found.python_missing = Some(format!(
                "no Python with azure-containerregistry at {}",
                python.display()
            ))
        }
    }
    let modules = std::env::var_os("ACR_BENCH_JS_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("bench-js"));
    let node = in_path("node");
    let node_version = node
        .as_ref()
        .and_then(|n| probe(Command::new(n).arg("--version")));
    match (node, node_version, js_sdk_version(&modules)) {
        (Some(node), Some(nv), Some(sdk)) => {
            found
                .versions
                .push(format!("@azure/container-registry {sdk} (Node {nv})"));
            found.tools.node = Some(node);
            found.tools.js_modules = Some(modules);
        }
        (None, _, _) | (Some(_), None, _) => found.node_missing = Some("no node on PATH".into()),
        (Some(_), Some(_), None) => {
            found.node_missing = Some(format!(
                "no @azure/container-registry under {}",
                modules.display()
            ))
        }
    }
    let skopeo = in_path("skopeo");
    match skopeo
        .as_ref()
        .and_then(|s| probe(Command::new(s).arg("--version")))
    {
        Some(v) => {
            found.versions.push(v);
            found.tools.skopeo = skopeo;
        }
        None => found.skopeo_missing = Some("no skopeo on PATH".into()),
    }
    found
}
