//! `task-work-stalled`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, ms, ns, req_ev, text, Hit};
use crate::analyzer::finding::{Evidence, Severity};
use crate::analyzer::state::{State, TaskWorkEnd, TaskWorkWait};
use crate::analyzer::AnalyzerConfig;

pub const RULE: Rule = Rule {
    id: RuleId::TaskWorkStalled,
    slug: "task-work-stalled",
    severity: Severity::Warning,
    title: "completions wait for a ring owner that is blocked elsewhere",
    fix: "never block the thread that owns a DEFER_TASKRUN or COOP_TASKRUN ring outside io_uring_enter: wait for everything through the ring (POLL_ADD, FUTEX_WAIT, timeouts) or move blocking calls to another thread",
    needs: &[Need::Event(EventKind::TaskAdd), Need::Event(EventKind::LocalWorkRun)],
    degraded_reason: "needs io_uring_task_add and io_uring_local_work_run (6.1+, as DEFER_TASKRUN itself); before, only COOP_TASKRUN rings (5.19+) are followed, through their completions",
    explanation: "\
When a request waits for readiness (a socket or pipe READ, RECV, ACCEPT), its poll wakeup
does not complete it: it queues task work (io_uring_task_add) that the request's task
must run. On a plain ring that interrupts the task, even in another syscall. Not with
IORING_SETUP_COOP_TASKRUN (5.19): the work waits until the task enters the kernel on its
own. With IORING_SETUP_DEFER_TASKRUN (6.1) it runs only when the owner calls
io_uring_enter with GETEVENTS (or waits on the ring). Either way, an owner blocked in
another syscall (read, poll, a lock, sleep) leaves completed I/O unreported for as long.

In a trace: io_uring_task_add for a request of such a ring, then nothing from its owner
until io_uring_local_work_run (6.1+), io_uring_task_work_run (6.0+) or the completion,
posted by the owner. uringtrace reports queued work its owner did not run within 500 ms
(twice the longest busy event-loop iteration measured) and says whether the owner was in
io_uring_enter meanwhile. An event loop that waits in io_uring_enter runs the work at
once; one that computes between waits runs it within an iteration.

Typical causes: a blocking call (file read, DNS lookup, mutex, sleep) on the event-loop
thread; a thread that owns a DEFER_TASKRUN ring but waits on epoll or a condition
variable instead of the ring; a ring created on one thread and reaped by another.

What to change: do all waiting of the owner through the ring, or run the blocking work on
another thread and signal the ring (MSG_RING, an eventfd read by POLL_ADD); when the owner
must block elsewhere, drop DEFER_TASKRUN and COOP_TASKRUN so the kernel interrupts it.",
};

/// What the owner did while the work waited, from its io_uring_enter calls.
fn owner_state(w: &TaskWorkWait, until_ns: u64) -> String {
    if w.owner_waiting {
        return "the owner was waiting in io_uring_enter(GETEVENTS) when it was queued".into();
    }
    match w.owner_entered_ns {
        Some(t) => format!(
            "the owner stayed outside io_uring_enter for {} (blocked or busy elsewhere)",
            ms(t.saturating_sub(w.since_ns))
        ),
        None => format!(
            "the owner did not enter io_uring_enter in {} (blocked or busy elsewhere)",
            ms(until_ns.saturating_sub(w.since_ns))
        ),
    }
}

/// A wait for the owner that lasted at least the threshold: ended (`end` Some) or
/// still open at `until_ns`.
pub fn on_wait(st: &State, w: &TaskWorkWait, until_ns: u64, end: Option<TaskWorkEnd>) -> Hit {
    let waited = until_ns.saturating_sub(w.since_ns);
    let how = match end {
        Some(TaskWorkEnd::Ran) => format!("waited {} before the owner ran it", ms(waited)),
        Some(TaskWorkEnd::RingGone) => {
            format!("waited {} and was cancelled with its ring", ms(waited))
        }
        None => format!("has waited {} so far", ms(waited)),
    };
    let flag = if w.deferred {
        "DEFER_TASKRUN"
    } else {
        "COOP_TASKRUN"
    };
    let owner = match st.comm_of(w.owner) {
        c if c.is_empty() => format!("thread {}", w.owner),
        c => format!("thread {} ({c})", w.owner),
    };
    let msg = format!(
        "{} completion{} queued to {owner}, owner of a {flag} ring, {how}: {}",
        w.queued,
        if w.queued == 1 { "" } else { "s" },
        owner_state(w, until_ns)
    );
    let mut facts = vec![
        count("queued", w.queued),
        ns("waited", waited),
        count("owner_tid", w.owner.into()),
        text("ring_mode", flag),
        text(
            "owner_in_io_uring_enter",
            if w.owner_waiting { "yes" } else { "no" },
        ),
    ];
    if let Some(t) = w.owner_entered_ns {
        facts.push(ns("owner_entered_after", t.saturating_sub(w.since_ns)));
    }
    let ended = end.map(|_| until_ns);
    let requests = w
        .user_data_queued
        .iter()
        .take(crate::analyzer::finding::MAX_EXAMPLE_REQUESTS)
        .map(|(ud, op)| req_ev(*ud, *op, None, "queued", None, ended))
        .collect();
    hit(
        st,
        RuleId::TaskWorkStalled,
        w.tgid,
        w.ctx,
        w.deferred,
        msg,
        Evidence {
            requests,
            facts,
            first_ns: w.since_ns,
            last_ns: until_ns,
        },
    )
}

/// Work still waiting for its owner at `now`, past the threshold.
pub fn pending(st: &State, cfg: &AnalyzerConfig, now: u64) -> Vec<Hit> {
    let mut waits: Vec<&TaskWorkWait> = st
        .task_work
        .values()
        .filter(|w| now.saturating_sub(w.since_ns) >= cfg.task_work_stall_ns)
        .collect();
    waits.sort_by_key(|w| (w.since_ns, w.ctx, w.owner));
    waits
        .into_iter()
        .map(|w| on_wait(st, w, now, None))
        .collect()
}
