//! Who runs a ring's completions, and how many pollers a process keeps:
//! - task work queued to the owner of a DEFER_TASKRUN or COOP_TASKRUN ring, and when
//!   the owner ran it (`task-work-stalled`);
//! - SQPOLL threads alive at once, per process and on the host, and the CPU they ran
//!   (`sqpoll-proliferation`).

use super::*;

/// IORING_SETUP_COOP_TASKRUN (5.19): task work is queued without interrupting the
/// owner (TWA_SIGNAL_NO_IPI); it runs when the owner next enters the kernel by itself.
pub const SETUP_COOP_TASKRUN: u32 = 1 << 8;
/// IORING_SETUP_DEFER_TASKRUN (6.1): task work goes to the ring's own list and runs
/// only when the owner calls io_uring_enter(GETEVENTS) (or waits on the ring).
pub const SETUP_DEFER_TASKRUN: u32 = 1 << 13;
/// IORING_SETUP_ATTACH_WQ: the ring shares the SQPOLL thread (and io-wq) of another.
pub const SETUP_ATTACH_WQ: u32 = 1 << 5;

/// Completions queued to a ring owner's task work (io_uring_task_add, from the task
/// that woke the request's poll), not run yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskWorkWait {
    pub ctx: u64,
    pub tgid: u32,
    /// The thread that must run the work: the ring's submitter (DEFER_TASKRUN rings
    /// have one, SINGLE_ISSUER), or the request's submitter (COOP_TASKRUN).
    pub owner: u32,
    /// DEFER_TASKRUN (else COOP_TASKRUN).
    pub deferred: bool,
    pub since_ns: u64,
    /// Requests queued in this wait.
    pub queued: u64,
    /// The owner was inside io_uring_enter(GETEVENTS) on this ring when the work was
    /// queued (the work then runs at once), or on another ring (where it does not: a
    /// ring's deferred work runs only in waits on that ring).
    pub owner_waiting: bool,
    pub owner_waiting_elsewhere: bool,
    /// When the owner next entered io_uring_enter after the work was queued.
    pub owner_entered_ns: Option<u64>,
    /// The owner's state as /proc showed it during the wait (a `task_state` event),
    /// and when.
    pub owner_seen: Option<(view::TaskState, u64)>,
    /// (user_data, opcode) of the queued requests (at most [`TASK_WORK_REQS`]): their
    /// completion, posted by the owner, shows the work ran.
    pub user_data_queued: Vec<(u64, u8)>,
}

/// Requests remembered per wait (the first ones; the count goes on).
pub const TASK_WORK_REQS: usize = 64;

/// How a wait for task work ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskWorkEnd {
    /// The owner ran it (io_uring_local_work_run, io_uring_task_work_run, or the
    /// request's completion posted from the owner).
    Ran,
    /// The ring or its process went away first.
    RingGone,
}

/// SQPOLL threads alive at once on the host (all processes traced).
#[derive(Clone, Copy, Debug, Default)]
pub struct SqpollHost {
    pub live: u64,
    pub max_live: u64,
    pub max_live_ns: u64,
    /// Processes that had SQPOLL threads alive at that moment.
    pub max_processes: u64,
}

impl State {
    /// io_uring_task_add: a request's poll fired and its completion was queued to its
    /// task's task work. Tracked only on rings where that task must run it by itself.
    pub(super) fn on_task_add(&mut self, ev: &RawEvent) {
        let Some(ring) = self.rings.get(&ev.ctx) else {
            return;
        };
        let Some(flags) = ring.setup_flags else {
            return;
        };
        // An SQPOLL thread runs its task work on every loop: nothing waits for the owner.
        if ring.has_sqpoll() || flags & (SETUP_DEFER_TASKRUN | SETUP_COOP_TASKRUN) == 0 {
            return;
        }
        let deferred = flags & SETUP_DEFER_TASKRUN != 0;
        let req = ring.inflight.get(&ev.req).or_else(|| {
            ring.by_user_data
                .get(&ev.user_data)
                .and_then(|r| ring.inflight.get(r))
        });
        let owner = match (req, deferred) {
            (Some(r), _) => r.tid,
            (None, true) => match ring.first_submitter {
                Some(t) => t,
                None => return,
            },
            (None, false) => return,
        };
        let (ctx, tgid) = (ring.ctx, ring.tgid);
        let opcode = req.map_or(ev.opcode, |r| r.opcode);
        let (owner_waiting, owner_waiting_elsewhere) = match self.enters.get(&owner) {
            Some(e) if e.flags & ENTER_GETEVENTS != 0 => match e.ctx {
                Some(c) if c != ctx => (false, true),
                _ => (true, false),
            },
            _ => (false, false),
        };
        let w = self.task_work.entry((ctx, owner)).or_insert(TaskWorkWait {
            ctx,
            tgid,
            owner,
            deferred,
            since_ns: ev.ts_ns,
            queued: 0,
            owner_waiting,
            owner_waiting_elsewhere,
            owner_entered_ns: None,
            owner_seen: None,
            user_data_queued: Vec::new(),
        });
        w.queued += 1;
        if w.user_data_queued.len() < TASK_WORK_REQS {
            w.user_data_queued.push((ev.user_data, opcode));
        }
    }

    /// The owner entered io_uring_enter: noted on its waits (not the end of them: the
    /// work runs in it, as local_work_run or the completions show).
    pub(super) fn task_work_owner_entered(&mut self, tid: u32, ts: u64) {
        for w in self.task_work.values_mut().filter(|w| w.owner == tid) {
            w.owner_entered_ns.get_or_insert(ts);
        }
    }

    /// `task_state`: userspace read an owner's state from /proc while its work waited.
    pub(super) fn on_task_state(&mut self, ev: &RawEvent) {
        let s = view::TaskState::read(ev);
        for w in self.task_work.values_mut().filter(|w| w.owner == s.tid) {
            w.owner_seen.get_or_insert((s, ev.ts_ns));
        }
    }

    /// io_uring_local_work_run (DEFER_TASKRUN, 6.1+): the ring's work ran.
    pub(super) fn on_local_work_run(&mut self, ev: &RawEvent) {
        if view::WorkRun::read(ev).count == 0 {
            return;
        }
        let ctx = ev.ctx;
        self.end_task_work(|w| w.ctx == ctx, ev.ts_ns, TaskWorkEnd::Ran);
    }

    /// io_uring_task_work_run (6.0+): the current task ran its normal task work.
    pub(super) fn on_task_work_run(&mut self, ev: &RawEvent) {
        let tid = ev.pid;
        self.end_task_work(
            |w| w.owner == tid && !w.deferred,
            ev.ts_ns,
            TaskWorkEnd::Ran,
        );
    }

    /// The completion of a queued request, posted by its owner: the work ran (the
    /// only sign of it before io_uring_task_work_run, 6.0). Other completions the
    /// owner posts (inline ones at submit) say nothing about the queued work.
    pub(super) fn task_work_completion(&mut self, ev: &RawEvent) {
        let (ctx, tid, ud) = (ev.ctx, ev.pid, ev.user_data);
        if self
            .task_work
            .get(&(ctx, tid))
            .is_some_and(|w| w.user_data_queued.iter().any(|q| q.0 == ud))
        {
            self.end_task_work(
                |w| w.ctx == ctx && w.owner == tid,
                ev.ts_ns,
                TaskWorkEnd::Ran,
            );
        }
    }

    /// A ring that goes away: its queued work is cancelled, not run.
    pub(super) fn task_work_ring_gone(&mut self, ctx: u64, ts: u64) {
        if !self.task_work.is_empty() {
            self.end_task_work(|w| w.ctx == ctx, ts, TaskWorkEnd::RingGone);
        }
    }

    fn end_task_work(&mut self, which: impl Fn(&TaskWorkWait) -> bool, ts: u64, end: TaskWorkEnd) {
        let stall_ns = self.task_work_stall_ns;
        let mut ended = Vec::new();
        self.task_work.retain(|_, w| {
            if !which(w) {
                return true;
            }
            if ts.saturating_sub(w.since_ns) >= stall_ns {
                ended.push(w.clone());
            }
            false
        });
        for wait in ended {
            self.observations.push(Observation::TaskWorkStalled {
                wait,
                until_ns: ts,
                end,
            });
        }
    }

    /// A thread took an SQPOLL thread's name (`iou-sqp-<tid>`, 5.11+): one more
    /// SQPOLL thread in its process.
    pub(super) fn sqpoll_thread_started(&mut self, tgid: u32, ts: u64) {
        let p = self.procs.entry(tgid).or_default();
        if p.sqpoll_created == 0 {
            p.sqpoll_first_ns = ts;
        }
        p.sqpoll_created += 1;
        p.sqpoll_live += 1;
        if p.sqpoll_live > p.sqpoll_max_live {
            p.sqpoll_max_live = p.sqpoll_live;
            p.sqpoll_max_live_ns = ts;
        }
        let h = &mut self.sqpoll_host;
        h.live += 1;
        if h.live > h.max_live {
            h.max_live = h.live;
            h.max_live_ns = ts;
            h.max_processes = self.procs.values().filter(|p| p.sqpoll_live > 0).count() as u64;
        }
    }

    /// An SQPOLL thread's last switch (it exits when its last ring is freed): its
    /// CPU time stays with its process.
    pub(super) fn sqpoll_thread_exited(&mut self, tgid: u32, runtime_ns: u64, awake_ns: u64) {
        if let Some(p) = self.procs.get_mut(&tgid) {
            if p.sqpoll_live > 0 {
                p.sqpoll_live -= 1;
                self.sqpoll_host.live = self.sqpoll_host.live.saturating_sub(1);
            }
            p.sqpoll_runtime_of_gone_ns = p.sqpoll_runtime_of_gone_ns.saturating_add(runtime_ns);
            p.sqpoll_awake_of_gone_ns = p.sqpoll_awake_of_gone_ns.saturating_add(awake_ns);
        }
    }

    /// Time the SQPOLL threads of `tgid` were awake (running or runnable) until `now`,
    /// those gone included: the CPU they asked for.
    pub fn sqpoll_awake_ns(&self, tgid: u32, now: u64) -> u64 {
        let live: u64 = self
            .threads
            .values()
            .filter(|t| t.tgid == tgid && t.role == Some(Role::SqPoll))
            .map(|t| {
                t.awake_ns
                    .saturating_add(t.awake_since_ns.map_or(0, |s| now.saturating_sub(s)))
            })
            .fold(0u64, u64::saturating_add);
        live.saturating_add(
            self.procs
                .get(&tgid)
                .map_or(0, |p| p.sqpoll_awake_of_gone_ns),
        )
    }

    /// CPU time the SQPOLL threads of `tgid` ran until `now` (those gone included),
    /// from the scheduler's switches.
    pub fn sqpoll_runtime_ns(&self, tgid: u32, now: u64) -> u64 {
        let live: u64 = self
            .threads
            .values()
            .filter(|t| t.tgid == tgid && t.role == Some(Role::SqPoll))
            .map(|t| {
                t.runtime_ns
                    .saturating_add(t.run_start_ns.map_or(0, |s| now.saturating_sub(s)))
            })
            .fold(0u64, u64::saturating_add);
        live.saturating_add(
            self.procs
                .get(&tgid)
                .map_or(0, |p| p.sqpoll_runtime_of_gone_ns),
        )
    }

    /// A ring created: counted when it has SQPOLL, with whether it attached to
    /// another ring's SQ thread.
    pub(super) fn note_sqpoll_ring(&mut self, ev: &RawEvent) {
        let flags = view::Create::read(ev).flags;
        if flags & crate::names::SETUP_SQPOLL != 0 {
            let p = self.procs.entry(ev.tgid).or_default();
            p.sqpoll_rings += 1;
            p.sqpoll_rings_attached += u64::from(flags & SETUP_ATTACH_WQ != 0);
        }
    }
}
