//! `--perfetto OUT` live, as root: `diagnose` and `record` tracing a workload scenario
//! write a Perfetto trace whose slices, flows and instants are exactly the scenario's,
//! decoded with the official protos (as `export_perfetto.rs` checks recordings).
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "perfetto_decode/mod.rs"]
mod perfetto_decode;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use common::{require_root, UT, WORKLOAD};
use perfetto_decode::{assert_cq_overflow_export, check_hierarchy, decode, named, on, summary};
use serde_json::Value;

/// The workload's JSON line (it shares stdout with uringtrace, whose report goes to a file).
fn workload_report(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no workload JSON line in {text:?}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn live_diagnose_writes_the_broken_chain_as_slices_a_flow_and_the_finding() {
    let Some(_g) = require_root("live_diagnose_writes_the_broken_chain") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("live.pftrace");
    let out = Command::new(UT)
        .args(["diagnose", "-q", "--format", "json", "-o"])
        .arg(dir.path().join("report.json"))
        .arg("--perfetto")
        .arg(&trace)
        .arg("--")
        .args([WORKLOAD, "chain-broken-error"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pid = workload_report(&out.stdout)["pid"].as_u64().unwrap() as i32;
    let d = decode(&trace);
    check_hierarchy(&d);
    assert_eq!(
        summary(&d),
        [
            "NOP ud=1 res=0 flags=IO_LINK",
            "READ ud=2 res=-EBADF flags=IO_LINK",
            "NOP (cancelled) ud=3 res=-ECANCELED flags=IO_LINK",
            "NOP (cancelled) ud=4 res=-ECANCELED flags=0",
        ]
    );
    let reqs = d.requests();
    // Four lanes of one ring, whose group hangs under the workload's process.
    let lanes: BTreeSet<u64> = reqs.iter().map(|s| s.track).collect();
    assert_eq!(lanes.len(), 4);
    let rings: BTreeSet<u64> = lanes.iter().map(|l| d.tracks[l].parent.unwrap()).collect();
    assert_eq!(rings.len(), 1);
    let ring = *rings.iter().next().unwrap();
    let process = &d.tracks[&d.tracks[&ring].parent.unwrap()];
    assert_eq!((process.kind, process.pid), ("process", pid));
    let positions: Vec<&str> = reqs
        .iter()
        .map(|s| s.args["chain_position"].as_str())
        .collect();
    assert_eq!(positions, ["0", "1", "2", "3"]);
    assert!(reqs.iter().all(|s| s.dur.is_some()));
    let flows: Vec<Vec<String>> = d.flows().into_values().collect();
    assert_eq!(
        flows,
        [["NOP", "READ", "NOP (cancelled)", "NOP (cancelled)"].map(String::from)]
    );
    // The one io_uring_enter that submitted the chain, on the workload's thread.
    let enters = named(&d, "io_uring_enter");
    assert_eq!(enters.len(), 1);
    let t = on(&d, enters[0]);
    assert_eq!(
        (t.kind, t.name.as_str(), t.pid),
        ("thread", "uringtrace-work", pid)
    );
    assert_eq!(enters[0].args["to_submit"], "4");
    assert_eq!(enters[0].args["result"], "4");
    let f = named(&d, "finding: link-chain-broken");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].track, ring);
    assert_eq!(f[0].args["severity"], "warning");
    assert!(f[0].args["message"].contains("2 follower(s) cancelled"));
    // Nothing else happened in that ring: no overflow, no punt.
    assert!(named(&d, "CQ overflow").is_empty());
    assert!(d.slices.iter().all(|s| !s.name.starts_with("io-wq punt")));
    // Lost events: none (the counter's two values).
    let lost: Vec<i64> = d
        .counters
        .iter()
        .filter(|(t, _, _)| d.tracks[t].name == "lost events")
        .map(|c| c.2)
        .collect();
    assert_eq!(lost, [0, 0]);
}

#[test]
fn live_record_writes_the_overflow_and_the_same_trace_as_export() {
    let Some(_g) = require_root("live_record_writes_the_overflow") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let utr = dir.path().join("overflow.utr");
    let trace = dir.path().join("record.pftrace");
    let out = Command::new(UT)
        .args(["record", "-q", "-o"])
        .arg(&utr)
        .arg("--perfetto")
        .arg(&trace)
        .arg("--")
        .args([WORKLOAD, "cq-overflow"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let d = decode(&trace);
    assert_cq_overflow_export(&d);
    assert!(d
        .requests()
        .iter()
        .all(|s| s.name == "NOP" && s.args["result"] == "0" && s.dur.is_some()));
    // `record --perfetto` is `export` of the file it wrote: the same bytes.
    let exported = dir.path().join("export.pftrace");
    let st = Command::new(UT)
        .args(["export", "-q", "-o"])
        .arg(&exported)
        .arg(&utr)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::read(&trace).unwrap(),
        std::fs::read(&exported).unwrap()
    );
}
