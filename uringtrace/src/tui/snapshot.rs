//! What the screen shows, computed once per tick from the analyzer's state and report:
//! plain data, so the view only formats and tests can inspect it.

use std::cmp::Ordering;

use crate::analyzer::finding::{Finding, Severity};
use crate::analyzer::report::{LostEvents, Report};
use crate::analyzer::state::{Chain, Ring, State};
use crate::names::{opcode_name, result_name, setup_flags};

use super::app::Column;
use super::history::{per_second, History, Occupancy, RingCounters, RingHistory, SqpollCounters};

/// -ECANCELED: what the followers of a broken chain complete with.
const ECANCELED: i32 = -125;
/// Oldest in-flight requests listed per ring.
const OLDEST_SHOWN: usize = 32;

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
}

/// Everything the ring screen shows about one ring.
#[derive(Clone, Debug, Default)]
pub struct RingDetail {
    pub ctx: u64,
    pub ring: String,
    pub pid: u32,
    pub comm: String,
    pub fd: Option<i32>,
    pub sq_entries: Option<u32>,
    pub cq_entries: Option<u32>,
    pub flags: String,
    pub submitted: u64,
    pub completed: u64,
    pub errors: u64,
    pub overflowed: u64,
    pub in_flight: u64,
    pub max_in_flight: u64,
    pub ops: Vec<OpRow>,
    /// Oldest first, at most one per tick.
    pub occupancy: Vec<Occupancy>,
    pub sqpoll: Option<SqpollView>,
    /// Open chains first, then finished ones, newest first.
    pub chains: Vec<ChainView>,
    /// Oldest first.
    pub oldest: Vec<InFlightRow>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRow {
    pub opcode: String,
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SqpollView {
    pub tid: u32,
    /// asleep, woken, running, preempted, spinning, idle, unknown.
    pub state: String,
    /// How long it has been in that state (when known from scheduler events).
    pub for_ns: Option<u64>,
    pub cpu_percent: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    Ok,
    /// The member whose failure cancelled the rest.
    Breaker,
    Cancelled,
    /// Failed, but did not break the chain (a hard link, or the last member).
    Failed,
    Pending,
}

impl MemberRole {
    pub fn name(self) -> &'static str {
        match self {
            MemberRole::Ok => "ok",
            MemberRole::Breaker => "breaker",
            MemberRole::Cancelled => "cancelled",
            MemberRole::Failed => "failed",
            MemberRole::Pending => "in flight",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub user_data: u64,
    pub opcode: String,
    pub hard: bool,
    pub result: Option<String>,
    pub role: MemberRole,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainView {
    pub id: u64,
    pub open: bool,
    pub cut_at_batch_end: bool,
    pub members: Vec<MemberView>,
}

impl ChainView {
    pub fn broken(&self) -> bool {
        self.members.iter().any(|m| m.role == MemberRole::Breaker)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlightRow {
    pub user_data: u64,
    pub opcode: String,
    pub age_ns: u64,
    pub fd: Option<i32>,
    /// What it waits for, as far as the trace shows.
    pub state: &'static str,
}

/// Takes this tick's snapshot and records the tick in `history`.
pub fn take(st: &State, report: Report, history: &mut History, now: u64, start_ns: u64) -> Snapshot {
    let new_time = history.is_new_time(now);
    let mut rings = Vec::new();
    for ring in st.rings.values().filter(|r| r.submitted > 0 || r.fd.is_some() || r.completed > 0) {
        let counters = RingCounters {
            submitted: ring.submitted,
            completed: ring.completed,
            errors: ring.errors,
            punted: ring.punted,
        };
        let h = history.ring(ring.ctx, start_ns);
        h.record(now, counters, occupancy(st, ring), sqpoll_counters(st, ring), new_time);
        rings.push(ring_row(st, ring, h, &report.findings));
    }
    history.events.push(now, st.events);
    let events_per_s = history.events.ends().map(|((t0, a), (t1, b))| per_second(a, b, t1 - t0));
    history.last_ns = Some(now);
    Snapshot {
        now_ns: now,
        running_ns: now.saturating_sub(start_ns),
        events: st.events,
        events_per_s,
        rings,
        findings: report.findings,
        lost: report.lost_events,
    }
}

fn ring_row(st: &State, ring: &Ring, h: &RingHistory, findings: &[Finding]) -> RingRow {
    let ends = h.rates.ends();
    let rate = |f: fn(&RingCounters) -> u64| ends.map(|((t0, a), (t1, b))| per_second(f(&a), f(&b), t1 - t0));
    let hex = format!("{:#x}", ring.ctx);
    let finding = findings.iter().filter(|f| f.ring == hex).map(|f| f.severity).max();
    let lat = &ring.latency_all;
    RingRow {
        ctx: ring.ctx,
        pid: ring.tgid,
        comm: st.comms.get(&ring.tgid).map(|c| c.1.clone()).unwrap_or_default(),
        flags: ring.setup_flags.map(setup_flags).unwrap_or_default(),
        submits_per_s: rate(|c| c.submitted),
        completions_per_s: rate(|c| c.completed),
        in_flight: ring.inflight.len() as u64,
        p50_ns: (lat.count() > 0).then(|| lat.quantile(0.5)),
        p99_ns: (lat.count() > 0).then(|| lat.quantile(0.99)),
        errors_per_s: rate(|c| c.errors),
        overflows: ring.overflowed,
        punts_per_s: rate(|c| c.punted),
        finding,
        ring: hex,
    }
}

/// The fdinfo sample of a ring, when its fd is known (rings created during the trace).
fn fdinfo_sample(st: &State, ring: &Ring) -> Option<uringtrace_common::RawEvent> {
    let fd = u32::try_from(ring.fd?).ok()?;
    st.samples.get(&(ring.tgid, fd))?.last
}

fn occupancy(st: &State, ring: &Ring) -> Occupancy {
    let s = fdinfo_sample(st, ring);
    Occupancy {
        in_flight: ring.inflight.len() as u64,
        sq_pending: s.map(|e| e.args[2].wrapping_sub(e.args[1])),
        cq_pending: s.map(|e| e.args[3]),
    }
}

fn sqpoll_tid(st: &State, ring: &Ring) -> Option<u32> {
    ring.sqpoll_tid.or_else(|| fdinfo_sample(st, ring).map(|e| e.aux as u32).filter(|t| *t != 0))
}

fn sqpoll_counters(st: &State, ring: &Ring) -> Option<SqpollCounters> {
    let tid = sqpoll_tid(st, ring)?;
    let t = st.threads.get(&tid);
    // A running thread's current slice counts too: its switch-out has not happened yet.
    let runtime_ns = t.map_or(0, |t| t.runtime_ns + t.run_start_ns.map_or(0, |s| st.last_ns.saturating_sub(s)));
    let s = fdinfo_sample(st, ring);
    Some(SqpollCounters {
        runtime_ns,
        total_us: s.map(|e| e.aux2),
        work_us: s.map(|e| e.user_data),
        submits: t.map_or(0, |t| t.submits),
    })
}

/// Sorting of rows by one column; missing values sort as smallest.
pub fn compare(x: &RingRow, y: &RingRow, col: Column) -> Ordering {
    let f = |a: Option<f64>, b: Option<f64>| a.unwrap_or(-1.0).total_cmp(&b.unwrap_or(-1.0));
    match col {
        Column::Process => x.comm.cmp(&y.comm).then(x.pid.cmp(&y.pid)),
        Column::Ring => x.ring.cmp(&y.ring),
        Column::Flags => x.flags.cmp(&y.flags),
        Column::Submits => f(x.submits_per_s, y.submits_per_s),
        Column::Completions => f(x.completions_per_s, y.completions_per_s),
        Column::InFlight => x.in_flight.cmp(&y.in_flight),
        Column::P50 => x.p50_ns.cmp(&y.p50_ns),
        Column::P99 => x.p99_ns.cmp(&y.p99_ns),
        Column::Errors => f(x.errors_per_s, y.errors_per_s),
        Column::Overflows => x.overflows.cmp(&y.overflows),
        Column::Punts => f(x.punts_per_s, y.punts_per_s),
    }
}

/// The ring screen's data for ring `ctx` (empty when the analyzer does not know it).
pub fn ring_detail(st: &State, ctx: u64, history: &History, now: u64) -> RingDetail {
    let Some(ring) = st.rings.get(&ctx) else {
        return RingDetail { ctx, ring: format!("{ctx:#x}"), ..RingDetail::default() };
    };
    let h = history.rings.get(&ctx);
    let ops = ring
        .latency
        .iter()
        .map(|(op, hist)| OpRow {
            opcode: opcode_name(*op).into_owned(),
            count: hist.count(),
            p50_ns: hist.quantile(0.5),
            p99_ns: hist.quantile(0.99),
            max_ns: hist.max(),
        })
        .collect();
    let mut open: Vec<&Chain> = st.chains.values().filter(|c| c.ctx == ctx).collect();
    open.sort_by_key(|c| std::cmp::Reverse(c.id));
    let chains = open
        .into_iter()
        .map(|c| chain_view(c, true))
        .chain(ring.recent_chains.iter().rev().map(|c| chain_view(c, false)))
        .collect();
    let mut oldest: Vec<_> = ring.inflight.values().collect();
    oldest.sort_by_key(|r| (r.submit_ns, r.req));
    let oldest = oldest
        .into_iter()
        .take(OLDEST_SHOWN)
        .map(|r| InFlightRow {
            user_data: r.user_data,
            opcode: opcode_name(r.opcode).into_owned(),
            age_ns: now.saturating_sub(r.submit_ns),
            fd: r.fd,
            state: if r.poll_armed {
                "waiting for readiness (poll)"
            } else if r.punted {
                "in io-wq"
            } else if r.chain.is_some() && !r.issued {
                "waiting for its chain"
            } else if r.issued {
                "issued"
            } else {
                "submitted"
            },
        })
        .collect();
    RingDetail {
        ctx,
        ring: format!("{ctx:#x}"),
        pid: ring.tgid,
        comm: st.comms.get(&ring.tgid).map(|c| c.1.clone()).unwrap_or_default(),
        fd: ring.fd,
        sq_entries: ring.sq_entries,
        cq_entries: ring.cq_entries,
        flags: ring.setup_flags.map(setup_flags).unwrap_or_default(),
        submitted: ring.submitted,
        completed: ring.completed,
        errors: ring.errors,
        overflowed: ring.overflowed,
        in_flight: ring.inflight.len() as u64,
        max_in_flight: ring.max_in_flight,
        ops,
        occupancy: h.map(|h| h.occupancy.iter().copied().collect()).unwrap_or_default(),
        sqpoll: sqpoll_view(st, ring, h, now),
        chains,
        oldest,
    }
}

fn chain_view(c: &Chain, open: bool) -> ChainView {
    // fail_link names the breaker; without it (an event lost, an old kernel), the
    // member before the first cancelled one is the best guess.
    let breaker = c.breaker.or_else(|| {
        let first_cancelled = c.members.iter().position(|m| m.cancelled || m.res == Some(ECANCELED))?;
        first_cancelled.checked_sub(1)
    });
    let members = c
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = if Some(i) == breaker {
                MemberRole::Breaker
            } else if m.cancelled || (breaker.is_some_and(|b| i > b) && m.res == Some(ECANCELED)) {
                MemberRole::Cancelled
            } else {
                match m.res {
                    None => MemberRole::Pending,
                    Some(r) if r < 0 => MemberRole::Failed,
                    Some(_) => MemberRole::Ok,
                }
            };
            MemberView {
                user_data: m.user_data,
                opcode: opcode_name(m.opcode).into_owned(),
                hard: m.hard,
                result: m.res.map(result_name),
                role,
            }
        })
        .collect();
    ChainView { id: c.id, open, cut_at_batch_end: c.cut_at_batch_end, members }
}

fn sqpoll_view(st: &State, ring: &Ring, h: Option<&RingHistory>, now: u64) -> Option<SqpollView> {
    let tid = sqpoll_tid(st, ring)?;
    let t = st.threads.get(&tid);
    let ends = h.and_then(|h| h.sqpoll.ends());
    let sched_cpu = ends
        .filter(|(_, (_, b))| b.runtime_ns > 0)
        .map(|((t0, a), (t1, b))| b.runtime_ns.saturating_sub(a.runtime_ns) as f64 * 100.0 / (t1 - t0) as f64);
    // fdinfo times (6.9+): ran, and ran with work. Running without work is spinning.
    let fd_times = ends.and_then(|((t0, a), (t1, b))| {
        let total = b.total_us?.saturating_sub(a.total_us?);
        let work = b.work_us?.saturating_sub(a.work_us?);
        Some((total as f64 * 1e5 / (t1 - t0) as f64, total, work))
    });
    let cpu_percent = sched_cpu.or(fd_times.map(|x| x.0));
    let submitted_in_window = ends.is_some_and(|((_, a), (_, b))| b.submits > a.submits);
    let busy = cpu_percent.is_some_and(|c| c >= 50.0);
    let idle_work = match fd_times {
        Some((_, total, work)) => total > 0 && work * 10 < total,
        None => !submitted_in_window,
    };
    let known = t.map(|t| t.state).filter(|s| *s != "unknown");
    let state = match known {
        Some("running") | None if busy && idle_work => "spinning",
        Some(s) => s,
        None if cpu_percent.is_some_and(|c| c > 1.0) => "running",
        None if fd_times.is_some() => "idle",
        None => "unknown",
    };
    Some(SqpollView {
        tid,
        state: state.to_string(),
        for_ns: t.filter(|_| known.is_some()).map(|t| now.saturating_sub(t.state_since_ns)),
        cpu_percent,
    })
}

/// How the members are linked (the last member's flag does not link anything).
pub fn chain_links(c: &ChainView) -> &'static str {
    let linking = &c.members[..c.members.len().saturating_sub(1)];
    match (linking.iter().all(|m| m.hard), linking.iter().any(|m| m.hard)) {
        _ if linking.is_empty() => "single",
        (true, _) => "hard links",
        (false, true) => "soft and hard links",
        (false, false) => "soft links",
    }
}
