//! Virtual time: one global simulated clock (what clients and the history see) and a local clock
//! per node that runs at its own rate, within the configured drift bound.
//!
//! The consensus core's contract (`NodeConfig::max_clock_drift_ns`) bounds how much faster one
//! node's clock may run than another's over an election timeout. The simulator gives every node a
//! rate in `[1 - r/2, 1 + r/2]` with `r = max_clock_drift / election_timeout_min`, so any two clocks
//! differ in rate by at most `r`, the bound, and the extremes are exercised.

/// Parts per billion: rates are integers so the arithmetic is exact and deterministic.
const PPB: u128 = 1_000_000_000;

/// One node's monotonic clock: `local = base_local + (global - base_global) * rate`.
#[derive(Debug, Clone, Copy)]
pub struct NodeClock {
    rate_ppb: u64,
    base_global_ns: u64,
    base_local_ns: u64,
}

impl NodeClock {
    /// A clock starting at local time `start_local_ns` at global time `now_ns`, running at
    /// `rate_ppb / 1e9` of the global rate.
    pub fn new(now_ns: u64, start_local_ns: u64, rate_ppb: u64) -> Self {
        assert!(rate_ppb > 0, "a clock must move forward");
        Self {
            rate_ppb,
            base_global_ns: now_ns,
            base_local_ns: start_local_ns,
        }
    }

    /// The node's reading at global time `global_ns` (never before the clock's base).
    pub fn local_ns(&self, global_ns: u64) -> u64 {
        assert!(
            global_ns >= self.base_global_ns,
            "virtual time went backwards ({global_ns} < {})",
            self.base_global_ns
        );
        let elapsed = u128::from(global_ns - self.base_global_ns);
        self.base_local_ns + (elapsed * u128::from(self.rate_ppb) / PPB) as u64
    }

    /// The global time at which this clock reads at least `local_ns`.
    pub fn global_at(&self, local_ns: u64) -> u64 {
        if local_ns <= self.base_local_ns {
            return self.base_global_ns;
        }
        let local = u128::from(local_ns - self.base_local_ns);
        let rate = u128::from(self.rate_ppb);
        self.base_global_ns + local.mul_ceil(PPB, rate) as u64
    }

    pub fn rate_ppb(&self) -> u64 {
        self.rate_ppb
    }
}

trait MulCeil {
    fn mul_ceil(self, mul: u128, div: u128) -> u128;
}

impl MulCeil for u128 {
    fn mul_ceil(self, mul: u128, div: u128) -> u128 {
        (self * mul).div_ceil(div)
    }
}

/// The rate bound in parts per billion for a drift of `drift_ns` over `window_ns`.
pub fn max_rate_spread_ppb(drift_ns: u64, window_ns: u64) -> u64 {
    assert!(window_ns > 0);
    (u128::from(drift_ns) * PPB / u128::from(window_ns)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_global_round_trip() {
        let c = NodeClock::new(1_000, 50, 1_020_000_000);
        assert_eq!(c.local_ns(1_000), 50);
        assert_eq!(c.local_ns(2_000), 50 + 1_020);
        let g = c.global_at(10_000);
        assert!(c.local_ns(g) >= 10_000);
        assert!(c.local_ns(g - 1) < 10_000);
    }

    #[test]
    fn spread_matches_the_drift_bound() {
        assert_eq!(max_rate_spread_ppb(5_000_000, 100_000_000), 50_000_000);
    }
}
