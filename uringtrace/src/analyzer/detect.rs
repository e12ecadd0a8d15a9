//! Detectors, dispatched: observations (made as events arrive) and the state (at
//! report time, or when a ring retires) go to the rule modules in `rules/`, which turn
//! them into [`Hit`]s. Pure functions of the model.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash};

use super::finding::{Evidence, Fact, FactValue, Finding, RequestEvidence};
use super::rules::{self, RuleId};
use super::state::{Chain, Observation, Ring, State};
use super::AnalyzerConfig;

/// A finding and the cause it is about. Hits of one cause (same rule and cause key) on
/// one process and ring become one finding with a count of occurrences.
#[derive(Clone, Debug)]
pub struct Hit {
    pub cause: u64,
    pub finding: Finding,
}

/// A hit of rule `id` about `ring` (0: none) of process `pid`. `cause` tells causes
/// of one rule apart (an opcode and an errno, say); it never holds user_data, fds or
/// times, so that a server's ten thousand connections with one problem give one
/// finding.
pub fn hit(
    st: &State,
    id: RuleId,
    pid: u32,
    ring: u64,
    cause: impl Hash,
    message: String,
    evidence: Evidence,
) -> Hit {
    let rule = id.rule();
    let key = foldhash::fast::FixedState::default().hash_one((id, cause));
    Hit {
        cause: key,
        finding: Finding {
            rule: id,
            severity: rule.severity,
            pid,
            comm: st.comm_of(pid),
            ring,
            message,
            fix: rule.fix.to_string(),
            occurrences: 1,
            evidence,
            inconclusive: false,
        },
    }
}

pub fn req_ev(
    user_data: u64,
    opcode: u8,
    res: Option<i32>,
    role: &str,
    sub: Option<u64>,
    done: Option<u64>,
) -> RequestEvidence {
    RequestEvidence {
        user_data,
        opcode,
        result: res,
        role: role.into(),
        submitted_ns: sub,
        completed_ns: done,
    }
}

pub fn count(name: &str, n: u64) -> Fact {
    Fact::new(name, FactValue::Count(n))
}

pub fn ns(name: &str, v: u64) -> Fact {
    Fact::new(name, FactValue::Ns(v))
}

pub fn text(name: &str, v: impl Into<String>) -> Fact {
    Fact::new(name, FactValue::Text(v.into()))
}

pub fn int(name: &str, v: i64) -> Fact {
    Fact::new(name, FactValue::Int(v))
}

pub fn ms(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

/// Owner pid of a ring, for findings about it.
pub fn owner(st: &State, ctx: u64, fallback: u32) -> u32 {
    st.rings.get(&ctx).map_or(fallback, |r| r.tgid)
}

fn member_role(c: &Chain, i: usize, breaker: Option<usize>) -> &'static str {
    match breaker {
        Some(b) if b == i => "breaker",
        Some(b) if i > b && c.members[i].res == Some(-libc::ECANCELED) => "cancelled",
        _ => "ok",
    }
}

/// A chain's members as evidence (at most [`super::finding::MAX_EXAMPLE_REQUESTS`]).
pub fn chain_evidence(c: &Chain, breaker: Option<usize>) -> Evidence {
    Evidence {
        requests: c
            .members
            .iter()
            .enumerate()
            .take(super::finding::MAX_EXAMPLE_REQUESTS)
            .map(|(i, m)| {
                req_ev(
                    m.user_data,
                    m.opcode,
                    m.res,
                    member_role(c, i, breaker),
                    Some(m.submit_ns),
                    m.complete_ns,
                )
            })
            .collect(),
        facts: vec![
            count("members", c.members.len() as u64),
            text(
                "links",
                if c.members.iter().any(|m| m.hard) {
                    "hard"
                } else {
                    "soft"
                },
            ),
        ],
        first_ns: c.members.first().map_or(0, |m| m.submit_ns),
        last_ns: c
            .members
            .iter()
            .filter_map(|m| m.complete_ns)
            .max()
            .unwrap_or(0),
    }
}

/// Converts an observation into hits (called as observations happen).
pub fn from_observation(st: &State, cfg: &AnalyzerConfig, o: &Observation) -> Vec<Hit> {
    match o {
        Observation::SlowCompletion {
            req,
            chain: _,
            start_ns,
            done_ns,
            res,
        } => rules::request_stalled::on_slow(st, cfg, req, *start_ns, *done_ns, *res)
            .into_iter()
            .collect(),
        Observation::InvalidSqe(ev) => vec![rules::invalid_sqe::on_rejected(st, ev)],
        Observation::ChainDone(c) => chain_hits(st, c),
        Observation::RingRetired(ring, ts) => retired(st, cfg, ring, *ts),
        Observation::MissedWakeup {
            tgid,
            fd,
            samples,
            thread_state,
        } => rules::sqpoll_missed_wakeup::on_missed(st, *tgid, *fd, samples, thread_state)
            .into_iter()
            .collect(),
        Observation::IdleSpin { tgid, fd, samples } => {
            rules::sqpoll_idle_spin::on_spin(st, *tgid, *fd, samples)
                .into_iter()
                .collect()
        }
        Observation::MultishotEnded {
            ev,
            intermediate,
            opcode,
        } => vec![rules::multishot_terminated::on_end(
            st,
            ev,
            *intermediate,
            *opcode,
        )],
        Observation::NoBufs { ev, opcode } => {
            vec![rules::buffer_exhausted::on_nobufs(st, ev, *opcode)]
        }
        Observation::UnsatisfiableWait { wait, until_ns } => {
            vec![rules::unsatisfiable_wait::on_wait(st, wait, *until_ns)]
        }
        Observation::ProcessRetired { tgid, ts } => {
            rules::iowq_punt_storm::for_process(st, cfg, *tgid, *ts)
                .into_iter()
                .chain(rules::sqpoll_proliferation::for_process(st, *tgid, *ts))
                .collect()
        }
        Observation::TaskWorkStalled {
            wait,
            until_ns,
            end,
        } => {
            vec![rules::task_work_stalled::on_wait(
                st,
                wait,
                *until_ns,
                Some(*end),
            )]
        }
        Observation::CycleReleased(c) => vec![rules::wait_cycle::on_cycle(st, c, true)],
        Observation::DroppedCqe(ev) => vec![rules::cqe_dropped::on_dropped(st, ev)],
        Observation::FixedMisuse(f) if f.buffer => {
            vec![rules::fixed_buffer_misuse::on_failure(st, f)]
        }
        Observation::FixedMisuse(f) => vec![rules::fixed_file_misuse::on_failure(st, f)],
        Observation::ShortWrite { ev, write } => {
            vec![rules::short_write::on_short(st, ev, write.as_deref())]
        }
        Observation::DrainReleased(d) => rules::drain_blocked::on_released(st, cfg, d)
            .into_iter()
            .collect(),
        Observation::EnterError { exit, enter } => {
            vec![rules::enter_error::on_error(st, exit, enter.as_ref())]
        }
    }
}

/// link-chain-broken and sqpoll-chain-split for a finished chain.
pub fn chain_hits(st: &State, c: &Chain) -> Vec<Hit> {
    let mut out: Vec<Hit> = rules::link_chain_broken::on_chain(st, c)
        .into_iter()
        .collect();
    out.extend(rules::sqpoll_chain_split::on_chain(st, c));
    out
}

/// cq-overflow and overflow-not-flushed for a ring. CQEs left in the overflow list
/// while the CQ ring had room are overflow-not-flushed's: cq-overflow then keeps
/// only its info cases, so that one cause makes one warning.
fn overflow_hits(st: &State, cfg: &AnalyzerConfig, ring: &Ring, now: u64) -> Vec<Hit> {
    let mut out = rules::cq_overflow::for_ring(st, cfg, ring, now);
    if let Some(h) = rules::overflow_not_flushed::for_ring(st, cfg, ring, now) {
        out.retain(|o| o.finding.severity == super::finding::Severity::Info);
        out.push(h);
    }
    out
}

/// Findings about a ring that is gone, from what it showed last.
fn retired(st: &State, cfg: &AnalyzerConfig, ring: &Ring, ts: u64) -> Vec<Hit> {
    let mut out = overflow_hits(st, cfg, ring, ts);
    out.extend(rules::request_stalled::in_flight(
        st,
        cfg,
        ring,
        ts,
        &HashSet::new(),
    ));
    out.extend(rules::drain_blocked::pending(st, cfg, ring, ts));
    out
}

/// Hits about the state as of `now` (end of trace, or a live snapshot).
pub fn current(st: &State, cfg: &AnalyzerConfig, now: u64) -> Vec<Hit> {
    let mut out = Vec::new();
    let mut explained: HashSet<(u64, u64)> = HashSet::new();
    for c in super::graph::cycles(st, now, cfg.cycle_min_ns) {
        for m in &c.members {
            explained.insert((m.ctx, m.req));
        }
        out.push(rules::wait_cycle::on_cycle(st, &c, false));
    }

    // Chains still open but already broken (e.g. a CQE_SKIP_SUCCESS member never posts).
    for c in st.chains.values().filter(|c| c.breaker.is_some()) {
        out.extend(rules::link_chain_broken::on_chain(st, c));
    }

    for ring in st.rings.values() {
        out.extend(overflow_hits(st, cfg, ring, now));
    }
    out.extend(rules::io_uring_unavailable::current(st));
    out.extend(rules::unsatisfiable_wait::pending(st, now));
    out.extend(rules::request_stalled::current(st, cfg, now, &explained));
    out.extend(rules::iowq_punt_storm::current(st, cfg, now));
    for ring in st.rings.values().filter(|r| !r.drains.is_empty()) {
        out.extend(rules::drain_blocked::pending(st, cfg, ring, now));
    }
    out.extend(rules::sqpoll_proliferation::current(st, now));
    out.extend(rules::task_work_stalled::pending(st, cfg, now));
    out
}
