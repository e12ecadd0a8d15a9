//! The report as JSON.

use serde_json::Value;

use crate::analyzer::report::Report;

/// The report as JSON: the serde form of [`Report`], so it reads back into one.
/// Top-level keys: environment, rings, findings, latency, lost_events, events,
/// duration_ns, max_iowq_workers. Evidence facts are `[name, value]` pairs (ordered,
/// possibly repeated), severities lower case.
pub fn json(report: &Report) -> Value {
    // Report has only string map keys and plain numbers, so this cannot fail; a
    // value that names the problem is still better than a panic.
    serde_json::to_value(report).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
}
