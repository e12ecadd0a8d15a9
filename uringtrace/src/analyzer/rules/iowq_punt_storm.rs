//! `iowq-punt-storm`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, text, Hit};
use crate::analyzer::finding::Evidence;
use crate::analyzer::finding::Severity;
use crate::analyzer::state::State;
use crate::analyzer::AnalyzerConfig;
use crate::names::opcode_name;

pub const RULE: Rule = Rule {
    id: RuleId::IowqPuntStorm,
    slug: "iowq-punt-storm",
    severity: Severity::Warning,
    title: "many requests were punted to io-wq, or io-wq spawned many workers",
    fix: "cap workers with IORING_REGISTER_IOWQ_MAX_WORKERS; avoid blocking ops (or make the file non-blocking/pollable); check IOSQE_ASYNC use",
    needs: &[Need::Event(EventKind::QueueAsyncWork), Need::Event(EventKind::TaskNewtask)],
    degraded_reason: "needs io_uring_queue_async_work and task:task_newtask",
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
(sched_process_fork does not fire for io threads); a worker's last sched_switch
(EXIT_DEAD) ends it. The rule looks at peaks: workers alive at once (unless the process
capped them with IORING_REGISTER_IOWQ_MAX_WORKERS) and punts in any one second, so an
hour at a few punts a second is not a storm.

Typical causes: IOSQE_ASYNC set on everything; blocking requests on pipes or devices;
buffered writes; fsync storms.

What to change: cap the workers with IORING_REGISTER_IOWQ_MAX_WORKERS (5.15+; separate
bounded and unbounded limits); drop IOSQE_ASYNC where the request can complete inline;
prefer pollable files (sockets, pipes) or O_DIRECT for regular files; batch fsyncs.",
};

/// Processes whose io-wq had too many workers alive at once (unless the process caps
/// them with IORING_REGISTER_IOWQ_MAX_WORKERS), or punted too many requests within
/// one second. Both are peaks over sliding windows, not totals over the trace.
pub fn current(st: &State, cfg: &AnalyzerConfig, now: u64) -> Vec<Hit> {
    // Processes that just exited were judged then.
    let mut tgids: Vec<u32> = st
        .procs
        .keys()
        .copied()
        .filter(|t| !st.forget.contains(t))
        .collect();
    tgids.sort_unstable();
    tgids
        .into_iter()
        .filter_map(|t| for_process(st, cfg, t, now))
        .collect()
}

/// The finding for one process (live, or just exited), if its io-wq peaked past the
/// thresholds.
pub fn for_process(st: &State, cfg: &AnalyzerConfig, tgid: u32, now: u64) -> Option<Hit> {
    {
        let p = st.procs.get(&tgid)?;
        let workers = p.workers_max_live >= cfg.iowq_workers && !p.max_workers_registered;
        let punts = p.punts.max_per_s >= cfg.iowq_punts_per_s;
        if !workers && !punts {
            return None;
        }
        let mut by: Vec<((u8, i32), u64)> = st
            .punts
            .iter()
            .filter(|(k, _)| k.0 == tgid)
            .map(|(k, v)| ((k.1, k.2), *v))
            .collect();
        by.sort_by_key(|x| (std::cmp::Reverse(x.1), x.0));
        let top = by
            .first()
            .map(|((op, fd), n)| {
                format!(
                    "{n} × {} on {}",
                    opcode_name(*op),
                    st.fd_text(tgid, *fd, false)
                )
            })
            .unwrap_or_default();
        let created = p.workers_created;
        let msg = format!(
            "{created} io-wq workers created and {} requests punted to io-wq; most: {top} ({} workers alive at once, at most {} punts in one second)",
            p.punts.total, p.workers_max_live, p.punts.max_per_s
        );
        let mut facts = vec![
            count("workers_created", created),
            count("workers_max_alive", p.workers_max_live),
            count("punts", p.punts.total),
            count("max_punts_per_second", p.punts.max_per_s),
            text(
                "iowq_max_workers_registered",
                p.max_workers_registered.to_string(),
            ),
        ];
        for ((op, fd), n) in by.iter().take(3) {
            facts.push(count(&format!("punts {} fd {fd}", opcode_name(*op)), *n));
        }
        let ctx = st
            .rings
            .values()
            .filter(|r| r.tgid == tgid && r.punted > 0)
            .map(|r| r.ctx)
            .min()
            .unwrap_or(0);
        let first = if workers {
            p.workers_max_live_ns
        } else {
            p.punts.max_at_ns
        };
        Some(hit(
            st,
            RuleId::IowqPuntStorm,
            tgid,
            ctx,
            (),
            msg,
            Evidence {
                requests: vec![],
                facts,
                first_ns: first.min(now),
                last_ns: now,
            },
        ))
    }
}
