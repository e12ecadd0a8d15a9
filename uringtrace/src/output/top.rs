//! Headless `top`: the ring table and the findings the TUI shows, as one JSON document
//! ([`TopDocument`], one line each) or as a plain-text table.
//!
//! The TUI builds the document from its per-tick snapshot (`tui::snapshot`), so the
//! screen and the headless output are two renderings of the same state. The types
//! here are self-contained data: no TUI type leaks into the JSON.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyzer::finding::Severity;
use crate::analyzer::report::Nullable;
use crate::analyzer::rules::RuleId;
use crate::units::human_ns;

use super::cells::{pad, who};

/// [`TopDocument::format_version`] of this build. Bumped when a field changes meaning
/// or goes away; new fields may appear without a bump.
pub const TOP_FORMAT_VERSION: u32 = 1;

/// One snapshot of `uringtrace top`: what the main screen shows at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TopDocument {
    /// The layout version of this document ([`TOP_FORMAT_VERSION`]).
    pub format_version: u32,
    /// When the snapshot was taken, on the trace's clock (CLOCK_MONOTONIC ns; in a
    /// replay, the recording's clock).
    pub time_ns: u64,
    /// Trace time since the trace started (a replay: since the recording started).
    pub running_ns: u64,
    /// Events analysed so far.
    pub events: u64,
    /// Events per second over the TUI's rate window; null until two samples exist.
    #[schemars(with = "Nullable<f64>")]
    pub events_per_s: Option<f64>,
    pub lost_events: TopLostEvents,
    /// Detectors that cannot fully work on the traced kernel.
    pub degraded_detectors: Vec<TopDegraded>,
    /// In the TUI's default order: submissions per second, highest first.
    pub rings: Vec<TopRing>,
    /// By severity (most severe first), then first seen: as the TUI lists them.
    pub findings: Vec<TopFinding>,
}

/// Events the kernel ring buffer dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TopLostEvents {
    /// false when the counters are unknown (a recording that did not end cleanly);
    /// `total` and `per_cpu` then say nothing.
    pub known: bool,
    pub total: u64,
    /// Index = CPU.
    pub per_cpu: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TopDegraded {
    /// The rule's slug, e.g. `cq-overflow`.
    #[schemars(with = "RuleId")]
    pub rule: String,
    pub reason: String,
}

/// One row of the rings table. Rates are per second over the TUI's rate window (the
/// last few seconds), null until two samples exist.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TopRing {
    /// `struct io_ring_ctx *` as hex, as findings name it.
    pub ring: String,
    pub pid: u32,
    /// "" when unknown.
    pub comm: String,
    /// IORING_SETUP_* names without the prefix, e.g. `["SQPOLL", "SINGLE_ISSUER"]`.
    pub flags: Vec<String>,
    /// Requests submitted and completed since the trace started.
    pub submitted: u64,
    pub completed: u64,
    #[schemars(with = "Nullable<f64>")]
    pub submits_per_s: Option<f64>,
    #[schemars(with = "Nullable<f64>")]
    pub completions_per_s: Option<f64>,
    pub in_flight: u64,
    /// Completion latency quantiles since the trace started; null with no completion.
    #[schemars(with = "Nullable<u64>")]
    pub p50_ns: Option<u64>,
    #[schemars(with = "Nullable<u64>")]
    pub p99_ns: Option<u64>,
    #[schemars(with = "Nullable<f64>")]
    pub errors_per_s: Option<f64>,
    /// CQEs that overflowed the completion queue since the trace started.
    pub overflows: u64,
    /// Requests punted to io-wq per second.
    #[schemars(with = "Nullable<f64>")]
    pub punts_per_s: Option<f64>,
    /// The most severe finding about this ring; null for none.
    #[schemars(with = "Nullable<Severity>")]
    pub worst_severity: Option<Severity>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TopFinding {
    /// The rule's slug, e.g. `cq-overflow` (`uringtrace explain RULE`).
    #[schemars(with = "RuleId")]
    pub rule: String,
    pub severity: Severity,
    pub pid: u32,
    pub comm: String,
    /// The ring as hex, "" when the finding is about no one ring.
    pub ring: String,
    /// One line: what happened.
    pub message: String,
    /// How many times this cause was seen.
    pub occurrences: u64,
    /// True when ring-buffer drops make this verdict uncertain.
    pub inconclusive: bool,
}

/// The document as one line of JSON (no trailing newline): a JSON-lines record.
pub fn top_json(doc: &TopDocument) -> String {
    // Plain structs, strings and numbers (a NaN rate would become null): cannot fail;
    // an object naming the problem is still better than a panic.
    serde_json::to_string(doc)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
}

/// The header of the plain-text ring table: the TUI's column names, plus the mark.
pub const TOP_TEXT_HEADERS: [&str; 12] = [
    " ", "PID/COMM", "RING", "FLAGS", "SUB/s", "CMP/s", "INFL", "P50", "P99", "ERR/s", "OVF",
    "PUNT/s",
];

/// The TUI's main screen as plain text: a summary line, the rings table (the TUI's
/// columns, numbers right-aligned, none dropped for width) and the findings. ANSI
/// colours (the finding mark and severities) only when `color`. Ends with a newline.
pub fn top_text(doc: &TopDocument, color: bool) -> String {
    let mut out = String::new();
    let lost = if doc.lost_events.known {
        doc.lost_events.total.to_string()
    } else {
        "unknown".into()
    };
    let _ = writeln!(
        out,
        "time {}  events {} ({}/s)  lost {}  rings {}  findings {}",
        human_ns(doc.running_ns),
        doc.events,
        rate(doc.events_per_s),
        lost,
        doc.rings.len(),
        doc.findings.len()
    );
    for d in &doc.degraded_detectors {
        let _ = writeln!(out, "degraded: {}: {}", d.rule, d.reason);
    }
    let rows: Vec<(Option<Severity>, Vec<String>)> = doc
        .rings
        .iter()
        .map(|r| (r.worst_severity, ring_cells(r)))
        .collect();
    out.push_str(&ring_table(&rows, color));
    if doc.findings.is_empty() {
        out.push_str("no findings\n");
    }
    for f in &doc.findings {
        let sev = paint(
            color,
            Some(f.severity),
            &pad(&f.severity.name().to_ascii_uppercase(), 7),
        );
        let about = match (f.pid, f.ring.is_empty()) {
            (0, true) => String::new(),
            (p, true) => format!(" {}", who(p, &f.comm)),
            (0, false) => format!(" {}", f.ring),
            (p, false) => format!(" {} {}", who(p, &f.comm), f.ring),
        };
        let times = match f.occurrences {
            0 | 1 => String::new(),
            n => format!(" (×{n})"),
        };
        let _ = writeln!(out, "{sev} {}{about}: {}{times}", f.rule, f.message);
    }
    out
}

fn ring_cells(r: &TopRing) -> Vec<String> {
    let flags = if r.flags.is_empty() {
        "-".into()
    } else {
        r.flags.join("|")
    };
    vec![
        if r.worst_severity.is_some() { "!" } else { " " }.into(),
        who(r.pid, &r.comm),
        r.ring.clone(),
        flags,
        rate(r.submits_per_s),
        rate(r.completions_per_s),
        r.in_flight.to_string(),
        latency(r.p50_ns),
        latency(r.p99_ns),
        rate(r.errors_per_s),
        r.overflows.to_string(),
        rate(r.punts_per_s),
    ]
}

/// Columns 0..4 are names (left-aligned), the rest numbers (right-aligned). Widths
/// count chars, so "µs" lines up; padding happens before painting.
fn ring_table(rows: &[(Option<Severity>, Vec<String>)], color: bool) -> String {
    let mut widths: Vec<usize> = TOP_TEXT_HEADERS.iter().map(|h| h.chars().count()).collect();
    for (_, cells) in rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String], mark: Option<Severity>| {
        let v: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| match i {
                0 => paint(color, mark, c),
                1..=3 => pad(c, *w),
                _ => format!("{}{c}", " ".repeat(w.saturating_sub(c.chars().count()))),
            })
            .collect();
        format!("{}\n", v.join(" ").trim_end())
    };
    let header: Vec<String> = TOP_TEXT_HEADERS.iter().map(|h| h.to_string()).collect();
    let mut out = line(&header, None);
    for (sev, cells) in rows {
        out.push_str(&line(cells, *sev));
    }
    out
}

fn paint(color: bool, sev: Option<Severity>, s: &str) -> String {
    let code = match sev {
        Some(Severity::Error) => "1;31",
        Some(Severity::Warning) => "1;33",
        Some(Severity::Info) => "1;34",
        None => return s.to_string(),
    };
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// One decimal, "-" when unknown. Text is for reading, JSON for full precision.
fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.1}"))
}

fn latency(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".into(), human_ns)
}
