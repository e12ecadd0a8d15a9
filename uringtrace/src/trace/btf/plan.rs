//! What uringtrace takes from the kernel's BTF: which hot tracepoints its tp_btf
//! programs can attach to, and the struct member offsets they read.

use super::{Btf, Member};

/// Which hot tracepoints can use tp_btf on this kernel, and the struct offsets
/// their programs need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BtfPlan {
    pub layout: uringtrace_common::BtfLayout,
    pub complete: bool,
    pub submit: bool,
    /// io_uring_enter through raw_syscalls sys_enter/sys_exit as tp_btf, with the
    /// syscall's arguments read from `struct pt_regs`.
    pub syscalls: bool,
    /// io_uring_file_get and io_uring_task_add as tp_btf: `(struct io_kiocb *, int)`,
    /// read with the submit's io_kiocb offsets.
    pub file_get: bool,
    pub task_add: bool,
    /// sched_waking and sched_switch as tp_btf, an io thread told by its comm.
    pub sched_waking: bool,
    pub sched_switch: bool,
}

fn spec(m: Option<Member>, signed: bool) -> Option<uringtrace_common::FieldSpec> {
    let m = m?;
    if !matches!(m.size, 1 | 2 | 4 | 8) || m.offset > u32::from(u16::MAX) {
        return None;
    }
    Some(uringtrace_common::FieldSpec {
        offset: m.offset as u16,
        size: m.size as u8,
        signed: u8::from(signed),
    })
}

impl BtfPlan {
    /// Decides from the kernel's own BTF, never from its version: the prototype of
    /// each tracepoint must be the one the program was written for, and every
    /// struct member it reads must exist.
    pub fn from_btf(btf: &Btf) -> BtfPlan {
        let mut plan = BtfPlan::default();
        let l = &mut plan.layout;
        // io_uring_complete(ctx, req, cqe): the cqe-pointer prototype is 6.3+.
        let complete_proto = ["struct io_ring_ctx *", "void *", "struct io_uring_cqe *"];
        if btf
            .tracepoint_args("io_uring_complete")
            .is_some_and(|a| a == complete_proto)
        {
            if let (Some(ud), Some(res), Some(fl)) = (
                spec(btf.member("io_uring_cqe", &["user_data"]), false),
                spec(btf.member("io_uring_cqe", &["res"]), true),
                spec(btf.member("io_uring_cqe", &["flags"]), false),
            ) {
                (l.cqe_user_data, l.cqe_res, l.cqe_flags) = (ud, res, fl);
                plan.complete = true;
            }
        }
        if btf
            .tracepoint_args("io_uring_submit_req")
            .is_some_and(|a| a == ["struct io_kiocb *"])
        {
            if let (Some(ctx), Some(op), Some(fl), Some(ud)) = (
                spec(btf.member("io_kiocb", &["ctx"]), false),
                spec(btf.member("io_kiocb", &["opcode"]), false),
                spec(btf.member("io_kiocb", &["flags"]), false),
                spec(btf.member("io_kiocb", &["cqe", "user_data"]), false),
            ) {
                (l.req_ctx, l.req_opcode, l.req_flags, l.req_user_data) = (ctx, op, fl, ud);
                // The futex word: io_kiocb's per-opcode data is `struct io_futex` for
                // FUTEX_WAIT/WAKE (6.7+), whose `uaddr` the prep step has set by the time
                // io_uring_submit_req fires.
                if let (Some(cmd), Some(uaddr)) = (
                    btf.member("io_kiocb", &["cmd"]),
                    btf.member("io_futex", &["uaddr"]),
                ) {
                    let offset = cmd
                        .offset
                        .checked_add(uaddr.offset)
                        .and_then(|o| u16::try_from(o).ok());
                    if let (8, Some(offset)) = (uaddr.size, offset) {
                        l.req_futex_uaddr = uringtrace_common::FieldSpec {
                            offset,
                            size: 8,
                            signed: 0,
                        };
                    }
                }
                if let Some(bit) = btf
                    .enum_value("REQ_F_ISREG_BIT")
                    .filter(|b| (0..i64::from(fl.size) * 8).contains(b))
                {
                    l.req_isreg_bit = uringtrace_common::FieldSpec {
                        offset: bit as u16,
                        size: 1,
                        signed: 0,
                    };
                }
                l.req_fd = spec(btf.member("io_kiocb", &["cqe", "fd"]), true).unwrap_or_default();
                plan.submit = true;
                let req_int = ["struct io_kiocb *", "int"];
                plan.file_get = btf
                    .tracepoint_args("io_uring_file_get")
                    .is_some_and(|a| a == req_int);
                plan.task_add = btf
                    .tracepoint_args("io_uring_task_add")
                    .is_some_and(|a| a == req_int);
            }
        }
        // The registers of a syscall (x86_64 names; syscall ABI: di, si, dx, r10, r8,
        // r9, the number in orig_ax): io_uring_enter's arguments through
        // raw_syscalls:sys_enter(regs, id) / sys_exit(regs, ret) as tp_btf, or from the
        // waiting task's saved registers at io_uring_cqring_wait. Other architectures
        // keep the classic syscalls tracepoints.
        let reg = |name: &str| spec(btf.member("pt_regs", &[name]), false).filter(|s| s.size == 8);
        let args: Option<Vec<_>> = ["di", "si", "dx", "r10", "r8", "r9"]
            .iter()
            .map(|n| reg(n))
            .collect();
        if let (Some(args), Some(nr)) = (args, reg("orig_ax")) {
            l.regs_args.copy_from_slice(&args);
            l.regs_nr = nr;
            let regs_proto = ["struct pt_regs *", "long int"];
            plan.syscalls = btf
                .tracepoint_args("sys_enter")
                .is_some_and(|a| a == regs_proto)
                && btf
                    .tracepoint_args("sys_exit")
                    .is_some_and(|a| a == regs_proto);
        }
        // The scheduler tracepoints as tp_btf: sched_waking(p) and (5.18+)
        // sched_switch(preempt, prev, next, prev_state).
        if let (Some(comm), Some(pid), Some(prio), Some(exit_state)) = (
            btf.member("task_struct", &["comm"]),
            spec(btf.member("task_struct", &["pid"]), false).filter(|s| s.size == 4),
            spec(btf.member("task_struct", &["prio"]), false).filter(|s| s.size == 4),
            spec(btf.member("task_struct", &["exit_state"]), false).filter(|s| s.size == 4),
        ) {
            if comm.size >= 8 && comm.offset <= u32::from(u16::MAX) {
                l.task_comm = uringtrace_common::FieldSpec {
                    offset: comm.offset as u16,
                    size: 8,
                    signed: 0,
                };
                (l.task_pid, l.task_prio, l.task_exit_state) = (pid, prio, exit_state);
                plan.sched_waking = btf
                    .tracepoint_args("sched_waking")
                    .is_some_and(|a| a == ["struct task_struct *"]);
                plan.sched_switch = btf.tracepoint_args("sched_switch").is_some_and(|a| {
                    a.len() == 4
                        && matches!(a[0].as_str(), "bool" | "_Bool")
                        && a[1] == "struct task_struct *"
                        && a[2] == "struct task_struct *"
                        && a[3] == "unsigned int"
                });
            }
        }
        // CQEs ready at a wait: ctx->rings->cq.tail - cq.head (all three or none).
        if let (Some(rings), Some(head), Some(tail)) = (
            spec(btf.member("io_ring_ctx", &["rings"]), false),
            spec(btf.member("io_rings", &["cq", "head"]), false),
            spec(btf.member("io_rings", &["cq", "tail"]), false),
        ) {
            if rings.size == 8 && head.size == 4 && tail.size == 4 {
                (l.ctx_rings, l.rings_cq_head, l.rings_cq_tail) = (rings, head, tail);
            }
        }
        plan
    }
}
