//! Releasing what the kernel programs keep about rings and processes that are gone:
//! a ring's place in the ring filter (CTXS), its aggregation slot (RINGS) and
//! per-CPU statistics (OPSTATS), a process's io threads and filter entry. Without it
//! a long `top` or host-wide session would run out of slots (16) and stream every
//! later ring in full, and a reused ring address would pass the filter as the old
//! ring. See docs/architecture.md, "Slots and filter entries live as long as their
//! rings".

use aya::maps::{Array as BpfArray, HashMap as BpfHashMap, MapData, PerCpuArray};
use uringtrace_common::aggregate::{self as agg, OpAgg, RingAgg};

use super::loader::{ignore_missing, LoadError, Tracer};

fn hash_map_mut<'a, K: aya::Pod>(
    tracer: &'a mut Tracer,
    name: &'static str,
) -> Result<BpfHashMap<&'a mut MapData, K, u32>, LoadError> {
    BpfHashMap::try_from(tracer.map_mut(name).ok_or(LoadError::MissingMap(name))?)
        .map_err(|error| LoadError::Map { name, error })
}

/// Removes `key` from a hash map when it is there.
fn remove<K: aya::Pod>(tracer: &mut Tracer, name: &'static str, key: K) -> Result<(), LoadError> {
    let mut map = hash_map_mut::<K>(tracer, name)?;
    if map.get(&key, 0).is_ok() {
        ignore_missing(map.remove(&key)).map_err(|error| LoadError::Map { name, error })?;
    }
    Ok(())
}

impl Tracer {
    /// Forgets a ring that is gone (its process exited or closed its fd): it leaves
    /// the ring filter (CTXS), and in aggregating mode its slot in RINGS is freed and
    /// its per-CPU statistics zeroed ([`Tracer::release_slot`]).
    ///
    /// Returns true when the ring held an aggregation slot.
    pub fn forget_ring(&mut self, ctx: u64) -> Result<bool, LoadError> {
        if ctx == 0 {
            return Ok(false);
        }
        remove(self, "CTXS", ctx)?;
        let held = self.release_slot(ctx)?;
        // Task caches remember the last ring each task put into CTXS.
        self.bump_filter_gen()?;
        Ok(held)
    }

    /// Frees the aggregation slot of `ctx` and zeroes its per-CPU statistics, so that
    /// a later ring can be aggregated in that slot instead of being streamed in full.
    /// Read the ring's statistics first ([`super::aggregate::Poller::poll`]): what they
    /// held is gone afterwards. Returns false when `ctx` holds no slot (streamed in
    /// full: another ring had its slot; or never aggregated).
    pub fn release_slot(&mut self, ctx: u64) -> Result<bool, LoadError> {
        let slot = agg::ring_index(ctx);
        let rings_err = |error| LoadError::Map {
            name: "RINGS",
            error,
        };
        let held = {
            let rings: BpfArray<&MapData, RingAgg> =
                BpfArray::try_from(self.map("RINGS").ok_or(LoadError::MissingMap("RINGS"))?)
                    .map_err(rings_err)?;
            rings.get(&slot, 0).map_err(rings_err)?.ctx == ctx
        };
        if !held {
            return Ok(false);
        }
        // Statistics first, then the slot: a ring that claims the slot once it is free
        // starts from zero.
        let ops_err = |error| LoadError::Map {
            name: "OPSTATS",
            error,
        };
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| LoadError::Cpus(e))?;
        let mut ops: PerCpuArray<&mut MapData, OpAgg> = PerCpuArray::try_from(
            self.map_mut("OPSTATS")
                .ok_or(LoadError::MissingMap("OPSTATS"))?,
        )
        .map_err(ops_err)?;
        for op in 0..agg::OPCODE_SLOTS {
            let zero = aya::maps::PerCpuValues::try_from(vec![OpAgg::default(); cpus])
                .map_err(LoadError::Cpus)?;
            ops.set(agg::op_index(slot, op as u8), zero, 0)
                .map_err(ops_err)?;
        }
        let mut rings: BpfArray<&mut MapData, RingAgg> = BpfArray::try_from(
            self.map_mut("RINGS")
                .ok_or(LoadError::MissingMap("RINGS"))?,
        )
        .map_err(rings_err)?;
        rings.set(slot, RingAgg::default(), 0).map_err(rings_err)?;
        Ok(true)
    }

    /// Whether the slot of `ctx` is held by an older ring at the same address: a new
    /// ring was created there before the old one was forgotten (the programs then
    /// mark the slot retired; see `RingAgg::retired`).
    pub fn slot_retired(&self, ctx: u64) -> Result<bool, LoadError> {
        let rings_err = |error| LoadError::Map {
            name: "RINGS",
            error,
        };
        let rings: BpfArray<&MapData, RingAgg> =
            BpfArray::try_from(self.map("RINGS").ok_or(LoadError::MissingMap("RINGS"))?)
                .map_err(rings_err)?;
        let r = rings.get(&agg::ring_index(ctx), 0).map_err(rings_err)?;
        Ok(r.ctx == ctx && r.retired != 0)
    }

    /// Forgets a process that exited: every ring it owned ([`Tracer::forget_ring`]),
    /// its io threads, a CQ overflow it left unflushed, and its place in the process
    /// filter (its pid may be reused by an unrelated process). Returns the rings
    /// forgotten.
    pub fn forget_process(&mut self, tgid: u32) -> Result<Vec<u64>, LoadError> {
        let mut rings: Vec<u64> = self
            .filtered_rings()?
            .into_iter()
            .filter(|&(_, owner)| owner == tgid)
            .map(|(ctx, _)| ctx)
            .collect();
        rings.extend(
            self.ring_aggs()?
                .into_iter()
                .filter(|(_, r)| r.tgid == tgid)
                .map(|(_, r)| r.ctx),
        );
        rings.sort_unstable();
        rings.dedup();
        for &ctx in &rings {
            self.forget_ring(ctx)?;
        }
        let tids: Vec<u32> = super::occupancy::entries::<u32>(self, "IOTHREADS")?
            .into_iter()
            .filter(|&(_, owner)| owner == tgid)
            .map(|(tid, _)| tid)
            .collect();
        for tid in tids {
            remove(self, "IOTHREADS", tid)?;
        }
        remove(self, "OVERFLOWED", tgid)?;
        remove(self, "TGIDS", tgid)?;
        self.bump_filter_gen()?;
        Ok(rings)
    }

    /// The rings in the ring filter (CTXS), as (ctx, owner tgid).
    pub fn filtered_rings(&self) -> Result<Vec<(u64, u32)>, LoadError> {
        super::occupancy::entries::<u64>(self, "CTXS")
    }
}
