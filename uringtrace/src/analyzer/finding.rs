//! Findings: what the analyzer concludes, with the evidence that shows it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

/// One request named in a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEvidence {
    pub user_data: u64,
    pub opcode: String,
    /// Result as a name (`-ECANCELED`), or None while in flight.
    pub result: Option<String>,
    /// Role in the finding: "breaker", "cancelled", "waiting", "never issued", ...
    pub role: String,
    /// Monotonic ns of the request's submission, when seen.
    pub submitted_ns: Option<u64>,
    pub completed_ns: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Requests involved, in a meaningful order (chain order, cycle order, ...).
    pub requests: Vec<RequestEvidence>,
    /// Other facts, as (name, value) pairs: counts, sizes, fds, thresholds.
    pub facts: Vec<(String, String)>,
    /// First and last timestamp (monotonic ns) of what the finding is about.
    pub first_ns: u64,
    pub last_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable kebab-case rule slug, e.g. `link-chain-broken`.
    pub rule: String,
    pub severity: Severity,
    pub pid: u32,
    pub comm: String,
    /// The ring (`struct io_ring_ctx *`) as hex, or "" when not about one ring.
    pub ring: String,
    /// One line: what happened here.
    pub message: String,
    /// What to change (short; `uringtrace explain RULE` has the long form).
    pub fix: String,
    pub evidence: Evidence,
    /// True when ring-buffer drops make this verdict uncertain.
    pub inconclusive: bool,
}
