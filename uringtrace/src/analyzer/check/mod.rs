//! `uringtrace check`: the CI gate's policy. A `uringtrace.toml` ([`Config`]) turns a
//! report's findings into a verdict: rules disabled or re-graded, budgets added
//! ([`apply`]), then pass, fail or inconclusive ([`verdict`]). Pure: the command reads
//! the files, and `crate::output` formats the result (JUnit among others).
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

mod budgets;
mod config;
mod de;
#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
mod verdict;

pub use config::{Budgets, Config, ConfigError};
pub use verdict::{fails, verdict, Verdict};

use super::finding::Finding;
use super::report::Report;

/// The findings the check judges: the report's plus budget findings, minus disabled
/// rules, with severity overrides applied (to budget findings too), most severe first.
pub fn apply(config: &Config, report: &Report) -> Vec<Finding> {
    let inconclusive = report.lost_events.inconclusive();
    let mut all = report.findings.clone();
    all.extend(budgets::findings(&config.budgets, report, inconclusive));
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
