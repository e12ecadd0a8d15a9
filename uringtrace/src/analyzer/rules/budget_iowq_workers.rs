//! `budget-iowq-workers`: metadata, explanation and detector.

use super::{Rule, RuleId};
use crate::analyzer::finding::Severity;

pub const RULE: Rule = Rule {
    id: RuleId::BudgetIowqWorkers,
    slug: "budget-iowq-workers",
    severity: Severity::Error,
    title: "a process had more io-wq workers alive at once than its budget in uringtrace.toml",
    fix: "cap workers with IORING_REGISTER_IOWQ_MAX_WORKERS, avoid punting, or raise the budget",
    needs: &[],
    degraded_reason: "",
    explanation: "\
`uringtrace check` counts the io-wq worker threads (iou-wrk-*) each process had alive at
once during the trace (task_rename to iou-wrk-* starts one, its last sched_switch ends
it; idle workers exit after 5 s and come back) and compares the peak with
`max_iowq_workers` in the [budgets] table of uringtrace.toml. io-wq starts a new
worker whenever one blocks, up to min(sq_entries, 4 x CPUs) bounded workers and
RLIMIT_NPROC unbounded ones, so blocking requests can create hundreds of threads.

Typical causes: blocking requests on pipes, devices or buffered files; IOSQE_ASYNC on
everything; see iowq-punt-storm.

What to change: cap the workers with IORING_REGISTER_IOWQ_MAX_WORKERS (5.15+), avoid
punting (see iowq-punt-storm), or raise the budget if the parallelism is intended.",
};
