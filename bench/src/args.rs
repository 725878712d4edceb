//! The orchestrator's command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::cases::{Profile, CASES, DIAG_CASES};

/// Usage text.
pub const USAGE: &str = "\
usage: acr_bench [--profile both|loopback|wan] [--size 1GiB] [--reps 5] [--quick] [--cases a,b,…]
                 [--rtt-ms 40] [--wan-mibps 40] [--wan-size 256MiB] [--wan-reps 3] [--wan-tiny-n 20]
                 [--tiny-n 200] [--repos 10000] [--page-size 100] [--json out.json] [--out-dir DIR]
  --profile    loopback: straight to the registry; wan: through the shaping proxy (RTT, a
               bandwidth cap per connection); both (default)
  --quick      2 repetitions, 64 MiB blob on loopback and 32 MiB under WAN (unless given)
  --cases      only these cases (comma-separated names; ratios need their limit case too);
               also the diagnostic cases diag_patch_serial, diag_patch_overlap, diag_patch_stream
               (ACR_BENCH_DIAG_SEGMENT_MIB=n: PATCHes of n MiB)
               --cases emulator_load runs only the emulator load benchmark
               ([--seconds 60] [--clients 200]; memory and --data-dir modes)
Peers: ACR_BENCH_PYTHON (a Python with azure-containerregistry; default <target>/pyvenv),
ACR_BENCH_JS_MODULES (a directory with node_modules/@azure/container-registry; default
<target>/bench-js); `cargo xtask bench` installs both. A missing one is reported as not run.
Results: DIR/results.json and DIR/results.md (DIR defaults to <target>/bench).";

/// Settings of one profile.
#[derive(Debug, Clone)]
pub struct ProfileArgs {
    /// The profile.
    pub profile: Profile,
    /// Big blob size in bytes.
    pub size: u64,
    /// Repetitions.
    pub reps: u32,
    /// Operations per tiny case.
    pub tiny_n: usize,
}

/// The WAN link.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Round-trip time.
    pub rtt: Duration,
    /// Cap per connection, bytes per second.
    pub bytes_per_sec: u64,
}

/// Parsed command line.
#[derive(Debug)]
pub struct Args {
    /// The profiles to run, in order.
    pub profiles: Vec<ProfileArgs>,
    /// The WAN link.
    pub link: Link,
    /// Also write the JSON here.
    pub json: Option<PathBuf>,
    /// Only these cases.
    pub cases: Option<Vec<String>>,
    /// Repositories in the emulator.
    pub repos: usize,
    /// Page size of the listings.
    pub page_size: u32,
    /// Results directory.
    pub out_dir: PathBuf,
    /// For the report.
    pub command_line: String,
}

/// `1GiB`, `256MiB`, `64m`, `1024` → bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: u64 = num.parse().with_context(|| format!("bad size {s:?}"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => bail!("bad size unit in {s:?} (use KiB, MiB or GiB)"),
    };
    let size = num.checked_mul(mult).context("size overflows")?;
    ensure!(size > 0, "size must be positive");
    Ok(size)
}

/// The workspace's target directory (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
            bench.parent().unwrap_or(bench).join("target")
        })
}

/// Parses the command line; `None` after printing `--help`.
pub fn parse_args(args: &[String]) -> Result<Option<Args>> {
    let (mut size, mut reps, mut json, mut quick, mut cases) = (None, None, None, false, None);
    let (mut tiny_n, mut repos, mut page_size, mut out_dir) = (200, 10_000, 100, None);
    let (mut profile, mut rtt_ms, mut wan_mibps) = ("both".to_string(), 40.0_f64, 40.0_f64);
    let (mut wan_size, mut wan_reps, mut wan_tiny_n) = (None, None, 20);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--profile" => profile = value()?.clone(),
            "--size" => size = Some(parse_size(value()?)?),
            "--reps" => reps = Some(value()?.parse().context("--reps")?),
            "--rtt-ms" => rtt_ms = value()?.parse().context("--rtt-ms")?,
            "--wan-mibps" => wan_mibps = value()?.parse().context("--wan-mibps")?,
            "--wan-size" => wan_size = Some(parse_size(value()?)?),
            "--wan-reps" => wan_reps = Some(value()?.parse().context("--wan-reps")?),
            "--wan-tiny-n" => wan_tiny_n = value()?.parse().context("--wan-tiny-n")?,
            "--json" => json = Some(PathBuf::from(value()?)),
            "--quick" => quick = true,
            "--cases" => cases = Some(value()?.split(',').map(str::to_string).collect::<Vec<_>>()),
            "--tiny-n" => tiny_n = value()?.parse().context("--tiny-n")?,
            "--repos" => repos = value()?.parse().context("--repos")?,
            "--page-size" => page_size = value()?.parse().context("--page-size")?,
            "--out-dir" => out_dir = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if let Some(names) = &cases {
        let all = || CASES.iter().chain(DIAG_CASES);
        for n in names {
            ensure!(
                all().any(|c| c.name == n),
                "unknown case {n:?}; cases: {}",
                all().map(|c| c.name).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let reps = reps.unwrap_or(if quick { 2 } else { 5 });
    let wan_reps = wan_reps.unwrap_or(if quick { 2 } else { reps.min(3) });
    ensure!(
        (1..=100).contains(&reps) && (1..=100).contains(&wan_reps),
        "--reps and --wan-reps must be 1..=100"
    );
    ensure!(
        tiny_n >= 1 && wan_tiny_n >= 1 && repos >= 1 && page_size >= 1,
        "--tiny-n, --wan-tiny-n, --repos and --page-size must be positive"
    );
    ensure!(
        (0.0..=10_000.0).contains(&rtt_ms) && wan_mibps > 0.0 && wan_mibps <= 100_000.0,
        "--rtt-ms must be 0..=10000 and --wan-mibps positive"
    );
    let loopback = ProfileArgs {
        profile: Profile::Loopback,
        size: size.unwrap_or(if quick { 64 << 20 } else { 1 << 30 }),
        reps,
        tiny_n,
    };
    let wan = ProfileArgs {
        profile: Profile::Wan,
        size: wan_size.unwrap_or(if quick { 32 << 20 } else { 256 << 20 }),
        reps: wan_reps,
        tiny_n: wan_tiny_n,
    };
    let profiles = match profile.as_str() {
        "both" => vec![loopback, wan],
        "loopback" => vec![loopback],
        "wan" => vec![wan],
        other => bail!("--profile {other:?}: use both, loopback or wan"),
    };
    Ok(Some(Args {
        profiles,
        link: Link {
            rtt: Duration::from_secs_f64(rtt_ms / 1000.0),
            bytes_per_sec: (wan_mibps * (1u64 << 20) as f64) as u64,
        },
        json,
        cases,
        repos,
        page_size,
        out_dir: out_dir.unwrap_or_else(|| target_dir().join("bench")),
        command_line: std::iter::once("acr_bench".to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_args(&args).unwrap().unwrap()
    }

    #[test]
    fn both_profiles_by_default_with_a_smaller_wan_blob() {
        let a = parse(&[]);
        let p: Vec<_> = a
            .profiles
            .iter()
            .map(|p| (p.profile, p.size, p.reps))
            .collect();
        assert_eq!(
            p,
            vec![
                (Profile::Loopback, 1 << 30, 5),
                (Profile::Wan, 256 << 20, 3)
            ]
        );
        assert_eq!(a.link.rtt, Duration::from_millis(40));
        assert_eq!(a.link.bytes_per_sec, 40 << 20);
    }

    #[test]
    fn wan_settings_are_configurable() {
        let a = parse(&[
            "--profile",
            "wan",
            "--rtt-ms",
            "80",
            "--wan-mibps",
            "10",
            "--wan-size",
            "64MiB",
        ]);
        assert_eq!(a.profiles.len(), 1);
        assert_eq!(a.profiles[0].profile, Profile::Wan);
        assert_eq!(a.profiles[0].size, 64 << 20);
        assert_eq!(a.link.rtt, Duration::from_millis(80));
        assert_eq!(a.link.bytes_per_sec, 10 << 20);
        let q = parse(&["--quick"]);
        assert_eq!(q.profiles[0].size, 64 << 20);
        assert_eq!(q.profiles[1].size, 32 << 20);
        let bad: Vec<String> = vec!["--profile".into(), "moon".into()];
        assert!(parse_args(&bad).is_err());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("256m").unwrap(), 256 << 20);
        assert!(parse_size("0").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}
