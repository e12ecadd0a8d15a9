//! The ring screen's data (Enter on a ring): per-opcode latency, occupancy history,
//! the SQPOLL thread, recent link chains and the oldest requests in flight. Computed
//! for the open ring only, at each tick and when the ring is opened.

use crate::analyzer::report::OpLatency;
use crate::analyzer::state::{Chain, Ring, State};
use crate::names::{opcode_name, result_name};

use super::history::{History, Occupancy, RingHistory};
use super::snapshot::{flag_names, sqpoll_tid};

/// -ECANCELED: what the followers of a broken chain complete with.
const ECANCELED: i32 = -libc::ECANCELED;
/// Oldest in-flight requests listed per ring.
const OLDEST_SHOWN: usize = 32;

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
    pub ops: Vec<OpLatency>,
    /// Oldest first, at most one per tick.
    pub occupancy: Vec<Occupancy>,
    pub sqpoll: Option<SqpollView>,
    /// Open chains first, then finished ones, newest first.
    pub chains: Vec<ChainView>,
    /// Oldest first.
    pub oldest: Vec<InFlightRow>,
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
    /// What the fd refers to (a path, a socket's addresses, ...), or `fixed slot N`
    /// for a registered file; None when the trace did not name it.
    pub file: Option<String>,
    /// What it waits for, as far as the trace shows.
    pub state: &'static str,
}

/// The ring screen's data for ring `ctx` (empty when the analyzer does not know it).
pub fn ring_detail(st: &State, ctx: u64, history: &History, now: u64) -> RingDetail {
    let gone = || st.retired.iter().rev().find(|r| r.ctx == ctx);
    let Some(ring) = st.rings.get(&ctx).or_else(gone) else {
        return RingDetail {
            ctx,
            ring: format!("{ctx:#x}"),
            ..RingDetail::default()
        };
    };
    let h = history.rings.get(&ctx);
    let ops = ring
        .latency
        .iter()
        .map(|(op, hist)| OpLatency::of(*op, hist))
        .collect();
    let mut open: Vec<&Chain> = st.chains.values().filter(|c| c.ctx == ctx).collect();
    open.sort_by_key(|c| std::cmp::Reverse(c.id));
    let chains = open
        .into_iter()
        .map(|c| chain_view(c, true))
        .chain(
            ring.recent_chains
                .iter()
                .rev()
                .map(|c| chain_view(c, false)),
        )
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
            file: r.fd.and_then(|fd| {
                if r.fixed_file() {
                    Some(format!("fixed slot {fd}"))
                } else {
                    st.fd_name(r.tgid, fd).map(str::to_string)
                }
            }),
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
        comm: st
            .comms
            .get(&ring.tgid)
            .map(|c| c.1.clone())
            .unwrap_or_default(),
        fd: ring.fd,
        sq_entries: ring.sq_entries,
        cq_entries: ring.cq_entries,
        flags: flag_names(ring.setup_flags),
        submitted: ring.submitted,
        completed: ring.completed,
        errors: ring.errors,
        overflowed: ring.overflowed,
        in_flight: ring.inflight.len() as u64,
        max_in_flight: ring.max_in_flight,
        ops,
        occupancy: h
            .map(|h| h.occupancy.iter().copied().collect())
            .unwrap_or_default(),
        sqpoll: sqpoll_view(st, ring, h, now),
        chains,
        oldest,
    }
}

fn chain_view(c: &Chain, open: bool) -> ChainView {
    // fail_link names the breaker; without it (an event lost, an old kernel), the
    // member before the first cancelled one is the best guess.
    let breaker = c.breaker.or_else(|| {
        let first_cancelled = c
            .members
            .iter()
            .position(|m| m.cancelled || m.res == Some(ECANCELED))?;
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
    ChainView {
        id: c.id,
        open,
        cut_at_batch_end: c.cut_at_batch_end,
        members,
    }
}

fn sqpoll_view(st: &State, ring: &Ring, h: Option<&RingHistory>, now: u64) -> Option<SqpollView> {
    let tid = sqpoll_tid(st, ring)?;
    let t = st.threads.get(&tid);
    let ends = h.and_then(|h| h.sqpoll.ends());
    let sched_cpu = ends
        .filter(|(_, (_, b))| b.runtime_ns > 0)
        .map(|((t0, a), (t1, b))| {
            b.runtime_ns.saturating_sub(a.runtime_ns) as f64 * 100.0 / (t1 - t0) as f64
        });
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
        for_ns: t
            .filter(|_| known.is_some())
            .map(|t| now.saturating_sub(t.state_since_ns)),
        cpu_percent,
    })
}

/// How the members are linked (the last member's flag does not link anything).
pub fn chain_links(c: &ChainView) -> &'static str {
    let linking = &c.members[..c.members.len().saturating_sub(1)];
    match (
        linking.iter().all(|m| m.hard),
        linking.iter().any(|m| m.hard),
    ) {
        _ if linking.is_empty() => "single",
        (true, _) => "hard links",
        (false, true) => "soft and hard links",
        (false, false) => "soft links",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uringtrace_common::view::{Create, FdName, FdObject, Submit};
    use uringtrace_common::{EventView, FdType, RawEvent};

    /// The in-flight list shows what a request's fd refers to, or `fixed slot N`.
    #[test]
    fn in_flight_rows_name_their_file() {
        let mut st = State::default();
        let ev = |ts: u64| RawEvent {
            ts_ns: ts,
            pid: 9,
            tgid: 9,
            ctx: 0xa000,
            comm: *b"app\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ..RawEvent::default()
        };
        let create = Create {
            fd: 3,
            sq_entries: 8,
            cq_entries: 16,
            flags: 0,
            cgroup_id: 0,
        };
        st.apply(&create.into_raw(ev(1)));
        let named = RawEvent { ctx: 0, ..ev(2) };
        st.apply(&FdObject::new(7, FdType::Socket, 5).into_raw(named));
        for p in FdName::pieces(7, b"socket:10.0.0.1:443->10.0.0.2:5000") {
            st.apply(&p.into_raw(named));
        }
        for (ts, req, fd, flags) in [(3, 0x100, 7, 0), (4, 0x200, 2, 1), (5, 0x300, 8, 0)] {
            let s = Submit {
                req_flags: flags,
                fd,
                ..Submit::default()
            };
            st.apply(&s.into_raw(RawEvent {
                req,
                user_data: req,
                opcode: 2,
                ..ev(ts)
            }));
        }
        let d = ring_detail(&st, 0xa000, &History::default(), 10);
        let files: Vec<_> = d.oldest.iter().map(|r| r.file.as_deref()).collect();
        assert_eq!(
            files,
            [
                Some("socket:10.0.0.1:443->10.0.0.2:5000"),
                Some("fixed slot 2"),
                None
            ]
        );
    }
}
