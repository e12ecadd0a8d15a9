//! fdinfo samples (`ring_state`): CQ readiness, the overflow list, stuck SQ rings and
//! SQPOLL idle spin.

use super::*;

impl State {
    pub(super) fn on_ring_state(&mut self, ev: &RawEvent) {
        let rs = RingState::read(ev);
        let sample = RingSample {
            ts_ns: ev.ts_ns,
            state: rs,
        };
        let fd = rs.fd;
        if let Some(tid) = rs.sq_thread {
            let t = self.thread(tid, ev.tgid);
            t.role = Some(Role::SqPoll);
            if let Some(ctx) = self.ring_by_fd(ev.tgid, fd) {
                self.ring(ctx, ev.tgid).sqpoll_tid = Some(tid);
            }
        }
        if let Some(ctx) = self.ring_by_fd(ev.tgid, fd) {
            let ring = self.ring(ctx, ev.tgid);
            ring.cq_ready_sampled = Some(u64::from(rs.cq_ready));
            ring.cq_posted_since = 0;
            // The overflow list's length, when the sample has it.
            match rs.overflow_list {
                Some(0) => self.overflow_flushed(ctx, ev.ts_ns),
                Some(listed) => {
                    if let Some(ep) = self
                        .rings
                        .get_mut(&ctx)
                        .and_then(|r| r.overflow_open.as_mut())
                    {
                        ep.sample(u64::from(listed), ev.ts_ns);
                    }
                    self.unflushed_sample(ctx, u64::from(listed), rs.cq_ready, ev.ts_ns);
                }
                None => {}
            }
        }
        let submitted = self
            .ring_by_fd(ev.tgid, fd)
            .and_then(|c| self.rings.get(&c))
            .map_or(0, |r| r.submitted);
        let idle_spin_min_ns = self.idle_spin_min_ns;
        let s = self.samples.entry((ev.tgid, fd)).or_default();
        // Another SQPOLL thread behind the same fd: a new ring, a new history.
        if s.first.is_some_and(|f| f.state.sq_thread != rs.sq_thread) {
            *s = RingSamples::default();
        }
        s.first.get_or_insert(sample);
        // The idle-spin window: the newest samples spanning at least the minimum.
        s.window.push_back((sample, submitted));
        while s.window.len() > 2 && ev.ts_ns.saturating_sub(s.window[1].0.ts_ns) >= idle_spin_min_ns
        {
            s.window.pop_front();
        }
        // The kernel consumed SQEs since the last sample: whatever is pending now is
        // new, not waiting (a busy app keeps its SQ ring non-empty at every sample).
        let progressed = s.last.is_some_and(|l| l.state.sq_head != rs.sq_head);
        s.last = Some(sample);
        let pending = rs.sq_pending();
        s.pending_sqes = pending;
        s.max_pending_sqes = s.max_pending_sqes.max(pending);
        if pending == 0 || progressed {
            s.pending_since_ns = (pending != 0).then_some(ev.ts_ns);
            s.missed_reported = false;
        } else if s.pending_since_ns.is_none() {
            s.pending_since_ns = Some(ev.ts_ns);
        }
        // Judged as samples arrive, not at the end: the ring may be gone by then.
        let Some(sq_tid) = rs.sq_thread else {
            return;
        };
        let thread = self.threads.get(&sq_tid);
        let state = thread.map_or("asleep (no scheduler events)", |t| t.state);
        // When the thread last went to sleep, if the scheduler showed it leave a CPU
        // (u64::MAX: asleep now); None without scheduler events for it.
        let slept_ns = thread.filter(|t| t.switched).map(|t| {
            if t.state == "asleep" {
                u64::MAX
            } else {
                t.slept_ns.unwrap_or(0)
            }
        });
        let Some(s) = self.samples.get_mut(&(ev.tgid, fd)) else {
            return;
        };
        if let Some(since) = s.pending_since_ns {
            let stuck = ev.ts_ns.saturating_sub(since) >= self.missed_wakeup_ns;
            // A preempted thread is runnable: it is late, not missing a wakeup.
            let sleeping = !matches!(state, "running" | "woken" | "preempted");
            if stuck && !s.missed_reported && sleeping {
                s.missed_reported = true;
                self.observations.push(Observation::MissedWakeup {
                    tgid: ev.tgid,
                    fd,
                    samples: s.clone(),
                    thread_state: state,
                });
            }
        }
        if !s.spin_reported {
            if let (Some(&(a, sub_a)), Some(&(b, sub_b))) = (s.window.front(), s.window.back()) {
                let wall_us = b.ts_ns.saturating_sub(a.ts_ns) / 1000;
                let total_us = b.state.sq_total_us.saturating_sub(a.state.sq_total_us);
                let work_us = b.state.sq_work_us.saturating_sub(a.state.sq_work_us);
                // Work is rare: under one submission per 10 ms. A thread kept busy by
                // a slowed-down submitter (a loaded machine) is not idle.
                let submits = sub_b.saturating_sub(sub_a);
                // Spinning: it ran half the window, or, on a CPU it shares with busier
                // tasks (a loaded host gives a spinner less than half), it ran a tenth
                // and the scheduler never saw it go to sleep. An idle thread past its
                // sq_thread_idle sleeps, whatever the load.
                let never_slept = slept_ns.is_some_and(|t| t < a.ts_ns);
                let spun = total_us * 2 >= wall_us || (never_slept && total_us * 10 >= wall_us);
                if wall_us >= self.idle_spin_min_ns / 1000
                    && spun
                    && work_us * 20 <= total_us
                    && submits * 10_000 < wall_us
                {
                    s.spin_reported = true;
                    self.observations.push(Observation::IdleSpin {
                        tgid: ev.tgid,
                        fd,
                        samples: s.clone(),
                    });
                }
            }
        }
    }
}
