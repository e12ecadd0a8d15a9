//! The request-misuse rules end to end as root: fixed-file-misuse, fixed-buffer-misuse,
//! short-write and drain-blocked on their workload scenarios, live (aggregating and
//! streaming kernel modes) and replayed from a recording (`check` and
//! `diagnose --input`); and their healthy look-alikes, which must stay quiet.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;
use serde_json::Value;
use uringtrace_common::EventKind;

const OURS: [&str; 4] = [
    "fixed-file-misuse",
    "fixed-buffer-misuse",
    "short-write",
    "drain-blocked",
];

/// (rule, message) of every finding.
fn findings(v: &Value) -> Vec<(String, String, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
                f["occurrences"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Findings live in both kernel modes and replayed from a recording, which must
/// agree; returns them with the recording.
fn live_and_replayed(scenario: &str) -> (Vec<(String, String, u64)>, Recorded) {
    let agg = diagnose_workload(&["--kernel-mode", "aggregate"], &[scenario]);
    let stream = diagnose_workload(&["--kernel-mode", "stream"], &[scenario]);
    assert_eq!(agg["lost_events"]["total"], 0);
    assert_eq!(stream["lost_events"]["total"], 0);
    let rec = record_workload(&[], &[scenario]);
    assert_eq!(rec.report()["as_expected"], true, "{}", rec.report());
    let out = Command::new(UT)
        .args(["check", "--format", "json"])
        .arg(&rec.path)
        .output()
        .unwrap();
    let checked: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = Command::new(UT)
        .args(["diagnose", "--format", "json", "--input"])
        .arg(&rec.path)
        .output()
        .unwrap();
    let replay: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(replay["findings"], checked["files"][0]["findings"]);
    // Messages hold pids and inodes that differ between runs: compare rules and counts.
    let shape = |v: &Value| -> BTreeMap<String, Vec<u64>> {
        let mut m: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (rule, _, n) in findings(v) {
            m.entry(rule).or_default().push(n);
        }
        m.values_mut().for_each(|v| v.sort_unstable());
        m
    };
    let live = shape(&agg["findings"]);
    assert_eq!(live, shape(&stream["findings"]), "aggregate vs stream");
    assert_eq!(live, shape(&replay["findings"]), "live vs replay");
    (findings(&replay["findings"]), rec)
}

fn only<'a>(f: &'a [(String, String, u64)], rule: &str) -> Vec<&'a (String, String, u64)> {
    f.iter().filter(|x| x.0 == rule).collect()
}

/// Nothing of ours, and no warning of any rule, on a healthy look-alike.
fn quiet(scenario: &str) {
    let (f, _) = live_and_replayed(scenario);
    let ours: Vec<_> = f.iter().filter(|x| OURS.contains(&x.0.as_str())).collect();
    assert!(ours.is_empty(), "{scenario}: {ours:?}");
    assert!(f.is_empty(), "{scenario}: {f:?}");
}

#[test]
fn fixed_file_misuse_names_slot_and_cause() {
    let Some(_g) = require_root("fixed_file_misuse_names_slot_and_cause") else {
        return;
    };
    let (f, rec) = live_and_replayed("fixed-file-misuse");
    let ours = only(&f, "fixed-file-misuse");
    assert_eq!(ours.len(), 2, "{f:?}");
    assert_eq!(ours.iter().map(|x| x.2).sum::<u64>(), 3);
    let msgs: Vec<&str> = ours.iter().map(|x| x.1.as_str()).collect();
    assert!(
        msgs.contains(
            // Slot 0, not "?": the tp_btf submit event says its fd was read
            // (SUBMIT_FD_KNOWN); a classic submit event (before 6.4) has no fd.
            &"READ (user_data 0x2) on fixed slot 0 failed with -EBADF: slot 0 of the \
              4-entry file table is empty (or its file is not open for READ)"
        ),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(
            &"READ (user_data 0x3) on fixed slot 9 failed with -EBADF: slot 9 is beyond \
              the 4-entry file table"
        ),
        "{msgs:?}"
    );
    assert_eq!(f.len(), 2, "nothing else: {f:?}");
    // Three failed completions, and the register call that sized the table.
    let pid = rec.pid();
    let failed = rec
        .of_kind_pid(EventKind::Complete, pid)
        .into_iter()
        .filter(|e| e.res == -libc::EBADF)
        .count();
    assert_eq!(failed, 3);
    assert_eq!(rec.of_kind_pid(EventKind::Register, pid).len(), 1);
    // Every submit says its fd was read, so slot 0 (user_data 2) is not "unknown".
    let submits = rec.of_kind_pid(EventKind::Submit, pid);
    assert_eq!(submits.len(), 4);
    let fd_known = uringtrace_common::view::SUBMIT_FD_KNOWN;
    assert!(
        submits.iter().all(|e| e.args[1] & fd_known != 0),
        "{submits:?}"
    );
    let slot_of = |ud: u64| {
        submits
            .iter()
            .find(|e| e.user_data == ud)
            .map(|e| e.args[2])
    };
    assert_eq!(
        [1, 2, 3, 4].map(slot_of),
        [Some(1), Some(0), Some(9), Some(3)]
    );
}

#[test]
fn fixed_buffer_misuse_counts_both_failures() {
    let Some(_g) = require_root("fixed_buffer_misuse_counts_both_failures") else {
        return;
    };
    let (f, _) = live_and_replayed("fixed-buffer-misuse");
    assert_eq!(f.len(), 1, "{f:?}");
    let (rule, msg, n) = &f[0];
    assert_eq!(rule, "fixed-buffer-misuse");
    assert_eq!(*n, 2);
    // 6.18 checks buf_index at issue: the CQE has no index, the table size is known.
    assert_eq!(
        msg,
        "READ_FIXED (user_data 0x2) failed with -EFAULT: buf_index beyond the 1 registered \
         buffers, or the address range outside its buffer"
    );
}

#[test]
fn short_write_names_the_write() {
    let Some(_g) = require_root("short_write_names_the_write") else {
        return;
    };
    let (f, rec) = live_and_replayed("short-write");
    assert_eq!(f.len(), 1, "{f:?}");
    let (rule, msg, n) = &f[0];
    assert_eq!(rule, "short-write");
    assert_eq!(*n, 1);
    // The file's name is there when /proc was read before the short-lived workload
    // closed it (`to fd 3 (/tmp/...-short-write (deleted))`); under load it may not be.
    assert!(msg.starts_with("WRITE (user_data 0x3) "), "{msg}");
    assert!(
        msg.ends_with(
            " wrote 100 of 4096 bytes at offset 8192 (short: no space, quota or file size \
             limit)"
        ),
        "{msg}"
    );
    assert_eq!(rec.of_kind_pid(EventKind::ShortWrite, rec.pid()).len(), 1);
}

#[test]
fn drain_blocked_names_the_blocker() {
    let Some(_g) = require_root("drain_blocked_names_the_blocker") else {
        return;
    };
    let (f, rec) = live_and_replayed("drain-blocked");
    assert_eq!(f.len(), 1, "{f:?}");
    let (rule, msg, n) = &f[0];
    assert_eq!(rule, "drain-blocked");
    assert_eq!(*n, 1);
    assert!(
        msg.starts_with("NOP (user_data 0x2) with IOSQE_IO_DRAIN waited "),
        "{msg}"
    );
    // `on fd 3 (pipe:[...])` follows when /proc was read in time (see short-write).
    assert!(
        msg.contains(" behind 1 earlier request: READ (user_data 0x1)"),
        "{msg}"
    );
    assert_eq!(rec.of_kind_pid(EventKind::Defer, rec.pid()).len(), 1);
}

#[test]
fn fixed_files_and_buffers_used_right_are_quiet() {
    let Some(_g) = require_root("fixed_files_and_buffers_used_right_are_quiet") else {
        return;
    };
    quiet("fixed-ok");
}

#[test]
fn full_writes_and_short_pipe_writes_are_quiet() {
    let Some(_g) = require_root("full_writes_and_short_pipe_writes_are_quiet") else {
        return;
    };
    quiet("short-write-ok");
}

#[test]
fn brief_and_idle_drains_are_quiet() {
    let Some(_g) = require_root("brief_and_idle_drains_are_quiet") else {
        return;
    };
    quiet("drain-ok");
}
