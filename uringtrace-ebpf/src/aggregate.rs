//! Aggregating mode (`top`, `diagnose`): fast successful requests are only counted
//! in per-CPU maps; everything a detector follows is streamed. The in-flight table is
//! a direct-mapped array (no hash-map update per request); see docs/architecture.md,
//! "Two kernel modes".

use super::*;
use uringtrace_common::view::SUBMIT_FD_KNOWN;

/// Aggregating mode: requests in flight, direct-mapped by request pointer. Userspace
/// maps it to find requests that are still running long after their submit.
#[map]
pub(crate) static INFLIGHT: Array<Inflight> =
    Array::with_max_entries(INFLIGHT_SLOTS, BPF_F_MMAPABLE);

/// Aggregating mode: (ring, user_data) -> the request most recently submitted with
/// them, direct-mapped. Overflowed CQEs name no request; this finds its slot.
#[map]
pub(crate) static BY_USER_DATA: Array<u64> = Array::with_max_entries(UD_SLOTS, 0);

/// Aggregating mode: per-ring submit/complete counts (atomic adds).
#[map]
pub(crate) static RINGS: Array<RingAgg> = Array::with_max_entries(RING_SLOTS, 0);

/// Aggregating mode: per-CPU count and latency histogram per (ring slot, opcode).
#[map]
pub(crate) static OPSTATS: PerCpuArray<OpAgg> =
    PerCpuArray::with_max_entries(RING_SLOTS * OPCODE_SLOTS, 0);

/// Aggregating mode: the ring whose link chain is being submitted on this CPU. A
/// chain is built inside one io_uring_enter under the ring's lock; its last member
/// carries no link flag, so it is recognised by following a linked submit.
#[map]
pub(crate) static CHAIN: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
pub(crate) fn atomic_inc(p: *mut u64) {
    // SAFETY: p points into a map value, 8-byte aligned; the result is unused, so this
    // compiles to BPF_XADD, which every kernel we support accepts.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            p, 1,
        )
    };
}

/// The ring's aggregation slot, claimed on first use by a submit. None: another ring
/// holds it, or a ring that lived at the same address still does (this ring is then
/// streamed in full).
#[inline(always)]
pub(crate) fn ring_slot(ctx: u64, tgid: u32) -> Option<*mut RingAgg> {
    let r = RINGS.get_ptr_mut(agg::ring_index(ctx))?;
    // SAFETY: r points at a RINGS value; racing claims are benign (one ctx wins and
    // the loser is streamed).
    unsafe {
        if (*r).ctx == ctx && (*r).retired == 0 {
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

/// The ring's aggregation slot when it holds one; never claims. Completions do not
/// claim a slot: those of a ring that is gone (cancelled at its exit, posted by a
/// kernel worker) would otherwise claim it again after userspace freed it, for a
/// ring no one will ever forget.
#[inline(always)]
pub(crate) fn ring_slot_held(ctx: u64) -> Option<*mut RingAgg> {
    let r = RINGS.get_ptr_mut(agg::ring_index(ctx))?;
    // SAFETY: r points at a RINGS value.
    unsafe { ((*r).ctx == ctx && (*r).retired == 0).then_some(r) }
}

/// The classic submit tracepoint's `sq_thread` (the ring has SQPOLL), from the
/// submitting task: on an SQPOLL ring only its thread submits, and an SQPOLL thread
/// serves only SQPOLL rings. Reading `ctx->flags` instead cost a helper call per
/// streamed submit.
#[inline(always)]
pub(crate) fn sq_thread(role: u8) -> u32 {
    (role == Role::SqPoll as u8) as u32
}

/// The in-flight slot of the request most recently submitted on `ctx` with
/// `user_data`, when it still holds that request.
///
/// user_data need not be unique: when two requests in flight on one ring share it,
/// this is the later one, as the analyzer's own user_data map picks it, so both
/// kernel modes retire the same request for an overflowed CQE (the counts are right
/// either way; which of the two stays in flight cannot be known from the CQE).
#[inline(always)]
pub(crate) fn inflight_of_user_data(ctx: u64, user_data: u64) -> Option<*mut Inflight> {
    let req = *BY_USER_DATA.get(agg::ud_index(ctx, user_data))?;
    let slot = inflight_of(req)?;
    // SAFETY: slot points at an INFLIGHT value.
    let s = unsafe { &*slot };
    if s.ctx == ctx && s.user_data == user_data {
        Some(slot)
    } else {
        None
    }
}

/// Retires the request that a CQE naming only its user_data belongs to: its submit is
/// streamed first when it was held back (the analyzer then completes it by user_data,
/// as in streaming mode), and its slot is freed unless the CQE has F_MORE (the request
/// goes on; it is then only followed). Returns whether the request was found.
#[inline(always)]
pub(crate) fn retire_by_user_data(ctx: u64, user_data: u64, more: bool) -> bool {
    let Some(slot) = inflight_of_user_data(ctx, user_data) else {
        return false;
    };
    // SAFETY: slot points at an INFLIGHT value.
    unsafe {
        if (*slot).streamed == 0 {
            promote(slot);
        }
        if !more {
            (*slot).req = 0;
        }
    }
    true
}

/// An overflowed CQE: it completes its request, and no io_uring_complete will (6.1+,
/// also not when the overflow list is flushed), so the request is retired here. An
/// intermediate one (F_MORE; never on recent kernels) only makes the request followed.
#[inline(always)]
pub(crate) fn agg_overflow(ctx: u64, user_data: u64, cflags: u32) {
    let more = cflags & agg::CQE_F_MORE != 0;
    let ring = ring_slot_held(ctx);
    let found = retire_by_user_data(ctx, user_data, more);
    if more {
        return;
    }
    if let Some(r) = ring {
        // SAFETY: r points at a RINGS value.
        unsafe {
            atomic_inc(core::ptr::addr_of_mut!((*r).completed));
            if !found {
                atomic_inc(core::ptr::addr_of_mut!((*r).overflow_unmatched));
            }
        }
    }
}

/// The in-flight slot of `req` when it holds that request.
#[inline(always)]
pub(crate) fn inflight_of(req: u64) -> Option<*mut Inflight> {
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
pub(crate) fn aggregate(ev: &mut RawEvent, task: &mut TaskCache) {
    const SUBMIT: u16 = EventKind::Submit as u16;
    const COMPLETE: u16 = EventKind::Complete as u16;
    const TASK_ADD: u16 = EventKind::TaskAdd as u16;
    const CQRING_WAIT: u16 = EventKind::CqringWait as u16;
    const CQE_OVERFLOW: u16 = EventKind::CqeOverflow as u16;
    const CREATE: u16 = EventKind::Create as u16;
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
                fd_known: (ev.args[1] & SUBMIT_FD_KNOWN != 0) as u8,
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
                ts: Some(ev.ts_ns),
                ctx: ev.ctx,
                req: ev.req,
                user_data: ev.user_data,
                res: ev.res,
                cflags: ev.cflags,
            };
            if agg_complete(&c, inflight_of(ev.req)).is_some() {
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
        CREATE => {
            // A new ring at the address of one that is gone but not forgotten yet
            // (ring addresses are reused within seconds): the slot stays the old
            // ring's until userspace has read its statistics (it does on this event),
            // and the new ring is streamed meanwhile. Counting on in the slot would
            // add the old ring's requests to the new one's, and a wait on the new
            // ring would see the old one's in flight.
            if let Some(r) = RINGS.get_ptr_mut(agg::ring_index(ev.ctx)) {
                // SAFETY: r points at a RINGS value.
                unsafe {
                    if (*r).ctx == ev.ctx {
                        (*r).retired = 1;
                    }
                }
            }
            emit(ev);
        }
        CQE_OVERFLOW => {
            let _ = OVERFLOWED.insert(ev.tgid, 1, 0);
            agg_overflow(ev.ctx, ev.user_data, ev.cflags);
            emit(ev);
        }
        _ => emit(ev),
    }
}

/// What aggregating mode needs from a submit.
pub(crate) struct Sub {
    pub(crate) ts: u64,
    pub(crate) ctx: u64,
    pub(crate) req: u64,
    pub(crate) user_data: u64,
    pub(crate) flags: u64,
    pub(crate) pid_tgid: u64,
    pub(crate) fd: u32,
    /// 1: `fd` was read from the request (0 is then a real fd or slot).
    pub(crate) fd_known: u8,
    pub(crate) opcode: u8,
    pub(crate) role: u8,
}

/// Records a submit in the in-flight table. Returns true when the submit must be
/// streamed (linked requests, rings that could not get an aggregation slot, and the
/// reuse of a request pointer userspace still knows as in flight).
///
/// A request held back in the slot is never overwritten unseen, or streaming and
/// aggregating mode would count different submits:
/// - another request pointer (a hash collision): the held one is promoted; its
///   completion finds no slot and is streamed too;
/// - the same pointer: the held request ended without a CQE the programs saw
///   (IOSQE_CQE_SKIP_SUCCESS): counted as one submit without completion, as the
///   analyzer counts it when it sees both submits. On a ring with unmatched overflows
///   it may instead be an overflowed request; it is then promoted, and this submit
///   streamed, so that the analyzer sees what streaming mode shows.
#[inline(always)]
pub(crate) fn agg_submit(s: &Sub) -> bool {
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
    let mut stream = linked || in_chain || ring.is_none();
    if let Some(slot) = INFLIGHT.get_ptr_mut(agg::inflight_index(s.req)) {
        // SAFETY: slot points at an INFLIGHT value.
        let e = unsafe { &mut *slot };
        if e.req != 0 {
            stream |= evict(slot, s.req);
        }
        e.req = s.req;
        e.ts_ns = s.ts;
        e.jiffies = jiffies();
        e.ctx = s.ctx;
        e.user_data = s.user_data;
        e.flags = s.flags;
        e.pid = s.pid_tgid as u32;
        e.tgid = tgid;
        e.fd = s.fd;
        e.fd_known = s.fd_known;
        e.opcode = s.opcode;
        e.role = s.role;
        e.streamed = stream as u8;
    }
    if let Some(u) = BY_USER_DATA.get_ptr_mut(agg::ud_index(s.ctx, s.user_data)) {
        // SAFETY: u points at a BY_USER_DATA value.
        unsafe { *u = s.req };
    }
    stream
}

/// The in-flight slot `slot` is taken by a submit of `req` while it still holds a
/// request (see [`agg_submit`]). Returns true when that submit must be streamed.
#[inline(never)]
fn evict(slot: *mut Inflight, req: u64) -> bool {
    // SAFETY: slot points at an INFLIGHT value.
    let e = unsafe { &mut *slot };
    if e.req != req {
        if e.streamed == 0 {
            promote(slot);
        }
        return false;
    }
    // The same request pointer again: the request that held it is gone.
    if e.streamed != 0 {
        // Userspace follows it as in flight: a streamed submit of the pointer ends it.
        return true;
    }
    let Some(r) = RINGS.get_ptr_mut(agg::ring_index(e.ctx)) else {
        return false;
    };
    // SAFETY: r points at a RINGS value.
    let r = unsafe { &*r };
    if r.ctx == e.ctx && r.overflow_unmatched != 0 {
        promote(slot);
        return true;
    }
    if let Some(op) = OPSTATS.get_ptr_mut(agg::op_index(agg::ring_index(e.ctx), e.opcode)) {
        // SAFETY: per-CPU value, only this CPU writes it while the program runs.
        let op = unsafe { &mut *op };
        if op.ctx != e.ctx {
            op.ctx = e.ctx;
            op.tgid = e.tgid;
            op.opcode = e.opcode as u32;
        }
        op.ended_unseen += 1;
    }
    false
}

/// What aggregating mode needs from a completion.
pub(crate) struct Comp {
    /// The precise time when the caller already has it (classic programs).
    pub(crate) ts: Option<u64>,
    pub(crate) ctx: u64,
    /// 0 for aux CQEs (multishot intermediates, MSG_RING deliveries).
    pub(crate) req: u64,
    /// Needed only when `req` is 0 (to find a multishot request by its user_data).
    pub(crate) user_data: u64,
    pub(crate) res: i32,
    pub(crate) cflags: u32,
}

/// One request in this many per CPU and (ring, opcode) has its latency measured when
/// the completion would otherwise need no precise clock.
const SAMPLE_EVERY: u64 = 16;

#[inline(always)]
fn jiffies() -> u64 {
    // SAFETY: plain helper call.
    unsafe { aya_ebpf::helpers::generated::bpf_jiffies64() }
}

/// Counts a completion when its request is fast and successful: None. Otherwise the
/// completion must be streamed (its submit has then been streamed too) with the
/// returned precise time. `slot`: the request's in-flight slot ([`inflight_of`]).
///
/// The precise clock (bpf_ktime_get_ns, read_tsc) took 8% of all CPU time in a
/// profile of an aggregating NOP storm, more than both programs' own code (6.18,
/// Firecracker VM), and tracing programs may not use the coarse one. So a completion
/// reads jiffies first: a request that completes in the jiffy it was submitted in is
/// shorter than one tick (at most 10 ms, as HZ >= 100), so it is not slow, and only a
/// sample of those is timed precisely.
#[inline(always)]
pub(crate) fn agg_complete(c: &Comp, slot: Option<*mut Inflight>) -> Option<u64> {
    let precise = |c: &Comp| c.ts.unwrap_or_else(now);
    let more = c.cflags & agg::CQE_F_MORE != 0;
    let Some(slot) = slot else {
        unmatched_complete(c, more);
        return Some(precise(c));
    };
    // SAFETY: slot points at an INFLIGHT value.
    let s = unsafe { &mut *slot };
    let ring = ring_slot_held(c.ctx);
    if !more {
        if let Some(r) = ring {
            // SAFETY: r points at a RINGS value.
            atomic_inc(unsafe { core::ptr::addr_of_mut!((*r).completed) });
        }
    }
    let mut ts = c.ts;
    if ts.is_none() && jiffies() != s.jiffies {
        ts = Some(now());
    }
    let slow = ts.is_some_and(|t| t.saturating_sub(s.ts_ns) >= slow_ns());
    if s.streamed != 0 || c.res < 0 || more || slow || ring.is_none() {
        if s.streamed == 0 {
            promote(slot);
        }
        if !more {
            s.req = 0;
        }
        return Some(precise(c));
    }
    s.req = 0;
    let op = OPSTATS.get_ptr_mut(agg::op_index(agg::ring_index(c.ctx), s.opcode))?;
    // SAFETY: per-CPU value, only this CPU writes it while the program runs.
    let op = unsafe { &mut *op };
    if op.ctx != c.ctx {
        op.ctx = c.ctx;
        op.tgid = s.tgid;
        op.opcode = s.opcode as u32;
    }
    op.count += 1;
    if ts.is_none() && op.count % SAMPLE_EVERY == 1 {
        ts = Some(now());
    }
    if let Some(t) = ts {
        let lat = t.saturating_sub(s.ts_ns);
        op.sampled += 1;
        op.lat_sum_ns += lat;
        let b = agg::lat_bucket(lat);
        if b < agg::LAT_BUCKETS {
            op.hist[b] += 1;
        }
    }
    count(Counter::Aggregated);
    None
}

/// Processes with a CQ overflow not yet flushed: their next GETEVENTS enter is
/// streamed even with min_complete 0 (libuv flushes that way), so the analyzer sees
/// the flush. One lookup per held GETEVENTS enter.
#[map]
pub(crate) static OVERFLOWED: HashMap<u32, u32> = HashMap::with_max_entries(4096, 0);

/// Whether `tgid` has an overflow to flush; forgets it (the enter will flush).
#[inline(always)]
pub(crate) fn take_overflow_pending(tgid: u32) -> bool {
    // SAFETY: a plain lookup of a u32 value.
    if unsafe { OVERFLOWED.get(tgid) }.is_none() {
        return false;
    }
    let _ = OVERFLOWED.remove(tgid);
    true
}

/// CQEs ready in the CQ ring of `ev.ctx` (streaming mode's waits): aux2, with
/// args[3] = WAIT_WITH_READY.
#[inline(always)]
pub(crate) fn wait_ready(ev: &mut RawEvent) {
    let b = &CONFIG.btf;
    let rings_spec = btf_spec(&b.ctx_rings);
    if rings_spec.size == 0 || ev.ctx == 0 {
        return;
    }
    let rings = read_struct(ev.ctx, rings_spec);
    let head = read_struct(rings, btf_spec(&b.rings_cq_head)) as u32;
    let tail = read_struct(rings, btf_spec(&b.rings_cq_tail)) as u32;
    ev.aux2 = tail.wrapping_sub(head) as u64;
    ev.args[3] = agg::WAIT_WITH_READY;
}

/// A completion whose request has no in-flight slot: submitted before tracing began,
/// promoted out of its slot by another request, or (req 0) an aux CQE. It is
/// streamed. A final one still counts for the ring's in-flight figure; an aux CQE of a
/// multishot request held back promotes it (found by user_data), so that the analyzer
/// sees the request its intermediate CQEs belong to, as in streaming mode. On kernels
/// whose io_uring_complete has no req field (5.10.162+ to 5.17) every CQE names its
/// request by user_data only, and a final one retires it like an overflowed CQE.
#[inline(never)]
fn unmatched_complete(c: &Comp, more: bool) {
    if c.req == 0 {
        let no_req_field = spec(EventKind::Complete, Slot::Req).size == 0;
        if more || no_req_field {
            let found = retire_by_user_data(c.ctx, c.user_data, more);
            if found && !more {
                if let Some(r) = ring_slot_held(c.ctx) {
                    // SAFETY: r points at a RINGS value.
                    atomic_inc(unsafe { core::ptr::addr_of_mut!((*r).completed) });
                }
            }
        }
        return;
    }
    if more {
        return;
    }
    if let Some(r) = ring_slot_held(c.ctx) {
        // SAFETY: r points at a RINGS value.
        atomic_inc(unsafe { core::ptr::addr_of_mut!((*r).completed) });
    }
}

/// A wait in aggregating mode: userspace cannot count what is in flight or ready
/// (fast requests are only counted), so the kernel says it.
#[inline(always)]
pub(crate) fn wait_counts(ev: &mut RawEvent) {
    // The CQEs ready, whether or not the ring has a slot (a ring without one is
    // streamed in full, and the analyzer counts its requests itself).
    wait_ready(ev);
    if ev.args[3] != agg::WAIT_WITH_READY {
        return;
    }
    let Some(r) = RINGS.get_ptr_mut(agg::ring_index(ev.ctx)) else {
        return;
    };
    // SAFETY: r points at a RINGS value.
    let r = unsafe { &*r };
    if r.ctx != ev.ctx || r.retired != 0 {
        return;
    }
    ev.aux = r.submitted.saturating_sub(r.completed);
    ev.args[3] = agg::WAIT_WITH_COUNTS;
}
