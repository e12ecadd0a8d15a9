//! Headless `top` live, as root: the documents of known workloads, with stdout a pipe
//! and no terminal.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{require_root, UT, WORKLOAD};
use serde_json::Value;

fn top(args: &[&str], workload: &[&str]) -> Vec<Value> {
    let mut cmd = Command::new(UT);
    cmd.arg("top").args(args);
    if !workload.is_empty() {
        cmd.arg("--").arg(WORKLOAD).args(workload);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "top {args:?} -- {workload:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn once_with_a_command_is_its_final_state() {
    let Some(_g) = require_root("once_with_a_command_is_its_final_state") else {
        return;
    };
    let docs = top(
        &["--once", "--format", "json"],
        &["nop-storm", "--count", "1000"],
    );
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d["format_version"], 1);
    assert_eq!(d["lost_events"]["known"], true);
    assert_eq!(d["lost_events"]["total"], 0);
    let rings = d["rings"].as_array().unwrap();
    assert_eq!(rings.len(), 1, "{d:#}");
    let r = &rings[0];
    assert_eq!(r["comm"], "uringtrace-work");
    assert_eq!(r["submitted"], 1000);
    assert_eq!(r["completed"], 1000);
    assert_eq!(r["in_flight"], 0);
    assert_eq!(r["overflows"], 0);
    assert!(r["p50_ns"].as_u64().unwrap() > 0);
    assert_eq!(r["worst_severity"], Value::Null, "{d:#}");
    assert_eq!(d["findings"], serde_json::json!([]));
}

#[test]
fn intervals_show_the_overflow_as_it_happens() {
    let Some(_g) = require_root("intervals_show_the_overflow_as_it_happens") else {
        return;
    };
    // The scenario overflows at once, then holds the CQEs ~1.5 s before exiting.
    let docs = top(
        &["--interval", "250ms", "--format", "json"],
        &["cq-overflow"],
    );
    assert!(docs.len() >= 3, "{} documents", docs.len());
    let times: Vec<u64> = docs
        .iter()
        .map(|d| d["time_ns"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    let last = docs.last().unwrap();
    let r = &last["rings"][0];
    assert_eq!(r["submitted"], 17);
    assert_eq!(r["overflows"], 13);
    assert_eq!(r["worst_severity"], "warning");
    let f = &last["findings"][0];
    assert_eq!(f["rule"], "cq-overflow");
    assert_eq!(f["occurrences"], 13);
    assert_eq!(f["ring"], r["ring"]);
    // Found before the command ended, not only in the last document.
    let first = docs
        .iter()
        .position(|d| d["findings"][0]["rule"] == "cq-overflow")
        .unwrap();
    assert!(first < docs.len() - 1, "found only at the end");
}

#[test]
fn host_wide_once_traces_one_interval() {
    let Some(_g) = require_root("host_wide_once_traces_one_interval") else {
        return;
    };
    let t = Instant::now();
    let docs = top(&["--once", "--interval", "300ms", "--format", "json"], &[]);
    assert_eq!(docs.len(), 1);
    assert!(docs[0]["running_ns"].as_u64().unwrap() >= 300_000_000);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

#[test]
fn count_stops_a_host_wide_trace() {
    let Some(_g) = require_root("count_stops_a_host_wide_trace") else {
        return;
    };
    let docs = top(
        &["--interval", "200ms", "--count", "3", "--format", "json"],
        &[],
    );
    assert_eq!(docs.len(), 3);
    let running: Vec<u64> = docs
        .iter()
        .map(|d| d["running_ns"].as_u64().unwrap())
        .collect();
    assert!(running.windows(2).all(|w| w[1] > w[0]), "{running:?}");
    assert!(running[2] >= 400_000_000, "{running:?}");
}
