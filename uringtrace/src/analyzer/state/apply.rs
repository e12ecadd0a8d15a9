//! The entry point: one event applied to the state, dispatched by kind; and the
//! lookups every handler uses.

use super::*;

impl State {
    /// The comm of a ring's owner, live or as it was when the ring retired.
    pub fn ring_comm(&self, ring: &Ring) -> String {
        self.comms
            .get(&ring.tgid)
            .map_or_else(|| ring.owner_comm.clone(), |c| c.1.clone())
    }

    pub fn comm_of(&self, tid: u32) -> String {
        self.comms
            .get(&tid)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    pub(super) fn ring(&mut self, ctx: u64, tgid: u32) -> &mut Ring {
        ring_entry(&mut self.rings, ctx, tgid)
    }

    pub(super) fn thread(&mut self, tid: u32, tgid: u32) -> &mut Thread {
        thread_entry(&mut self.threads, tid, tgid)
    }

    /// Ring of `tgid` whose fd is `fd`, when the ring was created during the trace.
    /// The newest ring with that fd: fds are reused after a ring is closed, and no
    /// event says when a ring goes away.
    pub fn ring_by_fd(&self, tgid: u32, fd: u32) -> Option<u64> {
        self.rings
            .values()
            .filter(|r| r.tgid == tgid && r.fd == Some(fd as i32))
            .max_by_key(|r| r.created_ns)
            .map(|r| r.ctx)
    }

    /// Keeps `comms` up to date with the event's (tid, tgid, comm).
    pub(super) fn note_comm(&mut self, ev: &RawEvent) {
        let key = (ev.pid, ev.tgid, ev.comm);
        if self.last_comm == Some(key) {
            return;
        }
        // Allocated only when it changed.
        let comm = comm_text(&ev.comm);
        match self.comms.get(&ev.pid) {
            Some((t, c)) if *t == ev.tgid && *c == comm => {}
            _ => {
                self.comms.insert(ev.pid, (ev.tgid, comm.into_owned()));
            }
        }
        self.last_comm = Some(key);
    }

    pub fn apply(&mut self, ev: &RawEvent) {
        if !self.forget.is_empty() {
            self.forget_processes();
        }
        self.events += 1;
        self.first_ns.get_or_insert(ev.ts_ns);
        self.last_ns = self.last_ns.max(ev.ts_ns);
        // Events injected by userspace (ring_state, fd_object, process_exit, ...) carry
        // no comm: they must not blank the one the kernel's events gave.
        if ev.pid != 0 && ev.comm[0] != 0 {
            self.note_comm(ev);
        }
        let Some(kind) = EventKind::from_u16(ev.kind) else {
            return;
        };
        // Each handler reads its kind's fields through its `view` (`EventView::read`:
        // the kind is known here).
        use EventKind::*;
        match kind {
            Create => {
                self.setup_failures.ring_created(ev.tgid);
                self.on_create(ev);
                self.note_sqpoll_ring(ev);
            }
            Submit => self.on_submit(ev),
            Link => self.on_link(ev),
            FailLink => self.on_fail_link(ev),
            Complete => {
                if !self.task_work.is_empty() {
                    self.task_work_completion(ev);
                }
                self.on_complete(ev)
            }
            CqeOverflow => self.on_overflow(ev),
            ReqFailed => self.on_req_failed(ev),
            FileGet => {
                if let Some(r) = self
                    .rings
                    .get_mut(&ev.ctx)
                    .and_then(|r| r.inflight.get_mut(&ev.req))
                {
                    r.issued = true;
                    r.fd = Some(view::FileGet::read(ev).fd);
                }
            }
            QueueAsyncWork => {
                self.procs.entry(ev.tgid).or_default().punts.add(ev.ts_ns);
                let ring = self.ring(ev.ctx, ev.tgid);
                ring.punted += 1;
                let mut key = (ev.tgid, ev.opcode, -1);
                if let Some(r) = ring.inflight.get_mut(&ev.req) {
                    r.punted = true;
                    key.2 = r.fd.unwrap_or(-1);
                }
                *self.punts.entry(key).or_default() += 1;
            }
            PollArm => {
                if let Some(r) = self
                    .rings
                    .get_mut(&ev.ctx)
                    .and_then(|r| r.inflight.get_mut(&ev.req))
                {
                    r.poll_armed = true;
                    r.waited_on_poll = true;
                }
            }
            TaskAdd | PollWake => {
                if kind == TaskAdd {
                    self.on_task_add(ev);
                }
                if let Some(r) = self
                    .rings
                    .get_mut(&ev.ctx)
                    .and_then(|r| r.inflight.get_mut(&ev.req))
                {
                    r.poll_armed = false;
                }
            }
            CqringWait => self.on_cqring_wait(ev),
            EnterEnter => {
                if !self.task_work.is_empty() {
                    self.task_work_owner_entered(ev.pid, ev.ts_ns);
                }
                self.on_enter(ev)
            }
            EnterExit => self.on_enter_exit(ev),
            SchedSwitch => self.on_switch(ev),
            SchedWaking => {
                let t = self.thread(view::SchedWaking::read(ev).woken, 0);
                if t.state != "running" {
                    t.state = "woken";
                    t.state_since_ns = ev.ts_ns;
                }
                t.awake_since_ns.get_or_insert(ev.ts_ns);
            }
            TaskNewtask => {
                let t = self.thread(view::TaskNewtask::read(ev).new_tid, ev.tgid);
                t.created_ns = Some(ev.ts_ns);
            }
            TaskRename => self.on_rename(ev),
            RingState => self.on_ring_state(ev),
            AggOps | AggLatency => crate::analyzer::aggregate::apply(self, ev),
            Register => {
                if view::Register::read(ev).opcode == REGISTER_IOWQ_MAX_WORKERS && ev.res >= 0 {
                    self.procs
                        .entry(ev.tgid)
                        .or_default()
                        .max_workers_registered = true;
                }
                self.on_register_tables(ev);
            }
            FdObject => {
                let o = view::FdObject::read(ev);
                let key = (ev.tgid, o.fd);
                // A new object on this fd: its name (if any) follows in fd_name events.
                self.fd_names.forget(ev.tgid, o.fd);
                match o.fd_type() {
                    None | Some(FdType::Closed) => {
                        self.fds.remove(&key);
                    }
                    Some(t) => {
                        self.fds.insert(key, (t, o.inode));
                    }
                }
            }
            FdName => self.on_fd_name(ev),
            SetupFailed => self.on_setup_failed(ev),
            ProcessExit => self.on_process_exit(ev.tgid, ev.ts_ns),
            RingClosed => {
                if let Some(ctx) = self.ring_by_fd(ev.tgid, view::RingClosed::read(ev).fd) {
                    self.retire_ring(ctx, ev.ts_ns);
                }
            }
            ProcessFork => self.on_fork(ev),
            Defer => self.on_defer(ev),
            ShortWrite => self.on_short_write(ev),
            LocalWorkRun => {
                if !self.task_work.is_empty() {
                    self.on_local_work_run(ev);
                }
            }
            TaskWorkRun => {
                if !self.task_work.is_empty() {
                    self.on_task_work_run(ev);
                }
            }
            TaskState => {
                if !self.task_work.is_empty() {
                    self.on_task_state(ev);
                }
            }
        }
    }
}

pub(super) fn ring_entry(rings: &mut Map<u64, Ring>, ctx: u64, tgid: u32) -> &mut Ring {
    rings.entry(ctx).or_insert_with(|| Ring {
        ctx,
        tgid,
        ..Ring::default()
    })
}

pub(super) fn thread_entry(threads: &mut Map<u32, Thread>, tid: u32, tgid: u32) -> &mut Thread {
    threads.entry(tid).or_insert_with(|| Thread {
        tid,
        tgid,
        state: "unknown",
        ..Thread::default()
    })
}
