//! Medians, ratios to the limits, targets; `results.json` and `results.md`.

use serde::Serialize;

use crate::cases::{CaseDef, CaseResult, Unit};

/// One repetition of one case.
#[derive(Debug, Clone)]
pub struct RepResult {
    /// What the case process reported.
    pub result: Option<CaseResult>,
    /// CPU seconds the server used during the case.
    pub server_cpu_s: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// How the run was configured.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The bench command line.
    pub command_line: String,
    /// Big blob size in bytes.
    pub size: u64,
    /// Repetitions.
    pub reps: u32,
    /// Operations per tiny case.
    pub tiny_n: usize,
    /// Repositories listed.
    pub repos: usize,
    /// Page size of the listings.
    pub page_size: u32,
    /// Ranges in flight in `download_blob_parallel`.
    pub parallel_concurrency: usize,
    /// `docker-registry --version`.
    pub registry_version: String,
    /// Wall time of the whole run (until the report).
    pub wall_s: f64,
}

/// One row of the table.
#[derive(Debug, Serialize)]
pub struct CaseSummary {
    /// The case.
    pub name: &'static str,
    /// `limit`, `ours` or `peer`.
    pub group: &'static str,
    /// What it measures.
    pub what: &'static str,
    /// Unit of the values.
    pub unit: Unit,
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
    /// Median p50 latency per operation in ms (tiny cases).
    pub p50_ms: Option<f64>,
    /// Largest peak RSS over the repetitions, MiB.
    pub peak_rss_mib: Option<f64>,
    /// Median client CPU seconds (user + system, whole process).
    pub client_cpu_s: Option<f64>,
    /// Median server CPU seconds during the case.
    pub server_cpu_s: Option<f64>,
    /// The target, if any.
    pub target: Option<String>,
    /// Whether the target is met.
    pub target_met: Option<bool>,
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
    /// All rows.
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

/// Aggregates the repetitions.
pub fn summarize(config: &Config, defs: &[&CaseDef], results: &[Vec<RepResult>]) -> Summary {
    let mut cases: Vec<CaseSummary> = defs
        .iter()
        .zip(results)
        .map(|(def, reps)| {
            let ok: Vec<&CaseResult> = reps.iter().filter_map(|r| r.result.as_ref()).collect();
            let values: Vec<f64> = ok.iter().map(|r| value(def, r)).collect();
            let p50: Vec<f64> = ok.iter().filter_map(|r| r.p50_ms).collect();
            let cpu: Vec<f64> = ok.iter().map(|r| r.user_s + r.sys_s).collect();
            let server: Vec<f64> = reps.iter().filter_map(|r| r.server_cpu_s).collect();
            CaseSummary {
                name: def.name,
                group: def.group,
                what: def.what,
                unit: def.unit,
                median: median(&values),
                min: values.iter().copied().reduce(f64::min),
                max: values.iter().copied().reduce(f64::max),
                values,
                limit: def.limit,
                ratio: None,
                p50_ms: median(&p50),
                peak_rss_mib: ok
                    .iter()
                    .map(|r| r.hwm_kib as f64 / 1024.0)
                    .reduce(f64::max),
                client_cpu_s: median(&cpu),
                server_cpu_s: median(&server),
                target: None,
                target_met: None,
                errors: reps.iter().filter_map(|r| r.error.clone()).collect(),
            }
        })
        .collect();
    let limits: Vec<(&str, Option<f64>)> = cases.iter().map(|c| (c.name, c.median)).collect();
    for (c, def) in cases.iter_mut().zip(defs) {
        let limit = limits
            .iter()
            .find(|(n, _)| *n == def.limit)
            .and_then(|(_, m)| *m);
        c.ratio = c.median.zip(limit).map(|(m, l)| m / l);
        if let Some(t) = def.target {
            let (cmp, ok) = match def.unit {
                Unit::MibPerS => ("≥", c.ratio.map(|r| r >= t.ratio)),
                Unit::MsPerOp => ("≤", c.ratio.map(|r| r <= t.ratio)),
            };
            let rss_ok = match t.max_rss_mib {
                Some(max) => c.peak_rss_mib.map(|r| r <= max),
                None => Some(true),
            };
            let mut text = format!("{cmp} {:.2}× {}", t.ratio, def.limit);
            if let Some(max) = t.max_rss_mib {
                text.push_str(&format!(", RSS ≤ {max:.0} MiB"));
            }
            c.target = Some(text);
            c.target_met = ok.zip(rss_ok).map(|(a, b)| a && b && c.errors.is_empty());
        }
    }
    Summary {
        date: utc_now(),
        cpu: crate::sys::cpu_model(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        config: config.clone(),
        cases,
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

fn size_label(size: u64) -> String {
    if size >= 1 << 30 && size.is_multiple_of(1 << 30) {
        format!("{} GiB", size >> 30)
    } else {
        format!("{:.0} MiB", size as f64 / (1u64 << 20) as f64)
    }
}

/// The Markdown report (regenerated by every run).
pub fn markdown(s: &Summary) -> String {
    let c = &s.config;
    let mut out = String::new();
    out.push_str("<!-- generated by `cargo xtask bench`; do not edit -->\n");
    out.push_str(&format!(
        "Benchmark run {} on {} ({} CPUs), `{}`: blob {}, {} interleaved repetitions, {} ops per tiny case, \
         {} repositories in pages of {}; {}; run took {:.0} s.\n\n",
        s.date,
        s.cpu,
        s.cpus,
        c.command_line,
        size_label(c.size),
        c.reps,
        c.tiny_n,
        c.repos,
        c.page_size,
        if c.registry_version.is_empty() { "docker-registry" } else { &c.registry_version },
        c.wall_s
    ));
    out.push_str(
        "| case | group | median | min | max | unit | × limit | target | met | peak RSS MiB | client CPU s | server CPU s |\n\
         |---|---|---:|---:|---:|---|---:|---|---|---:|---:|---:|\n",
    );
    for r in &s.cases {
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
        let met = match (r.target_met, r.errors.is_empty()) {
            (_, false) => format!("FAILED ({} reps)", r.errors.len()),
            (Some(true), _) => "yes".into(),
            (Some(false), _) => "**no**".into(),
            (None, _) => String::new(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.group,
            fmt(r.median, digits),
            fmt(r.min, digits),
            fmt(r.max, digits),
            unit_label(r.unit),
            ratio,
            r.target.as_deref().unwrap_or(""),
            met,
            fmt(r.peak_rss_mib, 1),
            fmt(r.client_cpu_s, 2),
            fmt(r.server_cpu_s, 2),
        ));
    }
    out.push_str("\nWhat each case does:\n\n");
    for r in &s.cases {
        out.push_str(&format!("- `{}`: {}\n", r.name, r.what));
    }
    out.push_str(
        "\nEach repetition runs every case once, in this order, each in its own process (peak RSS = VmHWM of \
         that process; client CPU = its user + system time, including start-up). Server CPU is the \
         docker-registry's (or the emulator's) CPU time during the case. Throughput uses MiB = 2^20 bytes.\n",
    );
    out
}
