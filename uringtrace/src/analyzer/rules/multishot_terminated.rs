//! `multishot-terminated`: metadata, explanation and detector.

use uringtrace_common::{EventKind, Slot};

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, owner, req_ev, text, Hit};
use crate::analyzer::finding::Evidence;
use crate::analyzer::finding::Severity;
use crate::analyzer::state::State;
use crate::names::{opcode_name, result_name};
use uringtrace_common::RawEvent;

pub const RULE: Rule = Rule {
    id: RuleId::MultishotTerminated,
    slug: "multishot-terminated",
    severity: Severity::Info,
    title: "a multishot request ended",
    fix: "re-arm the multishot request when a CQE arrives without IORING_CQE_F_MORE; keep buffers replenished",
    needs: &[Need::Field(EventKind::Complete, Slot::Req)],
    degraded_reason: "io_uring_complete has no req pointer before 5.19: intermediate and final CQEs look alike",
    explanation: "\
A multishot request (POLL_ADD with IORING_POLL_ADD_MULTI, 5.13+; multishot ACCEPT,
5.19+; multishot RECV, 6.0+; READ_MULTISHOT, 6.7+) posts many CQEs from one SQE. Each
intermediate CQE carries IORING_CQE_F_MORE (0x2). The kernel ends the request with a final
CQE without F_MORE when: an error occurs, including -ENOBUFS (-105) when the provided
buffer group is empty; the result is 0 or less (EOF); the CQ is full (these CQEs never go
to the overflow list, so a failed post ends the request); a length limit is reached; or
it is cancelled. After that nothing more arrives until the application arms it again.

In a trace: intermediate CQEs are io_uring_complete with no request pointer and F_MORE
in cflags; the final one has the request pointer and no F_MORE. The finding gives the
final result and how many CQEs the request posted. Observed on 6.18: cflags 0x3, 0x10003,
then -105.

Typical causes: the peer closed (normal); the buffer group ran dry; the CQ filled up.

What to change: check F_MORE on every CQE and re-arm when it is clear. For -ENOBUFS see
`uringtrace explain buffer-exhausted`; for a full CQ enlarge it (IORING_SETUP_CQSIZE) and
reap faster. This is informational: an ending is often expected.",
};

/// A multishot request posted its final CQE (no IORING_CQE_F_MORE). One finding per
/// (opcode, cause of the end).
pub fn on_end(st: &State, ev: &RawEvent, intermediate: u64, opcode: u8) -> Hit {
    let (cause, why) = match ev.res {
        r if r == -libc::ENOBUFS => (
            1,
            "the provided-buffer ring ran empty (-ENOBUFS)".to_string(),
        ),
        r if r == -libc::ECANCELED => (2, "it was cancelled (-ECANCELED)".to_string()),
        0 => (
            3,
            "end of stream (result 0: peer closed or EOF)".to_string(),
        ),
        r if r < 0 => (4, format!("error {}", result_name(r))),
        r => (
            5,
            format!("a final result {r} without IORING_CQE_F_MORE (CQ full, or a length limit)"),
        ),
    };
    let msg = format!(
        "multishot {} (user_data {:#x}) ended after {} CQEs: {why}",
        opcode_name(opcode),
        ev.user_data,
        intermediate + 1
    );
    let e = Evidence {
        requests: vec![req_ev(
            ev.user_data,
            opcode,
            Some(ev.res),
            "terminated",
            None,
            Some(ev.ts_ns),
        )],
        facts: vec![
            count("cqes", intermediate + 1),
            text("final_result", result_name(ev.res)),
        ],
        first_ns: ev.ts_ns,
        last_ns: ev.ts_ns,
    };
    hit(
        st,
        RuleId::MultishotTerminated,
        owner(st, ev.ctx, ev.tgid),
        ev.ctx,
        (opcode, cause, if cause == 4 { ev.res } else { 0 }),
        msg,
        e,
    )
}
