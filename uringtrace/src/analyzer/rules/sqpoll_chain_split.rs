//! `sqpoll-chain-split`: metadata, explanation and detector.

use uringtrace_common::{EventKind, Slot};

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{chain_evidence, count, hit, Hit};
use crate::analyzer::finding::Severity;
use crate::analyzer::state::{Chain, State};

pub const RULE: Rule = Rule {
    id: RuleId::SqpollChainSplit,
    slug: "sqpoll-chain-split",
    severity: Severity::Error,
    title: "a link chain on an SQPOLL ring was split across submission batches",
    fix: "keep chains to 8 SQEs or fewer on rings that share an SQPOLL thread (IORING_SETUP_ATTACH_WQ), or give the ring its own SQPOLL thread",
    needs: &[Need::Field(EventKind::Submit, Slot::Req), Need::Field(EventKind::Complete, Slot::Req), Need::Event(EventKind::Link)],
    degraded_reason: "needs req pointers in submit and complete, and io_uring_link",
    explanation: "\
Link chains are built per submission batch: a chain opens at an SQE with IOSQE_IO_LINK or
IOSQE_IO_HARDLINK, takes the following SQEs of the same batch and closes at the first SQE
without a link flag. A chain still open when the batch ends is queued as it is, and the
next SQEs start from scratch. On an SQPOLL ring the batch is what the thread picks up in
one loop. When several rings share one SQPOLL thread (IORING_SETUP_ATTACH_WQ), the thread
takes at most 8 SQEs per ring per loop, so a longer chain is cut in two: the members after
the 8th run without waiting for the ones before, and are not cancelled when one of those
fails. On 6.18 members 9 and later were seen to run, and succeed, before the failing head.
An application that moves the SQ tail in several steps while writing one chain splits it
the same way, on any SQPOLL ring.

In a trace: the chain's io_uring_submit_req events come from the SQPOLL thread in two
loops; io_uring_link joins no member of the second part to the first; members after the
cut complete with success while an earlier member fails, with no io_uring_fail_link.

Typical causes: long chains (more than 8 SQEs) on rings sharing an SQPOLL thread; updating
the SQ tail after each SQE instead of once per chain.

What to change: keep chains at 8 SQEs or fewer on rings that share an SQPOLL thread, or
give the ring its own thread (no IORING_SETUP_ATTACH_WQ); write every SQE of a chain
first and publish them with a single store-release of the SQ tail; for longer ordered
sequences, submit the next short chain from the completion of the previous one.",
};

/// A chain on an SQPOLL ring that the thread's submit batch cut. One finding per cut
/// position.
pub fn on_chain(st: &State, c: &Chain) -> Option<Hit> {
    let sqpoll = st.rings.get(&c.ctx).is_some_and(|r| r.has_sqpoll());
    if !(c.cut_at_batch_end && sqpoll) {
        return None;
    }
    let msg = format!(
        "a link chain was cut after {} members: the SQEs linked after it were submitted in a later \
         batch of the SQPOLL thread and ran as a separate chain",
        c.members.len()
    );
    let mut e = chain_evidence(c, c.breaker);
    e.facts.push(count("cut_after", c.members.len() as u64));
    Some(hit(
        st,
        RuleId::SqpollChainSplit,
        c.tgid,
        c.ctx,
        c.members.len(),
        msg,
        e,
    ))
}
