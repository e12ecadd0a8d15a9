//! `link-chain-broken`: metadata, explanation and detector.

use uringtrace_common::{EventKind, Slot};

use super::{Need, Rule, RuleId};
use crate::analyzer::finding::Severity;
use uringtrace_common::FdType;

use crate::analyzer::detect::{chain_evidence, count, hit, text, Hit};
use crate::analyzer::opcodes;
use crate::analyzer::state::{Chain, State};
use crate::names::{opcode_name, result_name};

pub const RULE: Rule = Rule {
    id: RuleId::LinkChainBroken,
    slug: "link-chain-broken",
    severity: Severity::Warning,
    title: "a chain member failed or completed short, and its followers were cancelled",
    fix: "handle the breaker's error; use IOSQE_IO_HARDLINK if followers must run anyway; for short reads, loop or use MSG_WAITALL",
    needs: &[Need::Field(EventKind::Submit, Slot::Req), Need::Field(EventKind::Complete, Slot::Req), Need::Event(EventKind::Link), Need::Field(EventKind::FailLink, Slot::UserData)],
    degraded_reason: "needs req pointers in submit/complete (5.10.162+/5.15+) and fail_link with user_data (5.18+)",
    explanation: "\
IOSQE_IO_LINK makes the next SQE wait until this one completes successfully. When a
member fails, all its followers complete with -ECANCELED (-125) without being issued. A
failure is an error result or a short transfer: a read or write on a pipe or socket that
moved fewer bytes than asked (regular files retry internally). IOSQE_IO_HARDLINK keeps the
chain going after a failure. An SQE rejected at submission fails the whole chain: the
members before it and after it get -125, the bad one its own error. With
IOSQE_CQE_SKIP_SUCCESS on the failing member the followers are cancelled without a CQE.

In a trace: io_uring_fail_link fires once per cancelled follower (naming the failed
request and the cancelled one), also when no CQE is posted; the completions show the
breaker's result followed by -125s. io_uring_link gives the chain order (its target is
the chain head before 6.12 and the previous member from 6.12). Observed on 6.18: a pipe
read of 4096 bytes with 10 available, linked to a NOP, completes 10 then -125. Ends by
design are info: a read at end of file (0, or short on a regular file), a cancel
(ASYNC_CANCEL, a LINK_TIMEOUT firing), a peer that reset or closed the connection; a
LINK_TIMEOUT cancelled because its target finished is no cancelled follower. One
finding per breaker opcode, position and cause, counting the chains.

Typical causes: a short read or write on a socket or pipe; EOF; a bad or closed fd; a
chain used only for ordering where a member's failure is acceptable.

What to change: if followers should run anyway, link with IOSQE_IO_HARDLINK; if short
transfers are normal, do not link on the transfer length (handle the partial result and
submit the rest); otherwise handle -ECANCELED in the completion path: look at the breaker's
result, then resubmit or give up the whole operation.",
};

/// Why a chain stopped, and whether that is the application's design or a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Break {
    /// An error result: a bug or a condition the application should handle.
    Error(i32),
    /// A short transfer on a pipe or socket (or an fd of unknown kind).
    Short,
    /// A read that reached the end of a file: 0, or short on a regular file. This is
    /// how read-until-EOF loops end.
    EndOfFile,
    /// Cancelled on purpose: ASYNC_CANCEL, a LINK_TIMEOUT that fired, ring teardown.
    Cancelled,
    /// The peer reset or closed the connection.
    PeerClosed,
}

impl Break {
    fn name(self) -> &'static str {
        match self {
            Break::Error(_) => "error",
            Break::Short => "short transfer",
            Break::EndOfFile => "end of file",
            Break::Cancelled => "cancelled",
            Break::PeerClosed => "peer closed the connection",
        }
    }
}

fn classify(st: &State, c: &Chain, b: usize) -> (Break, String) {
    let m = &c.members[b];
    let reads = opcodes::reads(m.opcode);
    match m.res {
        Some(0) if reads => (Break::EndOfFile, "reached end of file (result 0)".into()),
        Some(r) if r > 0 => {
            // The kernel's word at completion (REQ_F_ISREG), else the fd's object.
            let regular = m.regular_file.unwrap_or_else(|| {
                m.fd.and_then(|fd| st.fd_object(c.tgid, fd))
                    .is_some_and(|(t, _)| t == FdType::File)
            });
            if reads && regular {
                (
                    Break::EndOfFile,
                    format!("read {r} bytes, short at the end of a regular file"),
                )
            } else {
                (
                    Break::Short,
                    format!("completed short ({r} bytes; a short read/write on a pipe or socket fails the chain)"),
                )
            }
        }
        Some(r) if r == -libc::ECANCELED || r == -libc::ETIME || r == -libc::EINTR => (
            Break::Cancelled,
            format!(
                "was cancelled ({}: an ASYNC_CANCEL, a LINK_TIMEOUT or ring teardown)",
                result_name(r)
            ),
        ),
        Some(r) if opcodes::peer_closed(r) => (
            Break::PeerClosed,
            format!(
                "failed with {}: the peer closed the connection",
                result_name(r)
            ),
        ),
        Some(r) => (Break::Error(r), format!("failed with {}", result_name(r))),
        None => (Break::Error(0), "failed".into()),
    }
}

/// A finished (or already broken) chain whose member failed and cancelled followers.
/// LINK_TIMEOUTs that complete -ECANCELED because their target finished are not
/// cancelled followers. One finding per (breaker opcode and position, cause);
/// by-design ends (end of file, cancels, closed connections) are `info`.
pub fn on_chain(st: &State, c: &Chain) -> Option<Hit> {
    // The breaker: named by fail_link, or else the first member that failed while its
    // followers came back -ECANCELED (CQE_SKIP_SUCCESS can hide fail_link's target).
    let cancelled_follower = |m: &crate::analyzer::state::Member| {
        m.res == Some(-libc::ECANCELED) && m.opcode != opcodes::LINK_TIMEOUT
    };
    let b = c.breaker.or_else(|| {
        let first_bad = c.members.iter().position(|m| {
            m.res.is_some_and(|r| r < 0 && r != -libc::ECANCELED)
                && m.opcode != opcodes::LINK_TIMEOUT
        })?;
        c.members[first_bad + 1..]
            .iter()
            .any(cancelled_follower)
            .then_some(first_bad)
    })?;
    let cancelled = c.members[b + 1..]
        .iter()
        .filter(|m| cancelled_follower(m))
        .count();
    let bm = &c.members[b];
    if cancelled == 0 || bm.hard {
        return None;
    }
    let (kind, why) = classify(st, c, b);
    let file = st.fd_label(c.tgid, bm.fd, bm.fixed_file);
    let msg = format!(
        "chain member {} of {} ({} user_data {:#x}{}) {why}; {cancelled} follower(s) cancelled",
        b + 1,
        c.members.len(),
        opcode_name(bm.opcode),
        bm.user_data,
        file.as_ref().map_or(String::new(), |f| format!(", {f}")),
    );
    let mut e = chain_evidence(c, Some(b));
    if let Some(f) = file {
        e.facts.push(text("file", f));
    }
    e.facts.push(count("cancelled_followers", cancelled as u64));
    e.facts.push(text("cause", kind.name()));
    let mut h = hit(
        st,
        RuleId::LinkChainBroken,
        c.tgid,
        c.ctx,
        (kind, bm.opcode, b),
        msg,
        e,
    );
    if !matches!(kind, Break::Error(_) | Break::Short) {
        h.finding.severity = Severity::Info;
    }
    Some(h)
}
