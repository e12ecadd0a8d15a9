//! `buffer-exhausted`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{hit, owner, req_ev, Hit};
use crate::analyzer::finding::Evidence;
use crate::analyzer::finding::Severity;
use crate::analyzer::state::State;
use crate::names::opcode_name;
use uringtrace_common::RawEvent;

pub const RULE: Rule = Rule {
    id: RuleId::BufferExhausted,
    slug: "buffer-exhausted",
    severity: Severity::Warning,
    title: "a provided-buffer group ran out of buffers (-ENOBUFS)",
    fix: "provide more buffers, or return consumed buffers to the ring (io_uring_buf_ring_add/advance) sooner",
    needs: &[Need::Event(EventKind::Complete)],
    degraded_reason: "no io_uring_complete tracepoint",
    explanation: "\
Provided buffers let the kernel choose a buffer when data arrives instead of when the
request is submitted: classic groups through IORING_OP_PROVIDE_BUFFERS (5.7+), and buffer
rings through IORING_REGISTER_PBUF_RING (5.19+). A request with IOSQE_BUFFER_SELECT takes
one from its group; the CQE carries IORING_CQE_F_BUFFER and the buffer id in cflags >> 16.
A buffer comes back only when the application returns it (adds it to the ring and moves
the ring tail, or provides it again). When the group is empty the request completes with
-ENOBUFS (-105), and a multishot request ends.

In a trace: io_uring_complete with -105 on a buffer-select request; io_uring_register
with opcode 22 shows the buffer ring registration; the F_BUFFER completions before it
show how fast buffers were consumed.

Typical causes: too few buffers for the burst (many connections, large messages); buffers
held while the application processes data and returned late or never; one group shared
by more receivers than it was sized for.

What to change: provide more (or larger) buffers; return each buffer as soon as its data
is consumed; use incrementally consumed buffer rings (IOU_PBUF_RING_INC, 6.12+) for
large buffers; on -ENOBUFS replenish the group and re-arm the request; give busy
receivers their own group.",
};

/// A request found its provided-buffer group empty (-ENOBUFS). One finding per opcode.
pub fn on_nobufs(st: &State, ev: &RawEvent, opcode: u8) -> Hit {
    let msg = format!(
        "{} (user_data {:#x}) got -ENOBUFS: its provided-buffer group had no buffer left",
        opcode_name(opcode),
        ev.user_data
    );
    let e = Evidence {
        requests: vec![req_ev(
            ev.user_data,
            opcode,
            Some(ev.res),
            "no buffer",
            None,
            Some(ev.ts_ns),
        )],
        facts: vec![],
        first_ns: ev.ts_ns,
        last_ns: ev.ts_ns,
    };
    hit(
        st,
        RuleId::BufferExhausted,
        owner(st, ev.ctx, ev.tgid),
        ev.ctx,
        opcode,
        msg,
        e,
    )
}
