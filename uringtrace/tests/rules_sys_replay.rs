//! io-uring-unavailable from a recording made on hosts this test cannot be (the
//! sysctls are never changed here: other tests run at the same time). The events are
//! hand-built as the kernel program and the session's annotation write them, written
//! with the recording writer, and replayed by `uringtrace diagnose --input`.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use uringtrace::recording::{ClockBase, Drops, Filter, Header, Writer};
use uringtrace_common::view::SetupFailed;
use uringtrace_common::{EventKind, EventView, RawEvent};

const UT: &str = env!("CARGO_BIN_EXE_uringtrace");

fn header() -> Header {
    Header {
        format: Header::FORMAT.into(),
        format_version: 1,
        tool_version: "test".into(),
        kernel_release: "6.6.0-test".into(),
        host: "testhost".into(),
        clock: ClockBase {
            source: "CLOCK_MONOTONIC".into(),
            start_monotonic_ns: 1_000,
            start_realtime_ns: 2_000,
        },
        tracepoints: vec![],
        missing: vec![],
        degraded: vec![],
        filter: Filter {
            pids: vec![42],
            command: vec!["app".into()],
            follow_children: true,
        },
        ring_bytes: 1 << 24,
        ncpus: 2,
        drops: Drops::default(),
        finished: false,
    }
}

fn setup_failed(ts: u64, tgid: u32, res: i32, facts: SetupFailed) -> RawEvent {
    let mut comm = [0u8; 16];
    comm[..6].copy_from_slice(b"server");
    let base = RawEvent {
        kind: EventKind::SetupFailed as u16,
        ts_ns: ts,
        pid: tgid,
        tgid,
        res,
        comm,
        ..RawEvent::default()
    };
    facts.into_raw(base)
}

fn replay(events: &[RawEvent]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts.utr");
    let mut w = Writer::create(&path, header()).unwrap();
    for e in events {
        w.write_event(e).unwrap();
    }
    w.finish(Drops::default()).unwrap();
    let out = Command::new(UT)
        .args(["diagnose", "--format", "json", "--input"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// kernel.io_uring_disabled = 2 on one host; = 1 with a group the process is not in on
/// another: each cause named, with its fix, from the recording alone.
#[test]
fn sysctl_causes_replay_the_same() {
    let facts = |disabled, group| SetupFailed {
        entries: 256,
        disabled: Some(disabled),
        group: Some(group),
        seccomp: Some(0),
        flags: SetupFailed::ANNOTATED,
    };
    let v = replay(&[
        setup_failed(10_000, 42, -libc::EPERM, facts(2, -1)),
        setup_failed(20_000, 42, -libc::EPERM, facts(2, -1)),
        setup_failed(30_000, 43, -libc::EPERM, facts(1, 1001)),
    ]);
    let found: Vec<(String, u64, u64, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["pid"].as_u64().unwrap(),
                f["occurrences"].as_u64().unwrap(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "io-uring-unavailable".to_string(),
                42,
                2,
                "io_uring_setup failed with -EPERM for server (pid 42): kernel.io_uring_disabled = 2 disables io_uring for every process; allow it with sysctl -w kernel.io_uring_disabled=0 (or =1 plus kernel.io_uring_group); it has run without io_uring since (its fallback path, if it has one)".to_string()
            ),
            (
                "io-uring-unavailable".to_string(),
                43,
                1,
                "io_uring_setup failed with -EPERM for server (pid 43): kernel.io_uring_disabled = 1 and the process is neither in kernel.io_uring_group (group 1001) nor privileged; add its user to that group, or set kernel.io_uring_disabled=0; it has run without io_uring since (its fallback path, if it has one)".to_string()
            ),
        ]
    );
    // The evidence shows what was read with the event.
    let f = &v["findings"][0]["evidence"]["facts"];
    assert!(f.to_string().contains("kernel.io_uring_disabled"), "{f}");
}
