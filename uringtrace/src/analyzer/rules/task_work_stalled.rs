//! `task-work-stalled`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, int, ms, ns, req_ev, text, Hit};
use crate::analyzer::finding::{Evidence, Severity};
use crate::analyzer::state::{State, TaskWorkEnd, TaskWorkWait};
use crate::analyzer::AnalyzerConfig;
use crate::display::comm_str;
use uringtrace_common::view::TaskState;

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

/// Names of the syscalls an event-loop thread commonly blocks in, by number on this
/// architecture (recordings are read where they are made, as a rule).
fn syscall_name(nr: i32) -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    const TABLE: &[(i32, &str)] = &[
        (0, "read"),
        (1, "write"),
        (7, "poll"),
        (17, "pread64"),
        (23, "select"),
        (34, "pause"),
        (35, "nanosleep"),
        (43, "accept"),
        (45, "recvfrom"),
        (47, "recvmsg"),
        (61, "wait4"),
        (74, "fsync"),
        (202, "futex"),
        (230, "clock_nanosleep"),
        (232, "epoll_wait"),
        (270, "pselect6"),
        (271, "ppoll"),
        (281, "epoll_pwait"),
        (288, "accept4"),
        (426, "io_uring_enter"),
        (441, "epoll_pwait2"),
    ];
    #[cfg(target_arch = "aarch64")]
    const TABLE: &[(i32, &str)] = &[
        (22, "epoll_pwait"),
        (63, "read"),
        (64, "write"),
        (72, "pselect6"),
        (73, "ppoll"),
        (98, "futex"),
        (101, "nanosleep"),
        (115, "clock_nanosleep"),
        (202, "accept"),
        (207, "recvfrom"),
        (212, "recvmsg"),
        (242, "accept4"),
        (426, "io_uring_enter"),
    ];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const TABLE: &[(i32, &str)] = &[];
    TABLE.iter().find(|(n, _)| *n == nr).map(|(_, s)| *s)
}

/// The owner's scheduler state as /proc showed it: "asleep (S) in read(2), wchan
/// pipe_read, 300.0 ms into the wait".
pub fn seen_text(s: &TaskState, at_ns: u64, since_ns: u64) -> String {
    let state = match s.state {
        b'R' => "running",
        b'S' => "asleep",
        b'D' => "in uninterruptible sleep",
        b'T' | b't' => "stopped",
        b'Z' | b'X' => "exiting",
        b'I' => "idle",
        _ => "in state",
    };
    let mut out = format!("{state} ({})", char::from(s.state));
    match (s.syscall, syscall_name(s.syscall)) {
        (-1, _) => {}
        (_, Some(name)) => out.push_str(&format!(" in {name}(2)")),
        (nr, None) => out.push_str(&format!(" in syscall {nr}")),
    }
    let wchan = comm_str(&s.wchan);
    if !wchan.is_empty() {
        out.push_str(&format!(", wchan {wchan}"));
    }
    out.push_str(&format!(
        ", {} into the wait",
        ms(at_ns.saturating_sub(since_ns))
    ));
    out
}

/// What the owner did while the work waited: from /proc when userspace sampled it,
/// and from its io_uring_enter calls.
fn owner_state(w: &TaskWorkWait, until_ns: u64) -> String {
    let entered = entered_text(w, until_ns);
    match w.owner_seen {
        Some((s, at)) => format!(
            "{entered}; /proc showed it {}",
            seen_text(&s, at, w.since_ns)
        ),
        None => entered,
    }
}

fn entered_text(w: &TaskWorkWait, until_ns: u64) -> String {
    if w.owner_waiting {
        return "the owner was waiting in io_uring_enter(GETEVENTS) when it was queued".into();
    }
    if w.owner_waiting_elsewhere {
        let away = w.owner_entered_ns.unwrap_or(until_ns);
        return format!(
            "the owner was waiting in io_uring_enter on another ring (a wait that does not \
             run this ring's work) for {}",
            ms(away.saturating_sub(w.since_ns))
        );
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
    if let Some((s, at)) = w.owner_seen {
        facts.push(text("owner_state", char::from(s.state).to_string()));
        facts.push(int("owner_syscall", s.syscall.into()));
        facts.push(text("owner_wchan", comm_str(&s.wchan)));
        facts.push(ns("owner_state_read_after", at.saturating_sub(w.since_ns)));
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
