//! The deployment files: the alerting rules pass `promtool check rules` (Debian's
//! `prometheus` package; scripts/setup.sh installs it), the systemd unit passes
//! `systemd-analyze verify` (offline: systemd need not be running). Metric names in them and in the
//! dashboard are checked against the encoder in `output/metrics_tests.rs`.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");

#[test]
fn alerting_rules_pass_promtool() {
    let out = Command::new("promtool")
        .args(["check", "rules", &format!("{DEPLOY}/prometheus/alerts.yml")])
        .output()
        .expect("promtool not found: apt-get install prometheus (scripts/setup.sh does)");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains("SUCCESS: 6 rules found"), "{all}");
}

#[test]
fn dashboard_is_json_with_panels() {
    let text = std::fs::read_to_string(format!("{DEPLOY}/grafana/uringtrace.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(d["uid"], "uringtrace");
    assert_eq!(d["panels"].as_array().unwrap().len(), 9);
}

/// The unit as systemd would load it, with ExecStart pointing at the built binary
/// (verify checks that the command exists and is executable).
#[test]
fn systemd_unit_verifies() {
    let unit = std::fs::read_to_string(format!("{DEPLOY}/systemd/uringtrace-agent.service"))
        .unwrap()
        .replace(
            "/usr/local/bin/uringtrace",
            env!("CARGO_BIN_EXE_uringtrace"),
        );
    assert!(unit.contains(&format!(
        "ExecStart={} agent",
        env!("CARGO_BIN_EXE_uringtrace")
    )));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uringtrace-agent.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze not found: apt-get install systemd (scripts/setup.sh does)");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("uringtrace-agent.service"), "{all}");
}
