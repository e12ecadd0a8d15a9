//! Rings, processes and io threads that come and go: ring creation and retirement,
//! process exit, scheduler and rename events of io threads.

use super::*;

impl State {
    /// What a file descriptor of `tgid` refers to, when known.
    pub fn fd_object(&self, tgid: u32, fd: i32) -> Option<(FdType, u64)> {
        self.fds.get(&(tgid, fd)).copied()
    }

    /// A ring that is gone: findings about its state are made now (an observation),
    /// then it leaves the state, and a summary stays for the report.
    pub fn retire_ring(&mut self, ctx: u64, ts: u64) {
        let Some(old) = self.rings.remove(&ctx) else {
            return;
        };
        self.task_work_ring_gone(ctx, ts);
        self.chains.retain(|_, c| c.ctx != ctx);
        if let Some(fd) = old.fd {
            self.samples.remove(&(old.tgid, fd as u32));
        }
        let mut summary = old.clone();
        // The comm it was created under: after an exec (which closes the ring) the
        // process has another name, and after its exit its pid may name another one.
        if summary.owner_comm.is_empty() {
            summary.owner_comm = self.comm_of(old.tgid);
        }
        // The summary keeps counts, latency and the last chains (for `top`), not
        // requests.
        summary.inflight = Map::default();
        summary.by_user_data = U64Map::default();
        if self.retired.len() == RETIRED_RINGS {
            self.retired.pop_front();
        }
        self.retired.push_back(summary);
        self.observations
            .push(Observation::RingRetired(Box::new(old), ts));
    }

    /// A process that used io_uring is gone: its rings retire now; its threads, fds
    /// and counters go at the next event, once findings about them have been made.
    pub(super) fn on_process_exit(&mut self, tgid: u32, ts: u64) {
        if self.enters_without_exit > 0 {
            let tids: Vec<u32> = self
                .enters
                .iter()
                .filter(|(_, e)| e.without_exit && e.tgid == tgid)
                .map(|(tid, _)| *tid)
                .collect();
            for tid in tids {
                self.end_enter_without_exit(tid, ts);
            }
        }
        let rings: Vec<u64> = self
            .rings
            .values()
            .filter(|r| r.tgid == tgid)
            .map(|r| r.ctx)
            .collect();
        for ctx in rings {
            self.retire_ring(ctx, ts);
        }
        self.observations
            .push(Observation::ProcessRetired { tgid, ts });
        self.forget.push(tgid);
    }

    /// A new task: a pid we still hold as a live process names another one now. The
    /// old process exited without us seeing /proc/PID vanish (it is sampled every
    /// 100 ms, and the kernel reuses pids), so it retires here: its rings, io threads
    /// and counters are not the new process's.
    pub(super) fn on_fork(&mut self, ev: &RawEvent) {
        let child = view::ProcessFork::read(ev).child;
        let known = self.procs.contains_key(&child)
            || self.rings.values().any(|r| r.tgid == child)
            || self.comms.get(&child).is_some_and(|(t, _)| *t == child);
        if known && child != ev.tgid {
            self.on_process_exit(child, ev.ts_ns);
        }
    }

    /// Drops what is left of processes that exited.
    pub(super) fn forget_processes(&mut self) {
        for tgid in std::mem::take(&mut self.forget) {
            self.forget_process(tgid);
        }
    }

    pub(super) fn forget_process(&mut self, tgid: u32) {
        self.threads.retain(|_, t| t.tgid != tgid);
        self.comms.retain(|_, (t, _)| *t != tgid);
        self.last_comm = None;
        self.enters.retain(|tid, _| self.comms.contains_key(tid));
        self.enters_without_exit = self.enters.values().filter(|e| e.without_exit).count();
        self.fds.retain(|k, _| k.0 != tgid);
        self.fd_names.forget_process(tgid);
        self.samples.retain(|k, _| k.0 != tgid);
        self.punts.retain(|k, _| k.0 != tgid);
        if let Some(p) = self.procs.remove(&tgid) {
            self.sqpoll_host.live = self.sqpoll_host.live.saturating_sub(p.sqpoll_live);
            self.max_workers_of_gone = self.max_workers_of_gone.max(p.workers_max_live);
        }
    }

    /// A ctx address is reused after a ring is freed: a create for a known ctx starts
    /// a new ring. The old one is retired first.
    pub(super) fn on_create(&mut self, ev: &RawEvent) {
        let c = view::Create::read(ev);
        if self.rings.contains_key(&ev.ctx) {
            self.retire_ring(ev.ctx, ev.ts_ns);
            self.samples.remove(&(ev.tgid, c.fd));
        }
        // The new ring's fd was free, so a ring we knew under that fd of this process
        // was closed (an exec closes every ring: io_uring fds are O_CLOEXEC). Its
        // `ring_closed` sample may come only later, or never, when the fd number was
        // reused before the sampler looked.
        if let Some(old) = self.ring_by_fd(ev.tgid, c.fd) {
            if old != ev.ctx {
                self.retire_ring(old, ev.ts_ns);
                self.samples.remove(&(ev.tgid, c.fd));
            }
        }
        let comm = comm_str(&ev.comm);
        let ring = self.ring(ev.ctx, ev.tgid);
        ring.owner_comm = comm;
        ring.tgid = ev.tgid;
        ring.created_ns = ev.ts_ns;
        ring.fd = Some(c.fd as i32);
        ring.sq_entries = Some(c.sq_entries);
        ring.cq_entries = Some(c.cq_entries);
        ring.setup_flags = Some(c.flags);
    }

    pub(super) fn on_switch(&mut self, ev: &RawEvent) {
        // Switches are streamed for io threads, but the task on the other side can be
        // any task of the host: forget those now and then (bounded memory).
        if self.threads.len() > MAX_THREADS {
            self.threads.retain(|_, t| t.role.is_some());
        }
        let view::SchedSwitch {
            prev,
            next,
            prev_state,
            ..
        } = view::SchedSwitch::read(ev);
        let role = Role::from_u8(ev.role);
        // An SQPOLL thread first met here was started before the trace (no rename).
        // Only of a process whose rings the trace shows: a switch into a traced io
        // thread also shows the task it replaced, which may be any process's poller.
        if role == Some(Role::SqPoll)
            && self
                .threads
                .get(&prev)
                .is_none_or(|t| t.role != Some(Role::SqPoll))
            && self.rings.values().any(|r| r.tgid == ev.tgid)
        {
            self.sqpoll_thread_started(ev.tgid, ev.ts_ns);
        }
        let t = self.thread(prev, ev.tgid);
        if role != Some(Role::Submitter) {
            t.role = role;
            t.tgid = ev.tgid;
            t.comm = comm_str(&ev.comm);
        }
        if let Some(start) = t.run_start_ns.take() {
            t.runtime_ns = t.runtime_ns.saturating_add(ev.ts_ns.saturating_sub(start));
        }
        if t.role == Some(Role::SqPoll) && prev_state & 0xff != 0 {
            if let Some(since) = t.awake_since_ns.take() {
                t.awake_ns = t.awake_ns.saturating_add(ev.ts_ns.saturating_sub(since));
            }
        }
        if t.role == Some(Role::SqPoll) && prev_state & EXITING_STATES != 0 {
            let (tgid, runtime, awake) = (t.tgid, t.runtime_ns, t.awake_ns);
            self.threads.remove(&prev);
            self.sqpoll_thread_exited(tgid, runtime, awake);
            let n = self.thread(next, 0);
            n.state = "running";
            n.state_since_ns = ev.ts_ns;
            n.run_start_ns = Some(ev.ts_ns);
            return;
        }
        // An io-wq worker's last switch: it exits (idle workers go after 5 s).
        if t.role == Some(Role::IoWorker) && prev_state & EXITING_STATES != 0 {
            let tgid = t.tgid;
            self.threads.remove(&prev);
            if let Some(p) = self.procs.get_mut(&tgid) {
                p.workers_live = p.workers_live.saturating_sub(1);
            }
            let n = self.thread(next, 0);
            n.state = "running";
            n.state_since_ns = ev.ts_ns;
            n.run_start_ns = Some(ev.ts_ns);
            return;
        }
        // Still runnable, not sleeping: TASK_RUNNING (0) when it yielded, and
        // TASK_REPORT_MAX (0x100, no state bit below it) when preempted (6.18).
        t.state = if prev_state & 0xff == 0 {
            "preempted"
        } else {
            t.slept_ns = Some(ev.ts_ns);
            "asleep"
        };
        t.switched = true;
        t.state_since_ns = ev.ts_ns;
        let n = self.thread(next, 0);
        n.state = "running";
        n.state_since_ns = ev.ts_ns;
        n.run_start_ns = Some(ev.ts_ns);
        n.awake_since_ns.get_or_insert(ev.ts_ns);
    }

    pub(super) fn on_rename(&mut self, ev: &RawEvent) {
        let rename = view::TaskRename::read(ev);
        let comm = rename.newcomm;
        let role = Role::from_comm(&comm);
        let tid = rename.tid_or(ev.pid);
        let t = self.thread(tid, ev.tgid);
        let was_sqpoll = t.role == Some(Role::SqPoll);
        t.tgid = ev.tgid;
        t.role = Some(role);
        // It runs as it renames itself.
        if tid == ev.pid {
            t.awake_since_ns.get_or_insert(ev.ts_ns);
            t.run_start_ns.get_or_insert(ev.ts_ns);
        }
        t.comm = comm_str(&comm);
        // A rename to the name it already has (prctl by the thread itself) is no new
        // thread.
        if role == Role::SqPoll && !was_sqpoll {
            self.sqpoll_thread_started(ev.tgid, ev.ts_ns);
        }
        if role == Role::IoWorker {
            let p = self.procs.entry(ev.tgid).or_default();
            p.workers_created += 1;
            p.workers_live += 1;
            if p.workers_live > p.workers_max_live {
                p.workers_max_live = p.workers_live;
                p.workers_max_live_ns = ev.ts_ns;
            }
        }
    }
}
