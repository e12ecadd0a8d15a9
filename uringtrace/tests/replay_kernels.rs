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
    ("fixed-file-misuse", &["fixed-file-misuse"]),
    ("fixed-buffer-misuse", &["fixed-buffer-misuse"]),
    ("fixed-ok", &[]),
    ("short-write", &["short-write"]),
    ("short-write-ok", &[]),
    ("drain-blocked", &["drain-blocked"]),
    ("drain-ok", &[]),
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

/// Where each kernel checks a registered buffer's index (kernel-matrix recordings):
/// 6.1 at prep, so the SQE is rejected and io_uring_req_failed carries buf_index; 5.10
/// at prep too but with no such event, so only the range failure (at issue) is found
/// and the detector says it is degraded.
#[test]
fn fixed_buffer_index_is_known_on_6_1_and_missed_on_5_10() {
    let messages = |release: &str| {
        let r = analyze_file(
            &dir(release).join("fixed-buffer-misuse.utr"),
            AnalyzerConfig::default(),
        )
        .unwrap();
        let degraded = r
            .environment
            .degraded
            .iter()
            .any(|d| d.0 == "fixed-buffer-misuse");
        let m: Vec<String> = r
            .findings
            .iter()
            .filter(|f| f.rule == "fixed-buffer-misuse")
            .map(|f| f.message.clone())
            .collect();
        (m, degraded)
    };
    let (m, degraded) = messages("6.1.0-57-cloud-amd64");
    assert!(!degraded);
    assert_eq!(
        m,
        [
            "READ_FIXED (user_data 0x2) rejected at submit with -EFAULT: buf_index 3 is beyond \
             the 1 registered buffers",
            "READ_FIXED (user_data 0x3) failed with -EFAULT: buf_index beyond the 1 registered \
             buffers, or the address range outside its buffer",
        ]
    );
    let (m, degraded) = messages("5.10.0-46-cloud-amd64");
    assert!(degraded);
    assert_eq!(
        m,
        [
            "READ_FIXED (user_data 0x3) failed with -EFAULT: buf_index beyond the 1 registered \
          buffers, or the address range outside its buffer"
        ]
    );
    assert_eq!(
        results("5.10.0-46-cloud-amd64", "fixed-buffer-misuse"),
        [64, -14, -14]
    );
}

/// Recorded in a 6.1 TCG guest on a busy host, where the two vCPUs' trace clocks were
/// ~60 ms apart: the io-wq worker's READ completion (CPU 0) is stamped before the
/// owner's wait for 2 CQEs (CPU 1), though the kernel read 0 CQEs ready at that wait.
/// Counted together, 1 in flight + 0 ready looked like a wait that could never be
/// satisfied; the wait returned 0 with both CQEs. Only the wait cycle is a finding.
#[test]
fn a_wait_that_returned_success_is_not_unsatisfiable_despite_clock_skew() {
    let r = analyze_file(
        &dir("6.1.0-57-cloud-amd64").join("pipe-read-before-write-skewed-clocks.utr"),
        AnalyzerConfig::default(),
    )
    .unwrap();
    let rules: Vec<&str> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, ["wait-cycle"]);
}
