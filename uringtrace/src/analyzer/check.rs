//! `uringtrace check`: the CI gate. A `uringtrace.toml` turns a report's findings into a
//! verdict (rules disabled or re-graded, budgets added) and into JUnit XML. Pure: the
//! command reads the files and prints.
//!
//! ```toml
//! fail_on = "warning"            # lowest severity that fails the check (default "warning")
//! [rules]
//! disable = ["multishot-terminated"]
//! [rules.severity]
//! request-stalled = "error"
//! [budgets]
//! max_in_flight = 256            # per ring (peak)
//! max_iowq_workers = 32          # per process
//! [budgets.p99_latency]
//! READ = "2ms"                   # per opcode; units ns, us (µs), ms, s, m
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::finding::{Evidence, Fact, FactValue, Finding, Severity};
use super::render::{finding_text, human_ns};
use super::report::{LostEvents, Report};
use super::rules::{self, RuleId};
use crate::names::{opcode_from_name, opcode_name};

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Findings at or above this severity fail the check.
    pub fail_on: Severity,
    /// Rules whose findings are dropped.
    pub disabled: BTreeSet<RuleId>,
    /// Severity overrides, by rule.
    pub severity: BTreeMap<RuleId, Severity>,
    pub budgets: Budgets,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fail_on: Severity::Warning,
            disabled: BTreeSet::new(),
            severity: BTreeMap::new(),
            budgets: Budgets::default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budgets {
    /// Peak requests in flight, per ring.
    pub max_in_flight: Option<u64>,
    /// io-wq workers created, per process.
    pub max_iowq_workers: Option<u64>,
    /// p99 latency in ns, by opcode name as the latency table spells it (`READ`).
    pub p99_latency_ns: BTreeMap<String, u64>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid TOML: {0}")]
    Syntax(String),
    #[error("unknown key `{key}` (expected one of: {expected})")]
    UnknownKey { key: String, expected: &'static str },
    #[error("`{key}` must be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("`{key}`: unknown rule {slug:?}{hint}; known rules: {known}")]
    UnknownRule {
        key: String,
        slug: String,
        hint: String,
        known: String,
    },
    #[error("`{key}`: unknown severity {value:?} (expected \"info\", \"warning\" or \"error\")")]
    UnknownSeverity { key: String, value: String },
    #[error("`{key}`: invalid duration {value:?}: {reason}")]
    BadDuration {
        key: String,
        value: String,
        reason: String,
    },
    #[error("`{key}`: unknown opcode {name:?} (use the names of the latency table, e.g. READ, WRITE, RECV)")]
    UnknownOpcode { key: String, name: String },
}

const TOP_KEYS: &str = "fail_on, rules, budgets";
const RULES_KEYS: &str = "disable, severity";
const BUDGET_KEYS: &str = "max_in_flight, max_iowq_workers, p99_latency";

impl Config {
    /// Parses the text of a `uringtrace.toml`. Every key is checked: a typo is an
    /// error, not a silently ignored setting that lets CI pass.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let mut cfg = Config::default();
        for (key, value) in &table {
            match key.as_str() {
                "fail_on" => cfg.fail_on = severity_value("fail_on", value)?,
                "rules" => parse_rules(as_table("rules", value)?, &mut cfg)?,
                "budgets" => cfg.budgets = parse_budgets(as_table("budgets", value)?)?,
                other => return Err(unknown_key(other, TOP_KEYS)),
            }
        }
        Ok(cfg)
    }
}

fn unknown_key(key: &str, expected: &'static str) -> ConfigError {
    ConfigError::UnknownKey {
        key: key.to_string(),
        expected,
    }
}

fn as_table<'a>(key: &str, value: &'a toml::Value) -> Result<&'a toml::Table, ConfigError> {
    value.as_table().ok_or_else(|| ConfigError::WrongType {
        key: key.into(),
        expected: "a table",
    })
}

fn as_str<'a>(
    key: &str,
    value: &'a toml::Value,
    expected: &'static str,
) -> Result<&'a str, ConfigError> {
    value.as_str().ok_or_else(|| ConfigError::WrongType {
        key: key.into(),
        expected,
    })
}

fn severity_value(key: &str, value: &toml::Value) -> Result<Severity, ConfigError> {
    let s = as_str(
        key,
        value,
        "a severity string: \"info\", \"warning\" or \"error\"",
    )?;
    Severity::parse(s).ok_or_else(|| ConfigError::UnknownSeverity {
        key: key.into(),
        value: s.into(),
    })
}

fn known_rule(key: &str, slug: &str) -> Result<RuleId, ConfigError> {
    if let Some(id) = RuleId::from_slug(slug) {
        return Ok(id);
    }
    let hint = rules::closest(slug)
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default();
    Err(ConfigError::UnknownRule {
        key: key.into(),
        slug: slug.into(),
        hint,
        known: rules::slug_list(),
    })
}

fn parse_rules(table: &toml::Table, cfg: &mut Config) -> Result<(), ConfigError> {
    for (key, value) in table {
        match key.as_str() {
            "disable" => cfg.disabled = parse_disable(value)?,
            "severity" => cfg.severity = parse_severities(as_table("rules.severity", value)?)?,
            other => return Err(unknown_key(&format!("rules.{other}"), RULES_KEYS)),
        }
    }
    Ok(())
}

fn parse_disable(value: &toml::Value) -> Result<BTreeSet<RuleId>, ConfigError> {
    const KEY: &str = "rules.disable";
    let list = value.as_array().ok_or_else(|| ConfigError::WrongType {
        key: KEY.into(),
        expected: "an array of rule names",
    })?;
    list.iter()
        .map(|v| known_rule(KEY, as_str(KEY, v, "an array of rule names")?))
        .collect()
}

fn parse_severities(table: &toml::Table) -> Result<BTreeMap<RuleId, Severity>, ConfigError> {
    table
        .iter()
        .map(|(slug, v)| {
            let key = format!("rules.severity.{slug}");
            Ok((known_rule(&key, slug)?, severity_value(&key, v)?))
        })
        .collect()
}

fn parse_budgets(table: &toml::Table) -> Result<Budgets, ConfigError> {
    let mut b = Budgets::default();
    for (key, value) in table {
        match key.as_str() {
            "max_in_flight" => b.max_in_flight = Some(count_value("budgets.max_in_flight", value)?),
            "max_iowq_workers" => {
                b.max_iowq_workers = Some(count_value("budgets.max_iowq_workers", value)?)
            }
            "p99_latency" => {
                b.p99_latency_ns = parse_latencies(as_table("budgets.p99_latency", value)?)?
            }
            other => return Err(unknown_key(&format!("budgets.{other}"), BUDGET_KEYS)),
        }
    }
    Ok(b)
}

fn count_value(key: &str, value: &toml::Value) -> Result<u64, ConfigError> {
    value
        .as_integer()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| ConfigError::WrongType {
            key: key.into(),
            expected: "a non-negative integer",
        })
}

fn parse_latencies(table: &toml::Table) -> Result<BTreeMap<String, u64>, ConfigError> {
    table
        .iter()
        .map(|(name, v)| {
            let key = format!("budgets.p99_latency.{name}");
            let op = canonical_opcode(&key, name)?;
            let text = as_str(&key, v, "a duration string such as \"2ms\"")?;
            let ns = parse_budget_ns(text).map_err(|reason| ConfigError::BadDuration {
                key: key.clone(),
                value: text.into(),
                reason,
            })?;
            Ok((op, ns))
        })
        .collect()
}

/// The opcode as the latency table spells it: `read` → `READ`, `OP_99` kept as is.
fn canonical_opcode(key: &str, name: &str) -> Result<String, ConfigError> {
    if let Some(op) = opcode_from_name(name) {
        return Ok(opcode_name(op).into_owned());
    }
    let numbered = name.strip_prefix("OP_").and_then(|n| n.parse::<u8>().ok());
    match numbered {
        Some(op) => Ok(opcode_name(op).into_owned()),
        None => Err(ConfigError::UnknownOpcode {
            key: key.into(),
            name: name.into(),
        }),
    }
}

/// A latency budget in ns. The unit is required: a bare "2" could mean seconds or ms.
fn parse_budget_ns(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if let Some(n) = t.strip_suffix("ns") {
        return n
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| "expected e.g. 500ns".into());
    }
    if t.chars().last().is_some_and(|c| c.is_ascii_digit()) {
        return Err("a unit is required: ns, us, ms, s or m (e.g. \"2ms\")".into());
    }
    let t = t.replace(['\u{b5}', '\u{3bc}'], "u");
    let d = crate::units::parse_duration(&t)?;
    u64::try_from(d.as_nanos()).map_err(|_| "too large".into())
}

// ---------------------------------------------------------------------------------------
// Applying the configuration
// ---------------------------------------------------------------------------------------

/// The findings the check judges: the report's plus budget findings, minus disabled
/// rules, with severity overrides applied (to budget findings too), most severe first.
pub fn apply(config: &Config, report: &Report) -> Vec<Finding> {
    let inconclusive = report.lost_events.inconclusive();
    let mut all = report.findings.clone();
    all.extend(budget_findings(&config.budgets, report, inconclusive));
    let mut out: Vec<Finding> = all
        .into_iter()
        .filter(|f| !config.disabled.contains(&f.rule))
        .map(|mut f| {
            if let Some(sev) = config.severity.get(&f.rule) {
                f.severity = *sev;
            }
            f
        })
        .collect();
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

fn budget_findings(b: &Budgets, report: &Report, inconclusive: bool) -> Vec<Finding> {
    let mut out = latency_budget(b, report);
    out.extend(in_flight_budget(b, report));
    out.extend(iowq_budget(b, report));
    for f in &mut out {
        f.inconclusive = inconclusive;
    }
    out
}

fn budget_finding(rule: RuleId, message: String, facts: Vec<Fact>) -> Finding {
    Finding {
        rule,
        severity: rule.rule().severity,
        pid: 0,
        comm: String::new(),
        ring: 0,
        message,
        fix: rule.rule().fix.into(),
        occurrences: 1,
        evidence: Evidence {
            requests: vec![],
            facts,
            first_ns: 0,
            last_ns: 0,
        },
        inconclusive: false,
    }
}

fn fact(name: &str, value: FactValue) -> Fact {
    Fact::new(name, value)
}

fn latency_budget(b: &Budgets, report: &Report) -> Vec<Finding> {
    let over = report.latency.iter().filter_map(|l| {
        let budget = *b.p99_latency_ns.get(&l.opcode.to_ascii_uppercase())?;
        (l.p99_ns > budget).then_some((l, budget))
    });
    over.map(|(l, budget)| {
        let message = format!(
            "{} p99 latency is {}, above the budget of {} ({} requests)",
            l.opcode,
            human_ns(l.p99_ns),
            human_ns(budget),
            l.count
        );
        let facts = vec![
            fact("opcode", FactValue::Text(l.opcode.clone())),
            fact("p99", FactValue::Ns(l.p99_ns)),
            fact("budget", FactValue::Ns(budget)),
            fact("p50", FactValue::Ns(l.p50_ns)),
            fact("max", FactValue::Ns(l.max_ns)),
            fact("requests", FactValue::Count(l.count)),
        ];
        budget_finding(RuleId::BudgetP99Latency, message, facts)
    })
    .collect()
}

fn in_flight_budget(b: &Budgets, report: &Report) -> Vec<Finding> {
    let Some(max) = b.max_in_flight else {
        return vec![];
    };
    let over = report.rings.iter().filter(|r| r.max_in_flight > max);
    over.map(|r| {
        let message = format!(
            "ring {} had {} requests in flight at peak, above the budget of {max}",
            r.ring, r.max_in_flight
        );
        let mut facts = vec![
            fact("max_in_flight", FactValue::Count(r.max_in_flight)),
            fact("budget", FactValue::Count(max)),
        ];
        if let Some(cq) = r.cq_entries {
            facts.push(fact("cq_entries", FactValue::Count(cq.into())));
        }
        let mut f = budget_finding(RuleId::BudgetInFlight, message, facts);
        let ring = u64::from_str_radix(r.ring.trim_start_matches("0x"), 16).unwrap_or(0);
        (f.pid, f.comm, f.ring) = (r.pid, r.comm.clone(), ring);
        f
    })
    .collect()
}

/// Workers are counted per process; rings only carry their owner's count, so one
/// finding per process. A count seen for no ring's process still fails, unattributed.
fn iowq_budget(b: &Budgets, report: &Report) -> Vec<Finding> {
    let Some(max) = b.max_iowq_workers else {
        return vec![];
    };
    let mut per_pid: BTreeMap<u32, (&str, u64)> = BTreeMap::new();
    for r in &report.rings {
        let e = per_pid.entry(r.pid).or_insert((r.comm.as_str(), 0));
        e.1 = e.1.max(r.iowq_workers);
    }
    let mut out: Vec<Finding> = per_pid
        .into_iter()
        .filter(|(_, (_, n))| *n > max)
        .map(|(pid, (comm, n))| iowq_finding(Some((pid, comm)), n, max))
        .collect();
    if out.is_empty() && report.max_iowq_workers > max {
        out.push(iowq_finding(None, report.max_iowq_workers, max));
    }
    out
}

fn iowq_finding(owner: Option<(u32, &str)>, n: u64, max: u64) -> Finding {
    let whose = match owner {
        Some((pid, comm)) => format!("process {pid} ({comm})"),
        None => "a process".to_string(),
    };
    let message = format!("{whose} had {n} io-wq workers alive at once, above the budget of {max}");
    let facts = vec![
        fact("iowq_workers", FactValue::Count(n)),
        fact("budget", FactValue::Count(max)),
    ];
    let mut f = budget_finding(RuleId::BudgetIowqWorkers, message, facts);
    if let Some((pid, comm)) = owner {
        (f.pid, f.comm) = (pid, comm.to_string());
    }
    f
}

// ---------------------------------------------------------------------------------------
// Verdict
// ---------------------------------------------------------------------------------------

/// Ordered so that combining files is `max`: one failing file fails the run, else one
/// inconclusive file makes it inconclusive (the same precedence as [`verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Pass,
    Inconclusive,
    Fail,
}

impl Verdict {
    /// Process exit code: 0 pass, 1 fail, 2 inconclusive.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Inconclusive => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

fn fails(f: &Finding, fail_on: Severity) -> bool {
    f.severity >= fail_on
}

/// Fail beats Inconclusive: lost events can hide problems, but they cannot invent the
/// ones that were seen, so a trace with drops and failing findings fails. Only a trace
/// that would pass is downgraded to inconclusive, since it cannot prove the absence of
/// problems.
pub fn verdict(config: &Config, findings: &[Finding], lost: &LostEvents) -> Verdict {
    if findings.iter().any(|f| fails(f, config.fail_on)) {
        Verdict::Fail
    } else if lost.inconclusive() {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    }
}

// ---------------------------------------------------------------------------------------
// JUnit
// ---------------------------------------------------------------------------------------

/// Escapes text for XML attributes and content. Characters XML 1.0 forbids (most
/// control characters, which a comm can hold) become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// One testcase: its XML, and whether it failed / errored.
struct Case {
    xml: String,
    failed: bool,
    errored: bool,
}

fn rule_case(slug: &str, findings: &[&Finding], fail_on: Severity) -> Case {
    let (failing, other): (Vec<&Finding>, Vec<&Finding>) =
        findings.iter().partition(|f| fails(f, fail_on));
    let mut xml = format!(
        "    <testcase classname=\"uringtrace\" name=\"{}\"",
        xml_escape(slug)
    );
    if failing.is_empty() && other.is_empty() {
        xml.push_str("/>\n");
        return Case {
            xml,
            failed: false,
            errored: false,
        };
    }
    xml.push_str(">\n");
    if let Some(first) = failing.first() {
        let message = match failing.len() {
            1 => first.message.clone(),
            n => format!("{n} findings; first: {}", first.message),
        };
        let severity = failing.iter().map(|f| f.severity).max().unwrap_or(fail_on);
        let _ = writeln!(
            xml,
            "      <failure message=\"{}\" type=\"{}\">{}</failure>",
            xml_escape(&message),
            severity.name(),
            xml_escape(&findings_body(&failing))
        );
    }
    if !other.is_empty() {
        // Below fail_on: shown, not failing.
        let _ = writeln!(
            xml,
            "      <system-out>{}</system-out>",
            xml_escape(&findings_body(&other))
        );
    }
    xml.push_str("    </testcase>\n");
    Case {
        xml,
        failed: !failing.is_empty(),
        errored: false,
    }
}

fn findings_body(findings: &[&Finding]) -> String {
    findings
        .iter()
        .map(|f| finding_text(f))
        .collect::<Vec<_>>()
        .join("\n")
}

fn lost_case(lost: &LostEvents) -> Case {
    let mut xml = String::from("    <testcase classname=\"uringtrace\" name=\"lost-events\"");
    if !lost.inconclusive() {
        xml.push_str("/>\n");
        return Case {
            xml,
            failed: false,
            errored: false,
        };
    }
    let message = match lost.known {
        false => {
            "lost events unknown: the recording did not end cleanly; verdicts are inconclusive"
                .to_string()
        }
        true => format!(
            "{} events were lost in the kernel ring buffer; verdicts are inconclusive",
            lost.total
        ),
    };
    let body = format!(
        "total: {}\nper_cpu: {:?}\nknown: {}",
        lost.total, lost.per_cpu, lost.known
    );
    let _ = writeln!(
        xml,
        ">\n      <error message=\"{}\" type=\"inconclusive\">{}</error>\n    </testcase>",
        xml_escape(&message),
        xml_escape(&body)
    );
    Case {
        xml,
        failed: false,
        errored: true,
    }
}

/// The testcases of one file: every rule of the catalog (so a rule that stops firing
/// shows as fixed), then lost-events.
fn file_cases(findings: &[Finding], lost: &LostEvents, fail_on: Severity) -> Vec<Case> {
    let mut cases: Vec<Case> = RuleId::ALL
        .iter()
        .map(|id| {
            let of_rule: Vec<&Finding> = findings.iter().filter(|f| f.rule == *id).collect();
            rule_case(id.slug(), &of_rule, fail_on)
        })
        .collect();
    cases.push(lost_case(lost));
    cases
}

#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
}

impl Counts {
    fn of(cases: &[Case]) -> Counts {
        Counts {
            tests: cases.len(),
            failures: cases.iter().filter(|c| c.failed).count(),
            errors: cases.iter().filter(|c| c.errored).count(),
        }
    }

    fn attrs(&self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\"",
            self.tests, self.failures, self.errors
        )
    }
}

/// JUnit XML for CI: one testsuite per checked file, one testcase per rule (failing
/// when the rule has findings at or above `fail_on`) and a `lost-events` testcase that
/// errors when lost events make the trace inconclusive. `findings` should be the output
/// of [`apply`].
pub fn junit(results: &[(String, Vec<Finding>, LostEvents)], fail_on: Severity) -> String {
    let mut total = Counts::default();
    let mut suites = String::new();
    for (file, findings, lost) in results {
        let cases = file_cases(findings, lost, fail_on);
        let counts = Counts::of(&cases);
        total.tests += counts.tests;
        total.failures += counts.failures;
        total.errors += counts.errors;
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{}\" {} skipped=\"0\">",
            xml_escape(file),
            counts.attrs()
        );
        for c in &cases {
            suites.push_str(&c.xml);
        }
        suites.push_str("  </testsuite>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"uringtrace check\" {}>\n{suites}</testsuites>\n",
        total.attrs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::render::tests::{finding, report};
    use crate::analyzer::report::OpLatency;

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
        let c = Config::parse("[budgets.p99_latency]\nREAD = \"10us\"\nWRITE = \"1ms\"")
            .expect("valid");
        let out = apply(&c, &r);
        assert_eq!(slugs(&out), ["budget-p99-latency"]);
        let f = &out[0];
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.message.contains("READ")
                && f.message.contains("12.3µs")
                && f.message.contains("10µs"),
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
    fn xml_escaping() {
        assert_eq!(
            xml_escape(r#"a&b<c>d"e'f"#),
            "a&amp;b&lt;c&gt;d&quot;e&apos;f"
        );
        assert_eq!(xml_escape("x\u{1}y\nz"), "x\u{FFFD}y\nz");
    }

    #[test]
    fn junit_counts_and_escapes() {
        let findings = vec![
            finding("wait-cycle", Severity::Error),
            finding("wait-cycle", Severity::Error),
            finding("multishot-terminated", Severity::Info),
        ];
        let lossy = LostEvents {
            total: 3,
            per_cpu: vec![3],
            known: true,
        };
        let clean = LostEvents {
            total: 0,
            per_cpu: vec![0],
            known: true,
        };
        let results = vec![
            ("traces/a&b.utr".to_string(), findings, lossy),
            ("clean.utr".to_string(), vec![], clean),
        ];
        let x = junit(&results, Severity::Warning);
        let n = RuleId::ALL.len() + 1;
        assert!(
            x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"),
            "{x}"
        );
        assert!(
            x.contains(&format!(
                "<testsuites name=\"uringtrace check\" tests=\"{}\" failures=\"1\" errors=\"1\">",
                2 * n
            )),
            "{x}"
        );
        assert!(
            x.contains(&format!(
                "<testsuite name=\"traces/a&amp;b.utr\" tests=\"{n}\" failures=\"1\" errors=\"1\""
            )),
            "{x}"
        );
        assert!(
            x.contains(&format!(
                "<testsuite name=\"clean.utr\" tests=\"{n}\" failures=\"0\" errors=\"0\""
            )),
            "{x}"
        );
        assert!(x.contains("<failure message=\"2 findings; first: wait-cycle happened | with a pipe &amp; &lt;angle&gt; &quot;quotes&quot;\" type=\"error\">"), "{x}");
        assert!(x.contains("<testcase classname=\"uringtrace\" name=\"cq-overflow\"/>"));
        assert!(x.contains("<error message=\"3 events were lost"), "{x}");
        // Info is below fail_on: reported, not failing.
        assert!(
            x.contains("<system-out>  INFO    multishot-terminated"),
            "{x}"
        );
        // No raw specials survive in the message text.
        assert!(!x.contains("<angle>"));
        assert_eq!(x.matches("<testcase ").count(), 2 * n);
    }
}
