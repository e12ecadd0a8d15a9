//! The report for a terminal: plain, or with ANSI colours.

use std::fmt::Write as _;

use super::cells::{
    by_severity, environment_pairs, latency_cells, lost_line, pad, request_cells, ring_cells,
    summary, table, INCONCLUSIVE_WARNING, LATENCY_HEADERS, REQUEST_HEADERS, RING_HEADERS,
};
use crate::analyzer::finding::{Finding, Severity};
use crate::analyzer::report::{LostEvents, OpLatency, Report, RingSummary};

/// ANSI styling, or none at all.
#[derive(Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn paint(self, code: &str, s: &str) -> String {
        match self.color {
            true => format!("\x1b[{code}m{s}\x1b[0m"),
            false => s.to_string(),
        }
    }

    fn heading(self, s: &str) -> String {
        self.paint("1", s)
    }

    /// The severity tag, padded before painting so escapes do not upset alignment.
    fn severity(self, sev: Severity) -> String {
        let code = match sev {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "1;34",
        };
        self.paint(code, &pad(&sev.name().to_ascii_uppercase(), 7))
    }

    fn warning(self, s: &str) -> String {
        self.paint("33", s)
    }
}

/// A readable terminal report; ANSI colours only when `color`.
pub fn text(report: &Report, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    text_environment(&mut out, report, st);
    text_rings(&mut out, &report.rings, st);
    text_findings(&mut out, &report.findings, st);
    text_latency(&mut out, &report.latency, st);
    text_lost(&mut out, &report.lost_events, st);
    out.push_str(&st.heading(&summary(&report.findings)));
    out.push('\n');
    out
}

fn text_environment(out: &mut String, report: &Report, st: Style) {
    let _ = writeln!(out, "{}", st.heading("Environment"));
    for (k, v) in environment_pairs(report) {
        let _ = writeln!(out, "  {:<19} {v}", format!("{k}:"));
    }
    let degraded = &report.environment.degraded;
    if degraded.is_empty() {
        let _ = writeln!(out, "  {:<19} none", "degraded detectors:");
    } else {
        let _ = writeln!(out, "  degraded detectors:");
        for (rule, reason) in degraded {
            let _ = writeln!(out, "    {rule}: {reason}");
        }
    }
    out.push('\n');
}

fn text_rings(out: &mut String, rings: &[RingSummary], st: Style) {
    let _ = writeln!(out, "{}", st.heading("Rings"));
    if rings.is_empty() {
        out.push_str("  no io_uring activity seen\n\n");
        return;
    }
    let rows: Vec<Vec<String>> = rings.iter().map(ring_cells).collect();
    out.push_str(&table(RING_HEADERS, &rows, "  "));
    out.push('\n');
}

fn text_findings(out: &mut String, findings: &[Finding], st: Style) {
    let _ = writeln!(out, "{}", st.heading("Findings"));
    if findings.is_empty() {
        out.push_str("  none\n\n");
        return;
    }
    for f in by_severity(findings) {
        out.push_str(&finding_block(f, st));
        out.push('\n');
    }
}

/// One finding as text, without colour: also the body of a JUnit failure.
pub fn finding_text(f: &Finding) -> String {
    finding_block(f, Style { color: false })
}

fn finding_block(f: &Finding, st: Style) -> String {
    let mut out = String::new();
    let mut head = format!("  {} {}", st.severity(f.severity), f.rule);
    if f.pid != 0 {
        let _ = write!(head, "  pid {}", f.pid);
        if !f.comm.is_empty() {
            let _ = write!(head, " ({})", f.comm);
        }
    }
    if f.ring != 0 {
        let _ = write!(head, "  ring {}", f.ring_hex());
    }
    if f.occurrences > 1 {
        let _ = write!(head, "  ×{}", f.occurrences);
    }
    let _ = writeln!(out, "{head}");
    let _ = writeln!(out, "    {}", f.message);
    if f.inconclusive {
        let _ = writeln!(
            out,
            "    {}",
            st.warning("(inconclusive: events were lost)")
        );
    }
    evidence_text(&mut out, f);
    if !f.fix.is_empty() {
        let _ = writeln!(out, "    fix: {}", f.fix);
    }
    let _ = writeln!(out, "    more: uringtrace explain {}", f.rule);
    out
}

fn evidence_text(out: &mut String, f: &Finding) {
    let ev = &f.evidence;
    if ev.facts.is_empty() && ev.requests.is_empty() {
        return;
    }
    out.push_str("    evidence:\n");
    for fact in &ev.facts {
        let _ = writeln!(out, "      {}: {}", fact.name, fact.value);
    }
    if !ev.requests.is_empty() {
        let rows: Vec<Vec<String>> = ev.requests.iter().map(request_cells).collect();
        out.push_str(&table(REQUEST_HEADERS, &rows, "      "));
    }
}

fn text_latency(out: &mut String, latency: &[OpLatency], st: Style) {
    let _ = writeln!(out, "{}", st.heading("Latency per opcode"));
    if latency.is_empty() {
        out.push_str("  no completed requests\n\n");
        return;
    }
    let rows: Vec<Vec<String>> = latency.iter().map(latency_cells).collect();
    out.push_str(&table(LATENCY_HEADERS, &rows, "  "));
    out.push('\n');
}

fn text_lost(out: &mut String, lost: &LostEvents, st: Style) {
    let _ = writeln!(out, "{}", st.heading("Lost events"));
    let _ = writeln!(out, "  {}", lost_line(lost));
    if lost.inconclusive() {
        let _ = writeln!(
            out,
            "  {}",
            st.warning(&format!("warning: {INCONCLUSIVE_WARNING}"))
        );
    }
    out.push('\n');
}
