//! `fixed-buffer-misuse`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, int, owner, req_ev, text, Hit};
use crate::analyzer::finding::{Evidence, Severity};
use crate::analyzer::opcodes::{
    READV_FIXED, READ_FIXED, SENDMSG_ZC, SEND_ZC, URING_CMD, WRITEV_FIXED, WRITE_FIXED,
};
use crate::analyzer::state::{FixedFailure, State};
use crate::names::{opcode_name, result_name};

/// IORING_RECVSEND_FIXED_BUF (sqe->ioprio of SEND_ZC / SENDMSG_ZC, 6.0+).
const RECVSEND_FIXED_BUF: u32 = 1 << 2;
/// IORING_URING_CMD_FIXED (sqe->uring_cmd_flags, 6.1+).
const URING_CMD_FIXED: u32 = 1 << 0;

pub const RULE: Rule = Rule {
    id: RuleId::FixedBufferMisuse,
    slug: "fixed-buffer-misuse",
    severity: Severity::Error,
    title: "a request on a registered buffer failed with -EFAULT or -EINVAL",
    fix: "keep buf_index below the registered buffer count and addr..addr+len inside that buffer; do not unregister buffers requests still use",
    needs: &[Need::Event(EventKind::ReqFailed)],
    degraded_reason: "before 5.17 a buf_index beyond the table fails at init with no io_uring_req_failed and no submit event (5.10: only ranges outside a buffer are found)",
    explanation: "\
Registered buffers (IORING_REGISTER_BUFFERS, 5.1+) are pinned once, so READ_FIXED and
WRITE_FIXED (and READV_FIXED/WRITEV_FIXED 6.15+, SEND_ZC with IORING_RECVSEND_FIXED_BUF
6.0+, URING_CMD with IORING_URING_CMD_FIXED 6.1+) name a buffer by sqe->buf_index and
give an address and length inside it. The kernel fails the request with -EFAULT (-14)
when buf_index is at or beyond the registered count (also after the buffers were
unregistered, or never registered), or when addr..addr+len leaves that buffer; an
SQE naming a buffer an opcode cannot use fails with -EINVAL.

In a trace: a CQE of -14 for a READ_FIXED/WRITE_FIXED request; the CQE carries no
buf_index. Kernels that check at prep reject the SQE instead (the index on 5.10 and
6.1, index and range on 6.12): then io_uring_req_failed (5.17+) carries buf_index and
the SQE's addr and len; 5.10 has no such event and is degraded. 6.18 and 7.3 check both
at issue: only the CQE. io_uring_register reports the buffer count after every register
call, so uringtrace says when no buffers were registered or buf_index was beyond them.
-EINVAL at completion is left alone: O_DIRECT alignment errors look the same; a plain
READ into a bad address (-14, no registered buffer) is not this rule either.

Typical causes: an index taken from a pool larger than what was registered; buffers
unregistered or replaced (IORING_REGISTER_BUFFERS_UPDATE) while requests use them;
a length computed for a larger buffer; an offset added twice to addr.

What to change: register all buffers once at start and keep the index table beside the
ring; check addr >= iov_base and addr + len <= iov_base + iov_len before submitting;
quiesce (reap) requests before unregistering or updating buffers.",
};

/// Opcodes that always read sqe->buf_index as a registered buffer.
pub fn always_fixed(op: u8) -> bool {
    matches!(op, READ_FIXED | WRITE_FIXED | READV_FIXED | WRITEV_FIXED)
}

/// A rejected SQE that named a registered buffer (from its raw fields).
pub fn uses_buffer(op: u8, ioprio: u32, op_flags: u32) -> bool {
    always_fixed(op)
        || (matches!(op, SEND_ZC | SENDMSG_ZC) && ioprio & RECVSEND_FIXED_BUF != 0)
        || (op == URING_CMD && op_flags & URING_CMD_FIXED != 0)
}

fn cause(f: &FixedFailure) -> (&'static str, String) {
    if f.res == -libc::EINVAL {
        // Only at submit (an -EINVAL CQE is not taken for this rule).
        let idx = f
            .buf_index
            .map_or(String::new(), |i| format!(" (buf_index {i})"));
        return (
            "invalid",
            format!("the kernel refused the SQE's registered-buffer use{idx}: not for this opcode, or bad flags with it"),
        );
    }
    match (f.buf_index, f.table_bufs) {
        (_, Some(0)) => ("no buffers", "no buffers were registered on the ring".into()),
        (Some(i), Some(n)) if i >= n => (
            "beyond table",
            format!("buf_index {i} is beyond the {n} registered buffers"),
        ),
        (Some(i), Some(_)) => (
            "range",
            format!("the address range is outside registered buffer {i}"),
        ),
        (Some(i), None) => (
            "index or range",
            format!("buf_index {i} is beyond the registered buffers, or the address range is outside that buffer"),
        ),
        (None, Some(n)) => (
            "index or range",
            format!("buf_index beyond the {n} registered buffers, or the address range outside its buffer"),
        ),
        (None, None) => (
            "index or range",
            "buf_index beyond the registered buffers, or the address range outside its buffer"
                .into(),
        ),
    }
}

/// A registered-buffer request that failed. One finding per (opcode, error, cause).
pub fn on_failure(st: &State, f: &FixedFailure) -> Hit {
    let (key, why) = cause(f);
    let when = if f.at_submit {
        "rejected at submit"
    } else {
        "failed"
    };
    let msg = format!(
        "{} (user_data {:#x}) {when} with {}: {why}",
        opcode_name(f.opcode),
        f.user_data,
        result_name(f.res)
    );
    let mut facts = vec![text("error", result_name(f.res))];
    if let Some(i) = f.buf_index {
        facts.push(int("buf_index", i.into()));
    }
    if let Some(n) = f.table_bufs {
        facts.push(count("registered_buffers", n.into()));
    }
    if let Some((addr, len)) = f.range {
        facts.push(text("range", format!("{addr:#x}+{len}")));
    }
    let e = Evidence {
        requests: vec![req_ev(
            f.user_data,
            f.opcode,
            Some(f.res),
            "bad fixed buffer",
            f.submit_ns,
            Some(f.ts_ns),
        )],
        facts,
        first_ns: f.ts_ns,
        last_ns: f.ts_ns,
    };
    hit(
        st,
        RuleId::FixedBufferMisuse,
        owner(st, f.ctx, f.tgid),
        f.ctx,
        (f.opcode, f.res, key),
        msg,
        e,
    )
}
