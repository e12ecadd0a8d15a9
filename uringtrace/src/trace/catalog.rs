//! What uringtrace attaches to, and how each tracepoint's fields map into a
//! [`RawEvent`]. Field names (not offsets) are the contract: offsets come from the
//! running kernel's `format` files, so renamed or reordered fields across 5.10–6.18
//! are handled by data. See `docs/architecture.md` for the kernel history.

use uringtrace_common::{EventKind, FieldSpec, KindLayout, Slot};

use super::format::Format;

mod btf_args;
pub use btf_args::{layout_from_btf, protos, raw_program};

/// A field mapping: the tracepoint field `name` (read `size` bytes at `skip` bytes
/// into it, 0 = the whole field) lands in `slot`. Several names may feed one slot:
/// the first present wins (fields renamed across kernels).
#[derive(Clone, Copy, Debug)]
pub struct FieldMap {
    pub name: &'static str,
    pub slot: Slot,
    pub skip: u16,
    pub size: u8,
}

const fn f(name: &'static str, slot: Slot) -> FieldMap {
    FieldMap {
        name,
        slot,
        skip: 0,
        size: 0,
    }
}

const fn part(name: &'static str, slot: Slot, skip: u16, size: u8) -> FieldMap {
    FieldMap {
        name,
        slot,
        skip,
        size,
    }
}

/// One attachable event family.
#[derive(Debug)]
pub struct TracepointSpec {
    pub kind: EventKind,
    /// The eBPF program that handles it.
    pub program: &'static str,
    pub category: &'static str,
    /// Tracepoint names, newest first; the first one present on the kernel is used.
    pub names: &'static [&'static str],
    pub fields: &'static [FieldMap],
}

use Slot::*;

pub static CATALOG: &[TracepointSpec] = &[
    TracepointSpec {
        kind: EventKind::Create,
        program: "tp_create",
        category: "io_uring",
        names: &["io_uring_create"],
        fields: &[
            f("ctx", Ctx),
            f("fd", Arg0),
            f("sq_entries", Arg1),
            f("cq_entries", Arg2),
            f("flags", Cflags),
        ],
    },
    TracepointSpec {
        kind: EventKind::Register,
        program: "tp_register",
        category: "io_uring",
        names: &["io_uring_register"],
        fields: &[
            f("ctx", Ctx),
            f("opcode", Arg0),
            f("nr_files", Arg1),
            f("nr_bufs", Arg2),
            f("ret", Res),
        ],
    },
    TracepointSpec {
        kind: EventKind::FileGet,
        program: "tp_file_get",
        category: "io_uring",
        names: &["io_uring_file_get"],
        fields: &[
            f("ctx", Ctx),
            f("req", Req),
            f("user_data", UserData),
            f("fd", Arg0),
        ],
    },
    TracepointSpec {
        kind: EventKind::QueueAsyncWork,
        program: "tp_queue_async_work",
        category: "io_uring",
        names: &["io_uring_queue_async_work"],
        fields: &[
            f("ctx", Ctx),
            f("req", Req),
            f("user_data", UserData),
            f("opcode", Opcode),
            f("flags", Aux),
            f("work", Aux2),
            // `int rw` until 7.x, then `bool hashed`: both mean "hashed work".
            f("rw", Arg0),
            f("hashed", Arg0),
        ],
    },
    TracepointSpec {
        kind: EventKind::Defer,
        program: "tp_defer",
        category: "io_uring",
        names: &["io_uring_defer"],
        fields: &[
            f("ctx", Ctx),
            f("req", Req),
            f("data", UserData),
            f("opcode", Opcode),
        ],
    },
    TracepointSpec {
        kind: EventKind::Link,
        program: "tp_link",
        category: "io_uring",
        names: &["io_uring_link"],
        fields: &[f("ctx", Ctx), f("req", Req), f("target_req", Aux)],
    },
    TracepointSpec {
        kind: EventKind::CqringWait,
        program: "tp_cqring_wait",
        category: "io_uring",
        names: &["io_uring_cqring_wait"],
        fields: &[f("ctx", Ctx), f("min_events", Arg0)],
    },
    TracepointSpec {
        kind: EventKind::FailLink,
        program: "tp_fail_link",
        category: "io_uring",
        names: &["io_uring_fail_link"],
        fields: &[
            f("ctx", Ctx),
            f("req", Req),
            f("user_data", UserData),
            f("opcode", Opcode),
            f("link", Aux),
        ],
    },
    TracepointSpec {
        kind: EventKind::Complete,
        program: "tp_complete",
        category: "io_uring",
        names: &["io_uring_complete"],
        fields: &[
            f("ctx", Ctx),
            f("req", Req),
            f("user_data", UserData),
            f("res", Res),
            f("cflags", Cflags),
            f("extra1", Aux),
            f("extra2", Aux2),
        ],
    },
    TracepointSpec {
        kind: EventKind::Submit,
        program: "tp_submit",
        category: "io_uring",
        // Renamed in 6.4.
        names: &["io_uring_submit_req", "io_uring_submit_sqe"],
        fields: &[
            f("ctx", Ctx),
            f("req", Req),
            f("user_data", UserData),
            f("opcode", Opcode),
            f("flags", Aux),
            f("force_nonblock", Arg0),
            f("sq_thread", Arg1),
        ],
    },
    TracepointSpec {
        kind: EventKind::PollArm,
        program: "tp_poll_arm",
        category: "io_uring",
        names: &["io_uring_poll_arm"],
        fields: &[
            f("ctx", Ctx),
            f("req", Req),
            f("user_data", UserData),
            f("opcode", Opcode),
            f("mask", Arg0),
            f("events", Arg1),
        ],
    },
    TracepointSpec {
        kind: EventKind::TaskAdd,
        program: "tp_task_add",
        category: "io_uring",
        names: &["io_uring_task_add"],
        fields: &[
            f("ctx", Ctx),
            f("req", Req),
            f("user_data", UserData),
            f("opcode", Opcode),
            f("mask", Arg0),
        ],
    },
    TracepointSpec {
        kind: EventKind::ReqFailed,
        program: "tp_req_failed",
        category: "io_uring",
        names: &["io_uring_req_failed"],
        fields: &[
            f("ctx", Ctx),
            f("req", Req),
            f("user_data", UserData),
            f("opcode", Opcode),
            f("error", Res),
            f("flags", Cflags),
            f("off", Aux),
            f("addr", Aux2),
            f("len", Arg0),
            f("op_flags", Arg1),
            f("ioprio", Arg2),
            f("buf_index", Arg3),
        ],
    },
    TracepointSpec {
        kind: EventKind::CqeOverflow,
        program: "tp_cqe_overflow",
        category: "io_uring",
        names: &["io_uring_cqe_overflow"],
        fields: &[
            f("ctx", Ctx),
            f("user_data", UserData),
            f("res", Res),
            f("cflags", Cflags),
            f("ocqe", Aux),
        ],
    },
    TracepointSpec {
        kind: EventKind::TaskWorkRun,
        program: "tp_task_work_run",
        category: "io_uring",
        // 5.10's io_uring_task_run is per request (ctx, req, opcode, user_data).
        names: &["io_uring_task_work_run", "io_uring_task_run"],
        fields: &[
            f("tctx", Aux),
            f("count", Arg0),
            f("loops", Arg1),
            f("ctx", Ctx),
            f("req", Req),
            f("opcode", Opcode),
            f("user_data", UserData),
        ],
    },
    TracepointSpec {
        kind: EventKind::ShortWrite,
        program: "tp_short_write",
        category: "io_uring",
        names: &["io_uring_short_write"],
        fields: &[
            f("ctx", Ctx),
            f("fpos", Aux),
            f("wanted", Aux2),
            f("got", Res),
        ],
    },
    TracepointSpec {
        kind: EventKind::LocalWorkRun,
        program: "tp_local_work_run",
        category: "io_uring",
        names: &["io_uring_local_work_run"],
        fields: &[f("ctx", Ctx), f("count", Arg0), f("loops", Arg1)],
    },
    TracepointSpec {
        kind: EventKind::PollWake,
        program: "tp_poll_wake",
        category: "io_uring",
        // Only before 5.13; task_add replaced it.
        names: &["io_uring_poll_wake"],
        fields: &[
            f("ctx", Ctx),
            f("opcode", Opcode),
            f("user_data", UserData),
            f("mask", Arg0),
        ],
    },
    TracepointSpec {
        kind: EventKind::EnterEnter,
        program: "tp_enter",
        category: "syscalls",
        names: &["sys_enter_io_uring_enter"],
        fields: &[
            f("fd", Arg0),
            f("to_submit", Arg1),
            f("min_complete", Arg2),
            f("flags", Cflags),
            f("argsz", Arg3),
            f("argp", Aux),
        ],
    },
    TracepointSpec {
        kind: EventKind::EnterExit,
        program: "tp_enter_exit",
        category: "syscalls",
        names: &["sys_exit_io_uring_enter"],
        fields: &[f("ret", Res)],
    },
    TracepointSpec {
        kind: EventKind::SetupFailed,
        program: "tp_setup_exit",
        category: "syscalls",
        // With tp_btf syscall hooks, btf_sys_exit sees it instead (one compare more).
        names: &["sys_exit_io_uring_setup"],
        fields: &[f("ret", Res)],
    },
    TracepointSpec {
        kind: EventKind::SchedWaking,
        program: "tp_sched_waking",
        category: "sched",
        names: &["sched_waking"],
        fields: &[f("pid", Arg0), f("target_cpu", Arg1), f("prio", Arg2)],
    },
    TracepointSpec {
        kind: EventKind::SchedSwitch,
        program: "tp_sched_switch",
        category: "sched",
        names: &["sched_switch"],
        fields: &[
            f("prev_pid", Arg0),
            f("next_pid", Arg1),
            f("prev_prio", Arg2),
            f("next_prio", Arg3),
            f("prev_state", Aux),
        ],
    },
    TracepointSpec {
        kind: EventKind::TaskNewtask,
        program: "tp_task_newtask",
        category: "task",
        names: &["task_newtask"],
        fields: &[f("pid", Arg0), f("clone_flags", Aux)],
    },
    TracepointSpec {
        kind: EventKind::TaskRename,
        program: "tp_task_rename",
        category: "task",
        names: &["task_rename"],
        fields: &[
            f("pid", Arg0),
            part("newcomm", Aux, 0, 8),
            part("newcomm", Aux2, 8, 8),
        ],
    },
    TracepointSpec {
        kind: EventKind::ProcessFork,
        program: "tp_process_fork",
        category: "sched",
        names: &["sched_process_fork"],
        fields: &[f("parent_pid", Arg0), f("child_pid", Arg1)],
    },
];

pub fn spec_for(kind: EventKind) -> Option<&'static TracepointSpec> {
    CATALOG.iter().find(|s| s.kind == kind)
}

/// Builds the eBPF-side layout of one tracepoint from its parsed `format` file.
/// Fields the kernel does not have stay absent (size 0) and read as 0.
pub fn layout_for(spec: &TracepointSpec, format: &Format) -> KindLayout {
    let mut layout = KindLayout::default();
    for m in spec.fields {
        let idx = m.slot as usize;
        if layout.fields[idx].size != 0 {
            continue; // an earlier alternative name already filled this slot
        }
        let Some(field) = format.field(m.name) else {
            continue;
        };
        if field.ctype.starts_with("__data_loc") {
            continue;
        }
        let size = if m.size != 0 {
            m.size as u16
        } else {
            field.size
        };
        if !matches!(size, 1 | 2 | 4 | 8) || m.skip + size > field.size {
            continue;
        }
        layout.fields[idx] = FieldSpec {
            offset: field.offset + m.skip,
            size: size as u8,
            signed: u8::from(field.signed && m.size == 0),
        };
    }
    layout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::format::parse_format;

    #[test]
    fn every_prototype_has_a_raw_program() {
        btf_args::check_raw_programs();
    }

    #[test]
    fn every_kind_has_one_spec_and_unique_program() {
        for s in CATALOG {
            assert_eq!(
                CATALOG.iter().filter(|o| o.kind == s.kind).count(),
                1,
                "{:?}",
                s.kind
            );
            assert_eq!(CATALOG.iter().filter(|o| o.program == s.program).count(), 1);
        }
    }

    #[test]
    fn rename_reads_newcomm_in_two_halves() {
        let fmt = parse_format(
            "name: task_rename\nformat:\n\tfield:pid_t pid;\toffset:8;\tsize:4;\tsigned:1;\n\
             \tfield:char oldcomm[16];\toffset:12;\tsize:16;\tsigned:0;\n\
             \tfield:char newcomm[16];\toffset:28;\tsize:16;\tsigned:0;\n",
        )
        .unwrap();
        let l = layout_for(spec_for(EventKind::TaskRename).unwrap(), &fmt);
        assert_eq!(
            l.fields[Slot::Arg0 as usize],
            FieldSpec {
                offset: 8,
                size: 4,
                signed: 1
            }
        );
        assert_eq!(
            l.fields[Slot::Aux as usize],
            FieldSpec {
                offset: 28,
                size: 8,
                signed: 0
            }
        );
        assert_eq!(
            l.fields[Slot::Aux2 as usize],
            FieldSpec {
                offset: 36,
                size: 8,
                signed: 0
            }
        );
    }
}
