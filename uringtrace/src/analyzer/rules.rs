//! The rule catalog: stable slugs, default severities, one-line titles, and the long
//! explanation `uringtrace explain RULE` prints.
//!
//! Explanations are plain text wrapped at 90 columns (a test enforces it), so they print
//! as they are in a terminal. Kernel versions come from the facts checked against the
//! kernel source, 5.10 to 6.18.

use super::finding::Severity;

pub struct Rule {
    pub slug: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    /// Kernel mechanism, how it shows up in a trace, and the fix.
    pub explanation: &'static str,
}

pub fn rule(slug: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.slug == slug)
}

/// The known slug nearest to `slug` by edit distance, when it is close enough to be a
/// plausible typo (at most a third of the slug's length).
pub fn closest(slug: &str) -> Option<&'static str> {
    let (best, dist) = RULES
        .iter()
        .map(|r| (r.slug, edit_distance(slug, r.slug)))
        .min_by_key(|(_, d)| *d)?;
    (dist <= slug.chars().count().max(3) / 3).then_some(best)
}

/// Levenshtein distance over chars, with one row of memory.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = diag + usize::from(ca != *cb);
            diag = row[j + 1];
            row[j + 1] = subst.min(row[j] + 1).min(diag + 1);
        }
    }
    row[b.len()]
}

/// All slugs, comma separated, for error messages.
pub fn slug_list() -> String {
    RULES.iter().map(|r| r.slug).collect::<Vec<_>>().join(", ")
}

pub static RULES: &[Rule] = &[
    Rule {
        slug: "cq-overflow",
        severity: Severity::Warning,
        title: "CQEs went to the overflow list: the CQ is too small, or completions are not reaped",
        explanation: "\
The completion queue (CQ) is a fixed ring shared with the application, cq_entries long
(twice the SQ size unless IORING_SETUP_CQSIZE says otherwise). When a request completes
and the CQ is full, the kernel does not drop the CQE (IORING_FEAT_NODROP, 5.5+): it
allocates an overflow entry, queues it on an internal list and sets IORING_SQ_CQ_OVERFLOW
in sq_flags. While that list is non-empty every new CQE goes to it too, to keep the
completion order. The list is flushed into the CQ only when the application enters the
kernel to wait (io_uring_enter with IORING_ENTER_GETEVENTS). Each overflowed CQE costs an
allocation under a lock, and older kernels also failed calls with -EBUSY: on submit in
5.5-5.12, from the wait in 5.13 to about 6.1, never since 6.6.

In a trace: each overflowed CQE fires io_uring_cqe_overflow (5.19+) instead of landing in
the ring. From 6.1 the flushed CQEs produce no io_uring_complete, so uringtrace counts the
overflow event as the completion; on 5.19 and 6.0 io_uring_complete fires for overflowed
CQEs as well.
Before 5.19 there is no overflow tracepoint and this detector is degraded.

Typical causes: a CQ sized for the average rather than the burst (multishot receives post
many CQEs per SQE); more requests in flight than cq_entries; a reaping loop that consumes
one CQE per wait; a ring whose owner is blocked elsewhere while completions keep coming.

What to change: size the CQ for the most completions that can be pending at once with
IORING_SETUP_CQSIZE (io_uring_params.cq_entries); reap every available CQE on each pass
(io_uring_for_each_cqe + io_uring_cq_advance, or io_uring_peek_batch_cqe); keep requests in
flight below cq_entries; if IORING_SQ_CQ_OVERFLOW is set, enter with GETEVENTS to flush.",
    },
    Rule {
        slug: "cqe-dropped",
        severity: Severity::Error,
        title: "an overflow entry could not be allocated, so a CQE was lost",
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
    },
    Rule {
        slug: "sqpoll-missed-wakeup",
        severity: Severity::Error,
        title: "SQEs were published while the SQPOLL thread slept, and nothing woke it",
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
    },
    Rule {
        slug: "sqpoll-idle-spin",
        severity: Severity::Warning,
        title: "an SQPOLL thread burns CPU with no work",
        explanation: "\
An SQPOLL thread keeps looping while it has work, IOPOLL requests or task_work, and then
for sq_thread_idle ms more (io_uring_params.sq_thread_idle, default 1000 ms) before it
sleeps. During that time it spins on a CPU at 100%, whether SQEs arrive or not. A ring
that gets a request every few hundred ms never sleeps at all. A thread shared through
IORING_SETUP_ATTACH_WQ uses the largest idle time of its rings. With a very large
sq_thread_idle one thread was measured using 87% of a CPU while doing nothing.

In a trace: the SQPOLL thread stays on CPU (sched_switch) while no io_uring_submit_req
comes from it. Since 6.9 the ring's fdinfo shows SqTotalTime growing while SqWorkTime does
not; uringtrace samples both. io_uring_task_work_run (6.0+) fires on every loop of the
thread; uringtrace drops the empty runs (count 0) in the kernel, as they flood at millions
per second.

Typical causes: sq_thread_idle set to seconds \"for latency\"; SQPOLL used for a ring with
sparse or bursty traffic; one ring with a large idle time sharing a thread with others.

What to change: lower sq_thread_idle to about the gap between bursts (a few ms is common);
use SQPOLL only on rings with sustained submission rates and submit with io_uring_enter
elsewhere; if spinning is intended, pin the thread with IORING_SETUP_SQ_AFF and
sq_thread_cpu on a CPU reserved for it, and account for that CPU.",
    },
    Rule {
        slug: "sqpoll-chain-split",
        severity: Severity::Error,
        title: "a link chain on an SQPOLL ring was split across submission batches",
        explanation: "\
Link chains are built per submission batch: a chain opens at an SQE with IOSQE_IO_LINK or
IOSQE_IO_HARDLINK, takes the following SQEs of the same batch and closes at the first SQE
without a link flag. A chain still open when the batch ends is queued as it is, and the
next SQEs start from scratch. On an SQPOLL ring the batch is what the thread picks up in
one loop. When several rings share one SQPOLL thread (IORING_SETUP_ATTACH_WQ), the thread
takes at most 8 SQEs per ring per loop, so a longer chain is cut in two: the members after
the 8th run without waiting for the ones before, and are not cancelled when one of those
fails. On 6.18 members 9 and later were seen to run, and succeed, before the failing head.
An application that moves the SQ tail in several steps while writing one chain splits it
the same way, on any SQPOLL ring.

In a trace: the chain's io_uring_submit_req events come from the SQPOLL thread in two
loops; io_uring_link joins no member of the second part to the first; members after the
cut complete with success while an earlier member fails, with no io_uring_fail_link.

Typical causes: long chains (more than 8 SQEs) on rings sharing an SQPOLL thread; updating
the SQ tail after each SQE instead of once per chain.

What to change: keep chains at 8 SQEs or fewer on rings that share an SQPOLL thread, or
give the ring its own thread (no IORING_SETUP_ATTACH_WQ); write every SQE of a chain
first and publish them with a single store-release of the SQ tail; for longer ordered
sequences, submit the next short chain from the completion of the previous one.",
    },
    Rule {
        slug: "link-chain-broken",
        severity: Severity::Warning,
        title: "a chain member failed or completed short, and its followers were cancelled",
        explanation: "\
IOSQE_IO_LINK makes the next SQE wait until this one completes successfully. When a
member fails, all its followers complete with -ECANCELED (-125) without being issued. A
failure is an error result or a short transfer: a read or write on a pipe or socket that
moved fewer bytes than asked (regular files retry internally). IOSQE_IO_HARDLINK keeps the
chain going after a failure. An SQE rejected at submission fails the whole chain: the
members before it and after it get -125, the bad one its own error. With
IOSQE_CQE_SKIP_SUCCESS on the failing member the followers are cancelled without a CQE.

In a trace: io_uring_fail_link fires once per cancelled follower (naming the failed
request and the cancelled one), also when no CQE is posted; the completions show the
breaker's result followed by -125s. io_uring_link gives the chain order (its target is
the chain head before 6.12 and the previous member from 6.12). Observed on 6.18: a pipe
read of 4096 bytes with 10 available, linked to a NOP, completes 10 then -125.

Typical causes: a short read or write on a socket or pipe; EOF; a bad or closed fd; a
chain used only for ordering where a member's failure is acceptable.

What to change: if followers should run anyway, link with IOSQE_IO_HARDLINK; if short
transfers are normal, do not link on the transfer length (handle the partial result and
submit the rest); otherwise handle -ECANCELED in the completion path: look at the breaker's
result, then resubmit or give up the whole operation.",
    },
    Rule {
        slug: "invalid-sqe",
        severity: Severity::Error,
        title: "an SQE was rejected at submission",
        explanation: "\
The kernel checks each SQE when it is submitted: a known opcode, flags valid for it,
reserved fields zero, fixed file and buffer indexes in range, a buffer group where
IOSQE_BUFFER_SELECT asks for one. A rejected SQE is never issued: it completes at once with
the error (-EINVAL, -EBADF, -EOPNOTSUPP, ...) and, if it belongs to a link chain, fails the
whole chain. Unless the ring was set up with IORING_SETUP_SUBMIT_ALL (5.18+), the kernel
also stops the batch there: the SQEs after it stay in the SQ until the next submission,
and io_uring_enter returns fewer than were asked.

In a trace: io_uring_req_failed (5.17+) with the raw SQE fields and the error, and no
io_uring_submit_req for that request. Before 5.17 uringtrace only sees a completion with an
error that was never submitted, and this detector is degraded.

Typical causes: an opcode or flag the running kernel does not know (built against newer
headers than the kernel); SQE fields left over from a previous use of the slot;
IOSQE_FIXED_FILE with an index outside the registered table; IOSQE_BUFFER_SELECT on an
opcode without provided-buffer support.

What to change: prepare every SQE with the io_uring_prep_* helpers, which clear it;
probe opcodes at start with IORING_REGISTER_PROBE (io_uring_get_probe) and fall back when
one is missing; check registered file and buffer indexes; consider
IORING_SETUP_SUBMIT_ALL so one bad SQE does not hold back the rest of the batch.",
    },
    Rule {
        slug: "wait-cycle",
        severity: Severity::Error,
        title: "requests wait on each other in a cycle: none of them can complete",
        explanation: "\
The kernel has no deadlock detection. A link chain itself can never be cyclic (each new
request is appended), but requests can wait for each other: a READ on pipe[0] linked
before the WRITE to pipe[1] that would feed it (the WRITE waits for the READ, the READ for
data); two rings each running POLL_ADD on the other's fd, linked before the MSG_RING that
would make it readable; FUTEX_WAIT (6.7+) linked before the FUTEX_WAKE on the same word; a
blocking request in io-wq, capped by IORING_REGISTER_IOWQ_MAX_WORKERS, waiting for work
queued behind it. None of these requests completes, and a wait without timeout hangs.

In a trace: uringtrace builds wait-for edges from chain order (io_uring_link, or submit
order before 6.12), readiness waits (io_uring_poll_arm, released only by
io_uring_task_add), the file each request uses (io_uring_file_get at issue, 5.19+, or the
SQE fd read at submit), MSG_RING targets, and waits on rings (io_uring_cqring_wait). The
finding lists the cycle in order, each request with what it waits for; a request that
was never issued (no file_get) is marked as such.

Typical causes: producer and consumer of the same pipe, socket pair or futex in one chain
in the wrong order; two rings that signal each other, each waiting first.

What to change: break the cycle: put the producer before the consumer, or do not link
them and submit both independently; add an IORING_OP_LINK_TIMEOUT after a waiting request,
or wait with a timeout (io_uring_wait_cqe_timeout), so that a stall becomes -ETIME or
-ECANCELED instead of a hang; raise the io-wq limit if workers wait on each other.",
    },
    Rule {
        slug: "unsatisfiable-wait",
        severity: Severity::Error,
        title: "a task waits for more completions than can arrive",
        explanation: "\
io_uring_enter with IORING_ENTER_GETEVENTS and min_complete = N sleeps until N CQEs are
available (N is clamped to cq_entries), a timeout expires or a signal arrives. If fewer
requests are in flight than are still needed, and no multishot request is armed, the wait
can never be satisfied and the task hangs. When the same call also submits (to_submit >
0) the failure of the wait is hidden: the call returns the number submitted.

In a trace: sys_enter_io_uring_enter with flags & 0x1 and min_complete, then
io_uring_cqring_wait (the task really sleeps), compared with the requests in flight on
that ring (io_uring_submit_req minus io_uring_complete and io_uring_cqe_overflow) and the
CQEs already waiting in the CQ.

Typical causes: a wait count computed from what was prepared rather than what was
submitted (the SQ was full, or a rejected SQE stopped the batch); requests with
IOSQE_CQE_SKIP_SUCCESS, which post no CQE when they succeed; CQEs reaped by another thread;
a request counted twice.

What to change: count in-flight requests from the value io_uring_enter (io_uring_submit)
returns, minus the CQEs you reaped; do not count requests with IOSQE_CQE_SKIP_SUCCESS;
wait for one completion at a time and reap in a loop; or bound every wait with a timeout
(IORING_ENTER_EXT_ARG with a timespec, io_uring_wait_cqes with a timeout).",
    },
    Rule {
        slug: "request-stalled",
        severity: Severity::Warning,
        title: "a request has been in flight longer than the threshold, with nothing explaining it",
        explanation: "\
A request was submitted and has no completion after the stall threshold, and no other
detector (wait cycle, sleeping SQPOLL thread, broken chain, io-wq limit) explains why.
Many requests legitimately wait a long time: an ACCEPT or RECV on a quiet socket, a
POLL_ADD on a file that never becomes ready, a TIMEOUT. The finding says what uringtrace
last saw of the request so you can tell which case it is.

In a trace: io_uring_submit_req with no io_uring_complete or io_uring_cqe_overflow for
the request. The last step seen is its state: io_uring_queue_async_work (waiting in
io-wq), io_uring_poll_arm (waiting for readiness, which io_uring_task_add would end),
io_uring_file_get (issued to its file), or nothing after submission (not yet issued,
e.g. waiting behind a link or a drain).

Typical causes: a peer that never sends or never reads; a slow or stuck device; a poll
wakeup that never comes; a request queued behind IOSQE_IO_DRAIN; lost events, when the
recording dropped some (the finding is then marked inconclusive).

What to change: if the request is meant to wait, raise the stall threshold or give it a
deadline with a linked IORING_OP_LINK_TIMEOUT; cancel it on shutdown with
IORING_OP_ASYNC_CANCEL; otherwise look at the peer or the device it waits for.",
    },
    Rule {
        slug: "multishot-terminated",
        severity: Severity::Info,
        title: "a multishot request ended",
        explanation: "\
A multishot request (POLL_ADD with IORING_POLL_ADD_MULTI, 5.13+; multishot ACCEPT,
5.19+; multishot RECV, 6.0+; READ_MULTISHOT, 6.7+) posts many CQEs from one SQE. Each
intermediate CQE carries IORING_CQE_F_MORE (0x2). The kernel ends the request with a final
CQE without F_MORE when: an error occurs, including -ENOBUFS (-105) when the provided
buffer group is empty; the result is 0 or less (EOF); the CQ is full (these CQEs never go
to the overflow list, so a failed post ends the request); a length limit is reached; or
it is cancelled. After that nothing more arrives until the application arms it again.

In a trace: intermediate CQEs are io_uring_complete with no request pointer and F_MORE
in cflags; the final one has the request pointer and no F_MORE. The finding gives the
final result and how many CQEs the request posted. Observed on 6.18: cflags 0x3, 0x10003,
then -105.

Typical causes: the peer closed (normal); the buffer group ran dry; the CQ filled up.

What to change: check F_MORE on every CQE and re-arm when it is clear. For -ENOBUFS see
`uringtrace explain buffer-exhausted`; for a full CQ enlarge it (IORING_SETUP_CQSIZE) and
reap faster. This is informational: an ending is often expected.",
    },
    Rule {
        slug: "buffer-exhausted",
        severity: Severity::Warning,
        title: "a provided-buffer group ran out of buffers (-ENOBUFS)",
        explanation: "\
Provided buffers let the kernel choose a buffer when data arrives instead of when the
request is submitted: classic groups through IORING_OP_PROVIDE_BUFFERS (5.7+), and buffer
rings through IORING_REGISTER_PBUF_RING (5.19+). A request with IOSQE_BUFFER_SELECT takes
one from its group; the CQE carries IORING_CQE_F_BUFFER and the buffer id in cflags >> 16.
A buffer comes back only when the application returns it (adds it to the ring and moves
the ring tail, or provides it again). When the group is empty the request completes with
-ENOBUFS (-105), and a multishot request ends.

In a trace: io_uring_complete with -105 on a buffer-select request; io_uring_register
with opcode 22 shows the buffer ring registration; the F_BUFFER completions before it
show how fast buffers were consumed.

Typical causes: too few buffers for the burst (many connections, large messages); buffers
held while the application processes data and returned late or never; one group shared
by more receivers than it was sized for.

What to change: provide more (or larger) buffers; return each buffer as soon as its data
is consumed; use incrementally consumed buffer rings (IOU_PBUF_RING_INC, 6.12+) for
large buffers; on -ENOBUFS replenish the group and re-arm the request; give busy
receivers their own group.",
    },
    Rule {
        slug: "iowq-punt-storm",
        severity: Severity::Warning,
        title: "many requests were punted to io-wq, or io-wq spawned many workers",
        explanation: "\
Requests that cannot complete without blocking are handed (punted) to io-wq worker
threads: iou-wrk-<tid> threads of the process (kthreads io_wqe_worker-* on 5.10 before
5.10.162). Punts come from IOSQE_ASYNC, opcodes that always block (FSYNC, STATX, SPLICE,
xattr ops), IOSQE_IO_DRAIN, a chain left open at the end of a batch, and -EAGAIN on files
that cannot be polled (buffered writes on many filesystems). Bounded workers are capped at
min(sq_entries, 4 x CPUs), unbounded ones only by RLIMIT_NPROC; every worker that blocks
makes io-wq start another, and idle workers exit after 5 s. 64 SPLICEs blocked on an empty
pipe were seen to create 64 workers. Each punt costs a context switch; many workers cost
memory, scheduler time and RLIMIT_NPROC headroom (fork() of the process can then fail).

In a trace: io_uring_queue_async_work per punt (its rate and whether it is hashed), and
for each new worker task_newtask with CLONE_IO followed by task_rename to iou-wrk-*
(sched_process_fork does not fire for io threads).

Typical causes: IOSQE_ASYNC set on everything; blocking requests on pipes or devices;
buffered writes; fsync storms.

What to change: cap the workers with IORING_REGISTER_IOWQ_MAX_WORKERS (5.15+; separate
bounded and unbounded limits); drop IOSQE_ASYNC where the request can complete inline;
prefer pollable files (sockets, pipes) or O_DIRECT for regular files; batch fsyncs.",
    },
    Rule {
        slug: "budget-p99-latency",
        severity: Severity::Error,
        title: "an opcode's p99 latency is above its budget in uringtrace.toml",
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
    },
    Rule {
        slug: "budget-in-flight",
        severity: Severity::Error,
        title: "a ring had more requests in flight than its budget in uringtrace.toml",
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
    },
    Rule {
        slug: "budget-iowq-workers",
        severity: Severity::Error,
        title: "a process created more io-wq workers than its budget in uringtrace.toml",
        explanation: "\
`uringtrace check` counts the io-wq worker threads (iou-wrk-*) each process created
during the trace (task_newtask with CLONE_IO, then task_rename) and compares the count
with `max_iowq_workers` in the [budgets] table of uringtrace.toml. io-wq starts a new
worker whenever one blocks, up to min(sq_entries, 4 x CPUs) bounded workers and
RLIMIT_NPROC unbounded ones, so blocking requests can create hundreds of threads.

Typical causes: blocking requests on pipes, devices or buffered files; IOSQE_ASYNC on
everything; see iowq-punt-storm.

What to change: cap the workers with IORING_REGISTER_IOWQ_MAX_WORKERS (5.15+), avoid
punting (see iowq-punt-storm), or raise the budget if the parallelism is intended.",
    },
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn kebab(s: &str) -> bool {
        !s.is_empty()
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--")
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }

    #[test]
    fn slugs_are_unique_kebab_case() {
        let mut seen = HashSet::new();
        for r in RULES {
            assert!(kebab(r.slug), "{} is not kebab-case", r.slug);
            assert!(seen.insert(r.slug), "duplicate slug {}", r.slug);
        }
    }

    #[test]
    fn explanations_are_real_and_wrapped() {
        for r in RULES {
            let e = r.explanation;
            assert!(
                !e.trim().is_empty() && !e.contains("TODO"),
                "{}: no explanation",
                r.slug
            );
            let lines = e.lines().count();
            assert!((8..=30).contains(&lines), "{}: {lines} lines", r.slug);
            for line in e.lines() {
                assert!(
                    line.chars().count() <= 92,
                    "{}: line too long: {line}",
                    r.slug
                );
                assert!(!line.starts_with('#'), "{}: markdown header", r.slug);
                assert_eq!(line, line.trim_end(), "{}: trailing space", r.slug);
            }
            assert!(!r.title.is_empty(), "{}: no title", r.slug);
        }
    }

    #[test]
    fn budget_rules_are_errors() {
        for slug in [
            "budget-p99-latency",
            "budget-in-flight",
            "budget-iowq-workers",
        ] {
            assert_eq!(
                rule(slug).map(|r| r.severity),
                Some(Severity::Error),
                "{slug}"
            );
        }
    }

    #[test]
    fn closest_slug() {
        assert_eq!(closest("cq-overflw"), Some("cq-overflow"));
        assert_eq!(closest("link-chain-brokne"), Some("link-chain-broken"));
        assert_eq!(closest("something-else-entirely"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
