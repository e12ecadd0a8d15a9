//! Tests of the report formats, on the sample report of the check's tests.

use super::*;
use crate::analyzer::check::fixtures::report;
use crate::analyzer::report::{LostEvents, Report};

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
