//! The analyzer: a pure library. Events in (live or from a recording, through the same
//! [`Analyzer::push`]), state and findings out. No I/O.

pub mod check;
mod detect;
pub mod finding;
pub mod latency;
pub mod render;
pub mod report;
pub mod rules;
pub mod state;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use uringtrace_common::RawEvent;

use finding::Finding;
use report::{Environment, LostEvents, OpLatency, Report, RingSummary};
use state::State;

use crate::display::comm_str;
use crate::names::{opcode_name, setup_flags};

/// Thresholds of the detectors.
#[derive(Clone, Debug)]
pub struct AnalyzerConfig {
    /// Events are ordered by timestamp within this window (ring-buffer order is the
    /// order of reservation, which can differ across CPUs).
    pub reorder_window_ns: u64,
    /// request-stalled: in flight at least this long.
    pub stall_ns: u64,
    /// sqpoll-missed-wakeup: SQEs pending at least this long with the thread asleep.
    pub missed_wakeup_ns: u64,
    /// sqpoll-idle-spin: the sampled window must be at least this long.
    pub idle_spin_min_ns: u64,
    /// wait-cycle: the waiting member must have waited at least this long.
    pub cycle_min_ns: u64,
    /// iowq-punt-storm: workers created per process, or punts per process.
    pub iowq_workers: u64,
    pub iowq_punts: u64,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            reorder_window_ns: 20_000_000,
            stall_ns: 1_000_000_000,
            missed_wakeup_ns: 200_000_000,
            idle_spin_min_ns: 500_000_000,
            cycle_min_ns: 100_000_000,
            iowq_workers: 16,
            iowq_punts: 10_000,
        }
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    ts: u64,
    seq: u64,
    ev: RawEventOrd,
}

/// RawEvent with a total order that never decides (ts, seq come first).
#[derive(PartialEq, Eq)]
struct RawEventOrd(RawEvent);

impl PartialOrd for RawEventOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RawEventOrd {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

pub struct Analyzer {
    cfg: AnalyzerConfig,
    env: Environment,
    state: State,
    findings: Vec<Finding>,
    reorder: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    max_ts: u64,
    lost: LostEvents,
    end_ns: Option<u64>,
}

impl Analyzer {
    pub fn new(cfg: AnalyzerConfig, env: Environment) -> Analyzer {
        let state = State {
            slow_ns: cfg.cycle_min_ns.min(cfg.stall_ns),
            missed_wakeup_ns: cfg.missed_wakeup_ns,
            idle_spin_min_ns: cfg.idle_spin_min_ns,
            ..State::default()
        };
        Analyzer {
            cfg,
            env,
            state,
            findings: Vec::new(),
            reorder: BinaryHeap::new(),
            seq: 0,
            max_ts: 0,
            lost: LostEvents {
                known: true,
                ..LostEvents::default()
            },
            end_ns: None,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Feeds one event. Events are applied once no earlier one can still arrive.
    pub fn push(&mut self, ev: RawEvent) {
        self.max_ts = self.max_ts.max(ev.ts_ns);
        self.seq += 1;
        self.reorder.push(Reverse(Pending {
            ts: ev.ts_ns,
            seq: self.seq,
            ev: RawEventOrd(ev),
        }));
        while let Some(Reverse(top)) = self.reorder.peek() {
            if top.ts + self.cfg.reorder_window_ns > self.max_ts {
                break;
            }
            let Some(Reverse(p)) = self.reorder.pop() else {
                break;
            };
            self.apply(&p.ev.0);
        }
    }

    fn apply(&mut self, ev: &RawEvent) {
        self.state.apply(ev);
        if !self.state.observations.is_empty() {
            let obs = std::mem::take(&mut self.state.observations);
            for o in &obs {
                self.findings
                    .extend(detect::from_observation(&self.state, &self.cfg, o));
            }
        }
    }

    // --- For `uringtrace top`: live input can go quiet, and without this the last
    // events would wait in the reorder window until the next event arrives. ---
    /// Applies the pending events that are older than `now_ns` by the reorder window:
    /// nothing that arrives later can precede them.
    pub fn advance(&mut self, now_ns: u64) {
        while let Some(Reverse(top)) = self.reorder.peek() {
            if top.ts + self.cfg.reorder_window_ns > now_ns {
                break;
            }
            let Some(Reverse(p)) = self.reorder.pop() else {
                break;
            };
            self.apply(&p.ev.0);
        }
    }

    /// Applies everything still in the reorder window (end of input).
    pub fn flush(&mut self) {
        while let Some(Reverse(p)) = self.reorder.pop() {
            self.apply(&p.ev.0);
        }
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
        findings.extend(detect::current(&self.state, &self.cfg, now));
        dedupe(&mut findings);
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
            .filter(|r| r.submitted > 0 || r.fd.is_some() || r.completed > 0)
            .map(|r| {
                let sq_state = r
                    .sqpoll_tid
                    .and_then(|t| st.threads.get(&t))
                    .map(|t| t.state.to_string());
                RingSummary {
                    ring: format!("{:#x}", r.ctx),
                    pid: r.tgid,
                    comm: st
                        .comms
                        .get(&r.tgid)
                        .map(|c| c.1.clone())
                        .unwrap_or_default(),
                    fd: r.fd,
                    sq_entries: r.sq_entries,
                    cq_entries: r.cq_entries,
                    setup_flags: r.setup_flags.map(setup_flags).unwrap_or_default(),
                    submitted: r.submitted,
                    completed: r.completed,
                    overflowed: r.overflowed,
                    dropped_cqes: r.dropped,
                    in_flight: r.inflight.len() as u64,
                    max_in_flight: r.max_in_flight,
                    punted: r.punted,
                    sqpoll_thread: r.sqpoll_tid,
                    sqpoll_state: sq_state,
                    iowq_workers: st.iowq_workers.get(&r.tgid).copied().unwrap_or(0),
                }
            })
            .collect();
        rings.sort_by(|a, b| (a.pid, &a.ring).cmp(&(b.pid, &b.ring)));
        let latency = st
            .latency
            .iter()
            .map(|(op, h)| OpLatency {
                opcode: opcode_name(*op).into_owned(),
                count: h.count(),
                p50_ns: h.quantile(0.5),
                p99_ns: h.quantile(0.99),
                max_ns: h.max(),
            })
            .collect();
        Report {
            environment: self.env.clone(),
            rings,
            findings,
            latency,
            lost_events: self.lost.clone(),
            events: st.events,
            duration_ns: now.saturating_sub(st.first_ns.unwrap_or(now)),
            max_iowq_workers: st.iowq_workers.values().copied().max().unwrap_or(0),
        }
    }

    /// Ends the input and returns the final report.
    pub fn finish(mut self) -> Report {
        self.flush();
        self.report()
    }
}

/// One finding per (rule, ring, message): repeated observations of the same problem
/// (every -ENOBUFS of one request, say) collapse, counting how often.
fn dedupe(findings: &mut Vec<Finding>) {
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings.drain(..) {
        if let Some(prev) = out
            .iter_mut()
            .find(|p| p.rule == f.rule && p.ring == f.ring && p.message == f.message)
        {
            prev.evidence.last_ns = prev.evidence.last_ns.max(f.evidence.last_ns);
            let n = prev
                .evidence
                .facts
                .iter_mut()
                .find(|(k, _)| k == "occurrences");
            match n {
                Some((_, v)) => *v = (v.parse::<u64>().unwrap_or(1) + 1).to_string(),
                None => prev.evidence.facts.push(("occurrences".into(), "2".into())),
            }
        } else {
            out.push(f);
        }
    }
    *findings = out;
}

/// Helper for views: a comm from raw bytes.
pub fn comm(ev: &RawEvent) -> String {
    comm_str(&ev.comm)
}

#[cfg(test)]
mod tests;
