//! uringtrace's kernel programs.
//!
//! Every program is a classic tracepoint whose record layout is described by
//! [`Config`], which userspace fills from the running kernel's tracefs `format` files
//! before loading. Nothing here knows a field offset of any kernel version; a program
//! whose tracepoint does not exist on the running kernel is simply not loaded.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns,
    },
    macros::{btf_tracepoint, map, tracepoint},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, TracePointContext},
    EbpfContext as _,
};
use uringtrace_common::{
    Config, Counter, EventKind, FieldSpec, RawEvent, Role, Slot, CLONE_IO, NR_COUNTERS, NR_SLOTS,
};

/// Filled by userspace at load time (read-only for the programs).
#[no_mangle]
static CONFIG: Config = Config::zeroed();

/// Size is set by userspace (`--ring-size`).
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 24, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(NR_COUNTERS, 0);

/// Processes being traced when the filter is on (tgid -> 1). Children of traced
/// processes are added by `sched_process_fork`.
#[map]
static TGIDS: HashMap<u32, u32> = HashMap::with_max_entries(16384, 0);

/// Rings owned by traced processes (ctx -> tgid), so completions posted from another
/// task's context (MSG_RING, 5.10 IRQ completions) are still seen.
#[map]
static CTXS: HashMap<u64, u32> = HashMap::with_max_entries(8192, 0);

/// io_uring kernel threads (SQPOLL, io-wq) of traced processes: tid -> owner tgid.
/// Their sched events are traced; no other task's are.
#[map]
static IOTHREADS: HashMap<u32, u32> = HashMap::with_max_entries(16384, 0);

#[inline(always)]
fn count(c: Counter) {
    if let Some(p) = COUNTERS.get_ptr_mut(c as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *p += 1 };
    }
}

#[inline(always)]
fn cfg_u32(v: &u32) -> u32 {
    // SAFETY: reading our own static; volatile keeps rustc from folding the zeroed
    // initial value: the real value is patched into .rodata at load time.
    unsafe { core::ptr::read_volatile(v) }
}

#[inline(always)]
fn spec(kind: EventKind, slot: Slot) -> FieldSpec {
    // SAFETY: as in cfg_u32; indexes are compile-time constants within bounds.
    unsafe { core::ptr::read_volatile(&CONFIG.kinds[kind as usize].fields[slot as usize]) }
}

/// Narrows an 8-byte read to a field of `size` bytes (0: absent, gives 0),
/// sign-extending when asked. Branch-free on purpose: on older verifiers (6.1) a branch
/// per field doubled the states per field and passed the 1M-instruction limit.
#[inline(always)]
fn narrow(v: u64, s: FieldSpec) -> u64 {
    let shift = 64 - 8 * (s.size as u32 & 0xf).min(8);
    // Two half shifts, so that a shift by 64 (absent field) yields 0 instead of UB.
    let (a, b) = (shift / 2, shift - shift / 2);
    let up = (v << a) << b;
    let logical = (up >> a) >> b;
    let arith = (((up as i64) >> a) >> b) as u64;
    let signed = (s.signed as u64 & 1).wrapping_neg();
    (arith & signed) | (logical & !signed)
}

/// Reads 8 bytes at `addr`. The helper zero-fills the destination on failure, so the
/// result is usable either way; failures are tallied without a branch (a branch per
/// field on the helper's result doubled the verifier's states per field on 6.1).
#[inline(always)]
fn read_u64(addr: u64, errors: &mut u64) -> u64 {
    let mut v: u64 = 0;
    // SAFETY: the helper validates the source address and writes 8 bytes to `v`.
    let ret = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel(
            (&mut v as *mut u64).cast(),
            8,
            addr as *const core::ffi::c_void,
        )
    };
    *errors += (ret as u64) >> 63;
    v
}

#[inline(always)]
fn read_field(ctx: &TracePointContext, s: FieldSpec, errors: &mut u64) -> u64 {
    // The offset comes from the tracepoint's own format file; reading 8 bytes may run
    // past a short last field: narrow() masks the extra bytes off.
    narrow(read_u64(ctx.as_ptr() as u64 + s.offset as u64, errors), s)
}

/// Reads every configured field of `kind` into a zeroed event.
#[inline(always)]
fn fill(ctx: &TracePointContext, kind: EventKind, ev: &mut RawEvent) {
    let mut errors = 0u64;
    let mut i = 0;
    while i < NR_SLOTS {
        let slot = Slot::ALL[i];
        let s = spec(kind, slot);
        {
            let v = read_field(ctx, s, &mut errors);
            match slot {
                Slot::Ctx => ev.ctx = v,
                Slot::Req => ev.req = v,
                Slot::UserData => ev.user_data = v,
                Slot::Aux => ev.aux = v,
                Slot::Aux2 => ev.aux2 = v,
                Slot::Res => ev.res = v as i32,
                Slot::Cflags => ev.cflags = v as u32,
                Slot::Opcode => ev.opcode = v as u8,
                Slot::Arg0 => ev.args[0] = v as u32,
                Slot::Arg1 => ev.args[1] = v as u32,
                Slot::Arg2 => ev.args[2] = v as u32,
                Slot::Arg3 => ev.args[3] = v as u32,
            }
        }
        i += 1;
    }
    if errors != 0 {
        count(Counter::ReadErrors);
    }
}

#[inline(always)]
fn role_of(comm: &[u8; 16]) -> Role {
    let head = u64::from_ne_bytes([
        comm[0], comm[1], comm[2], comm[3], comm[4], comm[5], comm[6], comm[7],
    ]);
    role_of_prefix(head)
}

/// Classifies the first 8 bytes of a comm (see `Role::from_comm`).
#[inline(always)]
fn role_of_prefix(head: u64) -> Role {
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
fn tgid_traced(tgid: u32) -> bool {
    if tgid == cfg_u32(&CONFIG.self_tgid) {
        return false;
    }
    if cfg_u32(&CONFIG.filter_enabled) == 0 {
        return true;
    }
    // SAFETY: the value is only tested for presence.
    unsafe { TGIDS.get(&tgid).is_some() }
}

#[inline(always)]
fn emit(ev: &RawEvent) {
    match EVENTS.reserve::<RawEvent>(0) {
        Some(mut slot) => {
            // SAFETY: the slot is a reserved, 8-byte aligned RawEvent-sized area.
            unsafe { store(slot.as_mut_ptr(), ev) };
            // Userspace polls on a timer: waking it per event would cost more than the event.
            slot.submit(BPF_RB_NO_WAKEUP as u64);
            count(Counter::Emitted);
        }
        None => count(Counter::Dropped),
    }
}

/// Field-by-field copy with volatile stores. A plain struct copy compiles to a
/// byte-wise memcpy that the verifier rejects when a source field was spilled from a
/// register ("invalid size of register fill", seen on 6.18 with tp_btf arguments).
#[inline(always)]
unsafe fn store(dst: *mut RawEvent, ev: &RawEvent) {
    use core::ptr::{addr_of_mut, write_volatile as w};
    unsafe {
        w(addr_of_mut!((*dst).ts_ns), ev.ts_ns);
        w(addr_of_mut!((*dst).ctx), ev.ctx);
        w(addr_of_mut!((*dst).req), ev.req);
        w(addr_of_mut!((*dst).user_data), ev.user_data);
        w(addr_of_mut!((*dst).aux), ev.aux);
        w(addr_of_mut!((*dst).aux2), ev.aux2);
        w(addr_of_mut!((*dst).pid), ev.pid);
        w(addr_of_mut!((*dst).tgid), ev.tgid);
        w(addr_of_mut!((*dst).res), ev.res);
        w(addr_of_mut!((*dst).cflags), ev.cflags);
        let args = addr_of_mut!((*dst).args) as *mut u32;
        w(args, ev.args[0]);
        w(args.add(1), ev.args[1]);
        w(args.add(2), ev.args[2]);
        w(args.add(3), ev.args[3]);
        w(addr_of_mut!((*dst).kind), ev.kind);
        w(addr_of_mut!((*dst).cpu), ev.cpu);
        w(addr_of_mut!((*dst).opcode), ev.opcode);
        w(addr_of_mut!((*dst).role), ev.role);
        w(addr_of_mut!((*dst)._pad) as *mut u16, 0);
        let comm = addr_of_mut!((*dst).comm) as *mut u64;
        let src = ev.comm.as_ptr() as *const u64;
        w(comm, core::ptr::read_unaligned(src));
        w(comm.add(1), core::ptr::read_unaligned(src.add(1)));
    }
}

#[inline(always)]
fn base_event(kind: EventKind, pid_tgid: u64) -> RawEvent {
    let mut ev = RawEvent::default();
    ev.ts_ns = unsafe { bpf_ktime_get_ns() };
    ev.pid = pid_tgid as u32;
    ev.tgid = (pid_tgid >> 32) as u32;
    ev.kind = kind as u16;
    // SAFETY: plain helper call.
    ev.cpu = unsafe { bpf_get_smp_processor_id() } as u16;
    if let Ok(comm) = bpf_get_current_comm() {
        ev.role = role_of(&comm) as u8;
        ev.comm = comm;
    }
    ev
}

/// The io_uring tracepoints and io_uring_enter: filtered by process (or by ring).
#[inline(always)]
fn handle_io_uring(ctx: &TracePointContext, kind: EventKind) {
    let mut ev = base_event(kind, bpf_get_current_pid_tgid());
    fill(ctx, kind, &mut ev);
    finish_io_uring(&mut ev);
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
    let count_spec = spec(EventKind::TaskWorkRun, Slot::Arg0);
    if count_spec.size != 0 && read_field(&ctx, count_spec, &mut 0) == 0 {
        count(Counter::Filtered);
        return 0;
    }
    handle_io_uring(&ctx, EventKind::TaskWorkRun);
    0
}

/// Follow the children of traced processes, like `perf record -- CMD`.
#[tracepoint]
pub fn tp_process_fork(ctx: TracePointContext) -> u32 {
    if cfg_u32(&CONFIG.filter_enabled) == 0 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: presence test only.
    if unsafe { TGIDS.get(&tgid).is_none() } {
        return 0;
    }
    let mut ev = base_event(EventKind::ProcessFork, pid_tgid);
    fill(&ctx, EventKind::ProcessFork, &mut ev);
    let child = ev.args[1];
    if child != 0 {
        let _ = TGIDS.insert(&child, &1, 0);
    }
    emit(&ev);
    0
}

/// io threads are created with CLONE_IO (SQPOLL since 5.12, io-wq since 5.12);
/// `sched_process_fork` does not fire for them, task_newtask does.
#[tracepoint]
pub fn tp_task_newtask(ctx: TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let mut ev = base_event(EventKind::TaskNewtask, pid_tgid);
    fill(&ctx, EventKind::TaskNewtask, &mut ev);
    if ev.aux & CLONE_IO == 0 || !tgid_traced(tgid) {
        return 0;
    }
    let _ = IOTHREADS.insert(&ev.args[0], &tgid, 0);
    emit(&ev);
    0
}

/// The kernel names io threads after creation (`iou-wrk-<tid>`); the new comm is read
/// as two 8-byte halves into aux/aux2.
#[tracepoint]
pub fn tp_task_rename(ctx: TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let mut ev = base_event(EventKind::TaskRename, pid_tgid);
    fill(&ctx, EventKind::TaskRename, &mut ev);
    if role_of_prefix(ev.aux) == Role::Submitter || !tgid_traced(tgid) {
        return 0;
    }
    let tid = if ev.args[0] != 0 {
        ev.args[0]
    } else {
        pid_tgid as u32
    };
    let _ = IOTHREADS.insert(&tid, &tgid, 0);
    emit(&ev);
    0
}

#[inline(always)]
fn is_iothread(tid: u32) -> bool {
    // SAFETY: presence test only.
    tid != 0 && unsafe { IOTHREADS.get(&tid).is_some() }
}

/// Wakeups of io threads: args[0] = woken tid. The current task is the waker.
#[tracepoint]
pub fn tp_sched_waking(ctx: TracePointContext) -> u32 {
    let target = read_field(&ctx, spec(EventKind::SchedWaking, Slot::Arg0), &mut 0) as u32;
    if !is_iothread(target) {
        return 0;
    }
    let mut ev = base_event(EventKind::SchedWaking, bpf_get_current_pid_tgid());
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
    let mut ev = base_event(EventKind::SchedSwitch, bpf_get_current_pid_tgid());
    fill(&ctx, EventKind::SchedSwitch, &mut ev);
    emit(&ev);
    0
}

/// Reads a field of a kernel struct at `base` + spec.offset (BTF-derived offsets).
#[inline(always)]
fn read_struct(base: u64, s: FieldSpec) -> u64 {
    let mut errors = 0;
    let v = narrow(read_u64(base + s.offset as u64, &mut errors), s);
    if errors != 0 {
        count(Counter::ReadErrors);
    }
    v
}

#[inline(always)]
fn btf_spec(s: &FieldSpec) -> FieldSpec {
    // SAFETY: see cfg_u32.
    unsafe { core::ptr::read_volatile(s) }
}

/// Emits an io_uring event after the process filter (classic and tp_btf programs).
#[inline(always)]
fn finish_io_uring(ev: &mut RawEvent) {
    let tgid = ev.tgid;
    if !tgid_traced(tgid) {
        let via_ring = tgid != cfg_u32(&CONFIG.self_tgid)
            && ev.ctx != 0
            // SAFETY: presence test only.
            && unsafe { CTXS.get(&ev.ctx).is_some() };
        if !via_ring {
            count(Counter::Filtered);
            return;
        }
    } else if (ev.kind == EventKind::Submit as u16 || ev.kind == EventKind::Create as u16)
        && cfg_u32(&CONFIG.filter_enabled) != 0
        && ev.ctx != 0
        // SAFETY: presence test only.
        && unsafe { CTXS.get(&ev.ctx).is_none() }
    {
        let _ = CTXS.insert(&ev.ctx, &tgid, 0);
    }
    emit(ev);
}

/// io_uring_complete(ctx, req, cqe) as tp_btf (6.3+ prototype): no trace record is
/// built, which makes this the cheapest way to see every completion.
#[btf_tracepoint(function = "io_uring_complete")]
pub fn btf_complete(ctx: BtfTracePointContext) -> i32 {
    let mut ev = base_event(EventKind::Complete, bpf_get_current_pid_tgid());
    let ring: u64 = ctx.arg(0);
    let req: u64 = ctx.arg(1);
    let cqe: u64 = ctx.arg(2);
    let b = &CONFIG.btf;
    ev.ctx = ring;
    ev.req = req;
    ev.user_data = read_struct(cqe, btf_spec(&b.cqe_user_data));
    ev.res = read_struct(cqe, btf_spec(&b.cqe_res)) as i32;
    ev.cflags = read_struct(cqe, btf_spec(&b.cqe_flags)) as u32;
    finish_io_uring(&mut ev);
    0
}

/// io_uring_submit_req(req) as tp_btf (6.4+): fields read from struct io_kiocb.
#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn btf_submit(ctx: BtfTracePointContext) -> i32 {
    let mut ev = base_event(EventKind::Submit, bpf_get_current_pid_tgid());
    let req: u64 = ctx.arg(0);
    let b = &CONFIG.btf;
    ev.req = req;
    ev.ctx = read_struct(req, btf_spec(&b.req_ctx));
    ev.opcode = read_struct(req, btf_spec(&b.req_opcode)) as u8;
    ev.aux = read_struct(req, btf_spec(&b.req_flags));
    ev.user_data = read_struct(req, btf_spec(&b.req_user_data));
    ev.args[2] = read_struct(req, btf_spec(&b.req_fd)) as u32;
    // Same meaning as the classic tracepoint's `sq_thread`: the ring has SQPOLL.
    let setup = read_struct(ev.ctx, btf_spec(&b.ctx_flags));
    ev.args[1] = ((setup >> 1) & 1) as u32;
    finish_io_uring(&mut ev);
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
