//! Project automation. Run `cargo xtask help` for the commands.

mod descriptions;
mod generate;
mod import;
mod test_cmd;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  generate [--check]              regenerate the REST crate from specs/ (--check: fail if stale)
  import <swagger2.json> [-o F]   convert an upstream Swagger 2.0 ACR spec to the project's form
  diagnose [spec.json]            generate each operation alone and name the ones progenitor rejects
  spec-coverage <swagger2.json>   list upstream operations and whether specs/ has each one
  test [cargo test args]          install test prerequisites and run the whole test suite
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
    let swagger: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {input}"))?;
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
