//! Every rule, end to end as root: run the workload scenario under `diagnose`, assert
//! the rule fires with the right evidence, then record the same scenario and assert
//! `check` on the file gives the same findings.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;
use serde_json::Value;

/// `uringtrace diagnose --format json -- workload <args>` in the default kernel mode
/// (aggregating). The traced command shares stdout, so the report goes to a file.
fn diagnose_live(args: &[&str]) -> Value {
    diagnose_live_in("aggregate", args)
}

fn diagnose_live_in(mode: &str, args: &[&str]) -> Value {
    diagnose_workload(&["--kernel-mode", mode], args)
}

fn check_json(path: &std::path::Path) -> (Value, i32) {
    let out = Command::new(UT)
        .args(["check", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        out.status.code().unwrap(),
    )
}

fn rules_of(findings: &Value) -> BTreeSet<String> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

fn serious(findings: &Value) -> Vec<String> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| format!("{}: {}", f["rule"], f["message"]))
        .collect()
}

fn find<'a>(findings: &'a Value, rule: &str) -> &'a Value {
    findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} finding in {findings:#}"))
}

/// Runs a scenario live and recorded; returns (live findings, checked findings, check exit).
fn both(args: &[&str]) -> (Value, Value, i32) {
    let live = diagnose_live(args);
    assert_eq!(live["lost_events"]["total"], 0);
    let rec = record_workload(&[], args);
    let (checked, code) = check_json(&rec.path);
    let file_findings = checked["files"][0]["findings"].clone();
    // Same rules live and from the file.
    assert_eq!(
        rules_of(&live["findings"]),
        rules_of(&file_findings),
        "live vs check"
    );
    // diagnose --input on the same file: exactly check's findings.
    let out = Command::new(UT)
        .args(["diagnose", "--format", "json", "--input"])
        .arg(&rec.path)
        .output()
        .unwrap();
    let replay: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        replay["findings"], file_findings,
        "diagnose --input vs check"
    );
    (live["findings"].clone(), file_findings, code)
}

fn assert_rule(args: &[&str], rule: &str) -> Value {
    let (live, file, code) = both(args);
    assert!(rules_of(&live).contains(rule), "{args:?}: {live:#}");
    assert_eq!(code, 1, "check must fail on {rule}");
    let _ = file;
    live
}

/// How many findings of each rule.
fn rule_counts(findings: &Value) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for f in findings.as_array().unwrap() {
        *m.entry(f["rule"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

/// The aggregating kernel mode (default of diagnose and top) holds fast successful
/// requests back; it must still produce every finding streaming mode produces.
/// `all` runs every scenario in one process (rings, fds and ctx addresses reused).
#[test]
fn aggregating_mode_finds_what_streaming_finds() {
    let Some(_g) = require_root("aggregating_mode_finds_what_streaming_finds") else {
        return;
    };
    let streamed = diagnose_live_in("stream", &["all"]);
    let aggregated = diagnose_live_in("aggregate", &["all"]);
    assert_eq!(streamed["lost_events"]["total"], 0);
    assert_eq!(aggregated["lost_events"]["total"], 0);
    let s = rule_counts(&streamed["findings"]);
    let a = rule_counts(&aggregated["findings"]);
    // Every rule but cqe-dropped (which needs a kernel allocation failure).
    assert_eq!(s.len(), 12, "streaming found every rule: {s:?}");
    assert_eq!(a, s, "aggregating vs streaming findings");
    // Far fewer events reach userspace, and the counted requests are not lost.
    assert!(
        aggregated["events"].as_u64().unwrap() < streamed["events"].as_u64().unwrap(),
        "aggregating mode streamed {} events, streaming {}",
        aggregated["events"],
        streamed["events"]
    );
}

/// Counts and latency of requests that were only counted in the kernel: exact.
#[test]
fn aggregating_mode_counts_every_request() {
    let Some(_g) = require_root("aggregating_mode_counts_every_request") else {
        return;
    };
    for mode in ["aggregate", "stream"] {
        let v = diagnose_live_in(mode, &["nop-storm", "--count", "100000"]);
        let nops = v["latency"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["opcode"] == "NOP")
            .unwrap_or_else(|| panic!("{mode}: no NOP latency in {v:#}"));
        assert_eq!(nops["count"], 100_000, "{mode}");
        assert!(nops["p50_ns"].as_u64().unwrap() > 0, "{mode}");
        let ring = &v["rings"][0];
        assert_eq!(ring["submitted"], 100_000, "{mode}");
        assert_eq!(ring["completed"], 100_000, "{mode}");
        assert_eq!(ring["in_flight"], 0, "{mode}");
        if mode == "aggregate" {
            // Only the io_uring_enter calls (and ring setup) are streamed.
            assert!(
                v["events"].as_u64().unwrap() < 10_000,
                "{mode}: {}",
                v["events"]
            );
        } else {
            assert!(
                v["events"].as_u64().unwrap() >= 200_000,
                "{mode}: {}",
                v["events"]
            );
        }
    }
}

#[test]
fn healthy_workloads_have_no_warnings_or_errors() {
    let Some(_g) = require_root("healthy_workloads_have_no_warnings_or_errors") else {
        return;
    };
    for args in [
        &["nop-storm", "--count", "20000"][..],
        &["chain-ok"],
        &["chain-hardlink"],
        &["sqpoll-ok"],
    ] {
        let (live, file, code) = both(args);
        assert_eq!(serious(&live), Vec::<String>::new(), "{args:?}");
        assert_eq!(serious(&file), Vec::<String>::new(), "{args:?}");
        assert_eq!(code, 0, "{args:?}");
    }
}

/// Look-alikes of what healthy real programs do (servers, timers, event loops,
/// zero-copy sends, ...): no warning and no error, live in both kernel modes and from
/// the recording; by-design events (a cancel, a reset connection, a flushed
/// overflow) are `info` with their exact count.
#[test]
fn healthy_look_alikes_have_no_warnings_or_errors() {
    let Some(_g) = require_root("healthy_look_alikes_have_no_warnings_or_errors") else {
        return;
    };
    // (scenario, the info findings it must give: rule × occurrences)
    let cases: &[(&str, &[(&str, u64)])] = &[
        ("idle-server", &[]),
        ("timers", &[]),
        ("event-loop", &[]),
        ("defer-taskrun", &[]),
        ("sqpoll-short-chains", &[]),
        ("sqpoll-bursty", &[]),
        ("send-zc", &[]),
        ("skip-success", &[]),
        ("registered-ring", &[]),
        ("keepalive-chain", &[]),
        ("file-copy-chain", &[]),
        ("futex-pair", &[]),
        ("intended-cancel", &[("link-chain-broken", 1)]),
        // The last READ of a 10,000-byte file is short (1808 bytes) at end of file;
        // its linked WRITE is cancelled: how read-until-EOF loops end.
        ("read-eof-chain", &[("link-chain-broken", 1)]),
        // RECV -ECONNRESET, then SEND -ECONNRESET and SEND -EPIPE (peer closed): two
        // causes (RECV and SEND breakers).
        (
            "chain-reset",
            &[("link-chain-broken", 1), ("link-chain-broken", 2)],
        ),
        // 3 rounds of 64 NOPs on a 16-entry CQ: 48 overflow each round, flushed at once.
        ("overflow-flushed", &[("cq-overflow", 144)]),
    ];
    for (scenario, infos) in cases {
        for mode in ["aggregate", "stream"] {
            let v = diagnose_live_in(mode, &[scenario]);
            assert_eq!(v["lost_events"]["total"], 0, "{scenario} {mode}");
            assert_eq!(
                serious(&v["findings"]),
                Vec::<String>::new(),
                "{scenario} {mode}"
            );
            let mut got: Vec<(String, u64)> = v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["rule"].as_str().unwrap().to_string(),
                        f["occurrences"].as_u64().unwrap(),
                    )
                })
                .collect();
            got.sort();
            let mut want: Vec<(String, u64)> =
                infos.iter().map(|(r, n)| (r.to_string(), *n)).collect();
            want.sort();
            assert_eq!(got, want, "{scenario} {mode}: {:#}", v["findings"]);
        }
        let (_, file, code) = both(&[scenario]);
        assert_eq!(
            serious(&file),
            Vec::<String>::new(),
            "{scenario} from the recording"
        );
        assert_eq!(code, 0, "{scenario}: check must pass");
    }
}

/// Two rings, each POLL_ADD(the other ring's fd) linked before a MSG_RING to the
/// other: nothing can progress until userspace breaks it (1.2 s later).
#[test]
fn wait_cycle_across_two_rings() {
    let Some(_g) = require_root("wait_cycle_across_two_rings") else {
        return;
    };
    let f = assert_rule(&["ring-msg-cycle"], "wait-cycle");
    let counts = rule_counts(&f);
    assert_eq!(counts.get("wait-cycle"), Some(&1), "{f:#}");
    assert_eq!(
        counts.get("request-stalled"),
        None,
        "explained by the cycle: {f:#}"
    );
    let c = find(&f, "wait-cycle");
    assert_eq!(c["occurrences"], 1);
    let roles: Vec<_> = c["evidence"]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["opcode"].as_str().unwrap().to_string(),
                r["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut roles_sorted = roles.clone();
    roles_sorted.sort();
    assert_eq!(
        roles_sorted,
        [
            ("MSG_RING".to_string(), "never issued".to_string()),
            ("MSG_RING".to_string(), "never issued".to_string()),
            ("POLL_ADD".to_string(), "waiting".to_string()),
            ("POLL_ADD".to_string(), "waiting".to_string()),
        ],
        "{c:#}"
    );
    let rings = c["evidence"]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "rings")
        .unwrap()["count"]
        .clone();
    assert_eq!(rings, 2);
}

/// FUTEX_WAIT(A) linked before the FUTEX_WAKE(A) that would wake it: a cycle, matched
/// by the futex word (FUTEX_WAIT(A) → FUTEX_WAKE(B), in the look-alikes, is none).
#[test]
fn wait_cycle_on_one_futex_word() {
    let Some(_g) = require_root("wait_cycle_on_one_futex_word") else {
        return;
    };
    let f = assert_rule(&["futex-cycle"], "wait-cycle");
    let c = find(&f, "wait-cycle");
    let m = c["message"].as_str().unwrap();
    assert!(
        m.starts_with("FUTEX_WAIT (user_data 0x1) waits on futex 0x"),
        "{m}"
    );
    assert!(
        m.contains("which only FUTEX_WAKE user_data 0x2 would wake"),
        "{m}"
    );
    assert_eq!(rule_counts(&f).get("request-stalled"), None, "{f:#}");
}

/// One CQE ready, nothing in flight, a wait for 2 with a 1.5 s timeout: it sleeps the
/// whole timeout (and returns 0): a warning that names the delay.
#[test]
fn unsatisfiable_timed_wait_with_a_cqe_ready() {
    let Some(_g) = require_root("unsatisfiable_timed_wait_with_a_cqe_ready") else {
        return;
    };
    let f = assert_rule(&["timed-unsatisfiable-wait"], "unsatisfiable-wait");
    let w = find(&f, "unsatisfiable-wait");
    assert_eq!(w["severity"], "warning");
    let m = w["message"].as_str().unwrap();
    assert!(
        m.starts_with(
            "waits for 2 completions on a ring with 0 requests in flight and 1 CQEs ready"
        ),
        "{m}"
    );
    assert!(
        m.contains("the wait's timeout delayed completions by"),
        "{m}"
    );
}

/// 300 identical broken chains on one ring: one finding, 300 occurrences.
#[test]
fn identical_broken_chains_are_one_finding() {
    let Some(_g) = require_root("identical_broken_chains_are_one_finding") else {
        return;
    };
    let (live, file, _) = both(&["many-broken-chains"]);
    for f in [&live, &file] {
        assert_eq!(rule_counts(f).get("link-chain-broken"), Some(&1), "{f:#}");
        let b = find(f, "link-chain-broken");
        assert_eq!(b["occurrences"], 300);
        assert_eq!(b["severity"], "warning");
        assert!(b["evidence"]["requests"].as_array().unwrap().len() <= 16);
    }
}

#[test]
fn link_chain_broken_by_an_error() {
    let Some(_g) = require_root("link_chain_broken_by_an_error") else {
        return;
    };
    let f = assert_rule(&["chain-broken-error"], "link-chain-broken");
    let f = find(&f, "link-chain-broken");
    assert_eq!(f["severity"], "warning");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("member 2 of 4 (READ user_data 0x2) failed with -EBADF"));
    let roles: Vec<_> = f["evidence"]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].clone())
        .collect();
    assert_eq!(roles, ["ok", "breaker", "cancelled", "cancelled"]);
    let results: Vec<_> = f["evidence"]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].clone())
        .collect();
    assert_eq!(results, ["0", "-EBADF", "-ECANCELED", "-ECANCELED"]);
}

#[test]
fn link_chain_broken_by_a_short_read() {
    let Some(_g) = require_root("link_chain_broken_by_a_short_read") else {
        return;
    };
    let f = assert_rule(&["chain-broken-short"], "link-chain-broken");
    let f = find(&f, "link-chain-broken");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("completed short (10 bytes"),
        "{}",
        f["message"]
    );
}

#[test]
fn invalid_sqe() {
    let Some(_g) = require_root("invalid_sqe") else {
        return;
    };
    let f = assert_rule(&["invalid-sqe"], "invalid-sqe");
    let f = find(&f, "invalid-sqe");
    assert_eq!(f["severity"], "error");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("OP_250 (user_data 0x1) rejected at submit with -EINVAL"));
}

#[test]
fn cq_overflow() {
    let Some(_g) = require_root("cq_overflow") else {
        return;
    };
    let f = assert_rule(&["cq-overflow"], "cq-overflow");
    let f = find(&f, "cq-overflow");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .starts_with("13 CQEs did not fit in the CQ ring (4 entries)"));
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["occurrences"], 13);
}

#[test]
fn sqpoll_missed_wakeup() {
    let Some(_g) = require_root("sqpoll_missed_wakeup") else {
        return;
    };
    let f = assert_rule(&["sqpoll-missed-wakeup"], "sqpoll-missed-wakeup");
    let f = find(&f, "sqpoll-missed-wakeup");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("4 SQEs have waited"),
        "{}",
        f["message"]
    );
}

#[test]
fn sqpoll_chain_split() {
    let Some(_g) = require_root("sqpoll_chain_split") else {
        return;
    };
    let f = assert_rule(&["sqpoll-shared-split"], "sqpoll-chain-split");
    let s = find(&f, "sqpoll-chain-split");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("cut after 8 members"),
        "{}",
        s["message"]
    );
    find(&f, "link-chain-broken");
}

#[test]
fn multishot_terminated_and_buffer_exhausted() {
    let Some(_g) = require_root("multishot_terminated_and_buffer_exhausted") else {
        return;
    };
    let f = assert_rule(&["multishot-recv"], "buffer-exhausted");
    let m = find(&f, "multishot-terminated");
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .contains("ended after 3 CQEs"),
        "{}",
        m["message"]
    );
    assert!(m["message"].as_str().unwrap().contains("-ENOBUFS"));
}

#[test]
fn iowq_punt_storm() {
    let Some(_g) = require_root("iowq_punt_storm") else {
        return;
    };
    let f = assert_rule(&["iowq-splice"], "iowq-punt-storm");
    let f = find(&f, "iowq-punt-storm");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("64 io-wq workers created and 64 requests punted"),
        "{}",
        f["message"]
    );
    assert!(f["message"].as_str().unwrap().contains("SPLICE"));
}

#[test]
fn wait_cycle_read_before_write() {
    let Some(_g) = require_root("wait_cycle_read_before_write") else {
        return;
    };
    let f = assert_rule(&["pipe-read-before-write"], "wait-cycle");
    let f = find(&f, "wait-cycle");
    let m = f["message"].as_str().unwrap();
    assert!(m.starts_with("READ (user_data 0x1"), "{m}");
    assert!(m.contains("WRITE user_data 0x2"), "{m}");
    let roles: Vec<_> = f["evidence"]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].clone())
        .collect();
    assert_eq!(roles, ["waiting", "never issued"]);
}

#[test]
fn unsatisfiable_wait() {
    let Some(_g) = require_root("unsatisfiable_wait") else {
        return;
    };
    let f = assert_rule(&["unsatisfiable-wait"], "unsatisfiable-wait");
    let f = find(&f, "unsatisfiable-wait");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("waits for 3 completions on a ring with 1 requests in flight"),
        "{}",
        f["message"]
    );
}

#[test]
fn sqpoll_idle_spin() {
    let Some(_g) = require_root("sqpoll_idle_spin") else {
        return;
    };
    assert_rule(&["sqpoll-idle-spin"], "sqpoll-idle-spin");
}

#[test]
fn request_stalled() {
    let Some(_g) = require_root("request_stalled") else {
        return;
    };
    let f = assert_rule(&["stalled-request"], "request-stalled");
    let f = find(&f, "request-stalled");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("SPLICE (user_data 0x1)"),
        "{}",
        f["message"]
    );
}
