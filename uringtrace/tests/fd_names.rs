//! Files and sockets by name: recordings made with the workload generator (Linux 6.18,
//! `uringtrace record -o X.utr -- uringtrace-workload chain-broken-short|chain-reset`,
//! tests/fixtures/fd-names/) carry `fd_name` events, and replay names the pipe and the
//! socket in findings, JSON and the analyzer's state. A name cut short or out of order
//! names nothing.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use uringtrace::analyzer::{Analyzer, AnalyzerConfig};
use uringtrace::recording::{ReadStatus, Reader, Writer};
use uringtrace_common::view::FdName;
use uringtrace_common::{EventKind, EventView, FdType, RawEvent};

const PIPE: &str = "pipe:[2009976]";
const SOCKET: &str = "socket:127.0.0.1:38471->127.0.0.1:51098";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fd-names")
        .join(format!("{name}.utr"))
}

fn diagnose_json(path: &Path) -> serde_json::Value {
    let out = Command::new(common::UT)
        .args(["diagnose", "-q", "--format", "json", "-i"])
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

fn finding<'a>(report: &'a serde_json::Value, rule: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {report:#}"))
}

fn fact<'a>(f: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    f["evidence"]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
}

#[test]
fn replay_names_the_pipe_and_the_socket_in_findings() {
    let r = diagnose_json(&fixture("chain-broken-short"));
    let f = finding(&r, "link-chain-broken");
    assert_eq!(
        f["message"],
        format!(
            "chain member 1 of 2 (READ user_data 0x1, fd 3 ({PIPE})) completed short (10 bytes; \
             a short read/write on a pipe or socket fails the chain); 1 follower(s) cancelled"
        )
    );
    assert_eq!(fact(f, "file").unwrap()["text"], format!("fd 3 ({PIPE})"));

    let r = diagnose_json(&fixture("chain-reset"));
    let f = finding(&r, "link-chain-broken");
    assert_eq!(
        f["message"],
        format!(
            "chain member 1 of 2 (RECV user_data 0x1, fd 5 ({SOCKET})) failed with -ECONNRESET: \
             the peer closed the connection; 1 follower(s) cancelled"
        )
    );
}

fn events(path: &Path) -> Vec<RawEvent> {
    let mut r = Reader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(e) = r.next_event().unwrap() {
        out.push(e);
    }
    out
}

/// The state after `evs`, with what would forget names (closes, exits) left out.
fn names_after(evs: &[RawEvent], tgid: u32, fd: i32) -> Option<String> {
    let mut a = Analyzer::new(AnalyzerConfig::default(), Default::default());
    for e in evs {
        let closed = uringtrace_common::view::FdObject::of(e)
            .is_some_and(|o| o.fd_type() == Some(FdType::Closed));
        if closed || e.kind == EventKind::ProcessExit as u16 {
            continue;
        }
        a.push(*e);
    }
    a.flush();
    a.state().fd_name(tgid, fd).map(str::to_string)
}

fn owner(evs: &[RawEvent], fd: i32) -> u32 {
    evs.iter()
        .find_map(|e| FdName::of(e).filter(|n| n.fd == fd).map(|_| e.tgid))
        .unwrap()
}

#[test]
fn the_state_names_fds_from_the_recording() {
    let evs = events(&fixture("chain-reset"));
    let pid = owner(&evs, 5);
    assert_eq!(names_after(&evs, pid, 5).as_deref(), Some(SOCKET));
    let ring = names_after(&evs, pid, 3).unwrap();
    assert!(
        ring.starts_with("anon_inode:[io_uring] ring 0xffff"),
        "{ring}"
    );
    let evs = events(&fixture("chain-broken-short"));
    let pid = owner(&evs, 3);
    assert_eq!(names_after(&evs, pid, 3).as_deref(), Some(PIPE));
    assert_eq!(names_after(&evs, pid, 4), None, "never used by a request");
}

#[test]
fn a_lost_or_reordered_piece_names_nothing_and_bad_bytes_are_replaced() {
    let evs = events(&fixture("chain-reset"));
    let pid = owner(&evs, 5);
    let second = evs
        .iter()
        .position(|e| FdName::of(e).is_some_and(|n| n.fd == 5 && n.index == 1))
        .unwrap();
    // Lost: the second piece is gone.
    let mut lost = evs.clone();
    lost.remove(second);
    assert_eq!(names_after(&lost, pid, 5), None);
    // Reordered: the second piece claims to be the third.
    let mut moved = evs.clone();
    moved[second].opcode = 2;
    assert_eq!(names_after(&moved, pid, 5), None);
    // Corrupt bytes: invalid UTF-8 shows as U+FFFD, the rest of the name stays.
    let mut bad = evs.clone();
    bad[second].aux = u64::from_le_bytes(*b"\xff:51098\0");
    assert_eq!(
        names_after(&bad, pid, 5).as_deref(),
        Some("socket:127.0.0.1:38471->127.0.0.\u{fffd}:51098")
    );
}

#[test]
fn a_recording_cut_inside_a_name_reads_back_without_it() {
    let path = fixture("chain-reset");
    let header = Reader::open(&path).unwrap().header().clone();
    let evs = events(&path);
    let pid = owner(&evs, 5);
    let second = evs
        .iter()
        .position(|e| FdName::of(e).is_some_and(|n| n.fd == 5 && n.index == 1))
        .unwrap();
    // Everything up to the second piece, then half of its record.
    let mut w = Writer::new(Cursor::new(Vec::new()), header.clone()).unwrap();
    for e in &evs[..second] {
        w.write_event(e).unwrap();
    }
    w.flush().unwrap();
    let before = w.bytes() as usize;
    w.write_event(&evs[second]).unwrap();
    w.flush().unwrap();
    let after = w.bytes() as usize;
    let mut bytes = w.abandon().unwrap().into_inner();
    assert!(after - before > 2, "a piece is a record of its own");
    bytes.truncate(before + (after - before) / 2);
    let mut r = Reader::new(Cursor::new(bytes)).unwrap();
    let mut back = Vec::new();
    while let Some(e) = r.next_event().unwrap() {
        back.push(e);
    }
    assert!(
        matches!(r.status(), ReadStatus::Truncated { .. }),
        "{:?}",
        r.status()
    );
    assert_eq!(back, evs[..second]);
    assert_eq!(names_after(&back, pid, 5), None);
    // The whole stream round-trips, names included.
    let mut w = Writer::new(Cursor::new(Vec::new()), header).unwrap();
    for e in &evs {
        w.write_event(e).unwrap();
    }
    let bytes = w.abandon().unwrap().into_inner();
    let mut r = Reader::new(Cursor::new(bytes)).unwrap();
    let mut all = Vec::new();
    while let Some(e) = r.next_event().unwrap() {
        all.push(e);
    }
    assert_eq!(all, evs);
}
