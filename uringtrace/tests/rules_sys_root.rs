//! enter-error, io-uring-unavailable and overflow-not-flushed end to end as root: the
//! scenario under `diagnose` (aggregating mode, the default) and recorded, then the
//! recording replayed: the same findings, with exact counts and messages.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;
use uringtrace_common::view::SetupFailed;
use uringtrace_common::{EventKind, EventView};

/// (rule, severity, occurrences, message) of each finding that is not info.
fn serious(findings: &Value) -> Vec<(String, String, u64, String)> {
    let mut v: Vec<_> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["occurrences"].as_u64().unwrap(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn replay(rec: &Recorded) -> Value {
    let out = Command::new(UT)
        .args(["diagnose", "--format", "json", "--input"])
        .arg(&rec.path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Live (aggregating mode) and recorded (another run of the scenario: its own pids and
/// times), then replayed: the same rules, severities and counts. Returns the replay's.
fn live_and_replayed(args: &[&str]) -> (Vec<(String, String, u64, String)>, Recorded) {
    let live = diagnose_workload(&[], args);
    assert_eq!(live["lost_events"]["total"], 0);
    let rec = record_workload(&[], args);
    assert_eq!(rec.report()["as_expected"], true, "{:#}", rec.report());
    let replayed = serious(&replay(&rec)["findings"]);
    let counts = |v: &[(String, String, u64, String)]| -> Vec<(String, String, u64)> {
        v.iter()
            .map(|(r, s, n, _)| (r.clone(), s.clone(), *n))
            .collect()
    };
    assert_eq!(
        counts(&serious(&live["findings"])),
        counts(&replayed),
        "live vs replay"
    );
    (replayed, rec)
}

#[test]
fn enter_errors_live_and_replayed() {
    let Some(_g) = require_root("enter_errors_live_and_replayed") else {
        return;
    };
    let (found, rec) = live_and_replayed(&["enter-error"]);
    let exits: Vec<i32> = rec
        .of_kind_pid(EventKind::EnterExit, rec.pid())
        .iter()
        .map(|e| e.res)
        .filter(|r| *r < 0)
        .collect();
    assert_eq!(exits, [-17, -17, -17, -22, -22]);
    let fds: Vec<i64> = rec.report()["ring_fd"].as_i64().into_iter().collect();
    let other = rec
        .of_kind_pid(EventKind::EnterExit, rec.pid())
        .iter()
        .find(|e| e.res == -17)
        .map(|e| e.pid)
        .unwrap();
    assert_eq!(
        found,
        [
            (
                "enter-error".to_string(),
                "error".to_string(),
                2,
                format!(
                    "io_uring_enter on ring fd {} failed with -EINVAL: flags 0x80000000 include bits no kernel up to 6.18 knows (0x80000000)",
                    fds[0]
                )
            ),
            (
                "enter-error".to_string(),
                "error".to_string(),
                3,
                format!(
                    "io_uring_enter on ring fd 3 failed with -EEXIST: thread {other} is not the submitter task of a DEFER_TASKRUN ring"
                )
            ),
        ]
    );
}

#[test]
fn io_uring_refused_by_seccomp_live_and_replayed() {
    let Some(_g) = require_root("io_uring_refused_by_seccomp_live_and_replayed") else {
        return;
    };
    for (flag, errno) in [(None, "-ENOSYS"), (Some("--eperm"), "-EPERM")] {
        let mut args = vec!["io-uring-unavailable"];
        args.extend(flag);
        let (found, rec) = live_and_replayed(&args);
        let child = rec.pid();
        let failed = rec.of_kind_pid(EventKind::SetupFailed, child);
        assert_eq!(failed.len(), 1, "{errno}");
        let facts = SetupFailed::read(failed[0]);
        assert_eq!(
            (
                facts.seccomp,
                facts.entries,
                facts.has(SetupFailed::ANNOTATED)
            ),
            (Some(2), 4, true),
            "{errno}"
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let (rule, severity, n, msg) = &found[0];
        assert_eq!(
            (rule.as_str(), severity.as_str(), *n),
            ("io-uring-unavailable", "warning", 1)
        );
        assert_eq!(
            msg,
            &format!(
                "io_uring_setup failed with {errno} for uringtrace-work (pid {child}): a seccomp filter (Seccomp: 2 in its /proc status; Docker's default profile, a systemd SystemCallFilter=) blocks io_uring_setup; allow io_uring_setup, io_uring_enter and io_uring_register in the profile; it has run without io_uring since (its fallback path, if it has one)"
            )
        );
    }
}

#[test]
fn overflow_not_flushed_live_and_replayed() {
    let Some(_g) = require_root("overflow_not_flushed_live_and_replayed") else {
        return;
    };
    let (found, rec) = live_and_replayed(&["overflow-not-flushed"]);
    assert_eq!(rec.of_kind_pid(EventKind::CqeOverflow, rec.pid()).len(), 8);
    // Only this rule: cq-overflow keeps quiet about the same CQEs.
    assert_eq!(found.len(), 1, "{found:?}");
    let (rule, severity, n, msg) = &found[0];
    assert_eq!(
        (rule.as_str(), severity.as_str(), *n),
        ("overflow-not-flushed", "warning", 8)
    );
    assert!(
        msg.starts_with("8 CQEs waited ")
            && msg.ends_with(" ms in the overflow list while the CQ ring had room for them (an SQPOLL ring), until the owner finally entered with IORING_ENTER_GETEVENTS"),
        "{msg}"
    );
}

/// The CQ left full and flushed late (cq-overflow), and overflow flushed at once
/// (libuv's design): never overflow-not-flushed.
#[test]
fn full_or_promptly_flushed_overflow_is_not_overflow_not_flushed() {
    let Some(_g) = require_root("full_or_promptly_flushed_overflow_is_not_overflow_not_flushed")
    else {
        return;
    };
    for (args, want) in [("cq-overflow", "cq-overflow"), ("overflow-flushed", "")] {
        let v = diagnose_workload(&[], &[args]);
        let rules: Vec<&str> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] != "info")
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = [want].into_iter().filter(|w| !w.is_empty()).collect();
        assert_eq!(rules, want, "{args}");
    }
}
