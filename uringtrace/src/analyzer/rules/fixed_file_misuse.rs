//! `fixed-file-misuse`: metadata, explanation and detector.

use uringtrace_common::{EventKind, Slot};

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, int, owner, req_ev, text, Hit};
use crate::analyzer::finding::{Evidence, Severity};
use crate::analyzer::state::{FixedFailure, State};
use crate::names::{opcode_name, result_name};

pub const RULE: Rule = Rule {
    id: RuleId::FixedFileMisuse,
    slug: "fixed-file-misuse",
    severity: Severity::Error,
    title: "a request on a registered file (IOSQE_FIXED_FILE) failed with -EBADF",
    fix: "keep fixed-file indexes below the registered table size, fill a slot before using it, and do not unregister or replace files requests still use",
    needs: &[
        Need::Event(EventKind::ReqFailed),
        Need::Field(EventKind::Submit, Slot::Aux),
    ],
    degraded_reason: "before 5.17 a bad fixed-file index fails at init with no io_uring_req_failed event and no submit event: only a stray -EBADF CQE shows",
    explanation: "\
With IOSQE_FIXED_FILE the SQE's fd is an index into the ring's registered file table
(IORING_REGISTER_FILES, 5.1+; sparse tables and IORING_REGISTER_FILES_UPDATE, 5.5+;
direct descriptors from OPENAT/ACCEPT, 5.15+). The kernel looks the slot up when it
issues the request (at init before 5.19) and fails it with -EBADF (-9) when the index
is beyond the table, the slot is empty (never filled, closed with IORING_OP_CLOSE, or
cleared by an update), or the table was unregistered while the request was queued. A
file in the slot that is not open for the operation (READ on an O_WRONLY file) fails
the same way.

In a trace: io_uring_submit_req with IOSQE_FIXED_FILE (bit 0 of flags), no
io_uring_file_get (fixed files never emit it), and a CQE of -9; from 5.17 to 5.18 an
io_uring_req_failed instead. io_uring_register reports the table size after every
register call, so uringtrace says whether the slot was beyond it. The slot number comes
from the tp_btf submit program (6.4+ with BTF); on classic tracepoints it is unknown.
Before 5.17 the failure leaves only a CQE: this detector is degraded there.

Typical causes: an index computed from an fd number instead of the slot; a slot freed
(CLOSE, FILES_UPDATE with -1) while requests still name it; a table registered smaller
than the connection count; files unregistered during shutdown with requests in flight.

What to change: keep a slot allocator beside the ring (or use
IORING_REGISTER_FILE_ALLOC_RANGE with IORING_FILE_INDEX_ALLOC); register a table as large
as the most files in use (sparse, with io_uring_register_files_sparse); cancel or reap
requests on a slot before freeing it; check the open mode of the files you register.",
};

/// Which of the causes the ring's table size points at.
fn cause(slot: Option<i32>, table: Option<u32>, op: &str) -> (&'static str, String) {
    match (slot, table) {
        (_, Some(0)) => ("no table", "no files were registered on the ring".into()),
        (Some(s), Some(n)) if s >= 0 && s as u32 >= n => (
            "beyond table",
            format!("slot {s} is beyond the {n}-entry file table"),
        ),
        (Some(s), Some(n)) => (
            "empty slot",
            format!(
                "slot {s} of the {n}-entry file table is empty (or its file is not open for {op})"
            ),
        ),
        (Some(s), None) => (
            "slot",
            format!("slot {s} is empty or beyond the table (or its file is not open for {op})"),
        ),
        (None, _) => (
            "unknown slot",
            "the slot is empty or beyond the table (this kernel's submit event has no slot number)"
                .into(),
        ),
    }
}

/// A fixed-file request that failed with -EBADF. One finding per (opcode, cause).
pub fn on_failure(st: &State, f: &FixedFailure) -> Hit {
    let op = opcode_name(f.opcode);
    let (key, why) = cause(f.slot, f.table_files, &op);
    let slot = f
        .slot
        .map_or_else(|| "fixed slot ?".to_string(), |s| format!("fixed slot {s}"));
    let when = if f.at_submit {
        "rejected at submit"
    } else {
        "failed"
    };
    let msg = format!(
        "{op} (user_data {:#x}) on {slot} {when} with {}: {why}",
        f.user_data,
        result_name(f.res)
    );
    let mut facts = vec![
        text("error", result_name(f.res)),
        int("slot", f.slot.map_or(-1, i64::from)),
    ];
    if let Some(n) = f.table_files {
        facts.push(count("registered_files", n.into()));
    }
    let e = Evidence {
        requests: vec![req_ev(
            f.user_data,
            f.opcode,
            Some(f.res),
            "bad fixed file",
            f.submit_ns,
            Some(f.ts_ns),
        )],
        facts,
        first_ns: f.ts_ns,
        last_ns: f.ts_ns,
    };
    hit(
        st,
        RuleId::FixedFileMisuse,
        owner(st, f.ctx, f.tgid),
        f.ctx,
        (f.opcode, key),
        msg,
        e,
    )
}
