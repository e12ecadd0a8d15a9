//! Building events and writing them into the ring buffer. Every store is a volatile
//! field store: struct copies and `Default` compile to byte loops the verifier
//! rejects or that cost 7% of a NOP storm's CPU time.

use super::*;
use uringtrace_common::view::submit_arg1;
use uringtrace_common::wire::WIRE_SUBMIT;

/// Writes `ev` into the ring buffer: as a [`WireEvent`] when it fits and userspace
/// already knows its task's comm, full size otherwise.
#[inline(always)]
pub(crate) fn emit(ev: &RawEvent) {
    let task = TASK.get_ptr_mut(0);
    let pid_tgid = (ev.tgid as u64) << 32 | ev.pid as u64;
    // SAFETY: per-CPU value; programs do not nest on one CPU for these tracepoints.
    let mine = task.filter(|&t| unsafe { (*t).pid_tgid } == pid_tgid);
    if let Some(t) = mine {
        // SAFETY: as above.
        if unsafe { (*t).comm_sent } != 0 {
            if let Some(packed) = WireEvent::pack(ev) {
                emit_wire(ev, packed);
                return;
            }
        }
    }
    if emit_full(ev) {
        if let Some(t) = mine {
            // The comm reached userspace with this event: the task's next events
            // can leave it out.
            // SAFETY: as above.
            unsafe { (*t).comm_sent = 1 };
        }
    }
}

/// Writes a full-size event; false when the ring buffer was full.
#[inline(always)]
fn emit_full(ev: &RawEvent) -> bool {
    match EVENTS.reserve::<RawEvent>(0) {
        Some(mut slot) => {
            // SAFETY: the slot is a reserved, 8-byte aligned RawEvent-sized area.
            unsafe { store(slot.as_mut_ptr(), ev) };
            // Userspace polls on a timer: waking it per event would cost more than the event.
            slot.submit(BPF_RB_NO_WAKEUP as u64);
            count(Counter::Emitted);
            true
        }
        None => {
            count(Counter::Dropped);
            false
        }
    }
}

#[inline(always)]
fn emit_wire(ev: &RawEvent, (tag, aux, arg): (u8, u64, u32)) {
    let w = Wire {
        ts: ev.ts_ns,
        ctx: ev.ctx,
        req: ev.req,
        user_data: ev.user_data,
        aux,
        pid: ev.pid,
        tgid: ev.tgid,
        arg,
        cpu: ev.cpu,
        opcode: ev.opcode,
        tag,
    };
    w.emit();
}

/// The values of a [`WireEvent`], stored field by field (see [`store_fields`]).
pub(crate) struct Wire {
    pub(crate) ts: u64,
    pub(crate) ctx: u64,
    pub(crate) req: u64,
    pub(crate) user_data: u64,
    pub(crate) aux: u64,
    pub(crate) pid: u32,
    pub(crate) tgid: u32,
    pub(crate) arg: u32,
    pub(crate) cpu: u16,
    pub(crate) opcode: u8,
    pub(crate) tag: u8,
}

impl Wire {
    #[inline(always)]
    pub(crate) fn emit(&self) {
        let Some(mut slot) = EVENTS.reserve::<WireEvent>(0) else {
            count(Counter::Dropped);
            return;
        };
        let p = slot.as_mut_ptr();
        // SAFETY: p is a reserved, 8-byte aligned WireEvent-sized area; every field
        // is written.
        unsafe {
            use core::ptr::{addr_of_mut, write_volatile as w};
            w(addr_of_mut!((*p).ts_ns), self.ts);
            w(addr_of_mut!((*p).ctx), self.ctx);
            w(addr_of_mut!((*p).req), self.req);
            w(addr_of_mut!((*p).user_data), self.user_data);
            w(addr_of_mut!((*p).aux), self.aux);
            w(addr_of_mut!((*p).pid), self.pid);
            w(addr_of_mut!((*p).tgid), self.tgid);
            w(addr_of_mut!((*p).arg), self.arg);
            w(addr_of_mut!((*p).cpu), self.cpu);
            w(addr_of_mut!((*p).opcode), self.opcode);
            w(addr_of_mut!((*p).tag), self.tag);
        }
        slot.submit(BPF_RB_NO_WAKEUP as u64);
        count(Counter::Emitted);
    }
}

/// Field-by-field copy with volatile stores. A plain struct copy compiles to a
/// byte-wise memcpy that the verifier rejects when a source field was spilled from a
/// register ("invalid size of register fill", seen on 6.18 with tp_btf arguments).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn store_fields(
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
    // SAFETY: the caller passes a reserved, writable, aligned RawEvent slot;
    // every write stays inside it.
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
pub(crate) unsafe fn store(dst: *mut RawEvent, ev: &RawEvent) {
    use core::ptr::{addr_of_mut, write_volatile as w};
    // SAFETY: as for store_fields: `dst` is a reserved, writable RawEvent slot.
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
pub(crate) fn blank() -> RawEvent {
    let mut ev = core::mem::MaybeUninit::<RawEvent>::uninit();
    let p = ev.as_mut_ptr();
    // SAFETY: every byte of the event is written by `store` before it is read.
    unsafe {
        store_fields(p, 0, 0, 0, 0, [0; 4], 0, 0, 0, [0; 16]);
        ev.assume_init()
    }
}

#[inline(always)]
pub(crate) fn base_event(kind: EventKind, pid_tgid: u64, task: &TaskCache, ts_ns: u64) -> RawEvent {
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
pub(crate) fn fresh_event(kind: EventKind, pid_tgid: u64) -> RawEvent {
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

/// Emits an io_uring event after the process filter (classic and tp_btf programs).
#[inline(always)]
pub(crate) fn finish_io_uring(ev: &mut RawEvent, task: &mut TaskCache) {
    if !passes_filter(task, ev.tgid, ev.ctx, ev.kind) {
        return;
    }
    if mode() == KernelMode::Aggregate as u32 {
        aggregate(ev, task);
    } else {
        if ev.kind == EventKind::CqringWait as u16 {
            // The analyzer cannot count CQEs the app has reaped: the kernel reads
            // how many wait in the CQ ring (rare event: one per sleeping wait).
            wait_ready(ev);
        }
        emit(ev);
    }
}

/// Streams the submit of a request that was held back in the in-flight table. Its
/// timestamp is the real submit time.
#[inline(always)]
pub(crate) fn promote(slot: *mut Inflight) {
    // SAFETY: slot points at an INFLIGHT value.
    let s = unsafe { &mut *slot };
    s.streamed = 1;
    count(Counter::Promoted);
    // Compact: the submitting task's comm is not at hand here (userspace knows it
    // from the task's earlier events, or reads it from /proc). Stored field by field
    // from the in-flight slot straight into the ring buffer: an event on this frame's
    // stack pushed the classic programs past the 512-byte stack limit on 5.10 and 6.1,
    // and a `Wire` built here did the same to classic tp_complete on 6.18 once the
    // tag also carried SUBMIT_FD_KNOWN ("combined stack size of 2 calls is 528").
    let Some(mut out) = EVENTS.reserve::<WireEvent>(0) else {
        count(Counter::Dropped);
        return;
    };
    let p = out.as_mut_ptr();
    let tag = wire::tag(
        WIRE_SUBMIT,
        s.role,
        submit_arg1(sq_thread(s.role), s.fd_known),
        true,
    );
    // SAFETY: p is a reserved, 8-byte aligned WireEvent-sized area; every field is
    // written, each from the in-flight slot (a map value) or a scalar.
    unsafe {
        use core::ptr::{addr_of_mut, write_volatile as w};
        w(addr_of_mut!((*p).ts_ns), s.ts_ns);
        w(addr_of_mut!((*p).ctx), s.ctx);
        w(addr_of_mut!((*p).req), s.req);
        w(addr_of_mut!((*p).user_data), s.user_data);
        w(addr_of_mut!((*p).aux), s.flags);
        w(addr_of_mut!((*p).pid), s.pid);
        w(addr_of_mut!((*p).tgid), s.tgid);
        w(addr_of_mut!((*p).arg), s.fd);
        w(
            addr_of_mut!((*p).cpu),
            // SAFETY: plain helper call.
            bpf_get_smp_processor_id() as u16,
        );
        w(addr_of_mut!((*p).opcode), s.opcode);
        w(addr_of_mut!((*p).tag), tag);
    }
    out.submit(BPF_RB_NO_WAKEUP as u64);
    count(Counter::Emitted);
}
