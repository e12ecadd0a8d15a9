//! Rings and processes that are gone leave the kernel's maps: a traced command's
//! children use io_uring and exit while the trace goes on; a few seconds later their
//! aggregation slots, ring filter entries, process filter entries and io threads are
//! gone (read from the hidden `--debug-stats` lines), and what they did was still
//! counted exactly. Needs root.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

#[test]
fn gone_rings_and_processes_leave_the_kernel_maps() {
    let Some(_root) = require_root("gone_rings_and_processes_leave_the_kernel_maps") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let stats = dir.path().join("stats.jsonl");
    // Three children with rings (one with an SQPOLL thread), then a pause well past
    // the 1 s after which gone rings are forgotten and two 2 s sweeps.
    let script = format!(
        "{WORKLOAD} nop-storm --count 64 --batch 8 --entries 8 >/dev/null 2>&1; \
         {WORKLOAD} nop-storm --count 32 --batch 8 --entries 8 >/dev/null 2>&1; \
         {WORKLOAD} sqpoll-ok --count 10 >/dev/null 2>&1; sleep 7"
    );
    let out = Command::new(UT)
        .args(["diagnose", "-q", "--format", "json", "--debug-stats"])
        .arg(&stats)
        .arg("-o")
        .arg(&report)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "diagnose failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let mut counts: Vec<(u64, u64, u64)> = report["rings"]
        .as_array()
        .expect("rings")
        .iter()
        .map(|r| {
            (
                r["pid"].as_u64().unwrap(),
                r["submitted"].as_u64().unwrap(),
                r["completed"].as_u64().unwrap(),
            )
        })
        .collect();
    counts.sort_unstable();
    let per_ring: Vec<(u64, u64)> = counts.iter().map(|&(_, s, c)| (s, c)).collect();
    // In the order the children ran (pids grow); sqpoll-ok: 10 NOPs.
    assert_eq!(per_ring, vec![(64, 64), (32, 32), (10, 10)], "{counts:?}");

    let text = std::fs::read_to_string(&stats).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().expect("a stats line")).unwrap();
    let k = &last["kernel"];
    assert_eq!(
        k["rings"],
        serde_json::json!([]),
        "slots still held: {last}"
    );
    assert_eq!(k["ctxs"], 0, "ring filter: {last}");
    // The shell and its `sleep` remain in the process filter; the children are gone.
    assert_eq!(k["tgids"], 2, "process filter: {last}");
    assert_eq!(k["iothreads"], 0, "io threads: {last}");
    assert_eq!(k["overflowed"], 0, "{last}");
    assert_eq!(
        k["dead"],
        serde_json::json!({"rings": 0, "ctxs": 0, "tgids": 0, "iothreads": 0, "overflowed": 0}),
        "{last}"
    );
    assert_eq!(last["session"]["ring_watch"], 0, "{last}");
}
