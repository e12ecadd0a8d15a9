//! `sqpoll-idle-spin`: metadata, explanation and detector.

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, ms, ns, Hit};
use crate::analyzer::finding::Evidence;
use crate::analyzer::finding::Severity;
use crate::analyzer::state::{RingSamples, State};

pub const RULE: Rule = Rule {
    id: RuleId::SqpollIdleSpin,
    slug: "sqpoll-idle-spin",
    severity: Severity::Warning,
    title: "an SQPOLL thread burns CPU with no work",
    fix: "lower sq_thread_idle (io_uring_params.sq_thread_idle, in ms) so the thread sleeps when idle, or drop SQPOLL for bursty work",
    needs: &[Need::FdinfoSqTimes],
    degraded_reason: "needs SqTotalTime and SqWorkTime in the ring's fdinfo (6.9+)",
    explanation: "\
An SQPOLL thread keeps looping while it has work, IOPOLL requests or task_work, and then
for sq_thread_idle ms more (io_uring_params.sq_thread_idle, default 1000 ms) before it
sleeps. During that time it spins on a CPU at 100%, whether SQEs arrive or not. A ring
that gets a request every few hundred ms never sleeps at all. A thread shared through
IORING_SETUP_ATTACH_WQ uses the largest idle time of its rings. With a very large
sq_thread_idle one thread was measured using 87% of a CPU while doing nothing.

In a trace: since 6.9 the ring's fdinfo shows SqTotalTime growing while SqWorkTime does
not; uringtrace samples both every 100 ms and judges a sliding window of at least 500
ms: the thread ran half of it or more (or a tenth, when the scheduler shows it never went
to sleep in the window: on a loaded CPU a spinner gets less than half), and under 5% of
that with work. A thread that
spins for its sq_thread_idle after each burst and then sleeps is the design, and so is
one that submits at least every 10 ms on average. Before 6.9
fdinfo has neither time and this detector is degraded.

Typical causes: sq_thread_idle set to seconds \"for latency\"; SQPOLL used for a ring with
sparse or bursty traffic; one ring with a large idle time sharing a thread with others.

What to change: lower sq_thread_idle to about the gap between bursts (a few ms is common);
use SQPOLL only on rings with sustained submission rates and submit with io_uring_enter
elsewhere; if spinning is intended, pin the thread with IORING_SETUP_SQ_AFF and
sq_thread_cpu on a CPU reserved for it, and account for that CPU.",
};

/// An SQPOLL thread that ran most of a sliding window (fdinfo SqTotalTime, 6.9+) with
/// almost no work (SqWorkTime).
pub fn on_spin(st: &State, tgid: u32, fd: u32, s: &RingSamples) -> Option<Hit> {
    let (&(a, sub_a), &(b, sub_b)) = (s.window.front()?, s.window.back()?);
    let wall_us = b.ts_ns.saturating_sub(a.ts_ns) / 1000;
    let total_us = b.state.sq_total_us.saturating_sub(a.state.sq_total_us);
    let work_us = b.state.sq_work_us.saturating_sub(a.state.sq_work_us);
    let msg = format!(
        "SQPOLL thread {} ran {:.0}% of {} with no work ({} µs of {} µs busy)",
        b.state.sq_thread.unwrap_or(0),
        100.0 * total_us as f64 / wall_us.max(1) as f64,
        ms(wall_us * 1000),
        work_us,
        total_us
    );
    let e = Evidence {
        requests: vec![],
        facts: vec![
            count("sq_total_time_us", total_us),
            count("sq_work_time_us", work_us),
            ns("window", wall_us * 1000),
            count("ring_fd", fd.into()),
            count("submissions", sub_b.saturating_sub(sub_a)),
        ],
        first_ns: a.ts_ns,
        last_ns: b.ts_ns,
    };
    Some(hit(
        st,
        RuleId::SqpollIdleSpin,
        tgid,
        st.ring_by_fd(tgid, fd).unwrap_or(0),
        fd,
        msg,
        e,
    ))
}
