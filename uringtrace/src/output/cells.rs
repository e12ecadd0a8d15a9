//! What the formats share: the cells of the ring, request and latency tables, the
//! summary line, and the lost-events line.

use std::fmt::Write as _;

use crate::analyzer::finding::{Finding, RequestEvidence, Severity};
use crate::analyzer::report::{LostEvents, OpLatency, Report, RingSummary};
use crate::units::human_ns;

/// "1 error", "2 warnings", "3 info".
fn count_of(n: usize, sev: Severity) -> String {
    match (sev, n) {
        (Severity::Info, _) => format!("{n} info"),
        (_, 1) => format!("{n} {}", sev.name()),
        _ => format!("{n} {}s", sev.name()),
    }
}

/// The final line: "N findings: E errors, W warnings, I info".
pub fn summary(findings: &[Finding]) -> String {
    let n = |sev| findings.iter().filter(|f| f.severity == sev).count();
    let noun = if findings.len() == 1 {
        "finding"
    } else {
        "findings"
    };
    format!(
        "{} {noun}: {}, {}, {}",
        findings.len(),
        count_of(n(Severity::Error), Severity::Error),
        count_of(n(Severity::Warning), Severity::Warning),
        count_of(n(Severity::Info), Severity::Info),
    )
}

/// Findings by decreasing severity; the order within one severity is kept.
pub(super) fn by_severity(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v
}

/// A left-aligned table. Widths count chars, not bytes, so "µs" lines up.
pub fn table(headers: &[&str], rows: &[Vec<String>], indent: &str) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
        let _ = writeln!(out, "{indent}{}", cells.join("  ").trim_end());
    }
    out
}

pub(super) fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// "pid/comm", or the pid alone when the comm is unknown. The TUI shows pid 0 so.
pub fn who(pid: u32, comm: &str) -> String {
    if comm.is_empty() {
        pid.to_string()
    } else {
        format!("{pid}/{comm}")
    }
}

/// [`who`], but "-" for pid 0: in a report pid 0 means no process (a ring whose owner
/// was never seen, a finding about no process in particular).
pub fn who_or_dash(pid: u32, comm: &str) -> String {
    match pid {
        0 => "-".into(),
        p => who(p, comm),
    }
}

pub(super) fn ring_cells(r: &RingSummary) -> Vec<String> {
    let sq_cq = format!("{}/{}", or_dash(r.sq_entries), or_dash(r.cq_entries));
    let overflowed = match r.dropped_cqes {
        0 => r.overflowed.to_string(),
        d => format!("{} ({d} dropped)", r.overflowed),
    };
    let sqpoll = match (r.sqpoll_thread, &r.sqpoll_state) {
        (Some(t), Some(s)) => format!("{t} {s}"),
        (Some(t), None) => t.to_string(),
        (None, _) => "-".into(),
    };
    vec![
        r.ring.clone(),
        who_or_dash(r.pid, &r.comm),
        or_dash(r.fd),
        sq_cq,
        if r.setup_flags.is_empty() {
            "-".into()
        } else {
            r.setup_flags.clone()
        },
        r.submitted.to_string(),
        r.completed.to_string(),
        overflowed,
        format!("{} (max {})", r.in_flight, r.max_in_flight),
        sqpoll,
        r.iowq_workers.to_string(),
    ]
}

pub(super) const RING_HEADERS: &[&str] = &[
    "ring",
    "pid/comm",
    "fd",
    "sq/cq",
    "setup flags",
    "submitted",
    "completed",
    "overflowed",
    "in flight",
    "sqpoll",
    "io-wq workers",
];

pub(super) fn request_cells(r: &RequestEvidence) -> Vec<String> {
    vec![
        format!("{:#x}", r.user_data),
        r.opcode_name(),
        r.result_text(),
        r.role.clone(),
    ]
}

pub(super) const REQUEST_HEADERS: &[&str] = &["user_data", "opcode", "result", "role"];

pub(super) fn latency_cells(l: &OpLatency) -> Vec<String> {
    vec![
        l.opcode.clone(),
        l.count.to_string(),
        human_ns(l.p50_ns),
        human_ns(l.p99_ns),
        human_ns(l.max_ns),
    ]
}

pub(super) const LATENCY_HEADERS: &[&str] = &["opcode", "count", "p50", "p99", "max"];

/// "12 events lost (cpu0: 10, cpu3: 2)", or why the count is unknown.
pub(super) fn lost_line(lost: &LostEvents) -> String {
    if !lost.known {
        return "unknown: the recording did not end cleanly".into();
    }
    if lost.total == 0 {
        return "none".into();
    }
    let cpus: Vec<String> = lost
        .per_cpu
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("cpu{c}: {n}"))
        .collect();
    match cpus.is_empty() {
        true => format!("{} events lost in the kernel ring buffer", lost.total),
        false => format!(
            "{} events lost in the kernel ring buffer ({})",
            lost.total,
            cpus.join(", ")
        ),
    }
}

pub(super) const INCONCLUSIVE_WARNING: &str =
    "verdicts are inconclusive: a problem may hide in the lost events (try a larger --ring-size)";

pub(super) fn environment_pairs(report: &Report) -> Vec<(&'static str, String)> {
    let env = &report.environment;
    let unknown = |s: &str| {
        if s.is_empty() {
            "unknown".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        ("kernel", unknown(&env.kernel_release)),
        ("host", unknown(&env.host)),
        ("source", unknown(&env.source)),
        ("io_uring_disabled", unknown(&env.io_uring_disabled)),
        ("uringtrace", unknown(&env.tool_version)),
        (
            "events",
            format!("{} over {}", report.events, human_ns(report.duration_ns)),
        ),
    ]
}
