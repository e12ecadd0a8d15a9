//! `cq-overflow`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, ms, ns, text, Hit};
use crate::analyzer::finding::Evidence;
use crate::analyzer::finding::Severity;
use crate::analyzer::state::{Ring, State};
use crate::analyzer::AnalyzerConfig;

pub const RULE: Rule = Rule {
    id: RuleId::CqOverflow,
    slug: "cq-overflow",
    severity: Severity::Warning,
    title: "CQEs went to the overflow list: the CQ is too small, or completions are not reaped",
    fix: "reap CQEs before submitting more than the CQ can hold, or enlarge it with IORING_SETUP_CQSIZE",
    needs: &[Need::Event(EventKind::CqeOverflow)],
    degraded_reason: "no io_uring_cqe_overflow tracepoint (added in 5.19)",
    explanation: "\
The completion queue (CQ) is a fixed ring shared with the application, cq_entries long
(twice the SQ size unless IORING_SETUP_CQSIZE says otherwise). When a request completes
and the CQ is full, the kernel does not drop the CQE (IORING_FEAT_NODROP, 5.5+): it
allocates an overflow entry, queues it on an internal list and sets IORING_SQ_CQ_OVERFLOW
in sq_flags. While that list is non-empty every new CQE goes to it too, to keep the
completion order. The list is flushed into the CQ only when the application enters the
kernel to wait (io_uring_enter with IORING_ENTER_GETEVENTS). Each overflowed CQE costs an
allocation under a lock, and older kernels also failed calls with -EBUSY: on submit in
5.5-5.12, from the wait in 5.13 to about 6.1, never since 6.6.

In a trace: each overflowed CQE fires io_uring_cqe_overflow (5.19+) instead of landing in
the ring. From 6.1 the flushed CQEs produce no io_uring_complete, so uringtrace counts the
overflow event as the completion; on 5.19 and 6.0 io_uring_complete fires for overflowed
CQEs as well. Whether the list was flushed shows in the ring's fdinfo (CqOverflowList,
sampled every 100 ms) after a GETEVENTS enter. Three cases are told apart: flush
attempts never more than 1 s apart (the application handles IORING_SQ_CQ_OVERFLOW, as libuv
does: info), flushed late or never (a warning), only -ECANCELED CQEs of a ring being
torn down (info). Before 5.19 there is no overflow tracepoint: degraded.

Typical causes: a CQ sized for the average rather than the burst (multishot receives post
many CQEs per SQE); more requests in flight than cq_entries; a reaping loop that consumes
one CQE per wait; a ring whose owner is blocked elsewhere while completions keep coming.

What to change: size the CQ for the most completions that can be pending at once with
IORING_SETUP_CQSIZE (io_uring_params.cq_entries); reap every available CQE on each pass
(io_uring_for_each_cqe + io_uring_cq_advance, or io_uring_peek_batch_cqe); keep requests in
flight below cq_entries; if IORING_SQ_CQ_OVERFLOW is set, enter with GETEVENTS to flush.",
};

/// The three cases this rule tells apart; each is its own finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Case {
    /// Flushed within `AnalyzerConfig::overflow_flush_ns` every time: the application
    /// handles IORING_SQ_CQ_OVERFLOW (libuv does, by design). Info.
    FlushedPromptly,
    /// Flushed, but CQEs waited longer in the overflow list. Warning.
    FlushedLate,
    /// Only -ECANCELED CQEs: requests cancelled as the ring or its task went away.
    /// Info.
    CancelledAtTeardown,
    /// CQEs still in the overflow list: nobody entered with GETEVENTS since. Warning.
    NotFlushed,
}

/// cq-overflow findings for one ring, as of `now` (the report, or the ring's end).
pub fn for_ring(st: &State, cfg: &AnalyzerConfig, ring: &Ring, now: u64) -> Vec<Hit> {
    let mut out = Vec::new();
    let cq = ring
        .cq_entries
        .map(|n| format!(" ({n} entries)"))
        .unwrap_or_default();
    let base = |facts: &mut Vec<_>| {
        facts.push(count("overflowed", ring.overflowed));
        facts.push(count("completed", ring.completed));
        if let Some(n) = ring.cq_entries {
            facts.push(count("cq_entries", n.into()));
        }
        let uds: Vec<String> = ring
            .overflow_user_data
            .iter()
            .map(|u| format!("{u:#x}"))
            .collect();
        facts.push(text("first_overflowed_user_data", uds.join(",")));
    };
    // An open episode presumed flushed by a GETEVENTS enter (no sample has shown the
    // list still full since) counts as flushed then.
    let mut tally = ring.overflow_flushed;
    let mut open = ring.overflow_open;
    // An episode still open that the application is handling (it attempted a flush
    // within the threshold) counts with the handled ones, as of now.
    let handled = |ep: &super::super::state::OverflowEpisode| {
        ep.presumed_flush().is_some()
            || (ep.flush_attempt_ns.is_some() && ep.gap_until(now) <= cfg.overflow_flush_ns)
    };
    if let Some(ep) = open.filter(handled) {
        let at = ep.presumed_flush().unwrap_or(now);
        tally.episodes += 1;
        tally.cqes += ep.cqes;
        tally.cancelled += ep.cancelled;
        tally.max_wait_ns = tally.max_wait_ns.max(ep.max_gap_ns);
        tally.max_nonempty_ns = tally.max_nonempty_ns.max(at.saturating_sub(ep.since_ns));
        tally.first_ns.get_or_insert(ep.since_ns);
        tally.last_ns = at;
        open = None;
    }
    let t = &tally;
    if t.episodes > 0 {
        let (case, msg) = if t.cancelled == t.cqes {
            (
                Case::CancelledAtTeardown,
                format!(
                    "{} -ECANCELED CQEs did not fit in the CQ ring{cq}: requests cancelled as the ring was torn down",
                    t.cqes
                ),
            )
        } else if t.max_wait_ns <= cfg.overflow_flush_ns {
            (
                Case::FlushedPromptly,
                format!(
                    "{} CQEs did not fit in the CQ ring{cq} and went to the overflow list; the application kept flushing it (never more than {} without a flush; the list stayed up to {})",
                    t.cqes,
                    ms(t.max_wait_ns),
                    ms(t.max_nonempty_ns)
                ),
            )
        } else {
            (
                Case::FlushedLate,
                format!(
                    "{} CQEs did not fit in the CQ ring{cq} and went to the overflow list; they waited up to {} there with no flush (no GETEVENTS enter)",
                    t.cqes,
                    ms(t.max_wait_ns)
                ),
            )
        };
        let mut facts = vec![
            count("overflowed_and_flushed", t.cqes),
            count("episodes", t.episodes),
            ns("longest_without_flush", t.max_wait_ns),
            ns("longest_nonempty", t.max_nonempty_ns),
        ];
        base(&mut facts);
        let e = Evidence {
            requests: vec![],
            facts,
            first_ns: t.first_ns.unwrap_or(0),
            last_ns: t.last_ns,
        };
        let mut h = hit(st, RuleId::CqOverflow, ring.tgid, ring.ctx, case, msg, e);
        if matches!(case, Case::FlushedPromptly | Case::CancelledAtTeardown) {
            h.finding.severity = Severity::Info;
        }
        h.finding.occurrences = t.cqes;
        out.push(h);
    }
    if let Some(ep) = open {
        let waited = ep.gap_until(now);
        let case = if ep.cancelled == ep.cqes {
            Some(Case::CancelledAtTeardown)
        } else if waited > cfg.overflow_flush_ns {
            Some(Case::NotFlushed)
        } else {
            // Just overflowed: the application may still flush it in time.
            None
        };
        if let Some(case) = case {
            let msg = if case == Case::NotFlushed {
                format!(
                    "{} CQEs did not fit in the CQ ring{cq} and have waited {} in the overflow list: the owner has not entered with IORING_ENTER_GETEVENTS to flush it",
                    ep.cqes,
                    ms(waited)
                )
            } else {
                format!(
                    "{} -ECANCELED CQEs did not fit in the CQ ring{cq}: requests cancelled as the ring was torn down",
                    ep.cqes
                )
            };
            let mut facts = vec![
                count("in_overflow_list", ep.cqes),
                ns("waiting_for", waited),
            ];
            base(&mut facts);
            let e = Evidence {
                requests: vec![],
                facts,
                first_ns: ep.since_ns,
                last_ns: ep.last_ns,
            };
            let mut h = hit(st, RuleId::CqOverflow, ring.tgid, ring.ctx, case, msg, e);
            if case == Case::CancelledAtTeardown {
                h.finding.severity = Severity::Info;
            }
            h.finding.occurrences = ep.cqes;
            out.push(h);
        }
    }
    out
}
