//! `invalid-sqe`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{hit, int, req_ev, text, Hit};
use crate::analyzer::finding::Evidence;
use crate::analyzer::finding::Severity;
use crate::analyzer::state::State;
use crate::names::{opcode_name, result_name, sqe_flags};
use uringtrace_common::RawEvent;

pub const RULE: Rule = Rule {
    id: RuleId::InvalidSqe,
    slug: "invalid-sqe",
    severity: Severity::Error,
    title: "an SQE was rejected at submission",
    fix: "check the opcode is supported by this kernel (IORING_REGISTER_PROBE), and the SQE's flags and fields",
    needs: &[Need::Event(EventKind::ReqFailed)],
    degraded_reason: "no io_uring_req_failed tracepoint (added in 5.17)",
    explanation: "\
The kernel checks each SQE when it is submitted: a known opcode, flags valid for it,
reserved fields zero, fixed file and buffer indexes in range, a buffer group where
IOSQE_BUFFER_SELECT asks for one. A rejected SQE is never issued: it completes at once with
the error (-EINVAL, -EBADF, -EOPNOTSUPP, ...) and, if it belongs to a link chain, fails the
whole chain. Unless the ring was set up with IORING_SETUP_SUBMIT_ALL (5.18+), the kernel
also stops the batch there: the SQEs after it stay in the SQ until the next submission,
and io_uring_enter returns fewer than were asked.

In a trace: io_uring_req_failed (5.17+) with the raw SQE fields and the error, and no
io_uring_submit_req for that request. Before 5.17 uringtrace only sees a completion with an
error that was never submitted, and this detector is degraded.

Typical causes: an opcode or flag the running kernel does not know (built against newer
headers than the kernel); SQE fields left over from a previous use of the slot;
IOSQE_FIXED_FILE with an index outside the registered table; IOSQE_BUFFER_SELECT on an
opcode without provided-buffer support.

What to change: prepare every SQE with the io_uring_prep_* helpers, which clear it;
probe opcodes at start with IORING_REGISTER_PROBE (io_uring_get_probe) and fall back when
one is missing; check registered file and buffer indexes; consider
IORING_SETUP_SUBMIT_ALL so one bad SQE does not hold back the rest of the batch.",
};

/// An SQE the kernel rejected at submission (io_uring_req_failed). One finding per
/// (opcode, error).
pub fn on_rejected(st: &State, ev: &RawEvent) -> Hit {
    let msg = format!(
        "{} (user_data {:#x}) rejected at submit with {}",
        opcode_name(ev.opcode),
        ev.user_data,
        result_name(ev.res)
    );
    let e = Evidence {
        requests: vec![req_ev(
            ev.user_data,
            ev.opcode,
            Some(ev.res),
            "rejected",
            Some(ev.ts_ns),
            None,
        )],
        facts: vec![
            text("error", result_name(ev.res)),
            text("sqe_flags", sqe_flags(ev.cflags.into())),
            int("opcode_number", ev.opcode.into()),
        ],
        first_ns: ev.ts_ns,
        last_ns: ev.ts_ns,
    };
    hit(
        st,
        RuleId::InvalidSqe,
        ev.tgid,
        ev.ctx,
        (ev.opcode, ev.res),
        msg,
        e,
    )
}
