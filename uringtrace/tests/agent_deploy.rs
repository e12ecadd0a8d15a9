//! The deployment files: the alerting rules pass `promtool check rules` (Debian's
//! `prometheus` package; scripts/setup.sh installs it). Metric names in them and in the
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
