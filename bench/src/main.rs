//! `acr_bench`: this client side by side with the physical limits and the peers (`oci-client`,
//! the official Python and JS SDKs), against a local docker-registry on tmpfs and the
//! emulator, on loopback and through an emulated WAN link, in one interleaved run. Run it with
//! `cargo xtask bench [--profile both|loopback|wan] [--quick]` (`--help` for all options).
//!
//! The same binary is also each case process (`--case NAME CTX`), the emulator process
//! (`--serve-emulator`) and the WAN shaping proxy (`--serve-shaper`).

mod args;
mod bounds;
mod cases;
mod load;
mod report;
mod run;
mod seed;
mod servers;
mod sys;
mod tools;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--case") => cases::child_main(&args[1..]),
        Some("--serve-emulator") => servers::serve_emulator(),
        Some("--serve-shaper") => servers::serve_shaper(&args[1..]),
        _ if load::requested(&args) => load::main(&args),
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
