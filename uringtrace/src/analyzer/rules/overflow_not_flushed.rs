//! `overflow-not-flushed`: metadata, explanation and detector.

use uringtrace_common::EventKind;

use super::{Need, Rule, RuleId};
use crate::analyzer::detect::{count, hit, ms, ns, Hit};
use crate::analyzer::finding::{Evidence, Severity};
use crate::analyzer::state::{Ring, State};
use crate::analyzer::AnalyzerConfig;

pub const RULE: Rule = Rule {
    id: RuleId::OverflowNotFlushed,
    slug: "overflow-not-flushed",
    severity: Severity::Warning,
    title: "CQEs sat in the overflow list while the CQ ring had room: the owner reaps but never flushes",
    fix: "when sq_flags has IORING_SQ_CQ_OVERFLOW, call io_uring_enter with IORING_ENTER_GETEVENTS (io_uring_get_events) to flush; SQPOLL apps too",
    needs: &[Need::Event(EventKind::CqeOverflow)],
    degraded_reason: "no io_uring_cqe_overflow tracepoint (added in 5.19)",
    explanation: "\
When the CQ ring is full, new CQEs go to an overflow list in the kernel and
IORING_SQ_CQ_OVERFLOW is set in sq_flags (see `uringtrace explain cq-overflow`). While the
list is non-empty every new CQE goes there too. Only io_uring_enter with
IORING_ENTER_GETEVENTS moves them back into the CQ ring (6.1+). An application that reaps
only from the mapped CQ ring (io_uring_peek_cqe loops, or an SQPOLL program that never
enters the kernel) empties the ring and then sees nothing more: the completions wait in the
overflow list for as long as it does not enter, and new ones pile up behind them.

In a trace: io_uring_cqe_overflow events (5.19+), then fdinfo samples (every 100 ms)
showing CQEs in CqOverflowList while the CQ ring has room for them (fewer ready CQEs than
cq_entries), and no GETEVENTS enter. Since the CQ ring can only empty while the list is
non-empty, room in it means only the flush is missing. Reported once that lasts at least
the overflow threshold (1 s, as cq-overflow's): an application that checks the flag
flushes within one turn of its loop (libuv: under 250 ms on a loaded host). A ring whose
CQ stays full (the application reaps nothing at all) is cq-overflow's case, and so is an
overflow flushed promptly. The finding says how long the oldest CQE waited.

Typical causes: SQPOLL programs that submit by writing the SQ ring and reap by reading
the CQ ring, never calling io_uring_enter; custom reaping loops that never look at
IORING_SQ_CQ_OVERFLOW; liburing's io_uring_peek_cqe used without io_uring_get_events.

What to change: check IORING_SQ_CQ_OVERFLOW (io_uring_cq_has_overflow) after reaping
and, when set, enter with GETEVENTS (io_uring_get_events, or io_uring_wait_cqe); size the
CQ (IORING_SETUP_CQSIZE) for the peak so that overflow stays rare.",
};

/// A finding for `ring` when CQEs sat in its overflow list with room in the CQ ring
/// and no flush for at least the threshold, as of `now`.
pub fn for_ring(st: &State, cfg: &AnalyzerConfig, ring: &Ring, now: u64) -> Option<Hit> {
    let u = &ring.unflushed;
    let (stretch, waited, cqes, open) = u.worst(now);
    if stretch < cfg.overflow_flush_ns {
        return None;
    }
    let sqpoll = if ring.has_sqpoll() {
        " (an SQPOLL ring)"
    } else {
        ""
    };
    let msg = if open {
        format!(
            "{cqes} CQEs have waited {} in the overflow list while the CQ ring had room for them{sqpoll}: the owner reaps from the ring but has not entered with IORING_ENTER_GETEVENTS, which alone flushes the list",
            ms(waited)
        )
    } else {
        format!(
            "{cqes} CQEs waited {} in the overflow list while the CQ ring had room for them{sqpoll}, until the owner finally entered with IORING_ENTER_GETEVENTS",
            ms(waited)
        )
    };
    let mut facts = vec![
        count("in_overflow_list", cqes),
        ns("oldest_waited", waited),
        ns("room_without_flush", stretch),
        count("overflowed", ring.overflowed),
    ];
    if let Some(n) = ring.cq_entries {
        facts.push(count("cq_entries", n.into()));
    }
    let e = Evidence {
        requests: vec![],
        facts,
        first_ns: u.first_ns.unwrap_or(now),
        last_ns: if open {
            now
        } else {
            u.last_ns.max(u.first_ns.unwrap_or(0))
        },
    };
    let mut h = hit(
        st,
        RuleId::OverflowNotFlushed,
        ring.tgid,
        ring.ctx,
        open,
        msg,
        e,
    );
    h.finding.occurrences = cqes.max(1);
    Some(h)
}
