//! Committed recordings (made with the workload generator on Linux 6.18, see
//! tests/fixtures/recordings/README.md) replayed without root: the analyzer's logic is
//! tested on every machine, against real kernel event sequences.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use uringtrace::analyzer::finding::Severity;
use uringtrace::analyzer::AnalyzerConfig;
use uringtrace::pipeline::analyze_file;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recordings")
        .join(format!("{name}.utr"))
}

/// (fixture, rules that must fire; nothing else may be a warning or error)
const EXPECTED: &[(&str, &[&str])] = &[
    ("nop-storm", &[]),
    ("chain-ok", &[]),
    ("chain-hardlink", &[]),
    ("sqpoll-ok", &[]),
    ("chain-broken-error", &["link-chain-broken"]),
    ("chain-broken-short", &["link-chain-broken"]),
    ("invalid-sqe", &["invalid-sqe"]),
    ("cq-overflow", &["cq-overflow"]),
    ("sqpoll-missed-wakeup", &["sqpoll-missed-wakeup"]),
    (
        "sqpoll-shared-split",
        &["sqpoll-chain-split", "link-chain-broken"],
    ),
    (
        "multishot-recv",
        &["multishot-terminated", "buffer-exhausted"],
    ),
    ("iowq-splice", &["iowq-punt-storm"]),
    ("pipe-read-before-write", &["wait-cycle"]),
    ("unsatisfiable-wait", &["unsatisfiable-wait"]),
    ("sqpoll-idle-spin", &["sqpoll-idle-spin"]),
    ("stalled-request", &["request-stalled"]),
    ("fixed-file-misuse", &["fixed-file-misuse"]),
    ("fixed-buffer-misuse", &["fixed-buffer-misuse"]),
    ("fixed-ok", &[]),
    ("short-write", &["short-write"]),
    ("short-write-ok", &[]),
    ("drain-blocked", &["drain-blocked"]),
    ("drain-ok", &[]),
];

/// Rules whose scenarios are not part of `all` (their fixtures are in EXPECTED).
const NOT_IN_ALL: &[&str] = &[
    "fixed-file-misuse",
    "fixed-buffer-misuse",
    "short-write",
    "drain-blocked",
    "enter-error",
    "io-uring-unavailable",
    "overflow-not-flushed",
];

#[test]
fn every_fixture_gives_exactly_its_findings() {
    for (name, want) in EXPECTED {
        let report = analyze_file(&fixture(name), AnalyzerConfig::default())
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let got: BTreeSet<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
        for rule in *want {
            assert!(got.contains(rule), "{name}: {rule} missing; got {got:?}");
        }
        let unexpected: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning && !want.contains(&f.rule.as_str()))
            .map(|f| format!("{}: {}", f.rule, f.message))
            .collect();
        assert!(unexpected.is_empty(), "{name}: unexpected {unexpected:#?}");
        assert!(
            !report.lost_events.inconclusive(),
            "{name}: fixture recorded with losses"
        );
        assert!(report.findings.iter().all(|f| !f.inconclusive));
    }
}

#[test]
fn chain_evidence_names_breaker_and_cancelled() {
    let r = analyze_file(&fixture("chain-broken-error"), AnalyzerConfig::default()).unwrap();
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "link-chain-broken")
        .unwrap();
    let got: Vec<(u64, String, Option<i32>, &str)> = f
        .evidence
        .requests
        .iter()
        .map(|q| (q.user_data, q.opcode_name(), q.result, q.role.as_str()))
        .collect();
    let want = [
        (1, "NOP", Some(0), "ok"),
        (2, "READ", Some(-libc::EBADF), "breaker"),
        (3, "NOP", Some(-libc::ECANCELED), "cancelled"),
        (4, "NOP", Some(-libc::ECANCELED), "cancelled"),
    ]
    .map(|(u, o, r, role)| (u, o.to_string(), r, role));
    assert_eq!(got, want);
    // In JSON they are names.
    let v = serde_json::to_value(&f.evidence.requests[1]).unwrap();
    assert_eq!(
        (v["opcode"].as_str(), v["result"].as_str()),
        (Some("READ"), Some("-EBADF"))
    );
    assert_eq!(f.comm, "uringtrace-work");
}

#[test]
fn check_exit_codes_on_fixtures() {
    let ut = env!("CARGO_BIN_EXE_uringtrace");
    let code = |args: &[&str]| {
        Command::new(ut)
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
            .unwrap()
    };
    let clean = fixture("chain-ok");
    let broken = fixture("chain-broken-error");
    assert_eq!(code(&["check", clean.to_str().unwrap()]), 0);
    assert_eq!(code(&["check", broken.to_str().unwrap()]), 1);
    assert_eq!(
        code(&["check", clean.to_str().unwrap(), broken.to_str().unwrap()]),
        1
    );
    assert_eq!(code(&["check", "/nonexistent.utr"]), 2);

    // A killed recording (no end record) cannot prove anything: inconclusive.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.utr");
    let bytes = std::fs::read(&clean).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
    assert_eq!(code(&["check", cut.to_str().unwrap()]), 2);

    // Config: disabling the rule makes the broken chain pass.
    let cfg = dir.path().join("uringtrace.toml");
    std::fs::write(&cfg, "[rules]\ndisable = [\"link-chain-broken\"]\n").unwrap();
    assert_eq!(
        code(&[
            "check",
            "--config",
            cfg.to_str().unwrap(),
            broken.to_str().unwrap()
        ]),
        0
    );
    std::fs::write(&cfg, "[rules]\ndisable = [\"no-such-rule\"]\n").unwrap();
    assert_eq!(
        code(&[
            "check",
            "--config",
            cfg.to_str().unwrap(),
            broken.to_str().unwrap()
        ]),
        2
    );
}

#[test]
fn junit_lists_every_rule() {
    let ut = env!("CARGO_BIN_EXE_uringtrace");
    let out = Command::new(ut)
        .args(["check", "--format", "junit"])
        .arg(fixture("chain-broken-error"))
        .output()
        .unwrap();
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    for r in uringtrace::analyzer::rules::all() {
        assert!(
            xml.contains(&format!("name=\"{}\"", r.slug)),
            "{} missing",
            r.slug
        );
    }
    assert!(xml.contains("<failure"));
}

/// Every scenario in one process, one after another: rings, fds and ctx addresses are
/// reused, and conditions that come and go (an SQ ring nobody wakes, then closed) must
/// still be reported. Every rule but cqe-dropped (needs a kernel allocation failure)
/// and those whose scenarios are not part of `all` (tested with their own recordings).
#[test]
fn all_scenarios_in_one_process_give_every_rule() {
    let report = analyze_file(&fixture("all"), AnalyzerConfig::default()).unwrap();
    let got: BTreeSet<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
    // Scenarios outside `all`: tests/rules_thread_root.rs.
    let elsewhere = ["sqpoll-proliferation", "task-work-stalled"];
    for r in uringtrace::analyzer::rules::all() {
        if r.slug == "cqe-dropped"
            || r.slug.starts_with("budget-")
            || NOT_IN_ALL.contains(&r.slug)
            || elsewhere.contains(&r.slug)
        {
            continue;
        }
        assert!(got.contains(r.slug), "{} missing from {got:?}", r.slug);
    }
}
