//! What the three "system" rules need: failed io_uring_setup calls per process
//! (`io-uring-unavailable`), failed io_uring_enter calls (`enter-error`), and CQEs
//! left in the overflow list while the CQ ring has room (`overflow-not-flushed`).

use super::*;

/// Processes remembered with failed setups; more are counted, not kept.
const MAX_SETUP_FAILURES: usize = 1024;

/// io_uring_setup failures of one process and errno.
#[derive(Clone, Debug, Default)]
pub struct SetupFailure {
    pub tgid: u32,
    pub comm: String,
    pub errno: i32,
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// What userspace read when it drained the first failure.
    pub context: view::SetupFailed,
    /// The process set up a ring after a failure (e.g. without a flag it may not use).
    pub ring_after: bool,
}

/// Failed setups, by (tgid, errno).
#[derive(Clone, Debug, Default)]
pub struct SetupFailures {
    pub by_process: BTreeMap<(u32, i32), SetupFailure>,
    /// Failures of processes beyond [`MAX_SETUP_FAILURES`].
    pub untracked: u64,
}

impl SetupFailures {
    /// A ring was created by `tgid`: io_uring works for it after all.
    pub(super) fn ring_created(&mut self, tgid: u32) {
        if self.by_process.is_empty() {
            return;
        }
        for f in self
            .by_process
            .range_mut((tgid, i32::MIN)..=(tgid, i32::MAX))
        {
            f.1.ring_after = true;
        }
    }
}

/// CQEs in the overflow list while the CQ ring had room for them, with no flush:
/// only an io_uring_enter with GETEVENTS moves them (6.1+), so nothing else will.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unflushed {
    /// The first sample of the current stretch (list non-empty, CQ ring with room,
    /// no flush attempt since), and when its oldest overflowed CQE went to the list.
    pub since_ns: Option<u64>,
    pub oldest_ns: u64,
    /// The last sample of the current stretch.
    pub last_ns: u64,
    /// Most CQEs listed at one sample of the current stretch.
    pub cqes: u64,
    /// The longest stretch that ended (from its first sample to its flush), with how
    /// long its oldest CQE had waited then, and its CQEs.
    pub longest_ns: u64,
    pub longest_waited_ns: u64,
    pub longest_cqes: u64,
    pub first_ns: Option<u64>,
    /// Stretches longer than the threshold that ended (flushed late).
    pub episodes: u64,
    pub threshold_ns: u64,
}

impl Unflushed {
    /// A flush attempt (or the list seen empty) at `ts` ends the stretch.
    pub(super) fn close(&mut self, ts: u64) {
        if let Some(since) = self.since_ns.take() {
            let len = ts.saturating_sub(since);
            if len >= self.threshold_ns {
                self.episodes += 1;
            }
            if len > self.longest_ns {
                self.longest_ns = len;
                self.longest_waited_ns = ts.saturating_sub(self.oldest_ns);
                self.longest_cqes = self.cqes;
            }
        }
    }

    /// The longest stretch as of `now`: (length, how long its oldest CQE waited,
    /// CQEs, still open).
    pub fn worst(&self, now: u64) -> (u64, u64, u64, bool) {
        match self.since_ns {
            Some(since) if now.saturating_sub(since) >= self.longest_ns => (
                now.saturating_sub(since),
                now.saturating_sub(self.oldest_ns),
                self.cqes,
                true,
            ),
            _ => (
                self.longest_ns,
                self.longest_waited_ns,
                self.longest_cqes,
                false,
            ),
        }
    }
}

impl State {
    pub(super) fn on_setup_failed(&mut self, ev: &RawEvent) {
        let f = &mut self.setup_failures;
        let key = (ev.tgid, ev.res);
        if !f.by_process.contains_key(&key) && f.by_process.len() >= MAX_SETUP_FAILURES {
            f.untracked += 1;
            return;
        }
        let e = f.by_process.entry(key).or_insert_with(|| SetupFailure {
            tgid: ev.tgid,
            comm: comm_text(&ev.comm).into_owned(),
            errno: -ev.res,
            first_ns: ev.ts_ns,
            context: view::SetupFailed::read(ev),
            ..SetupFailure::default()
        });
        e.count += 1;
        e.last_ns = ev.ts_ns;
        // A later failure may have been read when the first one's process status
        // was not (gone already): keep the most complete.
        let c = view::SetupFailed::read(ev);
        let incomplete =
            !e.context.has(view::SetupFailed::ANNOTATED) || e.context.seccomp.is_none();
        if incomplete && c.has(view::SetupFailed::ANNOTATED) {
            e.context = c;
        }
    }

    /// An fdinfo sample of ring `ctx` showed `listed` CQEs in the overflow list
    /// (`listed` > 0) and `cq_ready` CQEs in the CQ ring.
    pub(super) fn unflushed_sample(&mut self, ctx: u64, listed: u64, cq_ready: u32, ts: u64) {
        let threshold = self.overflow_flush_ns;
        let Some(ring) = self.rings.get_mut(&ctx) else {
            return;
        };
        let Some(ep) = ring.overflow_open else {
            return;
        };
        let u = &mut ring.unflushed;
        u.threshold_ns = threshold;
        if ep.flush_attempt_ns == Some(ts) {
            // This very sample showed a flush (the list shrank).
            u.close(ts);
            return;
        }
        // Room: while the list is non-empty every new CQE goes to it, so the CQ ring
        // only empties; with room, only the missing flush keeps the CQEs out.
        let room = ring.cq_entries.map_or(cq_ready == 0, |n| cq_ready < n);
        if !room {
            return;
        }
        if u.since_ns.is_none() {
            u.since_ns = Some(ts);
            u.oldest_ns = ep.since_ns;
            u.cqes = 0;
            u.first_ns.get_or_insert(ts);
        }
        u.last_ns = ts;
        u.cqes = u.cqes.max(listed);
    }
}
