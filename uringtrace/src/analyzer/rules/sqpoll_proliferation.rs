//! `sqpoll-proliferation`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, ms, ns, Hit};
use crate::analyzer::finding::{Evidence, Severity};
use crate::analyzer::state::State;

/// SQPOLL threads one process may keep alive at once before it is a finding. One
/// thread serves every ring of a thread group that attaches to it (ATTACH_WQ) and
/// submits millions of SQEs a second, so a second one is needed only to keep pollers
/// on separate NUMA nodes (pinned with SQ_AFF); two-node hosts are the common NUMA
/// case. Each thread past that is one more CPU-sized poller with no capacity gained.
pub const PER_PROCESS: u64 = 2;

/// ... and only when they want CPU: together awake (running or runnable, not asleep)
/// at least half the time since the first of them started, on average. Awake, not
/// CPU received, so that a loaded host does not hide them. A shared thread wants at
/// most one CPU; pollers that sleep when idle cost little (Node.js runs an SQPOLL ring
/// per event loop with a 10 ms idle: three threads used 2-3% of a CPU in
/// `tests/real_programs.rs`).
pub const MIN_CPU_SHARE: f64 = 0.5;

fn burns(runtime_ns: u64, window_ns: u64) -> bool {
    runtime_ns as f64 >= MIN_CPU_SHARE * window_ns.max(1) as f64
}

/// Host-wide: more SQPOLL threads alive at once than half the host's CPUs (and more
/// than [`PER_PROCESS`]), in several processes. Each thread keeps a whole CPU while it
/// has work and for sq_thread_idle after it, so past half the CPUs, polling alone can
/// take half the host from the applications it serves.
pub fn host_limit(cpus: u32) -> u64 {
    PER_PROCESS.max(u64::from(cpus) / 2)
}

pub const RULE: Rule = Rule {
    id: RuleId::SqpollProliferation,
    slug: "sqpoll-proliferation",
    severity: Severity::Warning,
    title: "SQPOLL threads multiply: a CPU-sized poller per ring",
    fix: "create one SQPOLL ring and set up the others with IORING_SETUP_ATTACH_WQ (wq_fd = the first ring's fd) so they share its thread; keep at most one per NUMA node",
    needs: &[
        Need::Event(EventKind::Create),
        Need::Event(EventKind::TaskRename),
        Need::Event(EventKind::SchedSwitch),
    ],
    degraded_reason: "needs io_uring_create (SQPOLL and ATTACH_WQ rings), task:task_rename (SQPOLL threads starting) and sched:sched_switch (their CPU time)",
    explanation: "\
Every io_uring_setup with IORING_SETUP_SQPOLL starts a kernel thread (iou-sqp-<tid>,
5.11+; a kthread io_uring-sq before) unless IORING_SETUP_ATTACH_WQ names a ring whose
thread it should share. Sharing works only within one thread group: attaching to a ring
of another process silently creates a new thread. Each thread polls its rings on a whole
CPU while they have work and for sq_thread_idle ms after (default 1 s). A program that
opens a ring per connection, per worker or per file, each with SQPOLL, keeps a poller
per ring: twelve rings, twelve threads, up to twelve CPUs spinning.

In a trace: task_rename shows each thread start (iou-sqp-<tid>), sched_switch shows the
CPU time each ran, the last switch shows it exit. uringtrace counts the threads alive at
once per process and on the host. One shared thread serves every ring attached to it;
a second is legitimate to keep one poller per NUMA node. More than 2 in one process, or
more than half the host's CPUs (and more than 2) across processes, together awake
(running or runnable) at least half the time, is this finding; it shows the CPU they
ran. Pollers that sleep when idle cost little and are not reported.

Typical causes: a ring per thread or per connection, each with SQPOLL; libraries that
create their own SQPOLL ring; ATTACH_WQ to a ring of another process (ignored).

What to change: create one SQPOLL ring per process (or per NUMA node, pinned with
IORING_SETUP_SQ_AFF) and the others with IORING_SETUP_ATTACH_WQ and wq_fd set to it;
or drop SQPOLL for rings with modest submission rates and submit with io_uring_enter;
keep sq_thread_idle short so idle pollers sleep.",
};

/// CPU share of `runtime_ns` over `window_ns`, as text.
fn share(runtime_ns: u64, window_ns: u64) -> String {
    format!(
        "{} of CPU in {} ({:.0}% of a CPU)",
        ms(runtime_ns),
        ms(window_ns),
        100.0 * runtime_ns as f64 / window_ns.max(1) as f64
    )
}

/// Processes with more SQPOLL threads alive at once than [`PER_PROCESS`], and the
/// host when its SQPOLL threads outnumber half its CPUs.
pub fn current(st: &State, now: u64) -> Vec<Hit> {
    let mut tgids: Vec<u32> = st
        .procs
        .iter()
        .filter(|(t, p)| p.sqpoll_max_live > PER_PROCESS && !st.forget.contains(t))
        .map(|(t, _)| *t)
        .collect();
    tgids.sort_unstable();
    let mut out: Vec<Hit> = tgids
        .into_iter()
        .filter_map(|t| for_process(st, t, now))
        .collect();
    out.extend(for_host(st, now));
    out
}

/// The finding for one process (live, or just exited).
pub fn for_process(st: &State, tgid: u32, now: u64) -> Option<Hit> {
    let p = st.procs.get(&tgid)?;
    if p.sqpoll_max_live <= PER_PROCESS {
        return None;
    }
    let (rings, attached) = (p.sqpoll_rings, p.sqpoll_rings_attached);
    let runtime = st.sqpoll_runtime_ns(tgid, now);
    let window = now.saturating_sub(p.sqpoll_first_ns);
    let awake = st.sqpoll_awake_ns(tgid, now);
    if !burns(awake, window) {
        return None;
    }
    let rings_text = if rings > 0 {
        format!(
            "{rings} SQPOLL rings created, {attached} of them sharing a thread through IORING_SETUP_ATTACH_WQ; "
        )
    } else {
        String::new()
    };
    let msg = format!(
        "{} SQPOLL threads alive at once in one process ({rings_text}at most {PER_PROCESS} needed); they ran {}",
        p.sqpoll_max_live,
        share(runtime, window)
    );
    let facts = vec![
        count("sqpoll_threads_max_alive", p.sqpoll_max_live),
        count("sqpoll_threads_started", p.sqpoll_created),
        count("sqpoll_rings_created", rings),
        count("attached_rings", attached),
        ns("sqpoll_cpu_time", runtime),
        ns("sqpoll_awake_time", awake),
        ns("window", window),
    ];
    Some(hit(
        st,
        RuleId::SqpollProliferation,
        tgid,
        0,
        "process",
        msg,
        Evidence {
            requests: vec![],
            facts,
            first_ns: p.sqpoll_max_live_ns.min(now),
            last_ns: now,
        },
    ))
}

/// The host-wide finding: SQPOLL threads of several processes outnumber half the
/// CPUs. Unknown CPU count (an old recording): no judgement.
fn for_host(st: &State, now: u64) -> Option<Hit> {
    let h = &st.sqpoll_host;
    if st.host_cpus == 0 || h.max_processes < 2 || h.max_live <= host_limit(st.host_cpus) {
        return None;
    }
    let runtime: u64 = st
        .procs
        .keys()
        .map(|t| st.sqpoll_runtime_ns(*t, now))
        .fold(0, u64::saturating_add);
    let window = now.saturating_sub(st.first_ns.unwrap_or(now));
    let awake: u64 = st
        .procs
        .keys()
        .map(|t| st.sqpoll_awake_ns(*t, now))
        .fold(0, u64::saturating_add);
    if !burns(awake, window) {
        return None;
    }
    let msg = format!(
        "{} SQPOLL threads alive at once on a host of {} CPUs, in {} processes; they ran {}",
        h.max_live,
        st.host_cpus,
        h.max_processes,
        share(runtime, window)
    );
    Some(hit(
        st,
        RuleId::SqpollProliferation,
        0,
        0,
        "host",
        msg,
        Evidence {
            requests: vec![],
            facts: vec![
                count("sqpoll_threads_max_alive", h.max_live),
                count("processes", h.max_processes),
                count("host_cpus", st.host_cpus.into()),
                ns("sqpoll_cpu_time", runtime),
                ns("window", window),
            ],
            first_ns: h.max_live_ns.min(now),
            last_ns: now,
        },
    ))
}
