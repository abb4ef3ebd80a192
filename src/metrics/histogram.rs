//! A latency histogram with fixed bounds that never allocates after construction.

use hdrhistogram::Histogram;

/// Nanosecond latencies from 1 ns to 60 s at 3 significant digits (±0.1 %), allocated once.
///
/// `hdrhistogram` grows its bucket array when a value is out of range if auto-resize is on; here it
/// is off and out-of-range values are clamped to [`LatencyHistogram::HIGHEST_NS`] and counted in
/// [`LatencyHistogram::saturated`], so recording is a few arithmetic operations and one counter
/// increment, never an allocation. The exact sum is kept beside the buckets for Prometheus `_sum`.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    buckets: Histogram<u64>,
    sum_ns: u64,
    saturated: u64,
}

impl LatencyHistogram {
    /// Smallest value told apart from zero.
    pub const LOWEST_NS: u64 = 1;
    /// Largest value recorded as itself; larger ones are clamped to it and counted as saturated.
    pub const HIGHEST_NS: u64 = 60_000_000_000;
    /// Relative precision: 3 digits, i.e. a recorded value is within 0.1 % of the true one.
    pub const SIGNIFICANT_DIGITS: u8 = 3;

    /// Allocates the bucket array (about 200 KiB); call at start-up, on the thread that records.
    pub fn new() -> Self {
        let mut buckets =
            Histogram::new_with_bounds(Self::LOWEST_NS, Self::HIGHEST_NS, Self::SIGNIFICANT_DIGITS)
                .expect("constant bounds: 1 <= lowest, highest >= 2 * lowest, 3 digits <= 5");
        buckets.auto(false);
        Self {
            buckets,
            sum_ns: 0,
            saturated: 0,
        }
    }

    /// Records one latency. Hot path: no allocation, no failure.
    #[inline]
    pub fn record(&mut self, value_ns: u64) {
        let clamped_ns = if value_ns > Self::HIGHEST_NS {
            self.saturated += 1;
            Self::HIGHEST_NS
        } else {
            value_ns
        };
        self.buckets.saturating_record(clamped_ns);
        self.sum_ns = self.sum_ns.saturating_add(clamped_ns);
        debug_assert!(self.buckets.len() >= self.saturated);
    }

    /// Adds every value recorded in `other` (same bounds, so no resize and no allocation).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.buckets
            .add(&other.buckets)
            .expect("both histograms have the same fixed bounds, so no value is out of range");
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.saturated += other.saturated;
    }

    /// Forgets every value; keeps the allocation.
    pub fn reset(&mut self) {
        self.buckets.reset();
        self.sum_ns = 0;
        self.saturated = 0;
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.buckets.len()
    }

    /// Sum of the recorded (clamped) values.
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns
    }

    /// How many values exceeded [`LatencyHistogram::HIGHEST_NS`] and were recorded as it.
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// The value at `quantile` (0.0..=1.0) within the histogram's precision, or `None` when empty.
    /// HDR reports a bucket's upper edge; it is capped at the ceiling so a saturated value reads as
    /// [`LatencyHistogram::HIGHEST_NS`], not slightly above it.
    pub fn quantile_ns(&self, quantile: f64) -> Option<u64> {
        if self.buckets.is_empty() {
            None
        } else {
            Some(
                self.buckets
                    .value_at_quantile(quantile)
                    .min(Self::HIGHEST_NS),
            )
        }
    }

    /// The largest recorded value (within precision, capped like quantiles), or `None` when empty.
    pub fn max_ns(&self) -> Option<u64> {
        if self.buckets.is_empty() {
            None
        } else {
            Some(self.buckets.max().min(Self::HIGHEST_NS))
        }
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `got` is within the histogram's 3-digit precision of `want`.
    fn close(got: u64, want: u64) -> bool {
        got.abs_diff(want) * 1000 <= want
    }

    #[test]
    fn quantiles_match_recorded_values_within_precision() {
        let mut h = LatencyHistogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000); // 1 µs .. 1 ms
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.sum_ns(), 1000 * 500_500);
        assert!(close(h.quantile_ns(0.5).expect("not empty"), 500_000));
        assert!(close(h.quantile_ns(0.99).expect("not empty"), 990_000));
        assert!(close(h.max_ns().expect("not empty"), 1_000_000));
    }

    #[test]
    fn values_beyond_the_bound_are_clamped_and_counted() {
        let mut h = LatencyHistogram::new();
        h.record(5);
        h.record(LatencyHistogram::HIGHEST_NS);
        h.record(LatencyHistogram::HIGHEST_NS + 1);
        h.record(u64::MAX);
        assert_eq!(h.count(), 4);
        assert_eq!(h.saturated(), 2);
        assert_eq!(h.max_ns(), Some(LatencyHistogram::HIGHEST_NS));
        assert_eq!(h.quantile_ns(1.0), Some(LatencyHistogram::HIGHEST_NS));
        assert_eq!(h.sum_ns(), 5 + 3 * LatencyHistogram::HIGHEST_NS);
    }

    #[test]
    fn zero_is_recordable() {
        let mut h = LatencyHistogram::new();
        h.record(0);
        assert_eq!(h.count(), 1);
        assert_eq!(h.quantile_ns(1.0), Some(0));
    }

    #[test]
    fn empty_histogram_has_no_quantiles() {
        let h = LatencyHistogram::new();
        assert_eq!(h.quantile_ns(0.5), None);
        assert_eq!(h.max_ns(), None);
    }

    #[test]
    fn merge_adds_counts_sums_and_saturations_and_reset_clears() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record(100);
        b.record(300);
        b.record(u64::MAX);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.sum_ns(), 400 + LatencyHistogram::HIGHEST_NS);
        assert_eq!(a.saturated(), 1);
        a.reset();
        assert_eq!((a.count(), a.sum_ns(), a.saturated()), (0, 0, 0));
    }
}
