//! Recordings made inside Debian's 5.10 and 6.1 kernels by `cargo xtask kernel-matrix`
//! (tests/fixtures/kernels/<release>/), replayed on any machine: the analyzer must
//! name each scenario's finding, or the recording kernel must have it degraded.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use uringtrace::analyzer::finding::Severity;
use uringtrace::analyzer::AnalyzerConfig;
use uringtrace::pipeline::analyze_file;
use uringtrace::recording::Reader;
use uringtrace_common::EventKind;

fn dir(release: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kernels")
        .join(release)
}

const SCENARIOS: &[(&str, &[&str])] = &[
    ("nop-storm", &[]),
    ("chain-ok", &[]),
    ("chain-broken-error", &["link-chain-broken"]),
    ("chain-broken-short", &["link-chain-broken"]),
    ("invalid-sqe", &["invalid-sqe"]),
    ("cq-overflow", &["cq-overflow"]),
    ("pipe-read-before-write", &["wait-cycle"]),
    ("unsatisfiable-wait", &["unsatisfiable-wait"]),
];

fn check_kernel(release: &str) {
    for (scenario, want) in SCENARIOS {
        let path = dir(release).join(format!("{scenario}.utr"));
        let report = analyze_file(&path, AnalyzerConfig::default())
            .unwrap_or_else(|e| panic!("{path:?}: {e:#}"));
        let degraded: BTreeSet<&str> = report
            .environment
            .degraded
            .iter()
            .map(|d| d.0.as_str())
            .collect();
        let found: BTreeSet<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
        for rule in *want {
            assert!(
                found.contains(rule) || degraded.contains(rule),
                "{release} {scenario}: {rule} silently missed"
            );
        }
        let unexpected: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning && !want.contains(&f.rule.as_str()))
            .map(|f| format!("{}: {}", f.rule, f.message))
            .collect();
        assert!(
            unexpected.is_empty(),
            "{release} {scenario}: {unexpected:#?}"
        );
    }
}

fn results(release: &str, scenario: &str) -> Vec<i32> {
    let mut r = Reader::open(&dir(release).join(format!("{scenario}.utr"))).unwrap();
    let mut by_ud = std::collections::BTreeMap::new();
    while let Some(e) = r.next_event().unwrap() {
        if e.kind == EventKind::Complete as u16 {
            by_ud.insert(e.user_data, e.res);
        }
    }
    by_ud.into_values().collect()
}

#[test]
fn linux_5_10_findings_or_degraded() {
    check_kernel("5.10.0-46-cloud-amd64");
}

#[test]
fn linux_6_1_findings() {
    check_kernel("6.1.0-57-cloud-amd64");
}

#[test]
fn a_bad_fd_fails_the_whole_chain_at_submit_before_5_19() {
    // 5.10 resolves the fd while preparing the SQE, so the chain fails at submit:
    // the head is cancelled too. From 5.19 the fd is resolved at issue.
    assert_eq!(
        results("5.10.0-46-cloud-amd64", "chain-broken-error"),
        [-125, -9, -125, -125]
    );
    assert_eq!(
        results("6.1.0-57-cloud-amd64", "chain-broken-error"),
        [0, -9, -125, -125]
    );
}

#[test]
fn linux_5_10_complete_without_req_still_completes_requests() {
    let report = analyze_file(
        &dir("5.10.0-46-cloud-amd64").join("nop-storm.utr"),
        AnalyzerConfig::default(),
    )
    .unwrap();
    let ring = report.rings.iter().find(|r| r.submitted > 0).unwrap();
    assert_eq!(ring.submitted, ring.completed);
    assert_eq!(ring.in_flight, 0);
    let nop = report.latency.iter().find(|l| l.opcode == "NOP").unwrap();
    assert_eq!(nop.count, ring.submitted);
}
