//! fdinfo samples (`ring_state`): CQ readiness, the overflow list, stuck SQ rings and
//! SQPOLL idle spin.

use super::*;

impl State {
    pub(super) fn on_ring_state(&mut self, ev: &RawEvent) {
        let (fd, head, tail) = (ev.args[0], ev.args[1], ev.args[2]);
        if ev.aux != 0 {
            let t = self.thread(ev.aux as u32, ev.tgid);
            t.role = Some(Role::SqPoll);
            if let Some(ctx) = self.ring_by_fd(ev.tgid, fd) {
                self.ring(ctx, ev.tgid).sqpoll_tid = Some(ev.aux as u32);
            }
        }
        if let Some(ctx) = self.ring_by_fd(ev.tgid, fd) {
            let ring = self.ring(ctx, ev.tgid);
            ring.cq_ready_sampled = Some(u64::from(ev.args[3]));
            ring.cq_posted_since = 0;
            // The overflow list's length, when the sample has it (opcode 1).
            if ev.opcode == 1 {
                if ev.res == 0 {
                    self.overflow_flushed(ctx, ev.ts_ns);
                } else if let Some(ep) = self
                    .rings
                    .get_mut(&ctx)
                    .and_then(|r| r.overflow_open.as_mut())
                {
                    ep.sample(ev.res as u64, ev.ts_ns);
                }
            }
        }
        let submitted = self
            .ring_by_fd(ev.tgid, fd)
            .and_then(|c| self.rings.get(&c))
            .map_or(0, |r| r.submitted);
        let s = self.samples.entry((ev.tgid, fd)).or_default();
        // Another SQPOLL thread behind the same fd: a new ring, a new history.
        if s.first.is_some_and(|f| f.aux != ev.aux) {
            *s = RingSamples::default();
        }
        s.first.get_or_insert(*ev);
        // The idle-spin window: the newest samples spanning at least the minimum.
        s.window.push_back((*ev, submitted));
        while s.window.len() > 2
            && ev.ts_ns.saturating_sub(s.window[1].0.ts_ns) >= self.idle_spin_min_ns
        {
            s.window.pop_front();
        }
        // The kernel consumed SQEs since the last sample: whatever is pending now is
        // new, not waiting (a busy app keeps its SQ ring non-empty at every sample).
        let progressed = s.last.is_some_and(|l| l.args[1] != head);
        s.last = Some(*ev);
        let pending = tail.wrapping_sub(head);
        s.pending_sqes = pending;
        s.max_pending_sqes = s.max_pending_sqes.max(pending);
        if pending == 0 || progressed {
            s.pending_since_ns = (pending != 0).then_some(ev.ts_ns);
            s.missed_reported = false;
        } else if s.pending_since_ns.is_none() {
            s.pending_since_ns = Some(ev.ts_ns);
        }
        // Judged as samples arrive, not at the end: the ring may be gone by then.
        let sq_tid = ev.aux as u32;
        if sq_tid == 0 {
            return;
        }
        let state = self
            .threads
            .get(&sq_tid)
            .map_or("asleep (no scheduler events)", |t| t.state);
        let s = self
            .samples
            .get_mut(&(ev.tgid, fd))
            .expect("inserted above");
        if let Some(since) = s.pending_since_ns {
            let stuck = ev.ts_ns.saturating_sub(since) >= self.missed_wakeup_ns;
            // A preempted thread is runnable: it is late, not missing a wakeup.
            let sleeping = !matches!(state, "running" | "woken" | "preempted");
            if stuck && !s.missed_reported && sleeping {
                s.missed_reported = true;
                let samples = s.clone();
                self.observations.push(Observation::MissedWakeup {
                    tgid: ev.tgid,
                    fd,
                    samples,
                    thread_state: state,
                });
            }
        }
        let s = self
            .samples
            .get_mut(&(ev.tgid, fd))
            .expect("inserted above");
        if !s.spin_reported {
            if let (Some(&(a, sub_a)), Some(&(b, sub_b))) = (s.window.front(), s.window.back()) {
                let wall_us = b.ts_ns.saturating_sub(a.ts_ns) / 1000;
                let total_us = b.aux2.saturating_sub(a.aux2);
                let work_us = b.user_data.saturating_sub(a.user_data);
                // Work is rare: under one submission per 10 ms. A thread kept busy by
                // a slowed-down submitter (a loaded machine) is not idle.
                let submits = sub_b.saturating_sub(sub_a);
                if wall_us >= self.idle_spin_min_ns / 1000
                    && total_us * 2 >= wall_us
                    && work_us * 20 <= total_us
                    && submits * 10_000 < wall_us
                {
                    s.spin_reported = true;
                    let samples = s.clone();
                    self.observations.push(Observation::IdleSpin {
                        tgid: ev.tgid,
                        fd,
                        samples,
                    });
                }
            }
        }
    }
}
