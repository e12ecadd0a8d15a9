//! Detectors: observations and state in, findings out. Pure functions of the model.

use std::collections::HashSet;

use uringtrace_common::Role;

use super::finding::{Evidence, Finding, RequestEvidence};
use super::rules::rule;
use super::state::{Chain, Observation, Request, RingSamples, State};
use super::AnalyzerConfig;
use crate::names::{opcode_name, result_name, sqe_flags};

fn hex(v: u64) -> String {
    if v == 0 {
        String::new()
    } else {
        format!("{v:#x}")
    }
}

fn ms(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

fn finding(
    st: &State,
    slug: &str,
    pid: u32,
    ctx: u64,
    message: String,
    fix: &str,
    evidence: Evidence,
) -> Finding {
    let r = rule(slug).unwrap_or_else(|| panic!("rule {slug} missing from the catalog"));
    let comm = st
        .comms
        .get(&pid)
        .map(|(_, c)| c.clone())
        .unwrap_or_default();
    Finding {
        rule: slug.into(),
        severity: r.severity,
        pid,
        comm,
        ring: hex(ctx),
        message,
        fix: fix.into(),
        evidence,
        inconclusive: false,
    }
}

fn req_ev(
    user_data: u64,
    opcode: u8,
    res: Option<i32>,
    role: &str,
    sub: Option<u64>,
    done: Option<u64>,
) -> RequestEvidence {
    RequestEvidence {
        user_data,
        opcode: opcode_name(opcode).into_owned(),
        result: res.map(result_name),
        role: role.into(),
        submitted_ns: sub,
        completed_ns: done,
    }
}

fn facts(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Owner pid of a ring, for findings about it.
fn owner(st: &State, ctx: u64, fallback: u32) -> u32 {
    st.rings.get(&ctx).map_or(fallback, |r| r.tgid)
}

/// Converts an observation into findings (called as observations happen).
pub fn from_observation(st: &State, cfg: &AnalyzerConfig, o: &Observation) -> Vec<Finding> {
    match o {
        Observation::SlowCompletion {
            req,
            chain,
            start_ns,
            done_ns,
            res,
        } => slow_completion(st, cfg, req, chain.as_ref(), *start_ns, *done_ns, *res),
        Observation::InvalidSqe(ev) => {
            let msg = format!(
                "{} (user_data {:#x}) rejected at submit with {}",
                opcode_name(ev.opcode),
                ev.user_data,
                result_name(ev.res)
            );
            let ev_ = Evidence {
                requests: vec![req_ev(
                    ev.user_data,
                    ev.opcode,
                    Some(ev.res),
                    "rejected",
                    Some(ev.ts_ns),
                    None,
                )],
                facts: facts(&[
                    ("error", result_name(ev.res)),
                    ("sqe_flags", sqe_flags(ev.cflags.into())),
                    ("opcode_number", ev.opcode.to_string()),
                ]),
                first_ns: ev.ts_ns,
                last_ns: ev.ts_ns,
            };
            vec![finding(
                st,
                "invalid-sqe",
                ev.tgid,
                ev.ctx,
                msg,
                "check the opcode is supported by this kernel (IORING_REGISTER_PROBE), and the SQE's flags and fields",
                ev_,
            )]
        }
        Observation::ChainDone(c) => chain_findings(st, c),
        Observation::RingRetired(ring) => vec![overflow_finding(st, ring)],
        Observation::MissedWakeup {
            tgid,
            fd,
            samples,
            thread_state,
        } => missed_wakeup_finding(st, *tgid, *fd, samples, thread_state)
            .into_iter()
            .collect(),
        Observation::IdleSpin { tgid, fd, samples } => idle_spin_finding(st, *tgid, *fd, samples)
            .into_iter()
            .collect(),
        Observation::MultishotEnded {
            ev,
            intermediate,
            opcode,
        } => {
            let cause = match ev.res {
                -105 => "the provided-buffer ring ran empty (-ENOBUFS)".to_string(),
                -125 => "it was cancelled (-ECANCELED)".to_string(),
                0 => "end of stream (result 0: peer closed or EOF)".to_string(),
                r if r < 0 => format!("error {}", result_name(r)),
                r => format!(
                    "a final result {r} without IORING_CQE_F_MORE (CQ full, or a length limit)"
                ),
            };
            let msg = format!(
                "multishot {} (user_data {:#x}) ended after {} CQEs: {cause}",
                opcode_name(*opcode),
                ev.user_data,
                intermediate + 1
            );
            let e = Evidence {
                requests: vec![req_ev(
                    ev.user_data,
                    *opcode,
                    Some(ev.res),
                    "terminated",
                    None,
                    Some(ev.ts_ns),
                )],
                facts: facts(&[
                    ("cqes", (intermediate + 1).to_string()),
                    ("final_result", result_name(ev.res)),
                ]),
                first_ns: ev.ts_ns,
                last_ns: ev.ts_ns,
            };
            vec![finding(
                st,
                "multishot-terminated",
                owner(st, ev.ctx, ev.tgid),
                ev.ctx,
                msg,
                "re-arm the multishot request when a CQE arrives without IORING_CQE_F_MORE; keep buffers replenished",
                e,
            )]
        }
        Observation::NoBufs { ev, opcode } => {
            let msg = format!(
                "{} (user_data {:#x}) got -ENOBUFS: its provided-buffer group had no buffer left",
                opcode_name(*opcode),
                ev.user_data
            );
            let e = Evidence {
                requests: vec![req_ev(
                    ev.user_data,
                    *opcode,
                    Some(ev.res),
                    "no buffer",
                    None,
                    Some(ev.ts_ns),
                )],
                facts: vec![],
                first_ns: ev.ts_ns,
                last_ns: ev.ts_ns,
            };
            vec![finding(
                st,
                "buffer-exhausted",
                owner(st, ev.ctx, ev.tgid),
                ev.ctx,
                msg,
                "provide more buffers, or return consumed buffers to the ring (io_uring_buf_ring_add/advance) sooner",
                e,
            )]
        }
        Observation::UnsatisfiableWait {
            ev,
            in_flight,
            ready,
        } => {
            let msg = format!(
                "waits for {} completions on a ring with {} requests in flight and at most {} unreaped CQEs",
                ev.args[0], in_flight, ready
            );
            let e = Evidence {
                requests: vec![],
                facts: facts(&[
                    ("min_events", ev.args[0].to_string()),
                    ("in_flight", in_flight.to_string()),
                    ("unreaped_cqes_at_most", ready.to_string()),
                    ("tid", ev.pid.to_string()),
                ]),
                first_ns: ev.ts_ns,
                last_ns: ev.ts_ns,
            };
            vec![finding(
                st,
                "unsatisfiable-wait",
                ev.tgid,
                ev.ctx,
                msg,
                "wait for at most the number of requests in flight (io_uring_submit_and_wait(n) with n ≤ in flight), or use a timeout",
                e,
            )]
        }
        Observation::DroppedCqe(ev) => {
            let msg = format!(
                "a CQE (user_data {:#x}, res {}) was lost: the overflow entry could not be allocated",
                ev.user_data,
                result_name(ev.res)
            );
            let e = Evidence {
                requests: vec![req_ev(
                    ev.user_data,
                    0,
                    Some(ev.res),
                    "dropped",
                    None,
                    Some(ev.ts_ns),
                )],
                facts: vec![],
                first_ns: ev.ts_ns,
                last_ns: ev.ts_ns,
            };
            vec![finding(
                st,
                "cqe-dropped",
                owner(st, ev.ctx, ev.tgid),
                ev.ctx,
                msg,
                "reap completions promptly and size the CQ (IORING_SETUP_CQSIZE) for the peak in flight; the next wait returns -EBADR",
                e,
            )]
        }
    }
}

fn member_role(c: &Chain, i: usize, breaker: Option<usize>) -> &'static str {
    match breaker {
        Some(b) if b == i => "breaker",
        Some(b) if i > b && c.members[i].res == Some(-125) => "cancelled",
        _ => "ok",
    }
}

fn chain_evidence(c: &Chain, breaker: Option<usize>) -> Evidence {
    Evidence {
        requests: c
            .members
            .iter()
            .enumerate()
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
            ("members".into(), c.members.len().to_string()),
            (
                "links".into(),
                if c.members.iter().any(|m| m.hard) {
                    "hard".into()
                } else {
                    "soft".into()
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

/// link-chain-broken and sqpoll-chain-split for a finished chain.
pub fn chain_findings(st: &State, c: &Chain) -> Vec<Finding> {
    let mut out = Vec::new();
    // The breaker: named by fail_link, or else the first member that failed while its
    // followers came back -ECANCELED (CQE_SKIP_SUCCESS can hide fail_link's target).
    let breaker = c.breaker.or_else(|| {
        let first_bad = c
            .members
            .iter()
            .position(|m| m.res.is_some_and(|r| r < 0 && r != -125))?;
        c.members[first_bad + 1..]
            .iter()
            .any(|m| m.res == Some(-125))
            .then_some(first_bad)
    });
    if let Some(b) = breaker {
        let cancelled: Vec<_> = c.members[b + 1..]
            .iter()
            .filter(|m| m.res == Some(-125))
            .collect();
        let bm = &c.members[b];
        if !cancelled.is_empty() && !bm.hard {
            let cause = match bm.res {
                Some(r) if r < 0 => format!("failed with {}", result_name(r)),
                Some(r) => format!("completed short ({r} bytes; a short read/write on a pipe or socket fails the chain)"),
                None => "failed".into(),
            };
            let msg = format!(
                "chain member {} of {} ({} user_data {:#x}) {cause}; {} follower(s) cancelled",
                b + 1,
                c.members.len(),
                opcode_name(bm.opcode),
                bm.user_data,
                cancelled.len()
            );
            out.push(finding(
                st,
                "link-chain-broken",
                c.tgid,
                c.ctx,
                msg,
                "handle the breaker's error; use IOSQE_IO_HARDLINK if followers must run anyway; for short reads, loop or use MSG_WAITALL",
                chain_evidence(c, Some(b)),
            ));
        }
    }
    let sqpoll = st.rings.get(&c.ctx).is_some_and(|r| r.has_sqpoll());
    if c.cut_at_batch_end && sqpoll {
        let msg = format!(
            "a link chain was cut after {} members: the SQEs linked after it were submitted in a later \
             batch of the SQPOLL thread and ran as a separate chain",
            c.members.len()
        );
        let mut e = chain_evidence(c, breaker);
        e.facts
            .push(("cut_after".into(), c.members.len().to_string()));
        out.push(finding(
            st,
            "sqpoll-chain-split",
            c.tgid,
            c.ctx,
            msg,
            "keep chains to 8 SQEs or fewer on rings that share an SQPOLL thread (IORING_SETUP_ATTACH_WQ), or give the ring its own SQPOLL thread",
            e,
        ));
    }
    out
}

/// A request that completed late: a wait cycle released from outside, or a stall.
fn slow_completion(
    st: &State,
    cfg: &AnalyzerConfig,
    r: &Request,
    chain: Option<&Chain>,
    start: u64,
    done: u64,
    res: i32,
) -> Vec<Finding> {
    let waited = done.saturating_sub(start);
    if let Some(c) = chain {
        let i = c.index_of(r.req).unwrap_or(0);
        let feeder = c.members[i + 1..].iter().find(|m| {
            (is_read_like(r.opcode) && r.waited_on_poll && is_write_like(m.opcode))
                || (r.opcode == 51 && m.opcode == 52)
        });
        if let Some(f) = feeder {
            let msg = format!(
                "{} (user_data {:#x}) waited {} for what only {} user_data {:#x}, linked after it, would provide: a link runs only after its predecessor completes; something outside the chain released it",
                opcode_name(r.opcode),
                r.user_data,
                ms(waited),
                opcode_name(f.opcode),
                f.user_data
            );
            let mut e = chain_evidence(c, None);
            for (j, q) in e.requests.iter_mut().enumerate() {
                if j == i {
                    q.role = "waiting".into();
                    q.result = Some(result_name(res));
                } else if c.members[j].req == f.req {
                    q.role = "never issued".into();
                }
            }
            e.facts.push(("waited".into(), ms(waited)));
            e.first_ns = start;
            e.last_ns = done;
            return vec![finding(
                st,
                "wait-cycle",
                r.tgid,
                c.ctx,
                msg,
                "do not link a request before the request it waits for; submit the producer first or unlinked",
                e,
            )];
        }
    }
    if waited < cfg.stall_ns || r.waited_on_poll || r.multishot_cqes > 0 {
        return Vec::new();
    }
    let msg = format!(
        "{} (user_data {:#x}) took {} to complete (threshold {}){}",
        opcode_name(r.opcode),
        r.user_data,
        ms(waited),
        ms(cfg.stall_ns),
        if r.punted { ", blocked in io-wq" } else { "" }
    );
    let e = Evidence {
        requests: vec![req_ev(
            r.user_data,
            r.opcode,
            Some(res),
            if r.punted { "in io-wq" } else { "slow" },
            Some(r.submit_ns),
            Some(done),
        )],
        facts: facts(&[
            ("took", ms(waited)),
            ("threshold", ms(cfg.stall_ns)),
            ("fd", r.fd.map_or("?".into(), |f| f.to_string())),
        ]),
        first_ns: start,
        last_ns: done,
    };
    vec![finding(
        st,
        "request-stalled",
        r.tgid,
        r.ctx,
        msg,
        "find what the request blocks on (file, lock, device); bound waits with IORING_OP_LINK_TIMEOUT",
        e,
    )]
}

fn is_read_like(op: u8) -> bool {
    matches!(op, 1 | 4 | 10 | 22 | 27 | 49 | 60) // READV READ_FIXED RECVMSG READ RECV READ_MULTISHOT READV_FIXED
}

fn is_write_like(op: u8) -> bool {
    matches!(op, 2 | 5 | 9 | 23 | 26 | 30 | 33 | 47 | 48 | 61) // WRITEV WRITE_FIXED SENDMSG WRITE SEND SPLICE TEE SEND_ZC SENDMSG_ZC WRITEV_FIXED
}

/// Chains that can never finish: a member waits for something only a later member
/// of the same chain would provide. Returns findings and the requests they explain.
fn wait_cycles(
    st: &State,
    cfg: &AnalyzerConfig,
    now: u64,
    explained: &mut HashSet<(u64, u64)>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in st.chains.values() {
        let Some(ring) = st.rings.get(&c.ctx) else {
            continue;
        };
        let Some(wi) = c.members.iter().position(|m| m.res.is_none()) else {
            continue;
        };
        let w = &c.members[wi];
        let Some(wr) = ring.inflight.get(&w.req) else {
            continue;
        };
        if now.saturating_sub(w.submit_ns) < cfg.cycle_min_ns {
            continue;
        }
        let later = &c.members[wi + 1..];
        let (feeder, why) = if is_read_like(w.opcode) && (wr.poll_armed || wr.issued) {
            match later.iter().find(|m| is_write_like(m.opcode)) {
                Some(f) => (
                    f,
                    "waits for data that only the linked write after it would provide",
                ),
                None => continue,
            }
        } else if w.opcode == 51 {
            match later.iter().find(|m| m.opcode == 52) {
                Some(f) => (
                    f,
                    "waits on a futex that only the FUTEX_WAKE linked after it would wake",
                ),
                None => continue,
            }
        } else {
            continue;
        };
        let fr = ring.inflight.get(&feeder.req);
        let fd_of = |r: Option<&Request>| {
            r.and_then(|r| r.fd)
                .map_or("?".to_string(), |f| f.to_string())
        };
        let msg = format!(
            "{} (user_data {:#x}, fd {}) {why} ({} user_data {:#x}, fd {}): a link runs only after its \
             predecessor completes, so neither can ever complete",
            opcode_name(w.opcode),
            w.user_data,
            fd_of(Some(wr)),
            opcode_name(feeder.opcode),
            feeder.user_data,
            fd_of(fr),
        );
        let mut e = chain_evidence(c, None);
        for (i, r) in e.requests.iter_mut().enumerate() {
            r.role = if i == wi {
                "waiting".into()
            } else if c.members[i].req == feeder.req {
                "never issued".into()
            } else {
                r.role.clone()
            };
        }
        e.facts
            .push(("waiting_for".into(), ms(now.saturating_sub(w.submit_ns))));
        e.facts.push((
            "feeder_issued".into(),
            fr.is_some_and(|r| r.issued).to_string(),
        ));
        e.last_ns = now;
        for m in &c.members {
            explained.insert((c.ctx, m.req));
        }
        out.push(finding(
            st,
            "wait-cycle",
            c.tgid,
            c.ctx,
            msg,
            "do not link a request before the request it waits for; submit the producer first or unlinked",
            e,
        ));
    }
    out
}

/// Findings about the state as of `now` (end of trace, or a live snapshot).
pub fn current(st: &State, cfg: &AnalyzerConfig, now: u64) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut explained: HashSet<(u64, u64)> = HashSet::new();
    out.extend(wait_cycles(st, cfg, now, &mut explained));

    // Chains still open but already broken (e.g. a CQE_SKIP_SUCCESS member never posts).
    for c in st.chains.values().filter(|c| c.breaker.is_some()) {
        out.extend(
            chain_findings(st, c)
                .into_iter()
                .filter(|f| f.rule == "link-chain-broken"),
        );
    }

    for ring in st.rings.values().filter(|r| r.overflowed > 0) {
        out.push(overflow_finding(st, ring));
    }

    // Rings whose SQEs nobody picks up: their in-flight requests are explained.
    let stuck_rings: HashSet<(u32, u32)> = st
        .samples
        .iter()
        .filter(|(_, s)| s.missed_reported && s.pending_since_ns.is_some())
        .map(|(k, _)| *k)
        .collect();

    // Requests in flight too long with nothing explaining it.
    for ring in st.rings.values() {
        if stuck_rings
            .iter()
            .any(|&(t, fd)| t == ring.tgid && ring.fd == Some(fd as i32))
        {
            continue;
        }
        let mut stalled: Vec<&Request> = ring
            .inflight
            .values()
            .filter(|r| now.saturating_sub(r.submit_ns) >= cfg.stall_ns)
            .filter(|r| {
                !r.poll_armed && r.multishot_cqes == 0 && !explained.contains(&(ring.ctx, r.req))
            })
            .filter(|r| !queued_behind(st, r))
            .collect();
        if stalled.is_empty() {
            continue;
        }
        stalled.sort_by_key(|r| r.submit_ns);
        let oldest = stalled[0];
        let msg = format!(
            "{} request(s) in flight for over {}; oldest: {} (user_data {:#x}) for {}{}",
            stalled.len(),
            ms(cfg.stall_ns),
            opcode_name(oldest.opcode),
            oldest.user_data,
            ms(now.saturating_sub(oldest.submit_ns)),
            if oldest.punted {
                ", running in io-wq"
            } else {
                ""
            }
        );
        let e = Evidence {
            requests: stalled
                .iter()
                .take(8)
                .map(|r| {
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
            facts: facts(&[
                ("threshold", ms(cfg.stall_ns)),
                ("stalled", stalled.len().to_string()),
            ]),
            first_ns: oldest.submit_ns,
            last_ns: now,
        };
        out.push(finding(
            st,
            "request-stalled",
            ring.tgid,
            ring.ctx,
            msg,
            "find what the request blocks on (file, lock, device); bound waits with IORING_OP_LINK_TIMEOUT",
            e,
        ));
    }

    // io-wq: many workers or many punts per process.
    let mut tgids: Vec<u32> = st.iowq_workers.keys().copied().collect();
    tgids.extend(st.punts.keys().map(|k| k.0));
    tgids.sort_unstable();
    tgids.dedup();
    for tgid in tgids {
        let workers = st.iowq_workers.get(&tgid).copied().unwrap_or(0);
        let mut by: Vec<((u8, i32), u64)> = st
            .punts
            .iter()
            .filter(|(k, _)| k.0 == tgid)
            .map(|(k, v)| ((k.1, k.2), *v))
            .collect();
        let punts: u64 = by.iter().map(|x| x.1).sum();
        if workers < cfg.iowq_workers && punts < cfg.iowq_punts {
            continue;
        }
        by.sort_by_key(|x| std::cmp::Reverse(x.1));
        let top = by
            .first()
            .map(|((op, fd), n)| format!("{n} × {} on fd {fd}", opcode_name(*op)))
            .unwrap_or_default();
        let msg = format!(
            "{workers} io-wq workers created and {punts} requests punted to io-wq; most: {top}"
        );
        let mut f = facts(&[
            ("workers_created", workers.to_string()),
            ("punts", punts.to_string()),
        ]);
        for ((op, fd), n) in by.iter().take(3) {
            f.push((format!("punts {} fd {fd}", opcode_name(*op)), n.to_string()));
        }
        let ctx = st
            .rings
            .values()
            .find(|r| r.tgid == tgid && r.punted > 0)
            .map_or(0, |r| r.ctx);
        out.push(finding(
            st,
            "iowq-punt-storm",
            tgid,
            ctx,
            msg,
            "cap workers with IORING_REGISTER_IOWQ_MAX_WORKERS; avoid blocking ops (or make the file non-blocking/pollable); check IOSQE_ASYNC use",
            Evidence { requests: vec![], facts: f, first_ns: st.first_ns.unwrap_or(0), last_ns: now },
        ));
    }
    let _ = Role::Submitter;
    out
}

/// SQPOLL: SQEs published, thread asleep, nobody woke it.
fn missed_wakeup_finding(
    st: &State,
    tgid: u32,
    fd: u32,
    s: &RingSamples,
    thread_state: &str,
) -> Option<Finding> {
    let (since, last) = (s.pending_since_ns?, s.last.as_ref()?);
    let sq_tid = last.aux as u32;
    let msg = format!(
        "{} SQEs have waited {} in the SQ ring (fd {fd}) while its SQPOLL thread {sq_tid} sleeps; \
         no io_uring_enter(IORING_ENTER_SQ_WAKEUP) followed",
        s.pending_sqes,
        ms(last.ts_ns.saturating_sub(since))
    );
    let e = Evidence {
        requests: vec![],
        facts: facts(&[
            ("sq_head", last.args[1].to_string()),
            ("sq_tail", last.args[2].to_string()),
            ("pending_sqes", s.pending_sqes.to_string()),
            ("sqpoll_thread", sq_tid.to_string()),
            ("thread_state", thread_state.to_string()),
            ("ring_fd", fd.to_string()),
        ]),
        first_ns: since,
        last_ns: last.ts_ns,
    };
    Some(finding(
        st,
        "sqpoll-missed-wakeup",
        tgid,
        st.ring_by_fd(tgid, fd).unwrap_or(0),
        msg,
        "after publishing the SQ tail, check IORING_SQ_NEED_WAKEUP in sq_flags and call io_uring_enter with IORING_ENTER_SQ_WAKEUP (liburing's io_uring_submit does this)",
        e,
    ))
}

/// SQPOLL idle spin, from fdinfo's SqTotalTime/SqWorkTime (6.9+).
fn idle_spin_finding(st: &State, tgid: u32, fd: u32, s: &RingSamples) -> Option<Finding> {
    let (a, b) = (s.first.as_ref()?, s.last.as_ref()?);
    let wall_us = b.ts_ns.saturating_sub(a.ts_ns) / 1000;
    let total_us = b.aux2.saturating_sub(a.aux2);
    let work_us = b.user_data.saturating_sub(a.user_data);
    let msg = format!(
        "SQPOLL thread {} ran {:.0}% of {} with no work ({} µs of {} µs busy)",
        b.aux,
        100.0 * total_us as f64 / wall_us.max(1) as f64,
        ms(wall_us * 1000),
        work_us,
        total_us
    );
    let e = Evidence {
        requests: vec![],
        facts: facts(&[
            ("sq_total_time_us", total_us.to_string()),
            ("sq_work_time_us", work_us.to_string()),
            ("window", ms(wall_us * 1000)),
            ("ring_fd", fd.to_string()),
        ]),
        first_ns: a.ts_ns,
        last_ns: b.ts_ns,
    };
    Some(finding(
        st,
        "sqpoll-idle-spin",
        tgid,
        st.ring_by_fd(tgid, fd).unwrap_or(0),
        msg,
        "lower sq_thread_idle (io_uring_params.sq_thread_idle, in ms) so the thread sleeps when idle, or drop SQPOLL for bursty work",
        e,
    ))
}

/// cq-overflow for one ring.
fn overflow_finding(st: &State, ring: &super::state::Ring) -> Finding {
    let first = ring.first_overflow_ns.unwrap_or(0);
    let msg = format!(
        "{} CQEs did not fit in the CQ ring{} and went to the overflow list",
        ring.overflowed,
        ring.cq_entries
            .map(|n| format!(" ({n} entries)"))
            .unwrap_or_default()
    );
    let mut f = facts(&[
        ("overflowed", ring.overflowed.to_string()),
        ("completed", ring.completed.to_string()),
        (
            "overflow_span",
            ms(ring.last_overflow_ns.saturating_sub(first)),
        ),
    ]);
    if let Some(n) = ring.cq_entries {
        f.push(("cq_entries".into(), n.to_string()));
    }
    let uds: Vec<String> = ring
        .overflow_user_data
        .iter()
        .map(|u| format!("{u:#x}"))
        .collect();
    f.push(("first_overflowed_user_data".into(), uds.join(",")));
    finding(
        st,
        "cq-overflow",
        ring.tgid,
        ring.ctx,
        msg,
        "reap CQEs before submitting more than the CQ can hold, or enlarge it with IORING_SETUP_CQSIZE",
        Evidence { requests: vec![], facts: f, first_ns: first, last_ns: ring.last_overflow_ns },
    )
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
