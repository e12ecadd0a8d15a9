//! `request-stalled`: metadata, explanation and detector.

use uringtrace_common::{EventKind, Slot};

use super::{Need, Rule, RuleId};
use crate::analyzer::finding::Severity;
use std::collections::HashSet;

use crate::analyzer::detect::{count, hit, int, ms, ns, req_ev, text, Hit};
use crate::analyzer::finding::{Evidence, MAX_EXAMPLE_REQUESTS};
use crate::analyzer::opcodes::{self, Completion};
use crate::analyzer::state::{Request, Ring, State};
use crate::analyzer::AnalyzerConfig;
use crate::names::opcode_name;

pub const RULE: Rule = Rule {
    id: RuleId::RequestStalled,
    slug: "request-stalled",
    severity: Severity::Warning,
    title: "a request has been in flight longer than the threshold, with nothing explaining it",
    fix: "find what the request blocks on (file, lock, device); bound waits with IORING_OP_LINK_TIMEOUT",
    needs: &[Need::Field(EventKind::Submit, Slot::Req), Need::Field(EventKind::Complete, Slot::Req)],
    degraded_reason: "needs req pointers in submit and complete (5.19+ for complete)",
    explanation: "\
A request was submitted and has no completion after the stall threshold, and no other
detector (wait cycle, sleeping SQPOLL thread, broken chain, io-wq limit) explains why.
Many requests legitimately wait a long time: an ACCEPT or RECV on a quiet socket, a
POLL_ADD on a file that never becomes ready, a TIMEOUT. The finding says what uringtrace
last saw of the request so you can tell which case it is.

In a trace: io_uring_submit_req with no io_uring_complete or io_uring_cqe_overflow for
the request. The last step seen is its state: io_uring_queue_async_work (waiting in
io-wq), io_uring_poll_arm (waiting for readiness, which io_uring_task_add would end),
io_uring_file_get (issued to its file), or nothing after submission (not yet issued,
e.g. waiting behind a link or a drain). Requests that wait for an outside event by
design are never called stalled: POLL_ADD, TIMEOUT, LINK_TIMEOUT, ACCEPT, CONNECT,
FUTEX_WAIT, WAITID, EPOLL_WAIT, URING_CMD, and reads or writes that waited for
readiness on a pipe or socket; servers keep them in flight for minutes. Their hangs
show as wait-cycle. One finding per ring and opcode, counting the requests.

Typical causes: a peer that never sends or never reads; a slow or stuck device; a poll
wakeup that never comes; lost events, when the recording dropped some (the finding is
then marked inconclusive). An IOSQE_IO_DRAIN request is timed from when the requests
before it completed: its wait behind them is drain-blocked's finding, not this one.

What to change: if the request is meant to wait, raise the stall threshold or give it a
deadline with a linked IORING_OP_LINK_TIMEOUT; cancel it on shutdown with
IORING_OP_ASYNC_CANCEL; otherwise look at the peer or the device it waits for.",
};

/// Whether taking long is a sign of trouble for this request. Requests that wait for
/// an outside event by design (timers, polls, accepts, futex waits, parked uring
/// commands) and requests that waited for readiness (poll-armed reads and writes on
/// pipes and sockets) are not: servers keep them in flight for minutes. Multishot
/// requests live as long as they are armed, and IOSQE_CQE_SKIP_SUCCESS requests
/// post nothing when they succeed.
pub fn may_stall(r: &Request) -> bool {
    match opcodes::completion(r.opcode) {
        Completion::WaitsForEvent => false,
        Completion::Readiness if r.waited_on_poll => false,
        _ => r.multishot_cqes == 0 && !r.skips_success(),
    }
}

/// The message; it names the (first) request's file when the trace named it.
fn message(st: &State, n: u64, r: &Request, took: u64, cfg: &AnalyzerConfig, done: bool) -> String {
    let verb = if done { "took" } else { "in flight for" };
    let plural = if n > 1 {
        format!("{n} {} requests, the first", opcode_name(r.opcode))
    } else {
        opcode_name(r.opcode).into_owned()
    };
    format!(
        "{plural} (user_data {:#x}) {verb} {} (threshold {}){}{}",
        r.user_data,
        ms(took),
        ms(cfg.stall_ns),
        if r.punted { ", blocked in io-wq" } else { "" },
        st.fd_label(r.tgid, r.fd, r.fixed_file())
            .map_or(String::new(), |f| format!(" on {f}"))
    )
}

/// A request that completed after at least the threshold from when it could start.
/// One finding per (ring, opcode, io-wq or not).
pub fn on_slow(
    st: &State,
    cfg: &AnalyzerConfig,
    r: &Request,
    start: u64,
    done: u64,
    res: i32,
) -> Option<Hit> {
    let waited = done.saturating_sub(start);
    if waited < cfg.stall_ns || !may_stall(r) {
        return None;
    }
    let e = Evidence {
        requests: vec![req_ev(
            r.user_data,
            r.opcode,
            Some(res),
            if r.punted { "in io-wq" } else { "slow" },
            Some(r.submit_ns),
            Some(done),
        )],
        facts: vec![
            ns("took", waited),
            ns("threshold", cfg.stall_ns),
            int("fd", r.fd.map_or(-1, i64::from)),
        ],
        first_ns: start,
        last_ns: done,
    };
    let mut e = e;
    if let Some(f) = st.fd_label(r.tgid, r.fd, r.fixed_file()) {
        e.facts.push(text("file", f));
    }
    Some(hit(
        st,
        RuleId::RequestStalled,
        r.tgid,
        r.ctx,
        (r.opcode, r.punted),
        message(st, 1, r, waited, cfg, true),
        e,
    ))
}

/// A chain follower that cannot start before an earlier member completes.
fn queued_behind(st: &State, r: &Request) -> bool {
    let Some(c) = r.chain.and_then(|id| st.chains.get(&id)) else {
        return false;
    };
    let Some(i) = c.index_of(r.req) else {
        return false;
    };
    c.members[..i].iter().any(|m| m.res.is_none())
}

/// Requests of `ring` in flight past the threshold at `now` with nothing explaining
/// it: one finding per (opcode, io-wq or not), counting the requests.
pub fn in_flight(
    st: &State,
    cfg: &AnalyzerConfig,
    ring: &Ring,
    now: u64,
    explained: &HashSet<(u64, u64)>,
) -> Vec<Hit> {
    // Each with when it could start: a drain once released (its wait before that is
    // drain-blocked's), and not at all while still held behind earlier requests.
    let mut stalled: Vec<(&Request, u64)> = ring
        .inflight
        .values()
        .filter(|r| now.saturating_sub(r.submit_ns) >= cfg.stall_ns)
        .filter_map(|r| Some((r, ring.drain_start(r)?)))
        .filter(|(r, start)| {
            now.saturating_sub(*start) >= cfg.stall_ns
                && may_stall(r)
                && !r.poll_armed
                && !explained.contains(&(ring.ctx, r.req))
        })
        .filter(|(r, _)| !queued_behind(st, r))
        .collect();
    stalled.sort_by_key(|(r, start)| (r.opcode, r.punted, *start, r.req));
    let mut out = Vec::new();
    for group in stalled.chunk_by(|(a, _), (b, _)| (a.opcode, a.punted) == (b.opcode, b.punted)) {
        let (oldest, started) = group[0];
        let n = group.len() as u64;
        let e = Evidence {
            requests: group
                .iter()
                .take(MAX_EXAMPLE_REQUESTS)
                .map(|(r, _)| {
                    req_ev(
                        r.user_data,
                        r.opcode,
                        None,
                        if r.punted { "in io-wq" } else { "in flight" },
                        Some(r.submit_ns),
                        None,
                    )
                })
                .collect(),
            facts: vec![ns("threshold", cfg.stall_ns), count("stalled", n)],
            first_ns: started,
            last_ns: now,
        };
        let mut e = e;
        if let Some(f) = st.fd_label(oldest.tgid, oldest.fd, oldest.fixed_file()) {
            e.facts.push(text("file", f));
        }
        let mut h = hit(
            st,
            RuleId::RequestStalled,
            ring.tgid,
            ring.ctx,
            (oldest.opcode, oldest.punted),
            message(st, n, oldest, now.saturating_sub(started), cfg, false),
            e,
        );
        h.finding.occurrences = n;
        out.push(h);
    }
    out
}

/// Stalled requests on every ring, except rings whose SQEs nobody picks up (an SQPOLL
/// thread missing its wakeup explains them).
pub fn current(
    st: &State,
    cfg: &AnalyzerConfig,
    now: u64,
    explained: &HashSet<(u64, u64)>,
) -> Vec<Hit> {
    let stuck: Vec<(u32, u32)> = st
        .samples
        .iter()
        .filter(|(_, s)| s.missed_reported && s.pending_since_ns.is_some())
        .map(|(k, _)| *k)
        .collect();
    st.rings
        .values()
        .filter(|ring| {
            !stuck
                .iter()
                .any(|&(t, fd)| t == ring.tgid && ring.fd == Some(fd as i32))
        })
        .flat_map(|ring| in_flight(st, cfg, ring, now, explained))
        .collect()
}
