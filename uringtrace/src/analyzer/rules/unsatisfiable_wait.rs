//! `unsatisfiable-wait`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, ms, ns, Hit};
use crate::analyzer::finding::Evidence;
use crate::analyzer::finding::Severity;
use crate::analyzer::state::{State, UnsatisfiableWait};

pub const RULE: Rule = Rule {
    id: RuleId::UnsatisfiableWait,
    slug: "unsatisfiable-wait",
    severity: Severity::Error,
    title: "a task waits for more completions than can arrive",
    fix: "wait for at most the number of completions that can still arrive (io_uring_submit_and_wait(n) with n ≤ in flight + ready), or use a timeout",
    needs: &[Need::Event(EventKind::EnterEnter), Need::Event(EventKind::CqringWait)],
    degraded_reason: "needs syscalls:sys_enter_io_uring_enter and io_uring_cqring_wait",
    explanation: "\
io_uring_enter with IORING_ENTER_GETEVENTS and min_complete = N sleeps until N CQEs are
available (N is clamped to cq_entries), a timeout expires or a signal arrives. If fewer
requests are in flight than are still needed, and no multishot request is armed, the wait
can never be satisfied and the task hangs. When the same call also submits (to_submit >
0) the failure of the wait is hidden: the call returns the number submitted.

In a trace: sys_enter_io_uring_enter with flags & 0x1 and min_complete, then
io_uring_cqring_wait (the task really sleeps), compared with the requests in flight on
that ring. The wait needs min_complete minus the CQEs already in the CQ ring (the kernel
reads the CQ head and tail at the wait); it can get one per request in flight, one per
zero-copy notification owed, and any number from a multishot request or MSG_RINGs from
other rings (those rings, SQPOLL rings and rings fed by several threads are skipped). An
idle timed sleep (nothing ready, nothing in flight) is an event loop's design. An
untimed wait is an error; a timed one a warning: it delays ready CQEs by its timeout. A
CQE is stamped when it is filled and counted ready only when the CQ tail is committed, so
one filled on a stalled CPU can look posted before a wait it arrives during: a wait that
returned success without submitting, with enough CQEs posted since the previous
io_uring_enter, is not reported.

Typical causes: a wait count computed from what was prepared rather than what was
submitted (the SQ was full, or a rejected SQE stopped the batch); requests with
IOSQE_CQE_SKIP_SUCCESS, which post no CQE when they succeed; CQEs reaped by another thread;
a request counted twice.

What to change: count in-flight requests from the value io_uring_enter (io_uring_submit)
returns, minus the CQEs you reaped; do not count requests with IOSQE_CQE_SKIP_SUCCESS;
wait for one completion at a time and reap in a loop; or bound every wait with a timeout
(IORING_ENTER_EXT_ARG with a timespec, io_uring_wait_cqes with a timeout).",
};

/// A GETEVENTS wait for more CQEs than can arrive. Untimed: an error (it hangs until
/// a signal). Timed: a warning, it delays the CQEs already ready by up to its timeout.
/// `until_ns`: when the wait ended, or None if it still waits.
pub fn on_wait(st: &State, w: &UnsatisfiableWait, until_ns: Option<u64>) -> Hit {
    let need = w.min_complete.saturating_sub(w.ready);
    let mut msg = format!(
        "waits for {} completions on a ring with {} requests in flight and {} CQEs ready: {} more can never arrive",
        w.min_complete,
        w.in_flight,
        w.ready,
        need - w.producers.min(need)
    );
    match (w.timed, until_ns) {
        (true, Some(end)) => msg.push_str(&format!(
            "; the wait's timeout delayed completions by {}",
            ms(end.saturating_sub(w.since_ns))
        )),
        (true, None) => msg.push_str("; it delays completions by up to its timeout"),
        (false, _) => msg.push_str("; with no timeout it sleeps until a signal"),
    }
    let mut facts = vec![
        count("min_complete", w.min_complete),
        count("ready", w.ready),
        count("in_flight", w.in_flight),
        count("producers", w.producers),
        count("tid", w.tid.into()),
    ];
    if let Some(end) = until_ns {
        facts.push(ns("waited", end.saturating_sub(w.since_ns)));
    }
    let e = Evidence {
        requests: vec![],
        facts,
        first_ns: w.since_ns,
        last_ns: until_ns.unwrap_or(w.since_ns),
    };
    let mut h = hit(
        st,
        RuleId::UnsatisfiableWait,
        w.tgid,
        w.ctx,
        w.timed,
        msg,
        e,
    );
    if w.timed {
        h.finding.severity = Severity::Warning;
    }
    h
}

/// Waits that cannot be satisfied and have not ended yet.
pub fn pending(st: &State, _now: u64) -> Vec<Hit> {
    st.enters
        .values()
        .filter_map(|e| e.unsatisfiable)
        .map(|w| on_wait(st, &w, None))
        .collect()
}
