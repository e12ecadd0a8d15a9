//! tp_btf programs for the events that fire per request or per syscall: no trace
//! record is built, and struct members are plain loads. Attached only where the
//! kernel's BTF shows the prototype each was written for (`trace/btf.rs`).

use super::*;
use uringtrace_common::opcode as op;
use uringtrace_common::view::{self, COMPLETE_FILE_NOT_REGULAR};

/// io_uring_complete(ctx, req, cqe) as tp_btf (6.3+ prototype): no trace record is
/// built, which makes this the cheapest way to see every completion.
#[btf_tracepoint(function = "io_uring_complete")]
pub fn btf_complete(ctx: BtfTracePointContext) -> i32 {
    if mode() == KernelMode::Floor as u32 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(task) = current_task(pid_tgid) else {
        return 0;
    };
    let req: u64 = ctx.arg(1);
    let tgid = (pid_tgid >> 32) as u32;
    // A traced task's request held in the in-flight table names its ring there,
    // which saves reading the typed ctx argument through the helper.
    let slot = if task.traced != 0 {
        inflight_of(req)
    } else {
        None
    };
    let ring = match slot {
        // SAFETY: slot points at an INFLIGHT value.
        Some(s) => unsafe { (*s).ctx },
        None => match scratch(Scratch::Complete) {
            Some(scr) => ptr_value(ctx.arg(0), scr),
            None => return 0,
        },
    };
    if !passes_filter(task, tgid, ring, EventKind::Complete as u16) {
        return 0;
    }
    let cqe: *const u8 = ctx.arg(2);
    let b = &CONFIG.btf;
    let res = load(cqe, btf_spec(&b.cqe_res)) as i32;
    let cflags = load(cqe, btf_spec(&b.cqe_flags)) as u32;
    let ts = if mode() == KernelMode::Aggregate as u32 {
        let c = Comp {
            ts: None,
            ctx: ring,
            req,
            // Only an aux CQE (multishot intermediate) is looked up by user_data.
            user_data: if req == 0 {
                load(cqe, btf_spec(&b.cqe_user_data))
            } else {
                0
            },
            res,
            cflags,
        };
        // A ring traced through CTXS (task not traced) has no slot looked up yet.
        let slot = if task.traced != 0 {
            slot
        } else {
            inflight_of(req)
        };
        match agg_complete(&c, slot) {
            Some(ts) => ts,
            None => return 0,
        }
    } else {
        now()
    };
    let mut ev = base_event(EventKind::Complete, pid_tgid, task, ts);
    ev.ctx = ring;
    ev.req = req;
    ev.user_data = load(cqe, btf_spec(&b.cqe_user_data));
    ev.res = res;
    ev.cflags = cflags;
    // Regular file or not (`view::Complete::file`: 0 unknown, 1 no, 2 yes), for
    // streamed completions with a result that can be short: it tells end of file from
    // a short pipe read. The prototype's req is a `void *`: read through the helper
    // (~15 ns), and only here, for the few completions aggregating mode streams.
    let isreg = btf_spec(&b.req_isreg_bit);
    if isreg.size != 0 && res > 0 {
        let flags = read_struct(req, btf_spec(&b.req_flags));
        ev.args[1] = COMPLETE_FILE_NOT_REGULAR + ((flags >> (isreg.offset & 63)) & 1) as u32;
    }
    emit(&ev);
    0
}

/// io_uring_submit_req(req) as tp_btf (6.4+): fields read from struct io_kiocb.
#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn btf_submit(ctx: BtfTracePointContext) -> i32 {
    if mode() == KernelMode::Floor as u32 {
        return 0;
    }
    let Some((pid_tgid, task)) = traced_task() else {
        return 0;
    };
    let req_ptr: *const u8 = ctx.arg(0);
    let Some(scr) = scratch(Scratch::Submit) else {
        return 0;
    };
    let req = ptr_value(req_ptr, scr);
    let b = &CONFIG.btf;
    let ring = ptr_member(req_ptr, btf_spec(&b.req_ctx), scr);
    let tgid = (pid_tgid >> 32) as u32;
    passes_filter(task, tgid, ring, EventKind::Submit as u16);
    let opcode = load(req_ptr, btf_spec(&b.req_opcode)) as u8;
    let flags = load(req_ptr, btf_spec(&b.req_flags));
    let user_data = load(req_ptr, btf_spec(&b.req_user_data));
    let fd_spec = btf_spec(&b.req_fd);
    let fd = load(req_ptr, fd_spec) as u32;
    // Known, even when 0 (registered-file slot 0), when the layout has req->cqe.fd.
    let fd_known = (fd_spec.size != 0) as u8;
    let ts = now();
    if mode() == KernelMode::Aggregate as u32 {
        let sub = Sub {
            ts,
            ctx: ring,
            req,
            user_data,
            flags,
            pid_tgid,
            fd,
            fd_known,
            opcode,
            role: task.role as u8,
        };
        if !agg_submit(&sub) {
            return 0;
        }
        submit_streamed(task, ts);
    }
    let mut ev = base_event(EventKind::Submit, pid_tgid, task, ts);
    ev.req = req;
    ev.ctx = ring;
    ev.opcode = opcode;
    ev.aux = flags;
    ev.user_data = user_data;
    ev.args[2] = fd;
    ev.args[1] = view::submit_arg1(sq_thread(task.role as u8), fd_known);
    // FUTEX_WAIT, FUTEX_WAKE: the futex word, for wait-for edges.
    let futex = btf_spec(&b.req_futex_uaddr);
    if (opcode == op::FUTEX_WAIT || opcode == op::FUTEX_WAKE) && futex.size != 0 {
        ev.aux2 = load(req_ptr, futex);
    }
    emit(&ev);
    0
}

/// io_uring_file_get(req, fd) and io_uring_task_add(req, mask) as tp_btf (prototype
/// `(struct io_kiocb *, int)`; 6.12 and 7.3 have it, 6.1 not): both fire once per request of many workloads
/// (file_get at issue; task_add for completions through task work, such as O_DIRECT
/// reads), and the classic record cost ~400 ns an event streamed (fio, 6.18).
/// task_add can run in interrupt context on any task: the filter goes by ring.
#[inline(always)]
fn req_event(ctx: &BtfTracePointContext, kind: EventKind) -> i32 {
    if mode() == KernelMode::Floor as u32 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(task) = current_task(pid_tgid) else {
        return 0;
    };
    let req_ptr: *const u8 = ctx.arg(0);
    let which = if kind == EventKind::TaskAdd {
        Scratch::TaskAdd
    } else {
        Scratch::FileGet
    };
    let Some(scr) = scratch(which) else {
        return 0;
    };
    let req = ptr_value(req_ptr, scr);
    let slot = inflight_of(req);
    if let Some(s) = slot {
        // SAFETY: s points at an INFLIGHT value.
        if mode() == KernelMode::Aggregate as u32 && unsafe { (*s).streamed } == 0 {
            // A request that is only counted: the analyzer follows nothing of it.
            return 0;
        }
    }
    let b = &CONFIG.btf;
    let ring = match slot {
        // SAFETY: s points at an INFLIGHT value.
        Some(s) => unsafe { (*s).ctx },
        None => ptr_member(req_ptr, btf_spec(&b.req_ctx), scr),
    };
    let mut ev = base_event(kind, pid_tgid, task, now());
    ev.ctx = ring;
    ev.req = req;
    ev.user_data = load(req_ptr, btf_spec(&b.req_user_data));
    ev.opcode = load(req_ptr, btf_spec(&b.req_opcode)) as u8;
    ev.args[0] = ctx.arg::<i64>(1) as u32;
    finish_io_uring(&mut ev, task);
    0
}

#[btf_tracepoint(function = "io_uring_file_get")]
pub fn btf_file_get(ctx: BtfTracePointContext) -> i32 {
    req_event(&ctx, EventKind::FileGet)
}

#[btf_tracepoint(function = "io_uring_task_add")]
pub fn btf_task_add(ctx: BtfTracePointContext) -> i32 {
    req_event(&ctx, EventKind::TaskAdd)
}

/// io_uring_enter's entry through raw_syscalls:sys_enter (tp_btf): every syscall of
/// the host runs this, so anything but io_uring_enter returns after one compare.
#[btf_tracepoint(function = "sys_enter")]
pub fn btf_sys_enter(ctx: BtfTracePointContext) -> i32 {
    let id: i64 = ctx.arg(1);
    if id != cfg_u32(&CONFIG.enter_nr) as i64 || mode() == KernelMode::Floor as u32 {
        return 0;
    }
    let Some((pid_tgid, task)) = traced_task() else {
        return 0;
    };
    let regs: *const u8 = ctx.arg(0);
    let mut e = Enter {
        ts: 0,
        fd: syscall_arg(regs, 0) as u32,
        to_submit: syscall_arg(regs, 1) as u32,
        min_complete: syscall_arg(regs, 2) as u32,
        flags: syscall_arg(regs, 3) as u32,
        argp: syscall_arg(regs, 4),
        argsz: syscall_arg(regs, 5) as u32,
        _pad: 0,
    };
    if mode() == KernelMode::Aggregate as u32 && !e.must_stream() {
        hold_enter(&e, task);
    } else {
        e.ts = now();
        if mode() == KernelMode::Aggregate as u32 {
            stream_enter(&e, pid_tgid, task);
        } else {
            emit(&e.event(pid_tgid, task));
        }
    }
    0
}

/// io_uring_enter's exit through raw_syscalls:sys_exit (tp_btf).
#[btf_tracepoint(function = "sys_exit")]
pub fn btf_sys_exit(ctx: BtfTracePointContext) -> i32 {
    let regs: *const u8 = ctx.arg(0);
    let nr = load(regs, btf_spec(&CONFIG.btf.regs_nr));
    let enter_nr = cfg_u32(&CONFIG.enter_nr) as u64;
    if nr != enter_nr || mode() == KernelMode::Floor as u32 {
        // io_uring_setup is one below io_uring_enter on every architecture (425/426;
        // alpha 535/536): one more compare for the host's other syscalls.
        if nr == enter_nr.wrapping_sub(1) {
            setup_exit(&ctx, regs);
        }
        return 0;
    }
    let Some((pid_tgid, task)) = traced_task() else {
        return 0;
    };
    let ret = ctx.arg::<i64>(1) as i32;
    if mode() == KernelMode::Aggregate as u32 {
        // The argument registers still hold the enter's arguments (x86_64 returns in
        // ax only), so whether the enter was streamed does not depend on the per-CPU
        // task cache, which another task may have taken while this one waited.
        let streamed = enter_must_stream(syscall_arg(regs, 3) as u32, syscall_arg(regs, 2) as u32);
        if !streamed && task.enter_streamed == 0 && enter_error_matters(ret) {
            // A failure enter-error reports, of an enter that was held back: the
            // enter is rebuilt from the same registers, just before its exit.
            let e = Enter {
                ts: now(),
                fd: syscall_arg(regs, 0) as u32,
                to_submit: syscall_arg(regs, 1) as u32,
                min_complete: syscall_arg(regs, 2) as u32,
                flags: syscall_arg(regs, 3) as u32,
                argp: syscall_arg(regs, 4),
                argsz: syscall_arg(regs, 5) as u32,
                _pad: 0,
            };
            emit(&e.event(pid_tgid, task));
            task.enter_streamed = 1;
            task.held = 0;
        }
        agg_enter_exit(ret, pid_tgid, streamed, task);
    } else {
        let mut ev = base_event(EventKind::EnterExit, pid_tgid, task, now());
        ev.res = ret;
        emit(&ev);
    }
    0
}

/// A failed io_uring_setup of a traced process (`io-uring-unavailable`): rare, so
/// streamed in every mode. Successful setups show as io_uring_create.
#[inline(always)]
fn setup_exit(ctx: &BtfTracePointContext, regs: *const u8) {
    let ret = ctx.arg::<i64>(1);
    if ret >= 0 || mode() == KernelMode::Floor as u32 {
        return;
    }
    let Some((pid_tgid, task)) = traced_task() else {
        return;
    };
    let mut ev = base_event(EventKind::SetupFailed, pid_tgid, task, now());
    ev.res = ret as i32;
    ev.args[3] = syscall_arg(regs, 0) as u32;
    emit(&ev);
}

/// An io thread (SQPOLL, io-wq), told by its comm's first 8 bytes: one load from the
/// task_struct the tracepoint hands over. Every context switch and wakeup of the host
/// runs the scheduler programs, so any other task returns here, before a map lookup.
#[inline(always)]
fn io_thread_name(task: *const u8) -> bool {
    role_of_prefix(load(task, btf_spec(&CONFIG.btf.task_comm))) != Role::Submitter
}

/// sched_waking(p) as tp_btf: wakeups of io threads (args[0] = woken tid; the current
/// task is the waker). The classic tracepoint builds a trace record for every wakeup
/// of the host before the program can look.
#[btf_tracepoint(function = "sched_waking")]
pub fn btf_sched_waking(ctx: BtfTracePointContext) -> i32 {
    let p: *const u8 = ctx.arg(0);
    if !io_thread_name(p) {
        return 0;
    }
    let b = &CONFIG.btf;
    let target = load(p, btf_spec(&b.task_pid)) as u32;
    if !is_iothread(target) {
        return 0;
    }
    let mut ev = fresh_event(EventKind::SchedWaking, bpf_get_current_pid_tgid());
    ev.args[0] = target;
    ev.args[2] = load(p, btf_spec(&b.task_prio)) as u32;
    emit(&ev);
    0
}

/// prev_state as the classic sched_switch record reports it
/// (`__trace_sched_switch_state`, 6.18): TASK_REPORT_MAX (0x100) when preempted, else
/// the highest bit of the state and exit state within TASK_REPORT (0x7f), so that both
/// attach types give the analyzer the same events.
#[inline(always)]
fn reported_state(preempt: bool, prev_state: u32, exit_state: u32) -> u64 {
    const TASK_REPORT: u32 = 0x7f;
    const TASK_REPORT_MAX: u64 = 0x100;
    if preempt {
        return TASK_REPORT_MAX;
    }
    let s = (prev_state | exit_state) & TASK_REPORT;
    if s == 0 {
        0
    } else {
        1u64 << (31 - s.leading_zeros())
    }
}

/// sched_switch(preempt, prev, next, prev_state) as tp_btf (5.18+ prototype): context
/// switches into or out of io threads, args[0] = prev tid, args[1] = next tid,
/// aux = prev_state, as the classic program fills them.
#[btf_tracepoint(function = "sched_switch")]
pub fn btf_sched_switch(ctx: BtfTracePointContext) -> i32 {
    let prev: *const u8 = ctx.arg(1);
    let next: *const u8 = ctx.arg(2);
    if !io_thread_name(prev) && !io_thread_name(next) {
        return 0;
    }
    let b = &CONFIG.btf;
    let prev_tid = load(prev, btf_spec(&b.task_pid)) as u32;
    let next_tid = load(next, btf_spec(&b.task_pid)) as u32;
    if !is_iothread(prev_tid) && !is_iothread(next_tid) {
        return 0;
    }
    let mut ev = fresh_event(EventKind::SchedSwitch, bpf_get_current_pid_tgid());
    ev.args = [
        prev_tid,
        next_tid,
        load(prev, btf_spec(&b.task_prio)) as u32,
        load(next, btf_spec(&b.task_prio)) as u32,
    ];
    let preempt = ctx.arg::<u64>(0) & 0xff != 0;
    let prev_state = ctx.arg::<u64>(3) as u32;
    let exit_state = load(prev, btf_spec(&b.task_exit_state)) as u32;
    ev.aux = reported_state(preempt, prev_state, exit_state);
    emit(&ev);
    0
}
