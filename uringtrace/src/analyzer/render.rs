//! Renderings of a [`Report`]: terminal text, GitHub markdown, JSON. Pure functions:
//! they build strings and values, the commands decide where they go.

use std::fmt::Write as _;

use serde_json::Value;

use super::finding::{Finding, RequestEvidence, Severity};
use super::report::{LostEvents, OpLatency, Report, RingSummary};

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// A duration in the largest unit that keeps it readable: 850ns, 12.3µs, 2ms, 1.25s.
pub fn human_ns(ns: u64) -> String {
    // Thresholds sit where rounding would print "1000" of the smaller unit.
    let (value, unit, decimals) = match ns {
        n if n < 1_000 => return format!("{n}ns"),
        n if n < 999_950 => (n as f64 / 1e3, "µs", 1),
        n if n < 999_995_000 => (n as f64 / 1e6, "ms", 2),
        n => (n as f64 / 1e9, "s", 2),
    };
    let s = format!("{value:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{unit}")
}

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
fn by_severity(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v
}

/// A left-aligned table. Widths count chars, not bytes, so "µs" lines up.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>], indent: &str) -> String {
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

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn who(pid: u32, comm: &str) -> String {
    match (pid, comm.is_empty()) {
        (0, _) => "-".into(),
        (p, true) => p.to_string(),
        (p, false) => format!("{p}/{comm}"),
    }
}

fn ring_cells(r: &RingSummary) -> Vec<String> {
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
        who(r.pid, &r.comm),
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

const RING_HEADERS: &[&str] = &[
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

fn request_cells(r: &RequestEvidence) -> Vec<String> {
    vec![
        format!("{:#x}", r.user_data),
        r.opcode_name(),
        r.result_text(),
        r.role.clone(),
    ]
}

const REQUEST_HEADERS: &[&str] = &["user_data", "opcode", "result", "role"];

fn latency_cells(l: &OpLatency) -> Vec<String> {
    vec![
        l.opcode.clone(),
        l.count.to_string(),
        human_ns(l.p50_ns),
        human_ns(l.p99_ns),
        human_ns(l.max_ns),
    ]
}

const LATENCY_HEADERS: &[&str] = &["opcode", "count", "p50", "p99", "max"];

/// "12 events lost (cpu0: 10, cpu3: 2)", or why the count is unknown.
fn lost_line(lost: &LostEvents) -> String {
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

const INCONCLUSIVE_WARNING: &str =
    "verdicts are inconclusive: a problem may hide in the lost events (try a larger --ring-size)";

fn environment_pairs(report: &Report) -> Vec<(&'static str, String)> {
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

// ---------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------

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

/// The same content as [`text`], as GitHub markdown.
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
                who(f.pid, &f.comm),
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

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

/// The report as JSON: the serde form of [`Report`], so it reads back into one.
/// Top-level keys: environment, rings, findings, latency, lost_events, events,
/// duration_ns, max_iowq_workers. Evidence facts are `[name, value]` pairs (ordered,
/// possibly repeated), severities lower case.
pub fn json(report: &Report) -> Value {
    // Report has only string map keys and plain numbers, so this cannot fail; a
    // value that names the problem is still better than a panic.
    serde_json::to_value(report).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analyzer::finding::Evidence;
    use crate::analyzer::report::Environment;

    pub(crate) fn finding(rule: &str, severity: Severity) -> Finding {
        Finding {
            rule: crate::analyzer::rules::RuleId::from_slug(rule).expect("a known rule"),
            severity,
            pid: 1234,
            comm: "app".into(),
            ring: 0xffff888012345000,
            occurrences: 1,
            message: format!("{rule} happened | with a pipe & <angle> \"quotes\""),
            fix: "do the right thing".into(),
            evidence: Evidence {
                requests: vec![
                    RequestEvidence {
                        user_data: 1,
                        opcode: 22,
                        result: Some(-9),
                        role: "breaker".into(),
                        submitted_ns: Some(10),
                        completed_ns: Some(20),
                    },
                    RequestEvidence {
                        user_data: 2,
                        opcode: 0,
                        result: None,
                        role: "waiting".into(),
                        submitted_ns: Some(11),
                        completed_ns: None,
                    },
                ],
                facts: vec![crate::analyzer::finding::Fact::new(
                    "cq_entries",
                    crate::analyzer::finding::FactValue::Count(4),
                )],
                first_ns: 10,
                last_ns: 20,
            },
            inconclusive: false,
        }
    }

    pub(crate) fn report() -> Report {
        Report {
            environment: Environment {
                kernel_release: "6.18.44".into(),
                host: "box".into(),
                source: "app.utr".into(),
                io_uring_disabled: String::new(),
                degraded: vec![(
                    "cqe-dropped".into(),
                    "no io_uring_cqe_overflow before 5.19".into(),
                )],
                tool_version: "0.1.0".into(),
            },
            rings: vec![RingSummary {
                ring: "0xffff888012345000".into(),
                pid: 1234,
                comm: "app".into(),
                fd: Some(3),
                sq_entries: Some(4),
                cq_entries: Some(8),
                setup_flags: "SQPOLL".into(),
                submitted: 17,
                completed: 17,
                overflowed: 13,
                dropped_cqes: 1,
                in_flight: 0,
                max_in_flight: 17,
                punted: 0,
                sqpoll_thread: Some(1240),
                sqpoll_state: Some("asleep".into()),
                iowq_workers: 2,
            }],
            findings: vec![
                finding("multishot-terminated", Severity::Info),
                finding("cq-overflow", Severity::Warning),
                finding("wait-cycle", Severity::Error),
            ],
            latency: vec![OpLatency {
                opcode: "READ".into(),
                count: 100,
                p50_ns: 850,
                p99_ns: 12_345,
                max_ns: 3_000_000,
            }],
            lost_events: LostEvents {
                total: 12,
                per_cpu: vec![10, 0, 0, 2],
                known: true,
            },
            events: 1000,
            duration_ns: 1_500_000_000,
            max_iowq_workers: 2,
        }
    }

    #[test]
    fn human_units() {
        assert_eq!(human_ns(850), "850ns");
        assert_eq!(human_ns(12_345), "12.3µs");
        assert_eq!(human_ns(2_000_000), "2ms");
        assert_eq!(human_ns(999_990), "1ms");
        assert_eq!(human_ns(1_250_000_000), "1.25s");
    }

    #[test]
    fn summary_counts() {
        let r = report();
        assert_eq!(
            summary(&r.findings),
            "3 findings: 1 error, 1 warning, 1 info"
        );
        assert_eq!(summary(&[]), "0 findings: 0 errors, 0 warnings, 0 info");
    }

    #[test]
    fn text_without_color_has_no_escapes() {
        let t = text(&report(), false);
        assert!(!t.contains('\x1b'), "{t}");
        for needle in [
            "Environment",
            "Rings",
            "Findings",
            "Latency per opcode",
            "Lost events",
            "io_uring_disabled:  unknown",
            "cqe-dropped: no io_uring_cqe_overflow",
            "13 (1 dropped)",
            "1240 asleep",
            "fix: do the right thing",
            "more: uringtrace explain wait-cycle",
            "cq_entries: 4",
            "0x1        READ    -EBADF     breaker",
            "12.3µs",
            "12 events lost in the kernel ring buffer (cpu0: 10, cpu3: 2)",
            "verdicts are inconclusive",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        }
        assert!(t
            .trim_end()
            .ends_with("3 findings: 1 error, 1 warning, 1 info"));
        // Errors first.
        let (e, i) = (t.find("ERROR"), t.find("INFO"));
        assert!(e < i, "{t}");
    }

    #[test]
    fn text_with_color_paints_severities() {
        let t = text(&report(), true);
        assert!(t.contains("\x1b[1;31mERROR"));
        assert!(t.contains("\x1b[1;33mWARNING"));
        assert!(t.contains("\x1b[1;34mINFO"));
    }

    #[test]
    fn text_marks_inconclusive_and_unknown_losses() {
        let mut r = report();
        r.findings[0].inconclusive = true;
        r.lost_events = LostEvents {
            total: 0,
            per_cpu: vec![],
            known: false,
        };
        let t = text(&r, false);
        assert!(t.contains("(inconclusive: events were lost)"));
        assert!(t.contains("unknown: the recording did not end cleanly"));
        r.lost_events.known = true;
        r.findings.clear();
        let t = text(&r, false);
        assert!(!t.contains("inconclusive"), "{t}");
        assert!(t.contains("Findings\n  none"));
    }

    #[test]
    fn markdown_has_tables() {
        let m = markdown(&report());
        assert!(
            m.contains("| severity | rule | pid/comm | ring | count | message |"),
            "{m}"
        );
        assert!(m.contains("| error | `wait-cycle` | 1234/app |"), "{m}");
        // A pipe in a message must not split the cell.
        assert!(
            m.contains("happened \\| with a pipe & &lt;angle&gt;"),
            "{m}"
        );
        assert!(!m.contains("<angle>"), "{m}");
        assert!(m.contains("| user_data | opcode | result | role |"));
        assert!(m.contains("| READ | 100 | 850ns | 12.3µs | 3ms |"), "{m}");
        assert!(m.contains("**3 findings: 1 error, 1 warning, 1 info**"));
    }

    #[test]
    fn json_has_the_documented_shape() {
        let r = report();
        let v = json(&r);
        for key in [
            "findings",
            "lost_events",
            "environment",
            "rings",
            "latency",
            "events",
            "duration_ns",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let f = &v["findings"][0];
        for key in [
            "rule",
            "severity",
            "pid",
            "comm",
            "ring",
            "message",
            "evidence",
            "fix",
            "inconclusive",
        ] {
            assert!(f.get(key).is_some(), "finding lacks {key}");
        }
        assert_eq!(f["severity"], "info");
        assert_eq!(v["lost_events"]["total"], 12);
        assert_eq!(v["lost_events"]["known"], true);
        assert!(v["lost_events"]["per_cpu"].is_array());
        // It reads back: `check` can take a saved JSON report.
        let back: Report = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, r);
    }
}
