//! The exact text of errors a new user meets first: each cause said once (no
//! "…: No such file or directory (os error 2): No such file or directory (os error 2)"),
//! and a recording from a newer uringtrace named as such.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const UT: &str = env!("CARGO_BIN_EXE_uringtrace");

/// (exit code, stderr) of `uringtrace ARGS`, which must print nothing on stdout.
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(UT).args(args).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{args:?}");
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const ENOENT: &str = "No such file or directory (os error 2)";

#[test]
fn dump_of_a_missing_file_says_the_cause_once() {
    assert_eq!(
        run(&["dump", "/nonexistent"]),
        (
            2,
            format!("uringtrace: error: reading /nonexistent: I/O error at offset 0: {ENOENT}\n")
        )
    );
}

#[test]
fn check_of_a_missing_file_or_config_says_the_cause_once() {
    assert_eq!(
        run(&["check", "/nonexistent"]),
        (
            2,
            format!("uringtrace: error: reading /nonexistent: I/O error at offset 0: {ENOENT}\n")
        )
    );
    assert_eq!(
        run(&["check", "-c", "/nonexistent.toml", "/nonexistent"]),
        (
            2,
            format!("uringtrace: error: reading /nonexistent.toml: {ENOENT}\n")
        )
    );
}

/// A recording whose preamble says format version 3: what today's reader makes of a
/// file from a future uringtrace.
#[test]
fn a_recording_from_a_newer_format_asks_for_an_upgrade() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/recordings/chain-ok.utr"
    );
    let mut bytes = std::fs::read(fixture).unwrap();
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.utr");
    std::fs::write(&path, &bytes).unwrap();
    let p = path.to_str().unwrap();
    let want = format!(
        "uringtrace: error: reading {p}: made by a newer uringtrace (format v3, this one reads up to v2): upgrade uringtrace\n"
    );
    for cmd in ["dump", "check", "diagnose"] {
        let args: Vec<&str> = match cmd {
            "diagnose" => vec![cmd, "--input", p],
            _ => vec![cmd, p],
        };
        assert_eq!(run(&args), (2, want.clone()), "{cmd}");
    }
}
