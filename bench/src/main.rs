//! `acr_bench`: this client side by side with the physical limits and `oci-client`, against a
//! local docker-registry on tmpfs and the emulator, in one interleaved run. Run it with
//! `cargo xtask bench [--size 1GiB] [--reps 5] [--json out.json] [--quick]`.
//!
//! The same binary is also each case process (`--case NAME CTX`) and the emulator process
//! (`--serve-emulator`).

mod cases;
mod report;
mod run;
mod sys;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--case") => cases::child_main(&args[1..]),
        Some("--serve-emulator") => run::serve_emulator(),
        _ => run::main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
