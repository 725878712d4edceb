//! Project automation. Run `cargo xtask help` for the commands.

mod bench_cmd;
mod coverage;
mod descriptions;
mod diagnose;
mod fuzz_cmd;
mod generate;
mod import;
mod process;
mod test_cmd;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  generate [--check]              regenerate the REST crate from specs/ (--check: fail if stale)
  import <swagger2.json> [-o F]   convert an upstream Swagger 2.0 ACR spec to the project's form
  diagnose [spec.json]            generate each operation alone and name the ones progenitor rejects
  spec-coverage [swagger2.json]   list upstream operations and whether specs/ has each one
                                  (default: the reference copy in ../shared)
  test [cargo test args]          install test prerequisites and run the whole test suite
  fuzz [--seconds N] [target…]    run the fuzz targets of fuzz/ (stable toolchain), N s each
  bench [--size 1GiB] [--reps 5] [--json F] [--quick] [--readme]
                                  benchmark limits, this client and oci-client side by side
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(());
    };
    match command.as_str() {
        "generate" => generate::run(rest),
        "import" => import_cmd(rest),
        "test" => test_cmd::run(rest),
        "bench" => bench_cmd::run(rest),
        "diagnose" => diagnose::run(rest),
        "spec-coverage" => coverage::run(rest),
        "fuzz" => fuzz_cmd::run(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn import_cmd(args: &[String]) -> Result<()> {
    let (input, output) = match args {
        [input] => (input, None),
        [input, flag, out] if flag == "-o" => (input, Some(out)),
        _ => bail!("usage: cargo xtask import <swagger2.json> [-o out.json]"),
    };
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {input}"))?;
    let swagger: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {input}"))?;
    let spec = import::import(&swagger)?;
    let text = import::to_text(&spec)?;
    match output {
        Some(out) => {
            std::fs::write(out, text).with_context(|| format!("writing {out}"))?;
            eprintln!("wrote {out}");
        }
        None => print!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::generate::{self, workspace_root};

    fn reference(path: &str) -> serde_json::Value {
        let full = workspace_root().join(path);
        let text = std::fs::read_to_string(&full).unwrap_or_else(|e| {
            panic!(
                "{} must be present (../shared beside the checkout): {e}",
                full.display()
            )
        });
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn specs_is_the_import_of_the_upstream_typespec_file() {
        let imported = crate::import::import(&reference(generate::TYPESPEC_REFERENCE)).unwrap();
        let committed =
            std::fs::read_to_string(workspace_root().join(generate::SPEC_PATH)).unwrap();
        assert!(
            crate::import::to_text(&imported).unwrap() == committed,
            "specs/containerregistry.json differs from `cargo xtask import` of the reference; re-import it"
        );
    }

    #[test]
    fn both_reference_files_import_fully_covered_and_generate() {
        for path in [
            generate::TYPESPEC_REFERENCE,
            generate::HANDWRITTEN_REFERENCE,
        ] {
            let upstream = reference(path);
            let imported = crate::import::import(&upstream).unwrap();
            let report = crate::coverage::coverage(&upstream, &imported).unwrap();
            assert_eq!(report.len(), 29, "{path}");
            let gaps: Vec<_> = report.iter().filter(|c| !c.gaps.is_empty()).collect();
            assert!(gaps.is_empty(), "{path}: {gaps:?}");
            assert!(
                crate::diagnose::diagnose(&imported)
                    .iter()
                    .all(|d| d.problem.is_none()),
                "{path}"
            );
            let text = generate::render_imported(&workspace_root().join(path)).unwrap();
            assert!(text.contains("pub async fn get_referrers"), "{path}");
        }
    }

    #[test]
    fn generation_is_deterministic_and_checked_in() {
        let root = workspace_root();
        let (text, spec) = generate::read_spec(&root.join(generate::SPEC_PATH)).unwrap();
        let a = generate::render(&text, &spec).unwrap();
        let b = generate::render(&text, &spec).unwrap();
        assert_eq!(a, b);
        let committed = std::fs::read_to_string(root.join(generate::OUTPUT_PATH)).unwrap();
        assert!(
            a == committed,
            "generated.rs is stale: run cargo xtask generate"
        );
    }

    #[test]
    fn coverage_reports_a_missing_operation() {
        let upstream = reference(generate::TYPESPEC_REFERENCE);
        let mut imported = crate::import::import(&upstream).unwrap();
        imported["paths"].as_object_mut().unwrap().remove("/v2/");
        let report = crate::coverage::coverage(&upstream, &imported).unwrap();
        let missing: Vec<_> = report
            .iter()
            .filter(|c| !c.gaps.is_empty())
            .map(|c| c.operation_id.as_str())
            .collect();
        assert_eq!(missing, ["ContainerRegistry_CheckDockerV2Support"]);
    }

    #[test]
    fn import_fails_loudly_when_a_patch_target_moves() {
        let mut upstream = reference(generate::TYPESPEC_REFERENCE);
        upstream["paths"]
            .as_object_mut()
            .unwrap()
            .remove("/oauth2/exchange");
        let err = crate::import::import(&upstream).unwrap_err().to_string();
        assert!(err.contains("patch target missing"), "{err}");
    }
}
