//! `cqe-dropped`: metadata, explanation and detector.

use uringtrace_common::{EventKind, Slot};

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{hit, owner, req_ev, Hit};
use crate::analyzer::finding::Evidence;
use crate::analyzer::finding::Severity;
use crate::analyzer::state::State;
use crate::names::result_name;
use uringtrace_common::RawEvent;

pub const RULE: Rule = Rule {
    id: RuleId::CqeDropped,
    slug: "cqe-dropped",
    severity: Severity::Error,
    title: "an overflow entry could not be allocated, so a CQE was lost",
    fix: "reap completions promptly and size the CQ (IORING_SETUP_CQSIZE) for the peak in flight; the next wait returns -EBADR",
    needs: &[Need::Field(EventKind::CqeOverflow, Slot::Aux)],
    degraded_reason: "no io_uring_cqe_overflow.ocqe field (added in 5.19)",
    explanation: "\
A CQE that does not fit in the CQ ring goes to an allocated overflow entry (see
`uringtrace explain cq-overflow`). If that allocation fails, the CQE is gone: the kernel
only increments the ring's overflow counter (cq.koverflow in the mapped ring) and marks the
ring, so that the next wait for completions returns -EBADR once (5.19+). Nothing tells the
application which request lost its completion. Whoever waits for that user_data waits
forever, and a provided buffer or a registered resource held by it is never given back.

In a trace: io_uring_cqe_overflow with a NULL overflow entry (ocqe == 0), 5.19+. Before
5.19 the tracepoint does not exist and drops cannot be seen.

Typical causes: always an overflow first (the CQ is full and not reaped), combined with
memory pressure or a memory cgroup at its limit, so that the allocation fails.

What to change: fix the overflow: a larger CQ (IORING_SETUP_CQSIZE), reaping all CQEs on
every pass, and fewer requests in flight than cq_entries. Handle -EBADR from io_uring_enter
or io_uring_wait_cqe: the set of outstanding requests is no longer known, so cancel
(IORING_OP_ASYNC_CANCEL with IORING_ASYNC_CANCEL_ANY) and re-issue, or tear the ring down.
Check the memory cgroup limits of the process.",
};

/// A CQE lost because its overflow entry could not be allocated.
pub fn on_dropped(st: &State, ev: &RawEvent) -> Hit {
    let msg = format!(
        "a CQE (user_data {:#x}, res {}) was lost: the overflow entry could not be allocated",
        ev.user_data,
        result_name(ev.res)
    );
    let e = Evidence {
        requests: vec![req_ev(
            ev.user_data,
            0,
            Some(ev.res),
            "dropped",
            None,
            Some(ev.ts_ns),
        )],
        facts: vec![],
        first_ns: ev.ts_ns,
        last_ns: ev.ts_ns,
    };
    hit(
        st,
        RuleId::CqeDropped,
        owner(st, ev.ctx, ev.tgid),
        ev.ctx,
        (),
        msg,
        e,
    )
}
