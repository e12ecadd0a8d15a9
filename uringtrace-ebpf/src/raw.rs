//! Raw tracepoint twins of the classic programs. A classic tracepoint is attached
//! through its tracefs id, which only root can read by default (tracefs is mode
//! 0700); a raw tracepoint is attached by name (BPF_RAW_TRACEPOINT_OPEN), so CAP_BPF
//! and CAP_PERFMON are enough. The context is the tracepoint's arguments (8 bytes
//! each) instead of a trace record: userspace lays out each event's fields over them
//! from the kernel's BTF (`trace/catalog/btf_args.rs`), pointer members included
//! (`FIELD_DEREF`), and the classic handlers read them unchanged. They also cost less
//! per hit: no trace record is built.

use super::classic::*;
use super::*;

/// The classic handlers take a record pointer: here it points at the arguments.
#[inline(always)]
fn as_record(ctx: &RawTracePointContext) -> TracePointContext {
    TracePointContext::new(ctx.as_ptr())
}

macro_rules! raw_io_uring_programs {
    ($($name:ident => $kind:ident),* $(,)?) => {
        $(
            #[raw_tracepoint]
            pub fn $name(ctx: RawTracePointContext) -> i32 {
                handle_io_uring(&as_record(&ctx), EventKind::$kind);
                0
            }
        )*
    };
}

raw_io_uring_programs! {
    raw_create => Create,
    raw_register => Register,
    raw_file_get => FileGet,
    raw_queue_async_work => QueueAsyncWork,
    raw_defer => Defer,
    raw_link => Link,
    raw_cqring_wait => CqringWait,
    raw_fail_link => FailLink,
    raw_poll_arm => PollArm,
    raw_task_add => TaskAdd,
    raw_req_failed => ReqFailed,
    raw_cqe_overflow => CqeOverflow,
    raw_short_write => ShortWrite,
    raw_local_work_run => LocalWorkRun,
}

#[raw_tracepoint]
pub fn raw_task_work_run(ctx: RawTracePointContext) -> i32 {
    on_task_work_run(&as_record(&ctx));
    0
}

#[raw_tracepoint]
pub fn raw_process_fork(ctx: RawTracePointContext) -> i32 {
    on_process_fork(&as_record(&ctx));
    0
}

#[raw_tracepoint]
pub fn raw_task_newtask(ctx: RawTracePointContext) -> i32 {
    on_task_newtask(&as_record(&ctx));
    0
}

#[raw_tracepoint]
pub fn raw_task_rename(ctx: RawTracePointContext) -> i32 {
    on_task_rename(&as_record(&ctx));
    0
}

/// See `tp_cqring_wait_enter`.
#[raw_tracepoint]
pub fn raw_cqring_wait_enter(ctx: RawTracePointContext) -> i32 {
    on_cqring_wait_enter(&as_record(&ctx));
    0
}
