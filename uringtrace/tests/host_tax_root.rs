//! Host-wide tracing taxes no other process's syscalls: io_uring_enter is not hooked
//! unless pids or a command are traced (or `--syscall-hooks on`), and the detectors
//! that used its events still give the same findings from the waits' registers.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// `diagnose --syscall-hooks off -- workload <scenario>`: the path host-wide tracing
/// takes, limited to the workload.
fn diagnose_without_hooks(scenario: &str) -> Value {
    diagnose_workload(&["--syscall-hooks", "off"], &[scenario])
}

/// (rule, severity, occurrences) of every finding, sorted.
fn summary(findings: &Value) -> Vec<(String, String, u64)> {
    let mut v: Vec<_> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["occurrences"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// (rule, severity, occurrences).
type Expected<'a> = &'a [(&'a str, &'a str, u64)];

fn want(v: Expected) -> Vec<(String, String, u64)> {
    let mut v: Vec<_> = v
        .iter()
        .map(|(r, s, n)| (r.to_string(), s.to_string(), *n))
        .collect();
    v.sort();
    v
}

/// Every detector that read io_uring_enter events gives the same findings when the
/// enter is read at the wait instead, and the look-alikes stay quiet.
#[test]
fn without_enter_hooks_findings_are_the_same() {
    let Some(_g) = require_root("without_enter_hooks_findings_are_the_same") else {
        return;
    };
    let cases: &[(&str, Expected)] = &[
        // enter(min_complete=3) with 1 request in flight and a 500 ms timeout.
        (
            "unsatisfiable-wait",
            &[("unsatisfiable-wait", "warning", 1)],
        ),
        (
            "timed-unsatisfiable-wait",
            &[("unsatisfiable-wait", "warning", 1)],
        ),
        // 13 CQEs overflowed, not flushed for 1.5 s.
        ("cq-overflow", &[("cq-overflow", "warning", 13)]),
        // Flushed at once by enters that do not sleep, and gone within 1 ms: no fdinfo
        // sample saw the list, so the info finding that the hooks give (flushed
        // promptly, 144 CQEs) is not made. Never a warning.
        ("overflow-flushed", &[]),
        (
            "sqpoll-missed-wakeup",
            &[("sqpoll-missed-wakeup", "error", 1)],
        ),
        ("sqpoll-ok", &[]),
        ("sqpoll-bursty", &[]),
        ("event-loop", &[]),
        ("idle-server", &[]),
        ("timers", &[]),
        ("registered-ring", &[]),
        ("keepalive-chain", &[]),
    ];
    for (scenario, expected) in cases {
        let v = diagnose_without_hooks(scenario);
        assert_eq!(v["lost_events"]["total"], 0, "{scenario}");
        assert_eq!(
            summary(&v["findings"]),
            want(expected),
            "{scenario}: {:#}",
            v["findings"]
        );
        let degraded: Vec<&str> = v["environment"]["degraded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d[0].as_str().unwrap())
            .collect();
        assert_eq!(
            degraded,
            [
                "unsatisfiable-wait",
                "cq-overflow",
                "enter-error",
                "io-uring-unavailable"
            ],
            "{scenario}"
        );
    }
}

/// A wait read at its start has no exit: its end is the thread's next submit or wait, or
/// (here) its process's exit. The timed wait of
/// `unsatisfiable-wait` (500 ms) is reported with its length.
#[test]
fn a_wait_read_at_its_start_still_gets_its_length() {
    let Some(_g) = require_root("a_wait_read_at_its_start_still_gets_its_length") else {
        return;
    };
    let v = diagnose_without_hooks("unsatisfiable-wait");
    let f = &v["findings"][0];
    let m = f["message"].as_str().unwrap();
    assert!(
        m.starts_with("waits for 3 completions on a ring with 1 requests in flight and 0 CQEs ready: 2 more can never arrive; the wait's timeout delayed completions by"),
        "{m}"
    );
}

/// What a recording made without hooks says about itself, and that `check` on it
/// agrees with the live run.
#[test]
fn recording_without_hooks_names_its_enter_source() {
    let Some(_g) = require_root("recording_without_hooks_names_its_enter_source") else {
        return;
    };
    let rec = record_workload(&["--syscall-hooks", "off"], &["unsatisfiable-wait"]);
    let tps: Vec<(&str, &str, &str)> = rec
        .header
        .tracepoints
        .iter()
        .map(|t| {
            (
                t.kind.as_str(),
                t.tracepoint.as_str(),
                t.attach_type.as_str(),
            )
        })
        .collect();
    // No syscall is hooked; the enter comes with the wait.
    assert!(!tps.iter().any(|t| t.1.contains("syscalls")), "{tps:?}");
    assert!(
        tps.contains(&(
            "enter",
            "io_uring:io_uring_cqring_wait",
            "registers at the wait"
        )),
        "{tps:?}"
    );
    // One wait, so exactly one enter and no exit, from the workload's thread.
    let pid = rec.pid();
    assert_eq!(
        rec.of_kind_pid(uringtrace_common::EventKind::EnterEnter, pid)
            .len(),
        1
    );
    assert_eq!(
        rec.of_kind_pid(uringtrace_common::EventKind::EnterExit, pid)
            .len(),
        0
    );
    assert_eq!(
        rec.of_kind_pid(uringtrace_common::EventKind::CqringWait, pid)
            .len(),
        1
    );
    let out = Command::new(UT)
        .args(["check", "--format", "json"])
        .arg(&rec.path)
        .output()
        .unwrap();
    let checked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary(&checked["files"][0]["findings"]),
        want(&[("unsatisfiable-wait", "warning", 1)])
    );
}

/// Host-wide (no pid, no command) is where hooks are off by default: the workload,
/// started separately, is still diagnosed.
#[test]
fn host_wide_default_has_no_syscall_hook_and_still_finds() {
    let Some(_g) = require_root("host_wide_default_has_no_syscall_hook_and_still_finds") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut tracer = Command::new(UT)
        .args(["diagnose", "-q", "--format", "json", "-d", "6s", "-o"])
        .arg(&report)
        .spawn()
        .unwrap();
    // Attached within a second or two: the scenario starts well after.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let out = Command::new(WORKLOAD)
        .arg("unsatisfiable-wait")
        .output()
        .unwrap();
    assert!(out.status.success());
    let w: Value = serde_json::from_slice(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let pid = w["pid"].as_u64().unwrap();
    assert!(tracer.wait().unwrap().success());
    let v: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let mine: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["pid"].as_u64() == Some(pid))
        .collect();
    assert_eq!(mine.len(), 1, "{:#}", v["findings"]);
    assert_eq!(mine[0]["rule"], "unsatisfiable-wait");
}
