//! Aggregating mode, seen from the analyzer.
//!
//! In aggregating mode the kernel only counts fast successful requests. What reaches
//! the analyzer then is: the detector-relevant events as usual, `agg_ops` /
//! `agg_latency` deltas that stand for the counted requests, submits rebuilt from the
//! kernel's in-flight table (late, with their real timestamps), and waits that carry
//! the kernel's own in-flight and ready counts. This module folds those in so that
//! the rest of the analyzer works the same in both modes.

use std::collections::HashSet;

use uringtrace_common::view::{self, EventView};
use uringtrace_common::{aggregate as agg, RawEvent};

use super::state::{Ring, State};

/// Overflowed CQEs whose submit was not seen yet, remembered (bounded) so that a
/// submit rebuilt later from the in-flight table is known to be complete already.
/// The kernel retires an overflowed request itself (its submit is streamed just
/// before the overflow); this is the fallback for the few it cannot find.
#[derive(Clone, Debug, Default)]
pub struct AggState {
    overflowed: HashSet<(u64, u64)>,
}

const MAX_REMEMBERED: usize = 65_536;

impl AggState {
    pub fn overflowed_unseen(&mut self, ctx: u64, user_data: u64) {
        if self.overflowed.len() < MAX_REMEMBERED {
            self.overflowed.insert((ctx, user_data));
        }
    }
}

/// A submit rebuilt from the in-flight table for a request whose CQE already
/// overflowed (no completion event exists for those): it is done, not in flight. It
/// still counts as submitted, and its latency is recorded as streaming mode records
/// it; the overflow's time is not kept, so the latency runs to the latest event
/// seen (an upper bound).
pub fn completed_by_overflow(st: &mut State, ev: &RawEvent, sub: &view::Submit) -> bool {
    let done = sub.from_table
        && !st.agg.overflowed.is_empty()
        && st.agg.overflowed.remove(&(ev.ctx, ev.user_data));
    if done {
        let ns = st.last_ns.saturating_sub(ev.ts_ns);
        let ring = st.rings.entry(ev.ctx).or_insert_with(|| Ring {
            ctx: ev.ctx,
            tgid: ev.tgid,
            ..Ring::default()
        });
        ring.submitted += 1;
        ring.latency.entry(ev.opcode).or_default().record(ns);
        ring.latency_all.record(ns);
        st.latency.entry(ev.opcode).or_default().record(ns);
    }
    done
}

/// Most requests one `agg_ops`/`agg_latency` event can stand for (a corrupt one
/// says more): 2^32, more than a second of the fastest io_uring at ~10^7 requests/s.
const MAX_DELTA: u64 = 1 << 32;

/// `agg_ops` and `agg_latency` events.
pub fn apply(st: &mut State, ev: &RawEvent) {
    // Deltas are polled: the last ones of a ring can arrive after its process exited
    // and the ring retired. They belong to its summary, not to a new ring.
    let live = st.rings.contains_key(&ev.ctx);
    let retired = if live {
        None
    } else {
        st.retired.iter().rposition(|r| r.ctx == ev.ctx)
    };
    let ring = match retired {
        Some(i) => &mut st.retired[i],
        None => st.rings.entry(ev.ctx).or_insert_with(|| Ring {
            ctx: ev.ctx,
            tgid: ev.tgid,
            ..Ring::default()
        }),
    };
    if let Some(ops) = view::AggOps::of(ev) {
        // Each counted request was one submit and one completion; a request that
        // ended unseen (CQE_SKIP_SUCCESS) one submit only.
        // The counts come from the event, and a corrupt recording can say anything:
        // one poll's delta is capped (the kernel counts far fewer requests between
        // two polls), so no sum of them comes near overflowing, here or where single
        // completions are added to the same counters.
        let requests = ops.requests.min(MAX_DELTA);
        let unseen = u64::from(ops.ended_unseen).min(MAX_DELTA);
        ring.submitted = ring.submitted.saturating_add(requests + unseen);
        ring.completed = ring.completed.saturating_add(requests);
        return;
    }
    let Some(lat) = view::AggLatency::of(ev) else {
        return;
    };
    let (b, n) = (lat.bucket as usize, lat.requests.min(MAX_DELTA));
    if b >= agg::LAT_BUCKETS || n == 0 {
        return;
    }
    // The bucket's middle stands for its samples (buckets are a quarter octave wide).
    let low = agg::lat_bucket_low(b);
    let high = if b + 1 < agg::LAT_BUCKETS {
        agg::lat_bucket_low(b + 1)
    } else {
        low.saturating_mul(2)
    };
    let v = low + (high - low) / 2;
    ring.latency.entry(ev.opcode).or_default().record_n(v, n);
    ring.latency_all.record_n(v, n);
    st.latency.entry(ev.opcode).or_default().record_n(v, n);
}
