//! Checks against the upstream Swagger 2.0 files of the ACR data-plane API.
//!
//! The repository does not carry the upstream files (they are Azure/azure-rest-api-specs'
//! text, not the project's). Point `ACR_UPSTREAM_SPECS` (or `--upstream DIR`) at a directory
//! laid out as upstream's 2021-07-01 folders are:
//!
//! ```text
//! DIR/stable-2021-07-01/containerregistry.json              (TypeSpec-generated)
//! DIR/stable-2021-07-01-handwritten/containerregistry.json  (the older hand-written file)
//! ```
//!
//! `specs/spec-location.toml` names the commit of each file and its sha256. Without the
//! directory every upstream check is reported as not run, one line each, never passed.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};

use crate::generate::{self, workspace_root, SPEC_PATH};

/// The environment variable that names the upstream directory.
pub const ENV: &str = "ACR_UPSTREAM_SPECS";
/// The TypeSpec-generated file, relative to the upstream directory.
pub const TYPESPEC_FILE: &str = "stable-2021-07-01/containerregistry.json";
/// The hand-written file, relative to the upstream directory.
pub const HANDWRITTEN_FILE: &str = "stable-2021-07-01-handwritten/containerregistry.json";
/// Where the upstream files are described.
const LOCATION_PATH: &str = "specs/spec-location.toml";
/// Operations of the 2021-07-01 API, `x-ms-paths` overloads included.
const UPSTREAM_OPERATIONS: usize = 29;

/// One check that needs the upstream files.
pub struct Check {
    /// Short name, printed in reports.
    pub name: &'static str,
    /// What it proves.
    pub what: &'static str,
    run: fn(&Upstream) -> Result<()>,
}

/// Every upstream check, in the order they run.
pub const CHECKS: &[Check] = &[
    Check {
        name: "upstream-sha256",
        what: "both upstream files have the sha256 that specs/spec-location.toml records",
        run: check_sha256,
    },
    Check {
        name: "import-reproduces-specs",
        what: "`cargo xtask import` of the TypeSpec file is byte for byte specs/containerregistry.json",
        run: check_import_reproduces_specs,
    },
    Check {
        name: "spec-coverage",
        what: "every upstream operation of both files is in their import, and each generates",
        run: check_coverage,
    },
    Check {
        name: "coverage-notices-a-gap",
        what: "spec-coverage reports an operation removed from the import",
        run: check_coverage_notices_a_gap,
    },
    Check {
        name: "import-notices-a-moved-target",
        what: "the import fails when a patch target is missing upstream",
        run: check_import_notices_a_moved_target,
    },
    Check {
        name: "handwritten-client",
        what: "the client rendered from the hand-written file is the checked-in tests/imported/handwritten_generated.rs",
        run: check_handwritten_client,
    },
];

/// The upstream directory and the parsed files in it.
pub struct Upstream {
    dir: PathBuf,
}

impl Upstream {
    /// The directory from an explicit argument, else from `ACR_UPSTREAM_SPECS`; `None` when
    /// neither is given. A given directory must hold both files.
    pub fn locate(arg: Option<&str>) -> Result<Option<Self>> {
        let dir = match arg {
            Some(a) => PathBuf::from(a),
            None => match std::env::var_os(ENV) {
                Some(v) if !v.is_empty() => PathBuf::from(v),
                _ => return Ok(None),
            },
        };
        let up = Self { dir };
        for f in [TYPESPEC_FILE, HANDWRITTEN_FILE] {
            let p = up.dir.join(f);
            ensure!(
                p.is_file(),
                "{} is not a file (the upstream directory must hold {TYPESPEC_FILE} and {HANDWRITTEN_FILE})",
                p.display()
            );
        }
        Ok(Some(up))
    }

    /// Path of the TypeSpec-generated file.
    pub fn typespec(&self) -> PathBuf {
        self.dir.join(TYPESPEC_FILE)
    }

    /// Path of the hand-written file.
    pub fn handwritten(&self) -> PathBuf {
        self.dir.join(HANDWRITTEN_FILE)
    }

    fn json(path: &Path) -> Result<serde_json::Value> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// The line printed for a check that did not run.
pub fn skipped_line(check: &Check) -> String {
    format!(
        "not run: upstream check {} ({}): {ENV} is not set",
        check.name, check.what
    )
}

/// Runs every check; prints one line per check; fails when any failed.
pub fn run_all(up: &Upstream) -> Result<()> {
    let mut failed = Vec::new();
    for check in CHECKS {
        match (check.run)(up) {
            Ok(()) => println!("ok:      upstream check {}", check.name),
            Err(e) => {
                println!("FAILED:  upstream check {}: {e:#}", check.name);
                failed.push(check.name);
            }
        }
    }
    if !failed.is_empty() {
        bail!("upstream checks failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Prints the not-run line of every check.
pub fn report_skipped() {
    for check in CHECKS {
        println!("{}", skipped_line(check));
    }
}

/// `cargo xtask upstream-check [DIR]`.
pub fn run(args: &[String]) -> Result<()> {
    let arg = match args {
        [] => None,
        [dir] => Some(dir.as_str()),
        _ => bail!("usage: cargo xtask upstream-check [DIR]   (or set {ENV}=DIR)"),
    };
    match Upstream::locate(arg)? {
        Some(up) => run_all(&up),
        None => {
            report_skipped();
            bail!("no upstream directory: pass it as an argument or set {ENV}")
        }
    }
}

/// The sha256 values `spec-location.toml` records, per section.
fn recorded_sha256() -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(workspace_root().join(LOCATION_PATH))
        .with_context(|| format!("reading {LOCATION_PATH}"))?;
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
        } else if let Some(v) = line.strip_prefix("sha256") {
            let v = v
                .trim_start()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            out.push((section.clone(), v.to_string()));
        }
    }
    Ok(out)
}

fn check_sha256(up: &Upstream) -> Result<()> {
    let recorded = recorded_sha256()?;
    for (section, path) in [
        ("upstream", up.typespec()),
        ("upstream-handwritten", up.handwritten()),
    ] {
        let want = recorded
            .iter()
            .find(|(s, _)| s == section)
            .map(|(_, v)| v.as_str())
            .with_context(|| format!("{LOCATION_PATH} has no sha256 in [{section}]"))?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let got = hex::encode(Sha256::digest(&bytes));
        ensure!(
            got == want,
            "{} has sha256 {got}, {LOCATION_PATH} [{section}] records {want}",
            path.display()
        );
    }
    Ok(())
}

fn check_import_reproduces_specs(up: &Upstream) -> Result<()> {
    let imported =
        crate::import::to_text(&crate::import::import(&Upstream::json(&up.typespec())?)?)?;
    let committed = std::fs::read_to_string(workspace_root().join(SPEC_PATH))?;
    ensure!(
        imported == committed,
        "{SPEC_PATH} differs from `cargo xtask import` of {}; re-import it",
        up.typespec().display()
    );
    Ok(())
}

fn check_coverage(up: &Upstream) -> Result<()> {
    for path in [up.typespec(), up.handwritten()] {
        let upstream = Upstream::json(&path)?;
        let imported = crate::import::import(&upstream)?;
        let report = crate::coverage::coverage(&upstream, &imported)?;
        ensure!(
            report.len() == UPSTREAM_OPERATIONS,
            "{}: {} operations, expected {UPSTREAM_OPERATIONS}",
            path.display(),
            report.len()
        );
        let gaps: Vec<_> = report.iter().filter(|c| !c.gaps.is_empty()).collect();
        ensure!(gaps.is_empty(), "{}: {gaps:?}", path.display());
        let rejected: Vec<_> = crate::diagnose::diagnose(&imported)
            .into_iter()
            .filter(|d| d.problem.is_some())
            .collect();
        ensure!(
            rejected.is_empty(),
            "{}: progenitor rejects {} operations",
            path.display(),
            rejected.len()
        );
    }
    Ok(())
}

fn check_coverage_notices_a_gap(up: &Upstream) -> Result<()> {
    let upstream = Upstream::json(&up.typespec())?;
    let mut imported = crate::import::import(&upstream)?;
    imported["paths"]
        .as_object_mut()
        .context("the import has no paths")?
        .remove("/v2/");
    let report = crate::coverage::coverage(&upstream, &imported)?;
    let missing: Vec<_> = report
        .iter()
        .filter(|c| !c.gaps.is_empty())
        .map(|c| c.operation_id.as_str())
        .collect();
    ensure!(
        missing == ["ContainerRegistry_CheckDockerV2Support"],
        "expected only the removed /v2/ operation to be missing, got {missing:?}"
    );
    Ok(())
}

fn check_import_notices_a_moved_target(up: &Upstream) -> Result<()> {
    let mut upstream = Upstream::json(&up.typespec())?;
    upstream["paths"]
        .as_object_mut()
        .context("the upstream file has no paths")?
        .remove("/oauth2/exchange");
    match crate::import::import(&upstream) {
        Ok(_) => bail!("the import succeeded without /oauth2/exchange"),
        Err(e) => {
            let msg = e.to_string();
            ensure!(
                msg.contains("patch target missing"),
                "unexpected error: {msg}"
            );
            Ok(())
        }
    }
}

fn check_handwritten_client(up: &Upstream) -> Result<()> {
    let fresh = generate::render_imported(&up.handwritten())?;
    generate::compare(generate::HANDWRITTEN_OUTPUT_PATH, &fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_distinct_name_and_a_not_run_line() {
        let mut names: Vec<_> = CHECKS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CHECKS.len());
        for c in CHECKS {
            let line = skipped_line(c);
            assert!(line.starts_with("not run: upstream check "), "{line}");
            assert!(line.contains(c.name) && line.contains(ENV), "{line}");
        }
    }

    #[test]
    fn a_directory_without_the_files_is_an_error_not_a_skip() {
        let dir = tempfile::tempdir().unwrap();
        let err = Upstream::locate(Some(dir.path().to_str().unwrap()))
            .err()
            .expect("an empty directory must be refused");
        assert!(err.to_string().contains(TYPESPEC_FILE), "{err}");
    }

    #[test]
    fn spec_location_records_both_sha256_values() {
        let recorded = recorded_sha256().unwrap();
        let sections: Vec<_> = recorded.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(sections, ["upstream", "upstream-handwritten"]);
        assert!(recorded
            .iter()
            .all(|(_, v)| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())));
    }
}
