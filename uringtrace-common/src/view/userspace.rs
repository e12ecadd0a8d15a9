//! Views of the kinds userspace makes: fdinfo samples, aggregating mode's deltas, and
//! what /proc shows of fds and rings.

use super::EventView;
use crate::{EventKind, FdType, RawEvent};

/// `ring_state`: a userspace sample of `/proc/<tgid>/fdinfo/<ring fd>`, which shows
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

/// `fd_name`: one piece of the name of what fd `fd` refers to. A name is a run of
/// events with the same fd and time, pieces 0, 1, ... in order, each carrying
/// [`FdName::PIECE`] bytes of it (the last one zero-padded); `len` is the whole name's
/// length. Names are at most [`FdName::MAX`] bytes (longer ones are cut at a UTF-8
/// character boundary by the producer). A run that is incomplete or out of order
/// names nothing (see the analyzer's assembly).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdName {
    pub fd: i32,
    /// Length of the whole name in bytes (≤ [`FdName::MAX`]).
    pub len: u32,
    /// Which piece this is: bytes `index * PIECE ..` of the name.
    pub index: u8,
    pub bytes: [u8; FdName::PIECE],
}

impl FdName {
    /// Name bytes per event: aux, aux2 (8 each), args[2], args[3], res, cflags (4 each).
    pub const PIECE: usize = 32;
    /// Longest name stored: 8 pieces.
    pub const MAX: usize = 256;

    /// The pieces of `name` for `fd` (empty name: no pieces). `name` is cut to
    /// [`FdName::MAX`] bytes by the caller.
    pub fn pieces(fd: i32, name: &[u8]) -> impl Iterator<Item = FdName> + '_ {
        let name = &name[..name.len().min(Self::MAX)];
        name.chunks(Self::PIECE).enumerate().map(move |(i, c)| {
            let mut bytes = [0u8; Self::PIECE];
            bytes[..c.len()].copy_from_slice(c);
            FdName {
                fd,
                len: name.len() as u32,
                index: i as u8,
                bytes,
            }
        })
    }

    /// How many bytes of the name this piece holds (0: a piece past the end).
    #[inline]
    pub fn used(&self) -> usize {
        (self.len as usize)
            .saturating_sub(self.index as usize * Self::PIECE)
            .min(Self::PIECE)
    }
}

#[inline]
fn word4(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[inline]
fn word8(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

impl EventView for FdName {
    const KIND: EventKind = EventKind::FdName;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        let mut bytes = [0u8; Self::PIECE];
        bytes[0..8].copy_from_slice(&ev.aux.to_le_bytes());
        bytes[8..16].copy_from_slice(&ev.aux2.to_le_bytes());
        bytes[16..20].copy_from_slice(&ev.args[2].to_le_bytes());
        bytes[20..24].copy_from_slice(&ev.args[3].to_le_bytes());
        bytes[24..28].copy_from_slice(&ev.res.to_le_bytes());
        bytes[28..32].copy_from_slice(&ev.cflags.to_le_bytes());
        FdName {
            fd: ev.args[0] as i32,
            len: ev.args[1],
            index: ev.opcode,
            bytes,
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        let b = &self.bytes;
        ev.args = [
            self.fd as u32,
            self.len,
            word4(&b[16..20]),
            word4(&b[20..24]),
        ];
        ev.opcode = self.index;
        ev.aux = word8(&b[0..8]);
        ev.aux2 = word8(&b[8..16]);
        ev.res = word4(&b[24..28]) as i32;
        ev.cflags = word4(&b[28..32]);
    }
}

/// `ring_closed`: a ring fd vanished from its owner's fd table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingClosed {
    pub fd: u32,
}
view!(RingClosed, RingClosed, { fd: args[0] });

/// `setup_failed`: an io_uring_setup that failed. The kernel program fills `res`
/// (-errno) and `entries`; userspace adds, when it drains the event, what explains the
/// failure: the host's `kernel.io_uring_disabled` and `kernel.io_uring_group` (6.6+)
/// and the process's `/proc/<pid>/status` (Seccomp mode, groups, CAP_SYS_ADMIN).
/// Stored in recordings as it is, so that replay explains it the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetupFailed {
    /// io_uring_setup's first argument (`args[3]`).
    pub entries: u32,
    /// `kernel.io_uring_disabled` (`args[0]`), when the sysctl exists.
    pub disabled: Option<u32>,
    /// `kernel.io_uring_group` (`aux`; -1: no group), when the sysctl exists.
    pub group: Option<i64>,
    /// The process's `Seccomp:` mode (`args[1]`: 0 none, 1 strict, 2 filter), when
    /// its status could be read.
    pub seccomp: Option<u32>,
    /// [`SetupFailed::ANNOTATED`] and the other bits (`args[2]`).
    pub flags: u32,
}

impl SetupFailed {
    /// Userspace has read the sysctls and the status (set even when they were absent).
    pub const ANNOTATED: u32 = 1;
    /// The process is in `kernel.io_uring_group` (its gid or a supplementary group).
    pub const IN_GROUP: u32 = 2;
    /// The process has CAP_SYS_ADMIN in its effective set.
    pub const CAP_SYS_ADMIN: u32 = 4;
    const NONE: u32 = u32::MAX;
    const HAS_GROUP: u32 = 8;

    #[inline]
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

impl EventView for SetupFailed {
    const KIND: EventKind = EventKind::SetupFailed;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        let opt = |v: u32| (v != Self::NONE).then_some(v);
        SetupFailed {
            entries: ev.args[3],
            disabled: opt(ev.args[0]),
            seccomp: opt(ev.args[1]),
            group: (ev.args[2] & Self::HAS_GROUP != 0).then_some(ev.aux as i64),
            flags: ev.args[2] & !Self::HAS_GROUP,
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.args = [
            self.disabled.unwrap_or(Self::NONE),
            self.seccomp.unwrap_or(Self::NONE),
            (self.flags & !Self::HAS_GROUP)
                | if self.group.is_some() {
                    Self::HAS_GROUP
                } else {
                    0
                },
            self.entries,
        ];
        ev.aux = self.group.unwrap_or(0) as u64;
    }
}

/// `task_state`: what a thread was doing, read from `/proc/<tgid>/task/<tid>/` by
/// userspace (no kernel program follows ordinary tasks' context switches): the owner
/// of a ring whose completions wait for it to run its task work. tid in `args[0]`,
/// the state letter of `stat` (R, S, D, T, ...) in `args[1]`, the syscall it is in
/// (`syscall`'s first field; -1 when running in userspace or unknown) in `res`, and
/// `wchan` (the kernel function it sleeps in, NUL-padded, cut at 16 bytes) in
/// `aux`/`aux2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskState {
    pub tid: u32,
    pub state: u8,
    pub syscall: i32,
    pub wchan: [u8; 16],
}

impl EventView for TaskState {
    const KIND: EventKind = EventKind::TaskState;

    #[inline]
    fn read(ev: &RawEvent) -> Self {
        let mut wchan = [0u8; 16];
        wchan[..8].copy_from_slice(&ev.aux.to_le_bytes());
        wchan[8..].copy_from_slice(&ev.aux2.to_le_bytes());
        TaskState {
            tid: ev.args[0],
            state: ev.args[1] as u8,
            syscall: ev.res,
            wchan,
        }
    }

    #[inline]
    fn write(&self, ev: &mut RawEvent) {
        ev.args[0] = self.tid;
        ev.args[1] = u32::from(self.state);
        ev.res = self.syscall;
        ev.aux = word8(&self.wchan[..8]);
        ev.aux2 = word8(&self.wchan[8..]);
    }
}
