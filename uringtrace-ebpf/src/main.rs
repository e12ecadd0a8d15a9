//! uringtrace's kernel programs.
//!
//! Every program is a classic tracepoint whose record layout is described by
//! [`Config`], which userspace fills from the running kernel's tracefs `format` files
//! before loading. Nothing here knows a field offset of any kernel version; a program
//! whose tracepoint does not exist on the running kernel is simply not loaded.
#![no_std]
#![no_main]
// atomic_xadd: core's atomic types have no fetch_add on the BPF target.
#![allow(internal_features)]
#![feature(core_intrinsics)]

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns,
    },
    macros::{btf_tracepoint, map, tracepoint},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, TracePointContext},
    EbpfContext as _,
};
use uringtrace_common::{
    aggregate::{self as agg, Inflight, OpAgg, RingAgg, INFLIGHT_SLOTS, OPCODE_SLOTS, RING_SLOTS},
    Config, Counter, EventKind, FieldSpec, KernelMode, RawEvent, Role, Slot, CLONE_IO, NR_COUNTERS,
    NR_SLOTS,
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

/// Aggregating mode: requests in flight, direct-mapped by request pointer. Userspace
/// maps it to find requests that are still running long after their submit.
#[map]
static INFLIGHT: Array<Inflight> = Array::with_max_entries(INFLIGHT_SLOTS, BPF_F_MMAPABLE);

/// Aggregating mode: per-ring submit/complete counts (atomic adds).
#[map]
static RINGS: Array<RingAgg> = Array::with_max_entries(RING_SLOTS, 0);

/// Aggregating mode: per-CPU count and latency histogram per (ring slot, opcode).
#[map]
static OPSTATS: PerCpuArray<OpAgg> = PerCpuArray::with_max_entries(RING_SLOTS * OPCODE_SLOTS, 0);

/// Aggregating mode: the ring whose link chain is being submitted on this CPU. A
/// chain is built inside one io_uring_enter under the ring's lock; its last member
/// carries no link flag, so it is recognised by following a linked submit.
#[map]
static CHAIN: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

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

/// Bytes of a trace record copied at once: nearly every io_uring and io_uring_enter
/// field on 5.10 to 7.x lies within the first 64; fields beyond are read one by one.
/// (The copy lives on the 512-byte BPF stack, next to the event.)
const RECORD_COPY: usize = 64;

/// A field from the record copy. Context loads need offsets fixed at compile time
/// ("dereference of modified ctx ptr"), and a helper call per field cost ~15 ns, 12
/// per event (6.18): one copy of the record and plain stack loads are far cheaper.
#[inline(always)]
fn record_field(
    ctx: &TracePointContext,
    rec: &[u8; RECORD_COPY],
    s: FieldSpec,
    errors: &mut u64,
) -> u64 {
    if s.size == 0 {
        return 0;
    }
    let off = s.offset as usize;
    if off + 8 <= RECORD_COPY {
        // SAFETY: off + 8 is within the copy.
        let v = unsafe { core::ptr::read_unaligned(rec.as_ptr().add(off) as *const u64) };
        return narrow(v, s);
    }
    read_field(ctx, s, errors)
}

/// Reads every configured field of `kind` into a zeroed event.
#[inline(always)]
fn fill(ctx: &TracePointContext, kind: EventKind, ev: &mut RawEvent) {
    let mut errors = 0u64;
    let mut rec = [0u8; RECORD_COPY];
    // SAFETY: the helper validates the source and writes RECORD_COPY bytes to `rec`
    // (zeros on failure). Reading past a short record stays inside the trace buffer.
    let ret = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel(
            rec.as_mut_ptr().cast(),
            RECORD_COPY as u32,
            ctx.as_ptr(),
        )
    };
    errors += (ret as u64) >> 63;
    let mut i = 0;
    while i < NR_SLOTS {
        let slot = Slot::ALL[i];
        let s = spec(kind, slot);
        {
            let v = record_field(ctx, &rec, s, &mut errors);
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
#[allow(clippy::too_many_arguments)]
unsafe fn store_fields(
    dst: *mut RawEvent,
    ts: u64,
    ctx: u64,
    req: u64,
    user_data: u64,
    args: [u32; 4],
    res: i32,
    kind: u16,
    opcode: u8,
    comm: [u8; 16],
) {
    use core::ptr::{addr_of_mut, write_volatile as w};
    unsafe {
        w(addr_of_mut!((*dst).ts_ns), ts);
        w(addr_of_mut!((*dst).ctx), ctx);
        w(addr_of_mut!((*dst).req), req);
        w(addr_of_mut!((*dst).user_data), user_data);
        w(addr_of_mut!((*dst).aux), 0);
        w(addr_of_mut!((*dst).aux2), 0);
        w(addr_of_mut!((*dst).pid), 0);
        w(addr_of_mut!((*dst).tgid), 0);
        w(addr_of_mut!((*dst).res), res);
        w(addr_of_mut!((*dst).cflags), 0);
        let a = addr_of_mut!((*dst).args) as *mut u32;
        w(a, args[0]);
        w(a.add(1), args[1]);
        w(a.add(2), args[2]);
        w(a.add(3), args[3]);
        w(addr_of_mut!((*dst).kind), kind);
        w(addr_of_mut!((*dst).cpu), 0);
        w(addr_of_mut!((*dst).opcode), opcode);
        w(addr_of_mut!((*dst).role), 0);
        w(addr_of_mut!((*dst)._pad) as *mut u16, 0);
        let c = addr_of_mut!((*dst).comm) as *mut u64;
        w(
            c,
            u64::from_ne_bytes([
                comm[0], comm[1], comm[2], comm[3], comm[4], comm[5], comm[6], comm[7],
            ]),
        );
        w(
            c.add(1),
            u64::from_ne_bytes([
                comm[8], comm[9], comm[10], comm[11], comm[12], comm[13], comm[14], comm[15],
            ]),
        );
    }
}

/// Copies `ev` to `dst`: [`store_fields`], then the fields it zeroes.
#[inline(always)]
unsafe fn store(dst: *mut RawEvent, ev: &RawEvent) {
    use core::ptr::{addr_of_mut, write_volatile as w};
    unsafe {
        store_fields(
            dst,
            ev.ts_ns,
            ev.ctx,
            ev.req,
            ev.user_data,
            ev.args,
            ev.res,
            ev.kind,
            ev.opcode,
            ev.comm,
        );
        w(addr_of_mut!((*dst).aux), ev.aux);
        w(addr_of_mut!((*dst).aux2), ev.aux2);
        w(addr_of_mut!((*dst).pid), ev.pid);
        w(addr_of_mut!((*dst).tgid), ev.tgid);
        w(addr_of_mut!((*dst).cflags), ev.cflags);
        w(addr_of_mut!((*dst).cpu), ev.cpu);
        w(addr_of_mut!((*dst).role), ev.role);
    }
}

/// A zeroed event. `RawEvent::default()` compiles to a call of a byte-by-byte memset
/// subprogram (7% of a NOP storm's CPU time in a profile, 6.18); volatile stores of
/// whole fields cannot be merged into one.
#[inline(always)]
fn blank() -> RawEvent {
    let mut ev = core::mem::MaybeUninit::<RawEvent>::uninit();
    let p = ev.as_mut_ptr();
    // SAFETY: every byte of the event is written by `store` before it is read.
    unsafe {
        store_fields(p, 0, 0, 0, 0, [0; 4], 0, 0, 0, [0; 16]);
        ev.assume_init()
    }
}

/// What every event needs about the current task, cached per CPU: looking up the
/// process filter (a hash map) and copying the comm on every io_uring event cost more
/// than the rest of a tp_btf program on a NOP storm.
#[repr(C)]
pub struct TaskCache {
    pid_tgid: u64,
    /// FILTER_GEN when this entry was filled.
    gen: u64,
    /// The ring most recently registered in CTXS by this task.
    last_ctx: u64,
    traced: u32,
    role: u32,
    comm: [u8; 16],
    /// Aggregating mode: the current io_uring_enter's arguments, held back until its
    /// exit shows whether anything the analyzer follows happened during it.
    held_enter: Enter,
    held: u32,
    /// The enter event was streamed, so its exit must be too.
    enter_streamed: u32,
    /// A submit was streamed during the current enter (a chain: its end at the batch
    /// end matters to the analyzer).
    submit_streamed: u32,
    _pad: u32,
}

#[map]
static TASK: PerCpuArray<TaskCache> = PerCpuArray::with_max_entries(1, 0);

/// Bumped whenever the filter or a task's comm changes, which invalidates every
/// CPU's TaskCache (userspace bumps it after adding pids).
#[map]
static FILTER_GEN: Array<u64> = Array::with_max_entries(1, 0);

#[inline(always)]
fn filter_gen() -> u64 {
    FILTER_GEN.get(0).copied().unwrap_or(0)
}

/// The current task, with its filter verdict, role and comm.
#[inline(always)]
fn current_task(pid_tgid: u64) -> Option<&'static mut TaskCache> {
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
        c.traced = tgid_traced((pid_tgid >> 32) as u32) as u32;
        c.comm = bpf_get_current_comm().unwrap_or([0; 16]);
        c.role = role_of(&c.comm) as u32;
    }
    Some(c)
}

#[inline(always)]
fn base_event(kind: EventKind, pid_tgid: u64, task: &TaskCache, ts_ns: u64) -> RawEvent {
    let mut ev = blank();
    ev.ts_ns = ts_ns;
    ev.pid = pid_tgid as u32;
    ev.tgid = (pid_tgid >> 32) as u32;
    ev.kind = kind as u16;
    // SAFETY: plain helper call.
    ev.cpu = unsafe { bpf_get_smp_processor_id() } as u16;
    ev.role = task.role as u8;
    ev.comm = task.comm;
    ev
}

/// An event of a rarely hit tracepoint (fork, io-thread creation, sched of io
/// threads): no cache, the comm is read directly.
#[inline(always)]
fn fresh_event(kind: EventKind, pid_tgid: u64) -> RawEvent {
    let mut ev = blank();
    ev.ts_ns = now();
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

#[inline(always)]
fn now() -> u64 {
    // SAFETY: plain helper call.
    unsafe { bpf_ktime_get_ns() }
}

/// The io_uring tracepoints and io_uring_enter: filtered by process (or by ring).
#[inline(always)]
fn handle_io_uring(ctx: &TracePointContext, kind: EventKind) {
    if mode() == KernelMode::Floor as u32 {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(task) = current_task(pid_tgid) else {
        return;
    };
    let mut ev = base_event(kind, pid_tgid, task, now());
    fill(ctx, kind, &mut ev);
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
    let mut ev = fresh_event(EventKind::ProcessFork, pid_tgid);
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
    let mut ev = fresh_event(EventKind::TaskNewtask, pid_tgid);
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
    let mut ev = fresh_event(EventKind::TaskRename, pid_tgid);
    fill(&ctx, EventKind::TaskRename, &mut ev);
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
fn finish_io_uring(ev: &mut RawEvent, task: &mut TaskCache) {
    if !passes_filter(task, ev.tgid, ev.ctx, ev.kind) {
        return;
    }
    if mode() == KernelMode::Aggregate as u32 {
        aggregate(ev, task);
    } else {
        emit(ev);
    }
}

/// The process filter, by task or by ring; remembers the rings of traced tasks.
#[inline(always)]
fn passes_filter(task: &mut TaskCache, tgid: u32, ctx: u64, kind: u16) -> bool {
    if task.traced == 0 {
        let via_ring = tgid != cfg_u32(&CONFIG.self_tgid)
            && ctx != 0
            // SAFETY: presence test only.
            && unsafe { CTXS.get(&ctx).is_some() };
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
        if unsafe { CTXS.get(&ctx).is_none() } {
            let _ = CTXS.insert(&ctx, &tgid, 0);
        }
    }
    true
}

#[inline(always)]
fn mode() -> u32 {
    cfg_u32(&CONFIG.mode)
}

#[inline(always)]
fn slow_ns() -> u64 {
    // SAFETY: see cfg_u32.
    unsafe { core::ptr::read_volatile(&CONFIG.slow_ns) }
}

#[inline(always)]
fn atomic_inc(p: *mut u64) {
    // SAFETY: p points into a map value, 8-byte aligned; the result is unused, so this
    // compiles to BPF_XADD, which every kernel we support accepts.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            p, 1,
        )
    };
}

/// The ring's aggregation slot, claimed on first use. None: another ring holds it
/// (this ring is then streamed in full).
#[inline(always)]
fn ring_slot(ctx: u64, tgid: u32) -> Option<*mut RingAgg> {
    let r = RINGS.get_ptr_mut(agg::ring_index(ctx))?;
    // SAFETY: r points at a RINGS value; racing claims are benign (one ctx wins and
    // the loser is streamed).
    unsafe {
        if (*r).ctx == ctx {
            return Some(r);
        }
        if (*r).ctx == 0 {
            (*r).ctx = ctx;
            (*r).tgid = tgid;
            return Some(r);
        }
    }
    None
}

/// The classic submit tracepoint's `sq_thread` (the ring has SQPOLL), from the
/// submitting task: on an SQPOLL ring only its thread submits, and an SQPOLL thread
/// serves only SQPOLL rings. Reading `ctx->flags` instead cost a helper call per
/// streamed submit.
#[inline(always)]
fn sq_thread(role: u8) -> u32 {
    (role == Role::SqPoll as u8) as u32
}

/// Streams the submit of a request that was held back in the in-flight table. Its
/// timestamp is the real submit time.
#[inline(always)]
fn promote(slot: *mut Inflight) {
    // SAFETY: slot points at an INFLIGHT value.
    let s = unsafe { &mut *slot };
    s.streamed = 1;
    count(Counter::Promoted);
    let args = [0, sq_thread(s.role), s.fd, agg::SUBMIT_FROM_TABLE];
    // Written straight into the ring buffer: an event on this frame's stack pushed
    // the classic programs past the 512-byte stack limit on 5.10 and 6.1.
    let Some(mut out) = EVENTS.reserve::<RawEvent>(0) else {
        count(Counter::Dropped);
        return;
    };
    let p = out.as_mut_ptr();
    // SAFETY: p is a reserved, 8-byte aligned RawEvent-sized area; every field is
    // written (store_fields zeroes what is not set here).
    unsafe {
        use core::ptr::{addr_of_mut, write_volatile as w};
        let ev_kind = EventKind::Submit as u16;
        store_fields(
            p,
            s.ts_ns,
            s.ctx,
            s.req,
            s.user_data,
            args,
            0,
            ev_kind,
            s.opcode,
            [0; 16],
        );
        w(addr_of_mut!((*p).aux), s.flags);
        w(addr_of_mut!((*p).pid), s.pid);
        w(addr_of_mut!((*p).tgid), s.tgid);
        w(addr_of_mut!((*p).cpu), bpf_get_smp_processor_id() as u16);
        w(addr_of_mut!((*p).role), s.role);
    }
    out.submit(BPF_RB_NO_WAKEUP as u64);
    count(Counter::Emitted);
}

/// The in-flight slot of `req` when it holds that request.
#[inline(always)]
fn inflight_of(req: u64) -> Option<*mut Inflight> {
    if req == 0 {
        return None;
    }
    let slot = INFLIGHT.get_ptr_mut(agg::inflight_index(req))?;
    // SAFETY: slot points at an INFLIGHT value.
    if unsafe { (*slot).req } == req {
        Some(slot)
    } else {
        None
    }
}

/// Aggregating mode: successful fast requests are only counted; everything a
/// detector needs reaches userspace.
#[inline(always)]
fn aggregate(ev: &mut RawEvent, task: &mut TaskCache) {
    const SUBMIT: u16 = EventKind::Submit as u16;
    const COMPLETE: u16 = EventKind::Complete as u16;
    const TASK_ADD: u16 = EventKind::TaskAdd as u16;
    const CQRING_WAIT: u16 = EventKind::CqringWait as u16;
    const CQE_OVERFLOW: u16 = EventKind::CqeOverflow as u16;
    const LINK: u16 = EventKind::Link as u16;
    const FAIL_LINK: u16 = EventKind::FailLink as u16;
    const ASYNC: u16 = EventKind::QueueAsyncWork as u16;
    const POLL_ARM: u16 = EventKind::PollArm as u16;
    const DEFER: u16 = EventKind::Defer as u16;
    const SHORT_WRITE: u16 = EventKind::ShortWrite as u16;
    const ENTER: u16 = EventKind::EnterEnter as u16;
    const FILE_GET: u16 = EventKind::FileGet as u16;
    const ENTER_EXIT: u16 = EventKind::EnterExit as u16;
    match ev.kind {
        SUBMIT => {
            let sub = Sub {
                ts: ev.ts_ns,
                ctx: ev.ctx,
                req: ev.req,
                user_data: ev.user_data,
                flags: ev.aux,
                pid_tgid: ((ev.tgid as u64) << 32) | ev.pid as u64,
                fd: ev.args[2],
                opcode: ev.opcode,
                role: ev.role,
            };
            if agg_submit(&sub) {
                submit_streamed(task, ev.ts_ns);
                emit(ev);
            }
        }
        COMPLETE => {
            let c = Comp {
                ts: ev.ts_ns,
                ctx: ev.ctx,
                res: ev.res,
                cflags: ev.cflags,
                tgid: ev.tgid,
            };
            if agg_complete(&c, inflight_of(ev.req)) {
                emit(ev);
            }
        }
        // What happens to a held-back request that detectors follow: stream it.
        LINK | FAIL_LINK | ASYNC | POLL_ARM | DEFER | SHORT_WRITE => {
            if let Some(slot) = inflight_of(ev.req) {
                // SAFETY: slot points at an INFLIGHT value.
                if unsafe { (*slot).streamed } == 0 {
                    promote(slot);
                }
            }
            emit(ev);
        }
        // Task work and the file lookup of a request that is only counted (file_get
        // fires once per request at issue: one streamed event per read for fio).
        TASK_ADD | FILE_GET => {
            if let Some(slot) = inflight_of(ev.req) {
                // SAFETY: slot points at an INFLIGHT value.
                if unsafe { (*slot).streamed } == 0 {
                    return;
                }
            }
            emit(ev);
        }
        CQRING_WAIT => {
            wait_counts(ev);
            emit(ev);
        }
        ENTER => agg_enter(
            &Enter::of_event(ev),
            ((ev.tgid as u64) << 32) | ev.pid as u64,
            task,
        ),
        ENTER_EXIT => agg_enter_exit(
            ev.res,
            ((ev.tgid as u64) << 32) | ev.pid as u64,
            false,
            task,
        ),
        CQE_OVERFLOW => {
            // An overflowed CQE completes its request without io_uring_complete.
            if let Some(r) = ring_slot(ev.ctx, ev.tgid) {
                // SAFETY: r points at a RINGS value.
                atomic_inc(unsafe { core::ptr::addr_of_mut!((*r).completed) });
            }
            emit(ev);
        }
        _ => emit(ev),
    }
}

/// `IORING_ENTER_GETEVENTS` and `IORING_ENTER_SQ_WAKEUP`.
const ENTER_GETEVENTS: u32 = 1;
const ENTER_SQ_WAKEUP: u32 = 2;

/// io_uring_enter's arguments, as the classic tracepoint names them.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Enter {
    ts: u64,
    argp: u64,
    fd: u32,
    to_submit: u32,
    min_complete: u32,
    flags: u32,
    argsz: u32,
    _pad: u32,
}

impl Enter {
    /// From an event filled from the classic tracepoint's record.
    #[inline(always)]
    fn of_event(ev: &RawEvent) -> Enter {
        Enter {
            ts: ev.ts_ns,
            argp: ev.aux,
            fd: ev.args[0],
            to_submit: ev.args[1],
            min_complete: ev.args[2],
            flags: ev.cflags,
            argsz: ev.args[3],
            _pad: 0,
        }
    }

    /// The analyzer needs an enter that can wait (GETEVENTS with min_complete > 0:
    /// the wait's timeout flag) or that wakes an SQPOLL thread.
    #[inline(always)]
    fn must_stream(&self) -> bool {
        enter_must_stream(self.flags, self.min_complete)
    }

    #[inline(always)]
    fn event(&self, pid_tgid: u64, task: &TaskCache) -> RawEvent {
        let mut ev = base_event(EventKind::EnterEnter, pid_tgid, task, self.ts);
        ev.args = [self.fd, self.to_submit, self.min_complete, self.argsz];
        ev.cflags = self.flags;
        ev.aux = self.argp;
        ev
    }
}

#[inline(always)]
fn enter_must_stream(flags: u32, min_complete: u32) -> bool {
    flags & ENTER_SQ_WAKEUP != 0 || (flags & ENTER_GETEVENTS != 0 && min_complete > 0)
}

/// io_uring_enter in aggregating mode. An app that submits one request per call
/// (fio's default) made two streamed events per request: at ~300 ns each they cost
/// more than the request (fio page cache, 6.18). The analyzer needs an enter only
/// when [`Enter::must_stream`], or when a chain was submitted in it (the batch end
/// cuts chains); any other enter is held back and dropped at its exit.
#[inline(always)]
fn agg_enter(e: &Enter, pid_tgid: u64, task: &mut TaskCache) {
    if e.must_stream() {
        stream_enter(e, pid_tgid, task);
    } else {
        hold_enter(e, task);
    }
}

#[inline(always)]
fn stream_enter(e: &Enter, pid_tgid: u64, task: &mut TaskCache) {
    task.submit_streamed = 0;
    task.held = 0;
    task.enter_streamed = 1;
    emit(&e.event(pid_tgid, task));
}

#[inline(always)]
fn hold_enter(e: &Enter, task: &mut TaskCache) {
    task.submit_streamed = 0;
    task.enter_streamed = 0;
    task.held_enter = *e;
    task.held = 1;
}

/// The exit of an io_uring_enter in aggregating mode. `streamed`: the enter was
/// streamed (known from its arguments when the exit can still read them). The clock
/// is read only for an exit that is streamed: most are not.
#[inline(always)]
fn agg_enter_exit(ret: i32, pid_tgid: u64, streamed: bool, task: &mut TaskCache) {
    let exit = |task: &TaskCache| {
        let mut ev = base_event(EventKind::EnterExit, pid_tgid, task, now());
        ev.res = ret;
        ev
    };
    if streamed || task.enter_streamed != 0 {
        emit(&exit(task));
    } else if task.held != 0 && task.submit_streamed != 0 {
        emit(&task.held_enter.event(pid_tgid, task));
        emit(&exit(task));
    } else {
        count(Counter::Aggregated);
    }
    task.enter_streamed = 0;
    task.held = 0;
    task.submit_streamed = 0;
}

/// A submit of the current enter is streamed: so must the enter be, at its exit. A
/// held enter took no clock reading (most are dropped); one just before this submit
/// keeps the order.
#[inline(always)]
fn submit_streamed(task: &mut TaskCache, submit_ts: u64) {
    task.submit_streamed = 1;
    if task.held != 0 && task.held_enter.ts == 0 {
        task.held_enter.ts = submit_ts.saturating_sub(1);
    }
}

/// What aggregating mode needs from a submit.
struct Sub {
    ts: u64,
    ctx: u64,
    req: u64,
    user_data: u64,
    flags: u64,
    pid_tgid: u64,
    fd: u32,
    opcode: u8,
    role: u8,
}

/// Records a submit in the in-flight table. Returns true when the submit must be
/// streamed (linked requests, rings that could not get an aggregation slot).
#[inline(always)]
fn agg_submit(s: &Sub) -> bool {
    let tgid = (s.pid_tgid >> 32) as u32;
    let ring = ring_slot(s.ctx, tgid);
    if let Some(r) = ring {
        // SAFETY: r points at a RINGS value.
        atomic_inc(unsafe { core::ptr::addr_of_mut!((*r).submitted) });
    }
    let linked = s.flags & agg::REQ_LINK_FLAGS != 0;
    let mut in_chain = false;
    if let Some(c) = CHAIN.get_ptr_mut(0) {
        // SAFETY: per-CPU value, only this CPU writes it.
        unsafe {
            in_chain = *c == s.ctx;
            *c = if linked { s.ctx } else { 0 };
        }
    }
    let stream = linked || in_chain || ring.is_none();
    if let Some(slot) = INFLIGHT.get_ptr_mut(agg::inflight_index(s.req)) {
        // SAFETY: slot points at an INFLIGHT value.
        let e = unsafe { &mut *slot };
        // Another request still holds the slot: when it is already slow, stream it
        // now, or it would vanish without a trace.
        if e.req != 0 && e.streamed == 0 && s.ts.wrapping_sub(e.ts_ns) >= slow_ns() {
            promote(slot);
        }
        e.req = s.req;
        e.ts_ns = s.ts;
        e.ctx = s.ctx;
        e.user_data = s.user_data;
        e.flags = s.flags;
        e.pid = s.pid_tgid as u32;
        e.tgid = tgid;
        e.fd = s.fd;
        e.opcode = s.opcode;
        e.role = s.role;
        e.streamed = stream as u8;
    }
    stream
}

/// What aggregating mode needs from a completion.
struct Comp {
    ts: u64,
    ctx: u64,
    res: i32,
    cflags: u32,
    tgid: u32,
}

/// Counts a completion when its request is fast and successful: false. Otherwise
/// the completion must be streamed (its submit has then been streamed too).
/// `slot`: the request's in-flight slot ([`inflight_of`]), if it holds one.
///
/// Both clock readings stay: latency needs them, and the coarse clock is refused to
/// tracing programs (6.18). bpf_ktime_get_ns (read_tsc) was 12% of CPU on a NOP storm
/// in a Firecracker VM; a jiffies-plus-sampling scheme would save one reading in two,
/// about 6% of the traced cost, at the price of exact histograms.
#[inline(always)]
fn agg_complete(c: &Comp, slot: Option<*mut Inflight>) -> bool {
    let Some(slot) = slot else {
        // Submitted before tracing began, or its slot was taken: stream it.
        return true;
    };
    // SAFETY: slot points at an INFLIGHT value.
    let s = unsafe { &mut *slot };
    let more = c.cflags & agg::CQE_F_MORE != 0;
    let ring = ring_slot(c.ctx, c.tgid);
    if !more {
        if let Some(r) = ring {
            // SAFETY: r points at a RINGS value.
            atomic_inc(unsafe { core::ptr::addr_of_mut!((*r).completed) });
        }
    }
    let lat = c.ts.saturating_sub(s.ts_ns);
    if s.streamed != 0 || c.res < 0 || more || lat >= slow_ns() || ring.is_none() {
        if s.streamed == 0 {
            promote(slot);
        }
        if !more {
            s.req = 0;
        }
        return true;
    }
    s.req = 0;
    let Some(op) = OPSTATS.get_ptr_mut(agg::op_index(agg::ring_index(c.ctx), s.opcode)) else {
        return false;
    };
    // SAFETY: per-CPU value, only this CPU writes it while the program runs.
    let op = unsafe { &mut *op };
    if op.ctx != c.ctx {
        op.ctx = c.ctx;
        op.tgid = s.tgid;
        op.opcode = s.opcode as u32;
    }
    op.count += 1;
    op.lat_sum_ns += lat;
    let b = agg::lat_bucket(lat);
    if b < agg::LAT_BUCKETS {
        op.hist[b] += 1;
    }
    count(Counter::Aggregated);
    false
}

/// A wait in aggregating mode: userspace cannot count what is in flight or ready
/// (fast requests are only counted), so the kernel says it.
#[inline(always)]
fn wait_counts(ev: &mut RawEvent) {
    let Some(r) = RINGS.get_ptr_mut(agg::ring_index(ev.ctx)) else {
        return;
    };
    // SAFETY: r points at a RINGS value.
    let r = unsafe { &*r };
    if r.ctx != ev.ctx {
        return;
    }
    let b = &CONFIG.btf;
    let rings_spec = btf_spec(&b.ctx_rings);
    if rings_spec.size == 0 {
        return;
    }
    let rings = read_struct(ev.ctx, rings_spec);
    let head = read_struct(rings, btf_spec(&b.rings_cq_head)) as u32;
    let tail = read_struct(rings, btf_spec(&b.rings_cq_tail)) as u32;
    ev.aux = r.submitted.saturating_sub(r.completed);
    ev.aux2 = tail.wrapping_sub(head) as u64;
    ev.args[3] = agg::WAIT_WITH_COUNTS;
}

/// Reads a member of a kernel struct through a BTF-typed pointer: a plain load that
/// the verifier checks against the struct's BTF, far cheaper than
/// bpf_probe_read_kernel. `s` comes from the kernel's own BTF (read-only data, so the
/// verifier knows offset and size and drops the other arms).
#[inline(always)]
fn load(base: *const u8, s: FieldSpec) -> u64 {
    // SAFETY: base is a tp_btf argument of the struct `s` was computed for, or a
    // classic trace record whose format gave `s` (aligned, within the record).
    unsafe {
        let p = base.add(s.offset as usize);
        let signed = s.signed != 0;
        match s.size {
            1 if signed => core::ptr::read_volatile(p as *const i8) as i64 as u64,
            1 => core::ptr::read_volatile(p) as u64,
            2 if signed => core::ptr::read_volatile(p as *const i16) as i64 as u64,
            2 => core::ptr::read_volatile(p as *const u16) as u64,
            4 if signed => core::ptr::read_volatile(p as *const i32) as i64 as u64,
            4 => core::ptr::read_volatile(p as *const u32) as u64,
            8 => core::ptr::read_volatile(p as *const u64),
            _ => 0,
        }
    }
}

/// The first tp_btf argument as a number. The verifier types it as a trusted pointer
/// and forbids arithmetic other than adding offsets, so hashing it (for the
/// aggregation tables) needs a copy through the helper.
#[inline(always)]
fn arg0_value(ctx: &BtfTracePointContext) -> u64 {
    read_u64(ctx.as_ptr() as u64, &mut 0)
}

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
        None => arg0_value(&ctx),
    };
    if !passes_filter(task, tgid, ring, EventKind::Complete as u16) {
        return 0;
    }
    let cqe: *const u8 = ctx.arg(2);
    let b = &CONFIG.btf;
    let res = load(cqe, btf_spec(&b.cqe_res)) as i32;
    let cflags = load(cqe, btf_spec(&b.cqe_flags)) as u32;
    let ts = now();
    if mode() == KernelMode::Aggregate as u32 {
        let c = Comp {
            ts,
            ctx: ring,
            res,
            cflags,
            tgid,
        };
        // A ring traced through CTXS (task not traced) has no slot looked up yet.
        let slot = if task.traced != 0 {
            slot
        } else {
            inflight_of(req)
        };
        if !agg_complete(&c, slot) {
            return 0;
        }
    }
    let mut ev = base_event(EventKind::Complete, pid_tgid, task, ts);
    ev.ctx = ring;
    ev.req = req;
    ev.user_data = load(cqe, btf_spec(&b.cqe_user_data));
    ev.res = res;
    ev.cflags = cflags;
    emit(&ev);
    0
}

/// io_uring_submit_req(req) as tp_btf (6.4+): fields read from struct io_kiocb.
#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn btf_submit(ctx: BtfTracePointContext) -> i32 {
    if mode() == KernelMode::Floor as u32 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(task) = current_task(pid_tgid) else {
        return 0;
    };
    // Submits run in the owner's threads (its own, SQPOLL, io-wq): no ring lookup.
    if task.traced == 0 {
        count(Counter::Filtered);
        return 0;
    }
    let req = arg0_value(&ctx);
    let req_ptr: *const u8 = ctx.arg(0);
    let b = &CONFIG.btf;
    // req->ctx is a pointer member: a direct load would give a typed pointer again.
    let ring = read_struct(req, btf_spec(&b.req_ctx));
    let tgid = (pid_tgid >> 32) as u32;
    passes_filter(task, tgid, ring, EventKind::Submit as u16);
    let opcode = load(req_ptr, btf_spec(&b.req_opcode)) as u8;
    let flags = load(req_ptr, btf_spec(&b.req_flags));
    let user_data = load(req_ptr, btf_spec(&b.req_user_data));
    let fd = load(req_ptr, btf_spec(&b.req_fd)) as u32;
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
    ev.args[1] = sq_thread(task.role as u8);
    emit(&ev);
    0
}

/// The current syscall's argument `i`, from its saved registers (offsets from BTF).
#[inline(always)]
fn syscall_arg(regs: *const u8, i: usize) -> u64 {
    load(regs, btf_spec(&CONFIG.btf.regs_args[i]))
}

/// io_uring_enter's entry through raw_syscalls:sys_enter (tp_btf): every syscall of
/// the host runs this, so anything but io_uring_enter returns after one compare.
#[btf_tracepoint(function = "sys_enter")]
pub fn btf_sys_enter(ctx: BtfTracePointContext) -> i32 {
    let id: i64 = ctx.arg(1);
    if id != cfg_u32(&CONFIG.enter_nr) as i64 || mode() == KernelMode::Floor as u32 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(task) = current_task(pid_tgid) else {
        return 0;
    };
    // An enter names no ring in its record: only traced tasks pass (as passes_filter).
    if task.traced == 0 {
        count(Counter::Filtered);
        return 0;
    }
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
    if nr != cfg_u32(&CONFIG.enter_nr) as u64 || mode() == KernelMode::Floor as u32 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(task) = current_task(pid_tgid) else {
        return 0;
    };
    if task.traced == 0 {
        count(Counter::Filtered);
        return 0;
    }
    let ret = ctx.arg::<i64>(1) as i32;
    if mode() == KernelMode::Aggregate as u32 {
        // The argument registers still hold the enter's arguments (x86_64 returns in
        // ax only), so whether the enter was streamed does not depend on the per-CPU
        // task cache, which another task may have taken while this one waited.
        let streamed = enter_must_stream(syscall_arg(regs, 3) as u32, syscall_arg(regs, 2) as u32);
        agg_enter_exit(ret, pid_tgid, streamed, task);
    } else {
        let mut ev = base_event(EventKind::EnterExit, pid_tgid, task, now());
        ev.res = ret;
        emit(&ev);
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
