//! The check's configuration, `uringtrace.toml`, in two passes. serde takes the file's
//! shape: every key must be known and of the right type, so a typo is an error naming
//! the key, not a silently ignored setting that lets CI pass. Then [`RawConfig::validate`]
//! checks what serde cannot: rule names, severities, opcodes and durations.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::de::{self, DeError, DeErrorKind};
use crate::analyzer::finding::Severity;
use crate::analyzer::rules::{self, RuleId};
use crate::names::{opcode_from_name, opcode_name};

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
    UnknownKey { key: String, expected: String },
    #[error("`{key}` must be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("`{key}`: {message}")]
    Invalid { key: String, message: String },
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

impl Config {
    /// Parses the text of a `uringtrace.toml`: its shape, then its names and values.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let raw: RawConfig = de::from_value(toml::Value::Table(table)).map_err(shape_error)?;
        raw.validate()
    }
}

/// The file as written. Field order is the order the error for an unknown key lists
/// them in.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    fail_on: Option<String>,
    rules: RawRules,
    budgets: RawBudgets,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRules {
    disable: Vec<String>,
    severity: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBudgets {
    max_in_flight: Option<u64>,
    max_iowq_workers: Option<u64>,
    p99_latency: BTreeMap<String, String>,
}

const SEVERITY_STRING: &str = "a severity string: \"info\", \"warning\" or \"error\"";

/// What the value at `path` must be, in the words of the error: the one place that
/// knows the types of [`RawConfig`] by key.
fn expected_type(path: &[String]) -> &'static str {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match path[..] {
        ["fail_on"] | ["rules", "severity", _] => SEVERITY_STRING,
        ["rules", "disable"] => "an array of rule names",
        ["budgets", "max_in_flight" | "max_iowq_workers"] => "a non-negative integer",
        ["budgets", "p99_latency", _] => "a duration string such as \"2ms\"",
        ["rules" | "budgets"] | ["rules", "severity"] | ["budgets", "p99_latency"] => "a table",
        _ => "of the type `uringtrace check --help` shows",
    }
}

fn shape_error(e: DeError) -> ConfigError {
    let key = e.path.join(".");
    match e.kind {
        DeErrorKind::UnknownKey { expected } => ConfigError::UnknownKey {
            key,
            expected: expected.join(", "),
        },
        DeErrorKind::WrongType => ConfigError::WrongType {
            expected: expected_type(&e.path),
            key,
        },
        DeErrorKind::Other(message) => ConfigError::Invalid { key, message },
    }
}

impl RawConfig {
    /// The second pass: names and values serde cannot check. The sections go in the
    /// order of their keys (budgets, fail_on, rules), the order of a parsed table, so of
    /// several errors the first key's is reported.
    fn validate(self) -> Result<Config, ConfigError> {
        let budgets = self.budgets.validate()?;
        let fail_on = match &self.fail_on {
            Some(s) => severity("fail_on", s)?,
            None => Config::default().fail_on,
        };
        let disabled = self
            .rules
            .disable
            .iter()
            .map(|slug| known_rule("rules.disable", slug))
            .collect::<Result<_, _>>()?;
        let severity = self
            .rules
            .severity
            .iter()
            .map(|(slug, value)| {
                let key = format!("rules.severity.{slug}");
                Ok((known_rule(&key, slug)?, self::severity(&key, value)?))
            })
            .collect::<Result<_, _>>()?;
        Ok(Config {
            fail_on,
            disabled,
            severity,
            budgets,
        })
    }
}

impl RawBudgets {
    fn validate(self) -> Result<Budgets, ConfigError> {
        let p99_latency_ns = self
            .p99_latency
            .iter()
            .map(|(name, text)| {
                let key = format!("budgets.p99_latency.{name}");
                let op = canonical_opcode(&key, name)?;
                let ns = parse_budget_ns(text).map_err(|reason| ConfigError::BadDuration {
                    key: key.clone(),
                    value: text.clone(),
                    reason,
                })?;
                Ok((op, ns))
            })
            .collect::<Result<_, _>>()?;
        Ok(Budgets {
            max_in_flight: self.max_in_flight,
            max_iowq_workers: self.max_iowq_workers,
            p99_latency_ns,
        })
    }
}

fn severity(key: &str, value: &str) -> Result<Severity, ConfigError> {
    Severity::parse(value).ok_or_else(|| ConfigError::UnknownSeverity {
        key: key.into(),
        value: value.into(),
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
