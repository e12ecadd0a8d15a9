//! `budget-in-flight`: metadata, explanation and detector.

use super::{Rule, RuleId};
use crate::analyzer::finding::Severity;

pub const RULE: Rule = Rule {
    id: RuleId::BudgetInFlight,
    slug: "budget-in-flight",
    severity: Severity::Error,
    title: "a ring had more requests in flight than its budget in uringtrace.toml",
    fix: "bound requests in flight per ring (below cq_entries), or raise the budget",
    needs: &[],
    degraded_reason: "",
    explanation: "\
`uringtrace check` compares each ring's peak number of requests in flight (submitted and
not yet completed: io_uring_submit_req minus io_uring_complete and io_uring_cqe_overflow)
with `max_in_flight` in the [budgets] table of uringtrace.toml. Every request in flight
holds kernel memory and, when it completes, needs a CQE slot: with more in flight than
cq_entries the CQ can overflow (see cq-overflow).

Typical causes: submission not throttled by completions (fire and forget), a burst of
accepts or receives, requests stalled on a slow peer or device accumulating.

What to change: bound the requests in flight per ring in the application (submit only
when completions free a slot), size the CQ for the bound (IORING_SETUP_CQSIZE), find the
stalled requests (see request-stalled), or raise the budget if the load is intended.",
};
