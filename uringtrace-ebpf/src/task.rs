//! Who is running: the per-CPU task cache (pid, filter verdict, role, comm) and the
//! process filter, by task or by ring. Looking these up on every event cost more than
//! the rest of a tp_btf program on a NOP storm (6.18).

use super::*;

/// Processes being traced when the filter is on (tgid -> 1). Children of traced
/// processes are added by `sched_process_fork`.
#[map]
pub(crate) static TGIDS: HashMap<u32, u32> = HashMap::with_max_entries(16384, 0);

/// Rings owned by traced processes (ctx -> tgid), so completions posted from another
/// task's context (MSG_RING, 5.10 IRQ completions) are still seen.
#[map]
pub(crate) static CTXS: HashMap<u64, u32> = HashMap::with_max_entries(8192, 0);

/// io_uring kernel threads (SQPOLL, io-wq) of traced processes: tid -> owner tgid.
/// Their sched events are traced; no other task's are.
#[map]
pub(crate) static IOTHREADS: HashMap<u32, u32> = HashMap::with_max_entries(16384, 0);

#[inline(always)]
pub(crate) fn role_of(comm: &[u8; 16]) -> Role {
    let head = u64::from_ne_bytes([
        comm[0], comm[1], comm[2], comm[3], comm[4], comm[5], comm[6], comm[7],
    ]);
    role_of_prefix(head)
}

/// Classifies the first 8 bytes of a comm (see `Role::from_comm`).
#[inline(always)]
pub(crate) fn role_of_prefix(head: u64) -> Role {
    const SQP: u64 = u64::from_ne_bytes(*b"iou-sqp-");
    const WRK: u64 = u64::from_ne_bytes(*b"iou-wrk-");
    const SQ510: u64 = u64::from_ne_bytes(*b"io_uring");
    const WRK510: u64 = u64::from_ne_bytes(*b"io_wqe_w");
    if head == SQP || head == SQ510 {
        Role::SqPoll
    } else if head == WRK || head == WRK510 {
        Role::IoWorker
    } else {
        Role::Submitter
    }
}

#[inline(always)]
pub(crate) fn tgid_traced(tgid: u32) -> bool {
    if tgid == cfg_u32(&CONFIG.self_tgid) {
        return false;
    }
    if cfg_u32(&CONFIG.filter_enabled) == 0 {
        return true;
    }
    // SAFETY: the value is only tested for presence.
    unsafe { TGIDS.get(tgid).is_some() }
}

/// What every event needs about the current task, cached per CPU: looking up the
/// process filter (a hash map) and copying the comm on every io_uring event cost more
/// than the rest of a tp_btf program on a NOP storm.
#[repr(C)]
pub struct TaskCache {
    pub(crate) pid_tgid: u64,
    /// FILTER_GEN when this entry was filled.
    pub(crate) gen: u64,
    /// The ring most recently registered in CTXS by this task.
    pub(crate) last_ctx: u64,
    pub(crate) traced: u32,
    pub(crate) role: u32,
    pub(crate) comm: [u8; 16],
    /// Aggregating mode: the current io_uring_enter's arguments, held back until its
    /// exit shows whether anything the analyzer follows happened during it.
    pub(crate) held_enter: Enter,
    pub(crate) held: u32,
    /// The enter event was streamed, so its exit must be too.
    pub(crate) enter_streamed: u32,
    /// A submit was streamed during the current enter (a chain: its end at the batch
    /// end matters to the analyzer).
    pub(crate) submit_streamed: u32,
    /// A full event of this task (comm included) reached the ring buffer since this
    /// entry was filled: its submits and completions can go compact.
    pub(crate) comm_sent: u32,
}

#[map]
pub(crate) static TASK: PerCpuArray<TaskCache> = PerCpuArray::with_max_entries(1, 0);

/// Bumped whenever the filter or a task's comm changes, which invalidates every
/// CPU's TaskCache (userspace bumps it after adding pids).
#[map]
pub(crate) static FILTER_GEN: Array<u64> = Array::with_max_entries(1, 0);

#[inline(always)]
pub(crate) fn filter_gen() -> u64 {
    FILTER_GEN.get(0).copied().unwrap_or(0)
}

/// The current task, with its filter verdict, role and comm.
#[inline(always)]
pub(crate) fn current_task(pid_tgid: u64) -> Option<&'static mut TaskCache> {
    let c = TASK.get_ptr_mut(0)?;
    // SAFETY: per-CPU value; programs do not nest on one CPU for these tracepoints.
    let c = unsafe { &mut *c };
    let gen = filter_gen();
    if c.pid_tgid != pid_tgid || c.gen != gen {
        c.pid_tgid = pid_tgid;
        c.gen = gen;
        c.last_ctx = 0;
        c.held = 0;
        c.enter_streamed = 0;
        c.submit_streamed = 0;
        c.comm_sent = 0;
        c.traced = tgid_traced((pid_tgid >> 32) as u32) as u32;
        c.comm = bpf_get_current_comm().unwrap_or([0; 16]);
        c.role = role_of(&c.comm) as u32;
    }
    Some(c)
}

/// The current task when it is traced, as (pid_tgid, cache); otherwise counted as
/// filtered. For events that name no ring the filter could go by (submits run in
/// the owner's threads; io_uring_enter's record has no ring).
#[inline(always)]
pub(crate) fn traced_task() -> Option<(u64, &'static mut TaskCache)> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let task = current_task(pid_tgid)?;
    if task.traced == 0 {
        count(Counter::Filtered);
        return None;
    }
    Some((pid_tgid, task))
}

#[inline(always)]
pub(crate) fn is_iothread(tid: u32) -> bool {
    // SAFETY: presence test only.
    tid != 0 && unsafe { IOTHREADS.get(tid).is_some() }
}

/// The process filter, by task or by ring; remembers the rings of traced tasks.
#[inline(always)]
pub(crate) fn passes_filter(task: &mut TaskCache, tgid: u32, ctx: u64, kind: u16) -> bool {
    if task.traced == 0 {
        if kind == EventKind::Create as u16 {
            // An untraced process created a ring at this address: a traced ring that
            // lived here is gone, and this one's events must not pass as its own
            // (seen: another process's overflows in a trace, 2 runs of 10, when rings
            // are created and freed at a high rate on the host).
            // SAFETY: presence test only.
            if ctx != 0 && unsafe { CTXS.get(ctx).is_some() } {
                let _ = CTXS.remove(ctx);
            }
            count(Counter::Filtered);
            return false;
        }
        let via_ring = tgid != cfg_u32(&CONFIG.self_tgid)
            && ctx != 0
            // SAFETY: presence test only.
            && unsafe { CTXS.get(ctx).is_some() };
        if !via_ring {
            count(Counter::Filtered);
        }
        return via_ring;
    }
    if (kind == EventKind::Submit as u16 || kind == EventKind::Create as u16)
        && ctx != 0
        && ctx != task.last_ctx
        && cfg_u32(&CONFIG.filter_enabled) != 0
    {
        task.last_ctx = ctx;
        // SAFETY: presence test only.
        if unsafe { CTXS.get(ctx).is_none() } {
            let _ = CTXS.insert(ctx, tgid, 0);
        }
    }
    true
}
