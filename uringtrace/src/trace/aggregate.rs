//! Aggregating mode, userspace side: the kernel's cumulative per-CPU statistics
//! become delta events (`agg_ops`, `agg_latency`) in the event stream, and requests
//! that stay in the kernel's in-flight table past the slow threshold are streamed as
//! submits. Both go through the same iterator as every other event, so the analyzer
//! sees one stream whichever mode produced it.

use std::collections::HashMap;

use super::loader::{InflightTable, LoadError, Tracer};
use uringtrace_common::{
    aggregate::{self as agg, Inflight, OpAgg, LAT_BUCKETS},
    view, EventView, RawEvent,
};

/// Cumulative totals of one (ring, opcode), summed over CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    pub tgid: u32,
    pub count: u64,
    pub sampled: u64,
    pub lat_sum_ns: u64,
    pub ended_unseen: u64,
    pub hist: [u64; LAT_BUCKETS],
}

impl Totals {
    pub fn from_cpus(entries: &[OpAgg]) -> Totals {
        let mut t = Totals {
            tgid: entries.first().map_or(0, |e| e.tgid),
            count: 0,
            sampled: 0,
            lat_sum_ns: 0,
            ended_unseen: 0,
            hist: [0; LAT_BUCKETS],
        };
        for e in entries {
            t.count += e.count;
            t.ended_unseen += e.ended_unseen;
            t.sampled += e.sampled;
            t.lat_sum_ns += e.lat_sum_ns;
            for (a, b) in t.hist.iter_mut().zip(e.hist.iter()) {
                *a += b;
            }
        }
        t
    }
}

/// Remembers what was already reported, to emit only what is new.
#[derive(Default)]
pub struct Deltas {
    seen: HashMap<(u64, u8), Totals>,
}

impl Deltas {
    /// Appends events for the growth of `now` over what was seen before.
    pub fn push(
        &mut self,
        ctx: u64,
        opcode: u8,
        now: &Totals,
        ts_ns: u64,
        out: &mut Vec<RawEvent>,
    ) {
        let before = self.seen.get(&(ctx, opcode));
        let base = |v: u64, f: fn(&Totals) -> u64| v.saturating_sub(before.map_or(0, f));
        let count = base(now.count, |t| t.count);
        let unseen = base(now.ended_unseen, |t| t.ended_unseen);
        if count == 0 && unseen == 0 {
            return;
        }
        let header = RawEvent {
            ts_ns,
            ctx,
            tgid: now.tgid,
            opcode,
            ..RawEvent::default()
        };
        // The latency sum is over the sampled requests: scaled to all of them.
        let (sampled, lat_sum) = (
            base(now.sampled, |t| t.sampled),
            base(now.lat_sum_ns, |t| t.lat_sum_ns),
        );
        let ops = view::AggOps {
            requests: count,
            latency_sum_ns: match sampled {
                0 if now.sampled > 0 => now.lat_sum_ns / now.sampled * count,
                0 => 0,
                n => (u128::from(lat_sum) * u128::from(count) / u128::from(n)) as u64,
            },
            ended_unseen: unseen as u32,
        };
        out.push(ops.into_raw(header));
        if count == 0 {
            self.seen.insert((ctx, opcode), now.clone());
            return;
        }
        // The latency of a sample of the requests stands for all of them (a histogram
        // a step behind its count, read while programs update it, is treated alike),
        // and the histogram's total is exactly the requests counted.
        let mut sample: Vec<u64> = now
            .hist
            .iter()
            .enumerate()
            .map(|(b, &n)| n.saturating_sub(before.map_or(0, |t| t.hist[b])))
            .collect();
        if sample.iter().all(|&n| n == 0) {
            sample = now.hist.to_vec();
        }
        for (b, n) in scale(&sample, count) {
            let lat = view::AggLatency {
                bucket: b as u32,
                requests: n,
            };
            out.push(lat.into_raw(header));
        }
        self.seen.insert((ctx, opcode), now.clone());
    }
}

impl Deltas {
    /// (ring, opcode) pairs remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// A ring whose kernel statistics were zeroed ([`Tracer::forget_ring`]): a ring
    /// at the same address later starts from zero.
    pub fn forget(&mut self, ctx: u64) {
        self.seen.retain(|k, _| k.0 != ctx);
    }
}

/// Spreads `total` requests over buckets in proportion to `sample` (largest
/// remainders), so the histogram's total is exactly the number of requests counted.
pub fn scale(sample: &[u64], total: u64) -> Vec<(usize, u64)> {
    let n: u64 = sample.iter().sum();
    if n == 0 || total == 0 {
        return Vec::new();
    }
    let mut out: Vec<(usize, u64, u128)> = sample
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(b, &c)| {
            let exact = u128::from(c) * u128::from(total);
            (b, (exact / u128::from(n)) as u64, exact % u128::from(n))
        })
        .collect();
    let assigned: u64 = out.iter().map(|o| o.1).sum();
    let mut by_remainder: Vec<usize> = (0..out.len()).collect();
    by_remainder.sort_by(|&a, &b| out[b].2.cmp(&out[a].2).then(a.cmp(&b)));
    for &i in by_remainder.iter().take((total - assigned) as usize) {
        out[i].1 += 1;
    }
    out.into_iter()
        .filter(|o| o.1 > 0)
        .map(|(b, c, _)| (b, c))
        .collect()
}

/// Reads the kernel's aggregates into the event stream, every [`Poller::INTERVAL`]
/// and once more at the end of a session.
pub struct Poller {
    deltas: Deltas,
    table: InflightTable,
    slow_ns: u64,
}

impl Poller {
    /// Often enough for `top`'s once-a-second refresh; each poll reads a few hundred
    /// map entries and scans the 4 MiB table.
    pub const INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

    pub fn new(tracer: &Tracer, slow_ns: u64) -> Result<Poller, LoadError> {
        Ok(Poller {
            deltas: Deltas::default(),
            table: tracer.inflight_table()?,
            slow_ns,
        })
    }

    /// (slots of the in-flight table in use, (ring, opcode) totals remembered).
    pub fn sizes(&self) -> (usize, usize) {
        (self.table.used(), self.deltas.len())
    }

    pub fn poll(
        &mut self,
        tracer: &Tracer,
        now_ns: u64,
        out: &mut Vec<RawEvent>,
    ) -> Result<(), LoadError> {
        self.poll_held_since(tracer, now_ns, self.slow_ns, out)
    }

    /// Forgets rings that are gone: their statistics are read into `out` first, then
    /// the kernel frees their slots ([`Tracer::forget_ring`]). `dead` processes also
    /// leave the process filter ([`Tracer::forget_process`]).
    pub fn forget(
        &mut self,
        tracer: &mut Tracer,
        rings: &[u64],
        dead: &[u32],
        now_ns: u64,
        out: &mut Vec<RawEvent>,
    ) -> Result<(), LoadError> {
        self.poll(tracer, now_ns, out)?;
        let mut gone = Vec::new();
        for &tgid in dead {
            gone.extend(tracer.forget_process(tgid)?);
        }
        for &ctx in rings {
            tracer.forget_ring(ctx)?;
            gone.push(ctx);
        }
        for ctx in gone {
            self.deltas.forget(ctx);
        }
        Ok(())
    }

    /// A ring was created at the address of `ctx` while the old ring there still held
    /// its slot (the programs marked it retired): the old ring's statistics go into
    /// `out` dated `ts_ns` (just before the new ring's create, so that the analyzer
    /// counts them to the old ring), then the slot is freed for the new ring.
    pub fn retire_reused(
        &mut self,
        tracer: &mut Tracer,
        ctx: u64,
        ts_ns: u64,
        out: &mut Vec<RawEvent>,
    ) -> Result<(), LoadError> {
        for (opcode, cpus) in tracer.op_aggs(agg::ring_index(ctx), ctx)? {
            self.deltas
                .push(ctx, opcode, &Totals::from_cpus(&cpus), ts_ns, out);
        }
        tracer.release_slot(ctx)?;
        self.deltas.forget(ctx);
        Ok(())
    }

    /// The last poll of a session: besides the statistics, every request still held
    /// in the table is streamed, however young. Streaming mode shows each of them in
    /// flight at the end; without this, aggregating mode would show only those older
    /// than the slow threshold.
    pub fn poll_final(
        &mut self,
        tracer: &Tracer,
        now_ns: u64,
        out: &mut Vec<RawEvent>,
    ) -> Result<(), LoadError> {
        self.poll_held_since(tracer, now_ns, 0, out)
    }

    fn poll_held_since(
        &mut self,
        tracer: &Tracer,
        now_ns: u64,
        held_ns: u64,
        out: &mut Vec<RawEvent>,
    ) -> Result<(), LoadError> {
        for (slot, ring) in tracer.ring_aggs()? {
            // A slot retired by a new ring at its address is read on that ring's create
            // (Poller::retire_reused), dated before it; read now, its counts would go to
            // the new ring. Only the last poll takes it (its create event was lost).
            if ring.retired != 0 && held_ns != 0 {
                continue;
            }
            for (opcode, cpus) in tracer.op_aggs(slot, ring.ctx)? {
                self.deltas
                    .push(ring.ctx, opcode, &Totals::from_cpus(&cpus), now_ns, out);
            }
        }
        self.table
            .scan(|slot| match held_submit(slot, now_ns, held_ns) {
                Some(ev) => {
                    out.push(ev);
                    true
                }
                None => false,
            });
        Ok(())
    }
}

/// The submit event of a request still held in the in-flight table, when it has
/// been there at least `slow_ns`. The caller marks the slot streamed.
pub fn held_submit(slot: &Inflight, now_ns: u64, slow_ns: u64) -> Option<RawEvent> {
    if slot.req == 0 || slot.streamed != 0 || now_ns.saturating_sub(slot.ts_ns) < slow_ns {
        return None;
    }
    let header = RawEvent {
        ts_ns: slot.ts_ns,
        ctx: slot.ctx,
        req: slot.req,
        user_data: slot.user_data,
        pid: slot.pid,
        tgid: slot.tgid,
        opcode: slot.opcode,
        role: slot.role,
        ..RawEvent::default()
    };
    let submit = view::Submit {
        req_flags: slot.flags,
        // The classic submit's `sq_thread`: on an SQPOLL ring only its thread submits.
        sq_thread: u32::from(slot.role == uringtrace_common::Role::SqPoll as u8),
        fd: slot.fd,
        fd_known: slot.fd_known != 0,
        from_table: true,
        ..view::Submit::default()
    };
    Some(submit.into_raw(header))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uringtrace_common::EventKind;

    fn op(count: u64, bucket: usize, n: u64) -> OpAgg {
        let mut o = OpAgg {
            ctx: 0xabc,
            tgid: 7,
            opcode: 0,
            count,
            sampled: count,
            lat_sum_ns: count * 100,
            ..OpAgg::default()
        };
        o.hist[bucket] = n;
        o
    }

    #[test]
    fn scaling_keeps_the_total_exact() {
        assert_eq!(scale(&[0, 1, 0, 1], 16), vec![(1, 8), (3, 8)]);
        assert_eq!(scale(&[1, 2], 10), vec![(0, 3), (1, 7)]);
        assert_eq!(scale(&[3, 0], 3), vec![(0, 3)]);
        assert!(scale(&[0, 0], 5).is_empty());
        assert!(scale(&[1], 0).is_empty());
        let s = scale(&[7, 11, 13, 1], 1_000_003);
        assert_eq!(s.iter().map(|x| x.1).sum::<u64>(), 1_000_003);
    }

    #[test]
    fn sampled_latency_stands_for_every_request() {
        let mut d = Deltas::default();
        let mut out = Vec::new();
        // 32 requests, 2 of them measured (one in bucket 3, one in bucket 6): 100 and
        // 300 ns.
        let mut o = op(32, 3, 1);
        o.sampled = 2;
        o.lat_sum_ns = 400;
        o.hist[6] = 1;
        d.push(0xabc, 0, &Totals::from_cpus(&[o]), 1000, &mut out);
        assert_eq!((out[0].aux, out[0].aux2), (32, 32 * 200));
        let lat: Vec<(u32, u64)> = out[1..].iter().map(|e| (e.args[0], e.aux)).collect();
        assert_eq!(lat, vec![(3, 16), (6, 16)]);
        // 16 more requests, none measured: spread like everything so far.
        out.clear();
        let mut o2 = o;
        o2.count = 48;
        d.push(0xabc, 0, &Totals::from_cpus(&[o2]), 2000, &mut out);
        assert_eq!((out[0].aux, out[0].aux2), (16, 16 * 200));
        let lat: Vec<(u32, u64)> = out[1..].iter().map(|e| (e.args[0], e.aux)).collect();
        assert_eq!(lat, vec![(3, 8), (6, 8)]);
    }

    #[test]
    fn sums_cpus_and_emits_only_growth() {
        let mut d = Deltas::default();
        let mut out = Vec::new();
        let t = Totals::from_cpus(&[op(3, 2, 3), op(2, 5, 2)]);
        assert_eq!((t.count, t.lat_sum_ns, t.tgid), (5, 500, 7));
        d.push(0xabc, 0, &t, 1000, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].kind, EventKind::AggOps as u16);
        assert_eq!(
            (out[0].aux, out[0].aux2, out[0].ctx, out[0].tgid),
            (5, 500, 0xabc, 7)
        );
        assert_eq!((out[1].args[0], out[1].aux), (2, 3));
        assert_eq!((out[2].args[0], out[2].aux), (5, 2));

        // Nothing new: nothing emitted. One more request in bucket 5: one of each.
        out.clear();
        d.push(0xabc, 0, &t, 2000, &mut out);
        assert!(out.is_empty());
        let t2 = Totals::from_cpus(&[op(3, 2, 3), op(3, 5, 3)]);
        d.push(0xabc, 0, &t2, 3000, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].aux, out[0].aux2), (1, 100));
        assert_eq!((out[1].args[0], out[1].aux), (5, 1));
    }

    #[test]
    fn requests_that_ended_unseen_are_submits_without_completions() {
        let mut d = Deltas::default();
        let mut out = Vec::new();
        let mut o = op(4, 2, 4);
        o.ended_unseen = 3;
        d.push(0xabc, 0, &Totals::from_cpus(&[o]), 1000, &mut out);
        assert_eq!(out[0].kind, EventKind::AggOps as u16);
        assert_eq!((out[0].aux, out[0].args[agg::AGG_OPS_UNSEEN_ARG]), (4, 3));
        // Only more unseen ones: an agg_ops event with no counted request and no
        // latency events.
        out.clear();
        o.ended_unseen = 5;
        d.push(0xabc, 0, &Totals::from_cpus(&[o]), 2000, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].aux, out[0].args[agg::AGG_OPS_UNSEEN_ARG]), (0, 2));
    }

    #[test]
    fn a_forgotten_ring_starts_from_zero() {
        let mut d = Deltas::default();
        let mut out = Vec::new();
        d.push(0xabc, 0, &Totals::from_cpus(&[op(5, 2, 5)]), 1000, &mut out);
        // The kernel zeroed the ring's statistics; a ring at the same address counts 2.
        d.forget(0xabc);
        out.clear();
        d.push(0xabc, 0, &Totals::from_cpus(&[op(2, 2, 2)]), 2000, &mut out);
        assert_eq!(out[0].aux, 2);
    }

    #[test]
    fn only_old_unstreamed_slots_become_submits() {
        let slot = Inflight {
            req: 0x1000,
            ts_ns: 1_000,
            ctx: 0xabc,
            user_data: 42,
            flags: 0,
            pid: 10,
            tgid: 9,
            fd: 3,
            opcode: 22,
            role: uringtrace_common::Role::SqPoll as u8,
            streamed: 0,
            fd_known: 0,
            jiffies: 0,
        };
        assert!(held_submit(&slot, 1_500, 1_000).is_none(), "not slow yet");
        let ev = held_submit(&slot, 2_000, 1_000).expect("slow");
        assert_eq!(ev.kind, EventKind::Submit as u16);
        assert_eq!(
            (ev.ts_ns, ev.req, ev.user_data, ev.opcode),
            (1_000, 0x1000, 42, 22)
        );
        assert_eq!(
            (ev.args[1], ev.args[2], ev.args[3]),
            (1, 3, agg::SUBMIT_FROM_TABLE)
        );
        // A slot whose fd 0 was read (registered-file slot 0) keeps saying so.
        let slot0 = Inflight {
            fd: 0,
            fd_known: 1,
            ..slot
        };
        let ev = held_submit(&slot0, 2_000, 1_000).expect("slow");
        assert_eq!(
            (ev.args[1], ev.args[2]),
            (1 | uringtrace_common::view::SUBMIT_FD_KNOWN, 0)
        );
        let streamed = Inflight {
            streamed: 1,
            ..slot
        };
        assert!(held_submit(&streamed, 9_000, 1_000).is_none());
        let free = Inflight { req: 0, ..slot };
        assert!(held_submit(&free, 9_000, 1_000).is_none());
    }
}
