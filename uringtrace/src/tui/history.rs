//! Bounded histories behind the rates and sparklines: one sample per tick, a fixed
//! number kept, a fixed number of rings tracked. Time is the input's clock (the
//! trace's timestamps), so a replay shows the rates it recorded, whatever its speed.

use std::collections::{HashMap, VecDeque};

/// Rates are averaged over this much input time.
pub const RATE_WINDOW_NS: u64 = 1_000_000_000;
/// Upper bound of samples in a rate window, whatever the tick rate.
const MAX_RATE_SAMPLES: usize = 64;
/// Occupancy samples kept per ring (12 s at 10 frames/s).
pub const OCCUPANCY_SAMPLES: usize = 120;
/// Rings with a history; beyond it, the longest idle ring's history is dropped.
pub const MAX_RINGS: usize = 1024;

/// Cumulative samples `(time, value)` spanning a little more than the rate window.
#[derive(Clone, Debug)]
pub struct Window<T> {
    samples: VecDeque<(u64, T)>,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Window {
            samples: VecDeque::new(),
        }
    }
}

impl<T: Copy> Window<T> {
    /// Adds a sample; one taken at the same time as the last replaces it.
    pub fn push(&mut self, t: u64, v: T) {
        match self.samples.back_mut() {
            Some(last) if last.0 >= t => last.1 = v,
            _ => self.samples.push_back((t, v)),
        }
        // Keep one sample at or before the window's start, so a rate always spans it.
        while self.samples.len() > 2 && self.samples[1].0 + RATE_WINDOW_NS <= t {
            self.samples.pop_front();
        }
        while self.samples.len() > MAX_RATE_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// Oldest and newest sample, when they are at different times.
    pub fn ends(&self) -> Option<((u64, T), (u64, T))> {
        let first = *self.samples.front()?;
        let last = *self.samples.back()?;
        (last.0 > first.0).then_some((first, last))
    }

    pub fn last(&self) -> Option<(u64, T)> {
        self.samples.back().copied()
    }
}

/// Per second, from two cumulative values `dt_ns` apart.
pub fn per_second(first: u64, last: u64, dt_ns: u64) -> f64 {
    last.saturating_sub(first) as f64 * 1e9 / dt_ns.max(1) as f64
}

/// Cumulative counters of one ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingCounters {
    pub submitted: u64,
    pub completed: u64,
    pub errors: u64,
    pub punted: u64,
}

/// How full a ring was at one tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Occupancy {
    pub in_flight: u64,
    /// SQEs published and not yet consumed (fdinfo samples; None without them).
    pub sq_pending: Option<u32>,
    /// CQEs posted and not yet reaped (fdinfo samples; None without them).
    pub cq_pending: Option<u32>,
}

/// Cumulative activity of a ring's SQPOLL thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SqpollCounters {
    /// CPU time from scheduler events (0 when none were seen).
    pub runtime_ns: u64,
    /// Time the thread ran, and ran with work, from fdinfo (µs, 6.9+).
    pub total_us: Option<u64>,
    pub work_us: Option<u64>,
    pub submits: u64,
}

#[derive(Clone, Debug, Default)]
pub struct RingHistory {
    pub rates: Window<RingCounters>,
    pub sqpoll: Window<SqpollCounters>,
    pub occupancy: VecDeque<Occupancy>,
    /// Last time the counters moved (for evicting idle rings beyond [`MAX_RINGS`]).
    pub last_active_ns: u64,
}

#[derive(Clone, Debug, Default)]
pub struct History {
    pub rings: HashMap<u64, RingHistory>,
    /// Events applied by the analyzer.
    pub events: Window<u64>,
    /// Time of the last sample, if any.
    pub last_ns: Option<u64>,
}

impl History {
    /// The history of ring `ctx`. A ring seen for the first time starts from zero at
    /// the previous sample (or `start_ns`), so its first rate covers its first tick.
    pub fn ring(&mut self, ctx: u64, start_ns: u64) -> &mut RingHistory {
        if !self.rings.contains_key(&ctx) && self.rings.len() >= MAX_RINGS {
            let idle = self
                .rings
                .iter()
                .min_by_key(|(_, h)| h.last_active_ns)
                .map(|(c, _)| *c);
            if let Some(c) = idle {
                self.rings.remove(&c);
            }
        }
        let base = self.last_ns.unwrap_or(start_ns);
        self.rings.entry(ctx).or_insert_with(|| {
            let mut h = RingHistory::default();
            h.rates.push(base, RingCounters::default());
            h
        })
    }

    /// Whether a sample at `now` adds anything (the clock moved).
    pub fn is_new_time(&self, now: u64) -> bool {
        self.last_ns.is_none_or(|t| now > t)
    }
}

impl RingHistory {
    pub fn record(
        &mut self,
        now: u64,
        c: RingCounters,
        occ: Occupancy,
        sq: Option<SqpollCounters>,
        new_time: bool,
    ) {
        if self.rates.last().is_some_and(|(_, prev)| prev != c) {
            self.last_active_ns = now;
        }
        self.rates.push(now, c);
        if let Some(s) = sq {
            self.sqpoll.push(now, s);
        }
        if new_time {
            if self.occupancy.len() == OCCUPANCY_SAMPLES {
                self.occupancy.pop_front();
            }
            self.occupancy.push_back(occ);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_one_sample_before_its_start() {
        let mut w = Window::default();
        for i in 0..30u64 {
            w.push(i * 100_000_000, i * 10);
        }
        let ((t0, v0), (t1, v1)) = w.ends().unwrap();
        assert_eq!(t1 - t0, RATE_WINDOW_NS);
        assert_eq!(per_second(v0, v1, t1 - t0), 100.0);
    }

    #[test]
    fn window_is_bounded_and_same_time_replaces() {
        let mut w = Window::default();
        for i in 0..10_000u64 {
            w.push(i, i);
        }
        assert!(w.samples.len() <= MAX_RATE_SAMPLES);
        w.push(9_999, 5);
        assert_eq!(w.last(), Some((9_999, 5)));
    }

    #[test]
    fn ring_count_is_bounded() {
        let mut h = History::default();
        for ctx in 0..(MAX_RINGS as u64 + 10) {
            h.ring(ctx, 0).last_active_ns = ctx;
        }
        assert_eq!(h.rings.len(), MAX_RINGS);
        assert!(!h.rings.contains_key(&0));
    }

    #[test]
    fn occupancy_is_bounded() {
        let mut r = RingHistory::default();
        for i in 0..1000 {
            r.record(i, RingCounters::default(), Occupancy::default(), None, true);
        }
        assert_eq!(r.occupancy.len(), OCCUPANCY_SAMPLES);
    }
}
