//! Views of the kinds from the syscall, sched and task tracepoints: io_uring_enter
//! and the io threads' lives.

use super::EventView;
use crate::{EventKind, RawEvent, CLONE_IO, COMM_LEN, ENTER_WITHOUT_EXIT};

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
