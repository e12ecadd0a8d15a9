//! Both kernel modes agree on the numbers, not only on the findings: every workload
//! scenario that `uringtrace-workload all` runs, diagnosed live in aggregating and in
//! streaming mode, gives per ring the same submitted, completed, overflowed and in
//! flight counts, and per opcode the same number of latency samples. Timing-dependent
//! figures (latency values, event counts) are not compared. Needs root.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

// The scenario list comes from the workload itself, so a new scenario is covered the
// day it joins `all`.
#[allow(dead_code, unused_imports)]
#[path = "../src/workload/mod.rs"]
mod workload;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;
use serde_json::Value;

/// `uringtrace diagnose -q --format json --kernel-mode MODE -o R -- CMD...`, with
/// `env` added to the traced command's environment.
fn diagnose(mode: &str, cmd: &[&str], env: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new(UT)
        .args(["diagnose", "-q", "--format", "json", "--kernel-mode", mode])
        .arg("-o")
        .arg(&report)
        .arg("--")
        .args(cmd)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "diagnose --kernel-mode {mode} -- {cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

/// The exact counts of one ring.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Counts {
    submitted: u64,
    completed: u64,
    overflowed: u64,
    in_flight: u64,
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Rings keyed by (rank of the owner's pid in this report, ring fd): addresses and
/// pids differ from run to run, the order of processes and their fds do not.
fn rings(report: &Value) -> BTreeMap<(usize, i64), Counts> {
    let list = report["rings"].as_array().expect("rings");
    let mut pids: Vec<u64> = list.iter().map(|r| u(&r["pid"])).collect();
    pids.sort_unstable();
    pids.dedup();
    let mut out = BTreeMap::new();
    for (i, r) in list.iter().enumerate() {
        let rank = pids.binary_search(&u(&r["pid"])).unwrap();
        // A ring created before the trace has no fd: its place in the list stands in.
        let fd = r["fd"].as_i64().unwrap_or(-1 - i as i64);
        let c = Counts {
            submitted: u(&r["submitted"]),
            completed: u(&r["completed"]),
            overflowed: u(&r["overflowed"]),
            in_flight: u(&r["in_flight"]),
        };
        assert!(
            out.insert((rank, fd), c).is_none(),
            "two rings with fd {fd} in one process: {report:#}"
        );
    }
    out
}

/// Latency samples per opcode (the report's `latency[].count`).
fn latency_counts(report: &Value) -> BTreeMap<String, u64> {
    report["latency"]
        .as_array()
        .expect("latency")
        .iter()
        .map(|l| (l["opcode"].as_str().unwrap().to_string(), u(&l["count"])))
        .collect()
}

#[test]
fn both_kernel_modes_count_the_same() {
    let Some(_g) = require_root("both_kernel_modes_count_the_same") else {
        return;
    };
    let scenarios: Vec<&str> = workload::Scenario::All
        .expand()
        .iter()
        .map(|s| s.name())
        .collect();
    assert!(scenarios.contains(&"cq-overflow"), "{scenarios:?}");
    let mut differences = Vec::new();
    for name in &scenarios {
        let agg = diagnose("aggregate", &[WORKLOAD, name], &[]);
        let stream = diagnose("stream", &[WORKLOAD, name], &[]);
        for (mode, r) in [("aggregate", &agg), ("stream", &stream)] {
            assert_eq!(r["lost_events"]["total"], 0, "{name} {mode}: lost events");
        }
        let (ra, rs) = (rings(&agg), rings(&stream));
        let (la, ls) = (latency_counts(&agg), latency_counts(&stream));
        eprintln!("{name}: rings {ra:?}, latency samples {la:?}");
        if ra != rs {
            differences.push(format!(
                "{name}: rings (pid rank, fd) -> counts\n  aggregate {ra:?}\n  stream    {rs:?}"
            ));
        }
        if la != ls {
            differences.push(format!(
                "{name}: latency samples per opcode\n  aggregate {la:?}\n  stream    {ls:?}"
            ));
        }
        if *name == "cq-overflow" {
            // 17 NOPs on a 4-entry CQ: 13 overflow, and every one is a request that
            // was submitted and completed (not a leak in the kernel's table).
            for (mode, r) in [("aggregate", &ra), ("stream", &rs)] {
                let c = r.values().next().expect("cq-overflow ring");
                let want = Counts {
                    submitted: 17,
                    completed: 17,
                    overflowed: 13,
                    in_flight: 0,
                };
                assert_eq!(*c, want, "cq-overflow, {mode}");
            }
        }
    }
    assert!(
        differences.is_empty(),
        "aggregating and streaming mode disagree:\n{}",
        differences.join("\n")
    );
}

/// libuv's 64/128 SQPOLL ring (Node.js with UV_USE_IO_URING=1) overflows its CQ under
/// 20,000 concurrent reads. How many reads libuv routes through the ring depends on
/// timing (it falls back to its thread pool when the SQ is full), so the two modes are
/// not compared with each other; each must account for every request it saw: on every
/// ring as many completed as submitted, none left in flight, and one latency sample per
/// request. Before overflowed requests were retired in the kernel, aggregating mode
/// showed a few hundred submitted against ~18,000 completed.
#[test]
fn node_overflowing_its_cq_is_accounted_in_both_modes() {
    let Some(_g) = require_root("node_overflowing_its_cq_is_accounted_in_both_modes") else {
        return;
    };
    let node = "/usr/bin/node";
    if !std::path::Path::new(node).exists() {
        eprintln!("SKIPPED: no {node}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("reads.js");
    let data = dir.path().join("data");
    std::fs::write(&data, vec![7u8; 1 << 20]).unwrap();
    std::fs::write(
        &script,
        format!(
            "const fs = require('fs');\n\
             const fd = fs.openSync({data:?}, 'r');\n\
             const N = 20000; let done = 0;\n\
             for (let i = 0; i < N; i++) {{\n\
               fs.read(fd, Buffer.allocUnsafe(4096), 0, 4096, (i * 4096) % (1 << 20), (err) => {{\n\
                 if (err) throw err;\n\
                 if (++done === N) fs.closeSync(fd);\n\
               }});\n\
             }}\n"
        ),
    )
    .unwrap();
    let script = script.to_str().unwrap();
    for mode in ["aggregate", "stream"] {
        let r = diagnose(mode, &[node, script], &[("UV_USE_IO_URING", "1")]);
        assert_eq!(r["lost_events"]["total"], 0, "{mode}: lost events");
        let rings = rings(&r);
        let busy = rings
            .values()
            .max_by_key(|c| c.submitted)
            .unwrap_or_else(|| panic!("{mode}: no ring in {r:#}"));
        eprintln!("node, {mode}: busiest ring {busy:?}");
        assert!(
            busy.submitted >= 1000 && busy.overflowed > 0,
            "{mode}: libuv's ring did not overflow: {busy:?}"
        );
        for (key, c) in &rings {
            assert_eq!(c.submitted, c.completed, "{mode}, ring {key:?}: {c:?}");
            assert_eq!(c.in_flight, 0, "{mode}, ring {key:?}: {c:?}");
        }
        let submitted: u64 = rings.values().map(|c| c.submitted).sum();
        let samples: u64 = latency_counts(&r).values().sum();
        assert_eq!(samples, submitted, "{mode}: latency samples vs requests");
    }
}

/// Rings the helper process opens at once: more than the kernel's 16 aggregation
/// slots (direct-mapped by ring address), so nearly every slot is claimed.
const CHURN_RINGS: usize = 48;

/// Not a test: the traced helper of `ring_slots_are_released_when_their_process_exits`
/// (run as `<this test binary> --ignored --exact ring_churn_helper` with
/// UT_RING_CHURN set). Opens [`CHURN_RINGS`] rings, runs 64 NOPs on each, exits.
#[test]
#[ignore]
fn ring_churn_helper() {
    if std::env::var_os("UT_RING_CHURN").is_none() {
        return;
    }
    let mut rings = Vec::new();
    for r in 0..CHURN_RINGS {
        let mut ring = io_uring::IoUring::new(8).expect("io_uring_setup");
        for batch in 0..8u64 {
            {
                let mut sq = ring.submission();
                for i in 0..8u64 {
                    let nop = io_uring::opcode::Nop::new()
                        .build()
                        .user_data((r as u64) << 32 | (batch * 8 + i));
                    // SAFETY: a NOP references no memory.
                    unsafe { sq.push(&nop).expect("SQ has room") };
                }
            }
            ring.submit_and_wait(8).expect("io_uring_enter");
            assert_eq!(ring.completion().count(), 8);
        }
        rings.push(ring);
    }
}

/// The kernel's aggregation slots (16, claimed by ring address) and its ring filter
/// are released when the process owning the rings exits: a ring created later is
/// aggregated (counted in the kernel) instead of being streamed in full because an
/// exited process still held its slot, and the old rings leave the filter.
#[test]
fn ring_slots_are_released_when_their_process_exits() {
    use std::collections::{HashMap, HashSet};
    use uringtrace::trace::loader::{TraceOptions, DEFAULT_SLOW_NS};
    use uringtrace::trace::session::{Flow, Session, SessionOptions, FORGET_AFTER};
    use uringtrace_common::{aggregate as agg, EventKind, KernelMode};

    let Some(_g) = require_root("ring_slots_are_released_when_their_process_exits") else {
        return;
    };
    let me = std::env::current_exe().unwrap();
    let nops = 20_000u64;
    let pause = FORGET_AFTER.as_secs_f64() + 1.0;
    let script = format!(
        "UT_RING_CHURN=1 {me:?} --ignored --exact ring_churn_helper -q >/dev/null; \
         sleep {pause}; exec {WORKLOAD:?} nop-storm --count {nops} >/dev/null"
    );
    let opts = SessionOptions {
        trace: TraceOptions {
            mode: KernelMode::Aggregate,
            slow_ns: DEFAULT_SLOW_NS,
            ..TraceOptions::default()
        },
        duration: Some(std::time::Duration::from_secs(60)),
        command: vec!["sh".into(), "-c".into(), script],
        debug_stats: None,
    };
    let mut session = Session::start(&opts).expect("start the session");
    // ring -> owner, in creation order
    let mut created: Vec<(u64, u32)> = Vec::new();
    let mut churn_slots: HashSet<u32> = HashSet::new();
    // By (ring, process): ring addresses are reused within seconds, and the last ring
    // may sit where one of the helper's rings was (each of those did 64 NOPs).
    let mut counted: HashMap<(u64, u32), u64> = HashMap::new();
    let mut streamed_submits: HashMap<(u64, u32), u64> = HashMap::new();
    // The churn rings' state once their process was gone, before the last ring.
    let mut after_exit: Option<(usize, usize)> = None;
    session
        .run(|batch, tracer| {
            for e in batch {
                match EventKind::from_u16(e.kind) {
                    Some(EventKind::Create) => created.push((e.ctx, e.tgid)),
                    Some(EventKind::AggOps) => {
                        *counted.entry((e.ctx, e.tgid)).or_default() += e.aux
                    }
                    Some(EventKind::Submit) => {
                        *streamed_submits.entry((e.ctx, e.tgid)).or_default() += 1
                    }
                    _ => {}
                }
            }
            if created.len() == CHURN_RINGS {
                let churn: HashSet<u64> = created.iter().map(|c| c.0).collect();
                let aggs = tracer.ring_aggs().unwrap();
                for (slot, r) in &aggs {
                    if churn.contains(&r.ctx) {
                        churn_slots.insert(*slot);
                    }
                }
                let owner = created[0].1;
                if !std::path::Path::new(&format!("/proc/{owner}")).exists() {
                    let held = aggs.iter().filter(|(_, r)| churn.contains(&r.ctx)).count();
                    let filtered = tracer
                        .filtered_rings()
                        .unwrap()
                        .iter()
                        .filter(|(ctx, _)| churn.contains(ctx))
                        .count();
                    after_exit = Some((held, filtered));
                }
            }
            Ok(Flow::Continue)
        })
        .expect("session");
    assert_eq!(created.len(), CHURN_RINGS + 1, "rings created: {created:?}");
    let (last, last_tgid) = created[CHURN_RINGS];
    let slot = agg::ring_index(last);
    let last_key = (last, last_tgid);
    eprintln!(
        "last ring {last:#x}: slot {slot} (held by the exited process before: {}), \
         {} requests counted in the kernel, {} submits streamed",
        churn_slots.contains(&slot),
        counted.get(&last_key).copied().unwrap_or(0),
        streamed_submits.get(&last_key).copied().unwrap_or(0)
    );
    assert!(
        churn_slots.len() >= agg::RING_SLOTS as usize / 2,
        "the helper's rings claimed only {} slots",
        churn_slots.len()
    );
    assert_eq!(
        after_exit,
        Some((0, 0)),
        "(aggregation slots, filter entries) still held by the exited process's rings"
    );
    assert_eq!(
        counted.get(&last_key).copied(),
        Some(nops),
        "last ring not aggregated"
    );
    assert_eq!(streamed_submits.get(&last_key).copied().unwrap_or(0), 0);
}
