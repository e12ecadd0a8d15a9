//! Typed views of the kind-specific fields of a [`RawEvent`].
//!
//! A `RawEvent` has general-purpose slots (`args`, `aux`, `aux2`, and for a few kinds
//! `user_data`, `res` and `opcode`) whose meaning depends on its kind: the catalog of
//! tracepoint fields (`uringtrace/src/trace/catalog.rs`), the kernel programs and the
//! userspace samplers fill them. A view names them once, for producers and consumers
//! alike: `View::of(&ev)` reads an event of the view's kind (None for any other), and
//! `view.into_raw(base)` packs the fields into `base` and sets the kind.
//!
//! The packing is the ring buffer's and the recordings' format: it never changes. The
//! fields every kind shares (`ts_ns`, `ctx`, `req`, `pid`, `tgid`, `cpu`, `role`,
//! `comm`, and `user_data`, `res`, `cflags`, `opcode` where they mean what their name
//! says) stay on the event.

use crate::aggregate::{SUBMIT_FROM_TABLE, WAIT_WITH_COUNTS, WAIT_WITH_READY};
use crate::{EventKind, FdType, RawEvent, CLONE_IO, COMM_LEN, ENTER_WITHOUT_EXIT};

/// The kind-specific fields of one event kind (or of a few kinds that share them).
pub trait EventView: Sized {
    /// The kind of an event built by [`EventView::into_raw`].
    const KIND: EventKind;

    /// Whether events of `kind` carry this view.
    #[inline]
    fn carried_by(kind: u16) -> bool {
        kind == Self::KIND as u16
    }

    /// Reads the fields of an event the caller knows to be of this view's kind (a
    /// dispatch on the kind); of any other kind, the values mean nothing.
    fn read(ev: &RawEvent) -> Self;

    /// Writes the fields into `ev` (every slot the view owns; not the kind).
    fn write(&self, ev: &mut RawEvent);

    /// The fields of `ev`, when it is of this view's kind.
    #[inline]
    fn of(ev: &RawEvent) -> Option<Self> {
        Self::carried_by(ev.kind).then(|| Self::read(ev))
    }

    /// `base` (timestamp, task, ring, ...) as an event of this kind with these fields.
    #[inline]
    fn into_raw(self, mut base: RawEvent) -> RawEvent {
        base.kind = Self::KIND as u16;
        self.write(&mut base);
        base
    }
}

/// Implements [`EventView`] for a struct whose fields each sit in one slot, as is.
macro_rules! view {
    ($ty:ident, $kind:ident, { $($field:ident: $slot:ident $([$i:literal])?),* $(,)? }) => {
        impl EventView for $ty {
            const KIND: EventKind = EventKind::$kind;

            #[inline]
            fn read(ev: &RawEvent) -> Self {
                $ty { $($field: ev.$slot $([$i])?,)* }
            }

            #[inline]
            fn write(&self, ev: &mut RawEvent) {
                $(ev.$slot $([$i])? = self.$field;)*
            }
        }
    };
}

/// `create` (io_uring_create).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Create {
    /// The ring's fd in its creator.
    pub fd: u32,
    pub sq_entries: u32,
    pub cq_entries: u32,
    /// IORING_SETUP_* (in `cflags`).
    pub flags: u32,
}
view!(Create, Create, { fd: args[0], sq_entries: args[1], cq_entries: args[2], flags: cflags });

/// `register` (io_uring_register); its `res` is the syscall's result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Register {
    /// IORING_REGISTER_* opcode.
    pub opcode: u32,
    pub nr_files: u32,
    pub nr_bufs: u32,
}
view!(Register, Register, { opcode: args[0], nr_files: args[1], nr_bufs: args[2] });

/// `submit` (io_uring_submit_req / _sqe), and submits that aggregating mode rebuilds
/// from the kernel's in-flight table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Submit {
    /// req->flags at submit (its low byte: the IOSQE_* flags).
    pub req_flags: u64,
    /// The classic tracepoint's force_nonblock (5.10); 0 elsewhere.
    pub force_nonblock: u32,
    /// 1: submitted by the SQPOLL thread.
    pub sq_thread: u32,
    /// The SQE's fd (tp_btf path and the in-flight table); 0 when not known, so fd 0
    /// reads as unknown too ([`Submit::fd`]).
    pub fd: u32,
    /// Rebuilt from the in-flight table: the timestamp is the real submit time, but
    /// the event reaches userspace late (`args[3]` = [`SUBMIT_FROM_TABLE`]).
    pub from_table: bool,
    /// FUTEX_WAIT / FUTEX_WAKE (tp_btf path): the futex word's address; else 0.
    pub futex_uaddr: u64,
}

impl Submit {
    /// The SQE's fd, when the event has it.
    #[inline]
    pub fn fd(&self) -> Option<i32> {
        (self.fd != 0).then_some(self.fd as i32)
    }
}

impl EventView for Submit {
    const KIND: EventKind = EventKind::Submit;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        Submit {
            req_flags: ev.aux,
            force_nonblock: ev.args[0],
            sq_thread: ev.args[1],
            fd: ev.args[2],
            from_table: ev.args[3] == SUBMIT_FROM_TABLE,
            futex_uaddr: ev.aux2,
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.aux = self.req_flags;
        ev.args[0] = self.force_nonblock;
        ev.args[1] = self.sq_thread;
        ev.args[2] = self.fd;
        ev.args[3] = if self.from_table {
            SUBMIT_FROM_TABLE
        } else {
            0
        };
        ev.aux2 = self.futex_uaddr;
    }
}

/// `complete.args[1]`: whether the request's file is a regular one, read from
/// REQ_F_ISREG for streamed completions with a positive result (tp_btf path).
pub const COMPLETE_FILE_UNKNOWN: u32 = 0;
pub const COMPLETE_FILE_NOT_REGULAR: u32 = 1;
pub const COMPLETE_FILE_REGULAR: u32 = 2;

/// `complete` (io_uring_complete); `user_data`, `res` and `cflags` are the CQE's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Complete {
    /// [`COMPLETE_FILE_UNKNOWN`], [`COMPLETE_FILE_NOT_REGULAR`] or
    /// [`COMPLETE_FILE_REGULAR`] ([`Complete::regular_file`]).
    pub file: u32,
    /// The CQE's big-CQE extra words (classic tracepoint only).
    pub extra1: u64,
    pub extra2: u64,
}

impl Complete {
    /// Whether the request's file is a regular one, when known: a short read then
    /// means end of file.
    #[inline]
    pub fn regular_file(&self) -> Option<bool> {
        match self.file {
            COMPLETE_FILE_NOT_REGULAR => Some(false),
            COMPLETE_FILE_REGULAR => Some(true),
            _ => None,
        }
    }
}
view!(Complete, Complete, { file: args[1], extra1: aux, extra2: aux2 });

/// `cqe_overflow` (io_uring_cqe_overflow); `user_data`, `res`, `cflags` are the CQE's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CqeOverflow {
    /// The overflow list entry; 0 when none could be allocated: the CQE is dropped.
    pub ocqe: u64,
}

impl CqeOverflow {
    #[inline]
    pub fn dropped(&self) -> bool {
        self.ocqe == 0
    }
}
view!(CqeOverflow, CqeOverflow, { ocqe: aux });

/// `link` (io_uring_link): `req` is linked after `target_req`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub target_req: u64,
}
view!(Link, Link, { target_req: aux });

/// `fail_link` (io_uring_fail_link): `req` failed, `link` is cancelled with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailLink {
    pub link: u64,
}
view!(FailLink, FailLink, { link: aux });

/// `file_get` (io_uring_file_get).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileGet {
    pub fd: i32,
}

impl EventView for FileGet {
    const KIND: EventKind = EventKind::FileGet;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        FileGet {
            fd: ev.args[0] as i32,
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.args[0] = self.fd as u32;
    }
}

/// `queue_async_work` (io_uring_queue_async_work): a request punted to io-wq.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueAsyncWork {
    /// req->flags.
    pub req_flags: u64,
    /// The io_wq_work.
    pub work: u64,
    /// Non-zero: hashed work (serialized per file; `rw` until 7.x, then `hashed`).
    pub hashed: u32,
}
view!(QueueAsyncWork, QueueAsyncWork, { req_flags: aux, work: aux2, hashed: args[0] });

/// What the kernel counted at a wait (`cqring_wait.args[3]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WaitCounts {
    /// Nothing counted (classic tracepoint).
    #[default]
    None,
    /// CQEs ready in the CQ ring (streaming mode, tp_btf).
    Ready { ready: u64 },
    /// Requests in flight on the ring and CQEs ready (aggregating mode).
    Full { in_flight: u64, ready: u64 },
}

impl WaitCounts {
    /// (in flight, CQEs ready), each when counted.
    #[inline]
    pub fn in_flight_ready(self) -> (Option<u64>, Option<u64>) {
        match self {
            WaitCounts::None => (None, None),
            WaitCounts::Ready { ready } => (None, Some(ready)),
            WaitCounts::Full { in_flight, ready } => (Some(in_flight), Some(ready)),
        }
    }
}

/// `cqring_wait` (io_uring_cqring_wait): a GETEVENTS wait that is about to sleep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CqringWait {
    /// min_complete, clamped by the kernel to the CQ size.
    pub min_events: u32,
    pub counts: WaitCounts,
}

impl EventView for CqringWait {
    const KIND: EventKind = EventKind::CqringWait;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        let counts = match ev.args[3] {
            WAIT_WITH_COUNTS => WaitCounts::Full {
                in_flight: ev.aux,
                ready: ev.aux2,
            },
            WAIT_WITH_READY => WaitCounts::Ready { ready: ev.aux2 },
            _ => WaitCounts::None,
        };
        CqringWait {
            min_events: ev.args[0],
            counts,
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.args[0] = self.min_events;
        (ev.args[3], ev.aux, ev.aux2) = match self.counts {
            WaitCounts::None => (0, 0, 0),
            WaitCounts::Ready { ready } => (WAIT_WITH_READY, 0, ready),
            WaitCounts::Full { in_flight, ready } => (WAIT_WITH_COUNTS, in_flight, ready),
        };
    }
}

/// `poll_arm`, `task_add` and `poll_wake` (before 5.13): a request's poll mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    pub mask: u32,
    /// The events asked for (`poll_arm` only).
    pub events: u32,
}

impl EventView for Poll {
    const KIND: EventKind = EventKind::PollArm;

    #[inline]
    fn carried_by(kind: u16) -> bool {
        kind == EventKind::PollArm as u16
            || kind == EventKind::TaskAdd as u16
            || kind == EventKind::PollWake as u16
    }

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        Poll {
            mask: ev.args[0],
            events: ev.args[1],
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.args[0] = self.mask;
        ev.args[1] = self.events;
    }
}

/// `req_failed` (io_uring_req_failed): an SQE the kernel rejected; `res` is the
/// error. The SQE's fields as the tracepoint gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReqFailed {
    /// IOSQE_* (in `cflags`).
    pub sqe_flags: u32,
    pub off: u64,
    pub addr: u64,
    pub len: u32,
    pub op_flags: u32,
    pub ioprio: u32,
    pub buf_index: u32,
}
view!(ReqFailed, ReqFailed, {
    sqe_flags: cflags, off: aux, addr: aux2, len: args[0], op_flags: args[1],
    ioprio: args[2], buf_index: args[3],
});

/// `task_work_run` and `local_work_run`: a run of task work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkRun {
    /// The io_uring_task (`task_work_run` only).
    pub tctx: u64,
    pub count: u32,
    pub loops: u32,
}

impl EventView for WorkRun {
    const KIND: EventKind = EventKind::TaskWorkRun;

    #[inline]
    fn carried_by(kind: u16) -> bool {
        kind == EventKind::TaskWorkRun as u16 || kind == EventKind::LocalWorkRun as u16
    }

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        WorkRun {
            tctx: ev.aux,
            count: ev.args[0],
            loops: ev.args[1],
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.aux = self.tctx;
        ev.args[0] = self.count;
        ev.args[1] = self.loops;
    }
}

/// `short_write` (io_uring_short_write).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShortWrite {
    pub pos: u64,
    pub wanted: u64,
    pub got: i32,
}
view!(ShortWrite, ShortWrite, { pos: aux, wanted: aux2, got: res });

/// `enter` (io_uring_enter's arguments, hooked or read at the wait).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enter {
    /// The ring's fd, or its registered index with IORING_ENTER_REGISTERED_RING.
    pub fd: u32,
    pub to_submit: u32,
    pub min_complete: u32,
    /// IORING_ENTER_* (in `cflags`).
    pub flags: u32,
    pub argsz: u32,
    pub argp: u64,
    /// Read at its wait ([`ENTER_WITHOUT_EXIT`] in `aux2`): no exit event follows,
    /// and `ctx` is the ring waited on.
    pub without_exit: bool,
}

impl EventView for Enter {
    const KIND: EventKind = EventKind::EnterEnter;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        Enter {
            fd: ev.args[0],
            to_submit: ev.args[1],
            min_complete: ev.args[2],
            flags: ev.cflags,
            argsz: ev.args[3],
            argp: ev.aux,
            without_exit: ev.aux2 == ENTER_WITHOUT_EXIT,
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.args[0] = self.fd;
        ev.args[1] = self.to_submit;
        ev.args[2] = self.min_complete;
        ev.cflags = self.flags;
        ev.args[3] = self.argsz;
        ev.aux = self.argp;
        ev.aux2 = if self.without_exit {
            ENTER_WITHOUT_EXIT
        } else {
            0
        };
    }
}

/// `sched_waking` of an io thread; the current task is the waker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedWaking {
    pub woken: u32,
    pub target_cpu: u32,
    pub prio: u32,
}
view!(SchedWaking, SchedWaking, { woken: args[0], target_cpu: args[1], prio: args[2] });

/// `sched_switch` into or out of an io thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedSwitch {
    pub prev: u32,
    pub next: u32,
    pub prev_prio: u32,
    pub next_prio: u32,
    /// As the classic record reports it: 0x100 when preempted, else the highest state
    /// bit within 0x7f (exit_state included).
    pub prev_state: u64,
}
view!(SchedSwitch, SchedSwitch, {
    prev: args[0], next: args[1], prev_prio: args[2], next_prio: args[3], prev_state: aux,
});

/// `task_newtask`: a task was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskNewtask {
    pub new_tid: u32,
    pub clone_flags: u64,
}

impl TaskNewtask {
    /// An io thread ([`CLONE_IO`]).
    #[inline]
    pub fn io_thread(&self) -> bool {
        self.clone_flags & CLONE_IO != 0
    }
}
view!(TaskNewtask, TaskNewtask, { new_tid: args[0], clone_flags: aux });

/// `task_rename`: a task took a new comm (how io threads get their names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskRename {
    /// The renamed task; 0 when the tracepoint has no pid field (the current task).
    pub tid: u32,
    /// The new comm, NUL-padded (its two halves in `aux` and `aux2`).
    pub newcomm: [u8; COMM_LEN],
}

impl TaskRename {
    /// The renamed task, `current` when the event does not name it.
    #[inline]
    pub fn tid_or(&self, current: u32) -> u32 {
        if self.tid != 0 {
            self.tid
        } else {
            current
        }
    }
}

impl EventView for TaskRename {
    const KIND: EventKind = EventKind::TaskRename;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        let mut newcomm = [0u8; COMM_LEN];
        let (lo, hi) = newcomm.split_at_mut(8);
        lo.copy_from_slice(&ev.aux.to_ne_bytes());
        hi.copy_from_slice(&ev.aux2.to_ne_bytes());
        TaskRename {
            tid: ev.args[0],
            newcomm,
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        let mut half = [0u8; 8];
        ev.args[0] = self.tid;
        half.copy_from_slice(&self.newcomm[..8]);
        ev.aux = u64::from_ne_bytes(half);
        half.copy_from_slice(&self.newcomm[8..]);
        ev.aux2 = u64::from_ne_bytes(half);
    }
}

/// `process_fork` (sched_process_fork).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessFork {
    pub parent: u32,
    pub child: u32,
}
view!(ProcessFork, ProcessFork, { parent: args[0], child: args[1] });

/// `ring_state`: a userspace sample of /proc/<tgid>/fdinfo/<ring fd>, which shows
/// what no tracepoint does (SQ head and tail, SQPOLL thread times).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingState {
    pub fd: u32,
    pub sq_head: u32,
    pub sq_tail: u32,
    /// CQ tail - CQ head: CQEs the application has not consumed.
    pub cq_ready: u32,
    /// The SQPOLL thread (`aux`; 0: none).
    pub sq_thread: Option<u32>,
    /// µs the SQPOLL thread ran (`aux2`), and ran with work (`user_data`); 6.9+.
    pub sq_total_us: u64,
    pub sq_work_us: u64,
    /// CQEs in the overflow list, when the sample has it (`opcode` 1, length in
    /// `res`; recordings before it have opcode 0).
    pub overflow_list: Option<u32>,
}

impl RingState {
    /// SQEs the application queued that the kernel has not consumed yet.
    #[inline]
    pub fn sq_pending(&self) -> u32 {
        self.sq_tail.wrapping_sub(self.sq_head)
    }
}

impl EventView for RingState {
    const KIND: EventKind = EventKind::RingState;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        RingState {
            fd: ev.args[0],
            sq_head: ev.args[1],
            sq_tail: ev.args[2],
            cq_ready: ev.args[3],
            sq_thread: (ev.aux != 0).then_some(ev.aux as u32),
            sq_total_us: ev.aux2,
            sq_work_us: ev.user_data,
            overflow_list: (ev.opcode == 1).then_some(ev.res as u32),
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.args = [self.fd, self.sq_head, self.sq_tail, self.cq_ready];
        ev.aux = self.sq_thread.map_or(0, u64::from);
        ev.aux2 = self.sq_total_us;
        ev.user_data = self.sq_work_us;
        ev.opcode = u8::from(self.overflow_list.is_some());
        ev.res = self.overflow_list.unwrap_or(0) as i32;
    }
}

/// `agg_ops`: aggregating mode's per-(ring, opcode) delta of requests only counted;
/// `opcode` is the requests' opcode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggOps {
    /// Requests counted: one submit and one completion each.
    pub requests: u64,
    /// Their summed latency (over the sampled ones).
    pub latency_sum_ns: u64,
    /// Requests that ended without a CQE (CQE_SKIP_SUCCESS): one submit each
    /// (`args[AGG_OPS_UNSEEN_ARG]`).
    pub ended_unseen: u32,
}
view!(AggOps, AggOps, { requests: aux, latency_sum_ns: aux2, ended_unseen: args[1] });
const _: () = assert!(crate::aggregate::AGG_OPS_UNSEEN_ARG == 1);

/// `agg_latency`: requests counted into one latency bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggLatency {
    /// `aggregate::lat_bucket`.
    pub bucket: u32,
    pub requests: u64,
}
view!(AggLatency, AggLatency, { bucket: args[0], requests: aux });

/// `fd_object`: what a file descriptor of a process refers to, read from /proc.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdObject {
    pub fd: i32,
    /// [`FdType`] as a number ([`FdObject::fd_type`]).
    pub fd_type: u32,
    pub inode: u64,
}

impl FdObject {
    #[inline]
    pub fn new(fd: i32, fd_type: FdType, inode: u64) -> FdObject {
        FdObject {
            fd,
            fd_type: fd_type as u32,
            inode,
        }
    }

    #[inline]
    pub fn fd_type(&self) -> Option<FdType> {
        FdType::from_u32(self.fd_type)
    }
}

impl EventView for FdObject {
    const KIND: EventKind = EventKind::FdObject;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        FdObject {
            fd: ev.args[0] as i32,
            fd_type: ev.args[1],
            inode: ev.aux,
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.args[0] = self.fd as u32;
        ev.args[1] = self.fd_type;
        ev.aux = self.inode;
    }
}

/// `ring_closed`: a ring fd vanished from its owner's fd table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingClosed {
    pub fd: u32,
}
view!(RingClosed, RingClosed, { fd: args[0] });

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
