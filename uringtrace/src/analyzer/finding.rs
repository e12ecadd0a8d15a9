//! Findings: what the analyzer concludes, with the evidence that shows it.
//!
//! Evidence is typed (counts and durations are numbers, the ring is a pointer value) and
//! becomes text only when a view renders it ([`FactValue`]'s `Display`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::report::Nullable;
use super::rules::RuleId;
use crate::names::{opcode_from_name, opcode_name, result_from_name, result_name};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// One request named in a finding. In JSON the opcode and result are names ("READ",
/// "-ECANCELED"); here they are the kernel's numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(description = "One request named in a finding.")]
pub struct RequestEvidence {
    pub user_data: u64,
    #[serde(serialize_with = "opcode_out", deserialize_with = "opcode_in")]
    #[schemars(
        with = "String",
        description = "The opcode by name (\"READ\", \"LINK_TIMEOUT\"; \"OP_N\" for one this build does not know)."
    )]
    pub opcode: u8,
    /// The CQE's result, or None while in flight.
    #[serde(serialize_with = "result_out", deserialize_with = "result_in")]
    #[schemars(
        with = "Nullable<String>",
        description = "The CQE's result: \"0\", a byte count, or an errno name (\"-ECANCELED\"); null while in flight."
    )]
    pub result: Option<i32>,
    /// Role in the finding: "breaker", "cancelled", "waiting", "never issued", ...
    pub role: String,
    /// Monotonic ns of the request's submission, when seen.
    #[schemars(with = "Nullable<u64>")]
    pub submitted_ns: Option<u64>,
    #[schemars(with = "Nullable<u64>")]
    pub completed_ns: Option<u64>,
}

impl RequestEvidence {
    pub fn opcode_name(&self) -> String {
        opcode_name(self.opcode).into_owned()
    }

    /// The result by name, or "in flight".
    pub fn result_text(&self) -> String {
        self.result.map_or_else(|| "in flight".into(), result_name)
    }
}

fn opcode_out<S: Serializer>(op: &u8, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&opcode_name(*op))
}

fn opcode_in<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let s = String::deserialize(d)?;
    opcode_from_name(&s)
        .or_else(|| s.strip_prefix("OP_").and_then(|n| n.parse().ok()))
        .ok_or_else(|| serde::de::Error::custom(format!("unknown opcode {s:?}")))
}

fn result_out<S: Serializer>(r: &Option<i32>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => s.serialize_some(&result_name(*r)),
        None => s.serialize_none(),
    }
}

fn result_in<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    result_from_name(&s)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown result {s:?}")))
}

/// A fact's value, typed. In JSON it is one key next to the fact's name
/// (`{"name": "took", "ns": 1500000000}`), so numbers stay numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FactValue {
    /// A number of things.
    Count(u64),
    /// A duration in nanoseconds.
    Ns(u64),
    /// A signed number (an fd, a setting).
    Int(i64),
    /// A kernel address or flag word, shown in hex.
    Hex(u64),
    /// A kernel result (0, a byte count, or a negative errno shown by name).
    Result(i32),
    Text(String),
}

impl fmt::Display for FactValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactValue::Count(n) => write!(f, "{n}"),
            FactValue::Ns(ns) => f.write_str(&human_duration(*ns)),
            FactValue::Int(n) => write!(f, "{n}"),
            FactValue::Hex(v) => write!(f, "{v:#x}"),
            FactValue::Result(r) => f.write_str(&result_name(*r)),
            FactValue::Text(s) => f.write_str(s),
        }
    }
}

/// "850 µs", "12.3 ms", "1.50 s": a duration for people.
pub fn human_duration(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{:.0} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Fact {
    pub name: String,
    #[serde(flatten)]
    pub value: FactValue,
}

impl Fact {
    pub fn new(name: &str, value: FactValue) -> Fact {
        Fact {
            name: name.to_string(),
            value,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// Example requests, in a meaningful order (chain order, cycle order, ...); at most
    /// [`MAX_EXAMPLE_REQUESTS`], however often the cause occurred.
    #[schemars(
        description = "Example requests, in a meaningful order (chain order, cycle order, ...); at most 16, however often the cause occurred."
    )]
    pub requests: Vec<RequestEvidence>,
    /// Other facts: counts, sizes, fds, thresholds (of the first occurrence).
    pub facts: Vec<Fact>,
    /// First and last timestamp (monotonic ns) of what the finding is about, over all
    /// its occurrences.
    pub first_ns: u64,
    pub last_ns: u64,
}

impl Evidence {
    pub fn fact(&self, name: &str) -> Option<&FactValue> {
        self.facts.iter().find(|f| f.name == name).map(|f| &f.value)
    }
}

/// How many example requests a finding keeps, however many times its cause occurred.
pub const MAX_EXAMPLE_REQUESTS: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// The rule; a kebab-case slug in JSON, e.g. `link-chain-broken`.
    pub rule: RuleId,
    pub severity: Severity,
    pub pid: u32,
    pub comm: String,
    /// The ring (`struct io_ring_ctx *`), 0 when not about one ring. In JSON a hex
    /// string, "" for none.
    #[serde(serialize_with = "ring_hex", deserialize_with = "ring_from_hex")]
    #[schemars(with = "String")]
    pub ring: u64,
    /// One line: what happened (for a cause seen many times, its first occurrence).
    pub message: String,
    /// What to change (short; `uringtrace explain RULE` has the long form).
    pub fix: String,
    /// How many times this cause was seen (requests, chains, waits, ...).
    pub occurrences: u64,
    pub evidence: Evidence,
    /// True when ring-buffer drops make this verdict uncertain.
    pub inconclusive: bool,
}

impl Finding {
    /// The ring as views show it: hex, or "" when the finding is about no one ring.
    pub fn ring_hex(&self) -> String {
        if self.ring == 0 {
            String::new()
        } else {
            format!("{:#x}", self.ring)
        }
    }
}

fn ring_hex<S: Serializer>(ring: &u64, s: S) -> Result<S::Ok, S::Error> {
    if *ring == 0 {
        s.serialize_str("")
    } else {
        s.serialize_str(&format!("{ring:#x}"))
    }
}

fn ring_from_hex<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|e| serde::de::Error::custom(format!("ring {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_numbers_in_json() {
        let f = Fact::new("took", FactValue::Ns(1_500_000_000));
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "took", "ns": 1_500_000_000u64})
        );
        assert_eq!(serde_json::from_value::<Fact>(v).unwrap(), f);
        assert_eq!(FactValue::Ns(1_500_000_000).to_string(), "1.50 s");
        assert_eq!(FactValue::Ns(12_340_000).to_string(), "12.3 ms");
        assert_eq!(FactValue::Result(-125).to_string(), "-ECANCELED");
        assert_eq!(FactValue::Hex(255).to_string(), "0xff");
    }
}
