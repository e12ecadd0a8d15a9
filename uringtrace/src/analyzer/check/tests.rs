//! Tests of the check's policy: config, budgets, verdicts.

use super::fixtures::{finding, report};
use super::*;
use crate::analyzer::finding::{FactValue, Severity};
use crate::analyzer::report::{LostEvents, OpLatency};
use crate::analyzer::rules::RuleId;

const FULL: &str = r#"
fail_on = "error"
[rules]
disable = ["multishot-terminated"]
[rules.severity]
request-stalled = "error"
[budgets]
max_in_flight = 256
max_iowq_workers = 32
[budgets.p99_latency]
READ = "2ms"
write = "500us"
NOP = "800ns"
RECV = "1s"
"#;

#[test]
fn parses_a_full_config() {
    let c = Config::parse(FULL).expect("valid");
    assert_eq!(c.fail_on, Severity::Error);
    assert!(c.disabled.contains(&RuleId::MultishotTerminated));
    assert_eq!(
        c.severity.get(&RuleId::RequestStalled),
        Some(&Severity::Error)
    );
    assert_eq!(c.budgets.max_in_flight, Some(256));
    assert_eq!(c.budgets.max_iowq_workers, Some(32));
    let lat = &c.budgets.p99_latency_ns;
    assert_eq!(lat.get("READ"), Some(&2_000_000));
    assert_eq!(
        lat.get("WRITE"),
        Some(&500_000),
        "opcode names are normalised"
    );
    assert_eq!(lat.get("NOP"), Some(&800));
    assert_eq!(lat.get("RECV"), Some(&1_000_000_000));
}

#[test]
fn empty_config_is_the_default() {
    assert_eq!(Config::parse("").expect("valid"), Config::default());
    assert_eq!(Config::default().fail_on, Severity::Warning);
}

fn err(text: &str) -> String {
    Config::parse(text)
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn rejects_unknown_rules_with_a_hint() {
    let e = err("[rules]\ndisable = [\"cq-overflw\"]");
    assert!(
        e.contains("rules.disable") && e.contains("\"cq-overflw\""),
        "{e}"
    );
    assert!(e.contains("did you mean \"cq-overflow\""), "{e}");
    let e = err("[rules.severity]\nno-such-rule = \"error\"");
    assert!(e.contains("rules.severity.no-such-rule"), "{e}");
    assert!(e.contains("known rules: cq-overflow"), "{e}");
}

#[test]
fn rejects_unknown_keys() {
    let e = err("failon = \"error\"");
    assert!(e.contains("unknown key `failon`"), "{e}");
    let e = err("[budgets]\nmax_inflight = 3");
    assert!(
        e.contains("`budgets.max_inflight`") && e.contains("max_in_flight"),
        "{e}"
    );
    let e = err("[rules]\nenable = []");
    assert!(e.contains("`rules.enable`"), "{e}");
}

#[test]
fn rejects_bad_values() {
    let e = err("[budgets.p99_latency]\nREAD = \"2 parsecs\"");
    assert!(
        e.contains("budgets.p99_latency.READ") && e.contains("2 parsecs"),
        "{e}"
    );
    let e = err("[budgets.p99_latency]\nREAD = \"2\"");
    assert!(e.contains("unit is required"), "{e}");
    let e = err("[budgets.p99_latency]\nREAD = 2");
    assert!(e.contains("duration string"), "{e}");
    let e = err("[budgets.p99_latency]\nREED = \"2ms\"");
    assert!(e.contains("unknown opcode \"REED\""), "{e}");
    let e = err("fail_on = \"fatal\"");
    assert!(e.contains("unknown severity \"fatal\""), "{e}");
    let e = err("[budgets]\nmax_in_flight = -1");
    assert!(e.contains("non-negative integer"), "{e}");
    let e = err("fail_on = ");
    assert!(e.starts_with("invalid TOML"), "{e}");
}

fn slugs(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn apply_disables_and_regrades() {
    let r = report();
    let c = Config::parse(
        "[rules]\ndisable = [\"multishot-terminated\"]\n[rules.severity]\ncq-overflow = \"error\"",
    )
    .expect("valid");
    let out = apply(&c, &r);
    assert_eq!(slugs(&out), ["cq-overflow", "wait-cycle"]);
    assert!(out.iter().all(|f| f.severity == Severity::Error));
}

#[test]
fn latency_budget() {
    let mut r = report();
    r.findings.clear();
    r.latency.push(OpLatency {
        opcode: "WRITE".into(),
        count: 5,
        p50_ns: 1,
        p99_ns: 10,
        max_ns: 10,
    });
    let c =
        Config::parse("[budgets.p99_latency]\nREAD = \"10us\"\nWRITE = \"1ms\"").expect("valid");
    let out = apply(&c, &r);
    assert_eq!(slugs(&out), ["budget-p99-latency"]);
    let f = &out[0];
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message.contains("READ") && f.message.contains("12.3µs") && f.message.contains("10µs"),
        "{}",
        f.message
    );
    assert_eq!(f.evidence.fact("budget"), Some(&FactValue::Ns(10_000)));
    // The report lost events: the budget verdict is marked like the others.
    assert!(f.inconclusive);
}

#[test]
fn in_flight_budget() {
    let mut r = report();
    r.findings.clear();
    let c = Config::parse("[budgets]\nmax_in_flight = 16").expect("valid");
    let out = apply(&c, &r);
    assert_eq!(slugs(&out), ["budget-in-flight"]);
    assert_eq!(
        (out[0].pid, out[0].ring_hex().as_str()),
        (1234, "0xffff888012345000")
    );
    assert!(
        out[0].message.contains("17") && out[0].message.contains("16"),
        "{}",
        out[0].message
    );
    let c = Config::parse("[budgets]\nmax_in_flight = 17").expect("valid");
    assert!(apply(&c, &r).is_empty(), "at the budget is within it");
}

#[test]
fn iowq_budget() {
    let mut r = report();
    r.findings.clear();
    let c = Config::parse("[budgets]\nmax_iowq_workers = 1").expect("valid");
    let out = apply(&c, &r);
    assert_eq!(slugs(&out), ["budget-iowq-workers"]);
    assert_eq!((out[0].pid, out[0].comm.as_str()), (1234, "app"));
    // Workers of a process with no ring in the table still count.
    r.rings.clear();
    r.max_iowq_workers = 40;
    let out = apply(&c, &r);
    assert_eq!(slugs(&out), ["budget-iowq-workers"]);
    assert_eq!(out[0].pid, 0);
    assert!(out[0].message.contains("40"));
    // A budget override applies to budget findings too.
    let c = Config::parse(
        "[budgets]\nmax_iowq_workers = 1\n[rules.severity]\nbudget-iowq-workers = \"info\"",
    )
    .expect("valid");
    assert_eq!(apply(&c, &r)[0].severity, Severity::Info);
}

#[test]
fn verdicts() {
    let clean = LostEvents {
        total: 0,
        per_cpu: vec![0, 0],
        known: true,
    };
    let lossy = LostEvents {
        total: 3,
        per_cpu: vec![3],
        known: true,
    };
    let unknown = LostEvents {
        total: 0,
        per_cpu: vec![],
        known: false,
    };
    let c = Config::default();
    let warn = [finding("cq-overflow", Severity::Warning)];
    let info = [finding("multishot-terminated", Severity::Info)];
    assert_eq!(verdict(&c, &[], &clean), Verdict::Pass);
    assert_eq!(verdict(&c, &info, &clean), Verdict::Pass);
    assert_eq!(verdict(&c, &warn, &clean), Verdict::Fail);
    assert_eq!(
        verdict(&c, &warn, &lossy),
        Verdict::Fail,
        "seen failures are real"
    );
    assert_eq!(verdict(&c, &info, &lossy), Verdict::Inconclusive);
    assert_eq!(verdict(&c, &[], &unknown), Verdict::Inconclusive);
    let lenient = Config {
        fail_on: Severity::Error,
        ..Config::default()
    };
    assert_eq!(verdict(&lenient, &warn, &clean), Verdict::Pass);
    assert_eq!(
        [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive].map(Verdict::exit_code),
        [0, 1, 2]
    );
    assert_eq!(Verdict::Fail.max(Verdict::Inconclusive), Verdict::Fail);
    assert_eq!(
        Verdict::Pass.max(Verdict::Inconclusive),
        Verdict::Inconclusive
    );
}

#[test]
fn unknown_keys_name_the_key_and_its_table() {
    assert_eq!(
        err("failon = \"error\""),
        "unknown key `failon` (expected one of: fail_on, rules, budgets)"
    );
    assert_eq!(
        err("[rules]\nenable = []"),
        "unknown key `rules.enable` (expected one of: disable, severity)"
    );
    assert_eq!(
        err("[budgets]\nmax_inflight = 3"),
        "unknown key `budgets.max_inflight` (expected one of: max_in_flight, max_iowq_workers, p99_latency)"
    );
    // Inline tables and dotted keys are the same tables.
    assert_eq!(
        err("budgets = { p99 = {} }"),
        "unknown key `budgets.p99` (expected one of: max_in_flight, max_iowq_workers, p99_latency)"
    );
    assert_eq!(
        err("rules.enable = []"),
        "unknown key `rules.enable` (expected one of: disable, severity)"
    );
}

#[test]
fn wrong_types_name_the_key() {
    let severity = "a severity string: \"info\", \"warning\" or \"error\"";
    for (text, message) in [
        ("fail_on = 3", format!("`fail_on` must be {severity}")),
        (
            "fail_on = 1979-05-27",
            format!("`fail_on` must be {severity}"),
        ),
        ("rules = 3", "`rules` must be a table".into()),
        ("budgets = []", "`budgets` must be a table".into()),
        (
            "rules.severity = 1",
            "`rules.severity` must be a table".into(),
        ),
        (
            "[rules]\ndisable = \"cq-overflow\"",
            "`rules.disable` must be an array of rule names".into(),
        ),
        (
            "[rules]\ndisable = [3]",
            "`rules.disable` must be an array of rule names".into(),
        ),
        (
            "[rules.severity]\ncq-overflow = 1",
            format!("`rules.severity.cq-overflow` must be {severity}"),
        ),
        (
            "[budgets]\nmax_iowq_workers = \"3\"",
            "`budgets.max_iowq_workers` must be a non-negative integer".into(),
        ),
        (
            "[budgets]\nmax_in_flight = 1.5",
            "`budgets.max_in_flight` must be a non-negative integer".into(),
        ),
        (
            "[budgets.p99_latency]\nREAD = 2",
            "`budgets.p99_latency.READ` must be a duration string such as \"2ms\"".into(),
        ),
    ] {
        assert_eq!(err(text), message, "{text}");
    }
}
