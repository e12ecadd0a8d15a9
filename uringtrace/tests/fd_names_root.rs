//! Live: the fds a traced workload uses are named from /proc as they are first seen,
//! the names reach the findings, and the recording keeps them for replay. Needs root
//! (loads eBPF).
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use uringtrace_common::view::FdName;
use uringtrace_common::EventView;

/// The names a recording gives `tgid`'s fd, assembled from its `fd_name` pieces.
fn recorded_name(rec: &common::Recorded, tgid: u32, fd: i32) -> Option<String> {
    let mut name = Vec::new();
    for e in rec.events.iter().filter(|e| e.tgid == tgid) {
        if let Some(p) = FdName::of(e).filter(|p| p.fd == fd) {
            if p.index == 0 {
                name.clear();
            }
            name.extend_from_slice(&p.bytes[..p.used()]);
        }
    }
    (!name.is_empty()).then(|| String::from_utf8(name).unwrap())
}

fn message(report: &serde_json::Value, rule: &str) -> String {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule}: {report:#}"))["message"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The pipe's inode differs per run: it is read from the message's own words
/// ("waits for data on pipe N", from the fd_object events), then the whole message
/// is checked with the name both fds must have.
fn check_wait_cycle(msg: &str) {
    let ino = msg
        .split_once("waits for data on pipe ")
        .and_then(|(_, r)| r.split_once(' '))
        .map(|(n, _)| n)
        .expect(msg);
    let pipe = format!("pipe:[{ino}]");
    assert_eq!(
        msg,
        format!(
            "READ (user_data 0x1, fd 3 ({pipe})) waits for data on pipe {ino} that only WRITE \
             user_data 0x2 (fd 4 ({pipe})) would write; WRITE (user_data 0x2, fd 4 ({pipe})) is \
             linked behind READ user_data 0x1: none of these 2 requests could complete on its \
             own; something outside io_uring released them after {}",
            msg.rsplit_once("after ").unwrap().1
        )
    );
}

/// pipe-read-before-write keeps its pipe open for a second: /proc is read long before
/// it closes. (A process that closes an fd, or exits, before uringtrace drains the
/// events naming it leaves that fd unnamed: chain-broken-short is over in 1 ms.)
#[test]
fn live_findings_name_the_pipe() {
    let Some(_g) = common::require_root("live_findings_name_the_pipe") else {
        return;
    };
    let report = common::diagnose_workload(&[], &["pipe-read-before-write"]);
    check_wait_cycle(&message(&report, "wait-cycle"));
}

#[test]
fn recorded_names_replay_exactly_as_seen_live() {
    let Some(_g) = common::require_root("recorded_names_replay_exactly_as_seen_live") else {
        return;
    };
    // TCP: the two ends of one connection, both in the traced process.
    let rec = common::record_workload(&[], &["keepalive-chain"]);
    let pid = rec.pid();
    let server = recorded_name(&rec, pid, 5).expect("fd 5 named in the recording");
    let client = recorded_name(&rec, pid, 4).expect("fd 4 named in the recording");
    let (a, b) = server
        .strip_prefix("socket:")
        .and_then(|s| s.split_once("->"))
        .expect(&server);
    assert_eq!(client, format!("socket:{b}->{a}"));
    for end in [a, b] {
        let (ip, port) = end.split_once(':').expect(&server);
        assert_eq!(ip, "127.0.0.1", "{server}");
        assert!(port.parse::<u16>().unwrap() > 0, "{server}");
    }
    let ring_fd = rec.report()["ring_fd"].as_i64().unwrap() as i32;
    let ring = recorded_name(&rec, pid, ring_fd).expect("the ring fd named");
    let create = rec.of_kind_pid(uringtrace_common::EventKind::Create, pid);
    assert_eq!(
        ring,
        format!("anon_inode:[io_uring] ring {:#x}", create[0].ctx)
    );

    // Replay: the same names, from the recording alone.
    let rec = common::record_workload(&[], &["pipe-read-before-write"]);
    let out = Command::new(common::UT)
        .args(["diagnose", "-q", "--format", "json", "-i"])
        .arg(&rec.path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let msg = message(&report, "wait-cycle");
    check_wait_cycle(&msg);
    let name = recorded_name(&rec, rec.pid(), 3).unwrap();
    assert!(msg.contains(&format!("fd 3 ({name})")), "{msg}");
}
