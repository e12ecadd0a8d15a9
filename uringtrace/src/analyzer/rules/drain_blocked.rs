//! `drain-blocked`: metadata, explanation and detector.

use uringtrace_common::{EventKind, Slot};

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, ms, ns, req_ev, text, Hit};
use crate::analyzer::finding::{Evidence, Severity};
use crate::analyzer::state::{Blocker, DrainWait, Ring, State};
use crate::analyzer::AnalyzerConfig;
use crate::names::opcode_name;

pub const RULE: Rule = Rule {
    id: RuleId::DrainBlocked,
    slug: "drain-blocked",
    severity: Severity::Warning,
    title: "an IOSQE_IO_DRAIN request waited behind slower requests",
    fix: "drain only behind requests that finish soon, or order the dependent requests with links instead of IOSQE_IO_DRAIN",
    needs: &[
        Need::Event(EventKind::Defer),
        Need::Field(EventKind::Submit, Slot::Aux),
    ],
    degraded_reason: "needs io_uring_defer and the submit event's flags (IOSQE_IO_DRAIN)",
    explanation: "\
IOSQE_IO_DRAIN (5.2+) makes a request wait until every request submitted before it on
the ring has completed, and every request submitted after it waits for it in turn. The
kernel parks it on the ring's defer list and issues it only when the completions catch
up with its sequence number. One slow request in front (a RECV on a quiet socket, a
POLL_ADD, a read from a pipe or a slow device, a long TIMEOUT) holds the drain, and all
that follows it, for as long as it takes: a drain behind a request that waits for a
peer can wait forever.

In a trace: io_uring_submit_req with IOSQE_IO_DRAIN (0x2 in flags), then
io_uring_defer for it; its wait ends when the last request submitted before it
completes. uringtrace names the requests it waited for, the slowest first (opcode,
user_data, file), and how long the drain was held. A drain on an idle ring is not
deferred at all, and one deferred for less than 100 ms (the threshold) is
what drain is for. Requests deferred only because they follow a drain are counted.

Typical causes: a drain used as a barrier on a ring that also carries network receives,
polls or timeouts; a fsync or a metadata update ordered with drain behind long reads.

What to change: put long-waiting requests (RECV, ACCEPT, POLL_ADD, TIMEOUT) on another
ring than the one that drains; order dependent requests with IOSQE_IO_LINK, which waits
only for its own chain; or wait for the completions you depend on in the application
before submitting the next step.",
};

fn blocker_text(st: &State, tgid: u32, b: &Blocker) -> String {
    let file = st
        .fd_label(tgid, b.fd, b.fixed)
        .map_or(String::new(), |f| format!(" on {f}"));
    let state = if b.done_ns.is_none() {
        ", still in flight"
    } else {
        ""
    };
    format!(
        "{} (user_data {:#x}){file}{state}",
        opcode_name(b.opcode),
        b.user_data
    )
}

/// A finding for drain `d` held `held` ns; `blockers` slowest first.
fn finding(st: &State, d: &DrainWait, held: u64, blockers: &[Blocker], until: u64) -> Hit {
    let names: Vec<String> = blockers
        .iter()
        .take(3)
        .map(|b| blocker_text(st, d.tgid, b))
        .collect();
    let more = d.blocked_by.saturating_sub(names.len() as u64);
    let verb = if blockers.iter().any(|b| b.done_ns.is_none()) {
        "has waited"
    } else {
        "waited"
    };
    let mut msg = format!(
        "{} (user_data {:#x}) with IOSQE_IO_DRAIN {verb} {} behind {} earlier request{}: {}",
        opcode_name(d.opcode),
        d.user_data,
        ms(held),
        d.blocked_by,
        if d.blocked_by == 1 { "" } else { "s" },
        names.join(", ")
    );
    if more > 0 {
        msg.push_str(&format!(" and {more} more"));
    }
    let mut requests = vec![req_ev(
        d.user_data,
        d.opcode,
        None,
        "drain",
        Some(d.submit_ns),
        None,
    )];
    requests.extend(blockers.iter().map(|b| {
        req_ev(
            b.user_data,
            b.opcode,
            b.res,
            "blocker",
            Some(b.submit_ns),
            b.done_ns,
        )
    }));
    let mut facts = vec![
        ns("held", held),
        count("blocked_by", d.blocked_by),
        count("deferred_behind_it", d.followers),
    ];
    if let Some(b) = blockers.first() {
        if let Some(f) = st.fd_label(d.tgid, b.fd, b.fixed) {
            facts.push(text("file", f));
        }
    }
    let slowest = blockers.first().map_or(0, |b| b.opcode);
    hit(
        st,
        RuleId::DrainBlocked,
        d.tgid,
        d.ctx,
        (d.opcode, slowest),
        msg,
        Evidence {
            requests,
            facts,
            first_ns: d.deferred_ns,
            last_ns: until,
        },
    )
}

/// A drain whose request completed: held from its deferral to the last completion of
/// a request submitted before it.
pub fn on_released(st: &State, cfg: &AnalyzerConfig, d: &DrainWait) -> Option<Hit> {
    let until = d.released_ns?;
    let held = until.saturating_sub(d.deferred_ns);
    if held < cfg.drain_blocked_ns {
        return None;
    }
    Some(finding(st, d, held, &d.blockers, until))
}

/// Drains of `ring` still waiting at `now` (end of trace, a live snapshot, or the
/// ring's retirement): held by the requests before them still in flight.
pub fn pending(st: &State, cfg: &AnalyzerConfig, ring: &Ring, now: u64) -> Vec<Hit> {
    let mut out = Vec::new();
    for d in &ring.drains {
        let mut waiting: Vec<Blocker> = ring
            .inflight
            .values()
            .filter(|r| r.req != d.req && r.submit_ns <= d.submit_ns)
            .map(|r| Blocker::of(r, None, None))
            .collect();
        let (held, until) = if waiting.is_empty() {
            match d.released_ns {
                Some(t) => (t.saturating_sub(d.deferred_ns), t),
                None => continue,
            }
        } else {
            (now.saturating_sub(d.deferred_ns), now)
        };
        if held < cfg.drain_blocked_ns {
            continue;
        }
        waiting.sort_by_key(|b| (b.submit_ns, b.user_data));
        let n_waiting = waiting.len() as u64;
        let mut all = waiting;
        all.extend(d.blockers.iter().copied());
        let mut d = d.clone();
        d.blocked_by += n_waiting;
        out.push(finding(st, &d, held, &all, until));
    }
    out
}
