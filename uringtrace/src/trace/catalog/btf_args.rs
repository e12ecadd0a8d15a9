//! The catalog's fields laid out over a tracepoint's *arguments* instead of its trace
//! record, for raw tracepoint programs: what lets uringtrace trace without tracefs
//! (tracefs is mode 0700 by default, so a user with only CAP_BPF and CAP_PERFMON can
//! neither read the `format` files nor the ids a classic attach needs).
//!
//! The arguments and their types come from the kernel's BTF (`btf_trace_<name>`,
//! without parameter names); each prototype below says what the kernel's own
//! `TP_fast_assign` copies into each record field, so the classic programs read the
//! same values. A prototype that matches none of these (another kernel's) leaves the
//! event to the classic tracepoint, which needs tracefs. Members behind a pointer
//! argument are read at their BTF offset (`FIELD_DEREF`).

use uringtrace_common::{
    EventKind, FieldSpec, KindLayout, FIELD_ADDR, FIELD_ARG_SHIFT, FIELD_DEREF,
};

use super::TracepointSpec;
#[cfg(test)]
use super::CATALOG;
use crate::trace::btf::Btf;

/// Where a record field's value comes from.
#[derive(Clone, Copy, Debug)]
pub enum Src {
    /// Argument i itself.
    Arg(u8),
    /// A member (path) of the struct argument i points to; the size is capped at
    /// `max` bytes when non-zero (the record keeps a narrower copy).
    Member(u8, &'static str, &'static [&'static str], u8),
    /// The address of a member (the record stores `&req->work`).
    Addr(u8, &'static str, &'static [&'static str]),
    /// `n` bytes argument i points to (a string: task_rename's new comm).
    Bytes(u8, u16),
}

/// One prototype: argument types (as [`Btf::tracepoint_args`] names them) and the
/// record fields it gives.
#[derive(Debug)]
pub struct Proto {
    pub args: &'static [&'static str],
    pub fields: &'static [(&'static str, Src)],
}

use Src::*;

const REQ: &str = "struct io_kiocb *";
const TASK: &str = "struct task_struct *";

/// The req-based events' common fields (6.4+: the tracepoint takes the io_kiocb).
macro_rules! req_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            ("ctx", Member(0, "io_kiocb", &["ctx"], 0)),
            ("req", Arg(0)),
            ("user_data", Member(0, "io_kiocb", &["cqe", "user_data"], 0)),
            ("data", Member(0, "io_kiocb", &["cqe", "user_data"], 0)),
            ("opcode", Member(0, "io_kiocb", &["opcode"], 0)),
            $($extra),*
        ]
    };
}

/// Prototypes per event kind, as of 6.18 (7.x for queue_async_work's `bool hashed`).
/// submit, complete, file_get, task_add, the scheduler and io_uring_enter have tp_btf
/// programs of their own (`trace/btf.rs` plan); these are their fallbacks.
pub fn protos(kind: EventKind) -> &'static [Proto] {
    use EventKind::*;
    match kind {
        Create => &[Proto {
            args: &[
                "int",
                "void *",
                "unsigned int",
                "unsigned int",
                "unsigned int",
            ],
            fields: &[
                ("fd", Arg(0)),
                ("ctx", Arg(1)),
                ("sq_entries", Arg(2)),
                ("cq_entries", Arg(3)),
                ("flags", Arg(4)),
            ],
        }],
        Register => &[Proto {
            args: &[
                "void *",
                "unsigned int",
                "unsigned int",
                "unsigned int",
                "long int",
            ],
            fields: &[
                ("ctx", Arg(0)),
                ("opcode", Arg(1)),
                ("nr_files", Arg(2)),
                ("nr_bufs", Arg(3)),
                ("ret", Arg(4)),
            ],
        }],
        FileGet => &[Proto {
            args: &[REQ, "int"],
            fields: req_fields![("fd", Arg(1))],
        }],
        QueueAsyncWork => &[
            Proto {
                args: &[REQ, "int"],
                fields: req_fields![
                    ("flags", Member(0, "io_kiocb", &["flags"], 0)),
                    ("work", Addr(0, "io_kiocb", &["work"])),
                    ("rw", Arg(1)),
                ],
            },
            Proto {
                args: &[REQ, "_Bool"],
                fields: req_fields![
                    ("flags", Member(0, "io_kiocb", &["flags"], 0)),
                    ("work", Addr(0, "io_kiocb", &["work"])),
                    ("hashed", Arg(1)),
                ],
            },
        ],
        Defer => &[Proto {
            args: &[REQ],
            fields: req_fields![],
        }],
        Link => &[Proto {
            args: &[REQ, REQ],
            fields: &[
                ("ctx", Member(0, "io_kiocb", &["ctx"], 0)),
                ("req", Arg(0)),
                ("target_req", Arg(1)),
            ],
        }],
        CqringWait => &[Proto {
            args: &["void *", "int"],
            fields: &[("ctx", Arg(0)), ("min_events", Arg(1))],
        }],
        FailLink => &[Proto {
            args: &[REQ, REQ],
            fields: req_fields![("link", Arg(1))],
        }],
        PollArm => &[Proto {
            args: &[REQ, "int", "int"],
            fields: req_fields![("mask", Arg(1)), ("events", Arg(2))],
        }],
        TaskAdd => &[Proto {
            args: &[REQ, "int"],
            fields: req_fields![("mask", Arg(1))],
        }],
        ReqFailed => &[Proto {
            args: &["struct io_uring_sqe *", REQ, "int"],
            fields: &[
                ("ctx", Member(1, "io_kiocb", &["ctx"], 0)),
                ("req", Arg(1)),
                ("user_data", Member(0, "io_uring_sqe", &["user_data"], 0)),
                ("opcode", Member(0, "io_uring_sqe", &["opcode"], 0)),
                ("flags", Member(0, "io_uring_sqe", &["flags"], 0)),
                // The record keeps a u8 of the u16.
                ("ioprio", Member(0, "io_uring_sqe", &["ioprio"], 1)),
                ("off", Member(0, "io_uring_sqe", &["off"], 0)),
                ("addr", Member(0, "io_uring_sqe", &["addr"], 0)),
                ("len", Member(0, "io_uring_sqe", &["len"], 0)),
                ("op_flags", Member(0, "io_uring_sqe", &["poll32_events"], 0)),
                ("buf_index", Member(0, "io_uring_sqe", &["buf_index"], 0)),
                ("error", Arg(2)),
            ],
        }],
        CqeOverflow => &[Proto {
            args: &[
                "void *",
                "long long unsigned int",
                "int",
                "unsigned int",
                "void *",
            ],
            fields: &[
                ("ctx", Arg(0)),
                ("user_data", Arg(1)),
                ("res", Arg(2)),
                ("cflags", Arg(3)),
                ("ocqe", Arg(4)),
            ],
        }],
        TaskWorkRun => &[
            Proto {
                args: &["void *", "unsigned int"],
                fields: &[("tctx", Arg(0)), ("count", Arg(1))],
            },
            Proto {
                args: &["void *", "unsigned int", "unsigned int"],
                fields: &[("tctx", Arg(0)), ("count", Arg(1)), ("loops", Arg(2))],
            },
        ],
        ShortWrite => &[Proto {
            args: &[
                "void *",
                "long long unsigned int",
                "long long unsigned int",
                "long long unsigned int",
            ],
            fields: &[
                ("ctx", Arg(0)),
                ("fpos", Arg(1)),
                ("wanted", Arg(2)),
                ("got", Arg(3)),
            ],
        }],
        LocalWorkRun => &[Proto {
            args: &["void *", "int", "unsigned int"],
            fields: &[("ctx", Arg(0)), ("count", Arg(1)), ("loops", Arg(2))],
        }],
        ProcessFork => &[Proto {
            args: &[TASK, TASK],
            fields: &[
                ("parent_pid", Member(0, "task_struct", &["pid"], 0)),
                ("child_pid", Member(1, "task_struct", &["pid"], 0)),
            ],
        }],
        TaskNewtask => &[
            Proto {
                args: &[TASK, "long long unsigned int"],
                fields: &[
                    ("pid", Member(0, "task_struct", &["pid"], 0)),
                    ("clone_flags", Arg(1)),
                ],
            },
            Proto {
                args: &[TASK, "long unsigned int"],
                fields: &[
                    ("pid", Member(0, "task_struct", &["pid"], 0)),
                    ("clone_flags", Arg(1)),
                ],
            },
        ],
        TaskRename => &[Proto {
            args: &[TASK, "char *"],
            fields: &[
                ("pid", Member(0, "task_struct", &["pid"], 0)),
                ("newcomm", Bytes(1, 16)),
            ],
        }],
        _ => &[],
    }
}

/// A record field as the raw program reads it: (spec, field size in bytes).
fn field_spec(btf: &Btf, params: &[(String, u32, bool)], src: Src) -> Option<(FieldSpec, u16)> {
    let deref = |arg: u8, offset: u32, size: u32, signed: bool, flags: u8| {
        let offset = u16::try_from(offset).ok()?;
        let size = u16::try_from(size).ok()?;
        Some((
            FieldSpec {
                offset,
                size: 0,
                signed: u8::from(signed) | FIELD_DEREF | flags | (arg << FIELD_ARG_SHIFT),
            },
            size,
        ))
    };
    match src {
        Arg(i) => {
            let (_, size, signed) = params.get(usize::from(i))?;
            Some((
                FieldSpec {
                    offset: 8 * u16::from(i),
                    size: 0,
                    signed: u8::from(*signed),
                },
                u16::try_from(*size).ok()?,
            ))
        }
        Member(i, st, path, max) => {
            let (m, signed) = btf.member_signed(st, path)?;
            let size = if max != 0 {
                m.size.min(u32::from(max))
            } else {
                m.size
            };
            deref(i, m.offset, size, signed, 0)
        }
        Addr(i, st, path) => deref(i, btf.member(st, path)?.offset, 8, false, FIELD_ADDR),
        Bytes(i, n) => deref(i, 0, u32::from(n), false, 0),
    }
}

/// The layout of `spec`'s fields over the arguments of tracepoint `name`, when its
/// BTF prototype is one of [`protos`]. Like [`super::layout_for`] over a `format`
/// file: catalog names in order, alternatives, parts of wide fields.
pub fn layout_from_btf(btf: &Btf, spec: &TracepointSpec, name: &str) -> Option<KindLayout> {
    let params = btf.tracepoint_params(name)?;
    let proto = protos(spec.kind).iter().find(|p| {
        p.args.len() == params.len() && p.args.iter().zip(&params).all(|(a, (t, _, _))| a == t)
    })?;
    let mut layout = KindLayout::default();
    for m in spec.fields {
        let idx = m.slot as usize;
        if layout.fields[idx].size != 0 {
            continue;
        }
        let Some(&(_, src)) = proto.fields.iter().find(|(n, _)| *n == m.name) else {
            continue;
        };
        let Some((mut fs, field_size)) = field_spec(btf, &params, src) else {
            continue;
        };
        let size = if m.size != 0 {
            u16::from(m.size)
        } else {
            field_size
        };
        if !matches!(size, 1 | 2 | 4 | 8) || m.skip + size > field_size {
            continue;
        }
        fs.offset += m.skip;
        fs.size = size as u8;
        if m.size != 0 {
            fs.signed &= !1;
        }
        layout.fields[idx] = fs;
    }
    Some(layout)
}

/// Kinds with a raw tracepoint program (`raw_*` in uringtrace-ebpf/src/raw.rs).
pub fn raw_program(kind: EventKind) -> Option<&'static str> {
    use EventKind::*;
    Some(match kind {
        Create => "raw_create",
        Register => "raw_register",
        FileGet => "raw_file_get",
        QueueAsyncWork => "raw_queue_async_work",
        Defer => "raw_defer",
        Link => "raw_link",
        CqringWait => "raw_cqring_wait",
        FailLink => "raw_fail_link",
        PollArm => "raw_poll_arm",
        TaskAdd => "raw_task_add",
        ReqFailed => "raw_req_failed",
        CqeOverflow => "raw_cqe_overflow",
        TaskWorkRun => "raw_task_work_run",
        ShortWrite => "raw_short_write",
        LocalWorkRun => "raw_local_work_run",
        ProcessFork => "raw_process_fork",
        TaskNewtask => "raw_task_newtask",
        TaskRename => "raw_task_rename",
        _ => return None,
    })
}

/// Every catalog kind that has a prototype has a raw program, and back.
#[cfg(test)]
pub(super) fn check_raw_programs() {
    for s in CATALOG {
        assert_eq!(
            protos(s.kind).is_empty(),
            raw_program(s.kind).is_none(),
            "{:?}",
            s.kind
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::catalog::layout_for;
    use crate::trace::format::parse_format;

    /// On a kernel with 6.18's prototypes (this machine's), every raw layout gives the
    /// same fields, sizes and signedness as the classic record of 6.18's `format`
    /// files: the raw programs read what the classic ones read.
    #[test]
    fn raw_layouts_match_the_classic_records_of_6_18() {
        let Ok(btf) = Btf::from_sys_fs() else {
            eprintln!("no /sys/kernel/btf/vmlinux: nothing to compare");
            return;
        };
        if btf
            .tracepoint_args("io_uring_complete")
            .is_none_or(|a| a.len() != 3)
        {
            eprintln!("not a 6.3+ kernel: its prototypes are not 6.18's");
            return;
        }
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tracepoint-formats-6.18.txt"
        ));
        let formats: Vec<_> = text
            .split("\nname: ")
            .map(|t| parse_format(&format!("name: {}", t.trim_start_matches("name: "))).unwrap())
            .collect();
        let mut compared = 0;
        for spec in CATALOG.iter().filter(|s| !protos(s.kind).is_empty()) {
            let Some(format) = formats
                .iter()
                .find(|f| spec.names.contains(&f.name.as_str()))
            else {
                continue; // sched and task: not in the fixture
            };
            let classic = layout_for(spec, format);
            let raw = layout_from_btf(&btf, spec, &format.name)
                .unwrap_or_else(|| panic!("{}: no prototype matches", format.name));
            for (i, (c, r)) in classic.fields.iter().zip(raw.fields.iter()).enumerate() {
                assert_eq!(
                    (c.size, c.signed & 1),
                    (r.size, r.signed & 1),
                    "{} slot {i}: classic {c:?}, raw {r:?}",
                    format.name
                );
            }
            compared += 1;
        }
        assert_eq!(compared, 15);
    }
}
