//! io_uring_enter and its waits: flush attempts, unsatisfiable waits, and the ring
//! of an enter that names it by registered index.

use super::*;

impl State {
    /// The ring of an enter with IORING_ENTER_REGISTERED_RING, from the first event of
    /// the entering task that names a ring.
    pub(super) fn learn_enter_ring(&mut self, tid: u32, ctx: u64) {
        if let Some(e) = self.enters.get_mut(&tid) {
            e.ctx.get_or_insert(ctx);
        }
        self.pending_enter_ring = self.enters.values().any(|e| e.ctx.is_none());
    }

    /// The owner entered with GETEVENTS: io_cqring_wait moves overflowed CQEs into the
    /// CQ ring as far as it has room (6.1+). Whether the list emptied shows in the
    /// next fdinfo sample (`CqOverflowList`); until then it is presumed.
    pub(super) fn overflow_flush_attempt(&mut self, ctx: u64, ts: u64) {
        if let Some(r) = self.rings.get_mut(&ctx) {
            if let Some(ep) = r.overflow_open.as_mut() {
                ep.attempt(ts);
                r.unflushed.close(ts);
            }
        }
    }

    /// An fdinfo sample showed the overflow list empty: the episode ended at the
    /// last GETEVENTS enter (or, without one, by this sample).
    pub(super) fn overflow_flushed(&mut self, ctx: u64, ts: u64) {
        let Some(ring) = self.rings.get_mut(&ctx) else {
            return;
        };
        let Some(ep) = ring.overflow_open.take() else {
            return;
        };
        ring.unflushed.close(ts);
        // Emptied at the last attempt (or, with none since the last overflow, by this
        // sample: the unhandled stretch runs until here).
        let gap = match ep.presumed_flush() {
            Some(_) => ep.max_gap_ns,
            None => ep.gap_until(ts),
        };
        let ts = ep.presumed_flush().unwrap_or(ts);
        let t = &mut ring.overflow_flushed;
        t.episodes += 1;
        t.cqes += ep.cqes;
        t.cancelled += ep.cancelled;
        t.max_wait_ns = t.max_wait_ns.max(gap);
        t.max_nonempty_ns = t.max_nonempty_ns.max(ts.saturating_sub(ep.since_ns));
        t.first_ns.get_or_insert(ep.since_ns);
        t.last_ns = ts;
    }

    pub(super) fn on_enter(&mut self, ev: &RawEvent) {
        let args = view::Enter::read(ev);
        let without_exit = args.without_exit;
        let mut e = Enter {
            fd: args.fd,
            to_submit: args.to_submit,
            min_complete: args.min_complete,
            flags: args.flags,
            ts: ev.ts_ns,
            // An enter read at its wait names the ring it waits on.
            ctx: (ev.ctx != 0).then_some(ev.ctx),
            unsatisfiable: None,
            without_exit,
            tgid: ev.tgid,
        };
        self.end_enter_without_exit(ev.pid, ev.ts_ns);
        let registered = e.flags & ENTER_REGISTERED_RING != 0;
        if !registered && e.ctx.is_none() {
            e.ctx = self.ring_by_fd(ev.tgid, e.fd);
        }
        self.enters_without_exit += usize::from(without_exit);
        self.enters.insert(ev.pid, e);
        if registered && e.ctx.is_none() {
            self.pending_enter_ring = true;
        }
        if e.flags & ENTER_GETEVENTS != 0 {
            if let Some(ctx) = e.ctx {
                self.overflow_flush_attempt(ctx, ev.ts_ns);
            }
        }
        if e.flags & ENTER_SQ_WAKEUP != 0 {
            if let Some(ctx) = e.ctx {
                self.ring(ctx, ev.tgid).last_sq_wakeup_ns = Some(ev.ts_ns);
            }
            // With a registered ring the fd is an index: every ring of the process may
            // be the one woken (quiet rather than a false missed wakeup).
            for s in self.samples.range_mut((ev.tgid, 0)..=(ev.tgid, u32::MAX)) {
                if registered || s.0 .1 == e.fd {
                    s.1.pending_since_ns = None;
                }
            }
        }
    }

    /// An enter read at its wait has no exit event: the thread's next submit or enter,
    /// or its process's exit, shows it has returned (how long a wait lasted is then
    /// known to that precision).
    pub(super) fn end_enter_without_exit(&mut self, tid: u32, ts: u64) {
        if self.enters_without_exit == 0 {
            return;
        }
        if !self.enters.get(&tid).is_some_and(|e| e.without_exit) {
            return;
        }
        let Some(e) = self.enters.remove(&tid) else {
            return;
        };
        self.enters_without_exit -= 1;
        if let Some(wait) = e.unsatisfiable {
            self.observations.push(Observation::UnsatisfiableWait {
                wait,
                until_ns: Some(ts),
            });
        }
    }

    pub(super) fn on_enter_exit(&mut self, ev: &RawEvent) {
        let enter = self.enters.remove(&ev.pid);
        if crate::analyzer::rules::enter_error::reported(ev.res) {
            self.observations
                .push(Observation::EnterError { exit: *ev, enter });
        }
        let Some(e) = enter else {
            return;
        };
        self.enters_without_exit -= usize::from(e.without_exit);
        if e.ctx.is_none() && self.pending_enter_ring {
            self.pending_enter_ring = self.enters.values().any(|e| e.ctx.is_none());
        }
        // The submit batch of this enter is over: an open chain with a request still
        // waiting for its link event was cut at the batch end.
        let rings: Vec<u64> = self
            .rings
            .values()
            .filter(|r| r.tgid == ev.tgid && r.pending_append.is_some())
            .map(|r| r.ctx)
            .collect();
        for ctx in rings {
            let pending_tid = self.rings[&ctx]
                .pending_append
                .and_then(|p| self.rings[&ctx].inflight.get(&p))
                .map(|r| r.tid);
            if pending_tid == Some(ev.pid) {
                self.resolve_pending(ctx);
            }
        }
        if e.flags & ENTER_GETEVENTS != 0 && e.flags & ENTER_REGISTERED_RING != 0 {
            if let Some(ctx) = e.ctx {
                // A registered-ring enter learns its ring only now.
                self.overflow_flush_attempt(ctx, ev.ts_ns);
            }
        }
        let ring_completed = e.ctx.and_then(|c| self.rings.get_mut(&c)).map(|r| {
            let done = r.completed;
            r.completed_at_enter_exit = done;
            done
        });
        if let Some(wait) = e.unsatisfiable {
            let satisfied = e.to_submit == 0
                && ev.res >= 0
                && ring_completed.is_some_and(|done| wait.could_have_arrived(done));
            if !satisfied {
                self.observations.push(Observation::UnsatisfiableWait {
                    wait,
                    until_ns: Some(ev.ts_ns),
                });
            }
        }
    }

    /// A GETEVENTS wait that will sleep. It can be satisfied only if the CQEs it
    /// still needs (min_complete - ready) can arrive: from requests in flight (one
    /// each), owed zero-copy notifications, MSG_RINGs towards the ring, or any number
    /// from an armed multishot request.
    pub(super) fn on_cqring_wait(&mut self, ev: &RawEvent) {
        if self.pending_enter_ring {
            self.learn_enter_ring(ev.pid, ev.ctx);
        }
        let Some(ring) = self.rings.get(&ev.ctx) else {
            return;
        };
        // Rings whose producers we cannot count: an SQPOLL thread may submit more at
        // any time, another thread may submit while this one waits, other rings post
        // here with MSG_RING; and rings created before the trace (unknown history).
        if ring.fd.is_none()
            || ring.has_sqpoll()
            || ring.several_submitters
            || ring.msg_ring_deliveries > 0
        {
            return;
        }
        let Some(enter) = self.enters.get(&ev.pid).copied() else {
            return;
        };
        // Exact counts when the kernel read them at the wait (ctx->rings CQ head and
        // tail); else what the events tell: in flight exactly, ready at most.
        let cw = view::CqringWait::read(ev);
        let (k_in_flight, k_ready) = cw.counts.in_flight_ready();
        // Both counts of what is in flight can fall short: the kernel's counts a ring
        // only from when it got an aggregation slot (a ring streamed at first, while the
        // slots were taken, is counted in part), the analyzer's sees only streamed
        // requests in aggregating mode. The larger is the safer: a wait is called
        // unsatisfiable only when even it cannot satisfy it.
        let in_flight = k_in_flight.map_or_else(
            || ring.posting_in_flight(),
            |k| k.max(ring.posting_in_flight()),
        );
        let ready = k_ready.unwrap_or_else(|| ring.cq_ready_upper_bound());
        // cqring_wait's min_events is min_complete clamped to the CQ size.
        let min_complete = u64::from(cw.min_events);
        let need = min_complete.saturating_sub(ready);
        let timed = enter.flags & ENTER_EXT_ARG != 0;
        // An event loop's idle sleep: a timed wait with nothing ready or in flight.
        if need == 0 || (timed && in_flight == 0 && ready == 0) {
            return;
        }
        let producers = in_flight + ring.notifs_owed;
        if need <= producers || self.more_can_arrive(ring) {
            return;
        }
        let wait = UnsatisfiableWait {
            ctx: ev.ctx,
            tid: ev.pid,
            tgid: ev.tgid,
            min_complete,
            ready,
            producers,
            in_flight,
            timed,
            since_ns: ev.ts_ns,
            completed_at_prev_exit: ring.completed_at_enter_exit,
        };
        if let Some(e) = self.enters.get_mut(&ev.pid) {
            e.unsatisfiable = Some(wait);
        }
    }

    /// Whether some request could post without bound, or another ring could post here:
    /// an in-flight request that can be multishot (it may post any number of CQEs),
    /// or a MSG_RING aimed at this ring. Scanned only for a wait that would otherwise
    /// be reported.
    pub(super) fn more_can_arrive(&self, ring: &Ring) -> bool {
        if ring
            .inflight
            .values()
            .any(|r| opcodes::can_be_multishot(r.opcode))
        {
            return true;
        }
        let Some(fd) = ring.fd else { return false };
        self.rings
            .values()
            .filter(|r| r.tgid == ring.tgid)
            .flat_map(|r| r.inflight.values())
            .any(|r| r.opcode == opcodes::MSG_RING && r.fd == Some(fd))
    }
}

impl UnsatisfiableWait {
    /// Whether the CQEs this wait needed could have arrived while it slept, given that
    /// the ring had posted `completed` CQEs when it returned.
    ///
    /// The counts at a wait's start can be wrong in one way: a CQE posted on another
    /// CPU is stamped when io_uring_complete fires, and becomes visible (counted in
    /// `ready`) only when the CQ tail is committed. A CPU stalled in between (a vCPU
    /// the host did not run: 60 ms in a TCG guest of 6.1 on a busy host) makes a CQE
    /// that arrives during the wait look posted before it. So every CQE posted since
    /// the previous io_uring_enter on the ring returned, less those the kernel saw
    /// ready at the wait, may have arrived during it. Used only for waits that returned
    /// success without submitting: an unsatisfiable wait ends in -ETIME or -EINTR,
    /// except that a timed wait returns 0 when its timeout finds some CQE ready (6.18).
    pub fn could_have_arrived(&self, completed: u64) -> bool {
        let arrived = completed
            .saturating_sub(self.completed_at_prev_exit)
            .saturating_sub(self.ready);
        arrived >= self.min_complete.saturating_sub(self.ready)
    }
}
