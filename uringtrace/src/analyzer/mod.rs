//! The analyzer: a pure library. Events in (live or from a recording, through the same
//! [`Analyzer::push`]), state and findings out. No I/O.

mod aggregate;
pub mod check;
pub(crate) mod collect;
mod detect;
pub mod finding;
pub mod graph;
pub mod index;
pub mod latency;
pub mod opcodes;
pub mod report;
pub mod rules;
pub mod state;
pub mod synthetic;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use uringtrace_common::RawEvent;

use collect::Findings;
pub use collect::{FindingsKept, MAX_FINDINGS, MAX_RETAINED};
use finding::Finding;
use report::{Environment, LostEvents, OpLatency, Report, RingSummary};
use state::State;

use crate::names::setup_flags;

/// Thresholds of the detectors.
#[derive(Clone, Debug)]
pub struct AnalyzerConfig {
    /// Events are ordered by timestamp within this window (ring-buffer order is the
    /// order of reservation, which can differ across CPUs).
    pub reorder_window_ns: u64,
    /// ... and within this many events: when more wait, the oldest leaves early. So
    /// the window's memory is bounded (a burst of events no longer grows it), at
    /// 104 bytes an event. Out-of-order events are a few positions apart in practice
    /// (an event reserved by another CPU between a timestamp and its reservation).
    pub reorder_max_events: usize,
    /// request-stalled: in flight at least this long.
    pub stall_ns: u64,
    /// sqpoll-missed-wakeup: SQEs pending at least this long with the thread asleep.
    pub missed_wakeup_ns: u64,
    /// sqpoll-idle-spin: the sampled window must be at least this long.
    pub idle_spin_min_ns: u64,
    /// wait-cycle: the waiting member must have waited at least this long.
    pub cycle_min_ns: u64,
    /// iowq-punt-storm: io-wq workers alive at once in a process, or requests punted
    /// to io-wq within one second (sliding).
    pub iowq_workers: u64,
    pub iowq_punts_per_s: u64,
    /// cq-overflow: an application that attempts a flush (a GETEVENTS enter) at least
    /// this often while CQEs sit in the overflow list handles overflow by design, as
    /// libuv does (info); longer without one is a warning. A busy event loop's
    /// iteration can take a few hundred ms: libuv with 20,000 reads in flight on a
    /// 128-entry CQ went up to 238 ms between flushes on a loaded 2-CPU VM (6.18).
    pub overflow_flush_ns: u64,
    /// drain-blocked: an IOSQE_IO_DRAIN request held at least this long behind the
    /// requests before it. Shorter is what a drain is for.
    pub drain_blocked_ns: u64,
    /// task-work-stalled: completions queued to a DEFER_TASKRUN or COOP_TASKRUN ring's
    /// owner that it has not run for this long. An event loop that waits in
    /// io_uring_enter runs them within microseconds; one busy between waits, within
    /// an iteration (up to 238 ms measured, see `overflow_flush_ns`). Twice that is
    /// no long iteration but an owner blocked elsewhere.
    pub task_work_stall_ns: u64,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            reorder_window_ns: 20_000_000,
            reorder_max_events: REORDER_MAX_EVENTS,
            stall_ns: 1_000_000_000,
            missed_wakeup_ns: 200_000_000,
            idle_spin_min_ns: 500_000_000,
            cycle_min_ns: 100_000_000,
            iowq_workers: 16,
            iowq_punts_per_s: 1_000,
            overflow_flush_ns: 1_000_000_000,
            drain_blocked_ns: 100_000_000,
            task_work_stall_ns: 500_000_000,
        }
    }
}

/// Default [`AnalyzerConfig::reorder_max_events`]: 3.4 MB of waiting events, which
/// fit in the queue's ring of 32 Ki events (one more arrives before the oldest leaves)
/// and mostly in a core's L2 cache. 20 ms of events at up to 1.6 M events/s; at higher
/// rates the window is shorter in time but still thousands of events long.
pub const REORDER_MAX_EVENTS: usize = (32 << 10) - 1;

/// The reorder window: events wait here until no earlier one can still arrive, and
/// leave in (timestamp, arrival) order.
///
/// Events mostly arrive in timestamp order (one CPU, or per-CPU buffers drained in
/// step): those are appended to `run`, a queue that is sorted by construction. Only
/// an event older than the newest one in `run` goes to `late`, a heap of small keys
/// whose events wait in `slab`. The next event out is the smaller head of the two, so
/// the order is exactly that of one heap over all events, at queue cost in the common
/// case.
///
/// On equal timestamps `run`'s head goes first: it arrived before any `late` event
/// with its timestamp. (A `late` event L went there because `run` held a newer event
/// X; X stays in `run` until after L leaves, so anything arriving while L waits with
/// L's timestamp also finds X, and goes to `late` too.)
#[derive(Default)]
struct Reorder {
    /// Sorted by (ts, arrival).
    run: Fifo,
    /// (ts, seq, slot in `slab`), min first.
    late: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slab: Vec<RawEvent>,
    free: Vec<u32>,
}

impl Reorder {
    #[inline]
    fn push(&mut self, seq: u64, ev: RawEvent) {
        if self.run.back_ts().is_none_or(|b| ev.ts_ns >= b) {
            self.run.push_back(ev);
            return;
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = ev;
                s
            }
            None => {
                self.slab.push(ev);
                (self.slab.len() - 1) as u32
            }
        };
        self.late.push(Reverse((ev.ts_ns, seq, slot)));
    }

    /// Whether the next event out may leave (its timestamp plus `window` is at most
    /// `until`), and if so whether it is `late`'s (else `run`'s front).
    #[inline]
    fn ready(&self, window: u64, until: u64) -> Option<bool> {
        let run = self.run.front().map(|ev| ev.ts_ns);
        let (ts, late) = match self.late.peek() {
            None => (run?, false),
            Some(Reverse((ts, _, _))) => match run {
                Some(r) if r <= *ts => (r, false),
                _ => (*ts, true),
            },
        };
        (ts.saturating_add(window) <= until).then_some(late)
    }

    /// The oldest late event, taken out of the heap.
    fn next_late(&mut self) -> Option<RawEvent> {
        let Reverse((_, _, slot)) = self.late.pop()?;
        self.free.push(slot);
        Some(self.slab[slot as usize])
    }

    /// [`Self::next_late`] for tests that know one is there.
    #[cfg(test)]
    fn pop_late(&mut self) -> RawEvent {
        self.next_late().unwrap()
    }

    fn len(&self) -> usize {
        self.run.len + self.late.len()
    }
}

/// A queue of events in a power-of-two ring: less index arithmetic per event than
/// `VecDeque`, which counts at ten million events a second.
#[derive(Default)]
struct Fifo {
    /// Empty, or a power of two long.
    buf: Vec<RawEvent>,
    head: usize,
    len: usize,
}

impl Fifo {
    #[inline]
    fn back_ts(&self) -> Option<u64> {
        (self.len > 0).then(|| self.buf[(self.head + self.len - 1) & (self.buf.len() - 1)].ts_ns)
    }

    #[inline]
    fn front(&self) -> Option<&RawEvent> {
        (self.len > 0).then(|| &self.buf[self.head])
    }

    #[inline]
    fn push_back(&mut self, ev: RawEvent) {
        if self.len == self.buf.len() {
            self.grow();
        }
        let i = (self.head + self.len) & (self.buf.len() - 1);
        self.buf[i] = ev;
        self.len += 1;
    }

    #[inline]
    fn pop_front(&mut self) {
        debug_assert!(self.len > 0);
        self.head = (self.head + 1) & (self.buf.len() - 1);
        self.len -= 1;
    }

    #[cold]
    fn grow(&mut self) {
        let cap = (self.buf.len() * 2).max(1024);
        let mut buf = Vec::with_capacity(cap);
        let mask = self.buf.len().wrapping_sub(1);
        buf.extend((0..self.len).map(|i| self.buf[(self.head + i) & mask]));
        buf.resize(cap, RawEvent::default());
        self.buf = buf;
        self.head = 0;
    }
}

pub struct Analyzer {
    cfg: AnalyzerConfig,
    env: Environment,
    state: State,
    findings: Findings,
    reorder: Reorder,
    seq: u64,
    max_ts: u64,
    lost: LostEvents,
    end_ns: Option<u64>,
}

impl Analyzer {
    pub fn new(cfg: AnalyzerConfig, env: Environment) -> Analyzer {
        let state = State {
            slow_ns: cfg.cycle_min_ns.min(cfg.stall_ns),
            cycle_min_ns: cfg.cycle_min_ns,
            missed_wakeup_ns: cfg.missed_wakeup_ns,
            idle_spin_min_ns: cfg.idle_spin_min_ns,
            overflow_flush_ns: cfg.overflow_flush_ns,
            task_work_stall_ns: cfg.task_work_stall_ns,
            host_cpus: env.cpus,
            ..State::default()
        };
        Analyzer {
            cfg,
            env,
            state,
            findings: Findings::default(),
            reorder: Reorder::default(),
            seq: 0,
            max_ts: 0,
            // Nothing lost until a source says otherwise.
            lost: LostEvents::counted(&[]),
            end_ns: None,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Feeds one event. Events are applied once no earlier one can still arrive.
    #[inline]
    pub fn push(&mut self, ev: RawEvent) {
        self.max_ts = self.max_ts.max(ev.ts_ns);
        self.seq += 1;
        self.reorder.push(self.seq, ev);
        self.drain(self.cfg.reorder_window_ns, self.max_ts);
        // Memory bound: one event in, so at most one out (the next in order anyway).
        if self.reorder.len() > self.cfg.reorder_max_events {
            self.drain_one();
        }
    }

    /// Applies the next event in order, however recent (the window is full: at high
    /// event rates, once per event).
    #[inline]
    fn drain_one(&mut self) {
        if let Some(late) = self.reorder.ready(0, u64::MAX) {
            self.apply_next(late);
        }
    }

    /// Applies the oldest event, from the late heap or from `run` as `ready()` said;
    /// false when that one was empty after all.
    #[inline]
    fn apply_next(&mut self, late: bool) -> bool {
        if late {
            let Some(ev) = self.reorder.next_late() else {
                return false;
            };
            apply(&mut self.state, &mut self.findings, &self.cfg, &ev);
        } else {
            // Applied in place: a RawEvent is 104 bytes, copies add up.
            let Some(ev) = self.reorder.run.front() else {
                return false;
            };
            apply(&mut self.state, &mut self.findings, &self.cfg, ev);
            self.reorder.run.pop_front();
        }
        true
    }

    /// Applies the events whose timestamp plus `window` is at most `until`, in order.
    #[inline]
    fn drain(&mut self, window: u64, until: u64) {
        // Nothing late (events came in order): only `run`'s head to look at.
        if self.reorder.late.is_empty() {
            while let Some(ev) = self.reorder.run.front() {
                if ev.ts_ns.saturating_add(window) > until {
                    return;
                }
                apply(&mut self.state, &mut self.findings, &self.cfg, ev);
                self.reorder.run.pop_front();
            }
            return;
        }
        while let Some(late) = self.reorder.ready(window, until) {
            if !self.apply_next(late) {
                return;
            }
        }
    }

    // --- For `uringtrace top`: live input can go quiet, and without this the last
    // events would wait in the reorder window until the next event arrives. ---
    /// Applies the pending events that are older than `now_ns` by the reorder window:
    /// nothing that arrives later can precede them.
    pub fn advance(&mut self, now_ns: u64) {
        self.drain(self.cfg.reorder_window_ns, now_ns);
    }

    /// Applies everything still in the reorder window (end of input).
    pub fn flush(&mut self) {
        self.drain(0, u64::MAX);
    }

    /// Events waiting in the reorder window.
    pub fn pending(&self) -> usize {
        self.reorder.len()
    }

    /// Ring-buffer losses of the trace (per CPU); `known: false` when unknown.
    pub fn set_lost(&mut self, lost: LostEvents) {
        self.lost = lost;
    }

    /// Where the trace ended (monotonic ns), when later than its last event.
    pub fn set_end(&mut self, end_ns: u64) {
        self.end_ns = Some(end_ns);
    }

    /// The report as of now: findings so far plus those about the current state.
    pub fn report(&self) -> Report {
        let now = self.end_ns.unwrap_or(0).max(self.state.last_ns);
        let mut findings = self.findings.clone();
        for h in detect::current(&self.state, &self.cfg, now) {
            findings.add(h, &self.state);
        }
        let mut findings = findings.list;
        let inconclusive = self.lost.inconclusive();
        for f in &mut findings {
            f.inconclusive = inconclusive;
        }
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.evidence.first_ns.cmp(&b.evidence.first_ns))
        });
        let st = &self.state;
        let mut rings: Vec<RingSummary> = st
            .rings
            .values()
            .map(|r| (r, st.ring_comm(r)))
            // A retired ring keeps its own comm: its pid may name another process now.
            .chain(st.retired.iter().map(|r| (r, r.owner_comm.clone())))
            .filter(|(r, _)| ring_is_shown(r))
            .map(|(r, comm)| {
                let sq_state = r
                    .sqpoll_tid
                    .and_then(|t| st.threads.get(&t))
                    .map(|t| t.state.to_string());
                RingSummary {
                    ring: format!("{:#x}", r.ctx),
                    pid: r.tgid,
                    comm,
                    fd: r.fd,
                    sq_entries: r.sq_entries,
                    cq_entries: r.cq_entries,
                    setup_flags: r.setup_flags.map(setup_flags).unwrap_or_default(),
                    submitted: r.submitted,
                    completed: r.completed,
                    overflowed: r.overflowed,
                    dropped_cqes: r.dropped,
                    in_flight: r.posting_in_flight(),
                    max_in_flight: r.max_in_flight,
                    punted: r.punted,
                    sqpoll_thread: r.sqpoll_tid,
                    sqpoll_state: sq_state,
                    iowq_workers: st.procs.get(&r.tgid).map_or(0, |p| p.workers_max_live),
                }
            })
            .collect();
        rings.sort_by(|a, b| (a.pid, &a.ring).cmp(&(b.pid, &b.ring)));
        let latency = st
            .latency
            .iter()
            .map(|(op, h)| OpLatency::of(*op, h))
            .collect();
        Report {
            environment: self.env.clone(),
            rings,
            findings,
            latency,
            lost_events: self.lost.clone(),
            events: st.events,
            duration_ns: now.saturating_sub(st.first_ns.unwrap_or(now)),
            max_iowq_workers: st
                .procs
                .values()
                .map(|p| p.workers_max_live)
                .chain(std::iter::once(st.max_workers_of_gone))
                .max()
                .unwrap_or(0),
        }
    }

    // --- For consumers that run for days (the agent): `report` clones every finding
    // of the trace, and a host where processes come and go makes new ones forever. ---
    /// The findings recorded since the previous call, each handed over once: new
    /// causes, with what they counted so far (later occurrences of a cause add to the
    /// analyzer's copy, not to another finding), including those about the current
    /// state, recorded once when first seen here. A finding handed over before whose
    /// severity rose since is handed over again (once per rise), with its new
    /// severity and what it counted so far. Then lets go of findings whose
    /// process is gone (nothing can add to them), and of the oldest beyond
    /// [`MAX_RETAINED`]: after a call the analyzer holds at most that many, plus what
    /// is recorded until the next call. `report` shows only what is held.
    pub fn take_new_findings(&mut self) -> Vec<Finding> {
        let now = self.end_ns.unwrap_or(0).max(self.state.last_ns);
        for h in detect::current(&self.state, &self.cfg, now) {
            self.findings.add_ongoing(h, &self.state);
        }
        self.findings
            .take_new(&self.state, self.lost.inconclusive())
    }

    /// How many findings are held, handed over and let go of.
    pub fn findings_kept(&self) -> FindingsKept {
        self.findings.kept()
    }

    /// Ends the input and returns the final report.
    pub fn finish(mut self) -> Report {
        self.flush();
        self.report()
    }
}

/// Whether a ring is listed, in reports and in `top`'s table: it carried requests, or
/// it was created during the trace. A ring met only in passing (a wait or an fdinfo
/// sample of an idle ring) is left out.
pub fn ring_is_shown(r: &state::Ring) -> bool {
    r.submitted > 0 || r.fd.is_some() || r.completed > 0
}

/// Applies one event to the state, and turns what it observed into findings.
fn apply(state: &mut State, findings: &mut Findings, cfg: &AnalyzerConfig, ev: &RawEvent) {
    state.apply(ev);
    if !state.observations.is_empty() {
        let obs = std::mem::take(&mut state.observations);
        for o in &obs {
            for h in detect::from_observation(state, cfg, o) {
                findings.add(h, state);
            }
        }
    }
}

#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod rule_tests_sys;
#[cfg(test)]
mod rules_req_tests;
#[cfg(test)]
mod rules_thread_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod reorder_bound_tests {
    use uringtrace_common::RawEvent;

    use super::report::Environment;
    use super::synthetic::nop_storm;
    use super::{Analyzer, AnalyzerConfig, REORDER_MAX_EVENTS};

    /// A NOP storm (0.5 µs an event: 40 000 events in the 20 ms window, more than the
    /// count bound) with neighbours swapped here and there, so that the late heap is
    /// used too.
    fn burst() -> Vec<RawEvent> {
        let mut events: Vec<RawEvent> = nop_storm(60_000).collect();
        for i in (1..events.len() - 3).step_by(7) {
            events.swap(i, i + 3);
        }
        events
    }

    fn replay(events: &[RawEvent], cfg: AnalyzerConfig) -> Analyzer {
        let mut a = Analyzer::new(cfg, Environment::default());
        for (i, ev) in events.iter().enumerate() {
            a.push(*ev);
            assert!(a.pending() <= a.cfg.reorder_max_events, "after event {i}");
        }
        a
    }

    /// However many events arrive within the reorder window, it holds at most
    /// `reorder_max_events`, and its buffers do not grow past that.
    #[test]
    fn reorder_window_memory_is_bounded_by_a_count() {
        let events = burst();
        let a = replay(&events, AnalyzerConfig::default());
        assert_eq!(a.pending(), REORDER_MAX_EVENTS);
        assert!(a.reorder.run.buf.len() <= REORDER_MAX_EVENTS + 1);
        assert!(a.reorder.slab.len() <= REORDER_MAX_EVENTS + 1);
        assert!(
            !a.reorder.slab.is_empty(),
            "the late heap was not exercised"
        );

        // A small bound: the buffers stay small.
        let small = AnalyzerConfig {
            reorder_max_events: 1000,
            ..AnalyzerConfig::default()
        };
        let a = replay(&events, small);
        assert!(a.reorder.run.buf.len() <= 1024);
        assert!(a.reorder.slab.len() <= 1001);
    }

    /// The bound changes nothing when events are fewer positions out of order than it
    /// holds: the same report as with only the time window.
    #[test]
    fn reorder_bound_gives_the_same_report_as_the_time_window() {
        let events = burst();
        let unbounded = AnalyzerConfig {
            reorder_max_events: usize::MAX,
            ..AnalyzerConfig::default()
        };
        let want = replay(&events, unbounded).finish();
        assert_eq!(want.events, events.len() as u64);
        for max in [REORDER_MAX_EVENTS, 1000, 8] {
            let cfg = AnalyzerConfig {
                reorder_max_events: max,
                ..AnalyzerConfig::default()
            };
            assert_eq!(replay(&events, cfg).finish(), want, "bound {max}");
        }
    }
}
