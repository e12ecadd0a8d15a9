//! A request's life: submit, link, completion (in the CQ ring or through the
//! overflow list), and the link chains rebuilt from them.

use super::*;

impl State {
    pub(super) fn new_chain(&mut self, ctx: u64, r: &Request) -> ChainId {
        let id = self.next_chain;
        self.next_chain += 1;
        let member = Member::of(r);
        self.chains.insert(
            id,
            Chain {
                id,
                ctx,
                tgid: r.tgid,
                tid: r.tid,
                members: vec![member],
                closed: false,
                cut_at_batch_end: false,
                breaker: None,
            },
        );
        id
    }

    /// The request submitted after an open chain got no link event: the batch ended
    /// with the chain unterminated. Close that chain; the request may start a new one.
    pub(super) fn resolve_pending(&mut self, ctx: u64) {
        let Some(ring) = self.rings.get_mut(&ctx) else {
            return;
        };
        let Some(p) = ring.pending_append.take() else {
            return;
        };
        if let Some(open) = ring.open_chain.take() {
            if let Some(c) = self.chains.get_mut(&open) {
                c.closed = true;
                c.cut_at_batch_end = true;
            }
            self.maybe_finish_chain(open);
        }
        let Some(r) = self
            .rings
            .get(&ctx)
            .and_then(|g| g.inflight.get(&p))
            .copied()
        else {
            return;
        };
        if r.links() {
            let id = self.new_chain(ctx, &r);
            self.open_chain_at(ctx, p, id);
        }
    }

    /// Chain `id`, just started by request `req` of ring `ctx`, is the ring's open one.
    fn open_chain_at(&mut self, ctx: u64, req: u64, id: ChainId) {
        if let Some(ring) = self.rings.get_mut(&ctx) {
            ring.open_chain = Some(id);
            if let Some(x) = ring.inflight.get_mut(&req) {
                x.chain = Some(id);
            }
        }
    }

    pub(super) fn on_submit(&mut self, ev: &RawEvent) {
        let sub = view::Submit::read(ev);
        if crate::analyzer::aggregate::completed_by_overflow(self, ev, &sub) {
            return;
        }
        let tgid = ev.tgid;
        self.end_enter_without_exit(ev.pid, ev.ts_ns);
        // One ring lookup in the common case (no request waiting for a link event).
        let mut ring = ring_entry(&mut self.rings, ev.ctx, tgid);
        if ring.pending_append.is_some() {
            self.resolve_pending(ev.ctx);
            ring = ring_entry(&mut self.rings, ev.ctx, tgid);
        }
        if ev.role == Role::SqPoll as u8 {
            let t = thread_entry(&mut self.threads, ev.pid, tgid);
            t.role = Some(Role::SqPoll);
            t.submits += 1;
            ring.sqpoll_tid = Some(ev.pid);
        }
        ring.submitted += 1;
        match ring.first_submitter {
            None => ring.first_submitter = Some(ev.pid),
            Some(t) if t != ev.pid => ring.several_submitters = true,
            _ => {}
        }
        // A req pointer is reused after completion; a submit of a pointer still in
        // flight means the old identity ended unseen (CQE_SKIP_SUCCESS, lost event).
        let r = match ring.inflight.entry(ev.req) {
            Entry::Occupied(o) => {
                let old = o.into_mut();
                ring.by_user_data.remove(&old.user_data);
                if old.skips_success() {
                    ring.silent_in_flight -= 1;
                }
                old
            }
            Entry::Vacant(v) => v.insert(Request::BLANK),
        };
        // Filled in place: a Request built aside and then copied into the table costs
        // more than the rest of the submit (store forwarding fails on the copy).
        r.ctx = ev.ctx;
        r.req = ev.req;
        r.user_data = ev.user_data;
        r.opcode = ev.opcode;
        r.flags = sub.req_flags;
        r.submit_ns = ev.ts_ns;
        r.tid = ev.pid;
        r.tgid = tgid;
        r.fd = sub.fd_or_slot();
        r.issued = false;
        r.poll_armed = false;
        r.waited_on_poll = false;
        r.punted = false;
        r.chain = None;
        r.multishot_cqes = 0;
        r.futex = (matches!(ev.opcode, opcodes::FUTEX_WAIT | opcodes::FUTEX_WAKE)
            && sub.futex_uaddr != 0)
            .then_some(sub.futex_uaddr);
        if r.skips_success() {
            ring.silent_in_flight += 1;
        }
        let starts_chain = r.links().then_some(*r);
        ring.by_user_data.insert(ev.user_data, ev.req);
        let open = ring.open_chain;
        ring.max_in_flight = ring.max_in_flight.max(ring.inflight.len() as u64);
        if open.is_some() {
            ring.pending_append = Some(ev.req);
        } else if let Some(r) = starts_chain {
            let id = self.new_chain(ev.ctx, &r);
            self.open_chain_at(ev.ctx, ev.req, id);
        }
        if self.pending_enter_ring {
            self.learn_enter_ring(ev.pid, ev.ctx);
        }
    }

    /// `target` is the previous member (6.12+) or the chain head (before): either
    /// way it identifies the chain, so both kernel semantics rebuild the same chain.
    pub(super) fn on_link(&mut self, ev: &RawEvent) {
        let Some(ring) = self.rings.get_mut(&ev.ctx) else {
            return;
        };
        if ring.pending_append == Some(ev.req) {
            ring.pending_append = None;
        }
        let target = view::Link::read(ev).target_req;
        let chain_id = ring
            .inflight
            .get(&target)
            .and_then(|t| t.chain)
            .or(ring.open_chain);
        let Some(id) = chain_id else { return };
        let Some(r) = ring.inflight.get_mut(&ev.req) else {
            return;
        };
        r.chain = Some(id);
        let r = *r;
        let Some(chain) = self.chains.get_mut(&id) else {
            return;
        };
        chain.members.push(Member::of(&r));
        if !r.links() {
            chain.closed = true;
            if ring.open_chain == Some(id) {
                ring.open_chain = None;
            }
        }
    }

    /// fail_link names the failed request (often completed and gone from the in-flight
    /// set by now) and the cancelled follower (still in flight): find the chain by either.
    pub(super) fn on_fail_link(&mut self, ev: &RawEvent) {
        let Some(ring) = self.rings.get(&ev.ctx) else {
            return;
        };
        let cancelled = view::FailLink::read(ev).link;
        let id = ring
            .inflight
            .get(&cancelled)
            .and_then(|r| r.chain)
            .or_else(|| ring.inflight.get(&ev.req).and_then(|r| r.chain))
            .or_else(|| {
                self.chains
                    .values()
                    .find(|c| c.ctx == ev.ctx && c.index_of(ev.req).is_some())
                    .map(|c| c.id)
            });
        let Some(id) = id else { return };
        if let Some(c) = self.chains.get_mut(&id) {
            if c.breaker.is_none() {
                c.breaker = c.index_of(ev.req);
            }
            if let Some(i) = c.index_of(cancelled) {
                c.members[i].cancelled = true;
            }
        }
    }

    /// A request's final completion, from the CQ ring or the overflow list.
    pub(super) fn finish_request(&mut self, ctx: u64, req: u64, res: i32, ts: u64) {
        let Some(mut ring) = self.rings.get_mut(&ctx) else {
            return;
        };
        if ring.pending_append == Some(req) {
            ring.pending_append = None;
            if let Some(id) = ring.open_chain.take() {
                if let Some(c) = self.chains.get_mut(&id) {
                    c.closed = true;
                    c.cut_at_batch_end = true;
                }
                self.maybe_finish_chain(id);
            }
            let Some(again) = self.rings.get_mut(&ctx) else {
                return;
            };
            ring = again;
        }
        let Some(r) = take_request(ring, &mut self.latency, req, ts, self.slow_ns) else {
            return;
        };
        self.finished(ctx, r, res, ts);
    }

    /// What follows a request's final completion, once it left the in-flight set.
    #[inline]
    pub(super) fn finished(&mut self, ctx: u64, r: Done, res: i32, ts: u64) {
        let req = r.req;
        if res < 0 {
            if let Some(ring) = self.rings.get_mut(&ctx) {
                *ring.errors_by_op.entry(r.opcode).or_default() += 1;
            }
        }
        if res == -libc::EBADF || res == -libc::EFAULT {
            self.fixed_failure(ctx, &r, res, ts);
        }
        // A drain cannot start before the requests submitted before it completed:
        // its wait until then is drain-blocked's (one finding per cause), and
        // request-stalled judges only what it took once released.
        let mut start = r.submit_ns;
        if let Some(d) = r.drain {
            start = d.released_ns.map_or(start, |t| t.max(start));
            self.observations.push(Observation::DrainReleased(d));
        }
        if res == -libc::ENOBUFS {
            self.observations.push(Observation::NoBufs {
                ev: RawEvent {
                    ctx,
                    req,
                    user_data: r.user_data,
                    res,
                    ts_ns: ts,
                    pid: r.tid,
                    tgid: r.tgid,
                    ..RawEvent::default()
                },
                opcode: r.opcode,
            });
        }
        // Released after waiting on a wait-for cycle? Judged before the request's
        // result is known to its chain: the graph is the one it waited in.
        let cycle = match &r.whole {
            Some(w) if ts.saturating_sub(w.submit_ns) >= self.cycle_min_ns => {
                crate::analyzer::graph::cycle_through(self, w, ts, self.cycle_min_ns)
            }
            _ => None,
        };
        let mut silent_done = Vec::new();
        let silent = |q: u64| {
            self.rings
                .get(&ctx)
                .and_then(|ring| ring.inflight.get(&q))
                .is_some_and(Request::skips_success)
        };
        if let Some(id) = r.chain {
            if let Some(c) = self.chains.get_mut(&id) {
                if let Some(i) = c.index_of(req) {
                    // A follower cannot start before its predecessors complete.
                    start = c.members[..i]
                        .iter()
                        .filter_map(|m| m.complete_ns)
                        .fold(start, u64::max);
                    c.members[i].res = Some(res);
                    c.members[i].complete_ns = Some(ts);
                    c.members[i].regular_file = self.completing_isreg.take();
                    // Earlier members with no result completed without a CQE
                    // (IOSQE_CQE_SKIP_SUCCESS): a follower runs only after them.
                    for m in &mut c.members[..i] {
                        if m.res.is_none() && silent(m.req) {
                            m.res = Some(0);
                            m.complete_ns = Some(ts);
                            silent_done.push(m.req);
                        }
                    }
                }
            }
        }
        if !silent_done.is_empty() {
            if let Some(ring) = self.rings.get_mut(&ctx) {
                for q in silent_done {
                    if let Some(x) = ring.inflight.remove(&q) {
                        ring.by_user_data.remove_if(x.user_data, q);
                        if x.skips_success() {
                            ring.silent_in_flight -= 1;
                        }
                    }
                }
            }
        }
        if let Some(c) = cycle {
            self.observations.push(Observation::CycleReleased(c));
            if let Some(id) = r.chain {
                self.maybe_finish_chain(id);
            }
            return;
        }
        let slow = self.slow_ns > 0 && ts.saturating_sub(start) >= self.slow_ns;
        if let (true, Some(whole)) = (slow, r.whole) {
            let chain = r.chain.and_then(|id| self.chains.get(&id)).cloned();
            self.observations.push(Observation::SlowCompletion {
                req: *whole,
                chain,
                start_ns: start,
                done_ns: ts,
                res,
            });
        }
        if let Some(id) = r.chain {
            self.maybe_finish_chain(id);
        }
    }

    pub(super) fn maybe_finish_chain(&mut self, id: ChainId) {
        let done = self
            .chains
            .get(&id)
            .is_some_and(|c| c.closed && c.all_done());
        if done {
            if let Some(c) = self.chains.remove(&id) {
                // Kept per ring for `uringtrace top`'s chain tree.
                if let Some(ring) = self.rings.get_mut(&c.ctx) {
                    if ring.recent_chains.len() == RECENT_CHAINS {
                        ring.recent_chains.pop_front();
                    }
                    ring.recent_chains.push_back(c.clone());
                }
                self.observations.push(Observation::ChainDone(c));
            }
        }
    }

    pub(super) fn on_complete(&mut self, ev: &RawEvent) {
        self.completing_isreg = view::Complete::read(ev).regular_file();
        let ring = ring_entry(&mut self.rings, ev.ctx, ev.tgid);
        ring.completed += 1;
        ring.cq_posted_since += 1;
        if ev.res < 0 {
            ring.errors += 1; // for `uringtrace top`
        }
        // A zero-copy send's notification: from a kernel request of its own, never
        // submitted; the send it belongs to already completed.
        if ev.cflags & CQE_F_NOTIF != 0 {
            ring.notifs_owed = ring.notifs_owed.saturating_sub(1);
            return;
        }
        let more = ev.cflags & CQE_F_MORE != 0;
        // A zero-copy send's own CQE carries F_MORE (a notification follows), but it is
        // the request's final CQE: SEND_ZC is not multishot.
        let zc_final = more
            && ev.req != 0
            && ring
                .inflight
                .get(&ev.req)
                .is_some_and(|r| opcodes::zero_copy_send(r.opcode));
        if zc_final {
            ring.notifs_owed += 1;
            self.finish_request(ev.ctx, ev.req, ev.res, ev.ts_ns);
            return;
        }
        // Before 5.19 io_uring_complete has no req field: a final CQE (no F_MORE) with
        // req 0 completes the in-flight request with that user_data. On newer kernels a
        // req-less final CQE is a MSG_RING delivery from another ring (or task): it
        // matches nothing in flight and is only counted.
        if ev.req == 0 && !more {
            if let Some(req) = ring.by_user_data.get(&ev.user_data).copied() {
                let multishot = ring.inflight.get(&req).map_or(0, |r| r.multishot_cqes);
                if multishot > 0 {
                    let opcode = ring.inflight.get(&req).map_or(0, |r| r.opcode);
                    self.observations.push(Observation::MultishotEnded {
                        ev: *ev,
                        intermediate: multishot,
                        opcode,
                    });
                }
                self.finish_request(ev.ctx, req, ev.res, ev.ts_ns);
            } else {
                ring.msg_ring_deliveries += 1;
            }
            return;
        }
        if ev.req == 0 || more {
            // Multishot intermediate CQE: the request goes on.
            let req = if ev.req != 0 {
                Some(ev.req)
            } else {
                ring.by_user_data.get(&ev.user_data).copied()
            };
            if let Some(r) = req.and_then(|q| ring.inflight.get_mut(&q)) {
                r.multishot_cqes += 1;
            }
            if ev.res == -libc::ENOBUFS {
                let opcode = req
                    .and_then(|q| ring.inflight.get(&q))
                    .map_or(0, |r| r.opcode);
                self.observations
                    .push(Observation::NoBufs { ev: *ev, opcode });
            }
            return;
        }
        if ring.pending_append == Some(ev.req) {
            if let Some(r) = ring.inflight.get(&ev.req) {
                if r.multishot_cqes > 0 {
                    let (intermediate, opcode) = (r.multishot_cqes, r.opcode);
                    self.observations.push(Observation::MultishotEnded {
                        ev: *ev,
                        intermediate,
                        opcode,
                    });
                }
            }
            self.finish_request(ev.ctx, ev.req, ev.res, ev.ts_ns);
            return;
        }
        // The common case, as `finish_request` does it but on the ring at hand.
        let Some(r) = take_request(ring, &mut self.latency, ev.req, ev.ts_ns, self.slow_ns) else {
            return;
        };
        if r.multishot_cqes > 0 {
            self.observations.push(Observation::MultishotEnded {
                ev: *ev,
                intermediate: r.multishot_cqes,
                opcode: r.opcode,
            });
        }
        self.finished(ev.ctx, r, ev.res, ev.ts_ns);
    }

    pub(super) fn on_overflow(&mut self, ev: &RawEvent) {
        let ring = self.ring(ev.ctx, ev.tgid);
        ring.overflowed += 1;
        ring.completed += 1;
        ring.cq_posted_since += 1;
        if ev.res < 0 {
            ring.errors += 1; // for `uringtrace top`
        }
        ring.first_overflow_ns.get_or_insert(ev.ts_ns);
        ring.last_overflow_ns = ev.ts_ns;
        if ring.overflow_user_data.len() < 16 {
            ring.overflow_user_data.push(ev.user_data);
        }
        let ep = ring.overflow_open.get_or_insert(OverflowEpisode {
            since_ns: ev.ts_ns,
            ..OverflowEpisode::default()
        });
        ep.cqes += 1;
        ep.last_ns = ev.ts_ns;
        if ev.res == -libc::ECANCELED {
            ep.cancelled += 1;
        }
        let dropped = view::CqeOverflow::read(ev).dropped();
        if dropped {
            ring.dropped += 1;
        } else if let Some(ep) = ring.overflow_open.as_mut() {
            ep.listed += 1;
        }
        if ev.cflags & CQE_F_NOTIF != 0 {
            ring.notifs_owed = ring.notifs_owed.saturating_sub(1);
            return;
        }
        // Overflowed CQEs carry no req: match the in-flight request by user_data. A
        // CQE with F_MORE is a multishot intermediate (the request goes on), unless it
        // is a zero-copy send's own CQE.
        let req = ring.by_user_data.get(&ev.user_data).copied();
        let more = ev.cflags & CQE_F_MORE != 0;
        let zc = req
            .and_then(|q| ring.inflight.get(&q))
            .is_some_and(|r| opcodes::zero_copy_send(r.opcode));
        if zc && more {
            ring.notifs_owed += 1;
        }
        if req.is_none() && !more {
            self.agg.overflowed_unseen(ev.ctx, ev.user_data);
        }
        if dropped {
            self.observations.push(Observation::DroppedCqe(*ev));
        }
        if more && !zc {
            return;
        }
        if let Some(req) = req {
            self.finish_request(ev.ctx, req, ev.res, ev.ts_ns);
        }
    }
}

/// Takes a finished request out of its ring's in-flight set and records its latency
/// (globally in `latency`, and per ring for `uringtrace top`). Inlined: a Request
/// returned through memory is read back before its bytes are stored, a stall per event.
#[inline(always)]
pub(super) fn take_request(
    ring: &mut Ring,
    latency: &mut BTreeMap<u8, Histogram>,
    req: u64,
    ts: u64,
    slow_ns: u64,
) -> Option<Done> {
    // Read in place, then dropped: moving the Request out copies it for nothing.
    let Entry::Occupied(o) = ring.inflight.entry(req) else {
        return None;
    };
    let r = o.get();
    let done = Done {
        req: r.req,
        user_data: r.user_data,
        opcode: r.opcode,
        submit_ns: r.submit_ns,
        tid: r.tid,
        tgid: r.tgid,
        chain: r.chain,
        multishot_cqes: r.multishot_cqes,
        flags: r.flags,
        fd: r.fd,
        drain: if ring.drains.is_empty() {
            None
        } else {
            misuse::drain_progress(&mut ring.drains, r, ts)
        },
        // Slow from its start is slow from its submission (start ≥ submission).
        whole: (slow_ns > 0 && ts.saturating_sub(r.submit_ns) >= slow_ns).then(|| Box::new(*r)),
    };
    if r.skips_success() {
        ring.silent_in_flight -= 1;
    }
    o.remove();
    ring.by_user_data.remove_if(done.user_data, req);
    let ns = ts.saturating_sub(done.submit_ns);
    let b = Histogram::bucket_of(ns);
    record(&mut ring.latency, done.opcode, b, ns);
    ring.latency_all.record_in(b, ns);
    record(latency, done.opcode, b, ns);
    Some(done)
}

/// What follows a final completion needs of the request that left the in-flight set.
pub(super) struct Done {
    pub(super) req: u64,
    pub(super) user_data: u64,
    pub(super) opcode: u8,
    pub(super) submit_ns: u64,
    pub(super) tid: u32,
    pub(super) tgid: u32,
    pub(super) chain: Option<ChainId>,
    pub(super) multishot_cqes: u64,
    /// IOSQE_* flags and fd (fixed-file-misuse, fixed-buffer-misuse).
    pub(super) flags: u64,
    pub(super) fd: Option<i32>,
    /// The drain this request was, when it was one the ring followed (drain-blocked).
    pub(super) drain: Option<Box<DrainWait>>,
    /// The whole request, when it may have been slow (for the observation).
    pub(super) whole: Option<Box<Request>>,
}

/// Records `ns`, whose bucket is `b`, in `opcode`'s histogram.
#[inline(always)]
pub(super) fn record(hists: &mut BTreeMap<u8, Histogram>, opcode: u8, b: usize, ns: u64) {
    match hists.get_mut(&opcode) {
        Some(h) => h.record_in(b, ns),
        None => hists.entry(opcode).or_default().record_in(b, ns),
    }
}
