//! What the screen shows, computed once per tick from the analyzer's state and report:
//! plain data, so the view only formats and tests can inspect it. The ring screen's
//! data is in [`super::detail`].

use uringtrace_common::view::RingState;

use crate::analyzer::finding::{Finding, Severity};
use crate::analyzer::report::{LostEvents, Report};
use crate::analyzer::ring_is_shown;
use crate::analyzer::state::{Ring, State};
use crate::names::setup_flags;
use crate::output::top::{
    TopDegraded, TopDocument, TopFinding, TopLostEvents, TopRing, TOP_FORMAT_VERSION,
};

use super::app::Ui;
use super::history::{per_second, History, Occupancy, RingCounters, RingHistory, SqpollCounters};

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub now_ns: u64,
    /// Input time since the trace started.
    pub running_ns: u64,
    pub events: u64,
    pub events_per_s: Option<f64>,
    pub rings: Vec<RingRow>,
    /// As the analyzer reports them: by severity, then first seen.
    pub findings: Vec<Finding>,
    pub lost: LostEvents,
    /// (rule, reason) for detectors that cannot fully work on the traced kernel.
    pub degraded: Vec<(String, String)>,
}

/// One row of the rings table. Rates are None until two samples exist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RingRow {
    pub ctx: u64,
    /// `struct io_ring_ctx *` as hex, like the findings name it.
    pub ring: String,
    pub pid: u32,
    pub comm: String,
    pub flags: String,
    pub submits_per_s: Option<f64>,
    pub completions_per_s: Option<f64>,
    pub in_flight: u64,
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub errors_per_s: Option<f64>,
    pub overflows: u64,
    pub punts_per_s: Option<f64>,
    /// The most severe finding about this ring.
    pub finding: Option<Severity>,
    /// Totals since the trace started (the headless document shows them).
    pub submitted: u64,
    pub completed: u64,
}

impl Snapshot {
    /// What headless `top` prints: this snapshot's rings (in the TUI's default order,
    /// unfiltered) and findings as plain data. A pure function of the snapshot, like
    /// the screen, so the two agree.
    pub fn document(&self) -> TopDocument {
        let ui = Ui::default();
        let order = super::sort::visible_rows(&self.rings, "", ui.sort, ui.sort_desc);
        TopDocument {
            format_version: TOP_FORMAT_VERSION,
            time_ns: self.now_ns,
            running_ns: self.running_ns,
            events: self.events,
            events_per_s: self.events_per_s,
            lost_events: TopLostEvents {
                known: self.lost.known,
                total: self.lost.total,
                per_cpu: self.lost.per_cpu.clone(),
            },
            degraded_detectors: self
                .degraded
                .iter()
                .map(|(rule, reason)| TopDegraded {
                    rule: rule.clone(),
                    reason: reason.clone(),
                })
                .collect(),
            rings: order.iter().map(|&i| top_ring(&self.rings[i])).collect(),
            findings: self.findings.iter().map(top_finding).collect(),
        }
    }
}

fn top_ring(r: &RingRow) -> TopRing {
    TopRing {
        ring: r.ring.clone(),
        pid: r.pid,
        comm: r.comm.clone(),
        flags: r
            .flags
            .split('|')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        submitted: r.submitted,
        completed: r.completed,
        submits_per_s: r.submits_per_s,
        completions_per_s: r.completions_per_s,
        in_flight: r.in_flight,
        p50_ns: r.p50_ns,
        p99_ns: r.p99_ns,
        errors_per_s: r.errors_per_s,
        overflows: r.overflows,
        punts_per_s: r.punts_per_s,
        worst_severity: r.finding,
    }
}

fn top_finding(f: &Finding) -> TopFinding {
    TopFinding {
        rule: f.rule.slug().to_string(),
        severity: f.severity,
        pid: f.pid,
        comm: f.comm.clone(),
        ring: f.ring_hex(),
        message: f.message.clone(),
        occurrences: f.occurrences,
        inconclusive: f.inconclusive,
    }
}

/// Takes this tick's snapshot and records the tick in `history`.
pub fn take(
    st: &State,
    report: Report,
    history: &mut History,
    now: u64,
    start_ns: u64,
) -> Snapshot {
    let new_time = history.is_new_time(now);
    let mut rings = Vec::new();
    // Rings that are gone stay listed as they ended (the newest few), unless their
    // address now belongs to a live ring.
    let gone = st.retired.iter().filter(|r| !st.rings.contains_key(&r.ctx));
    for ring in st.rings.values().chain(gone).filter(|r| ring_is_shown(r)) {
        let counters = RingCounters {
            submitted: ring.submitted,
            completed: ring.completed,
            errors: ring.errors,
            punted: ring.punted,
        };
        let h = history.ring(ring.ctx, start_ns);
        h.record(
            now,
            counters,
            occupancy(st, ring),
            sqpoll_counters(st, ring),
            new_time,
        );
        rings.push(ring_row(st, ring, h, &report.findings));
    }
    if history.events.last().is_none() {
        // Counting starts at zero when the trace starts.
        history.events.push(start_ns, 0);
    }
    history.events.push(now, st.events);
    let events_per_s = history
        .events
        .ends()
        .map(|((t0, a), (t1, b))| per_second(a, b, t1 - t0));
    history.last_ns = Some(now);
    Snapshot {
        now_ns: now,
        running_ns: now.saturating_sub(start_ns),
        events: st.events,
        events_per_s,
        rings,
        findings: report.findings,
        lost: report.lost_events,
        degraded: report.environment.degraded,
    }
}

fn ring_row(st: &State, ring: &Ring, h: &RingHistory, findings: &[Finding]) -> RingRow {
    let ends = h.rates.ends();
    let rate = |f: fn(&RingCounters) -> u64| {
        ends.map(|((t0, a), (t1, b))| per_second(f(&a), f(&b), t1 - t0))
    };
    let finding = findings
        .iter()
        .filter(|f| f.ring == ring.ctx)
        .map(|f| f.severity)
        .max();
    let lat = &ring.latency_all;
    RingRow {
        ctx: ring.ctx,
        pid: ring.tgid,
        comm: st.ring_comm(ring),
        flags: flag_names(ring.setup_flags),
        submits_per_s: rate(|c| c.submitted),
        completions_per_s: rate(|c| c.completed),
        in_flight: ring.inflight.len() as u64,
        p50_ns: lat.p50_p99().map(|(p50, _)| p50),
        p99_ns: lat.p50_p99().map(|(_, p99)| p99),
        errors_per_s: rate(|c| c.errors),
        overflows: ring.overflowed,
        punts_per_s: rate(|c| c.punted),
        finding,
        ring: format!("{:#x}", ring.ctx),
        submitted: ring.submitted,
        completed: ring.completed,
    }
}

/// IORING_SETUP_* names; "" for none or unknown.
pub(super) fn flag_names(flags: Option<u32>) -> String {
    flags
        .filter(|f| *f != 0)
        .map(setup_flags)
        .unwrap_or_default()
}

/// The latest fdinfo sample of a ring, when its fd is known (rings created during the
/// trace).
fn fdinfo_sample(st: &State, ring: &Ring) -> Option<RingState> {
    let fd = u32::try_from(ring.fd?).ok()?;
    Some(st.samples.get(&(ring.tgid, fd))?.last?.state)
}

fn occupancy(st: &State, ring: &Ring) -> Occupancy {
    let s = fdinfo_sample(st, ring);
    Occupancy {
        in_flight: ring.inflight.len() as u64,
        sq_pending: s.map(|s| s.sq_pending()),
        cq_pending: s.map(|s| s.cq_ready),
    }
}

pub(super) fn sqpoll_tid(st: &State, ring: &Ring) -> Option<u32> {
    ring.sqpoll_tid
        .or_else(|| fdinfo_sample(st, ring).and_then(|s| s.sq_thread))
}

fn sqpoll_counters(st: &State, ring: &Ring) -> Option<SqpollCounters> {
    let tid = sqpoll_tid(st, ring)?;
    let t = st.threads.get(&tid);
    // A running thread's current slice counts too: its switch-out has not happened yet.
    let runtime_ns = t.map_or(0, |t| {
        t.runtime_ns + t.run_start_ns.map_or(0, |s| st.last_ns.saturating_sub(s))
    });
    let s = fdinfo_sample(st, ring);
    Some(SqpollCounters {
        runtime_ns,
        total_us: s.map(|s| s.sq_total_us),
        work_us: s.map(|s| s.sq_work_us),
        submits: t.map_or(0, |t| t.submits),
    })
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
