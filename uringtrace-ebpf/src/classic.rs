//! Classic tracepoint programs: every io_uring tracepoint (the fallback where tp_btf
//! is not possible), plus the sched and task tracepoints that follow io threads and
//! children.

use super::*;

/// The io_uring tracepoints and io_uring_enter: filtered by process (or by ring).
#[inline(always)]
pub(crate) fn handle_io_uring(ctx: &TracePointContext, kind: EventKind) {
    if mode() == KernelMode::Floor as u32 {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(task) = current_task(pid_tgid) else {
        return;
    };
    let mut ev = base_event(kind, pid_tgid, task, now());
    fill(ctx, kind, &mut ev);
    // `kind` is a constant in each program (this is inlined): only the create
    // programs (classic and raw) read the creator's cgroup, for the agent's labels.
    // Rings are created rarely; the helper exists since 4.18.
    if kind == EventKind::Create {
        // SAFETY: the helper takes no arguments and only reads the current task.
        ev.aux = unsafe { bpf_get_current_cgroup_id() };
    }
    finish_io_uring(&mut ev, task);
}

macro_rules! io_uring_programs {
    ($($name:ident => $kind:ident),* $(,)?) => {
        $(
            #[tracepoint]
            pub fn $name(ctx: TracePointContext) -> u32 {
                handle_io_uring(&ctx, EventKind::$kind);
                0
            }
        )*
    };
}

io_uring_programs! {
    tp_create => Create,
    tp_register => Register,
    tp_file_get => FileGet,
    tp_queue_async_work => QueueAsyncWork,
    tp_defer => Defer,
    tp_link => Link,
    tp_cqring_wait => CqringWait,
    tp_fail_link => FailLink,
    tp_complete => Complete,
    tp_submit => Submit,
    tp_poll_arm => PollArm,
    tp_task_add => TaskAdd,
    tp_req_failed => ReqFailed,
    tp_cqe_overflow => CqeOverflow,
    tp_short_write => ShortWrite,
    tp_local_work_run => LocalWorkRun,
    tp_poll_wake => PollWake,
    tp_enter => EnterEnter,
    tp_enter_exit => EnterExit,
}

/// task_work_run fires on every SQPOLL loop iteration with count 0 (about 3 M/s while
/// the thread spins, 6.18); only batches that ran work are worth a ring-buffer slot.
#[tracepoint]
pub fn tp_task_work_run(ctx: TracePointContext) -> u32 {
    on_task_work_run(&ctx)
}

#[inline(always)]
pub(crate) fn on_task_work_run(ctx: &TracePointContext) -> u32 {
    let count_spec = spec(EventKind::TaskWorkRun, Slot::Arg0);
    if count_spec.size != 0 && read_field(ctx, count_spec, &mut 0) == 0 {
        count(Counter::Filtered);
        return 0;
    }
    handle_io_uring(ctx, EventKind::TaskWorkRun);
    0
}

/// Follow the children of traced processes, like `perf record -- CMD`.
#[tracepoint]
pub fn tp_process_fork(ctx: TracePointContext) -> u32 {
    on_process_fork(&ctx)
}

#[inline(always)]
pub(crate) fn on_process_fork(ctx: &TracePointContext) -> u32 {
    if cfg_u32(&CONFIG.filter_enabled) == 0 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: presence test only.
    if unsafe { TGIDS.get(tgid).is_none() } {
        return 0;
    }
    let mut ev = fresh_event(EventKind::ProcessFork, pid_tgid);
    fill(ctx, EventKind::ProcessFork, &mut ev);
    let child = ev.args[1];
    if child != 0 {
        let _ = TGIDS.insert(child, 1, 0);
    }
    emit(&ev);
    0
}

/// io threads are created with CLONE_IO (SQPOLL since 5.12, io-wq since 5.12);
/// `sched_process_fork` does not fire for them, task_newtask does.
#[tracepoint]
pub fn tp_task_newtask(ctx: TracePointContext) -> u32 {
    on_task_newtask(&ctx)
}

#[inline(always)]
pub(crate) fn on_task_newtask(ctx: &TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let mut ev = fresh_event(EventKind::TaskNewtask, pid_tgid);
    fill(ctx, EventKind::TaskNewtask, &mut ev);
    if ev.aux & CLONE_IO == 0 || !tgid_traced(tgid) {
        return 0;
    }
    let _ = IOTHREADS.insert(ev.args[0], tgid, 0);
    emit(&ev);
    0
}

/// The kernel names io threads after creation (`iou-wrk-<tid>`); the new comm is read
/// as two 8-byte halves into aux/aux2.
#[tracepoint]
pub fn tp_task_rename(ctx: TracePointContext) -> u32 {
    on_task_rename(&ctx)
}

#[inline(always)]
pub(crate) fn on_task_rename(ctx: &TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let mut ev = fresh_event(EventKind::TaskRename, pid_tgid);
    fill(ctx, EventKind::TaskRename, &mut ev);
    // Cached comms and roles are stale now.
    if let Some(g) = FILTER_GEN.get_ptr_mut(0) {
        atomic_inc(g);
    }
    if role_of_prefix(ev.aux) == Role::Submitter || !tgid_traced(tgid) {
        return 0;
    }
    let tid = if ev.args[0] != 0 {
        ev.args[0]
    } else {
        pid_tgid as u32
    };
    let _ = IOTHREADS.insert(tid, tgid, 0);
    emit(&ev);
    0
}

/// Wakeups of io threads: args[0] = woken tid. The current task is the waker.
#[tracepoint]
pub fn tp_sched_waking(ctx: TracePointContext) -> u32 {
    let target = read_field(&ctx, spec(EventKind::SchedWaking, Slot::Arg0), &mut 0) as u32;
    if !is_iothread(target) {
        return 0;
    }
    let mut ev = fresh_event(EventKind::SchedWaking, bpf_get_current_pid_tgid());
    fill(&ctx, EventKind::SchedWaking, &mut ev);
    emit(&ev);
    0
}

/// Context switches into or out of io threads: args[0] = prev tid, args[1] = next tid.
#[tracepoint]
pub fn tp_sched_switch(ctx: TracePointContext) -> u32 {
    let prev = read_field(&ctx, spec(EventKind::SchedSwitch, Slot::Arg0), &mut 0) as u32;
    let next = read_field(&ctx, spec(EventKind::SchedSwitch, Slot::Arg1), &mut 0) as u32;
    if !is_iothread(prev) && !is_iothread(next) {
        return 0;
    }
    let mut ev = fresh_event(EventKind::SchedSwitch, bpf_get_current_pid_tgid());
    fill(&ctx, EventKind::SchedSwitch, &mut ev);
    emit(&ev);
    0
}

/// io_uring_cqring_wait when io_uring_enter is not hooked (`Config::enter_from_wait`):
/// the waiting task is inside io_uring_enter, and its saved user registers still hold
/// the call's arguments. They are streamed as an enter with no exit, just before the
/// wait. Hooking the syscall instead would run a program on every syscall of the host
/// (raw_syscalls) or put every syscall on the slow path (any syscall tracepoint).
/// Needs bpf_task_pt_regs (5.15+): the loader falls back to the hooks without it.
#[tracepoint]
pub fn tp_cqring_wait_enter(ctx: TracePointContext) -> u32 {
    on_cqring_wait_enter(&ctx)
}

#[inline(always)]
pub(crate) fn on_cqring_wait_enter(ctx: &TracePointContext) -> u32 {
    if mode() == KernelMode::Floor as u32 {
        return 0;
    }
    if cfg_u32(&CONFIG.enter_from_wait) != 0 {
        enter_at_wait(ctx);
    }
    wait_event(ctx);
    0
}

/// The wait itself, out of line: each of the two events gets its own frame (one
/// frame holding both would not fit the 512-byte stack).
#[inline(never)]
fn wait_event(ctx: &TracePointContext) {
    handle_io_uring(ctx, EventKind::CqringWait);
}

/// Streams the io_uring_enter a wait happens in, read from the task's registers.
#[inline(never)]
fn enter_at_wait(ctx: &TracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(task) = current_task(pid_tgid) else {
        return;
    };
    let ring = read_field(ctx, spec(EventKind::CqringWait, Slot::Ctx), &mut 0);
    if !passes_filter(
        task,
        (pid_tgid >> 32) as u32,
        ring,
        EventKind::CqringWait as u16,
    ) {
        return;
    }
    // SAFETY: plain helper calls; bpf_task_pt_regs returns the current task's saved
    // user registers (a kernel pointer, read below with bpf_probe_read_kernel).
    let regs = unsafe {
        let t = aya_ebpf::helpers::generated::bpf_get_current_task_btf();
        aya_ebpf::helpers::generated::bpf_task_pt_regs(t) as u64
    };
    let b = &CONFIG.btf;
    if regs == 0 || read_struct(regs, btf_spec(&b.regs_nr)) != u64::from(cfg_u32(&CONFIG.enter_nr))
    {
        return;
    }
    let arg = |i: usize| read_struct(regs, btf_spec(&b.regs_args[i]));
    let e = Enter {
        // Before the wait, which reads the clock after this.
        ts: now(),
        fd: arg(0) as u32,
        to_submit: arg(1) as u32,
        min_complete: arg(2) as u32,
        flags: arg(3) as u32,
        argp: arg(4),
        argsz: arg(5) as u32,
        _pad: 0,
    };
    let mut ev = e.event(pid_tgid, task);
    ev.ctx = ring;
    ev.aux2 = uringtrace_common::ENTER_WITHOUT_EXIT;
    emit(&ev);
}

/// A failed io_uring_setup, where raw_syscalls cannot be hooked as tp_btf (there
/// `btf_sys_exit` sees it). Only failures are streamed: a ring that was set up shows
/// as io_uring_create.
#[tracepoint]
pub fn tp_setup_exit(ctx: TracePointContext) -> u32 {
    if mode() == KernelMode::Floor as u32 {
        return 0;
    }
    let ret = read_field(&ctx, spec(EventKind::SetupFailed, Slot::Res), &mut 0) as i64;
    if ret >= 0 {
        return 0;
    }
    let Some((pid_tgid, task)) = traced_task() else {
        return 0;
    };
    let mut ev = base_event(EventKind::SetupFailed, pid_tgid, task, now());
    ev.res = ret as i32;
    emit(&ev);
    0
}
