//! `sqpoll-proliferation` and `task-work-stalled` end to end as root: each pathology
//! scenario under `diagnose` (aggregating mode, as users run it) and recorded, then
//! replayed (`diagnose --input`); the healthy look-alikes stay quiet both ways.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;
use uringtrace_common::view::{EventView, TaskRename, TaskState};
use uringtrace_common::EventKind;

/// `uringtrace diagnose --format json --input FILE`.
fn replay(path: &std::path::Path) -> Value {
    let out = Command::new(UT)
        .args(["diagnose", "--format", "json", "--input"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const NONE: Vec<(String, String)> = Vec::new();

/// (rule, message) of every warning or error.
fn serious(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The scenario live and recorded: (live report, recording, replayed report).
fn live_and_replayed(scenario: &str) -> (Value, Recorded, Value) {
    let live = diagnose_workload(&[], &[scenario]);
    assert_eq!(live["lost_events"]["total"], 0, "{scenario}");
    let rec = record_workload(&[], &[scenario]);
    assert_eq!(
        rec.report()["as_expected"],
        true,
        "{scenario}: {}",
        rec.report()
    );
    let replayed = replay(&rec.path);
    (live, rec, replayed)
}

#[test]
fn twelve_sqpoll_threads_in_one_process_proliferate() {
    let Some(_g) = require_root("twelve_sqpoll_threads_in_one_process_proliferate") else {
        return;
    };
    let (live, rec, replayed) = live_and_replayed("sqpoll-many-threads");
    // Twelve threads named iou-sqp-<pid> start in the workload's process.
    let pid = rec.pid();
    let sqp = format!("iou-sqp-{pid}");
    let started = rec
        .of_kind_pid(EventKind::TaskRename, pid)
        .into_iter()
        .filter(|e| uringtrace::display::comm_str(&TaskRename::read(e).newcomm) == sqp)
        .count();
    assert_eq!(started, 12);
    for (how, report) in [("live", &live), ("replay", &replayed)] {
        let found = serious(report);
        assert_eq!(found.len(), 1, "{how}: {found:?}");
        assert_eq!(found[0].0, "sqpoll-proliferation", "{how}");
        assert!(
            found[0].1.starts_with(
                "12 SQPOLL threads alive at once in one process (12 SQPOLL rings created, 0 of \
                 them sharing a thread through IORING_SETUP_ATTACH_WQ; at most 2 needed); they ran "
            ),
            "{how}: {}",
            found[0].1
        );
        let f = &report["findings"][0];
        let cpu = f["evidence"]["facts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "sqpoll_cpu_time")
            .unwrap();
        assert!(cpu["ns"].as_u64().unwrap() > 0, "{how}: the threads ran");
    }
}

/// Rings sharing one SQ thread, and two threads (one per NUMA node): the design.
#[test]
fn shared_or_few_sqpoll_threads_are_quiet() {
    let Some(_g) = require_root("shared_or_few_sqpoll_threads_are_quiet") else {
        return;
    };
    for (scenario, threads) in [("sqpoll-attached", 1), ("sqpoll-two-threads", 2)] {
        let (live, rec, replayed) = live_and_replayed(scenario);
        let renames = rec
            .of_kind_pid(EventKind::TaskRename, rec.pid())
            .into_iter()
            .filter(|e| {
                uringtrace::display::comm_str(&TaskRename::read(e).newcomm).starts_with("iou-sqp-")
            })
            .count();
        assert_eq!(renames, threads, "{scenario}");
        assert_eq!(serious(&live), NONE, "{scenario} live");
        assert_eq!(serious(&replayed), NONE, "{scenario} replayed");
    }
}

#[test]
fn an_owner_blocked_in_read_stalls_its_task_work() {
    let Some(_g) = require_root("an_owner_blocked_in_read_stalls_its_task_work") else {
        return;
    };
    let (live, rec, replayed) = live_and_replayed("task-work-stalled");
    let pid = rec.pid();
    // One poll wakeup queued the READ to the owner; the owner ran it in one batch.
    assert_eq!(rec.of_kind(EventKind::TaskAdd).len(), 1);
    assert_eq!(rec.of_kind_pid(EventKind::LocalWorkRun, pid).len(), 1);
    // Userspace read the blocked owner's state once, and stored it.
    let states = rec.of_kind(EventKind::TaskState);
    assert_eq!(states.len(), 1);
    let s = TaskState::read(states[0]);
    assert_eq!((s.tid, s.state), (pid, b'S'));
    for (how, report) in [("live", &live), ("replay", &replayed)] {
        let found = serious(report);
        assert_eq!(found.len(), 1, "{how}: {found:?}");
        let (rule, msg) = &found[0];
        assert_eq!(rule, "task-work-stalled", "{how}");
        assert!(
            msg.starts_with(&format!(
                "1 completion queued to thread {} (uringtrace-work), owner of a DEFER_TASKRUN \
                 ring, waited ",
                report["findings"][0]["pid"]
            )),
            "{how}: {msg}"
        );
        assert!(
            msg.contains("/proc showed it asleep (S) in read(2), wchan "),
            "{how}: {msg}"
        );
    }
}

/// An owner that computes 150 ms, or waits in io_uring_enter: the work runs in time.
#[test]
fn owners_that_come_back_in_time_are_quiet() {
    let Some(_g) = require_root("owners_that_come_back_in_time_are_quiet") else {
        return;
    };
    for scenario in ["task-work-busy-owner", "task-work-waiting-owner"] {
        let (live, rec, replayed) = live_and_replayed(scenario);
        assert_eq!(rec.of_kind(EventKind::TaskAdd).len(), 1, "{scenario}");
        assert_eq!(rec.of_kind(EventKind::TaskState).len(), 0, "{scenario}");
        assert_eq!(serious(&live), NONE, "{scenario} live");
        assert_eq!(serious(&replayed), NONE, "{scenario} replayed");
    }
}

/// The committed recordings of the four scenarios (made on Linux 6.18.44, 2 vCPUs, see
/// tests/fixtures/recordings/README.md) replay to exactly their findings, without root.
#[test]
fn committed_recordings_replay_to_their_findings() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings");
    let many = replay(&dir.join("sqpoll-many-threads.utr"));
    assert_eq!(
        serious(&many),
        [(
            "sqpoll-proliferation".to_string(),
            "12 SQPOLL threads alive at once in one process (12 SQPOLL rings created, 0 of them \
             sharing a thread through IORING_SETUP_ATTACH_WQ; at most 2 needed); they ran \
             256.0 ms of CPU in 402.8 ms (64% of a CPU)"
                .to_string()
        )]
    );
    let stalled = replay(&dir.join("task-work-stalled.utr"));
    let found = serious(&stalled);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "task-work-stalled");
    // The syscall is named by its number on the machine that reads the recording.
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        found[0].1,
        "1 completion queued to thread 1657 (uringtrace-work), owner of a DEFER_TASKRUN ring, \
         waited 750.1 ms before the owner ran it: the owner stayed outside io_uring_enter for \
         750.1 ms (blocked or busy elsewhere); /proc showed it asleep (S) in read(2), wchan \
         anon_pipe_read, 263.0 ms into the wait"
    );
    for healthy in ["sqpoll-attached", "task-work-waiting-owner"] {
        let r = replay(&dir.join(format!("{healthy}.utr")));
        assert_eq!(serious(&r), NONE, "{healthy}");
    }
}
