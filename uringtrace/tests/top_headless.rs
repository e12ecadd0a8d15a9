//! Headless `top` (`--format json|text`) on committed recordings: exact documents,
//! exact text lines, and the option errors. stdout is a pipe here, with no terminal.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use common::UT;
use serde_json::Value;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/recordings/{name}.utr",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn top(args: &[&str]) -> Output {
    Command::new(UT)
        .arg("top")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// stdout's JSON lines, asserting success.
fn documents(args: &[&str]) -> Vec<Value> {
    let out = top(args);
    assert!(
        out.status.success(),
        "top {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn once_on_a_replay_is_the_state_at_the_end_of_the_recording() {
    let docs = documents(&[
        "--replay",
        &fixture("cq-overflow"),
        "--once",
        "--format",
        "json",
    ]);
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d["format_version"], 1);
    // The recording's end record, not its last event.
    assert_eq!(d["running_ns"], 2_966_300_531u64);
    assert_eq!(d["events"], 74);
    assert_eq!(d["lost_events"]["known"], true);
    assert_eq!(d["lost_events"]["total"], 0);
    let rings = d["rings"].as_array().unwrap();
    assert_eq!(rings.len(), 1);
    let r = &rings[0];
    assert_eq!(r["ring"], "0xffff8881489d7800");
    assert_eq!(r["pid"], 5507);
    assert_eq!(r["flags"], serde_json::json!(["CQSIZE"]));
    assert_eq!(r["submitted"], 17);
    assert_eq!(r["completed"], 17);
    assert_eq!(r["overflows"], 13);
    assert_eq!(r["worst_severity"], "warning");
    let findings = d["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["rule"], "cq-overflow");
    assert_eq!(findings[0]["severity"], "warning");
    assert_eq!(findings[0]["occurrences"], 13);
    assert_eq!(findings[0]["ring"], "0xffff8881489d7800");
}

#[test]
fn an_interval_replay_prints_a_document_per_interval_of_trace_time_then_the_end() {
    let args = [
        "--replay",
        &fixture("cq-overflow"),
        "--interval",
        "500ms",
        "--format",
        "json",
    ];
    let docs = documents(&args);
    let times: Vec<u64> = docs
        .iter()
        .map(|d| d["running_ns"].as_u64().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            500_000_000,
            1_000_000_000,
            1_500_000_000,
            2_000_000_000,
            2_500_000_000,
            2_966_300_531
        ]
    );
    let events: Vec<u64> = docs.iter().map(|d| d["events"].as_u64().unwrap()).collect();
    assert_eq!(events, [55, 60, 65, 74, 74, 74]);
    // The overflow is found in the first half second and stays.
    assert!(docs
        .iter()
        .all(|d| d["findings"][0]["rule"] == "cq-overflow"));
    // Replays are deterministic: the same documents every time.
    assert_eq!(documents(&args), docs);
}

#[test]
fn count_stops_after_n_documents() {
    let docs = documents(&[
        "--replay",
        &fixture("cq-overflow"),
        "--interval",
        "1s",
        "--count",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1]["running_ns"], 2_000_000_000u64);
}

#[test]
fn text_is_the_ring_table_and_the_findings() {
    let out = top(&[
        "--replay",
        &fixture("stalled-request"),
        "--once",
        "--format",
        "text",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "time 3.25s  events 38 (0.0/s)  lost 0  rings 1  findings 1",
            "  PID/COMM              RING               FLAGS SUB/s CMP/s INFL   P50   P99 ERR/s OVF PUNT/s",
            "! 25931/uringtrace-work 0xffff88814c026800 -       0.0   0.0    0 1.48s 1.48s   0.0   0    0.0",
            "WARNING request-stalled 25931/uringtrace-work 0xffff88814c026800: SPLICE (user_data 0x1) took 1500.4 ms (threshold 1000.0 ms), blocked in io-wq",
        ]
    );
    assert!(!text.contains('\x1b'));
}

#[test]
fn text_snapshots_are_separated_by_a_blank_line() {
    let out = top(&[
        "--replay",
        &fixture("nop-storm"),
        "--interval",
        "1s",
        "--format",
        "text",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{text}");
    assert!(
        blocks[0].starts_with("time 1s  events 409 (409.0/s)"),
        "{text}"
    );
    assert!(blocks[1].starts_with("time 1.8s  events 409"), "{text}");
}

fn fails_with(args: &[&str], message: &str) {
    let out = top(args);
    assert!(!out.status.success(), "top {args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(message), "top {args:?}: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn headless_options_say_what_is_missing_or_wrong() {
    let f = fixture("nop-storm");
    fails_with(&["--replay", &f, "--once"], "--format <FORMAT>");
    fails_with(&["--replay", &f, "--interval", "1s"], "--format <FORMAT>");
    fails_with(
        &["--replay", &f, "--count", "3", "--format", "json"],
        "--interval <DURATION>",
    );
    fails_with(
        &["--replay", &f, "--interval", "0", "--format", "json"],
        "must be positive",
    );
    fails_with(
        &[
            "--replay",
            &f,
            "--interval",
            "1s",
            "--count",
            "0",
            "--format",
            "json",
        ],
        "--count",
    );
    fails_with(
        &[
            "--replay",
            &f,
            "--once",
            "--count",
            "2",
            "--interval",
            "1s",
            "--format",
            "json",
        ],
        "cannot be used with",
    );
    fails_with(
        &[
            "--replay",
            &f,
            "--once",
            "--interval",
            "1s",
            "--format",
            "json",
        ],
        "the state at the end of the recording",
    );
    fails_with(&["--replay", &f, "--format", "yaml"], "json");
}

#[test]
fn help_teaches_headless_with_examples() {
    let out = top(&["--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--once --format json"), "{help}");
    assert!(
        help.contains("--interval 1s --count 10 --format json"),
        "{help}"
    );
    assert!(help.contains("--format <FORMAT>"), "{help}");
}
