//! Types shared by uringtrace's eBPF programs and its userspace.
//!
//! Everything here is `#[repr(C)]` with explicit padding fields, so the layout the
//! kernel writes is exactly the layout userspace reads; the `const` asserts below make
//! any accidental change a compile error on both sides.
#![no_std]

pub mod aggregate;
pub mod decode;
pub mod kind;
pub mod opcode;
pub mod view;
pub mod wire;

pub use decode::DecodeError;
pub use kind::{EventKind, FdType};
pub use view::EventView;

/// Maximum number of event kinds (indexes into [`Config::kinds`]).
pub const MAX_KINDS: usize = 48;
/// Number of field slots a tracepoint can fill (see [`Slot`]).
pub const NR_SLOTS: usize = 12;
/// Length of a task's comm, as in the kernel.
pub const COMM_LEN: usize = 16;

/// One event, as the kernel writes it into the ring buffer.
///
/// Field meaning depends on [`RawEvent::kind`]: [`view`] names each kind's fields (see
/// also `docs/recording-format.md`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RawEvent {
    /// CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
    pub ts_ns: u64,
    /// The ring (`struct io_ring_ctx *`), 0 when the tracepoint has none.
    pub ctx: u64,
    /// The request (`struct io_kiocb *`), 0 when the tracepoint has none (aux CQEs).
    pub req: u64,
    pub user_data: u64,
    /// Kind-specific 64-bit value: req->flags at submit, link target, ocqe, work, ...
    pub aux: u64,
    /// Kind-specific second 64-bit value (extra2, sqe addr, ...).
    pub aux2: u64,
    /// Thread id of the task the event fired in.
    pub pid: u32,
    /// Process id (thread group) of that task.
    pub tgid: u32,
    pub res: i32,
    pub cflags: u32,
    /// Kind-specific 32-bit values (fd, mask, sizes, enter arguments, ...).
    pub args: [u32; 4],
    pub kind: u16,
    pub cpu: u16,
    pub opcode: u8,
    /// [`Role`] of the current task.
    pub role: u8,
    pub _pad: [u8; 2],
    pub comm: [u8; COMM_LEN],
}

pub const RAW_EVENT_SIZE: usize = 104;
const _: () = assert!(core::mem::size_of::<RawEvent>() == RAW_EVENT_SIZE);
const _: () = assert!(core::mem::align_of::<RawEvent>() == 8);

/// What the current task is to io_uring. Derived in the kernel from the comm prefix,
/// which is how the kernel itself names these threads.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An application thread (calls io_uring_enter, runs task_work).
    Submitter = 0,
    /// `iou-sqp-<tid>` (5.11+) or the `io_uring-sq` kthread (5.10).
    SqPoll = 1,
    /// `iou-wrk-<tid>` (5.11+) or an `io_wqe_worker-*` kthread (5.10).
    IoWorker = 2,
}

impl Role {
    pub const fn from_u8(v: u8) -> Option<Role> {
        match v {
            0 => Some(Role::Submitter),
            1 => Some(Role::SqPoll),
            2 => Some(Role::IoWorker),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Role::Submitter => "submitter",
            Role::SqPoll => "sqpoll",
            Role::IoWorker => "io-wq",
        }
    }

    /// Classifies a comm by the kernel's thread-naming scheme.
    pub fn from_comm(comm: &[u8]) -> Role {
        if comm.starts_with(b"iou-sqp-") || comm.starts_with(b"io_uring-sq") {
            Role::SqPoll
        } else if comm.starts_with(b"iou-wrk-") || comm.starts_with(b"io_wqe_worker") {
            Role::IoWorker
        } else {
            Role::Submitter
        }
    }
}

/// Where a tracepoint field lands in a [`RawEvent`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Ctx = 0,
    Req = 1,
    UserData = 2,
    Aux = 3,
    Aux2 = 4,
    Res = 5,
    Cflags = 6,
    Opcode = 7,
    Arg0 = 8,
    Arg1 = 9,
    Arg2 = 10,
    Arg3 = 11,
}

impl Slot {
    pub const ALL: [Slot; NR_SLOTS] = [
        Slot::Ctx,
        Slot::Req,
        Slot::UserData,
        Slot::Aux,
        Slot::Aux2,
        Slot::Res,
        Slot::Cflags,
        Slot::Opcode,
        Slot::Arg0,
        Slot::Arg1,
        Slot::Arg2,
        Slot::Arg3,
    ];
}

/// Where to read one field in a classic tracepoint record. `size == 0`: not present.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FieldSpec {
    pub offset: u16,
    /// 1, 2, 4 or 8; 0 when the running kernel's tracepoint lacks the field.
    pub size: u8,
    /// 1 when the field is signed (sign-extended into 64-bit slots).
    pub signed: u8,
}
const _: () = assert!(core::mem::size_of::<FieldSpec>() == 4);

impl FieldSpec {
    pub const NONE: FieldSpec = FieldSpec {
        offset: 0,
        size: 0,
        signed: 0,
    };
}

/// `FieldSpec::signed` bits above bit 0, for raw tracepoint programs (whose context is
/// the tracepoint's arguments, 8 bytes each, not a trace record): the field is the
/// member at `offset` of the struct that argument `(signed >> FIELD_ARG_SHIFT) & 7`
/// points to. Offsets come from BTF. Without these bits `offset` is into the record
/// (classic) or the argument array (raw: 8 × the argument's index).
pub const FIELD_DEREF: u8 = 2;
/// With [`FIELD_DEREF`]: the field is that argument plus `offset` (an address, read
/// nowhere), like a classic record's `&req->work`.
pub const FIELD_ADDR: u8 = 4;
pub const FIELD_ARG_SHIFT: u8 = 4;

/// Per-kind record layout, filled from the tracefs `format` files at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KindLayout {
    pub fields: [FieldSpec; NR_SLOTS],
}
const _: () = assert!(core::mem::size_of::<KindLayout>() == 4 * NR_SLOTS);

/// Kernel struct offsets for the tp_btf programs, read from the running kernel's BTF.
/// Offsets are relative to the struct the tracepoint argument points to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BtfLayout {
    /// `struct io_kiocb` (io_uring_submit_req's only argument, 6.4+).
    pub req_ctx: FieldSpec,
    pub req_opcode: FieldSpec,
    pub req_flags: FieldSpec,
    /// `req->cqe.user_data`.
    pub req_user_data: FieldSpec,
    /// `req->cqe.fd`: the SQE's fd at submit time (a union with res).
    pub req_fd: FieldSpec,
    /// `struct io_uring_cqe` (io_uring_complete's third argument, 6.3+).
    pub cqe_user_data: FieldSpec,
    pub cqe_res: FieldSpec,
    pub cqe_flags: FieldSpec,
    /// `ctx->rings` (struct io_rings *), and in it `cq.head` / `cq.tail`: CQEs ready
    /// for the application at a wait (aggregating mode's unsatisfiable-wait input).
    pub ctx_rings: FieldSpec,
    pub rings_cq_head: FieldSpec,
    pub rings_cq_tail: FieldSpec,
    /// `struct pt_regs` members that hold a syscall's six arguments and its number
    /// (x86_64: di, si, dx, r10, r8, r9 and orig_ax), for io_uring_enter seen through
    /// the raw_syscalls tracepoints as tp_btf. All size 0 when this kernel's BTF lacks
    /// them; the classic syscalls tracepoints are used then.
    pub regs_args: [FieldSpec; 6],
    pub regs_nr: FieldSpec,
    /// REQ_F_ISREG's bit in `req->flags` (the enumerator REQ_F_ISREG_BIT; REQ_F_* bits
    /// move between kernels) in `offset`, `size` 1; size 0 when unknown. io_uring sets
    /// it when it assigns a regular file (or block device) at issue: a short read then
    /// means end of file, not a short pipe or socket.
    pub req_isreg_bit: FieldSpec,
    /// The futex word of a FUTEX_WAIT/WAKE request: `io_kiocb.cmd` (its per-opcode
    /// data, `struct io_futex` for these) plus `io_futex.uaddr`. Size 0 when unknown.
    pub req_futex_uaddr: FieldSpec,
    /// `struct task_struct` members for the scheduler tracepoints as tp_btf: the first
    /// 8 bytes of `comm` (size 8: an io thread is told by its name's prefix with one
    /// load, before any map lookup), `pid` (the thread id), `prio`, and `exit_state`
    /// (sched_switch reports an exiting task's state from it).
    pub task_comm: FieldSpec,
    pub task_pid: FieldSpec,
    pub task_prio: FieldSpec,
    pub task_exit_state: FieldSpec,
}
const _: () = assert!(core::mem::size_of::<BtfLayout>() == 96);

/// What the kernel programs do with what they see.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelMode {
    /// Every event goes to userspace (`record`).
    Stream = 0,
    /// Fast successful requests are only counted in per-CPU maps; everything a
    /// detector needs is streamed (`top`, `diagnose`).
    Aggregate = 1,
    /// The hot-path programs return at once: the pure attach cost (benchmarks).
    Floor = 2,
}

/// Global configuration passed to the eBPF programs as read-only data.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// 1: only trace tasks whose tgid is in the TGIDS map (and rings they own).
    pub filter_enabled: u32,
    /// uringtrace's own tgid, never traced.
    pub self_tgid: u32,
    pub kinds: [KindLayout; MAX_KINDS],
    pub btf: BtfLayout,
    /// [`KernelMode`].
    pub mode: u32,
    /// io_uring_enter's syscall number on this architecture (raw_syscalls programs).
    pub enter_nr: u32,
    /// Aggregating mode: requests slower than this are streamed in full.
    pub slow_ns: u64,
    /// 1: io_uring_enter is not hooked (no program on the host's syscalls); the
    /// cqring_wait program reads the waiting enter's arguments from the task's
    /// registers and streams it as an enter with no exit ([`ENTER_WITHOUT_EXIT`]).
    pub enter_from_wait: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<Config>() == 8 + 48 * MAX_KINDS + 96 + 24);

/// `aux2` of an io_uring_enter event read at its wait: no exit event follows (the
/// syscall is not hooked), so the analyzer ends it at the thread's next submit or wait.
pub const ENTER_WITHOUT_EXIT: u64 = 1;

impl Config {
    pub const fn zeroed() -> Config {
        Config {
            filter_enabled: 0,
            self_tgid: 0,
            kinds: [KindLayout {
                fields: [FieldSpec {
                    offset: 0,
                    size: 0,
                    signed: 0,
                }; NR_SLOTS],
            }; MAX_KINDS],
            btf: BtfLayout {
                req_ctx: FieldSpec::NONE,
                req_opcode: FieldSpec::NONE,
                req_flags: FieldSpec::NONE,
                req_user_data: FieldSpec::NONE,
                req_fd: FieldSpec::NONE,
                cqe_user_data: FieldSpec::NONE,
                cqe_res: FieldSpec::NONE,
                cqe_flags: FieldSpec::NONE,
                ctx_rings: FieldSpec::NONE,
                rings_cq_head: FieldSpec::NONE,
                rings_cq_tail: FieldSpec::NONE,
                regs_args: [FieldSpec::NONE; 6],
                regs_nr: FieldSpec::NONE,
                req_isreg_bit: FieldSpec::NONE,
                req_futex_uaddr: FieldSpec::NONE,
                task_comm: FieldSpec::NONE,
                task_pid: FieldSpec::NONE,
                task_prio: FieldSpec::NONE,
                task_exit_state: FieldSpec::NONE,
            },
            mode: KernelMode::Stream as u32,
            enter_nr: 0,
            slow_ns: 10_000_000,
            enter_from_wait: 0,
            _pad: 0,
        }
    }
}

/// Per-CPU counters kept by the eBPF programs (index into the COUNTERS per-CPU array).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Events written to the ring buffer.
    Emitted = 0,
    /// Events lost because the ring buffer was full.
    Dropped = 1,
    /// Events seen but filtered out (not a loss).
    Filtered = 2,
    /// A tracepoint field could not be read (bpf_probe_read failed).
    ReadErrors = 3,
    /// Aggregating mode: requests only counted into the per-CPU statistics.
    Aggregated = 4,
    /// Aggregating mode: requests first held back, then streamed (slow, failed, punted,
    /// multishot, or evicted from the in-flight table while still running).
    Promoted = 5,
}
pub const NR_COUNTERS: u32 = 6;

/// `clone_flags` bit for io threads (io-wq workers, SQPOLL threads since 5.12).
pub const CLONE_IO: u64 = 0x8000_0000;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain-old-data structs: repr(C), every bit pattern valid, no padding.
    unsafe impl aya::Pod for super::Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::KindLayout {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FieldSpec {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::BtfLayout {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::aggregate::Inflight {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::aggregate::RingAgg {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::aggregate::OpAgg {}
}
