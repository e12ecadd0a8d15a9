//! `uringtrace export`: the committed fixture recordings become Perfetto traces whose
//! tracks, slices and flows are checked after decoding them with the official protos
//! (`perfetto_protos`), interning resolved as Perfetto's trace processor does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "perfetto_decode/mod.rs"]
mod perfetto_decode;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use perfetto_decode::{
    assert_cq_overflow_export, check_hierarchy, decode, named, on, summary, Decoded, Slice,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recordings")
        .join(name)
}

fn export(name: &str) -> Decoded {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pftrace");
    let st = Command::new(env!("CARGO_BIN_EXE_uringtrace"))
        .args(["export", "-q", "-o"])
        .arg(&out)
        .arg(fixture(name))
        .status()
        .unwrap();
    assert!(st.success());
    decode(&out)
}

#[test]
fn link_chain_members_are_slices_joined_by_one_flow_and_cancelled_followers_are_marked() {
    let d = export("chain-broken-error.utr");
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
    // All four were in flight at once: four lanes of one ring, under its process.
    let lanes: std::collections::BTreeSet<String> = reqs.iter().map(|s| on(&d, s).name).collect();
    assert_eq!(lanes.len(), 4);
    let positions: Vec<&str> = reqs
        .iter()
        .map(|s| s.args["chain_position"].as_str())
        .collect();
    assert_eq!(positions, ["0", "1", "2", "3"]);
    let cancelled: Vec<bool> = reqs
        .iter()
        .map(|s| {
            s.args
                .get("cancelled_follower")
                .is_some_and(|v| v == "true")
        })
        .collect();
    assert_eq!(cancelled, [false, false, true, true]);
    assert!(reqs.iter().all(|s| s.dur.is_some()));
    // One flow through the chain, in chain order.
    let flows: Vec<Vec<String>> = d.flows().into_values().collect();
    assert_eq!(
        flows,
        [["NOP", "READ", "NOP (cancelled)", "NOP (cancelled)"].map(String::from)]
    );
    // The io_uring_enter that submitted them, on the thread, with min_complete.
    let enters = named(&d, "io_uring_enter");
    assert_eq!(enters.len(), 1);
    let t = on(&d, enters[0]);
    assert_eq!((t.kind, t.name.as_str()), ("thread", "uringtrace-work"));
    assert_eq!(enters[0].args["min_complete"], "0");
    assert_eq!(enters[0].args["to_submit"], "4");
    assert_eq!(enters[0].args["result"], "4");
    // The finding, as an instant on the ring's group.
    let f = named(&d, "finding: link-chain-broken");
    assert_eq!(f.len(), 1);
    assert!(on(&d, f[0]).name.starts_with("io_uring 0x"));
    assert_eq!(f[0].args["severity"], "warning");
    assert_eq!(f[0].args["rule"], "link-chain-broken");
    assert!(f[0].args["message"].contains("2 follower(s) cancelled"));
}

#[test]
fn punted_requests_flow_from_submit_through_the_punt_to_the_worker_completion() {
    let d = export("iowq-splice.utr");
    check_hierarchy(&d);
    let reqs = d.requests();
    assert_eq!(reqs.len(), 64);
    assert!(reqs
        .iter()
        .all(|s| s.name == "SPLICE" && s.args["result"] == "1" && s.args["flags"] == "ASYNC"));
    let flows = d.flows();
    assert_eq!(flows.len(), 64);
    for names in flows.values() {
        assert_eq!(names, &["SPLICE", "io-wq punt SPLICE", "CQE SPLICE"]);
    }
    // Punts on the submitting thread, completions on io-wq workers.
    for s in named(&d, "io-wq punt SPLICE") {
        assert_eq!(on(&d, s).name, "uringtrace-work");
    }
    let cqes = named(&d, "CQE SPLICE");
    assert_eq!(cqes.len(), 64);
    let workers: std::collections::BTreeSet<u64> = cqes
        .iter()
        .inspect(|s| assert!(on(&d, s).name.starts_with("iou-wrk-")))
        .map(|s| s.track)
        .collect();
    assert_eq!(workers.len(), 64, "one worker per punted SPLICE");
    // The flow ends at the completion.
    assert!(cqes
        .iter()
        .all(|s| s.terminating.len() == 1 && s.flows.is_empty()));
    assert_eq!(named(&d, "finding: iowq-punt-storm").len(), 1);
}

#[test]
fn overflowed_cqes_are_instants_and_end_their_requests() {
    let d = export("cq-overflow.utr");
    assert_cq_overflow_export(&d);
    // Counter tracks of the ring, from the fdinfo samples, and the lost-events count.
    let counter = |name: &str| {
        d.counters
            .iter()
            .filter(|(t, _, _)| d.tracks[t].name.starts_with(name))
            .count()
    };
    assert!(counter("CQ ready 0x") > 0);
    assert_eq!(counter("CQ ready 0x"), counter("SQ pending 0x"));
    assert_eq!(counter("CQ ready 0x"), counter("in flight 0x"));
    assert_eq!(counter("lost events"), 2);
    assert!(d
        .counters
        .iter()
        .any(|(t, _, v)| d.tracks[t].name.starts_with("CQ ready 0x") && *v == 4));
}

#[test]
fn diagnose_writes_the_same_trace_as_export() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.pftrace");
    let st = Command::new(env!("CARGO_BIN_EXE_uringtrace"))
        .args(["diagnose", "-q", "--format", "json", "--input"])
        .arg(fixture("chain-broken-error.utr"))
        .arg("--perfetto")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let via_export = {
        let out2 = dir.path().join("e.pftrace");
        let st = Command::new(env!("CARGO_BIN_EXE_uringtrace"))
            .args(["export", "-q", "-o"])
            .arg(&out2)
            .arg(fixture("chain-broken-error.utr"))
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::read(out2).unwrap()
    };
    assert_eq!(std::fs::read(&out).unwrap(), via_export);
}

#[test]
fn msg_ring_flows_from_the_sender_to_the_cqe_it_posted_in_the_other_ring() {
    // Rings A and B: POLL_ADD(other ring) -IO_LINK-> MSG_RING(other ring) each; a NOP
    // on B unwinds it: A's MSG_RING (ud 2) posts ud 11 (res 100) into B, B's (ud 4)
    // posts ud 12 (res 200) into A.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.pftrace");
    let st = Command::new(env!("CARGO_BIN_EXE_uringtrace"))
        .args(["export", "-q", "-o"])
        .arg(&out)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/perfetto/ring-msg-cycle.utr"),
        )
        .status()
        .unwrap();
    assert!(st.success());
    let d = decode(&out);
    check_hierarchy(&d);
    let cqes = named(&d, "MSG_RING CQE");
    let got: Vec<(String, String)> = cqes
        .iter()
        .map(|s| (s.args["user_data"].clone(), s.args["result"].clone()))
        .collect();
    assert_eq!(
        got,
        [("11".into(), "100".into()), ("12".into(), "200".into())]
    );
    let senders: Vec<&Slice> = d
        .requests()
        .into_iter()
        .filter(|s| s.name == "MSG_RING")
        .collect();
    assert_eq!(senders.len(), 2);
    for (sender, cqe) in senders.iter().zip(&cqes) {
        // The sender's ring is not the ring the CQE lands in.
        assert_ne!(d.tracks[&sender.track].parent, Some(cqe.track));
        // Its flows: the chain it ends (POLL_ADD → MSG_RING) and the message.
        assert_eq!(sender.flows.len(), 2);
        assert_eq!(cqe.terminating.len(), 1);
        assert_eq!(sender.flows[1], cqe.terminating[0]);
    }
    // ud 2 sends to B (ud 11), ud 4 to A (ud 12).
    let uds: Vec<&str> = senders
        .iter()
        .map(|s| s.args["user_data"].as_str())
        .collect();
    assert_eq!(uds, ["2", "4"]);
    // The two links: POLL_ADD → MSG_RING on each ring.
    let chains: Vec<Vec<String>> = d
        .flows()
        .into_values()
        .filter(|v| v.len() == 2 && v[0] == "POLL_ADD")
        .collect();
    assert_eq!(chains.len(), 2);
}

/// A recording that names its fds (fd_name events) shows the file in the request's
/// `fd` arg: the two ends of a TCP connection, as evidence does.
#[test]
fn requests_name_their_file_when_the_recording_does() {
    let d = export("../fd-names/chain-reset.utr");
    let fds: BTreeMap<String, String> = d
        .requests()
        .iter()
        .filter_map(|s| {
            Some((
                format!("{} ud={}", s.name, s.args["user_data"]),
                s.args.get("fd")?.clone(),
            ))
        })
        .collect();
    assert_eq!(
        fds.get("RECV ud=1").map(String::as_str),
        Some("5 (socket:127.0.0.1:38471->127.0.0.1:51098)"),
        "{fds:?}"
    );
}
