//! Reading fields: from classic trace records (offsets from the tracefs `format`
//! files, one 64-byte copy per event) and from kernel structs behind tp_btf arguments
//! (offsets from BTF, plain loads the verifier checks).

use super::*;

#[inline(always)]
pub(crate) fn spec(kind: EventKind, slot: Slot) -> FieldSpec {
    // SAFETY: as in cfg_u32; indexes are compile-time constants within bounds.
    unsafe { core::ptr::read_volatile(&CONFIG.kinds[kind as usize].fields[slot as usize]) }
}

/// Narrows an 8-byte read to a field of `size` bytes (0: absent, gives 0),
/// sign-extending when asked. Branch-free on purpose: on older verifiers (6.1) a branch
/// per field doubled the states per field and passed the 1M-instruction limit.
#[inline(always)]
pub(crate) fn narrow(v: u64, s: FieldSpec) -> u64 {
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
pub(crate) fn read_u64(addr: u64, errors: &mut u64) -> u64 {
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
pub(crate) fn read_field(ctx: &TracePointContext, s: FieldSpec, errors: &mut u64) -> u64 {
    // The offset comes from the tracepoint's own format file; reading 8 bytes may run
    // past a short last field: narrow() masks the extra bytes off.
    narrow(read_u64(ctx.as_ptr() as u64 + s.offset as u64, errors), s)
}

/// Bytes of a trace record copied at once: nearly every io_uring and io_uring_enter
/// field on 5.10 to 7.x lies within the first 64; fields beyond are read one by one.
/// (The copy lives on the 512-byte BPF stack, next to the event.)
pub(crate) const RECORD_COPY: usize = 64;

/// A field from the record copy. Context loads need offsets fixed at compile time
/// ("dereference of modified ctx ptr"), and a helper call per field cost ~15 ns, 12
/// per event (6.18): one copy of the record and plain stack loads are far cheaper.
#[inline(always)]
pub(crate) fn record_field(
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
pub(crate) fn fill(ctx: &TracePointContext, kind: EventKind, ev: &mut RawEvent) {
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
            // Raw tracepoint programs only: a member behind a pointer argument. The
            // spec is read-only data, so the verifier drops this arm for every
            // other field and program.
            let v = if s.signed & FIELD_DEREF != 0 {
                deref_field(&rec, s, &mut errors)
            } else {
                record_field(ctx, &rec, s, &mut errors)
            };
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

/// A field behind a pointer argument of a raw tracepoint (see `FIELD_DEREF`): `rec`
/// holds the first 8 arguments. One helper call per field (~15 ns, 6.18), against the
/// trace record a classic tracepoint builds for every hit.
#[inline(always)]
pub(crate) fn deref_field(rec: &[u8; RECORD_COPY], s: FieldSpec, errors: &mut u64) -> u64 {
    let arg = ((s.signed >> FIELD_ARG_SHIFT) & 7) as usize;
    // SAFETY: 8 * arg + 8 <= 64 = RECORD_COPY.
    let base = unsafe { core::ptr::read_unaligned(rec.as_ptr().add(8 * arg) as *const u64) };
    if s.signed & FIELD_ADDR != 0 {
        return base + s.offset as u64;
    }
    narrow(read_u64(base + s.offset as u64, errors), s)
}

/// Reads a field of a kernel struct at `base` + spec.offset (BTF-derived offsets).
#[inline(always)]
pub(crate) fn read_struct(base: u64, s: FieldSpec) -> u64 {
    let mut errors = 0;
    let v = narrow(read_u64(base + s.offset as u64, &mut errors), s);
    if errors != 0 {
        count(Counter::ReadErrors);
    }
    v
}

#[inline(always)]
pub(crate) fn btf_spec(s: &FieldSpec) -> FieldSpec {
    // SAFETY: see cfg_u32.
    unsafe { core::ptr::read_volatile(s) }
}

/// Reads a member of a kernel struct through a BTF-typed pointer: a plain load that
/// the verifier checks against the struct's BTF, far cheaper than
/// bpf_probe_read_kernel. `s` comes from the kernel's own BTF (read-only data, so the
/// verifier knows offset and size and drops the other arms).
#[inline(always)]
pub(crate) fn load(base: *const u8, s: FieldSpec) -> u64 {
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

/// A typed kernel pointer as a plain number, without a helper call. The verifier
/// types tp_btf pointer arguments and pointer members, and refuses arithmetic on them
/// other than adding offsets ("pointer arithmetic with >>= operator prohibited":
/// hashing them for the aggregation tables). A program loaded with CAP_PERFMON (which
/// every tracing program needs) may store a pointer into a map value, though, and a
/// load from a map value is a number. `scratch` is the calling program's own slot of
/// [`SCRATCH`].
/// bpf_probe_read_kernel did the same at ~15 ns a call (6.18).
#[inline(always)]
pub(crate) fn ptr_value(p: *const u8, scratch: &mut u64) -> u64 {
    // SAFETY: scratch is a valid, aligned u64; volatile keeps the store and the
    // reload from being folded into a plain register move.
    unsafe {
        core::ptr::write_volatile(scratch as *mut u64 as *mut *const u8, p);
        core::ptr::read_volatile(scratch)
    }
}

/// One scratch word per CPU for each program that turns pointers into numbers. Per
/// program, because programs nest: task_add runs in the interrupt that completes a
/// block request, possibly between another program's store and reload. The same
/// program never nests on one CPU (the kernel skips a program already active there).
#[map]
pub(crate) static SCRATCH: PerCpuArray<u64> = PerCpuArray::with_max_entries(4, 0);

#[derive(Clone, Copy)]
pub(crate) enum Scratch {
    Submit = 0,
    Complete = 1,
    FileGet = 2,
    TaskAdd = 3,
}

#[inline(always)]
pub(crate) fn scratch(which: Scratch) -> Option<&'static mut u64> {
    // SAFETY: a per-CPU value that only the program owning `which` uses.
    SCRATCH
        .get_ptr_mut(which as u32)
        .map(|p| unsafe { &mut *p })
}

/// A pointer member of a kernel struct (offset from BTF), as a number.
#[inline(always)]
pub(crate) fn ptr_member(base: *const u8, s: FieldSpec, scratch: &mut u64) -> u64 {
    // SAFETY: base is a tp_btf pointer of the struct `s` was computed for; the
    // verifier checks the load against that struct's BTF.
    let p = unsafe { core::ptr::read_volatile(base.add(s.offset as usize) as *const *const u8) };
    ptr_value(p, scratch)
}

/// The current syscall's argument `i`, from its saved registers (offsets from BTF).
#[inline(always)]
pub(crate) fn syscall_arg(regs: *const u8, i: usize) -> u64 {
    load(regs, btf_spec(&CONFIG.btf.regs_args[i]))
}
