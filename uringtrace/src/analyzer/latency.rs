//! Log-linear latency histograms: bounded memory, ~3% precision at any scale.

/// 32 sub-buckets per power of two.
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = 64 * SUB;

#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Up to the highest bucket recorded so far (at most BUCKETS): every ring keeps a
    /// few histograms, and latencies seldom reach the upper buckets.
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

fn bucket(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // ≥ SUB_BITS
    let sub = (v >> (exp - SUB_BITS)) as usize & (SUB - 1);
    ((exp - SUB_BITS + 1) as usize) * SUB + sub
}

/// Smallest value that falls in bucket `b`.
fn bucket_low(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let exp = (b / SUB) as u32 + SUB_BITS - 1;
    let sub = (b % SUB) as u64;
    (1u64 << exp) | (sub << (exp - SUB_BITS))
}

impl Histogram {
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.record_in(bucket(v), v);
    }

    /// The bucket of `v`, for [`Histogram::record_in`]: one computation for several
    /// histograms recording the same value.
    #[inline]
    pub(crate) fn bucket_of(v: u64) -> usize {
        bucket(v)
    }

    /// Records `v`, whose bucket is `b` (from [`Histogram::bucket_of`]).
    #[inline]
    pub(crate) fn record_in(&mut self, b: usize, v: u64) {
        *self.slot(b) += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Records `n` samples of value `v` (aggregated statistics from the kernel).
    pub fn record_n(&mut self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        // Saturating: `n` comes from an event (aggregating mode's bucket counts).
        let slot = self.slot(bucket(v));
        *slot = slot.saturating_add(n);
        self.total = self.total.saturating_add(n);
        self.max = self.max.max(v);
    }

    #[inline]
    fn slot(&mut self, b: usize) -> &mut u64 {
        if b >= self.counts.len() {
            self.grow(b);
        }
        &mut self.counts[b]
    }

    #[cold]
    fn grow(&mut self, b: usize) {
        debug_assert!(b < BUCKETS);
        // A power of two's sub-buckets at a time, eight to start with.
        let len = (b + 1).next_multiple_of(SUB).max(8 * SUB);
        self.counts.resize(len.min(BUCKETS), 0);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// (smallest value of the bucket, count) of every non-empty bucket, lowest first:
    /// for exporters that re-bucket (the agent's power-of-two `le` bounds).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(b, c)| (bucket_low(b), *c))
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// (p50, p99), the pair every view shows; None before the first latency.
    pub fn p50_p99(&self) -> Option<(u64, u64)> {
        (self.total > 0).then(|| (self.quantile(0.5), self.quantile(0.99)))
    }

    /// The value at quantile `q` (0..=1): the low edge of its bucket, capped at max.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_low(b).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in [
            0u64,
            1,
            31,
            32,
            33,
            63,
            64,
            100,
            1000,
            123_456,
            1 << 40,
            u64::MAX,
        ] {
            let b = bucket(v);
            assert!(b >= last);
            last = b;
            let low = bucket_low(b);
            assert!(low <= v, "{v}: low {low}");
            assert!(v - low <= v / 16 + 1, "{v}: low {low}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.max(), 1_000_000);
        let p50 = h.quantile(0.5);
        assert!((480_000..=500_000).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((960_000..=990_000).contains(&p99), "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn buckets_are_added_as_values_need_them() {
        let mut h = Histogram::default();
        assert!(h.counts.is_empty());
        h.record(5);
        assert_eq!(h.counts.len(), 8 * SUB);
        h.record(u64::MAX);
        assert!(h.counts.len() <= BUCKETS);
        h.record_n(1 << 20, 2);
        assert_eq!(h.count(), 4);
        assert_eq!(h.quantile(0.25), 5);
        assert_eq!(h.quantile(0.5), 1 << 20);
        assert_eq!(h.quantile(0.75), 1 << 20);
        assert_eq!(h.quantile(1.0), bucket_low(bucket(u64::MAX)));
    }
}
