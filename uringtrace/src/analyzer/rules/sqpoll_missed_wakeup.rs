//! `sqpoll-missed-wakeup`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, ms, text, Hit};
use crate::analyzer::finding::Evidence;
use crate::analyzer::finding::Severity;
use crate::analyzer::state::{RingSamples, State};

pub const RULE: Rule = Rule {
    id: RuleId::SqpollMissedWakeup,
    slug: "sqpoll-missed-wakeup",
    severity: Severity::Error,
    title: "SQEs were published while the SQPOLL thread slept, and nothing woke it",
    fix: "after publishing the SQ tail, check IORING_SQ_NEED_WAKEUP in sq_flags and call io_uring_enter with IORING_ENTER_SQ_WAKEUP (liburing's io_uring_submit does this)",
    needs: &[Need::Event(EventKind::SchedWaking), Need::Event(EventKind::Submit)],
    degraded_reason: "needs sched:sched_waking and io_uring submit",
    explanation: "\
With IORING_SETUP_SQPOLL a kernel thread polls the SQ so that the application submits
without system calls (iou-sqp-<tid>, a thread of the owning process; a kthread
io_uring-sq on 5.10 before 5.10.162). After sq_thread_idle ms without work (default 1000)
the thread sets IORING_SQ_NEED_WAKEUP (bit 0 of sq_flags), checks the SQ once more and
goes to sleep; a freshly created thread sleeps at once. From then on SQEs published by
moving the SQ tail stay in the ring until the application calls io_uring_enter with
IORING_ENTER_SQ_WAKEUP (0x2). Other events (task_work, another ring's work) also wake the
thread, so in real applications this shows up as intermittent stalls, not a hard hang.

In a trace: the SQPOLL thread's last sched_switch puts it to sleep; the ring's sampled
fdinfo then shows SqTail ahead of SqHead, while there is no io_uring_submit_req, no
sched_waking of the thread and no io_uring_enter with flags & 0x2. When something finally
wakes it, the pending SQEs are submitted in one burst after a long gap.

Typical causes: hand-written submission code that never checks sq_flags; reading sq_flags
without a full memory barrier after the tail store (the check races with the thread
going to sleep); a library path that skips io_uring_submit() because SQPOLL \"needs no
syscall\".

What to change: after publishing the SQ tail, issue a full barrier (a SeqCst fence), read
sq_flags, and when IORING_SQ_NEED_WAKEUP is set call io_uring_enter(fd, 0, 0,
IORING_ENTER_SQ_WAKEUP). With liburing, always call io_uring_submit(), which does exactly
this. Raising sq_thread_idle only hides the race and burns CPU.",
};

/// SQEs published while the SQPOLL thread slept, and nothing woke it.
pub fn on_missed(
    st: &State,
    tgid: u32,
    fd: u32,
    s: &RingSamples,
    thread_state: &str,
) -> Option<Hit> {
    let (since, last) = (s.pending_since_ns?, s.last.as_ref()?);
    let sq_tid = last.state.sq_thread.unwrap_or(0);
    let msg = format!(
        "{} SQEs have waited {} in the SQ ring (fd {fd}) while its SQPOLL thread {sq_tid} sleeps; \
         no io_uring_enter(IORING_ENTER_SQ_WAKEUP) followed",
        s.pending_sqes,
        ms(last.ts_ns.saturating_sub(since))
    );
    let e = Evidence {
        requests: vec![],
        facts: vec![
            count("sq_head", last.state.sq_head.into()),
            count("sq_tail", last.state.sq_tail.into()),
            count("pending_sqes", s.pending_sqes.into()),
            count("sqpoll_thread", sq_tid.into()),
            text("thread_state", thread_state),
            count("ring_fd", fd.into()),
        ],
        first_ns: since,
        last_ns: last.ts_ns,
    };
    Some(hit(
        st,
        RuleId::SqpollMissedWakeup,
        tgid,
        st.ring_by_fd(tgid, fd).unwrap_or(0),
        fd,
        msg,
        e,
    ))
}
