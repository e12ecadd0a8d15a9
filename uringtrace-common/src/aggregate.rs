//! Aggregating mode: the maps the kernel fills instead of streaming every request.
//!
//! A per-request HASH map (insert at submit, delete at completion) costs ~120 ns per
//! operation on 6.18, more than the tracepoint itself; these structures are all
//! direct-mapped ARRAYs, whose lookups the verifier inlines into a few instructions.
//!
//! - [`Inflight`]: a table indexed by a hash of the request pointer. Submit writes
//!   the request's slot; completion finds it there and computes the latency. Two
//!   requests in flight at once in one slot: the older one's submit is streamed (it is
//!   *promoted*) before the newer takes the slot, and its completion, which then finds
//!   no slot, is streamed too. Nothing held back is ever overwritten unseen.
//! - A user_data index (`ud_index`): the request most recently submitted with a given
//!   (ring, user_data). An overflowed CQE names no request, only its user_data: the
//!   overflow program finds the request's in-flight slot through this index, streams
//!   its submit and frees the slot, so the request is retired like any completion.
//! - [`RingAgg`]: one global entry per ring (claimed by ctx): submits and completions
//!   seen, so a wait can be judged against what is in flight.
//! - [`OpAgg`]: per-CPU, per (ring slot, opcode): count and latency histogram of the
//!   requests that were only counted.

/// Slots of the in-flight table (a power of two).
pub const INFLIGHT_SLOTS: u32 = 1 << 16;
/// Slots of the (ring, user_data) -> request index (8 bytes each).
pub const UD_SLOTS: u32 = 1 << UD_BITS;
const UD_BITS: u32 = 16;
/// Rings that can be aggregated at once; a ring whose slot is taken is streamed.
pub const RING_SLOTS: u32 = 16;
/// Opcodes per ring (6.18 has 58; higher ones share the last entry).
pub const OPCODE_SLOTS: u32 = 64;
/// Latency buckets: 4 per power of two from 64 ns to ~137 s.
pub const LAT_BUCKETS: usize = 128;
/// Latencies are bucketed in 16 ns units.
const LAT_UNIT_SHIFT: u32 = 4;

/// `IORING_CQE_F_MORE`: a multishot request posted a CQE and goes on.
pub const CQE_F_MORE: u32 = 1 << 1;
/// `REQ_F_LINK | REQ_F_HARDLINK` (the IOSQE_IO_LINK / IOSQE_IO_HARDLINK bits, which
/// the kernel keeps at the same positions in req->flags since 5.1).
pub const REQ_LINK_FLAGS: u64 = (1 << 2) | (1 << 3);

/// `RawEvent::args[3]` of a submit event rebuilt from the in-flight table (its
/// timestamp is the real submit time; it reaches userspace late).
pub const SUBMIT_FROM_TABLE: u32 = 1;
/// The `RawEvent::args` index of an `agg_ops` event that holds the requests that
/// ended unseen (one submit, no completion; [`OpAgg::ended_unseen`]). `aux` is the
/// requests counted (one submit and one completion each), `aux2` their latency sum.
pub const AGG_OPS_UNSEEN_ARG: usize = 1;

/// `RawEvent::args[3]` of a cqring_wait event that carries the kernel's own counts:
/// `aux` = requests in flight on that ring, `aux2` = CQEs ready in the CQ ring.
pub const WAIT_WITH_COUNTS: u32 = 1;
/// `RawEvent::args[3]` of a cqring_wait event (streaming mode) that carries only the
/// CQEs ready in the CQ ring, in `aux2`.
pub const WAIT_WITH_READY: u32 = 2;

/// One in-flight request (64 bytes: one cache line).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Inflight {
    /// 0: free.
    pub req: u64,
    pub ts_ns: u64,
    pub ctx: u64,
    pub user_data: u64,
    /// req->flags at submit.
    pub flags: u64,
    pub pid: u32,
    pub tgid: u32,
    /// The SQE's fd (as the submit event's args[2]).
    pub fd: u32,
    pub opcode: u8,
    pub role: u8,
    /// 1: the submit event was streamed, so the completion must be too.
    pub streamed: u8,
    /// 1: `fd` is the SQE's even when 0 ([`crate::view::SUBMIT_FD_KNOWN`]).
    pub fd_known: u8,
    /// jiffies at submit: the completion reads the precise clock only when jiffies
    /// moved since (the request may be slow) or the request is sampled.
    pub jiffies: u64,
}
const _: () = assert!(core::mem::size_of::<Inflight>() == 64);

/// Per-ring counts (global, updated with atomic adds).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RingAgg {
    /// 0: free; otherwise the ring that owns the slot.
    pub ctx: u64,
    pub tgid: u32,
    /// Non-zero: a new ring was created at `ctx`'s address while the old one still
    /// held the slot. The new ring is streamed until userspace has read the old one's
    /// statistics and freed the slot (the per-CPU statistics cannot tell the two
    /// apart, and a program cannot zero other CPUs' values).
    pub retired: u32,
    pub submitted: u64,
    /// Final completions (CQEs without F_MORE posted into the CQ ring, and overflowed
    /// CQEs) of requests submitted while traced.
    pub completed: u64,
    /// Overflowed final CQEs whose request the kernel could not find through the
    /// user_data index (submitted before tracing, its index entry taken by another
    /// request, or already streamed and evicted). While non-zero, a held request whose
    /// pointer comes back is promoted rather than counted: it may be one of these.
    pub overflow_unmatched: u64,
}
const _: () = assert!(core::mem::size_of::<RingAgg>() == 40);

/// Per-CPU statistics of the requests that were only counted.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpAgg {
    pub ctx: u64,
    pub tgid: u32,
    pub opcode: u32,
    /// Requests only counted.
    pub count: u64,
    /// Of those, the ones whose latency was measured: a deterministic sample, plus
    /// every request that spanned a jiffy; all of them on the classic path.
    /// `lat_sum_ns` and `hist` are over these.
    pub sampled: u64,
    pub lat_sum_ns: u64,
    /// Requests held back that ended without any CQE the programs saw (a submit of
    /// the same request pointer found them still in the table: IOSQE_CQE_SKIP_SUCCESS).
    /// Each was one submit and no completion, as streaming mode counts them.
    pub ended_unseen: u64,
    pub hist: [u64; LAT_BUCKETS],
}
const _: () = assert!(core::mem::size_of::<OpAgg>() == 48 + 8 * LAT_BUCKETS);

impl Default for OpAgg {
    fn default() -> Self {
        OpAgg {
            ctx: 0,
            tgid: 0,
            opcode: 0,
            count: 0,
            sampled: 0,
            lat_sum_ns: 0,
            ended_unseen: 0,
            hist: [0; LAT_BUCKETS],
        }
    }
}

/// Slot of a request pointer. io_kiocb objects are 64-byte aligned slab objects;
/// folding in higher bits spreads slabs that sit a page apart.
#[inline(always)]
pub fn inflight_index(req: u64) -> u32 {
    (((req >> 6) ^ (req >> 18)) as u32) & (INFLIGHT_SLOTS - 1)
}

/// Slot of a (ring, user_data) pair in the user_data index. user_data is often a
/// counter or a pointer. Folding the high bits into the low ones keeps consecutive
/// counters in consecutive slots (no collision, and 8 submits share a cache line: a
/// Fibonacci hash, which scatters them, measured 1-2 ns more per submit on a NOP
/// storm; this one is within noise of no index at all),
/// and spreads pointers like a hash.
#[inline(always)]
pub fn ud_index(ctx: u64, user_data: u64) -> u32 {
    let u = user_data ^ (user_data >> UD_BITS) ^ (user_data >> (2 * UD_BITS));
    ((u ^ (ctx >> 10)) as u32) & (UD_SLOTS - 1)
}

/// Slot of a ring pointer (io_ring_ctx is a multi-KiB kmalloc object).
#[inline(always)]
pub fn ring_index(ctx: u64) -> u32 {
    (((ctx >> 12) ^ (ctx >> 20) ^ (ctx >> 7)) as u32) & (RING_SLOTS - 1)
}

/// Index into the per-CPU OpAgg array.
#[inline(always)]
pub fn op_index(ring_slot: u32, opcode: u8) -> u32 {
    let op = if (opcode as u32) < OPCODE_SLOTS {
        opcode as u32
    } else {
        OPCODE_SLOTS - 1
    };
    ring_slot * OPCODE_SLOTS + op
}

/// Latency bucket: 4 sub-buckets per power of two (0: below 64 ns). Written with
/// compares and shifts only (no loops) so it stays cheap for the verifier.
#[inline(always)]
pub fn lat_bucket(ns: u64) -> usize {
    let v = ns >> LAT_UNIT_SHIFT;
    if v < 4 {
        return 0;
    }
    let mut x = v;
    let mut log = 0u32;
    if x >= 1 << 32 {
        x >>= 32;
        log += 32;
    }
    if x >= 1 << 16 {
        x >>= 16;
        log += 16;
    }
    if x >= 1 << 8 {
        x >>= 8;
        log += 8;
    }
    if x >= 1 << 4 {
        x >>= 4;
        log += 4;
    }
    if x >= 1 << 2 {
        x >>= 2;
        log += 2;
    }
    if x >= 1 << 1 {
        log += 1;
    }
    // log >= 2 here; the two bits below the leading one pick the sub-bucket.
    let sub = ((v >> (log - 2)) & 3) as usize;
    let b = 1 + 4 * (log as usize - 2) + sub;
    if b >= LAT_BUCKETS {
        LAT_BUCKETS - 1
    } else {
        b
    }
}

/// The smallest latency that falls in bucket `b`.
pub fn lat_bucket_low(b: usize) -> u64 {
    if b == 0 {
        return 0;
    }
    let log = ((b - 1) / 4) as u32 + 2;
    let sub = ((b - 1) % 4) as u64;
    ((1u64 << log) | (sub << (log - 2))) << LAT_UNIT_SHIFT
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounded() {
        let mut last = 0;
        let mut v = 1u64;
        while v < 1 << 40 {
            let b = lat_bucket(v);
            assert!(b >= last, "bucket of {v} went down");
            assert!(b < LAT_BUCKETS);
            assert!(
                lat_bucket_low(b) <= v || b == LAT_BUCKETS - 1,
                "{v} below its bucket"
            );
            last = b;
            v = v * 9 / 8 + 1;
        }
        assert_eq!(lat_bucket(0), 0);
        assert_eq!(lat_bucket(63), 0);
        assert_eq!(lat_bucket(64), 1);
        assert_eq!(lat_bucket(79), 1);
        assert_eq!(lat_bucket_low(1), 64);
        // 4 sub-buckets per power of two: 64, 80, 96, 112, then 128.
        assert_eq!(lat_bucket(80), 2);
        assert_eq!(lat_bucket(127), 4);
        assert_eq!(lat_bucket(128), 5);
        assert_eq!(lat_bucket_low(5), 128);
        assert_eq!(lat_bucket(u64::MAX), LAT_BUCKETS - 1);
    }

    #[test]
    fn every_bucket_low_maps_back_to_itself() {
        for b in 1..LAT_BUCKETS - 1 {
            assert_eq!(lat_bucket(lat_bucket_low(b)), b, "bucket {b}");
        }
    }

    #[test]
    fn user_data_index_spreads_counters_and_pointers() {
        let ctx = 0xffff_8881_0484_4800u64;
        let distinct = |it: &mut dyn Iterator<Item = u64>| {
            let mut seen = std::collections::HashSet::new();
            let mut n = 0;
            for ud in it {
                seen.insert(ud_index(ctx, ud));
                n += 1;
            }
            (seen.len(), n)
        };
        // Counters (1..=N, as liburing users and the workload do): no collision.
        assert_eq!(distinct(&mut (1..=20_000u64)), (20_000, 20_000));
        // Heap pointers (libuv's uv_fs_t, 448 bytes apart): at least as spread as a
        // random hash (which would give ~17,300 distinct slots of 20,000).
        let (d, n) = distinct(&mut (0..20_000u64).map(|i| 0x5555_5600_0000 + i * 448));
        assert!(d * 10 >= n * 9, "{d} of {n}");
        // Two rings with the same user_data use different slots.
        assert_ne!(ud_index(ctx, 7), ud_index(ctx + 0x800, 7));
    }

    #[test]
    fn indexes_stay_in_range() {
        for p in [0u64, 0xffff_8880_1234_5600, u64::MAX] {
            assert!(inflight_index(p) < INFLIGHT_SLOTS);
            assert!(ring_index(p) < RING_SLOTS);
            assert!(ud_index(p, p) < UD_SLOTS);
        }
        assert_eq!(op_index(RING_SLOTS - 1, 255), RING_SLOTS * OPCODE_SLOTS - 1);
    }
}
