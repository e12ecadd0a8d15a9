//! `check --format json`: the verdict of a run and of each file, with the findings the
//! check judged. Typed, so `uringtrace schema check` is derived from what is printed.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::analyzer::check::Verdict;
use crate::analyzer::finding::Finding;
use crate::analyzer::report::LostEvents;

/// The whole document: the run's verdict and one entry per checked file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CheckJson {
    /// The run's verdict: "fail" if any file fails, else "inconclusive" if any file is,
    /// else "pass" (exit codes 1, 2, 0).
    pub verdict: Verdict,
    /// One entry per recording, in the order given.
    pub files: Vec<CheckedFile>,
}

/// One checked recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CheckedFile {
    /// The recording's path, as given on the command line.
    pub file: String,
    /// This file's verdict.
    pub verdict: Verdict,
    /// The findings the check judged: the report's plus budget findings, minus disabled
    /// rules, with severity overrides applied, most severe first.
    pub findings: Vec<Finding>,
    pub lost_events: LostEvents,
}

/// The document as a JSON value (keys sorted, as `diagnose --format json`'s).
pub fn check_json(doc: &CheckJson) -> Value {
    // Only string keys and plain numbers, so this cannot fail; a value that names the
    // problem is still better than a panic.
    serde_json::to_value(doc).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
}
