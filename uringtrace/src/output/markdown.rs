//! The report as GitHub markdown: the same content as the terminal text.

use std::fmt::Write as _;

use super::cells::{
    by_severity, environment_pairs, latency_cells, lost_line, request_cells, ring_cells, summary,
    who_or_dash, INCONCLUSIVE_WARNING, LATENCY_HEADERS, REQUEST_HEADERS, RING_HEADERS,
};
use crate::analyzer::finding::Finding;
use crate::analyzer::report::{LostEvents, OpLatency, Report, RingSummary};

/// Text outside code spans: angle brackets would be taken for HTML tags, and a line
/// break would end a list item.
fn md_text(s: &str) -> String {
    s.replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\r', '\n'], " ")
}

/// A table cell: also pipes escaped, which would otherwise split the cell.
fn md_cell(s: &str) -> String {
    md_text(&s.replace('\\', "\\\\").replace('|', "\\|"))
}

fn md_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(headers.iter().map(|h| md_cell(h)).collect());
    out.push_str(&line(headers.iter().map(|_| "---".to_string()).collect()));
    for row in rows {
        out.push_str(&line(row.iter().map(|c| md_cell(c)).collect()));
    }
    out
}

/// The same content as [`super::text()`], as GitHub markdown.
pub fn markdown(report: &Report) -> String {
    let mut out = String::from("# uringtrace report\n\n");
    md_environment(&mut out, report);
    md_rings(&mut out, &report.rings);
    md_findings(&mut out, &report.findings);
    md_latency(&mut out, &report.latency);
    md_lost(&mut out, &report.lost_events);
    let _ = writeln!(out, "**{}**", summary(&report.findings));
    out
}

fn md_environment(out: &mut String, report: &Report) {
    out.push_str("## Environment\n\n");
    let mut rows: Vec<Vec<String>> = environment_pairs(report)
        .into_iter()
        .map(|(k, v)| vec![k.to_string(), v])
        .collect();
    let degraded: Vec<String> = report
        .environment
        .degraded
        .iter()
        .map(|(r, why)| format!("{r}: {why}"))
        .collect();
    let degraded = if degraded.is_empty() {
        "none".to_string()
    } else {
        degraded.join("; ")
    };
    rows.push(vec!["degraded detectors".into(), degraded]);
    out.push_str(&md_table(&["", ""], &rows));
    out.push('\n');
}

fn md_rings(out: &mut String, rings: &[RingSummary]) {
    out.push_str("## Rings\n\n");
    if rings.is_empty() {
        out.push_str("No io_uring activity seen.\n\n");
        return;
    }
    let rows: Vec<Vec<String>> = rings.iter().map(ring_cells).collect();
    out.push_str(&md_table(RING_HEADERS, &rows));
    out.push('\n');
}

fn md_findings(out: &mut String, findings: &[Finding]) {
    out.push_str("## Findings\n\n");
    if findings.is_empty() {
        out.push_str("No findings.\n\n");
        return;
    }
    let sorted = by_severity(findings);
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|f| {
            vec![
                f.severity.name().to_string(),
                format!("`{}`", f.rule),
                who_or_dash(f.pid, &f.comm),
                if f.ring == 0 {
                    "-".into()
                } else {
                    format!("`{}`", f.ring_hex())
                },
                f.occurrences.to_string(),
                f.message.clone(),
            ]
        })
        .collect();
    out.push_str(&md_table(
        &["severity", "rule", "pid/comm", "ring", "count", "message"],
        &rows,
    ));
    out.push('\n');
    for (i, f) in sorted.iter().enumerate() {
        md_finding_details(out, i + 1, f);
    }
}

fn md_finding_details(out: &mut String, n: usize, f: &Finding) {
    let _ = writeln!(out, "### {n}. {} `{}`\n", f.severity.name(), f.rule);
    let _ = writeln!(out, "{}\n", md_text(&f.message));
    if f.inconclusive {
        out.push_str("*Inconclusive: events were lost.*\n\n");
    }
    for fact in &f.evidence.facts {
        let _ = writeln!(
            out,
            "- {}: {}",
            md_text(&fact.name),
            md_text(&fact.value.to_string())
        );
    }
    if !f.evidence.facts.is_empty() {
        out.push('\n');
    }
    if !f.evidence.requests.is_empty() {
        let rows: Vec<Vec<String>> = f.evidence.requests.iter().map(request_cells).collect();
        out.push_str(&md_table(REQUEST_HEADERS, &rows));
        out.push('\n');
    }
    if !f.fix.is_empty() {
        let _ = writeln!(out, "**Fix:** {}\n", md_text(&f.fix));
    }
    let _ = writeln!(out, "More: `uringtrace explain {}`\n", f.rule);
}

fn md_latency(out: &mut String, latency: &[OpLatency]) {
    out.push_str("## Latency per opcode\n\n");
    if latency.is_empty() {
        out.push_str("No completed requests.\n\n");
        return;
    }
    let rows: Vec<Vec<String>> = latency.iter().map(latency_cells).collect();
    out.push_str(&md_table(LATENCY_HEADERS, &rows));
    out.push('\n');
}

fn md_lost(out: &mut String, lost: &LostEvents) {
    out.push_str("## Lost events\n\n");
    let _ = writeln!(out, "{}\n", lost_line(lost));
    if lost.inconclusive() {
        let _ = writeln!(out, "> **Warning:** {INCONCLUSIVE_WARNING}\n");
    }
}
