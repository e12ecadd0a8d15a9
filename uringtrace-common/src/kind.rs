//! Event kinds: one per tracepoint family. The numbers are part of the recording
//! format; never renumber, only append.

macro_rules! kinds {
    ($($variant:ident = $num:literal => $name:literal,)*) => {
        #[repr(u16)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum EventKind {
            $($variant = $num,)*
        }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            pub const fn from_u16(v: u16) -> Option<EventKind> {
                match v {
                    $($num => Some(EventKind::$variant),)*
                    _ => None,
                }
            }

            /// Short stable name, used in dumps and JSON.
            pub const fn name(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }

            pub fn from_name(name: &str) -> Option<EventKind> {
                match name {
                    $($name => Some(EventKind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    Create = 1 => "create",
    Register = 2 => "register",
    FileGet = 3 => "file_get",
    QueueAsyncWork = 4 => "queue_async_work",
    Defer = 5 => "defer",
    Link = 6 => "link",
    CqringWait = 7 => "cqring_wait",
    FailLink = 8 => "fail_link",
    Complete = 9 => "complete",
    Submit = 10 => "submit",
    PollArm = 11 => "poll_arm",
    TaskAdd = 12 => "task_add",
    ReqFailed = 13 => "req_failed",
    CqeOverflow = 14 => "cqe_overflow",
    TaskWorkRun = 15 => "task_work_run",
    ShortWrite = 16 => "short_write",
    LocalWorkRun = 17 => "local_work_run",
    PollWake = 18 => "poll_wake",
    EnterEnter = 32 => "enter",
    EnterExit = 33 => "enter_exit",
    SchedWaking = 34 => "sched_waking",
    SchedSwitch = 35 => "sched_switch",
    TaskNewtask = 36 => "task_newtask",
    TaskRename = 37 => "task_rename",
    ProcessFork = 38 => "process_fork",
    // Not from the kernel's tracepoints: a userspace sample of /proc/<pid>/fdinfo/<ring fd>
    // (SQ/CQ head and tail, SQPOLL thread times), which no tracepoint exposes.
    RingState = 39 => "ring_state",
    // Not from tracepoints: aggregating mode's per-CPU statistics, read by userspace and
    // turned into deltas. agg_ops: ctx, tgid, opcode, aux = requests only counted,
    // aux2 = their summed latency (ns). agg_latency: ctx, tgid, opcode, args[0] =
    // latency bucket (`aggregate::lat_bucket`), aux = requests in it.
    AggOps = 40 => "agg_ops",
    AggLatency = 41 => "agg_latency",
    // Not from tracepoints: what a file descriptor of a process using io_uring refers
    // to, read from /proc/<pid>/fd when it first appears or changes (see `FdType`):
    // tgid, args[0] = fd, args[1] = FdType, aux = inode number.
    FdObject = 42 => "fd_object",
    // Not from tracepoints: a process that used io_uring is gone (/proc/<pid> vanished).
    ProcessExit = 43 => "process_exit",
    // Not from tracepoints: a ring fd vanished from its owner's fd table: tgid,
    // args[0] = fd.
    RingClosed = 44 => "ring_closed",
    // Not from tracepoints: one piece of the name of what an fd refers to (a path,
    // `socket:127.0.0.1:8080->127.0.0.1:51234`, `pipe:[inode]`, ...), read from /proc
    // with the `fd_object` event it follows: tgid, args[0] = fd, args[1] = the name's
    // length, opcode = piece index, 32 name bytes in aux, aux2, args[2], args[3], res,
    // cflags (see `view::FdName`).
    FdName = 45 => "fd_name",
    // Not from tracepoints: what a ring owner with completions queued to its task work
    // was doing, read from /proc/<pid>/task/<tid>/ (stat, syscall, wchan) once the work
    // has waited a while (see `view::TaskState`): tid, args[0] = tid, args[1] = state
    // letter, res = syscall number, aux/aux2 = wchan.
    TaskState = 46 => "task_state",
    // An io_uring_setup that failed (raw_syscalls:sys_exit, or
    // syscalls:sys_exit_io_uring_setup): res = -errno, args[3] = entries; userspace
    // adds what it read when it drained the event (host sysctls, the process's
    // status) so that replay says the same (see `view::SetupFailed`).
    SetupFailed = 47 => "setup_failed",
}

/// Kinds below this come from io_uring's own tracepoints (`io_uring:*`); from it on,
/// from other tracepoints (syscalls, sched, task: 32-38) or made by userspace
/// (`ring_state` and up, 39-).
pub const FIRST_NON_IO_URING_KIND: u16 = 32;

impl EventKind {
    /// An event of kind number `kind` comes from an io_uring tracepoint: the task it
    /// fired in belongs to a process that uses io_uring.
    #[inline]
    pub const fn is_io_uring(kind: u16) -> bool {
        kind < FIRST_NON_IO_URING_KIND
    }

    /// Kinds whose events name no ring as a rule (ctx 0): task_work_run (which has the
    /// io_uring_task, not the ring, since 5.11), and the syscall, sched and task kinds
    /// and ring_state (32-39). Recording format v2 predicts their ring as 0; that list
    /// is part of the format, so it never changes (later kinds are not in it).
    #[inline]
    pub const fn ringless_in_format_v2(kind: u16) -> bool {
        kind == EventKind::TaskWorkRun as u16
            || (kind >= EventKind::EnterEnter as u16 && kind <= EventKind::RingState as u16)
    }
}

/// What a file descriptor refers to, in `fd_object` events ([`crate::view::FdObject`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FdType {
    /// The fd was closed.
    Closed = 0,
    /// A regular file (or a block device): reads end short only at end of file.
    File = 1,
    /// A pipe or FIFO: both ends share one inode.
    Pipe = 2,
    Socket = 3,
    /// An io_uring ring.
    Ring = 4,
    /// Anything else (eventfd, timerfd, character device, ...).
    Other = 5,
}

impl FdType {
    pub const fn from_u32(v: u32) -> Option<FdType> {
        match v {
            0 => Some(FdType::Closed),
            1 => Some(FdType::File),
            2 => Some(FdType::Pipe),
            3 => Some(FdType::Socket),
            4 => Some(FdType::Ring),
            5 => Some(FdType::Other),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            FdType::Closed => "closed",
            FdType::File => "file",
            FdType::Pipe => "pipe",
            FdType::Socket => "socket",
            FdType::Ring => "io_uring",
            FdType::Other => "other",
        }
    }
}

const _: () = {
    let mut i = 0;
    while i < EventKind::ALL.len() {
        assert!((EventKind::ALL[i] as usize) < crate::MAX_KINDS);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The named ranges are the numbers they replaced (part of the recording format).
    #[test]
    fn kind_ranges_keep_their_numbers() {
        for k in 0..=u16::MAX {
            assert_eq!(EventKind::is_io_uring(k), k < 32, "{k}");
            assert_eq!(
                EventKind::ringless_in_format_v2(k),
                k == 15 || (32..=39).contains(&k),
                "{k}"
            );
        }
        for &k in EventKind::ALL {
            assert_eq!(
                EventKind::is_io_uring(k as u16),
                k <= EventKind::PollWake,
                "{k:?}"
            );
        }
    }
}
