//! `wait-cycle`: metadata, explanation and detector.

use uringtrace_common::{EventKind, Slot};

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, ns, req_ev, Hit};
use crate::analyzer::finding::Severity;
use crate::analyzer::finding::{Evidence, MAX_EXAMPLE_REQUESTS};
use crate::analyzer::graph::Cycle;
use crate::analyzer::state::State;
use crate::names::{opcode_name, ENTER_EXT_ARG, ENTER_GETEVENTS};

pub const RULE: Rule = Rule {
    id: RuleId::WaitCycle,
    slug: "wait-cycle",
    severity: Severity::Warning,
    title: "requests wait on each other in a cycle: none of them can complete",
    fix: "do not link a request before the request it waits for; submit the producer first or unlinked",
    needs: &[Need::Event(EventKind::PollArm), Need::Field(EventKind::FileGet, Slot::Req)],
    degraded_reason: "needs io_uring_poll_arm and io_uring_file_get with req (5.19+)",
    explanation: "\
The kernel has no deadlock detection. A link chain itself can never be cyclic (each new
request is appended), but requests can wait for each other: a READ on pipe[0] linked
before the WRITE to pipe[1] that would feed it (the WRITE waits for the READ, the READ for
data); two rings each running POLL_ADD on the other's fd, linked before the MSG_RING that
would make it readable; FUTEX_WAIT (6.7+) linked before the FUTEX_WAKE on the same word; a
blocking request in io-wq, capped by IORING_REGISTER_IOWQ_MAX_WORKERS, waiting for work
queued behind it. None of these requests completes, and a wait without timeout hangs.

In a trace: requests are the nodes of a wait-for graph. A chain follower waits for its
predecessor (io_uring_link); a POLL_ADD on a ring fd waits for that ring's requests in
flight and the MSG_RINGs aimed at it; a reader waiting for readiness (io_uring_poll_arm,
or POLL_ADD) on a pipe waits for the writers of the same pipe, matched by inode, not fd.
A set that has waited at least 100 ms and whose every possible releaser is in the set is
a cycle: a warning, an error when the owners sleep in untimed waits. Socket peers and
futex words are not in any event, so those waits are never called a cycle.

Typical causes: producer and consumer of the same pipe, socket pair or futex in one chain
in the wrong order; two rings that signal each other, each waiting first.

What to change: break the cycle: put the producer before the consumer, or do not link
them and submit both independently; add an IORING_OP_LINK_TIMEOUT after a waiting request,
or wait with a timeout (io_uring_wait_cqe_timeout), so that a stall becomes -ETIME or
-ECANCELED instead of a hang; raise the io-wq limit if workers wait on each other.",
};

/// A wait-for cycle: still stuck at `seen_ns`, or `released` from outside then. One
/// finding per shape (the opcodes involved, the number of rings).
pub fn on_cycle(st: &State, c: &Cycle, released: bool) -> Hit {
    let clauses: Vec<String> = c
        .members
        .iter()
        .map(|m| {
            format!(
                "{} (user_data {:#x}{}) {}",
                opcode_name(m.opcode),
                m.user_data,
                st.fd_label(m.tgid, m.fd, m.fixed_file)
                    .or_else(|| m.fd.map(|f| format!("fd {f}")))
                    .map_or(String::new(), |f| format!(", {f}")),
                m.waits_for
            )
        })
        .collect();
    let rings = c.rings();
    let end = if released {
        format!(
            ": none of these {} requests could complete on its own; something outside io_uring released them after {}",
            c.members.len(),
            crate::analyzer::detect::ms(c.seen_ns.saturating_sub(c.since_ns))
        )
    } else {
        format!(
            ": none of these {} requests can complete on its own (a link runs only after its predecessor completes)",
            c.members.len()
        )
    };
    let msg = format!("{}{end}", clauses.join("; "));
    let e = Evidence {
        requests: c
            .members
            .iter()
            .take(MAX_EXAMPLE_REQUESTS)
            .map(|m| {
                req_ev(
                    m.user_data,
                    m.opcode,
                    None,
                    if m.waiting { "waiting" } else { "never issued" },
                    Some(m.submit_ns),
                    None,
                )
            })
            .collect(),
        facts: vec![
            count("requests", c.members.len() as u64),
            count("rings", rings.len() as u64),
            ns("waiting_for", c.seen_ns.saturating_sub(c.since_ns)),
        ],
        first_ns: c.since_ns,
        last_ns: c.seen_ns,
    };
    let mut shape: Vec<u8> = c.members.iter().map(|m| m.opcode).collect();
    shape.sort_unstable();
    let first = &c.members[0];
    let mut h = hit(
        st,
        RuleId::WaitCycle,
        first.tgid,
        first.ctx,
        (shape, rings.len()),
        msg,
        e,
    );
    // Nobody can break it from the inside either: every owner sleeps in a wait with no
    // timeout on one of the cycle's rings.
    let stuck_owners = !released
        && c.members.iter().all(|m| {
            st.enters.iter().any(|(tid, e)| {
                st.comms.get(tid).is_some_and(|(tgid, _)| *tgid == m.tgid)
                    && e.flags & ENTER_GETEVENTS != 0
                    && e.flags & ENTER_EXT_ARG == 0
                    && e.ctx.is_some_and(|x| rings.contains(&x))
            })
        });
    if stuck_owners {
        h.finding.severity = Severity::Error;
    }
    h
}
