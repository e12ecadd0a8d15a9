//! Views of the kinds from io_uring's own tracepoints (`io_uring:*`, kinds below
//! [`crate::kind::FIRST_NON_IO_URING_KIND`]).

use super::EventView;
use crate::aggregate::{SUBMIT_FROM_TABLE, WAIT_WITH_COUNTS, WAIT_WITH_READY};
use crate::{EventKind, RawEvent};

/// `create` (io_uring_create).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Create {
    /// The ring's fd in its creator.
    pub fd: u32,
    pub sq_entries: u32,
    pub cq_entries: u32,
    /// IORING_SETUP_* (in `cflags`).
    pub flags: u32,
    /// The cgroup v2 id of the creating task (`bpf_get_current_cgroup_id`, in `aux`,
    /// which create events had unused: the recording format is unchanged); 0 in
    /// recordings made before it was recorded, and in userspace-built events.
    pub cgroup_id: u64,
}
view!(Create, Create, { fd: args[0], sq_entries: args[1], cq_entries: args[2], flags: cflags, cgroup_id: aux });

/// `register` (io_uring_register); its `res` is the syscall's result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Register {
    /// IORING_REGISTER_* opcode.
    pub opcode: u32,
    pub nr_files: u32,
    pub nr_bufs: u32,
}
view!(Register, Register, { opcode: args[0], nr_files: args[1], nr_bufs: args[2] });

/// `submit.args[1]` bit 1: `args[2]` holds the SQE's fd even when it is 0 (the tp_btf
/// path reads req->cqe.fd). Bit 0 stays `sq_thread`. Recordings made before the bit
/// existed never set it, and readers from before it ignore it in every decision
/// (they only print `sq_thread`): fd 0 then reads as unknown, as it always did. The
/// classic submit events (5.10 to 6.3) carry no fd and never set it.
pub const SUBMIT_FD_KNOWN: u32 = 2;

/// `submit.args[1]`: `sq_thread` (0 or 1), and [`SUBMIT_FD_KNOWN`] when `fd_known`
/// is non-zero (the kernel programs keep it as a u8).
#[inline(always)]
pub const fn submit_arg1(sq_thread: u32, fd_known: u8) -> u32 {
    sq_thread | if fd_known != 0 { SUBMIT_FD_KNOWN } else { 0 }
}

/// `submit` (io_uring_submit_req / _sqe), and submits that aggregating mode rebuilds
/// from the kernel's in-flight table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Submit {
    /// req->flags at submit (its low byte: the IOSQE_* flags).
    pub req_flags: u64,
    /// The classic tracepoint's force_nonblock (5.10); 0 elsewhere.
    pub force_nonblock: u32,
    /// 1: submitted by the SQPOLL thread (`args[1]` bit 0).
    pub sq_thread: u32,
    /// The SQE's fd (tp_btf path and the in-flight table); 0 when not known, so fd 0
    /// reads as unknown too ([`Submit::fd`]) unless `fd_known`.
    pub fd: u32,
    /// `fd` is the SQE's even when 0 ([`SUBMIT_FD_KNOWN`], `args[1]` bit 1).
    pub fd_known: bool,
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

    /// The SQE's fd, or its registered-file slot under IOSQE_FIXED_FILE: slot 0 is
    /// told from "unknown" when the event says the fd is known. A plain fd 0 stays
    /// unknown as in [`Submit::fd`] (most requests without a file have fd 0 or -1).
    #[inline]
    pub fn fd_or_slot(&self) -> Option<i32> {
        let fixed = self.req_flags & IOSQE_FIXED_FILE != 0;
        if fixed && self.fd_known {
            Some(self.fd as i32)
        } else {
            self.fd()
        }
    }
}

/// IOSQE_FIXED_FILE: the SQE's fd is a slot of the ring's registered file table.
const IOSQE_FIXED_FILE: u64 = 1;

impl EventView for Submit {
    const KIND: EventKind = EventKind::Submit;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        Submit {
            req_flags: ev.aux,
            force_nonblock: ev.args[0],
            sq_thread: ev.args[1] & !SUBMIT_FD_KNOWN,
            fd: ev.args[2],
            fd_known: ev.args[1] & SUBMIT_FD_KNOWN != 0,
            from_table: ev.args[3] == SUBMIT_FROM_TABLE,
            futex_uaddr: ev.aux2,
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.aux = self.req_flags;
        ev.args[0] = self.force_nonblock;
        ev.args[1] = submit_arg1(self.sq_thread, self.fd_known as u8);
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
