//! Reading what the programs keep in their maps: the per-CPU counters, aggregating
//! mode's per-ring and per-opcode statistics and in-flight table, and the kernel's
//! run-time statistics of the programs themselves.

use aya::maps::{Array as BpfArray, PerCpuArray};
use uringtrace_common::{
    aggregate::{self as agg, Inflight, OpAgg, RingAgg},
    Counter, NR_COUNTERS,
};

use super::{KernelCounters, LoadError, Tracer};

impl Tracer {
    pub fn counters(&self) -> Result<KernelCounters, LoadError> {
        let map_err = |error| LoadError::Map {
            name: "COUNTERS",
            error,
        };
        let arr: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.ebpf
                .map("COUNTERS")
                .ok_or(LoadError::MissingMap("COUNTERS"))?,
        )
        .map_err(map_err)?;
        let mut c = KernelCounters {
            undecodable: self.comms.undecodable,
            ..KernelCounters::default()
        };
        for i in 0..NR_COUNTERS {
            let v: Vec<u64> = arr.get(&i, 0).map_err(map_err)?.iter().copied().collect();
            match i {
                x if x == Counter::Emitted as u32 => c.emitted = v,
                x if x == Counter::Dropped as u32 => c.dropped = v,
                x if x == Counter::Filtered as u32 => c.filtered = v,
                x if x == Counter::ReadErrors as u32 => c.read_errors = v,
                x if x == Counter::Aggregated as u32 => c.aggregated = v,
                _ => c.promoted = v,
            }
        }
        Ok(c)
    }

    /// Aggregating mode: the claimed ring slots, as (slot, entry).
    pub fn ring_aggs(&self) -> Result<Vec<(u32, RingAgg)>, LoadError> {
        let map_err = |error| LoadError::Map {
            name: "RINGS",
            error,
        };
        let arr: BpfArray<_, RingAgg> = BpfArray::try_from(
            self.ebpf
                .map("RINGS")
                .ok_or(LoadError::MissingMap("RINGS"))?,
        )
        .map_err(map_err)?;
        let mut out = Vec::new();
        for i in 0..agg::RING_SLOTS {
            let r = arr.get(&i, 0).map_err(map_err)?;
            if r.ctx != 0 {
                out.push((i, r));
            }
        }
        Ok(out)
    }

    /// Aggregating mode: per-opcode statistics of ring slot `slot` as
    /// (opcode, per-CPU entries that belong to `ctx`).
    pub fn op_aggs(&self, slot: u32, ctx: u64) -> Result<Vec<(u8, Vec<OpAgg>)>, LoadError> {
        let map_err = |error| LoadError::Map {
            name: "OPSTATS",
            error,
        };
        let arr: PerCpuArray<_, OpAgg> = PerCpuArray::try_from(
            self.ebpf
                .map("OPSTATS")
                .ok_or(LoadError::MissingMap("OPSTATS"))?,
        )
        .map_err(map_err)?;
        let mut out = Vec::new();
        for op in 0..agg::OPCODE_SLOTS {
            let per_cpu = arr
                .get(&agg::op_index(slot, op as u8), 0)
                .map_err(map_err)?;
            let mine: Vec<OpAgg> = per_cpu.iter().filter(|e| e.ctx == ctx).copied().collect();
            if let Some(first) = mine.first() {
                out.push((first.opcode as u8, mine));
            }
        }
        Ok(out)
    }

    /// Aggregating mode: the kernel's in-flight table, mapped into our memory.
    pub fn inflight_table(&self) -> Result<InflightTable, LoadError> {
        use std::os::fd::{AsFd as _, AsRawFd as _};
        let Some(aya::maps::Map::Array(data)) = self.ebpf.map("INFLIGHT") else {
            return Err(LoadError::MissingMap("INFLIGHT"));
        };
        let len = agg::INFLIGHT_SLOTS as usize * std::mem::size_of::<Inflight>();
        // SAFETY: mapping a BPF_F_MMAPABLE array of exactly this size; the mapping
        // keeps the map alive until munmap.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                data.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(LoadError::Mmap(std::io::Error::last_os_error()));
        }
        Ok(InflightTable {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Cumulative (run time in ns, run count) of our loaded programs, as the kernel
    /// counts them while BPF statistics are on (`kernel.bpf_stats_enabled`, or a
    /// BPF_ENABLE_STATS fd; 5.1+). A program whose info cannot be read counts 0.
    pub fn program_run_stats(&self) -> (u64, u64) {
        self.ebpf
            .programs()
            .filter_map(|(_, p)| p.info().ok())
            .fold((0, 0), |(t, n), info| {
                (t + info.run_time().as_nanos() as u64, n + info.run_count())
            })
    }
}

/// The kernel's in-flight table (aggregating mode), shared with the programs.
pub struct InflightTable {
    ptr: *mut Inflight,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access goes through volatile reads
// and writes of whole fields.
unsafe impl Send for InflightTable {}

impl InflightTable {
    /// Slots holding a request now.
    pub fn used(&self) -> usize {
        (0..agg::INFLIGHT_SLOTS as usize)
            // SAFETY: i is within the mapping; a racy read of one field is fine here.
            .filter(|&i| unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*self.ptr.add(i)).req)) } != 0)
            .count()
    }

    /// Visits every occupied slot with a consistent copy; `f` returns true to mark
    /// the slot streamed (its completion will then be streamed too).
    pub fn scan(&mut self, mut f: impl FnMut(&Inflight) -> bool) {
        for i in 0..agg::INFLIGHT_SLOTS as usize {
            // SAFETY: i is within the mapping; the kernel may write concurrently, so
            // the copy is re-validated by the request pointer.
            unsafe {
                let p = self.ptr.add(i);
                let req = std::ptr::read_volatile(std::ptr::addr_of!((*p).req));
                if req == 0 {
                    continue;
                }
                let copy = std::ptr::read_volatile(p);
                if copy.req != req {
                    continue;
                }
                if f(&copy) && std::ptr::read_volatile(std::ptr::addr_of!((*p).req)) == req {
                    std::ptr::write_volatile(std::ptr::addr_of_mut!((*p).streamed), 1);
                }
            }
        }
    }
}

impl Drop for InflightTable {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what inflight_table mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::KernelCounters;
    use crate::trace::wire::Comms;

    /// A sample cut short is no event: it is skipped, and counted with the losses
    /// that every view and report shows (in the total: its CPU is unknown).
    #[test]
    fn a_short_sample_is_counted_as_lost() {
        let mut comms = Comms::with_fallback(|_, _| [0; 16]);
        let mut out = Vec::new();
        assert!(!comms.decode_into(&[1, 0, 0], &mut out));
        assert!(!comms.decode_into(&[], &mut out));
        assert!(out.is_empty());
        assert_eq!(comms.undecodable, 2);
        let c = KernelCounters {
            dropped: vec![3, 0],
            undecodable: comms.undecodable,
            ..KernelCounters::default()
        };
        assert_eq!(c.total_dropped(), 5);
        let lost = c.lost();
        assert_eq!(
            (lost.total, &lost.per_cpu[..], lost.known),
            (5, &[3, 0][..], true)
        );
        assert!(lost.inconclusive());
        let only_short = KernelCounters {
            dropped: vec![0, 0],
            undecodable: 1,
            ..KernelCounters::default()
        };
        assert_eq!(only_short.lost().total, 1);
        assert!(only_short.lost().inconclusive());
    }
}
