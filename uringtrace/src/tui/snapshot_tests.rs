//! The headless document and its text/JSON forms, from a hand-built snapshot.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::analyzer::finding::Evidence;
use crate::analyzer::rules::RuleId;
use crate::output::top::{TopDocument, TOP_FORMAT_VERSION};
use crate::output::{top_json, top_text};

fn snapshot() -> Snapshot {
    let quiet = RingRow {
        ctx: 0xffff_8881_0000_1000,
        ring: "0xffff888100001000".into(),
        pid: 10,
        comm: "idle".into(),
        submits_per_s: Some(1.0),
        completions_per_s: Some(1.0),
        ..RingRow::default()
    };
    let busy = RingRow {
        ctx: 0xffff_8881_0000_2000,
        ring: "0xffff888100002000".into(),
        pid: 20,
        comm: "server".into(),
        flags: "SQPOLL|SINGLE_ISSUER".into(),
        submits_per_s: Some(12_345.67),
        completions_per_s: Some(12_000.0),
        in_flight: 7,
        p50_ns: Some(1_600),
        p99_ns: Some(2_500_000),
        errors_per_s: Some(0.0),
        overflows: 13,
        punts_per_s: None,
        finding: Some(Severity::Warning),
        submitted: 5000,
        completed: 4993,
    };
    let finding = Finding {
        rule: RuleId::CqOverflow,
        severity: Severity::Warning,
        pid: 20,
        comm: "server".into(),
        ring: 0xffff_8881_0000_2000,
        message: "13 CQEs did not fit".into(),
        fix: "reap faster".into(),
        occurrences: 13,
        evidence: Evidence {
            requests: vec![],
            facts: vec![],
            first_ns: 1,
            last_ns: 2,
        },
        inconclusive: false,
    };
    Snapshot {
        now_ns: 5_000_000_000,
        running_ns: 2_500_000_000,
        events: 10_000,
        events_per_s: Some(4000.0),
        rings: vec![quiet, busy],
        findings: vec![finding],
        lost: LostEvents::counted(&[0, 2]),
        degraded: vec![("cq-overflow".into(), "no tracepoint".into())],
    }
}

#[test]
fn document_has_the_rings_in_the_tuis_default_order_and_the_findings() {
    let doc = snapshot().document();
    assert_eq!(doc.format_version, TOP_FORMAT_VERSION);
    assert_eq!(doc.time_ns, 5_000_000_000);
    assert_eq!(doc.running_ns, 2_500_000_000);
    assert_eq!(doc.events, 10_000);
    assert_eq!(doc.lost_events.total, 2);
    assert_eq!(doc.lost_events.per_cpu, [0, 2]);
    assert!(doc.lost_events.known);
    assert_eq!(doc.degraded_detectors[0].rule, "cq-overflow");
    // Submissions per second, highest first: what the screen shows first.
    let pids: Vec<u32> = doc.rings.iter().map(|r| r.pid).collect();
    assert_eq!(pids, [20, 10]);
    let busy = &doc.rings[0];
    assert_eq!(busy.flags, ["SQPOLL", "SINGLE_ISSUER"]);
    assert_eq!(busy.worst_severity, Some(Severity::Warning));
    assert_eq!((busy.submitted, busy.completed), (5000, 4993));
    assert!(doc.rings[1].flags.is_empty());
    let f = &doc.findings[0];
    assert_eq!(f.rule, "cq-overflow");
    assert_eq!(f.ring, "0xffff888100002000");
    assert_eq!(f.occurrences, 13);
}

#[test]
fn json_is_one_line_that_reads_back() {
    let doc = snapshot().document();
    let line = top_json(&doc);
    assert!(!line.contains('\n'));
    let back: TopDocument = serde_json::from_str(&line).unwrap();
    assert_eq!(back, doc);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["rings"][0]["worst_severity"], "warning");
    assert_eq!(v["rings"][0]["punts_per_s"], serde_json::Value::Null);
    assert_eq!(v["rings"][1]["worst_severity"], serde_json::Value::Null);
    assert_eq!(v["findings"][0]["severity"], "warning");
    assert_eq!(v["lost_events"]["per_cpu"], serde_json::json!([0, 2]));
}

#[test]
fn text_is_the_tuis_table_aligned() {
    let text = top_text(&snapshot().document(), false);
    let expected = "\
time 2.5s  events 10000 (4000.0/s)  lost 2  rings 2  findings 1
degraded: cq-overflow: no tracepoint
  PID/COMM  RING               FLAGS                  SUB/s   CMP/s INFL   P50   P99 ERR/s OVF PUNT/s
! 20/server 0xffff888100002000 SQPOLL|SINGLE_ISSUER 12345.7 12000.0    7 1.6µs 2.5ms   0.0  13      -
  10/idle   0xffff888100001000 -                        1.0     1.0    0     -     -     -   0      -
WARNING cq-overflow 20/server 0xffff888100002000: 13 CQEs did not fit (×13)
";
    assert_eq!(text, expected);
    assert!(!text.contains('\x1b'));
}

#[test]
fn text_colours_marks_and_severities_only_when_asked() {
    let text = top_text(&snapshot().document(), true);
    assert!(text.contains("\x1b[1;33m!\x1b[0m 20/server"), "{text}");
    assert!(
        text.contains("\x1b[1;33mWARNING\x1b[0m cq-overflow"),
        "{text}"
    );
}

#[test]
fn an_empty_snapshot_says_so() {
    let text = top_text(&Snapshot::default().document(), false);
    assert_eq!(
        text,
        "time 0ns  events 0 (-/s)  lost unknown  rings 0  findings 0\n  PID/COMM RING FLAGS SUB/s CMP/s INFL P50 P99 ERR/s OVF PUNT/s\nno findings\n"
    );
}
