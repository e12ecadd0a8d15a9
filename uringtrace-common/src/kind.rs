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
}

const _: () = {
    let mut i = 0;
    while i < EventKind::ALL.len() {
        assert!((EventKind::ALL[i] as usize) < crate::MAX_KINDS);
        i += 1;
    }
};
