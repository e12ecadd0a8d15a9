//! The verdict of one checked trace, and how verdicts combine.

use super::Config;
use crate::analyzer::finding::{Finding, Severity};
use crate::analyzer::report::LostEvents;

/// Ordered so that combining files is `max`: one failing file fails the run, else one
/// inconclusive file makes it inconclusive (the same precedence as [`verdict`]).
/// In JSON the lower-case name ([`Verdict::name`]).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema,
)]
#[schemars(
    description = "pass (exit 0), fail (exit 1: a finding at or above fail_on), inconclusive (exit 2: events were lost, so absence of problems is unproven)."
)]
#[serde(rename_all = "lowercase")]
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

/// Whether `f` fails a check that fails on `fail_on` and above.
pub fn fails(f: &Finding, fail_on: Severity) -> bool {
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
