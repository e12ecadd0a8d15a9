//! uringtrace's kernel programs.
//!
//! Nothing here knows a field offset of any kernel version: classic tracepoint record
//! layouts come from the running kernel's tracefs `format` files and struct offsets
//! from its BTF, both in [`Config`], which userspace fills before loading. A program
//! whose tracepoint does not exist on the running kernel is simply not loaded.
//!
//! - `classic`: the tracepoint programs (every io_uring event, sched, task);
//! - `btf`: tp_btf programs for the hottest events (submit, complete, io_uring_enter);
//! - `raw`: raw tracepoint twins of the classic programs, for hosts where tracefs is
//!   not readable (capabilities without root): arguments laid out from BTF;
//! - `fields`: reading trace records and kernel structs;
//! - `event`: building events and writing them to the ring buffer;
//! - `task`: the per-CPU task cache and the process filter;
//! - `aggregate` and `enter`: aggregating mode (`top`, `diagnose`).
#![no_std]
#![no_main]
// atomic_xadd: core's atomic types have no fetch_add on the BPF target.
#![allow(internal_features)]
#![feature(core_intrinsics)]

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_smp_processor_id, bpf_ktime_get_ns,
    },
    macros::{btf_tracepoint, map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
    EbpfContext as _,
};
use uringtrace_common::{
    aggregate::{
        self as agg, Inflight, OpAgg, RingAgg, INFLIGHT_SLOTS, OPCODE_SLOTS, RING_SLOTS, UD_SLOTS,
    },
    wire::{self, WireEvent},
    Config, Counter, EventKind, FieldSpec, KernelMode, RawEvent, Role, Slot, CLONE_IO, FIELD_ADDR,
    FIELD_ARG_SHIFT, FIELD_DEREF, NR_COUNTERS, NR_SLOTS,
};

mod aggregate;
mod btf;
mod classic;
mod enter;
mod event;
mod fields;
mod raw;
mod task;

use aggregate::*;
use enter::*;
use event::*;
use fields::*;
use task::*;

/// Filled by userspace at load time (read-only for the programs).
#[no_mangle]
static CONFIG: Config = Config::zeroed();

/// Size is set by userspace (`--ring-size`).
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 24, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(NR_COUNTERS, 0);

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
fn now() -> u64 {
    // SAFETY: plain helper call.
    unsafe { bpf_ktime_get_ns() }
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
