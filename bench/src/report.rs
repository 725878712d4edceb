//! Medians, ratios to the limits and to the best peer, targets; `results.json` and
//! `results.md`. Each profile is compared only within itself.

use serde::Serialize;

use crate::cases::{CaseDef, CaseResult, Kind, Profile, Unit};

/// One repetition of one case.
#[derive(Debug, Clone)]
pub struct RepResult {
    /// What the case process reported.
    pub result: Option<CaseResult>,
    /// CPU seconds the server used during the case.
    pub server_cpu_s: Option<f64>,
    /// CPU seconds the shaping proxy used during the case (WAN).
    pub shaper_cpu_s: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// How one profile was run.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileConfig {
    /// The profile.
    pub profile: Profile,
    /// Big blob size in bytes.
    pub size: u64,
    /// Repetitions.
    pub reps: u32,
    /// Operations per tiny case.
    pub tiny_n: usize,
    /// Round-trip time added by the shaping proxy, ms (WAN).
    pub rtt_ms: Option<f64>,
    /// Bandwidth cap per connection, MiB/s (WAN).
    pub mib_per_s: Option<f64>,
}

/// How the run was configured.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The bench command line.
    pub command_line: String,
    /// The profiles, in the order reported.
    pub profiles: Vec<ProfileConfig>,
    /// Repositories listed.
    pub repos: usize,
    /// Page size of the listings.
    pub page_size: u32,
    /// Ranges in flight in `download_blob_parallel`.
    pub parallel_concurrency: usize,
    /// `docker-registry --version`.
    pub registry_version: String,
    /// Versions of the peers that are not Rust (or why they did not run).
    pub peer_versions: Vec<String>,
    /// Wall time of the whole run (until the report).
    pub wall_s: f64,
}

/// The repetitions of one case under one profile, as the orchestrator collected them.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// The profile.
    pub profile: Profile,
    /// The case.
    pub def: &'a CaseDef,
    /// Its repetitions.
    pub reps: Vec<RepResult>,
    /// Why it was not run (a peer whose interpreter is missing).
    pub not_run: Option<String>,
}

/// One row of the table.
#[derive(Debug, Serialize)]
pub struct CaseSummary {
    /// The profile.
    pub profile: Profile,
    /// The case.
    pub name: &'static str,
    /// `limit`, `ours` or `peer`.
    pub group: &'static str,
    /// What it measures.
    pub what: &'static str,
    /// Unit of the values.
    pub unit: Unit,
    /// The operation, for the peer comparison.
    pub kind: Option<Kind>,
    /// Value of each successful repetition, in order.
    pub values: Vec<f64>,
    /// Median value.
    pub median: Option<f64>,
    /// Smallest value.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// The limit case.
    pub limit: &'static str,
    /// median / the limit's median.
    pub ratio: Option<f64>,
    /// The fastest peer of the same kind under the same profile (rows of this project).
    pub best_peer: Option<&'static str>,
    /// How many times faster than that peer (> 1: ahead).
    pub peer_speedup: Option<f64>,
    /// Median p50 latency per operation in ms (tiny cases).
    pub p50_ms: Option<f64>,
    /// Largest peak RSS over the repetitions, MiB.
    pub peak_rss_mib: Option<f64>,
    /// Median client CPU seconds (user + system, whole process).
    pub client_cpu_s: Option<f64>,
    /// Median server CPU seconds during the case.
    pub server_cpu_s: Option<f64>,
    /// Median CPU seconds of the shaping proxy during the case (WAN).
    pub shaper_cpu_s: Option<f64>,
    /// The target, if any.
    pub target: Option<String>,
    /// Whether the target is met.
    pub target_met: Option<bool>,
    /// For a missed target, what bounds each part missed (figures of the same run).
    pub bounds: Vec<String>,
    /// Why it was not run, if so.
    pub not_run: Option<String>,
    /// Failures.
    pub errors: Vec<String>,
}

/// The whole result.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// When (UTC).
    pub date: String,
    /// The machine.
    pub cpu: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Configuration.
    pub config: Config,
    /// All rows, profile by profile.
    pub cases: Vec<CaseSummary>,
}

/// A repetition's value in the case's unit.
pub fn value(def: &CaseDef, r: &CaseResult) -> f64 {
    match def.unit {
        Unit::MibPerS => r.bytes as f64 / (1u64 << 20) as f64 / r.op_s,
        Unit::MsPerOp => r.op_s * 1000.0 / r.ops.max(1) as f64,
    }
}

/// Short unit name.
pub fn unit_label(u: Unit) -> &'static str {
    match u {
        Unit::MibPerS => "MiB/s",
        Unit::MsPerOp => "ms/op",
    }
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// How many times better `ours` is than `other` in `unit` (> 1: ours is ahead).
fn speedup(unit: Unit, ours: f64, other: f64) -> f64 {
    match unit {
        Unit::MibPerS => ours / other,
        Unit::MsPerOp => other / ours,
    }
}

fn summarize_row(row: &Row<'_>) -> CaseSummary {
    let def = row.def;
    let ok: Vec<&CaseResult> = row.reps.iter().filter_map(|r| r.result.as_ref()).collect();
    let values: Vec<f64> = ok.iter().map(|r| value(def, r)).collect();
    let p50: Vec<f64> = ok.iter().filter_map(|r| r.p50_ms).collect();
    let cpu: Vec<f64> = ok.iter().map(|r| r.user_s + r.sys_s).collect();
    let server: Vec<f64> = row.reps.iter().filter_map(|r| r.server_cpu_s).collect();
    let shaper: Vec<f64> = row.reps.iter().filter_map(|r| r.shaper_cpu_s).collect();
    CaseSummary {
        profile: row.profile,
        name: def.name,
        group: def.group,
        what: def.what,
        unit: def.unit,
        kind: def.kind,
        median: median(&values),
        min: values.iter().copied().reduce(f64::min),
        max: values.iter().copied().reduce(f64::max),
        values,
        limit: def.limit_in(row.profile),
        ratio: None,
        best_peer: None,
        peer_speedup: None,
        p50_ms: median(&p50),
        peak_rss_mib: ok
            .iter()
            .map(|r| r.hwm_kib as f64 / 1024.0)
            .reduce(f64::max),
        client_cpu_s: median(&cpu),
        server_cpu_s: median(&server),
        shaper_cpu_s: median(&shaper),
        target: None,
        target_met: None,
        bounds: Vec::new(),
        not_run: row.not_run.clone(),
        errors: row.reps.iter().filter_map(|r| r.error.clone()).collect(),
    }
}

/// Aggregates the repetitions; ratios, peers and targets within each profile.
pub fn summarize(config: &Config, rows: &[Row<'_>]) -> Summary {
    let mut cases: Vec<CaseSummary> = rows.iter().map(summarize_row).collect();
    let medians: Vec<(Profile, &str, Option<f64>)> = cases
        .iter()
        .map(|c| (c.profile, c.name, c.median))
        .collect();
    let median_of = |profile: Profile, name: &str| {
        medians
            .iter()
            .find(|(p, n, _)| *p == profile && *n == name)
            .and_then(|(_, _, m)| *m)
    };
    // The best peer of each (profile, kind): fastest MiB/s or fewest ms/op.
    let peers: Vec<(Profile, Kind, Unit, &'static str, f64)> = cases
        .iter()
        .filter(|c| c.group == "peer" && c.errors.is_empty())
        .filter_map(|c| Some((c.profile, c.kind?, c.unit, c.name, c.median?)))
        .collect();
    for (c, row) in cases.iter_mut().zip(rows) {
        let def = row.def;
        c.ratio = c
            .median
            .zip(median_of(c.profile, c.limit))
            .map(|(m, l)| m / l);
        if c.group == "ours" {
            let best = peers
                .iter()
                .filter(|(p, k, u, _, _)| *p == c.profile && Some(*k) == c.kind && *u == c.unit)
                .max_by(|a, b| speedup(c.unit, a.4, 1.0).total_cmp(&speedup(c.unit, b.4, 1.0)));
            if let (Some(&(_, _, _, name, peer)), Some(m)) = (best, c.median) {
                c.best_peer = Some(name);
                c.peer_speedup = Some(speedup(c.unit, m, peer));
            }
        }
        let Some(t) = def.target_in(c.profile) else {
            continue;
        };
        let base = t.against.unwrap_or(c.limit);
        let base_ratio = c.median.zip(median_of(c.profile, base)).map(|(m, b)| m / b);
        let (cmp, ratio_ok) = match def.unit {
            Unit::MibPerS => ("≥", base_ratio.map(|r| r >= t.ratio)),
            Unit::MsPerOp => ("≤", base_ratio.map(|r| r <= t.ratio)),
        };
        let rss_ok = match t.max_rss_mib {
            Some(max) => c.peak_rss_mib.map(|r| r <= max),
            None => Some(true),
        };
        // No peer ran (missing interpreters): nothing to compare with, so not held against it.
        let peer_ok = match (t.peer_speedup, c.peer_speedup) {
            (Some(min), Some(s)) => Some(s >= min),
            _ => Some(true),
        };
        let mut text = format!("{cmp} {:.2}× {base}", t.ratio);
        if let Some(min) = t.peer_speedup {
            text.push_str(&format!(", ≥ {min:.1}× best peer"));
        }
        if let Some(max) = t.max_rss_mib {
            text.push_str(&format!(", RSS ≤ {max:.0} MiB"));
        }
        c.target = Some(text);
        c.target_met = match (ratio_ok, rss_ok, peer_ok) {
            (Some(a), Some(b), Some(p)) => Some(a && b && p && c.errors.is_empty()),
            _ => None,
        };
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    explain_misses(config, &mut cases, rows, &peers, cpus);
    Summary {
        date: utc_now(),
        cpu: crate::sys::cpu_model(),
        cpus,
        config: config.clone(),
        cases,
    }
}

/// Fills in `bounds` of every row whose target was missed.
fn explain_misses(
    config: &Config,
    cases: &mut [CaseSummary],
    rows: &[Row<'_>],
    peers: &[(Profile, Kind, Unit, &'static str, f64)],
    cpus: usize,
) {
    let bounds: Vec<Vec<String>> = cases
        .iter()
        .zip(rows)
        .map(|(c, row)| {
            let Some(target) = row
                .def
                .target_in(c.profile)
                .filter(|_| c.target_met == Some(false))
            else {
                return Vec::new();
            };
            let find = |name: &str| {
                cases
                    .iter()
                    .find(|o| o.profile == c.profile && o.name == name)
            };
            let size = config
                .profiles
                .iter()
                .find(|p| p.profile == c.profile)
                .map_or(0, |p| p.size);
            crate::bounds::explain(&crate::bounds::Miss {
                case: c,
                target,
                base: find(target.against.unwrap_or(c.limit)),
                limit: find(c.limit),
                peer_median: peers
                    .iter()
                    .find(|(p, _, _, name, _)| *p == c.profile && Some(*name) == c.best_peer)
                    .map(|peer| peer.4),
                size_mib: size as f64 / (1024.0 * 1024.0),
                cpus,
                hint: row.def.miss_hint,
            })
        })
        .collect();
    for (c, b) in cases.iter_mut().zip(bounds) {
        c.bounds = b;
    }
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
}

/// `1 GiB`, `256 MiB`.
pub fn size_label(size: u64) -> String {
    if size >= 1 << 30 && size.is_multiple_of(1 << 30) {
        format!("{} GiB", size >> 30)
    } else {
        format!("{:.0} MiB", size as f64 / (1u64 << 20) as f64)
    }
}

fn profile_heading(p: &ProfileConfig) -> String {
    let common = format!(
        "blob {}, {} interleaved repetitions, {} ops per tiny case",
        size_label(p.size),
        p.reps,
        p.tiny_n
    );
    match (p.profile, p.rtt_ms, p.mib_per_s) {
        (Profile::Wan, Some(rtt), Some(rate)) => format!(
            "WAN: {rtt:.0} ms RTT, {rate:.0} MiB/s per connection (userspace shaping proxy in \
             front of the registry; its CPU time is the last column); {common}"
        ),
        (Profile::Wan, _, _) => format!("WAN; {common}"),
        (Profile::Loopback, _, _) => format!("Loopback (127.0.0.1, no shaping); {common}"),
    }
}

fn table(out: &mut String, s: &Summary, p: &ProfileConfig) {
    let wan = p.profile == Profile::Wan;
    out.push_str(&format!("#### {}\n\n", profile_heading(p)));
    out.push_str(
        "| case | group | median | min | max | unit | × limit | × best peer | target | met | \
         peak RSS MiB | client CPU s | server CPU s |",
    );
    out.push_str(if wan { " shaper CPU s |\n" } else { "\n" });
    out.push_str("|---|---|---:|---:|---:|---|---:|---:|---|---|---:|---:|---:|");
    out.push_str(if wan { "---:|\n" } else { "\n" });
    for r in s.cases.iter().filter(|c| c.profile == p.profile) {
        if let Some(why) = &r.not_run {
            out.push_str(&format!(
                "| `{}` | {} | not run: {why} | | | {} | | | | | | | |{}\n",
                r.name,
                r.group,
                unit_label(r.unit),
                if wan { " |" } else { "" }
            ));
            continue;
        }
        let digits = if r.unit == Unit::MsPerOp && r.median.is_some_and(|m| m < 100.0) {
            2
        } else {
            0
        };
        let ratio = if r.limit == r.name {
            "1 (limit)".to_string()
        } else {
            format!("{} × {}", fmt(r.ratio, 2), r.limit)
        };
        let peer = match (r.peer_speedup, r.best_peer) {
            (Some(x), Some(name)) => format!("{x:.2} × {name}"),
            _ => String::new(),
        };
        let met = match (r.target_met, r.errors.is_empty()) {
            (_, false) => format!("FAILED ({} reps)", r.errors.len()),
            (Some(true), _) => "yes".into(),
            (Some(false), _) => "**no**".into(),
            (None, _) => String::new(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.group,
            fmt(r.median, digits),
            fmt(r.min, digits),
            fmt(r.max, digits),
            unit_label(r.unit),
            ratio,
            peer,
            r.target.as_deref().unwrap_or(""),
            met,
            fmt(r.peak_rss_mib, 1),
            fmt(r.client_cpu_s, 2),
            fmt(r.server_cpu_s, 2),
        ));
        if wan {
            out.push_str(&format!(" {} |", fmt(r.shaper_cpu_s, 2)));
        }
        out.push('\n');
    }
    out.push('\n');
    let misses: Vec<_> = s
        .cases
        .iter()
        .filter(|c| c.profile == p.profile && !c.bounds.is_empty())
        .collect();
    if !misses.is_empty() {
        out.push_str("What bounds each miss:\n\n");
        for c in misses {
            out.push_str(&format!("- `{}`: {}.\n", c.name, c.bounds.join("; ")));
        }
        out.push('\n');
    }
}

/// The Markdown report (regenerated by every run).
pub fn markdown(s: &Summary) -> String {
    let c = &s.config;
    let mut out = String::new();
    out.push_str("<!-- generated by `cargo xtask bench`; do not edit -->\n");
    out.push_str(&format!(
        "Benchmark run {} on {} ({} CPUs), `{}`; {} repositories in pages of {}; {}; peers: {}; \
         run took {:.0} s.\n\n",
        s.date,
        s.cpu,
        s.cpus,
        c.command_line,
        c.repos,
        c.page_size,
        if c.registry_version.is_empty() {
            "docker-registry"
        } else {
            &c.registry_version
        },
        if c.peer_versions.is_empty() {
            "oci-client 0.18".to_string()
        } else {
            format!("oci-client 0.18, {}", c.peer_versions.join(", "))
        },
        c.wall_s
    ));
    for p in &c.profiles {
        table(&mut out, s, p);
    }
    out.push_str("What each case does:\n\n");
    let mut seen = Vec::new();
    for r in &s.cases {
        if !seen.contains(&r.name) {
            seen.push(r.name);
            out.push_str(&format!("- `{}`: {}\n", r.name, r.what));
        }
    }
    out.push_str(
        "\nEach repetition runs every case of a profile once, in this order, each in its own \
         process (peak RSS = VmHWM of that process, or of the interpreter for the Python and JS \
         peers; client CPU = its user + system time, including start-up). Server CPU is the \
         docker-registry's (or the emulator's) CPU time during the case. '× limit' is the ratio \
         to the limit of the same profile and run; '× best peer' how many times faster than the \
         fastest peer doing the same operation in the same profile (> 1: ahead). Throughput \
         uses MiB = 2^20 bytes; the peers' times are inside the SDK call, as for every case.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::CASES;

    fn rep(bytes: u64, op_s: f64, hwm_mib: u64) -> RepResult {
        RepResult {
            result: Some(CaseResult {
                op_s,
                ops: 1,
                bytes,
                p50_ms: None,
                hwm_kib: hwm_mib * 1024,
                user_s: 0.1,
                sys_s: 0.1,
            }),
            server_cpu_s: None,
            shaper_cpu_s: None,
            error: None,
        }
    }

    fn def(name: &str) -> &'static CaseDef {
        CASES.iter().find(|c| c.name == name).unwrap()
    }

    /// WAN rows of one repetition each: `(case, MiB/s, peak RSS MiB)`.
    fn wan_rows(spec: &[(&str, u64, u64)]) -> Vec<Row<'static>> {
        spec.iter()
            .map(|&(name, mib_per_s, rss)| Row {
                profile: Profile::Wan,
                def: def(name),
                reps: vec![rep(mib_per_s << 20, 1.0, rss)],
                not_run: None,
            })
            .collect()
    }

    fn config() -> Config {
        Config {
            command_line: "acr_bench".into(),
            profiles: vec![ProfileConfig {
                profile: Profile::Wan,
                size: 100 << 20,
                reps: 1,
                tiny_n: 1,
                rtt_ms: Some(40.0),
                mib_per_s: Some(40.0),
            }],
            repos: 1,
            page_size: 1,
            parallel_concurrency: 4,
            registry_version: String::new(),
            peer_versions: Vec::new(),
            wall_s: 0.0,
        }
    }

    #[test]
    fn targets_use_their_base_the_best_peer_and_rss() {
        let rows = wan_rows(&[
            ("raw_get_sha256", 40, 10),
            ("raw_get_parallel", 160, 10),
            ("download_blob", 38, 20),
            ("download_blob_parallel", 120, 70),
            ("oci_pull_blob", 20, 20),
            ("py_download_blob", 25, 30),
        ]);
        let s = summarize(&config(), &rows);
        let get = |n: &str| s.cases.iter().find(|c| c.name == n).unwrap();
        let dl = get("download_blob");
        assert_eq!(dl.best_peer, Some("py_download_blob"));
        assert!((dl.peer_speedup.unwrap() - 38.0 / 25.0).abs() < 1e-9);
        assert!((dl.ratio.unwrap() - 0.95).abs() < 1e-9);
        assert_eq!(dl.target_met, Some(true));
        // 120/38 ≥ 3 against download_blob, its limit is the 4-connection link, but RSS 70 > 64.
        let par = get("download_blob_parallel");
        assert_eq!(par.limit, "raw_get_parallel");
        assert!((par.ratio.unwrap() - 0.75).abs() < 1e-9);
        assert_eq!(par.target_met, Some(false));
        assert!(par.target.as_deref().unwrap().contains("download_blob"));
    }

    #[test]
    fn each_missed_part_of_a_target_says_what_bounds_it() {
        let rows = wan_rows(&[
            ("raw_upload", 40, 10),
            ("raw_get_sha256", 40, 10),
            ("raw_get_parallel", 160, 10),
            ("upload_blob", 30, 20),
            ("download_blob", 40, 20),
            ("download_blob_parallel", 130, 70),
            ("oci_pull_blob", 40, 20),
            ("oci_push_blob_stream_chunked", 10, 20),
        ]);
        let s = summarize(&config(), &rows);
        let bounds = |n: &str| {
            s.cases
                .iter()
                .find(|c| c.name == n)
                .unwrap()
                .bounds
                .join("; ")
        };
        // The peer already at the one-connection limit: 1.5× it is past the link.
        let dl = bounds("download_blob");
        assert!(
            dl.contains("the link") && dl.contains("1.50× the limit"),
            "{dl}"
        );
        assert!(!dl.contains("target 0.90"), "the ratio was met: {dl}");
        // Slower than its limit (ahead of the peer): the ratio only, with the CPU figures.
        let up = bounds("upload_blob");
        assert!(up.starts_with("0.750× `raw_upload` (target 0.90×)"), "{up}");
        assert!(
            up.contains("cores busy") && !up.contains("the link"),
            "{up}"
        );
        assert_eq!(
            bounds("download_blob_parallel"),
            "peak RSS 70.0 MiB (bound 64 MiB)"
        );
        assert_eq!(bounds("raw_upload"), "");
        let md = markdown(&s);
        assert!(
            md.contains("What bounds each miss:\n\n- `upload_blob`: 0.750×"),
            "{md}"
        );
    }

    #[test]
    fn a_peer_that_did_not_run_is_reported_not_failed() {
        let rows = vec![Row {
            profile: Profile::Wan,
            def: def("js_download_blob"),
            reps: Vec::new(),
            not_run: Some("node is missing".into()),
        }];
        let s = summarize(&config(), &rows);
        assert!(s.cases[0].errors.is_empty());
        let md = markdown(&s);
        assert!(md.contains("not run: node is missing"), "{md}");
        assert!(!md.contains("FAILED"));
    }
}
