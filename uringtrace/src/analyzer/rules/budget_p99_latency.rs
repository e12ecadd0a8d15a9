//! `budget-p99-latency`: metadata, explanation and detector.

use super::{Rule, RuleId};
use crate::analyzer::finding::Severity;

pub const RULE: Rule = Rule {
    id: RuleId::BudgetP99Latency,
    slug: "budget-p99-latency",
    severity: Severity::Error,
    title: "an opcode's p99 latency is above its budget in uringtrace.toml",
    fix: "find what makes the opcode slow (see request-stalled, iowq-punt-storm), or raise the budget",
    needs: &[],
    degraded_reason: "",
    explanation: "\
`uringtrace check` compares measured latency with the budgets in uringtrace.toml:

    [budgets.p99_latency]
    READ = \"2ms\"

Latency is the time from a request's io_uring_submit_req to its completion
(io_uring_complete, or io_uring_cqe_overflow for an overflowed CQE), taken per opcode over
all rings and processes of the trace. The p99 is the value 99% of requests stay under;
with fewer than 100 requests it is close to the maximum, so one slow request can exceed
the budget.

Typical causes: requests punted to io-wq (see iowq-punt-storm), a slow device, CQ
overflow (see cq-overflow), a sleeping SQPOLL thread delaying submission, or requests
that legitimately wait (RECV, POLL_ADD, TIMEOUT), which should not have a latency budget.

What to change: look at the other findings of the same trace first; if the budget is too
tight for this workload or machine, raise it; for waiting opcodes remove the budget.",
};
