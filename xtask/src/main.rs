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
mod upstream;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  generate [--check] [--upstream DIR]
                                  regenerate the REST crate from specs/ (--check: fail if stale);
                                  with the upstream files also the client of the hand-written one
  import <swagger2.json> [-o F]   convert an upstream Swagger 2.0 ACR spec to the project's form
  diagnose [spec.json]            generate each operation alone and name the ones progenitor rejects
  spec-coverage [swagger2.json]   list upstream operations and whether specs/ has each one
                                  (default: the TypeSpec file under $ACR_UPSTREAM_SPECS)
  upstream-check [DIR]            every check against the upstream Swagger files in DIR
                                  (default: $ACR_UPSTREAM_SPECS)
  test [cargo test args]          install test prerequisites and run the whole test suite,
                                  then the upstream checks (each named as not run without
                                  $ACR_UPSTREAM_SPECS)
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
        "upstream-check" => upstream::run(rest),
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
    fn a_stale_file_is_reported_with_its_diff() {
        let err = generate::compare(generate::OUTPUT_PATH, "not the generated file\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is stale")
                && err.contains("-// @generated")
                && err.contains("fix it with"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod readme_tests {
    use crate::generate::workspace_root;

    /// The fenced blocks of `text` whose info string starts with `rust`.
    fn rust_blocks(text: &str) -> Vec<String> {
        let mut blocks = Vec::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            match current.as_mut() {
                None if line.starts_with("```rust") => current = Some(format!("{line}\n")),
                None => {}
                Some(block) if line == "```" => {
                    block.push_str("```\n");
                    blocks.extend(current.take());
                }
                Some(block) => {
                    block.push_str(line);
                    block.push('\n');
                }
            }
        }
        blocks
    }

    #[test]
    fn the_readme_snippets_are_the_doctested_ones() {
        let root = workspace_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let crate_readme =
            std::fs::read_to_string(root.join("crates/azure_containerregistry/README.md")).unwrap();
        let shown = rust_blocks(&readme);
        assert!(!shown.is_empty(), "README.md has no Rust snippet");
        let tested = rust_blocks(&crate_readme);
        for block in &shown {
            assert!(
                tested.contains(block),
                "README.md shows a Rust snippet that crates/azure_containerregistry/README.md \
                 (compiled as a doctest) does not have:\n{block}"
            );
        }
    }

    #[test]
    fn rust_blocks_are_found_and_others_ignored() {
        let text = "a\n```sh\nls\n```\n```rust,no_run\nfn main() {}\n```\n";
        assert_eq!(rust_blocks(text), ["```rust,no_run\nfn main() {}\n```\n"]);
    }
}
