//! What bounds a missed target, in figures of the same run: the cores busy, the registry's
//! share, the client CPU beside its limit's, and whether the best peer leaves room under the
//! link for the speed-up asked of it.

use crate::cases::{Target, Unit};
use crate::report::CaseSummary;

/// A busy share of the machine's cores at or above this counts as CPU-bound.
const CPU_BOUND_SHARE: f64 = 0.85;

/// The figures one missed target is explained from.
pub struct Miss<'a> {
    /// The row that missed.
    pub case: &'a CaseSummary,
    /// Its target.
    pub target: Target,
    /// The row the ratio is taken to (its limit, or the target's `against`).
    pub base: Option<&'a CaseSummary>,
    /// The row's limit.
    pub limit: Option<&'a CaseSummary>,
    /// The best peer's median, same profile and operation.
    pub peer_median: Option<f64>,
    /// The big blob's size, MiB.
    pub size_mib: f64,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// The case's own account of what costs it time (may be empty).
    pub hint: &'static str,
}

/// Seconds one repetition of a MiB/s row took, from its median.
fn wall_s(row: &CaseSummary, size_mib: f64) -> Option<f64> {
    (row.unit == Unit::MibPerS)
        .then_some(row.median?)
        .filter(|m| *m > 0.0)
        .map(|m| size_mib / m)
}

/// CPU seconds of the client, the registry and the shaper of a row, over its wall time.
fn busy_cores(row: &CaseSummary, size_mib: f64) -> Option<f64> {
    let cpu = row.client_cpu_s? + row.server_cpu_s.unwrap_or(0.0) + row.shaper_cpu_s.unwrap_or(0.0);
    Some(cpu / wall_s(row, size_mib)?)
}

/// One line per part of the target that was missed, each with what bounds it.
pub fn explain(m: &Miss<'_>) -> Vec<String> {
    let c = m.case;
    let mut out = Vec::new();
    let base_ratio = c
        .median
        .zip(m.base.and_then(|b| b.median))
        .map(|(a, b)| a / b);
    let ratio_missed = base_ratio.is_some_and(|r| match c.unit {
        Unit::MibPerS => r < m.target.ratio,
        Unit::MsPerOp => r > m.target.ratio,
    });
    if let (true, Some(ratio), Some(base)) = (ratio_missed, base_ratio, m.base) {
        let mut line = format!(
            "{ratio:.3}× `{}` (target {:.2}×)",
            base.name, m.target.ratio
        );
        if let (Some(busy), Some(wall)) = (busy_cores(c, m.size_mib), wall_s(c, m.size_mib)) {
            let cpu_bound = busy >= CPU_BOUND_SHARE * m.cpus as f64;
            line.push_str(&format!(
                ": {busy:.1} of {} cores busy{} (client {:.2} s, registry {:.2} s of {wall:.2} s)",
                m.cpus,
                if cpu_bound { ", CPU-bound" } else { "" },
                c.client_cpu_s.unwrap_or(0.0),
                c.server_cpu_s.unwrap_or(0.0),
            ));
            if let (Some(server), true) = (c.server_cpu_s, m.cpus > 1) {
                if server / wall >= 0.9 {
                    line.push_str(&format!(
                        "; the registry alone keeps {:.2} core busy",
                        server / wall
                    ));
                }
            }
            if let Some(theirs) = base.client_cpu_s {
                line.push_str(&format!("; `{}`: client {theirs:.2} s", base.name));
            }
        }
        if !m.hint.is_empty() {
            line.push_str(&format!(". {}", m.hint));
        }
        out.push(line);
    }
    if let (Some(min), Some(speedup), Some(peer)) =
        (m.target.peer_speedup, c.peer_speedup, c.best_peer)
    {
        if speedup < min {
            let mut line = format!("{speedup:.2}× `{peer}` (target {min:.1}×)");
            let room = m
                .peer_median
                .zip(m.limit.and_then(|l| l.median))
                .filter(|_| c.unit == Unit::MibPerS);
            if let (Some((peer_median, limit_median)), Some(limit)) = (room, m.limit) {
                let needed = peer_median * min / limit_median;
                if needed > 1.0 {
                    line.push_str(&format!(
                        ": the link: `{peer}` already reaches {:.2}× `{}`, so {min:.1}× it \
                         would be {needed:.2}× the limit",
                        peer_median / limit_median,
                        limit.name
                    ));
                }
            }
            out.push(line);
        }
    }
    if let (Some(max), Some(rss)) = (m.target.max_rss_mib, c.peak_rss_mib) {
        if rss > max {
            out.push(format!("peak RSS {rss:.1} MiB (bound {max:.0} MiB)"));
        }
    }
    out
}
